/*
 * mail-sortkey — what SORT and THREAD (RFC 5256) compare, per message,
 * as one small record (level 1: pure).
 *
 * The record is computed where the message is parsed anyway (on a worker,
 * at delivery and APPEND) and stored beside its structure blob (store.h,
 * store_msg_sortkey), so a SORT or THREAD over 100,000 messages reads
 * 100,000 small records instead of envelopes and header blocks. A message
 * stored without one (an older store) gets the same record built from
 * its envelope at SORT time: both paths go through mail_sortkey_build(),
 * so they cannot disagree.
 *
 *   mail_sortkey_base_subject()  the base subject of RFC 5256 2.1
 *   mail_sortkey_msgids()        the msg-ids of References / In-Reply-To
 *   mail_sortkey_build()         envelope (+ References) -> record
 *   mail_sortkey_of_message()    parsed message + its bytes -> record
 *   mail_sortkey_read()          record -> struct mail_sortkey (views)
 *
 * Strings in a record are NUL-terminated and already folded with
 * mail_utf8_casefold() (subject and addresses; msg-ids are kept as they
 * are, without white space).
 */
#ifndef POPGATE_MAIL_SORTKEY_H
#define POPGATE_MAIL_SORTKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct mail_envelope;
struct mail_message;
struct strbuf;

/* Bytes of a Subject, address or msg-id kept in a record: longer values
 * compare by their first bytes (a hostile 1 MB Subject costs 1 KB). */
#define MAIL_SORTKEY_STR_MAX 1024
/* Subject bytes decoded for the base subject (RFC 2047 words shrink). */
#define MAIL_SORTKEY_SUBJECT_IN_MAX (4 * MAIL_SORTKEY_STR_MAX)
/* References kept per message (the newest ones: the end of the header
 * names the closest ancestors). */
#define MAIL_SORTKEY_REFS_MAX 64
/* The record's format; a record of another version is not read (the
 * message is then taken as if it had none). */
#define MAIL_SORTKEY_VERSION 1

/* A record read back: pointers into the record (valid as long as it). */
struct mail_sortkey {
	bool sent_valid;	/* Date: parsed */
	int64_t sent;		/* its time, UTC seconds */
	bool reply;		/* the subject was a reply or forward */
	const char *subject;	/* base subject */
	const char *from, *to, *cc;	/* first addr-mailbox, or "" */
	const char *msgid;	/* Message-ID, NULL when missing */
	/* References, oldest first (else In-Reply-To's first msg-id) */
	const char *refs[MAIL_SORTKEY_REFS_MAX];
	size_t nrefs;
};

/*
 * RFC 5256 2.1: the base subject of an unfolded, decoded (UTF-8) Subject
 * value, case-folded, into out (emptied first). *reply_r: a "Re:",
 * "Fwd:", "(fwd)" or "[fwd: ...]" was removed (2.1 note, used by
 * THREAD=REFERENCES step 5).
 */
void mail_sortkey_base_subject(const char *subject, size_t len,
    struct strbuf *out, bool *reply_r);

/*
 * The "msg-id" tokens of a References / In-Reply-To value ("<a@b>" with
 * comments and folding allowed), in order, as strings in arena; at most
 * max (the last ones when there are more). Returns how many.
 */
size_t mail_sortkey_msgids(const char *value, size_t len,
    struct arena *arena, const char **ids_r, size_t max);

/*
 * The record of a message whose root envelope is env (NULL: none) and
 * whose References header value is references[0..references_len)
 * (NULL: none; folded or not), into out (emptied first).
 */
void mail_sortkey_build(const struct mail_envelope *env,
    const char *references, size_t references_len, struct strbuf *out);

/*
 * The record of a parsed message mm (NULL: an empty record) whose bytes
 * are data[0..size): the root's envelope and its header block's
 * References.
 */
void mail_sortkey_of_message(const struct mail_message *mm,
    const void *data, size_t size, struct strbuf *out);

/* The References value in a header block hdr[0..len), unfolded, into
 * out (emptied first): true when there is one. */
bool mail_sortkey_references(const void *hdr, size_t len,
    struct strbuf *out);

/* Reads a record: 0, or -1 when it is not a well-formed record of
 * MAIL_SORTKEY_VERSION (never reads outside rec[0..len)). */
int mail_sortkey_read(const void *rec, size_t len, struct mail_sortkey *k);

#endif
