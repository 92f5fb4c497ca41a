/*
 * imap-parse — the incremental IMAP command parser (level 1: pure).
 *
 * Fed arbitrary slices of the client's byte stream, it parses one command
 * at a time into a tag, a command name and a tree of arguments:
 *
 *	struct imap_parser *p = imap_parser_new(NULL);
 *	for (;;) {
 *		size_t used;
 *		const struct imap_command *cmd;
 *		enum imap_parse_result r =
 *		    imap_parser_feed(p, data, len, &used, &cmd);
 *		data += used; len -= used;
 *		switch (r) {
 *		case IMAP_PARSE_NEED_MORE: wait for more bytes;
 *		case IMAP_PARSE_NEED_CONTINUATION: send "+ OK\r\n", go on;
 *		case IMAP_PARSE_DONE: run cmd (valid until the next feed);
 *		case IMAP_PARSE_ERROR: send "<tag|*> BAD <text>", go on feeding;
 *		case IMAP_PARSE_FATAL: send "* BYE <text>", close;
 *		}
 *	}
 *
 * The parser never touches a socket; it keeps everything it needs between
 * calls in its struct, so any split of the input gives the same results
 * (tests feed every command at every split point).
 *
 * Grammar accepted (RFC 3501 section 9, RFC 7888 LITERAL+, RFC 3516):
 *   command  = tag SP name *(SP arg) CRLF        (bare LF is an error)
 *   arg      = atom | number | quoted | literal | literal8 | NIL | list
 *   list     = "(" [arg *(SP arg)] ")"
 *   literal  = "{" digits ["+"] "}" CRLF <n bytes>; literal8 = "~" literal
 * - '~' is an ordinary ATOM-CHAR ("~foo" is an atom); only "~{" starts a
 *   literal8, and only when imap_parser_set_literal8() switched it on
 *   (RFC 3516: where BINARY is in effect). Without it "~{" is a syntax
 *   error, as any '{' inside an atom.
 * - Atoms are ATOM-CHARs plus ']' (astrings allow it), 7-bit only. An atom
 *   that starts with BODY[, BODY.PEEK[, BINARY[, BINARY.PEEK[ or
 *   BINARY.SIZE[ (any case) keeps spaces, parentheses and quoted strings
 *   up to the matching ']' so that BODY[HEADER.FIELDS (A B)]<0.10> is ONE
 *   atom; imap_parse_fetch_att() parses it. A header name sent there as a
 *   literal (header-fld-name is an astring) is folded into the atom as a
 *   quoted string; it may be at most max_quoted bytes. Sequence sets, numbers and
 *   fetch atts are atoms: the command handler knows what it expects.
 * - Quoted strings accept \\ and \" escapes only; CR, LF and NUL are
 *   errors; 8-bit bytes are accepted (UTF-8 search strings, as Dovecot).
 * - Literal sizes: 1..20 digits, leading zeros accepted ({007} is 7),
 *   anything over 2^64-1 or over the limit is an error. {n} (synchronising)
 *   returns NEED_CONTINUATION once "{n}CRLF" is read and accepted; {n+}
 *   never does. Literal bytes are copied verbatim (NUL allowed, flagged)
 *   and never parsed as syntax.
 * - "NIL" unquoted (any case) is IMAP_ARG_NIL; str still holds its text so
 *   an astring getter can take it as the mailbox name "NIL".
 *
 * Errors and resynchronisation (see docs/imap-parser.md):
 * - ERROR: the command is rejected (answer "tag BAD text", or "* BAD" when
 *   no valid tag was read; code IMAP_PARSE_ERR_LITERAL_TOO_BIG deserves a
 *   tagged NO [TOOBIG]). No "+" was or will be sent for it. The parser has
 *   consumed input up to the offending byte and now discards the rest of
 *   the command line by itself on the next feeds: it skips to the next LF,
 *   and when that line ended with a non-synchronising literal "{n+}" it
 *   skips exactly n bytes and then the rest of the next line, so literal
 *   contents are never read as commands. A line ending with "{n}" is not
 *   followed by literal bytes (the client waits for the "+" it never
 *   gets), so skipping ends at its LF.
 * - FATAL: the connection must be closed: a {n+} literal over the limit
 *   (the client sends the bytes regardless), or runaway input while
 *   resynchronising (more than max_line bytes of one line, or more than
 *   max_command bytes in all, skipped). After FATAL every call returns
 *   FATAL again.
 */
#ifndef POPGATE_IMAP_PARSE_H
#define POPGATE_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

/* ---- limits (defaults; each parser may override them) ------------------ */

/* Bytes of one physical line, CRLF included, literal data excluded;
 * Dovecot's imap_max_line_length, long enough for big UID sets. */
#define IMAP_PARSE_MAX_LINE (64 * 1024)
/* Line limit before login: a maximal RFC 2971 ID (30 pairs of a 30-octet
 * field and a 1024-octet value, quoted: about 32 KiB) fits, and so do
 * LOGIN / AUTHENTICATE PLAIN (SASL-IR) with long credentials; a stranger
 * still gets less rope than after login, and literals stay at 8 KiB. */
#define IMAP_PARSE_MAX_LINE_PREAUTH (40 * 1024)
/* Largest literal streamed to the caller's sink instead of memory: the
 * message of an APPEND (= the store's STORE_MESSAGE_SIZE_MAX). Its bytes
 * go to the sink as they arrive and never count as command memory. */
#define IMAP_PARSE_MAX_STREAM_LITERAL (64ull * 1024 * 1024)
/* Largest literal held in memory after login: a search string, a mailbox
 * name, a header name, an APPEND message when no sink is set. */
#define IMAP_PARSE_MAX_LITERAL (64ull * 1024)
/* Largest literal before login: only LOGIN/AUTHENTICATE credentials. */
#define IMAP_PARSE_MAX_LITERAL_PREAUTH (8ull * 1024)
/* All bytes of one command held in memory, literals included (streamed
 * ones excluded): the per-session cap on what a client makes us buffer. */
#define IMAP_PARSE_MAX_COMMAND (256 * 1024)
/* All bytes of one command before login: LOGIN with two credential
 * literals, or AUTHENTICATE with SASL-IR. Without it a stranger could make
 * the parser hold max_args literals of max_literal_preauth bytes each
 * (32 MiB) per connection. */
#define IMAP_PARSE_MAX_COMMAND_PREAUTH (64 * 1024)
/* Nesting of parenthesised lists; real commands need 3 or 4. */
#define IMAP_PARSE_MAX_DEPTH 16
/* Arguments (every atom, string and list counts) in one command;
 * bounds the tree built from thousands of tiny literals. */
#define IMAP_PARSE_MAX_ARGS 4096
/* Tag length; clients use short counters like "a0042". */
#define IMAP_PARSE_MAX_TAG 64
/* One atom (sequence sets and fetch atts are atoms): the line length. */
#define IMAP_PARSE_MAX_ATOM IMAP_PARSE_MAX_LINE
/* One quoted string: mailbox names, search strings, passwords. */
#define IMAP_PARSE_MAX_QUOTED 8192

struct imap_parse_limits {
	size_t max_line;
	uint64_t max_stream_literal;
	uint64_t max_literal;
	uint64_t max_literal_preauth;
	uint64_t max_command;
	unsigned int max_depth;
	unsigned int max_args;
	size_t max_tag;
	size_t max_atom;
	size_t max_quoted;
	/* Before login (0: same as max_line; never above max_line). */
	size_t max_line_preauth;
	/* Before login (0: same as max_command; never above max_command). */
	uint64_t max_command_preauth;
};

/* Fills *limits with the IMAP_PARSE_MAX_* defaults. */
void imap_parse_limits_default(struct imap_parse_limits *limits);

/* ---- the argument tree -------------------------------------------------- */

enum imap_arg_type {
	IMAP_ARG_ATOM = 0,	/* also numbers, sequence sets, fetch atts */
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,	/* {n}, {n+} or ~{n} (literal8) */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM, QUOTED, LITERAL, NIL: the bytes (unescaped for QUOTED),
	 * always NUL-terminated at str[len]; a literal may contain NULs. */
	const char *str;
	size_t len;
	/* LIST: the elements. */
	const struct imap_arg *list;
	size_t list_count;
	/* LITERAL only. */
	bool literal_plus;	/* was {n+} */
	bool literal8;		/* was ~{n} */
	bool has_nul;		/* contains a NUL byte */
	/* A literal that went to the sink (imap_parser_set_sink): str is
	 * "" and len 0; stream is the sink's handle, stream_size its size.
	 * NULL for every literal held in memory. */
	void *stream;
	uint64_t stream_size;
};

struct imap_command {
	const char *tag;	/* NUL-terminated */
	const char *name;	/* as sent; compare case-insensitively */
	const struct imap_arg *args;
	size_t arg_count;
	uint64_t size;		/* bytes the command took, literals included */
};

/* ---- typed access helpers (NULL-safe on arg; false on mismatch) ---------- */

/* An ATOM (not NIL). */
bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r);
/* An ATOM or NIL, as an atom: a flag or keyword, where "NIL" is just an
 * atom (RFC 3501 9: flag-keyword = atom). */
bool imap_arg_get_flag_atom(const struct imap_arg *arg, const char **str_r);
/* QUOTED or LITERAL. */
bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r,
    size_t *len_r);
/* ATOM, NIL (its text as sent: the mailbox "nil"), QUOTED or LITERAL. */
bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r,
    size_t *len_r);
/* QUOTED or LITERAL (str set), or NIL (*str_r = NULL, *len_r = 0). */
bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r,
    size_t *len_r);
/* An ATOM that is a number 0..4294967295 (RFC 3501 "number"). */
bool imap_arg_get_number(const struct imap_arg *arg, uint32_t *num_r);
/* An ATOM that is a 63-bit number (mod-sequence-value, RFC 7162). */
bool imap_arg_get_number64(const struct imap_arg *arg, uint64_t *num_r);
/* A LIST. */
bool imap_arg_get_list(const struct imap_arg *arg,
    const struct imap_arg **list_r, size_t *count_r);
/* An ATOM equal to word, case-insensitively. */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *word);

/* ---- the parser ---------------------------------------------------------- */

enum imap_parse_result {
	IMAP_PARSE_NEED_MORE = 0,	/* all input consumed; feed more */
	IMAP_PARSE_NEED_CONTINUATION,	/* send "+ ..." for a {n}; feed more */
	IMAP_PARSE_DONE,		/* *cmd_r is a whole command */
	IMAP_PARSE_ERROR,		/* reject the command (BAD/NO) */
	IMAP_PARSE_FATAL,		/* close the connection */
};

enum imap_parse_error_code {
	IMAP_PARSE_ERR_NONE = 0,
	IMAP_PARSE_ERR_SYNTAX,		/* BAD: malformed input */
	IMAP_PARSE_ERR_LINE_TOO_LONG,	/* BAD */
	IMAP_PARSE_ERR_TOO_LONG,	/* BAD: tag/atom/quoted over limit */
	IMAP_PARSE_ERR_TOO_DEEP,	/* BAD: list nesting */
	IMAP_PARSE_ERR_TOO_MANY_ARGS,	/* BAD */
	IMAP_PARSE_ERR_COMMAND_TOO_BIG,	/* BAD: total command size */
	IMAP_PARSE_ERR_LITERAL_TOO_BIG,	/* NO [TOOBIG]: {n} over the limit */
	IMAP_PARSE_ERR_LIMIT,		/* NO [LIMIT]: the sink refused (memory
					 * budget, spool full) */
	IMAP_PARSE_ERR_OVERQUOTA,	/* NO [OVERQUOTA]: the sink refused */
	/* fatal codes (result IMAP_PARSE_FATAL): */
	IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG,	/* {n+} over the limit */
	IMAP_PARSE_ERR_RUNAWAY,		/* resync skipped > max_command */
};

struct imap_parse_error {
	enum imap_parse_error_code code;
	/* Static human text, safe to send ("Invalid character in atom"). */
	const char *text;
	/* The tag when one was read completely and is valid, else NULL.
	 * Valid until the next feed or reset. */
	const char *tag;
};

struct imap_parser;

/* limits: NULL for the defaults; copied. Starts unauthenticated.
 * Input read while unauthenticated may hold a password: every copy the
 * parser made of it is cleared when the command's memory is reset (the
 * next feed, read_line or reset) or freed. */
struct imap_parser *imap_parser_new(const struct imap_parse_limits *limits);
/* Frees everything, sets *pp to NULL; accepts NULL. */
void imap_parser_free(struct imap_parser **pp);
/* Chooses max_literal / max_line / max_command (true) or the _preauth
 * limits (false) for literal headers, lines and commands read from now
 * on. */
void imap_parser_set_authenticated(struct imap_parser *p, bool authenticated);
/* Accepts "~{n}" literal8 arguments (true) or not (false, the default:
 * only a server that advertises BINARY switches it on). */
void imap_parser_set_literal8(struct imap_parser *p, bool allowed);
/* Forgets any partial command or resync state (after STARTTLS: discard
 * what was sent in clear). The last command's memory is freed. */
void imap_parser_reset(struct imap_parser *p);

/*
 * Parses data[0..len). *consumed_r: bytes used (all of them for
 * NEED_MORE; for NEED_CONTINUATION through the CRLF after "{n}"; for DONE
 * through the CRLF ending the command; for ERROR up to but not including
 * the offending byte, which the resync then reads -- except for errors
 * found once "{n}CRLF" is complete (LITERAL_TOO_BIG, COMMAND_TOO_BIG, a
 * literal size over 2^64), where the line is consumed and nothing is
 * skipped). Call again with the remaining bytes (len 0 is fine; an ERROR
 * may report 0 bytes used, the next call makes progress). For DONE, *cmd_r
 * points into the parser and stays valid until the next feed, read_line or
 * reset call; otherwise *cmd_r is NULL. Memory held between commands is
 * bounded by the limits.
 */
enum imap_parse_result imap_parser_feed(struct imap_parser *p,
    const void *data, size_t len, size_t *consumed_r,
    const struct imap_command **cmd_r);

/*
 * The literal sink: where the message literal of an APPEND goes instead of
 * memory, and who may refuse a literal before its bytes come. The parser
 * stays pure: it only calls these functions, on the feeding thread.
 *
 * start() is called for every literal whose header "{n}" / "{n+}" passed
 * the parser's own limits, before any "+" is asked for. stream is true for
 * a literal the parser will stream: after login, in APPEND, at the top
 * level, after the mailbox argument (the message). It returns
 * IMAP_PARSE_ERR_NONE to accept (for a stream, with *handle_r set), or
 * IMAP_PARSE_ERR_LIMIT / _OVERQUOTA / _LITERAL_TOO_BIG with a static
 * *text_r to refuse: a {n} is then answered at once (no "+"), a {n+}
 * after its bytes were skipped (they come anyway).
 * write() takes the stream's bytes as they arrive; an error code refuses
 * the rest (skipped, then the command is answered with the error).
 * discard() frees a handle the caller did not take (the command failed,
 * was reset, or the parser is freed).
 */
struct imap_literal_sink {
	void *ctx;
	enum imap_parse_error_code (*start)(void *ctx, uint64_t size,
	    bool stream, void **handle_r, const char **text_r);
	enum imap_parse_error_code (*write)(void *ctx, void *handle,
	    const void *data, size_t n, const char **text_r);
	void (*discard)(void *ctx, void *handle);
};

/* Sets the sink (copied; NULL: none, every literal is held in memory
 * under max_literal). */
void imap_parser_set_sink(struct imap_parser *p,
    const struct imap_literal_sink *sink);

/* Takes a streamed literal's handle (arg->stream of the last command)
 * away from the parser: the caller discards it from now on. */
void *imap_parser_take_stream(struct imap_parser *p, const void *handle);

/* The caller is done with the last command (DONE): its memory is freed
 * now rather than at the next feed, so an idle session holds nothing.
 * Its arguments are invalid from here on. */
void imap_parser_release(struct imap_parser *p);

/* Bytes the parser holds or has promised to accept for the command being
 * read (lines and literals in memory, the rest of an announced literal;
 * streamed bytes excluded): what a memory budget counts. */
uint64_t imap_parser_held(const struct imap_parser *p);

/*
 * Takes a literal of the last command (arg->str of an IMAP_ARG_LITERAL it
 * returned) away from the parser: the caller owns the buffer from now on
 * (free() it; it is NUL-terminated at arg->len) and it outlives the
 * command. For APPEND, whose message a job still needs after the handler
 * returns. NULL when str is not one of the command's literals.
 */
char *imap_parser_take_literal(struct imap_parser *p, const char *str);

/* The error of the last ERROR or FATAL result. */
const struct imap_parse_error *imap_parser_get_error(
    const struct imap_parser *p);

/*
 * Raw line mode, for an AUTHENTICATE response or "DONE" after IDLE: reads
 * one line (CRLF or bare LF ends it; neither is included in *line_r) of at
 * most max_line bytes. Returns NEED_MORE (all consumed, kept inside), DONE
 * (*line_r NUL-terminated, valid until the next call on p), ERROR (line
 * too long: the rest of it is skipped on later calls, like a command), or
 * FATAL (runaway). Only between commands (after DONE or ERROR).
 */
enum imap_parse_result imap_parser_read_line(struct imap_parser *p,
    const void *data, size_t len, size_t *consumed_r,
    const char **line_r, size_t *line_len_r);

/* ---- fetch attributes ----------------------------------------------------- */

/* Part path depth in BODY[1.2.3]; MIME nesting beyond this is truncated
 * by the MIME parser anyway. */
#define IMAP_SECTION_MAX_DEPTH 32
/* Largest part number in a section path (MIME parser's part limit). */
#define IMAP_SECTION_MAX_PART 10000
/* Header names in one HEADER.FIELDS list. */
#define IMAP_SECTION_MAX_FIELDS 256

enum imap_fetch_att_type {
	IMAP_FETCH_FLAGS = 0,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODY,		/* BODY without section: structure */
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_BODY_SECTION,	/* BODY[...] and BODY.PEEK[...] */
	IMAP_FETCH_BINARY,		/* BINARY[...] / BINARY.PEEK[...] */
	IMAP_FETCH_BINARY_SIZE,		/* BINARY.SIZE[...] */
	IMAP_FETCH_RFC822,		/* = BODY[], sets \Seen */
	IMAP_FETCH_RFC822_HEADER,	/* = BODY.PEEK[HEADER] */
	IMAP_FETCH_RFC822_TEXT,		/* = BODY[TEXT], sets \Seen */
	IMAP_FETCH_UID,
	IMAP_FETCH_MODSEQ,
	IMAP_FETCH_EMAILID,		/* RFC 8474 */
	IMAP_FETCH_THREADID,
	IMAP_FETCH_PREVIEW,		/* RFC 8970; "(LAZY)" may follow */
};

enum imap_section_kind {
	IMAP_SECTION_WHOLE = 0,		/* [] or [1.2]: the whole part */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,		/* needs a part path */
};

struct imap_section {
	unsigned int depth;			/* 0: the whole message */
	uint32_t path[IMAP_SECTION_MAX_DEPTH];	/* 1-based part numbers */
	enum imap_section_kind kind;
	/* HEADER.FIELDS[.NOT]: names as given (compare case-insensitively),
	 * NUL-terminated, in the arena passed to the parse call. */
	const char **fields;
	size_t field_count;
};

struct imap_fetch_att {
	enum imap_fetch_att_type type;
	bool peek;		/* BODY.PEEK / BINARY.PEEK: do not set \Seen */
	struct imap_section section;	/* BODY_SECTION, BINARY[_SIZE] */
	bool partial;
	/* <offset.length>: each a 32-bit number, length >= 1. Compute
	 * offset + length in 64 bits: it may exceed 2^32 - 1. */
	uint32_t partial_offset;
	uint32_t partial_length;
	/* The name to echo in the FETCH response, e.g. "BODY[HEADER]<0>"
	 * (upper-cased, without PEEK, with only the partial's offset). In
	 * the arena. */
	const char *response_name;
};

/* Parses one fetch att (an ATOM; macros ALL/FAST/FULL are not accepted
 * here). Memory from arena. 0 ok; -1 with a static *error_r. */
int imap_parse_fetch_att(const struct imap_arg *arg, struct arena *arena,
    struct imap_fetch_att *att_r, const char **error_r);

/*
 * Parses the FETCH command's att argument: a macro atom (ALL, FAST, FULL
 * expand as RFC 3501 says), one fetch-att atom, or a list of fetch-att
 * atoms (macros not allowed in a list). Array in the arena.
 */
int imap_parse_fetch_atts(const struct imap_arg *arg, struct arena *arena,
    struct imap_fetch_att **atts_r, size_t *count_r, const char **error_r);

/* ---- dates ------------------------------------------------------------------- */

/*
 * IMAP date "d-Mon-yyyy" or "dd-Mon-yyyy" (SEARCH; month names any case;
 * year 1..9999 -> *days_r = days since 1970-01-01, may be negative).
 */
int imap_parse_date(const char *s, size_t len, int32_t *days_r);
/*
 * date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (APPEND; day may be " d"); the
 * quotes are not part of s. *t_r: UTC seconds; *tz_minutes_r: the zone
 * offset east of UTC (+0200 -> 120).
 */
int imap_parse_datetime(const char *s, size_t len, int64_t *t_r,
    int *tz_minutes_r);
/* Days since 1970-01-01 of the civil date of t in zone tz_minutes. */
int32_t imap_date_days(int64_t t, int tz_minutes);

#endif
