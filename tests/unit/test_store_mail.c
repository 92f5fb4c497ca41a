/*
 * Check suite for the message parser on the real-world-shaped fixtures in
 * tests/data/mail/: ENVELOPE, BODY and BODYSTRUCTURE written out by hand
 * from RFC 3501 (7.4.2 and the formal syntax), RFC 2045/2046 (defaults,
 * boundaries: the CRLF before a boundary belongs to the boundary) and
 * RFC 2231; every split point; the blob round trip; section ranges; and
 * the SEARCH decoders on the same messages.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/mail-header.h"
#include "store/mail-parse.h"
#include "store/mail-render.h"
#include "store/mail-search.h"
#include "store/mail-serialize.h"
#include "strbuf.h"
#include "xmalloc.h"

static char *
read_fixture(const char *name, size_t *len_r)
{
	char path[512];
	struct strbuf sb = STRBUF_INIT;
	char buf[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "tests/data/mail/%s", name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s (run from the source root)",
	    path);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_append(&sb, buf, n);
	fclose(f);
	return strbuf_detach(&sb, len_r);
}

struct fixture {
	const char *file;
	const char *envelope;
	const char *body;
	const char *bodystructure;
};

#define ENV_ALICE "((\"Alice Example\" NIL \"alice\" \"example.org\"))"

static const struct fixture fixtures[] = {
	/* Every envelope field; Subject folded (unfolded by removing the
	 * CRLF only); Sender and Reply-To present so not defaulted. */
	{ "simple.eml",
	  "(\"Mon, 23 Nov 2026 09:14:55 +0100\" \"Lunch on Thursday?\" "
	  ENV_ALICE " ((NIL NIL \"list-bounces\" \"lists.example.org\")) "
	  "((\"Alice (work)\" NIL \"alice.work\" \"example.org\")) "
	  "((\"Bob\" NIL \"bob\" \"example.net\")"
	  "(NIL NIL \"carol\" \"example.net\")) "
	  "((\"Dave\" NIL \"dave\" \"example.com\")) "
	  "((NIL NIL \"eve\" \"example.com\")) \"<prev-1@example.net>\" "
	  "\"<20261123091455.1234@example.org>\")",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\" \"format\" "
	  "\"flowed\") NIL NIL \"7bit\" 53 6)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\" \"format\" "
	  "\"flowed\") NIL NIL \"7bit\" 53 6 NIL NIL NIL NIL)" },
	/* RFC 2231 continuations joined, kept in extended form; every
	 * extension field of a basic part. */
	{ "mixed-2231.eml",
	  "(\"Tue, 3 Nov 2026 14:00:00 +0000\" "
	  "\"=?UTF-8?B?UmVjaG51bmcgZsO8ciBOb3ZlbWJlcg==?=\" "
	  "((\"=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=\" NIL \"joerg\" "
	  "\"example.de\")) "
	  "((\"=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=\" NIL \"joerg\" "
	  "\"example.de\")) "
	  "((\"=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=\" NIL \"joerg\" "
	  "\"example.de\")) "
	  "((NIL NIL \"anna\" \"example.at\")) NIL NIL NIL "
	  "\"<inv-2026-11@example.de>\")",
	  "((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL "
	  "\"quoted-printable\" 37 0)(\"application\" \"pdf\" (\"name*\" "
	  "\"UTF-8''Rechnung%20f%C3%BCr%20November.pdf\") "
	  "\"<pdf1@example.de>\" \"Rechnung\" \"base64\" 16) \"mixed\")",
	  "((\"text\" \"plain\" (\"charset\" \"UTF-8\") NIL NIL "
	  "\"quoted-printable\" 37 0 NIL NIL NIL NIL)(\"application\" \"pdf\" "
	  "(\"name*\" \"UTF-8''Rechnung%20f%C3%BCr%20November.pdf\") "
	  "\"<pdf1@example.de>\" \"Rechnung\" \"base64\" 16 "
	  "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename*\" "
	  "\"UTF-8''Rechnung%20f%C3%BCr%20November.pdf\" \"size\" \"12\")) "
	  "(\"de\" \"en\") \"http://example.de/rechnung.pdf\") \"mixed\" "
	  "(\"boundary\" \"=_mixed_01\") NIL NIL NIL)" },
	/* A boundary that starts with "--"; qp and base64 parts. */
	{ "alternative.eml",
	  "(\"Wed, 04 Nov 2026 08:30:00 -0500\" "
	  "\"=?utf-8?B?8J+TsCBXZWVrbHkgbmV3cw==?= "
	  "=?utf-8?Q?_=E2=80=94_issue_7?=\" "
	  "((\"Newsletter\" NIL \"news\" \"example.com\")) "
	  "((\"Newsletter\" NIL \"news\" \"example.com\")) "
	  "((\"Newsletter\" NIL \"news\" \"example.com\")) "
	  "((NIL NIL \"reader\" \"example.net\")) NIL NIL NIL "
	  "\"<news-7@example.com>\")",
	  "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	  "\"quoted-printable\" 40 1)(\"text\" \"html\" (\"charset\" "
	  "\"utf-8\") NIL NIL \"base64\" 24 0) \"alternative\")",
	  "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
	  "\"quoted-printable\" 40 1 NIL NIL NIL NIL)(\"text\" \"html\" "
	  "(\"charset\" \"utf-8\") NIL NIL \"base64\" 24 0 NIL NIL NIL NIL) "
	  "\"alternative\" (\"boundary\" \"----=_Part_1_2\") NIL NIL NIL)" },
	/* 8-bit display names go as literals; an unquoted boundary;
	 * disposition without parameters. */
	{ "related-latin1.eml",
	  "(\"5 Nov 2026 12:00 +0100\" \"=?ISO-8859-1?Q?Caf=E9_cr=E8me?=\" "
	  "(({12}\r\nRen\xe9" "e Dupont NIL \"renee\" \"example.fr\")) "
	  "(({12}\r\nRen\xe9" "e Dupont NIL \"renee\" \"example.fr\")) "
	  "(({12}\r\nRen\xe9" "e Dupont NIL \"renee\" \"example.fr\")) "
	  "(({8}\r\nFran\xe7" "ois NIL \"francois\" \"example.fr\")) "
	  "NIL NIL NIL NIL)",
	  "((\"text\" \"html\" (\"charset\" \"iso-8859-1\") NIL NIL \"8bit\" "
	  "34 0)(\"image\" \"png\" NIL \"<logo@x>\" NIL \"base64\" 12) "
	  "\"related\")",
	  "((\"text\" \"html\" (\"charset\" \"iso-8859-1\") NIL NIL \"8bit\" "
	  "34 0 NIL NIL NIL NIL)(\"image\" \"png\" NIL \"<logo@x>\" NIL "
	  "\"base64\" 12 NIL (\"inline\" NIL) NIL NIL) \"related\" "
	  "(\"type\" \"text/html\" \"boundary\" \"rel\") NIL NIL NIL)" },
	{ "signed-1252.eml",
	  "(\"Thu, 05 Nov 26 16:45:10 EST\" "
	  "\"=?windows-1252?Q?Your_=80_statement_=96_November?=\" "
	  "((\"Bank\" NIL \"noreply\" \"bank.example\")) "
	  "((\"Bank\" NIL \"noreply\" \"bank.example\")) "
	  "((\"Bank\" NIL \"noreply\" \"bank.example\")) "
	  "((NIL NIL \"you\" \"example.net\")) NIL NIL NIL NIL)",
	  "((\"text\" \"plain\" (\"charset\" \"windows-1252\") NIL NIL "
	  "\"quoted-printable\" 16 0)(\"application\" \"pgp-signature\" "
	  "(\"name\" \"signature.asc\") NIL \"OpenPGP digital signature\" "
	  "\"7bit\" 76) \"signed\")",
	  "((\"text\" \"plain\" (\"charset\" \"windows-1252\") NIL NIL "
	  "\"quoted-printable\" 16 0 NIL NIL NIL NIL)(\"application\" "
	  "\"pgp-signature\" (\"name\" \"signature.asc\") NIL "
	  "\"OpenPGP digital signature\" \"7bit\" 76 NIL (\"attachment\" "
	  "(\"filename\" \"signature.asc\")) NIL NIL) \"signed\" (\"micalg\" "
	  "\"pgp-sha256\" \"protocol\" \"application/pgp-signature\" "
	  "\"boundary\" \"sig\") NIL NIL NIL)" },
	/* message/rfc822: envelope, inner body and the part's own lines. */
	{ "nested-rfc822-2022jp.eml",
	  "(\"Fri, 6 Nov 2026 10:00:00 +0900\" "
	  "\"=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\" "
	  "((NIL NIL \"forwarder\" \"example.jp\")) "
	  "((NIL NIL \"forwarder\" \"example.jp\")) "
	  "((NIL NIL \"forwarder\" \"example.jp\")) "
	  "((NIL NIL \"boss\" \"example.jp\")) NIL NIL NIL "
	  "\"<fwd-1@example.jp>\")",
	  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "26 0)(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 327 "
	  "(\"Thu, 5 Nov 2026 09:00:00 +0900\" \"inner\" "
	  "((\"Original\" NIL \"orig\" \"example.jp\")) "
	  "((\"Original\" NIL \"orig\" \"example.jp\")) "
	  "((\"Original\" NIL \"orig\" \"example.jp\")) "
	  "((NIL NIL \"forwarder\" \"example.jp\")) NIL NIL NIL "
	  "\"<orig-1@example.jp>\") ((\"text\" \"plain\" (\"charset\" "
	  "\"us-ascii\") NIL NIL \"7bit\" 5 0)(\"text\" \"html\" (\"charset\" "
	  "\"us-ascii\") NIL NIL \"7bit\" 11 0) \"alternative\") "
	  "17) \"mixed\")",
	  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "26 0 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL \"forwarded\" "
	  "\"7bit\" 327 (\"Thu, 5 Nov 2026 09:00:00 +0900\" \"inner\" "
	  "((\"Original\" NIL \"orig\" \"example.jp\")) "
	  "((\"Original\" NIL \"orig\" \"example.jp\")) "
	  "((\"Original\" NIL \"orig\" \"example.jp\")) "
	  "((NIL NIL \"forwarder\" \"example.jp\")) NIL NIL NIL "
	  "\"<orig-1@example.jp>\") ((\"text\" \"plain\" (\"charset\" "
	  "\"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)(\"text\" "
	  "\"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 "
	  "NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL NIL "
	  "NIL) 17 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"outer\") NIL "
	  "NIL NIL)" },
	/* Groups (RFC 3501: start (NIL NIL name NIL), end (NIL NIL NIL
	 * NIL)), comment as name, source route, missing domain, "<>",
	 * quoted local part, garbage; empty Subject/In-Reply-To are "". */
	{ "groups.eml",
	  "(\"Sat, 7 Nov 2026 23:59:60 -0000\" \"\" "
	  "((\"Real Name\" NIL \"user\" \"example.com\")) "
	  "((NIL \"@relay1.example,@relay2.example\" \"owner\" "
	  "\"example.org\")) "
	  "((\"Real Name\" NIL \"user\" \"example.com\")) "
	  "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
	  "((NIL NIL \"Team\" NIL)(NIL NIL \"ann\" \"example.com\")"
	  "(\"Bob \\\"B\\\" Jr\" NIL \"bob\" \"example.com\")(NIL NIL NIL NIL)"
	  "(NIL NIL \"nodomain\" \"MISSING_DOMAIN\")"
	  "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) "
	  "((NIL NIL \"john doe\" \"example.com\")"
	  "(\"garbage\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) \"\" NIL)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "18 1)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "18 1 NIL NIL NIL NIL)" },
	/* No Date/From/Subject: NIL, and Sender/Reply-To stay NIL. */
	{ "missing-fields.eml",
	  "(NIL NIL NIL NIL NIL ((NIL NIL \"someone\" \"example.net\")) "
	  "NIL NIL NIL NIL)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "37 1)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "37 1 NIL NIL NIL NIL)" },
	/* Bare LF: the LF before a boundary belongs to it. A Content-Type
	 * without charset gets no default parameter. */
	{ "bare-lf.eml",
	  "(NIL \"bare LF\" ((NIL NIL \"lf\" \"example.org\")) "
	  "((NIL NIL \"lf\" \"example.org\")) "
	  "((NIL NIL \"lf\" \"example.org\")) NIL NIL NIL NIL NIL)",
	  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "18 2)(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" "
	  "6 0) \"mixed\")",
	  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "18 2 NIL NIL NIL NIL)"
	  "(\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 6 0 "
	  "NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)" },
	/* A header that is never ended: empty body. */
	{ "header-only.eml",
	  "(NIL \"no body at all\" ((NIL NIL \"nobody\" \"example.org\")) "
	  "((NIL NIL \"nobody\" \"example.org\")) "
	  "((NIL NIL \"nobody\" \"example.org\")) NIL NIL NIL NIL NIL)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "0 0)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "0 0 NIL NIL NIL NIL)" },
	{ "empty-body.eml",
	  "(NIL \"empty body\" ((NIL NIL \"nobody\" \"example.org\")) "
	  "((NIL NIL \"nobody\" \"example.org\")) "
	  "((NIL NIL \"nobody\" \"example.org\")) NIL NIL NIL NIL NIL)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "0 0)",
	  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" "
	  "0 0 NIL NIL NIL NIL)" },
	/* Broken Content-Type (defaults), boundary-like lines that are not
	 * boundaries, a part with no header, a nested multipart never
	 * closed (the outer boundary closes it), a multipart without a
	 * boundary parameter (a leaf, shown as application/octet-stream),
	 * and no final boundary at all. */
	{ "broken-mime.eml",
	  "(NIL \"broken mime\" ((NIL NIL \"broken\" \"example.org\")) "
	  "((NIL NIL \"broken\" \"example.org\")) "
	  "((NIL NIL \"broken\" \"example.org\")) NIL NIL NIL NIL NIL)",
	  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"8bit\" "
	  "105 2)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
	  "\"7bit\" 23 0)((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL "
	  "NIL \"7bit\" 12 0) "
	  "\"alternative\")(\"application\" \"octet-stream\" NIL NIL NIL "
	  "\"7bit\" 30) \"mixed\")",
	  "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"8bit\" "
	  "105 2 NIL NIL NIL NIL)(\"text\" \"plain\" (\"charset\" "
	  "\"us-ascii\") NIL NIL \"7bit\" 23 0 NIL NIL NIL NIL)((\"text\" "
	  "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 0 NIL NIL "
	  "NIL NIL) "
	  "\"alternative\" (\"boundary\" \"b2\") NIL NIL NIL)(\"application\" "
	  "\"octet-stream\" NIL NIL NIL \"7bit\" 30 NIL NIL NIL NIL) \"mixed\" "
	  "(\"boundary\" \"b\") NIL NIL NIL)" },
	/* multipart/digest: parts default to message/rfc822 (RFC 2046
	 * 5.1.5), and an inner message defaults to text/plain again. */
	{ "digest.eml",
	  "(NIL \"digest\" ((NIL NIL \"digest\" \"example.org\")) "
	  "((NIL NIL \"digest\" \"example.org\")) "
	  "((NIL NIL \"digest\" \"example.org\")) NIL NIL NIL NIL NIL)",
	  "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 46 (NIL \"first\" "
	  "((NIL NIL \"one\" \"example.org\")) ((NIL NIL \"one\" "
	  "\"example.org\")) ((NIL NIL \"one\" \"example.org\")) NIL NIL NIL "
	  "NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
	  "\"7bit\" 5 0) 3)(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL "
	  "NIL \"7bit\" 13 0) "
	  "\"digest\")",
	  "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 46 (NIL \"first\" "
	  "((NIL NIL \"one\" \"example.org\")) ((NIL NIL \"one\" "
	  "\"example.org\")) ((NIL NIL \"one\" \"example.org\")) NIL NIL NIL "
	  "NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
	  "\"7bit\" 5 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)(\"text\" "
	  "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 13 0 NIL "
	  "NIL NIL NIL) \"digest\" "
	  "(\"boundary\" \"d\") NIL NIL NIL)" },
};

static void
check_render(const struct mail_message *msg, const struct fixture *fx)
{
	struct strbuf sb = STRBUF_INIT;

	mail_render_message_envelope(&sb, msg);
	ck_assert_msg(strcmp(sb.data, fx->envelope) == 0,
	    "%s ENVELOPE\n got %s\nwant %s", fx->file, sb.data, fx->envelope);
	strbuf_reset(&sb);
	mail_render_bodystructure(&sb, msg, false);
	ck_assert_msg(strcmp(sb.data, fx->body) == 0,
	    "%s BODY\n got %s\nwant %s", fx->file, sb.data, fx->body);
	strbuf_reset(&sb);
	mail_render_bodystructure(&sb, msg, true);
	ck_assert_msg(strcmp(sb.data, fx->bodystructure) == 0,
	    "%s BODYSTRUCTURE\n got %s\nwant %s", fx->file, sb.data,
	    fx->bodystructure);
	strbuf_free(&sb);
}

START_TEST(fixture_renders)
{
	const struct fixture *fx = &fixtures[_i];
	size_t len;
	char *data = read_fixture(fx->file, &len);
	struct mail_message *msg = mail_parse(data, len, NULL);

	ck_assert_uint_eq(msg->size, len);
	ck_assert_uint_eq(msg->flags & MAIL_MESSAGE_TRUNCATED, 0);
	check_render(msg, fx);
	mail_message_free(&msg);
	free(data);
}
END_TEST

static void
blob_of(const char *data, size_t len, const size_t *cuts, size_t ncuts,
    struct strbuf *blob)
{
	struct mail_parser *mp = mail_parser_new(NULL);
	struct mail_message *msg;
	size_t prev = 0;

	for (size_t i = 0; i < ncuts; i++) {
		mail_parser_feed(mp, data + prev, cuts[i] - prev);
		prev = cuts[i];
	}
	mail_parser_feed(mp, data + prev, len - prev);
	msg = mail_parser_finish(&mp);
	ck_assert_ptr_null(mp);
	mail_serialize(msg, blob);
	mail_message_free(&msg);
}

/* Feeding in two pieces at every split point, in three pieces around
 * every point, and one byte at a time gives the same structure. */
START_TEST(fixture_every_split_point)
{
	const struct fixture *fx = &fixtures[_i];
	size_t len;
	char *data = read_fixture(fx->file, &len);
	struct strbuf whole = STRBUF_INIT, part = STRBUF_INIT;
	struct mail_parser *mp;
	struct mail_message *msg;

	blob_of(data, len, NULL, 0, &whole);
	for (size_t k = 0; k <= len; k++) {
		size_t cuts[2] = { k, k + 1 < len ? k + 1 : len };

		strbuf_reset(&part);
		blob_of(data, len, cuts, 1, &part);
		ck_assert_msg(part.len == whole.len &&
		    memcmp(part.data, whole.data, whole.len) == 0,
		    "%s: split at %zu differs", fx->file, k);
		strbuf_reset(&part);
		blob_of(data, len, cuts, 2, &part);
		ck_assert_msg(part.len == whole.len &&
		    memcmp(part.data, whole.data, whole.len) == 0,
		    "%s: splits at %zu,%zu differ", fx->file, cuts[0], cuts[1]);
	}
	mp = mail_parser_new(NULL);
	for (size_t k = 0; k < len; k++)
		mail_parser_feed(mp, data + k, 1);
	msg = mail_parser_finish(&mp);
	strbuf_reset(&part);
	mail_serialize(msg, &part);
	ck_assert(part.len == whole.len &&
	    memcmp(part.data, whole.data, whole.len) == 0);
	check_render(msg, fx);
	mail_message_free(&msg);
	strbuf_free(&whole);
	strbuf_free(&part);
	free(data);
}
END_TEST

/* What the IMAP server reads back renders the same, byte for byte. */
START_TEST(fixture_blob_round_trip)
{
	const struct fixture *fx = &fixtures[_i];
	size_t len;
	char *data = read_fixture(fx->file, &len);
	struct mail_message *msg = mail_parse(data, len, NULL), *back;
	struct strbuf blob = STRBUF_INIT, again = STRBUF_INIT;
	const char *error = NULL;

	mail_serialize(msg, &blob);
	ck_assert_int_eq(mail_deserialize(blob.data, blob.len, &back, &error),
	    0);
	check_render(back, fx);
	mail_serialize(back, &again);
	ck_assert(again.len == blob.len &&
	    memcmp(again.data, blob.data, blob.len) == 0);
	ck_assert_uint_eq(back->nparts, msg->nparts);
	for (uint32_t i = 0; i < msg->nparts; i++) {
		ck_assert_uint_eq(back->parts[i].body_off,
		    msg->parts[i].body_off);
		ck_assert_uint_eq(back->parts[i].first_child,
		    msg->parts[i].first_child);
		ck_assert_uint_eq(back->parts[i].next_sibling,
		    msg->parts[i].next_sibling);
		ck_assert_uint_eq(back->parts[i].depth, msg->parts[i].depth);
	}
	mail_message_free(&back);
	mail_message_free(&msg);
	strbuf_free(&blob);
	strbuf_free(&again);
	free(data);
}
END_TEST

/* --- sections ---------------------------------------------------------- */

static char *
section(const char *data, const struct mail_message *msg, const char *path,
    enum mail_section_kind kind)
{
	uint32_t p[MAIL_SECTION_PATH_MAX];
	size_t n = 0;
	uint64_t off, len;
	const char *error;

	if (*path != '\0')
		ck_assert_int_eq(mail_section_path_parse(path, strlen(path), p,
		    MAIL_SECTION_PATH_MAX, &n, &error), 0);
	if (mail_section_range(msg, p, n, kind, &off, &len, &error) < 0)
		return NULL;
	return xstrndup(data + off, len);
}

#define CK_SECTION(path, kind, want) do { \
	char *got_ = section(data, msg, path, kind); \
	ck_assert_msg(got_ != NULL, "section %s missing", path); \
	ck_assert_str_eq(got_, want); \
	free(got_); \
} while (0)

START_TEST(sections_nested)
{
	size_t len;
	char *data = read_fixture("nested-rfc822-2022jp.eml", &len);
	struct mail_message *msg = mail_parse(data, len, NULL);
	char *s;

	CK_SECTION("1", MAIL_SECTION_PART, "See the forwarded message.");
	CK_SECTION("1", MAIL_SECTION_MIME,
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	CK_SECTION("2", MAIL_SECTION_MIME, "Content-Type: message/rfc822\r\n"
	    "Content-Description: forwarded\r\n\r\n");
	CK_SECTION("2.1", MAIL_SECTION_PART, "plain");
	CK_SECTION("2.2", MAIL_SECTION_PART, "<p>html</p>");
	CK_SECTION("2.2", MAIL_SECTION_MIME, "Content-Type: text/html\r\n\r\n");
	s = section(data, msg, "2", MAIL_SECTION_HEADER);
	ck_assert(strncmp(s, "From: Original <orig@example.jp>\r\n", 34) == 0);
	ck_assert(strcmp(s + strlen(s) - 5, "\"\r\n\r\n") == 0);
	free(s);
	s = section(data, msg, "2", MAIL_SECTION_TEXT);
	ck_assert(strncmp(s, "--inner\r\n", 9) == 0);
	ck_assert(strcmp(s + strlen(s) - 11, "--inner--\r\n") == 0);
	free(s);
	s = section(data, msg, "2", MAIL_SECTION_PART);
	ck_assert(strncmp(s, "From: Original", 14) == 0);
	ck_assert_uint_eq(strlen(s), 327);
	free(s);
	s = section(data, msg, "", MAIL_SECTION_HEADER);
	ck_assert_uint_eq(strlen(s), 242);
	ck_assert(strncmp(s, "From: forwarder@example.jp\r\n", 28) == 0);
	free(s);
	s = section(data, msg, "", MAIL_SECTION_TEXT);
	ck_assert(strncmp(s, "--outer\r\n", 9) == 0);
	ck_assert_uint_eq(strlen(s) + 242, len);
	free(s);
	s = section(data, msg, "", MAIL_SECTION_PART);
	ck_assert_uint_eq(strlen(s), len);
	free(s);
	/* Nonexistent sections. */
	ck_assert_ptr_null(section(data, msg, "3", MAIL_SECTION_PART));
	ck_assert_ptr_null(section(data, msg, "1.1", MAIL_SECTION_PART));
	ck_assert_ptr_null(section(data, msg, "2.3", MAIL_SECTION_PART));
	ck_assert_ptr_null(section(data, msg, "1", MAIL_SECTION_HEADER));
	ck_assert_ptr_null(section(data, msg, "", MAIL_SECTION_MIME));
	mail_message_free(&msg);
	free(data);
}
END_TEST

START_TEST(sections_single_part)
{
	size_t len;
	char *data = read_fixture("simple.eml", &len);
	struct mail_message *msg = mail_parse(data, len, NULL);
	char *s;
	uint64_t off, plen;

	/* A non-multipart message has a part 1: its body (RFC 3501). */
	s = section(data, msg, "1", MAIL_SECTION_PART);
	ck_assert(strncmp(s, "Hi Bob,\r\n", 9) == 0);
	ck_assert_uint_eq(strlen(s), 53);
	free(s);
	ck_assert_ptr_null(section(data, msg, "2", MAIL_SECTION_PART));
	ck_assert_ptr_null(section(data, msg, "1.1", MAIL_SECTION_PART));
	/* Partial fetch clamps. */
	mail_range_partial(100, 53, 4, 10, &off, &plen);
	ck_assert_uint_eq(off, 104);
	ck_assert_uint_eq(plen, 10);
	mail_range_partial(100, 53, 50, 10, &off, &plen);
	ck_assert_uint_eq(plen, 3);
	mail_range_partial(100, 53, 4294967295u, 4294967295u, &off, &plen);
	ck_assert_uint_eq(plen, 0);
	mail_message_free(&msg);
	free(data);
}
END_TEST

START_TEST(section_path_syntax)
{
	static const char *const bad[] = {
		"0", "1.", ".1", "1..2", "a", "1.a", "4294967296", "-1", "1 2",
	};
	uint32_t p[4];
	size_t n;
	const char *error;

	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		ck_assert_msg(mail_section_path_parse(bad[i], strlen(bad[i]), p,
		    4, &n, &error) < 0, "%s accepted", bad[i]);
	ck_assert_int_lt(mail_section_path_parse("1.2.3.4.5", 9, p, 4, &n,
	    &error), 0);
	ck_assert_int_eq(mail_section_path_parse("2.10.4294967295", 15, p, 4,
	    &n, &error), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(p[1], 10);
	ck_assert_uint_eq(p[2], 4294967295u);
}
END_TEST

START_TEST(header_fields_filter)
{
	size_t len;
	char *data = read_fixture("simple.eml", &len);
	struct mail_message *msg = mail_parse(data, len, NULL);
	const char *names[] = { "subject", "FROM", "x-none" };
	struct strbuf sb = STRBUF_INIT;
	const char *hdr = data + msg->parts[0].hdr_off;

	mail_header_filter(hdr, msg->parts[0].hdr_len, names, 3, false, &sb);
	ck_assert_str_eq(sb.data, "From: Alice Example <alice@example.org>\r\n"
	    "Subject: Lunch on\r\n Thursday?\r\n\r\n");
	strbuf_reset(&sb);
	mail_header_filter(hdr, msg->parts[0].hdr_len, names, 3, true, &sb);
	ck_assert(strncmp(sb.data, "Return-Path: <alice@example.org>\r\n"
	    "Received: from mx.example.org", 63) == 0);
	ck_assert_ptr_null(strstr(sb.data, "Subject:"));
	ck_assert_ptr_null(strstr(sb.data, "\nFrom:"));
	ck_assert_ptr_nonnull(strstr(sb.data, "\r\nTo: Bob"));
	ck_assert(strcmp(sb.data + sb.len - 10, "flowed\r\n\r\n") == 0);
	/* No fields at all: just the empty line. */
	strbuf_reset(&sb);
	mail_header_filter(hdr, msg->parts[0].hdr_len, names + 2, 1, false,
	    &sb);
	ck_assert_str_eq(sb.data, "\r\n");
	strbuf_free(&sb);
	mail_message_free(&msg);
	free(data);
}
END_TEST

START_TEST(internaldate_sources)
{
	size_t len;
	char *data = read_fixture("simple.eml", &len);
	struct mail_message *msg = mail_parse(data, len, NULL);
	int tz;
	int64_t t;
	int32_t tz32;

	/* Topmost Received: Mon, 23 Nov 2026 09:15:02 +0100. */
	ck_assert_int_eq(mail_message_internaldate(msg, 7, &tz), 1795421702);
	ck_assert_int_eq(tz, 60);
	ck_assert(mail_search_sent_date(msg, &t, &tz32));
	ck_assert_int_eq(t, 1795421695);
	mail_message_free(&msg);
	free(data);

	/* No Received: the Date (EST is -0500, two-digit year 26). */
	data = read_fixture("signed-1252.eml", &len);
	msg = mail_parse(data, len, NULL);
	ck_assert_int_eq(mail_message_internaldate(msg, 7, &tz), 1793915110);
	ck_assert_int_eq(tz, -300);
	mail_message_free(&msg);
	free(data);

	/* Neither: the caller's arrival time. */
	data = read_fixture("missing-fields.eml", &len);
	msg = mail_parse(data, len, NULL);
	ck_assert_int_eq(mail_message_internaldate(msg, 1234567, &tz),
	    1234567);
	ck_assert(!mail_search_sent_date(msg, &t, &tz32));
	mail_message_free(&msg);
	free(data);
}
END_TEST

/* --- SEARCH on the fixtures ------------------------------------------- */

struct collected {
	struct strbuf text;
	unsigned int parts;
};

static void
collect_text(void *ctx, uint32_t part, const char *utf8, size_t len)
{
	struct collected *c = ctx;

	strbuf_appendf(&c->text, "[%u]", part);
	strbuf_append(&c->text, utf8, len);
	c->parts++;
}

static void
check_subject(const char *file, const char *want, bool fold)
{
	size_t len, hlen;
	char *data = read_fixture(file, &len);
	struct mail_message *msg = mail_parse(data, len, NULL);
	const char *hdr = mail_search_message_header(data, len, msg, &hlen);
	struct strbuf sb = STRBUF_INIT;

	ck_assert_ptr_nonnull(hdr);
	ck_assert_uint_eq(mail_search_header_values(hdr, hlen, "subject", fold,
	    &sb), 1);
	ck_assert_msg(strcmp(sb.data, want) == 0, "%s: got '%s' want '%s'",
	    file, sb.data, want);
	strbuf_free(&sb);
	mail_message_free(&msg);
	free(data);
}

START_TEST(search_decoded_subjects)
{
	check_subject("alternative.eml",
	    "\xF0\x9F\x93\xB0 Weekly news \xE2\x80\x94 issue 7\n", false);
	check_subject("mixed-2231.eml", "Rechnung f\xC3\xBCr November\n", false);
	check_subject("mixed-2231.eml", "rechnung f\xC3\xBCr november\n", true);
	check_subject("related-latin1.eml", "Caf\xC3\xA9 cr\xC3\xA8me\n", false);
	check_subject("related-latin1.eml", "caf\xC3\xA9 cr\xC3\xA8me\n", true);
	check_subject("signed-1252.eml",
	    "Your \xE2\x82\xAC statement \xE2\x80\x93 November\n", false);
	check_subject("nested-rfc822-2022jp.eml",
	    "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF\n",
	    false);
	check_subject("simple.eml", "lunch on thursday?\n", true);
	check_subject("groups.eml", "\n", false);
}
END_TEST

START_TEST(search_header_addresses)
{
	size_t len, hlen;
	char *data = read_fixture("mixed-2231.eml", &len);
	struct mail_message *msg = mail_parse(data, len, NULL);
	const char *hdr = mail_search_message_header(data, len, msg, &hlen);
	struct strbuf sb = STRBUF_INIT;

	ck_assert_uint_eq(mail_search_header_values(hdr, hlen, "From", true,
	    &sb), 1);
	ck_assert_str_eq(sb.data, "j\xC3\xB6rg m\xC3\xBCller <joerg@example.de>\n");
	ck_assert(mail_search_match(sb.data, sb.len, "M\xC3\x9CLLER", 7));
	ck_assert(!mail_search_match(sb.data, sb.len, "mueller", 7));
	strbuf_reset(&sb);
	ck_assert_uint_eq(mail_search_header_values(hdr, hlen, "X-Absent",
	    true, &sb), 0);
	ck_assert_uint_eq(sb.len, 0);
	/* The attachment's RFC 2231 file name, decoded. */
	strbuf_reset(&sb);
	mail_param_value_utf8(&msg->parts[2].disp_params[0], &sb);
	ck_assert_str_eq(sb.data, "Rechnung f\xC3\xBCr November.pdf");
	strbuf_free(&sb);
	mail_message_free(&msg);
	free(data);
}
END_TEST

/* Regression (issue 13 item 9): FROM/TO/CC/BCC match the addresses as
 * parsed: comments, quoting and folding do not hide them. */
START_TEST(search_address_values)
{
	static const char hdr[] =
	    "From: <user (comment)@ (comment) domain.org>\r\n"
	    "To: \"Doe, John\" <john@example.com>, =?UTF-8?Q?J=C3=B6rg?=\r\n"
	    " <joerg@example.de>\r\n"
	    "Cc: team: a@example.net, b (B) @example.net;\r\n"
	    "To: second@example.org\r\n"
	    "Subject: x\r\n\r\n";
	struct strbuf sb = STRBUF_INIT;

	ck_assert_uint_eq(mail_search_address_values(hdr, sizeof(hdr) - 1,
	    "from", true, &sb), 1);
	ck_assert_str_eq(sb.data, "user@domain.org\n");
	ck_assert(mail_search_match(sb.data, sb.len, "user@domain.org", 15));
	strbuf_reset(&sb);
	ck_assert_uint_eq(mail_search_address_values(hdr, sizeof(hdr) - 1,
	    "To", false, &sb), 2);
	ck_assert_str_eq(sb.data, "Doe, John <john@example.com>, "
	    "J\xC3\xB6rg <joerg@example.de>\nsecond@example.org\n");
	strbuf_reset(&sb);
	ck_assert_uint_eq(mail_search_address_values(hdr, sizeof(hdr) - 1,
	    "Cc", false, &sb), 1);
	ck_assert_str_eq(sb.data, "team: a@example.net, B <b@example.net>;\n");
	strbuf_reset(&sb);
	ck_assert_uint_eq(mail_search_address_values(hdr, sizeof(hdr) - 1,
	    "Bcc", false, &sb), 0);
	strbuf_free(&sb);
}
END_TEST

/* Regression (issue 13 item 3): several From, To, Cc or Bcc fields are
 * one list in ENVELOPE (RFC 5322 4.5.3); other fields: the first. */
START_TEST(envelope_joins_repeated_address_fields)
{
	static const char m[] =
	    "From: a@example.org\r\n"
	    "To: b@example.org\r\n"
	    "Subject: one\r\n"
	    "Cc: c@example.org\r\n"
	    "To: \"D\" <d@example.org>,\r\n e@example.org\r\n"
	    "From: f@example.org\r\n"
	    "Subject: two\r\n"
	    "Bcc: g@example.org\r\n"
	    "Cc: h@example.org\r\n"
	    "Bcc: i@example.org\r\n"
	    "\r\nbody\r\n";
	struct mail_message *msg = mail_parse(m, sizeof(m) - 1, NULL);
	struct strbuf sb = STRBUF_INIT;

	mail_render_message_envelope(&sb, msg);
	ck_assert_str_eq(sb.data, "(NIL \"one\" "
	    "((NIL NIL \"a\" \"example.org\")(NIL NIL \"f\" \"example.org\")) "
	    "((NIL NIL \"a\" \"example.org\")(NIL NIL \"f\" \"example.org\")) "
	    "((NIL NIL \"a\" \"example.org\")(NIL NIL \"f\" \"example.org\")) "
	    "((NIL NIL \"b\" \"example.org\")(\"D\" NIL \"d\" \"example.org\")"
	    "(NIL NIL \"e\" \"example.org\")) "
	    "((NIL NIL \"c\" \"example.org\")(NIL NIL \"h\" \"example.org\")) "
	    "((NIL NIL \"g\" \"example.org\")(NIL NIL \"i\" \"example.org\")) "
	    "NIL NIL)");
	strbuf_free(&sb);
	mail_message_free(&msg);
}
END_TEST

START_TEST(search_body_text)
{
	static const struct {
		const char *file;
		const char *want;
	} cases[] = {
		/* text/html parts are read as their text (mail-html.h) */
		{ "alternative.eml", "[1]Caf\xC3\xA9 news: the soft break "
		  "joins.[2]Caf\xC3\xA9 news" },
		{ "signed-1252.eml", "[1]Balance: 100 \xE2\x82\xAC" },
		{ "related-latin1.eml",
		  "[1]\nCaf\xC3\xA9 \n" },
		{ "nested-rfc822-2022jp.eml", "[1]See the forwarded message."
		  "[4]plain[5]\nhtml\n" },
		{ "empty-body.eml", "[0]" },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		size_t len;
		char *data = read_fixture(cases[i].file, &len);
		struct mail_message *msg = mail_parse(data, len, NULL);
		struct collected c = { STRBUF_INIT, 0 };

		ck_assert_int_eq(mail_search_body_text(data, len, msg, false,
		    collect_text, &c), 0);
		ck_assert_msg(strcmp(strbuf_str(&c.text), cases[i].want) == 0,
		    "%s: got '%s'", cases[i].file, strbuf_str(&c.text));
		/* The blob is what the store has: same result from it, and
		 * a message of another size is refused. */
		ck_assert_int_eq(mail_search_body_text(data, len - 1, msg,
		    false, collect_text, &c), -1);
		strbuf_free(&c.text);
		mail_message_free(&msg);
		free(data);
	}
}
END_TEST

static Suite *
mail_suite(void)
{
	Suite *s = suite_create("store_mail");
	TCase *tc = tcase_create("fixtures");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, fixture_renders, 0, N_ELEMENTS(fixtures));
	tcase_add_loop_test(tc, fixture_every_split_point, 0,
	    N_ELEMENTS(fixtures));
	tcase_add_loop_test(tc, fixture_blob_round_trip, 0,
	    N_ELEMENTS(fixtures));
	tcase_add_test(tc, sections_nested);
	tcase_add_test(tc, sections_single_part);
	tcase_add_test(tc, section_path_syntax);
	tcase_add_test(tc, header_fields_filter);
	tcase_add_test(tc, internaldate_sources);
	tcase_add_test(tc, search_decoded_subjects);
	tcase_add_test(tc, search_header_addresses);
	tcase_add_test(tc, search_address_values);
	tcase_add_test(tc, envelope_joins_repeated_address_fields);
	tcase_add_test(tc, search_body_text);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mail_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
