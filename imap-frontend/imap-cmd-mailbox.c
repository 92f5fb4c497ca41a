/* imap-cmd-mailbox — SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
 * UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND, CLOSE, UNSELECT, EXPUNGE. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-commands.h"
#include "imap-fetch.h"
#include "imap-format.h"
#include "imap-msgset.h"
#include "imap-parse.h"
#include "imap-seqset.h"
#include "imap-session.h"
#include "imap-sync.h"
#include "imap-utf7.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Flags in one APPEND (system flags plus keywords). */
#define IMAP_APPEND_FLAGS_MAX (STORE_KEYWORDS_MAX + 8)

/* The store name of a mailbox argument, in the scratch arena, or NULL
 * after answering the command (BAD / NO). */
static const char *
mailbox_arg(struct imap_session *s, const char *tag,
    const struct imap_arg *arg)
{
	const char *wire, *err;
	size_t len;
	struct strbuf sb = STRBUF_INIT;
	char *name;

	if (!imap_arg_get_astring(arg, &wire, &len)) {
		imap_session_tagged(s, tag, "BAD", "Mailbox name expected");
		return NULL;
	}
	if (imap_mailbox_name_from_wire(wire, len, &sb, &err) != 0) {
		imap_session_tagged(s, tag, "NO", "Invalid mailbox name: %s",
		    err);
		strbuf_free(&sb);
		return NULL;
	}
	name = arena_strndup(s->server->scratch, sb.data, sb.len);
	strbuf_free(&sb);
	return name;
}

/* Appends the wire form (mUTF-7 astring) of a UTF-8 store name. */
static void
format_mailbox(struct strbuf *sb, const char *name)
{
	struct strbuf w = STRBUF_INIT;
	const char *err;

	if (imap_utf8_to_utf7(name, strlen(name), &w, &err) != 0) {
		strbuf_reset(&w);
		strbuf_appends(&w, name);
	}
	imap_format_astring(sb, w.data != NULL ? w.data : "", w.len);
	strbuf_free(&w);
}

static void
store_failed(struct imap_session *s, const char *tag, const char *what,
    const char *err)
{
	enum store_error e = store_last_error(s->server->store);

	switch (e) {
	case STORE_ERR_NOTFOUND:
		imap_session_tagged(s, tag, "NO", "[NONEXISTENT] %s: no such "
		    "mailbox", what);
		break;
	case STORE_ERR_EXISTS:
		imap_session_tagged(s, tag, "NO", "[ALREADYEXISTS] %s: "
		    "mailbox already exists", what);
		break;
	case STORE_ERR_LIMIT:
		imap_session_tagged(s, tag, "NO", "[LIMIT] %s: %s", what,
		    err != NULL ? err : "limit reached");
		break;
	case STORE_ERR_INVALID:
		imap_session_tagged(s, tag, "NO", "[CANNOT] %s: %s", what,
		    err != NULL ? err : "not possible");
		break;
	case STORE_ERR_NOSPACE:
		imap_session_tagged(s, tag, "NO", "[OVERQUOTA] %s: the store "
		    "is full", what);
		log_error("imap session=%u event=store_error op=%s error=\"%s\"",
		    s->id, what, err != NULL ? err : "");
		break;
	default:
		imap_session_tagged(s, tag, "NO", "[SERVERBUG] %s failed",
		    what);
		log_error("imap session=%u event=store_error op=%s error=\"%s\"",
		    s->id, what, err != NULL ? err : "");
		break;
	}
}

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
};

static int
select_scan_cb(void *ctx, const struct store_msg *m)
{
	struct select_scan *sc = ctx;

	imap_selected_append_uid(sc->sel, m->uid);
	if (sc->first_unseen == 0 && !(m->flags.system & STORE_FLAG_SEEN))
		sc->first_unseen = sc->sel->count;
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

/* "(CONDSTORE)" or "(QRESYNC (uidvalidity modseq [known-uids
 * [(seq-match)]]))"; the seq-match is checked but not needed: the store
 * keeps the whole vanished history. */
static int
parse_select_params(const struct imap_arg *arg, struct select_params *p)
{
	const struct imap_arg *l, *q, *sm, *sml;
	size_t n, qn, smn;
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
			if (sm != NULL && (!imap_arg_get_list(sm, &sml, &smn) ||
			    smn != 2 || !imap_arg_get_atom(&sml[0], &str) ||
			    !imap_arg_get_atom(&sml[1], &str)))
				return -1;
		}
		p->qresync = true;
		i++;
	}
	return 0;
}

/* The QRESYNC answer (RFC 7162 3.2.5.1): VANISHED (EARLIER) for the known
 * UIDs expunged after the client's modseq, FETCH for the messages changed
 * after it. Written to sb from snapshot r. */
static int
select_qresync(struct imap_session *s, struct imap_selected *sel,
    struct store_read *r, const struct select_params *p,
    const char *const *kw, size_t kwn, uint32_t uidnext, struct strbuf *sb,
    const char **error_r)
{
	struct store_changes ch;
	struct imap_seqset known;

	if (store_changes_since(r, s->user_id, sel->mailbox_id, p->modseq, &ch,
	    error_r) != 0)
		return -1;
	imap_seqset_init(&known);
	if (p->has_known)
		imap_seqset_resolve(&p->known, uidnext > 0 ? uidnext - 1 : 0,
		    &known);
	imap_format_vanished_earlier(sb, ch.vanished, ch.vanished_count,
	    p->has_known ? &known : NULL);
	for (size_t i = 0; i < ch.changed_count; i++) {
		const struct store_flag_change *fc = &ch.changed[i];
		uint32_t seq = imap_selected_seq(sel, fc->uid);

		if (seq == 0)
			continue;
		strbuf_appendf(sb, "* %u FETCH (UID %u FLAGS ", seq, fc->uid);
		imap_format_msg_flags(sb, &fc->flags, kw, kwn);
		strbuf_appendf(sb, " MODSEQ (%llu))\r\n",
		    (unsigned long long)fc->modseq);
	}
	imap_seqset_free(&known);
	store_changes_free(&ch);
	return 0;
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
	int rc;

	/* RFC 3501 6.3.1: a SELECT deselects first, even when it fails. */
	if (s->sel != NULL) {
		imap_session_unselect(s);
		/* RFC 7162 3.2.11: the boundary between the two mailboxes'
		 * responses */
		imap_session_printf(s, "* OK [CLOSED] Previous mailbox is "
		    "now closed\r\n");
	}
	if ((name = mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (store_read_begin(s->server->store, &r, &err) != 0) {
		store_failed(s, tag, "SELECT", err);
		return;
	}
	rc = store_mailbox_lookup(r, s->user_id, name, &info, &err);
	if (rc != 0) {
		store_read_end(&r);
		if (rc == STORE_NOT_FOUND)
			imap_session_tagged(s, tag, "NO", "[NONEXISTENT] "
			    "Mailbox does not exist");
		else
			store_failed(s, tag, "SELECT", err);
		return;
	}
	sel = xcalloc(1, sizeof(*sel));
	sel->mailbox_id = info.id;
	sel->name = xstrdup(info.name);
	sel->readonly = readonly;
	sel->uidvalidity = info.uidvalidity;
	sel->highestmodseq = info.highestmodseq;
	if (info.messages > 0) {
		sel->cap = info.messages;
		sel->uids = xreallocarray(NULL, sel->cap, sizeof(uint32_t));
	}
	sc.sel = sel;
	sc.first_unseen = 0;
	if (store_msg_foreach(r, s->user_id, info.id, 1, UINT32_MAX,
	    select_scan_cb, &sc, &err) != 0 ||
	    store_mailbox_keywords(r, s->user_id, info.id, kw, &kwn, &err) != 0 ||
	    (params->qresync && params->uidvalidity == info.uidvalidity &&
	    select_qresync(s, sel, r, params, kw, kwn, info.uidnext, &qsb,
	    &err) != 0)) {
		strbuf_free(&qsb);
		store_read_end(&r);
		free(sel->uids);
		free(sel->name);
		free(sel);
		store_failed(s, tag, "SELECT", err);
		return;
	}
	/* The view knows everything below UIDNEXT as of this snapshot. */
	if (info.uidnext > 0 && info.uidnext - 1 > sel->max_uid)
		sel->max_uid = info.uidnext - 1;
	strbuf_appends(&sb, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen "
	    "\\Draft");
	for (size_t i = 0; i < kwn; i++) {
		strbuf_appendc(&sb, ' ');
		strbuf_appends(&sb, kw[i]);
	}
	strbuf_appends(&sb, ")\r\n");
	if (readonly) {
		strbuf_appends(&sb, "* OK [PERMANENTFLAGS ()] Read-only "
		    "mailbox\r\n");
	} else {
		strbuf_appends(&sb, "* OK [PERMANENTFLAGS (\\Answered "
		    "\\Flagged \\Deleted \\Seen \\Draft");
		for (size_t i = 0; i < kwn; i++) {
			strbuf_appendc(&sb, ' ');
			strbuf_appends(&sb, kw[i]);
		}
		strbuf_appends(&sb, " \\*)] Flags permitted\r\n");
	}
	store_read_end(&r);
	strbuf_appendf(&sb, "* %u EXISTS\r\n* 0 RECENT\r\n", sel->count);
	if (sc.first_unseen != 0)
		strbuf_appendf(&sb, "* OK [UNSEEN %u] First unseen\r\n",
		    sc.first_unseen);
	strbuf_appendf(&sb, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
	    "* OK [UIDNEXT %u] Predicted next UID\r\n"
	    "* OK [HIGHESTMODSEQ %llu] Highest\r\n", sel->uidvalidity,
	    info.uidnext, (unsigned long long)sel->highestmodseq);
	if (qsb.len > 0)
		strbuf_append(&sb, qsb.data, qsb.len);
	strbuf_free(&qsb);
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
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

void
imap_cmd_close(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *err;
	uint32_t *uids = NULL;
	size_t n = 0;

	if (argc != 0) {
		imap_session_tagged(s, tag, "BAD", "CLOSE takes no arguments");
		return;
	}
	if (!s->sel->readonly && selected_has_deleted(s)) {
		s->server->actor = s;
		/* CLOSE expunges silently (RFC 3501 6.4.2). The UID list is
		 * asked for and freed here: the store allocates it anyway. */
		if (store_expunge(s->server->store, s->user_id,
		    s->sel->mailbox_id, NULL, 0, true, &uids, &n, &err) != 0)
			log_warn("imap session=%u event=close_expunge_failed "
			    "error=\"%s\"", s->id, err);
		free(uids);
		s->server->actor = NULL;
	}
	imap_session_unselect(s);
	imap_session_tagged(s, tag, "OK", "CLOSE completed");
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

void
imap_cmd_expunge(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct store_uid_range *ranges = NULL;
	size_t nranges = 0;
	uint32_t *uids = NULL;
	size_t n = 0;
	const char *err;
	int rc;

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
	s->server->actor = s;
	rc = store_expunge(s->server->store, s->user_id, s->sel->mailbox_id,
	    ranges, nranges, true, &uids, &n, &err);
	s->server->actor = NULL;
	if (rc != 0) {
		store_failed(s, tag, "EXPUNGE", err);
		return;
	}
	imap_selected_expunge_uids(s, uids, n);
	free(uids);
	imap_session_tagged(s, tag, "OK", "EXPUNGE completed");
}

/* ---- CREATE / DELETE / RENAME / SUBSCRIBE ---- */

void
imap_cmd_create(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *name, *err;
	size_t len;
	char *n;

	if (argc < 1 || argc > 2) {
		imap_session_tagged(s, tag, "BAD", "CREATE needs a mailbox "
		    "name");
		return;
	}
	if ((name = mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	/* RFC 3501: a trailing delimiter only says children may follow. */
	len = strlen(name);
	n = (char *)name;
	if (len > 1 && n[len - 1] == '/')
		n[len - 1] = '\0';
	if (strcmp(n, "INBOX") == 0) {
		imap_session_tagged(s, tag, "NO", "[ALREADYEXISTS] INBOX "
		    "always exists");
		return;
	}
	if (store_mailbox_create(s->server->store, s->user_id, n,
	    STORE_ROLE_NONE, NULL, &err) != 0) {
		store_failed(s, tag, "CREATE", err);
		return;
	}
	imap_session_tagged(s, tag, "OK", "CREATE completed");
}

void
imap_cmd_delete(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *name, *err;

	if (argc != 1) {
		imap_session_tagged(s, tag, "BAD", "DELETE needs a mailbox "
		    "name");
		return;
	}
	if ((name = mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (strcmp(name, "INBOX") == 0) {
		imap_session_tagged(s, tag, "NO", "[CANNOT] INBOX cannot be "
		    "deleted");
		return;
	}
	if (s->sel != NULL && strcmp(s->sel->name, name) == 0) {
		/* Deleting the selected mailbox: deselect first (Dovecot
		 * does the same), so this session gets no BYE. */
		imap_session_unselect(s);
	}
	if (store_mailbox_delete(s->server->store, s->user_id, name,
	    &err) != 0) {
		store_failed(s, tag, "DELETE", err);
		return;
	}
	imap_session_tagged(s, tag, "OK", "DELETE completed");
}

void
imap_cmd_rename(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *from, *to, *err;

	if (argc != 2) {
		imap_session_tagged(s, tag, "BAD", "RENAME needs two mailbox "
		    "names");
		return;
	}
	if ((from = mailbox_arg(s, tag, &args[0])) == NULL ||
	    (to = mailbox_arg(s, tag, &args[1])) == NULL)
		return;
	if (store_mailbox_rename(s->server->store, s->user_id, from, to,
	    &err) != 0) {
		store_failed(s, tag, "RENAME", err);
		return;
	}
	imap_session_tagged(s, tag, "OK", "RENAME completed");
}

static void
subscribe_common(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool sub)
{
	const char *name, *err;

	if (argc != 1) {
		imap_session_tagged(s, tag, "BAD", "Mailbox name expected");
		return;
	}
	if ((name = mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (store_mailbox_subscribe(s->server->store, s->user_id, name, sub,
	    &err) != 0) {
		store_failed(s, tag, sub ? "SUBSCRIBE" : "UNSUBSCRIBE", err);
		return;
	}
	imap_session_tagged(s, tag, "OK", "%s completed",
	    sub ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

void
imap_cmd_subscribe(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	subscribe_common(s, tag, args, argc, true);
}

void
imap_cmd_unsubscribe(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	subscribe_common(s, tag, args, argc, false);
}

/* ---- STATUS items (STATUS and LIST-STATUS) ---- */

/* "* STATUS name (items...)\r\n" for info; -1 on an unknown item (sb
 * then holds a partial line the caller drops). */
static int
status_format(struct imap_session *s, struct strbuf *sb,
    const struct store_mailbox_info *info, const struct imap_arg *items,
    size_t n)
{
	strbuf_appends(sb, "* STATUS ");
	format_mailbox(sb, info->name);
	strbuf_appends(sb, " (");
	for (size_t i = 0; i < n; i++) {
		const char *it;

		if (!imap_arg_get_atom(&items[i], &it))
			return -1;
		if (i > 0)
			strbuf_appendc(sb, ' ');
		if (strcasecmp(it, "MESSAGES") == 0) {
			strbuf_appendf(sb, "MESSAGES %u", info->messages);
		} else if (strcasecmp(it, "RECENT") == 0) {
			strbuf_appends(sb, "RECENT 0");
		} else if (strcasecmp(it, "UIDNEXT") == 0) {
			strbuf_appendf(sb, "UIDNEXT %u", info->uidnext);
		} else if (strcasecmp(it, "UIDVALIDITY") == 0) {
			strbuf_appendf(sb, "UIDVALIDITY %u", info->uidvalidity);
		} else if (strcasecmp(it, "UNSEEN") == 0) {
			strbuf_appendf(sb, "UNSEEN %u", info->unseen);
		} else if (strcasecmp(it, "HIGHESTMODSEQ") == 0) {
			strbuf_appendf(sb, "HIGHESTMODSEQ %llu",
			    (unsigned long long)info->highestmodseq);
			/* a CONDSTORE-enabling command (RFC 7162 3.1) */
			s->enabled_condstore = true;
		} else if (strcasecmp(it, "SIZE") == 0) {
			strbuf_appendf(sb, "SIZE %llu",
			    (unsigned long long)info->size);
		} else {
			return -1;
		}
	}
	strbuf_appends(sb, ")\r\n");
	return 0;
}

/* ---- LIST / LSUB ---- */

struct list_entry {
	const char *name;
	enum store_role role;
	bool subscribed;
	bool exists;
	struct store_mailbox_info info;	/* exists only; name = .name */
};

struct list_collect {
	struct arena *a;
	struct list_entry *v;
	size_t n, cap;
};

static void
collect_push(struct list_collect *c, const char *name, enum store_role role,
    bool subscribed, bool exists)
{
	if (c->n == c->cap) {
		c->cap = c->cap == 0 ? 32 : c->cap * 2;
		c->v = xreallocarray(c->v, c->cap, sizeof(*c->v));
	}
	c->v[c->n].name = arena_strdup(c->a, name);
	c->v[c->n].role = role;
	c->v[c->n].subscribed = subscribed;
	c->v[c->n].exists = exists;
	memset(&c->v[c->n].info, 0, sizeof(c->v[c->n].info));
	c->v[c->n].info.name = c->v[c->n].name;
	c->n++;
}

static int
collect_mailbox_cb(void *ctx, const struct store_mailbox_info *info)
{
	struct list_collect *c = ctx;

	collect_push(c, info->name, info->role, info->subscribed, true);
	c->v[c->n - 1].info = *info;
	c->v[c->n - 1].info.name = c->v[c->n - 1].name;
	return 0;
}

static int
collect_sub_cb(void *ctx, const char *name)
{
	collect_push(ctx, name, STORE_ROLE_NONE, true, false);
	return 0;
}

/* LIST wildcards through the parser's matcher, which is polynomial even
 * for hostile patterns like "*a*a*a*...b". */
static bool
wild_match(const char *pat, const char *name)
{
	return imap_mailbox_pattern_match(pat, strlen(pat), name,
	    strlen(name));
}

/* INBOX is case-insensitive as the first component of a pattern too. */
static char *
normalise_pattern(struct arena *a, const char *ref, const char *pat)
{
	size_t rl = strlen(ref), pl = strlen(pat);
	char *full = arena_alloc(a, rl + pl + 1);

	memcpy(full, ref, rl);
	memcpy(full + rl, pat, pl + 1);
	if (strncasecmp(full, "INBOX", 5) == 0 &&
	    (full[5] == '\0' || full[5] == '/'))
		memcpy(full, "INBOX", 5);
	return full;
}

static bool
has_children(const struct list_collect *c, const char *name)
{
	size_t len = strlen(name);

	/* Linear, but LIST results are small (STORE_MAILBOXES_MAX). */
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].exists && strncmp(c->v[i].name, name, len) == 0 &&
		    c->v[i].name[len] == '/')
			return true;
	return false;
}

/* Are all the LIST-STATUS items known? */
static bool
list_status_valid(struct imap_session *s, const struct imap_arg *items,
    size_t n)
{
	struct store_mailbox_info info;
	struct strbuf sb = STRBUF_INIT;
	bool enabled = s->enabled_condstore;
	int rc;

	memset(&info, 0, sizeof(info));
	info.name = "INBOX";
	rc = status_format(s, &sb, &info, items, n);
	strbuf_free(&sb);
	/* validation only: the real output enables CONDSTORE */
	s->enabled_condstore = enabled;
	return rc == 0;
}

static void
list_common(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool lsub)
{
	const char *cmd = lsub ? "LSUB" : "LIST";
	struct arena *a = s->server->scratch;
	const struct imap_arg *sel_opts = NULL, *ret_opts = NULL;
	size_t sel_n = 0, ret_n = 0, npat = 0, i = 0;
	const char *ref_w, *pats_w[64], *err;
	size_t ref_len, pat_lens[64];
	bool sel_subscribed = false, sel_special = false;
	bool ret_subscribed = false;
	const struct imap_arg *status_items = NULL;
	size_t status_n = 0;
	struct strbuf tmp = STRBUF_INIT, out = STRBUF_INIT;
	char *ref, *pats[64];
	struct list_collect c = { a, NULL, 0, 0 };
	struct store_read *r = NULL;

	if (!lsub && argc > 0 && args[0].type == IMAP_ARG_LIST) {
		imap_arg_get_list(&args[0], &sel_opts, &sel_n);
		i++;
	}
	if (argc < i + 2) {
		imap_session_tagged(s, tag, "BAD", "%s needs a reference and "
		    "a pattern", cmd);
		return;
	}
	if (!imap_arg_get_astring(&args[i], &ref_w, &ref_len)) {
		imap_session_tagged(s, tag, "BAD", "Bad reference");
		return;
	}
	if (args[i + 1].type == IMAP_ARG_LIST && !lsub) {
		const struct imap_arg *pl;
		size_t pn;

		imap_arg_get_list(&args[i + 1], &pl, &pn);
		for (size_t k = 0; k < pn && npat < N_ELEMENTS(pats_w); k++)
			if (imap_arg_get_astring(&pl[k], &pats_w[npat],
			    &pat_lens[npat]))
				npat++;
	} else if (imap_arg_get_astring(&args[i + 1], &pats_w[0],
	    &pat_lens[0])) {
		npat = 1;
	}
	if (npat == 0) {
		imap_session_tagged(s, tag, "BAD", "Bad pattern");
		return;
	}
	i += 2;
	if (i < argc) {
		if (lsub || argc != i + 2 ||
		    !imap_arg_atom_equals(&args[i], "RETURN") ||
		    !imap_arg_get_list(&args[i + 1], &ret_opts, &ret_n)) {
			imap_session_tagged(s, tag, "BAD", "Unexpected %s "
			    "arguments", cmd);
			return;
		}
	}
	for (size_t k = 0; k < sel_n; k++) {
		if (imap_arg_atom_equals(&sel_opts[k], "SUBSCRIBED"))
			sel_subscribed = true;
		else if (imap_arg_atom_equals(&sel_opts[k], "SPECIAL-USE"))
			sel_special = true;
		else if (!imap_arg_atom_equals(&sel_opts[k], "RECURSIVEMATCH")) {
			imap_session_tagged(s, tag, "BAD", "Unknown LIST "
			    "selection option");
			return;
		}
	}
	for (size_t k = 0; k < ret_n; k++) {
		if (imap_arg_atom_equals(&ret_opts[k], "SUBSCRIBED"))
			ret_subscribed = true;
		else if (imap_arg_atom_equals(&ret_opts[k], "STATUS") &&
		    status_items == NULL && k + 1 < ret_n &&
		    imap_arg_get_list(&ret_opts[k + 1], &status_items,
		    &status_n) && status_n > 0 &&
		    list_status_valid(s, status_items, status_n))
			k++;	/* RFC 5819 LIST-STATUS */
		else if (!imap_arg_atom_equals(&ret_opts[k], "SPECIAL-USE") &&
		    !imap_arg_atom_equals(&ret_opts[k], "CHILDREN")) {
			imap_session_tagged(s, tag, "BAD", "Unknown LIST "
			    "return option");
			return;
		}
	}
	if (imap_utf7_to_utf8(ref_w, ref_len, &tmp, &err) != 0) {
		imap_session_tagged(s, tag, "BAD", "Bad reference: %s", err);
		strbuf_free(&tmp);
		return;
	}
	ref = arena_strndup(a, strbuf_str(&tmp), tmp.len);
	for (size_t k = 0; k < npat; k++) {
		strbuf_reset(&tmp);
		if (imap_utf7_to_utf8(pats_w[k], pat_lens[k], &tmp, &err) != 0) {
			imap_session_tagged(s, tag, "BAD", "Bad pattern: %s",
			    err);
			strbuf_free(&tmp);
			return;
		}
		pats[k] = normalise_pattern(a, ref, strbuf_str(&tmp));
	}
	strbuf_free(&tmp);

	if (npat == 1 && pat_lens[0] == 0 && !lsub) {
		/* LIST "" "": the hierarchy delimiter and root. */
		imap_session_printf(s, "* LIST (\\Noselect) \"/\" \"\"\r\n");
		imap_session_tagged(s, tag, "OK", "LIST completed");
		return;
	}
	if (store_read_begin(s->server->store, &r, &err) != 0 ||
	    store_mailbox_foreach(r, s->user_id, collect_mailbox_cb, &c,
	    &err) != 0) {
		if (r != NULL)
			store_read_end(&r);
		free(c.v);
		store_failed(s, tag, cmd, err);
		return;
	}
	if (lsub || sel_subscribed) {
		/* subscriptions of names that do not exist (any more) */
		size_t existing = c.n;

		if (store_subscription_foreach(r, s->user_id, collect_sub_cb,
		    &c, &err) == 0) {
			size_t w = existing;

			for (size_t k = existing; k < c.n; k++) {
				bool dup = false;

				for (size_t j = 0; j < existing && !dup; j++)
					dup = strcmp(c.v[j].name,
					    c.v[k].name) == 0;
				if (!dup)
					c.v[w++] = c.v[k];
			}
			c.n = w;
		}
	}
	store_read_end(&r);

	for (size_t k = 0; k < c.n; k++) {
		const struct list_entry *e = &c.v[k];
		bool match = false;
		const char *role;

		for (size_t p = 0; p < npat && !match; p++)
			match = wild_match(pats[p], e->name);
		if (!match)
			continue;
		if ((lsub || sel_subscribed) && !e->subscribed)
			continue;
		if (sel_special && e->role == STORE_ROLE_NONE)
			continue;
		strbuf_appendf(&out, "* %s (", cmd);
		if (!e->exists)
			strbuf_appends(&out, lsub ? "\\Noselect" :
			    "\\NonExistent");
		else
			strbuf_appends(&out, has_children(&c, e->name) ?
			    "\\HasChildren" : "\\HasNoChildren");
		role = store_role_name(e->role);
		if (role != NULL && !lsub) {
			strbuf_appendc(&out, ' ');
			strbuf_appends(&out, role);
		}
		if (!lsub && (ret_subscribed || sel_subscribed) && e->subscribed)
			strbuf_appends(&out, " \\Subscribed");
		strbuf_appends(&out, ") \"/\" ");
		format_mailbox(&out, e->name);
		strbuf_appends(&out, "\r\n");
		/* RFC 5819: STATUS right after the LIST of a selectable
		 * mailbox (items were checked above) */
		if (status_items != NULL && e->exists)
			(void)status_format(s, &out, &e->info, status_items,
			    status_n);
		if (out.len > 16384)
			imap_session_write_sb(s, &out);
	}
	imap_session_write_sb(s, &out);
	strbuf_free(&out);
	free(c.v);
	imap_session_tagged(s, tag, "OK", "%s completed", cmd);
}

void
imap_cmd_list(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	list_common(s, tag, args, argc, false);
}

void
imap_cmd_lsub(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	list_common(s, tag, args, argc, true);
}

/* ---- STATUS ---- */

void
imap_cmd_status(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *name, *err;
	const struct imap_arg *items;
	size_t n;
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	struct strbuf sb = STRBUF_INIT;
	int rc;

	if (argc != 2 || !imap_arg_get_list(&args[1], &items, &n) || n == 0) {
		imap_session_tagged(s, tag, "BAD", "STATUS needs a mailbox and "
		    "a list of items");
		return;
	}
	if ((name = mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (store_read_begin(s->server->store, &r, &err) != 0) {
		store_failed(s, tag, "STATUS", err);
		return;
	}
	rc = store_mailbox_lookup(r, s->user_id, name, &info, &err);
	if (rc != 0) {
		store_read_end(&r);
		if (rc == STORE_NOT_FOUND)
			imap_session_tagged(s, tag, "NO", "[NONEXISTENT] "
			    "Mailbox does not exist");
		else
			store_failed(s, tag, "STATUS", err);
		return;
	}
	if (status_format(s, &sb, &info, items, n) != 0) {
		store_read_end(&r);
		strbuf_free(&sb);
		imap_session_tagged(s, tag, "BAD", "Unknown STATUS item");
		return;
	}
	store_read_end(&r);
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	imap_session_tagged(s, tag, "OK", "STATUS completed");
}

/* ---- APPEND ---- */

void
imap_cmd_append(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *name, *err, *data;
	size_t i = 1, len;
	struct store_new_msg m;
	const char *kws[IMAP_APPEND_FLAGS_MAX];
	uint32_t new_uid = 0, uidvalidity = 0;
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	int rc;

	memset(&m, 0, sizeof(m));
	if (argc < 2) {
		imap_session_tagged(s, tag, "BAD", "APPEND needs a mailbox and "
		    "a message");
		return;
	}
	if ((name = mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (i < argc && args[i].type == IMAP_ARG_LIST) {
		const struct imap_arg *fl;
		size_t fn;

		imap_arg_get_list(&args[i], &fl, &fn);
		for (size_t k = 0; k < fn; k++) {
			const char *f;
			unsigned bit;
			bool is_kw;

			if (!imap_arg_get_atom(&fl[k], &f) ||
			    imap_flag_parse(f, strlen(f), &bit, &is_kw,
			    &err) != 0) {
				imap_session_tagged(s, tag, "BAD", "Invalid "
				    "flag in APPEND");
				return;
			}
			if (is_kw) {
				if (m.keyword_count >= N_ELEMENTS(kws)) {
					imap_session_tagged(s, tag, "NO",
					    "[LIMIT] Too many keywords");
					return;
				}
				kws[m.keyword_count++] = f;
			} else {
				m.system_flags |= bit;
			}
		}
		i++;
	}
	m.internaldate = (int64_t)time(NULL);
	m.tz_offset_min = 0;
	if (i < argc && args[i].type == IMAP_ARG_QUOTED) {
		int64_t t;
		int tz;

		if (imap_parse_datetime(args[i].str, args[i].len, &t, &tz) != 0) {
			imap_session_tagged(s, tag, "BAD", "Invalid date-time "
			    "in APPEND");
			return;
		}
		m.internaldate = t;
		m.tz_offset_min = tz;
		i++;
	}
	if (i + 1 != argc || args[i].type != IMAP_ARG_LITERAL ||
	    !imap_arg_get_string(&args[i], &data, &len)) {
		imap_session_tagged(s, tag, "BAD", "APPEND needs the message as "
		    "a literal");
		return;
	}
	if (len == 0) {
		imap_session_tagged(s, tag, "NO", "Empty message");
		return;
	}
	if (store_read_begin(s->server->store, &r, &err) != 0) {
		store_failed(s, tag, "APPEND", err);
		return;
	}
	rc = store_mailbox_lookup(r, s->user_id, name, &info, &err);
	store_read_end(&r);
	if (rc != 0) {
		if (rc == STORE_NOT_FOUND)
			imap_session_tagged(s, tag, "NO", "[TRYCREATE] Mailbox "
			    "does not exist");
		else
			store_failed(s, tag, "APPEND", err);
		return;
	}
	m.data = data;
	m.size = len;
	m.keywords = kws;
	imap_message_structure(s->server->scratch, data, len, &m.structure,
	    &m.structure_size);
	s->server->actor = s;
	rc = store_deliver(s->server->store, s->user_id, info.id, &m, 1,
	    &new_uid, &uidvalidity, &err);
	s->server->actor = NULL;
	if (rc != 0) {
		store_failed(s, tag, "APPEND", err);
		return;
	}
	imap_session_tagged(s, tag, "OK", "[APPENDUID %u %u] APPEND completed",
	    uidvalidity, new_uid);
}
