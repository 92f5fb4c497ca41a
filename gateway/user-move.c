/* user-move — see user-move.h. */
#include "user-move.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/accounts.h"
#include "gateway/gateway.h"
#include "gateway/move-format.h"
#include "gateway/reindex.h"
#include "gateway/secret.h"
#include "gateway/upstreams.h"
#include "log.h"
#include "store/mail-parse.h"
#include "store/mail-serialize.h"
#include "store/store.h"
#include "strbuf.h"
#include "xmalloc.h"

_Static_assert(MOVE_BODY_MAX == STORE_MESSAGE_SIZE_MAX,
    "a BODY record holds the store's largest message");
_Static_assert(MOVE_ACCOUNT_MAX <= STORE_ACCOUNT_ID_MAX,
    "account names fit the ledger's account ids");

/* Messages and body bytes per store_import_messages call of the import:
 * one child transaction each, so a big mailbox is not one per message. */
#define MOVE_IMPORT_BATCH 256
#define MOVE_IMPORT_BATCH_BYTES (8u * 1024 * 1024)
/* Bytes read from the file per read(). */
#define MOVE_READ_CHUNK (256u * 1024)
/* The passphrase file: one line. */
#define MOVE_PASSFILE_MAX 4096

struct move_keys {
	unsigned char seal[SECRET_KEY_LEN];	/* secrets in the file */
	unsigned char mac[32];			/* the file's HMAC */
};

struct mac {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
};

struct move_counts {
	uint64_t mailboxes, messages, bodies, bytes, vanished, ledger;
	uint64_t accounts, settings, subscriptions;
};

enum move_kind { MOVE_EXPORT = 1, MOVE_IMPORT };

struct user_move {
	struct gateway *gw;
	enum move_kind kind;
	struct control_client *client;
	bool running;		/* a thread or a job is on it */
	pthread_t thread;
	bool thread_live;
	int pipe[2];
	struct event *done_ev;
	/* the request's copies */
	char *user;
	uint32_t user_id;	/* export: the user; import: the new id */
	char *path;
	char *tmp;		/* export: where the file is written */
	int fd;
	char *passphrase;
	bool force;
	struct timespec started;
	/* the thread's (then the job's) results */
	int result;
	char error[MOVE_ERROR_MAX + 128];
	struct move_keys keys;
	bool have_keys;
	struct move_counts counts;
	json_t *accounts;	/* import: name -> record sealed for this
				   node (pass 1 makes them) */
	char *import_user;	/* import: the user's name in the file */
	uint64_t file_size;
};

/* ---- crypto ---- */

static int
derive_keys(const char *passphrase, const unsigned char *salt,
    uint32_t iterations, struct move_keys *k)
{
	unsigned char out[sizeof(k->seal) + sizeof(k->mac)];

	if (PKCS5_PBKDF2_HMAC(passphrase, (int)strlen(passphrase), salt,
	    MOVE_SALT_SIZE, (int)iterations, EVP_sha256(), (int)sizeof(out),
	    out) != 1)
		return -1;
	memcpy(k->seal, out, sizeof(k->seal));
	memcpy(k->mac, out + sizeof(k->seal), sizeof(k->mac));
	explicit_bzero(out, sizeof(out));
	return 0;
}

static int
mac_init(struct mac *m, const unsigned char *key)
{
	OSSL_PARAM params[2];

	m->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	m->ctx = m->mac != NULL ? EVP_MAC_CTX_new(m->mac) : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (m->ctx == NULL || EVP_MAC_init(m->ctx, key, 32, params) != 1)
		return -1;
	return 0;
}

static void
mac_update(struct mac *m, const void *data, size_t len)
{
	if (len > 0)
		(void)EVP_MAC_update(m->ctx, data, len);
}

static int
mac_final(struct mac *m, unsigned char out[MOVE_MAC_SIZE])
{
	size_t n = 0;

	return EVP_MAC_final(m->ctx, out, &n, MOVE_MAC_SIZE) == 1 &&
	    n == MOVE_MAC_SIZE ? 0 : -1;
}

static void
mac_free(struct mac *m)
{
	EVP_MAC_CTX_free(m->ctx);
	EVP_MAC_free(m->mac);
	m->ctx = NULL;
	m->mac = NULL;
}

/* The associated data of a secret in the file: not the node's ("USER/
 * ACCOUNT"), so a sealed value cannot be copied from a file into a
 * node's record or back. */
static char *
transfer_user(const char *user)
{
	return xasprintf("move:%s", user);
}

/* ---- the loop's side: start, done, reply ---- */

static void
move_reset(struct user_move *m)
{
	free(m->user);
	free(m->path);
	free(m->tmp);
	if (m->passphrase != NULL) {
		explicit_bzero(m->passphrase, strlen(m->passphrase));
		free(m->passphrase);
	}
	free(m->import_user);
	json_decref(m->accounts);
	if (m->fd >= 0)
		close(m->fd);
	explicit_bzero(&m->keys, sizeof(m->keys));
	m->user = m->path = m->tmp = m->passphrase = m->import_user = NULL;
	m->accounts = NULL;
	m->fd = -1;
	m->have_keys = false;
	m->result = -1;
	m->error[0] = '\0';
	memset(&m->counts, 0, sizeof(m->counts));
}

static void done_cb(evutil_socket_t fd, short what, void *arg);

static struct user_move *
move_get(struct gateway *gw, struct ctl_error *err)
{
	struct user_move *m = gw->user_move;

	if (m != NULL && m->running) {
		ctl_error_set(err, "busy", NULL, "a user %s is running (%s); "
		    "try again when it is done", m->kind == MOVE_EXPORT ?
		    "export" : "import", m->path);
		return NULL;
	}
	if (m == NULL) {
		m = xcalloc(1, sizeof(*m));
		m->gw = gw;
		m->fd = -1;
		if (pipe2(m->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
			ctl_error_set(err, CTL_E_INTERNAL, NULL, "pipe: %s",
			    strerror(errno));
			free(m);
			return NULL;
		}
		m->done_ev = event_new(gw->base, m->pipe[0],
		    EV_READ | EV_PERSIST, done_cb, m);
		event_add(m->done_ev, NULL);
		gw->user_move = m;
	}
	move_reset(m);
	return m;
}

/* Reads the passphrase file (its first line). */
static char *
read_passphrase(const char *path, struct ctl_error *err)
{
	char buf[MOVE_PASSFILE_MAX + 1];
	ssize_t n;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *nl;

	if (fd < 0) {
		ctl_error_set(err, CTL_E_INVALID, "passphrase_file", "cannot "
		    "open the passphrase file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = read(fd, buf, MOVE_PASSFILE_MAX);
	close(fd);
	if (n < 0) {
		ctl_error_set(err, CTL_E_INVALID, "passphrase_file", "cannot "
		    "read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf[n] = '\0';
	if ((nl = strchr(buf, '\n')) != NULL)
		*nl = '\0';
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len < MOVE_PASSPHRASE_MIN || len > MOVE_PASSPHRASE_MAX) {
		explicit_bzero(buf, sizeof(buf));
		ctl_error_set(err, CTL_E_INVALID, "passphrase_file", "the "
		    "passphrase (first line of %s) must have %d to %d "
		    "characters", path, MOVE_PASSPHRASE_MIN,
		    MOVE_PASSPHRASE_MAX);
		return NULL;
	}
	nl = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return nl;
}

static double
seconds_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static json_t *
counts_json(const struct move_counts *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "mailboxes", (json_int_t)c->mailboxes, "messages",
	    (json_int_t)c->messages, "bodies", (json_int_t)c->bodies,
	    "bytes", (json_int_t)c->bytes, "vanished",
	    (json_int_t)c->vanished, "ledger", (json_int_t)c->ledger,
	    "accounts", (json_int_t)c->accounts, "settings",
	    (json_int_t)c->settings, "subscriptions",
	    (json_int_t)c->subscriptions);
}

static void
reply_result(struct user_move *m)
{
	char q[LOG_QUOTE_MAX + CTL_PATH_MAX], qu[LOG_QUOTE_MAX];
	const char *what = m->kind == MOVE_EXPORT ? "export" : "import";
	struct ctl_error err;
	json_t *resp;

	log_quote(q, sizeof(q), m->path);
	log_quote(qu, sizeof(qu), m->user != NULL ? m->user : "");
	m->running = false;
	if (m->result < 0) {
		log_error("user_move event=%s_failed user=%s path=%s "
		    "error=\"%s\"", what, qu, q, m->error);
		ctl_error_set(&err, m->kind == MOVE_IMPORT &&
		    strstr(m->error, "exists") != NULL ? CTL_E_EXISTS :
		    CTL_E_INVALID, "path", "%s failed: %s", what, m->error);
		m->gw->stats.control_errors++;
		if (m->client != NULL)
			control_reply_error(m->client, &err);
	} else {
		log_info("user_move event=%s_done user=%s path=%s messages=%llu "
		    "bytes=%llu seconds=%.3f", what, qu, q,
		    (unsigned long long)m->counts.messages,
		    (unsigned long long)m->counts.bytes,
		    seconds_since(&m->started));
		resp = ctl_ok_json();
		json_object_set_new(resp, what, json_pack("{s:s, s:s, s:o, "
		    "s:f}", "user", m->user, "path", m->path, "counts",
		    counts_json(&m->counts), "seconds",
		    seconds_since(&m->started)));
		if (m->client != NULL)
			control_reply(m->client, resp);
		else
			json_decref(resp);
	}
	m->client = NULL;
}

static void
thread_done_signal(struct user_move *m)
{
	char c = 'd';

	while (write(m->pipe[1], &c, 1) < 0 && errno == EINTR)
		;
}

/* ---- export (its own thread) ---- */

/* source body id -> number in the file (open addressing; 0 is empty) */
struct body_map {
	uint64_t *keys;
	uint32_t *vals;
	size_t cap, count;
};

static uint32_t
body_map_get(const struct body_map *bm, uint64_t id)
{
	if (bm->cap == 0)
		return 0;
	for (size_t i = (size_t)(id * 0x9e3779b97f4a7c15ULL) & (bm->cap - 1);;
	    i = (i + 1) & (bm->cap - 1)) {
		if (bm->keys[i] == id)
			return bm->vals[i];
		if (bm->keys[i] == 0)
			return 0;
	}
}

static void
body_map_put(struct body_map *bm, uint64_t id, uint32_t val)
{
	if ((bm->count + 1) * 2 > bm->cap) {
		struct body_map big = { NULL, NULL, bm->cap == 0 ? 1024 :
		    bm->cap * 2, 0 };

		big.keys = xcalloc(big.cap, sizeof(*big.keys));
		big.vals = xcalloc(big.cap, sizeof(*big.vals));
		for (size_t i = 0; i < bm->cap; i++)
			if (bm->keys[i] != 0)
				body_map_put(&big, bm->keys[i], bm->vals[i]);
		free(bm->keys);
		free(bm->vals);
		*bm = big;
	}
	for (size_t i = (size_t)(id * 0x9e3779b97f4a7c15ULL) & (bm->cap - 1);;
	    i = (i + 1) & (bm->cap - 1)) {
		if (bm->keys[i] == 0) {
			bm->keys[i] = id;
			bm->vals[i] = val;
			bm->count++;
			return;
		}
	}
}

struct exporter {
	struct user_move *m;
	struct store_read *r;
	FILE *f;
	struct mac mac;
	struct secret_key *transfer;
	struct body_map bodies;
	uint32_t next_body;
	char prefix[32];	/* "u<id>:" of ledger account ids */
	/* the mailbox being written */
	uint32_t mailbox_id;
	const char *kw[STORE_KEYWORDS_MAX];
	size_t kw_count;
	struct move_vanished *van;
	int failed;		/* -1 once a write failed */
	uint32_t *mb_ids;	/* exported mailboxes */
	size_t mb_count;
};

static int
exp_fail(struct exporter *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
exp_fail(struct exporter *x, const char *fmt, ...)
{
	va_list ap;

	if (x->failed == 0) {
		va_start(ap, fmt);
		vsnprintf(x->m->error, sizeof(x->m->error), fmt, ap);
		va_end(ap);
	}
	x->failed = -1;
	return -1;
}

static int
exp_raw(struct exporter *x, enum move_type type, const void *data,
    size_t len)
{
	unsigned char head[5];

	move_record_head(head, type, (uint32_t)len);
	if (type != MOVE_R_END)
		mac_update(&x->mac, head, sizeof(head));
	if (type != MOVE_R_END && len > 0)
		mac_update(&x->mac, data, len);
	if (fwrite(head, 1, sizeof(head), x->f) != sizeof(head) ||
	    (len > 0 && fwrite(data, 1, len, x->f) != len))
		return exp_fail(x, "write: %s", strerror(errno));
	return 0;
}

static int
exp_json(struct exporter *x, enum move_type type, json_t *j)
{
	char *text;
	int rc;

	if (j == NULL)
		return exp_fail(x, "internal error: a record could not be "
		    "made");
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL || strlen(text) > MOVE_JSON_MAX) {
		free(text);
		return exp_fail(x, "a record is over %u bytes", MOVE_JSON_MAX);
	}
	rc = exp_raw(x, type, text, strlen(text));
	free(text);
	return rc;
}

/* An account record with its secrets sealed again for the file. */
static json_t *
reseal(const char *user, const struct account *a, const struct secret_key
    *from, const struct secret_key *to, const char *to_user,
    const char **error_r)
{
	struct account tmp;
	char *plain = NULL;
	json_t *rec = NULL;

	account_copy(&tmp, a);
	free(tmp.user);
	tmp.user = xstrdup(to_user);
	if (a->password_sealed != NULL && a->password_sealed[0] != '\0') {
		if (account_open_password(a, from, &plain, error_r) < 0)
			goto out;
		if (account_seal_password(&tmp, to, plain) < 0) {
			*error_r = "sealing failed";
			goto out;
		}
		secret_free_plain(plain);
		plain = NULL;
	}
	if (a->refresh_sealed != NULL) {
		if (account_open_refresh(a, from, &plain, error_r) < 0)
			goto out;
		if (account_seal_refresh(&tmp, to, plain) < 0) {
			*error_r = "sealing failed";
			goto out;
		}
	}
	rec = account_to_record(&tmp);
out:
	(void)user;
	secret_free_plain(plain);
	account_clear(&tmp);
	return rec;
}

static int
exp_setting(void *ctx, const char *key, const void *value, size_t size)
{
	struct exporter *x = ctx;
	struct user_move *m = x->m;
	const char *error = NULL;
	struct account a;
	json_t *rec;
	char *tu;

	if (strcmp(key, STORE_META_MOVED) == 0)
		return 0;
	if (strncmp(key, ACCOUNTS_META_PREFIX,
	    strlen(ACCOUNTS_META_PREFIX)) != 0) {
		m->counts.settings++;
		return exp_json(x, MOVE_R_SETTING, move_setting_json(key,
		    value, size));
	}
	key += strlen(ACCOUNTS_META_PREFIX);
	if (account_from_record(m->user, m->user_id, key, value, size, &a,
	    &error) < 0)
		return exp_fail(x, "account %s: %s", key, error);
	tu = transfer_user(m->user);
	rec = reseal(m->user, &a, m->gw->key, x->transfer, tu, &error);
	free(tu);
	account_clear(&a);
	if (rec == NULL)
		return exp_fail(x, "account %s: its secret does not open: %s",
		    key, error);
	m->counts.accounts++;
	json_t *j = move_account_json(key, rec);

	json_decref(rec);
	return exp_json(x, MOVE_R_ACCOUNT, j);
}

static int
exp_subscription(void *ctx, const char *name)
{
	struct exporter *x = ctx;

	x->m->counts.subscriptions++;
	return exp_json(x, MOVE_R_SUBSCRIPTION, move_subscription_json(name));
}

struct mb_copy {
	struct move_mailbox mb;
	char name[STORE_MAILBOX_NAME_MAX + 1];
};

struct mb_list {
	struct mb_copy *v;
	size_t n, cap;
};

static int
collect_mailbox(void *ctx, const struct store_mailbox_info *info)
{
	struct mb_list *l = ctx;
	struct mb_copy *c;

	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	c = &l->v[l->n++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", info->name);
	c->mb.id = info->id;
	c->mb.role = (unsigned)info->role;
	c->mb.subscribed = info->subscribed;
	c->mb.uidvalidity = info->uidvalidity;
	c->mb.uidnext = info->uidnext;
	c->mb.highestmodseq = info->highestmodseq;
	c->mb.messages = info->messages;
	return 0;
}

static int
exp_message(void *ctx, const struct store_msg *msg)
{
	struct exporter *x = ctx;
	struct user_move *m = x->m;
	struct move_message mm;
	const char *error = NULL;
	uint32_t n = body_map_get(&x->bodies, msg->body_id);

	if (n == 0) {
		const void *data;
		size_t size;
		int rc = store_msg_body(x->r, m->user_id, x->mailbox_id,
		    msg->uid, &data, &size, &error);

		if (rc != 0)
			return exp_fail(x, "message UID %u: %s", msg->uid,
			    rc < 0 ? error : "body missing");
		if (exp_raw(x, MOVE_R_BODY, data, size) < 0)
			return -1;
		n = ++x->next_body;
		body_map_put(&x->bodies, msg->body_id, n);
		m->counts.bodies++;
		m->counts.bytes += size;
	}
	memset(&mm, 0, sizeof(mm));
	mm.uid = msg->uid;
	mm.modseq = msg->modseq;
	mm.system_flags = msg->flags.system & STORE_FLAGS_SYSTEM_ALL;
	for (size_t i = 0; i < x->kw_count; i++) {
		if ((msg->flags.keywords[i / 64] >> (i % 64) & 1) != 0)
			mm.keywords[mm.keyword_count++] = x->kw[i];
	}
	mm.internaldate = msg->internaldate;
	mm.tz_offset_min = msg->tz_offset_min;
	mm.size = msg->size;
	mm.body = n;
	m->counts.messages++;
	return exp_json(x, MOVE_R_MESSAGE, move_message_json(&mm));
}

static int
exp_vanished_flush(struct exporter *x)
{
	int rc;

	if (x->van->count == 0)
		return 0;
	rc = exp_json(x, MOVE_R_VANISHED, move_vanished_json(x->van));
	x->van->count = 0;
	return rc;
}

static int
exp_vanished(void *ctx, uint64_t modseq, uint32_t uid)
{
	struct exporter *x = ctx;

	x->van->modseqs[x->van->count] = modseq;
	x->van->uids[x->van->count++] = uid;
	x->m->counts.vanished++;
	if (x->van->count == MOVE_VANISHED_PER_RECORD)
		return exp_vanished_flush(x);
	return 0;
}

struct ledger_walk {
	struct exporter *x;
	const char *name;	/* the account's name, without "u<id>:" */
};

static int
exp_ledger_entry(void *ctx, const struct store_ledger_entry *e)
{
	struct ledger_walk *w = ctx;
	struct exporter *x = w->x;
	struct move_ledger l;

	memset(&l, 0, sizeof(l));
	l.account = w->name;
	if (e->uidl_size == 0 || e->uidl_size > MOVE_UIDL_MAX)
		return 0;
	memcpy(l.uidl, e->uidl, e->uidl_size);
	l.uidl_size = e->uidl_size;
	l.mailbox = e->mailbox_id;
	l.uid = e->uid;
	l.seen = e->seen;
	l.deleted = e->deleted_upstream;
	l.has_fingerprint = e->has_fingerprint;
	l.body_size = e->body_size;
	l.body_hash = e->body_hash;
	l.has_body = e->has_body;
	l.body = e->has_body ? body_map_get(&x->bodies, e->body_id) : 0;
	l.has_digest = e->has_digest;
	memcpy(l.digest, e->digest, sizeof(l.digest));
	x->m->counts.ledger++;
	return exp_json(x, MOVE_R_LEDGER, move_ledger_json(&l));
}

static int
exp_ledger_account(void *ctx, const char *account)
{
	struct exporter *x = ctx;
	struct ledger_walk w = { x, account + strlen(x->prefix) };
	const char *error = NULL;

	/* ids of this user only ("u<id>:NAME"); names as accounts have */
	if (strncmp(account, x->prefix, strlen(x->prefix)) != 0 ||
	    w.name[0] == '\0' || strlen(w.name) > MOVE_ACCOUNT_MAX) {
		log_warn("user_move event=ledger_skipped account=\"%s\" "
		    "note=\"not an account id of this user\"", account);
		return 0;
	}
	if (store_ledger_foreach(x->r, x->m->user_id, account,
	    exp_ledger_entry, &w, &error) < 0 && x->failed == 0)
		return exp_fail(x, "ledger of %s: %s", account, error);
	return x->failed;
}

static int
exp_mailboxes(struct exporter *x)
{
	struct user_move *m = x->m;
	struct mb_list l = { NULL, 0, 0 };
	const char *error = NULL;
	int ret = -1;

	if (store_mailbox_foreach(x->r, m->user_id, collect_mailbox, &l,
	    &error) < 0) {
		exp_fail(x, "mailboxes: %s", error);
		goto out;
	}
	/* INBOX first (store_import_user made it), then name order,
	   which puts every parent before its children */
	for (size_t i = 1; i < l.n; i++) {
		if (strcmp(l.v[i].name, "INBOX") == 0) {
			struct mb_copy inbox = l.v[i];

			memmove(&l.v[1], &l.v[0], i * sizeof(l.v[0]));
			l.v[0] = inbox;
		}
	}
	for (size_t i = 0; i < l.n; i++) {
		struct mb_copy *c = &l.v[i];

		c->mb.name = c->name;
		x->mailbox_id = c->mb.id;
		if (store_mailbox_keywords(x->r, m->user_id, c->mb.id, x->kw,
		    &x->kw_count, &error) < 0) {
			exp_fail(x, "%s: keywords: %s", c->name, error);
			goto out;
		}
		if (exp_json(x, MOVE_R_MAILBOX, move_mailbox_json(&c->mb)) < 0)
			goto out;
		m->counts.mailboxes++;
		if (store_msg_foreach(x->r, m->user_id, c->mb.id, 1,
		    UINT32_MAX, exp_message, x, &error) != 0) {
			exp_fail(x, "%s: messages: %s", c->name, error);
			goto out;
		}
		if (store_vanished_foreach(x->r, m->user_id, c->mb.id,
		    exp_vanished, x, &error) != 0 || exp_vanished_flush(x) < 0) {
			exp_fail(x, "%s: expunge history: %s", c->name, error);
			goto out;
		}
	}
	ret = 0;
out:
	free(l.v);
	return ret;
}

static int
export_write(struct exporter *x)
{
	struct user_move *m = x->m;
	struct store_user_info info;
	struct move_header h;
	struct move_user u;
	const char *error = NULL;
	unsigned char tag[MOVE_MAC_SIZE];
	char node[256];

	memset(&h, 0, sizeof(h));
	if (RAND_bytes(h.salt, sizeof(h.salt)) != 1)
		return exp_fail(x, "no random bytes for the salt");
	if (derive_keys(m->passphrase, h.salt, MOVE_KDF_ITERATIONS,
	    &m->keys) < 0 || mac_init(&x->mac, m->keys.mac) < 0)
		return exp_fail(x, "key derivation failed");
	x->transfer = secret_key_from_bytes(m->keys.seal);
	if (gethostname(node, sizeof(node)) < 0)
		node[0] = '\0';
	node[sizeof(node) - 1] = '\0';
	h.exported = (int64_t)time(NULL);
	h.user = m->user;
	h.node = node;
	h.iterations = MOVE_KDF_ITERATIONS;
	mac_update(&x->mac, MOVE_MAGIC, MOVE_MAGIC_LEN);
	if (fwrite(MOVE_MAGIC, 1, MOVE_MAGIC_LEN, x->f) != MOVE_MAGIC_LEN)
		return exp_fail(x, "write: %s", strerror(errno));
	if (exp_json(x, MOVE_R_HEADER, move_header_json(&h)) < 0)
		return -1;
	if (store_read_begin(m->gw->store, &x->r, &error) < 0)
		return exp_fail(x, "store: %s", error);
	if (store_user_get(x->r, m->user_id, &info, &error) != 0)
		return exp_fail(x, "the user is gone");
	u.name = info.name;
	u.password_hash = info.password_hash;
	u.created = (int64_t)info.created;
	if (exp_json(x, MOVE_R_USER, move_user_json(&u)) < 0)
		return -1;
	if (store_user_meta_foreach(x->r, m->user_id, exp_setting, x,
	    &error) != 0)
		return exp_fail(x, "settings: %s", error);
	if (store_subscription_foreach(x->r, m->user_id, exp_subscription, x,
	    &error) != 0)
		return exp_fail(x, "subscriptions: %s", error);
	if (exp_mailboxes(x) < 0)
		return -1;
	snprintf(x->prefix, sizeof(x->prefix), "u%u:", m->user_id);
	if (store_ledger_accounts(x->r, m->user_id, exp_ledger_account, x,
	    &error) != 0)
		return exp_fail(x, "ledger: %s", error);
	store_read_end(&x->r);
	if (mac_final(&x->mac, tag) < 0)
		return exp_fail(x, "HMAC failed");
	if (exp_raw(x, MOVE_R_END, tag, sizeof(tag)) < 0)
		return -1;
	if (fflush(x->f) != 0 || fsync(fileno(x->f)) < 0)
		return exp_fail(x, "write: %s", strerror(errno));
	return 0;
}

static void *
export_thread(void *arg)
{
	struct user_move *m = arg;
	struct exporter x;

	memset(&x, 0, sizeof(x));
	x.m = m;
	x.van = xcalloc(1, sizeof(*x.van));
	x.f = fdopen(m->fd, "w");
	if (x.f == NULL) {
		snprintf(m->error, sizeof(m->error), "fdopen: %s",
		    strerror(errno));
		m->result = -1;
	} else {
		m->fd = -1;	/* the FILE has it */
		m->result = export_write(&x) < 0 || x.failed < 0 ? -1 : 0;
		if (fclose(x.f) != 0 && m->result == 0) {
			snprintf(m->error, sizeof(m->error), "close: %s",
			    strerror(errno));
			m->result = -1;
		}
	}
	store_read_end(&x.r);
	mac_free(&x.mac);
	secret_key_free(&x.transfer);
	free(x.bodies.keys);
	free(x.bodies.vals);
	free(x.van);
	thread_done_signal(m);
	return NULL;
}

static void
sync_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

static void
export_finish(struct user_move *m)
{
	if (m->result == 0 && link(m->tmp, m->path) < 0) {
		m->result = -1;
		snprintf(m->error, sizeof(m->error), "%s", errno == EEXIST ?
		    "the file exists now (made during the export)" :
		    strerror(errno));
	}
	unlink(m->tmp);
	if (m->result == 0)
		sync_dir(m->path);
	reply_result(m);
}

/* Writer job: mark the user moved (or not). */
struct mark_ctx {
	uint32_t user_id;
	bool moved;
	char value[128];
};

static int
mark_apply(struct store *store, void *ctx, const char **error_r)
{
	struct mark_ctx *c = ctx;
	int rc;

	if (c->moved)
		return store_user_meta_put(store, c->user_id, STORE_META_MOVED,
		    c->value, strlen(c->value), error_r);
	rc = store_user_meta_del(store, c->user_id, STORE_META_MOVED,
	    error_r);
	return rc == STORE_NOT_FOUND ? 0 : rc;
}

static int
noop_apply(struct store *store, void *ctx, const char **error_r)
{
	(void)store;
	(void)ctx;
	(void)error_r;
	return 0;
}

static int
lookup_user(struct gateway *gw, const char *user, uint32_t *id_r,
    struct ctl_error *err)
{
	struct store_read *r = NULL;
	const char *error = NULL;
	int rc = -1;

	if (store_read_begin(gw->store, &r, &error) == 0) {
		rc = store_user_lookup(r, user, id_r, &error);
		store_read_end(&r);
	}
	if (rc == STORE_NOT_FOUND)
		ctl_error_set(err, CTL_E_UNKNOWN_USER, "user", "no user %s",
		    user);
	else if (rc < 0)
		ctl_error_set(err, CTL_E_STORE, NULL, "user lookup: %s",
		    error != NULL ? error : "store error");
	return rc;
}

int
user_move_export(struct gateway *gw, struct control_client *client,
    json_t *req, struct ctl_error *err)
{
	const char *user = ctl_req_str(req, "user");
	const char *path = ctl_req_str(req, "path");
	struct mark_ctx mark;
	struct user_move *m;
	const char *error = NULL;
	char q[LOG_QUOTE_MAX];
	struct stat st;
	uint32_t id;
	char *pass;
	int rc;

	if (lookup_user(gw, user, &id, err) != 0)
		return -1;
	if (lstat(path, &st) == 0) {
		ctl_error_set(err, CTL_E_EXISTS, "path", "%s exists; an export "
		    "never overwrites a file", path);
		return -1;
	}
	pass = read_passphrase(ctl_req_str(req, "passphrase_file"), err);
	if (pass == NULL)
		return -1;
	if ((m = move_get(gw, err)) == NULL) {
		explicit_bzero(pass, strlen(pass));
		free(pass);
		return -1;
	}
	m->kind = MOVE_EXPORT;
	m->passphrase = pass;
	m->user = xstrdup(user);
	m->user_id = id;
	m->path = xstrdup(path);
	m->tmp = xasprintf("%s.partial-XXXXXX", path);
	m->fd = mkostemp(m->tmp, O_CLOEXEC);
	if (m->fd < 0) {
		ctl_error_set(err, CTL_E_INVALID, "path", "cannot create a "
		    "file in the directory of %s: %s (it must exist and be "
		    "writable by the daemon's user)", path, strerror(errno));
		move_reset(m);
		return -1;
	}
	(void)fchmod(m->fd, 0600);
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	/* 1. the mark: no delivery for the user commits after it, and
	   their logins are refused */
	memset(&mark, 0, sizeof(mark));
	mark.user_id = id;
	mark.moved = true;
	snprintf(mark.value, sizeof(mark.value), "{\"at\":%lld}",
	    (long long)time(NULL));
	if (store_write_sync(gw->store, id, 0, 0, mark_apply, &mark,
	    &error) < 0) {
		ctl_error_set(err, CTL_E_STORE, NULL, "marking the user "
		    "moved: %s", error != NULL ? error : "store error");
		unlink(m->tmp);
		move_reset(m);
		return -1;
	}
	/* 2. no session or poll of theirs goes on here */
	gateway_close_user_sessions(gw, user);
	if (gw->upstreams != NULL)
		upstreams_remove_user(gw->upstreams, id);
	/* 3. what their sessions and polls queued before has committed
	   (the writer runs one key's jobs in order) */
	(void)store_write_sync(gw->store, id, 0, 0, noop_apply, NULL, &error);
	log_info("user_move event=export_start user=%s note=\"marked moved: "
	    "logins refused, polling stopped\"", log_quote(q, sizeof(q),
	    user));
	m->client = client;
	m->running = true;
	rc = pthread_create(&m->thread, NULL, export_thread, m);
	if (rc != 0) {
		m->running = false;
		m->client = NULL;
		unlink(m->tmp);
		ctl_error_set(err, CTL_E_INTERNAL, NULL, "thread: %s",
		    strerror(rc));
		move_reset(m);
		return -1;
	}
	m->thread_live = true;
	return 0;
}

/* ---- import ---- */

/*
 * One reader of the file for both passes. Pass 1 (check) runs on the
 * import's thread and writes nothing; pass 2 (write) runs in the writer
 * job with the store calls. Both check the same things, so pass 2 also
 * refuses a file changed since pass 1.
 */
struct importer {
	struct user_move *m;
	struct store *store;	/* pass 2 only */
	bool write;
	int fd;
	struct move_dec dec;
	struct mac mac;
	bool mac_on;
	unsigned char *chunk;
	size_t chunk_len, chunk_pos;
	bool eof;
	/* order */
	char last;		/* the previous record's type */
	bool header_seen, user_seen;
	/* the user */
	uint32_t user_id;
	struct secret_key *transfer;
	/* the current mailbox */
	struct move_mailbox mb;
	char mb_name[STORE_MAILBOX_NAME_MAX + 1];
	bool in_mailbox;
	uint32_t mb_new_id;
	uint32_t mb_left;	/* MESSAGE records still to come */
	uint32_t last_uid;
	uint64_t last_van_modseq;
	uint32_t last_van_uid;
	/* mailboxes seen: old id -> new id */
	uint32_t *mb_old, *mb_new;
	size_t mb_n, mb_cap;
	/* bodies: number -> this node's body id (pass 2), size */
	uint64_t *body_ids;
	uint64_t *body_sizes;
	size_t body_n, body_cap;
	bool body_pending;	/* the last BODY awaits its message */
	unsigned char *body_data;	/* pass 2: the pending body's bytes */
	size_t body_len;
	uint64_t dead_body;	/* pass 2: a body id no message has */
	/* pass 2: messages waiting for one store_import_messages call;
	   their bytes and structures in batch_buf */
	struct pend *batch;
	size_t batch_n;
	struct strbuf batch_buf;
	char err[MOVE_ERROR_MAX];
};

struct pend {
	struct store_import_msg sm;
	uint32_t body;		/* its body's number */
	size_t data_off, struct_off;
	char *kw[MOVE_KEYWORDS_MAX];
};

static int
imp_fail(struct importer *im, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
imp_fail(struct importer *im, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(im->err, sizeof(im->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* The next record; 1 at the end of the file (after END), -1 error. */
static int
imp_next(struct importer *im, struct move_rec *rec)
{
	for (;;) {
		enum move_dec_ret ret;
		size_t used;

		if (im->chunk_pos == im->chunk_len) {
			ssize_t n;

			if (im->eof)
				break;
			n = read(im->fd, im->chunk, MOVE_READ_CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return imp_fail(im, "read: %s",
				    strerror(errno));
			if (n == 0) {
				im->eof = true;
				break;
			}
			im->chunk_len = (size_t)n;
			im->chunk_pos = 0;
		}
		ret = move_dec_feed(&im->dec, im->chunk + im->chunk_pos,
		    im->chunk_len - im->chunk_pos, &used, rec, im->err,
		    sizeof(im->err));
		im->chunk_pos += used;
		if (ret == MOVE_DEC_ERROR)
			return -1;
		if (ret == MOVE_DEC_RECORD)
			return 0;
	}
	if (move_dec_finish(&im->dec, im->err, sizeof(im->err)) < 0)
		return -1;
	return 1;
}

static void
imp_mac(struct importer *im, const struct move_rec *rec)
{
	unsigned char head[5];

	if (!im->mac_on || rec->type == MOVE_R_END)
		return;
	move_record_head(head, rec->type, (uint32_t)rec->len);
	mac_update(&im->mac, head, sizeof(head));
	mac_update(&im->mac, rec->data, rec->len);
}

static int
imp_header(struct importer *im, json_t *j)
{
	struct user_move *m = im->m;
	struct move_header h;

	if (move_header_parse(j, &h, im->err, sizeof(im->err)) < 0)
		return -1;
	if (!m->have_keys) {
		if (derive_keys(m->passphrase, h.salt, h.iterations,
		    &m->keys) < 0)
			return imp_fail(im, "key derivation failed");
		m->have_keys = true;
	}
	if (mac_init(&im->mac, m->keys.mac) < 0)
		return imp_fail(im, "HMAC set-up failed");
	im->mac_on = true;
	mac_update(&im->mac, MOVE_MAGIC, MOVE_MAGIC_LEN);
	im->transfer = secret_key_from_bytes(m->keys.seal);
	return 0;
}

/* The user's record; pass 2 creates the user (replacing an old one with
 * force). */
static int
imp_user(struct importer *im, json_t *j)
{
	struct user_move *m = im->m;
	struct move_user u;
	const char *error = NULL;

	if (move_user_parse(j, &u, im->err, sizeof(im->err)) < 0)
		return -1;
	if (!im->write) {
		free(m->import_user);
		m->import_user = xstrdup(u.name);
		return 0;
	}
	if (m->import_user == NULL || strcmp(m->import_user, u.name) != 0)
		return imp_fail(im, "the file changed since it was checked");
	if (m->force) {
		struct store_read *r = NULL;
		uint32_t old;
		int rc = -1;

		if (store_read_begin(im->store, &r, &error) == 0) {
			rc = store_user_lookup(r, u.name, &old, &error);
			store_read_end(&r);
		}
		if (rc < 0)
			return imp_fail(im, "user lookup: %s", error);
		if (rc == 0 && store_user_delete(im->store, old, &error) < 0)
			return imp_fail(im, "replacing the old user: %s",
			    error);
	}
	if (store_import_user(im->store, u.name, u.password_hash, u.created,
	    &im->user_id, &error) < 0)
		return imp_fail(im, "%s", store_last_error(im->store) ==
		    STORE_ERR_EXISTS ? "the user exists on this node (give "
		    "--force to replace them)" : error);
	return 0;
}

static int
imp_setting(struct importer *im, json_t *j)
{
	struct move_setting s;
	const char *error = NULL;
	int rc = 0;

	if (move_setting_parse(j, &s, im->err, sizeof(im->err)) < 0)
		return -1;
	if (strcmp(s.key, STORE_META_MOVED) == 0 || strncmp(s.key,
	    ACCOUNTS_META_PREFIX, strlen(ACCOUNTS_META_PREFIX)) == 0)
		rc = imp_fail(im, "setting %s is not allowed here", s.key);
	else if (im->write && store_user_meta_put(im->store, im->user_id,
	    s.key, s.value, s.value_size, &error) < 0)
		rc = imp_fail(im, "setting %s: %s", s.key, error);
	im->m->counts.settings += rc == 0;
	free(s.value);
	return rc;
}

/* Pass 1: the account's record, checked and sealed for this node (kept
 * for pass 2 and for the poller). */
static int
imp_account(struct importer *im, json_t *j)
{
	struct user_move *m = im->m;
	struct move_account a;
	struct account acc;
	const char *error = NULL;
	char *text, *tu, *key;
	json_t *rec;
	int rc;

	if (move_account_parse(j, &a, im->err, sizeof(im->err)) < 0)
		return -1;
	if (m->accounts == NULL)
		m->accounts = json_object();
	if (im->write) {
		rec = json_object_get(m->accounts, a.name);
		if (rec == NULL)
			return imp_fail(im, "the file changed since it was "
			    "checked");
		text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
		key = xasprintf(ACCOUNTS_META_PREFIX "%s", a.name);
		rc = store_user_meta_put(im->store, im->user_id, key, text,
		    strlen(text), &error);
		free(key);
		free(text);
		if (rc < 0)
			return imp_fail(im, "account %s: %s", a.name, error);
		m->counts.accounts++;
		return 0;
	}
	if (json_object_get(m->accounts, a.name) != NULL)
		return imp_fail(im, "account %s twice", a.name);
	if (!account_name_valid(a.name))
		return imp_fail(im, "account name %s is not valid", a.name);
	text = json_dumps(a.record, JSON_COMPACT);
	tu = transfer_user(m->import_user);
	rc = account_from_record(tu, 0, a.name, text, strlen(text), &acc,
	    &error);
	free(text);
	free(tu);
	if (rc < 0)
		return imp_fail(im, "account %s: %s", a.name, error);
	/* sealed for this node under the user's own name */
	rec = reseal(m->import_user, &acc, im->transfer, m->gw->key,
	    m->import_user, &error);
	account_clear(&acc);
	if (rec == NULL)
		return imp_fail(im, "account %s: its secret does not open "
		    "with this passphrase (%s)", a.name, error);
	json_object_set_new(m->accounts, a.name, rec);
	return 0;
}

static int
imp_subscription(struct importer *im, json_t *j)
{
	const char *name, *error = NULL;

	if (move_subscription_parse(j, &name, im->err, sizeof(im->err)) < 0)
		return -1;
	if (!store_mailbox_name_valid(name, &error))
		return imp_fail(im, "subscription %s: %s", name, error);
	if (im->write && store_import_subscribe(im->store, im->user_id, name,
	    &error) < 0)
		return imp_fail(im, "subscription %s: %s", name, error);
	im->m->counts.subscriptions++;
	return 0;
}

/* Writes the waiting messages (pass 2). */
static int
imp_flush(struct importer *im)
{
	struct store_import_msg v[MOVE_IMPORT_BATCH];
	uint64_t ids[MOVE_IMPORT_BATCH];
	const char *error = NULL;
	int rc;

	if (im->batch_n == 0)
		return 0;
	for (size_t i = 0; i < im->batch_n; i++) {
		struct pend *p = &im->batch[i];

		v[i] = p->sm;
		v[i].keywords = (const char *const *)p->kw;
		if (p->sm.body_id == 0) {
			v[i].data = im->batch_buf.data + p->data_off;
			v[i].structure = p->sm.structure_size > 0 ?
			    im->batch_buf.data + p->struct_off : NULL;
		}
	}
	rc = store_import_messages(im->store, im->user_id, im->mb_new_id, v,
	    im->batch_n, ids, &error);
	for (size_t i = 0; i < im->batch_n; i++) {
		struct pend *p = &im->batch[i];

		if (rc == 0 && p->sm.body_id == 0)
			im->body_ids[p->body - 1] = ids[i];
		for (size_t k = 0; k < p->sm.keyword_count; k++)
			free(p->kw[k]);
	}
	im->batch_n = 0;
	strbuf_reset(&im->batch_buf);
	if (rc < 0)
		return imp_fail(im, "mailbox %s: %s", im->mb.name, error);
	return 0;
}

static int
imp_mailbox_end(struct importer *im)
{
	if (imp_flush(im) < 0)
		return -1;
	if (im->in_mailbox && im->mb_left != 0)
		return imp_fail(im, "mailbox %s: %u messages missing (the "
		    "file is cut or edited)", im->mb.name, im->mb_left);
	if (im->body_pending)
		return imp_fail(im, "a body without its message");
	im->in_mailbox = false;
	return 0;
}

static int
imp_mailbox(struct importer *im, json_t *j)
{
	struct store_import_mailbox in;
	const char *error = NULL;

	if (imp_mailbox_end(im) < 0 ||
	    move_mailbox_parse(j, &im->mb, im->err, sizeof(im->err)) < 0)
		return -1;
	if (!store_mailbox_name_valid(im->mb.name, &error))
		return imp_fail(im, "mailbox %s: %s", im->mb.name, error);
	for (size_t i = 0; i < im->mb_n; i++) {
		if (im->mb_old[i] == im->mb.id)
			return imp_fail(im, "mailbox id %u twice", im->mb.id);
	}
	if (im->mb_n == 0 && strcmp(im->mb.name, "INBOX") != 0)
		return imp_fail(im, "the first mailbox is not INBOX");
	if (im->mb_n >= STORE_MAILBOXES_MAX)
		return imp_fail(im, "more than %d mailboxes",
		    STORE_MAILBOXES_MAX);
	im->mb_new_id = 0;
	if (im->write) {
		in.name = im->mb.name;
		in.role = (enum store_role)im->mb.role;
		in.uidvalidity = im->mb.uidvalidity;
		in.uidnext = im->mb.uidnext;
		in.highestmodseq = im->mb.highestmodseq;
		if (store_import_mailbox(im->store, im->user_id, &in,
		    &im->mb_new_id, &error) < 0)
			return imp_fail(im, "mailbox %s: %s", im->mb.name,
			    error);
	}
	if (im->mb_n == im->mb_cap) {
		im->mb_cap = im->mb_cap == 0 ? 16 : im->mb_cap * 2;
		im->mb_old = xreallocarray(im->mb_old, im->mb_cap,
		    sizeof(*im->mb_old));
		im->mb_new = xreallocarray(im->mb_new, im->mb_cap,
		    sizeof(*im->mb_new));
	}
	im->mb_old[im->mb_n] = im->mb.id;
	im->mb_new[im->mb_n++] = im->mb_new_id;
	/* the name is borrowed from the record's JSON: keep a copy */
	snprintf(im->mb_name, sizeof(im->mb_name), "%s", im->mb.name);
	im->mb.name = im->mb_name;
	im->in_mailbox = true;
	im->mb_left = im->mb.messages;
	im->last_uid = 0;
	im->last_van_modseq = 0;
	im->last_van_uid = 0;
	im->m->counts.mailboxes++;
	return 0;
}

static int
imp_body(struct importer *im, const struct move_rec *rec)
{
	if (!im->in_mailbox || im->body_pending)
		return imp_fail(im, "a body outside a mailbox or without its "
		    "message");
	if (im->body_n == UINT32_MAX - 1)
		return imp_fail(im, "too many bodies");
	if (im->body_n == im->body_cap) {
		im->body_cap = im->body_cap == 0 ? 1024 : im->body_cap * 2;
		im->body_ids = xreallocarray(im->body_ids, im->body_cap,
		    sizeof(*im->body_ids));
		im->body_sizes = xreallocarray(im->body_sizes, im->body_cap,
		    sizeof(*im->body_sizes));
	}
	im->body_ids[im->body_n] = 0;
	im->body_sizes[im->body_n++] = rec->len;
	im->body_pending = true;
	/* the decoder reuses its buffer for the next record (the
	   message): pass 2 keeps a copy of the one body it writes next */
	if (im->write) {
		free(im->body_data);
		im->body_data = xmemdup(rec->data, rec->len > 0 ? rec->len :
		    1);
		im->body_len = rec->len;
	}
	im->m->counts.bodies++;
	im->m->counts.bytes += rec->len;
	return 0;
}

static int
imp_message(struct importer *im, json_t *j)
{
	struct move_message mm;
	struct pend *p;
	bool fresh;

	if (move_message_parse(j, &mm, im->err, sizeof(im->err)) < 0)
		return -1;
	if (!im->in_mailbox || im->mb_left == 0)
		return imp_fail(im, "message UID %u outside a mailbox or past "
		    "its count", mm.uid);
	if (mm.uid <= im->last_uid || mm.uid >= im->mb.uidnext ||
	    mm.modseq > im->mb.highestmodseq)
		return imp_fail(im, "mailbox %s: message UID %u MODSEQ %llu "
		    "out of order or range", im->mb.name, mm.uid,
		    (unsigned long long)mm.modseq);
	if (mm.body == 0 || mm.body > im->body_n)
		return imp_fail(im, "message UID %u names body %u, not yet "
		    "given", mm.uid, mm.body);
	fresh = im->body_pending && mm.body == im->body_n;
	if (im->body_pending && !fresh)
		return imp_fail(im, "a body without its message");
	if (im->body_sizes[mm.body - 1] != mm.size)
		return imp_fail(im, "message UID %u: size %llu, its body has "
		    "%llu bytes", mm.uid, (unsigned long long)mm.size,
		    (unsigned long long)im->body_sizes[mm.body - 1]);
	im->last_uid = mm.uid;
	im->mb_left--;
	im->body_pending = false;
	im->m->counts.messages++;
	if (!im->write)
		return 0;
	/* a copy of a body still waiting in the batch: write that first */
	if (!fresh && im->body_ids[mm.body - 1] == 0 && imp_flush(im) < 0)
		return -1;
	p = &im->batch[im->batch_n++];
	memset(p, 0, sizeof(*p));
	p->sm.uid = mm.uid;
	p->sm.modseq = mm.modseq;
	p->sm.system_flags = mm.system_flags;
	p->sm.keyword_count = mm.keyword_count;
	for (size_t k = 0; k < mm.keyword_count; k++)
		p->kw[k] = xstrdup(mm.keywords[k]);
	p->sm.internaldate = mm.internaldate;
	p->sm.tz_offset_min = mm.tz_offset_min;
	p->sm.size = mm.size;
	p->body = mm.body;
	if (fresh) {
		/* the structure is made here, as at delivery (not taken
		   from the file: a blob is ours to trust) */
		struct mail_message *msg = mail_parse(im->body_data,
		    im->body_len, NULL);

		p->data_off = im->batch_buf.len;
		strbuf_append(&im->batch_buf, im->body_data, im->body_len);
		p->struct_off = im->batch_buf.len;
		if (msg != NULL) {
			mail_serialize(msg, &im->batch_buf);
			mail_message_free(&msg);
		}
		p->sm.structure_size = im->batch_buf.len - p->struct_off;
		free(im->body_data);
		im->body_data = NULL;
	} else {
		p->sm.body_id = im->body_ids[mm.body - 1];
	}
	if (im->batch_n == MOVE_IMPORT_BATCH ||
	    im->batch_buf.len >= MOVE_IMPORT_BATCH_BYTES)
		return imp_flush(im);
	return 0;
}

static int
imp_vanished(struct importer *im, json_t *j)
{
	struct move_vanished *v = xmalloc(sizeof(*v));
	const char *error = NULL;
	int rc = 0;

	if (imp_flush(im) < 0 ||
	    move_vanished_parse(j, v, im->err, sizeof(im->err)) < 0) {
		free(v);
		return -1;
	}
	if (!im->in_mailbox || im->mb_left != 0 || im->body_pending)
		rc = imp_fail(im, "expunge history outside a mailbox or "
		    "before its messages");
	for (size_t i = 0; i < v->count && rc == 0; i++) {
		if (v->uids[i] >= im->mb.uidnext ||
		    v->modseqs[i] > im->mb.highestmodseq ||
		    v->modseqs[i] < im->last_van_modseq ||
		    (v->modseqs[i] == im->last_van_modseq &&
		    v->uids[i] <= im->last_van_uid))
			rc = imp_fail(im, "mailbox %s: expunged UID %u MODSEQ "
			    "%llu out of order or range", im->mb.name,
			    v->uids[i], (unsigned long long)v->modseqs[i]);
		im->last_van_modseq = v->modseqs[i];
		im->last_van_uid = v->uids[i];
	}
	if (rc == 0 && im->write && store_import_vanished(im->store,
	    im->user_id, im->mb_new_id, v->modseqs, v->uids, v->count,
	    &error) < 0)
		rc = imp_fail(im, "mailbox %s: %s", im->mb.name, error);
	if (rc == 0)
		im->m->counts.vanished += v->count;
	free(v);
	return rc;
}

static int
imp_ledger(struct importer *im, json_t *j)
{
	struct move_ledger l;
	struct store_ledger_entry e;
	const char *error = NULL;
	char account[STORE_ACCOUNT_ID_MAX + 1];

	if (imp_mailbox_end(im) < 0 ||
	    move_ledger_parse(j, &l, im->err, sizeof(im->err)) < 0)
		return -1;
	if (l.body > im->body_n)
		return imp_fail(im, "ledger entry names body %u of %zu",
		    l.body, im->body_n);
	im->m->counts.ledger++;
	if (!im->write)
		return 0;
	memset(&e, 0, sizeof(e));
	e.uidl = l.uidl;
	e.uidl_size = l.uidl_size;
	/* where it was delivered, in this node's ids; a mailbox deleted
	   there is one that does not exist here either */
	e.mailbox_id = l.mailbox == 0 ? 0 : UINT32_MAX;
	for (size_t i = 0; i < im->mb_n && l.mailbox != 0; i++) {
		if (im->mb_old[i] == l.mailbox)
			e.mailbox_id = im->mb_new[i];
	}
	e.uid = l.uid;
	e.seen = l.seen;
	e.deleted_upstream = l.deleted;
	e.has_fingerprint = l.has_fingerprint;
	e.body_size = l.body_size;
	e.body_hash = l.body_hash;
	e.has_body = l.has_body;
	if (l.has_body && l.body > 0) {
		e.body_id = im->body_ids[l.body - 1];
	} else if (l.has_body) {
		/* expunged everywhere there: a body id no message has */
		if (im->dead_body == 0 && store_import_dead_body(im->store,
		    im->user_id, &im->dead_body, &error) < 0)
			return imp_fail(im, "ledger: %s", error);
		e.body_id = im->dead_body;
	}
	e.has_digest = l.has_digest;
	memcpy(e.digest, l.digest, sizeof(e.digest));
	snprintf(account, sizeof(account), "u%u:%s", im->user_id, l.account);
	if (store_import_ledger(im->store, im->user_id, account, &e,
	    &error) < 0)
		return imp_fail(im, "ledger of %s: %s", l.account, error);
	return 0;
}

/* Which record types may follow prev ('\0': the start). */
static bool
order_ok(char prev, char type)
{
	static const char *const after[128] = {
		['\0'] = "H",
		['H'] = "U",
		['U'] = "SAZML",
		['S'] = "SAZML",
		['A'] = "AZML",
		['Z'] = "ZML",
		['M'] = "MBmVLE",
		['B'] = "m",
		['m'] = "MBmVLE",
		['V'] = "MVLE",
		['L'] = "LE",
	};
	const char *ok = (unsigned char)prev < 128 ? after[(int)prev] : NULL;

	return ok != NULL && type != '\0' && strchr(ok, type) != NULL;
}

/* Reads the whole file: checks (pass 1) or writes (pass 2). */
static int
import_run(struct importer *im)
{
	struct move_rec rec;
	unsigned char tag[MOVE_MAC_SIZE];
	json_t *j = NULL;
	int rc;

	for (;;) {
		rc = imp_next(im, &rec);
		if (rc < 0)
			return -1;
		if (rc > 0)
			break;
		if (!order_ok(im->last, (char)rec.type))
			return imp_fail(im, "record '%c' at offset %llu is out "
			    "of place (after '%c')", rec.type,
			    (unsigned long long)rec.offset,
			    im->last != '\0' ? im->last : '^');
		im->last = (char)rec.type;
		imp_mac(im, &rec);
		if (rec.type == MOVE_R_END) {
			if (imp_mailbox_end(im) < 0)
				return -1;
			if (im->mb_n == 0)
				return imp_fail(im, "the export has no mailbox");
			if (mac_final(&im->mac, tag) < 0)
				return imp_fail(im, "HMAC failed");
			if (CRYPTO_memcmp(tag, rec.data, MOVE_MAC_SIZE) != 0)
				return imp_fail(im, "the file is not authentic: "
				    "it was changed after the export, or the "
				    "passphrase is not the one it was made "
				    "with");
			continue;
		}
		if (rec.type == MOVE_R_BODY) {
			if (imp_body(im, &rec) < 0)
				return -1;
			continue;
		}
		if (move_json(&rec, &j, im->err, sizeof(im->err)) < 0)
			return -1;
		switch (rec.type) {
		case MOVE_R_HEADER:
			/* the key comes from the header: MAC it once set up */
			rc = imp_header(im, j);
			if (rc == 0)
				imp_mac(im, &rec);
			break;
		case MOVE_R_USER: rc = imp_user(im, j); break;
		case MOVE_R_SETTING: rc = imp_setting(im, j); break;
		case MOVE_R_ACCOUNT: rc = imp_account(im, j); break;
		case MOVE_R_SUBSCRIPTION: rc = imp_subscription(im, j); break;
		case MOVE_R_MAILBOX: rc = imp_mailbox(im, j); break;
		case MOVE_R_MESSAGE: rc = imp_message(im, j); break;
		case MOVE_R_VANISHED: rc = imp_vanished(im, j); break;
		case MOVE_R_LEDGER: rc = imp_ledger(im, j); break;
		default: rc = imp_fail(im, "unexpected record"); break;
		}
		json_decref(j);
		j = NULL;
		if (rc < 0)
			return -1;
	}
	if (im->last != MOVE_R_END)
		return imp_fail(im, "the export is truncated");
	return 0;
}

static void
importer_init(struct importer *im, struct user_move *m, int fd)
{
	memset(im, 0, sizeof(*im));
	im->m = m;
	im->fd = fd;
	move_dec_init(&im->dec);
	im->chunk = xmalloc(MOVE_READ_CHUNK);
	im->batch = xcalloc(MOVE_IMPORT_BATCH, sizeof(*im->batch));
	strbuf_init(&im->batch_buf, 0);
}

static void
importer_free(struct importer *im)
{
	move_dec_free(&im->dec);
	mac_free(&im->mac);
	secret_key_free(&im->transfer);
	free(im->chunk);
	free(im->mb_old);
	free(im->mb_new);
	free(im->body_ids);
	free(im->body_sizes);
	free(im->body_data);
	for (size_t i = 0; i < im->batch_n; i++)
		for (size_t k = 0; k < im->batch[i].sm.keyword_count; k++)
			free(im->batch[i].kw[k]);
	free(im->batch);
	strbuf_free(&im->batch_buf);
}

static void *
import_check_thread(void *arg)
{
	struct user_move *m = arg;
	struct importer im;

	importer_init(&im, m, m->fd);
	m->result = import_run(&im);
	if (m->result < 0)
		snprintf(m->error, sizeof(m->error), "%s", im.err);
	importer_free(&im);
	thread_done_signal(m);
	return NULL;
}

static int
import_apply(struct store *store, void *ctx, const char **error_r)
{
	struct user_move *m = ctx;
	struct importer im;
	int rc;

	if (lseek(m->fd, 0, SEEK_SET) < 0) {
		snprintf(m->error, sizeof(m->error), "seek: %s",
		    strerror(errno));
		*error_r = m->error;
		return -1;
	}
	memset(&m->counts, 0, sizeof(m->counts));
	importer_init(&im, m, m->fd);
	im.store = store;
	im.write = true;
	rc = import_run(&im);
	if (rc < 0) {
		snprintf(m->error, sizeof(m->error), "%s", im.err);
		*error_r = m->error;
	}
	m->user_id = im.user_id;
	importer_free(&im);
	return rc;
}

struct start_ctx {
	struct gateway *gw;
	uint32_t user_id;
	const char *user;
};

static int
start_account(void *ctx, const struct account *a)
{
	struct start_ctx *sc = ctx;

	if (sc->gw->upstreams != NULL)
		upstreams_update(sc->gw->upstreams, a);
	return 0;
}

static void
import_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct user_move *m = ctx;
	struct gateway *gw = m->gw;
	struct store_read *r = NULL;
	struct start_ctx sc = { gw, m->user_id, m->user };
	const char *err = NULL;

	(void)cls;
	m->result = rc;
	if (rc < 0) {
		if (m->error[0] == '\0')
			snprintf(m->error, sizeof(m->error), "%s", error !=
			    NULL ? error : "store error");
		reply_result(m);
		return;
	}
	/* committed: the user is served here from now on */
	gw->stats.users_added++;
	if (store_read_begin(gw->store, &r, &err) == 0) {
		(void)accounts_foreach(r, m->user_id, m->user, start_account,
		    &sc, &err);
		store_read_end(&r);
	}
	if (store_fts_enabled(gw->store) &&
	    reindex_start(gw, &m->user_id, 1, false) < 0)
		log_warn("user_move event=reindex_later user_id=%u note=\"a "
		    "reindex is running; run popgatectl reindex for this "
		    "user after it\"", m->user_id);
	reply_result(m);
}

static void
import_checked(struct user_move *m)
{
	struct gateway *gw = m->gw;
	struct ctl_error err;
	uint32_t id;

	if (m->result < 0) {
		reply_result(m);
		return;
	}
	free(m->user);
	m->user = xstrdup(m->import_user);
	if (!m->force && lookup_user(gw, m->user, &id, &err) == 0) {
		m->result = -1;
		snprintf(m->error, sizeof(m->error), "the user %s exists on "
		    "this node (give --force to replace them)", m->user);
		reply_result(m);
		return;
	}
	if (gw->shutting_down) {
		m->result = -1;
		snprintf(m->error, sizeof(m->error), "the daemon is shutting "
		    "down");
		reply_result(m);
		return;
	}
	if (m->force)
		gateway_close_user_sessions(gw, m->user);
	/* ONE writer job: the user appears whole at its commit */
	m->running = true;
	store_write_submit(gw->store, 0, 0, (size_t)m->file_size,
	    import_apply, import_done, m);
}

int
user_move_import(struct gateway *gw, struct control_client *client,
    json_t *req, struct ctl_error *err)
{
	const char *path = ctl_req_str(req, "path");
	struct user_move *m;
	struct stat st;
	char *pass;
	int fd, rc;

	pass = read_passphrase(ctl_req_str(req, "passphrase_file"), err);
	if (pass == NULL)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ctl_error_set(err, CTL_E_INVALID, "path", "cannot read %s: %s",
		    path, fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		explicit_bzero(pass, strlen(pass));
		free(pass);
		return -1;
	}
	if ((m = move_get(gw, err)) == NULL) {
		close(fd);
		explicit_bzero(pass, strlen(pass));
		free(pass);
		return -1;
	}
	m->kind = MOVE_IMPORT;
	m->passphrase = pass;
	m->path = xstrdup(path);
	m->fd = fd;
	m->file_size = (uint64_t)st.st_size;
	m->force = ctl_req_bool(req, "force", false);
	m->client = client;
	m->running = true;
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	rc = pthread_create(&m->thread, NULL, import_check_thread, m);
	if (rc != 0) {
		m->running = false;
		m->client = NULL;
		ctl_error_set(err, CTL_E_INTERNAL, NULL, "thread: %s",
		    strerror(rc));
		move_reset(m);
		return -1;
	}
	m->thread_live = true;
	return 0;
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct user_move *m = arg;
	char c;

	(void)what;
	if (read(fd, &c, 1) != 1 || !m->thread_live)
		return;
	pthread_join(m->thread, NULL);
	m->thread_live = false;
	if (m->kind == MOVE_EXPORT)
		export_finish(m);
	else
		import_checked(m);
}

void
user_move_unmove(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	struct store_read *r = NULL;
	struct start_ctx sc = { gw, 0, user };
	struct mark_ctx mark;
	struct ctl_error err;
	const char *error = NULL;
	char q[LOG_QUOTE_MAX];
	uint32_t id;

	if (lookup_user(gw, user, &id, &err) != 0) {
		gw->stats.control_errors++;
		control_reply_error(client, &err);
		return;
	}
	if (gw->user_move != NULL && gw->user_move->running &&
	    gw->user_move->kind == MOVE_EXPORT &&
	    gw->user_move->user_id == id) {
		ctl_error_set(&err, "busy", NULL, "the user's export is "
		    "running");
		gw->stats.control_errors++;
		control_reply_error(client, &err);
		return;
	}
	memset(&mark, 0, sizeof(mark));
	mark.user_id = id;
	if (store_write_sync(gw->store, id, 0, 0, mark_apply, &mark,
	    &error) < 0) {
		ctl_error_set(&err, CTL_E_STORE, NULL, "%s", error);
		gw->stats.control_errors++;
		control_reply_error(client, &err);
		return;
	}
	sc.user_id = id;
	if (store_read_begin(gw->store, &r, &error) == 0) {
		(void)accounts_foreach(r, id, user, start_account, &sc,
		    &error);
		store_read_end(&r);
	}
	log_info("user_move event=unmoved user=%s note=\"served here again\"",
	    log_quote(q, sizeof(q), user));
	control_reply(client, ctl_ok_json());
}

void
user_move_free(struct gateway *gw)
{
	struct user_move *m = gw->user_move;

	if (m == NULL)
		return;
	if (m->thread_live) {
		pthread_join(m->thread, NULL);
		m->thread_live = false;
		if (m->kind == MOVE_EXPORT)
			unlink(m->tmp);
	}
	event_free(m->done_ev);
	close(m->pipe[0]);
	close(m->pipe[1]);
	move_reset(m);
	free(m);
	gw->user_move = NULL;
}
