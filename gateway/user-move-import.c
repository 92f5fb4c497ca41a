/*
 * user-move-import — reading an export: the same reader checks the whole
 * file on a thread of its own (pass 1, no writes) and writes the user in
 * the writer job (pass 2, store_import_*), so pass 2 also refuses a file
 * changed in between. Bounded memory: the decoder's one record, one body,
 * one batch of messages (MOVE_IMPORT_BATCH), 16 bytes per body.
 */
#include <fcntl.h>
#include <openssl/crypto.h>
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
#include "store/mail-parse.h"
#include "store/mail-serialize.h"
#include "store/store.h"
#include "strbuf.h"
#include "xmalloc.h"

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
	struct move_mac mac;
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
	move_mac_update(&im->mac, head, sizeof(head));
	move_mac_update(&im->mac, rec->data, rec->len);
}

static int
imp_header(struct importer *im, json_t *j)
{
	struct user_move *m = im->m;
	struct move_header h;

	if (move_header_parse(j, &h, im->err, sizeof(im->err)) < 0)
		return -1;
	if (!m->have_keys) {
		if (move_derive_keys(m->passphrase, h.salt, h.iterations,
		    &m->keys) < 0)
			return imp_fail(im, "key derivation failed");
		m->have_keys = true;
	}
	if (move_mac_init(&im->mac, m->keys.mac) < 0)
		return imp_fail(im, "HMAC set-up failed");
	im->mac_on = true;
	move_mac_update(&im->mac, MOVE_MAGIC, MOVE_MAGIC_LEN);
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
	tu = move_transfer_user(m->import_user);
	rc = account_from_record(tu, 0, a.name, text, strlen(text), &acc,
	    &error);
	free(text);
	free(tu);
	if (rc < 0)
		return imp_fail(im, "account %s: %s", a.name, error);
	/* sealed for this node under the user's own name */
	rec = move_reseal(m->import_user, &acc, im->transfer, m->gw->key,
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
	e.has_head = l.has_head;
	memcpy(e.head_digest, l.head_digest, sizeof(e.head_digest));
	e.list_size = l.list_size;
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
			if (move_mac_final(&im->mac, tag) < 0)
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
	move_mac_free(&im->mac);
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

void *
move_import_check_thread(void *arg)
{
	struct user_move *m = arg;
	struct importer im;

	importer_init(&im, m, m->fd);
	m->result = import_run(&im);
	if (m->result < 0)
		snprintf(m->error, sizeof(m->error), "%s", im.err);
	importer_free(&im);
	move_thread_done(m);
	return NULL;
}

int
move_import_apply(struct store *store, void *ctx, const char **error_r)
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
