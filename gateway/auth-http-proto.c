/* auth-http-proto — nginx's auth_http escaping (see the header). */
#include "auth-http-proto.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
auth_http_unescape(const char *s, size_t max)
{
	size_t n = strnlen(s, 3 * max + 1), o = 0;
	char *out;

	if (n > 3 * max)
		return NULL;
	out = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		if (i + 2 >= n)
			goto bad;
		hi = hexval(s[i + 1]);
		lo = hexval(s[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			goto bad;
		out[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[o] = '\0';
	if (o == 0 || o > max)
		goto bad;
	return out;
bad:
	secure_zero(out, n + 1);
	free(out);
	return NULL;
}
