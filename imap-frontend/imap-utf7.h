/*
 * imap-utf7 — mailbox names: modified UTF-7 (RFC 3501 5.1.3) <-> UTF-8,
 * and the mailbox name rules of popgate (level 1: pure).
 *
 * The wire carries modified UTF-7; the store keeps UTF-8. Decoding is
 * strict: it rejects anything a correct encoder cannot produce, so every
 * name has exactly one wire form (no aliasing of mailboxes):
 *  - "&" not followed by "-" or by base64 then "-" (unterminated shift);
 *  - bad base64 characters, or leftover bits that are not zero, or a
 *    shift whose bytes do not make whole UTF-16 units;
 *  - empty shift "&-" is "&" itself (allowed); "&...-&...-" back to back
 *    (non-minimal: one shift should have held both) is rejected;
 *  - printable ASCII (0x20..0x7e) encoded in base64 is rejected;
 *  - unpaired or reversed UTF-16 surrogates, or U+0000;
 *  - bytes outside 0x20..0x7e in the raw (unshifted) text.
 * The encoder takes strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF)
 * and produces the minimal form.
 */
#ifndef POPGATE_IMAP_UTF7_H
#define POPGATE_IMAP_UTF7_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

/* Longest mailbox name in bytes of UTF-8; equals the store's
 * STORE_MAILBOX_NAME_MAX (LMDB keys are <= 511 bytes). */
#define IMAP_MAILBOX_NAME_MAX 400
/* Deepest hierarchy ("a/b/c" is 3); equals STORE_MAILBOX_DEPTH_MAX. */
#define IMAP_MAILBOX_DEPTH_MAX 32
/* Hierarchy delimiter (the store's STORE_MAILBOX_DELIM). */
#define IMAP_MAILBOX_DELIM '/'

/* Appends the UTF-8 form of the mUTF-7 name src[0..len) to dest.
 * 0 ok; -1 with a static *error_r (dest then holds partial output). */
int imap_utf7_to_utf8(const char *src, size_t len, struct strbuf *dest,
    const char **error_r);
/* Appends the mUTF-7 form of the UTF-8 name src[0..len) to dest.
 * 0 ok; -1 (invalid UTF-8 or NUL) with a static *error_r. */
int imap_utf8_to_utf7(const char *src, size_t len, struct strbuf *dest,
    const char **error_r);
/* True when src is valid strict modified UTF-7. */
bool imap_utf7_is_valid(const char *src, size_t len);
/* True when src is strict UTF-8 without NUL. */
bool imap_utf8_is_valid(const char *src, size_t len);

/*
 * Checks a UTF-8 mailbox name against popgate's rules (the store applies
 * the same): 1..IMAP_MAILBOX_NAME_MAX bytes of strict UTF-8; no control
 * characters (< 0x20, 0x7f); no '*' or '%' (LIST wildcards); no empty
 * component (leading, trailing or doubled '/'); no "." or ".." component;
 * no leading '~' (home-directory syntax of other servers); at most
 * IMAP_MAILBOX_DEPTH_MAX components. 0 ok; -1 with a static *error_r.
 */
int imap_mailbox_name_validate(const char *name, size_t len,
    const char **error_r);
/* True for "INBOX" in any case (the name only, not "INBOX/x"). */
bool imap_mailbox_is_inbox(const char *name, size_t len);

/*
 * Wire name -> store name in one step: decodes mUTF-7, validates, and
 * writes "INBOX" for any case of inbox as the first component ("inbox/x"
 * -> "INBOX/x"). Appends to dest; 0 ok, -1 with a static *error_r.
 */
/* The same for a client that enabled UTF8=ACCEPT (RFC 6855 3): the name
 * is UTF-8 as it stands (no mUTF-7 decoding: '&' is '&'); invalid UTF-8
 * is refused. */
int imap_mailbox_name_from_utf8(const char *src, size_t len,
    struct strbuf *dest, const char **error_r);
int imap_mailbox_name_from_wire(const char *src, size_t len,
    struct strbuf *dest, const char **error_r);

/*
 * LIST/LSUB pattern match (RFC 3501 6.3.8): '*' matches anything, '%'
 * anything but the delimiter '/'; other bytes match themselves exactly
 * (the caller folds INBOX case beforehand). Runs in
 * O(pattern x (name / 64 + delimiters)) time with O(name) memory after
 * collapsing wildcard runs, so hostile patterns like "*a*a*a*...b" cannot
 * make it exponential (a naive recursive matcher is) nor a LIST over
 * thousands of mailboxes slow. Both arguments are UTF-8 (or both mUTF-7).
 */
bool imap_mailbox_pattern_match(const char *pattern, size_t plen,
    const char *name, size_t nlen);

#endif
