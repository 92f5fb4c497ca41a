/*
 * store-check — the offline consistency checker: re-derives every counter
 * and reference from the records and reports each disagreement. Used by
 * the integration tests after every test and by the crash test.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail-sortkey.h"
#include "store-private.h"
#include "username.h"
#include "xmalloc.h"

struct check {
	struct store *store;
	MDB_txn *txn;
	FILE *report;
	unsigned int problems;
	/* Body references seen in messages: (user, body id). */
	struct body_ref {
		uint32_t user;
		uint64_t body;
		uint64_t size;
		uint32_t structure_size;
	} *refs;
	size_t ref_count, ref_cap;
};

static void
vproblem(struct check *c, const char *fmt, va_list ap)
{
	c->problems++;
	if (c->report == NULL)
		return;
	fputs("store-check: ", c->report);
	vfprintf(c->report, fmt, ap);
	fputc('\n', c->report);
}

static void __attribute__((format(printf, 2, 3)))
problem(struct check *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(c, fmt, ap);
	va_end(ap);
}

/* The index checker's report goes through problem(). */
static void __attribute__((format(printf, 2, 3)))
fts_problem(void *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vproblem(ctx, fmt, ap);
	va_end(ap);
}

/* Every user's full-text index agrees with the user's bodies. */
static void
check_fts(struct check *c)
{
	MDB_cursor *cur;
	MDB_val key, data;
	int rc;

	if (mdb_cursor_open(c->txn, c->store->dbi[DB_USERS], &cur) != 0)
		return;
	for (rc = mdb_cursor_get(cur, &key, &data, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT)) {
		if (key.mv_size == 4)
			(void)store_fts_check_user(c->store, c->txn,
			    store_get_u32(key.mv_data), fts_problem, c);
	}
	mdb_cursor_close(cur);
}

static bool
get(struct check *c, enum store_db db, struct store_key *k, MDB_val *data)
{
	MDB_val key = store_key_val(k);

	return mdb_get(c->txn, c->store->dbi[db], &key, data) == 0;
}

static int
ref_cmp(const void *a, const void *b)
{
	const struct body_ref *x = a, *y = b;

	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	return x->body < y->body ? -1 : x->body > y->body;
}

/* Walks db; cb gets each item. */
static void
walk(struct check *c, enum store_db db,
    void (*cb)(struct check *c, const MDB_val *key, const MDB_val *data))
{
	MDB_cursor *cur;
	MDB_val key, data;
	int rc;

	if (mdb_cursor_open(c->txn, c->store->dbi[db], &cur) != 0) {
		problem(c, "cannot open cursor on db %d", (int)db);
		return;
	}
	for (rc = mdb_cursor_get(cur, &key, &data, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT))
		cb(c, &key, &data);
	if (rc != MDB_NOTFOUND)
		problem(c, "cursor error on db %d: %s", (int)db,
		    mdb_strerror(rc));
	mdb_cursor_close(cur);
}

static bool
user_exists(struct check *c, uint32_t user)
{
	struct store_key k;
	MDB_val data;

	store_key_init(&k);
	store_key_u32(&k, user);
	return get(c, DB_USERS, &k, &data);
}

static bool
mailbox_rec(struct check *c, uint32_t user, uint32_t mbox,
    struct store_mbrec *rec)
{
	struct store_key k;
	MDB_val data;

	store_mb_key(&k, user, mbox);
	if (!get(c, DB_MAILBOXES, &k, &data) || data.mv_size < sizeof(*rec))
		return false;
	memcpy(rec, data.mv_data, sizeof(*rec));
	return true;
}

static void
check_user(struct check *c, const MDB_val *key, const MDB_val *data)
{
	struct store_userrec rec;
	struct store_key k;
	MDB_val d;
	uint32_t user, id;

	if (key->mv_size != 4 || data->mv_size < sizeof(rec) + 2) {
		problem(c, "malformed user record");
		return;
	}
	user = store_get_u32(key->mv_data);
	memcpy(&rec, data->mv_data, sizeof(rec));
	store_key_init(&k);
	store_key_bytes(&k, (const char *)data->mv_data + sizeof(rec),
	    rec.name_len);
	if (!get(c, DB_USERNAMES, &k, &d) || d.mv_size != 4 ||
	    (memcpy(&id, d.mv_data, 4), id != user))
		problem(c, "user %u: name index does not point back", user);
}

static void
check_username(struct check *c, const MDB_val *key, const MDB_val *data)
{
	uint32_t id;

	if (data->mv_size != 4) {
		problem(c, "malformed user name entry");
		return;
	}
	memcpy(&id, data->mv_data, 4);
	if (!user_exists(c, id))
		problem(c, "user name entry for missing user %u", id);
}

struct folded_name {
	char *canon;
	char *name;
	uint32_t id;
};

static int
folded_cmp(const void *a, const void *b)
{
	const struct folded_name *x = a, *y = b;
	int r = strcmp(x->canon, y->canon);

	return r != 0 ? r : strcmp(x->name, y->name);
}

/* Names that are one under case folding (username.h, the gateway's
 * default): the gateway reaches only one of them by login, so each pair is
 * a problem for the admin to resolve, never merged here. */
static void
check_name_folding(struct check *c)
{
	struct folded_name *v = NULL;
	size_t n = 0, alloc = 0;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc;

	if (mdb_cursor_open(c->txn, c->store->dbi[DB_USERNAMES], &cur) != 0)
		return;
	for (rc = mdb_cursor_get(cur, &key, &data, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT)) {
		if (data.mv_size != 4)
			continue;
		if (n == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			v = xreallocarray(v, alloc, sizeof(*v));
		}
		v[n].name = xstrndup(key.mv_data, key.mv_size);
		v[n].canon = username_canon_dup(v[n].name, true);
		memcpy(&v[n].id, data.mv_data, 4);
		n++;
	}
	mdb_cursor_close(cur);
	if (n > 0)
		qsort(v, n, sizeof(*v), folded_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(v[i - 1].canon, v[i].canon) == 0)
			problem(c, "users %u \"%s\" and %u \"%s\" are one name "
			    "under case folding (\"%s\"); keep one",
			    v[i - 1].id, v[i - 1].name, v[i].id, v[i].name,
			    v[i].canon);
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].canon);
	}
	free(v);
}

static void
check_mailbox(struct check *c, const MDB_val *key, const MDB_val *data)
{
	struct store_mbrec rec;
	struct store_key k;
	MDB_cursor *cur;
	MDB_val mk, md, d;
	uint32_t user, mbox, id, messages = 0, unseen = 0, deleted = 0;
	uint32_t kwcount = 0;
	uint64_t size = 0;
	int rc;

	if (key->mv_size != 8 || data->mv_size < sizeof(rec) + 1) {
		problem(c, "malformed mailbox record");
		return;
	}
	user = store_get_u32(key->mv_data);
	mbox = store_get_u32((unsigned char *)key->mv_data + 4);
	memcpy(&rec, data->mv_data, sizeof(rec));
	if (!user_exists(c, user))
		problem(c, "mailbox %u of missing user %u", mbox, user);
	store_key_init(&k);
	store_key_u32(&k, user);
	store_key_bytes(&k, (const char *)data->mv_data + sizeof(rec),
	    rec.name_len);
	if (!get(c, DB_MBNAMES, &k, &d) || d.mv_size != 4 ||
	    (memcpy(&id, d.mv_data, 4), id != mbox))
		problem(c, "user %u mailbox %u: name index mismatch", user,
		    mbox);
	/* Keyword table: dense ids 0..n-1. */
	store_mb_key(&k, user, mbox);
	if (mdb_cursor_open(c->txn, c->store->dbi[DB_KEYWORDS], &cur) != 0)
		return;
	mk = store_key_val(&k);
	for (rc = mdb_cursor_get(cur, &mk, &md, MDB_SET_RANGE);
	    rc == 0 && store_key_has_prefix(&mk, &k);
	    rc = mdb_cursor_get(cur, &mk, &md, MDB_NEXT)) {
		if (mk.mv_size != 9 ||
		    ((unsigned char *)mk.mv_data)[8] != kwcount)
			problem(c, "user %u mailbox %u: keyword ids not dense",
			    user, mbox);
		kwcount++;
	}
	mdb_cursor_close(cur);
	if (kwcount != rec.keyword_count)
		problem(c, "user %u mailbox %u: keyword_count %u, table %u",
		    user, mbox, rec.keyword_count, kwcount);
	/* Recount the messages. */
	if (mdb_cursor_open(c->txn, c->store->dbi[DB_MSGS], &cur) != 0)
		return;
	mk = store_key_val(&k);
	for (rc = mdb_cursor_get(cur, &mk, &md, MDB_SET_RANGE);
	    rc == 0 && store_key_has_prefix(&mk, &k);
	    rc = mdb_cursor_get(cur, &mk, &md, MDB_NEXT)) {
		struct store_msgrec m;
		uint32_t uid = store_get_u32((unsigned char *)mk.mv_data + 8);

		if (mk.mv_size != 12 || md.mv_size != sizeof(m)) {
			problem(c, "malformed message record");
			continue;
		}
		memcpy(&m, md.mv_data, sizeof(m));
		messages++;
		size += m.size;
		if ((m.system & STORE_FLAG_SEEN) == 0)
			unseen++;
		if ((m.system & STORE_FLAG_DELETED) != 0)
			deleted++;
		if (uid == 0 || uid >= rec.uidnext)
			problem(c, "user %u mailbox %u: uid %u >= uidnext %u",
			    user, mbox, uid, rec.uidnext);
		if (m.modseq == 0 || m.modseq > rec.highestmodseq)
			problem(c, "user %u mailbox %u uid %u: modseq %llu > "
			    "highest %llu", user, mbox, uid,
			    (unsigned long long)m.modseq,
			    (unsigned long long)rec.highestmodseq);
		for (uint32_t b = rec.keyword_count; b < STORE_KEYWORDS_MAX;
		    b++) {
			if ((m.keywords[b / 64] & ((uint64_t)1 << (b % 64)))) {
				problem(c, "user %u mailbox %u uid %u: "
				    "undefined keyword %u", user, mbox, uid, b);
				break;
			}
		}
		if (c->ref_count == c->ref_cap) {
			c->ref_cap = c->ref_cap == 0 ? 1024 : c->ref_cap * 2;
			c->refs = xreallocarray(c->refs, c->ref_cap,
			    sizeof(*c->refs));
		}
		c->refs[c->ref_count].user = user;
		c->refs[c->ref_count].body = m.body_id;
		c->refs[c->ref_count].size = m.size;
		c->refs[c->ref_count++].structure_size = m.structure_size;
	}
	mdb_cursor_close(cur);
	if (messages != rec.messages || unseen != rec.unseen ||
	    deleted != rec.deleted || size != rec.size)
		problem(c, "user %u mailbox %u: counters messages=%u unseen=%u "
		    "deleted=%u size=%llu, contents %u %u %u %llu", user, mbox,
		    rec.messages, rec.unseen, rec.deleted,
		    (unsigned long long)rec.size, messages, unseen, deleted,
		    (unsigned long long)size);
}

static void
check_mbname(struct check *c, const MDB_val *key, const MDB_val *data)
{
	struct store_mbrec rec;
	uint32_t user, id;

	if (key->mv_size < 5 || data->mv_size != 4) {
		problem(c, "malformed mailbox name entry");
		return;
	}
	user = store_get_u32(key->mv_data);
	memcpy(&id, data->mv_data, 4);
	if (!mailbox_rec(c, user, id, &rec))
		problem(c, "user %u: name entry for missing mailbox %u", user,
		    id);
}

static void
check_msg_owner(struct check *c, const MDB_val *key, const MDB_val *data)
{
	struct store_mbrec rec;

	if (key->mv_size < 8 || !mailbox_rec(c, store_get_u32(key->mv_data),
	    store_get_u32((unsigned char *)key->mv_data + 4), &rec))
		problem(c, "message or keyword of a missing mailbox");
}

static void
check_vanished(struct check *c, const MDB_val *key, const MDB_val *data)
{
	struct store_mbrec rec;
	struct store_key k;
	MDB_val d;
	uint32_t user, mbox, uid;
	uint64_t modseq;

	if (key->mv_size != 20) {
		problem(c, "malformed vanished record");
		return;
	}
	user = store_get_u32(key->mv_data);
	mbox = store_get_u32((unsigned char *)key->mv_data + 4);
	modseq = store_get_u64((unsigned char *)key->mv_data + 8);
	uid = store_get_u32((unsigned char *)key->mv_data + 16);
	if (!mailbox_rec(c, user, mbox, &rec)) {
		problem(c, "vanished uid of missing mailbox %u", mbox);
		return;
	}
	if (modseq > rec.highestmodseq || uid >= rec.uidnext)
		problem(c, "user %u mailbox %u: vanished uid %u modseq %llu "
		    "beyond the mailbox", user, mbox, uid,
		    (unsigned long long)modseq);
	store_mb_key(&k, user, mbox);
	store_key_u32(&k, uid);
	if (get(c, DB_MSGS, &k, &d))
		problem(c, "user %u mailbox %u: uid %u vanished but present",
		    user, mbox, uid);
}

static void
check_user_owned(struct check *c, const MDB_val *key, const MDB_val *data)
{
	if (key->mv_size < 4 || !user_exists(c, store_get_u32(key->mv_data)))
		problem(c, "record of a missing user");
}

/* Bodies: reference counts, presence, orphans. */
static void
check_bodies(struct check *c)
{
	MDB_cursor *cur;
	MDB_val key, data;
	size_t i = 0;
	int rc;

	if (c->ref_count > 0)
		qsort(c->refs, c->ref_count, sizeof(*c->refs), ref_cmp);
	if (mdb_cursor_open(c->txn, c->store->dbi[DB_BODYINFO], &cur) != 0)
		return;
	for (rc = mdb_cursor_get(cur, &key, &data, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT)) {
		struct store_bodyrec br;
		struct body_ref at;
		struct store_key k;
		uint32_t refs = 0;
		MDB_val d;

		if (key.mv_size != 12 || data.mv_size != sizeof(br)) {
			problem(c, "malformed body info");
			continue;
		}
		memcpy(&br, data.mv_data, sizeof(br));
		at.user = store_get_u32(key.mv_data);
		at.body = store_get_u64((unsigned char *)key.mv_data + 4);
		while (i < c->ref_count && ref_cmp(&c->refs[i], &at) < 0) {
			problem(c, "user %u: message refers to missing body "
			    "%llu", c->refs[i].user,
			    (unsigned long long)c->refs[i].body);
			i++;
		}
		for (; i < c->ref_count && ref_cmp(&c->refs[i], &at) == 0; i++) {
			refs++;
			if (c->refs[i].size != br.size)
				problem(c, "user %u body %llu: size mismatch",
				    at.user, (unsigned long long)at.body);
		}
		if (refs != br.refcount)
			problem(c, "user %u body %llu: refcount %u, %u "
			    "references%s", at.user,
			    (unsigned long long)at.body, br.refcount, refs,
			    refs == 0 ? " (orphan)" : "");
		store_key_init(&k);
		store_key_bytes(&k, key.mv_data, key.mv_size);
		if (!get(c, DB_BODIES, &k, &d) || d.mv_size != br.size)
			problem(c, "user %u body %llu: bytes missing or wrong "
			    "size", at.user, (unsigned long long)at.body);
		if (br.structure_size > 0 &&
		    (!get(c, DB_STRUCTS, &k, &d) ||
		    d.mv_size != br.structure_size))
			problem(c, "user %u body %llu: structure missing",
			    at.user, (unsigned long long)at.body);
	}
	mdb_cursor_close(cur);
	for (; i < c->ref_count; i++)
		problem(c, "user %u: message refers to missing body %llu",
		    c->refs[i].user, (unsigned long long)c->refs[i].body);
}

static void
check_body_has_info(struct check *c, const MDB_val *key, const MDB_val *data)
{
	struct store_key k;
	MDB_val d;

	store_key_init(&k);
	store_key_bytes(&k, key->mv_data, key->mv_size);
	if (!get(c, DB_BODYINFO, &k, &d))
		problem(c, "orphan body or structure without body info");
}

/* A SORT/THREAD key record: of a body that exists, and readable. */
static void
check_sortkey(struct check *c, const MDB_val *key, const MDB_val *data)
{
	struct mail_sortkey sk;

	check_body_has_info(c, key, data);
	if (mail_sortkey_read(data->mv_data, data->mv_size, &sk) != 0)
		problem(c, "user %u body %llu: unreadable sort keys",
		    store_get_u32(key->mv_data), (unsigned long long)
		    store_get_u64((unsigned char *)key->mv_data + 4));
}

static int check_dir(const char *dir, FILE *report, unsigned int *problems_r,
    char *errbuf, size_t errsize, const char **error_r);

/*
 * A backup is a lone data.mdb: it is opened through a temporary directory
 * holding a link to it, so its lock file goes there and the file itself
 * is only read (opening existing databases commits nothing).
 */
struct file_view {
	char dir[64];
	char link[96];
	char lock[96];
};

static int
file_view_make(const char *file, struct file_view *v, const char **error_r)
{
	static char errbuf[300];
	const char *tmp = getenv("TMPDIR");
	char abs[PATH_MAX];

	if (realpath(file, abs) == NULL) {
		snprintf(errbuf, sizeof(errbuf), "store-check: %s: %s", file,
		    strerror(errno));
		*error_r = errbuf;
		return -1;
	}
	snprintf(v->dir, sizeof(v->dir), "%s/popgate-check-XXXXXX",
	    tmp != NULL && strlen(tmp) < 30 ? tmp : "/tmp");
	if (mkdtemp(v->dir) == NULL) {
		snprintf(errbuf, sizeof(errbuf), "store-check: temporary "
		    "directory: %s", strerror(errno));
		*error_r = errbuf;
		return -1;
	}
	snprintf(v->link, sizeof(v->link), "%s/data.mdb", v->dir);
	snprintf(v->lock, sizeof(v->lock), "%s/lock.mdb", v->dir);
	if (symlink(abs, v->link) < 0) {
		snprintf(errbuf, sizeof(errbuf), "store-check: %s",
		    strerror(errno));
		*error_r = errbuf;
		rmdir(v->dir);
		return -1;
	}
	return 0;
}

static void
file_view_remove(struct file_view *v)
{
	unlink(v->lock);
	unlink(v->link);
	rmdir(v->dir);
}

int
store_check(const char *path, FILE *report, unsigned int *problems_r,
    const char **error_r)
{
	static char errbuf[256];
	struct file_view view;
	const char *dir = path;
	bool is_file = false;
	struct stat st;
	int rc;

	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		if (file_view_make(path, &view, error_r) < 0)
			return -1;
		dir = view.dir;
		is_file = true;
	}
	rc = check_dir(dir, report, problems_r, errbuf, sizeof(errbuf),
	    error_r);
	if (is_file)
		file_view_remove(&view);
	return rc;
}

/*
 * A truncated copy (a backup cut short by a full disk, a partial
 * transfer) must be reported, not read: the map would cover pages past
 * the end of the file, and touching one is SIGBUS. The meta pages say how
 * far the data goes; they are read without the lock file and without
 * touching any other page.
 */
static int
check_size(const char *dir, char *errbuf, size_t errsize)
{
	MDB_env *env = NULL;
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	char *file = xasprintf("%s/data.mdb", dir);
	uint64_t need;
	int rc, ret = -1;

	if (stat(file, &fst) < 0) {
		snprintf(errbuf, errsize, "store-check: %s: %s", file,
		    strerror(errno));
		goto out;
	}
	if ((rc = mdb_env_create(&env)) != 0 ||
	    (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0600)) != 0 ||
	    (rc = mdb_env_info(env, &info)) != 0 ||
	    (rc = mdb_env_stat(env, &st)) != 0) {
		snprintf(errbuf, errsize, "store-check: %s: not a store: %s",
		    file, mdb_strerror(rc));
		goto out;
	}
	need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	if ((uint64_t)fst.st_size < need) {
		snprintf(errbuf, errsize, "store-check: %s is truncated: %llu "
		    "bytes, its pages need %llu", file,
		    (unsigned long long)fst.st_size,
		    (unsigned long long)need);
		goto out;
	}
	ret = 0;
out:
	if (env != NULL)
		mdb_env_close(env);
	free(file);
	return ret;
}

static int
check_dir(const char *dir, FILE *report, unsigned int *problems_r,
    char *errbuf, size_t errsize, const char **error_r)
{
	struct check c;
	int rc;

	if (check_size(dir, errbuf, errsize) < 0) {
		if (report != NULL)
			fprintf(report, "%s\n", errbuf);
		if (problems_r != NULL)
			*problems_r = 1;
		if (error_r != NULL)
			*error_r = errbuf;
		return -1;
	}
	memset(&c, 0, sizeof(c));
	c.report = report;
	if (problems_r != NULL)
		*problems_r = 0;
	if (store_open(dir, NULL, &c.store, error_r) < 0)
		return -1;
	if ((rc = mdb_txn_begin(c.store->env, NULL, MDB_RDONLY, &c.txn)) != 0) {
		snprintf(errbuf, errsize, "store-check: %s",
		    mdb_strerror(rc));
		if (error_r != NULL)
			*error_r = errbuf;
		store_close(&c.store);
		return -1;
	}
	walk(&c, DB_USERS, check_user);
	walk(&c, DB_USERNAMES, check_username);
	check_name_folding(&c);
	walk(&c, DB_MAILBOXES, check_mailbox);
	walk(&c, DB_MBNAMES, check_mbname);
	walk(&c, DB_MSGS, check_msg_owner);
	walk(&c, DB_KEYWORDS, check_msg_owner);
	walk(&c, DB_VANISHED, check_vanished);
	walk(&c, DB_USERMETA, check_user_owned);
	walk(&c, DB_SUBS, check_user_owned);
	walk(&c, DB_LEDGER, check_user_owned);
	walk(&c, DB_DIGESTS, check_user_owned);
	check_bodies(&c);
	walk(&c, DB_BODIES, check_body_has_info);
	walk(&c, DB_STRUCTS, check_body_has_info);
	walk(&c, DB_SORTKEYS, check_sortkey);
	walk(&c, DB_FTS_SEGS, check_user_owned);
	walk(&c, DB_FTS_SEGINFO, check_user_owned);
	check_fts(&c);
	mdb_txn_abort(c.txn);
	store_close(&c.store);
	free(c.refs);
	if (problems_r != NULL)
		*problems_r = c.problems;
	if (c.problems > 0) {
		snprintf(errbuf, errsize,
		    "store-check: %u problem(s) found", c.problems);
		if (error_r != NULL)
			*error_r = errbuf;
		return -1;
	}
	return 0;
}
