/*
 * move-format — the file `popgatectl user export` writes and `user import`
 * reads (level 1, pure: no I/O, no OpenSSL, no LMDB).
 *
 * A file is the magic line MOVE_MAGIC, then records, each
 *
 *     type (1 byte) | length (4 bytes, big-endian) | payload (length bytes)
 *
 * The payload is a JSON object for every type but BODY (the message's
 * bytes, raw) and END (the 32-byte HMAC-SHA-256 of every byte of the file
 * before the END record, keyed from the transfer passphrase). Records come
 * in this order (docs/scale-out.md, "Moving a user", has the fields):
 *
 *     HEADER USER SETTING* ACCOUNT* SUBSCRIPTION*
 *     (MAILBOX (BODY? MESSAGE)* VANISHED*)* LEDGER* END
 *
 * A BODY precedes the first message that has it; bodies are numbered
 * 1, 2, ... in file order and a later copy of the message names the same
 * number. So an importer holds one body at a time, whatever the size of
 * the mailbox.
 *
 * The decoder is resumable: feed it any slices of the file; it returns a
 * record once its last byte is in, and refuses a record longer than its
 * type's limit before buffering it. The parsers below check every field of
 * a JSON record (types, ranges, lengths; no unknown field) and return
 * borrowed pointers into the json_t they were given.
 */
#ifndef POPGATE_GATEWAY_MOVE_FORMAT_H
#define POPGATE_GATEWAY_MOVE_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOVE_MAGIC "POPGATE-MOVE 1\n"
#define MOVE_MAGIC_LEN 15
#define MOVE_FORMAT_VERSION 1
/* A JSON record: a settings value (64 KiB, hex-coded) with room. */
#define MOVE_JSON_MAX (256u * 1024)
/* A BODY record: the store's largest message. */
#define MOVE_BODY_MAX (64u * 1024 * 1024)
#define MOVE_MAC_SIZE 32
#define MOVE_SALT_SIZE 16
/* Expunged UIDs per VANISHED record (bounds its size). */
#define MOVE_VANISHED_PER_RECORD 1024
/* The key derivation's cost: PBKDF2-HMAC-SHA-256 iterations. */
#define MOVE_KDF_ITERATIONS 200000
#define MOVE_KDF_ITERATIONS_MIN 10000
#define MOVE_KDF_ITERATIONS_MAX 10000000
/* Longest passphrase (and shortest: a transfer needs a real secret). */
#define MOVE_PASSPHRASE_MIN 12
#define MOVE_PASSPHRASE_MAX 1024
/* Limits of the fields (the store's, repeated: this file is level 1). */
#define MOVE_NAME_MAX 255		/* user name */
#define MOVE_HASH_MAX 1024		/* password hash */
#define MOVE_MAILBOX_NAME_MAX 400
#define MOVE_KEYWORD_MAX 100
#define MOVE_KEYWORDS_MAX 128
#define MOVE_ACCOUNT_MAX 64
#define MOVE_UIDL_MAX 255
#define MOVE_META_KEY_MAX 200
#define MOVE_META_VALUE_MAX (64u * 1024)
#define MOVE_ERROR_MAX 256

enum move_type {
	MOVE_R_HEADER = 'H',
	MOVE_R_USER = 'U',
	MOVE_R_SETTING = 'S',
	MOVE_R_ACCOUNT = 'A',
	MOVE_R_SUBSCRIPTION = 'Z',
	MOVE_R_MAILBOX = 'M',
	MOVE_R_BODY = 'B',
	MOVE_R_MESSAGE = 'm',
	MOVE_R_VANISHED = 'V',
	MOVE_R_LEDGER = 'L',
	MOVE_R_END = 'E',
};

/* ---- framing ---------------------------------------------------------- */

/* The 5 bytes before a payload. */
void move_record_head(unsigned char head[5], enum move_type type,
    uint32_t len);
/* Largest payload a type may have; 0 for an unknown type. */
size_t move_type_max(unsigned type);

struct move_rec {
	enum move_type type;
	const unsigned char *data;	/* valid until the next feed/free */
	size_t len;
	uint64_t offset;		/* of the record's first byte */
};

enum move_dec_ret {
	MOVE_DEC_MORE = 0,	/* everything used; feed more */
	MOVE_DEC_RECORD,	/* *rec_r is a record; *used_r bytes used */
	MOVE_DEC_ERROR,		/* err says why; stop */
};

struct move_dec {
	size_t magic_got;
	unsigned char head[5];
	size_t head_got;
	unsigned char *buf;
	size_t cap, got;
	uint32_t len;
	uint64_t offset;	/* bytes used so far */
	uint64_t rec_offset;
	bool ended;		/* the END record was returned */
	bool failed;
};

void move_dec_init(struct move_dec *d);
void move_dec_free(struct move_dec *d);
/* Consumes bytes of in[0..len) up to the end of the next record. */
enum move_dec_ret move_dec_feed(struct move_dec *d, const void *in,
    size_t len, size_t *used_r, struct move_rec *rec_r, char *err,
    size_t errsize);
/* At the end of the input: 0 when the END record was read, else -1 with
 * why (a truncated file). */
int move_dec_finish(const struct move_dec *d, char *err, size_t errsize);

/* ---- records ---------------------------------------------------------- */

struct move_header {
	int format;
	int64_t exported;
	const char *user;
	const char *node;
	unsigned char salt[MOVE_SALT_SIZE];
	uint32_t iterations;
};

struct move_user {
	const char *name;
	const char *password_hash;
	int64_t created;
};

struct move_setting {
	const char *key;
	unsigned char *value;	/* decoded (caller frees) */
	size_t value_size;
};

struct move_account {
	const char *name;
	json_t *record;		/* borrowed: the account's record, secrets
				   sealed with the transfer key */
};

struct move_mailbox {
	uint32_t id;		/* the old node's, for ledger entries */
	const char *name;
	unsigned role;		/* store_role */
	bool subscribed;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint32_t messages;	/* MESSAGE records that follow */
};

struct move_message {
	uint32_t uid;
	uint64_t modseq;
	uint32_t system_flags;	/* STORE_FLAG_* bits */
	const char *keywords[MOVE_KEYWORDS_MAX];
	size_t keyword_count;
	int64_t internaldate;
	int32_t tz_offset_min;
	uint64_t size;
	uint32_t body;		/* BODY record number (1..) */
};

struct move_vanished {
	uint64_t modseqs[MOVE_VANISHED_PER_RECORD];
	uint32_t uids[MOVE_VANISHED_PER_RECORD];
	size_t count;
};

struct move_ledger {
	const char *account;
	unsigned char uidl[MOVE_UIDL_MAX];
	size_t uidl_size;
	uint32_t mailbox;	/* old node's mailbox id; 0: none */
	uint32_t uid;
	int64_t seen;
	bool deleted;
	bool has_fingerprint;
	uint64_t body_size, body_hash;
	bool has_body;
	uint32_t body;		/* BODY record number; 0: expunged there */
	bool has_digest;
	unsigned char digest[32];
	/* the header block's SHA-256 and LIST's size at delivery (the
	   check before DELE, docs/design-notes.md); absent in exports of
	   entries written before it */
	bool has_head;
	unsigned char head_digest[32];
	uint64_t list_size;
};

/* The record's JSON object (new reference), or -1 with err. */
int move_json(const struct move_rec *rec, json_t **j_r, char *err,
    size_t errsize);
int move_header_parse(json_t *j, struct move_header *h, char *err,
    size_t errsize);
int move_user_parse(json_t *j, struct move_user *u, char *err,
    size_t errsize);
int move_setting_parse(json_t *j, struct move_setting *s, char *err,
    size_t errsize);
int move_account_parse(json_t *j, struct move_account *a, char *err,
    size_t errsize);
int move_subscription_parse(json_t *j, const char **name_r, char *err,
    size_t errsize);
int move_mailbox_parse(json_t *j, struct move_mailbox *m, char *err,
    size_t errsize);
int move_message_parse(json_t *j, struct move_message *m, char *err,
    size_t errsize);
int move_vanished_parse(json_t *j, struct move_vanished *v, char *err,
    size_t errsize);
int move_ledger_parse(json_t *j, struct move_ledger *l, char *err,
    size_t errsize);

/* The JSON of each record (new references), for the exporter. */
json_t *move_header_json(const struct move_header *h);
json_t *move_user_json(const struct move_user *u);
json_t *move_setting_json(const char *key, const void *value, size_t size);
json_t *move_account_json(const char *name, json_t *record);
json_t *move_subscription_json(const char *name);
json_t *move_mailbox_json(const struct move_mailbox *m);
json_t *move_message_json(const struct move_message *m);
json_t *move_vanished_json(const struct move_vanished *v);
json_t *move_ledger_json(const struct move_ledger *l);

/* Lower-case hex of n bytes into out (2n + 1); the reverse, -1 on bad
 * text or a length other than n bytes. */
void move_hex(const void *in, size_t n, char *out);
int move_unhex(const char *hex, void *out, size_t n);

#endif
