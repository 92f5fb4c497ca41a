/*
 * Fuzz target for gateway/move-format, the parser of `user import`'s
 * file. Properties: the decoder fed the input whole and in pieces of 7
 * bytes returns the same records (type, length, bytes) and the same
 * outcome; every JSON record goes through its type's field checks, and a
 * record they accept, written again by the encoder, is accepted again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/move-format.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every record as type, length, bytes, then '!' on an error or '.' at
 * a clean end. */
static void
run(const uint8_t *data, size_t size, size_t step, struct strbuf *out,
    bool check_fields)
{
	struct move_dec d;
	struct move_rec rec;
	char err[MOVE_ERROR_MAX];
	size_t pos = 0;

	move_dec_init(&d);
	while (pos < size) {
		size_t n = step == 0 || size - pos < step ? size - pos : step;
		size_t used;
		enum move_dec_ret r = move_dec_feed(&d, data + pos, n, &used,
		    &rec, err, sizeof(err));

		if (used > n)
			abort();
		pos += used;
		if (r == MOVE_DEC_ERROR) {
			strbuf_appendc(out, '!');
			move_dec_free(&d);
			return;
		}
		if (r == MOVE_DEC_MORE) {
			if (used != n)
				abort();
			continue;
		}
		if (rec.len > move_type_max(rec.type))
			abort();
		strbuf_appendc(out, (char)rec.type);
		strbuf_append(out, &rec.len, sizeof(rec.len));
		strbuf_append(out, rec.data, rec.len);
		if (check_fields && rec.type != MOVE_R_BODY &&
		    rec.type != MOVE_R_END) {
			json_t *j, *again = NULL;
			struct move_mailbox mb;
			struct move_message m;
			struct move_ledger l;
			struct move_setting s;
			struct move_header h;
			struct move_user u;
			struct move_account a;
			const char *name;
			static struct move_vanished v;

			if (move_json(&rec, &j, err, sizeof(err)) < 0)
				continue;
			if (move_mailbox_parse(j, &mb, err, sizeof(err)) == 0)
				again = move_mailbox_json(&mb);
			else if (move_message_parse(j, &m, err,
			    sizeof(err)) == 0)
				again = move_message_json(&m);
			else if (move_ledger_parse(j, &l, err,
			    sizeof(err)) == 0)
				again = move_ledger_json(&l);
			else if (move_vanished_parse(j, &v, err,
			    sizeof(err)) == 0)
				again = move_vanished_json(&v);
			else if (move_header_parse(j, &h, err,
			    sizeof(err)) == 0)
				again = move_header_json(&h);
			else if (move_user_parse(j, &u, err,
			    sizeof(err)) == 0)
				again = move_user_json(&u);
			else if (move_setting_parse(j, &s, err,
			    sizeof(err)) == 0) {
				again = move_setting_json(s.key, s.value,
				    s.value_size);
				free(s.value);
			} else if (move_account_parse(j, &a, err,
			    sizeof(err)) == 0)
				again = move_account_json(a.name, a.record);
			else if (move_subscription_parse(j, &name, err,
			    sizeof(err)) == 0)
				again = move_subscription_json(name);
			if (again != NULL) {
				/* what the encoder writes parses again */
				struct move_mailbox mb2;
				struct move_message m2;
				struct move_ledger l2;

				if ((rec.type == MOVE_R_MAILBOX &&
				    move_mailbox_parse(j, &mb, err,
				    sizeof(err)) == 0 &&
				    move_mailbox_parse(again, &mb2, err,
				    sizeof(err)) < 0) ||
				    (move_message_parse(j, &m, err,
				    sizeof(err)) == 0 &&
				    move_message_parse(again, &m2, err,
				    sizeof(err)) < 0) ||
				    (move_ledger_parse(j, &l, err,
				    sizeof(err)) == 0 &&
				    move_ledger_parse(again, &l2, err,
				    sizeof(err)) < 0))
					abort();
				json_decref(again);
			}
			json_decref(j);
		}
	}
	strbuf_appendc(out, move_dec_finish(&d, err, sizeof(err)) == 0 ?
	    '.' : '!');
	move_dec_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf whole, pieces;
	uint8_t *buf;

	/* most inputs get the magic line, so the fuzzer reaches records */
	buf = malloc(size + MOVE_MAGIC_LEN + 1);
	if (size > 0 && data[0] == 'X') {
		memcpy(buf, data, size);
	} else {
		memcpy(buf, MOVE_MAGIC, MOVE_MAGIC_LEN);
		if (size > 0)
			memcpy(buf + MOVE_MAGIC_LEN, data, size);
		size += MOVE_MAGIC_LEN;
	}
	strbuf_init(&whole, 0);
	strbuf_init(&pieces, 0);
	run(buf, size, 0, &whole, true);
	run(buf, size, 7, &pieces, false);
	if (whole.len != pieces.len ||
	    memcmp(whole.data, pieces.data, whole.len) != 0)
		abort();
	strbuf_free(&whole);
	strbuf_free(&pieces);
	free(buf);
	return 0;
}
