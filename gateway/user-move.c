/* user-move — see user-move.h. */
#include "user-move.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/accounts.h"
#include "gateway/fsutil.h"
#include "gateway/gateway.h"
#include "gateway/move-format.h"
#include "gateway/reindex.h"
#include "gateway/secret.h"
#include "gateway/upstreams.h"
#include "gateway/user-move-private.h"
#include "log.h"
#include "store/store.h"
#include "xmalloc.h"

_Static_assert(MOVE_BODY_MAX == STORE_MESSAGE_SIZE_MAX,
    "a BODY record holds the store's largest message");
_Static_assert(MOVE_ACCOUNT_MAX <= STORE_ACCOUNT_ID_MAX,
    "account names fit the ledger's account ids");

/* ---- crypto ---- */

int
move_derive_keys(const char *passphrase, const unsigned char *salt,
    uint32_t iterations, struct move_keys *k)
{
	unsigned char out[sizeof(k->seal) + sizeof(k->mac)];

	if (PKCS5_PBKDF2_HMAC(passphrase, (int)strlen(passphrase), salt,
	    MOVE_SALT_SIZE, (int)iterations, EVP_sha256(), (int)sizeof(out),
	    out) != 1)
		return -1;
	memcpy(k->seal, out, sizeof(k->seal));
	memcpy(k->mac, out + sizeof(k->seal), sizeof(k->mac));
	explicit_bzero(out, sizeof(out));
	return 0;
}

int
move_mac_init(struct move_mac *m, const unsigned char *key)
{
	OSSL_PARAM params[2];

	m->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	m->ctx = m->mac != NULL ? EVP_MAC_CTX_new(m->mac) : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (m->ctx == NULL || EVP_MAC_init(m->ctx, key, 32, params) != 1)
		return -1;
	return 0;
}

void
move_mac_update(struct move_mac *m, const void *data, size_t len)
{
	if (len > 0)
		(void)EVP_MAC_update(m->ctx, data, len);
}

int
move_mac_final(struct move_mac *m, unsigned char out[MOVE_MAC_SIZE])
{
	size_t n = 0;

	return EVP_MAC_final(m->ctx, out, &n, MOVE_MAC_SIZE) == 1 &&
	    n == MOVE_MAC_SIZE ? 0 : -1;
}

void
move_mac_free(struct move_mac *m)
{
	EVP_MAC_CTX_free(m->ctx);
	EVP_MAC_free(m->mac);
	m->ctx = NULL;
	m->mac = NULL;
}

/* The associated data of a secret in the file: not the node's ("USER/
 * ACCOUNT"), so a sealed value cannot be copied from a file into a
 * node's record or back. */
char *
move_transfer_user(const char *user)
{
	return xasprintf("move:%s", user);
}

/* An account record with its secrets sealed again for the file. */
json_t *
move_reseal(const char *user, const struct account *a, const struct secret_key
    *from, const struct secret_key *to, const char *to_user,
    const char **error_r)
{
	struct account tmp;
	char *plain = NULL;
	json_t *rec = NULL;

	account_copy(&tmp, a);
	free(tmp.user);
	tmp.user = xstrdup(to_user);
	if (a->password_sealed != NULL && a->password_sealed[0] != '\0') {
		if (account_open_password(a, from, &plain, error_r) < 0)
			goto out;
		if (account_seal_password(&tmp, to, plain) < 0) {
			*error_r = "sealing failed";
			goto out;
		}
		secret_free_plain(plain);
		plain = NULL;
	}
	if (a->refresh_sealed != NULL) {
		if (account_open_refresh(a, from, &plain, error_r) < 0)
			goto out;
		if (account_seal_refresh(&tmp, to, plain) < 0) {
			*error_r = "sealing failed";
			goto out;
		}
	}
	rec = account_to_record(&tmp);
out:
	(void)user;
	secret_free_plain(plain);
	account_clear(&tmp);
	return rec;
}

/* ---- the loop's side: start, done, reply ---- */

static void
move_reset(struct user_move *m)
{
	free(m->user);
	free(m->path);
	free(m->tmp);
	if (m->passphrase != NULL) {
		explicit_bzero(m->passphrase, strlen(m->passphrase));
		free(m->passphrase);
	}
	free(m->import_user);
	json_decref(m->accounts);
	if (m->fd >= 0)
		close(m->fd);
	explicit_bzero(&m->keys, sizeof(m->keys));
	m->user = m->path = m->tmp = m->passphrase = m->import_user = NULL;
	m->accounts = NULL;
	m->fd = -1;
	m->have_keys = false;
	m->result = -1;
	m->error[0] = '\0';
	memset(&m->counts, 0, sizeof(m->counts));
}

static void done_cb(evutil_socket_t fd, short what, void *arg);

static struct user_move *
move_get(struct gateway *gw, struct ctl_error *err)
{
	struct user_move *m = gw->user_move;

	if (m != NULL && m->running) {
		ctl_error_set(err, "busy", NULL, "a user %s is running (%s); "
		    "try again when it is done", m->kind == MOVE_EXPORT ?
		    "export" : "import", m->path);
		return NULL;
	}
	if (m == NULL) {
		m = xcalloc(1, sizeof(*m));
		m->gw = gw;
		m->fd = -1;
		if (pipe2(m->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
			ctl_error_set(err, CTL_E_INTERNAL, NULL, "pipe: %s",
			    strerror(errno));
			free(m);
			return NULL;
		}
		m->done_ev = event_new(gw->base, m->pipe[0],
		    EV_READ | EV_PERSIST, done_cb, m);
		event_add(m->done_ev, NULL);
		gw->user_move = m;
	}
	move_reset(m);
	return m;
}

/* Reads the passphrase file (its first line). */
static char *
read_passphrase(const char *path, struct ctl_error *err)
{
	char buf[MOVE_PASSFILE_MAX + 1];
	ssize_t n;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *nl;

	if (fd < 0) {
		ctl_error_set(err, CTL_E_INVALID, "passphrase_file", "cannot "
		    "open the passphrase file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = read(fd, buf, MOVE_PASSFILE_MAX);
	close(fd);
	if (n < 0) {
		ctl_error_set(err, CTL_E_INVALID, "passphrase_file", "cannot "
		    "read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf[n] = '\0';
	if ((nl = strchr(buf, '\n')) != NULL)
		*nl = '\0';
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	if (len < MOVE_PASSPHRASE_MIN || len > MOVE_PASSPHRASE_MAX) {
		explicit_bzero(buf, sizeof(buf));
		ctl_error_set(err, CTL_E_INVALID, "passphrase_file", "the "
		    "passphrase (first line of %s) must have %d to %d "
		    "characters", path, MOVE_PASSPHRASE_MIN,
		    MOVE_PASSPHRASE_MAX);
		return NULL;
	}
	nl = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return nl;
}

static double
seconds_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static json_t *
counts_json(const struct move_counts *c)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "mailboxes", (json_int_t)c->mailboxes, "messages",
	    (json_int_t)c->messages, "bodies", (json_int_t)c->bodies,
	    "bytes", (json_int_t)c->bytes, "vanished",
	    (json_int_t)c->vanished, "ledger", (json_int_t)c->ledger,
	    "accounts", (json_int_t)c->accounts, "settings",
	    (json_int_t)c->settings, "subscriptions",
	    (json_int_t)c->subscriptions);
}

static void
reply_result(struct user_move *m)
{
	char q[LOG_QUOTE_MAX + CTL_PATH_MAX], qu[LOG_QUOTE_MAX];
	const char *what = m->kind == MOVE_EXPORT ? "export" : "import";
	struct ctl_error err;
	json_t *resp;

	log_quote(q, sizeof(q), m->path);
	log_quote(qu, sizeof(qu), m->user != NULL ? m->user : "");
	m->running = false;
	if (m->result < 0) {
		log_error("user_move event=%s_failed user=%s path=%s "
		    "error=\"%s\"", what, qu, q, m->error);
		ctl_error_set(&err, m->kind == MOVE_IMPORT &&
		    strstr(m->error, "exists") != NULL ? CTL_E_EXISTS :
		    CTL_E_INVALID, "path", "%s failed: %s", what, m->error);
		m->gw->stats.control_errors++;
		if (m->client != NULL)
			control_reply_error(m->client, &err);
	} else {
		log_info("user_move event=%s_done user=%s path=%s messages=%llu "
		    "bytes=%llu seconds=%.3f", what, qu, q,
		    (unsigned long long)m->counts.messages,
		    (unsigned long long)m->counts.bytes,
		    seconds_since(&m->started));
		resp = ctl_ok_json();
		json_object_set_new(resp, what, json_pack("{s:s, s:s, s:o, "
		    "s:f}", "user", m->user, "path", m->path, "counts",
		    counts_json(&m->counts), "seconds",
		    seconds_since(&m->started)));
		if (m->client != NULL)
			control_reply(m->client, resp);
		else
			json_decref(resp);
	}
	m->client = NULL;
}

void
move_thread_done(struct user_move *m)
{
	char c = 'd';

	while (write(m->pipe[1], &c, 1) < 0 && errno == EINTR)
		;
}


static void
export_finish(struct user_move *m)
{
	if (m->result == 0 && link(m->tmp, m->path) < 0) {
		m->result = -1;
		snprintf(m->error, sizeof(m->error), "%s", errno == EEXIST ?
		    "the file exists now (made during the export)" :
		    strerror(errno));
	}
	unlink(m->tmp);
	if (m->result == 0)
		fs_sync_parent_dir(m->path);
	reply_result(m);
}

/* Writer job: mark the user moved (or not). */
struct mark_ctx {
	uint32_t user_id;
	bool moved;
	char value[128];
};

static int
mark_apply(struct store *store, void *ctx, const char **error_r)
{
	struct mark_ctx *c = ctx;
	int rc;

	if (c->moved)
		return store_user_meta_put(store, c->user_id, STORE_META_MOVED,
		    c->value, strlen(c->value), error_r);
	rc = store_user_meta_del(store, c->user_id, STORE_META_MOVED,
	    error_r);
	return rc == STORE_NOT_FOUND ? 0 : rc;
}

static int
noop_apply(struct store *store, void *ctx, const char **error_r)
{
	(void)store;
	(void)ctx;
	(void)error_r;
	return 0;
}

static int
lookup_user(struct gateway *gw, const char *user, uint32_t *id_r,
    struct ctl_error *err)
{
	struct store_read *r = NULL;
	const char *error = NULL;
	int rc = -1;

	if (store_read_begin(gw->store, &r, &error) == 0) {
		rc = store_user_lookup(r, user, id_r, &error);
		store_read_end(&r);
	}
	if (rc == STORE_NOT_FOUND)
		ctl_error_set(err, CTL_E_UNKNOWN_USER, "user", "no user %s",
		    user);
	else if (rc < 0)
		ctl_error_set(err, CTL_E_STORE, NULL, "user lookup: %s",
		    error != NULL ? error : "store error");
	return rc;
}

static int
export_start(struct gateway *gw, struct control_client *client,
    json_t *req, struct ctl_error *err)
{
	const char *user = ctl_req_str(req, "user");
	const char *path = ctl_req_str(req, "path");
	struct mark_ctx mark;
	struct user_move *m;
	const char *error = NULL;
	char q[LOG_QUOTE_MAX];
	struct stat st;
	uint32_t id;
	char *pass;
	int rc;

	if (lookup_user(gw, user, &id, err) != 0)
		return -1;
	if (lstat(path, &st) == 0) {
		ctl_error_set(err, CTL_E_EXISTS, "path", "%s exists; an export "
		    "never overwrites a file", path);
		return -1;
	}
	pass = read_passphrase(ctl_req_str(req, "passphrase_file"), err);
	if (pass == NULL)
		return -1;
	if ((m = move_get(gw, err)) == NULL) {
		explicit_bzero(pass, strlen(pass));
		free(pass);
		return -1;
	}
	m->kind = MOVE_EXPORT;
	m->passphrase = pass;
	m->user = xstrdup(user);
	m->user_id = id;
	m->path = xstrdup(path);
	m->tmp = xasprintf("%s.partial-XXXXXX", path);
	m->fd = mkostemp(m->tmp, O_CLOEXEC);
	if (m->fd < 0) {
		ctl_error_set(err, CTL_E_INVALID, "path", "cannot create a "
		    "file in the directory of %s: %s (it must exist and be "
		    "writable by the daemon's user)", path, strerror(errno));
		move_reset(m);
		return -1;
	}
	(void)fchmod(m->fd, 0600);
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	/* 1. the mark: no delivery for the user commits after it, and
	   their logins are refused */
	memset(&mark, 0, sizeof(mark));
	mark.user_id = id;
	mark.moved = true;
	snprintf(mark.value, sizeof(mark.value), "{\"at\":%lld}",
	    (long long)time(NULL));
	if (store_write_sync(gw->store, id, 0, 0, mark_apply, &mark,
	    &error) < 0) {
		ctl_error_set(err, CTL_E_STORE, NULL, "marking the user "
		    "moved: %s", error != NULL ? error : "store error");
		unlink(m->tmp);
		move_reset(m);
		return -1;
	}
	/* 2. no session or poll of theirs goes on here */
	gateway_close_user_sessions(gw, user);
	if (gw->upstreams != NULL)
		upstreams_remove_user(gw->upstreams, id);
	/* 3. what their sessions and polls queued before has committed
	   (the writer runs one key's jobs in order) */
	(void)store_write_sync(gw->store, id, 0, 0, noop_apply, NULL, &error);
	log_info("user_move event=export_start user=%s note=\"marked moved: "
	    "logins refused, polling stopped\"", log_quote(q, sizeof(q),
	    user));
	m->client = client;
	m->running = true;
	rc = pthread_create(&m->thread, NULL, move_export_thread, m);
	if (rc != 0) {
		m->running = false;
		m->client = NULL;
		unlink(m->tmp);
		ctl_error_set(err, CTL_E_INTERNAL, NULL, "thread: %s",
		    strerror(rc));
		move_reset(m);
		return -1;
	}
	m->thread_live = true;
	return 0;
}


struct start_ctx {
	struct gateway *gw;
	uint32_t user_id;
	const char *user;
};

static int
start_account(void *ctx, const struct account *a)
{
	struct start_ctx *sc = ctx;

	if (sc->gw->upstreams != NULL)
		upstreams_update(sc->gw->upstreams, a);
	return 0;
}

static void
import_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct user_move *m = ctx;
	struct gateway *gw = m->gw;
	struct store_read *r = NULL;
	struct start_ctx sc = { gw, m->user_id, m->user };
	const char *err = NULL;

	(void)cls;
	m->result = rc;
	if (rc < 0) {
		if (m->error[0] == '\0')
			snprintf(m->error, sizeof(m->error), "%s", error !=
			    NULL ? error : "store error");
		reply_result(m);
		return;
	}
	/* committed: the user is served here from now on */
	gw->stats.users_added++;
	if (store_read_begin(gw->store, &r, &err) == 0) {
		(void)accounts_foreach(r, m->user_id, m->user, start_account,
		    &sc, &err);
		store_read_end(&r);
	}
	if (store_fts_enabled(gw->store) &&
	    reindex_start(gw, &m->user_id, 1, false) < 0)
		log_warn("user_move event=reindex_later user_id=%u note=\"a "
		    "reindex is running; run popgatectl reindex for this "
		    "user after it\"", m->user_id);
	reply_result(m);
}

static void
import_checked(struct user_move *m)
{
	struct gateway *gw = m->gw;
	struct ctl_error err;
	uint32_t id;

	if (m->result < 0) {
		reply_result(m);
		return;
	}
	free(m->user);
	m->user = xstrdup(m->import_user);
	if (!m->force && lookup_user(gw, m->user, &id, &err) == 0) {
		m->result = -1;
		snprintf(m->error, sizeof(m->error), "the user %s exists on "
		    "this node (give --force to replace them)", m->user);
		reply_result(m);
		return;
	}
	if (gw->shutting_down) {
		m->result = -1;
		snprintf(m->error, sizeof(m->error), "the daemon is shutting "
		    "down");
		reply_result(m);
		return;
	}
	if (m->force)
		gateway_close_user_sessions(gw, m->user);
	/* ONE writer job: the user appears whole at its commit */
	m->running = true;
	store_write_submit(gw->store, 0, 0, (size_t)m->file_size,
	    move_import_apply, import_done, m);
}

static int
import_start(struct gateway *gw, struct control_client *client,
    json_t *req, struct ctl_error *err)
{
	const char *path = ctl_req_str(req, "path");
	struct user_move *m;
	struct stat st;
	char *pass;
	int fd, rc;

	pass = read_passphrase(ctl_req_str(req, "passphrase_file"), err);
	if (pass == NULL)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ctl_error_set(err, CTL_E_INVALID, "path", "cannot read %s: %s",
		    path, fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		explicit_bzero(pass, strlen(pass));
		free(pass);
		return -1;
	}
	if ((m = move_get(gw, err)) == NULL) {
		close(fd);
		explicit_bzero(pass, strlen(pass));
		free(pass);
		return -1;
	}
	m->kind = MOVE_IMPORT;
	m->passphrase = pass;
	m->path = xstrdup(path);
	m->fd = fd;
	m->file_size = (uint64_t)st.st_size;
	m->force = ctl_req_bool(req, "force", false);
	m->client = client;
	m->running = true;
	clock_gettime(CLOCK_MONOTONIC, &m->started);
	rc = pthread_create(&m->thread, NULL, move_import_check_thread, m);
	if (rc != 0) {
		m->running = false;
		m->client = NULL;
		ctl_error_set(err, CTL_E_INTERNAL, NULL, "thread: %s",
		    strerror(rc));
		move_reset(m);
		return -1;
	}
	m->thread_live = true;
	return 0;
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct user_move *m = arg;
	char c;

	(void)what;
	if (read(fd, &c, 1) != 1 || !m->thread_live)
		return;
	pthread_join(m->thread, NULL);
	m->thread_live = false;
	if (m->kind == MOVE_EXPORT)
		export_finish(m);
	else
		import_checked(m);
}

void
user_move_export(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct ctl_error err;

	if (export_start(gw, client, req, &err) < 0) {
		gw->stats.control_errors++;
		control_reply_error(client, &err);
	}
}

void
user_move_import(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct ctl_error err;

	if (import_start(gw, client, req, &err) < 0) {
		gw->stats.control_errors++;
		control_reply_error(client, &err);
	}
}

void
user_move_unmove(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	struct store_read *r = NULL;
	struct start_ctx sc = { gw, 0, user };
	struct mark_ctx mark;
	struct ctl_error err;
	const char *error = NULL;
	char q[LOG_QUOTE_MAX];
	uint32_t id;

	if (lookup_user(gw, user, &id, &err) != 0) {
		gw->stats.control_errors++;
		control_reply_error(client, &err);
		return;
	}
	if (gw->user_move != NULL && gw->user_move->running &&
	    gw->user_move->kind == MOVE_EXPORT &&
	    gw->user_move->user_id == id) {
		ctl_error_set(&err, "busy", NULL, "the user's export is "
		    "running");
		gw->stats.control_errors++;
		control_reply_error(client, &err);
		return;
	}
	memset(&mark, 0, sizeof(mark));
	mark.user_id = id;
	if (store_write_sync(gw->store, id, 0, 0, mark_apply, &mark,
	    &error) < 0) {
		ctl_error_set(&err, CTL_E_STORE, NULL, "%s", error);
		gw->stats.control_errors++;
		control_reply_error(client, &err);
		return;
	}
	sc.user_id = id;
	if (store_read_begin(gw->store, &r, &error) == 0) {
		(void)accounts_foreach(r, id, user, start_account, &sc,
		    &error);
		store_read_end(&r);
	}
	log_info("user_move event=unmoved user=%s note=\"served here again\"",
	    log_quote(q, sizeof(q), user));
	control_reply(client, ctl_ok_json());
}

void
user_move_free(struct gateway *gw)
{
	struct user_move *m = gw->user_move;

	if (m == NULL)
		return;
	if (m->thread_live) {
		pthread_join(m->thread, NULL);
		m->thread_live = false;
		if (m->kind == MOVE_EXPORT)
			unlink(m->tmp);
	}
	event_free(m->done_ev);
	close(m->pipe[0]);
	close(m->pipe[1]);
	move_reset(m);
	free(m);
	gw->user_move = NULL;
}
