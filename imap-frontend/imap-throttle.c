/* imap-throttle — the failed-login table; see the header. */
#include "imap-throttle.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "strbuf.h"
#include "xmalloc.h"

/* Key kinds: the first byte of a key. */
#define KIND_PAIR 'p'
#define KIND_ADDR 'a'
#define KIND_USER 'u'

struct entry {
	struct entry *hnext;		/* hash chain */
	TAILQ_ENTRY(entry) lru;		/* oldest failure first */
	uint64_t hash;
	time_t last;
	unsigned failures;
	size_t key_len;
	char key[];
};

TAILQ_HEAD(entry_list, entry);

struct imap_throttle {
	struct entry **buckets;
	size_t nbuckets;		/* a power of two */
	struct entry_list lru;
	size_t count, max;
	unsigned window;
};

struct imap_throttle *
imap_throttle_new(size_t max_entries, unsigned window_secs)
{
	struct imap_throttle *t = xcalloc(1, sizeof(*t));

	t->max = max_entries != 0 ? max_entries : IMAP_THROTTLE_ENTRIES;
	t->window = window_secs != 0 ? window_secs : IMAP_THROTTLE_WINDOW_SECS;
	t->nbuckets = 64;
	while (t->nbuckets < t->max / 2)
		t->nbuckets *= 2;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	TAILQ_INIT(&t->lru);
	return t;
}

void
imap_throttle_free(struct imap_throttle **tp)
{
	struct imap_throttle *t = *tp;
	struct entry *e;

	if (t == NULL)
		return;
	*tp = NULL;
	while ((e = TAILQ_FIRST(&t->lru)) != NULL) {
		TAILQ_REMOVE(&t->lru, e, lru);
		free(e);
	}
	free(t->buckets);
	free(t);
}

/* kind, then the lower-cased user (for PAIR and USER), NUL, the address
 * (for PAIR and ADDR). */
static void
make_key(struct strbuf *k, char kind, const char *user, const char *addr)
{
	strbuf_appendc(k, kind);
	if (kind != KIND_ADDR)
		for (const char *p = user; *p != '\0'; p++)
			strbuf_appendc(k, *p >= 'A' && *p <= 'Z' ?
			    (char)(*p - 'A' + 'a') : *p);
	strbuf_appendc(k, '\0');
	if (kind != KIND_USER)
		strbuf_appends(k, addr);
}

static uint64_t
key_hash(const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
	return h;
}

static void
entry_remove(struct imap_throttle *t, struct entry *e)
{
	struct entry **pp = &t->buckets[e->hash & (t->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	TAILQ_REMOVE(&t->lru, e, lru);
	t->count--;
	free(e);
}

/* Drops what expired (the LRU list is ordered by last failure). */
static void
expire(struct imap_throttle *t, time_t now)
{
	struct entry *e;

	while ((e = TAILQ_FIRST(&t->lru)) != NULL &&
	    now - e->last >= (time_t)t->window)
		entry_remove(t, e);
}

static struct entry *
lookup(struct imap_throttle *t, const struct strbuf *k, uint64_t h)
{
	struct entry *e;

	for (e = t->buckets[h & (t->nbuckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == h && e->key_len == k->len &&
		    memcmp(e->key, k->data, k->len) == 0)
			return e;
	return NULL;
}

static unsigned
get(struct imap_throttle *t, char kind, const char *user, const char *addr,
    time_t now)
{
	struct strbuf k = STRBUF_INIT;
	struct entry *e;
	unsigned n = 0;

	make_key(&k, kind, user, addr);
	e = lookup(t, &k, key_hash(k.data, k.len));
	if (e != NULL && now - e->last < (time_t)t->window)
		n = e->failures;
	strbuf_free(&k);
	return n;
}

static unsigned
bump(struct imap_throttle *t, char kind, const char *user, const char *addr,
    time_t now)
{
	struct strbuf k = STRBUF_INIT;
	uint64_t h;
	struct entry *e;

	make_key(&k, kind, user, addr);
	h = key_hash(k.data, k.len);
	e = lookup(t, &k, h);
	if (e != NULL) {
		TAILQ_REMOVE(&t->lru, e, lru);
	} else {
		if (t->count >= t->max)
			entry_remove(t, TAILQ_FIRST(&t->lru));
		e = xcalloc(1, sizeof(*e) + k.len);
		memcpy(e->key, k.data, k.len);
		e->key_len = k.len;
		e->hash = h;
		e->hnext = t->buckets[h & (t->nbuckets - 1)];
		t->buckets[h & (t->nbuckets - 1)] = e;
		t->count++;
	}
	e->failures++;
	e->last = now;
	TAILQ_INSERT_TAIL(&t->lru, e, lru);
	strbuf_free(&k);
	return e->failures;
}

/* STEP doubled `steps` times, capped. */
static unsigned
doubling(unsigned steps)
{
	if (steps >= 16)
		return IMAP_THROTTLE_DELAY_MAX_MS;
	uint64_t ms = (uint64_t)IMAP_THROTTLE_STEP_MS << steps;

	return ms > IMAP_THROTTLE_DELAY_MAX_MS ? IMAP_THROTTLE_DELAY_MAX_MS :
	    (unsigned)ms;
}

void
imap_throttle_counts(struct imap_throttle *t, const char *user,
    const char *addr, time_t now, struct imap_throttle_counts *c_r)
{
	expire(t, now);
	c_r->pair = get(t, KIND_PAIR, user, addr, now);
	c_r->addr = get(t, KIND_ADDR, user, addr, now);
	c_r->user = get(t, KIND_USER, user, addr, now);
}

unsigned
imap_throttle_delay(struct imap_throttle *t, const char *user,
    const char *addr, time_t now)
{
	struct imap_throttle_counts c;
	unsigned d = 0, x;

	imap_throttle_counts(t, user, addr, now, &c);
	if (c.pair > 0)
		d = doubling(c.pair - 1);
	if (c.addr > IMAP_THROTTLE_ADDR_FREE) {
		x = doubling((c.addr - IMAP_THROTTLE_ADDR_FREE - 1) / 2);
		if (x > d)
			d = x;
	}
	if (c.user > IMAP_THROTTLE_USER_FREE) {
		uint64_t u = (uint64_t)(c.user - IMAP_THROTTLE_USER_FREE) *
		    (IMAP_THROTTLE_STEP_MS / 2);

		x = u > IMAP_THROTTLE_USER_MAX_MS ? IMAP_THROTTLE_USER_MAX_MS :
		    (unsigned)u;
		if (x > d)
			d = x;
	}
	return d;
}

void
imap_throttle_failed(struct imap_throttle *t, const char *user,
    const char *addr, time_t now, struct imap_throttle_counts *c_r)
{
	expire(t, now);
	c_r->pair = bump(t, KIND_PAIR, user, addr, now);
	c_r->addr = bump(t, KIND_ADDR, user, addr, now);
	c_r->user = bump(t, KIND_USER, user, addr, now);
}

void
imap_throttle_succeeded(struct imap_throttle *t, const char *user,
    const char *addr)
{
	struct strbuf k = STRBUF_INIT;
	struct entry *e;

	make_key(&k, KIND_PAIR, user, addr);
	e = lookup(t, &k, key_hash(k.data, k.len));
	if (e != NULL)
		entry_remove(t, e);
	strbuf_free(&k);
}

size_t
imap_throttle_size(const struct imap_throttle *t)
{
	return t->count;
}
