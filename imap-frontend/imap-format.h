/*
 * imap-format — building IMAP response text (level 1: pure).
 *
 * Everything appends to a caller's struct strbuf; nothing is sent here.
 * Strings from the store or from messages go through imap_format_string()
 * and friends, which choose the form the grammar allows:
 *  - quoted "..." (with \\ and \" escaped) when the bytes have no CR, LF,
 *    NUL or 8-bit byte and are at most IMAP_FORMAT_MAX_QUOTED long;
 *  - a literal {n}CRLF<bytes> otherwise (a NUL inside a literal is not
 *    valid IMAP4rev1; callers pass message text that has none, or accept
 *    that clients see it);
 *  - atoms only where the grammar says astring (mailbox names in LIST).
 * Human text of status responses is cleaned: CR, LF, NUL and other
 * controls become spaces, so a peer's bytes cannot inject a response line.
 */
#ifndef POPGATE_IMAP_FORMAT_H
#define POPGATE_IMAP_FORMAT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf;

/* Longest string sent quoted; longer ones go as literals (Dovecot does
 * the same; clients parse a literal without scanning for escapes). */
#define IMAP_FORMAT_MAX_QUOTED 1024

/* System flag bits, shared by formatting, parsing and search. The first
 * five equal the store's STORE_FLAG_* so values pass through unchanged. */
#define IMAP_FLAG_SEEN 0x01u
#define IMAP_FLAG_ANSWERED 0x02u
#define IMAP_FLAG_FLAGGED 0x04u
#define IMAP_FLAG_DELETED 0x08u
#define IMAP_FLAG_DRAFT 0x10u
#define IMAP_FLAG_RECENT 0x20u	/* session state, never stored */
#define IMAP_FLAGS_STORABLE 0x1fu

/* string: quoted or literal. */
void imap_format_string(struct strbuf *sb, const char *s, size_t len);
void imap_format_strz(struct strbuf *sb, const char *s);
/* nstring: NIL for s == NULL, else as imap_format_string. */
void imap_format_nstring(struct strbuf *sb, const char *s, size_t len);
/* astring: a bare atom when every byte is an ASTRING-CHAR and the text
 * is not "NIL" (any case) or empty; else as imap_format_string. */
void imap_format_astring(struct strbuf *sb, const char *s, size_t len);
/* Always a literal {len}CRLF<bytes> (FETCH BODY[] data), NULs replaced
 * as imap_literal_bytes() says. */
void imap_format_literal(struct strbuf *sb, const char *s, size_t len);

/*
 * A literal is CHAR8 (RFC 3501 9: %x01-ff, no NUL); a stored message may
 * still hold NUL bytes (POP3 delivers what the upstream has). In
 * BODY[], RFC822 and the other non-BINARY items the server sends each NUL
 * as IMAP_LITERAL_NUL_SUBST, as Dovecot does: every size (RFC822.SIZE,
 * BODYSTRUCTURE, partial ranges) stays true and no other byte changes.
 * FETCH BINARY[] (RFC 3516, imap-fetch.c) sends the exact bytes in a
 * literal8 instead.
 */
#define IMAP_LITERAL_NUL_SUBST 0x80
/* Appends s[0..len) with each NUL replaced. */
void imap_literal_bytes(struct strbuf *sb, const char *s, size_t len);
/* Copies src[0..len) to dst with each NUL replaced. */
void imap_literal_copy(char *dst, const char *src, size_t len);

/* True when s[0..len) can be sent as an atom (1..n ATOM-CHARs). */
bool imap_is_atom(const char *s, size_t len);

/*
 * "(\Seen \Answered kw1 kw2)": the system flags in the order SEEN
 * ANSWERED FLAGGED DELETED DRAFT RECENT, then the keywords as given.
 */
void imap_format_flags(struct strbuf *sb, unsigned int flags,
    const char *const *keywords, size_t keyword_count);
/* The name of one system flag bit ("\\Seen"), NULL if not exactly one. */
const char *imap_flag_name(unsigned int flag);
/*
 * Classifies a flag as sent by a client (STORE, APPEND, SEARCH KEYWORD):
 * a system flag (any case; *flag_r set, *is_keyword_r false), or a keyword
 * (an atom not starting with '\\'; *is_keyword_r true). \Recent and other
 * '\\' names are -1 (RFC 3501: clients cannot set \Recent); so are
 * non-atoms. 0 ok, -1 with a static *error_r.
 */
int imap_flag_parse(const char *s, size_t len, unsigned int *flag_r,
    bool *is_keyword_r, const char **error_r);

/* "* " + printf text + CRLF. The text is not cleaned: only for text the
 * server itself composes from formatted parts. */
void imap_format_untagged(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * "<tag> <status> [<code>] <text>\r\n" (tag NULL -> "*"; code NULL or ""
 * -> none; code is e.g. "TRYCREATE" or "COPYUID 3 1:2 5:6", without the
 * brackets). text is cleaned of controls; tag and code must be valid.
 */
void imap_format_status(struct strbuf *sb, const char *tag,
    const char *status, const char *code, const char *text);
void imap_format_statusf(struct strbuf *sb, const char *tag,
    const char *status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* "+ text\r\n" (text cleaned; NULL -> "+ OK"). */
void imap_format_continuation(struct strbuf *sb, const char *text);

/*
 * INTERNALDATE: "\"dd-Mon-yyyy hh:mm:ss +zzzz\"" (with the quotes) of
 * UTC time t shown in zone tz_minutes east of UTC. Always 28 bytes of
 * RFC 3501 date-time: a zone beyond +-99:59 is shown as +0000, and times
 * outside years 0000..9999 are clamped to the nearest end.
 */
void imap_format_datetime(struct strbuf *sb, int64_t t, int tz_minutes);
/* SEARCH-style date "d-Mon-yyyy" of a day number (days since 1970). */
void imap_format_date(struct strbuf *sb, int32_t days);

#endif
