/*
 * imap-rawlog — a copy of every byte the server sends a session, one file
 * per session, as it is queued (before TLS): the protocol trace an admin
 * turns on to see what a client was told ([imap] rawlog_dir), and what
 * the integration tests pass through their response-grammar checker.
 *
 * Only the server's side is written: a client's LOGIN or AUTHENTICATE
 * never reaches the file. Message bodies do (FETCH), so the directory is
 * created 0700 and each file 0600; the option is off by default.
 *
 * Threads: the event loop's, like the sessions that own the logs.
 */
#ifndef POPGATE_IMAP_RAWLOG_H
#define POPGATE_IMAP_RAWLOG_H

#include <event2/buffer.h>

struct imap_rawlog;

/* Opens DIR/<pid>-<session>.out (creating DIR); NULL when it cannot,
 * after a logged warning: the session goes on without a trace. */
struct imap_rawlog *imap_rawlog_open(const char *dir, unsigned session_id);
/* Copies into the log what is added to out from now on (one output
 * buffer at a time: a STARTTLS session attaches its new buffer). */
void imap_rawlog_attach(struct imap_rawlog *rl, struct evbuffer *out);
/* Stops copying (before out is freed). Accepts NULL. */
void imap_rawlog_detach(struct imap_rawlog *rl);
/* Detaches, closes and sets *rlp to NULL. Accepts NULL. */
void imap_rawlog_close(struct imap_rawlog **rlp);

#endif
