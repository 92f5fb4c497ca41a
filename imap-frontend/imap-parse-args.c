/*
 * imap-parse-args — typed access to the argument tree of a parsed IMAP
 * command; see imap-parse.h.
 */
#include "imap-parse.h"

#include "strnum.h"

bool
imap_arg_get_atom(const struct imap_arg *arg, const char **str_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return false;
	*str_r = arg->str;
	return true;
}

bool
imap_arg_get_string(const struct imap_arg *arg, const char **str_r,
    size_t *len_r)
{
	if (arg == NULL ||
	    (arg->type != IMAP_ARG_QUOTED && arg->type != IMAP_ARG_LITERAL))
		return false;
	*str_r = arg->str;
	*len_r = arg->len;
	return true;
}

bool
imap_arg_get_astring(const struct imap_arg *arg, const char **str_r,
    size_t *len_r)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST)
		return false;
	*str_r = arg->str;
	*len_r = arg->len;
	return true;
}

bool
imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r,
    size_t *len_r)
{
	if (arg != NULL && arg->type == IMAP_ARG_NIL) {
		*str_r = NULL;
		*len_r = 0;
		return true;
	}
	return imap_arg_get_string(arg, str_r, len_r);
}

bool
imap_arg_get_number(const struct imap_arg *arg, uint32_t *num_r)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM &&
	    str_to_u32(arg->str, arg->len, num_r) == 0;
}

bool
imap_arg_get_number64(const struct imap_arg *arg, uint64_t *num_r)
{
	uint64_t n;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM ||
	    str_to_u64(arg->str, arg->len, &n) < 0 || n > INT64_MAX)
		return false;
	*num_r = n;
	return true;
}

bool
imap_arg_get_list(const struct imap_arg *arg, const struct imap_arg **list_r,
    size_t *count_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_LIST)
		return false;
	*list_r = arg->list;
	*count_r = arg->list_count;
	return true;
}

bool
imap_arg_atom_equals(const struct imap_arg *arg, const char *word)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM &&
	    str_ieq(arg->str, arg->len, word);
}

bool
imap_arg_get_flag_atom(const struct imap_arg *arg, const char **str_r)
{
	if (arg == NULL || (arg->type != IMAP_ARG_ATOM &&
	    arg->type != IMAP_ARG_NIL))
		return false;
	*str_r = arg->str;
	return true;
}
