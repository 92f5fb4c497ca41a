/*
 * mail_bench — parse throughput of the message parser over a generated
 * corpus of realistic mail: most messages 2-50 KB (text, multipart/
 * alternative with quoted-printable and HTML, small base64 attachments,
 * forwarded message/rfc822), some with multi-megabyte attachments. Prints
 * MB/s parsing whole buffers, fed in 16 KB chunks (as POP3 RETR data
 * arrives), with serialisation, and for comparison a bare memchr line scan
 * of the same bytes (the floor any line-based parser pays).
 *   mail_bench [CORPUS_MB [SECONDS]]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/mail-parse.h"
#include "store/mail-serialize.h"
#include "strbuf.h"
#include "xmalloc.h"

struct corpus {
	char **msgs;
	size_t *lens;
	size_t n, cap, bytes;
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static const char *const words[] = {
	"the", "meeting", "invoice", "attached", "please", "review",
	"schedule", "project", "update", "thanks", "regards", "tomorrow",
	"caf\xC3\xA9", "report", "budget", "quarter", "deadline", "team",
};

static void
text_lines(struct strbuf *sb, size_t bytes)
{
	size_t start = sb->len;

	while (sb->len - start < bytes) {
		size_t line = 0;

		while (line < 72) {
			const char *w = words[rnd(N_ELEMENTS(words))];

			strbuf_appends(sb, w);
			strbuf_appendc(sb, ' ');
			line += strlen(w) + 1;
		}
		strbuf_append(sb, "\r\n", 2);
	}
}

static void
base64_lines(struct strbuf *sb, size_t bytes)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[78];

	for (size_t done = 0; done < bytes; done += 78) {
		for (int i = 0; i < 76; i++)
			line[i] = b64[rnd(64)];
		line[76] = '\r';
		line[77] = '\n';
		strbuf_append(sb, line, 78);
	}
}

static void
headers(struct strbuf *sb, unsigned int id)
{
	strbuf_appendf(sb, "Return-Path: <sender%u@example.org>\r\n"
	    "Received: from mx%u.example.org (mx.example.org [192.0.2.%u])\r\n"
	    "\tby mail.example.net with ESMTPS id %uAB;\r\n"
	    "\tMon, 23 Nov 2026 09:%02u:02 +0100 (CET)\r\n"
	    "Date: Mon, 23 Nov 2026 09:%02u:55 +0100\r\n"
	    "From: =?UTF-8?Q?J=C3=B6rg_Sender?= <sender%u@example.org>\r\n"
	    "To: Team <team@example.net>, \"Doe, Jane\" <jane@example.net>\r\n"
	    "Cc: boss@example.com\r\n"
	    "Subject: =?UTF-8?B?UmU6IFF1YXJ0ZXJseSByZXBvcnQ=?= %u\r\n"
	    "Message-ID: <%u.%u@example.org>\r\n"
	    "MIME-Version: 1.0\r\n", id, id % 10, id % 250, id, id % 60,
	    id % 60, id, id, id, id * 7);
}

static void
make_message(struct strbuf *sb, unsigned int id)
{
	uint32_t kind = rnd(100);

	headers(sb, id);
	if (kind < 25) {
		strbuf_appends(sb, "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\n");
		text_lines(sb, 2000 + rnd(20000));
	} else if (kind < 60) {
		strbuf_appends(sb, "Content-Type: multipart/alternative; "
		    "boundary=\"----=_Part_123_456.789\"\r\n\r\n"
		    "------=_Part_123_456.789\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		text_lines(sb, 2000 + rnd(10000));
		strbuf_appends(sb, "------=_Part_123_456.789\r\n"
		    "Content-Type: text/html; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		text_lines(sb, 4000 + rnd(20000));
		strbuf_appends(sb, "------=_Part_123_456.789--\r\n");
	} else if (kind < 95) {
		/* 2-50 KB with a small attachment, maybe a forward. */
		strbuf_appends(sb, "Content-Type: multipart/mixed; "
		    "boundary=\"mixed-b\"\r\n\r\nThis is MIME.\r\n"
		    "--mixed-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
		text_lines(sb, 1000 + rnd(5000));
		strbuf_appends(sb, "--mixed-b\r\nContent-Type: application/pdf;"
		    " name=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
		    "Content-Disposition: attachment;\r\n"
		    " filename*=UTF-8''r%C3%A9port.pdf\r\n\r\n");
		base64_lines(sb, 1000 + rnd(40000));
		if (rnd(3) == 0) {
			strbuf_appends(sb, "--mixed-b\r\n"
			    "Content-Type: message/rfc822\r\n\r\n");
			headers(sb, id + 1);
			strbuf_appends(sb, "Content-Type: text/plain\r\n\r\n");
			text_lines(sb, 1000 + rnd(3000));
		}
		strbuf_appends(sb, "--mixed-b--\r\n");
	} else {
		/* A multi-megabyte attachment. */
		strbuf_appends(sb, "Content-Type: multipart/mixed; "
		    "boundary=\"big\"\r\n\r\n--big\r\n"
		    "Content-Type: text/plain\r\n\r\n");
		text_lines(sb, 500);
		strbuf_appends(sb, "--big\r\nContent-Type: application/zip\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\n");
		base64_lines(sb, 1000000 + rnd(4000000));
		strbuf_appends(sb, "--big--\r\n");
	}
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum mode { WHOLE, CHUNKED, SERIALIZE, LINESCAN };

static size_t sink;

static void
run_one(const char *m, size_t len, enum mode mode)
{
	struct mail_message *msg;
	struct mail_parser *mp;
	struct strbuf blob = STRBUF_INIT;

	switch (mode) {
	case WHOLE:
		msg = mail_parse(m, len, NULL);
		sink += msg->nparts;
		mail_message_free(&msg);
		break;
	case CHUNKED:
		mp = mail_parser_new(NULL);
		for (size_t i = 0; i < len; i += 16384)
			mail_parser_feed(mp, m + i, len - i < 16384 ? len - i :
			    16384);
		msg = mail_parser_finish(&mp);
		sink += msg->nparts;
		mail_message_free(&msg);
		break;
	case SERIALIZE:
		msg = mail_parse(m, len, NULL);
		mail_serialize(msg, &blob);
		sink += blob.len;
		strbuf_free(&blob);
		mail_message_free(&msg);
		break;
	case LINESCAN:
		for (const char *p = m, *end = m + len; p < end;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));

			if (nl == NULL)
				break;
			sink += (nl[1 < end - nl ? 1 : 0] == '-');
			p = nl + 1;
		}
		break;
	}
}

static double
measure(const struct corpus *c, enum mode mode, double seconds)
{
	double start = now(), t;
	size_t bytes = 0;

	do {
		for (size_t i = 0; i < c->n; i++) {
			run_one(c->msgs[i], c->lens[i], mode);
			bytes += c->lens[i];
		}
		t = now() - start;
	} while (t < seconds);
	return (double)bytes / 1e6 / t;
}

int
main(int argc, char **argv)
{
	size_t target = (argc > 1 ? strtoul(argv[1], NULL, 10) : 64) * 1000000;
	double seconds = argc > 2 ? strtod(argv[2], NULL) : 2.0;
	struct corpus c = { 0 };
	size_t small = 0;
	double whole, chunked, ser, scan, small_mbs;
	struct corpus sc = { 0 };

	while (c.bytes < target) {
		struct strbuf sb = STRBUF_INIT;

		make_message(&sb, (unsigned int)c.n);
		if (c.n == c.cap) {
			c.cap = c.cap ? c.cap * 2 : 64;
			c.msgs = xreallocarray(c.msgs, c.cap, sizeof(*c.msgs));
			c.lens = xreallocarray(c.lens, c.cap, sizeof(*c.lens));
		}
		if (sb.len <= 50 * 1024)
			small++;
		c.bytes += sb.len;
		c.lens[c.n] = sb.len;
		c.msgs[c.n++] = strbuf_detach(&sb, NULL);
	}
	/* The <= 50 KB messages alone: headers weigh more there. */
	sc.msgs = xcalloc(c.n, sizeof(*sc.msgs));
	sc.lens = xcalloc(c.n, sizeof(*sc.lens));
	for (size_t i = 0; i < c.n; i++) {
		if (c.lens[i] > 50 * 1024)
			continue;
		sc.msgs[sc.n] = c.msgs[i];
		sc.lens[sc.n++] = c.lens[i];
		sc.bytes += c.lens[i];
	}
	printf("corpus: %zu messages, %.1f MB, %zu of them <= 50 KB\n", c.n,
	    (double)c.bytes / 1e6, small);
	(void)measure(&c, WHOLE, seconds / 4);	/* warm caches and malloc */
	whole = measure(&c, WHOLE, seconds);
	chunked = measure(&c, CHUNKED, seconds);
	ser = measure(&c, SERIALIZE, seconds);
	scan = measure(&c, LINESCAN, seconds);
	small_mbs = measure(&sc, WHOLE, seconds);
	printf("parse whole buffer:        %8.0f MB/s\n", whole);
	printf("parse in 16 KB chunks:     %8.0f MB/s\n", chunked);
	printf("parse + serialize blob:    %8.0f MB/s\n", ser);
	printf("peer: memchr line scan:    %8.0f MB/s (parser at %.0f%% of "
	    "the bare scan)\n", scan, 100.0 * whole / scan);
	printf("parse, <= 50 KB only:      %8.0f MB/s (%.0f messages/s)\n",
	    small_mbs, small_mbs * 1e6 / ((double)sc.bytes / (double)sc.n));
	printf("target 300 MB/s: %s\n", whole >= 300 && small_mbs >= 300 ?
	    "met" : "NOT met");
	for (size_t i = 0; i < c.n; i++)
		free(c.msgs[i]);
	free(c.msgs);
	free(c.lens);
	free(sc.msgs);
	free(sc.lens);
	return sink == 0xdeadbeef ? 1 : 0;
}
