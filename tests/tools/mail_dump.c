/*
 * mail_dump — parses a message file and prints what the IMAP server would
 * send: ENVELOPE, BODY, BODYSTRUCTURE and each part's byte ranges. For
 * writing fixtures and for comparing with another server by hand.
 *   mail_dump FILE [CHUNK]   (CHUNK > 0 feeds the parser in pieces)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/mail-parse.h"
#include "store/mail-render.h"
#include "store/mail-serialize.h"
#include "strbuf.h"

int
main(int argc, char **argv)
{
	FILE *f;
	struct strbuf data = STRBUF_INIT, out = STRBUF_INIT;
	char buf[65536];
	size_t n, chunk = 0;
	struct mail_message *msg;
	struct mail_parser *mp;

	if (argc < 2) {
		fprintf(stderr, "usage: mail_dump FILE [CHUNK]\n");
		return 2;
	}
	if (argc > 2)
		chunk = strtoul(argv[2], NULL, 10);
	f = fopen(argv[1], "rb");
	if (f == NULL) {
		perror(argv[1]);
		return 1;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_append(&data, buf, n);
	fclose(f);
	mp = mail_parser_new(NULL);
	if (chunk == 0)
		chunk = data.len == 0 ? 1 : data.len;
	for (size_t i = 0; i < data.len; i += chunk)
		mail_parser_feed(mp, data.data + i,
		    data.len - i < chunk ? data.len - i : chunk);
	msg = mail_parser_finish(&mp);
	mail_render_message_envelope(&out, msg);
	printf("ENVELOPE %s\n", out.data);
	strbuf_reset(&out);
	mail_render_bodystructure(&out, msg, false);
	printf("BODY %s\n", out.data);
	strbuf_reset(&out);
	mail_render_bodystructure(&out, msg, true);
	printf("BODYSTRUCTURE %s\n", out.data);
	for (uint32_t i = 0; i < msg->nparts; i++) {
		const struct mail_part *p = &msg->parts[i];

		printf("part %u parent %d depth %u flags %#x hdr %" PRIu64
		    "+%" PRIu64 " body %" PRIu64 "+%" PRIu64 " lines %" PRIu64
		    " %s/%s\n", i, p->parent == MAIL_NONE ? -1 : (int)p->parent,
		    p->depth, p->flags, p->hdr_off, p->hdr_len, p->body_off,
		    p->body_len, p->lines, p->type, p->subtype);
	}
	strbuf_reset(&out);
	mail_serialize(msg, &out);
	printf("blob %zu bytes\n", out.len);
	mail_message_free(&msg);
	strbuf_free(&out);
	strbuf_free(&data);
	return 0;
}
