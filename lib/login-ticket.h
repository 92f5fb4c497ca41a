/*
 * login-ticket — short-lived, single-use login tickets (issue 17,
 * docs/scale-out.md "One password check per login").
 *
 * A node's auth_http service checks a password once (argon2id) and gives
 * nginx, in Auth-Pass, a ticket instead of the password; nginx logs in on
 * the node with it, and the node accepts the ticket on a PROXY-protocol
 * connection from a trusted proxy with one HMAC instead of a second
 * argon2id hash.
 *
 * A ticket is "pgt1.<expiry>.<nonce>.<mac>": the expiry in Unix seconds,
 * 12 random bytes, and HMAC-SHA-256 (first 16 bytes) over the user, the
 * node, the client's address, the expiry and the nonce, under a key made
 * at random by the node when it starts (it never leaves the process: a
 * ticket only works on the node that issued it, and a restart voids every
 * ticket). Every ticket issued is remembered until it is used or expires;
 * using it forgets it, so it works once. At most LOGIN_TICKETS_MAX are
 * outstanding: past that, none is issued (the caller falls back to the
 * password) until some are used or expire.
 *
 * Owner: one thread (the event loop). Tickets are secrets: never logged.
 */
#ifndef POPGATE_LIB_LOGIN_TICKET_H
#define POPGATE_LIB_LOGIN_TICKET_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The HMAC key's length. */
#define LOGIN_TICKET_KEY_LEN 32
/* Room for a ticket and its NUL. */
#define LOGIN_TICKET_LEN_MAX 96
/* Tickets issued and neither used nor expired, at most. */
#define LOGIN_TICKETS_MAX 4096
/* Limits of a ticket's lifetime, in seconds. */
#define LOGIN_TICKET_SECS_MIN 1
#define LOGIN_TICKET_SECS_MAX 300

enum login_ticket_result {
	LOGIN_TICKET_OK,
	LOGIN_TICKET_NOT_ONE,	/* not shaped like a ticket: a password */
	LOGIN_TICKET_BAD,	/* a wrong MAC: another user, node, address */
	LOGIN_TICKET_EXPIRED,
	LOGIN_TICKET_USED,	/* used already, or never issued here */
};

struct login_tickets;

/*
 * A ticket book for this node. node names it in every MAC (its
 * [cluster] node_address); key is LOGIN_TICKET_KEY_LEN bytes, or NULL
 * for a random one (tests pass their own); lifetime_secs within the
 * limits above. NULL if no random key could be made.
 */
struct login_tickets *login_tickets_new(const char *node,
    const unsigned char *key, unsigned lifetime_secs);
void login_tickets_free(struct login_tickets **tp);

/*
 * Issues a ticket for user logging in from client_ip, valid from now for
 * the lifetime, into out (LOGIN_TICKET_LEN_MAX bytes). 0, or -1 when the
 * book is full (or no random nonce could be made): then no ticket.
 */
int login_ticket_issue(struct login_tickets *t, const char *user,
    const char *client_ip, time_t now, char *out);

/*
 * Uses a ticket: LOGIN_TICKET_OK once for the user, node and client
 * address it was issued for, before it expires; the ticket is then
 * forgotten (a second use is LOGIN_TICKET_USED). The MAC is compared in
 * constant time.
 */
enum login_ticket_result login_ticket_redeem(struct login_tickets *t,
    const char *user, const char *client_ip, const char *ticket,
    time_t now);

/* Outstanding tickets now (for tests and stats). */
size_t login_tickets_outstanding(const struct login_tickets *t);

/* "ok", "not_a_ticket", "bad", "expired", "used": for logs. */
const char *login_ticket_result_name(enum login_ticket_result r);

#endif
