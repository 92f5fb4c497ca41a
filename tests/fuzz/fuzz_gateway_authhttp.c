/*
 * Fuzz target for gateway/auth-http-proto. Properties: an accepted value
 * is non-empty, within the bound, holds no NUL, and escaping it again
 * (every byte as %XX) unescapes to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/auth-http-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXOUT 64

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	char *out, *again;
	char esc[3 * MAXOUT + 1];
	size_t n;

	memcpy(in, data, size);
	in[size] = '\0';
	out = auth_http_unescape(in, MAXOUT);
	free(in);
	if (out == NULL)
		return 0;
	n = strlen(out);
	if (n == 0 || n > MAXOUT)
		abort();
	for (size_t i = 0; i < n; i++)
		snprintf(esc + 3 * i, 4, "%%%02x", (unsigned char)out[i]);
	again = auth_http_unescape(esc, MAXOUT);
	if (again == NULL || strcmp(again, out) != 0)
		abort();
	free(again);
	free(out);
	return 0;
}
