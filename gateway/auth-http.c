/* auth-http — nginx's mail auth_http service and the placement of users
 * over the cluster's nodes (see auth-http.h). */
#include "auth-http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gateway/auth-http-proto.h"
#include "gateway/config.h"
#include "gateway/gateway.h"
#include "imap-frontend/imap-server.h"
#include "store/store.h"
#include "log.h"
#include "login-ticket.h"
#include "xmalloc.h"

/* The header a node adds when it asks a peer: answer for your own users
 * only (no asking further, so no loops). */
#define PEER_HEADER "Popgate-Peer"
/* The peer's answer on a failure: whether it holds the user. */
#define HOLDER_HEADER "Popgate-Holder"
/* The shared key, from nginx (auth_http_header) and from peers. */
#define KEY_HEADER "X-Auth-Key"

enum pending_wait {
	WAIT_DELAY,	/* the failed-login table's delay */
	WAIT_WORKER,	/* the password check on a worker */
	WAIT_PEER,	/* a peer's answer */
};

struct pending {
	TAILQ_ENTRY(pending) link;
	struct auth_http *ah;
	struct evhttp_request *req;	/* NULL once nginx went away */
	enum pending_wait wait;
	bool from_peer;		/* asked by a peer: do not ask further */
	char *user;
	char *pass;		/* wiped */
	char method[16];
	char ip[INET6_ADDRSTRLEN];	/* the client's, or "unknown" */
	char attempt[12];
	unsigned attempt_no;	/* Auth-Login-Attempt: 1, 2, ... */
	struct event *timer;
	/* peers: which is asked now, and whether one was unreachable */
	size_t peer_next;
	size_t peer_order[CONFIG_LISTEN_MAX];
	size_t peer_count;
	bool peer_down;
	bool peers_asked;	/* none held the user: the hash that hides it */
	struct evhttp_connection *peer_conn;
	/* the login ticket nginx logs in with (Auth-Pass), or "" */
	char ticket[LOGIN_TICKET_LEN_MAX];
};

struct cache_entry {
	struct cache_entry *next;
	time_t expires;
	size_t peer;
	char user[];
};

#define CACHE_BUCKETS 1024

/* A peer connection whose request is over, freed from the loop (never
 * inside its own callback). */
struct dead_conn {
	TAILQ_ENTRY(dead_conn) link;
	struct auth_http *ah;
	struct evhttp_connection *conn;
	struct event *ev;
};

/* A peer's auth_http, copied from the configuration at start-up (a
 * reload does not change the cluster: a request in flight keeps indexes
 * into this list). */
struct peer_addr {
	char host[INET6_ADDRSTRLEN + 256];
	char port[8];
};

struct auth_http {
	struct gateway *gw;
	struct peer_addr peers[CONFIG_LISTEN_MAX];
	size_t peer_count;
	uint32_t cache_ttl;
	struct evhttp *http;
	int port;
	bool stopped;
	TAILQ_HEAD(, pending) pending;
	TAILQ_HEAD(, dead_conn) dead;
	unsigned pending_count;
	struct cache_entry *cache[CACHE_BUCKETS];
	size_t cache_count;
	/* this node, as nginx is to reach it (an IP address) */
	char node_ip[INET6_ADDRSTRLEN];
	char node_port[8];
	/* [cluster] secret (NULL: none, loopback only) and its SHA-256 */
	char *secret;
	unsigned char secret_digest[32];
	/* secret_file's second line, accepted too (rotation) */
	bool have_also;
	unsigned char also_digest[32];
	struct login_tickets *tickets;
};

/* The auth_http state hangs off the gateway through this pointer (one
 * per daemon, created by auth_http_start). */
static struct auth_http *
ah_of(const struct gateway *gw)
{
	return gw->auth_http;
}

/* ---- the placement cache ---- */

static size_t
user_hash(const char *user)
{
	size_t h = 5381;

	for (; *user != '\0'; user++)
		h = h * 33 + (unsigned char)(*user | 0x20);
	return h % CACHE_BUCKETS;
}

static void
cache_clear(struct auth_http *ah)
{
	for (size_t i = 0; i < CACHE_BUCKETS; i++) {
		while (ah->cache[i] != NULL) {
			struct cache_entry *e = ah->cache[i];

			ah->cache[i] = e->next;
			free(e);
		}
	}
	ah->cache_count = 0;
}

static struct cache_entry **
cache_find(struct auth_http *ah, const char *user)
{
	struct cache_entry **pp = &ah->cache[user_hash(user)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if (strcasecmp((*pp)->user, user) == 0)
			return pp;
	return pp;
}

static bool
cache_get(struct auth_http *ah, const char *user, size_t *peer_r)
{
	struct cache_entry **pp = cache_find(ah, user);

	if (*pp == NULL)
		return false;
	if ((*pp)->expires <= time(NULL)) {
		struct cache_entry *e = *pp;

		*pp = e->next;
		free(e);
		ah->cache_count--;
		return false;
	}
	*peer_r = (*pp)->peer;
	return true;
}

static void
cache_put(struct auth_http *ah, const char *user, size_t peer)
{
	struct cache_entry **pp;
	struct cache_entry *e;
	uint32_t ttl = ah->cache_ttl;

	if (ttl == 0)
		return;
	pp = cache_find(ah, user);
	if (*pp == NULL) {
		if (ah->cache_count >= AUTH_HTTP_CACHE_MAX) {
			cache_clear(ah);
			pp = cache_find(ah, user);
		}
		e = xcalloc(1, sizeof(*e) + strlen(user) + 1);
		strcpy(e->user, user);
		*pp = e;
		ah->cache_count++;
	}
	(*pp)->peer = peer;
	(*pp)->expires = time(NULL) + ttl;
}

static void
cache_forget(struct auth_http *ah, const char *user)
{
	struct cache_entry **pp = cache_find(ah, user);

	if (*pp != NULL) {
		struct cache_entry *e = *pp;

		*pp = e->next;
		free(e);
		ah->cache_count--;
	}
}

/* ---- requests ---- */

static void
pending_free(struct pending *p)
{
	TAILQ_REMOVE(&p->ah->pending, p, link);
	p->ah->pending_count--;
	if (p->timer != NULL)
		event_free(p->timer);
	if (p->peer_conn != NULL)
		evhttp_connection_free(p->peer_conn);
	if (p->pass != NULL) {
		secure_zero(p->pass, strlen(p->pass));
		free(p->pass);
	}
	secure_zero(p->ticket, sizeof(p->ticket));
	free(p->user);
	free(p);
}

/* Sends the answer if nginx still waits. server/port set: OK, to that
 * node. holder (-1: not said): for a peer's question, whether this node
 * holds the user. */
static void
answer(struct pending *p, const char *status, const char *server,
    const char *port, unsigned wait_secs, int holder)
{
	struct evhttp_request *req = p->req;
	struct evkeyvalq *h;
	char w[16];

	if (req == NULL)
		return;
	p->req = NULL;
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Auth-Status", status);
	if (server != NULL) {
		evhttp_add_header(h, "Auth-Server", server);
		evhttp_add_header(h, "Auth-Port", port);
		/* nginx logs in on the node with this instead of the
		   password: one HMAC there, not a second argon2id */
		if (p->ticket[0] != '\0')
			evhttp_add_header(h, "Auth-Pass", p->ticket);
	}
	/* nginx keeps memory per attempt until the session ends: after
	   as many failures as an IMAP connection may have, no Auth-Wait,
	   so nginx closes the connection */
	if (strcmp(status, "OK") != 0 && p->attempt_no >=
	    p->ah->gw->config->login_failures_per_connection)
		wait_secs = 0;
	if (wait_secs > 0) {
		snprintf(w, sizeof(w), "%u", wait_secs);
		evhttp_add_header(h, "Auth-Wait", w);
	}
	if (holder >= 0)
		evhttp_add_header(h, HOLDER_HEADER, holder ? "yes" : "no");
	evhttp_connection_set_closecb(evhttp_request_get_connection(req), NULL,
	    NULL);
	evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

/* answer(), then p is done with. */
static void
reply(struct pending *p, const char *status, const char *server,
    const char *port, unsigned wait_secs, int holder)
{
	answer(p, status, server, port, wait_secs, holder);
	pending_free(p);
}

static void
log_result(const struct pending *p, const char *result, const char *node)
{
	char qu[LOG_QUOTE_MAX];

	log_info("auth_http event=login ip=%s user=%s result=%s node=%s%s",
	    p->ip, log_quote(qu, sizeof(qu), p->user), result,
	    node != NULL ? node : "-", p->from_peer ? " asked_by=peer" : "");
}

static void ask_next_peer(struct pending *p);
static void checked(void *arg, int result, bool exists);

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dead_conn *d = arg;

	(void)fd;
	(void)what;
	TAILQ_REMOVE(&d->ah->dead, d, link);
	evhttp_connection_free(d->conn);
	event_free(d->ev);
	free(d);
}

static void
conn_free_later(struct auth_http *ah, struct evhttp_connection *conn)
{
	struct dead_conn *d = xcalloc(1, sizeof(*d));
	struct timeval now = { 0, 0 };

	d->ah = ah;
	d->conn = conn;
	d->ev = evtimer_new(ah->gw->base, conn_free_cb, d);
	TAILQ_INSERT_TAIL(&ah->dead, d, link);
	evtimer_add(d->ev, &now);
}

static void
peer_done(struct evhttp_request *req, void *arg)
{
	struct pending *p = arg;
	struct auth_http *ah = p->ah;
	size_t peer = p->peer_order[p->peer_next - 1];
	const struct peer_addr *l = &ah->peers[peer];
	struct evkeyvalq *h;
	const char *status, *holder, *server, *port, *wait;
	char node[96];

	/* not freed inside its own callback: once this returns */
	conn_free_later(ah, p->peer_conn);
	p->peer_conn = NULL;
	snprintf(node, sizeof(node), "%s:%s", l->host, l->port);
	if (req == NULL || evhttp_request_get_response_code(req) != HTTP_OK) {
		log_warn("auth_http event=peer_unreachable peer=%s code=%d",
		    node, req != NULL ? evhttp_request_get_response_code(req) :
		    0);
		p->peer_down = true;
		ask_next_peer(p);
		return;
	}
	h = evhttp_request_get_input_headers(req);
	status = evhttp_find_header(h, "Auth-Status");
	holder = evhttp_find_header(h, HOLDER_HEADER);
	server = evhttp_find_header(h, "Auth-Server");
	port = evhttp_find_header(h, "Auth-Port");
	wait = evhttp_find_header(h, "Auth-Wait");
	if (status != NULL && strcmp(status, "OK") == 0 && server != NULL &&
	    port != NULL) {
		const char *ticket = evhttp_find_header(h, "Auth-Pass");
		char s[INET6_ADDRSTRLEN], pt[8];

		/* the holder's ticket, passed on as it is (a ticket is
		   [0-9a-z.]: nothing nginx would read otherwise) */
		if (ticket != NULL && strlen(ticket) < sizeof(p->ticket) &&
		    strspn(ticket, "0123456789abcdefghijklmnopqrstuvwxyz.") ==
		    strlen(ticket))
			snprintf(p->ticket, sizeof(p->ticket), "%s", ticket);

		cache_put(ah, p->user, peer);
		snprintf(s, sizeof(s), "%s", server);
		snprintf(pt, sizeof(pt), "%s", port);
		log_result(p, "ok", node);
		reply(p, "OK", s, pt, 0, -1);
		return;
	}
	if (status != NULL && holder != NULL && strcmp(holder, "yes") == 0) {
		unsigned w = wait != NULL ? (unsigned)atoi(wait) : 0;

		cache_put(ah, p->user, peer);
		log_result(p, "failed", node);
		reply(p, "Invalid login or password", NULL, NULL,
		    w > 0 && w < 3600 ? w : AUTH_HTTP_FAIL_WAIT_SECS, -1);
		return;
	}
	if (status != NULL && holder != NULL && strcmp(holder, "no") == 0) {
		cache_forget(ah, p->user);
		ask_next_peer(p);
		return;
	}
	log_warn("auth_http event=peer_bad_answer peer=%s", node);
	p->peer_down = true;
	ask_next_peer(p);
}

static void
ask_next_peer(struct pending *p)
{
	struct auth_http *ah = p->ah;
	const struct peer_addr *l;
	struct evhttp_request *req;
	struct evkeyvalq *h;

	if (ah->stopped) {
		reply(p, "Temporary server problem, try again later", NULL,
		    NULL, 1, -1);
		return;
	}
	if (p->peer_next >= p->peer_count) {
		if (p->peer_down) {
			/* the one that holds the user may be down */
			log_result(p, "tempfail", NULL);
			reply(p, "Temporary server problem, try again later",
			    NULL, NULL, 1, -1);
			return;
		}
		/* nobody holds the user: one hash all the same (of the
		   node's dummy), so that a name no node holds takes as
		   long as a wrong password; checked() answers */
		p->peers_asked = true;
		p->wait = WAIT_WORKER;
		if (ah->gw->imap == NULL) {
			checked(p, -1, false);
			return;
		}
		imap_server_check_password(ah->gw->imap, p->user, p->pass,
		    p->ip, checked, p);
		return;
	}
	l = &ah->peers[p->peer_order[p->peer_next++]];
	p->wait = WAIT_PEER;
	p->peer_conn = evhttp_connection_base_new(ah->gw->base, NULL, l->host,
	    (ev_uint16_t)atoi(l->port));
	if (p->peer_conn == NULL) {
		p->peer_down = true;
		ask_next_peer(p);
		return;
	}
	evhttp_connection_set_timeout(p->peer_conn,
	    AUTH_HTTP_PEER_TIMEOUT_SECS);
	evhttp_connection_set_retries(p->peer_conn, 0);
	req = evhttp_request_new(peer_done, p);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", l->host);
	evhttp_add_header(h, "Auth-Method", p->method);
	/* escaped as nginx does (%XX), unescaped by the peer */
	{
		char *u = evhttp_uriencode(p->user, -1, 0);
		char *w = evhttp_uriencode(p->pass, -1, 0);

		evhttp_add_header(h, "Auth-User", u);
		evhttp_add_header(h, "Auth-Pass", w);
		if (ah->secret != NULL)
			evhttp_add_header(h, KEY_HEADER, ah->secret);
		free(u);
		secure_zero(w, strlen(w));
		free(w);
	}
	evhttp_add_header(h, "Auth-Protocol", "imap");
	evhttp_add_header(h, "Auth-Login-Attempt", p->attempt);
	evhttp_add_header(h, "Client-IP", p->ip);
	evhttp_add_header(h, PEER_HEADER, "1");
	if (evhttp_make_request(p->peer_conn, req, EVHTTP_REQ_GET, "/") != 0) {
		/* the request is freed by libevent on failure */
		conn_free_later(ah, p->peer_conn);
		p->peer_conn = NULL;
		p->peer_down = true;
		ask_next_peer(p);
	}
}

static void
ask_peers(struct pending *p)
{
	struct auth_http *ah = p->ah;
	size_t n = ah->peer_count, cached = 0, k = 0;
	bool have = cache_get(ah, p->user, &cached) && cached < n;

	if (have)
		p->peer_order[k++] = cached;
	for (size_t i = 0; i < n; i++)
		if (!have || i != cached)
			p->peer_order[k++] = i;
	p->peer_count = k;
	p->peer_next = 0;
	ask_next_peer(p);
}

static void
checked(void *arg, int result, bool exists)
{
	struct pending *p = arg;
	struct auth_http *ah = p->ah;
	struct imap_server *srv = ah->gw->imap;
	unsigned failures = 0;

	if (result < 0 || srv == NULL) {
		log_result(p, "tempfail", NULL);
		reply(p, "Temporary server problem, try again later", NULL,
		    NULL, 1, p->from_peer ? 1 : -1);
		return;
	}
	if (result == 1) {
		char node[96];

		imap_server_throttle_result(srv, p->user, p->ip, true,
		    &failures);
		/* bound to the client's address: none for "unknown" (nginx
		   then logs in with the password, checked again there) */
		if (strcmp(p->ip, "unknown") == 0 ||
		    imap_server_ticket_issue(srv, p->user, p->ip,
		    p->ticket) != 0)
			p->ticket[0] = '\0';
		snprintf(node, sizeof(node), "%s:%s", ah->node_ip,
		    ah->node_port);
		log_result(p, "ok", node);
		reply(p, "OK", ah->node_ip, ah->node_port, 0,
		    p->from_peer ? 1 : -1);
		return;
	}
	if (exists) {
		char qu[LOG_QUOTE_MAX];

		imap_server_throttle_result(srv, p->user, p->ip, false,
		    &failures);
		/* the address first, as in the IMAP line fail2ban reads */
		log_warn("auth_http event=login_failed ip=%s user=%s "
		    "reason=bad_credentials failures=%u", p->ip,
		    log_quote(qu, sizeof(qu), p->user), failures);
		reply(p, "Invalid login or password", NULL, NULL,
		    AUTH_HTTP_FAIL_WAIT_SECS, p->from_peer ? 1 : -1);
		return;
	}
	if (p->from_peer || ah->peer_count == 0 || p->peers_asked) {
		/* not ours; the node that asked goes on asking. Counted
		   as a failure where the question came from nginx. */
		if (!p->from_peer) {
			imap_server_throttle_result(srv, p->user, p->ip, false,
			    &failures);
			log_result(p, "unknown_user", NULL);
		}
		reply(p, "Invalid login or password", NULL, NULL,
		    AUTH_HTTP_FAIL_WAIT_SECS, p->from_peer ? 0 : -1);
		return;
	}
	ask_peers(p);
}

/* 1: this node holds user, 0: it does not, -1: store error. A short
 * read on the loop (docs/threads.md allows those). */
static int
holds_user(struct auth_http *ah, const char *user)
{
	struct store_read *r = NULL;
	const char *err = NULL;
	uint32_t id;
	int rc;

	if (store_read_begin(ah->gw->store, &r, &err) != 0)
		return -1;
	rc = store_user_lookup(r, user, &id, &err);
	store_read_end(&r);
	return rc == 0 ? 1 : rc == STORE_NOT_FOUND ? 0 : -1;
}

static void
delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	(void)fd;
	(void)what;
	if (p->ah->gw->imap == NULL || p->ah->stopped) {
		checked(p, -1, false);
		return;
	}
	/* a user this node does not hold: a peer that asks is told "not
	   mine", nginx's question goes to the peers, both without a hash
	   here (the holder hashes; when no node holds the user,
	   ask_next_peer hashes once, so that the name's absence takes as
	   long as a wrong password): one argon2id per login in all */
	if (holds_user(p->ah, p->user) == 0) {
		if (p->from_peer) {
			reply(p, "Invalid login or password", NULL, NULL, 0,
			    0);
			return;
		}
		if (p->ah->peer_count > 0) {
			ask_peers(p);
			return;
		}
	}
	p->wait = WAIT_WORKER;
	imap_server_check_password(p->ah->gw->imap, p->user, p->pass, p->ip,
	    checked, p);
}

/* nginx closed its connection before the answer: nothing to send. A
 * password check on a worker still calls back (and frees then); the
 * other waits end here. */
static void
client_gone(struct evhttp_connection *conn, void *arg)
{
	struct pending *p = arg;

	(void)conn;
	p->req = NULL;
	if (p->wait != WAIT_WORKER)
		pending_free(p);
}

static void
refuse(struct evhttp_request *req, const char *status, const char *why)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	log_warn("auth_http event=bad_request reason=\"%s\"", why);
	evhttp_add_header(h, "Auth-Status", status);
	evhttp_add_header(h, "Auth-Wait", "1");
	evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

/* The request's X-Auth-Key is the configured one (compared in constant
 * time, as digests: neither the key's length nor its bytes leak). */
static bool
key_ok(const struct auth_http *ah, const char *key)
{
	unsigned char d[32];
	unsigned int n = 0;
	int first, second;
	bool ok;

	if (key == NULL || EVP_Digest(key, strlen(key), d, &n, EVP_sha256(),
	    NULL) != 1 || n != sizeof(d))
		return false;
	/* both compared, whatever the first gives */
	first = CRYPTO_memcmp(d, ah->secret_digest, sizeof(d)) == 0;
	second = CRYPTO_memcmp(d, ah->also_digest, sizeof(d)) == 0;
	ok = (first | (second & (int)ah->have_also)) != 0;
	secure_zero(d, sizeof(d));
	return ok;
}

static void
drop_keys(struct auth_http *ah)
{
	if (ah->secret != NULL) {
		secure_zero(ah->secret, strlen(ah->secret));
		free(ah->secret);
		ah->secret = NULL;
	}
	secure_zero(ah->secret_digest, sizeof(ah->secret_digest));
	secure_zero(ah->also_digest, sizeof(ah->also_digest));
	ah->have_also = false;
}

/* The keys of c ([cluster] secret, secret_file): 0, or -1 with the
 * keys as they were (never none for want of a digest: that would open
 * the service). */
static int
set_keys(struct auth_http *ah, const struct config *c)
{
	unsigned char d[32], also[32];
	unsigned int n = 0;
	bool have_also = c->cluster_secret_also != NULL;

	if (c->cluster_secret == NULL) {
		drop_keys(ah);
		return 0;
	}
	if (EVP_Digest(c->cluster_secret, strlen(c->cluster_secret), d, &n,
	    EVP_sha256(), NULL) != 1 || (have_also &&
	    EVP_Digest(c->cluster_secret_also, strlen(c->cluster_secret_also),
	    also, &n, EVP_sha256(), NULL) != 1))
		return -1;
	drop_keys(ah);
	ah->secret = xstrdup(c->cluster_secret);
	memcpy(ah->secret_digest, d, sizeof(d));
	if (have_also)
		memcpy(ah->also_digest, also, sizeof(also));
	ah->have_also = have_also;
	secure_zero(d, sizeof(d));
	secure_zero(also, sizeof(also));
	return 0;
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct auth_http *ah = arg;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *method = evhttp_find_header(in, "Auth-Method");
	const char *user = evhttp_find_header(in, "Auth-User");
	const char *pass = evhttp_find_header(in, "Auth-Pass");
	const char *proto = evhttp_find_header(in, "Auth-Protocol");
	const char *ip = evhttp_find_header(in, "Client-IP");
	const char *attempt = evhttp_find_header(in, "Auth-Login-Attempt");
	const char *peer = evhttp_find_header(in, PEER_HEADER);
	struct pending *p;
	struct in6_addr a6;
	unsigned delay;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if (ah->secret != NULL && !key_ok(ah, evhttp_find_header(in,
	    KEY_HEADER))) {
		char *from = NULL;
		ev_uint16_t from_port = 0;

		/* nginx without auth_http_header (or with another key), or
		   someone else: 403 before anything is looked at (nginx
		   then tells its client "* BAD internal server error") */
		evhttp_connection_get_peer(evhttp_request_get_connection(req),
		    &from, &from_port);
		log_warn("auth_http event=refused peer=%s reason=%s",
		    from != NULL ? from : "-", evhttp_find_header(in,
		    KEY_HEADER) == NULL ? "no_key" : "wrong_key");
		evhttp_send_error(req, 403, "Forbidden");
		return;
	}
	if (ah->stopped || ah->gw->imap == NULL ||
	    ah->pending_count >= AUTH_HTTP_PENDING_MAX) {
		refuse(req, "Temporary server problem, try again later",
		    ah->stopped ? "shutting down" : "too many requests");
		return;
	}
	if (method == NULL || user == NULL || pass == NULL) {
		refuse(req, "Invalid login or password",
		    "Auth-Method, Auth-User or Auth-Pass missing");
		return;
	}
	if (strcasecmp(method, "plain") != 0 &&
	    strcasecmp(method, "login") != 0) {
		/* CRAM-MD5 and APOP need the clear password on the server:
		   popgate keeps only an argon2id hash */
		refuse(req, "Invalid login or password",
		    "Auth-Method not plain or login");
		return;
	}
	if (proto != NULL && strcasecmp(proto, "imap") != 0) {
		refuse(req, "Only IMAP is served here", "Auth-Protocol not imap");
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->ah = ah;
	p->user = auth_http_unescape(user, AUTH_HTTP_USER_MAX);
	p->pass = auth_http_unescape(pass, AUTH_HTTP_PASS_MAX);
	TAILQ_INSERT_TAIL(&ah->pending, p, link);
	ah->pending_count++;
	if (p->user == NULL || p->pass == NULL) {
		pending_free(p);
		refuse(req, "Invalid login or password",
		    "bad user name or password encoding, or too long");
		return;
	}
	p->req = req;
	p->from_peer = peer != NULL && strcmp(peer, "1") == 0;
	snprintf(p->method, sizeof(p->method), "%s", method);
	snprintf(p->attempt, sizeof(p->attempt), "%s",
	    attempt != NULL && strlen(attempt) < sizeof(p->attempt) ?
	    attempt : "1");
	p->attempt_no = (unsigned)strtoul(p->attempt, NULL, 10);
	/* Client-IP is an address, or the throttle keys on "unknown" */
	if (ip != NULL && strlen(ip) < sizeof(p->ip) &&
	    (inet_pton(AF_INET, ip, &a6) == 1 ||
	    inet_pton(AF_INET6, ip, &a6) == 1))
		snprintf(p->ip, sizeof(p->ip), "%s", ip);
	else
		snprintf(p->ip, sizeof(p->ip), "unknown");
	evhttp_connection_set_closecb(evhttp_request_get_connection(req),
	    client_gone, p);
	delay = imap_server_throttle_delay(ah->gw->imap, p->user, p->ip);
	p->wait = WAIT_DELAY;
	p->timer = evtimer_new(ah->gw->base, delay_done, p);
	{
		struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };

		evtimer_add(p->timer, &tv);
	}
}

int
auth_http_start(struct gateway *gw, char *errbuf, size_t errsize)
{
	const struct config *c = gw->config;
	const struct config_listen *l;
	struct auth_http *ah;
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct in6_addr a6;

	if (c->cluster_auth_listen_count == 0)
		return 0;
	if (gw->imap == NULL) {
		snprintf(errbuf, errsize, "[cluster] auth_http_listen needs an "
		    "IMAP listener ([imap] proxy_listen)");
		return -1;
	}
	if (inet_pton(AF_INET, c->cluster_node[0].host, &a6) != 1 &&
	    inet_pton(AF_INET6, c->cluster_node[0].host, &a6) != 1) {
		snprintf(errbuf, errsize, "[cluster] node_address: nginx "
		    "wants an IP address, not a name");
		return -1;
	}
	ah = xcalloc(1, sizeof(*ah));
	ah->gw = gw;
	TAILQ_INIT(&ah->pending);
	TAILQ_INIT(&ah->dead);
	snprintf(ah->node_ip, sizeof(ah->node_ip), "%s",
	    c->cluster_node[0].host);
	snprintf(ah->node_port, sizeof(ah->node_port), "%s",
	    c->cluster_node[0].port);
	for (size_t i = 0; i < c->cluster_peer_count; i++) {
		snprintf(ah->peers[i].host, sizeof(ah->peers[i].host), "%s",
		    c->cluster_peers[i].host);
		snprintf(ah->peers[i].port, sizeof(ah->peers[i].port), "%s",
		    c->cluster_peers[i].port);
	}
	ah->peer_count = c->cluster_peer_count;
	ah->cache_ttl = c->cluster_cache;
	gw->auth_http = ah;
	if (set_keys(ah, c) != 0) {
		snprintf(errbuf, errsize, "[cluster] secret: no SHA-256");
		return -1;
	}
	{
		char node[INET6_ADDRSTRLEN + 8];

		snprintf(node, sizeof(node), "%s:%s", ah->node_ip,
		    ah->node_port);
		ah->tickets = login_tickets_new(node, NULL,
		    c->cluster_ticket_lifetime);
		if (ah->tickets == NULL) {
			snprintf(errbuf, errsize, "[cluster]: no random key "
			    "for login tickets");
			return -1;
		}
		imap_server_set_tickets(gw->imap, ah->tickets);
	}
	ah->http = evhttp_new(gw->base);
	evhttp_set_allowed_methods(ah->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST);
	evhttp_set_max_headers_size(ah->http, AUTH_HTTP_HEADERS_MAX);
	evhttp_set_max_body_size(ah->http, 0);
	evhttp_set_timeout(ah->http, AUTH_HTTP_TIMEOUT_SECS);
	evhttp_set_gencb(ah->http, request_cb, ah);
	l = &c->cluster_auth_listen[0];
	bs = evhttp_bind_socket_with_handle(ah->http,
	    strcmp(l->host, "*") == 0 ? "0.0.0.0" : l->host,
	    (ev_uint16_t)atoi(l->port));
	if (bs == NULL) {
		snprintf(errbuf, errsize, "[cluster] auth_http_listen %s:%s: "
		    "cannot bind", l->host, l->port);
		return -1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&ss, &len) == 0)
		ah->port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	log_info("auth_http event=listening addr=%s port=%d node=%s:%s "
	    "peers=%zu key=%s ticket_lifetime=%u", l->host, ah->port,
	    ah->node_ip, ah->node_port, c->cluster_peer_count,
	    ah->secret != NULL ? "yes" : "no", c->cluster_ticket_lifetime);
	return 0;
}

int
auth_http_reload_keys(struct gateway *gw, const struct config *nc)
{
	struct auth_http *ah = ah_of(gw);

	if (ah == NULL)
		return 0;
	/* a listener off loopback keeps needing a key: the new
	   configuration was checked for that as it loaded */
	if (set_keys(ah, nc) != 0) {
		log_error("auth_http event=keys_reloaded result=failed "
		    "note=\"the keys before stay\"");
		return -1;
	}
	log_info("auth_http event=keys_reloaded keys=%d",
	    ah->secret == NULL ? 0 : ah->have_also ? 2 : 1);
	return 0;
}

int
auth_http_port(const struct gateway *gw)
{
	return ah_of(gw) != NULL ? ah_of(gw)->port : 0;
}

void
auth_http_shutdown(struct gateway *gw)
{
	struct auth_http *ah = ah_of(gw);
	struct pending *p, *next;

	if (ah == NULL || ah->stopped)
		return;
	ah->stopped = true;
	for (p = TAILQ_FIRST(&ah->pending); p != NULL; p = next) {
		next = TAILQ_NEXT(p, link);
		if (p->wait == WAIT_WORKER) {
			/* its check calls back (the pool finishes or
			   cancels it) and is freed then */
			answer(p, "Temporary server problem, try again later",
			    NULL, NULL, 1, -1);
			continue;
		}
		reply(p, "Temporary server problem, try again later", NULL,
		    NULL, 1, -1);
	}
	evhttp_free(ah->http);
	ah->http = NULL;
}

void
auth_http_free(struct gateway *gw)
{
	struct auth_http *ah = ah_of(gw);

	if (ah == NULL)
		return;
	auth_http_shutdown(gw);
	while (!TAILQ_EMPTY(&ah->pending))
		pending_free(TAILQ_FIRST(&ah->pending));
	while (!TAILQ_EMPTY(&ah->dead))
		conn_free_cb(-1, 0, TAILQ_FIRST(&ah->dead));
	if (ah->http != NULL)
		evhttp_free(ah->http);
	cache_clear(ah);
	if (gw->imap != NULL)
		imap_server_set_tickets(gw->imap, NULL);
	login_tickets_free(&ah->tickets);
	drop_keys(ah);
	free(ah);
	gw->auth_http = NULL;
}
