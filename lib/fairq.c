/* fairq — see fairq.h. */
#include "fairq.h"

#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct fairq_key {
	uint64_t key;
	struct fairq_key *hnext;	/* hash chain */
	struct fairq_key *rr_next;	/* turn order */
	struct fairq_item *head, *tail;
};

static size_t
bucket_of(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)(key & (FAIRQ_BUCKETS - 1));
}

void
fairq_init(struct fairq *fq)
{
	memset(fq, 0, sizeof(*fq));
}

void
fairq_clear(struct fairq *fq)
{
	for (size_t b = 0; b < FAIRQ_BUCKETS; b++) {
		while (fq->buckets[b] != NULL) {
			struct fairq_key *k = fq->buckets[b];

			fq->buckets[b] = k->hnext;
			for (struct fairq_item *it = k->head; it != NULL;
			    it = it->next_)
				it->key_ = NULL;
			free(k);
		}
	}
	fairq_init(fq);
}

static void
rr_append(struct fairq *fq, struct fairq_key *k)
{
	k->rr_next = NULL;
	if (fq->rr_tail != NULL)
		fq->rr_tail->rr_next = k;
	else
		fq->rr_head = k;
	fq->rr_tail = k;
}

/* Unlinks an emptied key from the hash and the turn order, frees it. */
static void
key_drop(struct fairq *fq, struct fairq_key *k)
{
	struct fairq_key **pp, *prev = NULL;

	for (pp = &fq->buckets[bucket_of(k->key)]; *pp != k;
	    pp = &(*pp)->hnext)
		;
	*pp = k->hnext;
	for (pp = &fq->rr_head; *pp != k; pp = &(*pp)->rr_next)
		prev = *pp;
	*pp = k->rr_next;
	if (fq->rr_tail == k)
		fq->rr_tail = prev;
	fq->keys--;
	free(k);
}

void
fairq_push(struct fairq *fq, uint64_t key, struct fairq_item *item)
{
	size_t b = bucket_of(key);
	struct fairq_key *k;

	for (k = fq->buckets[b]; k != NULL; k = k->hnext)
		if (k->key == key)
			break;
	if (k == NULL) {
		k = xcalloc(1, sizeof(*k));
		k->key = key;
		k->hnext = fq->buckets[b];
		fq->buckets[b] = k;
		rr_append(fq, k);
		fq->keys++;
	}
	item->next_ = NULL;
	item->key_ = k;
	if (k->tail != NULL)
		k->tail->next_ = item;
	else
		k->head = item;
	k->tail = item;
	fq->count++;
}

struct fairq_item *
fairq_pop(struct fairq *fq)
{
	struct fairq_key *k = fq->rr_head;
	struct fairq_item *item;

	if (k == NULL)
		return NULL;
	item = k->head;
	k->head = item->next_;
	item->next_ = NULL;
	item->key_ = NULL;
	fq->count--;
	if (k->head == NULL) {
		k->tail = NULL;
		key_drop(fq, k);	/* k is the head: O(1) in the turn list */
	} else if (fq->rr_tail != k) {
		fq->rr_head = k->rr_next;
		rr_append(fq, k);
	}
	return item;
}

bool
fairq_peek_key(const struct fairq *fq, uint64_t *key_r)
{
	if (fq->rr_head == NULL)
		return false;
	*key_r = fq->rr_head->key;
	return true;
}

bool
fairq_remove(struct fairq *fq, struct fairq_item *item)
{
	struct fairq_key *k = item->key_;
	struct fairq_item **pp, *prev = NULL;

	if (k == NULL)
		return false;
	for (pp = &k->head; *pp != item; pp = &(*pp)->next_)
		prev = *pp;
	*pp = item->next_;
	if (k->tail == item)
		k->tail = prev;
	item->next_ = NULL;
	item->key_ = NULL;
	fq->count--;
	if (k->head == NULL)
		key_drop(fq, k);
	return true;
}
