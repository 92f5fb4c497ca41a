/*
 * Fuzz target for imap-frontend/imap-trace. Input: the first byte picks
 * how the rest is cut into pieces and which side sends each. Properties:
 *  - no crash, no read or write out of bounds;
 *  - every line emitted is at most IMAP_TRACE_LINE_MAX plus the note of
 *    its length, and holds no line end.
 * (The masking itself is pinned down by tests/unit/test_imap_trace.c.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-trace.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(void *arg, enum imap_trace_dir dir, const char *text, size_t len)
{
	(void)arg;
	(void)dir;
	PG_ASSERT(len <= IMAP_TRACE_LINE_MAX + 64);
	for (size_t i = 0; i < len; i++)
		PG_ASSERT(text[i] != '\n');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_trace t;
	size_t i = 1, piece;

	if (size == 0)
		return 0;
	piece = (size_t)(data[0] & 0x0f) + 1;
	imap_trace_init(&t);
	while (i < size) {
		size_t n = size - i < piece ? size - i : piece;
		enum imap_trace_dir dir = (data[0] & 0x80) && (i / piece) % 2 ?
		    IMAP_TRACE_SERVER : IMAP_TRACE_CLIENT;

		imap_trace_feed(&t, dir, data + i, n, check, NULL);
		i += n;
	}
	imap_trace_clear(&t);
	return 0;
}
