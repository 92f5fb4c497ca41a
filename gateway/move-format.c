/* move-format — see move-format.h. */
#include "move-format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

static int
fail(char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- framing ---- */

void
move_record_head(unsigned char head[5], enum move_type type, uint32_t len)
{
	head[0] = (unsigned char)type;
	head[1] = (unsigned char)(len >> 24);
	head[2] = (unsigned char)(len >> 16);
	head[3] = (unsigned char)(len >> 8);
	head[4] = (unsigned char)len;
}

size_t
move_type_max(unsigned type)
{
	switch (type) {
	case MOVE_R_HEADER: case MOVE_R_USER: case MOVE_R_SETTING:
	case MOVE_R_ACCOUNT: case MOVE_R_SUBSCRIPTION: case MOVE_R_MAILBOX:
	case MOVE_R_MESSAGE: case MOVE_R_VANISHED: case MOVE_R_LEDGER:
		return MOVE_JSON_MAX;
	case MOVE_R_BODY:
		return MOVE_BODY_MAX;
	case MOVE_R_END:
		return MOVE_MAC_SIZE;
	default:
		return 0;
	}
}

void
move_dec_init(struct move_dec *d)
{
	memset(d, 0, sizeof(*d));
}

void
move_dec_free(struct move_dec *d)
{
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

enum move_dec_ret
move_dec_feed(struct move_dec *d, const void *in, size_t len, size_t *used_r,
    struct move_rec *rec_r, char *err, size_t errsize)
{
	const unsigned char *p = in;
	size_t used = 0, n;

	*used_r = 0;
	if (d->failed) {
		fail(err, errsize, "the decoder stopped at an earlier error");
		return MOVE_DEC_ERROR;
	}
	while (d->magic_got < MOVE_MAGIC_LEN && used < len) {
		if (p[used] != (unsigned char)MOVE_MAGIC[d->magic_got]) {
			d->failed = true;
			fail(err, errsize, d->magic_got < 13 ? "not a popgate "
			    "user export (no \"POPGATE-MOVE\" line)" :
			    "export format version not supported (this "
			    "popgated reads version %d)", MOVE_FORMAT_VERSION);
			return MOVE_DEC_ERROR;
		}
		d->magic_got++;
		used++;
		d->offset++;
	}
	while (used < len) {
		if (d->ended) {
			d->failed = true;
			fail(err, errsize, "bytes after the end record (offset "
			    "%llu)", (unsigned long long)d->offset);
			*used_r = used;
			return MOVE_DEC_ERROR;
		}
		if (d->head_got < 5) {
			if (d->head_got == 0)
				d->rec_offset = d->offset;
			d->head[d->head_got++] = p[used++];
			d->offset++;
			if (d->head_got < 5)
				continue;
			d->len = (uint32_t)d->head[1] << 24 |
			    (uint32_t)d->head[2] << 16 |
			    (uint32_t)d->head[3] << 8 | d->head[4];
			n = move_type_max(d->head[0]);
			if (n == 0 || d->len > n) {
				d->failed = true;
				*used_r = used;
				if (n == 0)
					fail(err, errsize, "unknown record "
					    "type 0x%02x at offset %llu",
					    d->head[0], (unsigned long long)
					    d->rec_offset);
				else
					fail(err, errsize, "record '%c' of %u "
					    "bytes at offset %llu is over its "
					    "limit of %zu", d->head[0], d->len,
					    (unsigned long long)d->rec_offset,
					    n);
				return MOVE_DEC_ERROR;
			}
			if (d->head[0] == MOVE_R_END &&
			    d->len != MOVE_MAC_SIZE) {
				d->failed = true;
				*used_r = used;
				fail(err, errsize, "end record of %u bytes",
				    d->len);
				return MOVE_DEC_ERROR;
			}
			if (d->cap < d->len) {
				free(d->buf);
				d->cap = d->len;
				d->buf = xmalloc(d->cap);
			}
			d->got = 0;
		}
		n = d->len - d->got;
		if (n > len - used)
			n = len - used;
		if (n > 0) {
			memcpy(d->buf + d->got, p + used, n);
			d->got += n;
			used += n;
			d->offset += n;
		}
		if (d->got < d->len)
			break;
		d->head_got = 0;
		rec_r->type = (enum move_type)d->head[0];
		rec_r->data = d->buf;
		rec_r->len = d->len;
		rec_r->offset = d->rec_offset;
		if (rec_r->type == MOVE_R_END)
			d->ended = true;
		*used_r = used;
		return MOVE_DEC_RECORD;
	}
	*used_r = used;
	return MOVE_DEC_MORE;
}

int
move_dec_finish(const struct move_dec *d, char *err, size_t errsize)
{
	if (d->failed)
		return fail(err, errsize, "the file has an error");
	if (d->magic_got < MOVE_MAGIC_LEN)
		return fail(err, errsize, "not a popgate user export (the "
		    "file is empty or shorter than its first line)");
	if (!d->ended)
		return fail(err, errsize, "the export is truncated: it ends "
		    "at offset %llu %s, before its end record",
		    (unsigned long long)d->offset, d->head_got > 0 ?
		    "inside a record" : "between records");
	return 0;
}

/* ---- hex ---- */

void
move_hex(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
move_unhex(const char *hex, void *out, size_t n)
{
	unsigned char *o = out;

	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		o[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* ---- JSON records ---- */

int
move_json(const struct move_rec *rec, json_t **j_r, char *err, size_t errsize)
{
	json_error_t jerr;
	json_t *j;

	j = json_loadb((const char *)rec->data, rec->len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		return fail(err, errsize, "record '%c' at offset %llu: bad "
		    "JSON: %s", rec->type, (unsigned long long)rec->offset,
		    jerr.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return fail(err, errsize, "record '%c' at offset %llu is not "
		    "a JSON object", rec->type,
		    (unsigned long long)rec->offset);
	}
	*j_r = j;
	return 0;
}

static bool
text_ok(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

/* json_unpack with "!" (no unknown field) and a readable error. */
static int
unpack(json_t *j, const char *what, char *err, size_t errsize,
    const char *fmt, ...)
{
	json_error_t jerr;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = json_vunpack_ex(j, &jerr, 0, fmt, ap);
	va_end(ap);
	if (rc != 0)
		return fail(err, errsize, "%s record: %s", what, jerr.text);
	return 0;
}

static bool
in_range(json_int_t v, json_int_t lo, json_int_t hi)
{
	return v >= lo && v <= hi;
}

int
move_header_parse(json_t *j, struct move_header *h, char *err,
    size_t errsize)
{
	json_int_t format, exported, iterations;
	const char *salt, *kdf;

	memset(h, 0, sizeof(*h));
	if (unpack(j, "header", err, errsize, "{s:I, s:I, s:s, s:s, s:s, "
	    "s:s, s:I !}", "format", &format, "exported", &exported, "user",
	    &h->user, "node", &h->node, "kdf", &kdf, "salt", &salt,
	    "iterations", &iterations) < 0)
		return -1;
	if (format != MOVE_FORMAT_VERSION)
		return fail(err, errsize, "export format %lld not supported "
		    "(this popgated reads %d)", (long long)format,
		    MOVE_FORMAT_VERSION);
	if (strcmp(kdf, "pbkdf2-sha256") != 0)
		return fail(err, errsize, "header: unknown kdf \"%s\"", kdf);
	if (!in_range(iterations, MOVE_KDF_ITERATIONS_MIN,
	    MOVE_KDF_ITERATIONS_MAX))
		return fail(err, errsize, "header: iterations out of range");
	if (move_unhex(salt, h->salt, MOVE_SALT_SIZE) < 0)
		return fail(err, errsize, "header: bad salt");
	if (!text_ok(h->user, 1, MOVE_NAME_MAX) ||
	    !text_ok(h->node, 0, MOVE_NAME_MAX) || exported < 0)
		return fail(err, errsize, "header: bad user, node or date");
	h->format = (int)format;
	h->exported = exported;
	h->iterations = (uint32_t)iterations;
	return 0;
}

json_t *
move_header_json(const struct move_header *h)
{
	char salt[2 * MOVE_SALT_SIZE + 1];

	move_hex(h->salt, MOVE_SALT_SIZE, salt);
	return json_pack("{s:i, s:I, s:s, s:s, s:s, s:s, s:I}", "format",
	    MOVE_FORMAT_VERSION, "exported", (json_int_t)h->exported, "user",
	    h->user, "node", h->node, "kdf", "pbkdf2-sha256", "salt", salt,
	    "iterations", (json_int_t)h->iterations);
}

int
move_user_parse(json_t *j, struct move_user *u, char *err, size_t errsize)
{
	json_int_t created;

	if (unpack(j, "user", err, errsize, "{s:s, s:s, s:I !}", "name",
	    &u->name, "password_hash", &u->password_hash, "created",
	    &created) < 0)
		return -1;
	if (!text_ok(u->name, 1, MOVE_NAME_MAX) ||
	    strchr(u->name, '/') != NULL)
		return fail(err, errsize, "user record: bad name");
	if (!text_ok(u->password_hash, 0, MOVE_HASH_MAX))
		return fail(err, errsize, "user record: bad password hash");
	if (created < 0)
		return fail(err, errsize, "user record: bad creation date");
	u->created = created;
	return 0;
}

json_t *
move_user_json(const struct move_user *u)
{
	return json_pack("{s:s, s:s, s:I}", "name", u->name, "password_hash",
	    u->password_hash, "created", (json_int_t)u->created);
}

int
move_setting_parse(json_t *j, struct move_setting *s, char *err,
    size_t errsize)
{
	const char *hex;
	size_t n;

	s->value = NULL;
	if (unpack(j, "setting", err, errsize, "{s:s, s:s !}", "key", &s->key,
	    "value", &hex) < 0)
		return -1;
	if (!text_ok(s->key, 1, MOVE_META_KEY_MAX))
		return fail(err, errsize, "setting record: bad key");
	n = strlen(hex);
	if (n % 2 != 0 || n / 2 > MOVE_META_VALUE_MAX)
		return fail(err, errsize, "setting %s: bad value", s->key);
	s->value = xmalloc(n / 2 + 1);
	if (move_unhex(hex, s->value, n / 2) < 0) {
		free(s->value);
		s->value = NULL;
		return fail(err, errsize, "setting %s: bad value", s->key);
	}
	s->value_size = n / 2;
	return 0;
}

json_t *
move_setting_json(const char *key, const void *value, size_t size)
{
	char *hex = xmalloc(2 * size + 1);
	json_t *j;

	move_hex(value, size, hex);
	j = json_pack("{s:s, s:s}", "key", key, "value", hex);
	free(hex);
	return j;
}

static bool
account_name_ok(const char *s)
{
	if (!text_ok(s, 1, MOVE_ACCOUNT_MAX))
		return false;
	for (; *s != '\0'; s++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._@+-", *s) == NULL)
			return false;
	}
	return true;
}

int
move_account_parse(json_t *j, struct move_account *a, char *err,
    size_t errsize)
{
	if (unpack(j, "account", err, errsize, "{s:s, s:o !}", "name",
	    &a->name, "record", &a->record) < 0)
		return -1;
	if (!account_name_ok(a->name))
		return fail(err, errsize, "account record: bad name");
	if (!json_is_object(a->record))
		return fail(err, errsize, "account %s: record is not an "
		    "object", a->name);
	return 0;
}

json_t *
move_account_json(const char *name, json_t *record)
{
	return json_pack("{s:s, s:O}", "name", name, "record", record);
}

int
move_subscription_parse(json_t *j, const char **name_r, char *err,
    size_t errsize)
{
	if (unpack(j, "subscription", err, errsize, "{s:s !}", "name",
	    name_r) < 0)
		return -1;
	if (!text_ok(*name_r, 1, MOVE_MAILBOX_NAME_MAX))
		return fail(err, errsize, "subscription record: bad name");
	return 0;
}

json_t *
move_subscription_json(const char *name)
{
	return json_pack("{s:s}", "name", name);
}

int
move_mailbox_parse(json_t *j, struct move_mailbox *m, char *err,
    size_t errsize)
{
	json_int_t id, role, uv, un, hms, messages;
	int sub;

	if (unpack(j, "mailbox", err, errsize, "{s:I, s:s, s:I, s:b, s:I, "
	    "s:I, s:I, s:I !}", "id", &id, "name", &m->name, "role", &role,
	    "subscribed", &sub, "uidvalidity", &uv, "uidnext", &un,
	    "highestmodseq", &hms, "messages", &messages) < 0)
		return -1;
	if (!text_ok(m->name, 1, MOVE_MAILBOX_NAME_MAX))
		return fail(err, errsize, "mailbox record: bad name");
	if (!in_range(id, 1, UINT32_MAX) || !in_range(role, 0, 7) ||
	    !in_range(uv, 1, UINT32_MAX) || !in_range(un, 1, UINT32_MAX) ||
	    hms < 1 || !in_range(messages, 0, UINT32_MAX) ||
	    messages >= un)
		return fail(err, errsize, "mailbox %s: a value is out of "
		    "range", m->name);
	m->id = (uint32_t)id;
	m->role = (unsigned)role;
	m->subscribed = sub != 0;
	m->uidvalidity = (uint32_t)uv;
	m->uidnext = (uint32_t)un;
	m->highestmodseq = (uint64_t)hms;
	m->messages = (uint32_t)messages;
	return 0;
}

json_t *
move_mailbox_json(const struct move_mailbox *m)
{
	return json_pack("{s:I, s:s, s:I, s:b, s:I, s:I, s:I, s:I}", "id",
	    (json_int_t)m->id, "name", m->name, "role", (json_int_t)m->role,
	    "subscribed", m->subscribed, "uidvalidity",
	    (json_int_t)m->uidvalidity, "uidnext", (json_int_t)m->uidnext,
	    "highestmodseq", (json_int_t)m->highestmodseq, "messages",
	    (json_int_t)m->messages);
}

int
move_message_parse(json_t *j, struct move_message *m, char *err,
    size_t errsize)
{
	json_int_t uid, modseq, flags, date, tz, size, body;
	json_t *kws, *v;
	size_t i;

	if (unpack(j, "message", err, errsize, "{s:I, s:I, s:I, s:o, s:I, "
	    "s:I, s:I, s:I !}", "uid", &uid, "modseq", &modseq, "flags",
	    &flags, "keywords", &kws, "internaldate", &date, "tz", &tz,
	    "size", &size, "body", &body) < 0)
		return -1;
	if (!in_range(uid, 1, UINT32_MAX - 1) || modseq < 1 ||
	    !in_range(flags, 0, 0x1f) || !in_range(tz, -24 * 60, 24 * 60) ||
	    !in_range(size, 0, MOVE_BODY_MAX) || !in_range(body, 1,
	    UINT32_MAX) || !json_is_array(kws) ||
	    json_array_size(kws) > MOVE_KEYWORDS_MAX)
		return fail(err, errsize, "message record (UID %lld): a value "
		    "is out of range", (long long)uid);
	json_array_foreach(kws, i, v) {
		const char *s = json_string_value(v);

		if (s == NULL || !text_ok(s, 1, MOVE_KEYWORD_MAX) ||
		    strpbrk(s, " ()\\{\"%*]") != NULL)
			return fail(err, errsize, "message record (UID %lld): "
			    "bad keyword", (long long)uid);
		m->keywords[i] = s;
	}
	m->keyword_count = json_array_size(kws);
	m->uid = (uint32_t)uid;
	m->modseq = (uint64_t)modseq;
	m->system_flags = (uint32_t)flags;
	m->internaldate = date;
	m->tz_offset_min = (int32_t)tz;
	m->size = (uint64_t)size;
	m->body = (uint32_t)body;
	return 0;
}

json_t *
move_message_json(const struct move_message *m)
{
	json_t *kws = json_array();

	for (size_t i = 0; i < m->keyword_count; i++)
		json_array_append_new(kws, json_string(m->keywords[i]));
	return json_pack("{s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I}", "uid",
	    (json_int_t)m->uid, "modseq", (json_int_t)m->modseq, "flags",
	    (json_int_t)m->system_flags, "keywords", kws, "internaldate",
	    (json_int_t)m->internaldate, "tz", (json_int_t)m->tz_offset_min,
	    "size", (json_int_t)m->size, "body", (json_int_t)m->body);
}

int
move_vanished_parse(json_t *j, struct move_vanished *v, char *err,
    size_t errsize)
{
	json_t *list, *pair;
	size_t i;

	if (unpack(j, "vanished", err, errsize, "{s:o !}", "uids", &list) < 0)
		return -1;
	if (!json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > MOVE_VANISHED_PER_RECORD)
		return fail(err, errsize, "vanished record: bad list");
	json_array_foreach(list, i, pair) {
		json_int_t modseq, uid;

		if (json_unpack(pair, "[I, I]", &modseq, &uid) != 0 ||
		    json_array_size(pair) != 2 || modseq < 1 ||
		    !in_range(uid, 1, UINT32_MAX - 1))
			return fail(err, errsize, "vanished record: bad entry "
			    "%zu", i);
		v->modseqs[i] = (uint64_t)modseq;
		v->uids[i] = (uint32_t)uid;
	}
	v->count = json_array_size(list);
	return 0;
}

json_t *
move_vanished_json(const struct move_vanished *v)
{
	json_t *list = json_array();

	for (size_t i = 0; i < v->count; i++)
		json_array_append_new(list, json_pack("[I, I]",
		    (json_int_t)v->modseqs[i], (json_int_t)v->uids[i]));
	return json_pack("{s:o}", "uids", list);
}

int
move_ledger_parse(json_t *j, struct move_ledger *l, char *err,
    size_t errsize)
{
	json_int_t mailbox, uid, seen, body_size = 0, body = -1;
	json_int_t list_size = -1;
	const char *uidl, *hash = NULL, *digest = NULL, *head = NULL;
	int deleted;
	size_t n;

	memset(l, 0, sizeof(*l));
	if (unpack(j, "ledger", err, errsize, "{s:s, s:s, s:I, s:I, s:I, "
	    "s:b, s?:I, s?:s, s?:I, s?:s, s?:s, s?:I !}", "account",
	    &l->account, "uidl", &uidl, "mailbox", &mailbox, "uid", &uid,
	    "seen", &seen, "deleted", &deleted, "size", &body_size, "hash",
	    &hash, "body", &body, "digest", &digest, "head", &head,
	    "list_size", &list_size) < 0)
		return -1;
	if ((head == NULL) != (list_size < 0))
		return fail(err, errsize, "ledger record: head and list_size "
		    "go together");
	if (head != NULL) {
		if (move_unhex(head, l->head_digest,
		    sizeof(l->head_digest)) < 0)
			return fail(err, errsize, "ledger record: bad head");
		l->has_head = true;
		l->list_size = (uint64_t)list_size;
	}
	n = strlen(uidl);
	if (!account_name_ok(l->account) || n == 0 || n % 2 != 0 ||
	    n / 2 > MOVE_UIDL_MAX || move_unhex(uidl, l->uidl, n / 2) < 0)
		return fail(err, errsize, "ledger record: bad account or UIDL");
	l->uidl_size = n / 2;
	if (!in_range(mailbox, 0, UINT32_MAX) || !in_range(uid, 0,
	    UINT32_MAX) || seen < 0 ||
	    body_size < 0 || body < -1 || body > UINT32_MAX)
		return fail(err, errsize, "ledger record: a value is out of "
		    "range");
	if (hash != NULL) {
		unsigned char h[8];

		if (move_unhex(hash, h, 8) < 0)
			return fail(err, errsize, "ledger record: bad hash");
		l->has_fingerprint = true;
		l->body_size = (uint64_t)body_size;
		l->body_hash = 0;
		for (int i = 0; i < 8; i++)
			l->body_hash = l->body_hash << 8 | h[i];
	}
	if (digest != NULL) {
		if (move_unhex(digest, l->digest, sizeof(l->digest)) < 0)
			return fail(err, errsize, "ledger record: bad digest");
		l->has_digest = true;
	}
	l->mailbox = (uint32_t)mailbox;
	l->uid = (uint32_t)uid;
	l->seen = seen;
	l->deleted = deleted != 0;
	l->has_body = body >= 0;
	l->body = body > 0 ? (uint32_t)body : 0;
	return 0;
}

json_t *
move_ledger_json(const struct move_ledger *l)
{
	char *uidl = xmalloc(2 * l->uidl_size + 1);
	json_t *j;

	move_hex(l->uidl, l->uidl_size, uidl);
	j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "account", l->account,
	    "uidl", uidl, "mailbox", (json_int_t)l->mailbox, "uid",
	    (json_int_t)l->uid, "seen", (json_int_t)l->seen, "deleted",
	    l->deleted);
	free(uidl);
	if (l->has_fingerprint) {
		unsigned char h[8];
		char hex[17];

		for (int i = 0; i < 8; i++)
			h[i] = (unsigned char)(l->body_hash >> (56 - 8 * i));
		move_hex(h, 8, hex);
		json_object_set_new(j, "size", json_integer(
		    (json_int_t)l->body_size));
		json_object_set_new(j, "hash", json_string(hex));
	}
	if (l->has_body)
		json_object_set_new(j, "body", json_integer(l->body));
	if (l->has_digest) {
		char hex[65];

		move_hex(l->digest, sizeof(l->digest), hex);
		json_object_set_new(j, "digest", json_string(hex));
	}
	if (l->has_head) {
		char hex[65];

		move_hex(l->head_digest, sizeof(l->head_digest), hex);
		json_object_set_new(j, "head", json_string(hex));
		json_object_set_new(j, "list_size", json_integer(
		    (json_int_t)l->list_size));
	}
	return j;
}
