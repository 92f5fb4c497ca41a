#include "mail-date.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail-header.h"

static const char *const month_names[12] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec",
};

struct cursor {
	const char *s;
	size_t len, pos;
};

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Skips whitespace, commas, and (nested) comments. */
static void
skip_cfws(struct cursor *c)
{
	while (c->pos < c->len) {
		char ch = c->s[c->pos];

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' ||
		    ch == ',') {
			c->pos++;
		} else if (ch == '(') {
			c->pos = mail_skip_comment(c->s, c->len, c->pos);
		} else {
			break;
		}
	}
}

static size_t
word(struct cursor *c, const char **w_r)
{
	size_t start;

	skip_cfws(c);
	start = c->pos;
	while (c->pos < c->len && is_alpha(c->s[c->pos]))
		c->pos++;
	*w_r = c->s + start;
	return c->pos - start;
}

/* Reads up to maxd digits; -1 if none. *ndigits_r gets how many. */
static int
number(struct cursor *c, int maxd, int *ndigits_r)
{
	int v = 0, n = 0;

	skip_cfws(c);
	while (c->pos < c->len && is_digit(c->s[c->pos]) && n < maxd) {
		v = v * 10 + (c->s[c->pos] - '0');
		c->pos++;
		n++;
	}
	if (ndigits_r != NULL)
		*ndigits_r = n;
	return n == 0 ? -1 : v;
}

static int
month_of(const char *w, size_t n)
{
	if (n < 3)
		return -1;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(w, month_names[i], 3) == 0)
			return i;
	}
	return -1;
}

static bool
is_day_name(const char *w, size_t n)
{
	static const char *const days[] = {
		"mon", "tue", "wed", "thu", "fri", "sat", "sun" };

	if (n < 3)
		return false;
	for (size_t i = 0; i < 7; i++) {
		if (strncasecmp(w, days[i], 3) == 0)
			return true;
	}
	return false;
}

/* hh:mm[:ss] */
static int
parse_time(struct cursor *c, int *h, int *m, int *sec)
{
	*h = number(c, 2, NULL);
	if (*h < 0 || c->pos >= c->len || (c->s[c->pos] != ':' &&
	    c->s[c->pos] != '.'))
		return -1;
	c->pos++;
	*m = number(c, 2, NULL);
	if (*m < 0)
		return -1;
	*sec = 0;
	if (c->pos < c->len && c->s[c->pos] == ':') {
		c->pos++;
		*sec = number(c, 2, NULL);
		if (*sec < 0)
			*sec = 0;
		/* Fractions of seconds ("10:00:00.123") are ignored. */
		if (c->pos < c->len && c->s[c->pos] == '.') {
			c->pos++;
			(void)number(c, 9, NULL);
		}
	}
	if (*h > 23 || *m > 59 || *sec > 60)
		return -1;
	if (*sec == 60)
		*sec = 59;
	return 0;
}

static int32_t
parse_zone(struct cursor *c)
{
	static const struct {
		const char *name;
		int32_t hours;
	} zones[] = {
		{ "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 },
		{ "EST", -5 }, { "EDT", -4 }, { "CST", -6 }, { "CDT", -5 },
		{ "MST", -7 }, { "MDT", -6 }, { "PST", -8 }, { "PDT", -7 },
	};
	const char *w;
	size_t n;

	skip_cfws(c);
	if (c->pos < c->len && (c->s[c->pos] == '+' || c->s[c->pos] == '-')) {
		int sign = c->s[c->pos] == '-' ? -1 : 1;
		int nd, v;

		c->pos++;
		v = number(c, 4, &nd);
		if (v < 0 || nd != 4 || v % 100 > 59)
			return 0;
		return sign * ((v / 100) * 60 + v % 100);
	}
	n = word(c, &w);
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		if (strlen(zones[i].name) == n &&
		    strncasecmp(w, zones[i].name, n) == 0) {
			/* "GMT+0100" and the like. */
			if (c->pos < c->len && (c->s[c->pos] == '+' ||
			    c->s[c->pos] == '-'))
				return parse_zone(c) + zones[i].hours * 60;
			return zones[i].hours * 60;
		}
	}
	return 0;
}

static int
fix_year(int year, int ndigits)
{
	if (ndigits == 2)
		return year < 50 ? 2000 + year : 1900 + year;
	if (ndigits == 3)
		return 1900 + year;
	return year;
}

static int
finish(int year, int mon, int day, int h, int m, int sec, int32_t tz,
    int64_t *time_r, int32_t *tz_min_r)
{
	struct tm tm;
	time_t t;
	static const int mdays[12] = {
		31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (year < 1900 || year > 9999 || day < 1 || day > mdays[mon])
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*time_r = (int64_t)t - (int64_t)tz * 60;
	*tz_min_r = tz;
	return 0;
}

int
mail_date_parse(const char *s, size_t len, int64_t *time_r,
    int32_t *tz_min_r)
{
	struct cursor c = { s, len, 0 };
	const char *w;
	size_t n;
	int day, mon, year, nd, h, m, sec;
	size_t save;

	save = c.pos;
	n = word(&c, &w);
	while (n > 0 && is_day_name(w, n)) {
		save = c.pos;
		n = word(&c, &w);
	}
	if (n > 0 && (mon = month_of(w, n)) >= 0) {
		/* asctime: Mon Jan  3 10:00:00 2022 [zone] */
		day = number(&c, 2, NULL);
		if (day < 0 || parse_time(&c, &h, &m, &sec) < 0)
			return -1;
		year = number(&c, 4, &nd);
		if (year < 0)
			return -1;
		return finish(fix_year(year, nd), mon, day, h, m, sec,
		    parse_zone(&c), time_r, tz_min_r);
	}
	c.pos = save;
	day = number(&c, 2, NULL);
	if (day < 0)
		return -1;
	/* "3-Jan-2022" occurs too. */
	if (c.pos < c.len && c.s[c.pos] == '-')
		c.pos++;
	n = word(&c, &w);
	mon = month_of(w, n);
	if (mon < 0)
		return -1;
	if (c.pos < c.len && c.s[c.pos] == '-')
		c.pos++;
	year = number(&c, 4, &nd);
	if (year < 0)
		return -1;
	if (parse_time(&c, &h, &m, &sec) < 0)
		return -1;
	return finish(fix_year(year, nd), mon, day, h, m, sec, parse_zone(&c),
	    time_r, tz_min_r);
}

int
mail_date_parse_received(const char *s, size_t len, int64_t *time_r,
    int32_t *tz_min_r)
{
	const char *semi = NULL;

	for (size_t i = len; i > 0; i--) {
		if (s[i - 1] == ';') {
			semi = s + i;
			break;
		}
	}
	if (semi == NULL)
		return -1;
	return mail_date_parse(semi, len - (size_t)(semi - s), time_r,
	    tz_min_r);
}
