/* pop3-client — the session: connection, command queue, reading and
 * dispatching responses, timeouts; see pop3-client.h and pop3-session.h. */
#include "pop3-upstream/pop3-client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "evsecret.h"
#include "log.h"
#include "pop3-upstream/pop3-parse.h"
#include "pop3-upstream/pop3-session.h"
#include "store/store.h"
#include "strbuf.h"
#include "workq.h"
#include "xmalloc.h"

static void resolve_start(struct pop3_session *s, uint16_t port);
static void resolve_detach(struct pop3_session *s);
static bool connect_next(struct pop3_session *s);

const char *const pop3_cmd_names[] = {
	"greeting", "CAPA", "STLS", "USER", "PASS", "APOP", "AUTH", "LIST",
	"UIDL", "TOP", "RETR", "DELE", "QUIT",
};

static void process_input(struct pop3_session *s);

const char *
pop3_outcome_name(enum pop3_outcome outcome)
{
	static const char *const names[] = {
		"ok", "temporary", "auth", "login-delay", "tls", "protocol",
		"store", "aborted", "quota",
	};

	return (size_t)outcome < N_ELEMENTS(names) ? names[outcome] : "?";
}

/* Arms the session's single timer for the phase now waited on. */
void
pop3_session_arm(struct pop3_session *s, enum tmo which)
{
	const struct upstream_timeouts *t = &s->acct->timeouts;
	static const unsigned int defaults[] = {
		POP3_CLIENT_CONNECT_MS, POP3_CLIENT_TLS_MS,
		POP3_CLIENT_GREETING_MS, POP3_CLIENT_COMMAND_MS,
		POP3_CLIENT_STALL_MS,
	};
	const unsigned int conf[] = {
		t->connect_ms, t->tls_ms, t->greeting_ms, t->command_ms,
		t->stall_ms,
	};
	unsigned int ms = conf[which] != 0 ? conf[which] : defaults[which];
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(s->timer, &tv);
}

void
pop3_session_trace(struct pop3_session *s, char dir, const char *line,
    size_t len)
{
	char esc[LOG_PEER_TEXT_MAX + 1];

	if (!s->acct->trace)
		return;
	log_info("pop3 account=%s trace=%c line=\"%s\"", s->log_id, dir,
	    log_escape(esc, sizeof(esc), line, len));
}

/* ---- finishing ----------------------------------------------------------- */

static void
session_free(struct pop3_session *s)
{
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->poll_timer != NULL)
		event_free(s->poll_timer);
	if (s->retr_timer != NULL)
		event_free(s->retr_timer);
	if (s->finish_ev != NULL)
		event_free(s->finish_ev);
	if (s->stop_timer != NULL)
		event_free(s->stop_timer);
	if (s->ssl_ctx != NULL)
		SSL_CTX_free(s->ssl_ctx);
	resolve_detach(s);
	pop3_login_detach(s);
	pop3_fetch_detach_inflight(s);
	pop3_deliver_listing_unref(&s->listing);
	pop3_login_clear(s);
	pop3_fetch_batch_free(s);
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
void
pop3_session_finish(struct pop3_session *s)
{
	if (s->finishing)
		return;
	s->finishing = true;
	s->phase = PHASE_DONE;
	evtimer_del(s->timer);
	if (s->stop_timer != NULL)
		evtimer_del(s->stop_timer);
	if (s->bev != NULL) {
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		bufferevent_setcb(s->bev, NULL, NULL, NULL, NULL);
	}
	/* batches on their way to the store end it (pop3-fetch.c) */
	if (s->inflight_count == 0)
		event_active(s->finish_ev, EV_TIMEOUT, 1);
}

void
pop3_session_fail(struct pop3_session *s, enum pop3_outcome outcome,
    const char *fmt, ...)
{
	va_list ap;

	if (s->finishing)
		return;
	/* Complete messages already received are worth keeping: committing
	   them sends no DELE (no QUIT follows), and saves a refetch. */
	if (outcome != POP3_OUTCOME_STORE && outcome != POP3_OUTCOME_QUOTA &&
	    s->batch_count > 0)
		pop3_fetch_flush(s);
	if (s->finishing)
		return;
	s->result.outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(s->result.error, sizeof(s->result.error), fmt, ap);
	va_end(ap);
	log_warn("pop3 account=%s event=poll-failed class=%s error=\"%s\"",
	    s->log_id, pop3_outcome_name(outcome), s->result.error);
	pop3_session_finish(s);
}

/* ---- sending ----------------------------------------------------------- */

void
pop3_session_send(struct pop3_session *s, enum cmd_kind kind, uint32_t msg,
    const char *fmt, ...)
{
	/* SASL responses may be long (an OAuth token); any other command
	   stays far below POP3_CLIENT_CMD_MAX */
	char line[POP3_CLIENT_SASL_LINE_MAX];
	va_list ap;
	int n;
	size_t slot;

	PG_ASSERT(s->q_len < N_ELEMENTS(s->queue));
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	PG_ASSERT(n >= 0 && (size_t)n < sizeof(line) - 2);
	if (s->acct->trace) {
		if (s->trace_mask != NULL)
			pop3_session_trace(s, 'C', s->trace_mask,
			    strlen(s->trace_mask));
		else
			pop3_session_trace(s, 'C', line, (size_t)n);
	}
	line[n++] = '\r';
	line[n++] = '\n';
	if (s->trace_mask != NULL) {
		/* a masked line carries a credential (PASS, AUTH PLAIN,
		   AUTH LOGIN's answers, APOP's digest): handed to libevent
		   by reference, wiped once written (evsecret.h) */
		if (evsecret_add(bufferevent_get_output(s->bev), line,
		    (size_t)n) < 0)
			log_warn("pop3 account=%s event=send-failed "
			    "command=%s", s->log_id, pop3_cmd_names[kind]);
	} else {
		bufferevent_write(s->bev, line, (size_t)n);
	}
	s->trace_mask = NULL;
	/* only what was written: the buffer is sized for OAuth tokens and
	   every RETR and DELE passes here */
	secure_zero(line, (size_t)n);
	slot = (s->q_head + s->q_len) % N_ELEMENTS(s->queue);
	s->queue[slot].kind = kind;
	s->queue[slot].msg = msg;
	if (s->q_len++ == 0) {
		s->rmode = RMODE_STATUS;
		pop3_session_arm(s, TMO_COMMAND);
	}
}

struct cmd *
pop3_session_front(struct pop3_session *s)
{
	return s->q_len == 0 ? NULL : &s->queue[s->q_head];
}

void
pop3_session_pop(struct pop3_session *s)
{
	s->q_head = (s->q_head + 1) % N_ELEMENTS(s->queue);
	s->q_len--;
	s->rmode = RMODE_STATUS;
	if (s->q_len > 0)
		pop3_session_arm(s, TMO_COMMAND);
	else
		evtimer_del(s->timer);
}

/* ---- deadlines ---------------------------------------------------------- */

/* A hostile server can keep every per-step timer happy by sending a byte
 * now and then, or endless data that never ends a message or a listing:
 * a RETR must end by its deadline (the command timeout plus its announced
 * size at the minimum rate), and the whole poll by the poll deadline.
 * Either ends the poll with a clear error; what was committed is kept,
 * nothing else is deleted (no QUIT follows a failure). */

static unsigned int
retr_min_rate(const struct pop3_session *s)
{
	return s->acct->timeouts.retr_min_rate != 0 ?
	    s->acct->timeouts.retr_min_rate : POP3_CLIENT_RETR_MIN_RATE;
}

static void
retr_deadline_arm(struct pop3_session *s, const struct msg *m)
{
	uint64_t ms = s->acct->timeouts.command_ms != 0 ?
	    s->acct->timeouts.command_ms : POP3_CLIENT_COMMAND_MS;
	struct timeval tv;

	ms += m->list_size * 1000 / retr_min_rate(s);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	gettimeofday(&s->retr_start, NULL);
	evtimer_add(s->retr_timer, &tv);
}

static void
on_retr_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;
	const struct cmd *c;
	const struct msg *m;
	struct timeval now;

	(void)fd;
	(void)what;
	if (s->finishing || s->q_len == 0)
		return;
	c = pop3_session_front(s);
	if (c->kind != CMD_RETR || s->rmode != RMODE_DATA)
		return;
	m = &s->msgs[c->msg];
	gettimeofday(&now, NULL);
	pop3_session_fail(s, POP3_OUTCOME_PROTOCOL, "RETR %u deadline: "
	    "%llu octets announced, still sending after %lld s (at least "
	    "%u octets/s expected); message not stored, no DELE", m->msgno,
	    (unsigned long long)m->list_size,
	    (long long)(now.tv_sec - s->retr_start.tv_sec),
	    retr_min_rate(s));
}

static void
on_poll_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;
	unsigned int ms = s->acct->timeouts.poll_ms != 0 ?
	    s->acct->timeouts.poll_ms : POP3_CLIENT_POLL_MS;

	(void)fd;
	(void)what;
	if (s->finishing)
		return;
	pop3_session_fail(s, POP3_OUTCOME_PROTOCOL, "poll deadline: not "
	    "finished after %u s (%u messages stored); nothing else deleted",
	    ms / 1000, s->result.fetched);
}

/* ---- TLS --------------------------------------------------------------- */

static void
after_auth(struct pop3_session *s)
{
	log_info("pop3 account=%s event=logged-in auth=%s tls=%s", s->log_id,
	    upstream_auth_name(s->auth_used), s->tls_active ? "yes" : "no");
	if (s->env.login_only) {
		/* the credentials are good: that was all */
		pop3_session_send(s, CMD_QUIT, 0, "QUIT");
		return;
	}
	/* RFC 2449: capabilities may change after login (UIDL, TOP) */
	memset(&s->capa, 0, sizeof(s->capa));
	pop3_session_send(s, CMD_CAPA, 1, "CAPA");
}

static void
after_capa(struct pop3_session *s, uint32_t round)
{
	const struct upstream_account *a = s->acct;

	if (round == 1) {
		/* RFC 2449 §6.8: LOGIN-DELAY after login is the minimum
		   time before the next login; the poller honours it */
		if (s->capa.login_delay_set)
			s->result.login_delay = s->capa.login_delay;
		/* after login: the listing */
		pop3_session_send(s, CMD_LIST, 0, "LIST");
		return;
	}
	if (a->tls == UPSTREAM_TLS_STLS && !s->tls_active) {
		if (s->capa.seen && !s->capa.stls) {
			pop3_session_fail(s, POP3_OUTCOME_TLS,
			    "server does not offer STLS and the account "
			    "requires TLS; no credentials were sent");
			return;
		}
		pop3_session_send(s, CMD_STLS, 0, "STLS");
		return;
	}
	pop3_login_start_auth(s);
}

static void
handle_status(struct pop3_session *s, const char *line, size_t len)
{
	struct cmd c = *pop3_session_front(s);
	struct pop3_status st;
	const char *err = NULL;
	const char *payload;
	size_t plen;
	char esc[LOG_PEER_TEXT_MAX + 1];

	pop3_session_trace(s, 'S', line, len);
	if (c.kind == CMD_AUTH && pop3_parse_continuation(line, len, &payload,
	    &plen)) {
		if (s->auth_used == UPSTREAM_AUTH_LOGIN && s->auth_step < 2)
			pop3_login_sasl_continue(s);
		else if (s->auth_used == UPSTREAM_AUTH_CRAM_MD5 &&
		    s->auth_step == 0)
			pop3_login_cram_md5_continue(s, payload, plen);
		else if (pop3_login_sasl_challenge(s, payload, plen))
			;
		else
			pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "unexpected SASL continuation");
		return;
	}
	if (pop3_parse_status(line, len, &st, &err) < 0) {
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "bad response to %s (%s): '%s'", pop3_cmd_names[c.kind],
		    err, log_escape(esc, sizeof(esc), line, len));
		return;
	}
	log_escape(esc, sizeof(esc), st.text, st.text_len);

	switch (c.kind) {
	case CMD_GREETING:
		pop3_session_pop(s);
		if (!st.ok) {
			if (st.code == POP3_RESP_IN_USE ||
			    st.code == POP3_RESP_SYS_TEMP)
				pop3_session_fail(s, POP3_OUTCOME_TEMP,
				    "server refused the connection: %s", esc);
			else
				pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
				    "server refused the connection: %s", esc);
			return;
		}
		s->have_apop_ts = pop3_parse_apop_timestamp(line, len,
		    s->apop_ts, sizeof(s->apop_ts));
		pop3_session_send(s, CMD_CAPA, 0, "CAPA");
		return;
	case CMD_CAPA:
		if (st.ok) {
			s->capa.seen = true;
			s->rmode = RMODE_LINES;
			return;
		}
		pop3_session_pop(s);
		after_capa(s, c.msg);
		return;
	case CMD_STLS:
		pop3_session_pop(s);
		if (!st.ok) {
			pop3_session_fail(s, POP3_OUTCOME_TLS,
			    "server refused STLS (%s); TLS is required, no "
			    "credentials were sent", esc);
			return;
		}
		s->stls_pending = true;
		pop3_login_start_tls(s);
		return;
	case CMD_USER:
		pop3_session_pop(s);
		if (!st.ok) {
			pop3_login_failed(s, &st);
			return;
		}
		if (strlen(s->acct->password) + 16 > POP3_CLIENT_CMD_MAX) {
			pop3_session_fail(s, POP3_OUTCOME_AUTH,
			    "password too long for PASS");
			return;
		}
		s->trace_mask = "PASS ****";
		pop3_session_send(s, CMD_PASS, 0, "PASS %s", s->acct->password);
		return;
	case CMD_PASS:
	case CMD_APOP:
	case CMD_AUTH:
		pop3_session_pop(s);
		if (!st.ok) {
			pop3_login_failed(s, &st);
			return;
		}
		if (c.kind == CMD_AUTH && !pop3_login_auth_ok(s))
			return;
		after_auth(s);
		return;
	case CMD_LIST:
		if (!st.ok) {
			pop3_session_pop(s);
			pop3_session_fail(s, st.code == POP3_RESP_SYS_TEMP ||
			    st.code == POP3_RESP_IN_USE ? POP3_OUTCOME_TEMP :
			    POP3_OUTCOME_PROTOCOL, "LIST failed: %s", esc);
			return;
		}
		s->rmode = RMODE_LINES;
		return;
	case CMD_UIDL:
		if (!st.ok) {
			pop3_session_pop(s);
			s->uidl_cmd_failed = true;
			pop3_fetch_uidl_done(s);
			return;
		}
		s->rmode = RMODE_LINES;
		return;
	case CMD_TOP:
	case CMD_RETR:
		if (!st.ok) {
			struct msg *m = &s->msgs[c.msg];

			pop3_session_pop(s);
			if (c.kind == CMD_TOP) {
				pop3_fetch_top_failed(s, m, esc);
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
			pop3_fetch_pump(s);
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
		pop3_session_arm(s, TMO_STALL);
		if (c.kind == CMD_RETR)
			retr_deadline_arm(s, &s->msgs[c.msg]);
		return;
	case CMD_DELE:
		pop3_session_pop(s);
		if (st.ok)
			s->msgs[c.msg].dele_ok = true;
		else
			log_warn("pop3 account=%s event=dele-failed msgno=%u "
			    "error=\"%s\"", s->log_id, s->msgs[c.msg].msgno,
			    esc);
		pop3_fetch_pump(s);
		return;
	case CMD_QUIT:
		pop3_session_pop(s);
		if (s->env.login_only) {
			/* logged in: QUIT's answer changes nothing */
			s->result.outcome = POP3_OUTCOME_OK;
			pop3_session_finish(s);
			return;
		}
		if (!st.ok) {
			/* RFC 1939: -ERR to QUIT means the deletions failed */
			pop3_session_fail(s, POP3_OUTCOME_TEMP,
			    "QUIT failed, deletions not applied: %s", esc);
			return;
		}
		pop3_fetch_quit_done(s);
		pop3_session_finish(s);
		return;
	}
}

static void
handle_multiline(struct pop3_session *s, const char *line, size_t len)
{
	struct cmd c = *pop3_session_front(s);

	if (pop3_multiline_unstuff(&line, &len)) {
		pop3_session_pop(s);
		switch (c.kind) {
		case CMD_CAPA:
			after_capa(s, c.msg);
			break;
		case CMD_LIST:
			pop3_fetch_list_done(s);
			break;
		case CMD_UIDL:
			pop3_fetch_uidl_done(s);
			break;
		default:
			break;
		}
		return;
	}
	switch (c.kind) {
	case CMD_CAPA:
		pop3_session_trace(s, 'S', line, len);
		pop3_parse_capa_line(&s->capa, line, len);
		break;
	case CMD_LIST:
		pop3_fetch_list_line(s, line, len);
		break;
	case CMD_UIDL:
		pop3_fetch_uidl_line(s, line, len);
		break;
	default:
		break;
	}
}

/* ---- reading ------------------------------------------------------- */

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
		pop3_session_arm(s, TMO_STALL);
	}
	if (done) {
		struct cmd c = *pop3_session_front(s);

		evtimer_del(s->retr_timer);
		pop3_session_pop(s);
		pop3_fetch_data_done(s, &c);
		pop3_fetch_pump(s);
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
			pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
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

			pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "response to %s: %s (over %d octets): '%s'",
			    pop3_cmd_names[pop3_session_front(s)->kind], err,
			    POP3_LINE_MAX, log_escape(esc, sizeof(esc), p, 60));
			return;
		}
		if (s->rmode == RMODE_LINES) {
			s->stall_progress += used;
			if (s->stall_progress >= POP3_CLIENT_STALL_BYTES) {
				s->stall_progress = 0;
				pop3_session_arm(s, TMO_STALL);
			}
			handle_multiline(s, (const char *)p, ll);
		} else {
			handle_status(s, (const char *)p, ll);
		}
		/* pop3_login_start_tls() drained the plain input and
		   swapped s->bev */
		if (s->finishing || s->phase != PHASE_PROTOCOL)
			return;
		evbuffer_drain(in, used);
	}
}

void
pop3_session_on_read(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;

	(void)bev;
	process_input(s);
}

void
pop3_session_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->phase == PHASE_CONNECT) {
			log_debug("pop3 account=%s event=connected",
			    s->log_id);
			pop3_fetch_note_peer(s);
			if (s->acct->tls == UPSTREAM_TLS_POP3S) {
				pop3_login_start_tls(s);
				return;
			}
			s->phase = PHASE_PROTOCOL;
			s->q_head = 0;
			s->q_len = 1;
			s->queue[0].kind = CMD_GREETING;
			s->rmode = RMODE_STATUS;
			pop3_session_arm(s, TMO_GREETING);
			process_input(s);
			return;
		}
		if (s->phase == PHASE_TLS) {
			pop3_login_tls_done(s);
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
		if (s->phase == PHASE_CONNECT && s->addr_next != NULL) {
			/* the next address of the name (IPv6, then IPv4 ...) */
			log_debug("pop3 account=%s event=connect-failed "
			    "error=\"%s\" action=\"next address\"", s->log_id,
			    evutil_socket_error_to_string(e));
			if (connect_next(s))
				return;
		}
		if (s->phase == PHASE_CONNECT) {
			int dns = bufferevent_socket_get_dns_error(s->bev);

			pop3_session_fail(s, POP3_OUTCOME_TEMP,
			    "connect to %s:%u failed: %s", s->acct->host,
			    (unsigned)s->acct->port, dns != 0 ?
			    evutil_gai_strerror(dns) :
			    evutil_socket_error_to_string(e));
		} else if (s->phase == PHASE_TLS) {
			pop3_login_tls_failed(s);
		} else if (s->q_len > 0) {
			struct cmd *c = pop3_session_front(s);

			pop3_session_fail(s, POP3_OUTCOME_TEMP,
			    "connection closed by the server during %s%s",
			    pop3_cmd_names[c->kind], c->kind == CMD_RETR ?
			    " (message not stored, no DELE)" : "");
		} else {
			pop3_session_fail(s, POP3_OUTCOME_TEMP,
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
	enum cmd_kind kind;

	(void)fd;
	(void)what;
	if (s->finishing)
		return;
	if (s->phase != PHASE_PROTOCOL) {
		pop3_session_fail(s, POP3_OUTCOME_TEMP, "timeout during %s",
		    phases[s->phase]);
		return;
	}
	if (s->q_len == 0) {
		pop3_session_fail(s, POP3_OUTCOME_TEMP, "timeout");
		return;
	}
	kind = pop3_session_front(s)->kind;
	pop3_session_fail(s, POP3_OUTCOME_TEMP, "timeout waiting for %s%s",
	    kind == CMD_GREETING ? "the greeting" : pop3_cmd_names[kind],
	    s->rmode == RMODE_STATUS ? " response" : " data (stalled)");
}

/* ---- start / abort ------------------------------------------------- */

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
	if (acct->tls != UPSTREAM_TLS_NONE &&
	    pop3_login_ssl_ctx(s, error_r) < 0) {
		session_free(s);
		return -1;
	}
	s->timer = evtimer_new(env->base, on_timer, s);
	s->poll_timer = evtimer_new(env->base, on_poll_deadline, s);
	s->retr_timer = evtimer_new(env->base, on_retr_deadline, s);
	s->finish_ev = event_new(env->base, -1, 0, on_finish, s);
	s->bev = bufferevent_socket_new(env->base, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->timer == NULL || s->finish_ev == NULL || s->bev == NULL ||
	    s->poll_timer == NULL || s->retr_timer == NULL) {
		*error_r = "cannot create events";
		session_free(s);
		return -1;
	}
	if (port == 0)
		port = acct->tls == UPSTREAM_TLS_POP3S ? 995 : 110;
	bufferevent_setcb(s->bev, pop3_session_on_read, NULL,
	    pop3_session_on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->phase = PHASE_CONNECT;
	pop3_session_arm(s, TMO_CONNECT);
	{
		unsigned int ms = acct->timeouts.poll_ms != 0 ?
		    acct->timeouts.poll_ms : POP3_CLIENT_POLL_MS;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

		evtimer_add(s->poll_timer, &tv);
	}
	log_debug("pop3 account=%s event=connecting host=%s port=%u tls=%s",
	    s->log_id, acct->host, (unsigned)port,
	    upstream_tls_name(acct->tls));
	*session_r = s;
	if (env->workq != NULL) {
		/* the system's resolver (NSS: /etc/hosts, DNS, whatever the
		   admin configured) may block: on a worker */
		resolve_start(s, port);
		return 0;
	}
	if (bufferevent_socket_connect_hostname(s->bev, env->dns, AF_UNSPEC,
	    acct->host, port) < 0) {
		/* reported through on_event when possible; otherwise here */
		if (!s->finishing)
			pop3_session_fail(s, POP3_OUTCOME_TEMP,
			    "cannot connect to %s:%u", acct->host,
			    (unsigned)port);
	}
	return 0;
}

/* ---- name resolution on a worker ---------------------------------------- */

struct resolve_job {
	struct workq_job wq;
	struct pop3_session *s;		/* NULL once the session is gone */
	char *host;
	char port[8];
	struct addrinfo *res;
	int gai_error;
};

static enum workq_run_result
resolve_run(struct workq_job *wq)
{
	struct resolve_job *j = (struct resolve_job *)wq;
	struct addrinfo hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	j->gai_error = getaddrinfo(j->host, j->port, &hints, &j->res);
	return WORKQ_DONE;
}

/* Connects to the next address the resolver gave; false when none is
 * left (the caller reports). */
static bool
connect_next(struct pop3_session *s)
{
	while (s->addr_next != NULL) {
		struct addrinfo *ai = s->addr_next;

		s->addr_next = ai->ai_next;
		if (bufferevent_socket_connect(s->bev, ai->ai_addr,
		    (int)ai->ai_addrlen) == 0)
			return true;
	}
	return false;
}

static void
resolve_done(struct workq_job *wq)
{
	struct resolve_job *j = (struct resolve_job *)wq;
	struct pop3_session *s = j->s;

	if (s == NULL || s->finishing) {
		if (j->res != NULL)
			freeaddrinfo(j->res);
		goto out;
	}
	s->resolve_job = NULL;
	if (wq->cancelled || j->gai_error != 0 || j->res == NULL) {
		pop3_session_fail(s, POP3_OUTCOME_TEMP, "cannot resolve %s: %s",
		    s->acct->host, wq->cancelled ? "shutting down" :
		    gai_strerror(j->gai_error));
		if (j->res != NULL)
			freeaddrinfo(j->res);
		goto out;
	}
	s->addrs = j->res;
	s->addr_next = j->res;
	if (!connect_next(s))
		pop3_session_fail(s, POP3_OUTCOME_TEMP, "cannot connect to "
		    "%s:%s", s->acct->host, j->port);
out:
	free(j->host);
	free(j);
}

static void
resolve_start(struct pop3_session *s, uint16_t port)
{
	struct resolve_job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	j->host = xstrdup(s->acct->host);
	snprintf(j->port, sizeof(j->port), "%u", (unsigned)port);
	j->wq.run = resolve_run;
	j->wq.done = resolve_done;
	j->wq.key = s->acct->user_id;
	s->resolve_job = j;
	workq_submit(s->env.workq, &j->wq);
}

/* The session goes before its resolution came back. */
static void
resolve_detach(struct pop3_session *s)
{
	if (s->resolve_job != NULL) {
		s->resolve_job->s = NULL;
		workq_cancel(s->env.workq, &s->resolve_job->wq);
		s->resolve_job = NULL;
	}
	if (s->addrs != NULL)
		freeaddrinfo(s->addrs);
	s->addrs = s->addr_next = NULL;
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

static void
on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)fd;
	(void)what;
	pop3_session_fail(s, POP3_OUTCOME_ABORTED, "stopped: no answer to "
	    "QUIT within %u ms (DELEs not applied; the next poll deletes)",
	    POP3_CLIENT_STOP_MS);
}

bool
pop3_session_stop(struct pop3_session **sp)
{
	struct pop3_session *s = *sp;
	struct timeval tv = { POP3_CLIENT_STOP_MS / 1000,
	    (POP3_CLIENT_STOP_MS % 1000) * 1000 };
	bool deles = false;

	if (s == NULL)
		return false;
	if (s->finishing || s->stopping)
		return true;	/* cb comes from the event loop */
	for (size_t i = 0; i < s->msg_count && !deles; i++)
		deles = s->msgs[i].dele_sent;
	if (!deles || s->phase != PHASE_PROTOCOL) {
		pop3_session_abort(sp);
		return false;
	}
	s->stop_timer = evtimer_new(s->env.base, on_stop_timer, s);
	if (s->stop_timer == NULL) {
		pop3_session_abort(sp);
		return false;
	}
	s->stopping = true;
	evtimer_add(s->stop_timer, &tv);
	log_info("pop3 account=%s event=stopping action=\"QUIT after the "
	    "DELEs in flight\"", s->log_id);
	pop3_fetch_pump(s);
	return true;
}
