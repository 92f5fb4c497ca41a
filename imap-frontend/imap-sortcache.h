/*
 * imap-sortcache — SORT's keys of a mailbox kept between commands, as
 * integer ranks (one cache per server, shared by the worker threads).
 *
 * A message's sort keys never change (they come from its body, its
 * INTERNALDATE and its UID), so what a SORT learnt about a mailbox stays
 * true: a later SORT takes the keys of the messages it knows from here
 * instead of reading each one's record, and compares integers instead of
 * strings. A generation (struct imap_sortcache_gen) holds, for UIDs of
 * one mailbox (user, mailbox id, UIDVALIDITY), the sent date and each
 * string key's rank: its place among the distinct values of that key in
 * the generation, in strcmp's order (equal strings, equal ranks). It
 * keeps the distinct strings too, so that new messages are merged in
 * (imap_sortcache_merge: old ranks are renumbered, nothing is re-read);
 * expunged messages are simply never asked for (a generation holding
 * more than twice the mailbox's messages is dropped, see
 * imap_sortcache_get).
 *
 * A generation is immutable once built; the cache holds at most one per
 * mailbox and hands out references (counted atomically), so a SORT
 * on a worker reads one without a lock while another SORT publishes the
 * next one (a generation goes with its last reference, cache or not).
 * The published generations together stay under max_bytes
 * (IMAP_SORTCACHE_BYTES_MAX by default): past it the least recently used
 * are dropped; one that alone is bigger is used by its SORT and not kept.
 */
#ifndef POPGATE_IMAP_SORTCACHE_H
#define POPGATE_IMAP_SORTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap-sort.h"

/* Bytes of all the kept generations of one server (about 40 bytes a
 * message plus its distinct strings: 64 MiB is some 1.2 million
 * messages). */
#define IMAP_SORTCACHE_BYTES_MAX (64u * 1024 * 1024)
/* Mailboxes kept at most (each lookup scans them). */
#define IMAP_SORTCACHE_ENTRIES_MAX 1024

struct imap_sortcache;
struct imap_sortcache_gen;

/* A message that a generation does not hold yet: its keys (strings
 * NUL-terminated, folded; only read during imap_sortcache_merge). */
struct imap_sortcache_msg {
	uint32_t uid;
	int64_t sent;		/* Date:, else INTERNALDATE */
	const char *key[IMAP_SORT_RANKS];
};

struct imap_sortcache_stats {
	size_t entries, bytes;
	uint64_t evicted;	/* generations dropped for room */
};

struct imap_sortcache *imap_sortcache_new(size_t max_bytes);
void imap_sortcache_free(struct imap_sortcache **c);

/*
 * A reference to the mailbox's generation (NULL: none), to be given back
 * with imap_sortcache_unref. view_count: the messages the caller's view
 * holds; a generation of more than twice as many (plus 1024) is mostly
 * expunged messages: it is dropped and NULL returned.
 */
struct imap_sortcache_gen *imap_sortcache_get(struct imap_sortcache *c,
    uint32_t user_id, uint32_t mailbox_id, uint32_t uidvalidity,
    size_t view_count);
void imap_sortcache_unref(struct imap_sortcache_gen **g);

/*
 * The keys of uid in g: true with *sent_r and rank_r[IMAP_SORT_RANKS],
 * false when g does not hold it. *pos: where the previous lookup ended
 * (0 at first); lookups of ascending UIDs cost O(1) each.
 */
bool imap_sortcache_find(const struct imap_sortcache_gen *g, uint32_t uid,
    size_t *pos, int64_t *sent_r, uint32_t *rank_r);

/*
 * A new generation: old's messages (old may be NULL) and msgs[0..n)
 * (UIDs that old does not hold; any order). Unpublished, one reference
 * for the caller.
 */
struct imap_sortcache_gen *imap_sortcache_merge(
    const struct imap_sortcache_gen *old, const struct imap_sortcache_msg *msgs,
    size_t n, uint32_t user_id, uint32_t mailbox_id, uint32_t uidvalidity);

/*
 * Makes g the mailbox's generation if the cache still holds base there
 * (the one g was merged from; NULL: none), else leaves the newer one in
 * place. The cache takes its own reference; the caller keeps its.
 */
void imap_sortcache_publish(struct imap_sortcache *c,
    const struct imap_sortcache_gen *base, struct imap_sortcache_gen *g);

/* Messages and bytes of g. */
size_t imap_sortcache_gen_count(const struct imap_sortcache_gen *g);
size_t imap_sortcache_gen_bytes(const struct imap_sortcache_gen *g);

void imap_sortcache_stats(struct imap_sortcache *c,
    struct imap_sortcache_stats *st);

#endif
