/*
 * store_ops.h - store operations the tests and stress programs share.
 * Owns nothing; thread-safe as the store is.
 */
#ifndef WB_TEST_STORE_OPS_H
#define WB_TEST_STORE_OPS_H

#include "ctx_store.h"

/*
 * Adds 1 to the integer field "n" of key's context ({"n":1} when absent)
 * with a compare-and-set loop: read, put with the version read, and again
 * after a WB_ERR_CONFLICT. v is the caller's reusable buffer. Returns WB_OK
 * or the first error other than a conflict.
 */
wb_err_t store_cas_increment(ctx_store_t *cs, const char *key, struct ctx_value *v);

#endif /* WB_TEST_STORE_OPS_H */
