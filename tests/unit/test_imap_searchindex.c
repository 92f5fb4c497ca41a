/*
 * Check suite for SEARCH over the full-text index (imap-search-index,
 * store-fts, mail-fts): on a generated corpus with encoded words, base64
 * and quoted-printable parts, non-ASCII text, HTML and malformed
 * messages, the index never rules out a message the matcher finds
 * (random substrings, every text key), it does rule out others, and it
 * stays so after expunges, merges, a drop and a reindex; the offline
 * checker agrees at each step.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap-frontend/imap-fetch.h"
#include "imap-frontend/imap-search-index.h"
#include "imap-frontend/imap-search-match.h"
#include "store/mail-fts.h"
#include "store/mail-message.h"
#include "store/mail-parse.h"
#include "store/mail-search.h"
#include "store/mail-serialize.h"
#include "store/store-private.h"
#include "store_test_util.h"
#include "strbuf.h"
#include "utf8.h"
#include "xmalloc.h"

#define CORPUS 160

static uint32_t rng_state;

static uint32_t
rnd(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return rng_state >> 8;
}

static const char *const words[] = {
	"meeting", "invoice", "quarterly", "Größe", "straße", "café",
	"naïve", "Ελληνικά", "ΑΘΗΝΑ", "Кириллица", "МОСКВА", "日本語",
	"résumé", "déjà", "budget", "Übermorgen", "zebra", "xylophone",
	"rare", "common", "the", "and", "R&D", "<tag>", "a+b", "50%",
};

static void
add_words(struct strbuf *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		strbuf_appends(b, words[rnd() % N_ELEMENTS(words)]);
		strbuf_appendc(b, i % 9 == 8 ? '\n' : ' ');
	}
}

static void
base64(const char *s, size_t len, struct strbuf *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789+/";
	size_t col = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)s[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)(unsigned char)s[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)s[i + 2];
		strbuf_appendc(out, t[v >> 18 & 63]);
		strbuf_appendc(out, t[v >> 12 & 63]);
		strbuf_appendc(out, i + 1 < len ? t[v >> 6 & 63] : '=');
		strbuf_appendc(out, i + 2 < len ? t[v & 63] : '=');
		if ((col += 4) >= 72) {
			strbuf_appends(out, "\r\n");
			col = 0;
		}
	}
	strbuf_appends(out, "\r\n");
}

static void
qp(const char *s, size_t len, struct strbuf *out)
{
	size_t col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n') {
			strbuf_appends(out, "\r\n");
			col = 0;
			continue;
		}
		if (col > 70) {
			strbuf_appends(out, "=\r\n");
			col = 0;
		}
		if (c >= 128 || c == '=' || c < 32) {
			strbuf_appendf(out, "=%02X", c);
			col += 3;
		} else {
			strbuf_appendc(out, (char)c);
			col++;
		}
	}
	strbuf_appends(out, "\r\n");
}

/* Text with LF line ends to CRLF. */
static void
crlf(const char *s, size_t len, struct strbuf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			strbuf_appendc(out, '\r');
		strbuf_appendc(out, s[i]);
	}
}

static void
subject(struct strbuf *m)
{
	struct strbuf w = STRBUF_INIT, e = STRBUF_INIT;

	add_words(&w, 3 + rnd() % 4);
	while (w.len > 0 && (w.data[w.len - 1] == ' ' ||
	    w.data[w.len - 1] == '\n'))
		w.len--;
	for (size_t i = 0; i < w.len; i++)
		if (w.data[i] == '\n')
			w.data[i] = ' ';
	switch (rnd() % 3) {
	case 0:
		base64(w.data, w.len, &e);
		while (e.len > 0 && (e.data[e.len - 1] == '\n' ||
		    e.data[e.len - 1] == '\r'))
			e.len--;
		strbuf_appends(m, "Subject: =?UTF-8?B?");
		for (size_t i = 0; i < e.len; i++)
			if (e.data[i] != '\r' && e.data[i] != '\n')
				strbuf_appendc(m, e.data[i]);
		strbuf_appends(m, "?=\r\n");
		break;
	case 1:
		strbuf_appends(m, "Subject: =?utf-8?q?");
		for (size_t i = 0; i < w.len; i++) {
			unsigned char c = (unsigned char)w.data[i];

			if (c == ' ')
				strbuf_appendc(m, '_');
			else if (c >= 128 || c == '?' || c == '=' || c == '_')
				strbuf_appendf(m, "=%02X", c);
			else
				strbuf_appendc(m, (char)c);
		}
		strbuf_appends(m, "?= and\r\n folded tail\r\n");
		break;
	default:
		strbuf_appends(m, "Subject: ");
		strbuf_append(m, w.data, w.len);
		strbuf_appends(m, "\r\n");
	}
	strbuf_free(&w);
	strbuf_free(&e);
}

static void
gen_message(unsigned n, struct strbuf *m)
{
	struct strbuf t = STRBUF_INIT, h = STRBUF_INIT;

	strbuf_reset(m);
	switch (n % 4) {
	case 0:
		strbuf_appendf(m, "From: \"Sender %u\" <s%u@example.org>\r\n",
		    n, n % 7);
		break;
	case 1:
		strbuf_appendf(m, "From: s%u@example.org (Zoë %u)\r\n", n % 7,
		    n);
		break;
	case 2:
		strbuf_appendf(m, "From: =?ISO-8859-1?Q?Fran=E7ois_%u?= "
		    "<f%u@example.net>\r\n", n, n % 5);
		break;
	default:
		strbuf_appendf(m, "From: team: a%u@example.com, "
		    "Bob <b@example.com>;\r\n", n % 3);
	}
	strbuf_appendf(m, "To: <user%u@example.com>\r\nCc: cc%u@example.com, "
	    "\"Ünal\" <u@example.com>\r\nBcc: hidden%u@example.com\r\n",
	    n % 11, n % 13, n % 3);
	subject(m);
	strbuf_appendf(m, "X-Custom: value%u ", n % 17);
	add_words(m, 2);
	strbuf_appends(m, "\r\nMIME-Version: 1.0\r\n");
	add_words(&t, 10 + rnd() % 60);
	switch (n % 10) {
	case 0:	/* plain 7bit/8bit utf-8 */
		strbuf_appends(m, "Content-Type: text/plain; charset=utf-8\r\n"
		    "\r\n");
		crlf(t.data, t.len, m);
		break;
	case 1:	/* quoted-printable */
		strbuf_appends(m, "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		qp(t.data, t.len, m);
		break;
	case 2:	/* base64 */
		strbuf_appends(m, "Content-Type: text/plain; charset=\"UTF-8\"\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\n");
		base64(t.data, t.len, m);
		break;
	case 3:	/* HTML with entities and tags inside words */
		strbuf_appends(m, "Content-Type: text/html; charset=utf-8\r\n"
		    "\r\n<html><head><title>hidden title</title>"
		    "<style>p { zebrastyle: 1 }</style></head><body><p>");
		crlf(t.data, t.len, m);
		strbuf_appends(m, " caf&eacute; R&amp;D &#x3B1;&#946; Caf<b>e"
		    "</b>teria<br>x&nbsp;y<!-- commentword --></p></body>"
		    "</html>\r\n");
		break;
	case 4:	/* alternative, plain + html, qp */
		strbuf_appendf(m, "Content-Type: multipart/alternative; "
		    "boundary=\"alt%u\"\r\n\r\npreamble\r\n--alt%u\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
		    n, n);
		qp(t.data, t.len, m);
		strbuf_appendf(m, "--alt%u\r\nContent-Type: text/html\r\n\r\n"
		    "<div>&lt;tag&gt; <i>html</i>only%u</div>\r\n--alt%u--\r\n",
		    n, n, n);
		break;
	case 5:	/* mixed with a binary attachment holding words */
		strbuf_appendf(m, "Content-Type: multipart/mixed; "
		    "boundary=mix%u\r\n\r\n--mix%u\r\nContent-Type: text/plain;"
		    " charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n"
		    "\r\nLatin1 caf\xe9 na\xefve\r\n--mix%u\r\n"
		    "Content-Type: application/octet-stream; name=\"f%u.bin\"\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\n", n, n, n, n);
		base64(t.data, t.len, m);
		strbuf_appendf(m, "--mix%u--\r\n", n);
		break;
	case 6:	/* a forwarded message */
		strbuf_appendf(m, "Content-Type: multipart/mixed; "
		    "boundary=fw%u\r\n\r\n--fw%u\r\nContent-Type: text/plain\r\n"
		    "\r\nSee below.\r\n--fw%u\r\nContent-Type: message/rfc822"
		    "\r\n\r\nFrom: inner@example.org\r\nSubject: =?utf-8?q?"
		    "Inner_sub=C3=A9ject?=\r\nContent-Type: text/plain; "
		    "charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
		    "\r\n", n, n, n);
		base64(t.data, t.len, m);
		strbuf_appendf(m, "--fw%u--\r\n", n);
		break;
	case 7:	/* malformed: no closing boundary, bad base64, bare LF */
		strbuf_appendf(m, "Content-Type: multipart/mixed; "
		    "boundary=bad%u\n\n--bad%u\nContent-Type: text/plain; "
		    "charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
		    "!!bm90IGJhc2U2NA==@@\n", n, n);
		base64(t.data, t.len, m);
		strbuf_appends(m, "garbage after \xff\xfe bytes\n");
		break;
	case 8:	/* invalid UTF-8, unknown charset, no blank line */
		strbuf_appends(m, "Content-Type: text/plain; charset=x-unknown-"
		    "charset\r\nthis line is not a field \xc3\x28 \xe2\x82\r\n");
		crlf(t.data, t.len, m);
		break;
	default:	/* no Content-Type at all, Greek capitals */
		strbuf_appends(m, "\r\nΑΒΓ ΔΕΖ ");
		crlf(t.data, t.len, m);
	}
	strbuf_free(&t);
	strbuf_free(&h);
}

struct corpus {
	struct tstore t;
	uint32_t user, mbox;
	struct strbuf msgs[CORPUS];
	uint32_t saturated_uid;	/* a saturated message's, 0 none */
	/* imap_search_index_known answers: certain hits, certain misses */
	unsigned known_hit, known_miss;
	unsigned headers_lack;	/* TEXT answered as BODY */
};

/* Delivers message msg to the corpus's INBOX, with its terms if
 * indexed. */
static uint32_t
deliver_msg(struct corpus *c, const struct strbuf *msg, bool indexed)
{
	struct mail_message *mm = mail_parse(msg->data, msg->len, NULL);
	struct strbuf blob = STRBUF_INIT;
	struct mail_fts_terms terms = MAIL_FTS_TERMS_INIT;
	struct store_fts_doc doc;
	struct store_new_msg m;
	uint32_t uid;
	const char *err = NULL;

	mail_serialize(mm, &blob);
	memset(&m, 0, sizeof(m));
	m.data = msg->data;
	m.size = msg->len;
	m.structure = blob.data;
	m.structure_size = blob.len;
	m.internaldate = 1700000000 + (int64_t)msg->len;
	if (indexed) {
		mail_fts_message_terms(m.data, m.size, mm, &terms);
		doc.terms = terms.terms;
		doc.count = terms.count;
		doc.saturated = terms.saturated;
		m.fts = &doc;
	}
	ck_assert_msg(store_deliver(c->t.store, c->user, c->mbox, &m, 1, &uid,
	    NULL, &err) == 0, "%s", err);
	mail_fts_terms_free(&terms);
	strbuf_free(&blob);
	mail_message_free(&mm);
	return uid;
}

static void
deliver_all(struct corpus *c, bool indexed, unsigned from, unsigned to)
{
	for (unsigned i = from; i < to; i++)
		deliver_msg(c, &c->msgs[i], indexed);
}

static void
corpus_open(struct corpus *c)
{
	memset(c, 0, sizeof(*c));
	rng_state = 12345;
	tstore_open(&c->t, 0);
	c->user = tuser(&c->t, "alice");
	c->mbox = tmailbox(&c->t, c->user, "INBOX");
	for (unsigned i = 0; i < CORPUS; i++)
		gen_message(i, &c->msgs[i]);
}

static void
corpus_close(struct corpus *c)
{
	for (unsigned i = 0; i < CORPUS; i++)
		strbuf_free(&c->msgs[i]);
	tstore_close(&c->t);
}

/* The key kinds of the test: type, header name, address. */
static const struct {
	enum imap_search_key_type type;
	const char *header;
	bool address;
} kinds[] = {
	{ IMAP_SEARCH_BODY, NULL, false },
	{ IMAP_SEARCH_TEXT, NULL, false },
	{ IMAP_SEARCH_HEADER, "Subject", false },
	{ IMAP_SEARCH_HEADER, "From", true },
	{ IMAP_SEARCH_HEADER, "To", true },
	{ IMAP_SEARCH_HEADER, "Cc", true },
	{ IMAP_SEARCH_HEADER, "Bcc", true },
	{ IMAP_SEARCH_HEADER, "X-Custom", false },
	{ IMAP_SEARCH_HEADER, "From", false },
};

/* A needle: a random slice of the decoded text of a random message, its
 * ASCII letters in random case (bytes, so UTF-8 may be cut: SEARCH
 * matches bytes), or a string found nowhere. */
static void
pick_needle(struct corpus *c, size_t want_len, struct strbuf *out)
{
	unsigned i = rnd() % CORPUS;
	struct mail_message *mm = mail_parse(c->msgs[i].data, c->msgs[i].len,
	    NULL);
	struct strbuf text = STRBUF_INIT;
	size_t hlen;
	const char *hdr = mail_search_message_header(c->msgs[i].data,
	    c->msgs[i].len, mm, &hlen);

	strbuf_reset(out);
	switch (rnd() % 4) {
	case 0:
		mail_search_header_text(hdr, hlen, false, &text);
		break;
	case 1:
		(void)mail_search_address_values(hdr, hlen,
		    rnd() % 2 ? "from" : "cc", false, &text);
		break;
	default:
		for (uint32_t p = 0; p < mm->nparts; p++)
			if (mail_search_part_in_bounds(&mm->parts[p],
			    c->msgs[i].len) &&
			    mail_search_part_is_text(&mm->parts[p]))
				mail_search_part_text(c->msgs[i].data,
				    c->msgs[i].len, &mm->parts[p], &text);
	}
	if (text.len < 4 || rnd() % 10 == 0) {
		if (want_len == MAIL_FTS_UNIT)
			strbuf_appendf(out, "%c%c%c", 'q', 'j' + rnd() % 3,
			    'x' + rnd() % 3);
		else
			strbuf_appendf(out, "nowhere%u", rnd());
	} else {
		size_t len = want_len > 0 ? want_len : 1 + rnd() % 14, off;

		if (len > text.len)
			len = text.len;
		off = rnd() % (text.len - len + 1);
		for (size_t k = 0; k < len; k++) {
			char ch = text.data[off + k];

			if (ch >= 'a' && ch <= 'z' && rnd() % 2)
				ch = (char)(ch - 32);
			strbuf_appendc(out, ch);
		}
	}
	strbuf_free(&text);
	mail_message_free(&mm);
}

/*
 * For n random needles (of want_len bytes; 0 random lengths) and every
 * key kind: each message the matcher finds is one the index keeps, and
 * whatever the index alone answers (imap_search_index_known) is the
 * matcher's answer. Returns how many (message, key) pairs the index
 * ruled out; counts the known answers in c.
 */
static unsigned
check_needles(struct corpus *c, unsigned n, size_t want_len)
{
	struct store_read *r;
	struct store_msg *msgs = NULL;
	size_t count = 0;
	struct store_uid_range all = { 1, UINT32_MAX };
	struct strbuf needle = STRBUF_INIT;
	unsigned pruned = 0;

	ck_assert_int_eq(store_read_begin(c->t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_list(r, c->user, c->mbox, &all, 1, &msgs,
	    &count, NULL), 0);
	for (unsigned q = 0; q < n; q++) {
		pick_needle(c, want_len, &needle);
		for (size_t k = 0; k < N_ELEMENTS(kinds); k++) {
			struct imap_search_key root, key;
			struct imap_search_program prog;
			struct imap_search_index *ix;

			memset(&root, 0, sizeof(root));
			memset(&key, 0, sizeof(key));
			memset(&prog, 0, sizeof(prog));
			root.type = IMAP_SEARCH_AND;
			root.first_child = &key;
			key.type = kinds[k].type;
			key.header = kinds[k].header;
			key.address = kinds[k].address;
			key.str = strbuf_str(&needle);
			key.str_len = needle.len;
			prog.root = &root;
			prog.needs_body = key.type != IMAP_SEARCH_HEADER;
			prog.needs_headers = !prog.needs_body;
			ix = imap_search_index_new(c->t.store, r, c->user,
			    &prog);
			for (size_t i = 0; i < count; i++) {
				struct imap_msgview v;
				int hit, known;
				bool may;

				memset(&v, 0, sizeof(v));
				v.user_id = c->user;
				v.mailbox_id = c->mbox;
				v.r = r;
				imap_msgview_set(&v, &msgs[i]);
				if (key.type == IMAP_SEARCH_HEADER && key.address)
					hit = imap_msgview_address_contains(&v,
					    key.header, key.str, key.str_len);
				else if (key.type == IMAP_SEARCH_HEADER)
					hit = imap_msgview_header_contains(&v,
					    key.header, key.str, key.str_len);
				else
					hit = imap_msgview_body_contains(&v,
					    key.type == IMAP_SEARCH_TEXT,
					    key.str, key.str_len);
				imap_msgview_clear(&v);
				ck_assert_int_ge(hit, 0);
				may = ix == NULL || imap_search_index_may_match(ix,
				    &prog, msgs[i].body_id);
				ck_assert_msg(may || !hit, "index lost uid %u "
				    "for kind %zu needle '%s'", msgs[i].uid, k,
				    key.str);
				if (!may)
					pruned++;
				known = imap_search_index_known(ix, key.str,
				    msgs[i].body_id);
				ck_assert_msg(known < 0 || known == hit,
				    "index says %d, matcher %d: uid %u kind "
				    "%zu needle '%s'", known, hit, msgs[i].uid,
				    k, key.str);
				if (msgs[i].uid == c->saturated_uid)
					ck_assert_int_eq(known, -1);
				if (key.type == IMAP_SEARCH_TEXT &&
				    imap_search_index_headers_lack(ix, key.str,
				    msgs[i].body_id)) {
					/* TEXT answered as BODY */
					imap_msgview_set(&v, &msgs[i]);
					ck_assert_msg(imap_msgview_body_contains(
					    &v, false, key.str, key.str_len) ==
					    hit, "headers hold '%s': uid %u",
					    key.str, msgs[i].uid);
					imap_msgview_clear(&v);
					c->headers_lack++;
				}
				if (known == 1)
					c->known_hit++;
				else if (known == 0)
					c->known_miss++;
			}
			imap_search_index_free(&ix);
		}
	}
	free(msgs);
	store_read_end(&r);
	strbuf_free(&needle);
	return pruned;
}

START_TEST(random_substrings_never_lost)
{
	struct corpus c;
	unsigned pruned;

	corpus_open(&c);
	/* most indexed at delivery, some delivered without terms (an older
	 * store), in batches of one */
	deliver_all(&c, true, 0, CORPUS - 20);
	deliver_all(&c, false, CORPUS - 20, CORPUS);
	tstore_check(&c.t);
	pruned = check_needles(&c, 80, 0);
	ck_assert_msg(pruned > 0, "the index ruled nothing out");
	ck_assert_uint_gt(c.headers_lack, 100);
	corpus_close(&c);
}
END_TEST

/* The matcher itself on one message, with the answers written out: the
 * index tests above compare it with the index, not with the truth. */
START_TEST(matcher_answers)
{
	static const struct {
		int kind;	/* 0 BODY, 1 TEXT, 2 HEADER Subject, 3 X-Custom */
		const char *needle;
		int want;
	} cases[] = {
		{ 2, "caf\xC3\xA9 meeting continued", 1 },	/* unfolded */
		{ 2, "CAF\xC3\x89 MEET", 1 },
		{ 2, "meeting\r\n", 0 },
		{ 2, "hello", 0 },	/* another field */
		{ 3, "HeLLo wORld", 1 },
		{ 3, "x-custom", 0 },	/* a name is not a value */
		{ 1, "x-custom", 1 },	/* but TEXT reads names */
		{ 1, "custom: hello", 0 },	/* never across name and value */
		{ 1, "tinued", 1 },
		{ 1, "BODYWORD", 1 },
		{ 1, "attached.txt", 1 },	/* a part's header */
		{ 0, "attached.txt", 0 },
		{ 0, "bodyword", 1 },
		{ 0, "caf\xC3\xA9", 0 },
		{ 0, "qp=", 0 },
		{ 0, "qp soft break", 1 },
		{ 0, "\xC3\xA9t\xC3\xA9", 1 },	/* QP-encoded UTF-8 */
		{ 0, "=c3", 0 },
	};
	struct corpus c;
	struct strbuf m = STRBUF_INIT;
	struct store_read *r;
	struct store_msg *msgs = NULL;
	size_t count = 0;
	struct store_uid_range all = { 1, UINT32_MAX };

	corpus_open(&c);
	strbuf_appends(&m, "Subject: =?utf-8?q?Caf=C3=A9?= Meeting\r\n "
	    "continued\r\nX-Custom: Hello World\r\nContent-Type: multipart/"
	    "mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
	    "\r\n\r\nA BodyWord, =C3=89T=C3=89 and a qp soft=\r\n break"
	    "\r\n--b\r\nContent-Type: text/plain; name=attached.txt\r\n"
	    "\r\nplain\r\n--b--\r\n");
	deliver_msg(&c, &m, false);
	ck_assert_int_eq(store_read_begin(c.t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_list(r, c.user, c.mbox, &all, 1, &msgs,
	    &count, NULL), 0);
	ck_assert_uint_eq(count, 1);
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct imap_msgview v;
		const char *n = cases[i].needle;
		int got;

		memset(&v, 0, sizeof(v));
		v.user_id = c.user;
		v.mailbox_id = c.mbox;
		v.r = r;
		imap_msgview_set(&v, &msgs[0]);
		if (cases[i].kind >= 2)
			got = imap_msgview_header_contains(&v, cases[i].kind ==
			    2 ? "Subject" : "X-Custom", n, strlen(n));
		else
			got = imap_msgview_body_contains(&v, cases[i].kind == 1,
			    n, strlen(n));
		imap_msgview_clear(&v);
		ck_assert_msg(got == cases[i].want, "case %zu '%s': %d", i, n,
		    got);
	}
	free(msgs);
	store_read_end(&r);
	strbuf_free(&m);
	corpus_close(&c);
}
END_TEST

/* Every segment merge, the dead marks of expunged bodies, a drop and a
 * reindex keep the index sound and the checker content. */
START_TEST(maintenance_keeps_the_index_sound)
{
	struct corpus c;
	struct store_fts_stats st;
	struct store_read *r;
	uint32_t *gone = NULL;
	size_t ngone = 0, indexed;
	struct store_uid_range ranges[] = { { 5, 60 }, { 100, 103 } };
	struct store_copy_result cr;
	bool done;
	uint32_t trash;
	const char *err = NULL;

	corpus_open(&c);
	/* 160 one-message segments: tiers fill and merge as they go */
	deliver_all(&c, true, 0, CORPUS);
	ck_assert_int_eq(store_read_begin(c.t.store, &r, NULL), 0);
	ck_assert_int_eq(store_fts_stat(r, c.user, &st, NULL), 0);
	store_read_end(&r);
	ck_assert_uint_eq(st.docs, CORPUS);
	ck_assert_uint_lt(st.segments, 40);
	tstore_check(&c.t);
	/* COPY shares the body and its postings; expunge of one copy
	 * keeps them, of both marks them dead */
	ck_assert_int_eq(store_mailbox_create(c.t.store, c.user, "Trash", 0,
	    &trash, &err), 0);
	ck_assert_int_eq(store_copy(c.t.store, c.user, c.mbox, trash,
	    ranges, 1, false, &cr, &err), 0);
	store_copy_result_free(&cr);
	ck_assert_int_eq(store_expunge(c.t.store, c.user, c.mbox, ranges, 2,
	    false, &gone, &ngone, &err), 0);
	ck_assert_uint_eq(ngone, 60);
	free(gone);
	tstore_check(&c.t);
	(void)check_needles(&c, 20, 0);
	(void)check_needles(&c, 20, MAIL_FTS_UNIT);
	ck_assert_int_eq(store_mailbox_delete(c.t.store, c.user, "Trash",
	    &err), 0);
	ck_assert_int_eq(store_read_begin(c.t.store, &r, NULL), 0);
	ck_assert_int_eq(store_fts_stat(r, c.user, &st, NULL), 0);
	store_read_end(&r);
	ck_assert_uint_gt(st.dead, 0);
	tstore_check(&c.t);
	/* more deliveries merge and drop dead bodies */
	deliver_all(&c, true, 0, 40);
	tstore_check(&c.t);
	/* a rebuild: dropped, then reindexed in small steps */
	ck_assert_int_eq(store_fts_drop(c.t.store, c.user, &err), 0);
	(void)check_needles(&c, 10, 0);
	do {
		ck_assert_int_eq(store_fts_reindex_step(c.t.store, c.user,
		    20000, &done, &indexed, &err), 0);
	} while (!done);
	ck_assert_int_eq(store_read_begin(c.t.store, &r, NULL), 0);
	ck_assert_int_eq(store_fts_stat(r, c.user, &st, NULL), 0);
	store_read_end(&r);
	ck_assert_uint_eq(st.docs - st.dead, CORPUS - 60 + 40);
	tstore_check(&c.t);
	ck_assert_uint_gt(check_needles(&c, 20, 0), 0);
	c.known_hit = c.known_miss = 0;
	(void)check_needles(&c, 20, MAIL_FTS_UNIT);
	ck_assert_uint_gt(c.known_hit, 0);
	corpus_close(&c);
}
END_TEST

/*
 * Needles of exactly one term (3 bytes: ASCII in random case, pieces of
 * UTF-8 characters, across two parts' or fields' texts, found nowhere):
 * the index answers BODY and TEXT hits and every key's misses without
 * the matcher, always as the matcher does; a saturated message and the
 * bodies delivered without terms are left to the matcher.
 */
START_TEST(one_term_needles_answered_exactly)
{
	struct corpus c;
	struct strbuf sat = STRBUF_INIT;

	corpus_open(&c);
	deliver_all(&c, true, 0, CORPUS - 10);
	deliver_all(&c, false, CORPUS - 10, CORPUS);
	/* saturated: more distinct terms than the limit, and common words
	   (its postings hold none of its terms) */
	strbuf_appends(&sat, "Subject: the meeting\r\nContent-Type: "
	    "text/plain; charset=utf-8\r\n\r\nthe meeting and the budget ");
	for (size_t i = 0; i < 200000; i++)
		utf8_put(&sat, 0x800 + rnd() % 0xD000);
	c.saturated_uid = deliver_msg(&c, &sat, true);
	tstore_check(&c.t);
	(void)check_needles(&c, 120, MAIL_FTS_UNIT);
	ck_assert_uint_gt(c.known_hit, 100);
	ck_assert_uint_gt(c.known_miss, 100);
	/* random lengths too, with the saturated message */
	(void)check_needles(&c, 40, 0);
	strbuf_free(&sat);
	corpus_close(&c);
}
END_TEST

/* The terms of a folded needle and of a text agree byte for byte. */
START_TEST(needle_terms)
{
	uint32_t out[16];
	size_t n = mail_fts_needle_terms("abcab", 5, MAIL_FTS_CLASS_BODY, out);

	ck_assert_uint_eq(n, 3);	/* abc bca cab */
	ck_assert_uint_eq(out[0], mail_fts_term(1, 'a', 'b', 'c'));
	ck_assert_uint_eq(out[1], mail_fts_term(1, 'b', 'c', 'a'));
	ck_assert_uint_eq(out[2], mail_fts_term(1, 'c', 'a', 'b'));
	ck_assert_uint_eq(mail_fts_needle_terms("ab", 2, 0, out), 0);
}
END_TEST

/* Binary data sent as text has too many terms: the message is indexed
 * as a candidate for every search, and the matcher decides. */
START_TEST(saturated_message_is_always_a_candidate)
{
	struct strbuf m = STRBUF_INIT;
	struct mail_message *mm;
	struct mail_fts_terms t = MAIL_FTS_TERMS_INIT;

	strbuf_appends(&m, "Subject: x\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\n\r\n");
	rng_state = 99;
	for (size_t i = 0; i < 200000; i++)	/* random BMP letters */
		utf8_put(&m, 0x800 + rnd() % 0xD000);
	mm = mail_parse(m.data, m.len, NULL);
	mail_fts_message_terms(m.data, m.len, mm, &t);
	ck_assert(t.saturated);
	ck_assert_uint_eq(t.count, 0);
	mail_fts_terms_free(&t);
	mail_message_free(&mm);
	strbuf_free(&m);
}
END_TEST

/* The body of message i of the posting test: trigrams in every message
 * (bitmaps), in every third (either, by segment size), in one (varints). */
static void
posting_msg(unsigned i, struct strbuf *m)
{
	strbuf_reset(m);
	strbuf_appendf(m, "Subject: n%u\r\nContent-Type: text/plain\r\n\r\n"
	    "every message says hello%s%s\r\n", i, i % 3 == 0 ? " qzx" : "",
	    i == 7 ? " vvw" : "");
}

/* Checks the candidates of folded needle s: exactly the messages (uid
 * i + 1 is message i) for which want(i) holds. */
static void
check_exact(struct tstore *t, uint32_t user, uint32_t mbox, const char *s,
    bool (*want)(unsigned i))
{
	struct store_read *r;
	struct store_msg *msgs = NULL;
	size_t count = 0;
	struct store_uid_range all = { 1, UINT32_MAX };
	struct store_fts_set set;

	ck_assert_int_eq(store_read_begin(t->store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_list(r, user, mbox, &all, 1, &msgs,
	    &count, NULL), 0);
	ck_assert_int_eq(store_fts_candidates(r, user, STORE_FTS_BODY, s,
	    strlen(s), &set, NULL), 0);
	for (size_t i = 0; i < count; i++)
		ck_assert_msg(store_fts_set_has(&set, msgs[i].body_id) ==
		    want(msgs[i].uid - 1), "needle %s uid %u", s, msgs[i].uid);
	store_fts_set_free(&set);
	free(msgs);
	store_read_end(&r);
}

static bool
want_all(unsigned i)
{
	(void)i;
	return true;
}

static bool
want_third(unsigned i)
{
	return i % 3 == 0;
}

static bool
want_seven(unsigned i)
{
	return i == 7;
}

static bool
want_none(unsigned i)
{
	(void)i;
	return false;
}

/* Posting lists as bitmaps (dense) and delta varints (sparse) give the
 * exact documents, in a worker-built batch segment of 200 messages and
 * after merges of such segments (which read and write both). */
START_TEST(segment_postings_dense_and_sparse)
{
	struct tstore t;
	uint32_t user, mbox;
	struct strbuf m[200];
	unsigned next = 0, steps = 0;

	tstore_open(&t, 0);
	user = tuser(&t, "alice");
	mbox = tmailbox(&t, user, "INBOX");
	memset(m, 0, sizeof(m));
	store_fts_defer_merges(t.store, true);
	for (unsigned b = 0; b < STORE_FTS_MERGE_FANIN + 1; b++) {
		size_t n = b == 0 ? 200 : 3;	/* then small batches */
		struct store_new_msg msgs[200];
		struct mail_fts_terms terms[200];
		struct store_fts_doc docs[200];
		const struct store_fts_doc *dp[200];
		struct strbuf blob[200], seg = STRBUF_INIT;
		uint32_t uids[200];
		const char *err = NULL;

		memset(msgs, 0, sizeof(msgs));
		memset(terms, 0, sizeof(terms));
		memset(blob, 0, sizeof(blob));
		for (size_t i = 0; i < n; i++) {
			struct mail_message *mm;

			posting_msg(next + (unsigned)i, &m[i]);
			mm = mail_parse(m[i].data, m[i].len, NULL);
			mail_serialize(mm, &blob[i]);
			mail_fts_message_terms(m[i].data, m[i].len, mm,
			    &terms[i]);
			mail_message_free(&mm);
			docs[i].terms = terms[i].terms;
			docs[i].count = terms[i].count;
			docs[i].saturated = terms[i].saturated;
			dp[i] = &docs[i];
			msgs[i].data = m[i].data;
			msgs[i].size = m[i].len;
			msgs[i].structure = blob[i].data;
			msgs[i].structure_size = blob[i].len;
			msgs[i].internaldate = 1700000000;
			msgs[i].fts = &docs[i];
		}
		store_fts_batch_build(dp, n, &seg);
		msgs[0].fts_batch = seg.data;
		msgs[0].fts_batch_size = seg.len;
		ck_assert_msg(store_deliver(t.store, user, mbox, msgs, n, uids,
		    NULL, &err) == 0, "%s", err);
		ck_assert_uint_eq(uids[0], next + 1);
		next += (unsigned)n;
		for (size_t i = 0; i < n; i++) {
			mail_fts_terms_free(&terms[i]);
			strbuf_free(&blob[i]);
		}
		strbuf_free(&seg);
		if (b == 0) {
			/* the one segment, before any merge */
			check_exact(&t, user, mbox, "every message", want_all);
			check_exact(&t, user, mbox, "qzx", want_third);
			check_exact(&t, user, mbox, "vvw", want_seven);
			check_exact(&t, user, mbox, "hello vvw",
			    want_seven);
			check_exact(&t, user, mbox, "zzzz", want_none);
		}
	}
	tstore_check(&t);
	while (store_fts_idle_step(t.store) > 0)
		steps++;
	ck_assert_uint_gt(steps, 0);		/* the small ones merged */
	check_exact(&t, user, mbox, "every message", want_all);
	check_exact(&t, user, mbox, "qzx", want_third);
	check_exact(&t, user, mbox, "vvw", want_seven);
	check_exact(&t, user, mbox, "zzzz", want_none);
	tstore_check(&t);
	for (unsigned i = 0; i < 200; i++)
		strbuf_free(&m[i]);
	store_fts_defer_merges(t.store, false);
	tstore_close(&t);
}
END_TEST

static uint64_t
segments_of(struct corpus *c)
{
	struct store_fts_stats st;
	struct store_read *r;

	ck_assert_int_eq(store_read_begin(c->t.store, &r, NULL), 0);
	ck_assert_int_eq(store_fts_stat(r, c->user, &st, NULL), 0);
	store_read_end(&r);
	return st.segments;
}

/* Merges deferred to idle: deliveries only add segments (at most
 * STORE_FTS_DEFER_SEGMENTS: past it a delivery merges at once), the
 * index stays sound meanwhile, and the idle steps merge them. */
START_TEST(deferred_merges_wait_for_idle)
{
	struct corpus c;
	unsigned steps = 0;

	corpus_open(&c);
	store_fts_defer_merges(c.t.store, true);
	deliver_all(&c, true, 0, 60);
	ck_assert_uint_eq(segments_of(&c), 60);	/* nothing merged yet */
	deliver_all(&c, true, 60, CORPUS);	/* 160 one-message segments */
	ck_assert_uint_le(segments_of(&c), STORE_FTS_DEFER_SEGMENTS);
	ck_assert_uint_ge(segments_of(&c), STORE_FTS_DEFER_SEGMENTS -
	    STORE_FTS_MERGE_FANIN);
	tstore_check(&c.t);
	(void)check_needles(&c, 20, 0);
	while (store_fts_idle_step(c.t.store) > 0)
		ck_assert_uint_lt(++steps, 100);
	ck_assert_uint_gt(steps, 1);
	ck_assert_uint_lt(segments_of(&c), 40);
	ck_assert_int_eq(store_fts_idle_step(c.t.store), 0);
	tstore_check(&c.t);
	ck_assert_uint_gt(check_needles(&c, 40, 0), 0);
	store_fts_defer_merges(c.t.store, false);
	corpus_close(&c);
}
END_TEST

/* The idle-merge notes are in memory: after a restart (store closed and
 * opened again, nothing delivered since) the first idle step finds the
 * users whose segments call for a merge from the store itself. */
START_TEST(deferred_merges_survive_a_restart)
{
	struct corpus c;
	unsigned steps = 0;
	size_t before;

	corpus_open(&c);
	(void)tuser(&c.t, "bob");	/* no segments: never noted */
	store_fts_defer_merges(c.t.store, true);
	deliver_all(&c, true, 0, 60);	/* 60 one-message segments */
	before = segments_of(&c);
	ck_assert_uint_eq(before, 60);
	tstore_reopen(&c.t);
	ck_assert_uint_eq(segments_of(&c), before);
	/* the notes went with the old store handle: the first idle step
	   finds the due merges in the store */
	store_fts_defer_merges(c.t.store, true);
	while (store_fts_idle_step(c.t.store) > 0)
		ck_assert_uint_lt(++steps, 100);
	ck_assert_uint_gt(steps, 0);
	ck_assert_uint_lt(segments_of(&c), before - STORE_FTS_MERGE_FANIN + 2);
	/* and nothing more is due: another restart notes no one */
	before = segments_of(&c);
	tstore_reopen(&c.t);
	store_fts_defer_merges(c.t.store, true);
	ck_assert_int_eq(store_fts_idle_step(c.t.store), 0);
	ck_assert_uint_eq(segments_of(&c), before);
	tstore_check(&c.t);
	ck_assert_uint_gt(check_needles(&c, 20, 0), 0);
	store_fts_defer_merges(c.t.store, false);
	corpus_close(&c);
}
END_TEST

struct wdeliver {
	struct corpus *c;
	unsigned from, to;
};

static int
wdeliver_apply(struct store *store, void *ctx, const char **error_r)
{
	struct wdeliver *d = ctx;

	(void)store;
	(void)error_r;
	deliver_all(d->c, true, d->from, d->to);
	return 0;
}

static void
notify_nothing(void *arg)
{
	(void)arg;
}

/* Under the writer thread, merges happen when its queue is empty. */
START_TEST(writer_merges_when_idle)
{
	struct corpus c;
	const char *err = NULL;
	unsigned waited = 0;

	corpus_open(&c);
	ck_assert_int_eq(store_writer_start(c.t.store, notify_nothing, NULL,
	    &err), 0);
	for (unsigned i = 0; i < CORPUS; i += 2) {
		struct wdeliver d = { &c, i, i + 2 };

		ck_assert_int_eq(store_write_sync(c.t.store, c.user, 0, 0,
		    wdeliver_apply, &d, &err), 0);
	}
	/* 160 one-message segments, merged down on idle: no time is
	 * asserted, the bound is only against a hang */
	while (segments_of(&c) >= 40 && waited++ < 6000)
		usleep(20000);
	ck_assert_uint_lt(segments_of(&c), 40);
	store_writer_stop(c.t.store);
	(void)store_writer_drain(c.t.store);
	tstore_check(&c.t);
	ck_assert_uint_gt(check_needles(&c, 40, 0), 0);
	corpus_close(&c);
}
END_TEST

/* The terms of a plain one-part message, computed the slow way: every
 * trigram of the folded header lines' names and values and of the body,
 * sorted and unique. */
static size_t
naive_terms(const char *subject, const char *body, uint32_t *out)
{
	const char *texts[] = { "subject", subject, "content-type",
	    "text/plain; charset=utf-8", body };
	size_t n = 0;

	for (size_t k = 0; k < N_ELEMENTS(texts); k++) {
		size_t len = strlen(texts[k]);

		for (size_t i = 0; i + 2 < len; i++)
			out[n++] = mail_fts_term(k == 4 ? MAIL_FTS_CLASS_BODY :
			    MAIL_FTS_CLASS_HEADER, (unsigned char)texts[k][i],
			    (unsigned char)texts[k][i + 1],
			    (unsigned char)texts[k][i + 2]);
	}
	return mail_fts_sort_unique(out, n);
}

static void
check_plain_terms(const char *subject, const char *body)
{
	struct strbuf m = STRBUF_INIT;
	struct mail_message *mm;
	struct mail_fts_terms t = MAIL_FTS_TERMS_INIT;
	uint32_t want[4096];
	size_t nwant;

	strbuf_appendf(&m, "Subject: %s\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\n\r\n%s", subject, body);
	mm = mail_parse(m.data, m.len, NULL);
	mail_fts_message_terms(m.data, m.len, mm, &t);
	nwant = naive_terms(subject, body, want);
	ck_assert(!t.saturated);
	ck_assert_uint_eq(t.count, nwant);
	for (size_t i = 0; i < nwant; i++)
		ck_assert_uint_eq(t.terms[i], want[i]);
	/* the same struct again: reset, then the same answer */
	mail_fts_message_terms(m.data, m.len, mm, &t);
	ck_assert_uint_eq(t.count, nwant);
	mail_fts_terms_free(&t);
	mail_message_free(&mm);
	strbuf_free(&m);
}

/* The term set is exact (no term lost, none repeated), also for the
 * thread's next message after one that shared its terms and after a
 * saturated one: the bits a message set are all cleared again. */
START_TEST(message_terms_are_exact_sets)
{
	struct strbuf m = STRBUF_INIT;
	struct mail_message *mm;
	struct mail_fts_terms t = MAIL_FTS_TERMS_INIT;

	check_plain_terms("hello world", "the cat sat on the mat, the cat");
	check_plain_terms("hello world", "the cat sat on the mat, the cat");
	check_plain_terms("aaaa", "aaaaaaa abab abab");
	strbuf_appends(&m, "Subject: hello world\r\nContent-Type: "
	    "text/plain; charset=utf-8\r\n\r\nthe cat sat ");
	rng_state = 7;
	for (size_t i = 0; i < 200000; i++)
		utf8_put(&m, 0x800 + rnd() % 0xD000);
	mm = mail_parse(m.data, m.len, NULL);
	mail_fts_message_terms(m.data, m.len, mm, &t);
	ck_assert(t.saturated);
	mail_fts_terms_free(&t);
	mail_message_free(&mm);
	strbuf_free(&m);
	check_plain_terms("hello world", "the cat sat on the mat, the cat");
}
END_TEST

static Suite *
searchindex_suite(void)
{
	Suite *s = suite_create("imap_searchindex");
	TCase *tc = tcase_create("index");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, needle_terms);
	tcase_add_test(tc, matcher_answers);
	tcase_add_test(tc, saturated_message_is_always_a_candidate);
	tcase_add_test(tc, message_terms_are_exact_sets);
	tcase_add_test(tc, deferred_merges_wait_for_idle);
	tcase_add_test(tc, deferred_merges_survive_a_restart);
	tcase_add_test(tc, segment_postings_dense_and_sparse);
	tcase_add_test(tc, writer_merges_when_idle);
	tcase_add_test(tc, random_substrings_never_lost);
	tcase_add_test(tc, maintenance_keeps_the_index_sound);
	tcase_add_test(tc, one_term_needles_answered_exactly);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(searchindex_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
