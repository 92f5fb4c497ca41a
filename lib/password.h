/*
 * password — salted slow hashes for IMAP user passwords (level 2).
 *
 * argon2id through libargon2, a 16-byte salt from OpenSSL's RAND_bytes,
 * stored as the PHC string libargon2 encodes
 * ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"). Verification parses the
 * parameters from the string, so they can be raised later without
 * invalidating stored hashes; the comparison is constant time.
 *
 * Cost: a hash or verify takes milliseconds and PASSWORD_MEMORY_KIB of RAM;
 * callers on the event loop should keep that in mind (it is called once
 * per login).
 */
#ifndef POPGATE_PASSWORD_H
#define POPGATE_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* argon2id parameters for new hashes (OWASP's 19 MiB, t=2 profile). */
#define PASSWORD_MEMORY_KIB 19456
#define PASSWORD_ITERATIONS 2
#define PASSWORD_PARALLELISM 1
#define PASSWORD_SALT_LEN 16
#define PASSWORD_HASH_LEN 32
/* Longest password accepted: bounds the hashing work a peer can ask for. */
#define PASSWORD_MAX_LEN 1024
/* Room for an encoded hash string, NUL included. */
#define PASSWORD_ENCODED_MAX 128

/*
 * Hashes password[0..len) into encoded_r (size PASSWORD_ENCODED_MAX):
 * 0 ok, -1 with *error_r (password too long, RNG or argon2 failure).
 */
int password_hash(const char *password, size_t len,
    char encoded_r[PASSWORD_ENCODED_MAX], const char **error_r);

/*
 * True when password[0..len) matches the encoded hash. A malformed hash
 * or an over-long password gives false.
 */
bool password_verify(const char *encoded, const char *password, size_t len);

#endif
