/*
 * store_crash_writer — the store's durability test driver.
 *
 *   store_crash_writer write DIR [BATCH [MAX_SIZE [MAP_SIZE [FSIZE]]]]
 *       Delivers batches of generated messages (tests/unit/lib/msggen)
 *       into user "crash" INBOX, each with its ledger entry (account "up",
 *       UIDL "uidl-%010u"), forever. After each deliver call returns it
 *       prints "ACK first_seq last_seq first_uid last_uid" and flushes, so
 *       a parent that kills it knows what was acknowledged. It resumes
 *       after the last sequence number in the ledger. On a deliver error it
 *       prints "ERR class message" and exits 3. FSIZE (bytes, 0 none) sets
 *       RLIMIT_FSIZE, to simulate a full disk without a mount.
 *
 *   store_crash_writer verify DIR ACKED MAX_SIZE [FULL_FROM]
 *       Checks that every message 1..ACKED is present exactly once with its
 *       exact bytes (compared in full from FULL_FROM on, default 1; older
 *       ones, already compared by an earlier round, by size and header)
 *       and its ledger entry; that every message present is a
 *       whole, correct message from a contiguous prefix 1..K (K >= ACKED:
 *       a batch committed just before the kill may be unacknowledged); and
 *       that the ledger has exactly K entries. Prints
 *       "OK messages=K uidnext=U" or "FAIL reason"; exit 0 / 1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tests/unit/lib/msggen.h"
#include "store/mail-fts.h"
#include "store/mail-message.h"
#include "store/mail-parse.h"
#include "store/store.h"
#include "strbuf.h"
#include "xmalloc.h"

#define ACCOUNT "up"

static const char *const error_class[] = {
	"NONE", "INVALID", "NOTFOUND", "EXISTS", "LIMIT", "NOSPACE", "IO",
};

static int
last_seq_cb(void *ctx, const struct store_ledger_entry *e)
{
	uint32_t *last = ctx;
	char buf[32];
	size_t n = e->uidl_size < sizeof(buf) - 1 ? e->uidl_size :
	    sizeof(buf) - 1;

	memcpy(buf, e->uidl, n);
	buf[n] = '\0';
	if (strncmp(buf, "uidl-", 5) == 0) {
		uint32_t seq = (uint32_t)strtoul(buf + 5, NULL, 10);

		if (seq > *last)
			*last = seq;
	}
	return 0;
}

static int
setup(struct store *store, uint32_t *user_r, uint32_t *inbox_r)
{
	struct store_mailbox_info info;
	struct store_read *r;
	const char *error = NULL;
	int rc;

	if (store_read_begin(store, &r, &error) < 0)
		return -1;
	rc = store_user_lookup(r, "crash", user_r, &error);
	store_read_end(&r);
	if (rc == STORE_NOT_FOUND &&
	    store_user_create(store, "crash", "x", 0, user_r, &error) < 0) {
		fprintf(stderr, "user create: %s\n", error);
		return -1;
	}
	if (rc < 0)
		return -1;
	if (store_read_begin(store, &r, &error) < 0)
		return -1;
	rc = store_mailbox_lookup(r, *user_r, "INBOX", &info, &error);
	*inbox_r = info.id;
	store_read_end(&r);
	return rc == 0 ? 0 : -1;
}

static int
do_write(const char *dir, int argc, char **argv)
{
	size_t batch = argc > 0 ? strtoul(argv[0], NULL, 10) : 20;
	size_t max_size = argc > 1 ? strtoul(argv[1], NULL, 10) : 64 * 1024;
	struct store_options opts = { 0, 0, false, 0 };
	struct store *store;
	struct store_read *r;
	struct store_new_msg *msgs;
	char (*uidls)[32];
	char **bufs;
	uint32_t *uids, *seqs, user, inbox, seq = 0;
	const char *error = NULL;
	struct mail_fts_terms *terms;
	struct store_fts_doc *docs;
	const struct store_fts_doc **dp;
	struct strbuf segment = STRBUF_INIT;
	struct mail_message *mm;

	if (argc > 2)
		opts.map_size = strtoull(argv[2], NULL, 10);
	if (argc > 3 && strtoull(argv[3], NULL, 10) > 0) {
		struct rlimit rl;

		rl.rlim_cur = rl.rlim_max = strtoull(argv[3], NULL, 10);
		/* EFBIG instead of SIGXFSZ when the limit is hit. */
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
			perror("setrlimit");
			return 2;
		}
	}
	if (batch == 0 || batch > STORE_DELIVER_BATCH_MAX)
		batch = 20;
	if (store_open(dir, &opts, &store, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 2;
	}
	if (setup(store, &user, &inbox) < 0 ||
	    store_read_begin(store, &r, &error) < 0)
		return 2;
	if (store_ledger_foreach(r, user, ACCOUNT, last_seq_cb, &seq,
	    &error) < 0)
		return 2;
	store_read_end(&r);
	msgs = xcalloc(batch, sizeof(*msgs));
	uidls = xcalloc(batch, sizeof(*uidls));
	bufs = xcalloc(batch, sizeof(*bufs));
	uids = xcalloc(batch, sizeof(*uids));
	seqs = xcalloc(batch, sizeof(*seqs));
	for (size_t i = 0; i < batch; i++)
		bufs[i] = xmalloc(max_size > 0 ? max_size : 1100 * 1024);
	terms = xcalloc(batch, sizeof(*terms));
	docs = xcalloc(batch, sizeof(*docs));
	dp = xcalloc(batch, sizeof(*dp));
	store_fts_defer_merges(store, true);
	printf("START %u\n", seq + 1);
	fflush(stdout);
	for (;;) {
		for (size_t i = 0; i < batch; i++) {
			uint32_t n = seq + 1 + (uint32_t)i;
			size_t size = msggen_size(n, max_size);

			msggen_fill(n, bufs[i], size);
			snprintf(uidls[i], sizeof(uidls[i]), "uidl-%010u", n);
			msgs[i].data = bufs[i];
			msgs[i].size = size;
			seqs[i] = n;
			msgs[i].structure = &seqs[i];
			msgs[i].structure_size = sizeof(seqs[i]);
			msgs[i].internaldate = 1700000000 + n;
			msgs[i].account = ACCOUNT;
			msgs[i].uidl = uidls[i];
			msgs[i].uidl_size = strlen(uidls[i]);
			/* with its full-text index terms, as the POP3
			   workers give them: the checker verifies them */
			mm = mail_parse(bufs[i], size, NULL);
			mail_fts_message_terms(bufs[i], size, mm, &terms[i]);
			mail_message_free(&mm);
			docs[i].terms = terms[i].terms;
			docs[i].count = terms[i].count;
			docs[i].saturated = terms[i].saturated;
			dp[i] = &docs[i];
			msgs[i].fts = &docs[i];
			msgs[i].fts_batch = NULL;
		}
		/* every other batch with the worker-built segment */
		if ((seq / batch) % 2 == 0) {
			store_fts_batch_build(dp, batch, &segment);
			msgs[0].fts_batch = segment.data;
			msgs[0].fts_batch_size = segment.len;
		}
		if (store_deliver(store, user, inbox, msgs, batch, uids, NULL,
		    &error) < 0) {
			printf("ERR %s %s\n",
			    error_class[store_last_error(store)], error);
			fflush(stdout);
			store_close(&store);
			for (size_t i = 0; i < batch; i++)
				free(bufs[i]);
			free(bufs);
			free(msgs);
			free(uidls);
			free(uids);
			free(seqs);
			for (size_t i = 0; i < batch; i++)
				mail_fts_terms_free(&terms[i]);
			free(terms);
			free(docs);
			free(dp);
			strbuf_free(&segment);
			return 3;
		}
		printf("ACK %u %u %u %u\n", seq + 1, seq + (uint32_t)batch,
		    uids[0], uids[batch - 1]);
		fflush(stdout);
		seq += (uint32_t)batch;
		/* index merges deferred, as under the writer thread, and
		   done as idle steps after every third batch (a kill may
		   land in one) */
		if ((seq / batch) % 3 == 0)
			while (store_fts_idle_step(store) > 0)
				;
	}
}

struct verify {
	struct store_read *r;
	uint32_t user, inbox;
	uint8_t *seen;
	uint32_t max_seq, count, full_from;
	size_t max_size;
	char failbuf[200];
};

static int
verify_msg(void *ctx, const struct store_msg *msg)
{
	struct verify *v = ctx;
	const void *data;
	size_t size;
	uint32_t seq;
	char *expect;

	if (store_msg_body(v->r, v->user, v->inbox, msg->uid, &data, &size,
	    NULL) != 0) {
		snprintf(v->failbuf, sizeof(v->failbuf), "uid %u: no body",
		    msg->uid);
		return 1;
	}
	seq = msggen_seq(data, size);
	if (seq == 0 || seq > 10000000 || size != msg->size ||
	    size != msggen_size(seq, v->max_size)) {
		snprintf(v->failbuf, sizeof(v->failbuf),
		    "uid %u: not a whole message", msg->uid);
		return 1;
	}
	if (seq >= v->full_from) {
		expect = xmalloc(size);
		msggen_fill(seq, expect, size);
		if (memcmp(expect, data, size) != 0) {
			free(expect);
			snprintf(v->failbuf, sizeof(v->failbuf),
			    "uid %u seq %u: bytes differ", msg->uid, seq);
			return 1;
		}
		free(expect);
	}
	if (v->seen[seq]) {
		snprintf(v->failbuf, sizeof(v->failbuf), "seq %u twice", seq);
		return 1;
	}
	v->seen[seq] = 1;
	if (seq > v->max_seq)
		v->max_seq = seq;
	v->count++;
	return 0;
}

static int
count_cb(void *ctx, const struct store_ledger_entry *e)
{
	(*(uint32_t *)ctx)++;
	return 0;
}

static int
do_verify(const char *dir, uint32_t acked, size_t max_size,
    uint32_t full_from)
{
	struct store *store;
	struct store_mailbox_info info;
	struct verify v;
	const char *error = NULL;
	uint32_t ledger = 0;

	memset(&v, 0, sizeof(v));
	v.max_size = max_size;
	v.full_from = full_from;
	if (store_open(dir, NULL, &store, &error) < 0) {
		printf("FAIL open: %s\n", error);
		return 1;
	}
	if (setup(store, &v.user, &v.inbox) < 0 ||
	    store_read_begin(store, &v.r, &error) < 0) {
		printf("FAIL setup\n");
		return 1;
	}
	v.seen = xcalloc(10000001, 1);
	if (store_msg_foreach(v.r, v.user, v.inbox, 1, UINT32_MAX, verify_msg,
	    &v, &error) != 0) {
		printf("FAIL %s\n", v.failbuf[0] ? v.failbuf : error);
		return 1;
	}
	if (v.count != v.max_seq) {
		printf("FAIL messages %u but highest seq %u: a gap\n", v.count,
		    v.max_seq);
		return 1;
	}
	if (v.max_seq < acked) {
		printf("FAIL acknowledged %u but only %u stored\n", acked,
		    v.max_seq);
		return 1;
	}
	for (uint32_t s = 1; s <= v.max_seq; s++) {
		struct store_ledger_entry e;
		struct store_msg msg;
		char uidl[32];

		snprintf(uidl, sizeof(uidl), "uidl-%010u", s);
		if (store_ledger_lookup(v.r, v.user, ACCOUNT, uidl,
		    strlen(uidl), &e, NULL) != 0 || e.mailbox_id != v.inbox ||
		    store_msg_get(v.r, v.user, v.inbox, e.uid, &msg,
		    NULL) != 0) {
			printf("FAIL seq %u: ledger entry missing or wrong\n",
			    s);
			return 1;
		}
	}
	if (store_ledger_foreach(v.r, v.user, ACCOUNT, count_cb, &ledger,
	    NULL) != 0 || ledger != v.max_seq) {
		printf("FAIL ledger has %u entries, store %u messages\n",
		    ledger, v.max_seq);
		return 1;
	}
	if (store_mailbox_get(v.r, v.user, v.inbox, &info, NULL) != 0 ||
	    info.messages != v.count) {
		printf("FAIL mailbox counter\n");
		return 1;
	}
	printf("OK messages=%u uidnext=%u\n", v.count, info.uidnext);
	store_read_end(&v.r);
	store_close(&store);
	free(v.seen);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "write") == 0)
		return do_write(argv[2], argc - 3, argv + 3);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "verify") == 0)
		return do_verify(argv[2], (uint32_t)strtoul(argv[3], NULL, 10),
		    strtoul(argv[4], NULL, 10), argc == 6 ?
		    (uint32_t)strtoul(argv[5], NULL, 10) : 1);
	fprintf(stderr, "usage: store_crash_writer write DIR [BATCH [MAX_SIZE "
	    "[MAP_SIZE [FSIZE]]]] | verify DIR ACKED MAX_SIZE [FULL_FROM]\n");
	return 2;
}
