/*
 * pop3_fetch — drives the POP3 upstream without the gateway, for the
 * integration tests, the crash test and the benchmark.
 *
 *   pop3_fetch --store DIR --user NAME [--polls N] [--interval-ms MS]
 *       [--host-max N] [--breaker N] [--backoff-ms MS] [--debug]
 *       [--dump DIR] [--no-poll] [--clock-offset-days N] [--expunge N]
 *       [--map-size BYTES] [--legacy-ledger]
 *       --account id=a,host=H,port=P,tls=stls|pop3s|none,ca=FILE,
 *                 fp=HEX,auth=auto|user|apop|plain|login,login=L,
 *                 password=PW,mode=keep|delete|delete-after|mirror,
 *                 days=N,mailbox=NAME,limit=BYTES,trace=1,timeout-ms=MS
 *       [--account ...]
 *
 * Opens (creating) the store, creates the user if needed, polls every
 * account N times (0: until killed; safe to SIGKILL at any point), then
 * prints one line per poll ("poll account=... outcome=... fetched=...")
 * and a summary line ("pop3_fetch: polls=... fetched=... bytes=...
 * deleted=... failed=..."). --dump writes every stored message of the
 * user to DIR/<mailbox-id>-<uid>.eml and the ledger to DIR/ledger.txt.
 * --legacy-ledger rewrites every ledger entry in the format of stores
 * from before fingerprints (24 bytes, no size/fingerprint), before polling;
 * --legacy-ledger-80 in that of stores from before header digests (80
 * bytes: no header digest, no LIST size).
 * SIGTERM stops gracefully (upstream stop_graceful: a poll that has sent
 * DELEs ends with QUIT), prints "stopped" and exits as below.
 * Exit status: 0 when the last poll of every account succeeded, 1 if one
 * failed, 2 on a usage or store error.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <lmdb.h>

#include "evnotify.h"
#include "log.h"
#include "pop3-upstream/pop3-poller.h"
#include "store/store-private.h"
#include "store/store.h"
#include "workq.h"
#include "xmalloc.h"

#define MAX_ACCOUNTS 64

static time_t clock_offset;

static time_t
shifted_now(void)
{
	return time(NULL) + clock_offset;
}

struct ctx {
	struct event_base *base;
	struct store *store;
	struct workq *workq;
	struct upstream *u;
	unsigned int polls_wanted;
	unsigned int interval_ms;
	size_t naccts;
	unsigned int polls_done[MAX_ACCOUNTS];
	char *ids[MAX_ACCOUNTS];
	int last_ok[MAX_ACCOUNTS];
	uint64_t fetched, bytes, deleted;
	unsigned int failed;
};

/* The daemon's thread model (gateway/popgated.c): parsing on workers,
 * deliveries through the writer, results back on this loop. */
static void
workq_drain_cb(void *arg)
{
	struct ctx *c = arg;

	if (c->workq != NULL)
		workq_drain(c->workq);
}

static void
writer_drain_cb(void *arg)
{
	struct ctx *c = arg;

	store_writer_drain(c->store);
}

static int
parse_account(char *spec, struct upstream_account *a)
{
	char *save = NULL;

	memset(a, 0, sizeof(*a));
	for (char *kv = strtok_r(spec, ",", &save); kv != NULL;
	    kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (v == NULL)
			return -1;
		*v++ = '\0';
		if (strcmp(kv, "id") == 0)
			a->id = v;
		else if (strcmp(kv, "host") == 0)
			a->host = v;
		else if (strcmp(kv, "port") == 0)
			a->port = (uint16_t)atoi(v);
		else if (strcmp(kv, "tls") == 0) {
			if (upstream_tls_parse(v, &a->tls) < 0)
				return -1;
		} else if (strcmp(kv, "ca") == 0)
			a->ca_file = v;
		else if (strcmp(kv, "fp") == 0)
			a->fingerprint = v;
		else if (strcmp(kv, "auth") == 0) {
			if (upstream_auth_parse(v, &a->auth) < 0)
				return -1;
		} else if (strcmp(kv, "login") == 0)
			a->login = v;
		else if (strcmp(kv, "password") == 0)
			a->password = v;
		else if (strcmp(kv, "mode") == 0) {
			if (upstream_mode_parse(v, &a->mode) < 0)
				return -1;
		} else if (strcmp(kv, "days") == 0)
			a->delete_after_days = (uint32_t)atoi(v);
		else if (strcmp(kv, "mailbox") == 0)
			a->mailbox = v;
		else if (strcmp(kv, "limit") == 0)
			a->size_limit = strtoull(v, NULL, 10);
		else if (strcmp(kv, "trace") == 0)
			a->trace = atoi(v) != 0;
		else if (strcmp(kv, "timeout-ms") == 0) {
			unsigned int ms = (unsigned int)atoi(v);

			a->timeouts.connect_ms = ms;
			a->timeouts.tls_ms = ms;
			a->timeouts.greeting_ms = ms;
			a->timeouts.command_ms = ms;
			a->timeouts.stall_ms = ms;
		} else
			return -1;
	}
	a->interval_secs = 3600;
	return 0;
}

static void
on_stopped(void *arg)
{
	struct ctx *c = arg;

	printf("stopped\n");
	fflush(stdout);
	event_base_loopexit(c->base, NULL);
}

static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct ctx *c = arg;

	(void)sig;
	(void)what;
	c->u->ops->stop_graceful(c->u, on_stopped, c);
}

static void
on_poll(void *arg, const char *id, const struct pop3_result *res)
{
	struct ctx *c = arg;
	struct upstream_status st;
	const char *err = NULL;
	size_t i;

	for (i = 0; i < c->naccts; i++) {
		if (strcmp(c->ids[i], id) == 0)
			break;
	}
	if (i == c->naccts)
		return;
	c->polls_done[i]++;
	c->fetched += res->fetched;
	c->bytes += res->fetched_bytes;
	c->deleted += res->deleted;
	c->last_ok[i] = res->outcome == POP3_OUTCOME_OK;
	if (!c->last_ok[i])
		c->failed++;
	memset(&st, 0, sizeof(st));
	(void)c->u->ops->status(c->u, id, &st, &err);
	printf("poll account=%s outcome=%s fetched=%u bytes=%llu deleted=%u "
	    "skipped=%u size_mismatch=%u checked_top=%u checked_retr=%u "
	    "known=%u known_top=%u state=%s import_done=%u "
	    "import_total=%u import_bytes=%llu rate=%.0f last_success=%lld "
	    "failures=%u next_in=%lld strategy=\"%s\" error=\"%s\"\n", id,
	    pop3_outcome_name(res->outcome), res->fetched,
	    (unsigned long long)res->fetched_bytes, res->deleted,
	    res->skipped, res->size_mismatch, res->checked_top,
	    res->checked_retr, res->known, res->known_top,
	    upstream_state_name(st.state),
	    st.import_done, st.import_total,
	    (unsigned long long)st.import_bytes, st.import_rate,
	    (long long)st.last_success, st.consecutive_failures,
	    st.next_poll != 0 ? (long long)(st.next_poll - time(NULL)) : -1LL,
	    st.uidl_strategy, st.last_error);
	fflush(stdout);
	if (c->polls_wanted != 0 && c->polls_done[i] < c->polls_wanted &&
	    c->u->ops->poll_now(c->u, id, &err) < 0)
		c->polls_done[i] = c->polls_wanted;	/* breaker open */
	if (c->polls_wanted != 0) {
		for (size_t k = 0; k < c->naccts; k++) {
			if (c->polls_done[k] < c->polls_wanted)
				return;
		}
		event_base_loopexit(c->base, NULL);
	}
}

struct dump {
	struct store *store;
	uint32_t user;
	const char *dir;
	FILE *ledger;
	uint32_t mailbox;
	unsigned int count;
	int err;
};

static int
dump_msg(void *arg, const struct store_msg *m)
{
	struct dump *d = arg;
	struct store_read *r = NULL;
	const void *data;
	size_t size;
	const char *err = NULL;
	char path[4096];
	FILE *f;

	if (store_read_begin(d->store, &r, &err) < 0 ||
	    store_msg_body(r, d->user, d->mailbox, m->uid, &data, &size,
	    &err) != 0) {
		fprintf(stderr, "dump: %s\n", err ? err : "body missing");
		store_read_end(&r);
		d->err = 1;
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%u-%u.eml", d->dir, d->mailbox,
	    m->uid);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, size, f) != size) {
		d->err = 1;
	}
	if (f != NULL)
		fclose(f);
	store_read_end(&r);
	d->count++;
	return 0;
}

static int
dump_mailbox(void *arg, const struct store_mailbox_info *info)
{
	struct dump *d = arg;
	struct store_read *r = NULL;
	const char *err = NULL;

	d->mailbox = info->id;
	fprintf(d->ledger, "mailbox %u %s %u\n", info->id, info->name,
	    info->messages);
	if (store_read_begin(d->store, &r, &err) < 0)
		return 1;
	(void)store_msg_foreach(r, d->user, info->id, 1, UINT32_MAX, dump_msg,
	    d, &err);
	store_read_end(&r);
	return d->err;
}

static int
dump_ledger(void *arg, const struct store_ledger_entry *e)
{
	struct dump *d = arg;
	char esc[LOG_PEER_TEXT_MAX + 1];

	fprintf(d->ledger, "ledger \"%s\" mailbox=%u uid=%u deleted=%d\n",
	    log_escape(esc, sizeof(esc), e->uidl, e->uidl_size),
	    e->mailbox_id, e->uid, e->deleted_upstream ? 1 : 0);
	return 0;
}

static int
do_dump(struct store *store, uint32_t user, const char *dir, char **ids,
    size_t nids)
{
	struct dump d = { store, user, dir, NULL, 0, 0, 0 };
	struct store_read *r = NULL;
	const char *err = NULL;
	char path[4096];

	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/ledger.txt", dir);
	d.ledger = fopen(path, "w");
	if (d.ledger == NULL)
		return -1;
	if (store_read_begin(store, &r, &err) < 0)
		return -1;
	(void)store_mailbox_foreach(r, user, dump_mailbox, &d, &err);
	for (size_t i = 0; i < nids; i++)
		(void)store_ledger_foreach(r, user, ids[i], dump_ledger, &d,
		    &err);
	store_read_end(&r);
	fclose(d.ledger);
	printf("dump: messages=%u\n", d.count);
	return d.err ? -1 : 0;
}

/* Expunges the first n messages of INBOX (as an IMAP user would), for
 * the mirror-mode test. */
static int
expunge_first(struct store *store, uint32_t user, unsigned int n)
{
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	uint32_t *uids = NULL, *gone = NULL;
	size_t count = 0, gone_count = 0;
	struct store_uid_range range;
	const char *err = NULL;
	int rc;

	if (store_read_begin(store, &r, &err) < 0)
		return -1;
	rc = store_mailbox_lookup(r, user, "INBOX", &info, &err);
	if (rc == 0)
		rc = store_msg_uids(r, user, info.id, &uids, &count, &err);
	store_read_end(&r);
	if (rc != 0 || count == 0) {
		free(uids);
		return rc < 0 ? -1 : 0;
	}
	range.first = uids[0];
	range.last = uids[n < count ? n - 1 : count - 1];
	rc = store_expunge(store, user, info.id, &range, 1, false, &gone,
	    &gone_count, &err);
	printf("expunged=%zu\n", gone_count);
	free(uids);
	free(gone);
	return rc;
}

/* Every ledger entry as a store from before fingerprints wrote it: the
 * first 24 bytes of the record, without STORE_LEDGER_F_FINGERPRINT; with
 * size 80, as one from before header digests wrote it. */
static int
legacy_ledger(struct store *store, size_t size)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	unsigned int n = 0;
	int rc;

	rc = mdb_txn_begin(store->env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, store->dbi[DB_LEDGER], &cur);
	for (int op = MDB_FIRST; rc == 0; op = MDB_NEXT) {
		struct store_ledgerrec lr;
		unsigned char kb[STORE_KEY_MAX];

		rc = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);
		if (rc != 0)
			break;
		/* the key must not point into the page being rewritten */
		if (k.mv_size > sizeof(kb)) {
			rc = MDB_BAD_VALSIZE;
			break;
		}
		memcpy(kb, k.mv_data, k.mv_size);
		k.mv_data = kb;
		memset(&lr, 0, sizeof(lr));
		memcpy(&lr, v.mv_data, v.mv_size < sizeof(lr) ? v.mv_size :
		    sizeof(lr));
		lr.flags &= size == 24 ? ~STORE_LEDGER_F_FINGERPRINT :
		    ~STORE_LEDGER_F_HEAD;
		v.mv_data = &lr;
		v.mv_size = size;
		rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
		n++;
	}
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		fprintf(stderr, "pop3_fetch: legacy ledger: %s\n",
		    mdb_strerror(rc));
		if (txn != NULL)
			mdb_txn_abort(txn);
		return -1;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		fprintf(stderr, "pop3_fetch: legacy ledger: %s\n",
		    mdb_strerror(rc));
		return -1;
	}
	printf("legacy-ledger=%u\n", n);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *store_dir = NULL, *user = NULL, *dump_dir = NULL;
	struct upstream_account accts[MAX_ACCOUNTS];
	struct pop3_poller_options opt;
	struct pop3_client_env env;
	struct store *store = NULL;
	struct store_options sopt;
	struct store_read *r = NULL;
	struct ctx c;
	const char *err = NULL;
	uint32_t user_id = 0;
	bool no_poll = false;
	size_t legacy = 0;
	unsigned int expunge = 0;
	struct event *sig_term = NULL;
	int rc, status = 0;

	memset(&c, 0, sizeof(c));
	memset(&opt, 0, sizeof(opt));
	memset(&sopt, 0, sizeof(sopt));
	c.polls_wanted = 1;
	opt.start_spread_ms = 1;
	log_open("pop3_fetch", LOG_TARGET_STDERR, LOG_LEVEL_INFO);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--debug") == 0) {
			log_set_level(LOG_LEVEL_DEBUG);
			continue;
		}
		if (strcmp(a, "--no-poll") == 0) {
			no_poll = true;
			continue;
		}
		if (strcmp(a, "--legacy-ledger") == 0) {
			legacy = 24;
			continue;
		}
		if (strcmp(a, "--legacy-ledger-80") == 0) {
			legacy = 80;
			continue;
		}
		if (v == NULL)
			goto usage;
		i++;
		if (strcmp(a, "--store") == 0)
			store_dir = v;
		else if (strcmp(a, "--user") == 0)
			user = v;
		else if (strcmp(a, "--polls") == 0)
			c.polls_wanted = (unsigned int)atoi(v);
		else if (strcmp(a, "--interval-ms") == 0)
			c.interval_ms = (unsigned int)atoi(v);
		else if (strcmp(a, "--host-max") == 0)
			opt.host_max_conns = (unsigned int)atoi(v);
		else if (strcmp(a, "--breaker") == 0)
			opt.auth_breaker = (unsigned int)atoi(v);
		else if (strcmp(a, "--backoff-ms") == 0)
			opt.backoff_base_ms = (unsigned int)atoi(v);
		else if (strcmp(a, "--map-size") == 0) {
			/* a store of this size: it does not grow (the
			   full-store cases need it full) */
			sopt.map_size = strtoull(v, NULL, 10);
			sopt.map_max = sopt.map_size;
		}
		else if (strcmp(a, "--expunge") == 0)
			expunge = (unsigned int)atoi(v);
		else if (strcmp(a, "--clock-offset-days") == 0)
			clock_offset = (time_t)atoi(v) * 86400;
		else if (strcmp(a, "--dump") == 0)
			dump_dir = v;
		else if (strcmp(a, "--account") == 0) {
			if (c.naccts == MAX_ACCOUNTS ||
			    parse_account(argv[i], &accts[c.naccts]) < 0)
				goto usage;
			c.ids[c.naccts] = accts[c.naccts].id;
			c.naccts++;
		} else
			goto usage;
	}
	if (store_dir == NULL || user == NULL)
		goto usage;
	mkdir(store_dir, 0700);
	if (store_open(store_dir, &sopt, &store, &err) < 0) {
		fprintf(stderr, "pop3_fetch: store: %s\n", err);
		return 2;
	}
	if (store_read_begin(store, &r, &err) < 0) {
		fprintf(stderr, "pop3_fetch: store: %s\n", err);
		return 2;
	}
	rc = store_user_lookup(r, user, &user_id, &err);
	store_read_end(&r);
	if (rc == STORE_NOT_FOUND)
		rc = store_user_create(store, user, "", 0, &user_id, &err);
	if (rc != 0) {
		fprintf(stderr, "pop3_fetch: user: %s\n", err);
		return 2;
	}
	if (expunge > 0 && expunge_first(store, user_id, expunge) < 0)
		return 2;
	if (legacy > 0 && legacy_ledger(store, legacy) < 0)
		return 2;
	if (!no_poll && c.naccts > 0) {
		struct evnotify *wq_wake, *wr_wake;

		if (evthread_use_pthreads() != 0) {
			fprintf(stderr, "pop3_fetch: no libevent threads\n");
			return 2;
		}
		c.base = event_base_new();
		c.store = store;
		wq_wake = evnotify_new(c.base, workq_drain_cb, &c);
		wr_wake = evnotify_new(c.base, writer_drain_cb, &c);
		if (store_writer_start(store, evnotify_fire, wr_wake,
		    &err) < 0) {
			fprintf(stderr, "pop3_fetch: writer: %s\n", err);
			return 2;
		}
		c.workq = workq_new(0, evnotify_fire, wq_wake);
		env.workq = c.workq;
		env.base = c.base;
		env.dns = evdns_base_new(c.base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS);
		env.store = store;
		env.now = clock_offset != 0 ? shifted_now : NULL;
		c.u = pop3_upstream_new(&env, &opt);
		pop3_upstream_set_poll_hook(c.u, on_poll, &c);
		for (size_t i = 0; i < c.naccts; i++) {
			accts[i].user_id = user_id;
			if (c.interval_ms != 0)
				accts[i].interval_secs =
				    (c.interval_ms + 999) / 1000;
			if (c.u->ops->account_set(c.u, &accts[i], &err) < 0) {
				fprintf(stderr, "pop3_fetch: account %s: %s\n",
				    accts[i].id ? accts[i].id : "?", err);
				return 2;
			}
		}
		/* a test may lower RLIMIT_FSIZE under us (prlimit): the
		   store then sees EFBIG, as it would ENOSPC */
		signal(SIGXFSZ, SIG_IGN);
		c.u->ops->start(c.u, &err);
		sig_term = evsignal_new(c.base, SIGTERM, on_sigterm, &c);
		if (sig_term == NULL || evsignal_add(sig_term, NULL) < 0) {
			fprintf(stderr, "pop3_fetch: cannot catch SIGTERM\n");
			return 2;
		}
		event_base_dispatch(c.base);
		event_free(sig_term);
		for (size_t i = 0; i < c.naccts; i++) {
			if (!c.last_ok[i])
				status = 1;
		}
		c.u->ops->free(&c.u);
		workq_free(&c.workq);
		store_writer_stop(store);
		evnotify_free(&wq_wake);
		evnotify_free(&wr_wake);
		if (env.dns != NULL)
			evdns_base_free(env.dns, 0);
		event_base_free(c.base);
		printf("pop3_fetch: polls=%u fetched=%llu bytes=%llu "
		    "deleted=%llu failed=%u\n", c.polls_done[0],
		    (unsigned long long)c.fetched,
		    (unsigned long long)c.bytes,
		    (unsigned long long)c.deleted, c.failed);
	}
	if (dump_dir != NULL && do_dump(store, user_id, dump_dir, c.ids,
	    c.naccts) < 0)
		status = 2;
	store_close(&store);
	return status;
usage:
	fprintf(stderr, "usage: see the comment at the top of "
	    "tests/tools/pop3_fetch.c\n");
	return 2;
}
