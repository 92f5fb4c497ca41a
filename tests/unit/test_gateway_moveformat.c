/*
 * Unit tests for gateway/move-format: the record framing fed whole, one
 * byte at a time and at every split point; limits checked before a byte
 * is buffered; truncation and trailing bytes; every record's JSON round
 * trip and the refusal of out-of-range or unknown fields.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/move-format.h"
#include "strbuf.h"
#include "xmalloc.h"

/* A small file: magic, a JSON record, a body of 3 bytes, the end. */
static void
sample(struct strbuf *sb)
{
	unsigned char head[5], mac[MOVE_MAC_SIZE];
	const char *json = "{\"name\":\"x\"}";

	strbuf_init(sb, 0);
	strbuf_append(sb, MOVE_MAGIC, MOVE_MAGIC_LEN);
	move_record_head(head, MOVE_R_SUBSCRIPTION, (uint32_t)strlen(json));
	strbuf_append(sb, head, 5);
	strbuf_appends(sb, json);
	move_record_head(head, MOVE_R_BODY, 3);
	strbuf_append(sb, head, 5);
	strbuf_append(sb, "a\0b", 3);
	memset(mac, 0x5a, sizeof(mac));
	move_record_head(head, MOVE_R_END, MOVE_MAC_SIZE);
	strbuf_append(sb, head, 5);
	strbuf_append(sb, mac, sizeof(mac));
}

/* Feeds data in pieces of step bytes (0: all at once); returns the
 * records' types as a string, or "ERR:" + the error. */
static char *
decode(const unsigned char *data, size_t len, size_t step)
{
	struct move_dec d;
	struct move_rec rec;
	struct strbuf out;
	char err[MOVE_ERROR_MAX];
	size_t pos = 0;

	strbuf_init(&out, 0);
	move_dec_init(&d);
	while (pos < len) {
		size_t n = step == 0 || len - pos < step ? len - pos : step;
		size_t used;
		enum move_dec_ret r = move_dec_feed(&d, data + pos, n, &used,
		    &rec, err, sizeof(err));

		ck_assert(used <= n);
		pos += used;
		if (r == MOVE_DEC_ERROR) {
			strbuf_appendf(&out, "ERR:%s", err);
			goto out;
		}
		if (r == MOVE_DEC_RECORD) {
			strbuf_appendc(&out, (char)rec.type);
			if (rec.type == MOVE_R_BODY) {
				ck_assert_uint_eq(rec.len, 3);
				ck_assert(memcmp(rec.data, "a\0b", 3) == 0);
			}
		} else {
			ck_assert_uint_eq(used, n);
		}
	}
	if (move_dec_finish(&d, err, sizeof(err)) < 0)
		strbuf_appendf(&out, "ERR:%s", err);
out:
	move_dec_free(&d);
	return strbuf_detach(&out, NULL);
}

START_TEST(framing_every_split)
{
	struct strbuf sb;
	char *r;

	sample(&sb);
	for (size_t step = 0; step <= sb.len; step++) {
		r = decode((const unsigned char *)sb.data, sb.len, step);
		ck_assert_str_eq(r, "ZBE");
		free(r);
	}
	strbuf_free(&sb);
}
END_TEST

START_TEST(framing_truncated_everywhere)
{
	struct strbuf sb;
	char *r;

	sample(&sb);
	/* every prefix short of the whole file is refused */
	for (size_t cut = 0; cut < sb.len; cut++) {
		r = decode((const unsigned char *)sb.data, cut, 1);
		ck_assert_msg(strstr(r, "ERR:") != NULL, "cut %zu: %s", cut,
		    r);
		if (cut >= MOVE_MAGIC_LEN)
			ck_assert_msg(strstr(r, "truncated") != NULL,
			    "cut %zu: %s", cut, r);
		free(r);
	}
	strbuf_free(&sb);
}
END_TEST

START_TEST(framing_bad_input)
{
	struct strbuf sb;
	unsigned char head[5];
	char *r;

	/* not an export; another version */
	r = decode((const unsigned char *)"hello world, this is not", 24, 0);
	ck_assert(strstr(r, "not a popgate user export") != NULL);
	free(r);
	r = decode((const unsigned char *)"POPGATE-MOVE 2\n", 15, 0);
	ck_assert(strstr(r, "version not supported") != NULL);
	free(r);
	/* a record over its limit is refused from its head alone */
	strbuf_init(&sb, 0);
	strbuf_append(&sb, MOVE_MAGIC, MOVE_MAGIC_LEN);
	move_record_head(head, MOVE_R_MAILBOX, MOVE_JSON_MAX + 1);
	strbuf_append(&sb, head, 5);
	r = decode((const unsigned char *)sb.data, sb.len, 0);
	ck_assert(strstr(r, "over its limit") != NULL);
	free(r);
	strbuf_reset(&sb);
	strbuf_append(&sb, MOVE_MAGIC, MOVE_MAGIC_LEN);
	move_record_head(head, MOVE_R_BODY, 0xffffffffu);
	strbuf_append(&sb, head, 5);
	r = decode((const unsigned char *)sb.data, sb.len, 1);
	ck_assert(strstr(r, "over its limit") != NULL);
	free(r);
	/* unknown type; an END of the wrong size */
	strbuf_reset(&sb);
	strbuf_append(&sb, MOVE_MAGIC, MOVE_MAGIC_LEN);
	move_record_head(head, (enum move_type)'Q', 1);
	strbuf_append(&sb, head, 5);
	r = decode((const unsigned char *)sb.data, sb.len, 0);
	ck_assert(strstr(r, "unknown record type") != NULL);
	free(r);
	strbuf_reset(&sb);
	strbuf_append(&sb, MOVE_MAGIC, MOVE_MAGIC_LEN);
	move_record_head(head, MOVE_R_END, 31);
	strbuf_append(&sb, head, 5);
	r = decode((const unsigned char *)sb.data, sb.len, 0);
	ck_assert(strstr(r, "end record of 31") != NULL);
	free(r);
	strbuf_free(&sb);
	/* anything after the end */
	sample(&sb);
	strbuf_appendc(&sb, 'x');
	r = decode((const unsigned char *)sb.data, sb.len, 0);
	ck_assert(strstr(r, "after the end") != NULL);
	free(r);
	strbuf_free(&sb);
}
END_TEST

static json_t *
reparse(json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	struct move_rec rec = { MOVE_R_MAILBOX, (const unsigned char *)text,
	    strlen(text), 0 };
	char err[MOVE_ERROR_MAX];
	json_t *out = NULL;

	ck_assert_int_eq(move_json(&rec, &out, err, sizeof(err)), 0);
	free(text);
	json_decref(j);
	return out;
}

START_TEST(records_round_trip)
{
	char err[MOVE_ERROR_MAX];
	struct move_mailbox mb = { 7, "Work/2026", 2, true, 1700000000u, 42,
	    99, 3 }, mb2;
	struct move_message m, m2;
	struct move_ledger l, l2;
	struct move_vanished *v = xcalloc(1, sizeof(*v)), *v2 =
	    xcalloc(1, sizeof(*v2));
	struct move_header h, h2;
	struct move_setting s;
	json_t *j;

	j = reparse(move_mailbox_json(&mb));
	ck_assert_int_eq(move_mailbox_parse(j, &mb2, err, sizeof(err)), 0);
	ck_assert_str_eq(mb2.name, "Work/2026");
	ck_assert(mb2.id == 7 && mb2.role == 2 && mb2.subscribed &&
	    mb2.uidvalidity == 1700000000u && mb2.uidnext == 42 &&
	    mb2.highestmodseq == 99 && mb2.messages == 3);
	json_decref(j);

	memset(&m, 0, sizeof(m));
	m.uid = 41;
	m.modseq = 98;
	m.system_flags = 0x1f;
	m.keywords[0] = "$Project";
	m.keywords[1] = "NonJunk";
	m.keyword_count = 2;
	m.internaldate = 1234567890;
	m.tz_offset_min = -300;
	m.size = 12345;
	m.body = 3;
	j = reparse(move_message_json(&m));
	ck_assert_int_eq(move_message_parse(j, &m2, err, sizeof(err)), 0);
	ck_assert(m2.uid == 41 && m2.modseq == 98 && m2.system_flags == 0x1f &&
	    m2.keyword_count == 2 && m2.internaldate == 1234567890 &&
	    m2.tz_offset_min == -300 && m2.size == 12345 && m2.body == 3);
	ck_assert_str_eq(m2.keywords[1], "NonJunk");
	json_decref(j);

	memset(&l, 0, sizeof(l));
	l.account = "legacy";
	memcpy(l.uidl, "\x00\xff/..", 5);
	l.uidl_size = 5;
	l.mailbox = 7;
	l.uid = 41;
	l.seen = 1700000001;
	l.deleted = true;
	l.has_fingerprint = true;
	l.body_size = 12345;
	l.body_hash = 0x0123456789abcdefULL;
	l.has_body = true;
	l.body = 0;
	l.has_digest = true;
	memset(l.digest, 0xab, sizeof(l.digest));
	l.has_head = true;
	memset(l.head_digest, 0xcd, sizeof(l.head_digest));
	l.list_size = 12347;
	j = reparse(move_ledger_json(&l));
	ck_assert_int_eq(move_ledger_parse(j, &l2, err, sizeof(err)), 0);
	ck_assert(l2.uidl_size == 5 && memcmp(l2.uidl, l.uidl, 5) == 0);
	ck_assert(l2.mailbox == 7 && l2.uid == 41 && l2.deleted &&
	    l2.has_fingerprint && l2.body_hash == l.body_hash &&
	    l2.has_body && l2.body == 0 && l2.has_digest &&
	    memcmp(l2.digest, l.digest, 32) == 0);
	ck_assert(l2.has_head && l2.list_size == 12347 &&
	    memcmp(l2.head_digest, l.head_digest, 32) == 0);
	json_decref(j);

	v->count = 2;
	v->modseqs[0] = 5;
	v->uids[0] = 3;
	v->modseqs[1] = 9;
	v->uids[1] = 4;
	j = reparse(move_vanished_json(v));
	ck_assert_int_eq(move_vanished_parse(j, v2, err, sizeof(err)), 0);
	ck_assert(v2->count == 2 && v2->modseqs[1] == 9 && v2->uids[0] == 3);
	json_decref(j);

	memset(&h, 0, sizeof(h));
	h.exported = 1;
	h.user = "alice";
	h.node = "a";
	memset(h.salt, 7, sizeof(h.salt));
	h.iterations = MOVE_KDF_ITERATIONS;
	j = reparse(move_header_json(&h));
	ck_assert_int_eq(move_header_parse(j, &h2, err, sizeof(err)), 0);
	ck_assert(memcmp(h2.salt, h.salt, sizeof(h.salt)) == 0 &&
	    h2.iterations == MOVE_KDF_ITERATIONS);
	json_decref(j);

	j = reparse(move_setting_json("quota", "\x00\x01", 2));
	ck_assert_int_eq(move_setting_parse(j, &s, err, sizeof(err)), 0);
	ck_assert(s.value_size == 2 && s.value[1] == 1);
	free(s.value);
	json_decref(j);
	free(v);
	free(v2);
}
END_TEST

/* Each of these is one edit of a good record; every one is refused. */
static const char *const bad_mailboxes[] = {
	"{\"id\":0,\"name\":\"a\",\"role\":0,\"subscribed\":true,"
	"\"uidvalidity\":1,\"uidnext\":1,\"highestmodseq\":1,\"messages\":0}",
	"{\"id\":1,\"name\":\"\",\"role\":0,\"subscribed\":true,"
	"\"uidvalidity\":1,\"uidnext\":1,\"highestmodseq\":1,\"messages\":0}",
	"{\"id\":1,\"name\":\"a\",\"role\":8,\"subscribed\":true,"
	"\"uidvalidity\":1,\"uidnext\":1,\"highestmodseq\":1,\"messages\":0}",
	"{\"id\":1,\"name\":\"a\",\"role\":0,\"subscribed\":true,"
	"\"uidvalidity\":0,\"uidnext\":1,\"highestmodseq\":1,\"messages\":0}",
	"{\"id\":1,\"name\":\"a\",\"role\":0,\"subscribed\":true,"
	"\"uidvalidity\":1,\"uidnext\":4294967296,\"highestmodseq\":1,"
	"\"messages\":0}",
	"{\"id\":1,\"name\":\"a\",\"role\":0,\"subscribed\":true,"
	"\"uidvalidity\":1,\"uidnext\":3,\"highestmodseq\":1,\"messages\":3}",
	"{\"id\":1,\"name\":\"a\",\"role\":0,\"subscribed\":true,"
	"\"uidvalidity\":1,\"uidnext\":1,\"highestmodseq\":1,\"messages\":0,"
	"\"extra\":1}",
	"{\"id\":1,\"name\":\"a\\u0001\",\"role\":0,\"subscribed\":true,"
	"\"uidvalidity\":1,\"uidnext\":1,\"highestmodseq\":1,\"messages\":0}",
	"{\"id\":\"1\",\"name\":\"a\",\"role\":0,\"subscribed\":true,"
	"\"uidvalidity\":1,\"uidnext\":1,\"highestmodseq\":1,\"messages\":0}",
};

static const char *const bad_messages[] = {
	"{\"uid\":0,\"modseq\":1,\"flags\":0,\"keywords\":[],"
	"\"internaldate\":0,\"tz\":0,\"size\":0,\"body\":1}",
	"{\"uid\":1,\"modseq\":0,\"flags\":0,\"keywords\":[],"
	"\"internaldate\":0,\"tz\":0,\"size\":0,\"body\":1}",
	"{\"uid\":1,\"modseq\":1,\"flags\":32,\"keywords\":[],"
	"\"internaldate\":0,\"tz\":0,\"size\":0,\"body\":1}",
	"{\"uid\":1,\"modseq\":1,\"flags\":0,\"keywords\":[\"a b\"],"
	"\"internaldate\":0,\"tz\":0,\"size\":0,\"body\":1}",
	"{\"uid\":1,\"modseq\":1,\"flags\":0,\"keywords\":[1],"
	"\"internaldate\":0,\"tz\":0,\"size\":0,\"body\":1}",
	"{\"uid\":1,\"modseq\":1,\"flags\":0,\"keywords\":[],"
	"\"internaldate\":0,\"tz\":1441,\"size\":0,\"body\":1}",
	"{\"uid\":1,\"modseq\":1,\"flags\":0,\"keywords\":[],"
	"\"internaldate\":0,\"tz\":0,\"size\":67108865,\"body\":1}",
	"{\"uid\":1,\"modseq\":1,\"flags\":0,\"keywords\":[],"
	"\"internaldate\":0,\"tz\":0,\"size\":0,\"body\":0}",
	"{\"uid\":1,\"modseq\":1,\"flags\":0,\"keywords\":[],"
	"\"internaldate\":0,\"tz\":0,\"size\":0}",
};

#define HEX64 "0123456789abcdef0123456789abcdef" \
	"0123456789abcdef0123456789abcdef"
static const char *const bad_ledgers[] = {
	"{\"account\":\"a/b\",\"uidl\":\"00\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false}",
	"{\"account\":\"a\",\"uidl\":\"\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false}",
	"{\"account\":\"a\",\"uidl\":\"0g\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false}",
	"{\"account\":\"a\",\"uidl\":\"0\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false}",
	"{\"account\":\"a\",\"uidl\":\"00\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":-1,\"deleted\":false}",
	"{\"account\":\"a\",\"uidl\":\"00\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false,\"digest\":\"ab\"}",
	/* the header digest without its LIST size, and a short one */
	"{\"account\":\"a\",\"uidl\":\"00\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false,\"head\":\"" HEX64 "\"}",
	"{\"account\":\"a\",\"uidl\":\"00\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false,\"head\":\"ab\",\"list_size\":3}",
	"{\"account\":\"a\",\"uidl\":\"00\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false,\"hash\":\"0123\"}",
	"{\"account\":\"a\",\"uidl\":\"00\",\"mailbox\":0,\"uid\":0,"
	"\"seen\":0,\"deleted\":false,\"body\":-2}",
};

static json_t *
load(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	ck_assert_msg(j != NULL, "test JSON: %s", text);
	return j;
}

START_TEST(records_refused)
{
	char err[MOVE_ERROR_MAX];
	struct move_mailbox mb;
	struct move_message m;
	struct move_ledger l;
	struct move_user u;
	json_t *j;

	for (size_t i = 0; i < N_ELEMENTS(bad_mailboxes); i++) {
		j = load(bad_mailboxes[i]);
		ck_assert_msg(move_mailbox_parse(j, &mb, err, sizeof(err)) < 0,
		    "accepted %s", bad_mailboxes[i]);
		json_decref(j);
	}
	for (size_t i = 0; i < N_ELEMENTS(bad_messages); i++) {
		j = load(bad_messages[i]);
		ck_assert_msg(move_message_parse(j, &m, err, sizeof(err)) < 0,
		    "accepted %s", bad_messages[i]);
		json_decref(j);
	}
	for (size_t i = 0; i < N_ELEMENTS(bad_ledgers); i++) {
		j = load(bad_ledgers[i]);
		ck_assert_msg(move_ledger_parse(j, &l, err, sizeof(err)) < 0,
		    "accepted %s", bad_ledgers[i]);
		json_decref(j);
	}
	j = load("{\"name\":\"a/b\",\"password_hash\":\"\",\"created\":0}");
	ck_assert(move_user_parse(j, &u, err, sizeof(err)) < 0);
	json_decref(j);
	j = load("{\"name\":\"ab\",\"password_hash\":\"\",\"created\":0}");
	ck_assert(move_user_parse(j, &u, err, sizeof(err)) == 0);
	json_decref(j);
	/* a record that is not an object, or duplicate keys */
	{
		struct move_rec rec = { MOVE_R_USER,
		    (const unsigned char *)"[1]", 3, 0 };
		struct move_rec dup = { MOVE_R_USER,
		    (const unsigned char *)"{\"a\":1,\"a\":2}", 13, 0 };

		ck_assert(move_json(&rec, &j, err, sizeof(err)) < 0);
		ck_assert(move_json(&dup, &j, err, sizeof(err)) < 0);
	}
}
END_TEST

START_TEST(hex)
{
	unsigned char b[3];
	char out[7];

	move_hex("\x00\xab\xff", 3, out);
	ck_assert_str_eq(out, "00abff");
	ck_assert_int_eq(move_unhex("00abff", b, 3), 0);
	ck_assert(b[1] == 0xab);
	ck_assert_int_eq(move_unhex("00ABff", b, 3), -1);
	ck_assert_int_eq(move_unhex("00abf", b, 3), -1);
	ck_assert_int_eq(move_unhex("00abffff", b, 3), -1);
}
END_TEST

static Suite *
moveformat_suite(void)
{
	Suite *s = suite_create("gateway_moveformat");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, framing_every_split);
	tcase_add_test(tc, framing_truncated_everywhere);
	tcase_add_test(tc, framing_bad_input);
	tcase_add_test(tc, records_round_trip);
	tcase_add_test(tc, records_refused);
	tcase_add_test(tc, hex);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(moveformat_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
