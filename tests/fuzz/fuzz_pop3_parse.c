/*
 * Fuzz target for pop3-upstream/pop3-parse: the first byte picks a split
 * step; the rest is read as a server session (status lines, CAPA/UIDL/LIST
 * lines) and as RETR data. Checks the reader's invariants: whole and split
 * feeding give identical data, nothing is read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-upstream/pop3-parse.h"
#include "strbuf.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
read_data(const char *in, size_t len, size_t step, struct strbuf *out,
    size_t *used_r)
{
	struct pop3_data d;
	size_t pos = 0;

	pop3_data_init(&d);
	while (pos < len) {
		size_t end = pos + step > len ? len : pos + step;

		while (pos < end) {
			size_t used, olen;
			const char *o;
			enum pop3_parse_ret r = pop3_data_parse(&d, in + pos,
			    end - pos, &used, &o, &olen);

			if (used == 0 && olen == 0)
				abort();
			strbuf_append(out, o, olen);
			pos += used;
			if (r == POP3_PARSE_DONE) {
				*used_r = pos;
				return true;
			}
		}
	}
	*used_r = pos;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in;
	size_t len, step, pos = 0;
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	size_t ua, ub;
	bool da, db;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	in = (const char *)data + 1;
	len = size - 1;

	/* lines */
	while (pos < len) {
		size_t ll, used;
		const char *err, *l, *uid;
		struct pop3_status st;
		struct pop3_capa capa;
		uint32_t n;
		uint64_t sz;
		size_t uidlen;
		enum pop3_uidl_flaw flaw;
		char ts[POP3_APOP_TIMESTAMP_MAX + 1];

		if (pop3_parse_line(in + pos, len - pos, POP3_LINE_MAX, &ll,
		    &used, &err) != POP3_PARSE_DONE)
			break;
		l = in + pos;
		if (ll > POP3_LINE_MAX || used > len - pos)
			abort();
		(void)pop3_parse_status(l, ll, &st, &err);
		(void)pop3_parse_apop_timestamp(l, ll, ts, sizeof(ts));
		memset(&capa, 0, sizeof(capa));
		pop3_parse_capa_line(&capa, l, ll);
		if (!pop3_multiline_unstuff(&l, &ll)) {
			(void)pop3_parse_stat(l, ll, &n, &sz, &err);
			if (pop3_parse_list_line(l, ll, &n, &sz, &err) == 0 &&
			    (n == 0 || n > POP3_MSG_COUNT_MAX ||
			    sz > POP3_MSG_SIZE_MAX))
				abort();
			if (pop3_parse_uidl_line(l, ll, &n, &uid, &uidlen,
			    &flaw, &err) == 0 && flaw == POP3_UIDL_OK &&
			    (uidlen == 0 || uidlen > POP3_UIDL_MAX))
				abort();
		}
		pos += used;
	}

	/* RETR data: whole vs split */
	da = read_data(in, len, len ? len : 1, &a, &ua);
	db = read_data(in, len, step, &b, &ub);
	if (da != db || ua != ub || a.len != b.len ||
	    memcmp(strbuf_str(&a), strbuf_str(&b), a.len) != 0)
		abort();
	if (a.len > len)
		abort();
	(void)pop3_header_length(strbuf_str(&a), a.len);
	/* a field found is inside the header block */
	if (pop3_header_has_field(strbuf_str(&a), a.len, "message-id") &&
	    pop3_header_length(strbuf_str(&a), a.len) < 12)
		abort();
	(void)pop3_header_has_field(strbuf_str(&a), a.len, "date");
	strbuf_free(&a);
	strbuf_free(&b);
	return 0;
}
