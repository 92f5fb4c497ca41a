/*
 * mail-header — header blocks and MIME header fields.
 *
 * Iteration over a header block (RFC 5322 2.2, folded lines, bare LF,
 * obs-syntax whitespace before the colon), HEADER.FIELDS filtering for
 * FETCH, and parsing of Content-Type / Content-Disposition parameters with
 * RFC 2231 continuations. All pure: input is a byte slice.
 */
#ifndef POPGATE_MAIL_HEADER_H
#define POPGATE_MAIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail-message.h"

struct arena;
struct strbuf;

/* Parameters kept per Content-Type or Content-Disposition. */
#define MAIL_PARAMS_MAX 64
/* Raw name=value pairs looked at before RFC 2231 joining. */
#define MAIL_PARAMS_RAW_MAX 256
/* Highest RFC 2231 continuation number followed. */
#define MAIL_PARAM_SECTION_MAX 999
/* Content-Language tags kept. */
#define MAIL_LANGUAGES_MAX 32

struct mail_header_iter {
	const char *data;
	size_t len, pos;
};

struct mail_header_field {
	const char *name;	/* not NUL-terminated */
	size_t name_len;
	const char *value;	/* after the colon, folded, with the eol */
	size_t value_len;
	const char *raw;	/* the whole field, name through final eol */
	size_t raw_len;
};

/* hdr is a header block (it may include the empty line, or not). */
void mail_header_iter_init(struct mail_header_iter *it, const char *hdr,
    size_t len);
/* Next field; false at the end of the block. Lines that are not fields
 * (no colon) are skipped. */
bool mail_header_iter_next(struct mail_header_iter *it,
    struct mail_header_field *field_r);

/* s[pos] is '(': the position just after the comment that starts there
 * (comments nest, '\' quotes the next byte), or len if it never ends. */
size_t mail_skip_comment(const char *s, size_t len, size_t pos);

/* Appends value with CR and LF removed and outer whitespace trimmed. */
void mail_header_unfold(const char *value, size_t len, struct strbuf *out);

/*
 * FETCH BODY[HEADER.FIELDS (...)] / HEADER.FIELDS.NOT: appends the fields
 * of hdr whose names are (exclude: are not) in names[0..n), byte-exact, in
 * message order, then the empty line "\r\n" that ends a header. Names
 * compare case-insensitively.
 */
void mail_header_filter(const char *hdr, size_t len,
    const char *const *names, size_t n, bool exclude, struct strbuf *out);

/*
 * Content-Type value → type, subtype and parameters (arena strings).
 * Returns -1 when type or subtype is missing or not a token (the caller
 * applies the RFC 2045 defaults); parameters are parsed anyway.
 */
int mail_header_parse_content_type(struct arena *arena, const char *v,
    size_t len, const char **type_r, const char **subtype_r,
    struct mail_param **params_r, uint32_t *nparams_r);

/* Content-Disposition: value → disposition token and parameters; -1 when
 * there is no token. */
int mail_header_parse_disposition(struct arena *arena, const char *v,
    size_t len, const char **disp_r, struct mail_param **params_r,
    uint32_t *nparams_r);

/* Content-Language: comma-separated tags (at most MAIL_LANGUAGES_MAX). */
void mail_header_parse_languages(struct arena *arena, const char *v,
    size_t len, const char ***langs_r, uint32_t *n_r);

/* A token field (Content-Transfer-Encoding): first token, comments
 * skipped; NULL if none. */
const char *mail_header_parse_token(struct arena *arena, const char *v,
    size_t len);

/*
 * Appends the UTF-8 text of a parameter value: RFC 2231 extended values
 * (name ends in '*') are %-decoded and converted from their charset;
 * others are RFC 2047-decoded (mailers put encoded words in file names).
 */
void mail_param_value_utf8(const struct mail_param *param,
    struct strbuf *out);

#endif
