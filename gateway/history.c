/* history — see history.h. */
#include "history.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/accounts.h"
#include "gateway/admin-store.h"
#include "log.h"
#include "store/store.h"
#include "xmalloc.h"

static char *
key_of(const char *account)
{
	return xasprintf(HISTORY_META_PREFIX "%s", account);
}

json_t *
history_get(struct store_read *r, uint32_t user_id, const char *account,
    const char **error_r)
{
	char *key = key_of(account);
	const void *value;
	size_t size;
	json_t *j = NULL;
	int ret;

	ret = store_user_meta_get(r, user_id, key, &value, &size, error_r);
	free(key);
	if (ret == 0) {
		j = json_loadb(value, size, 0, NULL);
		/* a damaged record is started afresh, never fatal */
		if (!json_is_object(j)) {
			json_decref(j);
			j = json_object();
		}
	} else if (ret == STORE_NOT_FOUND) {
		*error_r = NULL;
	}
	return j;
}

static json_int_t
int_of(json_t *o, const char *name)
{
	return json_integer_value(json_object_get(o, name));
}

static void
add_to(json_t *o, const char *name, json_int_t n)
{
	json_object_set_new(o, name, json_integer(int_of(o, name) + n));
}

/* A finished poll on its way through the writer: the record is read,
 * updated and written back in ONE transaction there, so two polls of an
 * account that end within one group commit each add to the other. */
struct history_job {
	uint32_t user_id;
	char *key;
	char *account;
	json_t *entry;		/* the poll, as stored in "recent" */
	bool ok;
	time_t started, ended;
	uint32_t fetched, deleted;
	uint64_t bytes;
};

static int
history_update(void *ctx, const void *old, size_t old_size, void **new_r,
    size_t *new_size_r)
{
	struct history_job *j = ctx;
	json_t *h = NULL, *recent;
	char *text;

	if (old != NULL)
		h = json_loadb(old, old_size, 0, NULL);
	/* a damaged record is started afresh, never fatal */
	if (!json_is_object(h)) {
		json_decref(h);
		h = json_object();
	}
	add_to(h, "fetched", j->fetched);
	add_to(h, "bytes", (json_int_t)j->bytes);
	add_to(h, "deleted", j->deleted);
	add_to(h, "polls", 1);
	if (!j->ok)
		add_to(h, "failures", 1);
	json_object_set_new(h, "last_poll", json_integer(j->started));
	if (j->ok)
		json_object_set_new(h, "last_success", json_integer(j->ended));
	else if (json_object_get(h, "last_success") == NULL)
		json_object_set_new(h, "last_success", json_null());
	recent = json_object_get(h, "recent");
	if (!json_is_array(recent)) {
		recent = json_array();
		json_object_set_new(h, "recent", recent);
	}
	json_array_insert(recent, 0, j->entry);
	while (json_array_size(recent) > HISTORY_POLLS_MAX)
		json_array_remove(recent, json_array_size(recent) - 1);
	text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(h);
	PG_ASSERT(text != NULL);
	*new_r = text;
	*new_size_r = strlen(text);
	return 0;
}

static int
history_apply(struct store *store, void *ctx, const char **error_r)
{
	struct history_job *j = ctx;

	return store_user_meta_update(store, j->user_id, j->key,
	    history_update, j, error_r);
}

static void
history_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct history_job *j = ctx;
	char q[LOG_QUOTE_MAX], qa[LOG_QUOTE_MAX];

	(void)cls;
	if (rc < 0)
		log_warn("upstreams user_id=%u account=%s "
		    "event=history-not-kept error=%s", j->user_id,
		    log_quote(qa, sizeof(qa), j->account),
		    log_quote(q, sizeof(q), error != NULL ? error : "?"));
	json_decref(j->entry);
	free(j->key);
	free(j->account);
	free(j);
}

int
history_record(struct store *store, uint32_t user_id, const char *account,
    const struct history_poll *poll, const char **error_r)
{
	struct history_job *j = xcalloc(1, sizeof(*j));

	(void)error_r;
	j->user_id = user_id;
	j->key = key_of(account);
	j->account = xstrdup(account);
	j->ok = strcmp(poll->outcome, "ok") == 0;
	j->started = poll->started;
	j->ended = poll->ended;
	j->fetched = poll->fetched;
	j->deleted = poll->deleted;
	j->bytes = poll->bytes;
	j->entry = json_pack("{s:I, s:I, s:s, s:i, s:I, s:i, s:i}",
	    "started", (json_int_t)poll->started,
	    "seconds", (json_int_t)(poll->ended >= poll->started ?
	    poll->ended - poll->started : 0),
	    "outcome", poll->outcome, "fetched", (int)poll->fetched,
	    "bytes", (json_int_t)poll->bytes, "deleted", (int)poll->deleted,
	    "skipped", (int)poll->skipped);
	PG_ASSERT(j->entry != NULL);
	if (poll->error != NULL && poll->error[0] != '\0')
		json_object_set_new(j->entry, "error",
		    json_string(poll->error));
	/* after every poll of every account: the loop does not wait */
	store_write_submit(store, user_id, 0, 0, history_apply, history_done,
	    j);
	return 0;
}

int
history_delete(struct store *store, uint32_t user_id, const char *account,
    const char **error_r)
{
	char *key = key_of(account);
	int ret = admin_store_meta_del(store, user_id, key, error_r);

	free(key);
	return ret;
}

/* The later of two Unix times, either of which may be null. */
static json_t *
later(json_t *a, json_t *b)
{
	if (!json_is_integer(a))
		return json_incref(b != NULL ? b : json_null());
	if (!json_is_integer(b))
		return json_incref(a);
	return json_incref(json_integer_value(a) >= json_integer_value(b) ?
	    a : b);
}

void
history_merge_status(json_t *status, json_t *hist)
{
	if (!json_is_object(status))
		return;
	/* what this run of the daemon fetched, before the totals replace
	   the live counters */
	json_object_set_new(status, "since_start", json_pack("{s:I, s:I, "
	    "s:I}", "messages_fetched", int_of(status, "messages_fetched"),
	    "bytes_fetched", int_of(status, "bytes_fetched"),
	    "messages_deleted", int_of(status, "messages_deleted")));
	if (hist == NULL)
		return;
	json_object_set_new(status, "messages_fetched",
	    json_integer(int_of(hist, "fetched")));
	json_object_set_new(status, "bytes_fetched",
	    json_integer(int_of(hist, "bytes")));
	json_object_set_new(status, "messages_deleted",
	    json_integer(int_of(hist, "deleted")));
	json_object_set_new(status, "polls", json_integer(int_of(hist,
	    "polls")));
	if (json_object_get(status, "last_poll") != NULL ||
	    json_object_get(hist, "last_poll") != NULL)
		json_object_set_new(status, "last_poll", later(
		    json_object_get(status, "last_poll"),
		    json_object_get(hist, "last_poll")));
	if (json_object_get(status, "last_success") != NULL ||
	    json_object_get(hist, "last_success") != NULL)
		json_object_set_new(status, "last_success", later(
		    json_object_get(status, "last_success"),
		    json_object_get(hist, "last_success")));
}
