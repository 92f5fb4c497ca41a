/*
 * imap-session-trace — the protocol trace an admin switches on for a user
 * or a session (imap_server_trace_user / _session in imap-server.h).
 *
 * A traced session's bufferevent buffers get an evbuffer callback each:
 * bytes read from the client (after TLS) and bytes queued for it are fed
 * to the pure scanner (imap-trace.h), which masks passwords and literals,
 * and every line is logged with log_trace() — at info, whatever [log]
 * level says, since an admin asked for it. Nothing in the command path
 * changes; a session without a trace pays nothing.
 *
 * Owner: the event loop, like the sessions.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imap-session.h"
#include "imap-trace.h"
#include "log.h"
#include "xmalloc.h"

struct imap_session_trace {
	struct imap_session *s;
	struct imap_trace scan;
	struct evbuffer *in, *out;	/* the buffers the callbacks are on */
	struct evbuffer_cb_entry *in_cb, *out_cb;
};

/* The users whose sessions are traced (small: an admin's debugging). */
struct imap_trace_reg {
	char *users[IMAP_TRACE_USERS_MAX];
	size_t count;
};

static void
emit(void *arg, enum imap_trace_dir dir, const char *text, size_t len)
{
	struct imap_session_trace *tr = arg;
	char line[IMAP_TRACE_LINE_MAX + 64];
	char q[LOG_LINE_MAX / 2];

	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	memcpy(line, text, len);
	line[len] = '\0';
	log_trace("imap session=%u trace=%c line=%s", tr->s->id,
	    dir == IMAP_TRACE_CLIENT ? 'C' : 'S',
	    log_quote(q, sizeof(q), line));
	secure_zero(line, sizeof(line));
}

/* Feeds the bytes [from, from + n) of buf. */
static void
feed(struct imap_session_trace *tr, enum imap_trace_dir dir,
    struct evbuffer *buf, size_t from, size_t n)
{
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v[16];
	int got;

	if (evbuffer_ptr_set(buf, &pos, from, EVBUFFER_PTR_SET) < 0)
		return;
	while (n > 0) {
		size_t done = 0;

		got = evbuffer_peek(buf, (ev_ssize_t)n, &pos, v,
		    (int)N_ELEMENTS(v));
		if (got <= 0)
			return;
		for (int i = 0; i < got && i < (int)N_ELEMENTS(v) &&
		    done < n; i++) {
			size_t take = v[i].iov_len;

			if (take > n - done)
				take = n - done;
			imap_trace_feed(&tr->scan, dir, v[i].iov_base, take,
			    emit, tr);
			done += take;
		}
		if (done == 0)
			return;
		n -= done;
		if (n > 0 && evbuffer_ptr_set(buf, &pos, done,
		    EVBUFFER_PTR_ADD) < 0)
			return;
	}
}

static void
in_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	/* only what was added: reads from the client */
	if (info->n_added > 0)
		feed(arg, IMAP_TRACE_CLIENT, buf, info->orig_size,
		    info->n_added);
}

static void
out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	/* only what was added: what the server queues for the client */
	if (info->n_added > 0)
		feed(arg, IMAP_TRACE_SERVER, buf, info->orig_size,
		    info->n_added);
}

static void
unbind(struct imap_session_trace *tr)
{
	if (tr->in_cb != NULL)
		evbuffer_remove_cb_entry(tr->in, tr->in_cb);
	if (tr->out_cb != NULL)
		evbuffer_remove_cb_entry(tr->out, tr->out_cb);
	tr->in_cb = tr->out_cb = NULL;
	tr->in = tr->out = NULL;
}

static void
bind_bev(struct imap_session_trace *tr)
{
	struct bufferevent *bev = tr->s->bev;

	if (bev == NULL)
		return;
	tr->in = bufferevent_get_input(bev);
	tr->out = bufferevent_get_output(bev);
	tr->in_cb = evbuffer_add_cb(tr->in, in_cb, tr);
	tr->out_cb = evbuffer_add_cb(tr->out, out_cb, tr);
}

static void
trace_on(struct imap_session *s, const char *why)
{
	struct imap_session_trace *tr;
	char q[LOG_QUOTE_MAX];

	if (s->trace != NULL)
		return;
	tr = xcalloc(1, sizeof(*tr));
	tr->s = s;
	imap_trace_init(&tr->scan);
	s->trace = tr;
	bind_bev(tr);
	log_trace("imap session=%u event=trace-on by=%s user=%s", s->id, why,
	    log_quote(q, sizeof(q), s->user != NULL ? s->user : "-"));
}

static void
trace_off(struct imap_session *s)
{
	struct imap_session_trace *tr = s->trace;

	if (tr == NULL)
		return;
	/* the buffers are gone with a freed bufferevent (STARTTLS) */
	if (tr->in != NULL && s->bev != NULL &&
	    tr->in == bufferevent_get_input(s->bev))
		unbind(tr);
	imap_trace_clear(&tr->scan);
	free(tr);
	s->trace = NULL;
	log_trace("imap session=%u event=trace-off", s->id);
}

void
imap_trace_session_rebind(struct imap_session *s)
{
	struct imap_session_trace *tr = s->trace;

	if (tr == NULL)
		return;
	/* the old bufferevent, and its callbacks, were freed: the trace
	   starts again at a clean line on the TLS layer */
	tr->in_cb = tr->out_cb = NULL;
	tr->in = tr->out = NULL;
	imap_trace_clear(&tr->scan);
	imap_trace_init(&tr->scan);
	bind_bev(tr);
}

static bool
user_traced(struct imap_server *srv, const char *user)
{
	struct imap_trace_reg *reg = srv->trace;

	if (reg == NULL || user == NULL)
		return false;
	for (size_t i = 0; i < reg->count; i++) {
		if (strcmp(reg->users[i], user) == 0)
			return true;
	}
	return false;
}

void
imap_trace_session_login(struct imap_session *s)
{
	if (user_traced(s->server, s->user))
		trace_on(s, "user");
}

void
imap_trace_session_free(struct imap_session *s)
{
	if (s->trace != NULL) {
		/* the bufferevent goes with the session: no unbind needed */
		imap_trace_clear(&s->trace->scan);
		free(s->trace);
		s->trace = NULL;
	}
}

unsigned
imap_server_trace_user(struct imap_server *srv, const char *user, bool on)
{
	struct imap_trace_reg *reg;
	struct imap_session *s;
	unsigned n = 0;

	if (srv->trace == NULL)
		srv->trace = xcalloc(1, sizeof(*srv->trace));
	reg = srv->trace;
	if (on && !user_traced(srv, user)) {
		if (reg->count == IMAP_TRACE_USERS_MAX)
			return 0;
		reg->users[reg->count++] = xstrdup(user);
	} else if (!on) {
		for (size_t i = 0; i < reg->count; i++) {
			if (strcmp(reg->users[i], user) != 0)
				continue;
			free(reg->users[i]);
			reg->users[i] = reg->users[--reg->count];
			break;
		}
	}
	TAILQ_FOREACH(s, &srv->sessions, link) {
		if (s->user == NULL || strcmp(s->user, user) != 0)
			continue;
		if (on)
			trace_on(s, "user");
		else
			trace_off(s);
		n++;
	}
	return n;
}

bool
imap_server_trace_user_full(const struct imap_server *srv)
{
	return srv->trace != NULL && srv->trace->count == IMAP_TRACE_USERS_MAX;
}

int
imap_server_trace_session(struct imap_server *srv, unsigned id, bool on)
{
	struct imap_session *s;

	TAILQ_FOREACH(s, &srv->sessions, link) {
		if (s->id != id)
			continue;
		if (on)
			trace_on(s, "session");
		else
			trace_off(s);
		return 0;
	}
	return -1;
}

void
imap_server_trace_list(struct imap_server *srv,
    void (*user_cb)(void *arg, const char *user),
    void (*session_cb)(void *arg, unsigned id, const char *user), void *arg)
{
	struct imap_session *s;

	if (srv->trace != NULL) {
		for (size_t i = 0; i < srv->trace->count; i++)
			user_cb(arg, srv->trace->users[i]);
	}
	TAILQ_FOREACH(s, &srv->sessions, link) {
		if (s->trace != NULL)
			session_cb(arg, s->id, s->user);
	}
}

void
imap_trace_reg_free(struct imap_server *srv)
{
	if (srv->trace == NULL)
		return;
	for (size_t i = 0; i < srv->trace->count; i++)
		free(srv->trace->users[i]);
	free(srv->trace);
	srv->trace = NULL;
}
