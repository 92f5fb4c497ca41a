/*
 * username — see username.h.
 */
#include "username.h"

#include <string.h>

#include "xmalloc.h"

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

void
username_canon(char *name, bool fold_local)
{
	char *at = strrchr(name, '@');
	char *p = fold_local || at == NULL ? name : at;

	/* without fold_local and without '@' the name has no domain */
	if (!fold_local && at == NULL)
		return;
	for (; *p != '\0'; p++)
		*p = lower(*p);
}

bool
username_is_canon(const char *name, bool fold_local)
{
	const char *at = strrchr(name, '@');
	const char *p = fold_local || at == NULL ? name : at;

	if (!fold_local && at == NULL)
		return true;
	for (; *p != '\0'; p++) {
		if (lower(*p) != *p)
			return false;
	}
	return true;
}

char *
username_canon_dup(const char *name, bool fold_local)
{
	char *s = xstrdup(name);

	username_canon(s, fold_local);
	return s;
}
