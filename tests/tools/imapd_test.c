/*
 * imapd_test — the IMAP server on a store, without the gateway, for the
 * integration tests and the benchmark.
 *
 *   imapd_test --dir DIR [--cert CRT --key KEY] [--plain ADDR] [--tls ADDR]
 *       [--user NAME:PASSWORD]... [--generate NAME:N] [--eml NAME:DIR]
 *       [--fast-hash] [--idle-timeout S] [--preauth-timeout S]
 *       [--max-sessions N] [--max-per-ip N] [--max-per-user N]
 *       [--max-bad N] [--max-line N] [--max-literal N]
 *       [--max-literal-preauth N] [--high-water N] [--fetch-pin-secs S]
 *       [--rawlog DIR]
 *       [--no-loopback-secure] [--allow-plaintext] [--log-level L]
 *       [--no-sortkeys]
 *       [--kick-user NAME]
 *
 * ADDR is host:port. Users are created (with the default folders) when
 * they do not exist. --generate delivers N generated messages (varied
 * headers, multipart every 5th) into the user's INBOX; --eml delivers
 * every regular file of DIR, in name order. --fast-hash hashes passwords
 * with cheap argon2 parameters (benchmarks log in thousands of times).
 * --no-sortkeys stores the messages of --generate and --eml without their
 * SORT/THREAD key records, as a store written before they existed.
 * Prints "ready plain=P tls=T" on stdout once listening; runs until
 * SIGTERM or SIGINT, then shuts down gracefully (BYE) and exits 0.
 * SIGUSR1 logs every session and the counters, and closes the sessions of
 * --kick-user (the admin-disables-a-user path of the gateway API).
 */
#include <argon2.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/rand.h>

#include "evnotify.h"
#include "imap-frontend/imap-server.h"
#include "imap-frontend/imap-spool.h"
#include "log.h"
#include "password.h"
#include "store/mail-fts.h"
#include "store/mail-parse.h"
#include "store/mail-serialize.h"
#include "store/mail-sortkey.h"
#include "store/store.h"
#include "strbuf.h"
#include "tls.h"
#include "workq.h"
#include "xmalloc.h"

#define MAX_LIST 64
#define BATCH 500

struct app {
	struct event_base *base;
	struct imap_server *srv;
	struct store *store;
	struct workq *workq;
	struct evnotify *workq_wake, *writer_wake;
	bool stopping;
	const char *kick_user;
};

static void
workq_drain_cb(void *arg)
{
	struct app *app = arg;

	if (app->workq != NULL)
		workq_drain(app->workq);
}

static void
writer_drain_cb(void *arg)
{
	struct app *app = arg;

	store_writer_drain(app->store);
}

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "imapd_test: %s: %s\n", what, err != NULL ? err : "");
	exit(1);
}

static void
fast_hash(const char *pw, char *out)
{
	unsigned char salt[16];

	RAND_bytes(salt, sizeof(salt));
	if (argon2id_hash_encoded(1, 64, 1, pw, strlen(pw), salt, sizeof(salt),
	    32, out, PASSWORD_ENCODED_MAX) != ARGON2_OK)
		die("hash", "argon2 failed");
}

static uint32_t
ensure_user(struct store *store, const char *spec, bool fast)
{
	char *name = xstrdup(spec), *pw = strchr(name, ':');
	char hash[PASSWORD_ENCODED_MAX];
	const char *err;
	struct store_read *r;
	uint32_t id;
	int rc;

	if (pw == NULL)
		die("--user wants NAME:PASSWORD", spec);
	*pw++ = '\0';
	if (store_read_begin(store, &r, &err) != 0)
		die("store", err);
	rc = store_user_lookup(r, name, &id, &err);
	store_read_end(&r);
	if (rc == 0) {
		free(name);
		return id;
	}
	if (fast)
		fast_hash(pw, hash);
	else if (password_hash(pw, strlen(pw), hash, &err) != 0)
		die("hash", err);
	if (store_user_create(store, name, hash, STORE_USER_DEFAULT_MAILBOXES,
	    &id, &err) != 0)
		die("create user", err);
	free(name);
	return id;
}

static uint32_t
user_id_of(struct store *store, const char *name)
{
	struct store_read *r;
	const char *err;
	uint32_t id;

	if (store_read_begin(store, &r, &err) != 0)
		die("store", err);
	if (store_user_lookup(r, name, &id, &err) != 0)
		die("no such user (give --user first)", name);
	store_read_end(&r);
	return id;
}

static uint32_t
inbox_of(struct store *store, uint32_t uid)
{
	struct store_read *r;
	struct store_mailbox_info info;
	const char *err;
	uint32_t id;

	if (store_read_begin(store, &r, &err) != 0 ||
	    store_mailbox_lookup(r, uid, "INBOX", &info, &err) != 0)
		die("INBOX", err);
	id = info.id;
	store_read_end(&r);
	return id;
}

/* --no-sortkeys: deliver as a store from before the key records. */
static bool opt_no_sortkeys;

struct batch {
	struct store *store;
	uint32_t user, mailbox;
	struct store_new_msg msgs[BATCH];
	struct strbuf data[BATCH], blob[BATCH], keys[BATCH];
	struct mail_fts_terms terms[BATCH];
	struct store_fts_doc docs[BATCH];
	size_t n;
};

static void
batch_flush(struct batch *b)
{
	uint32_t uids[BATCH];
	const char *err;

	if (b->n == 0)
		return;
	if (store_deliver(b->store, b->user, b->mailbox, b->msgs, b->n, uids,
	    NULL, &err) != 0)
		die("deliver", err);
	for (size_t i = 0; i < b->n; i++) {
		strbuf_reset(&b->data[i]);
		strbuf_reset(&b->blob[i]);
	}
	b->n = 0;
}

static void
batch_add(struct batch *b, struct strbuf *msg, int64_t date)
{
	size_t i = b->n;
	struct mail_message *mm;
	struct store_new_msg *m = &b->msgs[i];

	strbuf_reset(&b->data[i]);
	strbuf_append(&b->data[i], msg->data, msg->len);
	mm = mail_parse(msg->data, msg->len, NULL);
	strbuf_reset(&b->blob[i]);
	mail_serialize(mm, &b->blob[i]);
	memset(m, 0, sizeof(*m));
	if (!opt_no_sortkeys) {
		mail_sortkey_of_message(mm, msg->data, msg->len,
		    &b->keys[i]);
		m->sortkey = b->keys[i].data;
		m->sortkey_size = b->keys[i].len;
	}
	if (store_fts_enabled(b->store)) {
		mail_fts_message_terms(msg->data, msg->len, mm, &b->terms[i]);
		b->docs[i].terms = b->terms[i].terms;
		b->docs[i].count = b->terms[i].count;
		b->docs[i].saturated = b->terms[i].saturated;
		m->fts = &b->docs[i];
	}
	mail_message_free(&mm);
	m->data = b->data[i].data;
	m->size = b->data[i].len;
	m->structure = b->blob[i].data;
	m->structure_size = b->blob[i].len;
	m->internaldate = date;
	b->n++;
	if (b->n == BATCH)
		batch_flush(b);
}

static const char *const words[] = {
	"meeting", "invoice", "report", "holiday", "project", "budget",
	"schedule", "review", "lunch", "deadline", "update", "contract",
	"server", "backup", "release", "migration", "quarterly", "notes",
};

static void
generate(struct store *store, const char *spec)
{
	char *name = xstrdup(spec), *cnt = strchr(name, ':');
	struct batch *b = xcalloc(1, sizeof(*b));
	struct strbuf msg = STRBUF_INIT;
	unsigned long n;
	int64_t base = 1700000000;

	if (cnt == NULL)
		die("--generate wants NAME:N", spec);
	*cnt++ = '\0';
	n = strtoul(cnt, NULL, 10);
	b->store = store;
	b->user = user_id_of(store, name);
	b->mailbox = inbox_of(store, b->user);
	for (unsigned long i = 1; i <= n; i++) {
		const char *w1 = words[i % N_ELEMENTS(words)];
		const char *w2 = words[(i * 7 + 3) % N_ELEMENTS(words)];
		time_t t = (time_t)(base + (int64_t)i * 600);
		struct tm tm;
		char date[64];

		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
		strbuf_reset(&msg);
		strbuf_appendf(&msg, "Return-Path: <sender%lu@example.org>\r\n"
		    "Received: from mx.example.org by mail.example.com; %s\r\n"
		    "From: \"Sender %lu\" <sender%lu@example.org>\r\n"
		    "To: \"Test User\" <%s@example.com>\r\n"
		    "Cc: team%lu@example.com\r\n"
		    "Subject: %s %s number %lu\r\n"
		    "Date: %s\r\n"
		    "Message-ID: <msg%lu.%lu@example.org>\r\n"
		    "MIME-Version: 1.0\r\n", i % 97, date, i % 97, i % 97,
		    name, i % 13, w1, w2, i, date, i, (unsigned long)base);
		if (i % 5 == 0) {
			strbuf_appendf(&msg, "Content-Type: multipart/mixed; "
			    "boundary=\"b%lu\"\r\n\r\n"
			    "This is a MIME message.\r\n\r\n--b%lu\r\n"
			    "Content-Type: text/plain; charset=utf-8\r\n"
			    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
			    "Hello, the %s is attached. Gr=C3=BC=C3=9Fe.\r\n\r\n"
			    "--b%lu\r\nContent-Type: application/octet-stream; "
			    "name=\"data%lu.bin\"\r\nContent-Disposition: "
			    "attachment; filename=\"data%lu.bin\"\r\n"
			    "Content-Transfer-Encoding: base64\r\n\r\n"
			    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n"
			    "--b%lu--\r\n", i, i, w1, i, i, i, i);
		} else {
			strbuf_appends(&msg, "Content-Type: text/plain; "
			    "charset=us-ascii\r\n\r\n");
			for (unsigned k = 0; k < 3 + i % 20; k++)
				strbuf_appendf(&msg, "Line %u about the %s and "
				    "the %s, message %lu.\r\n", k, w1, w2, i);
		}
		batch_add(b, &msg, (int64_t)t);
	}
	batch_flush(b);
	for (size_t i = 0; i < BATCH; i++) {
		strbuf_free(&b->data[i]);
		strbuf_free(&b->blob[i]);
		strbuf_free(&b->keys[i]);
		mail_fts_terms_free(&b->terms[i]);
	}
	strbuf_free(&msg);
	free(b);
	free(name);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
load_eml(struct store *store, const char *spec)
{
	char *name = xstrdup(spec), *dir = strchr(name, ':');
	struct batch *b = xcalloc(1, sizeof(*b));
	DIR *d;
	struct dirent *e;
	char **files = NULL;
	size_t nf = 0;

	if (dir == NULL)
		die("--eml wants NAME:DIR", spec);
	*dir++ = '\0';
	b->store = store;
	b->user = user_id_of(store, name);
	b->mailbox = inbox_of(store, b->user);
	if ((d = opendir(dir)) == NULL)
		die("opendir", strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		files = xreallocarray(files, nf + 1, sizeof(*files));
		files[nf++] = xasprintf("%s/%s", dir, e->d_name);
	}
	closedir(d);
	qsort(files, nf, sizeof(*files), cmp_str);
	for (size_t i = 0; i < nf; i++) {
		FILE *f = fopen(files[i], "rb");
		struct strbuf msg = STRBUF_INIT;
		char buf[65536];
		size_t n;

		if (f == NULL)
			die("open", files[i]);
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			strbuf_append(&msg, buf, n);
		fclose(f);
		if (msg.len > 0)
			batch_add(b, &msg, (int64_t)time(NULL));
		strbuf_free(&msg);
		free(files[i]);
	}
	batch_flush(b);
	{
		/* what the benchmark reports: the index beside the mail */
		struct store_read *r;
		struct store_fts_stats st;
		struct store_mailbox_info info;
		const char *err;

		if (store_read_begin(store, &r, &err) == 0) {
			if (store_fts_stat(r, b->user, &st, &err) == 0 &&
			    store_mailbox_get(r, b->user, b->mailbox, &info,
			    &err) == 0)
				printf("index user=%s messages=%u "
				    "message_bytes=%llu index_bytes=%llu "
				    "segments=%llu\n", name, info.messages,
				    (unsigned long long)info.size,
				    (unsigned long long)st.bytes,
				    (unsigned long long)st.segments);
			store_read_end(&r);
			fflush(stdout);
		}
	}
	for (size_t i = 0; i < BATCH; i++) {
		strbuf_free(&b->data[i]);
		strbuf_free(&b->blob[i]);
		strbuf_free(&b->keys[i]);
		mail_fts_terms_free(&b->terms[i]);
	}
	free(files);
	free(b);
	free(name);
}

static void
shutdown_done(void *arg)
{
	struct app *app = arg;

	event_base_loopexit(app->base, NULL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct app *app = arg;

	(void)what;
	if (app->stopping)
		return;
	app->stopping = true;
	log_info("imapd_test event=signal signal=%d", (int)sig);
	imap_server_shutdown(app->srv, "Server shutting down", shutdown_done,
	    app);
}

static void
print_session(void *arg, const struct imap_session_info *info)
{
	char qu[LOG_QUOTE_MAX], qc[LOG_QUOTE_MAX], qm[LOG_QUOTE_MAX];

	(void)arg;
	log_info("imapd_test event=session id=%u user=%s addr=%s client=%s "
	    "mailbox=%s tls=%d idle=%d", info->id,
	    log_quote(qu, sizeof(qu), info->user != NULL ? info->user : "-"),
	    info->addr, log_quote(qc, sizeof(qc), info->client_id != NULL ?
	    info->client_id : ""),
	    log_quote(qm, sizeof(qm), info->mailbox != NULL ? info->mailbox :
	    "-"), (int)info->tls, (int)info->idling);
}

/* SIGUSR1: list the sessions and the counters, then close every session
 * of --kick-user (what the gateway does when the admin disables a user). */
static void
usr1_cb(evutil_socket_t sig, short what, void *arg)
{
	struct app *app = arg;
	struct imap_server_stats st;

	(void)sig;
	(void)what;
	imap_server_foreach_session(app->srv, print_session, NULL);
	imap_server_get_stats(app->srv, &st);
	log_info("imapd_test event=stats sessions=%u authenticated=%u "
	    "logins_ok=%llu logins_failed=%llu commands=%llu", st.sessions,
	    st.sessions_authenticated, (unsigned long long)st.logins_ok,
	    (unsigned long long)st.logins_failed,
	    (unsigned long long)st.commands);
	if (app->kick_user != NULL)
		log_info("imapd_test event=kicked user=%s sessions=%u",
		    app->kick_user, imap_server_kick_user(app->srv,
		    app->kick_user, "Account disabled by the administrator"));
}

static unsigned long
num_arg(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0')
		die("bad number", s);
	return v;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL, *cert = NULL, *key = NULL, *err;
	const char *plain[2] = { NULL, NULL }, *tls[2] = { NULL, NULL };
	const char *users[MAX_LIST], *gens[MAX_LIST], *emls[MAX_LIST];
	size_t nusers = 0, ngens = 0, nemls = 0;
	bool fast = false;
	unsigned workers = 0, swept;
	char spool[4096];
	struct imap_server_config cfg;
	struct store *store = NULL;
	struct app app;
	struct event *sigterm, *sigint, *sigusr1;
	const char *kick = NULL;
	struct store_options sopts;
	SSL_CTX *ctx = NULL;

	imap_server_config_init(&cfg);
	memset(&sopts, 0, sizeof(sopts));
	log_open("imapd_test", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--fast-hash") == 0) {
			fast = true;
			continue;
		}
		if (strcmp(a, "--no-loopback-secure") == 0) {
			cfg.loopback_is_secure = false;
			continue;
		}
		if (strcmp(a, "--no-sortkeys") == 0) {
			opt_no_sortkeys = true;
			continue;
		}
		if (strcmp(a, "--no-index") == 0) {
			sopts.no_fts_index = true;
			continue;
		}
		if (strcmp(a, "--allow-plaintext") == 0) {
			cfg.allow_plaintext = true;
			continue;
		}
		if (v == NULL)
			die("missing value for", a);
		i++;
		if (strcmp(a, "--dir") == 0)
			dir = v;
		else if (strcmp(a, "--cert") == 0)
			cert = v;
		else if (strcmp(a, "--key") == 0)
			key = v;
		else if (strcmp(a, "--plain") == 0)
			plain[0] = v;
		else if (strcmp(a, "--tls") == 0)
			tls[0] = v;
		else if (strcmp(a, "--user") == 0 && nusers < MAX_LIST)
			users[nusers++] = v;
		else if (strcmp(a, "--generate") == 0 && ngens < MAX_LIST)
			gens[ngens++] = v;
		else if (strcmp(a, "--eml") == 0 && nemls < MAX_LIST)
			emls[nemls++] = v;
		else if (strcmp(a, "--idle-timeout") == 0)
			cfg.limits.idle_timeout_secs = (unsigned)num_arg(v);
		else if (strcmp(a, "--preauth-timeout") == 0)
			cfg.limits.preauth_timeout_secs = (unsigned)num_arg(v);
		else if (strcmp(a, "--max-sessions") == 0)
			cfg.limits.max_sessions = (unsigned)num_arg(v);
		else if (strcmp(a, "--max-per-ip") == 0)
			cfg.limits.max_sessions_per_ip = (unsigned)num_arg(v);
		else if (strcmp(a, "--max-per-user") == 0)
			cfg.limits.max_sessions_per_user = (unsigned)num_arg(v);
		else if (strcmp(a, "--max-bad") == 0)
			cfg.limits.max_bad_commands = (unsigned)num_arg(v);
		else if (strcmp(a, "--max-line") == 0)
			cfg.limits.max_line = num_arg(v);
		else if (strcmp(a, "--max-literal") == 0)
			cfg.limits.max_literal = num_arg(v);
		else if (strcmp(a, "--max-literal-preauth") == 0)
			cfg.limits.max_literal_preauth = num_arg(v);
		else if (strcmp(a, "--max-append") == 0)
			cfg.limits.max_append = num_arg(v);
		else if (strcmp(a, "--buffer-budget") == 0)
			cfg.limits.buffer_budget = num_arg(v);
		else if (strcmp(a, "--high-water") == 0)
			cfg.limits.output_high_water = num_arg(v);
		else if (strcmp(a, "--fetch-pin-secs") == 0)
			cfg.limits.fetch_pin_secs = num_arg(v);
		else if (strcmp(a, "--rawlog") == 0)
			cfg.rawlog_dir = v;
		else if (strcmp(a, "--kick-user") == 0)
			kick = v;
		else if (strcmp(a, "--workers") == 0)
			workers = (unsigned)num_arg(v);
		else if (strcmp(a, "--log-level") == 0)
			log_set_level((enum log_level)log_level_parse(v));
		else
			die("unknown option", a);
	}
	if (dir == NULL)
		die("usage", "--dir DIR is required");
	signal(SIGPIPE, SIG_IGN);
	if (store_open(dir, &sopts, &store, &err) != 0)
		die("store_open", err);
	for (size_t i = 0; i < nusers; i++)
		ensure_user(store, users[i], fast);
	for (size_t i = 0; i < ngens; i++)
		generate(store, gens[i]);
	for (size_t i = 0; i < nemls; i++)
		load_eml(store, emls[i]);
	if (cert != NULL) {
		ctx = tls_server_ctx_new(cert, key != NULL ? key : cert, &err);
		if (ctx == NULL)
			die("tls", err);
	}
	/* the APPEND spool lives beside the store, as the daemon's does */
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	if (imap_spool_prepare_dir(spool, &swept, &err) != 0)
		die("spool", err);
	cfg.spool_dir = spool;
	cfg.plain_addrs = plain[0] != NULL ? plain : NULL;
	cfg.tls_addrs = tls[0] != NULL ? tls : NULL;
	cfg.ssl_ctx = ctx;
	memset(&app, 0, sizeof(app));
	app.kick_user = kick;
	/* the daemon's thread model: a worker pool and the writer thread,
	   woken back into this loop (gateway/popgated.c does the same) */
	if (evthread_use_pthreads() != 0)
		die("evthread", "no pthreads support in libevent");
	app.base = event_base_new();
	app.store = store;
	app.workq_wake = evnotify_new(app.base, workq_drain_cb, &app);
	app.writer_wake = evnotify_new(app.base, writer_drain_cb, &app);
	if (store_writer_start(store, evnotify_fire, app.writer_wake,
	    &err) != 0)
		die("store_writer_start", err);
	app.workq = workq_new(workers, evnotify_fire, app.workq_wake);
	cfg.workq = app.workq;
	app.srv = imap_server_new(app.base, store, &cfg, NULL, NULL, &err);
	if (app.srv == NULL)
		die("imap_server_new", err);
	SSL_CTX_free(ctx);	/* the server holds its own reference */
	store_set_change_cb(store, imap_server_on_store_change, app.srv);
	if (imap_server_listen(app.srv, &err) != 0)
		die("listen", err);
	sigterm = evsignal_new(app.base, SIGTERM, signal_cb, &app);
	sigint = evsignal_new(app.base, SIGINT, signal_cb, &app);
	sigusr1 = evsignal_new(app.base, SIGUSR1, usr1_cb, &app);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sigusr1, NULL);
	printf("ready plain=%d tls=%d\n", imap_server_plain_port(app.srv),
	    imap_server_tls_port(app.srv));
	fflush(stdout);
	event_base_dispatch(app.base);
	{
		struct imap_server_stats st;

		imap_server_get_stats(app.srv, &st);
		log_info("imapd_test event=exit sessions_total=%llu logins_ok=%llu "
		    "logins_failed=%llu commands=%llu",
		    (unsigned long long)st.sessions_total,
		    (unsigned long long)st.logins_ok,
		    (unsigned long long)st.logins_failed,
		    (unsigned long long)st.commands);
	}
	workq_free(&app.workq);
	store_writer_stop(store);
	store_set_change_cb(store, NULL, NULL);
	imap_server_free(&app.srv);
	evnotify_free(&app.workq_wake);
	evnotify_free(&app.writer_wake);
	event_free(sigterm);
	event_free(sigint);
	event_free(sigusr1);
	event_base_free(app.base);
	store_close(&store);
	log_close();
	return 0;
}
