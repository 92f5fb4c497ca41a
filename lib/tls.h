/*
 * tls — server-side TLS context set-up with modern defaults (level 2).
 *
 * tls_server_ctx_new() loads a certificate chain and a private key and
 * returns an SSL_CTX configured for a mail server: TLS 1.2 minimum, no
 * compression, no renegotiation, server cipher preference, session tickets
 * off (memory per idle connection matters more than resumption here).
 *
 * Reload: build a new context with tls_server_ctx_new(); hand it to the
 * users (they take their own reference with SSL_CTX_up_ref); free the old
 * one with SSL_CTX_free(). Connections already running keep the context
 * they started with, since each SSL holds a reference.
 */
#ifndef POPGATE_TLS_H
#define POPGATE_TLS_H

#include <openssl/ssl.h>

/*
 * Returns a new SSL_CTX (caller owns one reference; SSL_CTX_free) or NULL
 * with *error_r set to a static description; the OpenSSL error queue is
 * drained into the log in that case.
 */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file,
    const char **error_r);

/*
 * Logs every entry of this thread's OpenSSL error queue at warn level, one
 * line each, prefixed by what (e.g. "imap session=12"), and empties it.
 * Returns the number of entries logged.
 */
int tls_log_errors(const char *what);

/* Empties the OpenSSL error queue without logging (expected failures). */
void tls_clear_errors(void);

enum tls_errors_kind {
	TLS_ERRORS_NONE = 0,	/* nothing to report */
	TLS_ERRORS_EOF,		/* only the peer closing without close_notify */
	TLS_ERRORS_REAL,	/* a TLS failure worth a log line */
};

/*
 * Describes OpenSSL error codes a connection collected (libevent's
 * bufferevent_get_openssl_error) in one line of "; "-separated OpenSSL
 * texts, for one log line per event. libevent also records the
 * SSL_get_error() class of the failure as if it were an error code (a
 * small number without a library, which OpenSSL prints as the meaningless
 * "error:00000001:lib(0)::reason(1)"): those are left out. A peer that
 * closes without close_notify ("unexpected eof while reading") is an
 * ordinary disconnect for IMAP, which has LOGOUT of its own: that alone
 * gives TLS_ERRORS_EOF.
 */
enum tls_errors_kind tls_describe_errors(const unsigned long *codes,
    size_t n, char *buf, size_t size);

#endif
