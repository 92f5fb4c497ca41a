/* imap-sortcache — SORT's keys of a mailbox kept between commands. */
#include "imap-sortcache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "xmalloc.h"

struct sc_entry {
	uint32_t uid;
	uint32_t rank[IMAP_SORT_RANKS];
	int64_t sent;
};

struct imap_sortcache_gen {
	size_t refs;		/* atomic: the cache's and its users' */
	uint32_t user_id, mailbox_id, uidvalidity;
	struct sc_entry *e;	/* by ascending UID */
	size_t n;
	/* each key's distinct values in strcmp's order: value r is rank r */
	const char **dist[IMAP_SORT_RANKS];
	size_t ndist[IMAP_SORT_RANKS];
	char *strings;		/* they point in here */
	size_t bytes;
};

struct sc_slot {
	struct imap_sortcache_gen *gen;	/* the cache's reference */
	uint64_t used;			/* LRU clock */
};

struct imap_sortcache {
	pthread_mutex_t mu;
	struct sc_slot slot[IMAP_SORTCACHE_ENTRIES_MAX];
	size_t count;
	size_t bytes, max_bytes;
	uint64_t clock, evicted;
};

struct imap_sortcache *
imap_sortcache_new(size_t max_bytes)
{
	struct imap_sortcache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->mu, NULL);
	c->max_bytes = max_bytes;
	return c;
}

static void
gen_free(struct imap_sortcache_gen *g)
{
	free(g->e);
	for (size_t k = 0; k < IMAP_SORT_RANKS; k++)
		free(g->dist[k]);
	free(g->strings);
	free(g);
}

static void
gen_release(struct imap_sortcache_gen *g)
{
	if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
		gen_free(g);
}

/* Under the mutex: drops slot i. */
static void
slot_drop(struct imap_sortcache *c, size_t i)
{
	c->bytes -= c->slot[i].gen->bytes;
	gen_release(c->slot[i].gen);
	c->slot[i] = c->slot[--c->count];
}

void
imap_sortcache_free(struct imap_sortcache **cp)
{
	struct imap_sortcache *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	while (c->count > 0)
		slot_drop(c, 0);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Under the mutex: the slot of a mailbox, or -1. */
static ssize_t
slot_find(const struct imap_sortcache *c, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uidvalidity)
{
	for (size_t i = 0; i < c->count; i++) {
		const struct imap_sortcache_gen *g = c->slot[i].gen;

		if (g->user_id == user_id && g->mailbox_id == mailbox_id &&
		    g->uidvalidity == uidvalidity)
			return (ssize_t)i;
	}
	return -1;
}

struct imap_sortcache_gen *
imap_sortcache_get(struct imap_sortcache *c, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uidvalidity, size_t view_count)
{
	struct imap_sortcache_gen *g = NULL;
	ssize_t i;

	pthread_mutex_lock(&c->mu);
	i = slot_find(c, user_id, mailbox_id, uidvalidity);
	if (i >= 0 && c->slot[i].gen->n > 2 * view_count + 1024) {
		slot_drop(c, (size_t)i);	/* mostly expunged mail */
	} else if (i >= 0) {
		g = c->slot[i].gen;
		__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
		c->slot[i].used = ++c->clock;
	}
	pthread_mutex_unlock(&c->mu);
	return g;
}

void
imap_sortcache_unref(struct imap_sortcache_gen **gp)
{
	if (*gp == NULL)
		return;
	gen_release(*gp);
	*gp = NULL;
}

bool
imap_sortcache_find(const struct imap_sortcache_gen *g, uint32_t uid,
    size_t *pos, int64_t *sent_r, uint32_t *rank_r)
{
	size_t p = *pos;

	if (p > 0 && p <= g->n && g->e[p - 1].uid >= uid)
		p = 0;	/* not ascending: from the start */
	while (p < g->n && g->e[p].uid < uid)
		p++;
	*pos = p;
	if (p == g->n || g->e[p].uid != uid)
		return false;
	*sent_r = g->e[p].sent;
	memcpy(rank_r, g->e[p].rank, sizeof(g->e[p].rank));
	return true;
}

/* ---- merging ---- */

/* A distinct new value in the sort: its first 8 bytes as an integer in
 * strcmp's order, and its index among the distinct values. */
struct val_slot {
	uint64_t key;
	size_t i;
};

static uint64_t
val_prefix(const char *s)
{
	uint64_t k = 0;

	for (size_t b = 0; b < 8 && s[b] != '\0'; b++)
		k |= (uint64_t)(unsigned char)s[b] << (56 - 8 * b);
	return k;
}

static int
val_cmp(const void *x, const void *y, void *arg)
{
	const char *const *uniq = arg;
	const struct val_slot *a = x, *b = y;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	/* the same 8 bytes: a NUL among them means the same string */
	if ((a->key & 0xff) == 0)
		return 0;
	return strcmp(uniq[a->i] + 8, uniq[b->i] + 8);
}

static uint64_t
val_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int
new_uid_cmp(const void *x, const void *y, void *arg)
{
	const struct imap_sortcache_msg *msgs = arg;
	uint32_t a = msgs[*(const size_t *)x].uid;
	uint32_t b = msgs[*(const size_t *)y].uid;

	return a < b ? -1 : a > b;
}

/*
 * Key k of the new generation: old's distinct values and the new
 * messages' merged in order into g->dist[k] (pointing into old or msgs
 * for now); remap[r] is old rank r's new rank, nrank[i] new message i's.
 * The new values are made distinct first (a hash table), so a key most
 * messages share (To:, a list's sender) is sorted once, not n times.
 * Returns the bytes of the values (NULs included).
 */
static size_t
merge_key(struct imap_sortcache_gen *g, const struct imap_sortcache_gen *old,
    const struct imap_sortcache_msg *msgs, size_t n, size_t k,
    uint32_t *remap, uint32_t *nrank)
{
	size_t on = old != NULL ? old->ndist[k] : 0;
	size_t cap = 16, nu = 0, a = 0, b = 0, out = 0, bytes = 0;
	const char **uniq = xreallocarray(NULL, n + 1, sizeof(*uniq));
	struct val_slot *v;
	uint32_t *urank;
	size_t *table;
	const char **dist;

	while (cap < 2 * n)
		cap *= 2;
	table = xreallocarray(NULL, cap, sizeof(*table));
	memset(table, 0xff, cap * sizeof(*table));	/* SIZE_MAX: free */
	for (size_t i = 0; i < n; i++) {
		const char *s = msgs[i].key[k];
		size_t h = (size_t)val_hash(s) & (cap - 1);

		while (table[h] != SIZE_MAX && strcmp(uniq[table[h]], s) != 0)
			h = (h + 1) & (cap - 1);
		if (table[h] == SIZE_MAX) {
			table[h] = nu;
			uniq[nu++] = s;
		}
		nrank[i] = (uint32_t)table[h];	/* its distinct value, for now */
	}
	free(table);
	v = xreallocarray(NULL, nu + 1, sizeof(*v));
	for (size_t u = 0; u < nu; u++) {
		v[u].key = val_prefix(uniq[u]);
		v[u].i = u;
	}
	qsort_r(v, nu, sizeof(*v), val_cmp, uniq);
	urank = xreallocarray(NULL, nu + 1, sizeof(*urank));
	dist = xreallocarray(NULL, on + nu + 1, sizeof(*dist));
	while (a < on || b < nu) {
		const char *s = NULL;
		int d;

		if (a == on)
			d = 1;
		else if (b == nu)
			d = -1;
		else
			d = strcmp(old->dist[k][a], uniq[v[b].i]);
		if (d <= 0) {
			s = old->dist[k][a];
			remap[a++] = (uint32_t)out;
		}
		if (d >= 0) {	/* equal: the same value, one rank */
			s = uniq[v[b].i];
			urank[v[b].i] = (uint32_t)out;
			b++;
		}
		dist[out++] = s;
		bytes += strlen(s) + 1;
	}
	for (size_t i = 0; i < n; i++)
		nrank[i] = urank[nrank[i]];
	free(urank);
	free(v);
	free(uniq);
	g->dist[k] = dist;
	g->ndist[k] = out;
	return bytes;
}

struct imap_sortcache_gen *
imap_sortcache_merge(const struct imap_sortcache_gen *old,
    const struct imap_sortcache_msg *msgs, size_t n, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uidvalidity)
{
	struct imap_sortcache_gen *g = xcalloc(1, sizeof(*g));
	size_t on = old != NULL ? old->n : 0;
	size_t *idx = xreallocarray(NULL, n + 1, sizeof(*idx));
	uint32_t *remap[IMAP_SORT_RANKS], *nrank[IMAP_SORT_RANKS];
	size_t bytes = 0, a = 0, b = 0;
	bool ascending = true;
	char *p;

	g->refs = 1;
	g->user_id = user_id;
	g->mailbox_id = mailbox_id;
	g->uidvalidity = uidvalidity;
	for (size_t k = 0; k < IMAP_SORT_RANKS; k++) {
		remap[k] = xreallocarray(NULL,
		    (old != NULL ? old->ndist[k] : 0) + 1, sizeof(uint32_t));
		nrank[k] = xreallocarray(NULL, n + 1, sizeof(uint32_t));
		bytes += merge_key(g, old, msgs, n, k, remap[k], nrank[k]);
	}
	/* the values into the generation's own block */
	g->strings = p = xmalloc(bytes + 1);
	for (size_t k = 0; k < IMAP_SORT_RANKS; k++) {
		for (size_t r = 0; r < g->ndist[k]; r++) {
			size_t len = strlen(g->dist[k][r]) + 1;

			memcpy(p, g->dist[k][r], len);
			g->dist[k][r] = p;
			p += len;
		}
	}
	/* the messages, by UID: old's renumbered, the new ones merged in */
	for (size_t i = 0; i < n; i++) {
		idx[i] = i;
		if (i > 0 && msgs[i].uid < msgs[i - 1].uid)
			ascending = false;
	}
	/* a SORT's misses come in UID order already */
	if (!ascending)
		qsort_r(idx, n, sizeof(*idx), new_uid_cmp, (void *)msgs);
	g->e = xreallocarray(NULL, on + n + 1, sizeof(*g->e));
	while (a < on || b < n) {
		struct sc_entry *e = &g->e[g->n];

		if (b == n || (a < on && old->e[a].uid <= msgs[idx[b]].uid)) {
			if (b < n && old->e[a].uid == msgs[idx[b]].uid)
				b++;	/* held already: the same keys */
			e->uid = old->e[a].uid;
			e->sent = old->e[a].sent;
			for (size_t k = 0; k < IMAP_SORT_RANKS; k++)
				e->rank[k] = remap[k][old->e[a].rank[k]];
			a++;
		} else {
			const struct imap_sortcache_msg *m = &msgs[idx[b]];

			e->uid = m->uid;
			e->sent = m->sent;
			for (size_t k = 0; k < IMAP_SORT_RANKS; k++)
				e->rank[k] = nrank[k][idx[b]];
			b++;
			if (g->n > 0 && g->e[g->n - 1].uid == e->uid)
				continue;	/* the same UID twice in msgs */
		}
		g->n++;
	}
	g->bytes = sizeof(*g) + (on + n + 1) * sizeof(*g->e) + bytes + 1;
	for (size_t k = 0; k < IMAP_SORT_RANKS; k++) {
		g->bytes += (g->ndist[k] + 1) * sizeof(*g->dist[k]);
		free(remap[k]);
		free(nrank[k]);
	}
	free(idx);
	return g;
}

/* ---- publishing ---- */

/* Under the mutex: drops the least recently used slot other than the
 * one holding keep. */
static void
evict_lru(struct imap_sortcache *c, const struct imap_sortcache_gen *keep)
{
	size_t lru = SIZE_MAX;

	for (size_t s = 0; s < c->count; s++)
		if (c->slot[s].gen != keep && (lru == SIZE_MAX ||
		    c->slot[s].used < c->slot[lru].used))
			lru = s;
	if (lru == SIZE_MAX)
		return;
	slot_drop(c, lru);
	c->evicted++;
}

void
imap_sortcache_publish(struct imap_sortcache *c,
    const struct imap_sortcache_gen *base, struct imap_sortcache_gen *g)
{
	ssize_t i;

	if (g->bytes > c->max_bytes)
		return;		/* alone bigger than the cache */
	pthread_mutex_lock(&c->mu);
	i = slot_find(c, g->user_id, g->mailbox_id, g->uidvalidity);
	if (i >= 0 && c->slot[i].gen != base) {
		/* another SORT published meanwhile: keep the first */
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (i >= 0) {
		c->bytes -= c->slot[i].gen->bytes;
		gen_release(c->slot[i].gen);
	} else {
		if (c->count == IMAP_SORTCACHE_ENTRIES_MAX)
			evict_lru(c, NULL);
		i = (ssize_t)c->count++;
	}
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	c->slot[i].gen = g;
	c->slot[i].used = ++c->clock;
	c->bytes += g->bytes;
	/* room: the least recently used others go */
	while (c->bytes > c->max_bytes && c->count > 1)
		evict_lru(c, g);
	pthread_mutex_unlock(&c->mu);
}

size_t
imap_sortcache_gen_count(const struct imap_sortcache_gen *g)
{
	return g->n;
}

size_t
imap_sortcache_gen_bytes(const struct imap_sortcache_gen *g)
{
	return g->bytes;
}

void
imap_sortcache_stats(struct imap_sortcache *c, struct imap_sortcache_stats *st)
{
	pthread_mutex_lock(&c->mu);
	st->entries = c->count;
	st->bytes = c->bytes;
	st->evicted = c->evicted;
	pthread_mutex_unlock(&c->mu);
}
