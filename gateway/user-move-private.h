/*
 * user-move-private — what the three files of user-move share (not for
 * other files): user-move.c (the loop's side: commands, the mark, the
 * replies, the crypto helpers), user-move-export.c (the export's thread)
 * and user-move-import.c (the import's reader, run by a thread for the
 * check and by the writer for the write). Threads: user-move.h.
 */
#ifndef POPGATE_GATEWAY_USER_MOVE_PRIVATE_H
#define POPGATE_GATEWAY_USER_MOVE_PRIVATE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "gateway/move-format.h"
#include "gateway/secret.h"

struct account;
struct gateway;
struct control_client;
struct event;
struct store;

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

struct move_mac {
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

/* ---- crypto (user-move.c) ---- */
/* The transfer keys from the passphrase (PBKDF2-HMAC-SHA-256). */
int move_derive_keys(const char *passphrase, const unsigned char *salt,
    uint32_t iterations, struct move_keys *k);
/* HMAC-SHA-256 of the file, keyed with k->mac. */
int move_mac_init(struct move_mac *m, const unsigned char *key);
void move_mac_update(struct move_mac *m, const void *data, size_t len);
int move_mac_final(struct move_mac *m, unsigned char out[MOVE_MAC_SIZE]);
void move_mac_free(struct move_mac *m);
/* The user name in a sealed secret's associated data inside a file
 * ("move:USER"; a node's is "USER"). Caller frees. */
char *move_transfer_user(const char *user);
/* The account's record with its secrets opened with `from` and sealed
 * with `to` for the user to_user; NULL with *error_r. New reference. */
json_t *move_reseal(const char *user, const struct account *a,
    const struct secret_key *from, const struct secret_key *to,
    const char *to_user, const char **error_r);
/* A thread tells the loop it is done. */
void move_thread_done(struct user_move *m);

/* ---- the export's thread (user-move-export.c) ---- */
void *move_export_thread(void *arg);

/* ---- the import (user-move-import.c) ---- */
/* Pass 1, a thread of its own: checks the whole file, writes nothing;
 * fills m->import_user, m->accounts (sealed for this node), m->keys. */
void *move_import_check_thread(void *arg);
/* Pass 2, the writer job: writes the user (store_apply_fn). */
int move_import_apply(struct store *store, void *ctx, const char **error_r);

#endif
