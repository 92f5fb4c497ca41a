/*
 * imap-trace — what a protocol trace shows of an IMAP session (level 1,
 * pure): the bytes each way cut into lines, with secrets and message
 * contents masked:
 *
 *  - LOGIN's password ("a1 LOGIN alice ****");
 *  - AUTHENTICATE's initial response and every SASL response line up to
 *    the command's tagged answer ("****");
 *  - every literal, both ways: APPEND's message, FETCH's bodies and
 *    headers, a LOGIN name or password sent as a literal — shown as
 *    "[literal N bytes]", never their bytes.
 *
 * A line longer than IMAP_TRACE_LINE_MAX is shown cut, with its length.
 * The scanner copies at most that much of a line and wipes its buffer
 * after each line (a LOGIN line holds a password until it is masked).
 *
 * One struct imap_trace per session; imap_trace_feed() takes bytes as
 * they were read (client) or written (server) in any pieces, and calls
 * emit once per line, in order.
 */
#ifndef POPGATE_IMAP_TRACE_H
#define POPGATE_IMAP_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a line a trace shows; the rest is counted, not kept. */
#define IMAP_TRACE_LINE_MAX 400
/* Longest tag remembered for the end of an AUTHENTICATE exchange. */
#define IMAP_TRACE_TAG_MAX 64

enum imap_trace_dir {
	IMAP_TRACE_CLIENT = 0,	/* "C": from the client */
	IMAP_TRACE_SERVER,	/* "S": to the client */
};

struct imap_trace_side {
	char line[IMAP_TRACE_LINE_MAX + 1];
	size_t len;		/* bytes kept in line */
	uint64_t total;		/* bytes of the line so far */
	char tail[24];		/* its last bytes, for a literal's "{N}" */
	size_t tail_len;
	uint64_t literal_left;	/* bytes of a literal still to pass */
	uint64_t literal_size;
};

struct imap_trace {
	struct imap_trace_side side[2];
	/* the tag of an AUTHENTICATE in progress ("" when none): client
	   lines are SASL responses until the server answers this tag */
	char sasl_tag[IMAP_TRACE_TAG_MAX + 1];
	/* a LOGIN continues after a literal: its rest is a secret, and so
	   are its literals' sizes */
	bool login_cont;
	bool literal_quiet;	/* the client literal now passing is one */
};

typedef void imap_trace_emit_fn(void *arg, enum imap_trace_dir dir,
    const char *text, size_t len);

void imap_trace_init(struct imap_trace *t);
void imap_trace_feed(struct imap_trace *t, enum imap_trace_dir dir,
    const void *data, size_t len, imap_trace_emit_fn *emit, void *arg);
/* Wipes what is buffered (a half line may hold a password). */
void imap_trace_clear(struct imap_trace *t);

#endif
