/*
 * Fuzz target for imap-frontend/imap-utf7. Properties:
 *  - a name the strict decoder accepts re-encodes to exactly the same
 *    bytes (one wire form per mailbox: no aliasing);
 *  - UTF-8 the encoder accepts decodes back to itself, and the encoding
 *    is printable ASCII the decoder accepts;
 *  - the validators never crash and agree with the converters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-utf7.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The naive recursive matcher, fine for short inputs. */
static bool
ref_match(const char *p, const char *pe, const char *n, const char *ne)
{
	if (p == pe)
		return n == ne;
	if (*p == '*' || *p == '%') {
		for (const char *q = n;; q++) {
			if (ref_match(p + 1, pe, q, ne))
				return true;
			if (q == ne || (*p == '%' && *q == '/'))
				return false;
		}
	}
	return n != ne && *p == *n && ref_match(p + 1, pe, n + 1, ne);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	const char *error;

	if (imap_utf7_to_utf8(s, size, &a, &error) == 0) {
		if (!imap_utf7_is_valid(s, size))
			abort();
		if (imap_utf8_to_utf7(a.data != NULL ? a.data : "", a.len, &b,
		    &error) != 0)
			abort();
		if (b.len != size || memcmp(b.data != NULL ? b.data : "", s,
		    size) != 0)
			abort();
	} else if (imap_utf7_is_valid(s, size)) {
		abort();
	}
	strbuf_reset(&a);
	strbuf_reset(&b);
	if (imap_utf8_to_utf7(s, size, &a, &error) == 0) {
		if (!imap_utf8_is_valid(s, size))
			abort();
		for (size_t i = 0; i < a.len; i++) {
			if (a.data[i] < 0x20 || a.data[i] > 0x7e)
				abort();
		}
		if (imap_utf7_to_utf8(a.data != NULL ? a.data : "", a.len, &b,
		    &error) != 0)
			abort();
		if (b.len != size || memcmp(b.data != NULL ? b.data : "", s,
		    size) != 0)
			abort();
	}
	strbuf_reset(&a);
	(void)imap_mailbox_name_validate(s, size, &error);
	if (imap_mailbox_name_from_wire(s, size, &a, &error) == 0 &&
	    imap_mailbox_name_validate(a.data, a.len, &error) != 0)
		abort();
	strbuf_free(&a);
	strbuf_free(&b);

	/* LIST pattern matching: byte 0 splits pattern and name. */
	if (size > 1) {
		size_t k = data[0] % size;
		const char *pat = s + 1, *name = s + 1 + k;
		size_t plen = k, nlen = size - 1 - k;
		if (k >= size)
			return 0;
		bool m = imap_mailbox_pattern_match(pat, plen, name, nlen);
		if (size <= 16 && m != ref_match(pat, pat + plen, name,
		    name + nlen))
			abort();
	}
	return 0;
}
