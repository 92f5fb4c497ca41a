/*
 * passthrough — the gateway's IMAP authentication hook.
 *
 * Users are checked against the store (argon2id hashes, through the IMAP
 * server's store hook, which costs an unknown user the same time as a
 * wrong password).
 */
#ifndef POPGATE_GATEWAY_PASSTHROUGH_H
#define POPGATE_GATEWAY_PASSTHROUGH_H

#include "imap-frontend/imap-server.h"

/* ctx is the struct gateway. */
imap_auth_fn passthrough_auth;

#endif
