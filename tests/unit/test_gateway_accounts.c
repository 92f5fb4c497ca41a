/* Check suite for gateway/accounts: the stored record of an upstream
 * account (round trip, damaged records refused, the public form without
 * the password) and sealing its password to the account. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/accounts.h"
#include "gateway/secret.h"
#include "xmalloc.h"

static void
sample(struct account *a)
{
	memset(a, 0, sizeof(*a));
	a->user = xstrdup("alice");
	a->user_id = 7;
	a->name = xstrdup("legacy");
	a->host = xstrdup("pop.example.org");
	a->port = 995;
	a->tls = CONFIG_TLS_STLS;
	a->auth = xstrdup("apop");
	a->login = xstrdup("al");
	a->password_sealed = xstrdup("v1:AAAA");
	a->mode = CONFIG_MODE_DELETE_AFTER;
	a->delete_after_days = 14;
	a->folder = xstrdup("Old/Mail");
	a->interval = 600;
	a->size_limit = 12345;
	a->enabled = false;
	a->created = 1700000000;
}

START_TEST(record_roundtrip)
{
	struct account a, b;
	json_t *rec;
	char *s;
	const char *e;

	sample(&a);
	rec = account_to_record(&a);
	/* the key carries user and account; the value does not repeat them */
	ck_assert_ptr_null(json_object_get(rec, "user"));
	ck_assert_ptr_null(json_object_get(rec, "account"));
	s = json_dumps(rec, JSON_COMPACT);
	ck_assert_int_eq(account_from_record("alice", 7, "legacy", s,
	    strlen(s), &b, &e), 0);
	ck_assert_str_eq(b.host, "pop.example.org");
	ck_assert_uint_eq(b.port, 995);
	ck_assert_int_eq(b.tls, CONFIG_TLS_STLS);
	ck_assert_str_eq(b.auth, "apop");
	ck_assert_str_eq(b.login, "al");
	ck_assert_str_eq(b.password_sealed, "v1:AAAA");
	ck_assert_int_eq(b.mode, CONFIG_MODE_DELETE_AFTER);
	ck_assert_uint_eq(b.delete_after_days, 14);
	ck_assert_str_eq(b.folder, "Old/Mail");
	ck_assert_uint_eq(b.interval, 600);
	ck_assert_uint_eq(b.size_limit, 12345);
	ck_assert(!b.enabled);
	ck_assert_int_eq(b.created, 1700000000);
	ck_assert_uint_eq(b.user_id, 7);
	free(s);
	json_decref(rec);
	account_clear(&b);

	/* the public form has everything but the password */
	rec = account_to_public(&a);
	s = json_dumps(rec, 0);
	ck_assert(strstr(s, "v1:") == NULL);
	ck_assert(strstr(s, "password") == NULL);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "mode")),
	    "delete-after:14");
	ck_assert_str_eq(json_string_value(json_object_get(rec, "account")),
	    "legacy");
	free(s);
	json_decref(rec);
	account_clear(&a);
}
END_TEST

START_TEST(damaged_records_refused)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{}",
		"{\"host\":\"h\",\"port\":0,\"tls\":\"stls\",\"auth\":\"auto\","
		"\"login\":\"l\",\"password_sealed\":\"v1:\",\"mode\":\"keep\","
		"\"folder\":\"INBOX\",\"interval\":1,\"size_limit\":0,"
		"\"enabled\":true,\"created\":0}",
		"{\"host\":\"h\",\"port\":995,\"tls\":\"ssl\",\"auth\":\"auto\","
		"\"login\":\"l\",\"password_sealed\":\"v1:\",\"mode\":\"keep\","
		"\"folder\":\"INBOX\",\"interval\":1,\"size_limit\":0,"
		"\"enabled\":true,\"created\":0}",
		"{\"host\":\"h\",\"port\":995,\"tls\":\"stls\",\"auth\":\"auto\","
		"\"login\":\"l\",\"password_sealed\":\"v1:\",\"mode\":\"never\","
		"\"folder\":\"INBOX\",\"interval\":1,\"size_limit\":0,"
		"\"enabled\":true,\"created\":0}",
		"{\"host\":\"h\",\"port\":995,\"tls\":\"stls\",\"auth\":\"auto\","
		"\"login\":\"l\",\"mode\":\"keep\","
		"\"folder\":\"INBOX\",\"interval\":1,\"size_limit\":0,"
		"\"enabled\":true,\"created\":0}",
	};
	struct account a;
	const char *e;

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		e = NULL;
		ck_assert_int_eq(account_from_record("u", 1, "a", bad[i],
		    strlen(bad[i]), &a, &e), -1);
		ck_assert_str_eq(e, "damaged upstream-account record");
	}
}
END_TEST

START_TEST(password_sealed_to_the_account)
{
	unsigned char kb[SECRET_KEY_LEN];
	struct secret_key *key;
	struct account a, other;
	char *pw = NULL;
	const char *e;

	memset(kb, 9, sizeof(kb));
	key = secret_key_from_bytes(kb);
	sample(&a);
	ck_assert_int_eq(account_seal_password(&a, key, "pop-pass"), 0);
	ck_assert(strstr(a.password_sealed, "pop-pass") == NULL);
	ck_assert_int_eq(account_open_password(&a, key, &pw, &e), 0);
	ck_assert_str_eq(pw, "pop-pass");
	secret_free_plain(pw);
	/* copied onto another account (or user) it does not open */
	sample(&other);
	free(other.name);
	other.name = xstrdup("other");
	free(other.password_sealed);
	other.password_sealed = xstrdup(a.password_sealed);
	ck_assert_int_eq(account_open_password(&other, key, &pw, &e), -1);
	free(other.user);
	other.user = xstrdup("bob");
	free(other.name);
	other.name = xstrdup("legacy");
	ck_assert_int_eq(account_open_password(&other, key, &pw, &e), -1);
	account_clear(&a);
	account_clear(&other);
	secret_key_free(&key);
}
END_TEST

/* Issue 16: trust and OAuth fields survive the record; the refresh
   token is sealed to the account and is not the password; the public form
   carries neither. */
START_TEST(trust_and_oauth_fields)
{
	struct account a, b;
	struct secret_key *key;
	unsigned char kb[SECRET_KEY_LEN];
	json_t *rec, *pub;
	char *s, *tok = NULL, *pw = NULL;
	const char *e;

	memset(kb, 7, sizeof(kb));
	key = secret_key_from_bytes(kb);
	sample(&a);
	free(a.auth);
	a.auth = xstrdup("xoauth2");
	a.ca_file = xstrdup("/etc/ca.pem");
	a.ca_only = true;
	a.fingerprint = xstrdup("ab:cd");
	a.allow_cleartext = true;
	a.oauth_provider = xstrdup("microsoft");
	a.oauth_signed_in = 1700000001;
	ck_assert(account_is_oauth(&a));
	ck_assert_int_eq(account_seal_refresh(&a, key, "rt-secret"), 0);
	rec = account_to_record(&a);
	s = json_dumps(rec, JSON_COMPACT);
	ck_assert(strstr(s, "rt-secret") == NULL);
	ck_assert_int_eq(account_from_record("alice", 7, "legacy", s,
	    strlen(s), &b, &e), 0);
	ck_assert_str_eq(b.ca_file, "/etc/ca.pem");
	ck_assert(b.ca_only);
	ck_assert_str_eq(b.fingerprint, "ab:cd");
	ck_assert(b.allow_cleartext);
	ck_assert_str_eq(b.oauth_provider, "microsoft");
	ck_assert(!b.oauth_needs_signin);
	ck_assert_int_eq(b.oauth_signed_in, 1700000001);
	ck_assert_int_eq(account_open_refresh(&b, key, &tok, &e), 0);
	ck_assert_str_eq(tok, "rt-secret");
	secret_free_plain(tok);
	/* the sealed token does not open as the password, nor for another
	   account */
	free(b.password_sealed);
	b.password_sealed = xstrdup(b.refresh_sealed);
	ck_assert_int_eq(account_open_password(&b, key, &pw, &e), -1);
	free(b.name);
	b.name = xstrdup("other");
	ck_assert_int_eq(account_open_refresh(&b, key, &tok, &e), -1);
	pub = account_to_public(&a);
	ck_assert_ptr_null(json_object_get(pub, "refresh_sealed"));
	ck_assert(json_is_true(json_object_get(pub, "oauth_grant")));
	/* clearing */
	ck_assert_int_eq(account_seal_refresh(&a, key, NULL), 0);
	ck_assert_ptr_null(a.refresh_sealed);
	json_decref(pub);
	json_decref(rec);
	free(s);
	account_clear(&a);
	account_clear(&b);
	/* an old record without the new fields still loads */
	sample(&a);
	rec = account_to_record(&a);
	s = json_dumps(rec, JSON_COMPACT);
	ck_assert_int_eq(account_from_record("alice", 7, "legacy", s,
	    strlen(s), &b, &e), 0);
	ck_assert_ptr_null(b.ca_file);
	ck_assert_ptr_null(b.oauth_provider);
	ck_assert(!b.allow_cleartext);
	json_decref(rec);
	free(s);
	account_clear(&a);
	account_clear(&b);
	secret_key_free(&key);
}
END_TEST

START_TEST(account_names)
{
	ck_assert(account_name_valid("alice@pop.example.org"));
	ck_assert(account_name_valid("a-b_c.d+e"));
	ck_assert(!account_name_valid(""));
	ck_assert(!account_name_valid("a b"));
	ck_assert(!account_name_valid("a/b"));
	ck_assert(!account_name_valid("a:b"));
	ck_assert(account_name_valid(
	    "123456789012345678901234567890123456789012345678"));
	ck_assert(!account_name_valid(
	    "1234567890123456789012345678901234567890123456789"));
}
END_TEST

static Suite *
accounts_suite(void)
{
	Suite *s = suite_create("gateway_accounts");
	TCase *tc = tcase_create("accounts");

	tcase_add_test(tc, record_roundtrip);
	tcase_add_test(tc, damaged_records_refused);
	tcase_add_test(tc, password_sealed_to_the_account);
	tcase_add_test(tc, account_names);
	tcase_add_test(tc, trust_and_oauth_fields);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(accounts_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
