/*
 * mail-search — what SEARCH needs from a stored message and its blob,
 * without parsing the message again: decoded and case-folded header
 * values, the decoded text of each text part, and the substring matcher.
 *
 * Decoding: RFC 2047 encoded words and charsets to UTF-8 (mail-rfc2047.h),
 * base64 / quoted-printable bodies, then the part's charset (default
 * us-ascii; unknown charsets are passed through as UTF-8 with U+FFFD for
 * bad bytes). Folding: mail_utf8_casefold() (ASCII, Latin, Greek and
 * Cyrillic simple case folding; see mail-charset.h).
 */
#ifndef POPGATE_MAIL_SEARCH_H
#define POPGATE_MAIL_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail-message.h"

struct strbuf;

/*
 * Appends, for each field of header block hdr named name (any case), its
 * unfolded, RFC 2047-decoded UTF-8 value, case-folded when fold is true,
 * each followed by '\n'. Returns how many fields there were (0: absent,
 * which SEARCH HEADER needs to tell from an empty value).
 */
unsigned int mail_search_header_values(const char *hdr, size_t len,
    const char *name, bool fold, struct strbuf *out);

/*
 * SEARCH FROM / TO / CC / BCC (RFC 3501 6.4.4) look at the addresses as
 * parsed, not at the raw text (comments, quoting and folding would hide
 * "user@domain.org" in "<user (c)@ (c) domain.org>"). For each field of
 * hdr named name: its addresses parsed as ENVELOPE parses them
 * (mail-address.h), each written "Display Name <local@domain>" (the name
 * RFC 2047-decoded; a bare "local@domain" without one; a group as
 * "group: ...;"), joined by ", ", case-folded when fold, then '\n'.
 * Returns how many fields there were.
 */
unsigned int mail_search_address_values(const char *hdr, size_t len,
    const char *name, bool fold, struct strbuf *out);

/* Every field of hdr as "name: decoded value\n" (for SEARCH TEXT). */
void mail_search_header_text(const char *hdr, size_t len, bool fold,
    struct strbuf *out);

/* The top-level header block of data (the stored message msg describes);
 * NULL/0 if data is not the message the blob was made from. */
const char *mail_search_message_header(const void *data, size_t len,
    const struct mail_message *msg, size_t *hdr_len_r);

/* The unfolded, RFC 2047-decoded UTF-8 value of one header field (the
 * bytes after "name:"), case-folded when fold: what SEARCH HEADER and
 * TEXT match a needle against. */
void mail_search_field_value(const char *v, size_t len, bool fold,
    struct strbuf *out);

/* The part's header and body ranges lie within a message of len bytes. */
bool mail_search_part_in_bounds(const struct mail_part *p, size_t len);
/* A part SEARCH BODY / TEXT reads as text: a leaf of type text (or with
 * no usable Content-Type, which means text/plain). */
bool mail_search_part_is_text(const struct mail_part *p);
/*
 * Appends the text of part p of the stored message (data, len) as SEARCH
 * reads it: the body decoded (base64, quoted-printable), converted from
 * its charset to UTF-8 (no charset or an unknown one: the bytes with
 * invalid UTF-8 replaced), and a text/html part as its text
 * (mail-html.h). Nothing when the part lies outside len.
 */
void mail_search_part_text(const void *data, size_t len,
    const struct mail_part *p, struct strbuf *out);

/* Called once per text part with its whole decoded UTF-8 text. */
typedef void mail_search_text_cb(void *ctx, uint32_t part,
    const char *utf8, size_t len);

/*
 * Every part of the stored message (data, len) that msg (parsed or read
 * from its blob) describes and that SEARCH reads as text
 * (mail_search_part_is_text), in part order: cb with its
 * mail_search_part_text(), folded when fold. Returns -1 if len is not
 * the size msg was made from.
 */
int mail_search_body_text(const void *data, size_t len,
    const struct mail_message *msg, bool fold, mail_search_text_cb *cb,
    void *ctx);

/*
 * Case-insensitive substring test on UTF-8 text: true if needle occurs in
 * text once both are folded. An empty needle matches. For many texts and
 * one needle, fold the needle once and use mail_search_contains_folded().
 */
bool mail_search_match(const char *text, size_t text_len, const char *needle,
    size_t needle_len);
/* text is folded here; needle must be folded already. */
bool mail_search_contains_folded(const char *text, size_t text_len,
    const char *folded_needle, size_t needle_len);

/* Date: of the message for SENTBEFORE/SENTON/SENTSINCE; false if absent
 * or unreadable (the IMAP server then falls back to INTERNALDATE, as
 * Dovecot does). */
bool mail_search_sent_date(const struct mail_message *msg, int64_t *time_r,
    int32_t *tz_min_r);

#endif
