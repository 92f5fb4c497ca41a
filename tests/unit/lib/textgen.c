/* textgen — realistic text mail (see textgen.h). */
#include "textgen.h"

#include "msggen.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define VOCAB 20000

static const char *const syllables[] = {
	"ka", "lo", "mi", "ne", "ra", "to", "shi", "an", "er", "in", "on",
	"de", "ve", "la", "po", "ru", "si", "ta", "ex", "or", "qu", "ba",
	"ce", "di", "fo", "ge", "ho", "ju", "ki", "ly", "ma", "no", "pi",
	"re", "st", "th", "ul", "wa", "ze", "ch",
};

static const char *const extra[] = {
	"Größe", "café", "straße", "déjà", "naïve", "Übermorgen", "résumé",
	"ΑΘΗΝΑ", "Ελληνικά", "МОСКВА", "Кириллица", "日本語",
};

static char vocab[VOCAB][24];
static double cdf[VOCAB];
static int ready;

static void
init(void)
{
	double sum = 0;

	for (uint32_t i = 0; i < VOCAB; i++) {
		uint32_t r = msggen_mix(i + 77);
		size_t n = 1 + r % 4, len = 0;

		for (size_t k = 0; k < n; k++) {
			const char *s = syllables[msggen_mix(r + (uint32_t)k) %
			    (sizeof(syllables) / sizeof(syllables[0]))];

			memcpy(vocab[i] + len, s, strlen(s));
			len += strlen(s);
		}
		vocab[i][len] = '\0';
		sum += 1.0 / (i + 1);
		cdf[i] = sum;
	}
	/* the common word is the most frequent one */
	snprintf(vocab[0], sizeof(vocab[0]), "%s", TEXTGEN_COMMON);
	for (uint32_t i = 0; i < VOCAB; i++)
		cdf[i] /= sum;
	ready = 1;
}

struct rng {
	uint32_t s;
};

static uint32_t
next(struct rng *g)
{
	g->s = g->s * 1664525u + 1013904223u;
	return msggen_mix(g->s);
}

static const char *
word(struct rng *g)
{
	double u = (next(g) & 0xffffff) / (double)0x1000000;
	uint32_t lo = 0, hi = VOCAB - 1;

	if ((next(g) & 255) == 0)
		return extra[next(g) % (sizeof(extra) / sizeof(extra[0]))];
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return vocab[lo];
}

static void
text(struct rng *g, size_t bytes, uint32_t n, struct strbuf *out)
{
	size_t start = out->len, col = 0;
	int planted = n % 10000 == 7;

	while (out->len - start < bytes) {
		const char *w = word(g);

		if (planted && (next(g) % 50) == 0) {
			w = TEXTGEN_RARE;
			planted = 0;
		}
		strbuf_appends(out, w);
		col += strlen(w) + 1;
		if (col > 70) {
			strbuf_appends(out, next(g) % 6 == 0 ? ".\r\n\r\n" :
			    "\r\n");
			col = 0;
		} else {
			strbuf_appendc(out, ' ');
		}
	}
	if (planted)
		strbuf_appends(out, " " TEXTGEN_RARE "\r\n");
	else
		strbuf_appends(out, "\r\n");
}

static void
base64_block(struct rng *g, size_t bytes, struct strbuf *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789+/";

	for (size_t i = 0; i < bytes; i++) {
		strbuf_appendc(out, t[next(g) & 63]);
		if (i % 76 == 75)
			strbuf_appends(out, "\r\n");
	}
	strbuf_appends(out, "\r\n");
}

void
textgen_message(uint32_t n, struct strbuf *out)
{
	struct rng g = { msggen_mix(n * 2654435761u + 17) };
	uint32_t r = next(&g);
	/* mostly 1-8 KB of text, 1 in 20 up to 40 KB */
	size_t bytes = r % 20 == 0 ? 8000 + next(&g) % 32000 :
	    600 + (size_t)(pow((next(&g) % 1000) / 1000.0, 2) * 7000);
	time_t t = (time_t)(1700000000 + (int64_t)n * 300);
	struct tm tm;
	char date[64];

	if (!ready)
		init();
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	strbuf_reset(out);
	strbuf_appendf(out, "Return-Path: <%s@example.org>\r\n"
	    "Received: from mx.example.org by mail.example.com; %s\r\n"
	    "From: \"%s %s\" <%s@example.org>\r\n"
	    "To: \"Test User\" <user@example.com>\r\n"
	    "Subject: %s %s %s\r\nDate: %s\r\n"
	    "Message-ID: <%u.%u@example.org>\r\nMIME-Version: 1.0\r\n",
	    word(&g), date, word(&g), word(&g), word(&g), word(&g), word(&g),
	    word(&g), date, n, r);
	switch (r % 10) {
	case 0:
	case 1:	/* alternative: plain + HTML */
		strbuf_appendf(out, "Content-Type: multipart/alternative; "
		    "boundary=\"=_a%u\"\r\n\r\n--=_a%u\r\nContent-Type: "
		    "text/plain; charset=utf-8\r\n\r\n", n, n);
		text(&g, bytes / 2, n, out);
		strbuf_appendf(out, "--=_a%u\r\nContent-Type: text/html; "
		    "charset=utf-8\r\n\r\n<html><body><p>", n);
		text(&g, bytes / 2, n + 1, out);
		strbuf_appendf(out, "</p></body></html>\r\n--=_a%u--\r\n", n);
		break;
	case 2:	/* text and a base64 attachment */
		strbuf_appendf(out, "Content-Type: multipart/mixed; "
		    "boundary=\"=_m%u\"\r\n\r\n--=_m%u\r\nContent-Type: "
		    "text/plain; charset=utf-8\r\n\r\n", n, n);
		text(&g, bytes, n, out);
		strbuf_appendf(out, "--=_m%u\r\nContent-Type: application/pdf; "
		    "name=\"doc%u.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
		    "\r\n", n, n);
		base64_block(&g, 2000 + next(&g) % 30000, out);
		strbuf_appendf(out, "--=_m%u--\r\n", n);
		break;
	case 3:	/* quoted-printable (the text is plain ASCII + a few) */
		strbuf_appends(out, "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		text(&g, bytes, n, out);
		break;
	default:
		strbuf_appends(out, "Content-Type: text/plain; charset=utf-8\r\n"
		    "\r\n");
		text(&g, bytes, n, out);
	}
}
