/*
 * mail-render — the IMAP text of ENVELOPE, BODY and BODYSTRUCTURE
 * (RFC 3501 7.4.2 and its formal syntax), from a struct mail_message (as
 * parsed or as read back from the blob), and the IMAP string rules.
 *
 * Everything appends to a struct strbuf (lib/strbuf.h) owned by the caller.
 */
#ifndef POPGATE_MAIL_RENDER_H
#define POPGATE_MAIL_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "mail-message.h"

struct strbuf;

/* Longest string sent quoted; longer ones go as literals. */
#define MAIL_RENDER_QUOTED_MAX 1024

/*
 * An IMAP string: quoted ("..." with \" and \\ escaped) when it is short
 * 7-bit text without CR or LF; otherwise a literal {n}\r\n followed by the
 * bytes. NUL bytes (which IMAP strings cannot hold) become spaces.
 */
void mail_render_imap_string(struct strbuf *out, const char *s, size_t len);
/* NULL renders as NIL, anything else as mail_render_imap_string(). */
void mail_render_imap_nstring(struct strbuf *out, const char *s);

/* "(date subject from sender reply-to to cc bcc in-reply-to message-id)";
 * Sender and Reply-To default to From when absent or empty (RFC 3501).
 * env NULL renders every member NIL. */
void mail_render_envelope(struct strbuf *out, const struct mail_envelope *env);

/* The message's ENVELOPE (that of parts[0]). */
void mail_render_message_envelope(struct strbuf *out,
    const struct mail_message *msg);

/*
 * BODYSTRUCTURE (extended true) or BODY (false) of the whole message.
 * A multipart without parts gets one empty text/plain part (as Dovecot
 * does; the grammar needs one). A multipart or message/rfc822 part that a
 * limit kept from being parsed is rendered as application/octet-stream.
 */
void mail_render_bodystructure(struct strbuf *out,
    const struct mail_message *msg, bool extended);

/* The same for the subtree of one part (its index in msg->parts). */
void mail_render_part_bodystructure(struct strbuf *out,
    const struct mail_message *msg, uint32_t part, bool extended);

#endif
