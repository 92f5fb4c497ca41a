/*
 * imap-parse-state — the IMAP command parser's lifetime and memory (new,
 * free, reset, the literal buffer, wiping what was read before login) and
 * its error recovery: after a rejected command the parser skips to the end
 * of the line, skipping the bytes of any {n+} literal on the way. The
 * grammar itself is in imap-parse.c; see imap-parse.h.
 */
#include "imap-parse-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "strbuf.h"
#include "xmalloc.h"

void
imap_parse_limits_default(struct imap_parse_limits *limits)
{
	limits->max_line = IMAP_PARSE_MAX_LINE;
	limits->max_stream_literal = IMAP_PARSE_MAX_STREAM_LITERAL;
	limits->max_literal = IMAP_PARSE_MAX_LITERAL;
	limits->max_literal_preauth = IMAP_PARSE_MAX_LITERAL_PREAUTH;
	limits->max_command = IMAP_PARSE_MAX_COMMAND;
	limits->max_depth = IMAP_PARSE_MAX_DEPTH;
	limits->max_args = IMAP_PARSE_MAX_ARGS;
	limits->max_tag = IMAP_PARSE_MAX_TAG;
	limits->max_atom = IMAP_PARSE_MAX_ATOM;
	limits->max_quoted = IMAP_PARSE_MAX_QUOTED;
	limits->max_line_preauth = IMAP_PARSE_MAX_LINE_PREAUTH;
	limits->max_command_preauth = IMAP_PARSE_MAX_COMMAND_PREAUTH;
}

struct imap_parser *
imap_parser_new(const struct imap_parse_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	if (limits != NULL)
		p->limits = *limits;
	else
		imap_parse_limits_default(&p->limits);
	if (p->limits.max_depth == 0)
		p->limits.max_depth = 1;
	p->arena = arena_new(0);
	p->open = xcalloc(p->limits.max_depth + 1, sizeof(*p->open));
	p->state = PS_TAG;
	return p;
}

char *
imap_parser_take_literal(struct imap_parser *p, const char *str)
{
	for (size_t i = 0; i < p->owned_count; i++) {
		if (p->owned[i] == str) {
			char *data = p->owned[i];

			p->owned[i] = p->owned[--p->owned_count];
			return data;
		}
	}
	return NULL;
}

static void
free_owned(struct imap_parser *p)
{
	for (size_t i = 0; i < p->owned_count; i++)
		free(p->owned[i]);
	p->owned_count = 0;
	for (size_t i = 0; i < p->stream_count; i++)
		p->sink.discard(p->sink.ctx, p->streams[i]);
	p->stream_count = 0;
	imap_parse_stream_abort(p);
}

void
imap_parser_set_sink(struct imap_parser *p,
    const struct imap_literal_sink *sink)
{
	PG_ASSERT(p->stream_count == 0 && p->lit_handle == NULL);
	p->have_sink = sink != NULL;
	if (sink != NULL)
		p->sink = *sink;
	else
		memset(&p->sink, 0, sizeof(p->sink));
}

void *
imap_parser_take_stream(struct imap_parser *p, const void *handle)
{
	for (size_t i = 0; i < p->stream_count; i++) {
		if (p->streams[i] == handle) {
			void *h = p->streams[i];

			p->streams[i] = p->streams[--p->stream_count];
			return h;
		}
	}
	return NULL;
}

void
imap_parser_release(struct imap_parser *p)
{
	if (p->need_reset && p->state == PS_TAG)
		imap_parse_command_reset(p);
}

uint64_t
imap_parser_held(const struct imap_parser *p)
{
	uint64_t n = p->cmd_size;

	if (p->state == PS_LITERAL_DATA && !p->lit_stream)
		n += p->lit_size;
	return n;
}

void
imap_parse_stream_abort(struct imap_parser *p)
{
	if (p->lit_handle != NULL)
		p->sink.discard(p->sink.ctx, p->lit_handle);
	p->lit_handle = NULL;
	p->lit_stream = false;
}

enum imap_parse_result
imap_parse_defer_error(struct imap_parser *p, enum imap_parse_error_code code,
    const char *text)
{
	uint64_t rest = p->lit_size;

	imap_parse_stream_abort(p);
	p->def_code = code;
	p->def_text = text;
	p->def_have_tag = p->have_tag;
	snprintf(p->def_tag, sizeof(p->def_tag), "%s",
	    p->have_tag ? strbuf_str(&p->tag) : "");
	p->sk = SK_NONE;
	p->sk_n = rest;
	p->skipped = 0;
	p->skipped_line = 0;
	p->state = rest > 0 ? PS_SKIP_LITERAL : PS_SKIP;
	return IMAP_PARSE_NEED_MORE;
}

void
imap_parse_lit_free(struct imap_parser *p)
{
	free(p->lit_buf);
	p->lit_buf = NULL;
	p->lit_len = 0;
	p->lit_cap = 0;
}

/*
 * Appends literal bytes. The buffer doubles as data arrives but never
 * beyond the announced size (+1 for the NUL): memory follows what the
 * client sent, and a 64 MiB literal costs 64 MiB, not 128.
 */
void
imap_parse_lit_append(struct imap_parser *p, const void *data, size_t n)
{
	size_t need = p->lit_len + n + 1;

	if (need > p->lit_cap) {
		size_t cap = p->lit_cap < 4096 ? 4096 : p->lit_cap * 2;
		if (cap < need)
			cap = need;
		if (cap > p->lit_total + 1)
			cap = p->lit_total + 1;
		p->lit_buf = xrealloc(p->lit_buf, cap);
		p->lit_cap = cap;
	}
	memcpy(p->lit_buf + p->lit_len, data, n);
	p->lit_len += n;
}

static void
wipe_args(const struct imap_arg *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			wipe_args(args[i].list, args[i].list_count);
		else if (args[i].str != NULL)
			secure_zero((char *)args[i].str, args[i].len);
	}
}

/*
 * Input read before login may hold a password (LOGIN, AUTHENTICATE):
 * clear every copy the parser made (argument strings, literals, the token
 * and line buffer) before the memory is reused or freed (STYLE 13).
 */
static void
wipe_sensitive(struct imap_parser *p)
{
	if (!p->sensitive)
		return;
	wipe_args(p->args, p->arg_count);
	if (p->tok.data != NULL)
		secure_zero(p->tok.data, p->tok.cap);
	if (p->lit_buf != NULL)
		secure_zero(p->lit_buf, p->lit_len);
	p->sensitive = false;
}

/* Forgets the current command (and the last one's memory). */
void
imap_parse_command_reset(struct imap_parser *p)
{
	wipe_sensitive(p);
	arena_reset(p->arena);
	free_owned(p);
	strbuf_reset(&p->tok);
	strbuf_reset(&p->tag);
	strbuf_reset(&p->name);
	imap_parse_lit_free(p);
	p->have_tag = false;
	p->arg_count = 0;
	p->depth = 0;
	p->total_args = 0;
	p->cmd_size = 0;
	p->line_len = 0;
	p->lit_nul = false;
	p->need_reset = false;
	p->list_just_opened = false;
	p->lit_in_section = false;
	memset(&p->cmd, 0, sizeof(p->cmd));
	/* Keep a big token buffer from lingering after a huge line. */
	if (p->tok.cap > 64 * 1024)
		strbuf_free(&p->tok);
	if (p->arg_cap > 1024) {
		free(p->args);
		p->args = NULL;
		p->arg_cap = 0;
	}
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	wipe_sensitive(p);
	free_owned(p);
	free(p->owned);
	free(p->streams);
	arena_free(&p->arena);
	strbuf_free(&p->tok);
	strbuf_free(&p->tag);
	strbuf_free(&p->name);
	imap_parse_lit_free(p);
	free(p->args);
	free(p->open);
	free(p);
	*pp = NULL;
}

void
imap_parser_set_authenticated(struct imap_parser *p, bool authenticated)
{
	p->authenticated = authenticated;
}

void
imap_parser_set_literal8(struct imap_parser *p, bool allowed)
{
	p->literal8 = allowed;
}

void
imap_parser_reset(struct imap_parser *p)
{
	imap_parse_command_reset(p);
	p->state = PS_TAG;
	p->def_code = IMAP_PARSE_ERR_NONE;
	p->sk = SK_NONE;
	p->skipped = 0;
	p->skipped_line = 0;
	memset(&p->error, 0, sizeof(p->error));
}

const struct imap_parse_error *
imap_parser_get_error(const struct imap_parser *p)
{
	return &p->error;
}

/* ---- errors and resync ---------------------------------------------------- */

static void
prime_skip(struct imap_parser *p)
{
	p->sk = SK_NONE;
	p->sk_n = p->lit_size;
	p->sk_digits = p->lit_digits;
	p->sk_overflow = p->lit_overflow;
	switch (p->state) {
	case PS_LITERAL_SIZE:
		p->sk = SK_DIGITS;
		break;
	case PS_LITERAL_PLUS:
		p->sk = SK_PLUS;
		break;
	case PS_LITERAL_CR:
		p->sk = p->lit_plus ? SK_CLOSED : SK_NONE;
		break;
	case PS_LITERAL_LF:
		p->sk = p->lit_plus ? SK_CLOSED_CR : SK_NONE;
		break;
	default:
		break;
	}
}

enum imap_parse_result
imap_parse_perr(struct imap_parser *p, enum imap_parse_error_code code,
    const char *text)
{
	p->error.code = code;
	p->error.text = text;
	p->error.tag = p->have_tag ? strbuf_str(&p->tag) : NULL;
	prime_skip(p);
	p->state = PS_SKIP;
	p->skipped = 0;
	p->skipped_line = 0;
	return IMAP_PARSE_ERROR;
}

enum imap_parse_result
imap_parse_pfatal(struct imap_parser *p, enum imap_parse_error_code code,
    const char *text)
{
	p->error.code = code;
	p->error.text = text;
	p->error.tag = p->have_tag ? strbuf_str(&p->tag) : NULL;
	p->state = PS_FATAL;
	return IMAP_PARSE_FATAL;
}

static void
sk_feed(struct imap_parser *p, unsigned char c)
{
	if (c == '{') {
		p->sk = SK_DIGITS;
		p->sk_n = 0;
		p->sk_digits = 0;
		p->sk_overflow = false;
		return;
	}
	switch (p->sk) {
	case SK_DIGITS:
		if (c >= '0' && c <= '9') {
			unsigned int d = (unsigned int)(c - '0');
			if (p->sk_n > (UINT64_MAX - d) / 10)
				p->sk_overflow = true;
			else
				p->sk_n = p->sk_n * 10 + d;
			p->sk_digits++;
			return;
		}
		p->sk = c == '+' && p->sk_digits > 0 ? SK_PLUS : SK_NONE;
		return;
	case SK_PLUS:
		p->sk = c == '}' ? SK_CLOSED : SK_NONE;
		return;
	case SK_CLOSED:
		p->sk = c == '\r' ? SK_CLOSED_CR : SK_NONE;
		return;
	default:
		p->sk = SK_NONE;
		return;
	}
}

/*
 * Runs the resync loop over data[*pos..len). Returns NEED_MORE when it
 * needs more input (all consumed), DONE when the skipped command ended
 * (the parser is ready for the next one), FATAL on runaway input.
 */
enum imap_parse_result
imap_parse_skip_input(struct imap_parser *p, const unsigned char *data,
    size_t len, size_t *pos)
{
	size_t i = *pos;

	while (i < len) {
		if (p->state == PS_SKIP_LITERAL) {
			size_t n = len - i;
			if (n > p->sk_n)
				n = (size_t)p->sk_n;
			p->sk_n -= n;
			p->skipped += n;
			i += n;
			if (p->skipped > imap_parse_skip_limit(p)) {
				*pos = i;
				return imap_parse_pfatal(p,
				    IMAP_PARSE_ERR_RUNAWAY,
				    "Too much input after an error");
			}
			if (p->sk_n == 0) {
				p->state = PS_SKIP;
				p->sk = SK_NONE;
				p->skipped_line = 0;
			}
			continue;
		}
		unsigned char c = data[i++];
		p->skipped++;
		if (c == '\n') {
			bool lit = p->sk == SK_CLOSED || p->sk == SK_CLOSED_CR;
			if (lit && (p->sk_overflow ||
			    p->sk_n > imap_parse_skip_literal_max(p))) {
				*pos = i;
				return imap_parse_pfatal(p,
				    IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
				    "Non-synchronizing literal too large");
			}
			if (lit && p->sk_n > 0) {
				p->state = PS_SKIP_LITERAL;
				continue;
			}
			p->skipped_line = 0;
			p->sk = SK_NONE;
			if (lit)
				continue;
			/* The rejected command is over. */
			*pos = i;
			imap_parse_command_reset(p);
			p->state = PS_TAG;
			return IMAP_PARSE_DONE;
		}
		sk_feed(p, c);
		if (++p->skipped_line > imap_parse_line_limit(p) ||
		    p->skipped > imap_parse_skip_limit(p)) {
			*pos = i;
			return imap_parse_pfatal(p, IMAP_PARSE_ERR_RUNAWAY,
			    "Too much input after an error");
		}
	}
	*pos = i;
	return IMAP_PARSE_NEED_MORE;
}
