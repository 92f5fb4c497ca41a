/*
 * imap-throttle — failed logins remembered by (user, address), by address
 * and by user, so that guessing passwords gets slow (level 1: pure, no
 * I/O; the caller passes the time).
 *
 * The table outlives connections: one connection per guess is slowed as
 * much as many guesses on one. It is bounded (IMAP_THROTTLE_ENTRIES; when
 * full, the entry least recently failed goes) and entries expire
 * IMAP_THROTTLE_WINDOW_SECS after their last failure.
 *
 * The delay before a login's password check is the largest of:
 *  - (user, address): 0 for no failure, then 250 ms doubling per failure
 *    up to IMAP_THROTTLE_DELAY_MAX_MS: the guesser of one account;
 *  - address: free for IMAP_THROTTLE_ADDR_FREE failures, then 250 ms
 *    doubling every two failures up to the maximum: one address trying
 *    many user names;
 *  - user, from any address: gentle, at most IMAP_THROTTLE_USER_MAX_MS, so
 *    an attacker who guesses one account from many addresses slows its
 *    owner by at most that much and can never lock them out.
 * A success clears the (user, address) entry only.
 *
 * User names are compared case-insensitively (ASCII), as logins are.
 * Owner: the event loop (no locking).
 */
#ifndef POPGATE_IMAP_THROTTLE_H
#define POPGATE_IMAP_THROTTLE_H

#include <stddef.h>
#include <time.h>

/* Entries kept at most (each ~100 bytes + the user name): about 8 MB. */
#define IMAP_THROTTLE_ENTRIES 65536
/* Seconds after its last failure an entry is forgotten. */
#define IMAP_THROTTLE_WINDOW_SECS (15 * 60)
/* Longest delay before a password check. */
#define IMAP_THROTTLE_DELAY_MAX_MS 30000
/* First delay step; doubles with failures. */
#define IMAP_THROTTLE_STEP_MS 250
/* Failures of one address (any user names) that cost nothing yet:
 * typing errors of a few people behind one NAT address. */
#define IMAP_THROTTLE_ADDR_FREE 4
/* Failures of one user (any address) that cost nothing yet, and the
 * most they ever cost: never a lock-out from everywhere. */
#define IMAP_THROTTLE_USER_FREE 5
#define IMAP_THROTTLE_USER_MAX_MS 2000

struct imap_throttle;

struct imap_throttle_counts {
	unsigned pair;		/* this user from this address */
	unsigned addr;		/* this address, any user */
	unsigned user;		/* this user, any address */
};

/* max_entries 0: IMAP_THROTTLE_ENTRIES; window_secs 0: the default. */
struct imap_throttle *imap_throttle_new(size_t max_entries,
    unsigned window_secs);
void imap_throttle_free(struct imap_throttle **tp);

/* Milliseconds to wait before checking a password of user from addr. */
unsigned imap_throttle_delay(struct imap_throttle *t, const char *user,
    const char *addr, time_t now);
/* The failures remembered now (expired ones count 0). */
void imap_throttle_counts(struct imap_throttle *t, const char *user,
    const char *addr, time_t now, struct imap_throttle_counts *c_r);
/* Records a failed login; *c_r: the counts after it. */
void imap_throttle_failed(struct imap_throttle *t, const char *user,
    const char *addr, time_t now, struct imap_throttle_counts *c_r);
/* A successful login forgets the (user, address) failures. */
void imap_throttle_succeeded(struct imap_throttle *t, const char *user,
    const char *addr);
/* Entries held now. */
size_t imap_throttle_size(const struct imap_throttle *t);

#endif
