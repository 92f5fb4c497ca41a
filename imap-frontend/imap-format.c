/* imap-format — response building helpers; see imap-format.h. */
#include "imap-format.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap-parse.h"
#include "strbuf.h"

static bool
is_atom_char(unsigned char c)
{
	if (c <= 0x1f || c >= 0x7f)
		return false;
	switch (c) {
	case '(': case ')': case '{': case ' ': case '%': case '*':
	case '"': case '\\': case ']':
		return false;
	default:
		return true;
	}
}

bool
imap_is_atom(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_atom_char((unsigned char)s[i]))
			return false;
	}
	return true;
}

static bool
can_quote(const char *s, size_t len)
{
	if (len > IMAP_FORMAT_MAX_QUOTED)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0 || c == '\r' || c == '\n' || c >= 0x80)
			return false;
	}
	return true;
}

void
imap_literal_copy(char *dst, const char *src, size_t len)
{
	const char *nul;

	memcpy(dst, src, len);
	for (char *p = dst; (nul = memchr(p, '\0',
	    len - (size_t)(p - dst))) != NULL; p = (char *)nul + 1)
		*(char *)nul = (char)IMAP_LITERAL_NUL_SUBST;
}

void
imap_literal_bytes(struct strbuf *sb, const char *s, size_t len)
{
	if (memchr(s, '\0', len) == NULL) {
		strbuf_append(sb, s, len);
		return;
	}
	strbuf_reserve(sb, len);
	imap_literal_copy(sb->data + sb->len, s, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
}

void
imap_format_literal(struct strbuf *sb, const char *s, size_t len)
{
	strbuf_appendf(sb, "{%zu}\r\n", len);
	imap_literal_bytes(sb, s, len);
}

void
imap_format_string(struct strbuf *sb, const char *s, size_t len)
{
	if (!can_quote(s, len)) {
		imap_format_literal(sb, s, len);
		return;
	}
	strbuf_reserve(sb, len + 2);
	strbuf_appendc(sb, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			strbuf_appendc(sb, '\\');
		strbuf_appendc(sb, s[i]);
	}
	strbuf_appendc(sb, '"');
}

void
imap_format_strz(struct strbuf *sb, const char *s)
{
	imap_format_string(sb, s, strlen(s));
}

void
imap_format_nstring(struct strbuf *sb, const char *s, size_t len)
{
	if (s == NULL)
		strbuf_appends(sb, "NIL");
	else
		imap_format_string(sb, s, len);
}

void
imap_format_astring(struct strbuf *sb, const char *s, size_t len)
{
	bool atom = len > 0 && !(len == 3 && strncasecmp(s, "NIL", 3) == 0);

	for (size_t i = 0; atom && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_atom_char(c) && c != ']')
			atom = false;
	}
	if (atom)
		strbuf_append(sb, s, len);
	else
		imap_format_string(sb, s, len);
}

static const struct {
	unsigned int bit;
	const char *name;
} flag_names[] = {
	{ IMAP_FLAG_SEEN, "\\Seen" },
	{ IMAP_FLAG_ANSWERED, "\\Answered" },
	{ IMAP_FLAG_FLAGGED, "\\Flagged" },
	{ IMAP_FLAG_DELETED, "\\Deleted" },
	{ IMAP_FLAG_DRAFT, "\\Draft" },
	{ IMAP_FLAG_RECENT, "\\Recent" },
};

const char *
imap_flag_name(unsigned int flag)
{
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++) {
		if (flag_names[i].bit == flag)
			return flag_names[i].name;
	}
	return NULL;
}

void
imap_format_flags(struct strbuf *sb, unsigned int flags,
    const char *const *keywords, size_t keyword_count)
{
	bool first = true;

	strbuf_appendc(sb, '(');
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++) {
		if ((flags & flag_names[i].bit) == 0)
			continue;
		if (!first)
			strbuf_appendc(sb, ' ');
		strbuf_appends(sb, flag_names[i].name);
		first = false;
	}
	for (size_t i = 0; i < keyword_count; i++) {
		if (!first)
			strbuf_appendc(sb, ' ');
		strbuf_appends(sb, keywords[i]);
		first = false;
	}
	strbuf_appendc(sb, ')');
}

int
imap_flag_parse(const char *s, size_t len, unsigned int *flag_r,
    bool *is_keyword_r, const char **error_r)
{
	*flag_r = 0;
	*is_keyword_r = false;
	if (len > 0 && s[0] == '\\') {
		if (!imap_is_atom(s + 1, len - 1)) {
			*error_r = "Invalid flag name";
			return -1;
		}
		for (size_t i = 0; i < 5; i++) {
			size_t n = strlen(flag_names[i].name);
			if (n == len && strncasecmp(s, flag_names[i].name, n) == 0) {
				*flag_r = flag_names[i].bit;
				return 0;
			}
		}
		*error_r = "Unknown or read-only system flag";
		return -1;
	}
	if (!imap_is_atom(s, len)) {
		*error_r = "Invalid keyword";
		return -1;
	}
	*is_keyword_r = true;
	return 0;
}

void
imap_format_untagged(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;

	strbuf_appends(sb, "* ");
	va_start(ap, fmt);
	strbuf_vappendf(sb, fmt, ap);
	va_end(ap);
	strbuf_appends(sb, "\r\n");
}

static void
append_clean(struct strbuf *sb, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		strbuf_appendc(sb, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
}

void
imap_format_status(struct strbuf *sb, const char *tag, const char *status,
    const char *code, const char *text)
{
	strbuf_appends(sb, tag != NULL ? tag : "*");
	strbuf_appendc(sb, ' ');
	strbuf_appends(sb, status);
	if (code != NULL && *code != '\0') {
		strbuf_appends(sb, " [");
		strbuf_appends(sb, code);
		strbuf_appendc(sb, ']');
	}
	strbuf_appendc(sb, ' ');
	append_clean(sb, text != NULL && *text != '\0' ? text : status);
	strbuf_appends(sb, "\r\n");
}

void
imap_format_statusf(struct strbuf *sb, const char *tag, const char *status,
    const char *code, const char *fmt, ...)
{
	struct strbuf text = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vappendf(&text, fmt, ap);
	va_end(ap);
	imap_format_status(sb, tag, status, code, strbuf_str(&text));
	strbuf_free(&text);
}

void
imap_format_continuation(struct strbuf *sb, const char *text)
{
	strbuf_appends(sb, "+ ");
	append_clean(sb, text != NULL && *text != '\0' ? text : "OK");
	strbuf_appends(sb, "\r\n");
}

static const char month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Civil date of a day number (H. Hinnant's algorithm, proleptic
 * Gregorian). */
static void
civil_from_days(int64_t z, int64_t *y_r, unsigned int *m_r, unsigned int *d_r)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;

	*y_r = yoe + era * 400 + (m <= 2);
	*m_r = (unsigned int)m;
	*d_r = (unsigned int)d;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* date-time has room for a 4-digit year and a zone of 4 digits: what a
 * hostile Date: or Received: header gives (year 9999 in zone +9959, zone
 * "EST-9959") is clamped into the grammar rather than sent broken. */
#define DATETIME_MIN (-62167219200LL)	/* 01-Jan-0000 00:00:00 */
#define DATETIME_MAX 253402300799LL	/* 31-Dec-9999 23:59:59 */
#define DATETIME_TZ_MAX (99 * 60 + 59)

void
imap_format_datetime(struct strbuf *sb, int64_t t, int tz_minutes)
{
	int64_t local, days, secs, y;
	unsigned int m, d;
	int tz;

	if (tz_minutes < -DATETIME_TZ_MAX || tz_minutes > DATETIME_TZ_MAX)
		tz_minutes = 0;
	if (t < DATETIME_MIN)
		t = DATETIME_MIN;
	if (t > DATETIME_MAX)
		t = DATETIME_MAX;
	local = t + (int64_t)tz_minutes * 60;
	if (local < DATETIME_MIN)
		local = DATETIME_MIN;
	if (local > DATETIME_MAX)
		local = DATETIME_MAX;
	days = floor_div(local, 86400);
	secs = local - days * 86400;
	tz = tz_minutes < 0 ? -tz_minutes : tz_minutes;

	civil_from_days(days, &y, &m, &d);
	strbuf_appendf(sb, "\"%02u-%s-%04lld %02d:%02d:%02d %c%02d%02d\"",
	    d, month_names[m - 1], (long long)y, (int)(secs / 3600),
	    (int)(secs / 60 % 60), (int)(secs % 60),
	    tz_minutes < 0 ? '-' : '+', tz / 60, tz % 60);
}

void
imap_format_date(struct strbuf *sb, int32_t days)
{
	int64_t y;
	unsigned int m, d;

	civil_from_days(days, &y, &m, &d);
	strbuf_appendf(sb, "%u-%s-%04lld", d, month_names[m - 1],
	    (long long)y);
}
