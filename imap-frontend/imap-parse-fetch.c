/*
 * imap-parse-fetch — fetch attributes and IMAP dates; see imap-parse.h.
 *
 * The command parser hands a fetch att over as one atom, section and
 * partial included ("BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100>");
 * this file takes it apart with the RFC 3501 grammar:
 *   section      = "[" [section-spec] "]"
 *   section-spec = section-msgtext / (section-part ["." section-text])
 *   section-part = nz-number *("." nz-number)
 *   section-text = section-msgtext / "MIME"
 *   section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list
 *                   / "TEXT"
 *   partial      = "<" number "." nz-number ">"
 */
#include "imap-parse.h"

#include <string.h>
#include <strings.h>

#include "arena.h"
#include "strbuf.h"
#include "strnum.h"

struct cursor {
	const char *s;
	size_t len;
	size_t pos;
};

static bool
cur_eat(struct cursor *c, const char *word)
{
	size_t n = strlen(word);

	if (c->len - c->pos < n || strncasecmp(c->s + c->pos, word, n) != 0)
		return false;
	c->pos += n;
	return true;
}

static bool
cur_peek(const struct cursor *c, char ch)
{
	return c->pos < c->len && c->s[c->pos] == ch;
}

/* Digits at the cursor as a uint32; -1 if none or too large. */
static int
cur_number(struct cursor *c, uint32_t *num_r)
{
	size_t start = c->pos;

	while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9')
		c->pos++;
	if (c->pos == start)
		return -1;
	return str_to_u32(c->s + start, c->pos - start, num_r);
}

static bool
is_field_char(unsigned char ch)
{
	/* ASTRING-CHAR; header names are printable ASCII without ':'. */
	if (ch <= 0x20 || ch >= 0x7f)
		return false;
	return ch != '(' && ch != ')' && ch != '{' && ch != '"' &&
	    ch != '\\' && ch != '%' && ch != '*' && ch != ']' && ch != ':';
}

/* header-list = "(" header-fld-name *(SP header-fld-name) ")" */
static int
parse_header_list(struct cursor *c, struct arena *arena,
    struct imap_section *sec, const char **error_r)
{
	const char *names[IMAP_SECTION_MAX_FIELDS];
	size_t count = 0;
	struct strbuf name = STRBUF_INIT;
	int ret = -1;

	if (!cur_eat(c, " (")) {
		*error_r = "Expected ( after HEADER.FIELDS";
		goto out;
	}
	for (;;) {
		strbuf_reset(&name);
		if (cur_peek(c, '"')) {
			c->pos++;
			for (;;) {
				if (c->pos >= c->len) {
					*error_r = "Unterminated quoted header name";
					goto out;
				}
				char ch = c->s[c->pos++];
				if (ch == '"')
					break;
				if (ch == '\\') {
					if (c->pos >= c->len)
						continue;
					ch = c->s[c->pos++];
				}
				strbuf_appendc(&name, ch);
			}
		} else {
			while (c->pos < c->len &&
			    is_field_char((unsigned char)c->s[c->pos]))
				strbuf_appendc(&name, c->s[c->pos++]);
		}
		if (name.len == 0) {
			*error_r = "Empty header name in HEADER.FIELDS";
			goto out;
		}
		for (size_t i = 0; i < name.len; i++) {
			unsigned char ch = (unsigned char)name.data[i];
			if (ch <= 0x20 || ch >= 0x7f || ch == ':') {
				*error_r = "Invalid header name in HEADER.FIELDS";
				goto out;
			}
		}
		if (count == IMAP_SECTION_MAX_FIELDS) {
			*error_r = "Too many header names in HEADER.FIELDS";
			goto out;
		}
		names[count++] = arena_strndup(arena, name.data, name.len);
		if (cur_peek(c, ')')) {
			c->pos++;
			break;
		}
		if (!cur_peek(c, ' ')) {
			*error_r = "Invalid HEADER.FIELDS list";
			goto out;
		}
		c->pos++;
	}
	sec->fields = arena_alloc(arena, count * sizeof(*sec->fields));
	memcpy(sec->fields, names, count * sizeof(*sec->fields));
	sec->field_count = count;
	ret = 0;
out:
	strbuf_free(&name);
	return ret;
}

/* Parses the section text between '[' and ']' (c covers just that). */
static int
parse_section(struct cursor *c, bool binary, struct arena *arena,
    struct imap_section *sec, const char **error_r)
{
	memset(sec, 0, sizeof(*sec));
	sec->kind = IMAP_SECTION_WHOLE;
	while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
		uint32_t n;
		if (cur_number(c, &n) < 0 || n == 0 ||
		    n > IMAP_SECTION_MAX_PART) {
			*error_r = "Invalid section part number";
			return -1;
		}
		if (sec->depth == IMAP_SECTION_MAX_DEPTH) {
			*error_r = "Section part path too deep";
			return -1;
		}
		sec->path[sec->depth++] = n;
		if (c->pos == c->len)
			return 0;
		if (!cur_peek(c, '.')) {
			*error_r = "Invalid section";
			return -1;
		}
		c->pos++;
		if (c->pos == c->len) {
			*error_r = "Invalid section";
			return -1;
		}
	}
	if (c->pos == c->len)
		return 0;
	if (binary) {
		*error_r = "BINARY takes only a part number";
		return -1;
	}
	if (cur_eat(c, "HEADER.FIELDS.NOT")) {
		sec->kind = IMAP_SECTION_HEADER_FIELDS_NOT;
		if (parse_header_list(c, arena, sec, error_r) < 0)
			return -1;
	} else if (cur_eat(c, "HEADER.FIELDS")) {
		sec->kind = IMAP_SECTION_HEADER_FIELDS;
		if (parse_header_list(c, arena, sec, error_r) < 0)
			return -1;
	} else if (cur_eat(c, "HEADER")) {
		sec->kind = IMAP_SECTION_HEADER;
	} else if (cur_eat(c, "TEXT")) {
		sec->kind = IMAP_SECTION_TEXT;
	} else if (cur_eat(c, "MIME")) {
		if (sec->depth == 0) {
			*error_r = "MIME needs a part number";
			return -1;
		}
		sec->kind = IMAP_SECTION_MIME;
	} else {
		*error_r = "Unknown section";
		return -1;
	}
	if (c->pos != c->len) {
		*error_r = "Junk after section";
		return -1;
	}
	return 0;
}

static void
format_section(struct strbuf *sb, const struct imap_section *sec)
{
	static const char *const kinds[] = {
		[IMAP_SECTION_WHOLE] = "",
		[IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT",
		[IMAP_SECTION_MIME] = "MIME",
	};

	for (unsigned int i = 0; i < sec->depth; i++)
		strbuf_appendf(sb, i == 0 ? "%u" : ".%u", sec->path[i]);
	if (sec->kind != IMAP_SECTION_WHOLE) {
		if (sec->depth > 0)
			strbuf_appendc(sb, '.');
		strbuf_appends(sb, kinds[sec->kind]);
	}
	if (sec->kind == IMAP_SECTION_HEADER_FIELDS ||
	    sec->kind == IMAP_SECTION_HEADER_FIELDS_NOT) {
		strbuf_appends(sb, " (");
		for (size_t i = 0; i < sec->field_count; i++) {
			const char *f = sec->fields[i];
			bool plain = true;
			for (const char *q = f; *q != '\0'; q++) {
				if (!is_field_char((unsigned char)*q))
					plain = false;
			}
			if (i > 0)
				strbuf_appendc(sb, ' ');
			if (plain) {
				strbuf_appends(sb, f);
				continue;
			}
			strbuf_appendc(sb, '"');
			for (const char *q = f; *q != '\0'; q++) {
				if (*q == '"' || *q == '\\')
					strbuf_appendc(sb, '\\');
				strbuf_appendc(sb, *q);
			}
			strbuf_appendc(sb, '"');
		}
		strbuf_appendc(sb, ')');
	}
}

static const struct {
	const char *name;
	enum imap_fetch_att_type type;
} simple_atts[] = {
	{ "FLAGS", IMAP_FETCH_FLAGS },
	{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
	{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE },
	{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
	{ "BODY", IMAP_FETCH_BODY },
	{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
	{ "RFC822", IMAP_FETCH_RFC822 },
	{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER },
	{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
	{ "UID", IMAP_FETCH_UID },
	{ "MODSEQ", IMAP_FETCH_MODSEQ },
	{ "EMAILID", IMAP_FETCH_EMAILID },
	{ "THREADID", IMAP_FETCH_THREADID },
	{ "PREVIEW", IMAP_FETCH_PREVIEW },
};

/* RFC 8970 3: PREVIEW's modifier list "(LAZY)" (LAZY: the server may
 * send NIL rather than compute it; ours is always computed). */
static bool
preview_mods(const struct imap_arg *arg)
{
	if (arg->type != IMAP_ARG_LIST || arg->list_count == 0)
		return false;
	for (size_t i = 0; i < arg->list_count; i++)
		if (arg->list[i].type != IMAP_ARG_ATOM ||
		    !str_ieq(arg->list[i].str, arg->list[i].len, "LAZY"))
			return false;
	return true;
}

int
imap_parse_fetch_att(const struct imap_arg *arg, struct arena *arena,
    struct imap_fetch_att *att_r, const char **error_r)
{
	const char *s;
	size_t len;
	const char *br;

	memset(att_r, 0, sizeof(*att_r));
	if (arg == NULL || arg->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid fetch attribute";
		return -1;
	}
	s = arg->str;
	len = arg->len;
	br = memchr(s, '[', len);
	if (br == NULL) {
		for (size_t i = 0; i < sizeof(simple_atts) / sizeof(simple_atts[0]);
		    i++) {
			if (str_ieq(s, len, simple_atts[i].name)) {
				att_r->type = simple_atts[i].type;
				att_r->response_name = simple_atts[i].name;
				return 0;
			}
		}
		*error_r = "Unknown fetch attribute";
		return -1;
	}

	size_t plen = (size_t)(br - s);
	bool binary = false;
	const char *resp_prefix;
	if (str_ieq(s, plen, "BODY")) {
		att_r->type = IMAP_FETCH_BODY_SECTION;
		resp_prefix = "BODY";
	} else if (str_ieq(s, plen, "BODY.PEEK")) {
		att_r->type = IMAP_FETCH_BODY_SECTION;
		att_r->peek = true;
		resp_prefix = "BODY";
	} else if (str_ieq(s, plen, "BINARY")) {
		att_r->type = IMAP_FETCH_BINARY;
		binary = true;
		resp_prefix = "BINARY";
	} else if (str_ieq(s, plen, "BINARY.PEEK")) {
		att_r->type = IMAP_FETCH_BINARY;
		att_r->peek = true;
		binary = true;
		resp_prefix = "BINARY";
	} else if (str_ieq(s, plen, "BINARY.SIZE")) {
		att_r->type = IMAP_FETCH_BINARY_SIZE;
		binary = true;
		resp_prefix = "BINARY.SIZE";
	} else {
		*error_r = "Unknown fetch attribute";
		return -1;
	}

	/* Find the closing ']' outside quoted strings. */
	size_t start = plen + 1, end = start;
	bool quoted = false;
	for (; end < len; end++) {
		if (quoted) {
			if (s[end] == '\\')
				end++;
			else if (s[end] == '"')
				quoted = false;
		} else if (s[end] == '"') {
			quoted = true;
		} else if (s[end] == ']') {
			break;
		}
	}
	if (end >= len) {
		*error_r = "Missing ] in fetch attribute";
		return -1;
	}
	struct cursor c = { s + start, end - start, 0 };
	if (parse_section(&c, binary, arena, &att_r->section, error_r) < 0)
		return -1;

	struct cursor rest = { s, len, end + 1 };
	if (rest.pos < len) {
		uint32_t off, n;
		if (att_r->type == IMAP_FETCH_BINARY_SIZE) {
			*error_r = "BINARY.SIZE takes no partial";
			return -1;
		}
		if (!cur_eat(&rest, "<") || cur_number(&rest, &off) < 0 ||
		    !cur_eat(&rest, ".") || cur_number(&rest, &n) < 0 ||
		    n == 0 || !cur_eat(&rest, ">") || rest.pos != len) {
			*error_r = "Invalid partial <offset.length>";
			return -1;
		}
		att_r->partial = true;
		att_r->partial_offset = off;
		att_r->partial_length = n;
	}

	struct strbuf name = STRBUF_INIT;
	strbuf_appends(&name, resp_prefix);
	strbuf_appendc(&name, '[');
	format_section(&name, &att_r->section);
	strbuf_appendc(&name, ']');
	if (att_r->partial)
		strbuf_appendf(&name, "<%u>", att_r->partial_offset);
	att_r->response_name = arena_strndup(arena, name.data, name.len);
	strbuf_free(&name);
	return 0;
}

static void
simple(struct imap_fetch_att *att, enum imap_fetch_att_type type)
{
	memset(att, 0, sizeof(*att));
	att->type = type;
	for (size_t i = 0; i < sizeof(simple_atts) / sizeof(simple_atts[0]); i++) {
		if (simple_atts[i].type == type)
			att->response_name = simple_atts[i].name;
	}
}

int
imap_parse_fetch_atts(const struct imap_arg *arg, struct arena *arena,
    struct imap_fetch_att **atts_r, size_t *count_r, const char **error_r)
{
	struct imap_fetch_att *atts;

	*atts_r = NULL;
	*count_r = 0;
	if (arg == NULL) {
		*error_r = "Missing fetch attributes";
		return -1;
	}
	if (arg->type == IMAP_ARG_ATOM) {
		size_t n = 0;
		if (str_ieq(arg->str, arg->len, "ALL"))
			n = 4;
		else if (str_ieq(arg->str, arg->len, "FAST"))
			n = 3;
		else if (str_ieq(arg->str, arg->len, "FULL"))
			n = 5;
		if (n > 0) {
			atts = arena_alloc(arena, n * sizeof(*atts));
			simple(&atts[0], IMAP_FETCH_FLAGS);
			simple(&atts[1], IMAP_FETCH_INTERNALDATE);
			simple(&atts[2], IMAP_FETCH_RFC822_SIZE);
			if (n >= 4)
				simple(&atts[3], IMAP_FETCH_ENVELOPE);
			if (n == 5)
				simple(&atts[4], IMAP_FETCH_BODY);
			*atts_r = atts;
			*count_r = n;
			return 0;
		}
		atts = arena_alloc(arena, sizeof(*atts));
		if (imap_parse_fetch_att(arg, arena, atts, error_r) < 0)
			return -1;
		*atts_r = atts;
		*count_r = 1;
		return 0;
	}
	if (arg->type != IMAP_ARG_LIST || arg->list_count == 0) {
		*error_r = "Invalid fetch attributes";
		return -1;
	}
	atts = arena_alloc(arena, arg->list_count * sizeof(*atts));
	size_t n = 0;
	for (size_t i = 0; i < arg->list_count; i++) {
		if (imap_parse_fetch_att(&arg->list[i], arena, &atts[n],
		    error_r) < 0)
			return -1;
		if (atts[n].type == IMAP_FETCH_PREVIEW &&
		    i + 1 < arg->list_count && preview_mods(&arg->list[i + 1]))
			i++;
		n++;
	}
	*atts_r = atts;
	*count_r = n;
	return 0;
}

/* ---- dates ------------------------------------------------------------------ */

static const char month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, unsigned int m, unsigned int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

static unsigned int
days_in_month(int64_t y, unsigned int m)
{
	static const unsigned char dm[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

static bool
digits(const char *s, size_t n, unsigned int *v_r)
{
	unsigned int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* "Mon-yyyy" at s (8 bytes) after the day. */
static bool
month_year(const char *s, unsigned int *m_r, unsigned int *y_r)
{
	unsigned int m;

	for (m = 0; m < 12; m++) {
		if (strncasecmp(s, month_names[m], 3) == 0)
			break;
	}
	if (m == 12 || s[3] != '-' || !digits(s + 4, 4, y_r) || *y_r == 0)
		return false;
	*m_r = m + 1;
	return true;
}

int
imap_parse_date(const char *s, size_t len, int32_t *days_r)
{
	unsigned int d, m, y;
	size_t dlen;

	if (len == 10)
		dlen = 1;
	else if (len == 11)
		dlen = 2;
	else
		return -1;
	if (!digits(s, dlen, &d) || s[dlen] != '-' ||
	    !month_year(s + dlen + 1, &m, &y))
		return -1;
	if (d == 0 || d > days_in_month(y, m))
		return -1;
	*days_r = (int32_t)days_from_civil(y, m, d);
	return 0;
}

int
imap_parse_datetime(const char *s, size_t len, int64_t *t_r,
    int *tz_minutes_r)
{
	unsigned int d, m, y, hh, mm, ss, zh, zm;

	/* "dd-Mon-yyyy hh:mm:ss +zzzz" */
	if (len != 26)
		return -1;
	if (s[0] == ' ') {
		if (!digits(s + 1, 1, &d))
			return -1;
	} else if (!digits(s, 2, &d)) {
		return -1;
	}
	if (s[2] != '-' || !month_year(s + 3, &m, &y) || s[11] != ' ' ||
	    !digits(s + 12, 2, &hh) || s[14] != ':' ||
	    !digits(s + 15, 2, &mm) || s[17] != ':' ||
	    !digits(s + 18, 2, &ss) || s[20] != ' ' ||
	    (s[21] != '+' && s[21] != '-') ||
	    !digits(s + 22, 2, &zh) || !digits(s + 24, 2, &zm))
		return -1;
	if (d == 0 || d > days_in_month(y, m) || hh > 23 || mm > 59 ||
	    ss > 60 || zh > 23 || zm > 59)
		return -1;
	int tz = (int)(zh * 60 + zm);
	if (s[21] == '-')
		tz = -tz;
	int64_t local = days_from_civil(y, m, d) * 86400 +
	    (int64_t)hh * 3600 + mm * 60 + ss;
	*t_r = local - (int64_t)tz * 60;
	*tz_minutes_r = tz;
	return 0;
}

int32_t
imap_date_days(int64_t t, int tz_minutes)
{
	int64_t local = t + (int64_t)tz_minutes * 60;
	int64_t q = local / 86400;

	if (local % 86400 != 0 && local < 0)
		q--;
	return (int32_t)q;
}
