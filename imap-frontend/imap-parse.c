/*
 * imap-parse — the incremental IMAP command parser: its grammar; see
 * imap-parse.h. The parser's lifetime, memory and error recovery are in
 * imap-parse-state.c, typed argument access in imap-parse-args.c.
 *
 * One state machine over bytes. Tokens being read (tag, name, atom, quoted
 * string) accumulate in p->tok; finished arguments are pushed on p->args,
 * a flat stack in which an open list is a LIST placeholder followed by its
 * elements; ')' moves the elements into the arena. Literal data grows in
 * p->lit_buf as it arrives (memory follows what the client really sent, not
 * what its {n} announced) and is then owned by p->owned until the next
 * command starts.
 *
 * Errors never consume the offending byte: the parser switches to the
 * resync state (PS_SKIP) with its literal-header tracker primed from the
 * state it was in, and the skip loop then reads that byte too. So "{5+}"
 * split by an error anywhere is still recognised and its 5 bytes skipped.
 */
#include "imap-parse-private.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "strbuf.h"
#include "strnum.h"
#include "xmalloc.h"

/* ---- character classes ---------------------------------------------------- */

/* Bytes allowed in a generic atom: ATOM-CHAR plus ']' (astring), '%' and
 * '*' (list-wildcards, sequence sets) and '\' (flags). */
static bool
is_arg_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static bool
is_tag_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	switch (c) {
	case '(': case ')': case '{': case '%': case '*': case '"':
	case '\\': case '+':
		return false;
	default:
		return true;
	}
}

static bool
is_name_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* ---- building the tree ---------------------------------------------------- */

static struct imap_arg *
push_arg(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg *a;

	if (p->arg_count == p->arg_cap) {
		p->arg_cap = p->arg_cap < 16 ? 16 : p->arg_cap * 2;
		p->args = xreallocarray(p->args, p->arg_cap, sizeof(*p->args));
	}
	a = &p->args[p->arg_count++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	return a;
}

/* Checks the argument limit before an argument starts. */
static bool
arg_allowed(struct imap_parser *p)
{
	return ++p->total_args <= p->limits.max_args;
}

static void
finish_atom(struct imap_parser *p)
{
	struct imap_arg *a = push_arg(p, IMAP_ARG_ATOM);

	a->str = arena_strndup(p->arena, p->tok.data != NULL ? p->tok.data : "",
	    p->tok.len);
	a->len = p->tok.len;
	if (str_ieq(a->str, a->len, "NIL"))
		a->type = IMAP_ARG_NIL;
	strbuf_reset(&p->tok);
}

static void
finish_quoted(struct imap_parser *p)
{
	struct imap_arg *a = push_arg(p, IMAP_ARG_QUOTED);

	a->str = arena_strndup(p->arena, p->tok.data != NULL ? p->tok.data : "",
	    p->tok.len);
	a->len = p->tok.len;
	strbuf_reset(&p->tok);
}

static void
finish_literal(struct imap_parser *p)
{
	struct imap_arg *a = push_arg(p, IMAP_ARG_LITERAL);
	size_t len;
	char *data;

	if (p->lit_buf == NULL)
		p->lit_buf = xmalloc(1);
	data = p->lit_buf;
	len = p->lit_len;
	data[len] = '\0';
	p->lit_buf = NULL;
	p->lit_len = 0;
	p->lit_cap = 0;
	if (p->owned_count == p->owned_cap) {
		p->owned_cap = p->owned_cap < 8 ? 8 : p->owned_cap * 2;
		p->owned = xreallocarray(p->owned, p->owned_cap,
		    sizeof(*p->owned));
	}
	p->owned[p->owned_count++] = data;
	a->str = data;
	a->len = len;
	a->literal_plus = p->lit_plus;
	a->literal8 = p->lit8;
	a->has_nul = p->lit_nul;
	p->lit_nul = false;
}

/* A streamed literal is complete: its argument carries the handle. */
static void
finish_stream_literal(struct imap_parser *p)
{
	struct imap_arg *a = push_arg(p, IMAP_ARG_LITERAL);

	if (p->stream_count == p->stream_cap) {
		p->stream_cap = p->stream_cap < 2 ? 2 : p->stream_cap * 2;
		p->streams = xreallocarray(p->streams, p->stream_cap,
		    sizeof(*p->streams));
	}
	p->streams[p->stream_count++] = p->lit_handle;
	a->str = "";
	a->len = 0;
	a->stream = p->lit_handle;
	a->stream_size = p->lit_total;
	a->literal_plus = p->lit_plus;
	a->literal8 = p->lit8;
	p->lit_handle = NULL;
	p->lit_stream = false;
	p->lit_nul = false;
}

static void
close_list(struct imap_parser *p)
{
	size_t at = p->open[--p->depth];
	size_t n = p->arg_count - at - 1;
	struct imap_arg *list = NULL;

	if (n > 0) {
		list = arena_alloc(p->arena, n * sizeof(*list));
		memcpy(list, &p->args[at + 1], n * sizeof(*list));
	}
	p->args[at].list = list;
	p->args[at].list_count = n;
	p->arg_count = at + 1;
}

static void
finish_command(struct imap_parser *p)
{
	struct imap_arg *args = NULL;

	if (p->arg_count > 0) {
		args = arena_alloc(p->arena, p->arg_count * sizeof(*args));
		memcpy(args, p->args, p->arg_count * sizeof(*args));
	}
	p->cmd.tag = strbuf_str(&p->tag);
	p->cmd.name = strbuf_str(&p->name);
	p->cmd.args = args;
	p->cmd.arg_count = p->arg_count;
	p->cmd.size = p->cmd_size;
	p->need_reset = true;
	p->state = PS_TAG;
}

/* Does the atom so far name a fetch att whose '[' opens a section? */
static bool
atom_opens_section(const struct imap_parser *p)
{
	static const char *const names[] = {
		"BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (str_ieq(p->tok.data, p->tok.len, names[i]))
			return true;
	}
	return false;
}

/* ---- the main loop -------------------------------------------------------- */

/* What may follow the end of an argument (atom end, '"', ')', literal). */
static enum imap_parse_result
after_arg_byte(struct imap_parser *p, unsigned char c, bool *consumed)
{
	*consumed = true;
	switch (c) {
	case ' ':
		p->state = PS_ARG_START;
		p->list_just_opened = false;
		return IMAP_PARSE_NEED_MORE;
	case ')':
		if (p->depth == 0) {
			*consumed = false;
			return imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
			    "Unexpected )");
		}
		close_list(p);
		p->state = PS_AFTER_ARG;
		return IMAP_PARSE_NEED_MORE;
	case '\r':
		p->state = PS_CR;
		return IMAP_PARSE_NEED_MORE;
	case '\n':
		*consumed = false;
		return imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
		    "Line ends in bare LF");
	default:
		*consumed = false;
		return imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
		    "Expected space, ) or end of line after argument");
	}
}

static void literal_start(struct imap_parser *p, bool lit8,
    bool in_section);

static enum imap_parse_result
arg_start_byte(struct imap_parser *p, unsigned char c)
{
	if (c == ')' && p->list_just_opened) {
		close_list(p);
		p->list_just_opened = false;
		p->state = PS_AFTER_ARG;
		return IMAP_PARSE_NEED_MORE;
	}
	p->list_just_opened = false;
	if (c == ' ' || c == ')' || c == '\r' || c == '\n')
		return imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
		    "Missing argument");
	if (!arg_allowed(p))
		return imap_parse_perr(p, IMAP_PARSE_ERR_TOO_MANY_ARGS,
		    "Too many arguments");
	switch (c) {
	case '(':
		if (p->depth >= p->limits.max_depth)
			return imap_parse_perr(p, IMAP_PARSE_ERR_TOO_DEEP,
			    "Lists nested too deeply");
		push_arg(p, IMAP_ARG_LIST);
		p->open[p->depth++] = p->arg_count - 1;
		p->list_just_opened = true;
		p->state = PS_ARG_START;
		return IMAP_PARSE_NEED_MORE;
	case '"':
		strbuf_reset(&p->tok);
		p->state = PS_QUOTED;
		return IMAP_PARSE_NEED_MORE;
	case '~':
		/* "~{" is a literal8 where BINARY is in effect; anywhere
		 * else '~' is an ATOM-CHAR ("~foo", RFC 3501 9) */
		if (!p->literal8)
			break;
		p->lit8 = true;
		p->state = PS_LITERAL8;
		return IMAP_PARSE_NEED_MORE;
	case '{':
		literal_start(p, false, false);
		return IMAP_PARSE_NEED_MORE;
	default:
		break;
	}
	if (!is_arg_atom_char(c))
		return imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
		    c >= 0x80 ? "8-bit byte in atom" :
		    "Invalid character in atom");
	strbuf_reset(&p->tok);
	strbuf_appendc(&p->tok, (char)c);
	p->state = PS_ATOM;
	return IMAP_PARSE_NEED_MORE;
}

/* Starts reading a literal header after its '{'. */
static void
literal_start(struct imap_parser *p, bool lit8, bool in_section)
{
	p->lit8 = lit8;
	p->lit_in_section = in_section;
	p->lit_size = 0;
	p->lit_digits = 0;
	p->lit_overflow = false;
	p->lit_plus = false;
	p->state = PS_LITERAL_SIZE;
}

/*
 * A literal's bytes are all read. An argument literal becomes an
 * argument; a header name sent as a literal inside BODY[HEADER.FIELDS
 * (...)] is folded into the section atom as a quoted string (escaping
 * '"' and '\'), which imap_parse_fetch_att() reads like any quoted name
 * and whose bytes it checks.
 */
static void
literal_done(struct imap_parser *p)
{
	if (p->lit_stream) {
		finish_stream_literal(p);
		p->state = PS_AFTER_ARG;
		return;
	}
	if (!p->lit_in_section) {
		finish_literal(p);
		p->state = PS_AFTER_ARG;
		return;
	}
	strbuf_appendc(&p->tok, '"');
	for (size_t i = 0; i < p->lit_len; i++) {
		if (p->lit_buf[i] == '"' || p->lit_buf[i] == '\\')
			strbuf_appendc(&p->tok, '\\');
		strbuf_appendc(&p->tok, p->lit_buf[i]);
	}
	strbuf_appendc(&p->tok, '"');
	imap_parse_lit_free(p);
	p->lit_nul = false;
	p->lit_in_section = false;
	p->state = PS_ATOM_BRACKET;
}

/*
 * A synchronizing literal's header is refused: the line is over and no
 * literal bytes will come (no continuation was sent), so the next byte
 * starts a new command.
 */
static enum imap_parse_result
header_error(struct imap_parser *p, enum imap_parse_error_code code,
    const char *text)
{
	p->error.code = code;
	p->error.text = text;
	p->error.tag = p->have_tag ? strbuf_str(&p->tag) : NULL;
	p->need_reset = true;
	p->state = PS_TAG;
	return IMAP_PARSE_ERROR;
}

/*
 * The literal header "{n}" or "{n+}" and its CRLF were read: decide.
 * Called with the LF consumed.
 */
/* The sink refused a literal: a {n} is answered at once, a {n+} once
 * its bytes (which come anyway) were skipped. */
static enum imap_parse_result
literal_refused(struct imap_parser *p, enum imap_parse_error_code code,
    const char *text)
{
	if (p->lit_plus)
		return imap_parse_defer_error(p, code, text);
	return header_error(p, code, text);
}

static enum imap_parse_result
literal_header_done(struct imap_parser *p)
{
	bool stream = p->lit_size > 0 && imap_parse_lit_streams(p);
	uint64_t limit = imap_parse_lit_limit_here(p);

	p->line_len = 0;
	if (p->lit_overflow && !p->lit_plus)
		return header_error(p, IMAP_PARSE_ERR_SYNTAX,
		    "Invalid literal size");
	if (p->lit_overflow || p->lit_size > limit) {
		if (p->lit_plus)
			return imap_parse_pfatal(p,
			    IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
			    "Non-synchronizing literal too large");
		return header_error(p, IMAP_PARSE_ERR_LITERAL_TOO_BIG,
		    "Literal too large");
	}
	if (p->lit_in_section && (p->lit_size > p->limits.max_quoted ||
	    p->tok.len + 2 * p->lit_size + 2 > p->limits.max_atom)) {
		/* a header name, not a message: no more than a quoted one */
		if (p->lit_plus)
			return imap_parse_pfatal(p,
			    IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
			    "Header name literal too long");
		return header_error(p, IMAP_PARSE_ERR_TOO_LONG,
		    "Header name literal too long");
	}
	if (!stream &&
	    p->cmd_size + p->lit_size > imap_parse_command_limit(p)) {
		if (p->lit_plus)
			return imap_parse_pfatal(p,
			    IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
			    "Command too large");
		return header_error(p, IMAP_PARSE_ERR_COMMAND_TOO_BIG,
		    "Command too large");
	}
	imap_parse_lit_free(p);
	p->lit_total = (size_t)p->lit_size;
	p->lit_nul = false;
	if (p->have_sink && (p->lit_size > 0 || stream)) {
		const char *text = "Literal refused";
		void *handle = NULL;
		enum imap_parse_error_code code = p->sink.start(p->sink.ctx,
		    p->lit_size, stream, &handle, &text);

		if (code != IMAP_PARSE_ERR_NONE)
			return literal_refused(p, code, text);
		if (stream) {
			PG_ASSERT(handle != NULL);
			p->lit_stream = true;
			p->lit_handle = handle;
		}
	}
	if (p->lit_size == 0) {
		literal_done(p);
	} else {
		p->state = PS_LITERAL_DATA;
	}
	return p->lit_plus ? IMAP_PARSE_NEED_MORE :
	    IMAP_PARSE_NEED_CONTINUATION;
}

/* Bytes of the literal being read: into memory, or to the sink. */
static enum imap_parse_result
literal_data(struct imap_parser *p, const unsigned char *data, size_t n)
{
	if (p->lit_stream) {
		const char *text = "Literal refused";
		enum imap_parse_error_code code = p->sink.write(p->sink.ctx,
		    p->lit_handle, data, n, &text);

		p->lit_size -= n;
		if (code != IMAP_PARSE_ERR_NONE)
			return imap_parse_defer_error(p, code, text);
	} else {
		if (memchr(data, '\0', n) != NULL)
			p->lit_nul = true;
		imap_parse_lit_append(p, data, n);
		p->lit_size -= n;
		p->cmd_size += n;
	}
	if (p->lit_size == 0)
		literal_done(p);
	return IMAP_PARSE_NEED_MORE;
}

/* A command whose error was deferred has been skipped: report it now. */
static enum imap_parse_result
deferred_error(struct imap_parser *p)
{
	p->error.code = p->def_code;
	p->error.text = p->def_text;
	p->error.tag = p->def_have_tag ? p->def_tag : NULL;
	p->def_code = IMAP_PARSE_ERR_NONE;
	p->need_reset = true;
	p->state = PS_TAG;
	return IMAP_PARSE_ERROR;
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *p, const void *vdata, size_t len,
    size_t *consumed_r, const struct imap_command **cmd_r)
{
	const unsigned char *data = vdata;
	size_t i = 0;
	enum imap_parse_result r = IMAP_PARSE_NEED_MORE;

	*cmd_r = NULL;
	if (p->state == PS_FATAL) {
		*consumed_r = 0;
		return IMAP_PARSE_FATAL;
	}
	if (p->need_reset)
		imap_parse_command_reset(p);
	if (!p->authenticated)
		p->sensitive = true;
	if (p->state == PS_LINE)
		p->state = PS_TAG;

	while (i < len) {
		if (p->state == PS_SKIP || p->state == PS_SKIP_LITERAL) {
			r = imap_parse_skip_input(p, data, len, &i);
			if (r == IMAP_PARSE_FATAL)
				goto out;
			if (r == IMAP_PARSE_DONE &&
			    p->def_code != IMAP_PARSE_ERR_NONE) {
				r = deferred_error(p);
				goto out;
			}
			r = IMAP_PARSE_NEED_MORE;
			continue;
		}
		if (p->state == PS_LITERAL_DATA) {
			size_t n = len - i;
			if (n > p->lit_size)
				n = (size_t)p->lit_size;
			(void)literal_data(p, data + i, n);
			i += n;
			continue;
		}

		unsigned char c = data[i];

		/* Sizes are checked before the byte is taken. */
		if (c != '\n' && p->line_len + 2 > imap_parse_line_limit(p)) {
			r = imap_parse_perr(p, IMAP_PARSE_ERR_LINE_TOO_LONG,
			    "Line too long");
			goto out;
		}
		if (p->cmd_size + 1 > imap_parse_command_limit(p)) {
			r = imap_parse_perr(p, IMAP_PARSE_ERR_COMMAND_TOO_BIG,
			    "Command too large");
			goto out;
		}

		bool consumed = true;
		switch (p->state) {
		case PS_TAG:
			if (is_tag_char(c)) {
				if (p->tag.len >= p->limits.max_tag) {
					r = imap_parse_perr(p,
					    IMAP_PARSE_ERR_TOO_LONG,
					    "Tag too long");
					goto out;
				}
				strbuf_appendc(&p->tag, (char)c);
				break;
			}
			if (c == ' ' && p->tag.len > 0) {
				p->have_tag = true;
				p->state = PS_NAME;
				break;
			}
			if (p->tag.len == 0 && (c == '\r' || c == '\n'))
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Empty line");
			else if (c == '\r' || c == '\n')
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Missing command");
			else
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid character in tag");
			goto out;
		case PS_NAME:
			if (is_name_char(c)) {
				if (p->name.len >= p->limits.max_atom) {
					r = imap_parse_perr(p,
					    IMAP_PARSE_ERR_TOO_LONG,
					    "Command name too long");
					goto out;
				}
				strbuf_appendc(&p->name, (char)c);
				break;
			}
			if (p->name.len == 0) {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    c == '\r' || c == '\n' ? "Missing command" :
				    "Invalid character in command name");
				goto out;
			}
			if (c == ' ') {
				p->state = PS_ARG_START;
				break;
			}
			if (c == '\r') {
				p->state = PS_CR;
				break;
			}
			r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
			    c == '\n' ?
			    "Line ends in bare LF" :
			    "Invalid character in command name");
			goto out;
		case PS_ARG_START:
			r = arg_start_byte(p, c);
			if (r != IMAP_PARSE_NEED_MORE)
				goto out;
			break;
		case PS_AFTER_ARG:
			r = after_arg_byte(p, c, &consumed);
			if (r != IMAP_PARSE_NEED_MORE)
				goto out;
			break;
		case PS_ATOM:
			if (is_arg_atom_char(c)) {
				if (p->tok.len >= p->limits.max_atom) {
					r = imap_parse_perr(p,
					    IMAP_PARSE_ERR_TOO_LONG,
					    "Atom too long");
					goto out;
				}
				if (c == '[' && atom_opens_section(p))
					p->state = PS_ATOM_BRACKET;
				strbuf_appendc(&p->tok, (char)c);
				break;
			}
			if (c == ' ' || c == ')' || c == '\r' || c == '\n') {
				finish_atom(p);
				r = after_arg_byte(p, c, &consumed);
				if (r != IMAP_PARSE_NEED_MORE)
					goto out;
				break;
			}
			r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
			    c >= 0x80 ? "8-bit byte in atom" :
			    "Invalid character in atom");
			goto out;
		case PS_ATOM_BRACKET:
		case PS_ATOM_BRACKET_QUOTED:
		case PS_ATOM_BRACKET_QUOTED_ESC:
			if (c < 0x20 || c >= 0x7f) {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid character in section");
				goto out;
			}
			if (p->tok.len >= p->limits.max_atom) {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_TOO_LONG,
				    "Atom too long");
				goto out;
			}
			if (p->state == PS_ATOM_BRACKET_QUOTED_ESC)
				p->state = PS_ATOM_BRACKET_QUOTED;
			else if (p->state == PS_ATOM_BRACKET_QUOTED) {
				if (c == '\\')
					p->state = PS_ATOM_BRACKET_QUOTED_ESC;
				else if (c == '"')
					p->state = PS_ATOM_BRACKET;
			} else if (c == '"') {
				p->state = PS_ATOM_BRACKET_QUOTED;
			} else if (c == ']') {
				p->state = PS_ATOM;
			} else if (c == '{') {
				/* header-fld-name is an astring: a literal */
				literal_start(p, false, true);
				break;
			} else if (c == '[') {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid character in section");
				goto out;
			}
			strbuf_appendc(&p->tok, (char)c);
			break;
		case PS_QUOTED:
			if (c == '"') {
				finish_quoted(p);
				p->state = PS_AFTER_ARG;
				break;
			}
			if (c == '\\') {
				p->state = PS_QUOTED_ESC;
				break;
			}
			if (c == '\0' || c == '\r' || c == '\n') {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    c == '\0' ?
				    "NUL in quoted string" :
				    "Unterminated quoted string");
				goto out;
			}
			if (p->tok.len >= p->limits.max_quoted) {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_TOO_LONG,
				    "Quoted string too long");
				goto out;
			}
			strbuf_appendc(&p->tok, (char)c);
			break;
		case PS_QUOTED_ESC:
			if (c != '"' && c != '\\') {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid escape in quoted string");
				goto out;
			}
			if (p->tok.len >= p->limits.max_quoted) {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_TOO_LONG,
				    "Quoted string too long");
				goto out;
			}
			strbuf_appendc(&p->tok, (char)c);
			p->state = PS_QUOTED;
			break;
		case PS_LITERAL8:
			if (c != '{') {
				/* "~" then an atom: read c again as part of
				 * the atom "~..." */
				strbuf_reset(&p->tok);
				strbuf_appendc(&p->tok, '~');
				p->lit8 = false;
				p->state = PS_ATOM;
				consumed = false;
				break;
			}
			literal_start(p, true, false);
			break;
		case PS_LITERAL_SIZE:
			if (c >= '0' && c <= '9') {
				unsigned int d = (unsigned int)(c - '0');
				if (p->lit_size > (UINT64_MAX - d) / 10)
					p->lit_overflow = true;
				else
					p->lit_size = p->lit_size * 10 + d;
				p->lit_digits++;
				break;
			}
			if (p->lit_digits > 0 && c == '+') {
				p->lit_plus = true;
				p->state = PS_LITERAL_PLUS;
				break;
			}
			if (p->lit_digits > 0 && c == '}') {
				p->state = PS_LITERAL_CR;
				break;
			}
			r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
			    "Invalid literal size");
			goto out;
		case PS_LITERAL_PLUS:
			if (c != '}') {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid literal size");
				goto out;
			}
			if (p->lit_overflow ||
			    p->lit_size > imap_parse_lit_limit_here(p)) {
				i++;
				r = imap_parse_pfatal(p,
				    IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
				    "Non-synchronizing literal too large");
				goto out;
			}
			p->state = PS_LITERAL_CR;
			break;
		case PS_LITERAL_CR:
			if (c != '\r') {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    c == '\n' ?
				    "Line ends in bare LF" :
				    "Literal size must end the line");
				goto out;
			}
			p->state = PS_LITERAL_LF;
			break;
		case PS_LITERAL_LF:
			if (c != '\n') {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Bare CR in line");
				goto out;
			}
			i++;
			p->cmd_size++;
			r = literal_header_done(p);
			if (r != IMAP_PARSE_NEED_MORE)
				goto out;
			continue;
		case PS_CR:
			if (c != '\n') {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Bare CR in line");
				goto out;
			}
			if (p->depth > 0) {
				r = imap_parse_perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Missing ) at end of line");
				goto out;
			}
			i++;
			p->cmd_size++;
			finish_command(p);
			*cmd_r = &p->cmd;
			r = IMAP_PARSE_DONE;
			goto out;
		case PS_SKIP:
		case PS_SKIP_LITERAL:
		case PS_LITERAL_DATA:
		case PS_LINE:
		case PS_FATAL:
			PG_ASSERT(!"unreachable parser state");
		}
		if (consumed) {
			i++;
			p->line_len++;
			p->cmd_size++;
		}
	}
	r = IMAP_PARSE_NEED_MORE;
out:
	*consumed_r = i;
	return r;
}

enum imap_parse_result
imap_parser_read_line(struct imap_parser *p, const void *vdata, size_t len,
    size_t *consumed_r, const char **line_r, size_t *line_len_r)
{
	const unsigned char *data = vdata;
	size_t i = 0;
	enum imap_parse_result r;

	*line_r = NULL;
	*line_len_r = 0;
	if (p->state == PS_FATAL) {
		*consumed_r = 0;
		return IMAP_PARSE_FATAL;
	}
	if (p->need_reset)
		imap_parse_command_reset(p);
	if (!p->authenticated)
		p->sensitive = true;
	if (p->state == PS_SKIP || p->state == PS_SKIP_LITERAL) {
		r = imap_parse_skip_input(p, data, len, &i);
		if (r != IMAP_PARSE_DONE) {
			*consumed_r = i;
			return r;
		}
	}
	if (p->state != PS_LINE) {
		strbuf_reset(&p->tok);
		p->state = PS_LINE;
	}
	while (i < len) {
		unsigned char c = data[i];
		if (c == '\n') {
			i++;
			if (p->tok.len > 0 && p->tok.data[p->tok.len - 1] == '\r')
				strbuf_truncate(&p->tok, p->tok.len - 1);
			p->state = PS_TAG;
			p->need_reset = true;
			*line_r = strbuf_str(&p->tok);
			*line_len_r = p->tok.len;
			*consumed_r = i;
			return IMAP_PARSE_DONE;
		}
		if (p->tok.len + 2 > imap_parse_line_limit(p)) {
			p->state = PS_TAG;	/* prime_skip: no literal state */
			*consumed_r = i;
			return imap_parse_perr(p, IMAP_PARSE_ERR_LINE_TOO_LONG,
			    "Line too long");
		}
		strbuf_appendc(&p->tok, (char)c);
		i++;
	}
	*consumed_r = i;
	return IMAP_PARSE_NEED_MORE;
}
