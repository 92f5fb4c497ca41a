#include "tls.h"

#include <openssl/err.h>

#include "log.h"

SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file,
    const char **error_r)
{
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = "cannot create TLS context";
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		*error_r = "cannot set TLS 1.2 as the minimum version";
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_TICKET);
	/* OpenSSL decrypts records in place and would keep the last
	   plaintext (an IMAP LOGIN's password) in its read buffer until
	   overwritten: wipe it once handed to us. */
	SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
	/* Smaller per-connection buffers: release them while idle. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*error_r = "cannot load the TLS certificate chain";
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		*error_r = "cannot load the TLS private key";
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = "the TLS private key does not match the certificate";
		goto fail;
	}
	return ctx;
fail:
	tls_log_errors("tls");
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_log_errors(const char *what)
{
	unsigned long e;
	char buf[256];
	int n = 0;

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warn("%s event=openssl_error error=\"%s\"", what, buf);
		n++;
	}
	return n;
}

void
tls_clear_errors(void)
{
	ERR_clear_error();
}

enum tls_errors_kind
tls_describe_errors(const unsigned long *codes, size_t n, char *buf,
    size_t size)
{
	enum tls_errors_kind kind = TLS_ERRORS_NONE;
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		unsigned long e = codes[i];
		char text[256];
		int w;

		if (ERR_GET_LIB(e) == 0)
			continue;	/* libevent's SSL_get_error() class */
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
		if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) ==
		    SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			if (kind == TLS_ERRORS_NONE)
				kind = TLS_ERRORS_EOF;
			continue;
		}
#endif
		kind = TLS_ERRORS_REAL;
		ERR_error_string_n(e, text, sizeof(text));
		w = snprintf(buf + o, size - o, "%s%s", o > 0 ? "; " : "",
		    text);
		if (w < 0 || (size_t)w >= size - o)
			break;
		o += (size_t)w;
	}
	return kind;
}
