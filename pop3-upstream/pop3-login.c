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
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pop3-upstream/pop3-session.h"
#include "workq.h"
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
	/* an account's CA file adds to the system's store (a private CA
	   for one legacy server must not make every public CA unusable)
	   unless the admin asked for it alone (ca_only) */
	if ((a->ca_file == NULL || !a->ca_only) &&
	    SSL_CTX_set_default_verify_paths(s->ssl_ctx) != 1) {
		ERR_clear_error();
		*error_r = "cannot load the system trust store";
		return -1;
	}
	if (a->ca_file != NULL && SSL_CTX_load_verify_locations(s->ssl_ctx,
	    a->ca_file, NULL) != 1) {
		ERR_clear_error();
		*error_r = "cannot load the account's CA file";
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
	ok = upstream_fingerprint_parse(s->acct->fingerprint, want) == 0 &&
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
	/* SCRAM first: the password never crosses the wire and the server
	   proves it knows it. A server may announce SCRAM yet hold hashes
	   SCRAM cannot use: then one more try with the next mechanism
	   (auth_fallback, pop3_login_failed). */
	if (!s->auth_fallback && s->capa.sasl_scram_sha256)
		return UPSTREAM_AUTH_SCRAM_SHA_256;
	if (!s->auth_fallback && s->capa.sasl_scram_sha1)
		return UPSTREAM_AUTH_SCRAM_SHA_1;
	if (s->have_apop_ts)
		return UPSTREAM_AUTH_APOP;
	if (s->capa.sasl_plain)
		return UPSTREAM_AUTH_PLAIN;
	if (s->capa.sasl_login)
		return UPSTREAM_AUTH_LOGIN;
	return UPSTREAM_AUTH_USER;
}

static const char *
mech_name(enum upstream_auth auth)
{
	switch (auth) {
	case UPSTREAM_AUTH_SCRAM_SHA_1:
		return "SCRAM-SHA-1";
	case UPSTREAM_AUTH_SCRAM_SHA_256:
		return "SCRAM-SHA-256";
	case UPSTREAM_AUTH_XOAUTH2:
		return "XOAUTH2";
	case UPSTREAM_AUTH_OAUTHBEARER:
		return "OAUTHBEARER";
	default:
		return "?";
	}
}

/*
 * Sends "AUTH MECH <base64 of raw>" when that fits RFC 5034's 255
 * octets, else "AUTH MECH" alone: the response then follows the server's
 * empty challenge (auth_step 0 -> send_ir). The raw bytes are a
 * credential: the command is masked in the trace and wiped once sent.
 */
static void
send_auth_ir(struct pop3_session *s, const char *raw, size_t len)
{
	const char *mech = mech_name(s->auth_used);
	size_t elen = POP3_B64_LEN(len);
	char *enc = xmalloc(elen + 1);

	PG_ASSERT(pop3_b64_encode(raw, len, enc, elen + 1) == 0);
	if (5 + strlen(mech) + 1 + elen <= POP3_CLIENT_AUTH_IR_MAX) {
		s->auth_step = 1;
		s->trace_mask = "AUTH **** ****";
		pop3_session_send(s, CMD_AUTH, 0, "AUTH %s %s", mech, enc);
	} else {
		s->auth_step = 0;
		pop3_session_send(s, CMD_AUTH, 0, "AUTH %s", mech);
	}
	secure_zero(enc, elen);
	free(enc);
}

/* The response after the server's empty challenge (see send_auth_ir). */
static void
send_response(struct pop3_session *s, const char *raw, size_t len)
{
	size_t elen = POP3_B64_LEN(len);
	char *enc = xmalloc(elen + 1);

	PG_ASSERT(pop3_b64_encode(raw, len, enc, elen + 1) == 0);
	pop3_session_pop(s);
	s->trace_mask = "****";
	pop3_session_send(s, CMD_AUTH, 0, "%s", enc);
	secure_zero(enc, elen);
	free(enc);
}

/* ---- SCRAM (RFC 5802, RFC 7677) ----------------------------------------- */

static int
hmac(const EVP_MD *md, const unsigned char *key, size_t klen,
    const void *data, size_t len, unsigned char *out)
{
	unsigned int n = 0;

	return HMAC(md, key, (int)klen, data, len, out, &n) != NULL ? 0 : -1;
}

int
pop3_scram_compute(bool sha256, const char *password,
    const struct pop3_scram_server_first *sf, const char *authmsg,
    unsigned char *proof, unsigned char *server_sig, size_t *hlen_r)
{
	const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
	size_t hlen = (size_t)EVP_MD_size(md);
	unsigned char salted[EVP_MAX_MD_SIZE], stored[EVP_MAX_MD_SIZE];
	unsigned char csig[EVP_MAX_MD_SIZE], skey[EVP_MAX_MD_SIZE];
	int ret = -1;

	/* SaltedPassword = Hi(password, salt, i); the password is used as
	   it is (no SASLprep: an ASCII password needs none) */
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), sf->salt,
	    (int)sf->salt_len, (int)sf->iterations, md, (int)hlen,
	    salted) != 1 ||
	    hmac(md, salted, hlen, "Client Key", 10, proof) < 0 ||
	    EVP_Digest(proof, hlen, stored, NULL, md, NULL) != 1 ||
	    hmac(md, stored, hlen, authmsg, strlen(authmsg), csig) < 0 ||
	    hmac(md, salted, hlen, "Server Key", 10, skey) < 0 ||
	    hmac(md, skey, hlen, authmsg, strlen(authmsg), server_sig) < 0)
		goto out;
	for (size_t i = 0; i < hlen; i++)
		proof[i] ^= csig[i];	/* ClientKey XOR ClientSignature */
	*hlen_r = hlen;
	ret = 0;
out:
	secure_zero(salted, sizeof(salted));
	secure_zero(stored, sizeof(stored));
	secure_zero(csig, sizeof(csig));
	secure_zero(skey, sizeof(skey));
	return ret;
}

static void
scram_start(struct pop3_session *s)
{
	unsigned char rnd[POP3_SCRAM_NONCE_LEN];
	char first[UPSTREAM_LOGIN_MAX * 3 + POP3_SCRAM_NONCE_LEN + 16];
	const char *err = NULL;
	char b[POP3_B64_LEN(POP3_SCRAM_NONCE_LEN) + 1];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		pop3_session_fail(s, POP3_OUTCOME_TEMP,
		    "no random bytes for a SCRAM nonce");
		return;
	}
	/* base64 is printable and has no ',' */
	PG_ASSERT(pop3_b64_encode(rnd, sizeof(rnd), b, sizeof(b)) == 0);
	memcpy(s->scram_cnonce, b, POP3_SCRAM_NONCE_LEN);
	s->scram_cnonce[POP3_SCRAM_NONCE_LEN] = '\0';
	if (pop3_scram_client_first(s->acct->login, s->scram_cnonce, first,
	    sizeof(first), &err) < 0) {
		pop3_session_fail(s, POP3_OUTCOME_AUTH, "%s", err);
		return;
	}
	if (s->capa.seen && !(s->auth_used == UPSTREAM_AUTH_SCRAM_SHA_1 ?
	    s->capa.sasl_scram_sha1 : s->capa.sasl_scram_sha256))
		log_warn("pop3 account=%s event=mechanism-not-announced "
		    "mechanism=%s", s->log_id, mech_name(s->auth_used));
	free(s->scram_first_bare);
	s->scram_first_bare = xstrdup(first + 3);	/* after "n,," */
	s->scram_verified = false;
	send_auth_ir(s, first, strlen(first));
}

/*
 * The client proof costs a PBKDF2 of the server's chosen rounds (4,096
 * usually, up to POP3_SCRAM_ITER_MAX): on a worker, with copies of the
 * password and the messages; the session answers when it comes back.
 */
struct scram_job {
	struct workq_job wq;
	struct pop3_session *s;		/* NULL once the session is gone */
	bool sha256;
	char *password;
	struct pop3_scram_server_first sf;
	char *authmsg;
	char final[POP3_SCRAM_MSG_MAX + 200];
	unsigned char ckey[EVP_MAX_MD_SIZE];
	unsigned char server_sig[EVP_MAX_MD_SIZE];
	size_t hlen;
	int rc;
};

static enum workq_run_result
scram_job_run(struct workq_job *wq)
{
	struct scram_job *j = (struct scram_job *)wq;

	j->rc = pop3_scram_compute(j->sha256, j->password, &j->sf,
	    j->authmsg, j->ckey, j->server_sig, &j->hlen);
	return WORKQ_DONE;
}

static void
scram_job_free(struct scram_job *j)
{
	secure_zero(j->password, strlen(j->password));
	free(j->password);
	free(j->authmsg);
	secure_zero(j->ckey, sizeof(j->ckey));
	secure_zero(j->final, sizeof(j->final));
	free(j);
}

static void
scram_job_done(struct workq_job *wq)
{
	struct scram_job *j = (struct scram_job *)wq;
	struct pop3_session *s = j->s;
	char proof[POP3_B64_LEN(EVP_MAX_MD_SIZE) + 1];
	size_t flen;

	if (s == NULL)
		goto out;
	s->scram_job = NULL;
	if (s->finishing)
		goto out;
	if (wq->cancelled || j->rc < 0) {
		pop3_session_fail(s, POP3_OUTCOME_TEMP, "SCRAM: hash failed");
		goto out;
	}
	memcpy(s->scram_server_sig, j->server_sig, j->hlen);
	s->scram_hlen = j->hlen;
	PG_ASSERT(pop3_b64_encode(j->ckey, j->hlen, proof, sizeof(proof)) ==
	    0);
	flen = strlen(j->final);
	snprintf(j->final + flen, sizeof(j->final) - flen, ",p=%s", proof);
	s->auth_step = 2;
	send_response(s, j->final, strlen(j->final));
	secure_zero(proof, sizeof(proof));
out:
	scram_job_free(j);
}

void
pop3_login_detach(struct pop3_session *s)
{
	if (s->scram_job == NULL)
		return;
	s->scram_job->s = NULL;
	workq_cancel(s->env.workq, &s->scram_job->wq);
	s->scram_job = NULL;
}

/* The server-first message arrived: the client proof, from a worker. */
static void
scram_server_first(struct pop3_session *s, const char *payload, size_t plen)
{
	size_t msglen = 0;
	struct scram_job *j;
	unsigned char msg[POP3_SCRAM_MSG_MAX];
	const char *err = NULL;

	if (pop3_b64_decode(payload, plen, msg, sizeof(msg), &msglen) < 0) {
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "SCRAM server-first message is not base64");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	if (pop3_scram_parse_server_first((const char *)msg, msglen,
	    s->scram_cnonce, &j->sf, &err) < 0 ||
	    pop3_scram_client_final_bare(&j->sf, j->final, sizeof(j->final),
	    &err) < 0) {
		free(j);
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL, "%s", err);
		return;
	}
	j->authmsg = xasprintf("%s,%.*s,%s", s->scram_first_bare,
	    (int)msglen, (const char *)msg, j->final);
	/* sf.nonce points into msg (this frame): the job needs only the
	   salt and rounds from here on, and the nonce is in final */
	j->sf.nonce = NULL;
	j->sf.nonce_len = 0;
	j->sha256 = s->auth_used == UPSTREAM_AUTH_SCRAM_SHA_256;
	j->password = xstrdup(s->acct->password);
	j->s = s;
	j->wq.run = scram_job_run;
	j->wq.done = scram_job_done;
	j->wq.key = s->acct->user_id;
	s->scram_job = j;
	workq_submit(s->env.workq, &j->wq);
}

/* The server-final message: the server proves it knows the password. */
static void
scram_server_final(struct pop3_session *s, const char *payload, size_t plen)
{
	unsigned char msg[POP3_SCRAM_MSG_MAX], sig[EVP_MAX_MD_SIZE];
	char etext[64];
	const char *err = NULL;
	size_t msglen = 0;

	if (pop3_b64_decode(payload, plen, msg, sizeof(msg), &msglen) < 0) {
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "SCRAM server-final message is not base64");
		return;
	}
	if (pop3_scram_parse_server_final((const char *)msg, msglen, sig,
	    s->scram_hlen, etext, sizeof(etext), &err) < 0) {
		if (etext[0] != '\0')
			pop3_session_fail(s, POP3_OUTCOME_AUTH, "%s: %s", err,
			    etext);
		else
			pop3_session_fail(s, POP3_OUTCOME_PROTOCOL, "%s", err);
		return;
	}
	if (CRYPTO_memcmp(sig, s->scram_server_sig, s->scram_hlen) != 0) {
		/* whoever answers does not know the password: not the
		   server we mean to talk to */
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "SCRAM: the server's signature is wrong (it does not "
		    "know the password)");
		return;
	}
	s->scram_verified = true;
	s->auth_step = 3;
	/* an empty response completes the exchange (RFC 5034 4) */
	pop3_session_pop(s);
	pop3_session_send(s, CMD_AUTH, 0, "%s", "");
}

/* ---- XOAUTH2 and OAUTHBEARER (RFC 7628) ---------------------------------- */

static int
oauth_raw(struct pop3_session *s, char *out, size_t outsize, size_t *len_r,
    const char **error_r)
{
	const struct upstream_account *a = s->acct;
	uint16_t port = a->port != 0 ? a->port :
	    a->tls == UPSTREAM_TLS_POP3S ? 995 : 110;

	if (s->auth_used == UPSTREAM_AUTH_XOAUTH2)
		return pop3_xoauth2_response(a->login, a->password, out,
		    outsize, len_r, error_r);
	return pop3_oauthbearer_response(a->login, a->host, port,
	    a->password, out, outsize, len_r, error_r);
}

static void
oauth_start(struct pop3_session *s)
{
	size_t size = UPSTREAM_TOKEN_MAX + UPSTREAM_LOGIN_MAX * 3 + 400;
	char *raw = xmalloc(size);
	const char *err = NULL;
	size_t len = 0;

	s->sasl_detail[0] = '\0';
	if (oauth_raw(s, raw, size, &len, &err) < 0)
		pop3_session_fail(s, POP3_OUTCOME_AUTH, "%s: %s",
		    mech_name(s->auth_used), err);
	else
		send_auth_ir(s, raw, len);
	secure_zero(raw, size);
	free(raw);
}

/* The initial response went after the empty challenge (long token). */
static void
oauth_send_late(struct pop3_session *s)
{
	size_t size = UPSTREAM_TOKEN_MAX + UPSTREAM_LOGIN_MAX * 3 + 400;
	char *raw = xmalloc(size);
	const char *err = NULL;
	size_t len = 0;

	if (oauth_raw(s, raw, size, &len, &err) < 0) {
		pop3_session_fail(s, POP3_OUTCOME_AUTH, "%s: %s",
		    mech_name(s->auth_used), err);
	} else {
		s->auth_step = 1;
		send_response(s, raw, len);
	}
	secure_zero(raw, size);
	free(raw);
}

/*
 * A challenge after our token is the server's error report (a JSON
 * object, RFC 7628 3.2.2; Google's XOAUTH2 the same): kept for the
 * status, and answered as each mechanism asks (XOAUTH2 an empty line,
 * OAUTHBEARER %x01) so the server ends with -ERR.
 */
static void
oauth_error(struct pop3_session *s, const char *payload, size_t plen)
{
	unsigned char msg[POP3_LINE_MAX];
	size_t msglen = 0;

	if (pop3_b64_decode(payload, plen, msg, sizeof(msg), &msglen) == 0)
		log_escape(s->sasl_detail, sizeof(s->sasl_detail),
		    (const char *)msg, msglen);
	s->auth_step = 2;
	if (s->auth_used == UPSTREAM_AUTH_OAUTHBEARER) {
		pop3_session_pop(s);
		pop3_session_send(s, CMD_AUTH, 0, "%s", "AQ==");
	} else {
		pop3_session_pop(s);
		pop3_session_send(s, CMD_AUTH, 0, "%s", "");
	}
}

bool
pop3_login_sasl_challenge(struct pop3_session *s, const char *payload,
    size_t len)
{
	switch (s->auth_used) {
	case UPSTREAM_AUTH_SCRAM_SHA_1:
	case UPSTREAM_AUTH_SCRAM_SHA_256:
		if (s->auth_step == 0) {
			char first[UPSTREAM_LOGIN_MAX * 3 +
			    POP3_SCRAM_NONCE_LEN + 16];

			/* the initial response after the empty challenge */
			snprintf(first, sizeof(first), "n,,%s",
			    s->scram_first_bare);
			s->auth_step = 1;
			send_response(s, first, strlen(first));
		} else if (s->auth_step == 1) {
			scram_server_first(s, payload, len);
		} else if (s->auth_step == 2) {
			scram_server_final(s, payload, len);
		} else {
			return false;
		}
		return true;
	case UPSTREAM_AUTH_XOAUTH2:
	case UPSTREAM_AUTH_OAUTHBEARER:
		if (s->auth_step == 0)
			oauth_send_late(s);
		else if (s->auth_step == 1)
			oauth_error(s, payload, len);
		else
			return false;
		return true;
	default:
		return false;
	}
}

bool
pop3_login_auth_ok(struct pop3_session *s)
{
	if ((s->auth_used == UPSTREAM_AUTH_SCRAM_SHA_1 ||
	    s->auth_used == UPSTREAM_AUTH_SCRAM_SHA_256) &&
	    !s->scram_verified) {
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "SCRAM: the server accepted us without proving it knows "
		    "the password");
		return false;
	}
	return true;
}

void
pop3_login_clear(struct pop3_session *s)
{
	if (s->scram_first_bare != NULL) {
		secure_zero(s->scram_first_bare, strlen(s->scram_first_bare));
		free(s->scram_first_bare);
		s->scram_first_bare = NULL;
	}
	secure_zero(s->scram_server_sig, sizeof(s->scram_server_sig));
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
	case UPSTREAM_AUTH_SCRAM_SHA_1:
	case UPSTREAM_AUTH_SCRAM_SHA_256:
		scram_start(s);
		break;
	case UPSTREAM_AUTH_XOAUTH2:
	case UPSTREAM_AUTH_OAUTHBEARER:
		oauth_start(s);
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
		if (s->acct->auth == UPSTREAM_AUTH_AUTO && !s->auth_fallback &&
		    (s->auth_used == UPSTREAM_AUTH_SCRAM_SHA_1 ||
		    s->auth_used == UPSTREAM_AUTH_SCRAM_SHA_256)) {
			/* announced but unusable for this user (hashes
			   SCRAM cannot use): one try with the next one */
			log_info("pop3 account=%s event=scram-refused "
			    "note=\"trying the next mechanism\"", s->log_id);
			s->auth_fallback = true;
			pop3_login_start_auth(s);
			break;
		}
		if (s->sasl_detail[0] != '\0')
			pop3_session_fail(s, POP3_OUTCOME_AUTH,
			    "authentication failed (%s): %s (%s)",
			    upstream_auth_name(s->auth_used), esc,
			    s->sasl_detail);
		else
			pop3_session_fail(s, POP3_OUTCOME_AUTH,
			    "authentication failed (%s): %s",
			    upstream_auth_name(s->auth_used), esc);
		break;
	}
}

/* ---- the message table ------------------------------------------------- */
