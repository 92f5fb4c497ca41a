/* pop3-parse — see pop3-parse.h. Pure: libc and lib/ only. */
#include "pop3-parse.h"

#include <string.h>
#include <strings.h>

#include "strnum.h"

enum pop3_parse_ret
pop3_parse_line(const char *data, size_t len, size_t max, size_t *line_len_r,
    size_t *consumed_r, const char **error_r)
{
	size_t scan = len < max ? len : max;
	const char *lf = memchr(data, '\n', scan);
	size_t n;

	if (lf == NULL) {
		if (len >= max) {
			*error_r = "line too long";
			return POP3_PARSE_ERROR;
		}
		return POP3_PARSE_NEED_MORE;
	}
	n = (size_t)(lf - data);
	*consumed_r = n + 1;
	if (n > 0 && data[n - 1] == '\r')
		n--;
	*line_len_r = n;
	return POP3_PARSE_DONE;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t';
}

static const struct {
	const char *name;
	enum pop3_resp_code code;
} resp_codes[] = {
	{ "IN-USE", POP3_RESP_IN_USE },
	{ "LOGIN-DELAY", POP3_RESP_LOGIN_DELAY },
	{ "AUTH", POP3_RESP_AUTH },
	{ "SYS/TEMP", POP3_RESP_SYS_TEMP },
	{ "SYS/PERM", POP3_RESP_SYS_PERM },
};

int
pop3_parse_status(const char *line, size_t len, struct pop3_status *st_r,
    const char **error_r)
{
	size_t i;

	memset(st_r, 0, sizeof(*st_r));
	if (len >= 3 && memcmp(line, "+OK", 3) == 0) {
		st_r->ok = true;
		i = 3;
	} else if (len >= 4 && memcmp(line, "-ERR", 4) == 0) {
		i = 4;
	} else {
		*error_r = "status line is neither +OK nor -ERR";
		return -1;
	}
	if (i < len && !is_space(line[i])) {
		*error_r = "garbage after status word";
		return -1;
	}
	while (i < len && is_space(line[i]))
		i++;
	/* RFC 2449 §8: "[" code "]" right after the status word. Codes are
	 * hierarchical: "SYS/TEMP/xyz" is still SYS/TEMP. */
	if (i < len && line[i] == '[') {
		const char *close = memchr(line + i, ']', len - i);

		if (close != NULL) {
			const char *c = line + i + 1;
			size_t clen = (size_t)(close - c);

			st_r->code = POP3_RESP_OTHER;
			for (size_t k = 0; k < sizeof(resp_codes) /
			    sizeof(resp_codes[0]); k++) {
				size_t nl = strlen(resp_codes[k].name);

				if (clen >= nl && str_ieq(c, nl,
				    resp_codes[k].name) &&
				    (clen == nl || c[nl] == '/')) {
					st_r->code = resp_codes[k].code;
					break;
				}
			}
			i = (size_t)(close - line) + 1;
			while (i < len && is_space(line[i]))
				i++;
		}
	}
	st_r->text = line + i;
	st_r->text_len = len - i;
	return 0;
}

bool
pop3_parse_continuation(const char *line, size_t len, const char **payload_r,
    size_t *payload_len_r)
{
	if (len == 0 || line[0] != '+')
		return false;
	if (len == 1) {
		*payload_r = line + 1;
		*payload_len_r = 0;
		return true;
	}
	if (line[1] != ' ')
		return false;
	*payload_r = line + 2;
	*payload_len_r = len - 2;
	return true;
}

bool
pop3_parse_apop_timestamp(const char *line, size_t len, char *buf,
    size_t bufsize)
{
	const char *lt = memchr(line, '<', len);
	const char *gt;
	size_t n;
	bool at = false;

	if (lt == NULL)
		return false;
	gt = memchr(lt, '>', len - (size_t)(lt - line));
	if (gt == NULL)
		return false;
	n = (size_t)(gt - lt) + 1;
	if (n < 3 || n > POP3_APOP_TIMESTAMP_MAX || n + 1 > bufsize)
		return false;
	for (size_t i = 1; i + 1 < n; i++) {
		unsigned char c = (unsigned char)lt[i];

		if (c < 0x21 || c > 0x7e || c == '<')
			return false;
		if (c == '@')
			at = true;
	}
	if (!at)
		return false;
	memcpy(buf, lt, n);
	buf[n] = '\0';
	return true;
}

/* Next whitespace-separated word of line[*pos..len). */
static bool
next_word(const char *line, size_t len, size_t *pos, const char **w_r,
    size_t *wlen_r)
{
	size_t i = *pos, start;

	while (i < len && is_space(line[i]))
		i++;
	if (i == len)
		return false;
	start = i;
	while (i < len && !is_space(line[i]))
		i++;
	*w_r = line + start;
	*wlen_r = i - start;
	*pos = i;
	return true;
}

void
pop3_parse_capa_line(struct pop3_capa *capa, const char *line, size_t len)
{
	const char *w;
	size_t wl, pos = 0;

	capa->seen = true;
	if (!next_word(line, len, &pos, &w, &wl))
		return;
	if (str_ieq(w, wl, "TOP"))
		capa->top = true;
	else if (str_ieq(w, wl, "UIDL"))
		capa->uidl = true;
	else if (str_ieq(w, wl, "USER"))
		capa->user = true;
	else if (str_ieq(w, wl, "STLS"))
		capa->stls = true;
	else if (str_ieq(w, wl, "PIPELINING"))
		capa->pipelining = true;
	else if (str_ieq(w, wl, "RESP-CODES"))
		capa->resp_codes = true;
	else if (str_ieq(w, wl, "AUTH-RESP-CODE"))
		capa->auth_resp_code = true;
	else if (str_ieq(w, wl, "SASL")) {
		while (next_word(line, len, &pos, &w, &wl)) {
			if (str_ieq(w, wl, "PLAIN"))
				capa->sasl_plain = true;
			else if (str_ieq(w, wl, "LOGIN"))
				capa->sasl_login = true;
			else if (str_ieq(w, wl, "CRAM-MD5"))
				capa->sasl_cram_md5 = true;
			else if (str_ieq(w, wl, "SCRAM-SHA-1"))
				capa->sasl_scram_sha1 = true;
			else if (str_ieq(w, wl, "SCRAM-SHA-256"))
				capa->sasl_scram_sha256 = true;
			else if (str_ieq(w, wl, "XOAUTH2"))
				capa->sasl_xoauth2 = true;
			else if (str_ieq(w, wl, "OAUTHBEARER"))
				capa->sasl_oauthbearer = true;
		}
	} else if (str_ieq(w, wl, "LOGIN-DELAY")) {
		uint64_t v;

		if (next_word(line, len, &pos, &w, &wl) &&
		    str_to_u64(w, wl, &v) == 0) {
			capa->login_delay_set = true;
			capa->login_delay = v > POP3_LOGIN_DELAY_MAX ?
			    POP3_LOGIN_DELAY_MAX : (uint32_t)v;
		}
	}
}

bool
pop3_multiline_unstuff(const char **line, size_t *len)
{
	if (*len >= 1 && (*line)[0] == '.') {
		if (*len == 1)
			return true;
		(*line)++;
		(*len)--;
	}
	return false;
}

static int
parse_count(const char *w, size_t wl, uint32_t *n_r, const char **error_r)
{
	uint32_t n;

	if (str_to_u32(w, wl, &n) < 0) {
		*error_r = "message count is not a number";
		return -1;
	}
	if (n > POP3_MSG_COUNT_MAX) {
		*error_r = "message count over limit";
		return -1;
	}
	*n_r = n;
	return 0;
}

static int
parse_size(const char *w, size_t wl, uint64_t *n_r, const char **error_r)
{
	uint64_t n;

	if (str_to_u64(w, wl, &n) < 0) {
		*error_r = "size is not a number";
		return -1;
	}
	if (n > POP3_MSG_SIZE_MAX) {
		*error_r = "size over limit";
		return -1;
	}
	*n_r = n;
	return 0;
}

int
pop3_parse_stat(const char *text, size_t len, uint32_t *count_r,
    uint64_t *size_r, const char **error_r)
{
	const char *w;
	size_t wl, pos = 0;

	if (!next_word(text, len, &pos, &w, &wl)) {
		*error_r = "STAT without a message count";
		return -1;
	}
	if (parse_count(w, wl, count_r, error_r) < 0)
		return -1;
	if (!next_word(text, len, &pos, &w, &wl)) {
		*error_r = "STAT without a size";
		return -1;
	}
	return parse_size(w, wl, size_r, error_r);
}

static int
parse_msgno(const char *w, size_t wl, uint32_t *n_r, const char **error_r)
{
	if (parse_count(w, wl, n_r, error_r) < 0)
		return -1;
	if (*n_r == 0) {
		*error_r = "message number 0";
		return -1;
	}
	return 0;
}

int
pop3_parse_list_line(const char *line, size_t len, uint32_t *msgno_r,
    uint64_t *size_r, const char **error_r)
{
	const char *w;
	size_t wl, pos = 0;

	if (!next_word(line, len, &pos, &w, &wl)) {
		*error_r = "empty LIST line";
		return -1;
	}
	if (parse_msgno(w, wl, msgno_r, error_r) < 0)
		return -1;
	if (!next_word(line, len, &pos, &w, &wl)) {
		*error_r = "LIST line without a size";
		return -1;
	}
	return parse_size(w, wl, size_r, error_r);
}

int
pop3_parse_uidl_line(const char *line, size_t len, uint32_t *msgno_r,
    const char **uid_r, size_t *uid_len_r, enum pop3_uidl_flaw *flaw_r,
    const char **error_r)
{
	size_t i = 0, start;

	while (i < len && line[i] == ' ')
		i++;
	start = i;
	while (i < len && line[i] != ' ')
		i++;
	if (i == start) {
		*error_r = "empty UIDL line";
		return -1;
	}
	if (parse_msgno(line + start, i - start, msgno_r, error_r) < 0)
		return -1;
	/* exactly one separator; a uid is everything after it, minus
	 * trailing blanks some servers add */
	if (i < len)
		i++;
	while (len > i && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	*uid_r = line + i;
	*uid_len_r = len - i;
	*flaw_r = POP3_UIDL_OK;
	if (*uid_len_r == 0)
		*flaw_r = POP3_UIDL_EMPTY;
	else if (*uid_len_r > POP3_UIDL_MAX)
		*flaw_r = POP3_UIDL_TOO_LONG;
	else {
		for (size_t k = 0; k < *uid_len_r; k++) {
			unsigned char c = (unsigned char)(*uid_r)[k];

			if (c < 0x21 || c > 0x7e) {
				*flaw_r = POP3_UIDL_BAD_CHAR;
				break;
			}
		}
	}
	return 0;
}

const char *
pop3_uidl_flaw_str(enum pop3_uidl_flaw flaw)
{
	switch (flaw) {
	case POP3_UIDL_OK:
		return "ok";
	case POP3_UIDL_EMPTY:
		return "empty";
	case POP3_UIDL_TOO_LONG:
		return "too long";
	case POP3_UIDL_BAD_CHAR:
		return "bad character";
	}
	return "?";
}

void
pop3_data_init(struct pop3_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = POP3_DATA_LINE_START;
}

enum pop3_parse_ret
pop3_data_parse(struct pop3_data *d, const char *in, size_t len,
    size_t *consumed_r, const char **out_r, size_t *out_len_r)
{
	static const char cr[] = "\r";
	const char *lf;

	*consumed_r = 0;
	*out_r = in;
	*out_len_r = 0;
	if (d->state == POP3_DATA_END)
		return POP3_PARSE_DONE;
	if (len == 0)
		return POP3_PARSE_NEED_MORE;

	switch (d->state) {
	case POP3_DATA_LINE_START:
		if (in[0] == '.') {
			d->state = POP3_DATA_DOT;
			*consumed_r = 1;
			return POP3_PARSE_NEED_MORE;
		}
		d->state = POP3_DATA_MID;
		/* fall through */
	case POP3_DATA_MID:
		lf = memchr(in, '\n', len);
		if (lf == NULL) {
			*consumed_r = len;
		} else {
			*consumed_r = (size_t)(lf - in) + 1;
			d->state = POP3_DATA_LINE_START;
			d->lines++;
		}
		*out_len_r = *consumed_r;
		break;
	case POP3_DATA_DOT:
		if (in[0] == '\n') {
			*consumed_r = 1;
			d->state = POP3_DATA_END;
			return POP3_PARSE_DONE;
		}
		if (in[0] == '\r') {
			*consumed_r = 1;
			d->state = POP3_DATA_DOT_CR;
			return POP3_PARSE_NEED_MORE;
		}
		/* a stuffed dot: dropped, the line goes on (consumes nothing
		 * here; the next call copies the rest of the line) */
		d->state = POP3_DATA_MID;
		*consumed_r = 0;
		return pop3_data_parse(d, in, len, consumed_r, out_r,
		    out_len_r);
	case POP3_DATA_DOT_CR:
		if (in[0] == '\n') {
			*consumed_r = 1;
			d->state = POP3_DATA_END;
			return POP3_PARSE_DONE;
		}
		/* ".\r" then something else: the dot was stuffing, the CR is
		 * data. Emit it, then continue with this byte. */
		d->state = POP3_DATA_MID;
		*out_r = cr;
		*out_len_r = 1;
		*consumed_r = 0;
		break;
	case POP3_DATA_END:
		break;
	}
	d->out_bytes += *out_len_r;
	return POP3_PARSE_NEED_MORE;
}

bool
pop3_data_done(const struct pop3_data *d)
{
	return d->state == POP3_DATA_END;
}

size_t
pop3_header_length(const char *msg, size_t len)
{
	size_t i = 0;

	/* an empty first line means an empty header */
	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 2;
	if (len >= 1 && msg[0] == '\n')
		return 1;
	while (i < len) {
		const char *lf = memchr(msg + i, '\n', len - i);

		if (lf == NULL)
			return len;
		i = (size_t)(lf - msg) + 1;
		if (i < len && msg[i] == '\n')
			return i + 1;
		if (i + 1 < len && msg[i] == '\r' && msg[i + 1] == '\n')
			return i + 2;
	}
	return len;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

bool
pop3_header_has_field(const char *msg, size_t len, const char *name)
{
	size_t hl = pop3_header_length(msg, len), nl = strlen(name), i = 0;
	bool in_field = false;

	while (i < hl) {
		const char *lf = memchr(msg + i, '\n', hl - i);
		size_t end = lf != NULL ? (size_t)(lf - msg) : hl, j = i;

		if (i < end && (msg[i] == ' ' || msg[i] == '\t')) {
			/* a continuation line of the field before */
		} else if (end - i > nl && strncasecmp(msg + i, name, nl) == 0) {
			j = i + nl;
			while (j < end && (msg[j] == ' ' || msg[j] == '\t'))
				j++;
			in_field = j < end && msg[j] == ':';
			j++;
		} else
			in_field = false;
		for (; in_field && j < end; j++) {
			if (!is_wsp(msg[j]))
				return true;
		}
		i = end + 1;
	}
	return false;
}
