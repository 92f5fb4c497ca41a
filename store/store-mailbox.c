/*
 * store-mailbox — mailboxes: names, create / delete / rename, roles,
 * subscriptions, and each mailbox's keyword table.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store-private.h"
#include "xmalloc.h"

/* ---- names ---- */

static size_t
utf8_seq_len(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* No overlong forms, surrogates or code points past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

bool
store_mailbox_name_valid(const char *name, const char **why_r)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len = strlen(name), depth = 1;
	const char *why = NULL;

	if (len == 0)
		why = "empty mailbox name";
	else if (len > STORE_MAILBOX_NAME_MAX)
		why = "mailbox name too long";
	else if (s[0] == STORE_MAILBOX_DELIM || s[len - 1] == STORE_MAILBOX_DELIM)
		why = "mailbox name starts or ends with the delimiter";
	for (size_t i = 0; why == NULL && i < len;) {
		size_t n;

		if (s[i] < 0x20 || s[i] == 0x7f) {
			why = "control character in mailbox name";
			break;
		}
		if (s[i] == STORE_MAILBOX_DELIM) {
			if (s[i + 1] == STORE_MAILBOX_DELIM) {
				why = "empty component in mailbox name";
				break;
			}
			if (++depth > STORE_MAILBOX_DEPTH_MAX) {
				why = "mailbox hierarchy too deep";
				break;
			}
		}
		if ((n = utf8_seq_len(s + i, len - i)) == 0) {
			why = "mailbox name is not UTF-8";
			break;
		}
		i += n;
	}
	if (why_r != NULL)
		*why_r = why;
	return why == NULL;
}

int
store_mb_name_norm(struct store *store, const char *name, char *out,
    const char **error_r)
{
	const char *why;

	if (!store_mailbox_name_valid(name, &why))
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: %s", why);
	strcpy(out, name);
	/* INBOX is case-insensitive, also as the first component. */
	if (strncasecmp(out, "INBOX", 5) == 0 &&
	    (out[5] == '\0' || out[5] == STORE_MAILBOX_DELIM))
		memcpy(out, "INBOX", 5);
	return 0;
}

static void
mbname_key(struct store_key *k, uint32_t user_id, const char *name)
{
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_bytes(k, name, strlen(name));
}

void
store_mb_key(struct store_key *k, uint32_t user_id, uint32_t mailbox_id)
{
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u32(k, mailbox_id);
}

/* 0 found, STORE_NOT_FOUND, -1 error. */
int
store_mbname_get(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *name, uint32_t *id_r, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	mbname_key(&k, user_id, name);
	key = store_key_val(&k);
	rc = mdb_get(txn, store->dbi[DB_MBNAMES], &key, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "mailbox lookup");
	memcpy(id_r, data.mv_data, 4);
	return 0;
}

static int
mbname_put(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *name, uint32_t id, const char **error_r)
{
	struct store_key k;
	MDB_val key, data = { 4, &id };
	int rc;

	mbname_key(&k, user_id, name);
	key = store_key_val(&k);
	rc = mdb_put(txn, store->dbi[DB_MBNAMES], &key, &data,
	    MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return store_fail(store, error_r, STORE_ERR_EXISTS,
		    "store: mailbox exists");
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "mailbox name write");
	return 0;
}

static int
mbname_del(struct store *store, MDB_txn *txn, enum store_db db,
    uint32_t user_id, const char *name, const char **error_r)
{
	struct store_key k;
	MDB_val key;
	int rc;

	mbname_key(&k, user_id, name);
	key = store_key_val(&k);
	rc = mdb_del(txn, store->dbi[db], &key, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(store, error_r, rc, "name delete");
	return rc == MDB_NOTFOUND ? STORE_NOT_FOUND : 0;
}

/* ---- records ---- */

int
store_mb_load(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, struct store_mb *mb_r, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	store_mb_key(&k, user_id, mailbox_id);
	key = store_key_val(&k);
	rc = mdb_get(txn, store->dbi[DB_MAILBOXES], &key, &data);
	if (rc == MDB_NOTFOUND)
		return store_fail(store, error_r, STORE_ERR_NOTFOUND,
		    "store: no such mailbox");
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "mailbox");
	memcpy(&mb_r->rec, data.mv_data, sizeof(mb_r->rec));
	if (mb_r->rec.name_len > STORE_MAILBOX_NAME_MAX ||
	    data.mv_size < sizeof(mb_r->rec) + mb_r->rec.name_len)
		return store_fail(store, error_r, STORE_ERR_IO,
		    "store: corrupt mailbox record");
	memcpy(mb_r->name, (const char *)data.mv_data + sizeof(mb_r->rec),
	    mb_r->rec.name_len);
	mb_r->name[mb_r->rec.name_len] = '\0';
	mb_r->id = mailbox_id;
	return 0;
}

int
store_mb_save(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct store_mb *mb, const char **error_r)
{
	unsigned char buf[sizeof(struct store_mbrec) + STORE_MAILBOX_NAME_MAX
	    + 1];
	struct store_mbrec rec = mb->rec;
	struct store_key k;
	MDB_val key, data;
	int rc;

	rec.name_len = (uint32_t)strlen(mb->name);
	memcpy(buf, &rec, sizeof(rec));
	memcpy(buf + sizeof(rec), mb->name, rec.name_len + 1);
	data.mv_data = buf;
	data.mv_size = sizeof(rec) + rec.name_len + 1;
	store_mb_key(&k, user_id, mb->id);
	key = store_key_val(&k);
	if ((rc = mdb_put(txn, store->dbi[DB_MAILBOXES], &key, &data, 0)) != 0)
		return store_fail_mdb(store, error_r, rc, "mailbox write");
	return 0;
}

static int
mb_count(struct store *store, MDB_txn *txn, uint32_t user_id,
    size_t *count_r, const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	size_t n = 0;
	int rc;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MAILBOXES], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		n++;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(store, error_r, rc, "mailbox count");
	*count_r = n;
	return 0;
}

int
store_mb_create_txn(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *name, enum store_role role, struct store_mb *mb_r,
    const char **error_r)
{
	struct store_userrec urec;
	struct store_event *ev;
	uint32_t id;
	size_t count;
	int rc;

	if (store_userrec_load(store, txn, user_id, &urec, error_r) < 0)
		return -1;
	rc = store_mbname_get(store, txn, user_id, name, &id, error_r);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return store_fail(store, error_r, STORE_ERR_EXISTS,
		    "store: mailbox exists");
	if (mb_count(store, txn, user_id, &count, error_r) < 0)
		return -1;
	if (count >= STORE_MAILBOXES_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: too many mailboxes");
	if (urec.next_mailbox_id == UINT32_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: mailbox ids exhausted");
	memset(mb_r, 0, sizeof(*mb_r));
	mb_r->id = urec.next_mailbox_id++;
	if (urec.next_uidvalidity == 0)
		urec.next_uidvalidity = 1;
	mb_r->rec.uidvalidity = urec.next_uidvalidity++;
	mb_r->rec.uidnext = 1;
	mb_r->rec.highestmodseq = 1;
	mb_r->rec.role = (uint32_t)role;
	strcpy(mb_r->name, name);
	if (store_userrec_save(store, txn, user_id, &urec, error_r) < 0 ||
	    mbname_put(store, txn, user_id, name, mb_r->id, error_r) < 0 ||
	    store_mb_save(store, txn, user_id, mb_r, error_r) < 0)
		return -1;
	ev = store_event_add(store, STORE_CHANGE_MAILBOX_CREATE, user_id, mb_r,
	    mb_r->id);
	store_event_set_names(ev, name, NULL);
	return 0;
}

/* Creates every missing proper parent of name ("a", "a/b" for "a/b/c"). */
static int
create_parents(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *name, const char **error_r)
{
	char buf[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mb mb;
	uint32_t id;
	int rc;

	for (const char *p = strchr(name, STORE_MAILBOX_DELIM); p != NULL;
	    p = strchr(p + 1, STORE_MAILBOX_DELIM)) {
		memcpy(buf, name, (size_t)(p - name));
		buf[p - name] = '\0';
		rc = store_mbname_get(store, txn, user_id, buf, &id, error_r);
		if (rc < 0)
			return -1;
		if (rc == STORE_NOT_FOUND &&
		    store_mb_create_txn(store, txn, user_id, buf,
		    STORE_ROLE_NONE, &mb, error_r) < 0)
			return -1;
	}
	return 0;
}

int
store_mailbox_create(struct store *store, uint32_t user_id, const char *name,
    enum store_role role, uint32_t *mailbox_id_r, const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	struct store_mb mb;
	MDB_txn *txn = NULL;

	if (store_mb_name_norm(store, name, norm, error_r) < 0)
		return -1;
	if ((unsigned int)role > STORE_ROLE_FLAGGED)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid role");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (create_parents(store, txn, user_id, norm, error_r) < 0 ||
	    store_mb_create_txn(store, txn, user_id, norm, role, &mb,
	    error_r) < 0) {
		store_wabort(store, txn);
		return -1;
	}
	if (store_wcommit(store, txn, error_r) < 0)
		return -1;
	if (mailbox_id_r != NULL)
		*mailbox_id_r = mb.id;
	return 0;
}

int
store_mailbox_delete(struct store *store, uint32_t user_id, const char *name,
    const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	struct store_key k;
	struct store_event *ev;
	MDB_txn *txn = NULL;
	MDB_val key;
	uint32_t id;
	int rc;

	if (store_mb_name_norm(store, name, norm, error_r) < 0)
		return -1;
	if (strcmp(norm, "INBOX") == 0)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: INBOX cannot be deleted");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	rc = store_mbname_get(store, txn, user_id, norm, &id, error_r);
	if (rc == STORE_NOT_FOUND)
		store_fail(store, error_r, STORE_ERR_NOTFOUND,
		    "store: no such mailbox");
	if (rc != 0)
		goto fail;
	if (store_mb_purge(store, txn, user_id, id, error_r) < 0 ||
	    mbname_del(store, txn, DB_MBNAMES, user_id, norm, error_r) < 0)
		goto fail;
	store_mb_key(&k, user_id, id);
	key = store_key_val(&k);
	if ((rc = mdb_del(txn, store->dbi[DB_MAILBOXES], &key, NULL)) != 0) {
		store_fail_mdb(store, error_r, rc, "mailbox delete");
		goto fail;
	}
	ev = store_event_add(store, STORE_CHANGE_MAILBOX_DELETE, user_id,
	    NULL, id);
	store_event_set_names(ev, norm, NULL);
	return store_wcommit(store, txn, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}

/* ---- rename ---- */

struct rename_item {
	uint32_t id;
	char *old_name;
	char *new_name;
};

static int
subs_move(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *old_name, const char *new_name, const char **error_r)
{
	struct store_key k;
	MDB_val key, data = { 0, (void *)"" };
	int rc;

	rc = mbname_del(store, txn, DB_SUBS, user_id, old_name, error_r);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	mbname_key(&k, user_id, new_name);
	key = store_key_val(&k);
	if ((rc = mdb_put(txn, store->dbi[DB_SUBS], &key, &data, 0)) != 0)
		return store_fail_mdb(store, error_r, rc, "subscription write");
	return 0;
}

struct inbox_msg {
	uint32_t uid;
	struct store_msgrec rec;
};

static int
rename_inbox(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t inbox_id, const char *new_name, const char **error_r)
{
	struct store_mb inbox, dst;
	struct store_kwtable *kw = xmalloc(sizeof(*kw));
	struct inbox_msg *msgs = NULL;
	size_t n = 0, cap = 0;
	struct store_key k, nk;
	struct store_event *ev;
	MDB_cursor *cur = NULL;
	MDB_val key, data;
	uint64_t modseq;
	int rc, ret = -1;

	if (store_mb_load(store, txn, user_id, inbox_id, &inbox, error_r) < 0 ||
	    create_parents(store, txn, user_id, new_name, error_r) < 0 ||
	    store_mb_create_txn(store, txn, user_id, new_name,
	    (enum store_role)inbox.rec.role, &dst, error_r) < 0 ||
	    store_kw_load(store, txn, user_id, inbox_id, kw, error_r) < 0)
		goto out;
	/* Same keyword ids in the new mailbox: bit sets move unchanged. */
	{
		struct store_kwtable *empty = xcalloc(1, sizeof(*empty));

		for (uint32_t i = 0; i < kw->count; i++) {
			unsigned int id;

			rc = store_kw_intern(store, txn, user_id, &dst, empty,
			    kw->names[i], &id, error_r);
			if (rc < 0) {
				free(empty);
				goto out;
			}
		}
		free(empty);
	}
	/* Collect first, then write: no cursor lives across the puts. */
	store_mb_key(&k, user_id, inbox_id);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MSGS], &cur)) != 0)
		goto mdb_fail;
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			msgs = xreallocarray(msgs, cap, sizeof(*msgs));
		}
		msgs[n].uid = store_get_u32((unsigned char *)key.mv_data + 8);
		memcpy(&msgs[n].rec, data.mv_data, sizeof(msgs[n].rec));
		n++;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto mdb_fail;
	if (store_del_prefix(store, txn, DB_MSGS, &k, error_r) < 0)
		goto out;

	modseq = inbox.rec.highestmodseq + 1;
	ev = store_event_add(store, STORE_CHANGE_EXPUNGE, user_id, NULL,
	    inbox_id);
	for (size_t i = 0; i < n; i++) {
		struct store_msgrec m = msgs[i].rec;
		MDB_val nkey, ndata = { sizeof(m), &m };

		m.modseq = 1;
		store_mb_key(&nk, user_id, dst.id);
		store_key_u32(&nk, dst.rec.uidnext++);
		nkey = store_key_val(&nk);
		if ((rc = mdb_put(txn, store->dbi[DB_MSGS], &nkey, &ndata,
		    0)) != 0)
			goto mdb_fail;
		store_mb_count_add(&dst.rec, &m, 1);
		store_mb_key(&nk, user_id, inbox_id);
		store_key_u64(&nk, modseq);
		store_key_u32(&nk, msgs[i].uid);
		nkey = store_key_val(&nk);
		ndata.mv_size = 0;
		if ((rc = mdb_put(txn, store->dbi[DB_VANISHED], &nkey, &ndata,
		    0)) != 0)
			goto mdb_fail;
		store_event_add_uid(ev, msgs[i].uid);
	}
	inbox.rec.messages = inbox.rec.unseen = inbox.rec.deleted = 0;
	inbox.rec.size = 0;
	if (n > 0)
		inbox.rec.highestmodseq = modseq;
	if (store_mb_save(store, txn, user_id, &inbox, error_r) < 0 ||
	    store_mb_save(store, txn, user_id, &dst, error_r) < 0)
		goto out;
	store_event_add(store, STORE_CHANGE_EXPUNGE, user_id, &inbox,
	    inbox_id);
	store_event_add(store, STORE_CHANGE_MAILBOX_CREATE, user_id, &dst,
	    dst.id);
	ret = 0;
	goto out;
mdb_fail:
	store_fail_mdb(store, error_r, rc, "rename INBOX");
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	free(msgs);
	free(kw);
	return ret;
}

static int
collect_tree(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *old_name, uint32_t old_id, const char *new_name,
    struct rename_item **items_r, size_t *count_r, const char **error_r)
{
	struct rename_item *items = NULL;
	size_t n = 0, cap = 0, old_len = strlen(old_name);
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc;

	mbname_key(&k, user_id, old_name);
	store_key_u8(&k, STORE_MAILBOX_DELIM);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MBNAMES], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	items = xreallocarray(NULL, 8, sizeof(*items));
	cap = 8;
	items[n].id = old_id;
	items[n].old_name = xstrdup(old_name);
	items[n++].new_name = xstrdup(new_name);
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		const char *name = (const char *)key.mv_data + 4;
		size_t name_len = key.mv_size - 4;

		if (n == cap) {
			cap *= 2;
			items = xreallocarray(items, cap, sizeof(*items));
		}
		memcpy(&items[n].id, data.mv_data, 4);
		items[n].old_name = xstrndup(name, name_len);
		items[n].new_name = xasprintf("%s%.*s", new_name,
		    (int)(name_len - old_len), name + old_len);
		n++;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	*items_r = items;
	*count_r = n;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(store, error_r, rc, "mailbox list");
	return 0;
}

int
store_mailbox_rename(struct store *store, uint32_t user_id,
    const char *old_name, const char *new_name, const char **error_r)
{
	char oldn[STORE_MAILBOX_NAME_MAX + 1], newn[STORE_MAILBOX_NAME_MAX + 1];
	struct rename_item *items = NULL;
	size_t count = 0, old_len;
	MDB_txn *txn = NULL;
	uint32_t old_id, id;
	int rc, ret = -1;

	if (store_mb_name_norm(store, old_name, oldn, error_r) < 0 ||
	    store_mb_name_norm(store, new_name, newn, error_r) < 0)
		return -1;
	old_len = strlen(oldn);
	/* Into itself is refused, except INBOX into a child of INBOX
	   ("INBOX/old"): renaming INBOX moves only its messages. */
	if (strncmp(newn, oldn, old_len) == 0 &&
	    (newn[old_len] == '\0' || (newn[old_len] == STORE_MAILBOX_DELIM &&
	    strcmp(oldn, "INBOX") != 0)))
		return store_fail(store, error_r, newn[old_len] == '\0' ?
		    STORE_ERR_EXISTS : STORE_ERR_INVALID,
		    "store: cannot rename a mailbox into itself");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	rc = store_mbname_get(store, txn, user_id, oldn, &old_id, error_r);
	if (rc == STORE_NOT_FOUND)
		store_fail(store, error_r, STORE_ERR_NOTFOUND,
		    "store: no such mailbox");
	if (rc != 0)
		goto out;
	if (strcmp(oldn, "INBOX") == 0) {
		if (rename_inbox(store, txn, user_id, old_id, newn,
		    error_r) < 0)
			goto out;
		ret = 0;
		goto out;
	}
	if (collect_tree(store, txn, user_id, oldn, old_id, newn, &items,
	    &count, error_r) < 0)
		goto out;
	for (size_t i = 0; i < count; i++) {
		const char *why;

		if (!store_mailbox_name_valid(items[i].new_name, &why)) {
			store_fail(store, error_r, STORE_ERR_INVALID,
			    "store: %s", why);
			goto out;
		}
		rc = store_mbname_get(store, txn, user_id, items[i].new_name, &id,
		    error_r);
		if (rc < 0)
			goto out;
		if (rc == 0) {
			store_fail(store, error_r, STORE_ERR_EXISTS,
			    "store: mailbox exists");
			goto out;
		}
	}
	for (size_t i = 0; i < count; i++) {
		struct store_mb mb;
		struct store_event *ev;

		if (mbname_del(store, txn, DB_MBNAMES, user_id,
		    items[i].old_name, error_r) < 0 ||
		    mbname_put(store, txn, user_id, items[i].new_name,
		    items[i].id, error_r) < 0 ||
		    store_mb_load(store, txn, user_id, items[i].id, &mb,
		    error_r) < 0)
			goto out;
		strcpy(mb.name, items[i].new_name);
		if (store_mb_save(store, txn, user_id, &mb, error_r) < 0 ||
		    subs_move(store, txn, user_id, items[i].old_name,
		    items[i].new_name, error_r) < 0)
			goto out;
		ev = store_event_add(store, STORE_CHANGE_MAILBOX_RENAME,
		    user_id, &mb, mb.id);
		store_event_set_names(ev, items[i].new_name, items[i].old_name);
	}
	if (create_parents(store, txn, user_id, newn, error_r) < 0)
		goto out;
	ret = 0;
out:
	for (size_t i = 0; i < count; i++) {
		free(items[i].old_name);
		free(items[i].new_name);
	}
	free(items);
	if (ret < 0) {
		store_wabort(store, txn);
		return -1;
	}
	return store_wcommit(store, txn, error_r);
}

/* ---- subscriptions, roles ---- */

int
store_sub_put_txn(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *name, const char **error_r)
{
	struct store_key k;
	MDB_val key, data = { 0, (void *)"" };
	int rc;

	mbname_key(&k, user_id, name);
	key = store_key_val(&k);
	if ((rc = mdb_put(txn, store->dbi[DB_SUBS], &key, &data, 0)) != 0)
		return store_fail_mdb(store, error_r, rc,
		    "subscription write");
	return 0;
}

/* Does the user have any subscription? 1 yes, 0 no, -1 error. */
static int
user_has_subscriptions(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	key = store_key_val(&k);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_SUBS], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "subscriptions");
	return key.mv_size >= 4 && memcmp(key.mv_data, k.b, 4) == 0;
}

/* Subscribes INBOX and every special-use mailbox of the user. */
static int
subscribe_defaults(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc, ret = 0;

	if (store_sub_put_txn(store, txn, user_id, "INBOX", error_r) < 0)
		return -1;
	store_key_init(&k);
	store_key_u32(&k, user_id);
	key = store_key_val(&k);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MAILBOXES], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	/* names collected first, subscribed after the walk */
	char (*names)[STORE_MAILBOX_NAME_MAX + 1] = NULL;
	size_t n = 0, cap = 0;

	for (rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT)) {
		struct store_mbrec rec;
		size_t nlen;

		if (key.mv_size < 4 || memcmp(key.mv_data, k.b, 4) != 0)
			break;
		if (data.mv_size < sizeof(rec))
			continue;
		memcpy(&rec, data.mv_data, sizeof(rec));
		nlen = rec.name_len;
		if (rec.role == STORE_ROLE_NONE || nlen == 0 ||
		    nlen > STORE_MAILBOX_NAME_MAX ||
		    data.mv_size < sizeof(rec) + nlen)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		memcpy(names[n], (const char *)data.mv_data + sizeof(rec),
		    nlen);
		names[n][nlen] = '\0';
		n++;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		ret = store_fail_mdb(store, error_r, rc, "mailbox list");
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = store_sub_put_txn(store, txn, user_id, names[i], error_r);
	free(names);
	return ret;
}

int
store_subscriptions_default_once(struct store *store, unsigned *users_r,
    const char **error_r)
{
	static const char done_key[] = "default_subscriptions";
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key = { strlen(done_key), (void *)done_key }, data;
	uint32_t *ids = NULL;
	size_t n = 0, cap = 0;
	unsigned fixed = 0;
	int rc;

	if (users_r != NULL)
		*users_r = 0;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	rc = mdb_get(txn, store->dbi[DB_META], &key, &data);
	if (rc == 0) {
		store_wabort(store, txn);
		store_ok(store);
		return 0;
	}
	if (rc != MDB_NOTFOUND) {
		store_fail_mdb(store, error_r, rc, "meta read");
		goto fail;
	}
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_USERS], &cur)) != 0) {
		store_fail_mdb(store, error_r, rc, "cursor");
		goto fail;
	}
	for (rc = mdb_cursor_get(cur, &key, &data, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT)) {
		if (key.mv_size != 4)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			ids = xreallocarray(ids, cap, sizeof(*ids));
		}
		ids[n++] = store_get_u32(key.mv_data);
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		store_fail_mdb(store, error_r, rc, "user list");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		int has = user_has_subscriptions(store, txn, ids[i], error_r);

		if (has < 0)
			goto fail;
		if (has)
			continue;
		if (subscribe_defaults(store, txn, ids[i], error_r) < 0)
			goto fail;
		fixed++;
	}
	key.mv_data = (void *)done_key;
	key.mv_size = strlen(done_key);
	data.mv_data = (void *)"1";
	data.mv_size = 1;
	if ((rc = mdb_put(txn, store->dbi[DB_META], &key, &data, 0)) != 0) {
		store_fail_mdb(store, error_r, rc, "meta write");
		goto fail;
	}
	free(ids);
	if (store_wcommit(store, txn, error_r) < 0)
		return -1;
	if (users_r != NULL)
		*users_r = fixed;
	return 0;
fail:
	free(ids);
	store_wabort(store, txn);
	return -1;
}

int
store_mailbox_subscribe(struct store *store, uint32_t user_id,
    const char *name, bool subscribe, const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	struct store_userrec urec;
	struct store_event *ev;
	struct store_key k;
	MDB_txn *txn = NULL;
	MDB_val key, data = { 0, (void *)"" };
	uint32_t id = 0;
	int rc;

	if (store_mb_name_norm(store, name, norm, error_r) < 0)
		return -1;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_userrec_load(store, txn, user_id, &urec, error_r) < 0)
		goto fail;
	mbname_key(&k, user_id, norm);
	key = store_key_val(&k);
	if (subscribe)
		rc = mdb_put(txn, store->dbi[DB_SUBS], &key, &data, 0);
	else
		rc = mdb_del(txn, store->dbi[DB_SUBS], &key, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_fail_mdb(store, error_r, rc, "subscription write");
		goto fail;
	}
	if (store_mbname_get(store, txn, user_id, norm, &id, error_r) < 0)
		goto fail;
	ev = store_event_add(store, STORE_CHANGE_MAILBOX_SUBSCRIBE, user_id,
	    NULL, id);
	ev->ch.subscribed = subscribe;
	store_event_set_names(ev, norm, NULL);
	return store_wcommit(store, txn, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}

int
store_mailbox_set_role(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, enum store_role role, const char **error_r)
{
	struct store_mb mb;
	MDB_txn *txn = NULL;

	if ((unsigned int)role > STORE_ROLE_FLAGGED)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid role");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_mb_load(store, txn, user_id, mailbox_id, &mb, error_r) < 0)
		goto fail;
	mb.rec.role = (uint32_t)role;
	if (store_mb_save(store, txn, user_id, &mb, error_r) < 0)
		goto fail;
	return store_wcommit(store, txn, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}
