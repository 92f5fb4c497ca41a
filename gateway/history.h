/*
 * history — each upstream account's poll history and running totals,
 * kept in the store so that they survive restarts: the status command's
 * FETCHED and LAST SUCCESS, and `popgatectl account history`, a list of
 * the last polls with their outcome and counts (like the "last checks"
 * of a web mail's POP3 fetcher).
 *
 * The record is the user's setting "upstream-history/ACCOUNT", a small
 * JSON object:
 *
 *   {"fetched":N,"bytes":N,"deleted":N,"polls":N,"failures":N,
 *    "last_poll":T,"last_success":T|null,
 *    "recent":[{"started":T,"seconds":S,"outcome":"ok","fetched":N,
 *               "bytes":N,"deleted":N,"skipped":N,"error":"..."}, ...]}
 *
 * with the newest poll first and at most HISTORY_POLLS_MAX of them. It is
 * updated once per finished poll, read and written in one transaction on
 * the store's writer thread (the loop does not wait for it), removed
 * with the account, and goes with the user's other settings when the user
 * is deleted or moved.
 *
 * Ownership: json_t results are new references (json_decref).
 * Threads: called on the event loop; the update itself runs on the
 * writer thread with its own copies (jansson objects are not shared).
 */
#ifndef POPGATE_GATEWAY_HISTORY_H
#define POPGATE_GATEWAY_HISTORY_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

struct store;
struct store_read;

/* Polls kept per account (the record stays a few KB). */
#define HISTORY_POLLS_MAX 20
#define HISTORY_META_PREFIX "upstream-history/"

/* One finished poll. */
struct history_poll {
	time_t started;
	time_t ended;
	const char *outcome;	/* "ok", "temporary", "auth", ... */
	uint32_t fetched;
	uint64_t bytes;
	uint32_t deleted;
	uint32_t skipped;
	const char *error;	/* "" or NULL when none; escaped text */
};

/* Adds a finished poll as the newest and its counts to the totals, on
 * the writer thread: returns at once (0); a failure is logged. */
int history_record(struct store *store, uint32_t user_id,
    const char *account, const struct history_poll *poll,
    const char **error_r);
/* The record (see above), or NULL (with *error_r unset) when the account
   has none yet; NULL with *error_r on a store error. */
json_t *history_get(struct store_read *r, uint32_t user_id,
    const char *account, const char **error_r);
/* Removes the record (STORE_NOT_FOUND when there was none). */
int history_delete(struct store *store, uint32_t user_id,
    const char *account, const char **error_r);
/*
 * Puts the kept totals into an account's live status (as made by
 * upstreams_status_json): messages_fetched, bytes_fetched and
 * messages_deleted become the account's totals since it was added (the
 * live counters move to since_start), and last_poll / last_success the
 * later of the kept and the live value. hist may be NULL (nothing kept
 * yet).
 */
void history_merge_status(json_t *status, json_t *hist);

#endif
