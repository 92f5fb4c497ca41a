/*
 * fairq — a queue that takes its items in turn by key: one FIFO per key,
 * and the keys in round-robin order. A key with a thousand items queued
 * delays another key's first item by one item, not a thousand. The worker
 * pool (workq.h) and the store's writer share it.
 *
 *   struct my_item { struct fairq_item link; ... };
 *   fairq_push(&fq, user_id, &it->link);
 *   struct fairq_item *next = fairq_pop(&fq);   // NULL when empty
 *
 * Not thread-safe: its owner guards it (workq and the writer each with
 * their one mutex). Items are the caller's memory; the queue only links
 * them. Keys live while they have items (a hash of FAIRQ_BUCKETS chains).
 */
#ifndef POPGATE_FAIRQ_H
#define POPGATE_FAIRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Buckets of the key hash (a power of two); more keys only make the
 * chains longer. */
#define FAIRQ_BUCKETS 256

struct fairq_key;

struct fairq_item {
	struct fairq_item *next_;	/* private */
	struct fairq_key *key_;		/* private: set while queued */
};

struct fairq {
	struct fairq_key *buckets[FAIRQ_BUCKETS];
	struct fairq_key *rr_head, *rr_tail;
	size_t count;		/* items queued */
	size_t keys;		/* keys with items */
};

void fairq_init(struct fairq *fq);
/* Frees the keys; the items (still queued or not) are the caller's. */
void fairq_clear(struct fairq *fq);
void fairq_push(struct fairq *fq, uint64_t key, struct fairq_item *item);
/* The first item of the key whose turn it is; that key goes to the back
 * of the line. NULL when nothing is queued. */
struct fairq_item *fairq_pop(struct fairq *fq);
/* The key whose turn is next, or false when empty (the item stays). */
bool fairq_peek_key(const struct fairq *fq, uint64_t *key_r);
/* Takes item out if it is queued: true; false if it was not. */
bool fairq_remove(struct fairq *fq, struct fairq_item *item);
static inline bool
fairq_is_queued(const struct fairq_item *item)
{
	return item->key_ != NULL;
}

#endif
