/* Check suite for lib/password (argon2id) and lib/tls (server context). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "password.h"
#include "tls.h"

START_TEST(password_roundtrip)
{
	char enc[PASSWORD_ENCODED_MAX], enc2[PASSWORD_ENCODED_MAX];
	const char *err = NULL;

	ck_assert_int_eq(password_hash("s3cret", 6, enc, &err), 0);
	ck_assert(strncmp(enc, "$argon2id$v=19$", 15) == 0);
	ck_assert(password_verify(enc, "s3cret", 6));
	ck_assert(!password_verify(enc, "s3cre", 5));
	ck_assert(!password_verify(enc, "s3cret!", 7));
	ck_assert(!password_verify(enc, "", 0));
	/* random salt: the same password hashes differently */
	ck_assert_int_eq(password_hash("s3cret", 6, enc2, &err), 0);
	ck_assert_str_ne(enc, enc2);
	ck_assert(password_verify(enc2, "s3cret", 6));
}
END_TEST

START_TEST(password_embedded_nul_and_limits)
{
	char enc[PASSWORD_ENCODED_MAX];
	const char *err = NULL;
	char *big = malloc(PASSWORD_MAX_LEN + 1);

	ck_assert_int_eq(password_hash("a\0b", 3, enc, &err), 0);
	ck_assert(password_verify(enc, "a\0b", 3));
	ck_assert(!password_verify(enc, "a", 1));
	memset(big, 'x', PASSWORD_MAX_LEN + 1);
	ck_assert_int_eq(password_hash(big, PASSWORD_MAX_LEN + 1, enc, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert(!password_verify(enc, big, PASSWORD_MAX_LEN + 1));
	free(big);
}
END_TEST

START_TEST(password_malformed_hash)
{
	ck_assert(!password_verify(NULL, "x", 1));
	ck_assert(!password_verify("", "x", 1));
	ck_assert(!password_verify("plaintext", "plaintext", 9));
	ck_assert(!password_verify("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
	    "x", 1));
	ck_assert(!password_verify("$argon2id$v=19$m=garbage", "x", 1));
}
END_TEST

/* Writes a self-signed EC certificate and key to dir; returns 0 on success. */
static int
make_cert(const char *crt, const char *key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;

	if (pk == NULL || x == NULL)
		return -1;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, pk, EVP_sha256());
	f = fopen(crt, "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key, "w");
	PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pk);
	return 0;
}

START_TEST(tls_ctx_modern_defaults)
{
	char dir[] = "/tmp/pgtlsXXXXXX";
	char crt[64], key[64], other[64], okey[64];
	const char *err = NULL;
	SSL_CTX *ctx;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(crt, sizeof(crt), "%s/s.crt", dir);
	snprintf(key, sizeof(key), "%s/s.key", dir);
	snprintf(other, sizeof(other), "%s/o.crt", dir);
	snprintf(okey, sizeof(okey), "%s/o.key", dir);
	ck_assert_int_eq(make_cert(crt, key), 0);
	ck_assert_int_eq(make_cert(other, okey), 0);

	ctx = tls_server_ctx_new(crt, key, &err);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION);
	ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
	ck_assert(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_free(ctx);

	err = NULL;
	ck_assert_ptr_null(tls_server_ctx_new(crt, okey, &err));
	ck_assert_ptr_nonnull(err);
	err = NULL;
	ck_assert_ptr_null(tls_server_ctx_new("/nonexistent.crt", key, &err));
	ck_assert_ptr_nonnull(err);
	ck_assert_int_eq(tls_log_errors("test"), 0);
	unlink(crt); unlink(key); unlink(other); unlink(okey);
	rmdir(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("lib_password");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, password_roundtrip);
	tcase_add_test(tc, password_embedded_nul_and_limits);
	tcase_add_test(tc, password_malformed_hash);
	tcase_add_test(tc, tls_ctx_modern_defaults);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
