/*
 * err.h - the project-wide error code, wb_err_t.
 *
 * One X-macro table (WB_ERR_MAP) produces the enum, the names and the texts,
 * so they cannot drift apart (libuv's UV_ERRNO_MAP). Owns nothing.
 * Codes say what kind of failure it is; details go in an errstr buffer or in
 * a log line where the error is handled, never in the code itself.
 */
#ifndef WB_ERR_H
#define WB_ERR_H

#include <stdbool.h>
#include <stddef.h>

/*      code               name                text                                     retriable */
#define WB_ERR_MAP(X)                                                                                \
	X(WB_OK,           "OK",           "success",                                     false) \
	X(WB_ERR_NOMEM,    "NOMEM",        "out of memory",                               true)  \
	X(WB_ERR_INVALID,  "INVALID",      "invalid argument or input",                   false) \
	X(WB_ERR_NOT_FOUND,"NOT_FOUND",    "not found",                                   false) \
	X(WB_ERR_CONFLICT, "CONFLICT",     "version conflict (compare-and-set failed)",   true)  \
	X(WB_ERR_TIMEOUT,  "TIMEOUT",      "timed out",                                   true)  \
	X(WB_ERR_IO,       "IO",           "connection or I/O failure",                   true)  \
	X(WB_ERR_UNAVAILABLE,"UNAVAILABLE","backend unavailable (reconnect backoff)",     true)  \
	X(WB_ERR_AUTH,     "AUTH",         "authentication failed",                       false) \
	X(WB_ERR_TLS,      "TLS",          "TLS handshake or certificate failure",        false) \
	X(WB_ERR_PROTOCOL, "PROTOCOL",     "protocol error or unexpected reply",          true)  \
	X(WB_ERR_CORRUPT,  "CORRUPT",      "stored data is not valid",                    false) \
	X(WB_ERR_TOO_BIG,  "TOO_BIG",      "value exceeds a configured limit",            false) \
	X(WB_ERR_CONFIG,   "CONFIG",       "bad configuration",                           false) \
	X(WB_ERR_SYSTEM,   "SYSTEM",       "operating system call failed",                true)

typedef enum wb_err {
#define WB_ERR_ENUM_(code, name, text, retriable) code,
	WB_ERR_MAP(WB_ERR_ENUM_)
#undef WB_ERR_ENUM_
	WB_ERR__COUNT
} wb_err_t;

/* Human-readable text of err ("out of memory"). Never NULL; cannot fail. */
const char *wb_err_str(wb_err_t err);

/* Short stable name of err without prefix ("NOMEM"), for logs and metrics. */
const char *wb_err_name(wb_err_t err);

/* true when trying the same operation again later may succeed. */
bool wb_err_is_retriable(wb_err_t err);

/* Writes the printf-style message to errstr (errstr_size bytes, always
 * NUL-terminated, cut if longer), the optional errstr of the project's
 * constructors; does nothing when errstr is NULL or errstr_size is 0.
 * Never pass a secret or a full phone number. Any thread. */
__attribute__((format(printf, 3, 4))) void wb_errstr(char *errstr, size_t errstr_size, const char *fmt, ...);

#endif /* WB_ERR_H */
