/*
 * imap-parse-private — the parser state shared by the files of the IMAP
 * command parser (imap-parse.c, imap-parse-state.c). Not for other modules:
 * they use imap-parse.h.
 */
#ifndef IMAP_PARSE_PRIVATE_H
#define IMAP_PARSE_PRIVATE_H

#include "imap-parse.h"

#include <strings.h>

#include "arena.h"
#include "strbuf.h"

enum pstate {
	PS_TAG = 0,
	PS_NAME,
	PS_ARG_START,		/* an argument must start here */
	PS_AFTER_ARG,		/* SP, ')' or CRLF */
	PS_ATOM,
	PS_ATOM_BRACKET,	/* inside BODY[...] */
	PS_ATOM_BRACKET_QUOTED,
	PS_ATOM_BRACKET_QUOTED_ESC,
	PS_QUOTED,
	PS_QUOTED_ESC,
	PS_LITERAL8,		/* after '~': '{' must follow */
	PS_LITERAL_SIZE,	/* digits after '{' */
	PS_LITERAL_PLUS,	/* after '+': '}' must follow */
	PS_LITERAL_CR,		/* after '}': CR must follow */
	PS_LITERAL_LF,		/* after '}' CR: LF must follow */
	PS_LITERAL_DATA,
	PS_CR,			/* CR at the end of the command: LF must follow */
	PS_SKIP,		/* resync: discarding to the end of the line */
	PS_SKIP_LITERAL,	/* resync: discarding a {n+} literal's bytes */
	PS_LINE,		/* raw line mode */
	PS_FATAL,
};

/* Literal-header tracker used while skipping. */
enum skstate {
	SK_NONE = 0,
	SK_DIGITS,
	SK_PLUS,
	SK_CLOSED,
	SK_CLOSED_CR,
};

struct imap_parser {
	struct imap_parse_limits limits;
	bool authenticated;
	enum pstate state;
	bool need_reset;	/* a command ended: clear on the next call */
	bool sensitive;		/* input read before login: wipe on reset */
	bool list_just_opened;	/* ')' is allowed in PS_ARG_START */
	bool literal8;		/* "~{" starts a literal8 (BINARY in effect) */
	bool lit_in_section;	/* the literal is a header name in BODY[...] */

	struct arena *arena;
	struct strbuf tok;
	struct strbuf tag;
	bool have_tag;
	struct strbuf name;

	struct imap_arg *args;	/* the stack of finished/open arguments */
	size_t arg_count;
	size_t arg_cap;
	size_t *open;		/* index of each open LIST placeholder */
	unsigned int depth;
	unsigned int total_args;

	uint64_t cmd_size;
	size_t line_len;

	/* literal being read */
	uint64_t lit_size;
	unsigned int lit_digits;
	bool lit_overflow;
	bool lit_plus;
	bool lit8;
	char *lit_buf;		/* literal data so far (not NUL-terminated) */
	size_t lit_len;
	size_t lit_cap;
	size_t lit_total;	/* announced size */
	bool lit_nul;
	char **owned;
	size_t owned_count;
	size_t owned_cap;
	/* streaming (imap_parser_set_sink) */
	struct imap_literal_sink sink;
	bool have_sink;
	bool lit_stream;	/* the literal being read goes to the sink */
	void *lit_handle;	/* its handle */
	void **streams;		/* handles of the command's streamed literals */
	size_t stream_count;
	size_t stream_cap;
	/* An error found while its command's bytes still come (a refused
	 * {n+} or a sink that failed mid-literal): reported once they are
	 * skipped. def_code is IMAP_PARSE_ERR_NONE when none is pending. */
	enum imap_parse_error_code def_code;
	const char *def_text;
	bool def_have_tag;
	char def_tag[IMAP_PARSE_MAX_TAG + 1];

	/* resync */
	enum skstate sk;
	uint64_t sk_n;
	unsigned int sk_digits;
	bool sk_overflow;
	uint64_t skipped;
	size_t skipped_line;

	struct imap_command cmd;
	struct imap_parse_error error;
};


static inline uint64_t
imap_parse_literal_limit(const struct imap_parser *p)
{
	return p->authenticated ? p->limits.max_literal :
	    p->limits.max_literal_preauth;
}

/* Would the literal whose header is being read go to the sink? The
 * message of an APPEND: after login, top level, after the mailbox. */
static inline bool
imap_parse_lit_streams(const struct imap_parser *p)
{
	return p->have_sink && p->authenticated && !p->lit_in_section &&
	    p->depth == 0 && p->arg_count >= 1 && p->name.len == 6 &&
	    strncasecmp(p->name.data, "APPEND", 6) == 0;
}

/* The size limit of the literal whose header is being read. */
static inline uint64_t
imap_parse_lit_limit_here(const struct imap_parser *p)
{
	return imap_parse_lit_streams(p) ? p->limits.max_stream_literal :
	    imap_parse_literal_limit(p);
}

/* The largest {n+} the resync skips rather than closing: the largest
 * literal a command may carry. */
static inline uint64_t
imap_parse_skip_literal_max(const struct imap_parser *p)
{
	uint64_t lit = imap_parse_literal_limit(p);

	if (p->have_sink && p->authenticated &&
	    p->limits.max_stream_literal > lit)
		lit = p->limits.max_stream_literal;
	return lit;
}

/* Bytes the resync may skip before it calls the input a runaway: the
 * command's memory limit plus two of the largest literals. */
static inline uint64_t
imap_parse_skip_limit(const struct imap_parser *p)
{
	return p->limits.max_command + 2 * imap_parse_skip_literal_max(p);
}

static inline size_t
imap_parse_line_limit(const struct imap_parser *p)
{
	if (p->authenticated || p->limits.max_line_preauth == 0 ||
	    p->limits.max_line_preauth > p->limits.max_line)
		return p->limits.max_line;
	return p->limits.max_line_preauth;
}

/* Bytes one command may hold in memory (literals included). */
static inline uint64_t
imap_parse_command_limit(const struct imap_parser *p)
{
	if (p->authenticated || p->limits.max_command_preauth == 0 ||
	    p->limits.max_command_preauth > p->limits.max_command)
		return p->limits.max_command;
	return p->limits.max_command_preauth;
}

/* Frees the literal buffer (imap-parse-state.c). */
void
imap_parse_lit_free(struct imap_parser *p);

/* Appends literal bytes, never growing past the announced size + 1. */
void
imap_parse_lit_append(struct imap_parser *p, const void *data, size_t n);

/* Forgets the current command (and the last one's memory). */
void
imap_parse_command_reset(struct imap_parser *p);

/* Records a command error and switches to resync; returns ERROR. The
 * offending byte is not consumed: the skip loop reads it. */
enum imap_parse_result
imap_parse_perr(struct imap_parser *p, enum imap_parse_error_code code,
    const char *text);

/* Records a fatal error (the connection must close); returns FATAL. */
enum imap_parse_result
imap_parse_pfatal(struct imap_parser *p, enum imap_parse_error_code code,
    const char *text);

/* Ends the literal being streamed: discards its handle (a failure). */
void
imap_parse_stream_abort(struct imap_parser *p);

/* The sink refused the rest of a literal (or all of a {n+}): skip its
 * remaining bytes and the rest of the command, then report code. */
enum imap_parse_result
imap_parse_defer_error(struct imap_parser *p, enum imap_parse_error_code code,
    const char *text);

/* Runs the resync loop over data[*pos..len): NEED_MORE (all consumed),
 * DONE (the skipped command ended) or FATAL (runaway input). */
enum imap_parse_result
imap_parse_skip_input(struct imap_parser *p, const unsigned char *data,
    size_t len, size_t *pos);

#endif
