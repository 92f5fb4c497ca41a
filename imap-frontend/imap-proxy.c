/*
 * imap-proxy — PROXY protocol listeners (issue 17): a connection from a
 * trusted proxy is held until its header has arrived (at most
 * IMAP_PROXY_HEADER_MAX bytes within IMAP_PROXY_HEADER_SECS), then its
 * session starts for the client the header carries, so that per-address
 * limits, the failed-login table and the logs see the client, not the
 * proxy. On every other listener a PROXY header is refused with a BYE.
 *
 * The header is read with MSG_PEEK first: only its own bytes are taken
 * from the socket, whatever the proxy sent after it (a TLS ClientHello, a
 * pipelined command) stays for the session.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap-proxy-parse.h"
#include "imap-session.h"
#include "log.h"
#include "xmalloc.h"

/* Trusted networks in [imap] proxy_trusted at most. */
#define IMAP_PROXY_NETS_MAX 64

struct imap_proxy_wait {
	TAILQ_ENTRY(imap_proxy_wait) link;
	struct imap_server *srv;
	int fd;
	struct event *ev;
	struct timeval deadline;	/* monotonic, from connect */
	struct sockaddr_storage peer;
	char peer_text[64];
	uint8_t buf[IMAP_PROXY_HEADER_MAX];
	size_t len;			/* header bytes taken so far */
};

int
imap_proxy_setup(struct imap_server *srv, const char *const *trusted,
    const char **error_r)
{
	size_t n = 0;

	while (trusted != NULL && trusted[n] != NULL)
		n++;
	if (n > IMAP_PROXY_NETS_MAX) {
		*error_r = "too many trusted proxy addresses (at most 64)";
		return -1;
	}
	srv->proxy_nets = n > 0 ? xcalloc(n, sizeof(*srv->proxy_nets)) : NULL;
	for (size_t i = 0; i < n; i++) {
		if (imap_proxy_net_parse(trusted[i], &srv->proxy_nets[i],
		    error_r) != 0)
			return -1;
		srv->proxy_net_count++;
	}
	return 0;
}

static bool
peer_trusted(const struct imap_server *srv, const struct sockaddr *sa)
{
	for (size_t i = 0; i < srv->proxy_net_count; i++)
		if (imap_proxy_net_match(&srv->proxy_nets[i], sa))
			return true;
	return false;
}

static void
wait_free(struct imap_proxy_wait *w, bool close_fd)
{
	TAILQ_REMOVE(&w->srv->proxy_waits, w, link);
	w->srv->proxy_wait_count--;
	if (w->ev != NULL)
		event_free(w->ev);
	if (close_fd)
		close(w->fd);
	free(w);
}

static void wait_cb(evutil_socket_t fd, short what, void *arg);

static void
wait_arm(struct imap_proxy_wait *w)
{
	struct timeval now, left;

	evutil_gettimeofday(&now, NULL);
	if (evutil_timercmp(&w->deadline, &now, <))
		evutil_timerclear(&left);
	else
		evutil_timersub(&w->deadline, &now, &left);
	event_add(w->ev, &left);
}

/* The header is in: the session starts for the client it names (or for
 * the proxy itself when it names none: a health check). */
static void
wait_done(struct imap_proxy_wait *w, const struct imap_proxy_header *h)
{
	struct imap_server *srv = w->srv;
	int fd = w->fd;
	struct sockaddr_storage peer = w->peer;
	const struct sockaddr *client = h->has_addr ?
	    (const struct sockaddr *)&h->src : (const struct sockaddr *)&peer;
	struct imap_session *s;
	char proxy[sizeof(w->peer_text)];

	memcpy(proxy, w->peer_text, sizeof(proxy));
	wait_free(w, false);
	s = imap_server_admit(srv, fd, client, (const struct sockaddr *)&peer,
	    false);
	if (s != NULL) {
		/* the client's bytes come after the header: not one again */
		s->proxy_checked = true;
		s->proxied = h->has_addr;
		log_info("imap session=%u event=proxied proxy=%s version=%d "
		    "client=%s", s->id, proxy, h->version,
		    h->has_addr ? s->addr : "-");
	}
}

static void
wait_refuse(struct imap_proxy_wait *w, const char *why)
{
	log_warn("imap event=proxy_refused proxy=%s reason=\"%s\"",
	    w->peer_text, why);
	w->srv->stats.sessions_refused++;
	wait_free(w, true);
}

static void
wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_proxy_wait *w = arg;
	struct imap_proxy_header h;
	const char *error = NULL;
	size_t consumed = 0;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		wait_refuse(w, "no PROXY header in time");
		return;
	}
	n = recv(fd, w->buf + w->len, sizeof(w->buf) - w->len, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR)) {
		wait_arm(w);
		return;
	}
	if (n <= 0) {
		wait_refuse(w, n == 0 ? "closed before the PROXY header" :
		    strerror(errno));
		return;
	}
	switch (imap_proxy_parse(w->buf, w->len + (size_t)n, &h, &consumed,
	    &error)) {
	case IMAP_PROXY_DONE: {
		/* take only the header's bytes (peeked: they are there) */
		size_t take = consumed - w->len;

		if (recv(fd, w->buf + w->len, take, 0) != (ssize_t)take) {
			wait_refuse(w, "short read of a peeked header");
			return;
		}
		wait_done(w, &h);
		return;
	}
	case IMAP_PROXY_MORE:
		/* every byte seen so far is the header's: take them, so that
		   the socket is not readable again for the same bytes */
		if (recv(fd, w->buf + w->len, (size_t)n, 0) != n) {
			wait_refuse(w, "short read of a peeked header");
			return;
		}
		w->len += (size_t)n;
		wait_arm(w);
		return;
	case IMAP_PROXY_ERROR:
		wait_refuse(w, error);
		return;
	}
}

void
imap_proxy_accept(struct imap_server *srv, int fd,
    const struct sockaddr *peer, int peerlen)
{
	struct imap_proxy_wait *w;
	char ip[48];
	int port = 0;

	imap_sockaddr_ip(peer, ip, sizeof(ip), &port);
	if (srv->shutting_down || !peer_trusted(srv, peer) ||
	    srv->proxy_wait_count >= IMAP_PROXY_PENDING_MAX) {
		log_warn("imap event=proxy_refused proxy=%s:%d reason=%s", ip,
		    port, srv->shutting_down ? "shutdown" :
		    srv->proxy_wait_count >= IMAP_PROXY_PENDING_MAX ?
		    "too_many_pending" : "not_trusted");
		srv->stats.sessions_refused++;
		close(fd);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->srv = srv;
	w->fd = fd;
	memcpy(&w->peer, peer, (size_t)peerlen < sizeof(w->peer) ?
	    (size_t)peerlen : sizeof(w->peer));
	snprintf(w->peer_text, sizeof(w->peer_text),
	    peer->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
	evutil_gettimeofday(&w->deadline, NULL);
	w->deadline.tv_sec += IMAP_PROXY_HEADER_SECS;
	w->ev = event_new(srv->base, fd, EV_READ, wait_cb, w);
	TAILQ_INSERT_TAIL(&srv->proxy_waits, w, link);
	srv->proxy_wait_count++;
	wait_arm(w);
}

void
imap_proxy_close_all(struct imap_server *srv)
{
	struct imap_proxy_wait *w;

	while ((w = TAILQ_FIRST(&srv->proxy_waits)) != NULL)
		wait_free(w, true);
}

void
imap_proxy_free(struct imap_server *srv)
{
	imap_proxy_close_all(srv);
	free(srv->proxy_nets);
	srv->proxy_nets = NULL;
	srv->proxy_net_count = 0;
}

bool
imap_proxy_refuse_header(struct imap_session *s)
{
	struct evbuffer *in;
	uint8_t head[12];
	size_t len;

	if (s->tls || s->z != NULL || s->state != IMAP_STATE_NOT_AUTH ||
	    s->io != IMAP_IO_COMMAND) {
		s->proxy_checked = true;
		return false;
	}
	in = bufferevent_get_input(s->bev);
	len = evbuffer_get_length(in);
	if (len > sizeof(head))
		len = sizeof(head);
	if (len == 0 || evbuffer_copyout(in, head, len) < 0)
		return false;	/* nothing to tell yet */
	if (!imap_proxy_looks_like(head, len)) {
		s->proxy_checked = true;
		return false;
	}
	/* "PROXY " or the whole v2 signature: a header, refused */
	if ((head[0] == 'P' && len >= 6) || len >= sizeof(head)) {
		s->proxy_checked = true;
		log_warn("imap session=%u event=proxy_refused addr=%s "
		    "reason=not_a_proxy_listener", s->id, s->addr);
		imap_session_printf(s, "* BYE PROXY protocol header not "
		    "accepted here\r\n");
		imap_session_close(s);
		return true;
	}
	return true;	/* a prefix of one: wait for more before parsing */
}
