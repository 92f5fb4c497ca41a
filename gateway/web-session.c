/* web-session — see web-session.h. */
#include "web-session.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "strnum.h"
#include "xmalloc.h"

/* The first line of web_sessions_dump's text. */
#define DUMP_VERSION "popgate-web-sessions 1"

struct web_sessions {
	struct web_session *head, *tail;	/* most recently used first */
	size_t count, max;
	unsigned idle_secs;
	web_session_hash_fn *hash;
};

struct web_sessions *
web_sessions_new(size_t max, unsigned idle_secs)
{
	struct web_sessions *ws = xcalloc(1, sizeof(*ws));

	ws->max = max > 0 ? max : 1;
	ws->idle_secs = idle_secs;
	return ws;
}

static void
unlink_session(struct web_sessions *ws, struct web_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		ws->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		ws->tail = s->prev;
	s->prev = s->next = NULL;
}

static void
push_front(struct web_sessions *ws, struct web_session *s)
{
	s->prev = NULL;
	s->next = ws->head;
	if (ws->head != NULL)
		ws->head->prev = s;
	ws->head = s;
	if (ws->tail == NULL)
		ws->tail = s;
}

void
web_sessions_close(struct web_sessions *ws, struct web_session *s)
{
	unlink_session(ws, s);
	ws->count--;
	/* the id is a credential: gone from memory with the session */
	memset(s->id, 0, sizeof(s->id));
	memset(s->csrf, 0, sizeof(s->csrf));
	free(s->user);
	free(s);
}

void
web_sessions_free(struct web_sessions **wsp)
{
	struct web_sessions *ws = *wsp;

	if (ws == NULL)
		return;
	while (ws->head != NULL)
		web_sessions_close(ws, ws->head);
	free(ws);
	*wsp = NULL;
}

void
web_sessions_set_limits(struct web_sessions *ws, size_t max,
    unsigned idle_secs)
{
	ws->max = max > 0 ? max : 1;
	ws->idle_secs = idle_secs;
	while (ws->count > ws->max)
		web_sessions_close(ws, ws->tail);
}

static void
to_hex(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

struct web_session *
web_sessions_open(struct web_sessions *ws, const char *user,
    const unsigned char *rnd, time_t now, bool *evicted_r)
{
	struct web_session *s;

	*evicted_r = false;
	while (ws->count >= ws->max) {
		web_sessions_close(ws, ws->tail);
		*evicted_r = true;
	}
	s = xcalloc(1, sizeof(*s));
	to_hex(s->id, rnd, WEB_SESSION_ID_BYTES);
	to_hex(s->csrf, rnd + WEB_SESSION_ID_BYTES, WEB_SESSION_ID_BYTES);
	s->user = xstrdup(user);
	s->created = s->last_used = now;
	push_front(ws, s);
	ws->count++;
	return s;
}

static bool
expired(const struct web_sessions *ws, const struct web_session *s,
    time_t now)
{
	return now - s->last_used >= (time_t)ws->idle_secs ||
	    now - s->created >= WEB_SESSION_MAX_AGE_SECS || now < s->created;
}

void
web_sessions_set_hash(struct web_sessions *ws, web_session_hash_fn *fn)
{
	ws->hash = fn;
}

struct web_session *
web_sessions_find(struct web_sessions *ws, const char *id, time_t now)
{
	struct web_session *found = NULL, *s, *next;
	char hashed[WEB_SESSION_HEX_SIZE];

	if (id == NULL || strlen(id) != WEB_SESSION_HEX_SIZE - 1)
		return NULL;
	if (ws->hash != NULL)
		ws->hash(id, hashed);
	else
		hashed[0] = '\0';	/* restored sessions need the hash */
	/* every live id is compared, so the time taken does not say how
	   far into the table a guess matched */
	for (s = ws->head; s != NULL; s = next) {
		next = s->next;
		if (expired(ws, s, now)) {
			web_sessions_close(ws, s);
			continue;
		}
		if ((!s->id_hashed || hashed[0] != '\0') &&
		    web_token_equal(s->id, s->id_hashed ? hashed : id))
			found = s;
	}
	if (found != NULL) {
		found->last_used = now;
		unlink_session(ws, found);
		push_front(ws, found);
	}
	return found;
}

char *
web_sessions_dump(struct web_sessions *ws, time_t now)
{
	struct strbuf b = STRBUF_INIT;
	char hashed[WEB_SESSION_HEX_SIZE];

	strbuf_appendf(&b, "%s\n", DUMP_VERSION);
	for (struct web_session *s = ws->head; ws->hash != NULL && s != NULL;
	    s = s->next) {
		if (expired(ws, s, now) || str_has_ctl(s->user))
			continue;
		if (s->id_hashed)
			memcpy(hashed, s->id, sizeof(hashed));
		else
			ws->hash(s->id, hashed);
		strbuf_appendf(&b, "%s %s %" PRId64 " %" PRId64 " %s\n", hashed,
		    s->csrf, (int64_t)s->created, (int64_t)s->last_used,
		    s->user);
	}
	return strbuf_detach(&b, NULL);
}

static bool
is_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') ||
		    (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	}
	return true;
}

/* The next space-separated field of p[0..*n) as a number; advances. */
static bool
take_number(const char **p, size_t *n, uint64_t *v)
{
	const char *sp = memchr(*p, ' ', *n);

	if (sp == NULL || str_to_u64(*p, (size_t)(sp - *p), v) < 0)
		return false;
	*n -= (size_t)(sp - *p) + 1;
	*p = sp + 1;
	return true;
}

/* One line of the dump (without its newline) into s; false when it does
   not parse. */
static bool
parse_line(const char *p, size_t n, struct web_session *s, char **user_r)
{
	const size_t hex = WEB_SESSION_HEX_SIZE - 1;
	uint64_t created, used;

	*user_r = NULL;
	if (n < 2 * (hex + 1) || !is_hex(p, hex) || p[hex] != ' ' ||
	    !is_hex(p + hex + 1, hex) || p[2 * hex + 1] != ' ')
		return false;
	memcpy(s->id, p, hex);
	s->id[hex] = '\0';
	memcpy(s->csrf, p + hex + 1, hex);
	s->csrf[hex] = '\0';
	p += 2 * (hex + 1);
	n -= 2 * (hex + 1);
	if (!take_number(&p, &n, &created) || !take_number(&p, &n, &used) ||
	    used < created || used > INT64_MAX || n == 0 ||
	    n > WEB_SESSION_USER_MAX)
		return false;
	*user_r = xstrndup(p, n);
	if (strlen(*user_r) != n || str_has_ctl(*user_r)) {
		free(*user_r);	/* a NUL or a control byte in the name */
		*user_r = NULL;
		return false;
	}
	s->created = (time_t)created;
	s->last_used = (time_t)used;
	return true;
}

/* Appends s as the least recently used session. */
static void
push_back(struct web_sessions *ws, struct web_session *s)
{
	s->next = NULL;
	s->prev = ws->tail;
	if (ws->tail != NULL)
		ws->tail->next = s;
	else
		ws->head = s;
	ws->tail = s;
}

size_t
web_sessions_load(struct web_sessions *ws, const char *text, size_t len,
    time_t now, size_t *skipped_r)
{
	const char *p = text, *end = text + len;
	size_t restored = 0, skipped = 0;
	bool first = true;

	while (ws->hash != NULL && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		struct web_session tmp, *s;
		char *user = NULL;

		if (first) {
			first = false;
			if (n != strlen(DUMP_VERSION) ||
			    memcmp(p, DUMP_VERSION, n) != 0) {
				skipped++;	/* another format: nothing */
				break;
			}
		} else if (n > 0) {
			memset(&tmp, 0, sizeof(tmp));
			if (!parse_line(p, n, &tmp, &user) ||
			    ws->count >= ws->max ||
			    expired(ws, &tmp, now)) {
				free(user);
				skipped++;
			} else {
				/* most recently used first: each goes last */
				s = xcalloc(1, sizeof(*s));
				*s = tmp;
				s->id_hashed = true;
				s->user = user;
				push_back(ws, s);
				ws->count++;
				restored++;
			}
			memset(&tmp, 0, sizeof(tmp));
		}
		p += n + 1;
	}
	if (skipped_r != NULL)
		*skipped_r = skipped;
	return restored;
}

size_t
web_sessions_count(const struct web_sessions *ws)
{
	return ws->count;
}

bool
web_token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = 0;

	if (la != lb)
		return false;
	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

bool
web_cookie_get(const char *header, const char *name, char *buf,
    size_t size)
{
	size_t nl = strlen(name);
	const char *p = header;

	while (p != NULL && *p != '\0') {
		const char *end;

		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 &&
		    p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t vl = (size_t)(end - v);

			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl + 1 > size)
				return false;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}
