/* Check suite for the store's writer thread: group commit, per-job
   rollback, events after the durable commit in commit order with their
   origin, retry alone when room runs out, stop with jobs queued, and the
   same job semantics without a writer. Also run under ThreadSanitizer. */
#include <pthread.h>
#include <signal.h>

#include "store_test_util.h"

/* ---- the owner's side: a wake-up flag and a change log ---- */

struct owner {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int wakeups;
	/* what the owner saw, in order: 'e' + uid for an event, 'd' + id
	   for a done callback */
	char seen[4096];
	size_t seen_len;
	int done_count;
	uint64_t last_origin;
};

static void
owner_notify(void *arg)
{
	struct owner *o = arg;

	pthread_mutex_lock(&o->mu);
	o->wakeups++;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static void
owner_init(struct owner *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
}

static void
owner_note(struct owner *o, char what, unsigned n)
{
	o->seen_len += (size_t)snprintf(o->seen + o->seen_len,
	    sizeof(o->seen) - o->seen_len, "%c%u ", what, n);
}

static void
owner_change(void *arg, const struct store_change *ch)
{
	struct owner *o = arg;

	if (ch->kind == STORE_CHANGE_NEW)
		for (size_t i = 0; i < ch->uid_count; i++)
			owner_note(o, 'e', ch->uids[i]);
	o->last_origin = ch->origin;
}

static void
owner_run_until(struct store *store, struct owner *o, int want_done)
{
	while (o->done_count < want_done) {
		pthread_mutex_lock(&o->mu);
		while (o->wakeups == 0)
			pthread_cond_wait(&o->cv, &o->mu);
		o->wakeups = 0;
		pthread_mutex_unlock(&o->mu);
		store_writer_drain(store);
	}
}

/* ---- jobs ---- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open, reached;
};

static void
gate_wait(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->reached = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
gate_wait_reached(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->reached)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* Opens the gate a little later, from another thread, so the owner is
 * already inside store_writer_stop() (no timing is asserted on). */
static void *
gate_open_later(void *arg)
{
	usleep(50 * 1000);
	gate_open(arg);
	return NULL;
}

struct djob {
	unsigned id;
	struct owner *owner;
	uint32_t user, mailbox;
	size_t size;		/* body bytes (0: a short text) */
	bool fail_after;	/* deliver, then fail the job */
	bool second_call;	/* also create a mailbox */
	struct gate *gate;
	/* results */
	uint32_t uid;
	int rc;
	enum store_error cls;
	bool done;
};

static int
djob_apply(struct store *store, void *ctx, const char **error_r)
{
	struct djob *j = ctx;
	struct store_new_msg m;
	char *body = NULL;
	char name[32];
	int rc;

	if (j->gate != NULL)
		gate_wait(j->gate);
	memset(&m, 0, sizeof(m));
	if (j->size > 0) {
		body = malloc(j->size);
		memset(body, 'x', j->size);
		m.data = body;
		m.size = j->size;
	} else {
		m.data = "Subject: t\r\n\r\nbody\r\n";
		m.size = strlen(m.data);
	}
	m.internaldate = 1700000000;
	if (j->second_call) {
		snprintf(name, sizeof(name), "made-by-%u", j->id);
		if (store_mailbox_create(store, j->user, name, 0, NULL,
		    error_r) < 0) {
			free(body);
			return -1;
		}
	}
	rc = store_deliver(store, j->user, j->mailbox, &m, 1, &j->uid, NULL,
	    error_r);
	free(body);
	if (rc == 0 && j->fail_after) {
		*error_r = "failed on purpose";
		return -1;
	}
	return rc;
}

static void
djob_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct djob *j = ctx;

	(void)error;
	j->rc = rc;
	j->cls = cls;
	j->done = true;
	j->owner->done_count++;
	owner_note(j->owner, 'd', j->id);
}

static void
djob_init(struct djob *j, struct owner *o, unsigned id, uint32_t user,
    uint32_t mailbox)
{
	memset(j, 0, sizeof(*j));
	j->id = id;
	j->owner = o;
	j->user = user;
	j->mailbox = mailbox;
}

/* Without a writer: the job runs in the call, events then done. */
START_TEST(writer_absent_runs_job_in_the_caller)
{
	struct tstore t;
	struct owner o;
	struct djob j;

	tstore_open(&t, 0);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	store_set_change_cb(t.store, owner_change, &o);
	djob_init(&j, &o, 1, u, inbox);
	store_write_submit(t.store, u, 42, 0, djob_apply, djob_done, &j);
	ck_assert(j.done);
	ck_assert_int_eq(j.rc, 0);
	ck_assert_uint_eq(j.uid, 1);
	ck_assert_str_eq(o.seen, "e1 d1 ");
	ck_assert_uint_eq(o.last_origin, 42);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* 200 jobs queued while the writer is held: far fewer commits than
 * jobs, every job durable, events and done callbacks in commit order. */
START_TEST(writer_groups_jobs_into_few_commits)
{
	struct tstore t;
	struct owner o;
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	    false, false };
	struct djob *jobs = calloc(201, sizeof(*jobs));
	struct store_writer_stats st;
	const char *err = NULL;

	tstore_open(&t, 0);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	store_set_change_cb(t.store, owner_change, &o);
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	ck_assert(store_writer_running(t.store));
	djob_init(&jobs[0], &o, 0, u, inbox);
	jobs[0].gate = &g;
	store_write_submit(t.store, u, 7, 0, djob_apply, djob_done, &jobs[0]);
	gate_wait_reached(&g);
	for (unsigned i = 1; i <= 200; i++) {
		djob_init(&jobs[i], &o, i, u, inbox);
		store_write_submit(t.store, u, 7, 0, djob_apply, djob_done,
		    &jobs[i]);
	}
	gate_open(&g);
	owner_run_until(t.store, &o, 201);
	store_writer_get_stats(t.store, &st);
	ck_assert_uint_eq(st.jobs, 201);
	ck_assert_uint_le(st.commits, 3);	/* 1 + 200 (in 1 or 2) */
	for (unsigned i = 0; i <= 200; i++) {
		ck_assert_int_eq(jobs[i].rc, 0);
		ck_assert_uint_eq(jobs[i].uid, i + 1);	/* one key: FIFO */
	}
	/* every job's event comes just before its own done */
	{
		char want[4096];
		size_t n = 0;

		for (unsigned i = 0; i <= 200; i++)
			n += (size_t)snprintf(want + n, sizeof(want) - n,
			    "e%u d%u ", i + 1, i);
		ck_assert_str_eq(o.seen, want);
	}
	ck_assert_uint_eq(o.last_origin, 7);
	store_writer_stop(t.store);
	ck_assert(!store_writer_running(t.store));
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 201);
	tstore_reopen(&t);	/* durable: still there after reopening */
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 201);
	tstore_check(&t);
	tstore_close(&t);
	free(jobs);
}
END_TEST

/* In one group: a job that fails after writing, one whose mailbox does
 * not exist, and good ones. The failed ones leave nothing, not even the
 * mailbox the first one created before failing; the others commit. */
START_TEST(writer_failed_job_is_rolled_back_alone)
{
	struct tstore t;
	struct owner o;
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	    false, false };
	struct djob j[5];
	const char *err = NULL;
	struct store_read *r;
	struct store_mailbox_info info;

	tstore_open(&t, 0);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	store_set_change_cb(t.store, owner_change, &o);
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	for (unsigned i = 0; i < 5; i++)
		djob_init(&j[i], &o, i, u, inbox);
	j[0].gate = &g;
	j[1].fail_after = true;
	j[1].second_call = true;
	j[2].mailbox = 999;	/* no such mailbox */
	store_write_submit(t.store, u, 1, 0, djob_apply, djob_done, &j[0]);
	gate_wait_reached(&g);
	for (unsigned i = 1; i < 5; i++)
		store_write_submit(t.store, u, 1, 0, djob_apply, djob_done,
		    &j[i]);
	gate_open(&g);
	owner_run_until(t.store, &o, 5);
	ck_assert_int_eq(j[0].rc, 0);
	ck_assert_int_eq(j[1].rc, -1);
	ck_assert_int_eq(j[2].rc, -1);
	ck_assert_int_eq(j[2].cls, STORE_ERR_NOTFOUND);
	ck_assert_int_eq(j[3].rc, 0);
	ck_assert_int_eq(j[4].rc, 0);
	/* the failed job's UID 2 was rolled back with it, never seen by
	   anyone: the next delivery gets it */
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 3);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_mailbox_lookup(r, u, "made-by-1", &info, NULL),
	    STORE_NOT_FOUND);
	store_read_end(&r);
	/* no event of the failed jobs */
	ck_assert_str_eq(o.seen, "e1 d0 d1 d2 e2 d3 e3 d4 ");
	store_writer_stop(t.store);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* A small map that may not grow (map_max): a group with a small job and
 * one too big for the room left. The big one is re-run alone (and fails
 * alone, NOSPACE); the small one commits. */
START_TEST(writer_retries_alone_when_room_runs_out)
{
	struct tstore t;
	struct owner o;
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	    false, false };
	struct djob j[3];
	const char *err = NULL;
	struct store_writer_stats st;

	tstore_open_max(&t, 2 * 1024 * 1024, 2 * 1024 * 1024);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	for (unsigned i = 0; i < 3; i++)
		djob_init(&j[i], &o, i, u, inbox);
	j[0].gate = &g;
	j[2].size = 4 * 1024 * 1024;	/* more than the map */
	store_write_submit(t.store, u, 0, 0, djob_apply, djob_done, &j[0]);
	gate_wait_reached(&g);
	store_write_submit(t.store, u, 0, 0, djob_apply, djob_done, &j[1]);
	store_write_submit(t.store, u, 0, j[2].size, djob_apply, djob_done,
	    &j[2]);
	gate_open(&g);
	owner_run_until(t.store, &o, 3);
	ck_assert_int_eq(j[0].rc, 0);
	ck_assert_int_eq(j[1].rc, 0);
	ck_assert_int_eq(j[2].rc, -1);
	ck_assert_int_eq(j[2].cls, STORE_ERR_NOSPACE);
	store_writer_get_stats(t.store, &st);
	ck_assert_uint_eq(st.retried_alone, 1);
	store_writer_stop(t.store);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 2);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* The map grows while the disk has room: 2 MB to start, 24 MB of mail
 * in jobs of 4 MB, every one stored, the data checked. */
START_TEST(writer_grows_the_map)
{
	struct tstore t;
	struct owner o;
	struct djob j[6];
	const char *err = NULL;
	struct store_space sp;

	tstore_open(&t, 2 * 1024 * 1024);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	for (unsigned i = 0; i < 6; i++) {
		djob_init(&j[i], &o, i, u, inbox);
		j[i].size = 4 * 1024 * 1024;
		/* half of them announce no size: the map grows after they
		   fail for room, and they run again */
		store_write_submit(t.store, u, 0, i % 2 ? j[i].size : 0,
		    djob_apply, djob_done, &j[i]);
	}
	owner_run_until(t.store, &o, 6);
	for (unsigned i = 0; i < 6; i++)
		ck_assert_int_eq(j[i].rc, 0);
	ck_assert_int_eq(store_space_get(t.store, &sp, &err), 0);
	ck_assert_uint_ge(sp.grows, 1);
	ck_assert_uint_ge(sp.map_size, 24 * 1024 * 1024);
	ck_assert_uint_le(sp.used, sp.map_size);
	store_writer_stop(t.store);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 6);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

struct holder {
	struct store *store;
	struct gate *hold;	/* holds the snapshot until this opens */
	struct gate ready;
	uint32_t user;
	char name_before[64];
	char name_after[64];
	bool nested_ok;
};

/* Another thread holds a snapshot and a pointer into the map. */
static void *
holder_main(void *arg)
{
	struct holder *h = arg;
	struct store_read *r = NULL, *r2 = NULL;
	struct store_user_info info;

	ck_assert_int_eq(store_read_begin(h->store, &r, NULL), 0);
	ck_assert_int_eq(store_user_get(r, h->user, &info, NULL), 0);
	snprintf(h->name_before, sizeof(h->name_before), "%s", info.name);
	gate_open(&h->ready);
	gate_wait(h->hold);
	/* the growth waits for this snapshot: the map was not moved under
	   the pointer; and a thread that holds a snapshot may take another
	   while a growth is pending (no deadlock) */
	snprintf(h->name_after, sizeof(h->name_after), "%s", info.name);
	h->nested_ok = store_read_begin(h->store, &r2, NULL) == 0;
	store_read_end(&r2);
	store_read_end(&r);
	return NULL;
}

/* LMDB's rule: mdb_env_set_mapsize() only with no transaction open in
 * the process. A snapshot held on another thread holds the growth back
 * (its pointers stay valid); once it ends, the map grows and the job
 * that needed it is stored. */
START_TEST(writer_growth_waits_for_snapshots)
{
	struct tstore t;
	struct owner o;
	struct gate hold = { PTHREAD_MUTEX_INITIALIZER,
	    PTHREAD_COND_INITIALIZER, false, false };
	struct holder h;
	struct djob j;
	pthread_t th;
	const char *err = NULL;
	struct store_space sp;

	tstore_open(&t, 2 * 1024 * 1024);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(&h, 0, sizeof(h));
	h.store = t.store;
	h.hold = &hold;
	h.user = u;
	pthread_mutex_init(&h.ready.mu, NULL);
	pthread_cond_init(&h.ready.cv, NULL);
	ck_assert_int_eq(pthread_create(&th, NULL, holder_main, &h), 0);
	gate_wait(&h.ready);	/* until the holder opened it */
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	djob_init(&j, &o, 0, u, inbox);
	j.size = 6 * 1024 * 1024;
	store_write_submit(t.store, u, 0, j.size, djob_apply, djob_done, &j);
	usleep(200 * 1000);
	store_writer_drain(t.store);
	ck_assert(!j.done);	/* waiting for the snapshot */
	ck_assert_int_eq(store_space_get(t.store, &sp, &err), 0);
	ck_assert_uint_eq(sp.grows, 0);
	gate_open(&hold);
	pthread_join(th, NULL);
	owner_run_until(t.store, &o, 1);
	ck_assert_str_eq(h.name_before, "alice");
	ck_assert_str_eq(h.name_after, "alice");
	ck_assert(h.nested_ok);
	/* stored, unless the snapshot outlasted two waits (a very slow
	   machine): then it failed cleanly for room, nothing half-done */
	if (j.rc == 0) {
		ck_assert_int_eq(store_space_get(t.store, &sp, &err), 0);
		ck_assert_uint_ge(sp.grows, 1);
	} else {
		ck_assert_int_eq(j.cls, STORE_ERR_NOSPACE);
	}
	store_writer_stop(t.store);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, j.rc == 0 ? 1 : 0);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* Stop with jobs queued behind a held one: every one runs and commits;
 * a job submitted after the stop runs directly. */
START_TEST(writer_stop_commits_what_is_queued)
{
	struct tstore t;
	struct owner o;
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	    false, false };
	struct djob j[21];
	const char *err = NULL;
	pthread_t th;

	tstore_open(&t, 0);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	for (unsigned i = 0; i < 21; i++)
		djob_init(&j[i], &o, i, u, inbox);
	j[0].gate = &g;
	store_write_submit(t.store, u, 0, 0, djob_apply, djob_done, &j[0]);
	gate_wait_reached(&g);
	for (unsigned i = 1; i < 20; i++)
		store_write_submit(t.store, u + i % 3, 0, 0, djob_apply,
		    djob_done, &j[i]);
	ck_assert_int_eq(pthread_create(&th, NULL, gate_open_later, &g), 0);
	store_writer_stop(t.store);
	pthread_join(th, NULL);
	for (unsigned i = 0; i < 20; i++) {
		ck_assert(j[i].done);
		ck_assert_int_eq(j[i].rc, 0);
	}
	store_write_submit(t.store, u, 0, 0, djob_apply, djob_done, &j[20]);
	ck_assert(j[20].done);
	ck_assert_int_eq(j[20].rc, 0);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 21);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* store_write_sync: the caller waits for the durable commit; every job
 * finished before it has its events and done first, then its own. */
START_TEST(writer_sync_waits_and_keeps_commit_order)
{
	struct tstore t;
	struct owner o;
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	    false, false };
	struct djob a, b, c;
	const char *err = NULL;
	pthread_t th;

	tstore_open(&t, 0);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	store_set_change_cb(t.store, owner_change, &o);
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	djob_init(&a, &o, 1, u, inbox);
	djob_init(&b, &o, 2, u, inbox);
	djob_init(&c, &o, 3, u, inbox);
	a.gate = &g;
	store_write_submit(t.store, u, 5, 0, djob_apply, djob_done, &a);
	store_write_submit(t.store, u, 5, 0, djob_apply, djob_done, &b);
	gate_wait_reached(&g);
	ck_assert_int_eq(pthread_create(&th, NULL, gate_open_later, &g), 0);
	/* c's apply through the sync path: its ctx reaches apply */
	ck_assert_int_eq(store_write_sync(t.store, u, 6, 0, djob_apply, &c,
	    &err), 0);
	pthread_join(th, NULL);
	ck_assert_uint_eq(c.uid, 3);
	ck_assert(a.done && b.done);
	/* a and b had their events and done callbacks before c's event */
	ck_assert_str_eq(o.seen, "e1 d1 e2 d2 e3 ");
	ck_assert_uint_eq(o.last_origin, 6);
	/* a failing sync job: -1, the class on this thread, nothing left */
	djob_init(&c, &o, 4, u, 999);
	ck_assert_int_eq(store_write_sync(t.store, u, 6, 0, djob_apply, &c,
	    &err), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_NOTFOUND);
	ck_assert_ptr_nonnull(err);
	store_writer_stop(t.store);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 3);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* A done callback that waits for a write of its own (a nested drain):
 * jobs the outer drain took but has not dispatched yet still come first,
 * so every change event stays in commit order however drains nest. */
static struct {
	struct store *store;
	struct djob *inner;
} nest;

static void
nest_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	const char *err = NULL;

	djob_done(ctx, rc, cls, error);
	ck_assert_int_eq(store_write_sync(nest.store, nest.inner->user, 7, 0,
	    djob_apply, nest.inner, &err), 0);
}

START_TEST(writer_nested_drain_keeps_commit_order)
{
	struct tstore t;
	struct owner o;
	struct djob a, b, c, d;
	const char *err = NULL;

	tstore_open(&t, 0);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	store_set_change_cb(t.store, owner_change, &o);
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	djob_init(&a, &o, 1, u, inbox);
	djob_init(&b, &o, 2, u, inbox);
	djob_init(&c, &o, 3, u, inbox);
	djob_init(&d, &o, 4, u, inbox);
	nest.store = t.store;
	nest.inner = &d;
	store_write_submit(t.store, u, 5, 0, djob_apply, nest_done, &a);
	store_write_submit(t.store, u, 5, 0, djob_apply, djob_done, &b);
	/* waits for c, so a, b and c are all finished when its drain runs;
	   a's done then commits d and drains again, inside the first */
	ck_assert_int_eq(store_write_sync(t.store, u, 6, 0, djob_apply, &c,
	    &err), 0);
	ck_assert(a.done && b.done);
	ck_assert_uint_eq(d.uid, 4);
	ck_assert_str_eq(o.seen, "e1 d1 e2 d2 e3 e4 ");
	store_writer_stop(t.store);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* A reader that sees a commit catches up with its events on demand:
 * once the message is visible in a snapshot, store_writer_catch_up()
 * returns only after the job's events and done ran on the owner. */
START_TEST(writer_catch_up_delivers_what_a_reader_sees)
{
	struct tstore t;
	struct owner o;
	struct djob a;
	const char *err = NULL;

	tstore_open(&t, 0);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	store_set_change_cb(t.store, owner_change, &o);
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	djob_init(&a, &o, 1, u, inbox);
	store_write_submit(t.store, u, 5, 0, djob_apply, djob_done, &a);
	while (tinfo(&t, u, inbox).messages == 0)
		usleep(100);
	store_writer_catch_up(t.store);
	ck_assert(a.done);
	ck_assert_str_eq(o.seen, "e1 d1 ");
	/* nothing new: returns at once, nothing dispatched twice */
	store_writer_catch_up(t.store);
	ck_assert_str_eq(o.seen, "e1 d1 ");
	store_writer_stop(t.store);
	tstore_close(&t);
}
END_TEST

/* With a writer running, a direct write from the owner thread is a bug
 * the store refuses loudly (it would wait on the writer's lock and
 * publish its events out of order). */
START_TEST(writer_direct_write_from_owner_aborts)
{
	struct tstore t;
	struct owner o;
	const char *err = NULL;

	tstore_open(&t, 0);
	owner_init(&o);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	ck_assert_int_eq(store_writer_start(t.store, owner_notify, &o, &err),
	    0);
	tdeliver(&t, u, inbox, "x", 0);
}
END_TEST

static Suite *
writer_suite(void)
{
	Suite *s = suite_create("store_writer");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, writer_absent_runs_job_in_the_caller);
	tcase_add_test(tc, writer_groups_jobs_into_few_commits);
	tcase_add_test(tc, writer_failed_job_is_rolled_back_alone);
	tcase_add_test(tc, writer_retries_alone_when_room_runs_out);
	tcase_add_test(tc, writer_grows_the_map);
	tcase_add_test(tc, writer_growth_waits_for_snapshots);
	tcase_add_test(tc, writer_stop_commits_what_is_queued);
	tcase_add_test(tc, writer_sync_waits_and_keeps_commit_order);
	tcase_add_test(tc, writer_nested_drain_keeps_commit_order);
	tcase_add_test(tc, writer_catch_up_delivers_what_a_reader_sees);
	tcase_add_test_raise_signal(tc, writer_direct_write_from_owner_aborts,
	    SIGABRT);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(writer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
