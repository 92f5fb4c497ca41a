/* imap-cmd-select — SELECT, EXAMINE (with CONDSTORE / QRESYNC), CLOSE,
 * UNSELECT, EXPUNGE. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-commands.h"
#include "imap-fetch.h"
#include "imap-format.h"
#include "imap-msgset.h"
#include "imap-parse.h"
#include "imap-recent.h"
#include "imap-seqset.h"
#include "imap-session.h"
#include "imap-sync.h"
#include "imap-utf7.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
/* True when the selected mailbox has a message flagged \Deleted (the
 * store keeps the count): EXPUNGE and CLOSE skip the write otherwise. */
static bool
selected_has_deleted(struct imap_session *s)
{
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	const char *err;
	bool yes = true;

	if (store_read_begin(s->server->store, &r, &err) != 0)
		return true;
	if (store_mailbox_get(r, s->user_id, s->sel->mailbox_id, &info,
	    &err) == 0)
		yes = info.deleted > 0;
	store_read_end(&r);
	return yes;
}

/* ---- SELECT / EXAMINE ---- */

struct select_scan {
	struct imap_selected *sel;
	uint32_t first_unseen;
	/* SELECT (QRESYNC): the messages above since, collected in the
	 * same walk over the mailbox (ch.changed, ascending UID) */
	bool want_changed;
	uint64_t since;
	struct store_changes ch;
	size_t cap;
};

static int
select_scan_cb(void *ctx, const struct store_msg *m)
{
	struct select_scan *sc = ctx;
	struct store_flag_change *fc;

	imap_selected_append_uid(sc->sel, m->uid);
	if (sc->first_unseen == 0 && !(m->flags.system & STORE_FLAG_SEEN))
		sc->first_unseen = sc->sel->count;
	if (sc->want_changed && m->modseq > sc->since) {
		if (sc->ch.changed_count == sc->cap) {
			sc->cap = sc->cap == 0 ? 64 : sc->cap * 2;
			sc->ch.changed = xreallocarray(sc->ch.changed,
			    sc->cap, sizeof(*sc->ch.changed));
		}
		fc = &sc->ch.changed[sc->ch.changed_count++];
		fc->uid = m->uid;
		fc->flags = m->flags;
		fc->modseq = m->modseq;
	}
	return 0;
}

/* SELECT/EXAMINE parameters (RFC 7162 3.1.8, 3.2.5). */
struct select_params {
	bool condstore;
	bool qresync;
	uint32_t uidvalidity;
	uint64_t modseq;
	bool has_known;
	struct imap_seqset_spec known;	/* known-uids */
};

/* The elements of a sequence-set as sent, strictly ascending: every
 * "a" or "a:b" has a <= b and starts above the previous one (the known
 * sets of seq-match, RFC 7162 3.2.5.2). s is already valid syntax. */
static bool
seqset_text_ascending(const char *s)
{
	uint64_t prev = 0;

	while (*s != '\0') {
		char *end;
		unsigned long lo = strtoul(s, &end, 10), hi = lo;

		if (*end == ':')
			hi = strtoul(end + 1, &end, 10);
		if (lo > hi || lo <= prev)
			return false;
		prev = hi;
		s = *end == ',' ? end + 1 : end;
	}
	return true;
}

/*
 * seq-match-data = "(" known-sequence-set SP known-uid-set ")" (RFC 7162
 * 3.2.5.2): two sets without "*", each in ascending order, with as many
 * numbers in one as in the other (the n-th sequence number is paired with
 * the n-th UID). It is checked and then not used: it lets a server whose
 * expunge history is incomplete narrow VANISHED (EARLIER) to the UIDs above
 * the last pair that still matches. The store keeps the whole history, so
 * the VANISHED (EARLIER) it gives is already exact (every UID of
 * known-uids expunged after the client's modseq); a matching pair can
 * only confirm it, and a pair that matches by accident would hide real
 * expunges (docs/sync.md).
 */
static bool
seq_match_valid(const struct imap_arg *sm)
{
	const struct imap_arg *l;
	struct imap_seqset_spec sets[2];
	const char *str[2], *err;
	size_t n;
	bool ok = false;

	memset(sets, 0, sizeof(sets));
	if (!imap_arg_get_list(sm, &l, &n) || n != 2 ||
	    !imap_arg_get_atom(&l[0], &str[0]) ||
	    !imap_arg_get_atom(&l[1], &str[1]))
		return false;
	for (size_t i = 0; i < 2; i++)
		if (imap_seqset_parse(str[i], strlen(str[i]), &sets[i],
		    &err) != 0 || sets[i].has_star ||
		    !seqset_text_ascending(str[i]))
			goto out;
	ok = imap_seqset_count(&sets[0].fixed) ==
	    imap_seqset_count(&sets[1].fixed);
out:
	imap_seqset_spec_free(&sets[0]);
	imap_seqset_spec_free(&sets[1]);
	return ok;
}

/* "(CONDSTORE)" or "(QRESYNC (uidvalidity modseq [known-uids
 * [(seq-match)]]))"; the seq-match is checked but not needed: the store
 * keeps the whole vanished history (seq_match_valid). */
static int
parse_select_params(const struct imap_arg *arg, struct select_params *p)
{
	const struct imap_arg *l, *q, *sm;
	size_t n, qn;
	const char *str, *err;

	if (!imap_arg_get_list(arg, &l, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&l[i], "CONDSTORE")) {
			p->condstore = true;
			continue;
		}
		if (!imap_arg_atom_equals(&l[i], "QRESYNC") || p->qresync ||
		    i + 1 >= n || !imap_arg_get_list(&l[i + 1], &q, &qn) ||
		    qn < 2 || qn > 4 ||
		    !imap_arg_get_number(&q[0], &p->uidvalidity) ||
		    p->uidvalidity == 0 ||
		    !imap_arg_get_number64(&q[1], &p->modseq) ||
		    p->modseq == 0)
			return -1;
		if (qn >= 3) {
			if (q[2].type == IMAP_ARG_LIST && qn == 3) {
				sm = &q[2];	/* seq-match without known-uids */
			} else {
				if (!imap_arg_get_atom(&q[2], &str) ||
				    imap_seqset_parse(str, strlen(str),
				    &p->known, &err) != 0)
					return -1;
				p->has_known = true;
				sm = qn == 4 ? &q[3] : NULL;
			}
			if (sm != NULL && !seq_match_valid(sm))
				return -1;
		}
		p->qresync = true;
		i++;
	}
	return 0;
}

/* The QRESYNC answer (RFC 7162 3.2.5.1): VANISHED (EARLIER) for the known
 * UIDs expunged after the client's modseq (read from snapshot r), FETCH
 * for the messages changed after it (changed: what the SELECT walk
 * collected; taken over and freed here). Written to sb. */
static int
select_qresync(struct imap_session *s, struct imap_selected *sel,
    struct store_read *r, const struct select_params *p,
    struct store_changes *changed, const char *const *kw, size_t kwn,
    uint32_t uidnext, struct strbuf *sb, const char **error_r)
{
	struct store_changes ch;
	struct imap_seqset known;

	if (store_vanished_since(r, s->user_id, sel->mailbox_id, p->modseq,
	    &ch, error_r) != 0)
		return -1;
	ch.changed = changed->changed;
	ch.changed_count = changed->changed_count;
	changed->changed = NULL;
	changed->changed_count = 0;
	imap_seqset_init(&known);
	if (p->has_known)
		imap_seqset_resolve(&p->known, uidnext > 0 ? uidnext - 1 : 0,
		    &known);
	imap_format_vanished_earlier(sb, ch.vanished, ch.vanished_count,
	    p->has_known ? &known : NULL);
	for (size_t i = 0; i < ch.changed_count; i++) {
		const struct store_flag_change *fc = &ch.changed[i];
		uint32_t seq = imap_selected_seq(sel, fc->uid);

		/* RFC 7162 3.2.5.1: with known-uids, changes of those UIDs
		 * only */
		if (seq == 0 || (p->has_known &&
		    !imap_seqset_contains(&known, fc->uid)))
			continue;
		strbuf_appendf(sb, "* %u FETCH (UID %u FLAGS ", seq, fc->uid);
		imap_selected_format_flags(sb, sel, fc->uid, &fc->flags, kw,
		    kwn);
		strbuf_appendf(sb, " MODSEQ (%llu))\r\n",
		    (unsigned long long)fc->modseq);
	}
	imap_seqset_free(&known);
	store_changes_free(&ch);
	return 0;
}

struct children_scan {
	const char *name;
	size_t len;
	bool found;
};

static int
children_cb(void *ctx, const struct store_mailbox_info *info)
{
	struct children_scan *c = ctx;

	if (strncmp(info->name, c->name, c->len) == 0 &&
	    info->name[c->len] == '/') {
		c->found = true;
		return 1;	/* enough */
	}
	return 0;
}

/* IMAP4rev2's LIST in SELECT's answer carries the child attribute
 * (RFC 9051 6.3.2: the attributes must be accurate). */
static void
rev2_has_children(struct imap_session *s, struct store_read *r,
    const char *name, bool *children_r)
{
	struct children_scan c = { name, strlen(name), false };

	(void)store_mailbox_foreach(r, s->user_id, children_cb, &c, NULL);
	*children_r = c.found;
}
static void
select_run(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool readonly,
    const struct select_params *params)
{
	const char *name, *err;
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	struct imap_selected *sel;
	struct select_scan sc;
	const char *kw[STORE_KEYWORDS_MAX];
	size_t kwn = 0;
	struct strbuf sb = STRBUF_INIT;
	struct strbuf qsb = STRBUF_INIT;
	bool children = false;
	int rc;

	/* RFC 3501 6.3.1: a SELECT deselects first, even when it fails. */
	if (s->sel != NULL) {
		imap_session_unselect(s);
		/* RFC 7162 3.2.11: the boundary between the two mailboxes'
		 * responses */
		imap_session_printf(s, "* OK [CLOSED] Previous mailbox is "
		    "now closed\r\n");
	}
	if ((name = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (imap_cmd_mailbox_open(s, tag, "SELECT", name, &r, &info) < 0)
		return;
	sel = xcalloc(1, sizeof(*sel));
	sel->mailbox_id = info.id;
	sel->name = xstrdup(info.name);
	sel->readonly = readonly;
	sel->uidvalidity = info.uidvalidity;
	sel->highestmodseq = info.highestmodseq;
	sel->hide_recent = s->enabled_rev2;
	if (info.messages > 0) {
		sel->cap = info.messages;
		sel->uids = xreallocarray(NULL, sel->cap, sizeof(uint32_t));
	}
	memset(&sc, 0, sizeof(sc));
	sc.sel = sel;
	sc.want_changed = params->qresync &&
	    params->uidvalidity == info.uidvalidity &&
	    params->modseq < info.highestmodseq;
	sc.since = params->modseq;
	rc = store_msg_foreach(r, s->user_id, info.id, 1, UINT32_MAX,
	    select_scan_cb, &sc, &err);
	if (rc == 0) {
		/* before the QRESYNC FETCHes: their FLAGS show \Recent */
		imap_selected_find_recent(s, sel, info.uidnext);
		rc = store_mailbox_keywords(r, s->user_id, info.id, kw, &kwn,
		    &err);
	}
	if (rc == 0 && params->qresync &&
	    params->uidvalidity == info.uidvalidity)
		rc = select_qresync(s, sel, r, params, &sc.ch, kw, kwn,
		    info.uidnext, &qsb, &err);
	store_changes_free(&sc.ch);
	if (rc != 0) {
		strbuf_free(&qsb);
		store_read_end(&r);
		imap_seqset_free(&sel->recent);
		free(sel->uids);
		free(sel->name);
		free(sel);
		imap_cmd_store_failed(s, tag, "SELECT",
		    store_last_error(s->server->store), err);
		return;
	}
	/* The view knows everything below UIDNEXT as of this snapshot. */
	if (info.uidnext > 0 && info.uidnext - 1 > sel->max_uid)
		sel->max_uid = info.uidnext - 1;
	imap_format_mailbox_flags(&sb, kw, kwn, readonly);
	sel->kw_count = (uint32_t)kwn;
	if (s->enabled_rev2)
		rev2_has_children(s, r, sel->name, &children);
	store_read_end(&r);
	strbuf_appendf(&sb, "* %u EXISTS\r\n", sel->count);
	if (s->enabled_rev2) {
		/* RFC 9051 6.3.2: LIST instead of RECENT and [UNSEEN] */
		const char *use = store_role_name(info.role);

		strbuf_appendf(&sb, "* LIST (%s%s%s) \"/\" ", children ?
		    "\\HasChildren" : "\\HasNoChildren", use != NULL ? " " : "",
		    use != NULL ? use : "");
		imap_cmd_format_mailbox(&sb, sel->name, true);
		strbuf_appends(&sb, "\r\n");
	} else {
		strbuf_appendf(&sb, "* %u RECENT\r\n", sel->recent_count);
	}
	if (sc.first_unseen != 0 && !s->enabled_rev2)
		strbuf_appendf(&sb, "* OK [UNSEEN %u] First unseen\r\n",
		    sc.first_unseen);
	strbuf_appendf(&sb, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
	    "* OK [UIDNEXT %u] Predicted next UID\r\n"
	    "* OK [HIGHESTMODSEQ %llu] Highest\r\n"
	    "* OK [MAILBOXID (F%u)] Ok\r\n", sel->uidvalidity,
	    info.uidnext, (unsigned long long)sel->highestmodseq, info.id);
	if (qsb.len > 0)
		strbuf_append(&sb, qsb.data, qsb.len);
	strbuf_free(&qsb);
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	/* RFC 3501 2.3.2: a read-write session claims what it saw as
	 * \Recent; EXAMINE leaves it for the next SELECT */
	if (!readonly)
		imap_recent_claim(s->server->recent, s->user_id, info.id,
		    info.uidnext);
	s->sel = sel;
	s->state = IMAP_STATE_SELECTED;
	if (params->condstore || params->qresync)
		s->enabled_condstore = true;
	imap_session_tagged(s, tag, "OK", "[%s] %s completed",
	    readonly ? "READ-ONLY" : "READ-WRITE",
	    readonly ? "EXAMINE" : "SELECT");
}

static void
select_common(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool readonly)
{
	struct select_params params;

	memset(&params, 0, sizeof(params));
	if (argc != 1 && argc != 2) {
		imap_session_tagged(s, tag, "BAD", "%s needs a mailbox name",
		    readonly ? "EXAMINE" : "SELECT");
	} else if (argc == 2 && parse_select_params(&args[1], &params) != 0) {
		imap_session_tagged(s, tag, "BAD", "Invalid %s parameters",
		    readonly ? "EXAMINE" : "SELECT");
	} else if (params.qresync && !s->enabled_qresync) {
		/* RFC 7162 3.2.5: QRESYNC needs ENABLE QRESYNC first */
		imap_session_tagged(s, tag, "BAD", "QRESYNC is not enabled");
	} else {
		select_run(s, tag, args, argc, readonly, &params);
	}
	imap_seqset_spec_free(&params.known);
}

void
imap_cmd_select(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	select_common(s, tag, args, argc, false);
}

void
imap_cmd_examine(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	select_common(s, tag, args, argc, true);
}

/* EXPUNGE, UID EXPUNGE and CLOSE's silent expunge, on the writer. */
struct expunge_job {
	struct imap_job job;
	uint32_t mailbox_id;
	struct store_uid_range *ranges;	/* NULL: every \Deleted message */
	size_t nranges;
	uint32_t *uids;			/* what was expunged */
	size_t n;
};

static void
expunge_job_free(struct imap_job *job)
{
	struct expunge_job *j = (struct expunge_job *)job;

	free(j->ranges);
	free(j->uids);
	free(j);
}

static int
expunge_job_apply(struct store *store, void *ctx, const char **error_r)
{
	struct expunge_job *j = ctx;

	return store_expunge(store, j->job.user_id, j->mailbox_id, j->ranges,
	    j->nranges, true, &j->uids, &j->n, error_r);
}

static struct expunge_job *
expunge_job_new(struct imap_session *s, const struct store_uid_range *ranges,
    size_t nranges,
    void (*finish)(struct imap_session *, const char *, struct imap_job *))
{
	struct expunge_job *j = xcalloc(1, sizeof(*j));

	j->job.free = expunge_job_free;
	j->job.finish = finish;
	j->mailbox_id = s->sel->mailbox_id;
	if (nranges > 0)
		j->ranges = xmemdup(ranges, nranges * sizeof(*ranges));
	j->nranges = nranges;
	return j;
}

static void
close_finish(struct imap_session *s, const char *tag, struct imap_job *job)
{
	if (job != NULL && job->rc != 0)
		log_warn("imap session=%u event=close_expunge_failed "
		    "error=\"%s\"", s->id, job->error);
	imap_session_unselect(s);
	imap_session_tagged(s, tag, "OK", "CLOSE completed");
}

void
imap_cmd_close(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "CLOSE takes no arguments");
		return;
	}
	/* a mailbox deleted meanwhile has nothing left to expunge */
	if (!s->sel->readonly && !s->sel->deleted && selected_has_deleted(s)) {
		/* CLOSE expunges silently (RFC 3501 6.4.2): the view is
		 * dropped when the expunge is durable */
		imap_session_submit_write(s, tag,
		    &expunge_job_new(s, NULL, 0, close_finish)->job, 0,
		    expunge_job_apply);
		return;
	}
	close_finish(s, tag, NULL);
}

void
imap_cmd_unselect(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "UNSELECT takes no "
		    "arguments");
		return;
	}
	imap_session_unselect(s);
	imap_session_tagged(s, tag, "OK", "UNSELECT completed");
}

static void
expunge_finish(struct imap_session *s, const char *tag, struct imap_job *job)
{
	struct expunge_job *j = (struct expunge_job *)job;

	if (job->rc != 0) {
		imap_cmd_store_failed(s, tag, "EXPUNGE", job->cls, job->error);
		return;
	}
	imap_selected_expunge_uids(s, j->uids, j->n);
	if (j->n > 0 && s->enabled_qresync)
		/* RFC 7162 3.2.7, 3.2.9: the new HIGHESTMODSEQ, set by the
		 * change feed's report of this expunge (imap-sync.c), which
		 * comes before this, after the commit that holds it */
		imap_session_tagged(s, tag, "OK", "[HIGHESTMODSEQ %llu] "
		    "EXPUNGE completed",
		    (unsigned long long)s->sel->highestmodseq);
	else
		imap_session_tagged(s, tag, "OK", "EXPUNGE completed");
}

void
imap_cmd_expunge(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct store_uid_range *ranges = NULL;
	size_t nranges = 0;
	const char *err;

	if (argc != (uid ? 1u : 0u)) {
		imap_session_tagged(s, tag, "BAD", uid ? "UID EXPUNGE needs a "
		    "UID set" : "EXPUNGE takes no arguments");
		return;
	}
	if (s->sel->readonly) {
		imap_session_tagged(s, tag, "NO", "[READ-ONLY] Mailbox is "
		    "read-only");
		return;
	}
	if (uid) {
		struct imap_msgset set;

		if (imap_msgset_parse(s, &args[0], true, &set, &err) != 0) {
			imap_session_tagged(s, tag, "BAD", "%s", err);
			return;
		}
		imap_msgset_ranges(s, &set, &ranges, &nranges);
		if (nranges == 0) {
			imap_session_tagged(s, tag, "OK", "EXPUNGE completed");
			return;
		}
	}
	if (!selected_has_deleted(s)) {
		imap_session_tagged(s, tag, "OK", "EXPUNGE completed");
		return;
	}
	imap_session_submit_write(s, tag,
	    &expunge_job_new(s, ranges, nranges, expunge_finish)->job, 0,
	    expunge_job_apply);
}

