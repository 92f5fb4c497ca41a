/* Check suite for pop3-upstream/pop3-parse-sasl (SCRAM messages, XOAUTH2
 * and OAUTHBEARER responses, base64) and pop3_scram_compute: the exchanges
 * of RFC 5802 5 (SCRAM-SHA-1) and RFC 7677 3 (SCRAM-SHA-256) byte for
 * byte, and the server messages a hostile server might send. */
#include <check.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-upstream/pop3-client.h"
#include "pop3-upstream/pop3-parse-sasl.h"

struct scram_vector {
	bool sha256;
	const char *cnonce;
	const char *server_first;
	const char *client_final;	/* with the proof */
	const char *server_final;
};

static const struct scram_vector vectors[] = {
	{ false, "fyko+d2lbbFgONRv9qkxdawL",
	  "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,"
	  "i=4096",
	  "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
	  "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	  "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=" },
	{ true, "rOprNGfwEbeRWgbNEkqO",
	  "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	  "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	  "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	  "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" },
};

START_TEST(scram_rfc_exchanges)
{
	const struct scram_vector *v = &vectors[_i];
	struct pop3_scram_server_first sf;
	char first[128], final[256], authmsg[512], proof_b64[64];
	unsigned char proof[EVP_MAX_MD_SIZE], ssig[EVP_MAX_MD_SIZE];
	unsigned char want_sig[EVP_MAX_MD_SIZE];
	const char *err = NULL;
	size_t hlen = 0;

	ck_assert_int_eq(pop3_scram_client_first("user", v->cnonce, first,
	    sizeof(first), &err), 0);
	ck_assert(strncmp(first, "n,,n=user,r=", 12) == 0);
	ck_assert_str_eq(first + 12, v->cnonce);
	ck_assert_int_eq(pop3_scram_parse_server_first(v->server_first,
	    strlen(v->server_first), v->cnonce, &sf, &err), 0);
	ck_assert_uint_eq(sf.iterations, 4096);
	ck_assert_int_eq(pop3_scram_client_final_bare(&sf, final,
	    sizeof(final), &err), 0);
	snprintf(authmsg, sizeof(authmsg), "%s,%s,%s", first + 3,
	    v->server_first, final);
	ck_assert_int_eq(pop3_scram_compute(v->sha256, "pencil", &sf, authmsg,
	    proof, ssig, &hlen), 0);
	ck_assert_uint_eq(hlen, v->sha256 ? 32 : 20);
	ck_assert_int_eq(pop3_b64_encode(proof, hlen, proof_b64,
	    sizeof(proof_b64)), 0);
	{
		char full[400];

		snprintf(full, sizeof(full), "%s,p=%s", final, proof_b64);
		ck_assert_str_eq(full, v->client_final);
	}
	ck_assert_int_eq(pop3_scram_parse_server_final(v->server_final,
	    strlen(v->server_final), want_sig, hlen, NULL, 0, &err), 0);
	ck_assert(memcmp(want_sig, ssig, hlen) == 0);
}
END_TEST

struct sf_case {
	const char *msg;
	const char *error;	/* NULL: accepted */
};

static const struct sf_case sf_cases[] = {
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=4096", NULL },
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=4096,x=ext", NULL },
	{ "m=must,r=abcXYZ,s=QSXCR+Q6sek8bf92,i=4096",
	  "SCRAM server demands an unknown mandatory extension" },
	{ "r=abc,s=QSXCR+Q6sek8bf92,i=4096",
	  "SCRAM server nonce does not extend ours" },
	{ "r=xbcXYZ,s=QSXCR+Q6sek8bf92,i=4096",
	  "SCRAM server nonce does not extend ours" },
	{ "r=abcX Z,s=QSXCR+Q6sek8bf92,i=4096",
	  "SCRAM server nonce has bad bytes" },
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf9,i=4096",
	  "SCRAM server-first message has no valid salt" },
	{ "r=abcXYZ,s=,i=4096",
	  "SCRAM server-first message has no valid salt" },
	{ "r=abcXYZ,i=4096,s=QSXCR+Q6sek8bf92",
	  "SCRAM server-first message has no valid salt" },
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf92",
	  "SCRAM server-first message has no iteration count" },
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=",
	  "SCRAM server-first message has no iteration count" },
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=-1",
	  "SCRAM iteration count is not a number" },
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=1023",
	  "SCRAM iteration count out of range (1024..100000)" },
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=100001",
	  "SCRAM iteration count out of range (1024..100000)" },
	{ "r=abcXYZ,s=QSXCR+Q6sek8bf92,i=99999999999",
	  "SCRAM server-first message has no iteration count" },
	{ "", "SCRAM server-first message does not start with r=" },
	{ "garbage", "SCRAM server-first message does not start with r=" },
};

START_TEST(scram_server_first_cases)
{
	const struct sf_case *c = &sf_cases[_i];
	struct pop3_scram_server_first sf;
	const char *err = NULL;
	int ret = pop3_scram_parse_server_first(c->msg, strlen(c->msg), "abc",
	    &sf, &err);

	if (c->error == NULL) {
		ck_assert_msg(ret == 0, "%s: %s", c->msg, err);
		ck_assert_uint_eq(sf.nonce_len, 6);
		ck_assert_uint_eq(sf.salt_len, 12);
	} else {
		ck_assert_int_eq(ret, -1);
		ck_assert_str_eq(err, c->error);
	}
}
END_TEST

START_TEST(scram_server_final_cases)
{
	unsigned char sig[32];
	char etext[16];
	const char *err = NULL;

	ck_assert_int_eq(pop3_scram_parse_server_final("e=invalid-proof", 15,
	    sig, 32, etext, sizeof(etext), &err), -1);
	ck_assert_str_eq(etext, "invalid-proof");
	/* long and hostile error text is cut and made printable */
	ck_assert_int_eq(pop3_scram_parse_server_final(
	    "e=\x1b[31mred and a very long text",
	    strlen("e=\x1b[31mred and a very long text"), sig, 32, etext,
	    sizeof(etext), &err), -1);
	ck_assert_str_eq(etext, "?[31mred and a ");
	/* a signature of the wrong length (SHA-1 size for SHA-256) */
	ck_assert_int_eq(pop3_scram_parse_server_final(
	    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", 30, sig, 32, NULL, 0, &err),
	    -1);
	ck_assert_str_eq(err, "SCRAM server signature malformed");
	ck_assert_int_eq(pop3_scram_parse_server_final("v=", 2, sig, 32, NULL,
	    0, &err), -1);
	ck_assert_int_eq(pop3_scram_parse_server_final("x=1", 3, sig, 32, NULL,
	    0, &err), -1);
	ck_assert_str_eq(err, "SCRAM server-final message has no verifier");
	ck_assert_int_eq(pop3_scram_parse_server_final("", 0, sig, 32, NULL,
	    0, &err), -1);
}
END_TEST

START_TEST(scram_login_escaping)
{
	char out[64];
	const char *err = NULL;

	ck_assert_int_eq(pop3_scram_client_first("a=b,c", "N", out,
	    sizeof(out), &err), 0);
	ck_assert_str_eq(out, "n,,n=a=3Db=2Cc,r=N");
	ck_assert_int_eq(pop3_scram_client_first("a\rb", "N", out,
	    sizeof(out), &err), -1);
	/* exactly too small */
	ck_assert_int_eq(pop3_scram_client_first("user", "nonce", out, 17,
	    &err), -1);
	ck_assert_int_eq(pop3_scram_client_first("user", "nonce", out, 18,
	    &err), 0);
}
END_TEST

START_TEST(oauth_responses)
{
	char out[256];
	size_t len = 0;
	const char *err = NULL;

	/* Google's documented example */
	ck_assert_int_eq(pop3_xoauth2_response("someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", out,
	    sizeof(out), &len, &err), 0);
	ck_assert_uint_eq(len, strlen("user=someuser@example.com") + 1 +
	    strlen("auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
	    + 2);
	{
		char b64[400];

		ck_assert_int_eq(pop3_b64_encode(out, len, b64, sizeof(b64)),
		    0);
		ck_assert_str_eq(b64, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRo"
		    "PUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1s"
		    "emRHRXVZMjl0Q2cBAQ==");
	}
	/* RFC 7628 3.2.1's example (with our login) */
	ck_assert_int_eq(pop3_oauthbearer_response("user@example.com",
	    "server.example.com", 143, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
	    out, sizeof(out), &len, &err), 0);
	ck_assert_uint_eq(len, strlen(out));
	ck_assert_str_eq(out, "n,a=user@example.com,\001host=server.example.com"
	    "\001port=143\001auth=Bearer "
	    "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\001\001");
	ck_assert_int_eq(pop3_oauthbearer_response("a,b=c", "h", 995, "t",
	    out, sizeof(out), &len, &err), 0);
	ck_assert(strncmp(out, "n,a=a=2Cb=3Dc,", 14) == 0);
	/* a token with a space or control byte would break the framing */
	ck_assert_int_eq(pop3_xoauth2_response("u", "a b", out, sizeof(out),
	    &len, &err), -1);
	ck_assert_int_eq(pop3_xoauth2_response("u", "a\001", out, sizeof(out),
	    &len, &err), -1);
	ck_assert_int_eq(pop3_xoauth2_response("u", "", out, sizeof(out),
	    &len, &err), -1);
	ck_assert_int_eq(pop3_xoauth2_response("u\n", "t", out, sizeof(out),
	    &len, &err), -1);
	ck_assert_int_eq(pop3_xoauth2_response("u", "tttt", out, 10, &len,
	    &err), -1);
}
END_TEST

START_TEST(base64_both_ways)
{
	unsigned char out[16];
	char enc[32];
	size_t n = 0;

	for (size_t len = 0; len <= 7; len++) {
		const char *src = "abcdefg";

		ck_assert_int_eq(pop3_b64_encode(src, len, enc, sizeof(enc)),
		    0);
		ck_assert_uint_eq(strlen(enc), POP3_B64_LEN(len));
		ck_assert_int_eq(pop3_b64_decode(enc, strlen(enc), out,
		    sizeof(out), &n), 0);
		ck_assert_uint_eq(n, len);
		ck_assert(memcmp(out, src, len) == 0);
	}
	ck_assert_int_eq(pop3_b64_encode("abc", 3, enc, 4), -1);
	ck_assert_int_eq(pop3_b64_decode("YWJj", 4, out, 2, &n), -1);
	ck_assert_int_eq(pop3_b64_decode("YWJ", 3, out, 16, &n), -1);
	ck_assert_int_eq(pop3_b64_decode("Y=Jj", 4, out, 16, &n), -1);
	ck_assert_int_eq(pop3_b64_decode("YW=j", 4, out, 16, &n), -1);
	ck_assert_int_eq(pop3_b64_decode("YQ==YWJj", 8, out, 16, &n), -1);
	ck_assert_int_eq(pop3_b64_decode("YW J", 4, out, 16, &n), -1);
	ck_assert_int_eq(pop3_b64_decode("YW\0J", 4, out, 16, &n), -1);
	ck_assert_int_eq(pop3_b64_decode("", 0, out, 16, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("pop3_sasl");
	TCase *tc = tcase_create("sasl");

	tcase_add_loop_test(tc, scram_rfc_exchanges, 0,
	    sizeof(vectors) / sizeof(vectors[0]));
	tcase_add_loop_test(tc, scram_server_first_cases, 0,
	    sizeof(sf_cases) / sizeof(sf_cases[0]));
	tcase_add_test(tc, scram_server_final_cases);
	tcase_add_test(tc, scram_login_escaping);
	tcase_add_test(tc, oauth_responses);
	tcase_add_test(tc, base64_both_ways);
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
