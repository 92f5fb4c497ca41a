/*
 * imap-search-match — SEARCH keys: parse the command's arguments into a
 * tree, evaluate the tree against one message (level 1: pure).
 *
 *	struct imap_search_program *prog;
 *	enum imap_search_error err;
 *	if (imap_search_parse(args, n, arena, &prog, &err, &why) < 0)
 *		err == IMAP_SEARCH_ERR_BADCHARSET
 *		    ? "tag NO [BADCHARSET (UTF-8 US-ASCII)] why"
 *		    : "tag BAD why";
 *	for each message: fill a struct imap_search_message, then
 *		r = imap_search_match(prog, &msg);   1 match, 0 no, -1 error
 *
 * Accepted (RFC 3501 6.4.4 + RFC 4731 + RFC 7162):
 *	[RETURN (opts)] [CHARSET name] key *(SP key)
 * RETURN options MIN MAX COUNT ALL (ESEARCH; "RETURN ()" means ALL) and
 * SAVE (SEARCHRES; the session keeps the result).
 * CHARSET UTF-8 and US-ASCII (any case) are accepted; any other charset
 * is IMAP_SEARCH_ERR_BADCHARSET. Strings are matched as given (UTF-8).
 * Keys: ALL ANSWERED BCC BEFORE BODY CC DELETED DRAFT FLAGGED FROM HEADER
 * KEYWORD LARGER NEW NOT OLD ON OR RECENT SEEN SENTBEFORE SENTON SENTSINCE
 * SINCE SMALLER SUBJECT TEXT TO UID UNANSWERED UNDELETED UNDRAFT
 * UNFLAGGED UNKEYWORD UNSEEN, MODSEQ [name type] n, sequence sets,
 * "(" keys ")". Dates are IMAP dates (d-Mon-yyyy).
 *
 * Memory: the program and every node live in the arena given to
 * imap_search_parse(); nothing needs freeing. Argument strings are copied.
 */
#ifndef POPGATE_IMAP_SEARCH_MATCH_H
#define POPGATE_IMAP_SEARCH_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap-seqset.h"

struct arena;
struct imap_arg;

/* Nesting of NOT / OR / parentheses; the command parser's list depth
 * bounds parentheses, this bounds NOT NOT NOT ... chains too. */
#define IMAP_SEARCH_MAX_DEPTH 64
/* Keys in one program; every key costs at least 2 bytes of input so the
 * line limit bounds it, this makes the bound explicit and smaller. */
#define IMAP_SEARCH_MAX_KEYS 1024

enum imap_search_key_type {
	IMAP_SEARCH_AND = 0,	/* children, all must match (list / top) */
	IMAP_SEARCH_OR,		/* two children */
	IMAP_SEARCH_NOT,	/* one child */
	IMAP_SEARCH_ALL,
	IMAP_SEARCH_FLAGS_SET,	/* flag bits in .flags all set */
	IMAP_SEARCH_FLAGS_UNSET,	/* flag bits in .flags all clear */
	IMAP_SEARCH_KEYWORD,	/* .str */
	IMAP_SEARCH_UNKEYWORD,	/* .str */
	IMAP_SEARCH_NEW,	/* RECENT and not SEEN */
	IMAP_SEARCH_OLD,	/* not RECENT */
	IMAP_SEARCH_BEFORE,	/* internal date < .days */
	IMAP_SEARCH_ON,
	IMAP_SEARCH_SINCE,	/* internal date >= .days */
	IMAP_SEARCH_SENTBEFORE,	/* Date: header's date, same rules */
	IMAP_SEARCH_SENTON,
	IMAP_SEARCH_SENTSINCE,
	IMAP_SEARCH_LARGER,	/* size > .number */
	IMAP_SEARCH_SMALLER,	/* size < .number */
	IMAP_SEARCH_HEADER,	/* .header contains .str (BCC CC FROM
				 * SUBJECT TO become HEADER with that name) */
	IMAP_SEARCH_BODY,	/* body contains .str */
	IMAP_SEARCH_TEXT,	/* header or body contains .str */
	IMAP_SEARCH_SEQSET,	/* sequence number in .seqset */
	IMAP_SEARCH_UID,	/* UID in .seqset */
	IMAP_SEARCH_MODSEQ,	/* modseq >= .number */
	IMAP_SEARCH_EMAILID,	/* the message's email id is .number */
	IMAP_SEARCH_THREADID,	/* THREADID: no thread ids: never */
};

struct imap_search_key {
	enum imap_search_key_type type;
	struct imap_search_key *first_child;	/* AND, OR, NOT */
	struct imap_search_key *next;		/* sibling */
	unsigned int flags;		/* IMAP_FLAG_* (FLAGS_SET/UNSET) */
	const char *header;		/* HEADER: field name, NUL-terminated */
	/* FROM TO CC BCC: the addresses as parsed are matched, not the
	 * raw text (RFC 3501 6.4.4; address_contains) */
	bool address;
	const char *str;		/* string argument, NUL-terminated */
	size_t str_len;
	int32_t days;			/* date keys: days since 1970-01-01 */
	uint64_t number;		/* LARGER, SMALLER, MODSEQ */
	struct imap_seqset_spec seqset;	/* SEQSET, UID (arrays in arena) */
};

/* ESEARCH RETURN options (RFC 4731). */
#define IMAP_SEARCH_RETURN_MIN 0x01u
#define IMAP_SEARCH_RETURN_MAX 0x02u
#define IMAP_SEARCH_RETURN_COUNT 0x04u
#define IMAP_SEARCH_RETURN_ALL 0x08u
/* SEARCHRES (RFC 5182): keep the result as "$"; alone, no ESEARCH. */
#define IMAP_SEARCH_RETURN_SAVE 0x10u

struct imap_search_program {
	struct imap_search_key *root;	/* an AND node */
	bool has_return;		/* RETURN (...) was given: ESEARCH */
	unsigned int return_opts;	/* IMAP_SEARCH_RETURN_* */
	bool uses_modseq;		/* a MODSEQ key: add (MODSEQ n) */
	bool needs_headers;		/* HEADER/SENT* keys present */
	bool needs_body;		/* BODY/TEXT keys present */
	unsigned int key_count;
};

enum imap_search_error {
	IMAP_SEARCH_ERR_NONE = 0,
	IMAP_SEARCH_ERR_SYNTAX,		/* tag BAD */
	IMAP_SEARCH_ERR_BADCHARSET,	/* tag NO [BADCHARSET (UTF-8 US-ASCII)] */
};

/*
 * Parses args[0..count) (everything after SEARCH, or after UID SEARCH).
 * 0 ok; -1 with *error_code_r and a static *error_r.
 */
int imap_search_parse(const struct imap_arg *args, size_t count,
    struct arena *arena, struct imap_search_program **prog_r,
    enum imap_search_error *error_code_r, const char **error_r);

/* Parses a RETURN option list (the LIST arg after RETURN). Empty list ->
 * IMAP_SEARCH_RETURN_ALL. 0 ok; -1 with a static *error_r. */
int imap_search_parse_return(const struct imap_arg *list,
    unsigned int *opts_r, const char **error_r);

/*
 * One message as the server sees it. Plain fields are filled for every
 * message; callbacks are called only when a key needs them (see
 * needs_headers / needs_body) and may be NULL when the program does not.
 * Callbacks return 1 (yes), 0 (no) or -1 (error: the search fails).
 * Substring matching is the server's (case-insensitive, after MIME
 * decoding of the header or body, RFC 3501 says "substring").
 */
struct imap_search_message {
	uint32_t seq;
	uint32_t uid;
	uint32_t max_seq;		/* resolves '*' in sequence sets */
	uint32_t max_uid;		/* resolves '*' in UID sets */
	unsigned int flags;		/* IMAP_FLAG_*, RECENT included */
	uint64_t size;			/* RFC822.SIZE */
	uint64_t modseq;
	uint64_t email_id;		/* OBJECTID's EMAILID (RFC 8474) */
	int64_t internaldate;		/* UTC seconds */
	int internaldate_tz;		/* minutes east of UTC */
	void *ctx;			/* passed to every callback */
	/* Does the message have keyword kw (exact name, case-insensitive)? */
	int (*has_keyword)(void *ctx, const char *kw);
	/* Does some header field named name contain s? An empty s matches
	 * when the field exists. */
	int (*header_contains)(void *ctx, const char *name, const char *s,
	    size_t len);
	/* FROM / TO / CC / BCC: does an address of a field named name,
	 * written "Name <local@domain>" (mail_search_address_values),
	 * contain s? NULL: header_contains is asked instead. */
	int (*address_contains)(void *ctx, const char *name, const char *s,
	    size_t len);
	/* Does the body (text = false) or the whole message (text = true)
	 * contain s? */
	int (*body_contains)(void *ctx, bool text, const char *s, size_t len);
	/* The Date: header's time: 1 with *t_r and *tz_minutes_r set, 0 when missing or
	 * unparsable (such messages match no SENT* key). */
	int (*sent_date)(void *ctx, int64_t *t_r, int *tz_minutes_r);
	/* OBJECTID's THREADID as a number (imap_msgview_thread_id): 0 with
	 * *id_r set, -1 on error. NULL: THREADID matches nothing. */
	int (*thread_id)(void *ctx, uint64_t *id_r);
};

/* 1 match, 0 no match, -1 a callback failed. */
int imap_search_match(const struct imap_search_program *prog,
    const struct imap_search_message *msg);

/*
 * Whether the program may match a message of which absent(ctx, k) tells,
 * for text keys (HEADER, BODY, TEXT), that k's string is certainly not in
 * the message (the full-text index says so); other keys are taken as
 * unknown. false: the program certainly does not match (AND, OR and NOT
 * are followed in three-valued logic), so the matcher need not run; true:
 * run imap_search_match().
 */
bool imap_search_may_match(const struct imap_search_program *prog,
    bool (*absent)(void *ctx, const struct imap_search_key *k), void *ctx);

#endif
