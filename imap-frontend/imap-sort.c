/* imap-sort — SORT order, base subjects and THREAD (RFC 5256). */
#include "imap-sort.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-parse.h"
#include "store/mail-charset.h"
#include "strbuf.h"
#include "xmalloc.h"

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_keys[] = {
	{ "ARRIVAL", IMAP_SORT_ARRIVAL }, { "CC", IMAP_SORT_CC },
	{ "DATE", IMAP_SORT_DATE }, { "FROM", IMAP_SORT_FROM },
	{ "SIZE", IMAP_SORT_SIZE }, { "SUBJECT", IMAP_SORT_SUBJECT },
	{ "TO", IMAP_SORT_TO },
};

int
imap_sort_parse_criteria(const struct imap_arg *arg,
    struct imap_sort_criterion *crit_r, size_t *count_r, const char **error_r)
{
	const struct imap_arg *l;
	size_t n, c = 0;
	bool reverse = false;

	if (!imap_arg_get_list(arg, &l, &n) || n == 0) {
		*error_r = "SORT needs a list of sort criteria";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *w;
		size_t k;

		if (!imap_arg_get_atom(&l[i], &w)) {
			*error_r = "Bad sort criterion";
			return -1;
		}
		if (strcasecmp(w, "REVERSE") == 0 && !reverse) {
			reverse = true;
			continue;
		}
		for (k = 0; k < N_ELEMENTS(sort_keys); k++)
			if (strcasecmp(w, sort_keys[k].name) == 0)
				break;
		if (k == N_ELEMENTS(sort_keys) || c == IMAP_SORT_KEYS_MAX) {
			*error_r = "Unknown sort criterion";
			return -1;
		}
		crit_r[c].key = sort_keys[k].key;
		crit_r[c].reverse = reverse;
		c++;
		reverse = false;
	}
	if (reverse || c == 0) {
		*error_r = "REVERSE needs a sort criterion after it";
		return -1;
	}
	*count_r = c;
	return 0;
}

/* ---- SORT ---- */

static int
cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int
cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int
cmp_u32(uint32_t a, uint32_t b)
{
	return a < b ? -1 : a > b;
}

static int
cmp_key(const struct imap_sort_msg *a, const struct imap_sort_msg *b,
    enum imap_sort_key key, bool ranked)
{
	switch (key) {
	case IMAP_SORT_ARRIVAL:
		return cmp_i64(a->arrival, b->arrival);
	case IMAP_SORT_DATE:
		return cmp_i64(a->sent, b->sent);
	case IMAP_SORT_SIZE:
		return cmp_u64(a->size, b->size);
	case IMAP_SORT_SUBJECT:
		return ranked ? cmp_u32(a->rank[IMAP_SORT_RANK_SUBJECT],
		    b->rank[IMAP_SORT_RANK_SUBJECT]) :
		    strcmp(a->subject, b->subject);
	case IMAP_SORT_FROM:
		return ranked ? cmp_u32(a->rank[IMAP_SORT_RANK_FROM],
		    b->rank[IMAP_SORT_RANK_FROM]) : strcmp(a->from, b->from);
	case IMAP_SORT_TO:
		return ranked ? cmp_u32(a->rank[IMAP_SORT_RANK_TO],
		    b->rank[IMAP_SORT_RANK_TO]) : strcmp(a->to, b->to);
	case IMAP_SORT_CC:
		return ranked ? cmp_u32(a->rank[IMAP_SORT_RANK_CC],
		    b->rank[IMAP_SORT_RANK_CC]) : strcmp(a->cc, b->cc);
	}
	return 0;
}

struct sort_ctx {
	const struct imap_sort_criterion *crit;
	size_t ncrit;
	bool ranked;
};

static int
sort_cmp(const void *x, const void *y, void *arg)
{
	const struct sort_ctx *c = arg;
	const struct imap_sort_msg *a = x, *b = y;

	for (size_t i = 0; i < c->ncrit; i++) {
		int d = cmp_key(a, b, c->crit[i].key, c->ranked);

		if (d != 0)
			return c->crit[i].reverse ? -d : d;
	}
	/* RFC 5256 3: ties by sequence number, whatever REVERSE says */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* What a sort moves: the first criterion's key as an order-preserving
 * integer (a string's first 8 bytes, or its rank), and the message's
 * index. Most comparisons end on it without touching the message. */
struct sort_slot {
	uint64_t key;
	size_t i;
};

struct slot_ctx {
	struct sort_ctx c;
	const struct imap_sort_msg *msgs;
};

static uint64_t
prefix_key(const struct imap_sort_msg *m, const struct imap_sort_criterion *c,
    bool ranked)
{
	const char *s = NULL;
	uint64_t k = 0;
	int r = -1;

	switch (c->key) {
	case IMAP_SORT_ARRIVAL:
		k = (uint64_t)m->arrival ^ ((uint64_t)1 << 63);
		break;
	case IMAP_SORT_DATE:
		k = (uint64_t)m->sent ^ ((uint64_t)1 << 63);
		break;
	case IMAP_SORT_SIZE:
		k = m->size;
		break;
	case IMAP_SORT_SUBJECT:
		s = m->subject;
		r = IMAP_SORT_RANK_SUBJECT;
		break;
	case IMAP_SORT_FROM:
		s = m->from;
		r = IMAP_SORT_RANK_FROM;
		break;
	case IMAP_SORT_TO:
		s = m->to;
		r = IMAP_SORT_RANK_TO;
		break;
	case IMAP_SORT_CC:
		s = m->cc;
		r = IMAP_SORT_RANK_CC;
		break;
	}
	if (ranked && r >= 0) {
		k = m->rank[r];
		s = NULL;
	}
	/* strcmp's order: unsigned bytes, the end before any byte */
	for (size_t b = 0; s != NULL && b < 8; b++) {
		k |= (uint64_t)(unsigned char)s[b] << (56 - 8 * b);
		if (s[b] == '\0')
			break;
	}
	return c->reverse ? ~k : k;
}

static int
slot_cmp(const void *x, const void *y, void *arg)
{
	const struct slot_ctx *c = arg;
	const struct sort_slot *a = x, *b = y;

	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return sort_cmp(&c->msgs[a->i], &c->msgs[b->i], (void *)&c->c);
}

/* A stable LSD radix sort of v[0..n) by key, a byte at a time (bytes
 * every key shares are skipped); tmp has room for n. */
static void
radix_sort(struct sort_slot *v, struct sort_slot *tmp, size_t n)
{
	size_t count[256];
	uint64_t differ = 0;

	/* the bits where some key differs from the first */
	for (size_t i = 1; i < n; i++)
		differ |= v[i].key ^ v[0].key;
	for (unsigned shift = 0; shift < 64; shift += 8) {
		size_t sum = 0;

		if (((differ >> shift) & 0xff) == 0)
			continue;	/* every key has this byte */
		memset(count, 0, sizeof(count));
		for (size_t i = 0; i < n; i++)
			count[(v[i].key >> shift) & 0xff]++;
		for (size_t b = 0; b < 256; b++) {
			size_t c = count[b];

			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(v[i].key >> shift) & 0xff]++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
	}
}

/* msgs[0..n) (n >= 1) as slots in the sort order. */
static struct sort_slot *
sorted_slots(const struct imap_sort_msg *msgs, size_t n,
    const struct imap_sort_criterion *crit, size_t ncrit, bool ranked)
{
	struct slot_ctx c = { { crit, ncrit, ranked }, msgs };
	struct sort_slot *v = xreallocarray(NULL, n, sizeof(*v));
	bool exact, ascending = true;

	for (size_t i = 0; i < n; i++) {
		v[i].key = ncrit > 0 ? prefix_key(&msgs[i], &crit[0], ranked) :
		    0;
		v[i].i = i;
		if (i > 0 && msgs[i].seq <= msgs[i - 1].seq)
			ascending = false;
	}
	/* one criterion whose slot key is the whole key (a number or a
	   rank), messages in sequence order: a stable sort of the keys is
	   the answer, ties staying in sequence order */
	exact = ncrit == 1 && ascending && (ranked ||
	    crit[0].key == IMAP_SORT_ARRIVAL || crit[0].key == IMAP_SORT_DATE ||
	    crit[0].key == IMAP_SORT_SIZE);
	if (exact) {
		struct sort_slot *scratch = xreallocarray(NULL, n,
		    sizeof(*scratch));

		radix_sort(v, scratch, n);
		free(scratch);
	} else if (n > 1) {
		qsort_r(v, n, sizeof(*v), slot_cmp, &c);
	}
	return v;
}

void
imap_sort_msgs(struct imap_sort_msg *msgs, size_t n,
    const struct imap_sort_criterion *crit, size_t ncrit)
{
	struct sort_slot *v;
	struct imap_sort_msg tmp;

	if (n < 2)
		return;
	v = sorted_slots(msgs, n, crit, ncrit, false);
	/* msgs[i] = the old msgs[v[i].i], in place a cycle at a time */
	for (size_t i = 0; i < n; i++) {
		size_t at = i, from;

		if (v[i].i == SIZE_MAX)
			continue;	/* placed by an earlier cycle */
		tmp = msgs[i];
		while ((from = v[at].i) != i) {
			msgs[at] = msgs[from];
			v[at].i = SIZE_MAX;
			at = from;
		}
		msgs[at] = tmp;
		v[at].i = SIZE_MAX;
	}
	free(v);
}

void
imap_sort_order(const struct imap_sort_msg *msgs, size_t n,
    const struct imap_sort_criterion *crit, size_t ncrit, bool ranked,
    size_t *order_r)
{
	struct sort_slot *v;

	if (n == 0)
		return;
	v = sorted_slots(msgs, n, crit, ncrit, ranked);
	for (size_t i = 0; i < n; i++)
		order_r[i] = v[i].i;
	free(v);
}

/* ---- THREAD ---- */

static void
put_num(struct strbuf *out, const struct imap_sort_msg *m, bool uid)
{
	strbuf_append_u64(out, uid ? m->uid : m->seq);
}

/* Date order of messages: sent date, then sequence number. */
static int
date_cmp(const struct imap_sort_msg *a, const struct imap_sort_msg *b)
{
	int d = cmp_i64(a->sent, b->sent);

	return d != 0 ? d : (a->seq < b->seq ? -1 : a->seq > b->seq);
}

static int
subject_date_cmp(const void *x, const void *y)
{
	const struct imap_sort_msg *a = x, *b = y;
	int d = strcmp(a->subject, b->subject);

	return d != 0 ? d : date_cmp(a, b);
}

struct subj_thread {
	size_t first, n;
};

static int
thread_first_cmp(const void *x, const void *y, void *arg)
{
	const struct imap_sort_msg *msgs = arg;
	const struct subj_thread *a = x, *b = y;

	return date_cmp(&msgs[a->first], &msgs[b->first]);
}

void
imap_thread_orderedsubject(struct imap_sort_msg *msgs, size_t n, bool uid,
    struct arena *arena, struct strbuf *out)
{
	struct subj_thread *th;
	size_t nth = 0;

	if (n == 0)
		return;
	qsort(msgs, n, sizeof(*msgs), subject_date_cmp);
	th = arena_alloc(arena, n * sizeof(*th));
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(msgs[i].subject, msgs[i - 1].subject) != 0) {
			th[nth].first = i;
			th[nth].n = 0;
			nth++;
		}
		th[nth - 1].n++;
	}
	qsort_r(th, nth, sizeof(*th), thread_first_cmp, msgs);
	for (size_t t = 0; t < nth; t++) {
		const struct imap_sort_msg *m = &msgs[th[t].first];

		strbuf_appendc(out, '(');
		put_num(out, m, uid);
		if (th[t].n == 2) {
			strbuf_appendc(out, ' ');
			put_num(out, m + 1, uid);
		} else if (th[t].n > 2) {
			strbuf_appendc(out, ' ');
			for (size_t k = 1; k < th[t].n; k++) {
				strbuf_appendc(out, '(');
				put_num(out, m + k, uid);
				strbuf_appendc(out, ')');
			}
		}
		strbuf_appendc(out, ')');
	}
}

/* THREAD=REFERENCES: the containers of RFC 5256 4 (a JWZ-style tree). */
struct tnode {
	const char *id;			/* NULL: not in the id table */
	struct imap_sort_msg *m;	/* NULL: a dummy */
	struct tnode *parent, *child, *next;
};

/* A slot: the hash beside the node, so that a probe that misses reads
 * one cache line, not the node and its id. */
struct tslot {
	size_t hash;
	struct tnode *node;	/* NULL: free */
};

struct ttable {
	struct tslot *slot;
	size_t mask;
	struct arena *a;
};

static size_t
str_hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct tnode *
tnode_new(struct arena *a)
{
	struct tnode *t = arena_alloc(a, sizeof(*t));

	memset(t, 0, sizeof(*t));
	return t;
}

/* An empty table for n entries (at most half full). */
static void
ttable_init(struct ttable *t, size_t n, struct arena *a)
{
	size_t cap = 16;

	while (cap < n * 2)
		cap *= 2;
	t->slot = arena_alloc(a, cap * sizeof(*t->slot));
	memset(t->slot, 0, cap * sizeof(*t->slot));
	t->mask = cap - 1;
	t->a = a;
}

/* The container of id, created (as a dummy) when new. */
static struct tnode *
tget(struct ttable *t, const char *id)
{
	size_t h = str_hash(id), i = h & t->mask;

	for (; t->slot[i].node != NULL; i = (i + 1) & t->mask)
		if (t->slot[i].hash == h && strcmp(t->slot[i].node->id,
		    id) == 0)
			return t->slot[i].node;
	t->slot[i].node = tnode_new(t->a);
	t->slot[i].node->id = id;
	t->slot[i].hash = h;
	return t->slot[i].node;
}

static bool
is_ancestor(const struct tnode *anc, const struct tnode *n)
{
	for (; n != NULL; n = n->parent)
		if (n == anc)
			return true;
	return false;
}

static void
tunlink(struct tnode *n)
{
	struct tnode **pp;

	if (n->parent == NULL)
		return;
	for (pp = &n->parent->child; *pp != n; pp = &(*pp)->next)
		;
	*pp = n->next;
	n->next = NULL;
	n->parent = NULL;
}

static void
tlink(struct tnode *parent, struct tnode *n)
{
	struct tnode **pp = &parent->child;

	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = n;
	n->parent = parent;
	n->next = NULL;
}

/* The message that gives a container its date and subject: its own, or
 * a dummy's first child's (children are sorted by then). */
static const struct imap_sort_msg *
tmsg(const struct tnode *n)
{
	while (n != NULL && n->m == NULL)
		n = n->child;
	return n != NULL ? n->m : NULL;
}

/* A sibling as the sort sees it: its date and sequence number taken
 * once (tmsg), not on every comparison; containers without a message
 * last, in list order. */
struct tkey {
	int64_t sent;
	uint32_t seq;
	uint32_t none;		/* 1: no message; seq is then the position */
	struct tnode *n;
};

static int
tkey_cmp(const void *x, const void *y)
{
	const struct tkey *a = x, *b = y;

	if (a->none != b->none)
		return a->none < b->none ? -1 : 1;
	if (a->sent != b->sent)
		return a->sent < b->sent ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts a sibling list by date (children first); vec is scratch. */
static struct tnode *
tsort(struct tnode *first, struct tkey **vec, size_t *cap)
{
	size_t n = 0;
	struct tnode *p;

	for (p = first; p != NULL; p = p->next) {
		if (p->child != NULL)
			p->child = tsort(p->child, vec, cap);
		n++;
	}
	if (n < 2)
		return first;
	if (n > *cap) {
		*cap = n;
		*vec = xreallocarray(*vec, n, sizeof(**vec));
	}
	n = 0;
	for (p = first; p != NULL; p = p->next) {
		const struct imap_sort_msg *m = tmsg(p);
		struct tkey *k = &(*vec)[n];

		k->n = p;
		k->none = m == NULL;
		k->sent = m != NULL ? m->sent : 0;
		k->seq = m != NULL ? m->seq : (uint32_t)n;
		n++;
	}
	qsort(*vec, n, sizeof(**vec), tkey_cmp);
	for (size_t i = 0; i + 1 < n; i++)
		(*vec)[i].n->next = (*vec)[i + 1].n;
	(*vec)[n - 1].n->next = NULL;
	return (*vec)[0].n;
}

/*
 * Step 3 on a sibling list whose parent is parent (NULL: the root set):
 * a dummy without children goes; a dummy with children is replaced by
 * them, unless it is in the root set with more than one child.
 * Returns the new list.
 */
static struct tnode *
tprune(struct tnode *first, struct tnode *parent)
{
	struct tnode *head = NULL, **tail = &head, *p, *next;

	for (p = first; p != NULL; p = next) {
		next = p->next;
		p->next = NULL;
		p->child = tprune(p->child, p);
		if (p->m == NULL && p->child == NULL)
			continue;
		if (p->m == NULL && (parent != NULL || p->child->next ==
		    NULL)) {
			/* promote the children in its place */
			struct tnode *c = p->child;

			for (struct tnode *k = c; k != NULL; k = k->next)
				k->parent = parent;
			*tail = c;
			while (*tail != NULL)
				tail = &(*tail)->next;
			continue;
		}
		p->parent = parent;
		*tail = p;
		tail = &p->next;
	}
	return head;
}

static void
tput(struct strbuf *out, const struct tnode *n, bool uid, bool first)
{
	while (n != NULL) {
		if (n->m != NULL) {
			if (!first)
				strbuf_appendc(out, ' ');
			put_num(out, n->m, uid);
			first = false;
		}
		if (n->child != NULL && n->child->next == NULL &&
		    n->m != NULL) {
			n = n->child;	/* a chain: "1 2 3" */
			continue;
		}
		if (n->child != NULL && !first)
			strbuf_appendc(out, ' ');
		for (const struct tnode *c = n->child; c != NULL; c = c->next) {
			strbuf_appendc(out, '(');
			tput(out, c, uid, true);
			strbuf_appendc(out, ')');
		}
		break;
	}
}

/* Step 5: roots with the same base subject are gathered. */
static struct tnode *
tgroup(struct tnode *roots, size_t nroots, struct arena *a)
{
	struct ttable subj;
	struct tnode *p, *next, *head = NULL, **tail = &head;

	ttable_init(&subj, nroots, a);
	/* (5.B) the table: one root per subject, a dummy or a non-reply
	 * preferred */
	for (p = roots; p != NULL; p = p->next) {
		const struct imap_sort_msg *m = tmsg(p);
		struct tnode *slot;

		if (m == NULL || m->subject[0] == '\0')
			continue;
		slot = tget(&subj, m->subject);
		if (slot->child == NULL && slot->m == NULL) {
			slot->child = p;	/* slot->child: the chosen root */
			continue;
		}
		if ((p->m == NULL && slot->child->m != NULL) ||
		    (p->m != NULL && slot->child->m != NULL &&
		    slot->child->m->reply && !p->m->reply))
			slot->child = p;
	}
	/* (5.C) merge the others into it */
	for (p = roots; p != NULL; p = next) {
		const struct imap_sort_msg *m = tmsg(p);
		struct tnode *keep, *slot;

		next = p->next;
		p->next = NULL;
		if (m == NULL || m->subject[0] == '\0' ||
		    (slot = tget(&subj, m->subject))->child == p) {
			*tail = p;
			tail = &p->next;
			continue;
		}
		keep = slot->child;
		if (keep->m == NULL && p->m == NULL) {
			struct tnode *c, *cn;

			for (c = p->child; c != NULL; c = cn) {
				cn = c->next;
				c->next = NULL;
				tlink(keep, c);
			}
		} else if (keep->m == NULL) {
			tlink(keep, p);
		} else if (!keep->m->reply && p->m != NULL && p->m->reply) {
			tlink(keep, p);
		} else {
			/* keep becomes a dummy in its own place, with its
			 * message (and children) and p below it */
			struct tnode *k2 = tnode_new(a);

			k2->m = keep->m;
			k2->child = keep->child;
			for (struct tnode *c = k2->child; c != NULL;
			    c = c->next)
				c->parent = k2;
			keep->m = NULL;
			keep->child = NULL;
			tlink(keep, k2);
			tlink(keep, p);
		}
	}
	return head;
}

void
imap_thread_references(struct imap_sort_msg *msgs, size_t n, bool uid,
    struct arena *a, struct strbuf *out)
{
	struct ttable ids;
	struct tnode **own, *roots = NULL, **tail = &roots;
	struct tkey *vec = NULL;
	size_t nslots = 0, nroots = 0, vcap = 0;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		nslots += 1 + msgs[i].nrefs;
	ttable_init(&ids, nslots, a);
	own = arena_alloc(a, n * sizeof(*own));
	/* (1) one container per message, linked along its references */
	for (size_t i = 0; i < n; i++) {
		struct imap_sort_msg *m = &msgs[i];
		struct tnode *c = NULL, *prev = NULL;

		if (m->msgid != NULL) {
			c = tget(&ids, m->msgid);
			if (c->m != NULL)
				c = NULL;	/* a duplicate id: unique */
		}
		if (c == NULL)
			c = tnode_new(a);
		c->m = m;
		own[i] = c;
		for (size_t k = 0; k < m->nrefs; k++) {
			struct tnode *r = tget(&ids, m->refs[k]);

			if (prev != NULL && r->parent == NULL && r != prev &&
			    !is_ancestor(r, prev))
				tlink(prev, r);
			prev = r;
		}
		/* the last reference is the parent (a truncated chain may
		 * have linked it elsewhere before) */
		tunlink(c);
		if (prev != NULL && prev != c && !is_ancestor(c, prev))
			tlink(prev, c);
	}
	/* (2) the root set: every container without a parent; messages
	 * in their order (the order of their memory: the steps below walk
	 * it), then the dummies. The order is not the answer's: step 4
	 * sorts before anything depends on it. */
	for (size_t i = 0; i < n; i++)
		if (own[i]->parent == NULL) {
			*tail = own[i];
			tail = &own[i]->next;
		}
	for (size_t i = 0; i <= ids.mask; i++) {
		struct tnode *c = ids.slot[i].node;

		if (c != NULL && c->m == NULL && c->parent == NULL) {
			*tail = c;
			tail = &c->next;
		}
	}
	/* (3) prune dummies, (4) sort, (5) gather by subject, (6) sort */
	roots = tprune(roots, NULL);
	roots = tsort(roots, &vec, &vcap);
	for (struct tnode *p = roots; p != NULL; p = p->next)
		nroots++;
	roots = tgroup(roots, nroots, a);
	roots = tsort(roots, &vec, &vcap);
	free(vec);
	for (struct tnode *p = roots; p != NULL; p = p->next) {
		strbuf_appendc(out, '(');
		tput(out, p, uid, true);
		strbuf_appendc(out, ')');
	}
}
