/*
 * passthrough — see passthrough.h. The login check is a session of the
 * POP3 upstream client (pop3-upstream/pop3-client.h, login_only): the
 * same connection, TLS set-up and verification, and authentication as a
 * poll, so TLS is checked in one place.
 */
#include "passthrough.h"

#include <event2/event.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway/admin-store.h"
#include "gateway/accounts.h"
#include "gateway/gateway.h"
#include "gateway/passthrough-table.h"
#include "gateway/pwhash.h"
#include "gateway/upstreams.h"
#include "log.h"
#include "pop3-upstream/upstream.h"
#include "password.h"
#include "pop3-upstream/pop3-client.h"
#include "store/store.h"
#include "xmalloc.h"

enum pt_outcome {
	PT_OK,
	PT_DENIED,	/* the server refused the credentials */
	PT_TEMP,	/* network, TLS, protocol: try later */
};

struct pt_check {
	struct gateway *gw;
	struct pt_check *next;
	struct imap_auth_request *req;
	char *user;
	char *password;
	unsigned char key[32];		/* hash of user NUL password */
	/* the check: a login-only session of the POP3 client, which
	   borrows acct and status */
	struct upstream_account acct;
	struct upstream_status status;
	struct pop3_session *session;
	struct event *timer;
	bool done;
	bool hashing;		/* the password's hash is being made */
	bool orphaned;		/* ... and the daemon stopped meanwhile */
};

struct passthrough {
	struct pt_check *checks;
	unsigned int running;
	struct pt_entry failures[PASSTHROUGH_TABLE_MAX];
	struct pt_entry rates[PASSTHROUGH_TABLE_MAX];
};

static struct passthrough *
pt_get(struct gateway *gw)
{
	if (gw->passthrough == NULL)
		gw->passthrough = xcalloc(1, sizeof(struct passthrough));
	return gw->passthrough;
}

static void
hash_pair(const char *user, const char *password, unsigned char out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 32;

	PG_ASSERT(md != NULL);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, user, strlen(user) + 1);
	EVP_DigestUpdate(md, password, strlen(password));
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
}

static bool
domain_enabled(const struct config *c, const char *user)
{
	const char *at = strrchr(user, '@');

	if (c->pt_domain_count == 0)
		return true;
	if (at == NULL)
		return false;
	for (size_t i = 0; i < c->pt_domain_count; i++) {
		if (strcasecmp(at + 1, c->pt_domains[i]) == 0)
			return true;
	}
	return false;
}

/* What the store says of a login name: STORE_NOT_FOUND (no such user),
 * 0 (pass-through made the user and the admin has not set the password
 * since), 2 (any other user: pass-through leaves it alone), -1 error. */
#define PT_USER_FOREIGN 2

static int
user_ownership(struct gateway *gw, const char *user, uint32_t *id_r,
    const char **error_r)
{
	struct store_read *r = NULL;
	const void *v;
	size_t vs;
	int ret;

	if (store_read_begin(gw->store, &r, error_r) < 0)
		return -1;
	ret = store_user_lookup(r, user, id_r, error_r);
	if (ret == 0) {
		ret = store_user_meta_get(r, *id_r, ADMIN_STORE_PT_OWNED_KEY,
		    &v, &vs, error_r);
		if (ret == STORE_NOT_FOUND)
			ret = PT_USER_FOREIGN;
	}
	store_read_end(&r);
	return ret;
}

static int
mark_owned(struct gateway *gw, uint32_t id, const char **error_r)
{
	return admin_store_meta_put(gw->store, id, ADMIN_STORE_PT_OWNED_KEY,
	    "1", 1, error_r);
}

enum adopt_result {
	ADOPT_OK,
	ADOPT_FAILED,		/* store error: try later */
	ADOPT_FOREIGN,		/* a user pass-through does not own */
};

/* Creates the user, or updates the password of a user pass-through owns,
 * and the pass-through account; hash: password's, made on a worker. */
static enum adopt_result
adopt_user(struct gateway *gw, const char *user, const char *password,
    const char *hash)
{
	const struct config *c = gw->config;
	struct store_read *r = NULL;
	struct ctl_error err;
	struct account a;
	const char *error = NULL;
	uint32_t id;
	bool not_owned = false;
	int found, ret = -1;

	memset(&a, 0, sizeof(a));
	found = user_ownership(gw, user, &id, &error);
	if (found < 0)
		goto out;
	if (found == PT_USER_FOREIGN) {
		not_owned = true;
		goto out;
	}
	if (found == STORE_NOT_FOUND) {
		if (gateway_user_create_hashed(gw, user, hash, &id,
		    &err) < 0) {
			error = err.message;
			goto out;
		}
		/* after the create: a crash between the two leaves a user
		   pass-through never changes, not the other way round */
		if (mark_owned(gw, id, &error) < 0)
			goto out;
		log_info("passthrough event=user-created user_id=%u", id);
	} else {
		if (admin_store_user_set_hash_owned(gw->store, id, hash,
		    &not_owned, &error) < 0)
			goto out;
		log_info("passthrough event=password-updated user_id=%u", id);
	}
	if (store_read_begin(gw->store, &r, &error) < 0)
		goto out;
	found = accounts_get(r, id, user, PASSTHROUGH_ACCOUNT, &a, &error);
	store_read_end(&r);
	if (found < 0)
		goto out;
	if (found == STORE_NOT_FOUND) {
		json_t *req = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s}",
		    "command", "account.add", "user", user,
		    "host", c->pt_host, "port", (json_int_t)atoi(c->pt_port),
		    "tls", config_tls_name(c->pt_tls), "login", user,
		    "password", password);

		json_object_set_new(req, "account",
		    json_string(PASSTHROUGH_ACCOUNT));
		ret = gateway_account_add(gw, req, &err);
		json_decref(req);
		if (ret < 0 && strcmp(err.code, CTL_E_EXISTS) == 0) {
			/* an account (of any user) fetches this mailbox
			   already: a second would split or double its mail */
			log_warn("passthrough event=account-not-added "
			    "user_id=%u reason=\"same upstream mailbox as an "
			    "existing account\"", id);
			ret = 0;
		} else if (ret < 0) {
			error = err.message;
		}
		goto out;
	}
	if (account_seal_password(&a, gw->key, password) < 0 ||
	    accounts_put(gw->store, &a, &error) < 0)
		goto out;
	upstreams_update(gw->upstreams, &a);
	ret = 0;
out:
	account_clear(&a);
	if (not_owned) {
		/* the admin made this user or set the password since:
		   the legacy server's word does not change it */
		log_info("passthrough event=refused reason=not-owned "
		    "user_id=%u", id);
		return ADOPT_FOREIGN;
	}
	if (ret < 0) {
		log_error("passthrough event=adopt-failed error=\"%s\"",
		    error != NULL ? error : "?");
		return ADOPT_FAILED;
	}
	return ADOPT_OK;
}

/* Takes ck off the list of running checks (once). */
static void
check_unlink(struct pt_check *ck)
{
	struct passthrough *pt = ck->gw->passthrough;
	struct pt_check **pp;

	if (ck->orphaned)
		return;		/* unlinked by passthrough_shutdown */
	for (pp = &pt->checks; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ck) {
			*pp = ck->next;
			break;
		}
	}
	pt->running--;
}

static void
check_free(struct pt_check *ck)
{
	check_unlink(ck);
	pop3_session_abort(&ck->session);
	if (ck->timer != NULL)
		event_free(ck->timer);
	secure_zero(ck->password, strlen(ck->password));
	free(ck->password);
	free(ck->user);
	free(ck);
}

static void finish_adopted(struct pt_check *ck, enum pt_outcome outcome,
    enum adopt_result adopted, const char *why);

/* The password hashed on a worker (pwhash.h): the user adopted now. */
static void
adopt_hashed(void *arg, const char *hash, const char *error, bool stopping)
{
	struct pt_check *ck = arg;

	ck->hashing = false;
	if (ck->orphaned) {
		/* answered and unlinked by passthrough_shutdown */
		check_free(ck);
		return;
	}
	if (hash == NULL) {
		log_error("passthrough event=adopt-failed error=\"%s\"",
		    stopping ? "shutting down" : error);
		finish_adopted(ck, PT_OK, ADOPT_FAILED, NULL);
		return;
	}
	finish_adopted(ck, PT_OK, adopt_user(ck->gw, ck->user, ck->password,
	    hash), NULL);
}

static void
finish(struct pt_check *ck, enum pt_outcome outcome, const char *why)
{
	if (ck->done)
		return;
	ck->done = true;
	if (outcome == PT_OK) {
		/* the legacy server said yes: the user's argon2id hash on a
		   worker, then the user is made or updated */
		ck->hashing = true;
		pwhash_submit(ck->gw->workq, ck->password,
		    strlen(ck->password), adopt_hashed, ck);
		return;
	}
	finish_adopted(ck, outcome, ADOPT_FAILED, why);
}

static void
finish_adopted(struct pt_check *ck, enum pt_outcome outcome,
    enum adopt_result adopted, const char *why)
{
	struct gateway *gw = ck->gw;
	struct passthrough *pt = gw->passthrough;
	enum imap_auth_result res = IMAP_AUTH_TEMPFAIL;
	char esc[LOG_PEER_TEXT_MAX + 1];

	log_escape(esc, sizeof(esc), ck->user, strlen(ck->user));
	if (outcome == PT_OK && adopted == ADOPT_OK) {
		gw->stats.passthrough_ok++;
		log_info("passthrough event=ok user=\"%s\"", esc);
		res = IMAP_AUTH_OK;
	} else if (outcome == PT_OK && adopted == ADOPT_FOREIGN) {
		gw->stats.passthrough_failed++;
		res = IMAP_AUTH_FAILED;
	} else if (outcome == PT_DENIED) {
		bool found;
		/* may evict the failure expiring soonest: that costs one
		   more check upstream, still under the rate limit */
		struct pt_entry *e = pt_table_claim(pt->failures,
		    PASSTHROUGH_TABLE_MAX, ck->key, time(NULL), true, &found);

		e->until = time(NULL) + gw->config->pt_failure_cache;
		gw->stats.passthrough_failed++;
		log_info("passthrough event=denied user=\"%s\"", esc);
		res = IMAP_AUTH_FAILED;
	} else {
		gw->stats.passthrough_failed++;
		log_warn("passthrough event=unavailable user=\"%s\" "
		    "reason=\"%s\"", esc, why);
	}
	imap_auth_request_done(ck->req, res, ck->user);
	ck->req = NULL;
	/* Never free a check inside its own callback: the timer frees it
	   on the next loop turn. */
	{
		struct timeval now = { 0, 0 };

		evtimer_add(ck->timer, &now);
	}
}

/* The session ended (from the loop; it is freed after this returns). */
static void
check_done(void *arg, const struct pop3_result *result)
{
	struct pt_check *ck = arg;

	ck->session = NULL;
	switch (result->outcome) {
	case POP3_OUTCOME_OK:
		finish(ck, PT_OK, NULL);
		break;
	case POP3_OUTCOME_AUTH:
		finish(ck, PT_DENIED, result->error);
		break;
	default:
		/* network, TLS (verification included), [SYS/TEMP],
		   [IN-USE], LOGIN-DELAY, protocol: try later */
		finish(ck, PT_TEMP, result->error[0] != '\0' ?
		    result->error : pop3_outcome_name(result->outcome));
		break;
	}
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pt_check *ck = arg;

	if (ck->hashing)
		return;		/* adopt_hashed goes on, and frees it */
	if (ck->done)
		check_free(ck);
	else
		finish(ck, PT_TEMP, "timeout");
}

static void
start_check(struct gateway *gw, struct pt_check *ck)
{
	const struct config *c = gw->config;
	struct pop3_client_env env;
	unsigned int ms = c->upstream.timeout * 1000u;
	const char *error = NULL;

	if (c->pt_tls == CONFIG_TLS_NONE &&
	    !upstream_host_is_loopback(c->pt_host))
		log_warn("passthrough event=cleartext host=%s "
		    "note=\"tls none: the user's password crosses "
		    "the network in clear (allow_cleartext)\"",
		    c->pt_host);
	/* the legacy server as an account: trust as for the poller's
	   accounts ([upstream-defaults] ca_file / ca_only), USER/PASS */
	ck->acct.id = (char *)PASSTHROUGH_ACCOUNT;
	ck->acct.host = c->pt_host;
	ck->acct.port = (uint16_t)atoi(c->pt_port);
	ck->acct.tls = (enum upstream_tls)c->pt_tls;
	ck->acct.ca_file = c->upstream.ca_file;
	ck->acct.ca_only = c->upstream.ca_only;
	ck->acct.allow_cleartext = c->pt_tls == CONFIG_TLS_NONE;
	ck->acct.auth = UPSTREAM_AUTH_USER;
	ck->acct.login = ck->user;
	ck->acct.password = ck->password;
	ck->acct.timeouts.connect_ms = ms;
	ck->acct.timeouts.tls_ms = ms;
	ck->acct.timeouts.greeting_ms = ms;
	ck->acct.timeouts.command_ms = ms;
	ck->acct.timeouts.stall_ms = ms;
	ck->acct.timeouts.poll_ms = ms;
	memset(&env, 0, sizeof(env));
	env.base = gw->base;
	env.dns = upstreams_dns(gw->upstreams);
	env.workq = gw->workq;
	env.login_only = true;
	if (pop3_session_start(&env, &ck->acct, &ck->status, check_done, ck,
	    &ck->session, &error) < 0) {
		ck->session = NULL;
		finish(ck, PT_TEMP, error != NULL ? error :
		    "TLS set-up failed");
	}
}

/* CR, LF or any other control byte: never put on a POP3 command line. */
static bool
has_ctl(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* A login waiting for the local check (on a worker), with copies of
 * what the upstream check needs next. */
struct pt_pending {
	struct gateway *gw;
	struct imap_auth_request *req;
	char *user;
	char *password;
	char client_addr[64];
};

static void
pending_free(struct pt_pending *p)
{
	secure_zero(p->password, strlen(p->password));
	free(p->password);
	free(p->user);
	free(p);
}

/* The local password did not match: ask the legacy server, within the
 * rate limits. */
static void
check_upstream(struct gateway *gw, struct imap_auth_request *req,
    const char *username, const char *password, const char *client_addr)
{
	const struct config *c = gw->config;
	struct passthrough *pt;
	struct pt_check *ck;
	struct pt_entry *e;
	unsigned char key[32], ukey[32];
	struct timeval tv = { c->upstream.timeout, 0 };
	time_t now = time(NULL);
	bool found;

	pt = pt_get(gw);
	hash_pair(username, password, key);
	if (pt_table_find(pt->failures, PASSTHROUGH_TABLE_MAX, key,
	    now) != NULL) {
		imap_auth_request_done(req, IMAP_AUTH_FAILED, NULL);
		return;
	}
	hash_pair(username, "", ukey);
	/* never evicts a live count: a flood of names fills the table,
	   then new names wait (fail closed) until minutes run out */
	e = pt_table_claim(pt->rates, PASSTHROUGH_TABLE_MAX, ukey, now, false,
	    &found);
	if (e == NULL) {
		log_warn("passthrough event=rate-limited addr=%s reason=\"rate "
		    "table full\"", client_addr);
		imap_auth_request_done(req, IMAP_AUTH_TEMPFAIL, NULL);
		return;
	}
	if (!found) {
		e->window = now;
		e->count = 0;
	}
	if (++e->count > c->pt_attempts_per_minute ||
	    pt->running >= PASSTHROUGH_CHECKS_MAX) {
		log_warn("passthrough event=rate-limited addr=%s", client_addr);
		imap_auth_request_done(req, IMAP_AUTH_TEMPFAIL, NULL);
		return;
	}
	ck = xcalloc(1, sizeof(*ck));
	ck->gw = gw;
	ck->req = req;
	ck->user = xstrdup(username);
	ck->password = xstrdup(password);
	memcpy(ck->key, key, sizeof(key));
	ck->next = pt->checks;
	pt->checks = ck;
	pt->running++;
	ck->timer = evtimer_new(gw->base, timeout_cb, ck);
	evtimer_add(ck->timer, &tv);
	start_check(gw, ck);
}

static void
local_checked(void *arg, int result, bool exists)
{
	struct pt_pending *p = arg;
	struct gateway *gw = p->gw;

	const char *error;
	uint32_t id;

	if (result == 1)
		imap_auth_request_done(p->req, IMAP_AUTH_OK, p->user);
	else if (result == 2)	/* moved to another node */
		imap_auth_request_done(p->req, IMAP_AUTH_DISABLED, NULL);
	else if (result < 0 || gw->shutting_down)
		imap_auth_request_done(p->req, IMAP_AUTH_TEMPFAIL, NULL);
	else if (exists && user_ownership(gw, p->user, &id, &error) ==
	    PT_USER_FOREIGN)
		/* not pass-through's to change: the legacy server is not
		   asked (it cannot be used to try this user's passwords) */
		imap_auth_request_done(p->req, IMAP_AUTH_FAILED, NULL);
	else
		check_upstream(gw, p->req, p->user, p->password,
		    p->client_addr);
	pending_free(p);
}

void
passthrough_auth(void *ctx, const char *username, const char *password,
    const char *client_addr, struct imap_auth_request *req)
{
	struct gateway *gw = ctx;
	const struct config *c = gw->config;
	struct pt_pending *p;

	if (!c->pt_enabled || !domain_enabled(c, username) ||
	    strlen(password) > CTL_PASSWORD_MAX || gw->shutting_down ||
	    has_ctl(username) || has_ctl(password)) {
		/* an IMAP literal may carry CR LF: "USER %s" / "PASS %s"
		   would inject POP3 commands; such a login is checked here
		   only */
		imap_server_auth_store(gw->imap, username, password,
		    client_addr, req);
		return;
	}
	/* the local password first, on a worker (argon2id) */
	p = xcalloc(1, sizeof(*p));
	p->gw = gw;
	p->req = req;
	p->user = xstrdup(username);
	p->password = xstrdup(password);
	snprintf(p->client_addr, sizeof(p->client_addr), "%s", client_addr);
	imap_server_check_password(gw->imap, username, password, client_addr,
	    local_checked, p);
}

void
passthrough_shutdown(struct gateway *gw)
{
	struct passthrough *pt = gw->passthrough;

	while (pt != NULL && pt->checks != NULL) {
		struct pt_check *ck = pt->checks;

		if (ck->hashing && !ck->orphaned) {
			/* its hash job frees it when it ends (the pool
			   stops before the parts are freed) */
			if (ck->req != NULL) {
				imap_auth_request_done(ck->req,
				    IMAP_AUTH_TEMPFAIL, ck->user);
				ck->req = NULL;
			}
			check_unlink(ck);
			ck->orphaned = true;
			continue;
		}
		finish(ck, PT_TEMP, "shutting down");
		check_free(ck);
	}
}

void
passthrough_free(struct gateway *gw)
{
	passthrough_shutdown(gw);
	free(gw->passthrough);
	gw->passthrough = NULL;
}
