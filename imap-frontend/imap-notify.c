/* imap-notify — NOTIFY SET / NONE and the notifications (RFC 5465). */
#include "imap-notify.h"

#include <stdlib.h>
#include <string.h>

#include "imap-fetch.h"
#include "imap-parse-notify.h"
#include "imap-session.h"
#include "imap-sync.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

/* One queued response: a LIST line as it will be sent, or (line NULL)
 * a STATUS of mailbox_id read when it goes out, so that a burst of
 * deliveries to one mailbox costs one entry and one response. */
struct notify_entry {
	uint32_t mailbox_id;
	char *line;
};

struct imap_notify {
	struct imap_notify_spec *spec;
	/* NOTIFICATIONOVERFLOW: the filters no longer apply (as NOTIFY
	 * NONE); the spec stays until the next NOTIFY, since a FETCH of
	 * new messages may still be streaming its fetch-atts. */
	bool off;
	bool overflow_pending;	/* the OK [NOTIFICATIONOVERFLOW] to send */
	struct notify_entry *q;
	size_t n, cap;
	/* MessageNew's FETCH: the selected mailbox it follows and the
	 * highest UID whose FETCH went out (or that SELECT reported). */
	uint32_t fetch_mailbox, fetch_uidvalidity, fetched_uid;
};

static void
queue_clear(struct imap_notify *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->q[i].line);
	n->n = 0;
}

void
imap_notify_free(struct imap_notify **np)
{
	struct imap_notify *n = *np;

	if (n == NULL)
		return;
	*np = NULL;
	queue_clear(n);
	free(n->q);
	imap_notify_spec_free(&n->spec);
	free(n);
}

static bool
notify_active(const struct imap_session *s)
{
	return s->notify != NULL && !s->notify->off && !s->notify->spec->none;
}

bool
imap_notify_selected_drops_flags(const struct imap_session *s)
{
	const struct imap_notify_group *g;

	if (!notify_active(s) || (g = s->notify->spec->selected) == NULL)
		return false;
	return g->events != 0 && !(g->events & IMAP_NOTIFY_EV_FLAG_CHANGE);
}

/* The queue is full: RFC 5465 5.8, NOTIFICATIONOVERFLOW and no more
 * notifications until the client sets them again. */
static void
overflow(struct imap_session *s)
{
	struct imap_notify *n = s->notify;

	log_warn("imap session=%u event=notify_overflow queued=%zu", s->id,
	    n->n);
	queue_clear(n);
	n->off = true;
	n->overflow_pending = true;
}

static void
queue_add(struct imap_session *s, uint32_t mailbox_id, char *line)
{
	struct imap_notify *n = s->notify;

	if (line == NULL) {
		for (size_t i = 0; i < n->n; i++)
			if (n->q[i].line == NULL &&
			    n->q[i].mailbox_id == mailbox_id)
				return;	/* read when it goes out */
	}
	if (n->n >= IMAP_NOTIFY_QUEUE_MAX) {
		free(line);
		overflow(s);
		return;
	}
	if (n->n == n->cap) {
		n->cap = n->cap == 0 ? 16 : n->cap * 2;
		n->q = xreallocarray(n->q, n->cap, sizeof(*n->q));
	}
	n->q[n->n].mailbox_id = mailbox_id;
	n->q[n->n].line = line;
	n->n++;
}

static int
subscribed_cb(void *ctx, const char *name)
{
	const char **want = ctx;

	if (strcmp(name, *want) == 0) {
		*want = NULL;
		return 1;	/* found: stop */
	}
	return 0;
}

/* Whether name is subscribed (it need not exist). */
static bool
name_subscribed(struct imap_session *s, struct store_read *r,
    const char *name)
{
	const char *want = name;

	(void)store_subscription_foreach(r, s->user_id, subscribed_cb, &want,
	    NULL);
	return want == NULL;
}

static bool
is_inbox(const char *name)
{
	return imap_notify_in_subtree("INBOX", name);
}

/* "* LIST (attrs) "/" name[ ("OLDNAME" (old))]" */
static char *
list_line(struct imap_session *s, const char *attrs, const char *name,
    const char *old_name)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_appendf(&sb, "* LIST (%s) \"/\" ", attrs);
	imap_cmd_format_mailbox(&sb, name, s->enabled_utf8);
	if (old_name != NULL) {
		strbuf_appends(&sb, " (\"OLDNAME\" (");
		imap_cmd_format_mailbox(&sb, old_name, s->enabled_utf8);
		strbuf_appends(&sb, "))");
	}
	strbuf_appends(&sb, "\r\n");
	return strbuf_detach(&sb, NULL);
}

static unsigned
message_event(enum store_change_kind kind)
{
	switch (kind) {
	case STORE_CHANGE_NEW:
		return IMAP_NOTIFY_EV_MESSAGE_NEW;
	case STORE_CHANGE_EXPUNGE:
		return IMAP_NOTIFY_EV_MESSAGE_EXPUNGE;
	case STORE_CHANGE_FLAGS:
		return IMAP_NOTIFY_EV_FLAG_CHANGE;
	default:
		return 0;
	}
}

static bool
at_rest(const struct imap_session *s)
{
	return !s->closing && (s->io == IMAP_IO_IDLE ||
	    (s->io == IMAP_IO_COMMAND && !s->in_dispatch));
}

/* Events about mailboxes other than the selected one. The session's
 * own changes are not echoed: it has their answers already. */
static bool
queue_event(struct imap_session *s, const struct store_change *ch,
    bool self, struct store_read *r)
{
	const struct imap_notify_spec *spec = s->notify->spec;
	struct store_mailbox_info info;
	unsigned ev = message_event(ch->kind);
	const char *name;

	if (ev != 0) {
		/* the selected mailbox's own messages: its view */
		if (self || (s->sel != NULL &&
		    ch->mailbox_id == s->sel->mailbox_id))
			return false;
		if (store_mailbox_get(r, s->user_id, ch->mailbox_id, &info,
		    NULL) != 0)
			return false;
		/* a mailbox the poller delivers to is an inbox */
		if (imap_notify_wants(spec, info.name, info.subscribed,
		    is_inbox(info.name) || (ch->origin == 0 &&
		    ch->kind == STORE_CHANGE_NEW), ev))
			queue_add(s, ch->mailbox_id, NULL);
		return false;
	}
	if (self || (name = ch->name) == NULL)
		return false;
	switch (ch->kind) {
	case STORE_CHANGE_MAILBOX_CREATE:
	case STORE_CHANGE_MAILBOX_DELETE:
	case STORE_CHANGE_MAILBOX_RENAME: {
		bool sub = name_subscribed(s, r, name);
		const char *old = ch->kind == STORE_CHANGE_MAILBOX_RENAME ?
		    ch->old_name : NULL;

		if (!imap_notify_wants(spec, name, sub, is_inbox(name),
		    IMAP_NOTIFY_EV_MAILBOX_NAME) && (old == NULL ||
		    !imap_notify_wants(spec, old, name_subscribed(s, r, old),
		    is_inbox(old), IMAP_NOTIFY_EV_MAILBOX_NAME)))
			return false;
		queue_add(s, ch->mailbox_id, list_line(s,
		    ch->kind == STORE_CHANGE_MAILBOX_DELETE ? "\\NonExistent" :
		    sub ? "\\Subscribed" : "", name, old));
		return true;
	}
	case STORE_CHANGE_MAILBOX_SUBSCRIBE:
		/* SUBSCRIBED holds a name whose subscription changed, in
		   either direction, or an UNSUBSCRIBE would go unheard */
		if (imap_notify_wants(spec, name, true, is_inbox(name),
		    IMAP_NOTIFY_EV_SUBSCRIPTION_CHANGE))
			queue_add(s, ch->mailbox_id, list_line(s,
			    ch->subscribed ? "\\Subscribed" : "", name, NULL));
		break;
	default:
		break;
	}
	return false;
}

bool
imap_notify_event(struct imap_session *s, const struct store_change *ch,
    bool self)
{
	struct store_read *r = NULL;
	bool told;

	if (!notify_active(s))
		return false;
	/* nothing to read for the session's own changes, or for the
	   selected mailbox's messages (its view has them) */
	if (self || (message_event(ch->kind) != 0 && s->sel != NULL &&
	    ch->mailbox_id == s->sel->mailbox_id))
		return false;
	if (store_read_begin(s->server->store, &r, NULL) != 0)
		return false;
	told = queue_event(s, ch, self, r);
	store_read_end(&r);
	/* the selected mailbox's own: after its view took the change
	   (imap_session_notify flushes then) */
	if (s->sel == NULL || ch->mailbox_id != s->sel->mailbox_id)
		imap_notify_flush(s);
	return told;
}

/* "* STATUS name (MESSAGES UIDNEXT UIDVALIDITY UNSEEN [HIGHESTMODSEQ])":
 * what MessageNew, MessageExpunge and FlagChange each ask for (RFC 5465
 * 5.1-5.3), one response for all three. */
static void
format_status(struct imap_session *s, struct strbuf *sb,
    const struct store_mailbox_info *info)
{
	strbuf_appends(sb, "* STATUS ");
	imap_cmd_format_mailbox(sb, info->name, s->enabled_utf8);
	strbuf_appendf(sb, " (MESSAGES %u UIDNEXT %u UIDVALIDITY %u UNSEEN %u",
	    info->messages, info->uidnext, info->uidvalidity, info->unseen);
	if (s->enabled_condstore)
		strbuf_appendf(sb, " HIGHESTMODSEQ %llu",
		    (unsigned long long)info->highestmodseq);
	strbuf_appends(sb, ")\r\n");
}

/* Writes queued entries while the client reads them. */
static void
write_queue(struct imap_session *s)
{
	struct imap_notify *n = s->notify;
	struct store_read *r = NULL;
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	if (n->overflow_pending) {
		imap_session_printf(s, "* OK [NOTIFICATIONOVERFLOW] Too many "
		    "notifications waited for this client: NOTIFY is off\r\n");
		n->overflow_pending = false;
	}
	for (i = 0; i < n->n && !imap_session_output_full(s); i++) {
		struct notify_entry *e = &n->q[i];
		struct store_mailbox_info info;

		if (e->line != NULL) {
			imap_session_write(s, e->line, strlen(e->line));
			free(e->line);
			continue;
		}
		if (s->sel != NULL && e->mailbox_id == s->sel->mailbox_id)
			continue;	/* selected since: the view says it */
		if (r == NULL && store_read_begin(s->server->store, &r,
		    NULL) != 0)
			break;
		if (store_mailbox_get(r, s->user_id, e->mailbox_id, &info,
		    NULL) == 0)
			format_status(s, &sb, &info);
		imap_session_write_sb(s, &sb);
	}
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	store_read_end(&r);
	memmove(n->q, n->q + i, (n->n - i) * sizeof(*n->q));
	n->n -= i;
}

void
imap_notify_write_queue(struct imap_session *s)
{
	if (s->notify != NULL && (s->notify->n > 0 ||
	    s->notify->overflow_pending))
		write_queue(s);
}

void
imap_notify_unselected(struct imap_session *s)
{
	if (s->notify != NULL)
		s->notify->fetch_mailbox = 0;
}

/* MessageNew with fetch-atts: a FETCH of each message the view got
 * since the last one (RFC 5465 5.2), after its EXISTS. */
static void
fetch_new(struct imap_session *s)
{
	struct imap_notify *n = s->notify;
	struct imap_selected *sel = s->sel;
	uint32_t lo;

	if (n->fetch_mailbox == 0 || n->fetch_mailbox != sel->mailbox_id ||
	    n->fetch_uidvalidity != sel->uidvalidity) {
		/* a new selection: SELECT reported what it has */
		n->fetch_mailbox = sel->mailbox_id;
		n->fetch_uidvalidity = sel->uidvalidity;
		n->fetched_uid = sel->max_uid;
		return;
	}
	if (sel->max_uid <= n->fetched_uid)
		return;
	lo = sel->count;
	while (lo > 0 && sel->uids[lo - 1] > n->fetched_uid)
		lo--;
	n->fetched_uid = sel->max_uid;
	if (lo < sel->count && n->spec->fetch_count > 0)
		imap_fetch_notify(s, sel->uids + lo, sel->count - lo,
		    n->spec->fetch, n->spec->fetch_count);
}

void
imap_notify_flush(struct imap_session *s)
{
	struct imap_notify *n = s->notify;
	const struct imap_notify_group *g;

	if (n == NULL || !at_rest(s))
		return;
	imap_notify_write_queue(s);
	if (s->sel == NULL || s->state != IMAP_STATE_SELECTED)
		return;
	g = notify_active(s) ? n->spec->selected : NULL;
	if (g == NULL || g->events == 0) {
		/* no selected filter: the selected mailbox as without
		   NOTIFY (updates in IDLE and when commands end) */
		if (s->io == IMAP_IO_IDLE)
			imap_session_send_updates(s, true);
		return;
	}
	if (imap_session_output_full(s))
		return;
	/* SELECTED: expunges too, at any rest point; SELECTED-DELAYED:
	   those wait for a command that may announce them (RFC 5465 5) */
	imap_session_send_updates(s, s->io == IMAP_IO_IDLE ||
	    g->filter == IMAP_NOTIFY_SELECTED);
	if (s->closing || s->sel == NULL)
		return;
	fetch_new(s);
}

/* ---- the command ---- */

static int
status_cb(void *ctx, const struct store_mailbox_info *info)
{
	struct imap_session *s = ctx;
	const struct imap_notify_spec *spec = s->notify->spec;
	struct strbuf sb = STRBUF_INIT;

	if (s->sel != NULL && info->id == s->sel->mailbox_id)
		return 0;
	if (!imap_notify_wants(spec, info->name, info->subscribed,
	    is_inbox(info->name), IMAP_NOTIFY_EV_MESSAGE_NEW) &&
	    !imap_notify_wants(spec, info->name, info->subscribed,
	    is_inbox(info->name), IMAP_NOTIFY_EV_MESSAGE_EXPUNGE) &&
	    !imap_notify_wants(spec, info->name, info->subscribed,
	    is_inbox(info->name), IMAP_NOTIFY_EV_FLAG_CHANGE))
		return 0;
	format_status(s, &sb, info);
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	return 0;
}

void
imap_cmd_notify(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct imap_notify_spec *spec;
	enum imap_notify_error code;
	const char *err;
	struct imap_notify *n;

	(void)uid;
	if (imap_notify_parse(args, argc, s->enabled_utf8, &spec, &code,
	    &err) != 0) {
		if (code == IMAP_NOTIFY_ERR_BADEVENT)
			imap_session_tagged(s, tag, "NO", "[BADEVENT (%s)] %s",
			    IMAP_NOTIFY_SUPPORTED_EVENTS, err);
		else
			imap_session_tagged(s, tag, "BAD", "%s", err);
		return;
	}
	/* the old filters' queue goes with them (RFC 5465 3.1: replaced) */
	imap_notify_free(&s->notify);
	if (spec->none) {
		imap_notify_spec_free(&spec);
		imap_session_tagged(s, tag, "OK", "NOTIFY completed");
		return;
	}
	n = xcalloc(1, sizeof(*n));
	n->spec = spec;
	s->notify = n;
	if (s->sel != NULL) {
		n->fetch_mailbox = s->sel->mailbox_id;
		n->fetch_uidvalidity = s->sel->uidvalidity;
		n->fetched_uid = s->sel->max_uid;
	}
	if (spec->status) {
		struct store_read *r = NULL;

		if (store_read_begin(s->server->store, &r, &err) == 0) {
			(void)store_mailbox_foreach(r, s->user_id, status_cb,
			    s, &err);
			store_read_end(&r);
		}
	}
	log_info("imap session=%u event=notify groups=%zu status=%s", s->id,
	    spec->group_count, spec->status ? "yes" : "no");
	imap_session_tagged(s, tag, "OK", "NOTIFY completed");
}
