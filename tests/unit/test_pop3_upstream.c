/* Check suite for pop3-upstream/upstream.c: account configuration checks,
 * deep copies that wipe the password, and the name tables. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-upstream/pop3-client.h"
#include "pop3-upstream/upstream.h"

static struct upstream_account
good(void)
{
	struct upstream_account a;

	memset(&a, 0, sizeof(a));
	a.id = (char *)"acct1";
	a.host = (char *)"pop.example.org";
	a.login = (char *)"alice";
	a.password = (char *)"secret";
	return a;
}

START_TEST(check_accepts_good)
{
	struct upstream_account a = good();
	const char *err = NULL;

	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
	a.fingerprint = (char *)"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:"
	    "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
	a.fingerprint = (char *)"abcdef0123456789abcdef0123456789"
	    "abcdef0123456789abcdef0123456789";
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
}
END_TEST

START_TEST(check_refuses_bad)
{
	struct upstream_account a;
	const char *err = NULL;
	char longid[100];

	a = good(); a.id = (char *)"";
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	a = good(); a.id = longid;
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.id = (char *)"a b";
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.host = NULL;
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	/* CR/LF in a credential would inject POP3 commands */
	a = good(); a.login = (char *)"alice\r\nDELE 1";
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.password = (char *)"x\ny";
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.password = NULL;
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.mailbox = (char *)"";
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.fingerprint = (char *)"abcd";
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.fingerprint = (char *)"zz";
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.tls = UPSTREAM_TLS_NONE;
	a.fingerprint = (char *)"abcdef0123456789abcdef0123456789"
	    "abcdef0123456789abcdef0123456789";
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a = good(); a.mode = UPSTREAM_MODE_DELETE_AFTER;
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a.delete_after_days = 3;
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
}
END_TEST

/* Issue 16: clear text only to loopback unless allowed; OAuth tokens
   never in clear; tokens may be longer than passwords. */
START_TEST(check_cleartext_and_tokens)
{
	struct upstream_account a = good();
	const char *err = NULL;
	char *tok = malloc(UPSTREAM_TOKEN_MAX + 2);

	a.tls = UPSTREAM_TLS_NONE;
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	ck_assert(strstr(err, "allow_cleartext") != NULL);
	a.allow_cleartext = true;
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
	a.auth = UPSTREAM_AUTH_XOAUTH2;
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a.host = (char *)"127.0.0.1";
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
	a.allow_cleartext = false;
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
	a = good();
	a.auth = UPSTREAM_AUTH_OAUTHBEARER;
	memset(tok, 'a', UPSTREAM_TOKEN_MAX + 1);
	tok[UPSTREAM_TOKEN_MAX] = '\0';
	a.password = tok;
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
	tok[UPSTREAM_TOKEN_MAX] = 'a';
	tok[UPSTREAM_TOKEN_MAX + 1] = '\0';
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	a.auth = UPSTREAM_AUTH_PLAIN;
	tok[UPSTREAM_PASSWORD_MAX + 1] = '\0';
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	free(tok);
}
END_TEST

START_TEST(loopback_hosts)
{
	ck_assert(upstream_host_is_loopback("127.0.0.1"));
	ck_assert(upstream_host_is_loopback("127.255.0.9"));
	ck_assert(upstream_host_is_loopback("localhost"));
	ck_assert(upstream_host_is_loopback("LocalHost"));
	ck_assert(upstream_host_is_loopback("::1"));
	ck_assert(upstream_host_is_loopback("::ffff:127.0.0.1"));
	ck_assert(!upstream_host_is_loopback("::ffff:10.0.0.1"));
	ck_assert(!upstream_host_is_loopback("128.0.0.1"));
	ck_assert(!upstream_host_is_loopback("localhost.example.org"));
	ck_assert(!upstream_host_is_loopback("127.0.0.1.example.org"));
	ck_assert(!upstream_host_is_loopback("::2"));
	ck_assert(!upstream_host_is_loopback(""));
}
END_TEST

/* A refreshed token alone must not abort a poll; anything else does. */
START_TEST(compare_configs)
{
	struct upstream_account a = good(), b = good();

	ck_assert_int_eq(upstream_account_compare(&a, &b),
	    UPSTREAM_CHANGE_NONE);
	b.password = (char *)"other";
	ck_assert_int_eq(upstream_account_compare(&a, &b),
	    UPSTREAM_CHANGE_OTHER);
	a.auth = b.auth = UPSTREAM_AUTH_XOAUTH2;
	ck_assert_int_eq(upstream_account_compare(&a, &b),
	    UPSTREAM_CHANGE_TOKEN);
	b.ca_file = (char *)"/etc/ca.pem";
	ck_assert_int_eq(upstream_account_compare(&a, &b),
	    UPSTREAM_CHANGE_OTHER);
	b = a;
	b.ca_only = true;
	ck_assert_int_eq(upstream_account_compare(&a, &b),
	    UPSTREAM_CHANGE_OTHER);
	b = a;
	b.fingerprint = (char *)"x";
	ck_assert_int_eq(upstream_account_compare(&a, &b),
	    UPSTREAM_CHANGE_OTHER);
	b = a;
	b.timeouts.stall_ms = 5;
	ck_assert_int_eq(upstream_account_compare(&a, &b),
	    UPSTREAM_CHANGE_OTHER);
}
END_TEST

/* A 1017..1024-byte password (the control socket allows 1024) overflowed
   the "PASS %s" command line and hit the assertion in pop3_session_send:
   popgated aborted at the account's first USER/PASS login. */
START_TEST(pass_line_overflow_password_refused)
{
	struct upstream_account a;
	const char *err = NULL;
	char pw[1025], login[300];

	memset(pw, 'p', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	a = good(); a.password = pw;
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	pw[UPSTREAM_PASSWORD_MAX] = '\0';
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
	memset(login, 'l', sizeof(login) - 1);
	login[sizeof(login) - 1] = '\0';
	a = good(); a.login = login;
	ck_assert_int_eq(upstream_account_check(&a, &err), -1);
	login[UPSTREAM_LOGIN_MAX] = '\0';
	ck_assert_int_eq(upstream_account_check(&a, &err), 0);
}
END_TEST

START_TEST(dup_and_free)
{
	struct upstream_account a = good(), *c;

	a.mailbox = (char *)"Upstream/x";
	c = upstream_account_dup(&a);
	ck_assert_ptr_ne(c->password, a.password);
	ck_assert_str_eq(c->password, "secret");
	ck_assert_str_eq(c->mailbox, "Upstream/x");
	ck_assert_ptr_null(c->ca_file);
	upstream_account_free(&c);
	ck_assert_ptr_null(c);
	upstream_account_free(&c);
}
END_TEST

START_TEST(names_round_trip)
{
	enum upstream_tls t;
	enum upstream_auth au;
	enum upstream_mode m;

	for (int i = 0; i <= UPSTREAM_TLS_NONE; i++) {
		ck_assert_int_eq(upstream_tls_parse(upstream_tls_name(i), &t), 0);
		ck_assert_int_eq(t, i);
	}
	for (int i = 0; i <= UPSTREAM_AUTH_CRAM_MD5; i++) {
		ck_assert_int_eq(upstream_auth_parse(upstream_auth_name(i), &au),
		    0);
		ck_assert_int_eq(au, i);
	}
	for (int i = 0; i <= UPSTREAM_MODE_MIRROR; i++) {
		ck_assert_int_eq(upstream_mode_parse(upstream_mode_name(i), &m),
		    0);
		ck_assert_int_eq(m, i);
	}
	ck_assert_int_eq(upstream_tls_parse("ssl", &t), -1);
	ck_assert_int_eq(upstream_auth_parse("cram-md5", &au), 0);
	ck_assert_int_eq(au, UPSTREAM_AUTH_CRAM_MD5);
	ck_assert_int_eq(upstream_auth_parse("digest-md5", &au), -1);
	ck_assert_int_eq(upstream_mode_parse("", &m), -1);
	ck_assert_str_eq(upstream_state_name(UPSTREAM_STATE_AUTH_FAILED),
	    "auth-failed");
	ck_assert_str_eq(upstream_tls_name((enum upstream_tls)99), "?");
}
END_TEST

/* RFC 2195's own example. */
START_TEST(cram_md5_rfc2195_example)
{
	static const char chal[] =
	    "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+";
	char out[256];
	const char *err = NULL;

	ck_assert_int_eq(pop3_cram_md5_response("tim", "tanstaaftanstaaf",
	    chal, strlen(chal), out, sizeof(out), &err), 0);
	ck_assert_str_eq(out,
	    "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
	/* padded challenges decode to their real length */
	ck_assert_int_eq(pop3_cram_md5_response("tim", "pw", "PDE+", 4, out,
	    sizeof(out), &err), 0);
	{
		char out2[256];

		ck_assert_int_eq(pop3_cram_md5_response("tim", "pw", "PDE=",
		    4, out2, sizeof(out2), &err), 0);
		ck_assert_str_ne(out, out2);
	}
}
END_TEST

START_TEST(cram_md5_bad_challenges_refused)
{
	char out[256], big[1024];
	const char *err = NULL;

	ck_assert_int_eq(pop3_cram_md5_response("tim", "pw", "", 0, out,
	    sizeof(out), &err), -1);
	ck_assert_int_eq(pop3_cram_md5_response("tim", "pw", "abc", 3, out,
	    sizeof(out), &err), -1);
	ck_assert_int_eq(pop3_cram_md5_response("tim", "pw", "ab\nc", 4,
	    out, sizeof(out), &err), -1);
	ck_assert_int_eq(pop3_cram_md5_response("tim", "pw", "a=bc", 4, out,
	    sizeof(out), &err), -1);
	memset(big, 'A', sizeof(big));
	ck_assert_int_eq(pop3_cram_md5_response("tim", "pw", big, 1024, out,
	    sizeof(out), &err), -1);
	/* an answer that does not fit */
	ck_assert_int_eq(pop3_cram_md5_response("tim", "pw", "PDE+", 4, out,
	    8, &err), -1);
	ck_assert_ptr_nonnull(err);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pop3_upstream");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, check_accepts_good);
	tcase_add_test(tc, check_refuses_bad);
	tcase_add_test(tc, check_cleartext_and_tokens);
	tcase_add_test(tc, loopback_hosts);
	tcase_add_test(tc, compare_configs);
	tcase_add_test(tc, pass_line_overflow_password_refused);
	tcase_add_test(tc, dup_and_free);
	tcase_add_test(tc, names_round_trip);
	tcase_add_test(tc, cram_md5_rfc2195_example);
	tcase_add_test(tc, cram_md5_bad_challenges_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
