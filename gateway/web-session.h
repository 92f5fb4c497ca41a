/*
 * web-session — the web page's signed-in sessions, kept in the daemon's
 * memory (level 1: pure, no I/O; the caller passes the time and the
 * random bytes, from OpenSSL's RAND_bytes).
 *
 * A session has a random id (the cookie's value, WEB_SESSION_ID_BYTES
 * random bytes in hex) and a random CSRF token of its own (sent back in
 * a header with every state-changing request). It ends after idle_secs
 * without a request, after WEB_SESSION_MAX_AGE_SECS in any case, at
 * log-out, or when the table is full and a newer sign-in needs its
 * place (the least recently used goes). Ids are compared in constant
 * time. Owner: the event loop (no locking).
 */
#ifndef POPGATE_GATEWAY_WEB_SESSION_H
#define POPGATE_GATEWAY_WEB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Random bytes of a session id and of a CSRF token. */
#define WEB_SESSION_ID_BYTES 32
/* Their hex form, with the NUL. */
#define WEB_SESSION_HEX_SIZE (WEB_SESSION_ID_BYTES * 2 + 1)
/* A session ends this long after sign-in whatever its use: 12 hours. */
#define WEB_SESSION_MAX_AGE_SECS (12 * 3600)
/* Longest user name a session holds (as IMAP's LOGIN). */
#define WEB_SESSION_USER_MAX 255

struct web_session {
	/* the id, or (id_hashed) the SHA-256 of it: a session restored
	   from web_sessions_dump's text, which never holds an id itself */
	char id[WEB_SESSION_HEX_SIZE];
	bool id_hashed;
	char csrf[WEB_SESSION_HEX_SIZE];
	char *user;
	time_t created, last_used;
	struct web_session *prev, *next;	/* most recently used first */
};

struct web_sessions;

struct web_sessions *web_sessions_new(size_t max, unsigned idle_secs);
/* The one-way hash of ids that web_sessions_dump writes and restored
 * sessions are found by (web.c: SHA-256 in hex): id (hex, NUL-ended)
 * into out. Without one, nothing is dumped or restored. */
typedef void web_session_hash_fn(const char *id,
    char out[WEB_SESSION_HEX_SIZE]);
void web_sessions_set_hash(struct web_sessions *ws, web_session_hash_fn *fn);
void web_sessions_free(struct web_sessions **wsp);
/* New limits (reload); sessions over a smaller max end now. */
void web_sessions_set_limits(struct web_sessions *ws, size_t max,
    unsigned idle_secs);

/*
 * Opens a session for user; rnd holds 2 * WEB_SESSION_ID_BYTES random
 * bytes (the id, then the CSRF token). When the table is full the least
 * recently used session ends (*evicted_r set true). Never NULL.
 */
struct web_session *web_sessions_open(struct web_sessions *ws,
    const char *user, const unsigned char *rnd, time_t now,
    bool *evicted_r);
/* The live session with this id (hex), marked used now; NULL when there
 * is none or it has expired (it is then removed). */
struct web_session *web_sessions_find(struct web_sessions *ws,
    const char *id, time_t now);
void web_sessions_close(struct web_sessions *ws, struct web_session *s);
size_t web_sessions_count(const struct web_sessions *ws);

/*
 * The live sessions as text for a restart (most recently used first):
 * a version line, then per session the hash of its id (never the id:
 * the text cannot sign anyone in; none without a hash function), its CSRF token, its times and its
 * user. Sessions whose user name holds a control character are left
 * out. Caller frees (and should wipe: the CSRF tokens).
 */
char *web_sessions_dump(struct web_sessions *ws, time_t now);
/*
 * Restores sessions from web_sessions_dump's text (len bytes): expired
 * ones, lines that do not parse and those beyond the table's max are
 * skipped (*skipped_r counts them). Returns how many were restored.
 */
size_t web_sessions_load(struct web_sessions *ws, const char *text,
    size_t len, time_t now, size_t *skipped_r);

/* Equal strings, in time that depends on their lengths only. */
bool web_token_equal(const char *a, const char *b);

/*
 * The value of cookie name in a Cookie header ("a=1; b=2"), copied to
 * buf: true when present and it fits, else false.
 */
bool web_cookie_get(const char *header, const char *name, char *buf,
    size_t size);

#endif
