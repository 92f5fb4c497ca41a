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
	return 0;
}
