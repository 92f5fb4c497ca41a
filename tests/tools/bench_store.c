/*
 * bench_store DIR — the store's benchmark (run by tests/bench/bench_store.sh
 * from the release build). DIR must be an empty directory on the disk the
 * store would live on. Prints one line per figure:
 *
 *   - body placement: the same messages stored as files fsync'd one by one
 *     (plus a directory fsync per batch) versus inside LMDB, one durable
 *     commit per batch;
 *   - durable delivery of 10,000 generated messages of realistic sizes,
 *     batched: messages/s and MB/s;
 *   - a 100,000-message mailbox: listing UID + flags + MODSEQ of every
 *     message; adding a flag to all; memory (RSS) as the mailbox grows.
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/mail-fts.h"
#include "store/mail-message.h"
#include "store/mail-parse.h"
#include "store/mail-serialize.h"
#include "store/store.h"
#include "strbuf.h"
#include "tests/unit/lib/msggen.h"
#include "tests/unit/lib/textgen.h"
#include "xmalloc.h"

#define DELIVER_COUNT 10000
#define DELIVER_BATCH 100
#define BIG_COUNT 100000
#define BIG_BATCH 1000
#define BIG_MSG_SIZE 1024
#define PLACEMENT_COUNT 2000
#define TEXT_COUNT 10000
#define TEXT_BATCH 100

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "VmRSS" / "RssAnon" / "RssFile" of this process, in KiB. */
static long
status_kb(const char *field)
{
	char line[256];
	long v = -1;
	size_t len = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, len) == 0 && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static void
die(const char *what, const char *error)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, error != NULL ? error :
	    "failed");
	exit(1);
}

static struct store *
open_store(const char *dir, const char *sub, uint32_t *user_r,
    uint32_t *inbox_r)
{
	char path[4096];
	struct store *store;
	struct store_read *r;
	struct store_mailbox_info info;
	const char *error = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (mkdir(path, 0700) < 0)
		die(path, "mkdir");
	if (store_open(path, NULL, &store, &error) < 0)
		die("open", error);
	if (store_user_create(store, "bench", "x", 0, user_r, &error) < 0)
		die("user", error);
	if (store_read_begin(store, &r, &error) < 0 ||
	    store_mailbox_lookup(r, *user_r, "INBOX", &info, &error) != 0)
		die("INBOX", error);
	*inbox_r = info.id;
	store_read_end(&r);
	return store;
}

/* Delivers count generated messages (sizes from msggen unless fixed_size)
   in batches; returns seconds and total bytes. */
static double
deliver(struct store *store, uint32_t user, uint32_t mbox, uint32_t first,
    size_t count, size_t batch, size_t fixed_size, uint64_t *bytes_r,
    long *rss_samples, size_t sample_every)
{
	struct store_new_msg *msgs = xcalloc(batch, sizeof(*msgs));
	char **bufs = xcalloc(batch, sizeof(*bufs));
	char (*uidls)[32] = xcalloc(batch, sizeof(*uidls));
	uint32_t *uids = xcalloc(batch, sizeof(*uids));
	const char *error = NULL;
	double t0, spent = 0;
	uint64_t bytes = 0;

	for (size_t i = 0; i < batch; i++)
		bufs[i] = xmalloc(1100 * 1024);
	for (size_t done = 0; done < count; done += batch) {
		size_t n = count - done < batch ? count - done : batch;

		for (size_t i = 0; i < n; i++) {
			uint32_t seq = first + (uint32_t)(done + i);
			size_t size = fixed_size != 0 ? fixed_size :
			    msggen_size(seq, 0);

			msggen_fill(seq, bufs[i], size);
			snprintf(uidls[i], sizeof(uidls[i]), "u%u", seq);
			msgs[i].data = bufs[i];
			msgs[i].size = size;
			msgs[i].structure = bufs[i];
			msgs[i].structure_size = 200;	/* a parse-sized blob */
			msgs[i].internaldate = 1700000000 + seq;
			msgs[i].account = "upstream";
			msgs[i].uidl = uidls[i];
			msgs[i].uidl_size = strlen(uidls[i]);
			bytes += size;
		}
		t0 = now();
		if (store_deliver(store, user, mbox, msgs, n, uids, NULL,
		    &error) < 0)
			die("deliver", error);
		spent += now() - t0;
		if (rss_samples != NULL && (done + n) % sample_every == 0)
			rss_samples[(done + n) / sample_every] =
			    status_kb("RssAnon");
	}
	for (size_t i = 0; i < batch; i++)
		free(bufs[i]);
	free(bufs);
	free(msgs);
	free(uidls);
	free(uids);
	*bytes_r = bytes;
	return spent;
}

/* The disk's own sequential write speed, for scale: 256 MB in 1 MB writes
   and one fdatasync, as dd conv=fdatasync does. */
static double
raw_disk_mbs(const char *dir)
{
	char path[4096];
	char *buf = xcalloc(1, 1024 * 1024);
	double t0;
	int fd;

	snprintf(path, sizeof(path), "%s/raw", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		die(path, "open");
	memset(buf, 'x', 1024 * 1024);
	t0 = now();
	for (int i = 0; i < 256; i++) {
		if (write(fd, buf, 1024 * 1024) != 1024 * 1024)
			die(path, "write");
	}
	if (fdatasync(fd) < 0)
		die(path, "fdatasync");
	t0 = now() - t0;
	close(fd);
	unlink(path);
	free(buf);
	return 256 * 1024 * 1024 / 1e6 / t0;
}

static void
placement(const char *dir)
{
	char path[4096];
	char *buf = xmalloc(1100 * 1024);
	uint64_t bytes = 0, lmdb_bytes;
	double t0, files_s, lmdb_s;
	struct store *store;
	uint32_t user, inbox;
	int dfd;

	snprintf(path, sizeof(path), "%s/files", dir);
	if (mkdir(path, 0700) < 0 || (dfd = open(path, O_RDONLY)) < 0)
		die(path, "mkdir");
	t0 = now();
	for (uint32_t n = 1; n <= PLACEMENT_COUNT; n++) {
		size_t size = msggen_size(n, 0);
		int fd;

		msggen_fill(n, buf, size);
		snprintf(path, sizeof(path), "%s/files/%u", dir, n);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, buf, size) != (ssize_t)size ||
		    fsync(fd) < 0 || close(fd) < 0)
			die(path, "write");
		bytes += size;
		if (n % DELIVER_BATCH == 0 && fsync(dfd) < 0)
			die("dir", "fsync");
	}
	files_s = now() - t0;
	close(dfd);
	free(buf);
	store = open_store(dir, "placement", &user, &inbox);
	lmdb_s = deliver(store, user, inbox, 1, PLACEMENT_COUNT, DELIVER_BATCH,
	    0, &lmdb_bytes, NULL, 0);
	store_close(&store);
	printf("body placement (%d msgs, %.1f MB, batch %d): "
	    "files+fsync each %.0f msgs/s %.1f MB/s | "
	    "in LMDB, one commit per batch %.0f msgs/s %.1f MB/s | "
	    "ratio LMDB/files %.2f\n", PLACEMENT_COUNT, bytes / 1e6,
	    DELIVER_BATCH, PLACEMENT_COUNT / files_s, bytes / 1e6 / files_s,
	    PLACEMENT_COUNT / lmdb_s, lmdb_bytes / 1e6 / lmdb_s,
	    files_s / lmdb_s);
}

/*
 * The full-text index's cost at delivery, on realistic text mail
 * (textgen): the same batches delivered into two stores, one without
 * index terms and one with them, alternating batch by batch so that
 * other load on the machine weighs on both alike. What a worker does
 * (parse and blob; the terms and the batch's segment) is CPU time of
 * this thread; what the writer does (store_deliver: the segment write,
 * merges, the durable commit) is wall time.
 */
struct text_side {
	struct store *store;
	uint32_t user, mbox;
	bool with_index;
	double parse_cpu, terms_cpu, seg_cpu, deliver_s, deliver_cpu;
};

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One batch as a worker hands it to the writer. */
struct text_batch {
	struct text_side *side;
	const struct strbuf *data;
	size_t n;
	uint32_t first;
	struct store_new_msg msgs[TEXT_BATCH];
	struct strbuf blob[TEXT_BATCH];
	struct mail_fts_terms terms[TEXT_BATCH];
	struct store_fts_doc docs[TEXT_BATCH];
	const struct store_fts_doc *dp[TEXT_BATCH];
	struct strbuf segment;
};

/* The worker's part: parse, structure blob, terms, batch segment. */
static void *
prepare_text_batch(void *arg)
{
	struct text_batch *b = arg;
	struct text_side *side = b->side;
	double t0;

	for (size_t i = 0; i < b->n; i++) {
		struct mail_message *mm;

		t0 = cpu_now();
		mm = mail_parse(b->data[i].data, b->data[i].len, NULL);
		mail_serialize(mm, &b->blob[i]);
		side->parse_cpu += cpu_now() - t0;
		b->msgs[i].data = b->data[i].data;
		b->msgs[i].size = b->data[i].len;
		b->msgs[i].structure = b->blob[i].data;
		b->msgs[i].structure_size = b->blob[i].len;
		b->msgs[i].internaldate = 1700000000 + b->first + i;
		if (side->with_index) {
			t0 = cpu_now();
			mail_fts_message_terms(b->data[i].data,
			    b->data[i].len, mm, &b->terms[i]);
			side->terms_cpu += cpu_now() - t0;
			b->docs[i].terms = b->terms[i].terms;
			b->docs[i].count = b->terms[i].count;
			b->docs[i].saturated = b->terms[i].saturated;
			b->dp[i] = &b->docs[i];
			b->msgs[i].fts = &b->docs[i];
		}
		mail_message_free(&mm);
	}
	if (side->with_index) {
		t0 = cpu_now();
		store_fts_batch_build(b->dp, b->n, &b->segment);
		side->seg_cpu += cpu_now() - t0;
		side->terms_cpu += cpu_now() - t0;
		b->msgs[0].fts_batch = b->segment.data;
		b->msgs[0].fts_batch_size = b->segment.len;
	}
	return NULL;
}

/*
 * A batch prepared on a thread of its own (a worker: its own malloc
 * arena, as in the daemon, so the writer's heap sees only the writer's
 * allocations), then delivered on this one (the writer).
 */
static void
deliver_text_batch(struct text_side *side, const struct strbuf *data,
    size_t n, uint32_t first)
{
	struct text_batch *b = xcalloc(1, sizeof(*b));
	uint32_t uids[TEXT_BATCH];
	const char *error = NULL;
	pthread_t th;
	double t0, c0;

	b->side = side;
	b->data = data;
	b->n = n;
	b->first = first;
	if (pthread_create(&th, NULL, prepare_text_batch, b) != 0 ||
	    pthread_join(th, NULL) != 0)
		die("worker thread", "pthread");
	t0 = now();
	c0 = cpu_now();
	if (store_deliver(side->store, side->user, side->mbox, b->msgs, n,
	    uids, NULL, &error) < 0)
		die("deliver", error);
	side->deliver_s += now() - t0;
	side->deliver_cpu += cpu_now() - c0;
	for (size_t i = 0; i < n; i++) {
		strbuf_free(&b->blob[i]);
		mail_fts_terms_free(&b->terms[i]);
	}
	strbuf_free(&b->segment);
	free(b);
}

static void
index_cost(const char *dir)
{
	struct text_side off, on;
	struct strbuf data[TEXT_BATCH];
	struct store_read *r;
	struct store_fts_stats st;
	const char *error = NULL;
	uint64_t bytes = 0;
	double w_off, w_on, t0, merge_s;

	memset(&off, 0, sizeof(off));
	memset(&on, 0, sizeof(on));
	memset(data, 0, sizeof(data));
	off.store = open_store(dir, "text-noindex", &off.user, &off.mbox);
	on.store = open_store(dir, "text-index", &on.user, &on.mbox);
	on.with_index = true;
	/* as under the daemon's writer thread: merges wait for idle */
	store_fts_defer_merges(on.store, true);
	for (uint32_t done = 0; done < TEXT_COUNT; done += TEXT_BATCH) {
		for (size_t i = 0; i < TEXT_BATCH; i++) {
			textgen_message(done + (uint32_t)i + 1, &data[i]);
			bytes += data[i].len;
		}
		/* alternate which goes first */
		if ((done / TEXT_BATCH) % 2 == 0) {
			deliver_text_batch(&off, data, TEXT_BATCH, done);
			deliver_text_batch(&on, data, TEXT_BATCH, done);
		} else {
			deliver_text_batch(&on, data, TEXT_BATCH, done);
			deliver_text_batch(&off, data, TEXT_BATCH, done);
		}
	}
	for (size_t i = 0; i < TEXT_BATCH; i++)
		strbuf_free(&data[i]);
	/* the merges left for the writer's idle moments */
	t0 = now();
	while (store_fts_idle_step(on.store) > 0)
		;
	merge_s = now() - t0;
	if (store_read_begin(on.store, &r, &error) < 0 ||
	    store_fts_stat(r, on.user, &st, &error) < 0)
		die("index stats", error);
	store_read_end(&r);
	w_off = TEXT_COUNT / off.deliver_s;
	w_on = TEXT_COUNT / on.deliver_s;
	printf("index cost, %d text msgs (avg %.1f KB, batch %d, durable): "
	    "writer %.0f msgs/s without index, %.0f with (%.0f%%); worker CPU "
	    "per msg: parse %.0f us, index terms %.0f us (%.0f MB/s per "
	    "core); parse+terms+deliver %.0f -> %.0f msgs/s (%.0f%%)\n",
	    TEXT_COUNT, bytes / 1024.0 / TEXT_COUNT, TEXT_BATCH, w_off, w_on,
	    100 * w_on / w_off, 1e6 * on.parse_cpu / TEXT_COUNT,
	    1e6 * on.terms_cpu / TEXT_COUNT, bytes / 1e6 / on.terms_cpu,
	    TEXT_COUNT / (off.parse_cpu + off.deliver_s),
	    TEXT_COUNT / (on.parse_cpu + on.terms_cpu + on.deliver_s),
	    100 * (off.parse_cpu + off.deliver_s) /
	    (on.parse_cpu + on.terms_cpu + on.deliver_s));
	printf("of the index terms: batch segment build %.0f us per msg; "
	    "writer CPU per msg (store_deliver, durable commit excluded "
	    "wait) %.0f us without index, %.0f with (%.0f%%)\n",
	    1e6 * on.seg_cpu / TEXT_COUNT, 1e6 * off.deliver_cpu / TEXT_COUNT,
	    1e6 * on.deliver_cpu / TEXT_COUNT,
	    100 * off.deliver_cpu / on.deliver_cpu);
	printf("index merges deferred to idle: %.2f s after the burst; "
	    "writer counting them %.0f msgs/s (%.0f%%)\n", merge_s,
	    TEXT_COUNT / (on.deliver_s + merge_s),
	    100 * off.deliver_s / (on.deliver_s + merge_s));
	printf("index size: %.1f MB for %.1f MB of mail (%.1f%%), %llu "
	    "segments\n", st.bytes / 1e6, bytes / 1e6,
	    100.0 * st.bytes / bytes, (unsigned long long)st.segments);
	store_close(&off.store);
	store_close(&on.store);
}

struct list_ctx {
	struct {
		uint32_t uid, flags;
		uint64_t modseq;
	} *out;
	size_t n;
};

static int
list_cb(void *ctx, const struct store_msg *msg)
{
	struct list_ctx *l = ctx;

	l->out[l->n].uid = msg->uid;
	l->out[l->n].flags = msg->flags.system;
	l->out[l->n++].modseq = msg->modseq;
	return 0;
}

int
main(int argc, char **argv)
{
	struct store *store;
	struct store_read *r;
	struct store_flag_result fr;
	struct store_uid_range all = { 1, UINT32_MAX };
	struct list_ctx l;
	const char *error = NULL;
	uint32_t user, inbox, big;
	uint64_t bytes;
	double secs, best = 1e9, first_run = 0;
	long rss[BIG_COUNT / 25000 + 1];

	if (argc != 2 && !(argc == 3 && strcmp(argv[2], "index") == 0)) {
		fprintf(stderr, "usage: bench_store EMPTY_DIR [index]\n");
		return 2;
	}
	if (argc == 3) {	/* the index's figures alone */
		setvbuf(stdout, NULL, _IOLBF, 0);
		index_cost(argv[1]);
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Keep the benchmark's own 1 MB message buffers out of the heap, so
	   that the memory figures show the store, not glibc's retained
	   arena. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	double raw = raw_disk_mbs(argv[1]);
	printf("raw disk: %.0f MB/s sequential (256 x 1 MB writes + "
	    "fdatasync), for scale\n", raw);
	placement(argv[1]);
	index_cost(argv[1]);

	store = open_store(argv[1], "store", &user, &inbox);
	secs = deliver(store, user, inbox, 1, DELIVER_COUNT, DELIVER_BATCH, 0,
	    &bytes, NULL, 0);
	printf("durable delivery (%d msgs of realistic sizes, avg %.1f KB, "
	    "batch %d): %.0f msgs/s, %.1f MB/s (%.2f s; %.0f%% of the raw "
	    "disk)\n", DELIVER_COUNT, bytes / 1024.0 / DELIVER_COUNT,
	    DELIVER_BATCH, DELIVER_COUNT / secs, bytes / 1e6 / secs, secs,
	    100 * bytes / 1e6 / secs / raw);
	secs = deliver(store, user, inbox, 20001, 5000, 500, 0, &bytes, NULL,
	    0);
	printf("durable delivery, batch 500 (5000 msgs): %.0f msgs/s, "
	    "%.1f MB/s\n", 5000 / secs, bytes / 1e6 / secs);
	secs = deliver(store, user, inbox, DELIVER_COUNT + 1, 2000, 10, 0,
	    &bytes, NULL, 0);
	printf("durable delivery, batch 10 (2000 msgs): %.0f msgs/s, "
	    "%.1f MB/s\n", 2000 / secs, bytes / 1e6 / secs);

	if (store_mailbox_create(store, user, "big", 0, &big, &error) < 0)
		die("mailbox", error);
	rss[0] = status_kb("RssAnon");
	secs = deliver(store, user, big, 100000, BIG_COUNT, BIG_BATCH,
	    BIG_MSG_SIZE, &bytes, rss, 25000);
	printf("filled a %d-message mailbox (%d B each, batch %d) in %.1f s "
	    "(%.0f msgs/s)\n", BIG_COUNT, BIG_MSG_SIZE, BIG_BATCH, secs,
	    BIG_COUNT / secs);
	printf("memory while the mailbox grows (RssAnon KiB at 0/25k/50k/75k/"
	    "100k msgs): %ld %ld %ld %ld %ld; growth 25k->100k: %ld KiB\n",
	    rss[0], rss[1], rss[2], rss[3], rss[4], rss[4] - rss[1]);

	l.out = xcalloc(BIG_COUNT, sizeof(*l.out));
	for (int i = 0; i < 5; i++) {
		double t0 = now();

		l.n = 0;
		if (store_read_begin(store, &r, &error) < 0 ||
		    store_msg_foreach(r, user, big, 1, UINT32_MAX, list_cb, &l,
		    &error) != 0)
			die("list", error);
		store_read_end(&r);
		secs = now() - t0;
		if (i == 0)
			first_run = secs;
		if (secs < best)
			best = secs;
		if (l.n != BIG_COUNT)
			die("list", "wrong count");
	}
	printf("list UID+flags+MODSEQ of %d messages: %.1f ms (best of 5; "
	    "first %.1f ms)\n", BIG_COUNT, best * 1e3, first_run * 1e3);
	{
		double t0 = now();
		uint32_t *uids;
		size_t n;

		if (store_read_begin(store, &r, &error) < 0 ||
		    store_msg_uids(r, user, big, &uids, &n, &error) < 0)
			die("uids", error);
		store_read_end(&r);
		printf("UID list (sequence map) of %zu messages: %.1f ms\n", n,
		    (now() - t0) * 1e3);
		free(uids);
	}
	{
		double t0 = now();

		if (store_flags_update(store, user, big, &all, 1,
		    STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, NULL, 0, 0, &fr,
		    &error) < 0)
			die("flags", error);
		secs = now() - t0;
		printf("add \\Flagged to all %zu messages (one durable "
		    "transaction): %.0f ms\n", fr.changed_count, secs * 1e3);
		store_flag_result_free(&fr);
	}
	printf("memory after listing and flagging (RssAnon KiB): %ld; "
	    "VmRSS %ld (includes mapped file pages, which the kernel may "
	    "drop)\n", status_kb("RssAnon"), status_kb("VmRSS"));
	free(l.out);
	store_close(&store);
	return 0;
}
