/*
 * mail-parse — the incremental RFC 5322 / MIME structure parser.
 *
 * Run once per message at delivery (POP3 RETR, IMAP APPEND): feed the
 * bytes in chunks of any size as they arrive, then finish to get the
 * struct mail_message (mail-message.h) that mail_serialize() turns into the
 * blob the store keeps. The result does not depend on how the input was
 * split. Any input is accepted: broken mail gives a sensible structure
 * (docs/message-parser.md says which), never an error.
 *
 *	struct mail_parser *mp = mail_parser_new(NULL);
 *	mail_parser_feed(mp, chunk, chunk_len);   ... as often as needed
 *	struct mail_message *msg = mail_parser_finish(&mp);
 *	mail_serialize(msg, &blob);
 *	mail_message_free(&msg);
 *
 * Memory is bounded by the limits below, whatever the input: the parser
 * keeps one line prefix, the header fields it needs (each capped), and the
 * part table; never the message.
 */
#ifndef POPGATE_MAIL_PARSE_H
#define POPGATE_MAIL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "mail-message.h"

/* MIME parts per message (Dovecot's default too): 10,000 parts cost ~2 MB
 * of structure and ~1 MB of BODYSTRUCTURE. Later boundaries are body text
 * of the last part. */
#define MAIL_PARTS_MAX 10000
/* Nesting of multiparts and message/rfc822 parts; deeper ones are leaves. */
#define MAIL_DEPTH_MAX 100
/* Bytes kept of one header field value (a To: with 500,000 addresses is
 * cut here); the message bytes themselves are never cut. */
#define MAIL_FIELD_MAX (64 * 1024)
/* Bytes of strings kept for the whole structure (fields, parameters,
 * addresses); past it, further header fields are dropped. */
#define MAIL_STRUCT_MAX (16 * 1024 * 1024)
/* Longest boundary accepted (RFC 2046 allows 70; real mail exceeds it). */
#define MAIL_BOUNDARY_MAX 200

struct mail_parse_limits {
	uint32_t parts_max;
	uint32_t depth_max;
	size_t field_max;
	size_t struct_max;
	uint32_t addresses_max;
};

/* Fills in the defaults above. */
void mail_parse_limits_default(struct mail_parse_limits *lim);

struct mail_parser;

/* limits NULL: the defaults. Limits are copied. */
struct mail_parser *mail_parser_new(const struct mail_parse_limits *limits);
/* Consumes all len bytes (copying what it needs). */
void mail_parser_feed(struct mail_parser *mp, const void *data, size_t len);
/* Ends the input; returns the message (caller frees with
 * mail_message_free()) and frees the parser, setting *mpp to NULL. */
struct mail_message *mail_parser_finish(struct mail_parser **mpp);
/* Abandons a parse (connection lost mid-RETR). Accepts NULL. */
void mail_parser_free(struct mail_parser **mpp);

/* Whole-buffer convenience: new, one feed, finish. */
struct mail_message *mail_parse(const void *msg, size_t len,
    const struct mail_parse_limits *limits);

#endif
