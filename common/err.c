/*
 * err.c - names and texts of wb_err_t, generated from WB_ERR_MAP, and
 * wb_errstr(), the one writer of the optional errstr buffers.
 * Owns nothing; all functions are thread-safe.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
	const char *name;
	const char *text;
	bool retriable;
} wb_err_table[WB_ERR__COUNT] = {
#define WB_ERR_ROW_(code, name, text, retriable) [code] = {name, text, retriable},
	WB_ERR_MAP(WB_ERR_ROW_)
#undef WB_ERR_ROW_
};

const char *wb_err_str(wb_err_t err)
{
	if ((unsigned)err >= WB_ERR__COUNT)
		return "unknown error";
	return wb_err_table[err].text;
}

const char *wb_err_name(wb_err_t err)
{
	if ((unsigned)err >= WB_ERR__COUNT)
		return "UNKNOWN";
	return wb_err_table[err].name;
}

bool wb_err_is_retriable(wb_err_t err)
{
	if ((unsigned)err >= WB_ERR__COUNT)
		return false;
	return wb_err_table[err].retriable;
}

void wb_errstr(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;

	if (!errstr || !errstr_size)
		return;
	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
}
