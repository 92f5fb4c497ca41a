/*
 * accounts — users' upstream-account records, kept in the store's per-user
 * settings table under "upstream/NAME" as a small JSON object.
 *
 * A record holds everything needed to poll: host, port, tls, auth, login,
 * the password SEALED with the secret key (never in clear; the associated
 * data is "USER/ACCOUNT" so a sealed password moved to another account does
 * not open), mode, folder, interval, size limit, enabled. Records returned
 * to the control socket never contain the sealed password.
 *
 * Ownership: json_t results are new references (json_decref); strings
 * returned through _r are the caller's to free.
 */
#ifndef POPGATE_GATEWAY_ACCOUNTS_H
#define POPGATE_GATEWAY_ACCOUNTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway/config.h"

struct store;
struct store_read;
struct secret_key;

/* Longest account name: the store's ledger account id. */
#define ACCOUNT_NAME_MAX 48	/* "u<id>:" + name fits UPSTREAM_ID_MAX */
#define ACCOUNTS_META_PREFIX "upstream/"

/* An account's fields, decoded (password still sealed). */
struct account {
	char *user;
	uint32_t user_id;
	char *name;
	char *host;
	uint16_t port;
	enum config_upstream_tls tls;
	char *auth;		/* auto | user | apop | plain */
	char *login;
	char *password_sealed;
	enum config_upstream_mode mode;
	uint32_t delete_after_days;
	char *folder;
	uint32_t interval;
	uint64_t size_limit;
	bool enabled;
	int64_t created;
	/* trust (NULL / false: [upstream-defaults]) */
	char *ca_file;		/* adds to the system store unless ca_only */
	bool ca_only;
	char *fingerprint;	/* pinned SHA-256 of the server certificate */
	bool allow_cleartext;	/* tls none to a host that is not loopback */
	/* OAuth 2.0 (auth xoauth2 / oauthbearer) */
	char *oauth_provider;	/* a provider name from the configuration */
	char *refresh_sealed;	/* the refresh token, SEALED like the
				   password (associated data
				   "USER/ACCOUNT/oauth"); NULL: not signed
				   in */
	bool oauth_needs_signin;	/* the provider refused the grant: not
					   polled, no token requests, until an
					   admin signs in again */
	int64_t oauth_signed_in;	/* when the grant was made; 0: never */
};

void account_clear(struct account *a);
/* The record as stored (with password_sealed). */
json_t *account_to_record(const struct account *a);
/* The record for an admin's eyes (no password). */
json_t *account_to_public(const struct account *a);
int account_from_record(const char *user, uint32_t user_id,
    const char *name, const void *value, size_t size, struct account *a_r,
    const char **error_r);

/* True when name is a valid account name (1..64 of [A-Za-z0-9._@+-]). */
bool account_name_valid(const char *name);

/* 0 found, 1 (STORE_NOT_FOUND) not found, -1 error. */
int accounts_get(struct store_read *r, uint32_t user_id, const char *user,
    const char *name, struct account *a_r, const char **error_r);
int accounts_put(struct store *store, const struct account *a,
    const char **error_r);
int accounts_delete(struct store *store, uint32_t user_id, const char *name,
    const char **error_r);
/* Calls cb for each of the user's accounts, in name order. */
int accounts_foreach(struct store_read *r, uint32_t user_id,
    const char *user, int (*cb)(void *ctx, const struct account *a),
    void *ctx, const char **error_r);

/* Stores a JSON object as the user's setting key (compact; one write). */
int accounts_put_setting(struct store *store, uint32_t user_id,
    const char *key, json_t *value, const char **error_r);

/* Seals password into a->password_sealed (replacing it). */
int account_seal_password(struct account *a, const struct secret_key *key,
    const char *password);
/* Opens the sealed password; caller frees with secret_free_plain(). */
int account_open_password(const struct account *a,
    const struct secret_key *key, char **password_r, const char **error_r);
/* The same for the OAuth refresh token (NULL clears it). */
int account_seal_refresh(struct account *a, const struct secret_key *key,
    const char *token);
int account_open_refresh(const struct account *a,
    const struct secret_key *key, char **token_r, const char **error_r);

/* True when the account signs in with OAuth 2.0 (xoauth2, oauthbearer). */
bool account_is_oauth(const struct account *a);
/* Copies every field (deep). */
void account_copy(struct account *dst, const struct account *src);

#endif
