/* web-session — see web-session.h. */
#include "web-session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct web_sessions {
	struct web_session *head, *tail;	/* most recently used first */
	size_t count, max;
	unsigned idle_secs;
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

struct web_session *
web_sessions_find(struct web_sessions *ws, const char *id, time_t now)
{
	struct web_session *found = NULL, *s, *next;

	if (id == NULL || strlen(id) != WEB_SESSION_HEX_SIZE - 1)
		return NULL;
	/* every live id is compared, so the time taken does not say how
	   far into the table a guess matched */
	for (s = ws->head; s != NULL; s = next) {
		next = s->next;
		if (expired(ws, s, now)) {
			web_sessions_close(ws, s);
			continue;
		}
		if (web_token_equal(s->id, id))
			found = s;
	}
	if (found != NULL) {
		found->last_used = now;
		unlink_session(ws, found);
		push_front(ws, found);
	}
	return found;
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
