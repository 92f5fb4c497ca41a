/* Check suite for lib/login-ticket: issue and redeem, the bindings (user,
 * node, client address), expiry, single use, the book's bound, and
 * strings that are not tickets. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "login-ticket.h"

static const unsigned char key[LOGIN_TICKET_KEY_LEN] = "0123456789abcdef0123456789abcde";
static const time_t T0 = 1800000000;

static struct login_tickets *
book(const char *node, const unsigned char *k)
{
	struct login_tickets *t = login_tickets_new(node, k, 20);

	ck_assert_ptr_nonnull(t);
	return t;
}

START_TEST(issue_then_redeem_once)
{
	struct login_tickets *t = book("10.0.0.1:1144", key);
	char tk[LOGIN_TICKET_LEN_MAX];

	ck_assert_int_eq(login_ticket_issue(t, "alice", "192.0.2.7", T0, tk),
	    0);
	ck_assert_msg(strncmp(tk, "pgt1.", 5) == 0, "%s", tk);
	ck_assert_uint_lt(strlen(tk), LOGIN_TICKET_LEN_MAX);
	/* only [0-9a-z.]: nginx passes it as is, IMAP quotes nothing */
	ck_assert_uint_eq(strspn(tk, "0123456789abcdefghijklmnopqrstuvwxyz."),
	    strlen(tk));
	ck_assert_uint_eq(login_tickets_outstanding(t), 1);
	ck_assert_int_eq(login_ticket_redeem(t, "alice", "192.0.2.7", tk,
	    T0 + 1), LOGIN_TICKET_OK);
	ck_assert_uint_eq(login_tickets_outstanding(t), 0);
	/* replayed */
	ck_assert_int_eq(login_ticket_redeem(t, "alice", "192.0.2.7", tk,
	    T0 + 1), LOGIN_TICKET_USED);
	login_tickets_free(&t);
	ck_assert_ptr_null(t);
}
END_TEST

START_TEST(bound_to_user_address_and_node)
{
	struct login_tickets *t = book("10.0.0.1:1144", key);
	struct login_tickets *other = book("10.0.0.2:1144", key);
	struct login_tickets *rekeyed = book("10.0.0.1:1144", NULL);
	char tk[LOGIN_TICKET_LEN_MAX];

	ck_assert_int_eq(login_ticket_issue(t, "alice", "192.0.2.7", T0, tk),
	    0);
	ck_assert_int_eq(login_ticket_redeem(t, "bob", "192.0.2.7", tk, T0),
	    LOGIN_TICKET_BAD);
	ck_assert_int_eq(login_ticket_redeem(t, "alice", "192.0.2.8", tk, T0),
	    LOGIN_TICKET_BAD);
	/* another node, even with the same key; the same node restarted
	   (a new random key) */
	ck_assert_int_eq(login_ticket_redeem(other, "alice", "192.0.2.7", tk,
	    T0), LOGIN_TICKET_BAD);
	ck_assert_int_eq(login_ticket_redeem(rekeyed, "alice", "192.0.2.7",
	    tk, T0), LOGIN_TICKET_BAD);
	/* a failed try does not use it up for the right login */
	ck_assert_int_eq(login_ticket_redeem(t, "alice", "192.0.2.7", tk, T0),
	    LOGIN_TICKET_OK);
	login_tickets_free(&t);
	login_tickets_free(&other);
	login_tickets_free(&rekeyed);
}
END_TEST

START_TEST(expires)
{
	struct login_tickets *t = book("n", key);
	char tk[LOGIN_TICKET_LEN_MAX], tk2[LOGIN_TICKET_LEN_MAX];

	ck_assert_int_eq(login_ticket_issue(t, "u", "::1", T0, tk), 0);
	ck_assert_int_eq(login_ticket_issue(t, "u", "::1", T0, tk2), 0);
	ck_assert_str_ne(tk, tk2);
	/* good through its last second, not after */
	ck_assert_int_eq(login_ticket_redeem(t, "u", "::1", tk, T0 + 20),
	    LOGIN_TICKET_OK);
	ck_assert_int_eq(login_ticket_redeem(t, "u", "::1", tk2, T0 + 21),
	    LOGIN_TICKET_EXPIRED);
	ck_assert_uint_eq(login_tickets_outstanding(t), 0);
	ck_assert_int_eq(login_ticket_redeem(t, "u", "::1", tk2, T0 + 1),
	    LOGIN_TICKET_USED);
	login_tickets_free(&t);
}
END_TEST

START_TEST(tampered_expiry_or_nonce)
{
	struct login_tickets *t = book("n", key);
	char tk[LOGIN_TICKET_LEN_MAX], bad[LOGIN_TICKET_LEN_MAX];
	char *p;

	ck_assert_int_eq(login_ticket_issue(t, "u", "1.2.3.4", T0, tk), 0);
	/* a later expiry */
	snprintf(bad, sizeof(bad), "%s", tk);
	p = bad + 5;
	*p = *p == '9' ? '8' : (char)(*p + 1);
	ck_assert_int_eq(login_ticket_redeem(t, "u", "1.2.3.4", bad, T0),
	    LOGIN_TICKET_BAD);
	/* another nonce */
	snprintf(bad, sizeof(bad), "%s", tk);
	p = strchr(bad + 5, '.') + 1;
	*p = *p == 'a' ? 'b' : 'a';
	ck_assert_int_eq(login_ticket_redeem(t, "u", "1.2.3.4", bad, T0),
	    LOGIN_TICKET_BAD);
	/* another MAC */
	snprintf(bad, sizeof(bad), "%s", tk);
	p = bad + strlen(bad) - 1;
	*p = *p == '0' ? '1' : '0';
	ck_assert_int_eq(login_ticket_redeem(t, "u", "1.2.3.4", bad, T0),
	    LOGIN_TICKET_BAD);
	ck_assert_int_eq(login_ticket_redeem(t, "u", "1.2.3.4", tk, T0),
	    LOGIN_TICKET_OK);
	login_tickets_free(&t);
}
END_TEST

START_TEST(not_tickets)
{
	static const char *const shapes[] = {
		"", "password", "pgt1", "pgt1.", "pgt1..",
		"pgt1.123.", "pgt1.123.00", "PGT1.1.000000000000000000000000."
		"00000000000000000000000000000000",
		"pgt1.x.000000000000000000000000.00000000000000000000000000000000",
		"pgt1.1234567890123.000000000000000000000000."
		"00000000000000000000000000000000",
		"pgt1.1.00000000000000000000000.00000000000000000000000000000000",
		"pgt1.1.000000000000000000000000.0000000000000000000000000000000",
		"pgt1.1.000000000000000000000000.000000000000000000000000000000000",
		"pgt1.1.00000000000000000000000A.00000000000000000000000000000000",
		"pgt1.1.000000000000000000000000x00000000000000000000000000000000",
		"pgt1.1.000000000000000000000000.0000000000000000000000000000000g",
	};
	struct login_tickets *t = book("n", key);

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		ck_assert_msg(login_ticket_redeem(t, "u", "1.2.3.4", shapes[i],
		    T0) == LOGIN_TICKET_NOT_ONE, "%s", shapes[i]);
	/* well shaped, never issued: its MAC is wrong */
	ck_assert_int_eq(login_ticket_redeem(t, "u", "1.2.3.4",
	    "pgt1.1900000000.000000000000000000000000."
	    "00000000000000000000000000000000", T0), LOGIN_TICKET_BAD);
	ck_assert_str_eq(login_ticket_result_name(LOGIN_TICKET_USED), "used");
	login_tickets_free(&t);
}
END_TEST

START_TEST(book_is_bounded)
{
	struct login_tickets *t = book("n", key);
	char tk[LOGIN_TICKET_LEN_MAX], first[LOGIN_TICKET_LEN_MAX];

	for (size_t i = 0; i < LOGIN_TICKETS_MAX; i++)
		ck_assert_int_eq(login_ticket_issue(t, "u", "1.2.3.4", T0,
		    i == 0 ? first : tk), 0);
	/* full: no ticket (the caller sends the password on) */
	ck_assert_int_eq(login_ticket_issue(t, "u", "1.2.3.4", T0 + 1, tk),
	    -1);
	ck_assert_int_eq(login_ticket_redeem(t, "u", "1.2.3.4", first, T0 + 1),
	    LOGIN_TICKET_OK);
	ck_assert_int_eq(login_ticket_issue(t, "u", "1.2.3.4", T0 + 1, tk), 0);
	/* once they expire, room again */
	ck_assert_int_eq(login_ticket_issue(t, "u", "1.2.3.4", T0 + 1, tk),
	    -1);
	ck_assert_int_eq(login_ticket_issue(t, "u", "1.2.3.4", T0 + 21, tk),
	    0);
	ck_assert_uint_eq(login_tickets_outstanding(t), 2);
	login_tickets_free(&t);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("lib_ticket");
	TCase *tc = tcase_create("ticket");

	tcase_add_test(tc, issue_then_redeem_once);
	tcase_add_test(tc, bound_to_user_address_and_node);
	tcase_add_test(tc, expires);
	tcase_add_test(tc, tampered_expiry_or_nonce);
	tcase_add_test(tc, not_tickets);
	tcase_add_test(tc, book_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
