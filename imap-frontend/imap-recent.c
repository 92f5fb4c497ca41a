/* imap-recent — the per-process "first recent UID" of each mailbox: an
 * open-addressing hash table (linear probing, backward-shift delete). */
#include "imap-recent.h"

#include <stdbool.h>
#include <stdlib.h>

#include "xmalloc.h"

/* Initial slots (a power of two); the table doubles at half full. */
#define IMAP_RECENT_MIN_SLOTS 64

struct recent_slot {
	uint64_t key;		/* user_id << 32 | mailbox_id */
	uint32_t first;		/* 0: empty (UIDs start at 1) */
};

struct imap_recent {
	struct recent_slot *slots;
	uint32_t cap;		/* power of two */
	uint32_t used;
};

static uint64_t
recent_key(uint32_t user_id, uint32_t mailbox_id)
{
	return (uint64_t)user_id << 32 | mailbox_id;
}

static uint32_t
recent_hash(uint64_t key, uint32_t cap)
{
	/* Fibonacci hashing: ids are small and sequential */
	return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

struct imap_recent *
imap_recent_new(void)
{
	struct imap_recent *t = xcalloc(1, sizeof(*t));

	t->cap = IMAP_RECENT_MIN_SLOTS;
	t->slots = xcalloc(t->cap, sizeof(*t->slots));
	return t;
}

void
imap_recent_free(struct imap_recent **tablep)
{
	struct imap_recent *t = *tablep;

	if (t == NULL)
		return;
	free(t->slots);
	free(t);
	*tablep = NULL;
}

/* The slot holding key, or the empty slot where it would go. */
static struct recent_slot *
recent_find(const struct imap_recent *t, uint64_t key)
{
	uint32_t i = recent_hash(key, t->cap);

	while (t->slots[i].first != 0 && t->slots[i].key != key)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static void
recent_grow(struct imap_recent *t)
{
	struct recent_slot *old = t->slots;
	uint32_t old_cap = t->cap;

	t->cap *= 2;
	t->slots = xcalloc(t->cap, sizeof(*t->slots));
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i].first != 0)
			*recent_find(t, old[i].key) = old[i];
	free(old);
}

static void
recent_set(struct imap_recent *t, uint64_t key, uint32_t first, bool raise)
{
	struct recent_slot *sl = recent_find(t, key);

	if (sl->first != 0) {
		if (raise && first > sl->first)
			sl->first = first;
		return;
	}
	if ((t->used + 1) * 2 > t->cap) {
		recent_grow(t);
		sl = recent_find(t, key);
	}
	sl->key = key;
	sl->first = first;
	t->used++;
}

void
imap_recent_note_new(struct imap_recent *t, uint32_t user_id,
    uint32_t mailbox_id, uint32_t first_uid)
{
	if (first_uid == 0)
		return;
	recent_set(t, recent_key(user_id, mailbox_id), first_uid, false);
}

uint32_t
imap_recent_first(const struct imap_recent *t, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uidnext)
{
	const struct recent_slot *sl = recent_find(t, recent_key(user_id,
	    mailbox_id));

	return sl->first != 0 ? sl->first : uidnext;
}

void
imap_recent_claim(struct imap_recent *t, uint32_t user_id,
    uint32_t mailbox_id, uint32_t next_uid)
{
	if (next_uid == 0)
		return;
	recent_set(t, recent_key(user_id, mailbox_id), next_uid, true);
}

void
imap_recent_forget(struct imap_recent *t, uint32_t user_id,
    uint32_t mailbox_id)
{
	struct recent_slot *sl = recent_find(t, recent_key(user_id,
	    mailbox_id));
	uint32_t i, j;

	if (sl->first == 0)
		return;
	/* backward-shift: pull later members of the probe run into the
	 * hole unless their home slot lies cyclically in (hole, j] */
	i = (uint32_t)(sl - t->slots);
	j = i;
	for (;;) {
		uint32_t home;

		j = (j + 1) & (t->cap - 1);
		if (t->slots[j].first == 0)
			break;
		home = recent_hash(t->slots[j].key, t->cap);
		if (((j - home) & (t->cap - 1)) >= ((j - i) & (t->cap - 1))) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i].first = 0;
	t->slots[i].key = 0;
	t->used--;
}

uint32_t
imap_recent_count(const struct imap_recent *t)
{
	return t->used;
}
