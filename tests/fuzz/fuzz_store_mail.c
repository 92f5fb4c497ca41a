/*
 * libFuzzer target for the message parser: the input is parsed whole and
 * in chunks whose sizes come from its first byte; both must give the same
 * blob. The structure is then rendered, read back from its blob,
 * searched and indexed, so every path the IMAP server takes on a hostile message runs
 * under ASan/UBSan. Small limits make the limit paths reachable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/mail-fts.h"
#include "store/mail-parse.h"
#include "store/mail-render.h"
#include "store/mail-search.h"
#include "store/mail-serialize.h"
#include "strbuf.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
ignore_text(void *ctx, uint32_t part, const char *utf8, size_t len)
{
	size_t *total = ctx;

	(void)part;
	(void)utf8;
	*total += len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_parse_limits lim;
	struct mail_message *whole, *chunked, *back;
	struct mail_parser *mp;
	struct strbuf b1 = STRBUF_INIT, b2 = STRBUF_INIT, out = STRBUF_INIT;
	const char *msg = (const char *)data, *error, *hdr;
	size_t chunk = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
	size_t total = 0, hlen;
	uint32_t path[3] = { 1, 2, 1 };
	uint64_t off, len;

	mail_parse_limits_default(&lim);
	lim.parts_max = 50;
	lim.depth_max = 8;
	lim.field_max = 512;
	lim.struct_max = 64 * 1024;
	whole = mail_parse(msg, size, &lim);
	mp = mail_parser_new(&lim);
	for (size_t i = 0; i < size; i += chunk)
		mail_parser_feed(mp, msg + i, size - i < chunk ? size - i : chunk);
	chunked = mail_parser_finish(&mp);
	mail_serialize(whole, &b1);
	mail_serialize(chunked, &b2);
	if (b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0)
		abort();	/* split points must not matter */

	if (mail_deserialize(b1.data, b1.len, &back, &error) < 0)
		abort();	/* our own blob must read back */
	mail_render_bodystructure(&out, back, true);
	mail_render_bodystructure(&out, back, false);
	mail_render_message_envelope(&out, back);
	for (size_t n = 0; n <= 3; n++) {
		for (int k = MAIL_SECTION_PART; k <= MAIL_SECTION_MIME; k++) {
			if (mail_section_range(back, path, n,
			    (enum mail_section_kind)k, &off, &len, &error) == 0 &&
			    (off > size || len > size - off))
				abort();
		}
	}
	hdr = mail_search_message_header(msg, size, back, &hlen);
	if (hdr != NULL) {
		strbuf_reset(&out);
		(void)mail_search_header_values(hdr, hlen, "subject", true,
		    &out);
		mail_search_header_text(hdr, hlen, true, &out);
	}
	(void)mail_search_body_text(msg, size, back, true, ignore_text,
	    &total);
	/* the full-text index's terms: what the blob gives is what the
	 * parse gives (the index is built from the one, searched with the
	 * other), ascending and unique */
	{
		struct mail_fts_terms t1 = MAIL_FTS_TERMS_INIT,
		    t2 = MAIL_FTS_TERMS_INIT;

		mail_fts_message_terms(msg, size, whole, &t1);
		mail_fts_message_terms(msg, size, back, &t2);
		if (t1.saturated != t2.saturated || t1.count != t2.count ||
		    (t1.count > 0 && memcmp(t1.terms, t2.terms,
		    t1.count * sizeof(*t1.terms)) != 0))
			abort();
		for (size_t i = 1; i < t1.count; i++)
			if (t1.terms[i] <= t1.terms[i - 1])
				abort();
		mail_fts_terms_free(&t1);
		mail_fts_terms_free(&t2);
	}

	mail_message_free(&back);
	mail_message_free(&whole);
	mail_message_free(&chunked);
	strbuf_free(&b1);
	strbuf_free(&b2);
	strbuf_free(&out);
	return 0;
}
