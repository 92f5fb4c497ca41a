/*
 * user-move-export — the export's thread: one read snapshot of the user
 * written as records (gateway/move-format.h), bodies streamed from the
 * store's map, secrets sealed again for the transfer, an HMAC at the end.
 * It reads the request's copies in struct user_move and writes only the
 * result fields; the loop waits for its signal (user-move.h).
 */
#include <openssl/rand.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/accounts.h"
#include "gateway/gateway.h"
#include "gateway/user-move-private.h"
#include "log.h"
#include "store/store.h"
#include "strbuf.h"
#include "xmalloc.h"

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
	struct move_mac mac;
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
		move_mac_update(&x->mac, head, sizeof(head));
	if (type != MOVE_R_END && len > 0)
		move_mac_update(&x->mac, data, len);
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
	tu = move_transfer_user(m->user);
	rec = move_reseal(m->user, &a, m->gw->key, x->transfer, tu, &error);
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
	/* one recognised by header was never seen whole: its DELE is
	   checked by RETR, so it travels without its header digest */
	l.has_head = e->has_head && !e->by_head;
	memcpy(l.head_digest, e->head_digest, sizeof(l.head_digest));
	l.list_size = e->list_size;
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
	if (move_derive_keys(m->passphrase, h.salt, MOVE_KDF_ITERATIONS,
	    &m->keys) < 0 || move_mac_init(&x->mac, m->keys.mac) < 0)
		return exp_fail(x, "key derivation failed");
	x->transfer = secret_key_from_bytes(m->keys.seal);
	if (gethostname(node, sizeof(node)) < 0)
		node[0] = '\0';
	node[sizeof(node) - 1] = '\0';
	h.exported = (int64_t)time(NULL);
	h.user = m->user;
	h.node = node;
	h.iterations = MOVE_KDF_ITERATIONS;
	move_mac_update(&x->mac, MOVE_MAGIC, MOVE_MAGIC_LEN);
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
	if (move_mac_final(&x->mac, tag) < 0)
		return exp_fail(x, "HMAC failed");
	if (exp_raw(x, MOVE_R_END, tag, sizeof(tag)) < 0)
		return -1;
	if (fflush(x->f) != 0 || fsync(fileno(x->f)) < 0)
		return exp_fail(x, "write: %s", strerror(errno));
	return 0;
}

void *
move_export_thread(void *arg)
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
	move_mac_free(&x.mac);
	secret_key_free(&x.transfer);
	free(x.bodies.keys);
	free(x.bodies.vals);
	free(x.van);
	move_thread_done(m);
	return NULL;
}
