/*
 * Fuzz target: mailbox name validation, the store's first line against
 * hostile names (from IMAP after modified UTF-7 decoding). Whatever the
 * bytes, the check must not crash, and a name it accepts must keep the
 * promises of store.h: non-empty, within the limits, no empty component,
 * no control character, valid UTF-8 (checked independently here).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
utf8_ok(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 :
		    (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;

		if (n == 0 || i + n > len)
			return 0;
		for (size_t j = 1; j < n; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
		}
		i += n;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name;
	const char *why = NULL;
	size_t len, depth = 1;

	if (size > 4 * STORE_MAILBOX_NAME_MAX)
		return 0;
	name = malloc(size + 1);
	memcpy(name, data, size);
	name[size] = '\0';
	len = strlen(name);
	if (store_mailbox_name_valid(name, &why)) {
		if (len == 0 || len > STORE_MAILBOX_NAME_MAX ||
		    name[0] == '/' || name[len - 1] == '/' ||
		    strstr(name, "//") != NULL ||
		    !utf8_ok((const unsigned char *)name, len))
			abort();
		for (size_t i = 0; i < len; i++) {
			if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
				abort();
			if (name[i] == '/')
				depth++;
		}
		if (depth > STORE_MAILBOX_DEPTH_MAX)
			abort();
	} else if (why == NULL) {
		abort();
	}
	free(name);
	return 0;
}
