/*
 * pop3-parse — pure, resumable parsing of what a POP3 server sends
 * (RFC 1939, 2449, 2595, 3206, 5034). Level 1: libc + lib/ only.
 *
 * Nothing here owns a socket or allocates on behalf of the peer: every
 * function works on a byte slice the caller holds, and every length the
 * server controls is checked against a named limit below before it is
 * trusted. Pointers returned into a slice are valid as long as the slice.
 *
 * Line framing: a response line ends with LF (CRLF or a bare LF, which some
 * servers send); the CR, if any, is not part of the line returned.
 */
#ifndef POPGATE_POP3_PARSE_H
#define POPGATE_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 2449 §4: a response line is at most 512 octets including CRLF. A
 * longer status line is a protocol error (the connection is closed with
 * that reason): accepting more would let a server grow our buffers. */
#define POP3_LINE_MAX 512
/* RFC 1939 §7: a unique-id is 1..70 characters in 0x21..0x7E. */
#define POP3_UIDL_MAX 70
/* Messages in one maildrop we are willing to track in one session. Each
 * costs a small struct; a million is far above any real mailbox. */
#define POP3_MSG_COUNT_MAX 1000000u
/* A size a server may announce (STAT/LIST); above this it is nonsense. */
#define POP3_MSG_SIZE_MAX ((uint64_t)1 << 40)
/* Seconds of LOGIN-DELAY we accept; larger values are clamped. */
#define POP3_LOGIN_DELAY_MAX (7 * 24 * 3600u)
/* An APOP timestamp (<...@...>) longer than this is ignored. */
#define POP3_APOP_TIMESTAMP_MAX 256

enum pop3_parse_ret {
	POP3_PARSE_ERROR = -1,
	POP3_PARSE_NEED_MORE = 0,
	POP3_PARSE_DONE = 1,
};

/*
 * Finds one line at the start of data[0..len). DONE: *line_len_r is the
 * length without CR/LF, *consumed_r includes the line ending. NEED_MORE:
 * no LF yet (and fewer than max bytes). ERROR: no LF within max bytes
 * (max counts the line ending too, so POP3_LINE_MAX for status lines).
 */
enum pop3_parse_ret pop3_parse_line(const char *data, size_t len, size_t max,
    size_t *line_len_r, size_t *consumed_r, const char **error_r);

/* RFC 2449 / 3206 extended response codes we act upon. */
enum pop3_resp_code {
	POP3_RESP_NONE = 0,
	POP3_RESP_IN_USE,	/* maildrop locked: retry later, not an auth error */
	POP3_RESP_LOGIN_DELAY,	/* logging in too often: wait LOGIN-DELAY */
	POP3_RESP_AUTH,		/* credentials are wrong: counts for the breaker */
	POP3_RESP_SYS_TEMP,	/* transient server problem */
	POP3_RESP_SYS_PERM,	/* permanent server problem */
	POP3_RESP_OTHER,	/* a code we do not know: treat as none */
};

struct pop3_status {
	bool ok;			/* +OK (true) or -ERR (false) */
	enum pop3_resp_code code;
	const char *text;		/* after the status word and code */
	size_t text_len;
};

/* Parses a status line (without CR/LF). -1 with *error_r when it starts
 * with neither "+OK" nor "-ERR" (followed by end or a space). */
int pop3_parse_status(const char *line, size_t len, struct pop3_status *st_r,
    const char **error_r);

/* A SASL continuation "+ base64" or "+" alone (RFC 5034 §4). True and the
 * payload (possibly empty) when line is one. */
bool pop3_parse_continuation(const char *line, size_t len,
    const char **payload_r, size_t *payload_len_r);

/* Copies the APOP timestamp "<...>" (with the brackets) from a greeting
 * into buf (size >= POP3_APOP_TIMESTAMP_MAX + 1). False when there is none
 * or it is malformed (no '@', control bytes, too long). */
bool pop3_parse_apop_timestamp(const char *line, size_t len, char *buf,
    size_t bufsize);

/* What CAPA told us. Zero-initialised means "nothing known". */
struct pop3_capa {
	bool seen;		/* a CAPA response was parsed */
	bool top, uidl, user, stls, pipelining, resp_codes, auth_resp_code;
	bool sasl_plain, sasl_login, sasl_cram_md5;
	bool sasl_scram_sha1, sasl_scram_sha256, sasl_xoauth2, sasl_oauthbearer;
	bool login_delay_set;
	uint32_t login_delay;	/* seconds, clamped to POP3_LOGIN_DELAY_MAX */
};

/* Feeds one line of a CAPA response (after unstuffing, without the
 * terminating "."). Unknown capabilities are ignored. */
void pop3_parse_capa_line(struct pop3_capa *capa, const char *line,
    size_t len);

/*
 * A line of a multi-line response read line by line (CAPA, LIST, UIDL,
 * TOP headers): true when it is the terminating ".". Otherwise the
 * byte-stuffing dot is removed by advancing *line / shrinking *len.
 */
bool pop3_multiline_unstuff(const char **line, size_t *len);

/* "+OK count size" → numbers; -1 with reason when missing, negative,
 * non-numeric, or over POP3_MSG_COUNT_MAX / POP3_MSG_SIZE_MAX. */
int pop3_parse_stat(const char *text, size_t len, uint32_t *count_r,
    uint64_t *size_r, const char **error_r);

/* A LIST line "msgno size" (also the single-line "+OK msgno size" text). */
int pop3_parse_list_line(const char *line, size_t len, uint32_t *msgno_r,
    uint64_t *size_r, const char **error_r);

/* Why a UIDL is not usable as a key; the client then uses its fallback. */
enum pop3_uidl_flaw {
	POP3_UIDL_OK = 0,
	POP3_UIDL_EMPTY,
	POP3_UIDL_TOO_LONG,
	POP3_UIDL_BAD_CHAR,	/* outside 0x21..0x7E: NUL, control, 8-bit */
};

/*
 * A UIDL line "msgno uid". -1 (with reason) only when msgno is not a valid
 * number; a malformed uid is returned with *flaw_r set, so that the client
 * can detect a server whose UIDLs are unusable and switch to the fallback
 * instead of failing the account. The uid slice points into line.
 */
int pop3_parse_uidl_line(const char *line, size_t len, uint32_t *msgno_r,
    const char **uid_r, size_t *uid_len_r, enum pop3_uidl_flaw *flaw_r,
    const char **error_r);
const char *pop3_uidl_flaw_str(enum pop3_uidl_flaw flaw);

/*
 * The RETR/TOP data reader: resumable, dot-unstuffing, byte-level (no line
 * buffer, so an endless line costs no memory). Data is passed through as
 * the server sent it (CRLF or bare LF, NUL bytes, 8-bit) minus the stuffing
 * dots and the terminating line. The terminator is a "." alone on a line
 * ended by CRLF or a bare LF; a "." that does not start a line is data.
 */
enum pop3_data_state {
	POP3_DATA_LINE_START = 0,
	POP3_DATA_MID,
	POP3_DATA_DOT,		/* '.' at line start seen */
	POP3_DATA_DOT_CR,	/* ".\r" at line start seen */
	POP3_DATA_END,
};

struct pop3_data {
	enum pop3_data_state state;
	uint64_t out_bytes;	/* data bytes produced so far */
	uint64_t lines;		/* lines completed so far */
};

void pop3_data_init(struct pop3_data *d);

/*
 * Consumes a prefix of in[0..len) (*consumed_r) and yields at most one
 * span of message data (*out_r, *out_len_r; may be 0 bytes, and may point
 * to a static "\r" rather than into in). Each call with len >= 1 either
 * consumes or yields, and never yields twice without consuming, so a loop
 * "while bytes remain and not DONE" terminates. Call again with the rest.
 * DONE once the terminator was consumed; NEED_MORE otherwise. Never fails: every byte sequence is a valid message.
 */
enum pop3_parse_ret pop3_data_parse(struct pop3_data *d, const char *in,
    size_t len, size_t *consumed_r, const char **out_r, size_t *out_len_r);

/* True when the terminator has been seen. A connection that ends before
 * that is an incomplete message: it must not be stored. */
bool pop3_data_done(const struct pop3_data *d);

/* Length of the header block of a message (up to and including the empty
 * line, CRLF or LF), or len when there is no empty line. */
size_t pop3_header_length(const char *msg, size_t len);

/* True when the header block of msg (pop3_header_length) has a field
 * named name (ASCII, case ignored) whose value, unfolded, holds something
 * other than white space. */
bool pop3_header_has_field(const char *msg, size_t len, const char *name);

#endif
