/*
 * err.c - names and texts of wb_err_t, generated from WB_ERR_MAP.
 * Owns nothing; all functions are pure and thread-safe.
 */
#include "err.h"

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
