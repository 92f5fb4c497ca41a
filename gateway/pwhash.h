/*
 * pwhash — a password hashed on a worker, for the control commands.
 *
 * An argon2id hash (password.h) costs tens of milliseconds of CPU and
 * PASSWORD_MEMORY_KIB of RAM; on the event loop every IMAP session
 * would wait for it. user.add, user.passwd and each new user of a CSV
 * import hash here instead: the password is copied into the job (and
 * wiped with it), the hash is made on a worker, and done() runs on the
 * loop with the encoded hash, or NULL and a message when hashing failed
 * (stopping true: the daemon is stopping and the job never ran).
 *
 * Jobs are keyed by PWHASH_KEY: the pool's fairness puts all admin
 * hashing behind one key, so a large import takes turns with the users'
 * LOGINs instead of crowding them out.
 */
#ifndef POPGATE_GATEWAY_PWHASH_H
#define POPGATE_GATEWAY_PWHASH_H

#include <stdbool.h>
#include <stddef.h>

#include "password.h"

struct workq;

/* The fairness key of admin password hashing (no user's key: those are
   addresses and user ids, both far from this value). */
#define PWHASH_KEY UINT64_C(0x7077686173680000)

typedef void pwhash_done_fn(void *arg, const char *hash, const char *error,
    bool stopping);

/* Hashes password[0..len) on q (q NULL: in the call, for tools and
 * tests); done(arg, hash, error) is called exactly once on the owner
 * thread. hash (PASSWORD_ENCODED_MAX bytes) is wiped after done()
 * returns. */
void pwhash_submit(struct workq *q, const char *password, size_t len,
    pwhash_done_fn *done, void *arg);

#endif
