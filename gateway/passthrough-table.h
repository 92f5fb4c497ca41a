/*
 * passthrough-table — the pass-through check's two bounded tables: the
 * failure cache (name/password hash → refused until) and the rate limit
 * (name hash → checks in the current minute). Fixed size, caller-owned
 * arrays of struct pt_entry, zeroed at start.
 *
 * A live entry is never evicted to make room in the rate table: a flood
 * of distinct names could otherwise erase the attempt count of a name
 * under attack. When every slot is live, pt_table_claim() refuses
 * (NULL) and the caller answers "try later" (fail closed). The failure
 * cache may evict (the live entry expiring soonest): losing one costs a
 * single extra check upstream, still under the rate limit.
 */
#ifndef POPGATE_GATEWAY_PASSTHROUGH_TABLE_H
#define POPGATE_GATEWAY_PASSTHROUGH_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The rate limit's window: attempts are counted per minute. */
#define PASSTHROUGH_RATE_WINDOW 60

struct pt_entry {
	unsigned char key[32];
	time_t until;		/* failure cache: expiry (0: unused) */
	time_t window;		/* rate limit: start of the minute (0: unused) */
	unsigned int count;
};

/* Live at now: a failure not yet expired, or a rate window not over. */
bool pt_entry_live(const struct pt_entry *e, time_t now);

/* The live entry for key, or NULL. Never changes the table. */
struct pt_entry *pt_table_find(struct pt_entry *t, size_t n,
    const unsigned char key[32], time_t now);

/*
 * The live entry for key (*found_r true), else a slot reset for key
 * (*found_r false): an unused or expired one; when all n are live, the
 * one expiring soonest if evict_live, else NULL (the table is full of
 * live entries: refuse).
 */
struct pt_entry *pt_table_claim(struct pt_entry *t, size_t n,
    const unsigned char key[32], time_t now, bool evict_live,
    bool *found_r);

#endif
