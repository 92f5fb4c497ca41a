/*
 * store_dump — prints a user's mailboxes, messages and upstream ledger
 * from a store on disk (the daemon must be stopped), for tests that compare
 * what IMAP clients saw with what the store holds.
 *
 *   store_dump DIR USER [ACCOUNT_ID...]
 *
 * One tab-separated line per item:
 *   mailbox NAME UIDVALIDITY UIDNEXT HIGHESTMODSEQ MESSAGES
 *   msg NAME UID MODSEQ FLAGS MARKER
 *   ledger ACCOUNT_ID UIDL_HEX MAILBOX_ID UID DELETED_UPSTREAM
 * FLAGS is a space-separated list (system flags then keywords, "" when
 * none); MARKER is the value of the message's first Message-ID header
 * ("-" when it has none). Exit 0; 2 when the store or the user cannot be
 * read.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

/* The longest Message-ID value printed; a test marker is far shorter. */
#define DUMP_MARKER_MAX 512

struct dump_ctx {
	struct store_read *r;
	uint32_t user_id;
	const struct store_mailbox_info *box;
	const char *keywords[STORE_KEYWORDS_MAX];
	size_t keyword_count;
};

static const struct {
	uint32_t bit;
	const char *name;
} system_flags[] = {
	{ STORE_FLAG_SEEN, "\\Seen" },
	{ STORE_FLAG_ANSWERED, "\\Answered" },
	{ STORE_FLAG_FLAGGED, "\\Flagged" },
	{ STORE_FLAG_DELETED, "\\Deleted" },
	{ STORE_FLAG_DRAFT, "\\Draft" },
};

/* Copies the first Message-ID header's value (trimmed) into out. */
static void
find_marker(const char *data, size_t size, char *out, size_t out_size)
{
	size_t pos = 0;

	snprintf(out, out_size, "-");
	while (pos < size) {
		const char *line = data + pos;
		const char *nl = memchr(line, '\n', size - pos);
		size_t len = nl != NULL ? (size_t)(nl - line) : size - pos;

		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0)
			return;	/* end of the header */
		if (len > 11 && strncasecmp(line, "Message-ID:", 11) == 0) {
			size_t a = 11, b = len;

			while (a < b && (line[a] == ' ' || line[a] == '\t'))
				a++;
			while (b > a && (line[b - 1] == ' ' ||
			    line[b - 1] == '\t'))
				b--;
			if (b - a >= out_size)
				b = a + out_size - 1;
			memcpy(out, line + a, b - a);
			out[b - a] = '\0';
			return;
		}
		if (nl == NULL)
			return;
		pos = (size_t)(nl - data) + 1;
	}
}

static int
dump_msg(void *ctx_, const struct store_msg *msg)
{
	struct dump_ctx *ctx = ctx_;
	const void *data = NULL;
	size_t size = 0;
	char marker[DUMP_MARKER_MAX];
	const char *error = NULL, *sep = "";

	printf("msg\t%s\t%" PRIu32 "\t%" PRIu64 "\t", ctx->box->name,
	    msg->uid, msg->modseq);
	for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]);
	    i++) {
		if ((msg->flags.system & system_flags[i].bit) != 0) {
			printf("%s%s", sep, system_flags[i].name);
			sep = " ";
		}
	}
	for (size_t i = 0; i < ctx->keyword_count; i++) {
		if ((msg->flags.keywords[i / 64] >> (i % 64) & 1u) != 0) {
			printf("%s%s", sep, ctx->keywords[i]);
			sep = " ";
		}
	}
	if (store_msg_body(ctx->r, ctx->user_id, ctx->box->id, msg->uid,
	    &data, &size, &error) != 0) {
		fprintf(stderr, "body of %s/%" PRIu32 ": %s\n", ctx->box->name,
		    msg->uid, error != NULL ? error : "missing");
		return -1;
	}
	find_marker(data, size, marker, sizeof(marker));
	printf("\t%s\n", marker);
	return 0;
}

static int
dump_mailbox(void *ctx_, const struct store_mailbox_info *info)
{
	struct dump_ctx *ctx = ctx_;
	const char *error = NULL;

	printf("mailbox\t%s\t%" PRIu32 "\t%" PRIu32 "\t%" PRIu64 "\t%" PRIu32
	    "\n", info->name, info->uidvalidity, info->uidnext,
	    info->highestmodseq, info->messages);
	ctx->box = info;
	if (store_mailbox_keywords(ctx->r, ctx->user_id, info->id,
	    ctx->keywords, &ctx->keyword_count, &error) < 0 ||
	    store_msg_foreach(ctx->r, ctx->user_id, info->id, 1, UINT32_MAX,
	    dump_msg, ctx, &error) != 0) {
		fprintf(stderr, "mailbox %s: %s\n", info->name,
		    error != NULL ? error : "failed");
		return -1;
	}
	return 0;
}

static int
dump_ledger(void *ctx_, const struct store_ledger_entry *e)
{
	const char *account = ctx_;
	const unsigned char *u = e->uidl;

	printf("ledger\t%s\t", account);
	for (size_t i = 0; i < e->uidl_size; i++)
		printf("%02x", u[i]);
	printf("\t%" PRIu32 "\t%" PRIu32 "\t%d\n", e->mailbox_id, e->uid,
	    e->deleted_upstream ? 1 : 0);
	return 0;
}

int
main(int argc, char **argv)
{
	struct store *store = NULL;
	struct dump_ctx ctx;
	const char *error = NULL;
	int rc = 2;

	if (argc < 3) {
		fprintf(stderr, "usage: store_dump DIR USER [ACCOUNT_ID...]\n");
		return 2;
	}
	memset(&ctx, 0, sizeof(ctx));
	if (store_open(argv[1], NULL, &store, &error) < 0) {
		fprintf(stderr, "store_open: %s\n", error);
		return 2;
	}
	if (store_read_begin(store, &ctx.r, &error) < 0)
		goto out;
	if (store_user_lookup(ctx.r, argv[2], &ctx.user_id, &error) != 0) {
		if (error == NULL)
			error = "no such user";
		goto out;
	}
	if (store_mailbox_foreach(ctx.r, ctx.user_id, dump_mailbox, &ctx,
	    &error) != 0)
		goto out;
	for (int i = 3; i < argc; i++) {
		if (store_ledger_foreach(ctx.r, ctx.user_id, argv[i],
		    dump_ledger, argv[i], &error) != 0)
			goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "store_dump: %s\n",
		    error != NULL ? error : "failed");
	if (ctx.r != NULL)
		store_read_end(&ctx.r);
	store_close(&store);
	fflush(stdout);
	return rc;
}
