/* Unit tests of mail-sortkey: the SORT / THREAD key record of a message
 * (RFC 5256 base subject after RFC 2047 decoding, sent date and its
 * fallback, first addresses, msg-ids), and the reader's bounds. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "store/mail-message.h"
#include "store/mail-parse.h"
#include "store/mail-sortkey.h"
#include "strbuf.h"

/* The record of raw message text, read back into *k; rec keeps it. */
static void
keys_of(const char *text, struct strbuf *rec, struct mail_sortkey *k)
{
	struct mail_message *mm = mail_parse(text, strlen(text), NULL);

	ck_assert_ptr_nonnull(mm);
	mail_sortkey_of_message(mm, text, strlen(text), rec);
	mail_message_free(&mm);
	ck_assert_int_eq(mail_sortkey_read(rec->data, rec->len, k), 0);
}

START_TEST(sortkey_subject_encoded)
{
	struct strbuf rec = STRBUF_INIT;
	struct mail_sortkey k;

	/* decoded before the leaders go (RFC 5256 2.1 step 1) */
	keys_of("Subject: =?iso-8859-1?q?Re:_Caf=E9?=\r\n\r\nx", &rec, &k);
	ck_assert_str_eq(k.subject, "caf\xc3\xa9");
	ck_assert(k.reply);
	keys_of("Subject: =?UTF-8?B?W2xpc3RdIEZ3ZDogw4TDlsOc?=\r\n\r\nx",
	    &rec, &k);
	ck_assert_str_eq(k.subject, "\xc3\xa4\xc3\xb6\xc3\xbc");
	ck_assert(k.reply);
	/* folded, two words joined without the white space between them */
	keys_of("Subject: Re: [bug]\r\n  =?utf-8?q?Hello?=\r\n"
	    " =?utf-8?q?_World?= (fwd)\r\n\r\nx", &rec, &k);
	ck_assert_str_eq(k.subject, "hello world");
	ck_assert(k.reply);
	keys_of("Subject: Plain\r\n\r\nx", &rec, &k);
	ck_assert_str_eq(k.subject, "plain");
	ck_assert(!k.reply);
	keys_of("From: a@b\r\n\r\nno subject", &rec, &k);
	ck_assert_str_eq(k.subject, "");
	ck_assert(!k.reply);
	strbuf_free(&rec);
}
END_TEST

START_TEST(sortkey_sent_date)
{
	struct strbuf rec = STRBUF_INIT;
	struct mail_sortkey k;

	/* in UTC: 2023-11-14 22:13:20 +0000 is 1700000000 */
	keys_of("Date: Wed, 15 Nov 2023 00:13:20 +0200\r\n\r\nx", &rec, &k);
	ck_assert(k.sent_valid);
	ck_assert_int_eq(k.sent, 1700000000);
	/* no Date: or one that does not parse: SORT takes INTERNALDATE */
	keys_of("Subject: x\r\n\r\nx", &rec, &k);
	ck_assert(!k.sent_valid);
	keys_of("Date: yesterday, around noon\r\n\r\nx", &rec, &k);
	ck_assert(!k.sent_valid);
	/* not the Received: date either (that one is INTERNALDATE's) */
	keys_of("Received: from a by b; Wed, 15 Nov 2023 00:13:20 +0000\r\n"
	    "\r\nx", &rec, &k);
	ck_assert(!k.sent_valid);
	strbuf_free(&rec);
}
END_TEST

START_TEST(sortkey_addresses)
{
	struct strbuf rec = STRBUF_INIT;
	struct mail_sortkey k;

	keys_of("From: \"Zed\" <Alice.X@Example.org>, bob@example.org\r\n"
	    "To: undisclosed-recipients:;, Carol@example.org\r\n"
	    "\r\nx", &rec, &k);
	ck_assert_str_eq(k.from, "alice.x");	/* addr-mailbox, folded */
	ck_assert_str_eq(k.to, "carol");	/* group markers skipped */
	ck_assert_str_eq(k.cc, "");
	strbuf_free(&rec);
}
END_TEST

START_TEST(sortkey_msgids)
{
	struct strbuf rec = STRBUF_INIT, text = STRBUF_INIT;
	struct mail_sortkey k;

	keys_of("Message-ID: <m1@x>\r\nIn-Reply-To: <p@x>\r\n"
	    "References: <r1@x>\r\n <r2@x> (c) <r3\r\n @x>\r\n\r\nx",
	    &rec, &k);
	ck_assert_str_eq(k.msgid, "<m1@x>");
	ck_assert_uint_eq(k.nrefs, 3);	/* References before In-Reply-To */
	ck_assert_str_eq(k.refs[0], "<r1@x>");
	ck_assert_str_eq(k.refs[2], "<r3@x>");
	keys_of("In-Reply-To: <p1@x> <p2@x>\r\n\r\nx", &rec, &k);
	ck_assert_ptr_null(k.msgid);
	ck_assert_uint_eq(k.nrefs, 1);
	ck_assert_str_eq(k.refs[0], "<p2@x>");
	/* more references than kept: the newest (closest) ones */
	strbuf_appends(&text, "References:");
	for (int i = 0; i < MAIL_SORTKEY_REFS_MAX + 10; i++)
		strbuf_appendf(&text, " <r%d@x>", i);
	strbuf_appends(&text, "\r\n\r\nx");
	keys_of(strbuf_str(&text), &rec, &k);
	ck_assert_uint_eq(k.nrefs, MAIL_SORTKEY_REFS_MAX);
	ck_assert_str_eq(k.refs[0], "<r10@x>");
	ck_assert_str_eq(k.refs[MAIL_SORTKEY_REFS_MAX - 1], "<r73@x>");
	strbuf_free(&text);
	strbuf_free(&rec);
}
END_TEST

START_TEST(sortkey_bounds)
{
	struct strbuf rec = STRBUF_INIT, text = STRBUF_INIT;
	struct mail_sortkey k;

	/* a huge Subject costs MAIL_SORTKEY_STR_MAX bytes */
	strbuf_appends(&text, "Subject: ");
	for (int i = 0; i < 100000; i++)
		strbuf_appendc(&text, 'a' + i % 26);
	strbuf_appends(&text, "\r\n\r\nx");
	keys_of(strbuf_str(&text), &rec, &k);
	ck_assert_uint_eq(strlen(k.subject), MAIL_SORTKEY_STR_MAX);
	ck_assert_uint_lt(rec.len, 2 * MAIL_SORTKEY_STR_MAX);
	/* no message at all: an empty record */
	mail_sortkey_of_message(NULL, "", 0, &rec);
	ck_assert_int_eq(mail_sortkey_read(rec.data, rec.len, &k), 0);
	ck_assert_str_eq(k.subject, "");
	ck_assert(!k.sent_valid);
	ck_assert_ptr_null(k.msgid);
	strbuf_free(&text);
	strbuf_free(&rec);
}
END_TEST

START_TEST(sortkey_read_rejects)
{
	struct strbuf rec = STRBUF_INIT;
	struct mail_sortkey k;
	unsigned char *copy;
	const char *text = "Subject: Re: x\r\nFrom: a@b\r\nMessage-ID: <m@x>\r\n"
	    "References: <a@x> <b@x>\r\nDate: Wed, 15 Nov 2023 00:13:20 "
	    "+0200\r\n\r\nx";

	keys_of(text, &rec, &k);
	copy = malloc(rec.len + 1);
	/* every cut is refused (read from a copy of exactly that length,
	   so the sanitizer sees any read past it) */
	for (size_t cut = 0; cut < rec.len; cut++) {
		memcpy(copy, rec.data, cut);
		ck_assert_msg(mail_sortkey_read(copy, cut, &k) == -1,
		    "cut at %zu read", cut);
	}
	/* trailing bytes, another version, too many references, unknown
	   flags */
	memcpy(copy, rec.data, rec.len);
	copy[rec.len] = 'x';
	ck_assert_int_eq(mail_sortkey_read(copy, rec.len + 1, &k), -1);
	copy[0] = MAIL_SORTKEY_VERSION + 1;
	ck_assert_int_eq(mail_sortkey_read(copy, rec.len, &k), -1);
	memcpy(copy, rec.data, rec.len);
	copy[2] = MAIL_SORTKEY_REFS_MAX + 1;
	ck_assert_int_eq(mail_sortkey_read(copy, rec.len, &k), -1);
	memcpy(copy, rec.data, rec.len);
	copy[1] |= 0x80;
	ck_assert_int_eq(mail_sortkey_read(copy, rec.len, &k), -1);
	/* every byte flipped: read or refused, never past the end */
	for (size_t i = 0; i < rec.len; i++) {
		memcpy(copy, rec.data, rec.len);
		copy[i] ^= 0xff;
		(void)mail_sortkey_read(copy, rec.len, &k);
	}
	free(copy);
	strbuf_free(&rec);
}
END_TEST

static Suite *
sortkey_suite(void)
{
	Suite *s = suite_create("store_mailsortkey");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, sortkey_subject_encoded);
	tcase_add_test(tc, sortkey_sent_date);
	tcase_add_test(tc, sortkey_addresses);
	tcase_add_test(tc, sortkey_msgids);
	tcase_add_test(tc, sortkey_bounds);
	tcase_add_test(tc, sortkey_read_rejects);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sortkey_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
