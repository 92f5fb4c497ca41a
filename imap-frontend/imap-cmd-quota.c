/*
 * imap-cmd-quota — the QUOTA extension (RFC 9208) with the STORAGE
 * resource: GETQUOTA, GETQUOTAROOT; SETQUOTA is refused (quotas are the
 * admin's: popgatectl user quota). A user has one quota root, "", over
 * all their mailboxes, and only when a quota applies to them (the store's
 * default or their own; store.h "quotas"). STORAGE is in units of 1024
 * octets: usage rounded up, the limit rounded down.
 */
#include <stdlib.h>
#include <string.h>

#include "imap-commands.h"
#include "imap-parse.h"
#include "imap-session.h"
#include "strbuf.h"

/* The user's limit and usage: 0 (limit 0: no quota), or -1 answered. */
static int
quota_read(struct imap_session *s, const char *tag, const char *what,
    struct store_read *r, uint64_t *limit_r, uint64_t *used_r)
{
	const char *err = NULL;
	bool own;

	if (store_user_quota_get(r, s->user_id, limit_r, &own, &err) < 0 ||
	    store_user_usage(r, s->user_id, used_r, &err) < 0) {
		imap_cmd_store_failed(s, tag, what,
		    store_last_error(s->server->store), err);
		return -1;
	}
	return 0;
}

static void
quota_line(struct strbuf *sb, uint64_t used, uint64_t limit)
{
	strbuf_appendf(sb, "* QUOTA \"\" (STORAGE %llu %llu)\r\n",
	    (unsigned long long)((used + 1023) / 1024),
	    (unsigned long long)(limit / 1024));
}

void
imap_cmd_getquotaroot(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	struct strbuf sb = STRBUF_INIT;
	uint64_t limit = 0, used = 0;
	const char *name;
	int rc;

	(void)uid;
	if (argc != 1) {
		imap_session_tagged(s, tag, "BAD", "GETQUOTAROOT needs a "
		    "mailbox");
		return;
	}
	if ((name = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (imap_cmd_mailbox_open(s, tag, "GETQUOTAROOT", name, &r,
	    &info) < 0)
		return;
	rc = quota_read(s, tag, "GETQUOTAROOT", r, &limit, &used);
	store_read_end(&r);
	if (rc < 0)
		return;
	strbuf_appends(&sb, "* QUOTAROOT ");
	imap_cmd_format_mailbox(&sb, name, s->enabled_utf8);
	if (limit > 0) {
		strbuf_appends(&sb, " \"\"\r\n");
		quota_line(&sb, used, limit);
	} else {
		strbuf_appends(&sb, "\r\n");
	}
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	imap_session_tagged(s, tag, "OK", "GETQUOTAROOT completed");
}

void
imap_cmd_getquota(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct store_read *r = NULL;
	struct strbuf sb = STRBUF_INIT;
	uint64_t limit = 0, used = 0;
	const char *root, *err = NULL;
	size_t len;
	int rc;

	(void)uid;
	if (argc != 1 || !imap_arg_get_astring(&args[0], &root, &len)) {
		imap_session_tagged(s, tag, "BAD", "GETQUOTA needs a quota "
		    "root");
		return;
	}
	if (store_read_begin(s->server->store, &r, &err) != 0) {
		imap_cmd_store_failed(s, tag, "GETQUOTA",
		    store_last_error(s->server->store), err);
		return;
	}
	rc = quota_read(s, tag, "GETQUOTA", r, &limit, &used);
	store_read_end(&r);
	if (rc < 0)
		return;
	if (len != 0 || limit == 0) {
		imap_session_tagged(s, tag, "NO", "[NONEXISTENT] No such "
		    "quota root");
		return;
	}
	quota_line(&sb, used, limit);
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	imap_session_tagged(s, tag, "OK", "GETQUOTA completed");
}

void
imap_cmd_setquota(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	(void)args;
	(void)argc;
	(void)uid;
	imap_session_tagged(s, tag, "NO", "[NOPERM] Quotas are set by the "
	    "administrator");
}
