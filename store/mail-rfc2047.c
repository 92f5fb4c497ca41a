#include "mail-rfc2047.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "mail-charset.h"
#include "mail-decode.h"
#include "strbuf.h"

struct encoded_word {
	const char *charset;	/* points into the input */
	size_t charset_len;
	char enc;		/* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t total_len;	/* "=?" through "?=" */
};

/* Parses an encoded word at in[0..len) (which starts with "=?"). */
static bool
parse_word(const char *in, size_t len, struct encoded_word *w)
{
	size_t i = 2, cs_end, text_start;
	const char *star;

	while (i < len && in[i] != '?' && in[i] != ' ' && in[i] != '\t' &&
	    in[i] != '\r' && in[i] != '\n')
		i++;
	if (i == 2 || i + 2 >= len || in[i] != '?')
		return false;
	cs_end = i;
	w->enc = in[i + 1];
	if (w->enc == 'b')
		w->enc = 'B';
	else if (w->enc == 'q')
		w->enc = 'Q';
	if ((w->enc != 'B' && w->enc != 'Q') || in[i + 2] != '?')
		return false;
	text_start = i + 3;
	for (i = text_start; i + 1 < len; i++) {
		if (in[i] == '?' && in[i + 1] == '=')
			break;
		if (in[i] == '\r' || in[i] == '\n')
			return false;
	}
	if (i + 1 >= len)
		return false;
	w->charset = in + 2;
	w->charset_len = cs_end - 2;
	/* RFC 2231 section 5: charset*language. */
	star = memchr(w->charset, '*', w->charset_len);
	if (star != NULL)
		w->charset_len = (size_t)(star - w->charset);
	w->text = in + text_start;
	w->text_len = i - text_start;
	w->total_len = i + 2;
	return w->charset_len > 0 && w->charset_len <= MAIL_CHARSET_NAME_MAX;
}

struct pending {
	char charset[MAIL_CHARSET_NAME_MAX + 1];
	struct strbuf bytes;
	/* Where the pending words started, to keep them raw if the charset
	 * turns out to be unknown. */
	const char *raw;
	size_t raw_len;
};

static void
flush(struct pending *p, struct strbuf *out)
{
	if (p->raw == NULL)
		return;
	if (mail_charset_to_utf8(p->charset, p->bytes.data == NULL ? "" :
	    p->bytes.data, p->bytes.len, out) < 0)
		mail_utf8_sanitize(p->raw, p->raw_len, out);
	strbuf_reset(&p->bytes);
	p->raw = NULL;
	p->raw_len = 0;
}

static void
plain_text(const char *s, size_t len, struct strbuf *out)
{
	if (mail_utf8_valid(s, len))
		strbuf_append(out, s, len);
	else
		mail_charset_to_utf8("iso-8859-1", s, len, out);
}

void
mail_rfc2047_decode(const char *in, size_t len, struct strbuf *out)
{
	struct pending p;
	size_t i = 0, text_start = 0;
	/* End of the last encoded word, for the whitespace rule. */
	size_t last_word_end = (size_t)-1;

	memset(&p, 0, sizeof(p));
	while (i + 1 < len) {
		struct encoded_word w;
		const char *q;

		q = memchr(in + i, '=', len - i - 1);
		if (q == NULL)
			break;
		i = (size_t)(q - in);
		if (in[i + 1] != '?' || !parse_word(in + i, len - i, &w)) {
			i++;
			continue;
		}
		/* Text between the previous word and this one. */
		if (i > text_start) {
			bool only_ws = last_word_end == text_start;

			for (size_t k = text_start; only_ws && k < i; k++) {
				if (in[k] != ' ' && in[k] != '\t' &&
				    in[k] != '\r' && in[k] != '\n')
					only_ws = false;
			}
			if (!only_ws) {
				flush(&p, out);
				plain_text(in + text_start, i - text_start, out);
			}
		}
		if (p.raw != NULL && (strlen(p.charset) != w.charset_len ||
		    strncasecmp(p.charset, w.charset, w.charset_len) != 0))
			flush(&p, out);
		if (p.raw == NULL) {
			memcpy(p.charset, w.charset, w.charset_len);
			p.charset[w.charset_len] = '\0';
			p.raw = in + i;
		}
		if (w.enc == 'B')
			mail_decode_base64(w.text, w.text_len, &p.bytes);
		else
			mail_decode_q(w.text, w.text_len, &p.bytes);
		i += w.total_len;
		p.raw_len = (size_t)(in + i - p.raw);
		text_start = last_word_end = i;
	}
	flush(&p, out);
	if (text_start < len)
		plain_text(in + text_start, len - text_start, out);
	strbuf_free(&p.bytes);
}
