/* imap-trace — see imap-trace.h. */
#include "imap-trace.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"

void
imap_trace_init(struct imap_trace *t)
{
	memset(t, 0, sizeof(*t));
}

void
imap_trace_clear(struct imap_trace *t)
{
	secure_zero(t, sizeof(*t));
}

/* Skips an IMAP astring (atom, "quoted" or {literal}) at *p; false when
   there is none. */
static bool
skip_astring(const char **p, const char *end)
{
	const char *s = *p;

	if (s >= end)
		return false;
	if (*s == '"') {
		for (s++; s < end && *s != '"'; s++) {
			if (*s == '\\' && s + 1 < end)
				s++;
		}
		if (s >= end)
			return false;
		*p = s + 1;
		return true;
	}
	while (s < end && *s != ' ')
		s++;
	if (s == *p)
		return false;
	*p = s;
	return true;
}

static bool
word_is(const char *w, size_t len, const char *name)
{
	return len == strlen(name) && strncasecmp(w, name, len) == 0;
}

/* The literal announced at the end of a complete line ("{N}" or "{N+}"):
   its size, or -1. */
static int64_t
literal_at_end(const struct imap_trace_side *sd)
{
	const char *s = sd->tail, *end = sd->tail + sd->tail_len;
	const char *open;
	uint64_t n = 0;

	if (sd->tail_len < 3 || end[-1] != '}')
		return -1;
	end--;
	if (end[-1] == '+')
		end--;
	for (open = end; open > s && open[-1] >= '0' && open[-1] <= '9';
	    open--)
		;
	if (open == end || open == s || open[-1] != '{' || end - open > 12)
		return -1;
	for (const char *d = open; d < end; d++)
		n = n * 10 + (uint64_t)(*d - '0');
	return (int64_t)n;
}

/* Masks a client line in place: LOGIN's password, AUTHENTICATE's
   initial response, a SASL response. lit: the line announces a literal.
   Returns the length to show. */
static size_t
mask_client(struct imap_trace *t, char *line, size_t len, bool complete,
    bool lit)
{
	const char *end = line + len, *p = line, *tag, *cmd;
	size_t tag_len, cmd_len;

	if (t->login_cont) {
		/* the rest of a LOGIN after a literal: all of it secret */
		t->login_cont = lit;
		t->literal_quiet = lit;
		memcpy(line, "****", 4);
		return 4;
	}
	if (t->sasl_tag[0] != '\0') {
		/* a SASL response ("*" cancels, and is no secret) */
		if (len == 1 && line[0] == '*')
			return len;
		memcpy(line, "****", 4);
		return 4;
	}
	tag = p;
	while (p < end && *p != ' ')
		p++;
	tag_len = (size_t)(p - tag);
	if (p >= end)
		return len;
	cmd = ++p;
	while (p < end && *p != ' ')
		p++;
	cmd_len = (size_t)(p - cmd);
	if (word_is(cmd, cmd_len, "LOGIN")) {
		/* keep the user name, hide the rest */
		const char *u = p + 1;

		if (lit) {
			/* the name or the password comes as a literal: what
			   follows it is a secret too */
			t->login_cont = true;
			if (p < end && *u != '{' && skip_astring(&u, end) &&
			    u < end) {
				/* "a LOGIN name {8}": the password's turn */
				t->literal_quiet = true;
				memcpy(line + (size_t)(u - line), " ****", 5);
				return (size_t)(u - line) + 5;
			}
			return len;
		}
		if (p < end && skip_astring(&u, end) && u < end) {
			size_t keep = (size_t)(u - line);

			memcpy(line + keep, " ****", 5);
			return keep + 5;
		}
		if (!complete && p < end) {
			/* cut inside the user name: hide all after LOGIN */
			memcpy(line + (size_t)(p - line), " ****", 5);
			return (size_t)(p - line) + 5;
		}
		return len;
	}
	if (word_is(cmd, cmd_len, "AUTHENTICATE")) {
		const char *m = p + 1;

		if (tag_len <= IMAP_TRACE_TAG_MAX) {
			memcpy(t->sasl_tag, tag, tag_len);
			t->sasl_tag[tag_len] = '\0';
		}
		if (p < end) {
			while (m < end && *m != ' ')
				m++;
			if (m < end) {	/* SASL-IR */
				memcpy(line + (size_t)(m - line), " ****", 5);
				return (size_t)(m - line) + 5;
			}
		}
	}
	return len;
}

/* A server line ends an AUTHENTICATE exchange when it is its tagged
   answer. */
static void
watch_server(struct imap_trace *t, const char *line, size_t len)
{
	size_t tl = strlen(t->sasl_tag);

	if (tl > 0 && len > tl && memcmp(line, t->sasl_tag, tl) == 0 &&
	    line[tl] == ' ')
		t->sasl_tag[0] = '\0';
}

static void
end_line(struct imap_trace *t, enum imap_trace_dir dir,
    imap_trace_emit_fn *emit, void *arg)
{
	struct imap_trace_side *sd = &t->side[dir];
	char out[IMAP_TRACE_LINE_MAX + 64];
	size_t n = sd->len;
	bool complete = sd->total == sd->len;
	int64_t lit = literal_at_end(sd);

	/* the line without its CRLF */
	if (complete && n > 0 && sd->line[n - 1] == '\n')
		n--;
	if (complete && n > 0 && sd->line[n - 1] == '\r')
		n--;
	memcpy(out, sd->line, n);
	if (dir == IMAP_TRACE_CLIENT)
		n = mask_client(t, out, n, complete, lit >= 0);
	else
		watch_server(t, out, n);
	if (!complete)
		n += (size_t)snprintf(out + n, sizeof(out) - n,
		    "... [line of %llu bytes]",
		    (unsigned long long)sd->total);
	emit(arg, dir, out, n);
	secure_zero(out, sizeof(out));
	secure_zero(sd->line, sizeof(sd->line));
	secure_zero(sd->tail, sizeof(sd->tail));
	sd->len = sd->total = sd->tail_len = 0;
	if (lit >= 0) {
		sd->literal_left = (uint64_t)lit;
		sd->literal_size = (uint64_t)lit;
		if (lit == 0) {
			char m[48];
			int w = snprintf(m, sizeof(m), "[literal 0 bytes]");

			if (dir == IMAP_TRACE_CLIENT && t->literal_quiet) {
				w = snprintf(m, sizeof(m), "[literal ****]");
				t->literal_quiet = false;
			}
			emit(arg, dir, m, (size_t)w);
		}
	}
}

void
imap_trace_feed(struct imap_trace *t, enum imap_trace_dir dir,
    const void *data, size_t len, imap_trace_emit_fn *emit, void *arg)
{
	struct imap_trace_side *sd = &t->side[dir];
	const unsigned char *p = data;
	size_t i = 0;

	while (i < len) {
		if (sd->literal_left > 0) {
			uint64_t take = len - i;

			if (take > sd->literal_left)
				take = sd->literal_left;
			i += (size_t)take;
			sd->literal_left -= take;
			if (sd->literal_left == 0) {
				char m[48];
				int w = snprintf(m, sizeof(m),
				    "[literal %llu bytes]",
				    (unsigned long long)sd->literal_size);

				if (dir == IMAP_TRACE_CLIENT &&
				    t->literal_quiet) {
					w = snprintf(m, sizeof(m),
					    "[literal ****]");
					t->literal_quiet = false;
				}
				emit(arg, dir, m, (size_t)w);
			}
			continue;
		}
		{
			unsigned char c = p[i++];

			sd->total++;
			if (sd->len < IMAP_TRACE_LINE_MAX)
				sd->line[sd->len++] = (char)c;
			if (sd->tail_len == sizeof(sd->tail)) {
				memmove(sd->tail, sd->tail + 1,
				    sizeof(sd->tail) - 1);
				sd->tail_len--;
			}
			if (c != '\r' && c != '\n')
				sd->tail[sd->tail_len++] = (char)c;
			if (c == '\n')
				end_line(t, dir, emit, arg);
		}
	}
}
