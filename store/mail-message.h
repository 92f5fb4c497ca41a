/*
 * mail-message — the parsed structure of one RFC 5322 / MIME message.
 *
 * A struct mail_message is produced once, at delivery, by the parser
 * (mail-parse.h) or read back from the blob the store keeps beside the
 * message (mail-serialize.h). Everything the IMAP server needs for FETCH
 * (ENVELOPE, BODY, BODYSTRUCTURE, section byte ranges) and SEARCH (dates,
 * part types and charsets) is in it; the message bytes are never parsed
 * again, except the small header block for HEADER.FIELDS and SEARCH HEADER.
 *
 * Ownership: the message owns every string and array it points to (one
 * arena). All pointers stay valid until mail_message_free(). A message is
 * never modified after it is returned, so it may be shared read-only.
 *
 * Offsets are byte offsets into the stored message exactly as it was fed to
 * the parser (no CRLF normalisation is done here: a store that wants
 * RFC 3501-exact sizes for bare-LF mail normalises before parsing).
 *
 * The tree: parts[0] is the message itself. A multipart part has children
 * (its body parts, in order); a message/rfc822 part that was parsed has
 * exactly one child, the encapsulated message, whose header is the inner
 * RFC 5322 header. Parent indexes are always smaller than child indexes.
 */
#ifndef POPGATE_MAIL_MESSAGE_H
#define POPGATE_MAIL_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAIL_NONE UINT32_MAX

/* A Content-Type or Content-Disposition parameter. RFC 2231 continuations
 * are joined; an extended (charset-tagged) value keeps its RFC 2231 form,
 * the name then ends in '*' and the value is charset'lang'%XX-encoded, as
 * IMAP clients expect in BODYSTRUCTURE. mail_param_value_utf8() (in
 * mail-header.h) gives the decoded UTF-8 text. */
struct mail_param {
	const char *name;
	const char *value;
};

/*
 * One ENVELOPE address. A group is a start marker (domain NULL, mailbox =
 * group name), its members, then an end marker (mailbox and domain NULL),
 * exactly as RFC 3501 renders groups. name and route may be NULL. A
 * mailbox without a domain gets MAIL_MISSING_DOMAIN, an address without a
 * local part MAIL_MISSING_MAILBOX, so that a NIL host always means a group.
 */
struct mail_address {
	const char *name;
	const char *route;
	const char *mailbox;
	const char *domain;
};

#define MAIL_MISSING_DOMAIN "MISSING_DOMAIN"
#define MAIL_MISSING_MAILBOX "MISSING_MAILBOX"

struct mail_address_list {
	struct mail_address *addrs;
	uint32_t count;
};

/* Raw (unfolded, trimmed, not RFC 2047-decoded) header values; NULL when
 * the header is absent. Only the first occurrence of each field counts,
 * except From, To, Cc and Bcc: their occurrences are joined into one
 * list (RFC 5322 4.5.3). */
struct mail_envelope {
	const char *date;
	const char *subject;
	const char *message_id;
	const char *in_reply_to;
	struct mail_address_list from, sender, reply_to, to, cc, bcc;
	/* Date: as a time (UTC seconds) and the zone it was written in. */
	bool date_valid;
	int64_t date_time;
	int32_t date_tz_min;
	/* Date of the topmost Received: header (after its last ';'). */
	bool received_valid;
	int64_t received_time;
	int32_t received_tz_min;
};

enum mail_part_flags {
	/* Parsed as a multipart with a usable boundary: children are parts. */
	MAIL_PART_MULTIPART = 1 << 0,
	/* message/rfc822 parsed: the single child is the inner message. */
	MAIL_PART_MESSAGE = 1 << 1,
	/* This node is a message (the root or an encapsulated one) and has
	 * an envelope. */
	MAIL_PART_IS_MESSAGE = 1 << 2,
	/* Content-Type absent or unparsable: RFC 2045 defaults applied. */
	MAIL_PART_DEFAULT_TYPE = 1 << 3,
	/* Its header block ended without the empty line (boundary, garbage
	 * line or end of message). */
	MAIL_PART_NO_BLANK_LINE = 1 << 4,
	/* A multipart or message/rfc822 part that a limit (nesting depth,
	 * part count, boundary length, encoding) kept from being parsed: it
	 * is rendered as a leaf application/octet-stream. */
	MAIL_PART_NOT_PARSED = 1 << 5,
};

struct mail_part {
	uint32_t parent;	/* MAIL_NONE for parts[0] */
	uint32_t first_child;	/* MAIL_NONE if none */
	uint32_t next_sibling;	/* MAIL_NONE if none */
	uint32_t nchildren;
	uint32_t depth;		/* 0 for the root */
	uint32_t flags;		/* enum mail_part_flags */

	uint64_t hdr_off, hdr_len;	/* header block, with its empty line */
	uint64_t body_off, body_len;	/* body (CRLF before a boundary
					 * belongs to the boundary) */
	uint64_t lines;			/* line ends inside the body */

	/* Content-Type; type/subtype never NULL. */
	const char *type, *subtype;
	struct mail_param *params;
	uint32_t nparams;
	const char *id, *description, *md5, *location;
	const char *encoding;		/* never NULL ("7bit" default) */
	const char *disposition;	/* NULL if no Content-Disposition */
	struct mail_param *disp_params;
	uint32_t ndisp_params;
	const char **languages;
	uint32_t nlanguages;

	/* Set on MAIL_PART_IS_MESSAGE nodes, NULL otherwise. */
	struct mail_envelope *envelope;
};

enum mail_message_flags {
	/* Some limit was reached (parts, nesting, memory): the structure is
	 * truncated as docs/message-parser.md describes; the bytes are all
	 * still covered by the root part. */
	MAIL_MESSAGE_TRUNCATED = 1 << 0,
};

struct arena;

struct mail_message {
	struct arena *arena;
	struct mail_part *parts;
	uint32_t nparts;
	uint32_t flags;
	uint64_t size;		/* bytes of the whole message */
};

/* Frees everything and sets *msgp to NULL; accepts NULL. */
void mail_message_free(struct mail_message **msgp);

/* Case-insensitive ASCII comparisons of a part's type. */
bool mail_part_is_type(const struct mail_part *part, const char *type,
    const char *subtype);
/* Value of parameter name (case-insensitive, exact name) or NULL. */
const char *mail_part_param(const struct mail_part *part, const char *name);

/* --- sections (RFC 3501 6.4.5) -------------------------------------- */

/* Longest part path accepted (1.2.3...): deeper than any parsed tree. */
#define MAIL_SECTION_PATH_MAX 128

enum mail_section_kind {
	MAIL_SECTION_PART = 0,	/* BODY[] or BODY[1.2]: the part's body */
	MAIL_SECTION_HEADER,	/* BODY[HEADER], BODY[1.HEADER] */
	MAIL_SECTION_TEXT,	/* BODY[TEXT], BODY[1.TEXT] */
	MAIL_SECTION_MIME,	/* BODY[1.MIME]: the part's MIME header */
};

/*
 * Parses "1.2.3" (len bytes, no trailing dot) into path[]; *n_r numbers.
 * Numbers are >= 1 and fit in 32 bits. 0 ok, -1 on bad syntax.
 */
int mail_section_path_parse(const char *s, size_t len, uint32_t *path,
    size_t path_max, size_t *n_r, const char **error_r);

/*
 * The exact byte range of a section. path/npath is the part path (npath 0
 * for the message itself). For HEADER.FIELDS[.NOT] use MAIL_SECTION_HEADER
 * and filter the bytes with mail_header_filter() (mail-header.h).
 * BODY[] of the whole message (npath 0, MAIL_SECTION_PART) is 0..size.
 * Returns -1 when the section does not exist (the IMAP server then sends
 * an empty string, as RFC 3501 allows for a nonexistent section).
 */
int mail_section_range(const struct mail_message *msg, const uint32_t *path,
    size_t npath, enum mail_section_kind kind, uint64_t *off_r,
    uint64_t *len_r, const char **error_r);

/* Index of the part a path names (npath 0: the root); -1 if none. */
int mail_section_find(const struct mail_message *msg, const uint32_t *path,
    size_t npath, uint32_t *index_r);

/* Clamps a partial fetch <origin.count> to a range: off_r and len_r become
 * the sub-range (len 0 when origin is past the end). */
void mail_range_partial(uint64_t off, uint64_t len, uint64_t origin,
    uint64_t count, uint64_t *off_r, uint64_t *len_r);

/*
 * INTERNALDATE: the date of the topmost Received: header, else Date:, else
 * fallback (the arrival time the caller gives). *tz_min_r gets the zone.
 */
time_t mail_message_internaldate(const struct mail_message *msg,
    time_t fallback, int *tz_min_r);

#endif
