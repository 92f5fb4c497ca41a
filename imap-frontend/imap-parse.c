/*
 * imap-parse — the incremental IMAP command parser; see imap-parse.h.
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
#include "imap-parse.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "strbuf.h"
#include "strnum.h"
#include "xmalloc.h"

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

void
imap_parse_limits_default(struct imap_parse_limits *limits)
{
	limits->max_line = IMAP_PARSE_MAX_LINE;
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

static void
free_owned(struct imap_parser *p)
{
	for (size_t i = 0; i < p->owned_count; i++)
		free(p->owned[i]);
	p->owned_count = 0;
}

static void
lit_free(struct imap_parser *p)
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
static void
lit_append(struct imap_parser *p, const void *data, size_t n)
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
static void
command_reset(struct imap_parser *p)
{
	wipe_sensitive(p);
	arena_reset(p->arena);
	free_owned(p);
	strbuf_reset(&p->tok);
	strbuf_reset(&p->tag);
	strbuf_reset(&p->name);
	lit_free(p);
	p->have_tag = false;
	p->arg_count = 0;
	p->depth = 0;
	p->total_args = 0;
	p->cmd_size = 0;
	p->line_len = 0;
	p->lit_nul = false;
	p->need_reset = false;
	p->list_just_opened = false;
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
	arena_free(&p->arena);
	strbuf_free(&p->tok);
	strbuf_free(&p->tag);
	strbuf_free(&p->name);
	lit_free(p);
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
imap_parser_reset(struct imap_parser *p)
{
	command_reset(p);
	p->state = PS_TAG;
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

static uint64_t
literal_limit(const struct imap_parser *p)
{
	return p->authenticated ? p->limits.max_literal :
	    p->limits.max_literal_preauth;
}

static size_t
line_limit(const struct imap_parser *p)
{
	if (p->authenticated || p->limits.max_line_preauth == 0 ||
	    p->limits.max_line_preauth > p->limits.max_line)
		return p->limits.max_line;
	return p->limits.max_line_preauth;
}

/* Bytes one command may hold in memory (literals included). */
static uint64_t
command_limit(const struct imap_parser *p)
{
	if (p->authenticated || p->limits.max_command_preauth == 0 ||
	    p->limits.max_command_preauth > p->limits.max_command)
		return p->limits.max_command;
	return p->limits.max_command_preauth;
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

static enum imap_parse_result
perr(struct imap_parser *p, enum imap_parse_error_code code, const char *text)
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

static enum imap_parse_result
pfatal(struct imap_parser *p, enum imap_parse_error_code code,
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
static enum imap_parse_result
skip_input(struct imap_parser *p, const unsigned char *data, size_t len,
    size_t *pos)
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
			if (p->skipped > p->limits.max_command) {
				*pos = i;
				return pfatal(p, IMAP_PARSE_ERR_RUNAWAY,
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
			if (lit && (p->sk_overflow || p->sk_n > literal_limit(p))) {
				*pos = i;
				return pfatal(p, IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
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
			command_reset(p);
			p->state = PS_TAG;
			return IMAP_PARSE_DONE;
		}
		sk_feed(p, c);
		if (++p->skipped_line > line_limit(p) ||
		    p->skipped > p->limits.max_command) {
			*pos = i;
			return pfatal(p, IMAP_PARSE_ERR_RUNAWAY,
			    "Too much input after an error");
		}
	}
	*pos = i;
	return IMAP_PARSE_NEED_MORE;
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
			return perr(p, IMAP_PARSE_ERR_SYNTAX, "Unexpected )");
		}
		close_list(p);
		p->state = PS_AFTER_ARG;
		return IMAP_PARSE_NEED_MORE;
	case '\r':
		p->state = PS_CR;
		return IMAP_PARSE_NEED_MORE;
	case '\n':
		*consumed = false;
		return perr(p, IMAP_PARSE_ERR_SYNTAX, "Line ends in bare LF");
	default:
		*consumed = false;
		return perr(p, IMAP_PARSE_ERR_SYNTAX,
		    "Expected space, ) or end of line after argument");
	}
}

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
		return perr(p, IMAP_PARSE_ERR_SYNTAX, "Missing argument");
	if (!arg_allowed(p))
		return perr(p, IMAP_PARSE_ERR_TOO_MANY_ARGS,
		    "Too many arguments");
	switch (c) {
	case '(':
		if (p->depth >= p->limits.max_depth)
			return perr(p, IMAP_PARSE_ERR_TOO_DEEP,
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
		p->lit8 = true;
		p->state = PS_LITERAL8;
		return IMAP_PARSE_NEED_MORE;
	case '{':
		p->lit8 = false;
		p->lit_size = 0;
		p->lit_digits = 0;
		p->lit_overflow = false;
		p->lit_plus = false;
		p->state = PS_LITERAL_SIZE;
		return IMAP_PARSE_NEED_MORE;
	default:
		if (!is_arg_atom_char(c))
			return perr(p, IMAP_PARSE_ERR_SYNTAX,
			    c >= 0x80 ? "8-bit byte in atom" :
			    "Invalid character in atom");
		strbuf_reset(&p->tok);
		strbuf_appendc(&p->tok, (char)c);
		p->state = PS_ATOM;
		return IMAP_PARSE_NEED_MORE;
	}
}

/*
 * The literal header "{n}" or "{n+}" and its CRLF were read: decide.
 * Called with the LF consumed.
 */
static enum imap_parse_result
literal_header_done(struct imap_parser *p)
{
	uint64_t limit = literal_limit(p);

	p->line_len = 0;
	if (p->lit_overflow && !p->lit_plus) {
		/* The line is over and no literal bytes will come. */
		p->error.code = IMAP_PARSE_ERR_SYNTAX;
		p->error.text = "Invalid literal size";
		p->error.tag = p->have_tag ? strbuf_str(&p->tag) : NULL;
		p->need_reset = true;
		p->state = PS_TAG;
		return IMAP_PARSE_ERROR;
	}
	if (p->lit_overflow || p->lit_size > limit) {
		if (p->lit_plus)
			return pfatal(p, IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
			    "Non-synchronizing literal too large");
		/* The line is over and no literal bytes will come. */
		p->error.code = IMAP_PARSE_ERR_LITERAL_TOO_BIG;
		p->error.text = "Literal too large";
		p->error.tag = p->have_tag ? strbuf_str(&p->tag) : NULL;
		p->need_reset = true;
		p->state = PS_TAG;
		return IMAP_PARSE_ERROR;
	}
	if (p->cmd_size + p->lit_size > command_limit(p)) {
		if (p->lit_plus)
			return pfatal(p, IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
			    "Command too large");
		p->error.code = IMAP_PARSE_ERR_COMMAND_TOO_BIG;
		p->error.text = "Command too large";
		p->error.tag = p->have_tag ? strbuf_str(&p->tag) : NULL;
		p->need_reset = true;
		p->state = PS_TAG;
		return IMAP_PARSE_ERROR;
	}
	lit_free(p);
	p->lit_total = (size_t)p->lit_size;
	p->lit_nul = false;
	if (p->lit_size == 0) {
		finish_literal(p);
		p->state = PS_AFTER_ARG;
	} else {
		p->state = PS_LITERAL_DATA;
	}
	return p->lit_plus ? IMAP_PARSE_NEED_MORE :
	    IMAP_PARSE_NEED_CONTINUATION;
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
		command_reset(p);
	if (!p->authenticated)
		p->sensitive = true;
	if (p->state == PS_LINE)
		p->state = PS_TAG;

	while (i < len) {
		if (p->state == PS_SKIP || p->state == PS_SKIP_LITERAL) {
			r = skip_input(p, data, len, &i);
			if (r == IMAP_PARSE_FATAL)
				goto out;
			r = IMAP_PARSE_NEED_MORE;
			continue;
		}
		if (p->state == PS_LITERAL_DATA) {
			size_t n = len - i;
			if (n > p->lit_size)
				n = (size_t)p->lit_size;
			if (memchr(data + i, '\0', n) != NULL)
				p->lit_nul = true;
			lit_append(p, data + i, n);
			p->lit_size -= n;
			p->cmd_size += n;
			i += n;
			if (p->lit_size == 0) {
				finish_literal(p);
				p->state = PS_AFTER_ARG;
			}
			continue;
		}

		unsigned char c = data[i];

		/* Sizes are checked before the byte is taken. */
		if (c != '\n' && p->line_len + 2 > line_limit(p)) {
			r = perr(p, IMAP_PARSE_ERR_LINE_TOO_LONG, "Line too long");
			goto out;
		}
		if (p->cmd_size + 1 > command_limit(p)) {
			r = perr(p, IMAP_PARSE_ERR_COMMAND_TOO_BIG,
			    "Command too large");
			goto out;
		}

		bool consumed = true;
		switch (p->state) {
		case PS_TAG:
			if (is_tag_char(c)) {
				if (p->tag.len >= p->limits.max_tag) {
					r = perr(p, IMAP_PARSE_ERR_TOO_LONG,
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
				r = perr(p, IMAP_PARSE_ERR_SYNTAX, "Empty line");
			else if (c == '\r' || c == '\n')
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Missing command");
			else
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid character in tag");
			goto out;
		case PS_NAME:
			if (is_name_char(c)) {
				if (p->name.len >= p->limits.max_atom) {
					r = perr(p, IMAP_PARSE_ERR_TOO_LONG,
					    "Command name too long");
					goto out;
				}
				strbuf_appendc(&p->name, (char)c);
				break;
			}
			if (p->name.len == 0) {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
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
			r = perr(p, IMAP_PARSE_ERR_SYNTAX, c == '\n' ?
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
					r = perr(p, IMAP_PARSE_ERR_TOO_LONG,
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
			r = perr(p, IMAP_PARSE_ERR_SYNTAX,
			    c >= 0x80 ? "8-bit byte in atom" :
			    "Invalid character in atom");
			goto out;
		case PS_ATOM_BRACKET:
		case PS_ATOM_BRACKET_QUOTED:
		case PS_ATOM_BRACKET_QUOTED_ESC:
			if (c < 0x20 || c >= 0x7f) {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid character in section");
				goto out;
			}
			if (p->tok.len >= p->limits.max_atom) {
				r = perr(p, IMAP_PARSE_ERR_TOO_LONG,
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
			} else if (c == '[' || c == '{') {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
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
				r = perr(p, IMAP_PARSE_ERR_SYNTAX, c == '\0' ?
				    "NUL in quoted string" :
				    "Unterminated quoted string");
				goto out;
			}
			if (p->tok.len >= p->limits.max_quoted) {
				r = perr(p, IMAP_PARSE_ERR_TOO_LONG,
				    "Quoted string too long");
				goto out;
			}
			strbuf_appendc(&p->tok, (char)c);
			break;
		case PS_QUOTED_ESC:
			if (c != '"' && c != '\\') {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid escape in quoted string");
				goto out;
			}
			if (p->tok.len >= p->limits.max_quoted) {
				r = perr(p, IMAP_PARSE_ERR_TOO_LONG,
				    "Quoted string too long");
				goto out;
			}
			strbuf_appendc(&p->tok, (char)c);
			p->state = PS_QUOTED;
			break;
		case PS_LITERAL8:
			if (c != '{') {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Expected { after ~");
				goto out;
			}
			p->lit_size = 0;
			p->lit_digits = 0;
			p->lit_overflow = false;
			p->lit_plus = false;
			p->state = PS_LITERAL_SIZE;
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
			r = perr(p, IMAP_PARSE_ERR_SYNTAX,
			    "Invalid literal size");
			goto out;
		case PS_LITERAL_PLUS:
			if (c != '}') {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid literal size");
				goto out;
			}
			if (p->lit_overflow || p->lit_size > literal_limit(p)) {
				i++;
				r = pfatal(p, IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,
				    "Non-synchronizing literal too large");
				goto out;
			}
			p->state = PS_LITERAL_CR;
			break;
		case PS_LITERAL_CR:
			if (c != '\r') {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX, c == '\n' ?
				    "Line ends in bare LF" :
				    "Literal size must end the line");
				goto out;
			}
			p->state = PS_LITERAL_LF;
			break;
		case PS_LITERAL_LF:
			if (c != '\n') {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
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
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
				    "Bare CR in line");
				goto out;
			}
			if (p->depth > 0) {
				r = perr(p, IMAP_PARSE_ERR_SYNTAX,
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
		command_reset(p);
	if (!p->authenticated)
		p->sensitive = true;
	if (p->state == PS_SKIP || p->state == PS_SKIP_LITERAL) {
		r = skip_input(p, data, len, &i);
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
		if (p->tok.len + 2 > line_limit(p)) {
			p->state = PS_TAG;	/* prime_skip: no literal state */
			*consumed_r = i;
			return perr(p, IMAP_PARSE_ERR_LINE_TOO_LONG,
			    "Line too long");
		}
		strbuf_appendc(&p->tok, (char)c);
		i++;
	}
	*consumed_r = i;
	return IMAP_PARSE_NEED_MORE;
}

/* ---- typed access ------------------------------------------------------------ */

bool
imap_arg_get_atom(const struct imap_arg *arg, const char **str_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return false;
	*str_r = arg->str;
	return true;
}

bool
imap_arg_get_string(const struct imap_arg *arg, const char **str_r,
    size_t *len_r)
{
	if (arg == NULL ||
	    (arg->type != IMAP_ARG_QUOTED && arg->type != IMAP_ARG_LITERAL))
		return false;
	*str_r = arg->str;
	*len_r = arg->len;
	return true;
}

bool
imap_arg_get_astring(const struct imap_arg *arg, const char **str_r,
    size_t *len_r)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST)
		return false;
	*str_r = arg->str;
	*len_r = arg->len;
	return true;
}

bool
imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r,
    size_t *len_r)
{
	if (arg != NULL && arg->type == IMAP_ARG_NIL) {
		*str_r = NULL;
		*len_r = 0;
		return true;
	}
	return imap_arg_get_string(arg, str_r, len_r);
}

bool
imap_arg_get_number(const struct imap_arg *arg, uint32_t *num_r)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM &&
	    str_to_u32(arg->str, arg->len, num_r) == 0;
}

bool
imap_arg_get_number64(const struct imap_arg *arg, uint64_t *num_r)
{
	uint64_t n;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM ||
	    str_to_u64(arg->str, arg->len, &n) < 0 || n > INT64_MAX)
		return false;
	*num_r = n;
	return true;
}

bool
imap_arg_get_list(const struct imap_arg *arg, const struct imap_arg **list_r,
    size_t *count_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_LIST)
		return false;
	*list_r = arg->list;
	*count_r = arg->list_count;
	return true;
}

bool
imap_arg_atom_equals(const struct imap_arg *arg, const char *word)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM &&
	    str_ieq(arg->str, arg->len, word);
}
