/* imap-sync — the selected mailbox view of a session and the untagged
 * updates (EXISTS, EXPUNGE, FETCH FLAGS) it owes the client. */
#include <stdlib.h>
#include <string.h>

#include "imap-commands.h"
#include "imap-format.h"
#include "imap-notify.h"
#include "imap-recent.h"
#include "imap-seqset.h"
#include "imap-session.h"
#include "imap-sync.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

uint32_t
imap_selected_seq(const struct imap_selected *sel, uint32_t uid)
{
	uint32_t lo = 0, hi = sel->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (sel->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sel->count && sel->uids[lo] == uid ? lo + 1 : 0;
}

static void
u32_push(uint32_t **arr, uint32_t *count, uint32_t *cap, uint32_t v)
{
	if (*count == *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		*arr = xreallocarray(*arr, *cap, sizeof(**arr));
	}
	(*arr)[(*count)++] = v;
}

void
imap_selected_append_uid(struct imap_selected *sel, uint32_t uid)
{
	u32_push(&sel->uids, &sel->count, &sel->cap, uid);
	if (uid > sel->max_uid)
		sel->max_uid = uid;
}

void
imap_session_unselect(struct imap_session *s)
{
	struct imap_selected *sel = s->sel;

	if (sel == NULL)
		return;
	free(sel->name);
	free(sel->uids);
	imap_seqset_free(&sel->recent);
	imap_seqset_free(&sel->saved);
	free(sel->renamed_from);
	imap_notify_unselected(s);
	free(sel->expunged);
	free(sel->flagged);
	free(sel);
	s->sel = NULL;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts and de-duplicates arr[0..*count). */
static void
u32_sort_unique(uint32_t *arr, uint32_t *count)
{
	uint32_t n = 0;

	if (*count == 0)
		return;
	qsort(arr, *count, sizeof(*arr), cmp_u32);
	for (uint32_t i = 0; i < *count; i++)
		if (n == 0 || arr[n - 1] != arr[i])
			arr[n++] = arr[i];
	*count = n;
}

void
imap_format_mailbox_flags(struct strbuf *sb, const char *const *kw,
    size_t kw_count, bool readonly)
{
	strbuf_appends(sb, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
	    "\\Draft");
	for (size_t i = 0; i < kw_count; i++) {
		strbuf_appendc(sb, ' ');
		strbuf_appends(sb, kw[i]);
	}
	strbuf_appends(sb, ")\r\n");
	if (readonly) {
		strbuf_appends(sb, "* OK [PERMANENTFLAGS ()] Read-only "
		    "mailbox\r\n");
		return;
	}
	strbuf_appends(sb, "* OK [PERMANENTFLAGS (\\Answered \\Flagged "
	    "\\Deleted \\Seen \\Draft");
	for (size_t i = 0; i < kw_count; i++) {
		strbuf_appendc(sb, ' ');
		strbuf_appends(sb, kw[i]);
	}
	strbuf_appends(sb, " \\*)] Flags permitted\r\n");
}

/* RFC 3501 7.2.6: when a keyword is new in the mailbox, FLAGS and
 * PERMANENTFLAGS again, before the FETCH that shows it (as Dovecot). */
void
imap_session_send_keyword_updates(struct imap_session *s)
{
	struct imap_selected *sel = s->sel;
	struct store_read *r = NULL;
	const char *kw[STORE_KEYWORDS_MAX];
	size_t kwn = 0;
	const char *err;
	struct strbuf sb = STRBUF_INIT;

	if (!sel->kw_check)
		return;
	sel->kw_check = false;
	if (store_read_begin(s->server->store, &r, &err) != 0)
		return;
	if (store_mailbox_keywords(r, s->user_id, sel->mailbox_id, kw, &kwn,
	    &err) == 0 && kwn > sel->kw_count) {
		imap_format_mailbox_flags(&sb, kw, kwn, sel->readonly);
		sel->kw_count = (uint32_t)kwn;
	}
	store_read_end(&r);
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
}

void
imap_session_keywords_seen(struct imap_session *s, const char *const *kw,
    size_t kwn)
{
	struct strbuf sb = STRBUF_INIT;

	if (s->sel == NULL || kwn <= s->sel->kw_count)
		return;
	imap_format_mailbox_flags(&sb, kw, kwn, s->sel->readonly);
	s->sel->kw_count = (uint32_t)kwn;
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
}

void
imap_session_notify(struct imap_session *s, const struct store_change *ch,
    bool self)
{
	struct imap_selected *sel = s->sel;
	/* NOTIFY (imap-notify.h): the other mailboxes' events */
	bool told = imap_notify_event(s, ch, self);

	if (sel == NULL || ch->mailbox_id != sel->mailbox_id)
		return;
	if (ch->kind == STORE_CHANGE_NEW || ch->kind == STORE_CHANGE_FLAGS) {
		/* may have brought new keywords; this session's own STORE,
		 * APPEND or COPY hears of them now, before its FETCHes */
		sel->kw_check = true;
		if (self)
			imap_session_send_keyword_updates(s);
	}
	switch (ch->kind) {
	case STORE_CHANGE_NEW:
		sel->new_pending = true;
		break;
	case STORE_CHANGE_FLAGS:
		if (self || imap_notify_selected_drops_flags(s))
			break;
		for (size_t i = 0; i < ch->uid_count; i++)
			u32_push(&sel->flagged, &sel->flagged_count,
			    &sel->flagged_cap, ch->uids[i]);
		break;
	case STORE_CHANGE_EXPUNGE:
		if (self) {
			/* the mailbox's HIGHESTMODSEQ after this session's own
			 * expunge: its tagged OK carries it (RFC 7162 3.2.7) */
			if (ch->highestmodseq > sel->highestmodseq)
				sel->highestmodseq = ch->highestmodseq;
			break;
		}
		for (size_t i = 0; i < ch->uid_count; i++)
			u32_push(&sel->expunged, &sel->expunged_count,
			    &sel->expunged_cap, ch->uids[i]);
		break;
	case STORE_CHANGE_MAILBOX_DELETE:
		sel->deleted = true;
		break;
	case STORE_CHANGE_MAILBOX_RENAME:
		/* IMAP4rev2: LIST with OLDNAME at the next update, unless
		   NOTIFY said it already; the first old name is the one the
		   client knows */
		if (s->enabled_rev2 && !self && !told && ch->old_name != NULL &&
		    ch->name != NULL && sel->renamed_from == NULL)
			sel->renamed_from = xstrdup(ch->old_name);
		if (ch->name != NULL) {
			free(sel->name);
			sel->name = xstrdup(ch->name);
		}
		break;
	default:
		break;
	}
	if (s->notify != NULL)
		imap_notify_flush(s);
	else if (s->io == IMAP_IO_IDLE)
		imap_session_send_updates(s, true);
}

/* Removes the UIDs of the sorted list from the view, writing one
 * EXPUNGE per removed message with the sequence number it has at that
 * moment (RFC 3501 7.4.1: each EXPUNGE shifts the later ones). */
void
imap_selected_expunge_uids(struct imap_session *s, const uint32_t *uids,
    size_t n)
{
	struct imap_selected *sel = s->sel;
	struct evbuffer *out = imap_session_out(s);
	uint32_t w = 0, removed = 0;
	size_t j = 0;
	struct imap_seqset gone;

	imap_seqset_init(&gone);
	for (uint32_t i = 0; i < sel->count; i++) {
		uint32_t uid = sel->uids[i];

		while (j < n && uids[j] < uid)
			j++;
		if (j < n && uids[j] == uid) {
			if (sel->recent_count > 0 &&
			    imap_seqset_contains(&sel->recent, uid))
				sel->recent_count--;
			/* RFC 7162 3.2.10: with QRESYNC on, one VANISHED
			 * replaces the EXPUNGEs */
			if (s->enabled_qresync)
				imap_seqset_add(&gone, uid);
			else
				evbuffer_add_printf(out, "* %u EXPUNGE\r\n",
				    i + 1 - removed);
			removed++;
			continue;
		}
		sel->uids[w++] = uid;
	}
	sel->count = w;
	if (!imap_seqset_is_empty(&gone)) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_appends(&sb, "* VANISHED ");
		imap_seqset_format(&gone, &sb);
		strbuf_appends(&sb, "\r\n");
		imap_session_write_sb(s, &sb);
		strbuf_free(&sb);
	}
	imap_seqset_free(&gone);
}

void
imap_format_vanished_earlier(struct strbuf *sb,
    const struct store_uid_range *vanished, size_t n,
    const struct imap_seqset *filter)
{
	struct imap_seqset set;
	size_t j = 0;

	imap_seqset_init(&set);
	for (size_t i = 0; i < n; i++) {
		uint32_t lo = vanished[i].first, hi = vanished[i].last;

		if (filter == NULL) {
			imap_seqset_add_range(&set, lo, hi);
			continue;
		}
		/* both sorted: walk the filter along */
		while (j < filter->count && filter->ranges[j].hi < lo)
			j++;
		for (size_t k = j; k < filter->count &&
		    filter->ranges[k].lo <= hi; k++) {
			uint32_t a = filter->ranges[k].lo > lo ?
			    filter->ranges[k].lo : lo;
			uint32_t b = filter->ranges[k].hi < hi ?
			    filter->ranges[k].hi : hi;

			imap_seqset_add_range(&set, a, b);
		}
	}
	if (!imap_seqset_is_empty(&set)) {
		strbuf_appends(sb, "* VANISHED (EARLIER) ");
		imap_seqset_format(&set, sb);
		strbuf_appends(sb, "\r\n");
	}
	imap_seqset_free(&set);
}

void
imap_format_msg_flags(struct strbuf *sb, const struct store_flags *flags,
    const char *const *kw, size_t kw_count)
{
	const char *names[STORE_KEYWORDS_MAX];
	size_t n = 0;

	for (size_t i = 0; i < kw_count && i < STORE_KEYWORDS_MAX; i++)
		if (flags->keywords[i / 64] & (1ull << (i % 64)))
			names[n++] = kw[i];
	imap_format_flags(sb, flags->system & STORE_FLAGS_SYSTEM_ALL, names, n);
}

bool
imap_selected_is_recent(const struct imap_selected *sel, uint32_t uid)
{
	return sel != NULL && !sel->hide_recent && sel->recent_count > 0 &&
	    imap_seqset_contains(&sel->recent, uid);
}

void
imap_selected_format_flags(struct strbuf *sb, const struct imap_selected *sel,
    uint32_t uid, const struct store_flags *flags, const char *const *kw,
    size_t kw_count)
{
	const char *names[STORE_KEYWORDS_MAX];
	size_t n = 0;
	unsigned int sys = flags->system & STORE_FLAGS_SYSTEM_ALL;

	for (size_t i = 0; i < kw_count && i < STORE_KEYWORDS_MAX; i++)
		if (flags->keywords[i / 64] & (1ull << (i % 64)))
			names[n++] = kw[i];
	if (imap_selected_is_recent(sel, uid))
		sys |= IMAP_FLAG_RECENT;
	imap_format_flags(sb, sys, names, n);
}

void
imap_selected_find_recent(struct imap_session *s, struct imap_selected *sel,
    uint32_t uidnext)
{
	uint32_t first = imap_recent_first(s->server->recent, s->user_id,
	    sel->mailbox_id, uidnext);
	uint32_t lo = 0, hi = sel->count;

	/* the view is sorted: the recent ones are its tail */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (sel->uids[mid] < first)
			lo = mid + 1;
		else
			hi = mid;
	}
	sel->recent_count = sel->count - lo;
	if (sel->recent_count > 0)
		imap_seqset_add_range(&sel->recent, sel->uids[lo],
		    sel->uids[sel->count - 1]);
}

void
imap_session_enable_condstore(struct imap_session *s)
{
	if (s->enabled_condstore)
		return;
	s->enabled_condstore = true;
	if (s->sel != NULL)
		imap_session_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		    (unsigned long long)s->sel->highestmodseq);
}

static void
send_flag_updates(struct imap_session *s)
{
	struct imap_selected *sel = s->sel;
	struct imap_server *srv = s->server;
	struct store_read *r = NULL;
	const char *kw[STORE_KEYWORDS_MAX];
	size_t kwn = 0;
	const char *err;
	struct strbuf sb = STRBUF_INIT;

	u32_sort_unique(sel->flagged, &sel->flagged_count);
	if (store_read_begin(srv->store, &r, &err) != 0)
		goto out;
	if (store_mailbox_keywords(r, s->user_id, sel->mailbox_id, kw, &kwn,
	    &err) != 0)
		kwn = 0;
	imap_session_keywords_seen(s, kw, kwn);
	for (uint32_t i = 0; i < sel->flagged_count; i++) {
		uint32_t uid = sel->flagged[i];
		uint32_t seq = imap_selected_seq(sel, uid);
		struct store_msg m;

		if (seq == 0 || store_msg_get(r, s->user_id, sel->mailbox_id,
		    uid, &m, &err) != 0)
			continue;
		/* RFC 7162 3.1: once CONDSTORE is on, every unsolicited
		 * FETCH carries UID and MODSEQ */
		if (s->enabled_condstore)
			strbuf_appendf(&sb, "* %u FETCH (UID %u MODSEQ (%llu) "
			    "FLAGS ", seq, uid, (unsigned long long)m.modseq);
		else
			strbuf_appendf(&sb, "* %u FETCH (FLAGS ", seq);
		imap_selected_format_flags(&sb, sel, uid, &m.flags, kw, kwn);
		strbuf_appends(&sb, ")\r\n");
	}
	store_read_end(&r);
	imap_session_write_sb(s, &sb);
out:
	sel->flagged_count = 0;
	strbuf_free(&sb);
}

static void
send_new(struct imap_session *s)
{
	struct imap_selected *sel = s->sel;
	struct store_read *r = NULL;
	const char *err;
	uint32_t before = sel->count, recent_before = sel->recent_count;
	uint32_t *uids = NULL;
	size_t n = 0;
	/* the new messages above this boundary are \Recent here: this is
	 * the first session told of them (imap-recent.h) */
	uint32_t first_recent = imap_recent_first(s->server->recent,
	    s->user_id, sel->mailbox_id, UINT32_MAX);

	sel->new_pending = false;
	if (store_read_begin(s->server->store, &r, &err) != 0)
		return;
	/* Only UIDs above what the view has: O(new), not O(mailbox). */
	if (sel->max_uid < UINT32_MAX) {
		struct store_uid_range range = { sel->max_uid + 1, UINT32_MAX };
		struct store_msg *msgs = NULL;

		if (store_msg_list(r, s->user_id, sel->mailbox_id, &range, 1,
		    &msgs, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++) {
				imap_selected_append_uid(sel, msgs[i].uid);
				if (msgs[i].uid < first_recent)
					continue;
				imap_seqset_add(&sel->recent, msgs[i].uid);
				sel->recent_count++;
			}
			if (n > 0 && !sel->readonly &&
			    msgs[n - 1].uid >= first_recent)
				imap_recent_claim(s->server->recent,
				    s->user_id, sel->mailbox_id,
				    msgs[n - 1].uid + 1);
		}
		free(msgs);
	}
	store_read_end(&r);
	free(uids);
	if (sel->count != before)
		imap_session_printf(s, "* %u EXISTS\r\n", sel->count);
	/* RFC 3501 7.3.2, as Dovecot: RECENT with EXISTS when it changed */
	if (sel->recent_count != recent_before && !sel->hide_recent)
		imap_session_printf(s, "* %u RECENT\r\n", sel->recent_count);
}

void
imap_session_bye_deleted(struct imap_session *s)
{
	if (s->closing)
		return;
	imap_notify_write_queue(s);
	log_info("imap session=%u event=selected_mailbox_deleted "
	    "mailbox_id=%u", s->id, s->sel != NULL ? s->sel->mailbox_id : 0);
	imap_session_printf(s, "* BYE Selected mailbox was deleted, have to "
	    "disconnect\r\n");
	imap_session_close(s);
}

void
imap_session_send_updates(struct imap_session *s, bool allow_expunge)
{
	struct imap_selected *sel = s->sel;

	if (sel == NULL)
		return;
	if (sel->deleted) {
		/* BYE is allowed at any time, even where EXPUNGE is not */
		imap_session_bye_deleted(s);
		return;
	}
	if (sel->renamed_from != NULL) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_appends(&sb, "* LIST () \"/\" ");
		imap_cmd_format_mailbox(&sb, sel->name, s->enabled_utf8);
		strbuf_appends(&sb, " (\"OLDNAME\" (");
		imap_cmd_format_mailbox(&sb, sel->renamed_from,
		    s->enabled_utf8);
		strbuf_appends(&sb, "))\r\n");
		imap_session_write_sb(s, &sb);
		strbuf_free(&sb);
		free(sel->renamed_from);
		sel->renamed_from = NULL;
	}
	imap_session_send_keyword_updates(s);
	if (allow_expunge && sel->expunged_count > 0) {
		u32_sort_unique(sel->expunged, &sel->expunged_count);
		imap_selected_expunge_uids(s, sel->expunged,
		    sel->expunged_count);
		sel->expunged_count = 0;
	}
	if (sel->new_pending)
		send_new(s);
	if (sel->flagged_count > 0)
		send_flag_updates(s);
}
