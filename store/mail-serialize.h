/*
 * mail-serialize — the compact blob the store keeps beside each message.
 *
 * mail_serialize() writes everything of a struct mail_message; the IMAP
 * server reads it back with mail_deserialize() at FETCH/SEARCH time and
 * never parses the message again. The format (docs/message-parser.md):
 * "PGMB", a version byte, then LEB128 varints and length-prefixed strings.
 *
 * Deserialisation treats the blob as hostile (a corrupted or truncated
 * file): every length and count is checked against the bytes left and the
 * parser's limits, the tree is checked (parents before children, offsets
 * inside the message, message/rfc822 parts with exactly one message child),
 * and any violation returns -1, never a crash.
 */
#ifndef POPGATE_MAIL_SERIALIZE_H
#define POPGATE_MAIL_SERIALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "mail-message.h"

struct strbuf;

#define MAIL_BLOB_MAGIC "PGMB"
#define MAIL_BLOB_VERSION 1

/* Largest blob mail_serialize() writes; equals the store's
 * STORE_STRUCTURE_SIZE_MAX, which refuses bigger ones (and with them the
 * delivery of the whole batch). */
#define MAIL_BLOB_MAX (16u * 1024 * 1024)

/*
 * Appends the blob of msg to out: at most MAIL_BLOB_MAX bytes, whatever
 * the message. The parser's MAIL_STRUCT_MAX budget keeps ordinary blobs
 * far below; when a hostile message still gets past it (thousands of
 * parts after the budget is spent), a skeleton is written instead: the
 * same tree, offsets and types, only each part's charset parameter, no
 * other strings, envelopes with NIL fields, and MAIL_MESSAGE_TRUNCATED.
 */
void mail_serialize(const struct mail_message *msg, struct strbuf *out);

/* Reads a blob; *msg_r is a new message (free with mail_message_free()).
 * 0 ok, -1 with *error_r set (static text). */
int mail_deserialize(const void *blob, size_t len,
    struct mail_message **msg_r, const char **error_r);

/*
 * The envelope of the message itself (the root part) from a blob, without
 * reading or checking the other parts: SORT and THREAD read it for every
 * message of a mailbox. Strings are allocated in arena (the caller's, to
 * reset between messages); *hdr_len_r (may be NULL): the length of the
 * message's header block, which starts at offset 0. The same checks as
 * mail_deserialize() for what it reads. 0, or -1 with *error_r.
 */
struct arena;
int mail_blob_envelope(const void *blob, size_t len, struct arena *arena,
    struct mail_envelope *env_r, uint64_t *hdr_len_r, const char **error_r);

#endif
