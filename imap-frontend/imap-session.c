/* imap-session — connection I/O, the state machine, command dispatch. */
#include "imap-session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "arena.h"
#include "evsecret.h"
#include "imap-compress.h"
#include "imap-commands.h"
#include "imap-format.h"
#include "imap-notify.h"
#include "imap-parse.h"
#include "imap-rawlog.h"
#include "imap-spool.h"
#include "imap-throttle.h"
#include "log.h"
#include "strbuf.h"
#include "tls.h"
#include "username.h"
#include "xmalloc.h"

/* The low-water mark below which a paused session resumes: a quarter of
 * the high-water mark keeps the socket busy without refilling too often. */
#define IMAP_OUTPUT_LOW_DIVISOR 4





static void session_input(struct imap_session *s);
static void session_charge(struct imap_session *s);
static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static bool
sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		const uint8_t *b = s6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && b[12] == 127;
	}
	return sa->sa_family == AF_UNIX;
}

static void
session_set_timeouts(struct imap_session *s)
{
	struct imap_server_limits *l = &s->server->limits;
	struct timeval tv;

	tv.tv_sec = s->state == IMAP_STATE_NOT_AUTH ?
	    l->preauth_timeout_secs : l->idle_timeout_secs;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void
session_setup_bev(struct imap_session *s)
{
	size_t hw = s->server->limits.output_high_water;

	if (s->server->rawlog_dir != NULL) {
		if (s->rawlog == NULL)
			s->rawlog = imap_rawlog_open(s->server->rawlog_dir,
			    s->id);
		imap_rawlog_attach(s->rawlog, bufferevent_get_output(s->bev));
	}
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_WRITE,
	    hw / IMAP_OUTPUT_LOW_DIVISOR, 0);
	session_set_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void
write_greeting(struct imap_session *s)
{
	s->greeted = true;
	imap_session_printf(s, "* OK [CAPABILITY %s] popgate IMAP ready\r\n",
	    imap_session_capabilities(s));
}

static void
preauth_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	(void)fd;
	(void)what;
	if (s->user != NULL || s->closing)
		return;
	log_info("imap session=%u event=timeout state=preauth addr=%s", s->id,
	    s->addr);
	if (s->io == IMAP_IO_HANDSHAKE || s->io == IMAP_IO_STARTTLS) {
		imap_session_free(s);
		return;
	}
	imap_session_printf(s, "* BYE Login timeout\r\n");
	imap_session_close(s);
}

struct imap_session *
imap_session_new(struct imap_server *srv, int fd, const struct sockaddr *sa,
    const struct sockaddr *link, bool implicit_tls)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	int port;

	s->server = srv;
	if (srv->next_id == 0)
		srv->next_id = 1;	/* 0 is "no session" (change origins) */
	s->id = srv->next_id++;
	s->fd = fd;
	s->started = time(NULL);
	s->state = IMAP_STATE_NOT_AUTH;
	imap_sockaddr_ip(sa, s->ip, sizeof(s->ip), &port);
	snprintf(s->addr, sizeof(s->addr), sa->sa_family == AF_INET6 ?
	    "[%s]:%d" : "%s:%d", s->ip, port);
	s->secured = srv->loopback_is_secure && sockaddr_is_loopback(link);
	if (implicit_tls) {
		SSL *ssl = SSL_new(srv->ssl_ctx);

		if (ssl == NULL) {
			tls_log_errors("imap");
			close(fd);
			free(s);
			return NULL;
		}
		/* With CLOSE_ON_FREE the bufferevent owns fd and ssl, even
		 * when it fails (libevent 2.1). */
		s->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (s->bev == NULL) {
			free(s);
			return NULL;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
		s->tls = true;
		s->io = IMAP_IO_HANDSHAKE;
	} else {
		s->bev = bufferevent_socket_new(srv->base, fd, 0);
		if (s->bev == NULL) {
			close(fd);
			free(s);
			return NULL;
		}
		s->io = IMAP_IO_COMMAND;
	}
	imap_server_session_added(srv, s);
	session_setup_bev(s);
	/* the time to log in counts from connect; commands do not extend
	   it (a NOOP every minute would hold a slot for ever) */
	{
		struct timeval tv = { srv->limits.preauth_timeout_secs, 0 };

		s->preauth_ev = evtimer_new(srv->base, preauth_timeout_cb, s);
		evtimer_add(s->preauth_ev, &tv);
	}
	log_info("imap session=%u event=connect addr=%s tls=%s", s->id,
	    s->addr, implicit_tls ? "implicit" : "no");
	if (!implicit_tls)
		write_greeting(s);
	return s;
}

/* COMPRESS: deflates what is waiting in zout into the bufferevent. A
 * failure closes the connection (nothing more can be sent intact). */
static void
session_zflush(struct imap_session *s)
{
	const char *err;

	if (s->z == NULL || evbuffer_get_length(s->zout) == 0)
		return;
	if (imap_compress_deflate(s->z, s->zout,
	    bufferevent_get_output(s->bev), &err) != 0) {
		log_error("imap session=%u event=deflate_failed error=\"%s\"",
		    s->id, err);
		evbuffer_drain(s->zout, evbuffer_get_length(s->zout));
		imap_session_close(s);
	}
}

static void
zflush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_zflush(arg);
}

/* Something was written to zout: deflate it once this loop iteration's
 * handlers are done, so a burst of responses becomes one flush. */
static void
zout_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct imap_session *s = arg;

	(void)buf;
	if (info->n_added > 0 && !event_pending(s->zflush_ev, EV_TIMEOUT,
	    NULL))
		event_active(s->zflush_ev, EV_TIMEOUT, 0);
}

void
imap_session_start_compress(struct imap_session *s, struct imap_compress *z)
{
	PG_ASSERT(s->z == NULL);
	s->z = z;
	s->zin = evbuffer_new();
	s->zout = evbuffer_new();
	s->zflush_ev = event_new(s->server->base, -1, 0, zflush_cb, s);
	evbuffer_add_cb(s->zout, zout_cb, s);
	/* the trace shows what the client reads after inflating */
	if (s->rawlog != NULL)
		imap_rawlog_attach(s->rawlog, s->zout);
	log_info("imap session=%u event=compress mechanism=DEFLATE "
	    "memory=%zu", s->id, imap_compress_memory(s->z));
}

/* Bytes not yet handed to the kernel (or to TLS): both sides of
 * COMPRESS. */
static size_t
session_out_pending(struct imap_session *s)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));

	if (s->z != NULL)
		n += evbuffer_get_length(s->zout);
	return n;
}

static void
close_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	(void)fd;
	(void)what;
	session_zflush(s);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		imap_session_free(s);
}

void
imap_session_close(struct imap_session *s)
{
	struct timeval tv0 = { 0, 0 };

	if (s->closing)
		return;
	s->closing = true;
	s->io = IMAP_IO_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	if (s->close_ev == NULL)
		s->close_ev = evtimer_new(s->server->base, close_timer_cb, s);
	evtimer_add(s->close_ev, &tv0);
}

void
imap_session_free(struct imap_session *s)
{
	char q[LOG_QUOTE_MAX];

	imap_server_session_gone(s->server, s);
	log_info("imap session=%u event=disconnect user=%s", s->id,
	    log_quote(q, sizeof(q), s->user != NULL ? s->user : "-"));
	if (s->job != NULL) {
		/* the job goes on (a store change still commits) but finds
		   no session: it is only freed. A worker's job is told to
		   stop early. */
		s->job->session = NULL;
		if (s->job->wq.run != NULL)
			workq_cancel(s->server->workq, &s->job->wq);
		s->job = NULL;
	}
	if (s->cont_free != NULL)
		s->cont_free(s->cont_ctx);
	if (s->close_ev != NULL)
		event_free(s->close_ev);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->z != NULL) {
		unsigned long long ro, wo, wi, ri;

		imap_compress_counts(s->z, &ro, &wo, &wi, &ri);
		log_info("imap session=%u event=compress_end out=%llu "
		    "out_wire=%llu in_wire=%llu in=%llu", s->id, ro, wo, wi,
		    ri);
		imap_rawlog_close(&s->rawlog);
		event_free(s->zflush_ev);
		evsecret_drain(s->zin, evbuffer_get_length(s->zin));
		evbuffer_free(s->zin);
		evbuffer_free(s->zout);
		imap_compress_free(&s->z);
	}
	if (s->preauth_ev != NULL)
		event_free(s->preauth_ev);
	if (s->keepalive_ev != NULL)
		event_free(s->keepalive_ev);
	if (s->auth_pass != NULL) {
		secure_zero(s->auth_pass, strlen(s->auth_pass));
		free(s->auth_pass);
	}
	free(s->auth_user);
	if (s->bev != NULL) {
		struct evbuffer *in = bufferevent_get_input(s->bev);

		/* an incomplete command (a LOGIN cut short) is not left in
		   memory freed unwiped */
		evsecret_drain(in, evbuffer_get_length(in));
		imap_rawlog_close(&s->rawlog);
		bufferevent_free(s->bev);
	}
	if (!s->tls)
		close(s->fd);
	imap_rawlog_close(&s->rawlog);
	imap_session_unselect(s);
	imap_notify_free(&s->notify);
	imap_parser_free(&s->parser);
	session_charge(s);
	free(s->tag);
	free(s->user);
	free(s->client_id);
	free(s);
}

/* ---- output ---- */

struct evbuffer *
imap_session_out(struct imap_session *s)
{
	return s->z != NULL ? s->zout : bufferevent_get_output(s->bev);
}

void
imap_session_printf(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(imap_session_out(s), fmt, ap);
	va_end(ap);
}

void
imap_session_write(struct imap_session *s, const void *data, size_t len)
{
	evbuffer_add(imap_session_out(s), data, len);
}

void
imap_session_write_sb(struct imap_session *s, struct strbuf *sb)
{
	if (sb->len > 0)
		evbuffer_add(imap_session_out(s), sb->data, sb->len);
	strbuf_reset(sb);
}

bool
imap_session_output_full(struct imap_session *s)
{
	return session_out_pending(s) >= s->server->limits.output_high_water;
}

void
imap_session_tagged(struct imap_session *s, const char *tag,
    const char *status, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->state == IMAP_STATE_SELECTED && s->sel != NULL) {
		if (s->sel->deleted && s->cmd_committed) {
			/* the command's change is durable (an APPEND to
			 * another mailbox, say) while another session deleted
			 * the selected one: the client must learn it worked
			 * before the BYE, or it would do it again */
			imap_session_printf(s, "%s %s %s\r\n", tag, status,
			    text);
			imap_session_bye_deleted(s);
			return;
		}
		imap_session_send_updates(s, s->cmd_allows_expunge);
		/* a command that streamed from the mailbox while it was
		 * deleted ends with that BYE, not with a completion */
		if (s->sel->deleted)
			return;
	}
	/* text may carry a [CODE ...] prefix the caller composed itself */
	strbuf_appendf(&sb, "%s %s %s\r\n", tag, status, text);
	imap_session_write(s, sb.data, sb.len);
	strbuf_free(&sb);
	if (strcmp(status, "BAD") == 0) {
		s->server->stats.bad_commands++;
		if (++s->bad_in_row >= s->server->limits.max_bad_commands) {
			imap_session_printf(s, "* BYE Too many invalid "
			    "commands\r\n");
			log_warn("imap session=%u event=too_many_bad_commands",
			    s->id);
			imap_session_close(s);
		}
	} else {
		s->bad_in_row = 0;
	}
}

uint64_t
imap_session_append_limit(const struct imap_session *s)
{
	/* an APPEND's message streams to a spool file: its own limit, not
	   the in-memory literal's */
	uint64_t n = s->server->limits.max_append;

	return n < STORE_MESSAGE_SIZE_MAX ? n : STORE_MESSAGE_SIZE_MAX;
}

const char *
imap_session_capabilities(struct imap_session *s)
{
	static char buf[1024];
	/* each extension is listed only once it works in full */
	const char *common = "IMAP4rev1 IMAP4rev2 SEARCHRES SASL-IR LITERAL+ ID ENABLE IDLE "
	    "NAMESPACE UNSELECT CHILDREN UIDPLUS MOVE SPECIAL-USE "
	    "CREATE-SPECIAL-USE CONDSTORE QRESYNC ESEARCH LIST-EXTENDED "
	    "LIST-STATUS COMPRESS=DEFLATE STATUS=SIZE BINARY SORT ESORT "
	    "THREAD=ORDEREDSUBJECT THREAD=REFERENCES UTF8=ACCEPT OBJECTID "
	    "PREVIEW QUOTA QUOTA=RES-STORAGE NOTIFY";

	snprintf(buf, sizeof(buf), "%s APPENDLIMIT=%llu%s%s", common,
	    (unsigned long long)imap_session_append_limit(s),
	    s->state != IMAP_STATE_NOT_AUTH || s->tls ||
	    s->server->ssl_ctx == NULL ? "" : " STARTTLS",
	    s->state != IMAP_STATE_NOT_AUTH ? "" :
	    imap_session_login_allowed(s) ? " AUTH=PLAIN" : " LOGINDISABLED");
	return buf;
}

bool
imap_session_login_allowed(const struct imap_session *s)
{
	return s->tls || s->secured || s->server->allow_plaintext;
}

/* ---- commands waiting for a job ---- */

uint64_t
imap_session_work_key(const struct imap_session *s)
{
	uint64_t h = 1469598103934665603ULL;

	if (s->user != NULL)
		return s->user_id;
	/* before login: the client address, apart from every user id */
	for (const char *p = s->ip; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h | (1ULL << 63);
}

static void
job_free(struct imap_job *job)
{
	free(job->tag);
	if (job->free != NULL)
		job->free(job);
	else
		free(job);
}

static void
job_start(struct imap_session *s, const char *tag, struct imap_job *job)
{
	PG_ASSERT(s->job == NULL);
	job->session = s;
	job->user_id = s->user_id;
	job->tag = xstrdup(tag);
	s->job = job;
	s->io = IMAP_IO_JOB;
	bufferevent_disable(s->bev, EV_READ);
}

/* The job is done (loop thread): its responses, then the next command.
 * committed: a store change of it is durable (its answer must reach the
 * client even if the selected mailbox went meanwhile). */
static void
job_finished(struct imap_job *job, bool committed)
{
	struct imap_session *s = job->session;

	if (s == NULL) {
		job_free(job);
		return;
	}
	s->job = NULL;
	s->io = IMAP_IO_COMMAND;
	s->cmd_committed = committed;
	job->finish(s, job->tag, job);
	s->cmd_committed = false;
	job_free(job);
	arena_reset(s->server->scratch);
	if (s->io != IMAP_IO_COMMAND || s->closing)
		return;
	if (s->parser != NULL)
		imap_parser_release(s->parser);
	session_charge(s);
	if (!s->read_paused)
		bufferevent_enable(s->bev, EV_READ);
	/* without a writer or pool the job finished inside its own
	   handler: the dispatcher goes on by itself */
	if (!s->in_dispatch)
		session_input(s);
}

static void
write_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct imap_job *job = ctx;

	job->rc = rc;
	job->cls = cls;
	snprintf(job->error, sizeof(job->error), "%s",
	    error != NULL ? error : "");
	job_finished(job, rc >= 0);
}

void
imap_session_submit_write(struct imap_session *s, const char *tag,
    struct imap_job *job, size_t bytes, store_apply_fn *apply)
{
	job_start(s, tag, job);
	store_write_submit(s->server->store, s->user_id, s->id, bytes, apply,
	    write_done, job);
}

static void
work_done(struct workq_job *wq)
{
	job_finished((struct imap_job *)wq, false);
}

void
imap_session_submit_work(struct imap_session *s, const char *tag,
    struct imap_job *job)
{
	PG_ASSERT(job->wq.run != NULL);
	job->wq.done = work_done;
	job->wq.key = imap_session_work_key(s);
	job_start(s, tag, job);
	workq_submit(s->server->workq, &job->wq);
}

/* ---- streaming commands ---- */

void
imap_session_continue_with(struct imap_session *s, imap_cont_fn *fn,
    void *ctx, void (*ctx_free)(void *ctx))
{
	s->cont = fn;
	s->cont_ctx = ctx;
	s->cont_free = ctx_free;
	s->io = IMAP_IO_CONTINUE;
	bufferevent_disable(s->bev, EV_READ);
}

static void
run_continuation(struct imap_session *s)
{
	while (s->io == IMAP_IO_CONTINUE && !s->closing &&
	    !imap_session_output_full(s)) {
		if (s->cont(s)) {
			if (s->cont_free != NULL)
				s->cont_free(s->cont_ctx);
			s->cont = NULL;
			s->cont_ctx = NULL;
			s->cont_free = NULL;
			if (s->io == IMAP_IO_CONTINUE) {
				s->io = IMAP_IO_COMMAND;
				/* continue_with stopped reading: resume, the
				 * back-pressure check below decides again */
				if (!s->closing)
					bufferevent_enable(s->bev, EV_READ);
			}
			break;
		}
	}
}

/* ---- TLS ---- */

void
imap_session_starttls(struct imap_session *s)
{
	s->io = IMAP_IO_STARTTLS;
	bufferevent_disable(s->bev, EV_READ);
}

static void
starttls_switch(struct imap_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);
	SSL *ssl;

	/* Everything the client sent before the handshake is discarded,
	 * never executed (STARTTLS command injection, CVE-2011-0411 class). */
	if (junk > 0) {
		log_warn("imap session=%u event=starttls_injection bytes=%zu",
		    s->id, junk);
		evsecret_drain(in, junk);
	}
	if (s->parser != NULL)
		imap_parser_reset(s->parser);
	session_charge(s);
	imap_rawlog_detach(s->rawlog);
	bufferevent_free(s->bev);
	s->bev = NULL;
	ssl = SSL_new(s->server->ssl_ctx);
	if (ssl == NULL) {
		tls_log_errors("imap");
		s->closing = true;
		return;
	}
	s->bev = bufferevent_openssl_socket_new(s->server->base, s->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	s->tls = true;	/* the bufferevent owns fd now */
	if (s->bev == NULL) {
		s->closing = true;
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	s->io = IMAP_IO_HANDSHAKE;
	session_setup_bev(s);
	imap_trace_session_rebind(s);
}

/* ---- authentication ---- */

/* Hands the held credentials to the auth hook (which may answer before
 * it returns). */
static void
login_run(struct imap_session *s, const char *pass)
{
	struct imap_auth_request *req = imap_auth_request_new(s);
	char *user = xstrdup(s->auth_user);

	if (!imap_server_ticket_login(s, user, pass, req))
		s->server->auth(s->server->auth_ctx, user, pass, s->addr, req);
	free(user);
}

static void
login_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;
	char *pass = s->auth_pass;

	(void)fd;
	(void)what;
	s->auth_pass = NULL;
	/* the password check reads nothing more until it answers */
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
	if (!s->closing)
		login_run(s, pass);
	secure_zero(pass, strlen(pass));
	free(pass);
}

void
imap_session_begin_login(struct imap_session *s, const char *tag,
    const char *user, const char *pass)
{
	struct imap_server *srv = s->server;
	struct timeval tv;
	unsigned ms;

	free(s->tag);
	s->tag = xstrdup(tag);
	free(s->auth_user);
	/* one person, one user: the throttle, the auth hook (pass-through
	   too) and the session see the canonical name only */
	s->auth_user = username_canon_dup(user, srv->fold_user_names);
	user = s->auth_user;
	s->io = IMAP_IO_AUTH_WAIT;
	bufferevent_disable(s->bev, EV_READ);
	ms = imap_throttle_delay(srv->throttle, user, s->ip, time(NULL));
	if (ms == 0) {
		login_run(s, pass);
		return;
	}
	/* held back on a timer: neither the loop nor a worker waits */
	log_debug("imap session=%u event=login_delayed ip=%s ms=%u", s->id,
	    s->ip, ms);
	s->auth_pass = xstrdup(pass);
	/* keep reading while held, so a client that goes is freed at once
	   (its pre-auth slot with it); what it sends meanwhile waits in the
	   input, at most IMAP_LOGIN_HELD_INPUT_MAX (then libevent stops
	   reading) */
	bufferevent_setwatermark(s->bev, EV_READ, 0, IMAP_LOGIN_HELD_INPUT_MAX);
	bufferevent_enable(s->bev, EV_READ);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if (s->delay_ev == NULL)
		s->delay_ev = evtimer_new(srv->base, login_delay_cb, s);
	evtimer_add(s->delay_ev, &tv);
}

/* A failed login: counted, logged for fail2ban, and the connection
 * closed after a few. */
static void
login_failed(struct imap_session *s, const char *tag, bool disabled)
{
	struct imap_server *srv = s->server;
	struct imap_throttle_counts c;
	char user[LOG_PEER_TEXT_MAX];
	const char *name = s->auth_user != NULL ? s->auth_user : "";

	srv->stats.logins_failed++;
	imap_throttle_failed(srv->throttle, name, s->ip, time(NULL), &c);
	log_escape(user, sizeof(user), name, strlen(name));
	/* the address comes first (fail2ban's <HOST>); the user name is
	   escaped and quoted, so it cannot forge a field */
	log_warn("imap session=%u event=login_failed ip=%s port=%s user=\"%s\" "
	    "reason=%s failures=%u addr_failures=%u user_failures=%u",
	    s->id, s->ip, strrchr(s->addr, ':') + 1, user,
	    disabled ? "disabled" : "bad_credentials", c.pair, c.addr,
	    c.user);
	/* disabled: the password was right (a user moved to another
	   node), so saying why tells nothing to a guesser */
	imap_session_tagged(s, tag, "NO", disabled ? "[CONTACTADMIN] This "
	    "account is no longer served here (it was moved to another "
	    "server); ask your administrator" : "[AUTHENTICATIONFAILED] "
	    "Authentication failed");
	if (++s->auth_failures >= srv->limits.max_auth_failures &&
	    !s->closing) {
		log_info("imap session=%u event=too_many_login_failures ip=%s",
		    s->id, s->ip);
		imap_session_printf(s, "* BYE Too many failed logins\r\n");
		imap_session_close(s);
	}
}

void
imap_session_auth_finished(struct imap_session *s,
    enum imap_auth_result result, const char *user)
{
	struct imap_server *srv = s->server;
	const char *tag = s->tag != NULL ? s->tag : "*";
	struct store_read *r = NULL;
	const char *err;
	char q[LOG_QUOTE_MAX];
	uint32_t user_id = 0;
	int rc = -1;

	if (result == IMAP_AUTH_OK) {
		if (store_read_begin(srv->store, &r, &err) == 0) {
			rc = store_user_lookup(r, user, &user_id, &err);
			store_read_end(&r);
		}
		if (rc != 0)
			result = rc == STORE_NOT_FOUND ? IMAP_AUTH_FAILED :
			    IMAP_AUTH_TEMPFAIL;
	}
	if (result == IMAP_AUTH_OK && srv->limits.max_sessions_per_user > 0 &&
	    imap_server_user_sessions(srv, user) >=
	    srv->limits.max_sessions_per_user) {
		srv->stats.logins_failed++;
		log_warn("imap session=%u event=login_refused user=%s "
		    "reason=per_user_limit", s->id, log_quote(q, sizeof(q),
		    user));
		imap_session_tagged(s, tag, "NO", "[LIMIT] Too many sessions "
		    "for this user");
		goto out;
	}
	switch (result) {
	case IMAP_AUTH_OK:
		srv->stats.logins_ok++;
		srv->stats.sessions_authenticated++;
		if (s->auth_user != NULL)
			imap_throttle_succeeded(srv->throttle, s->auth_user,
			    s->ip);
		imap_server_session_authed(srv, s);
		s->user = xstrdup(user);
		s->user_id = user_id;
		s->state = IMAP_STATE_AUTH;
		if (s->parser != NULL)
			imap_parser_set_authenticated(s->parser, true);
		if (s->preauth_ev != NULL)
			evtimer_del(s->preauth_ev);
		session_set_timeouts(s);
		log_info("imap session=%u event=login user=%s addr=%s", s->id,
		    log_quote(q, sizeof(q), user), s->addr);
		imap_trace_session_login(s);
		imap_session_tagged(s, tag, "OK", "[CAPABILITY %s] Logged in",
		    imap_session_capabilities(s));
		break;
	case IMAP_AUTH_TEMPFAIL:
		srv->stats.logins_failed++;
		imap_session_tagged(s, tag, "NO", "[UNAVAILABLE] Temporary "
		    "authentication failure");
		break;
	case IMAP_AUTH_DISABLED:
	case IMAP_AUTH_FAILED:
	default:
		login_failed(s, tag, result == IMAP_AUTH_DISABLED);
		break;
	}
out:
	free(s->tag);
	s->tag = NULL;
	free(s->auth_user);
	s->auth_user = NULL;
	if (s->io == IMAP_IO_AUTH_WAIT) {
		s->io = IMAP_IO_COMMAND;
		if (!s->closing)
			bufferevent_enable(s->bev, EV_READ);
		if (!s->in_dispatch)
			session_input(s);
	}
}

/* ---- input ---- */

/* Would an APPEND of size bytes take the user past their quota? Asked
 * before the "+" so the bytes are not sent for nothing; the writer checks
 * again when it stores (other sessions may add mail meanwhile). */
static bool
append_over_quota(struct imap_session *s, uint64_t size)
{
	struct store_read *r = NULL;
	uint64_t limit = 0, used = 0;
	bool own, over = false;

	if (store_read_begin(s->server->store, &r, NULL) != 0)
		return false;
	if (store_user_quota_get(r, s->user_id, &limit, &own, NULL) == 0 &&
	    limit > 0 && store_user_usage(r, s->user_id, &used, NULL) == 0)
		over = used + size > limit;
	store_read_end(&r);
	return over;
}

/* The literal sink (imap-parse.h): an APPEND's message goes to a spool
 * file; every other literal is held in memory only while the server-wide
 * budget has room. */
static enum imap_parse_error_code
sink_start(void *ctx, uint64_t size, bool stream, void **handle_r,
    const char **text_r)
{
	struct imap_session *s = ctx;
	struct imap_server *srv = s->server;
	struct imap_spool *sp;

	if (!stream) {
		if (srv->stats.buffered_bytes + size <=
		    srv->limits.buffer_budget)
			return IMAP_PARSE_ERR_NONE;
		srv->stats.refused_budget++;
		log_warn("imap session=%u event=memory_budget_full "
		    "buffered=%llu literal=%llu", s->id,
		    (unsigned long long)srv->stats.buffered_bytes,
		    (unsigned long long)size);
		*text_r = "Server busy: too much input held in memory, "
		    "try again later";
		return IMAP_PARSE_ERR_LIMIT;
	}
	if (append_over_quota(s, size)) {
		*text_r = "Quota exceeded: this message does not fit";
		return IMAP_PARSE_ERR_OVERQUOTA;
	}
	sp = imap_spool_open(srv->spool_dir, size, text_r);
	if (sp == NULL)
		return IMAP_PARSE_ERR_LIMIT;
	*handle_r = sp;
	return IMAP_PARSE_ERR_NONE;
}

static enum imap_parse_error_code
sink_write(void *ctx, void *handle, const void *data, size_t n,
    const char **text_r)
{
	(void)ctx;
	return imap_spool_write(handle, data, n, text_r) == 0 ?
	    IMAP_PARSE_ERR_NONE : IMAP_PARSE_ERR_LIMIT;
}

static void
sink_discard(void *ctx, void *handle)
{
	struct imap_spool *sp = handle;

	(void)ctx;
	imap_spool_free(&sp);
}

/* Brings the budget's count up to what the parser holds now. */
static void
session_charge(struct imap_session *s)
{
	uint64_t now = s->parser != NULL ? imap_parser_held(s->parser) : 0;

	s->server->stats.buffered_bytes += now;
	s->server->stats.buffered_bytes -= s->held;
	s->held = now;
}

static struct imap_parser *
session_parser(struct imap_session *s)
{
	if (s->parser == NULL) {
		struct imap_parse_limits lim;
		struct imap_server_limits *l = &s->server->limits;

		imap_parse_limits_default(&lim);
		lim.max_line = l->max_line;
		lim.max_literal = l->max_literal;
		lim.max_literal_preauth = l->max_literal_preauth;
		lim.max_stream_literal = l->max_append;
		if (lim.max_atom > lim.max_line)
			lim.max_atom = lim.max_line;
		if (lim.max_command < lim.max_literal + 2 * lim.max_line)
			lim.max_command = lim.max_literal + 2 * lim.max_line;
		s->parser = imap_parser_new(&lim);
		imap_parser_set_sink(s->parser, &(struct imap_literal_sink){
		    .ctx = s, .start = sink_start, .write = sink_write,
		    .discard = sink_discard });
		imap_parser_set_authenticated(s->parser,
		    s->state != IMAP_STATE_NOT_AUTH);
		/* BINARY is advertised: APPEND takes literal8 (RFC 3516) */
		imap_parser_set_literal8(s->parser, true);
	}
	return s->parser;
}

static void
handle_line(struct imap_session *s, const char *line, size_t len)
{
	const char *tag = s->tag != NULL ? s->tag : "*";

	if (s->io == IMAP_IO_IDLE) {
		s->io = IMAP_IO_COMMAND;
		s->cmd_allows_expunge = true;
		if (s->keepalive_ev != NULL)
			evtimer_del(s->keepalive_ev);
		if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
			imap_session_tagged(s, tag, "OK", "Idle completed");
		else
			imap_session_tagged(s, tag, "BAD", "Expected DONE");
	} else {
		s->io = IMAP_IO_COMMAND;
		imap_cmd_authenticate_response(s, line, len);
	}
	if (s->io == IMAP_IO_COMMAND) {
		free(s->tag);
		s->tag = NULL;
	}
	arena_reset(s->server->scratch);
}

static void
dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	s->server->stats.commands++;
	s->cmd_allows_expunge = true;
	imap_cmd_dispatch(s, cmd);
	if (s->io == IMAP_IO_COMMAND) {
		arena_reset(s->server->scratch);
		/* the command is over: what it held goes back to the budget */
		imap_parser_release(s->parser);
		session_charge(s);
	}
}

static void
parse_error(struct imap_session *s, bool fatal)
{
	const struct imap_parse_error *e = imap_parser_get_error(s->parser);
	char esc[LOG_PEER_TEXT_MAX];

	if (fatal) {
		log_warn("imap session=%u event=protocol_error fatal=yes "
		    "error=\"%s\"", s->id, e->text);
		imap_session_printf(s, "* BYE %s\r\n", e->text);
		imap_session_close(s);
		return;
	}
	(void)esc;
	s->cmd_allows_expunge = false;
	if (e->code == IMAP_PARSE_ERR_LITERAL_TOO_BIG)
		imap_session_tagged(s, e->tag != NULL ? e->tag : "*", "NO",
		    "[TOOBIG] %s", e->text);
	else if (e->code == IMAP_PARSE_ERR_LIMIT)
		imap_session_tagged(s, e->tag != NULL ? e->tag : "*", "NO",
		    "[LIMIT] %s", e->text);
	else if (e->code == IMAP_PARSE_ERR_OVERQUOTA)
		imap_session_tagged(s, e->tag != NULL ? e->tag : "*", "NO",
		    "[OVERQUOTA] %s", e->text);
	else
		imap_session_tagged(s, e->tag != NULL ? e->tag : "*", "BAD",
		    "%s", e->text);
}

/* Where the client's next bytes are: the bufferevent's input, or with
 * COMPRESS what was inflated from it (at most IMAP_INFLATE_CHUNK ahead
 * of the parser). NULL after a corrupt stream (the session closes). */
static struct evbuffer *
session_in(struct imap_session *s)
{
	const char *err;

	if (s->z == NULL)
		return bufferevent_get_input(s->bev);
	if (evbuffer_get_length(s->zin) < IMAP_INFLATE_CHUNK &&
	    imap_compress_inflate(s->z, bufferevent_get_input(s->bev), s->zin,
	    IMAP_INFLATE_CHUNK, &err) != 0) {
		log_warn("imap session=%u event=inflate_failed error=\"%s\"",
		    s->id, err);
		imap_session_printf(s, "* BYE Corrupt compressed data\r\n");
		imap_session_close(s);
		return NULL;
	}
	return s->zin;
}

static void
session_input(struct imap_session *s)
{
	struct evbuffer *in;

	if (s->bev == NULL)
		return;
	if (!s->proxy_checked && imap_proxy_refuse_header(s))
		return;
	imap_notify_flush(s);	/* a rest point: what NOTIFY holds */
	s->in_dispatch = true;
	while (!s->closing) {
		struct evbuffer_iovec v;
		enum imap_parse_result r;
		const struct imap_command *cmd = NULL;
		const char *line = NULL;
		size_t used = 0, line_len = 0;

		if (s->io != IMAP_IO_COMMAND && s->io != IMAP_IO_SASL &&
		    s->io != IMAP_IO_IDLE)
			break;
		/* again each time: COMPRESS switches it mid-stream */
		if ((in = session_in(s)) == NULL)
			break;
		if (imap_session_output_full(s)) {
			/* Back-pressure: the client does not read what we
			 * send; stop reading its commands until it does. */
			s->read_paused = true;
			bufferevent_disable(s->bev, EV_READ);
			break;
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		if (s->io == IMAP_IO_COMMAND) {
			r = imap_parser_feed(session_parser(s), v.iov_base,
			    v.iov_len, &used, &cmd);
		} else {
			r = imap_parser_read_line(session_parser(s), v.iov_base,
			    v.iov_len, &used, &line, &line_len);
			if (r == IMAP_PARSE_ERROR && s->io == IMAP_IO_IDLE &&
			    line_len == 0)
				line_len = 0;
		}
		/* the parser copied what it used: wipe those bytes (a
		   LOGIN's password, an AUTHENTICATE response) before
		   libevent frees or reuses the chain unwiped */
		evsecret_drain(in, used);
		session_charge(s);
		switch (r) {
		case IMAP_PARSE_NEED_MORE:
			break;
		case IMAP_PARSE_NEED_CONTINUATION:
			imap_session_printf(s, "+ OK\r\n");
			break;
		case IMAP_PARSE_DONE:
			if (cmd != NULL)
				dispatch(s, cmd);
			else
				handle_line(s, line, line_len);
			break;
		case IMAP_PARSE_ERROR:
			if (s->io == IMAP_IO_COMMAND)
				parse_error(s, false);
			else
				handle_line(s, "", 0);
			break;
		case IMAP_PARSE_FATAL:
			parse_error(s, true);
			break;
		}
	}
	s->in_dispatch = false;
	imap_notify_flush(s);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct imap_session *s = arg;

	(void)bev;
	session_input(s);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct imap_session *s = arg;
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	switch (s->io) {
	case IMAP_IO_STARTTLS:
		if (left == 0)
			starttls_switch(s);
		if (s->closing)
			imap_session_free(s);
		return;
	case IMAP_IO_CLOSING:
		session_zflush(s);
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			imap_session_free(s);
		return;
	case IMAP_IO_CONTINUE:
		run_continuation(s);
		break;
	default:
		break;
	}
	if (s->read_paused && !imap_session_output_full(s) &&
	    (s->io == IMAP_IO_COMMAND || s->io == IMAP_IO_IDLE ||
	    s->io == IMAP_IO_SASL)) {
		s->read_paused = false;
		bufferevent_enable(s->bev, EV_READ);
	}
	if (s->io == IMAP_IO_COMMAND || s->io == IMAP_IO_IDLE)
		session_input(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct imap_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

		log_info("imap session=%u event=tls version=%s cipher=%s",
		    s->id, ssl != NULL ? SSL_get_version(ssl) : "-",
		    ssl != NULL ? SSL_get_cipher_name(ssl) : "-");
		s->io = IMAP_IO_COMMAND;
		if (!s->greeted)
			write_greeting(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		log_info("imap session=%u event=timeout state=%d", s->id,
		    (int)s->state);
		if (!s->closing && (what & BEV_EVENT_READING)) {
			imap_session_printf(s, "* BYE Disconnected for "
			    "inactivity\r\n");
			imap_session_close(s);
			return;
		}
		imap_session_free(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e, codes[8];
		size_t n = 0;
		char buf[512], q[600];

		while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
			if (n < N_ELEMENTS(codes))
				codes[n++] = e;
		}
		/* one line, and none for a client that just went away */
		if (tls_describe_errors(codes, n, buf, sizeof(buf)) ==
		    TLS_ERRORS_REAL)
			log_info("imap session=%u event=tls_error error=%s",
			    s->id, log_quote(q, sizeof(q), buf));
	}
	imap_session_free(s);
}
