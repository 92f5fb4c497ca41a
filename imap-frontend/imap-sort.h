/*
 * imap-sort — SORT and THREAD (RFC 5256) without I/O (level 1: pure).
 *
 * The server reads one struct imap_sort_msg per message (on a worker,
 * imap-cmd-sort.c) from its key record (store/mail-sortkey.h: the base
 * subject of RFC 5256 2.1, msg-ids ...), then sorts or threads them:
 *
 *   imap_sort_msgs()          SORT's order (ties by sequence number)
 *   imap_thread_orderedsubject(), imap_thread_references()
 *                             THREAD's responses (RFC 5256 2.2, 4)
 *
 * Strings are compared as bytes after mail_utf8_casefold() (a simple
 * Unicode case folding, close to i;unicode-casemap of RFC 5051 without
 * its decomposition step).
 */
#ifndef POPGATE_IMAP_SORT_H
#define POPGATE_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/mail-sortkey.h"

struct arena;
struct imap_arg;
struct strbuf;

/* Sort keys in one SORT (each key may appear once, REVERSE before it). */
#define IMAP_SORT_KEYS_MAX 8
/* References kept per message for THREAD=REFERENCES (the newest ones:
 * the end of the header names the closest ancestors). */
#define IMAP_THREAD_REFS_MAX MAIL_SORTKEY_REFS_MAX

enum imap_sort_key {
	IMAP_SORT_ARRIVAL = 0,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
};

/* The string keys a caller may give as ranks (imap_sort_order). */
enum imap_sort_rank {
	IMAP_SORT_RANK_SUBJECT = 0,
	IMAP_SORT_RANK_FROM,
	IMAP_SORT_RANK_TO,
	IMAP_SORT_RANK_CC,
	IMAP_SORT_RANKS
};

struct imap_sort_criterion {
	enum imap_sort_key key;
	bool reverse;
};

/* One message as SORT and THREAD see it. Strings are NUL-terminated,
 * already folded, and owned by the caller (an arena). */
struct imap_sort_msg {
	uint32_t seq, uid;
	uint64_t size;
	int64_t arrival;	/* INTERNALDATE, UTC seconds */
	int64_t sent;		/* Date: in UTC, else INTERNALDATE */
	const char *subject;	/* base subject */
	bool reply;		/* the subject was a reply or forward */
	const char *from, *to, *cc;	/* first addr-mailbox, or "" */
	/* imap_sort_order(ranked): each string key's place in the order of
	 * the values it takes (strcmp's order; equal strings, equal ranks) */
	uint32_t rank[IMAP_SORT_RANKS];
	/* THREAD=REFERENCES: Message-ID (NULL when missing) and the
	 * references, oldest first (References, else In-Reply-To). */
	const char *msgid;
	const char **refs;
	size_t nrefs;
};

/*
 * Parses "(" criteria ")" (RFC 5256: [REVERSE] ARRIVAL | CC | DATE |
 * FROM | SIZE | SUBJECT | TO), into crit_r[IMAP_SORT_KEYS_MAX]. 0, or
 * -1 with a static *error_r.
 */
int imap_sort_parse_criteria(const struct imap_arg *arg,
    struct imap_sort_criterion *crit_r, size_t *count_r,
    const char **error_r);

/* Sorts msgs[0..n) by the criteria; equal messages by sequence number. */
void imap_sort_msgs(struct imap_sort_msg *msgs, size_t n,
    const struct imap_sort_criterion *crit, size_t ncrit);
/* The same order without moving the messages (at 100,000 that is
 * 11 MB of random reads): order_r[i] (room for n) is the index in msgs of
 * the i-th. ranked: the string keys' ranks are compared instead of the
 * strings (which are then not read). */
void imap_sort_order(const struct imap_sort_msg *msgs, size_t n,
    const struct imap_sort_criterion *crit, size_t ncrit, bool ranked,
    size_t *order_r);

/*
 * THREAD=ORDEREDSUBJECT / THREAD=REFERENCES: appends the threads of
 * msgs[0..n) ("(1 2)(3 (4)(5))") to out, numbers as uid ? UIDs :
 * sequence numbers. msgs is reordered. Memory from arena.
 */
void imap_thread_orderedsubject(struct imap_sort_msg *msgs, size_t n,
    bool uid, struct arena *arena, struct strbuf *out);
void imap_thread_references(struct imap_sort_msg *msgs, size_t n, bool uid,
    struct arena *arena, struct strbuf *out);

#endif
