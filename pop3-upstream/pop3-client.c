/* pop3-client — one poll of one account; see pop3-client.h. */
#include "pop3-upstream/pop3-client.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "pop3-upstream/pop3-deliver.h"
#include "pop3-upstream/pop3-parse.h"
#include "store/store.h"
#include "strbuf.h"
#include "xmalloc.h"

/* A RETR or multi-line response that brings fewer than this many bytes
 * within stall_ms counts as stalled (so a server dripping a byte a second
 * cannot hold a session forever). */
#define POP3_CLIENT_STALL_BYTES 4096
/* Longest command line we send (credentials are checked for CR/LF). */
#define POP3_CLIENT_CMD_MAX 1024

enum cmd_kind {
	CMD_GREETING = 0,
	CMD_CAPA,
	CMD_STLS,
	CMD_USER,
	CMD_PASS,
	CMD_APOP,
	CMD_AUTH,	/* AUTH PLAIN / AUTH LOGIN and its continuations */
	CMD_LIST,
	CMD_UIDL,
	CMD_TOP,
	CMD_RETR,
	CMD_DELE,
	CMD_QUIT,
};

static const char *const cmd_names[] = {
	"greeting", "CAPA", "STLS", "USER", "PASS", "APOP", "AUTH", "LIST",
	"UIDL", "TOP", "RETR", "DELE", "QUIT",
};

/* How the response to the front command is being read. */
enum rmode {
	RMODE_STATUS = 0,	/* waiting for +OK / -ERR */
	RMODE_LINES,		/* multi-line, line by line (CAPA, LIST, UIDL) */
	RMODE_DATA,		/* multi-line data (RETR, TOP) */
};

enum phase {
	PHASE_CONNECT = 0,
	PHASE_TLS,
	PHASE_PROTOCOL,
	PHASE_DONE,
};

struct cmd {
	enum cmd_kind kind;
	uint32_t msg;	/* index into msgs for TOP/RETR/DELE */
};

enum msg_action {
	ACT_NONE = 0,
	ACT_FETCH,
	ACT_SKIP,	/* over the size limit */
};

struct msg {
	uint32_t msgno;
	uint64_t list_size;
	char *key;		/* UIDL or fallback key (owned) */
	size_t key_len;
	enum msg_action action;
	bool want_dele;
	bool dele_sent;
	bool dele_ok;
	bool stored;
};

struct batch_item {
	uint32_t msg;
	char *data;
	size_t size;
};

struct pop3_session {
	struct pop3_client_env env;
	const struct upstream_account *acct;
	struct upstream_status *status;
	pop3_session_done_cb *cb;
	void *cb_arg;
	char log_id[UPSTREAM_ID_MAX * 4 + 8];

	struct bufferevent *bev;	/* plain socket or TLS filter on top */
	SSL_CTX *ssl_ctx;
	bool tls_active;
	bool stls_pending;		/* TLS handshake after STLS */
	struct event *timer;
	struct event *finish_ev;
	enum phase phase;

	/* commands awaiting a response, in order */
	struct cmd queue[POP3_CLIENT_PIPELINE_MAX + 4];
	size_t q_head, q_len;
	enum rmode rmode;
	struct pop3_data data;
	struct strbuf body;		/* current RETR/TOP data */
	bool body_over_limit;
	uint64_t stall_progress;

	struct pop3_capa capa;
	char apop_ts[POP3_APOP_TIMESTAMP_MAX + 1];
	bool have_apop_ts;
	enum upstream_auth auth_used;
	int auth_step;

	struct msg *msgs;
	size_t msg_count, msg_alloc;
	bool list_ok;
	bool uidl_ok;		/* usable UIDLs for every message */
	bool uidl_cmd_failed;
	const char *fallback_reason;
	bool key_from_retr;	/* fallback without TOP */
	uint32_t mailbox_id;

	/* work lists: indexes into msgs */
	uint32_t *todo;		/* TOP or RETR, in msgno order */
	size_t todo_count, todo_next, todo_done;
	uint64_t inflight_bytes;	/* listed sizes of RETRs in flight */
	bool top_phase;

	struct batch_item *batch;
	size_t batch_count;
	size_t batch_bytes;
	struct timeval batch_start;
	struct timeval import_start;

	uint64_t size_limit;
	struct pop3_result result;
	bool finishing;
	const char *trace_mask;	/* what the trace shows for the next command */
};

static void session_fail(struct pop3_session *s, enum pop3_outcome outcome,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void process_input(struct pop3_session *s);
static void start_fetch_phase(struct pop3_session *s);
static void pump_fetch(struct pop3_session *s);

const char *
pop3_outcome_name(enum pop3_outcome outcome)
{
	static const char *const names[] = {
		"ok", "temporary", "auth", "login-delay", "tls", "protocol",
		"store", "aborted",
	};

	return (size_t)outcome < N_ELEMENTS(names) ? names[outcome] : "?";
}

static unsigned int
tmo(unsigned int v, unsigned int def)
{
	return v != 0 ? v : def;
}

static void
arm_timer(struct pop3_session *s, unsigned int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(s->timer, &tv);
}

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

static void
trace(struct pop3_session *s, char dir, const char *line, size_t len)
{
	char esc[LOG_PEER_TEXT_MAX + 1];

	if (!s->acct->trace)
		return;
	log_info("pop3 account=%s trace=%c line=\"%s\"", s->log_id, dir,
	    log_escape(esc, sizeof(esc), line, len));
}

/* ---- finishing ----------------------------------------------------------- */

static void
batch_free_items(struct pop3_session *s)
{
	for (size_t i = 0; i < s->batch_count; i++) {
		free(s->batch[i].data);
		s->batch[i].data = NULL;
	}
	s->batch_count = 0;
	s->batch_bytes = 0;
}

static void
session_free(struct pop3_session *s)
{
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->finish_ev != NULL)
		event_free(s->finish_ev);
	if (s->ssl_ctx != NULL)
		SSL_CTX_free(s->ssl_ctx);
	batch_free_items(s);
	free(s->batch);
	for (size_t i = 0; i < s->msg_count; i++)
		free(s->msgs[i].key);
	free(s->msgs);
	free(s->todo);
	strbuf_free(&s->body);
	free(s);
}

static void
on_finish(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)fd;
	(void)what;
	s->cb(s->cb_arg, &s->result);
	session_free(s);
}

/* Marks the session done; the dispatcher frees it on the way out. */
static void
session_finish(struct pop3_session *s)
{
	if (s->finishing)
		return;
	s->finishing = true;
	s->phase = PHASE_DONE;
	evtimer_del(s->timer);
	if (s->bev != NULL) {
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	}
	event_active(s->finish_ev, EV_TIMEOUT, 1);
}

static int flush_batch(struct pop3_session *s);

static void
session_fail(struct pop3_session *s, enum pop3_outcome outcome,
    const char *fmt, ...)
{
	va_list ap;

	if (s->finishing)
		return;
	/* Complete messages already received are worth keeping: committing
	   them sends no DELE (no QUIT follows), and saves a refetch. */
	if (outcome != POP3_OUTCOME_STORE && s->batch_count > 0)
		(void)flush_batch(s);
	if (s->finishing)
		return;
	s->result.outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(s->result.error, sizeof(s->result.error), fmt, ap);
	va_end(ap);
	log_warn("pop3 account=%s event=poll-failed class=%s error=\"%s\"",
	    s->log_id, pop3_outcome_name(outcome), s->result.error);
	session_finish(s);
}

/* ---- sending ----------------------------------------------------------- */

static void
send_cmd(struct pop3_session *s, enum cmd_kind kind, uint32_t msg,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
send_cmd(struct pop3_session *s, enum cmd_kind kind, uint32_t msg,
    const char *fmt, ...)
{
	char line[POP3_CLIENT_CMD_MAX];
	va_list ap;
	int n;
	size_t slot;

	PG_ASSERT(s->q_len < N_ELEMENTS(s->queue));
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	PG_ASSERT(n > 0 && (size_t)n < sizeof(line) - 2);
	if (s->acct->trace) {
		if (s->trace_mask != NULL)
			trace(s, 'C', s->trace_mask, strlen(s->trace_mask));
		else
			trace(s, 'C', line, (size_t)n);
	}
	s->trace_mask = NULL;
	line[n++] = '\r';
	line[n++] = '\n';
	bufferevent_write(s->bev, line, (size_t)n);
	secure_zero(line, sizeof(line));
	slot = (s->q_head + s->q_len) % N_ELEMENTS(s->queue);
	s->queue[slot].kind = kind;
	s->queue[slot].msg = msg;
	if (s->q_len++ == 0) {
		s->rmode = RMODE_STATUS;
		arm_timer(s, tmo(s->acct->timeouts.command_ms,
		    POP3_CLIENT_COMMAND_MS));
	}
}

static struct cmd *
front(struct pop3_session *s)
{
	return s->q_len == 0 ? NULL : &s->queue[s->q_head];
}

static void
pop_front(struct pop3_session *s)
{
	s->q_head = (s->q_head + 1) % N_ELEMENTS(s->queue);
	s->q_len--;
	s->rmode = RMODE_STATUS;
	if (s->q_len > 0)
		arm_timer(s, tmo(s->acct->timeouts.command_ms,
		    POP3_CLIENT_COMMAND_MS));
	else
		evtimer_del(s->timer);
}

/* ---- TLS --------------------------------------------------------------- */

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

static int
make_ssl_ctx(struct pop3_session *s, const char **error_r)
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

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void
start_tls(struct pop3_session *s)
{
	SSL *ssl = SSL_new(s->ssl_ctx);
	struct bufferevent *f;
	const char *host = s->acct->host;

	if (ssl == NULL) {
		session_fail(s, POP3_OUTCOME_TLS, "cannot create a TLS session");
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
		session_fail(s, POP3_OUTCOME_TLS, "cannot start TLS");
		return;
	}
	s->bev = f;
	s->phase = PHASE_TLS;
	bufferevent_setcb(f, on_read, NULL, on_event, s);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	arm_timer(s, tmo(s->acct->timeouts.tls_ms, POP3_CLIENT_TLS_MS));
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

static void
tls_done(struct pop3_session *s)
{
	s->tls_active = true;
	s->phase = PHASE_PROTOCOL;
	if (s->acct->fingerprint != NULL && !check_pin(s)) {
		session_fail(s, POP3_OUTCOME_TLS,
		    "server certificate does not match the pinned "
		    "fingerprint");
		return;
	}
	log_debug("pop3 account=%s event=tls-up", s->log_id);
	if (s->stls_pending) {
		s->stls_pending = false;
		/* RFC 2595 §4: forget CAPA; ask again over TLS */
		memset(&s->capa, 0, sizeof(s->capa));
		send_cmd(s, CMD_CAPA, 0, "CAPA");
	} else {
		/* POP3S: the greeting comes over TLS */
		s->q_head = 0;
		s->q_len = 1;
		s->queue[0].kind = CMD_GREETING;
		s->rmode = RMODE_STATUS;
		arm_timer(s, tmo(s->acct->timeouts.greeting_ms,
		    POP3_CLIENT_GREETING_MS));
	}
}

static void
tls_failed(struct pop3_session *s)
{
	char err[256];
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

	drain_ssl_errors(s, err, sizeof(err));
	if (vr != X509_V_OK)
		session_fail(s, POP3_OUTCOME_TLS,
		    "TLS handshake failed: certificate: %s",
		    X509_verify_cert_error_string(vr));
	else
		session_fail(s, POP3_OUTCOME_TLS, "TLS handshake failed: %s",
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

static void
start_auth(struct pop3_session *s)
{
	const struct upstream_account *a = s->acct;

	if (!s->tls_active && a->tls != UPSTREAM_TLS_NONE) {
		/* can't happen by construction; refuse loudly if it does */
		session_fail(s, POP3_OUTCOME_TLS,
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
			session_fail(s, POP3_OUTCOME_AUTH,
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
		send_cmd(s, CMD_APOP, 0, "APOP %s %s", a->login, hex);
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
			session_fail(s, POP3_OUTCOME_AUTH,
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
		send_cmd(s, CMD_AUTH, 0, "AUTH PLAIN %s", enc);
		secure_zero(raw, n);
		secure_zero(enc, strlen(enc));
		free(raw);
		free(enc);
		break;
	}
	case UPSTREAM_AUTH_LOGIN:
		s->auth_step = 0;
		send_cmd(s, CMD_AUTH, 0, "AUTH LOGIN");
		break;
	case UPSTREAM_AUTH_USER:
	case UPSTREAM_AUTH_AUTO:
		s->auth_used = UPSTREAM_AUTH_USER;
		send_cmd(s, CMD_USER, 0, "USER %s", a->login);
		break;
	}
}

/* AUTH LOGIN continuation: step 0 → send user, 1 → send password. */
static void
auth_login_continue(struct pop3_session *s)
{
	const char *v = s->auth_step == 0 ? s->acct->login : s->acct->password;
	size_t n = strlen(v);
	char *enc;

	if (4 * ((n + 2) / 3) + 8 > POP3_CLIENT_CMD_MAX) {
		session_fail(s, POP3_OUTCOME_AUTH,
		    "credentials too long for AUTH LOGIN");
		return;
	}
	enc = xmalloc(4 * ((n + 2) / 3) + 1);
	b64(v, n, enc, 4 * ((n + 2) / 3) + 1);
	/* the continuation replaces the AUTH command at the queue front */
	pop_front(s);
	s->auth_step++;
	s->trace_mask = "****";
	send_cmd(s, CMD_AUTH, 0, "%s", enc);
	secure_zero(enc, strlen(enc));
	free(enc);
}

static void
auth_failed(struct pop3_session *s, const struct pop3_status *st)
{
	char esc[LOG_PEER_TEXT_MAX + 1];

	log_escape(esc, sizeof(esc), st->text, st->text_len);
	switch (st->code) {
	case POP3_RESP_IN_USE:
		session_fail(s, POP3_OUTCOME_TEMP,
		    "maildrop in use [IN-USE]: %s", esc);
		break;
	case POP3_RESP_LOGIN_DELAY:
		s->result.login_delay = s->capa.login_delay_set ?
		    s->capa.login_delay : 0;
		session_fail(s, POP3_OUTCOME_LOGIN_DELAY,
		    "logging in too often [LOGIN-DELAY]: %s", esc);
		break;
	case POP3_RESP_SYS_TEMP:
		session_fail(s, POP3_OUTCOME_TEMP,
		    "server problem [SYS/TEMP]: %s", esc);
		break;
	case POP3_RESP_SYS_PERM:
		session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "server problem [SYS/PERM]: %s", esc);
		break;
	default:
		session_fail(s, POP3_OUTCOME_AUTH,
		    "authentication failed (%s): %s",
		    upstream_auth_name(s->auth_used), esc);
		break;
	}
}

/* ---- the message table ------------------------------------------------- */

static struct msg *
msg_by_no(struct pop3_session *s, uint32_t msgno)
{
	size_t lo = 0, hi = s->msg_count;

	/* LIST is normally 1..n in order: try the direct slot first */
	if (msgno >= 1 && msgno <= s->msg_count &&
	    s->msgs[msgno - 1].msgno == msgno)
		return &s->msgs[msgno - 1];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->msgs[mid].msgno == msgno)
			return &s->msgs[mid];
		if (s->msgs[mid].msgno < msgno)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
cmp_msgno(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;

	return x->msgno < y->msgno ? -1 : x->msgno > y->msgno;
}

struct keyref {
	const char *key;
	size_t len;
	uint32_t idx;
};

static int
cmp_keyref(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* True when every message has a UIDL and they are all distinct. */
static bool
uidls_unique(struct pop3_session *s)
{
	struct keyref *refs = xcalloc(s->msg_count ? s->msg_count : 1,
	    sizeof(*refs));
	bool ok = true;

	for (size_t i = 0; i < s->msg_count; i++) {
		refs[i].key = s->msgs[i].key;
		refs[i].len = s->msgs[i].key_len;
		refs[i].idx = (uint32_t)i;
	}
	qsort(refs, s->msg_count, sizeof(*refs), cmp_keyref);
	for (size_t i = 1; i < s->msg_count; i++) {
		if (refs[i].len == refs[i - 1].len &&
		    memcmp(refs[i].key, refs[i - 1].key, refs[i].len) == 0) {
			ok = false;
			break;
		}
	}
	free(refs);
	return ok;
}

/* Fallback keys: "H <sha256 hex of header block + size>/<occurrence>". */
static void
set_hash_key(struct msg *m, const char *data, size_t len, uint64_t size)
{
	unsigned char md[32];
	char sz[24];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t hl = pop3_header_length(data, len);

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, data, hl);
	snprintf(sz, sizeof(sz), ":%llu", (unsigned long long)size);
	EVP_DigestUpdate(c, sz, strlen(sz));
	EVP_DigestFinal_ex(c, md, NULL);
	EVP_MD_CTX_free(c);
	free(m->key);
	m->key = xmalloc(2 + 64 + 12);
	memcpy(m->key, "H ", 2);
	for (int i = 0; i < 32; i++)
		snprintf(m->key + 2 + 2 * i, 3, "%02x", md[i]);
	m->key_len = 66;
	m->key[66] = '\0';
}

/* Appends "/n" so identical messages in one listing stay distinct. */
static void
number_hash_keys(struct pop3_session *s, size_t upto)
{
	struct keyref *refs = xcalloc(upto ? upto : 1, sizeof(*refs));
	size_t n = 0, occ = 0;

	for (size_t i = 0; i < upto; i++) {
		if (s->msgs[i].key == NULL || s->msgs[i].key_len != 66)
			continue;
		refs[n].key = s->msgs[i].key;
		refs[n].len = 66;
		refs[n].idx = (uint32_t)i;
		n++;
	}
	qsort(refs, n, sizeof(*refs), cmp_keyref);
	for (size_t i = 0; i < n; i++) {
		struct msg *m = &s->msgs[refs[i].idx];

		if (i > 0 && memcmp(refs[i].key, refs[i - 1].key, 66) == 0)
			occ++;
		else
			occ = 0;
		/* key_len stays 66 until numbered, so the compare above is
		   on the hash part only */
		snprintf(m->key + 66, 12, "/%zu", occ);
	}
	for (size_t i = 0; i < n; i++) {
		struct msg *m = &s->msgs[refs[i].idx];

		m->key_len = strlen(m->key);
	}
	free(refs);
}

/* The RETR-keyed fallback numbers keys as messages arrive, in msgno
 * order: the occurrence is the count of earlier identical hashes. */
static void
number_one_key(struct pop3_session *s, uint32_t idx)
{
	struct msg *m = &s->msgs[idx];
	size_t occ = 0;

	for (uint32_t j = 0; j < idx; j++) {
		const struct msg *o = &s->msgs[j];

		if (o->key != NULL && o->key_len > 66 &&
		    memcmp(o->key, m->key, 66) == 0)
			occ++;
	}
	snprintf(m->key + 66, 12, "/%zu", occ);
	m->key_len = strlen(m->key);
}

/* ---- delivery ----------------------------------------------------------- */

static int
flush_batch(struct pop3_session *s)
{
	struct pop3_deliver_msg *dm;
	const char *err = NULL;
	struct timeval t0, t1, dt;
	int ret = 0;

	if (s->batch_count == 0)
		return 0;
	dm = xcalloc(s->batch_count, sizeof(*dm));
	for (size_t i = 0; i < s->batch_count; i++) {
		struct msg *m = &s->msgs[s->batch[i].msg];

		dm[i].data = s->batch[i].data;
		dm[i].size = s->batch[i].size;
		dm[i].uidl = m->key;
		dm[i].uidl_size = m->key_len;
	}
	gettimeofday(&t0, NULL);
	if (pop3_deliver_batch(s->env.store, s->acct, s->mailbox_id, dm,
	    s->batch_count, &err) < 0) {
		log_error("pop3 account=%s event=store-failed messages=%zu "
		    "error=\"%s\"", s->log_id, s->batch_count, err);
		s->result.outcome = POP3_OUTCOME_STORE;
		snprintf(s->result.error, sizeof(s->result.error),
		    "store refused delivery (no DELE sent): %s", err);
		batch_free_items(s);
		free(dm);
		session_finish(s);
		return -1;
	}
	for (size_t i = 0; i < s->batch_count; i++) {
		struct msg *m = &s->msgs[s->batch[i].msg];

		m->stored = true;
		s->result.fetched++;
		s->result.fetched_bytes += s->batch[i].size;
		s->status->import_done++;
		s->status->import_bytes += s->batch[i].size;
		if (s->acct->mode == UPSTREAM_MODE_DELETE)
			m->want_dele = true;
	}
	{
		struct timeval now, d;

		gettimeofday(&now, NULL);
		timersub(&now, &s->import_start, &d);
		double secs = (double)d.tv_sec + (double)d.tv_usec / 1e6;

		s->status->import_rate = secs > 0 ?
		    (double)s->status->import_done / secs : 0;
	}
	gettimeofday(&t1, NULL);
	timersub(&t1, &t0, &dt);
	log_debug("pop3 account=%s event=batch-stored messages=%zu bytes=%zu "
	    "ms=%ld", s->log_id, s->batch_count, s->batch_bytes,
	    (long)(dt.tv_sec * 1000 + dt.tv_usec / 1000));
	batch_free_items(s);
	free(dm);
	return ret;
}

static bool
batch_due(struct pop3_session *s)
{
	struct timeval now, d;

	if (s->batch_count == 0)
		return false;
	if (s->batch_count >= POP3_CLIENT_BATCH_MSGS ||
	    s->batch_bytes >= POP3_CLIENT_BATCH_BYTES)
		return true;
	gettimeofday(&now, NULL);
	timersub(&now, &s->batch_start, &d);
	return d.tv_sec * 1000 + d.tv_usec / 1000 >= POP3_CLIENT_BATCH_MS;
}

/* ---- classification against the ledger --------------------------------- */

/*
 * Decides what to do with message m whose key is known: already in the
 * ledger → maybe DELE (per mode), never fetched again; new → fetch (or
 * skip when too large). Returns -1 on a store read error.
 */
static int
classify(struct pop3_session *s, struct store_read *r, struct msg *m,
    time_t now, bool *seen_r)
{
	struct pop3_ledger_info li;
	const char *err = NULL;
	int rc = pop3_deliver_ledger_lookup(r, s->acct, m->key, m->key_len,
	    &li, &err);

	if (rc < 0) {
		session_fail(s, POP3_OUTCOME_STORE, "ledger lookup: %s", err);
		return -1;
	}
	*seen_r = rc == 0;
	if (rc == 0) {
		m->action = ACT_NONE;
		switch (s->acct->mode) {
		case UPSTREAM_MODE_KEEP:
			break;
		case UPSTREAM_MODE_DELETE:
			/* committed earlier, DELE lost (crash, cut before
			   QUIT): delete now, never deliver again */
			m->want_dele = li.delivered;
			break;
		case UPSTREAM_MODE_DELETE_AFTER:
			m->want_dele = li.delivered && li.seen +
			    (int64_t)s->acct->delete_after_days * 86400 <=
			    (int64_t)now;
			break;
		case UPSTREAM_MODE_MIRROR:
			m->want_dele = li.delivered && !li.still_present;
			break;
		}
		return 0;
	}
	m->action = ACT_FETCH;
	if (m->list_size > s->size_limit) {
		char esc[LOG_PEER_TEXT_MAX + 1];

		m->action = ACT_SKIP;
		s->result.skipped++;
		log_warn("pop3 account=%s event=message-skipped msgno=%u "
		    "uidl=\"%s\" size=%llu limit=%llu reason=\"over the "
		    "account's size limit; left on the server\"", s->log_id,
		    m->msgno, log_escape(esc, sizeof(esc), m->key, m->key_len),
		    (unsigned long long)m->list_size,
		    (unsigned long long)s->size_limit);
	}
	return 0;
}

static int
classify_all(struct pop3_session *s)
{
	struct store_read *r = NULL;
	const char *err = NULL;
	time_t now = s->env.now != NULL ? s->env.now() : time(NULL);
	uint32_t news = 0;
	bool seen;

	if (store_read_begin(s->env.store, &r, &err) < 0) {
		session_fail(s, POP3_OUTCOME_STORE, "store: %s", err);
		return -1;
	}
	s->todo_count = 0;
	for (size_t i = 0; i < s->msg_count; i++) {
		struct msg *m = &s->msgs[i];

		if (classify(s, r, m, now, &seen) < 0) {
			store_read_end(&r);
			return -1;
		}
		if (m->action == ACT_FETCH) {
			s->todo[s->todo_count++] = (uint32_t)i;
			news++;
		}
	}
	store_read_end(&r);
	s->status->import_total = news;
	return 0;
}

/* ---- per-response handlers ------------------------------------------------ */

static void
after_auth(struct pop3_session *s)
{
	log_info("pop3 account=%s event=logged-in auth=%s tls=%s", s->log_id,
	    upstream_auth_name(s->auth_used), s->tls_active ? "yes" : "no");
	/* RFC 2449: capabilities may change after login (UIDL, TOP) */
	memset(&s->capa, 0, sizeof(s->capa));
	send_cmd(s, CMD_CAPA, 1, "CAPA");
}

static void
after_capa(struct pop3_session *s, uint32_t round)
{
	const struct upstream_account *a = s->acct;

	if (round == 1) {
		/* after login: the listing */
		send_cmd(s, CMD_LIST, 0, "LIST");
		return;
	}
	if (a->tls == UPSTREAM_TLS_STLS && !s->tls_active) {
		if (s->capa.seen && !s->capa.stls) {
			session_fail(s, POP3_OUTCOME_TLS,
			    "server does not offer STLS and the account "
			    "requires TLS; no credentials were sent");
			return;
		}
		send_cmd(s, CMD_STLS, 0, "STLS");
		return;
	}
	start_auth(s);
}

static void
list_done(struct pop3_session *s)
{
	if (s->msg_count > 0)
		qsort(s->msgs, s->msg_count, sizeof(*s->msgs), cmp_msgno);
	for (size_t i = 1; i < s->msg_count; i++) {
		if (s->msgs[i].msgno == s->msgs[i - 1].msgno) {
			session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "LIST names message %u twice", s->msgs[i].msgno);
			return;
		}
	}
	s->todo = xcalloc(s->msg_count ? s->msg_count : 1, sizeof(*s->todo));
	if (s->capa.seen && !s->capa.uidl) {
		/* try anyway: some servers forget to announce it */
		log_debug("pop3 account=%s event=uidl-not-announced",
		    s->log_id);
	}
	s->uidl_ok = true;
	send_cmd(s, CMD_UIDL, 0, "UIDL");
}

static void
uidl_done(struct pop3_session *s)
{
	const char *why = NULL;

	if (s->uidl_cmd_failed)
		why = "server has no UIDL";
	else if (!s->uidl_ok)
		why = s->fallback_reason != NULL ? s->fallback_reason :
		    "unusable UIDLs";
	else {
		for (size_t i = 0; i < s->msg_count; i++) {
			if (s->msgs[i].key == NULL) {
				why = "UIDL and LIST disagree";
				break;
			}
		}
		if (why == NULL && !uidls_unique(s))
			why = "duplicate UIDLs";
	}
	if (why != NULL) {
		for (size_t i = 0; i < s->msg_count; i++) {
			free(s->msgs[i].key);
			s->msgs[i].key = NULL;
			s->msgs[i].key_len = 0;
		}
		s->key_from_retr = !s->capa.top;
		snprintf(s->status->uidl_strategy,
		    sizeof(s->status->uidl_strategy), "content-hash via %s (%s)",
		    s->key_from_retr ? "RETR" : "TOP", why);
		log_warn("pop3 account=%s event=uidl-fallback reason=\"%s\" "
		    "strategy=\"%s\"", s->log_id, why,
		    s->status->uidl_strategy);
	} else {
		snprintf(s->status->uidl_strategy,
		    sizeof(s->status->uidl_strategy), "uidl");
	}
	if (pop3_deliver_mailbox(s->env.store, s->acct, &s->mailbox_id,
	    &why) < 0) {
		session_fail(s, POP3_OUTCOME_STORE, "target mailbox: %s", why);
		return;
	}
	if (s->status->uidl_strategy[0] == 'c') {
		if (s->key_from_retr) {
			/* every message is fetched and keyed on arrival */
			s->todo_count = 0;
			for (size_t i = 0; i < s->msg_count; i++) {
				s->msgs[i].action = ACT_FETCH;
				s->todo[s->todo_count++] = (uint32_t)i;
			}
			s->status->import_total = (uint32_t)s->msg_count;
			start_fetch_phase(s);
			return;
		}
		s->top_phase = true;
		s->todo_count = 0;
		for (size_t i = 0; i < s->msg_count; i++)
			s->todo[s->todo_count++] = (uint32_t)i;
		s->todo_next = 0;
		s->todo_done = 0;
		pump_fetch(s);
		return;
	}
	if (classify_all(s) < 0)
		return;
	start_fetch_phase(s);
}

static void
send_deles_and_quit(struct pop3_session *s)
{
	for (size_t i = 0; i < s->msg_count; i++) {
		struct msg *m = &s->msgs[i];

		if (m->want_dele && !m->dele_sent) {
			/* DELE can only be a few per pump; the queue is
			   bounded, so send what fits and come back */
			if (s->q_len >= POP3_CLIENT_PIPELINE_MAX)
				return;
			m->dele_sent = true;
			send_cmd(s, CMD_DELE, (uint32_t)i, "DELE %u",
			    m->msgno);
		}
	}
	if (s->q_len == 0)
		send_cmd(s, CMD_QUIT, 0, "QUIT");
}

static size_t
window(struct pop3_session *s)
{
	return s->capa.pipelining ? POP3_CLIENT_PIPELINE_MAX : 1;
}

static void
pump_fetch(struct pop3_session *s)
{
	if (s->finishing)
		return;
	while (s->todo_next < s->todo_count && s->q_len < window(s) &&
	    (s->q_len == 0 ||
	    s->inflight_bytes < POP3_CLIENT_PIPELINE_BYTES)) {
		uint32_t i = s->todo[s->todo_next++];
		struct msg *m = &s->msgs[i];

		if (s->top_phase) {
			send_cmd(s, CMD_TOP, i, "TOP %u 0", m->msgno);
		} else {
			s->inflight_bytes += m->list_size;
			send_cmd(s, CMD_RETR, i, "RETR %u", m->msgno);
		}
	}
	if (s->todo_done < s->todo_count)
		return;
	if (s->top_phase) {
		s->top_phase = false;
		number_hash_keys(s, s->msg_count);
		if (classify_all(s) < 0)
			return;
		start_fetch_phase(s);
		return;
	}
	if (s->q_len > 0 && front(s)->kind != CMD_DELE)
		return;
	if (s->batch_count > 0 && flush_batch(s) < 0)
		return;
	send_deles_and_quit(s);
}

static void
start_fetch_phase(struct pop3_session *s)
{
	gettimeofday(&s->import_start, NULL);
	s->status->import_done = 0;
	s->status->import_bytes = 0;
	s->status->import_rate = 0;
	s->todo_next = 0;
	s->todo_done = 0;
	if (s->todo_count > 0)
		log_info("pop3 account=%s event=import new=%zu listed=%zu "
		    "strategy=\"%s\"", s->log_id, s->todo_count, s->msg_count,
		    s->status->uidl_strategy);
	pump_fetch(s);
}

/* A RETR or TOP completed with its data in s->body. */
static void
data_done(struct pop3_session *s, const struct cmd *c)
{
	struct msg *m = &s->msgs[c->msg];
	char esc[LOG_PEER_TEXT_MAX + 1];

	s->todo_done++;
	if (c->kind == CMD_RETR)
		s->inflight_bytes -= m->list_size;
	if (c->kind == CMD_TOP) {
		set_hash_key(m, s->body.data != NULL ? s->body.data : "",
		    s->body.len, m->list_size);
		strbuf_reset(&s->body);
		return;
	}
	if (s->body_over_limit) {
		s->result.skipped++;
		log_warn("pop3 account=%s event=message-skipped msgno=%u "
		    "uidl=\"%s\" listed-size=%llu reason=\"data over the size "
		    "limit (LIST understated it); left on the server\"",
		    s->log_id, m->msgno, m->key != NULL ? log_escape(esc,
		    sizeof(esc), m->key, m->key_len) : "",
		    (unsigned long long)m->list_size);
		strbuf_reset(&s->body);
		s->body_over_limit = false;
		return;
	}
	if (s->body.len != m->list_size) {
		s->result.size_mismatch++;
		log_info("pop3 account=%s event=size-mismatch msgno=%u "
		    "listed=%llu received=%zu", s->log_id, m->msgno,
		    (unsigned long long)m->list_size, s->body.len);
	}
	if (s->key_from_retr) {
		struct store_read *r = NULL;
		const char *err = NULL;
		bool seen = false;

		set_hash_key(m, s->body.data != NULL ? s->body.data : "",
		    s->body.len, m->list_size);
		number_one_key(s, c->msg);
		if (store_read_begin(s->env.store, &r, &err) < 0) {
			session_fail(s, POP3_OUTCOME_STORE, "store: %s", err);
			return;
		}
		if (classify(s, r, m, s->env.now != NULL ? s->env.now() :
		    time(NULL), &seen) < 0) {
			store_read_end(&r);
			return;
		}
		store_read_end(&r);
		if (seen || m->action != ACT_FETCH) {
			strbuf_reset(&s->body);
			return;
		}
	}
	if (s->batch_count == 0)
		gettimeofday(&s->batch_start, NULL);
	if (s->batch == NULL)
		s->batch = xcalloc(POP3_CLIENT_BATCH_MSGS,
		    sizeof(*s->batch));
	s->batch[s->batch_count].msg = c->msg;
	s->batch[s->batch_count].data = strbuf_detach(&s->body,
	    &s->batch[s->batch_count].size);
	s->batch_bytes += s->batch[s->batch_count].size;
	s->batch_count++;
	if (batch_due(s))
		(void)flush_batch(s);
}

static void
handle_status(struct pop3_session *s, const char *line, size_t len)
{
	struct cmd c = *front(s);
	struct pop3_status st;
	const char *err = NULL;
	const char *payload;
	size_t plen;
	char esc[LOG_PEER_TEXT_MAX + 1];

	trace(s, 'S', line, len);
	if (c.kind == CMD_AUTH && pop3_parse_continuation(line, len, &payload,
	    &plen)) {
		if (s->auth_used == UPSTREAM_AUTH_LOGIN && s->auth_step < 2)
			auth_login_continue(s);
		else
			session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "unexpected SASL continuation");
		return;
	}
	if (pop3_parse_status(line, len, &st, &err) < 0) {
		session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "bad response to %s (%s): '%s'", cmd_names[c.kind], err,
		    log_escape(esc, sizeof(esc), line, len));
		return;
	}
	log_escape(esc, sizeof(esc), st.text, st.text_len);

	switch (c.kind) {
	case CMD_GREETING:
		pop_front(s);
		if (!st.ok) {
			if (st.code == POP3_RESP_IN_USE ||
			    st.code == POP3_RESP_SYS_TEMP)
				session_fail(s, POP3_OUTCOME_TEMP,
				    "server refused the connection: %s", esc);
			else
				session_fail(s, POP3_OUTCOME_PROTOCOL,
				    "server refused the connection: %s", esc);
			return;
		}
		s->have_apop_ts = pop3_parse_apop_timestamp(line, len,
		    s->apop_ts, sizeof(s->apop_ts));
		send_cmd(s, CMD_CAPA, 0, "CAPA");
		return;
	case CMD_CAPA:
		if (st.ok) {
			s->capa.seen = true;
			s->rmode = RMODE_LINES;
			return;
		}
		pop_front(s);
		after_capa(s, c.msg);
		return;
	case CMD_STLS:
		pop_front(s);
		if (!st.ok) {
			session_fail(s, POP3_OUTCOME_TLS,
			    "server refused STLS (%s); TLS is required, no "
			    "credentials were sent", esc);
			return;
		}
		s->stls_pending = true;
		start_tls(s);
		return;
	case CMD_USER:
		pop_front(s);
		if (!st.ok) {
			auth_failed(s, &st);
			return;
		}
		s->trace_mask = "PASS ****";
		send_cmd(s, CMD_PASS, 0, "PASS %s", s->acct->password);
		return;
	case CMD_PASS:
	case CMD_APOP:
	case CMD_AUTH:
		pop_front(s);
		if (!st.ok) {
			auth_failed(s, &st);
			return;
		}
		after_auth(s);
		return;
	case CMD_LIST:
		if (!st.ok) {
			pop_front(s);
			session_fail(s, st.code == POP3_RESP_SYS_TEMP ||
			    st.code == POP3_RESP_IN_USE ? POP3_OUTCOME_TEMP :
			    POP3_OUTCOME_PROTOCOL, "LIST failed: %s", esc);
			return;
		}
		s->rmode = RMODE_LINES;
		return;
	case CMD_UIDL:
		if (!st.ok) {
			pop_front(s);
			s->uidl_cmd_failed = true;
			uidl_done(s);
			return;
		}
		s->rmode = RMODE_LINES;
		return;
	case CMD_TOP:
	case CMD_RETR:
		if (!st.ok) {
			struct msg *m = &s->msgs[c.msg];

			pop_front(s);
			if (c.kind == CMD_TOP) {
				/* no TOP after all: key on RETR instead */
				session_fail(s, POP3_OUTCOME_PROTOCOL,
				    "TOP %u failed: %s", m->msgno, esc);
				return;
			}
			/* the message stays on the server; next poll
			   tries again */
			s->todo_done++;
			s->inflight_bytes -= m->list_size;
			log_warn("pop3 account=%s event=retr-failed msgno=%u "
			    "error=\"%s\"", s->log_id, m->msgno, esc);
			snprintf(s->result.error, sizeof(s->result.error),
			    "RETR %u failed: %s", m->msgno, esc);
			pump_fetch(s);
			return;
		}
		s->rmode = RMODE_DATA;
		pop3_data_init(&s->data);
		strbuf_reset(&s->body);
		if (c.kind == CMD_RETR) {
			uint64_t hint = s->msgs[c.msg].list_size;

			if (hint > s->size_limit)
				hint = s->size_limit;
			strbuf_reserve(&s->body, (size_t)hint + 64);
		}
		s->body_over_limit = false;
		s->stall_progress = 0;
		arm_timer(s, tmo(s->acct->timeouts.stall_ms,
		    POP3_CLIENT_STALL_MS));
		return;
	case CMD_DELE:
		pop_front(s);
		if (st.ok)
			s->msgs[c.msg].dele_ok = true;
		else
			log_warn("pop3 account=%s event=dele-failed msgno=%u "
			    "error=\"%s\"", s->log_id, s->msgs[c.msg].msgno,
			    esc);
		pump_fetch(s);
		return;
	case CMD_QUIT:
		pop_front(s);
		if (!st.ok) {
			/* RFC 1939: -ERR to QUIT means the deletions failed */
			session_fail(s, POP3_OUTCOME_TEMP,
			    "QUIT failed, deletions not applied: %s", esc);
			return;
		}
		{
			const void **keys = xcalloc(s->msg_count + 1,
			    sizeof(*keys));
			size_t *lens = xcalloc(s->msg_count + 1,
			    sizeof(*lens));
			size_t n = 0;

			for (size_t i = 0; i < s->msg_count; i++) {
				if (s->msgs[i].dele_ok) {
					keys[n] = s->msgs[i].key;
					lens[n++] = s->msgs[i].key_len;
				}
			}
			s->result.deleted = (uint32_t)n;
			if (n > 0 && pop3_deliver_mark_deleted(s->env.store,
			    s->acct, keys, lens, n, &err) < 0)
				log_warn("pop3 account=%s event=ledger-mark "
				    "error=\"%s\"", s->log_id, err);
			free(keys);
			free(lens);
		}
		s->result.outcome = POP3_OUTCOME_OK;
		if (s->result.error[0] == '\0')
			log_info("pop3 account=%s event=poll-done listed=%zu "
			    "fetched=%u bytes=%llu deleted=%u skipped=%u",
			    s->log_id, s->msg_count, s->result.fetched,
			    (unsigned long long)s->result.fetched_bytes,
			    s->result.deleted, s->result.skipped);
		session_finish(s);
		return;
	}
}

static void
handle_multiline(struct pop3_session *s, const char *line, size_t len)
{
	struct cmd c = *front(s);
	const char *err = NULL;

	if (pop3_multiline_unstuff(&line, &len)) {
		pop_front(s);
		switch (c.kind) {
		case CMD_CAPA:
			after_capa(s, c.msg);
			break;
		case CMD_LIST:
			list_done(s);
			break;
		case CMD_UIDL:
			uidl_done(s);
			break;
		default:
			break;
		}
		return;
	}
	switch (c.kind) {
	case CMD_CAPA:
		trace(s, 'S', line, len);
		pop3_parse_capa_line(&s->capa, line, len);
		break;
	case CMD_LIST: {
		uint32_t msgno;
		uint64_t size;
		struct msg *m;

		if (pop3_parse_list_line(line, len, &msgno, &size, &err) < 0) {
			char esc[LOG_PEER_TEXT_MAX + 1];

			session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "bad LIST line (%s): '%s'", err,
			    log_escape(esc, sizeof(esc), line, len));
			return;
		}
		if (s->msg_count == POP3_MSG_COUNT_MAX) {
			session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "LIST has more than %u messages",
			    POP3_MSG_COUNT_MAX);
			return;
		}
		if (s->msg_count == s->msg_alloc) {
			s->msg_alloc = s->msg_alloc ? s->msg_alloc * 2 : 64;
			s->msgs = xreallocarray(s->msgs, s->msg_alloc,
			    sizeof(*s->msgs));
		}
		m = &s->msgs[s->msg_count++];
		memset(m, 0, sizeof(*m));
		m->msgno = msgno;
		m->list_size = size;
		break;
	}
	case CMD_UIDL: {
		uint32_t msgno;
		const char *uid;
		size_t uid_len;
		enum pop3_uidl_flaw flaw;
		struct msg *m;

		if (!s->uidl_ok)
			break;	/* already falling back; drain the rest */
		if (pop3_parse_uidl_line(line, len, &msgno, &uid, &uid_len,
		    &flaw, &err) < 0) {
			s->uidl_ok = false;
			s->fallback_reason = "malformed UIDL line";
			break;
		}
		if (flaw != POP3_UIDL_OK) {
			s->uidl_ok = false;
			s->fallback_reason = flaw == POP3_UIDL_EMPTY ?
			    "empty UIDL" : flaw == POP3_UIDL_TOO_LONG ?
			    "UIDL over 70 characters" :
			    "UIDL with bad characters";
			break;
		}
		m = msg_by_no(s, msgno);
		if (m == NULL || m->key != NULL) {
			s->uidl_ok = false;
			s->fallback_reason = m == NULL ?
			    "UIDL and LIST disagree" :
			    "UIDL names a message twice";
			break;
		}
		m->key = xmemdup(uid, uid_len);
		m->key_len = uid_len;
		break;
	}
	default:
		break;
	}
}

/* ---- reading -------------------------------------------------------------- */

static bool
process_data(struct pop3_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec vec[16];
	int n = evbuffer_peek(in, -1, NULL, vec, 16);
	size_t total = 0;
	bool done = false;
	uint64_t limit = s->size_limit;

	if (n > 16)
		n = 16;
	for (int i = 0; i < n && !done; i++) {
		const char *p = vec[i].iov_base;
		size_t len = vec[i].iov_len, pos = 0;

		while (pos < len) {
			size_t used, olen;
			const char *o;
			enum pop3_parse_ret r = pop3_data_parse(&s->data,
			    p + pos, len - pos, &used, &o, &olen);

			if (olen > 0) {
				if (s->body_over_limit ||
				    s->body.len + olen > limit) {
					s->body_over_limit = true;
					strbuf_reset(&s->body);
				} else {
					strbuf_append(&s->body, o, olen);
				}
			}
			pos += used;
			if (r == POP3_PARSE_DONE) {
				done = true;
				break;
			}
		}
		total += pos;
	}
	evbuffer_drain(in, total);
	s->stall_progress += total;
	if (s->stall_progress >= POP3_CLIENT_STALL_BYTES) {
		s->stall_progress = 0;
		arm_timer(s, tmo(s->acct->timeouts.stall_ms,
		    POP3_CLIENT_STALL_MS));
	}
	if (done) {
		struct cmd c = *front(s);

		pop_front(s);
		data_done(s, &c);
		pump_fetch(s);
	}
	return total > 0;
}

static void
process_input(struct pop3_session *s)
{
	struct evbuffer *in;

	while (!s->finishing && s->bev != NULL && s->phase == PHASE_PROTOCOL) {
		size_t avail, n, ll, used;
		unsigned char *p;
		const char *err = NULL;
		enum pop3_parse_ret r;

		in = bufferevent_get_input(s->bev);
		avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		if (s->q_len == 0) {
			char esc[LOG_PEER_TEXT_MAX + 1];

			n = avail < 64 ? avail : 64;
			p = evbuffer_pullup(in, (ssize_t)n);
			session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "unsolicited data from server: '%s'",
			    log_escape(esc, sizeof(esc), p, n));
			return;
		}
		if (s->rmode == RMODE_DATA) {
			if (!process_data(s, in))
				return;
			continue;
		}
		n = avail < POP3_LINE_MAX ? avail : POP3_LINE_MAX;
		p = evbuffer_pullup(in, (ssize_t)n);
		r = pop3_parse_line((const char *)p, n, POP3_LINE_MAX, &ll,
		    &used, &err);
		if (r == POP3_PARSE_NEED_MORE)
			return;
		if (r == POP3_PARSE_ERROR) {
			char esc[LOG_PEER_TEXT_MAX + 1];

			session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "response to %s: %s (over %d octets): '%s'",
			    cmd_names[front(s)->kind], err, POP3_LINE_MAX,
			    log_escape(esc, sizeof(esc), p, 60));
			return;
		}
		if (s->rmode == RMODE_LINES) {
			s->stall_progress += used;
			if (s->stall_progress >= POP3_CLIENT_STALL_BYTES) {
				s->stall_progress = 0;
				arm_timer(s, tmo(s->acct->timeouts.stall_ms,
				    POP3_CLIENT_STALL_MS));
			}
			handle_multiline(s, (const char *)p, ll);
		} else {
			handle_status(s, (const char *)p, ll);
		}
		/* start_tls() drained the plain input and swapped s->bev */
		if (s->finishing || s->phase != PHASE_PROTOCOL)
			return;
		evbuffer_drain(in, used);
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;

	(void)bev;
	process_input(s);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->phase == PHASE_CONNECT) {
			log_debug("pop3 account=%s event=connected",
			    s->log_id);
			if (s->acct->tls == UPSTREAM_TLS_POP3S) {
				start_tls(s);
				return;
			}
			s->phase = PHASE_PROTOCOL;
			s->q_head = 0;
			s->q_len = 1;
			s->queue[0].kind = CMD_GREETING;
			s->rmode = RMODE_STATUS;
			arm_timer(s, tmo(s->acct->timeouts.greeting_ms,
			    POP3_CLIENT_GREETING_MS));
			process_input(s);
			return;
		}
		if (s->phase == PHASE_TLS) {
			tls_done(s);
			process_input(s);
		}
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		int e = EVUTIL_SOCKET_ERROR();

		/* a response may still be complete in the buffer */
		if (s->phase == PHASE_PROTOCOL)
			process_input(s);
		if (s->finishing)
			return;
		if (s->phase == PHASE_CONNECT) {
			int dns = bufferevent_socket_get_dns_error(s->bev);

			session_fail(s, POP3_OUTCOME_TEMP, "connect to %s:%u "
			    "failed: %s", s->acct->host,
			    (unsigned)s->acct->port, dns != 0 ?
			    evutil_gai_strerror(dns) :
			    evutil_socket_error_to_string(e));
		} else if (s->phase == PHASE_TLS) {
			tls_failed(s);
		} else if (s->q_len > 0) {
			struct cmd *c = front(s);

			session_fail(s, POP3_OUTCOME_TEMP,
			    "connection closed by the server during %s%s",
			    cmd_names[c->kind], c->kind == CMD_RETR ?
			    " (message not stored, no DELE)" : "");
		} else {
			session_fail(s, POP3_OUTCOME_TEMP,
			    "connection closed by the server");
		}
	}
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;
	static const char *const phases[] = {
		"connect", "TLS handshake", "", ""
	};

	(void)fd;
	(void)what;
	if (s->finishing)
		return;
	if (s->phase != PHASE_PROTOCOL) {
		session_fail(s, POP3_OUTCOME_TEMP, "timeout during %s",
		    phases[s->phase]);
		return;
	}
	if (s->q_len == 0) {
		session_fail(s, POP3_OUTCOME_TEMP, "timeout");
		return;
	}
	session_fail(s, POP3_OUTCOME_TEMP, "timeout waiting for %s%s",
	    front(s)->kind == CMD_GREETING ? "the greeting" :
	    cmd_names[front(s)->kind], s->rmode == RMODE_STATUS ?
	    " response" : " data (stalled)");
}

/* ---- start / abort --------------------------------------------------------- */

int
pop3_session_start(const struct pop3_client_env *env,
    const struct upstream_account *acct, struct upstream_status *status,
    pop3_session_done_cb *cb, void *arg, struct pop3_session **session_r,
    const char **error_r)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	uint16_t port = acct->port;

	s->env = *env;
	s->acct = acct;
	s->status = status;
	s->cb = cb;
	s->cb_arg = arg;
	log_escape(s->log_id, sizeof(s->log_id), acct->id, strlen(acct->id));
	s->size_limit = acct->size_limit != 0 ? acct->size_limit :
	    STORE_MESSAGE_SIZE_MAX;
	if (s->size_limit > STORE_MESSAGE_SIZE_MAX)
		s->size_limit = STORE_MESSAGE_SIZE_MAX;
	status->import_done = 0;
	status->import_total = 0;
	status->import_bytes = 0;
	status->import_rate = 0;
	if (acct->tls != UPSTREAM_TLS_NONE && make_ssl_ctx(s, error_r) < 0) {
		session_free(s);
		return -1;
	}
	s->timer = evtimer_new(env->base, on_timer, s);
	s->finish_ev = event_new(env->base, -1, 0, on_finish, s);
	s->bev = bufferevent_socket_new(env->base, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->timer == NULL || s->finish_ev == NULL || s->bev == NULL) {
		*error_r = "cannot create events";
		session_free(s);
		return -1;
	}
	if (port == 0)
		port = acct->tls == UPSTREAM_TLS_POP3S ? 995 : 110;
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->phase = PHASE_CONNECT;
	arm_timer(s, tmo(acct->timeouts.connect_ms, POP3_CLIENT_CONNECT_MS));
	log_debug("pop3 account=%s event=connecting host=%s port=%u tls=%s",
	    s->log_id, acct->host, (unsigned)port,
	    upstream_tls_name(acct->tls));
	if (bufferevent_socket_connect_hostname(s->bev, env->dns, AF_UNSPEC,
	    acct->host, port) < 0) {
		/* reported through on_event when possible; otherwise here */
		if (!s->finishing)
			session_fail(s, POP3_OUTCOME_TEMP,
			    "cannot connect to %s:%u", acct->host,
			    (unsigned)port);
	}
	*session_r = s;
	return 0;
}

void
pop3_session_abort(struct pop3_session **sp)
{
	struct pop3_session *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	session_free(s);
}
