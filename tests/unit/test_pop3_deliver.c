/* Check suite for pop3-upstream/pop3-deliver.c against a real store: one
 * refused message does not block its batch, a reused UIDL's old ledger
 * entry is replaced only by a delivery that commits, and "was this
 * message delivered before?" is answered from the ledger's fingerprint
 * even after the user expunged the message. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-upstream/pop3-deliver.h"
#include "store/mail-sortkey.h"
#include "store/store.h"
#include "store_test_util.h"
#include "xmalloc.h"

static const char MSG_A[] =
    "From: a@example.org\r\nSubject: a\r\n\r\nbody a\r\n";
static const char MSG_B[] =
    "From: b@example.org\r\nSubject: b\r\n\r\nbody b\r\n";
static const char MSG_C[] =
    "From: c@example.org\r\nSubject: c\r\n\r\nbody c\r\n";

struct fixture {
	struct tstore t;
	struct upstream_account acct;
	uint32_t mailbox;
};

static void
fixture_open(struct fixture *f)
{
	const char *err = NULL;

	memset(f, 0, sizeof(*f));
	tstore_open(&f->t, 64u * 1024 * 1024);
	f->acct.id = (char *)"acct1";
	f->acct.user_id = tuser(&f->t, "bob");
	ck_assert_msg(pop3_deliver_mailbox(f->t.store, &f->acct, &f->mailbox,
	    &err) == 0, "%s", err);
}

static void
fixture_close(struct fixture *f)
{
	tstore_check(&f->t);
	tstore_close(&f->t);
}

static struct pop3_deliver_msg
dmsg(const char *data, const char *uidl, size_t uidl_size)
{
	struct pop3_deliver_msg m;

	memset(&m, 0, sizeof(m));
	m.data = data;
	m.size = strlen(data);
	m.uidl = uidl;
	m.uidl_size = uidl_size;
	return m;
}

static int
lookup(struct fixture *f, const char *uidl, struct pop3_ledger_info *li)
{
	struct store_read *r = NULL;
	const char *err = NULL;
	int rc;

	ck_assert_msg(store_read_begin(f->t.store, &r, &err) == 0, "%s", err);
	rc = pop3_deliver_ledger_lookup(r, &f->acct, uidl, strlen(uidl), li,
	    &err);
	store_read_end(&r);
	ck_assert_msg(rc >= 0, "%s", err);
	return rc;
}

static uint32_t
inbox_count(struct fixture *f)
{
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	const char *err = NULL;

	ck_assert(store_read_begin(f->t.store, &r, &err) == 0);
	ck_assert(store_mailbox_lookup(r, f->acct.user_id, "INBOX", &info,
	    &err) == 0);
	store_read_end(&r);
	return info.messages;
}

/* The header digest of the check before DELE: the header block only
 * (up to and including the empty line), CRLF and LF alike, a bare CR
 * kept; kept in the ledger with the LIST size when one is given. */
START_TEST(head_digest_is_the_header_block_line_endings_aside)
{
	static const char crlf[] =
	    "From: a@example.org\r\nSubject: a\r\n\r\nbody a\r\n";
	static const char lf[] = "From: a@example.org\nSubject: a\n\nother\n";
	static const char top[] = "From: a@example.org\r\nSubject: a\r\n\r\n";
	static const char cr[] = "X: a\rb\r\n\r\n", nocr[] = "X: ab\n\n";
	static const char other[] = "From: a@example.org\r\nSubject: b\r\n\r\n";
	static const char nobody[] = "From: a@example.org\r\nSubject: a\r\n";
	unsigned char d1[32], d2[32], d3[32], d4[32], d5[32], d6[32], d7[32];

	pop3_deliver_head_digest(crlf, strlen(crlf), d1);
	pop3_deliver_head_digest(lf, strlen(lf), d2);
	pop3_deliver_head_digest(top, strlen(top), d3);
	pop3_deliver_head_digest(cr, strlen(cr), d4);
	pop3_deliver_head_digest(nocr, strlen(nocr), d7);
	pop3_deliver_head_digest(other, strlen(other), d5);
	pop3_deliver_head_digest(nobody, strlen(nobody), d6);
	ck_assert(memcmp(d1, d2, 32) == 0);
	ck_assert(memcmp(d1, d3, 32) == 0);
	ck_assert(memcmp(d4, d7, 32) != 0);	/* a bare CR counts */
	ck_assert(memcmp(d1, d5, 32) != 0);
	ck_assert(memcmp(d1, d6, 32) != 0);
}
END_TEST

START_TEST(ledger_keeps_head_digest_and_list_size)
{
	struct fixture f;
	struct pop3_deliver_msg m[2];
	struct pop3_deliver_outcome out[2];
	struct pop3_ledger_info li;
	unsigned char d[32];
	const char *err = NULL;

	fixture_open(&f);
	m[0] = dmsg(MSG_A, "1", 1);
	m[0].list_size = 4242;
	m[1] = dmsg(MSG_B, "2", 1);	/* LIST size unknown: no head */
	ck_assert(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, m, 2,
	    out, &err) == 0 && out[0].stored && out[1].stored);
	ck_assert_int_eq(lookup(&f, "1", &li), 0);
	ck_assert(li.has_head);
	ck_assert_uint_eq(li.list_size, 4242);
	pop3_deliver_head_digest(MSG_A, strlen(MSG_A), d);
	ck_assert(memcmp(li.head_digest, d, 32) == 0);
	ck_assert_int_eq(lookup(&f, "2", &li), 0);
	ck_assert(!li.has_head);
	fixture_close(&f);
}
END_TEST

/* A UIDL already in the ledger used to fail the whole batch with EXISTS
 * on every poll; now the others are stored and only it is refused. */
START_TEST(batch_with_existing_uidl_stores_the_others)
{
	struct fixture f;
	struct pop3_deliver_msg m[3];
	struct pop3_deliver_outcome out[3];
	struct pop3_ledger_info li;
	const char *err = NULL;

	fixture_open(&f);
	ck_assert(store_ledger_add(f.t.store, f.acct.user_id, "acct1", "b", 1,
	    &err) == 0);
	m[0] = dmsg(MSG_A, "a", 1);
	m[1] = dmsg(MSG_B, "b", 1);
	m[2] = dmsg(MSG_C, "c", 1);
	ck_assert_msg(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, m, 3,
	    out, &err) == 0, "%s", err);
	ck_assert(out[0].stored);
	ck_assert(!out[1].stored);
	ck_assert_int_eq(out[1].refused, STORE_ERR_EXISTS);
	ck_assert(strlen(out[1].error) > 0);
	ck_assert(out[2].stored);
	ck_assert_uint_eq(inbox_count(&f), 2);
	ck_assert_int_eq(lookup(&f, "a", &li), 0);
	ck_assert(li.delivered);
	ck_assert_int_eq(lookup(&f, "c", &li), 0);
	ck_assert(li.delivered);
	fixture_close(&f);
}
END_TEST

/* A key over STORE_UIDL_MAX (INVALID) is refused alone. */
START_TEST(batch_with_overlong_uidl_stores_the_others)
{
	struct fixture f;
	struct pop3_deliver_msg m[2];
	struct pop3_deliver_outcome out[2];
	char big[STORE_UIDL_MAX + 10];
	const char *err = NULL;

	fixture_open(&f);
	memset(big, 'x', sizeof(big));
	m[0] = dmsg(MSG_A, big, sizeof(big));
	m[1] = dmsg(MSG_B, "b", 1);
	ck_assert_msg(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, m, 2,
	    out, &err) == 0, "%s", err);
	ck_assert(!out[0].stored);
	ck_assert_int_eq(out[0].refused, STORE_ERR_INVALID);
	ck_assert(out[1].stored);
	ck_assert_uint_eq(inbox_count(&f), 1);
	fixture_close(&f);
}
END_TEST

/* A reused UIDL: the old "deleted upstream" entry stays until a new
 * delivery commits, and is replaced by it in the same transaction. */
START_TEST(reused_uidl_replaces_ledger_entry_only_on_commit)
{
	struct fixture f;
	struct pop3_deliver_msg m;
	struct pop3_deliver_outcome out;
	struct pop3_ledger_info li;
	const void *keys[1] = { "1" };
	size_t lens[1] = { 1 };
	const char *err = NULL;

	fixture_open(&f);
	m = dmsg(MSG_A, "1", 1);
	ck_assert(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, &m, 1,
	    &out, &err) == 0 && out.stored);
	ck_assert(pop3_deliver_mark_deleted(f.t.store, &f.acct, keys, lens, 1,
	    &err) == 0);
	/* without replace the store keeps the old entry and refuses */
	m = dmsg(MSG_B, "1", 1);
	ck_assert(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, &m, 1,
	    &out, &err) == 0);
	ck_assert(!out.stored);
	ck_assert_int_eq(out.refused, STORE_ERR_EXISTS);
	ck_assert_int_eq(lookup(&f, "1", &li), 0);
	ck_assert(li.deleted_upstream);
	ck_assert(li.has_fingerprint);
	ck_assert_uint_eq(li.body_size, strlen(MSG_A));
	/* with replace it is a new delivery, one transaction */
	m.replace = true;
	ck_assert(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, &m, 1,
	    &out, &err) == 0 && out.stored);
	ck_assert_int_eq(lookup(&f, "1", &li), 0);
	ck_assert(!li.deleted_upstream);
	ck_assert_uint_eq(li.body_size, strlen(MSG_B));
	ck_assert_uint_eq(inbox_count(&f), 2);
	fixture_close(&f);
}
END_TEST

/* The message delivered for a UIDL was expunged by the user; the same
 * bytes listed again are still recognised (no re-delivery of mail the
 * user deleted), other bytes are not. */
START_TEST(same_body_uses_fingerprint_after_expunge)
{
	struct fixture f;
	struct pop3_deliver_msg m;
	struct pop3_deliver_outcome out;
	struct pop3_ledger_info li;
	uint32_t *gone = NULL;
	size_t gone_count = 0;
	const char *err = NULL;

	fixture_open(&f);
	m = dmsg(MSG_A, "1", 1);
	ck_assert(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, &m, 1,
	    &out, &err) == 0 && out.stored);
	ck_assert(store_expunge(f.t.store, f.acct.user_id, f.mailbox, NULL, 0,
	    false, &gone, &gone_count, &err) == 0);
	free(gone);
	ck_assert_uint_eq(gone_count, 1);
	ck_assert_int_eq(lookup(&f, "1", &li), 0);
	ck_assert(!li.still_present);
	ck_assert_int_eq(pop3_deliver_same_body(f.t.store, &f.acct, &li,
	    MSG_A, strlen(MSG_A), &err), 1);
	ck_assert_int_eq(pop3_deliver_same_body(f.t.store, &f.acct, &li,
	    MSG_B, strlen(MSG_B), &err), 0);
	/* an entry without a fingerprint falls back to the stored copy,
	   which is gone: no way to tell */
	li.has_fingerprint = false;
	ck_assert_int_eq(pop3_deliver_same_body(f.t.store, &f.acct, &li,
	    MSG_A, strlen(MSG_A), &err), POP3_DELIVER_SAME_UNKNOWN);
	li.mailbox_id = 0;
	ck_assert_int_eq(pop3_deliver_same_body(f.t.store, &f.acct, &li,
	    MSG_A, strlen(MSG_A), &err), POP3_DELIVER_SAME_UNKNOWN);
	fixture_close(&f);
}
END_TEST

/* While the delivered body exists, the bytes decide, not the 64-bit
 * fingerprint: a forged fingerprint (a collision) with the right size
 * cannot make other bytes "the same". Once the body is gone, the
 * fingerprint is all there is. */
START_TEST(same_body_compares_bytes_while_the_body_exists)
{
	struct fixture f;
	struct pop3_deliver_msg m;
	struct pop3_deliver_outcome out;
	struct pop3_ledger_info li;
	uint32_t *gone = NULL;
	size_t gone_count = 0;
	const char *err = NULL;
	char *other;

	fixture_open(&f);
	m = dmsg(MSG_A, "1", 1);
	ck_assert(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, &m, 1,
	    &out, &err) == 0 && out.stored);
	ck_assert_int_eq(lookup(&f, "1", &li), 0);
	ck_assert(li.has_body && li.has_fingerprint);
	other = xstrdup(MSG_A);
	other[strlen(other) - 3] ^= 0x01;	/* same size, other bytes */
	ck_assert_int_eq(pop3_deliver_same_body(f.t.store, &f.acct, &li,
	    MSG_A, strlen(MSG_A), &err), 1);
	/* a collision: the ledger's fingerprint made to match */
	li.body_hash = store_body_fingerprint(other, strlen(other));
	ck_assert_int_eq(pop3_deliver_same_body(f.t.store, &f.acct, &li,
	    other, strlen(other), &err), 0);
	/* the body gone: only the (forged) fingerprint is left to go by */
	ck_assert(store_expunge(f.t.store, f.acct.user_id, f.mailbox, NULL, 0,
	    false, &gone, &gone_count, &err) == 0);
	free(gone);
	ck_assert_int_eq(pop3_deliver_same_body(f.t.store, &f.acct, &li,
	    other, strlen(other), &err), 1);
	free(other);
	fixture_close(&f);
}
END_TEST

/* Regression: mirror mode asked "does the message still exist?" only at
 * the UID it was delivered to, so a message the user moved to another
 * folder (or copied, then expunged the original) was deleted upstream
 * although the user never expunged it. Still present while any copy
 * shares its body; gone once the last one is expunged. */
START_TEST(moved_or_copied_message_is_still_present)
{
	struct fixture f;
	struct pop3_deliver_msg m[2];
	struct pop3_deliver_outcome out[2];
	struct pop3_ledger_info li;
	struct store_copy_result cr;
	struct store_uid_range first = { 1, 1 }, second = { 2, 2 };
	uint32_t archive;
	const char *err = NULL;

	fixture_open(&f);
	m[0] = dmsg(MSG_A, "1", 1);
	m[1] = dmsg(MSG_B, "2", 1);
	ck_assert(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, m, 2,
	    out, &err) == 0 && out[0].stored && out[1].stored);
	ck_assert_int_eq(store_mailbox_create(f.t.store, f.acct.user_id,
	    "Archive", STORE_ROLE_NONE, &archive, NULL), 0);

	/* "1" moved to Archive */
	ck_assert_msg(store_copy(f.t.store, f.acct.user_id, f.mailbox, archive,
	    &first, 1, true, &cr, &err) == 0, "%s", err);
	ck_assert_uint_eq(cr.count, 1);
	store_copy_result_free(&cr);
	ck_assert_int_eq(lookup(&f, "1", &li), 0);
	ck_assert(li.delivered && li.still_present);

	/* "2" copied to Archive, the original expunged */
	ck_assert(store_copy(f.t.store, f.acct.user_id, f.mailbox, archive,
	    &second, 1, false, &cr, &err) == 0);
	store_copy_result_free(&cr);
	ck_assert(store_expunge(f.t.store, f.acct.user_id, f.mailbox, &second,
	    1, false, NULL, NULL, &err) == 0);
	ck_assert_int_eq(lookup(&f, "2", &li), 0);
	ck_assert(li.still_present);

	/* every copy expunged: now the user has expunged it */
	ck_assert(store_expunge(f.t.store, f.acct.user_id, archive, NULL, 0,
	    false, NULL, NULL, &err) == 0);
	ck_assert_int_eq(lookup(&f, "1", &li), 0);
	ck_assert(li.delivered && !li.still_present);
	ck_assert_int_eq(lookup(&f, "2", &li), 0);
	ck_assert(!li.still_present);
	fixture_close(&f);
}
END_TEST

/* Delivery stores each message's SORT/THREAD key record with it (made
 * on the worker that parses); the last expunge frees it with the body. */
START_TEST(delivered_messages_carry_sort_keys)
{
	struct fixture f;
	struct pop3_deliver_msg m[2];
	struct pop3_deliver_outcome out[2];
	struct store_read *r = NULL;
	struct store_msg sm;
	struct mail_sortkey sk;
	uint64_t body[2];
	const void *rec;
	size_t size;
	const char *err = NULL;

	fixture_open(&f);
	m[0] = dmsg(MSG_A, "1", 1);
	m[1] = dmsg(MSG_B, "2", 1);
	ck_assert(pop3_deliver_batch(f.t.store, &f.acct, f.mailbox, m, 2,
	    out, &err) == 0 && out[0].stored && out[1].stored);
	ck_assert(store_read_begin(f.t.store, &r, &err) == 0);
	for (uint32_t uid = 1; uid <= 2; uid++) {
		const char *want = uid == 1 ? "a" : "b";

		ck_assert(store_msg_get(r, f.acct.user_id, f.mailbox, uid,
		    &sm, &err) == 0);
		body[uid - 1] = sm.body_id;
		ck_assert_msg(store_msg_sortkey(r, f.acct.user_id, sm.body_id,
		    &rec, &size, &err) == 0, "uid %u has no sort keys", uid);
		ck_assert_int_eq(mail_sortkey_read(rec, size, &sk), 0);
		ck_assert_str_eq(sk.subject, want);
		ck_assert_str_eq(sk.from, want);
		ck_assert(!sk.sent_valid);
	}
	store_read_end(&r);
	ck_assert(store_expunge(f.t.store, f.acct.user_id, f.mailbox, NULL, 0,
	    false, NULL, NULL, &err) == 0);
	ck_assert(store_read_begin(f.t.store, &r, &err) == 0);
	for (size_t i = 0; i < 2; i++)
		ck_assert_int_eq(store_msg_sortkey(r, f.acct.user_id, body[i],
		    &rec, &size, &err), STORE_NOT_FOUND);
	store_read_end(&r);
	fixture_close(&f);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pop3_deliver");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, batch_with_existing_uidl_stores_the_others);
	tcase_add_test(tc, batch_with_overlong_uidl_stores_the_others);
	tcase_add_test(tc, reused_uidl_replaces_ledger_entry_only_on_commit);
	tcase_add_test(tc, same_body_uses_fingerprint_after_expunge);
	tcase_add_test(tc, same_body_compares_bytes_while_the_body_exists);
	tcase_add_test(tc, moved_or_copied_message_is_still_present);
	tcase_add_test(tc, delivered_messages_carry_sort_keys);
	tcase_add_test(tc, head_digest_is_the_header_block_line_endings_aside);
	tcase_add_test(tc, ledger_keeps_head_digest_and_list_size);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
