/* msggen — deterministic test messages (see msggen.h). */
#include <stdio.h>
#include <string.h>

#include "msggen.h"

uint32_t
msggen_mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

size_t
msggen_size(uint32_t n, size_t scale_max)
{
	uint32_t r = msggen_mix(n * 2654435761U + 1);
	size_t size;

	if (r % 50 == 0)
		size = 200 * 1024 + (msggen_mix(r) % (824 * 1024));
	else
		size = 2 * 1024 + (msggen_mix(r) % (48 * 1024));
	if (scale_max != 0 && size > scale_max)
		size = scale_max;
	return size < 128 ? 128 : size;
}

void
msggen_fill(uint32_t n, char *buf, size_t size)
{
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
	uint32_t state = msggen_mix(n + 0x9e3779b9U);
	int len = snprintf(buf, size, "From: sender%u@example.org\r\n"
	    "To: user@example.net\r\nX-Seq: %u\r\nSubject: message %u\r\n"
	    "\r\n", n % 97, n, n);
	size_t col = 0;

	for (size_t i = (size_t)len; i < size; i++) {
		if (col == 76 && i + 2 <= size) {
			buf[i++] = '\r';
			buf[i] = '\n';
			col = 0;
			continue;
		}
		state = state * 1664525U + 1013904223U;
		buf[i] = alphabet[(state >> 24) % (sizeof(alphabet) - 1)];
		col++;
	}
}

uint32_t
msggen_seq(const char *buf, size_t size)
{
	const char *p = memmem(buf, size < 512 ? size : 512, "X-Seq: ", 7);
	uint32_t n = 0;

	if (p == NULL)
		return 0;
	for (p += 7; p < buf + size && *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (uint32_t)(*p - '0');
	return n;
}
