/* pop3-login — TLS (POP3S, STLS, chain and host verification, pinned
 * fingerprints) and authentication (USER/PASS, APOP, AUTH PLAIN, AUTH
 * LOGIN, AUTH CRAM-MD5) for a POP3 session; see pop3-session.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pop3-upstream/pop3-session.h"
#include "xmalloc.h"

static void
drain_ssl_errors(struct pop3_session *s, char *buf, size_t bufsize)
{
	unsigned long e;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		if (buf[0] == '\0')
			ERR_error_string_n(e, buf, bufsize);
		else
			log_debug("pop3 account=%s openssl=%lx", s->log_id, e);
	}
}

static bool
host_is_ip(const char *host)
{
	unsigned char buf[16];

	return evutil_inet_pton(AF_INET, host, buf) == 1 ||
	    evutil_inet_pton(AF_INET6, host, buf) == 1;
}

static int
parse_fingerprint(const char *s, unsigned char out[32])
{
	size_t n = 0;
	int hi = -1;

	for (; *s != '\0'; s++) {
		int v;

		if (*s == ':')
			continue;
		if (!isxdigit((unsigned char)*s))
			return -1;
		v = isdigit((unsigned char)*s) ? *s - '0' :
		    tolower((unsigned char)*s) - 'a' + 10;
		if (hi < 0) {
			hi = v;
		} else {
			if (n == 32)
				return -1;
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	return n == 32 && hi < 0 ? 0 : -1;
}

int
pop3_login_ssl_ctx(struct pop3_session *s, const char **error_r)
{
	const struct upstream_account *a = s->acct;

	s->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (s->ssl_ctx == NULL) {
		*error_r = "cannot create a TLS context";
		return -1;
	}
	SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
	if (a->fingerprint != NULL) {
		/* the pin is checked once the handshake is done, before
		   anything is sent */
		SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (a->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(s->ssl_ctx, a->ca_file,
		    NULL) != 1) {
			ERR_clear_error();
			*error_r = "cannot load the account's CA file";
			return -1;
		}
	} else if (SSL_CTX_set_default_verify_paths(s->ssl_ctx) != 1) {
		ERR_clear_error();
		*error_r = "cannot load the system trust store";
		return -1;
	}
	return 0;
}

void
pop3_login_start_tls(struct pop3_session *s)
{
	SSL *ssl = SSL_new(s->ssl_ctx);
	struct bufferevent *f;
	const char *host = s->acct->host;

	if (ssl == NULL) {
		pop3_session_fail(s, POP3_OUTCOME_TLS,
		    "cannot create a TLS session");
		return;
	}
	if (!host_is_ip(host))
		SSL_set_tlsext_host_name(ssl, host);
	if (s->acct->fingerprint == NULL) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		if (host_is_ip(host))
			X509_VERIFY_PARAM_set1_ip_asc(vp, host);
		else
			SSL_set1_host(ssl, host);
	}
	/* STLS injection: whatever the server sent after its +OK, before
	   the handshake, is discarded, never read as a response. */
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	/* on failure the filter frees ssl and (CLOSE_ON_FREE) the plain
	   bufferevent; s->bev must not be freed again */
	f = bufferevent_openssl_filter_new(s->env.base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (f == NULL) {
		s->bev = NULL;
		pop3_session_fail(s, POP3_OUTCOME_TLS, "cannot start TLS");
		return;
	}
	s->bev = f;
	s->phase = PHASE_TLS;
	bufferevent_setcb(f, pop3_session_on_read, NULL,
	    pop3_session_on_event, s);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	pop3_session_arm(s, TMO_TLS);
}

static bool
check_pin(struct pop3_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	X509 *cert = SSL_get1_peer_certificate(ssl);
	unsigned char want[32], got[EVP_MAX_MD_SIZE];
	unsigned int got_len = 0;
	bool ok;

	if (cert == NULL)
		return false;
	ok = parse_fingerprint(s->acct->fingerprint, want) == 0 &&
	    X509_digest(cert, EVP_sha256(), got, &got_len) == 1 &&
	    got_len == 32 && memcmp(want, got, 32) == 0;
	X509_free(cert);
	return ok;
}

void
pop3_login_tls_done(struct pop3_session *s)
{
	s->tls_active = true;
	s->phase = PHASE_PROTOCOL;
	if (s->acct->fingerprint != NULL && !check_pin(s)) {
		pop3_session_fail(s, POP3_OUTCOME_TLS,
		    "server certificate does not match the pinned "
		    "fingerprint");
		return;
	}
	log_debug("pop3 account=%s event=tls-up", s->log_id);
	if (s->stls_pending) {
		s->stls_pending = false;
		/* RFC 2595 §4: forget CAPA; ask again over TLS */
		memset(&s->capa, 0, sizeof(s->capa));
		pop3_session_send(s, CMD_CAPA, 0, "CAPA");
	} else {
		/* POP3S: the greeting comes over TLS */
		s->q_head = 0;
		s->q_len = 1;
		s->queue[0].kind = CMD_GREETING;
		s->rmode = RMODE_STATUS;
		pop3_session_arm(s, TMO_GREETING);
	}
}

void
pop3_login_tls_failed(struct pop3_session *s)
{
	char err[256];
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

	drain_ssl_errors(s, err, sizeof(err));
	if (vr != X509_V_OK)
		pop3_session_fail(s, POP3_OUTCOME_TLS,
		    "TLS handshake failed: certificate: %s",
		    X509_verify_cert_error_string(vr));
	else
		pop3_session_fail(s, POP3_OUTCOME_TLS,
		    "TLS handshake failed: %s",
		    err[0] != '\0' ? err : "connection closed");
}

/* ---- authentication ---------------------------------------------------- */

static void
b64(const void *in, size_t len, char *out, size_t outsize)
{
	PG_ASSERT(outsize >= 4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static enum upstream_auth
choose_auth(struct pop3_session *s)
{
	if (s->acct->auth != UPSTREAM_AUTH_AUTO)
		return s->acct->auth;
	if (s->have_apop_ts)
		return UPSTREAM_AUTH_APOP;
	if (s->capa.sasl_plain)
		return UPSTREAM_AUTH_PLAIN;
	if (s->capa.sasl_login)
		return UPSTREAM_AUTH_LOGIN;
	return UPSTREAM_AUTH_USER;
}

void
pop3_login_start_auth(struct pop3_session *s)
{
	const struct upstream_account *a = s->acct;

	if (!s->tls_active && a->tls != UPSTREAM_TLS_NONE) {
		/* can't happen by construction; refuse loudly if it does */
		pop3_session_fail(s, POP3_OUTCOME_TLS,
		    "refusing to authenticate without TLS");
		return;
	}
	s->auth_used = choose_auth(s);
	s->auth_step = 0;
	switch (s->auth_used) {
	case UPSTREAM_AUTH_APOP: {
		unsigned char md[16];
		char hex[33];
		EVP_MD_CTX *c;

		if (!s->have_apop_ts) {
			pop3_session_fail(s, POP3_OUTCOME_AUTH,
			    "APOP configured but the greeting has no "
			    "timestamp");
			return;
		}
		c = EVP_MD_CTX_new();
		EVP_DigestInit_ex(c, EVP_md5(), NULL);
		EVP_DigestUpdate(c, s->apop_ts, strlen(s->apop_ts));
		EVP_DigestUpdate(c, a->password, strlen(a->password));
		EVP_DigestFinal_ex(c, md, NULL);
		EVP_MD_CTX_free(c);
		for (int i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		s->trace_mask = "APOP **** ****";
		pop3_session_send(s, CMD_APOP, 0, "APOP %s %s", a->login, hex);
		break;
	}
	case UPSTREAM_AUTH_PLAIN: {
		size_t ll = strlen(a->login), pl = strlen(a->password);
		size_t n = ll + pl + 2;
		char *raw = xmalloc(n);
		char *enc = xmalloc(4 * ((n + 2) / 3) + 1);

		if (4 * ((n + 2) / 3) + 16 > POP3_CLIENT_CMD_MAX) {
			free(raw);
			free(enc);
			pop3_session_fail(s, POP3_OUTCOME_AUTH,
			    "credentials too long for AUTH PLAIN");
			return;
		}
		raw[0] = '\0';
		memcpy(raw + 1, a->login, ll);
		raw[ll + 1] = '\0';
		memcpy(raw + ll + 2, a->password, pl);
		b64(raw, n, enc, 4 * ((n + 2) / 3) + 1);
		s->auth_step = 2;	/* the next reply ends it */
		s->trace_mask = "AUTH PLAIN ****";
		pop3_session_send(s, CMD_AUTH, 0, "AUTH PLAIN %s", enc);
		secure_zero(raw, n);
		secure_zero(enc, strlen(enc));
		free(raw);
		free(enc);
		break;
	}
	case UPSTREAM_AUTH_LOGIN:
		s->auth_step = 0;
		pop3_session_send(s, CMD_AUTH, 0, "AUTH LOGIN");
		break;
	case UPSTREAM_AUTH_CRAM_MD5:
		if (s->capa.seen && !s->capa.sasl_cram_md5)
			log_warn("pop3 account=%s event=cram-md5-not-announced",
			    s->log_id);
		s->auth_step = 0;
		pop3_session_send(s, CMD_AUTH, 0, "AUTH CRAM-MD5");
		break;
	case UPSTREAM_AUTH_USER:
	case UPSTREAM_AUTH_AUTO:
		s->auth_used = UPSTREAM_AUTH_USER;
		pop3_session_send(s, CMD_USER, 0, "USER %s", a->login);
		break;
	}
}

/* AUTH LOGIN continuation: step 0 → send user, 1 → send password. */
void
pop3_login_sasl_continue(struct pop3_session *s)
{
	const char *v = s->auth_step == 0 ? s->acct->login : s->acct->password;
	size_t n = strlen(v);
	char *enc;

	if (4 * ((n + 2) / 3) + 8 > POP3_CLIENT_CMD_MAX) {
		pop3_session_fail(s, POP3_OUTCOME_AUTH,
		    "credentials too long for AUTH LOGIN");
		return;
	}
	enc = xmalloc(4 * ((n + 2) / 3) + 1);
	b64(v, n, enc, 4 * ((n + 2) / 3) + 1);
	/* the continuation replaces the AUTH command at the queue front */
	pop3_session_pop(s);
	s->auth_step++;
	s->trace_mask = "****";
	pop3_session_send(s, CMD_AUTH, 0, "%s", enc);
	secure_zero(enc, strlen(enc));
	free(enc);
}

/*
 * CRAM-MD5 (RFC 2195): the server's challenge (base64) is answered with
 * base64("<login> <hex HMAC-MD5(password, challenge)>"). The password
 * never crosses the wire; the answer is masked in the trace and sent as a
 * secret all the same (an offline guess could test passwords on it).
 */
int
pop3_cram_md5_response(const char *login, const char *password,
    const char *challenge_b64, size_t challenge_len, char *out,
    size_t outsize, const char **error_r)
{
	unsigned char chal[POP3_CRAM_CHALLENGE_MAX + 3];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t ll = strlen(login), pad = 0, raw_len, n;
	char *raw = NULL;
	int dec, ret = -1;

	if (challenge_len == 0 || challenge_len % 4 != 0 ||
	    challenge_len / 4 * 3 > POP3_CRAM_CHALLENGE_MAX) {
		*error_r = "bad CRAM-MD5 challenge length";
		goto out;
	}
	for (size_t i = 0; i < challenge_len; i++) {
		unsigned char c = (unsigned char)challenge_b64[i];

		if (c == '=' && i + 2 >= challenge_len) {
			pad++;
			continue;
		}
		if (pad > 0 || !(isalnum(c) || c == '+' || c == '/')) {
			*error_r = "CRAM-MD5 challenge is not base64";
			goto out;
		}
	}
	dec = EVP_DecodeBlock(chal, (const unsigned char *)challenge_b64,
	    (int)challenge_len);
	if (dec < 0 || (size_t)dec < pad) {
		*error_r = "CRAM-MD5 challenge is not base64";
		goto out;
	}
	if (HMAC(EVP_md5(), password, (int)strlen(password), chal,
	    (size_t)dec - pad, md, &mdlen) == NULL || mdlen != 16) {
		*error_r = "HMAC-MD5 failed";
		goto out;
	}
	raw_len = ll + 1 + 32;
	n = 4 * ((raw_len + 2) / 3) + 1;
	if (n > outsize) {
		*error_r = "login too long for CRAM-MD5";
		goto out;
	}
	raw = xmalloc(raw_len + 1);
	memcpy(raw, login, ll);
	raw[ll] = ' ';
	for (unsigned int i = 0; i < 16; i++)
		snprintf(raw + ll + 1 + 2 * i, 3, "%02x", md[i]);
	b64(raw, raw_len, out, outsize);
	ret = 0;
out:
	if (raw != NULL) {
		secure_zero(raw, raw_len);
		free(raw);
	}
	secure_zero(md, sizeof(md));
	secure_zero(chal, sizeof(chal));
	return ret;
}

/* The challenge to AUTH CRAM-MD5 arrived (payload: its base64). */
void
pop3_login_cram_md5_continue(struct pop3_session *s, const char *payload,
    size_t len)
{
	char out[POP3_CLIENT_CMD_MAX - 2];
	const char *err = NULL;

	if (pop3_cram_md5_response(s->acct->login, s->acct->password,
	    payload, len, out, sizeof(out), &err) < 0) {
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL, "AUTH CRAM-MD5: %s",
		    err);
		return;
	}
	/* the answer replaces the AUTH command at the queue front */
	pop3_session_pop(s);
	s->auth_step = 2;	/* the next reply ends it */
	s->trace_mask = "****";
	pop3_session_send(s, CMD_AUTH, 0, "%s", out);
	secure_zero(out, sizeof(out));
}

void
pop3_login_failed(struct pop3_session *s, const struct pop3_status *st)
{
	char esc[LOG_PEER_TEXT_MAX + 1];

	log_escape(esc, sizeof(esc), st->text, st->text_len);
	switch (st->code) {
	case POP3_RESP_IN_USE:
		pop3_session_fail(s, POP3_OUTCOME_TEMP,
		    "maildrop in use [IN-USE]: %s", esc);
		break;
	case POP3_RESP_LOGIN_DELAY:
		s->result.login_delay = s->capa.login_delay_set ?
		    s->capa.login_delay : 0;
		pop3_session_fail(s, POP3_OUTCOME_LOGIN_DELAY,
		    "logging in too often [LOGIN-DELAY]: %s", esc);
		break;
	case POP3_RESP_SYS_TEMP:
		pop3_session_fail(s, POP3_OUTCOME_TEMP,
		    "server problem [SYS/TEMP]: %s", esc);
		break;
	case POP3_RESP_SYS_PERM:
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "server problem [SYS/PERM]: %s", esc);
		break;
	default:
		pop3_session_fail(s, POP3_OUTCOME_AUTH,
		    "authentication failed (%s): %s",
		    upstream_auth_name(s->auth_used), esc);
		break;
	}
}

/* ---- the message table ------------------------------------------------- */
