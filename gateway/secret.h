/*
 * secret — upstream passwords encrypted at rest with AES-256-GCM.
 *
 * The key is 32 random bytes in a file created at first start with mode
 * 0600 (O_EXCL, so an existing file is never truncated). A key file that is
 * not a regular file, is a symlink, belongs to another user, is readable or
 * writable by group or others, or has the wrong size is refused: the daemon
 * does not start rather than use a key others may have read.
 *
 * A sealed secret is text: "v1:" followed by base64 of nonce (12 bytes),
 * ciphertext and tag (16 bytes). The caller passes associated data (for
 * an upstream account: "USER/ACCOUNT") so a sealed password copied onto
 * another account does not open.
 *
 * Ownership: secret_key_free() wipes and frees the key; every returned
 * string is the caller's to free (plain text with secret_free_plain(), which
 * wipes it first).
 */
#ifndef POPGATE_GATEWAY_SECRET_H
#define POPGATE_GATEWAY_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define SECRET_KEY_LEN 32
#define SECRET_NONCE_LEN 12
#define SECRET_TAG_LEN 16
/* Longest secret sealed: an upstream password, with room to spare. */
#define SECRET_PLAIN_MAX 4096
#define SECRET_ERROR_MAX 256

struct secret_key;

/* Loads path, or creates it (mode 0600) when missing; *created_r says
 * which. Errors are written to errbuf ("PATH: reason"). */
int secret_key_load_or_create(const char *path, struct secret_key **key_r,
    bool *created_r, char *errbuf, size_t errsize);
/* For tests: a key from 32 given bytes. */
struct secret_key *secret_key_from_bytes(const unsigned char *bytes);
void secret_key_free(struct secret_key **keyp);

/* Seals len bytes of plain (len <= SECRET_PLAIN_MAX); returns a new
 * string, or NULL on a crypto library failure (logged). */
char *secret_seal(const struct secret_key *key, const char *aad,
    const void *plain, size_t len);
/* Opens a sealed string; *plain_r is NUL-terminated, *len_r its length.
 * -1 with *error_r (static text) when malformed or not authentic. */
int secret_open(const struct secret_key *key, const char *aad,
    const char *sealed, char **plain_r, size_t *len_r, const char **error_r);
/* Wipes and frees plain text returned by secret_open(). Accepts NULL. */
void secret_free_plain(char *plain);

#endif
