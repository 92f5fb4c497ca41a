/* imap-cmd-list — LIST (with LIST-STATUS), LSUB, STATUS. */
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
#include "utf8.h"
#include "xmalloc.h"

/* ---- STATUS items (STATUS and LIST-STATUS) ---- */

static int
count_cb(void *ctx, const struct store_msg *m)
{
	(*(uint32_t *)ctx)++;
	return 0;
}

/* STATUS RECENT (RFC 3501 6.3.10): the messages no read-write session
 * has claimed as \Recent yet, i.e. those a SELECT now would see
 * \Recent (imap-recent.h). For the mailbox this session has selected:
 * the messages \Recent in its view, as its FETCH FLAGS and RECENT
 * responses show them (Dovecot 2.3 answers the same). */
static uint32_t
status_recent(struct imap_session *s, const struct store_mailbox_info *info)
{
	uint32_t first = imap_recent_first(s->server->recent, s->user_id,
	    info->id, info->uidnext);
	struct store_read *r = NULL;
	const char *err;
	uint32_t n = 0;

	if (s->sel != NULL && s->sel->mailbox_id == info->id)
		return s->sel->recent_count;
	if (first >= info->uidnext ||
	    store_read_begin(s->server->store, &r, &err) != 0)
		return 0;
	if (store_msg_foreach(r, s->user_id, info->id, first,
	    info->uidnext - 1, count_cb, &n, &err) != 0)
		n = 0;
	store_read_end(&r);
	return n;
}

static int
add_deleted_size(void *ctx, const struct store_msg *msg)
{
	if (msg->flags.system & STORE_FLAG_DELETED)
		*(uint64_t *)ctx += msg->size;
	return 0;
}

/* RFC 9208 4.2: what an EXPUNGE would free, in units of 1024 octets (the
 * STORAGE resource's): the sizes of the \Deleted messages. */
static int
deleted_storage(struct imap_session *s, const struct store_mailbox_info *info,
    uint64_t *kb_r)
{
	struct store_read *r = NULL;
	uint64_t bytes = 0;
	int rc = 0;

	*kb_r = 0;
	if (info->deleted == 0)
		return 0;
	if (store_read_begin(s->server->store, &r, NULL) != 0)
		return -1;
	rc = store_msg_foreach(r, s->user_id, info->id, 1, UINT32_MAX,
	    add_deleted_size, &bytes, NULL);
	store_read_end(&r);
	*kb_r = (bytes + 1023) / 1024;
	return rc < 0 ? -1 : 0;
}

/* "* STATUS name (items...)\r\n" for info; -1 on an unknown item (sb
 * then holds a partial line the caller drops). */
static int
status_format(struct imap_session *s, struct strbuf *sb,
    const struct store_mailbox_info *info, const struct imap_arg *items,
    size_t n)
{
	strbuf_appends(sb, "* STATUS ");
	imap_cmd_format_mailbox(sb, info->name, s->enabled_utf8);
	strbuf_appends(sb, " (");
	for (size_t i = 0; i < n; i++) {
		const char *it;

		if (!imap_arg_get_atom(&items[i], &it))
			return -1;
		if (i > 0)
			strbuf_appendc(sb, ' ');
		if (strcasecmp(it, "MESSAGES") == 0) {
			strbuf_appendf(sb, "MESSAGES %u", info->messages);
		} else if (strcasecmp(it, "RECENT") == 0 && !s->enabled_rev2) {
			strbuf_appendf(sb, "RECENT %u", status_recent(s, info));
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
			/* RFC 8438 */
			strbuf_appendf(sb, "SIZE %llu",
			    (unsigned long long)info->size);
		} else if (strcasecmp(it, "DELETED") == 0) {
			/* RFC 9051 6.3.11 */
			strbuf_appendf(sb, "DELETED %u", info->deleted);
		} else if (strcasecmp(it, "MAILBOXID") == 0) {
			/* RFC 8474 4: the mailbox id never changes (RENAME
			 * keeps it) and is never reused for this user */
			strbuf_appendf(sb, "MAILBOXID (F%u)", info->id);
		} else if (strcasecmp(it, "APPENDLIMIT") == 0) {
			/* RFC 7889: the same for every mailbox */
			strbuf_appendf(sb, "APPENDLIMIT %llu",
			    (unsigned long long)imap_session_append_limit(s));
		} else if (strcasecmp(it, "DELETED-STORAGE") == 0) {
			uint64_t kb = 0;

			if (deleted_storage(s, info, &kb) < 0)
				return -1;
			strbuf_appendf(sb, "DELETED-STORAGE %llu",
			    (unsigned long long)kb);
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
	/* not a mailbox, but the parent of some: a deleted parent (the
	 * store creates parents, only DELETE leaves such a gap) */
	bool hole;
	/* LSUB only: not subscribed, but the parent of a subscribed name
	 * that "%" stops above (RFC 3501 6.3.9: listed, \Noselect) */
	bool lsub_parent;
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
	c->v[c->n].hole = false;
	c->v[c->n].lsub_parent = false;
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

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_entry *)a)->name,
	    ((const struct list_entry *)b)->name);
}

/* Is name one of the first n entries (sorted by name)? */
static bool
entry_exists(const struct list_collect *c, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(c->v[mid].name, name);

		if (d == 0)
			return true;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * Adds an entry for every missing parent of a mailbox ("a" and "a/b" of
 * "a/b/c" when they were deleted): RFC 3501 6.3.4 and 6.3.8 list it with
 * \Noselect, so that "%" still leads to the children. The c->v entries
 * are the mailboxes in name order (store_mailbox_foreach), so the children
 * of a name are contiguous and one remembered hole per depth is enough to
 * add each hole once. Returns true when holes were added (then c->v is
 * re-sorted).
 */
static bool
add_holes(struct list_collect *c)
{
	const char *last[STORE_MAILBOX_DEPTH_MAX] = { NULL };
	size_t n = c->n;
	bool added = false;

	for (size_t k = 0; k < n; k++) {
		const char *name = c->v[k].name;
		unsigned depth = 0;

		for (const char *p = strchr(name, '/'); p != NULL &&
		    depth < STORE_MAILBOX_DEPTH_MAX;
		    p = strchr(p + 1, '/'), depth++) {
			size_t len = (size_t)(p - name);
			char *pfx;

			if (last[depth] != NULL && strlen(last[depth]) == len &&
			    strncmp(last[depth], name, len) == 0)
				continue;
			pfx = arena_strndup(c->a, name, len);
			if (entry_exists(c, n, pfx))
				continue;
			collect_push(c, pfx, STORE_ROLE_NONE, false, false);
			c->v[c->n - 1].hole = true;
			last[depth] = c->v[c->n - 1].name;
			added = true;
		}
	}
	if (added)
		qsort(c->v, c->n, sizeof(*c->v), entry_cmp);
	return added;
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

static bool
match_any(char *const *pats, size_t npat, const char *name)
{
	for (size_t p = 0; p < npat; p++)
		if (wild_match(pats[p], name))
			return true;
	return false;
}

/* The entry named name in c->v (sorted by name), or NULL. */
static struct list_entry *
entry_find(struct list_collect *c, const char *name)
{
	struct list_entry key;

	memset(&key, 0, sizeof(key));
	key.name = name;
	return bsearch(&key, c->v, c->n, sizeof(*c->v), entry_cmp);
}

/*
 * RFC 3501 6.3.9: when "foo/bar" is subscribed and "foo" is not, LSUB
 * "%" returns "foo" flagged \Noselect. So: every unsubscribed ancestor
 * of a subscribed name that matches no pattern is listed when it
 * matches one (the pattern stopped above the subscribed name).
 */
static void
add_lsub_parents(struct list_collect *c, char *const *pats, size_t npat)
{
	size_t n;
	bool added = false;

	qsort(c->v, c->n, sizeof(*c->v), entry_cmp);
	n = c->n;
	for (size_t k = 0; k < n; k++) {
		const char *name = c->v[k].name;

		if (!c->v[k].subscribed || match_any(pats, npat, name))
			continue;
		for (const char *p = strchr(name, '/'); p != NULL;
		    p = strchr(p + 1, '/')) {
			char *pfx = arena_strndup(c->a, name,
			    (size_t)(p - name));
			struct list_entry *e;

			if (!match_any(pats, npat, pfx))
				continue;
			e = entry_find(c, pfx);
			if (e == NULL) {
				/* a name only subscriptions know: look in
				 * the entries added here too */
				for (size_t j = n; j < c->n && e == NULL; j++)
					if (strcmp(c->v[j].name, pfx) == 0)
						e = &c->v[j];
			}
			if (e == NULL) {
				collect_push(c, pfx, STORE_ROLE_NONE, false,
				    false);
				e = &c->v[c->n - 1];
				added = true;
			}
			if (!e->subscribed)
				e->lsub_parent = true;
		}
	}
	if (added)
		qsort(c->v, c->n, sizeof(*c->v), entry_cmp);
}

/*
 * RECURSIVEMATCH (RFC 5258 3.5): does some descendant of name meet the
 * selection criteria (subscribed, and/or a special use)? c->v is sorted by
 * name, so the descendants ("name/...") follow the first name >= "name/".
 */
static bool
descendant_selected(const struct list_collect *c, const char *name,
    bool want_sub, bool want_special)
{
	size_t len = strlen(name), lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strncmp(c->v[mid].name, name, len);

		if (d < 0 || (d == 0 && (unsigned char)c->v[mid].name[len] <
		    (unsigned char)'/'))
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo; k < c->n; k++) {
		const struct list_entry *e = &c->v[k];

		if (strncmp(e->name, name, len) != 0 || e->name[len] != '/')
			break;
		if ((!want_sub || e->subscribed) &&
		    (!want_special || (e->exists && e->role != STORE_ROLE_NONE)))
			return true;
	}
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

/* A reference or pattern: mUTF-7, or UTF-8 after ENABLE UTF8=ACCEPT
 * (where '&' is just '&'). */
static int
list_name_decode(const struct imap_session *s, const char *w, size_t len,
    struct strbuf *out, const char **error_r)
{
	if (!s->enabled_utf8)
		return imap_utf7_to_utf8(w, len, out, error_r);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = (unsigned char)w[i] < 0x80 ? 1 :
		    utf8_decode((const unsigned char *)w + i, len - i, &cp);

		if (n == 0) {
			*error_r = "invalid UTF-8";
			return -1;
		}
		i += n;
	}
	strbuf_append(out, w, len);
	return 0;
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
	bool sel_subscribed = false, sel_special = false, recursive = false;
	bool sel_remote = false, ret_subscribed = false;
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
		else if (imap_arg_atom_equals(&sel_opts[k], "RECURSIVEMATCH"))
			recursive = true;
		else if (imap_arg_atom_equals(&sel_opts[k], "REMOTE"))
			sel_remote = true;	/* no remote mailboxes here */
		else {
			imap_session_tagged(s, tag, "BAD", "Unknown LIST "
			    "selection option");
			return;
		}
	}
	(void)sel_remote;
	if (recursive && !sel_subscribed && !sel_special) {
		/* RFC 5258 3: never alone (or only with REMOTE) */
		imap_session_tagged(s, tag, "BAD", "RECURSIVEMATCH needs "
		    "another selection option");
		return;
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
	if (list_name_decode(s, ref_w, ref_len, &tmp, &err) != 0) {
		imap_session_tagged(s, tag, "BAD", "Bad reference: %s", err);
		strbuf_free(&tmp);
		return;
	}
	ref = arena_strndup(a, strbuf_str(&tmp), tmp.len);
	for (size_t k = 0; k < npat; k++) {
		strbuf_reset(&tmp);
		if (list_name_decode(s, pats_w[k], pat_lens[k], &tmp,
		    &err) != 0) {
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
		imap_cmd_store_failed(s, tag, cmd,
		    store_last_error(s->server->store), err);
		return;
	}
	(void)add_holes(&c);
	if (lsub || sel_subscribed) {
		/* subscriptions of names that do not exist (any more) */
		size_t existing = c.n;

		if (store_subscription_foreach(r, s->user_id, collect_sub_cb,
		    &c, &err) == 0) {
			size_t w = existing;

			for (size_t k = existing; k < c.n; k++) {
				bool dup = false;

				for (size_t j = 0; j < existing && !dup; j++) {
					dup = strcmp(c.v[j].name,
					    c.v[k].name) == 0;
					/* a subscribed deleted parent */
					if (dup)
						c.v[j].subscribed = true;
				}
				if (!dup)
					c.v[w++] = c.v[k];
			}
			c.n = w;
		}
	}
	store_read_end(&r);
	if (lsub)
		add_lsub_parents(&c, pats, npat);
	else if (sel_subscribed) {
		/* in name order, with the missing parents of subscribed
		 * names too (RECURSIVEMATCH reaches them) */
		qsort(c.v, c.n, sizeof(*c.v), entry_cmp);
		if (recursive)
			(void)add_holes(&c);
	}

	for (size_t k = 0; k < c.n; k++) {
		const struct list_entry *e = &c.v[k];
		bool match = false, selected, childinfo = false;
		const char *role;

		for (size_t p = 0; p < npat && !match; p++)
			match = wild_match(pats[p], e->name);
		if (!match)
			continue;
		if (lsub) {
			if (!e->subscribed && !e->lsub_parent)
				continue;
		} else {
			selected = (!sel_subscribed || e->subscribed) &&
			    (!sel_special || e->role != STORE_ROLE_NONE);
			if (recursive)
				childinfo = descendant_selected(&c, e->name,
				    sel_subscribed, sel_special);
			if (!selected && !childinfo)
				continue;
		}
		strbuf_appendf(&out, "* %s (", cmd);
		if (lsub && !e->subscribed)
			strbuf_appends(&out, "\\Noselect");
		else if (e->hole && !lsub)
			strbuf_appends(&out, !sel_subscribed ? "\\Noselect "
			    "\\HasChildren" : has_children(&c, e->name) ?
			    "\\NonExistent \\HasChildren" : "\\NonExistent");
		else if (!e->exists)
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
		imap_cmd_format_mailbox(&out, e->name, s->enabled_utf8);
		if (childinfo)
			strbuf_appendf(&out, " (\"CHILDINFO\" (%s%s%s))",
			    sel_subscribed ? "\"SUBSCRIBED\"" : "",
			    sel_subscribed && sel_special ? " " : "",
			    sel_special ? "\"SPECIAL-USE\"" : "");
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
	const char *name;
	const struct imap_arg *items;
	size_t n;
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	struct strbuf sb = STRBUF_INIT;

	if (argc != 2 || !imap_arg_get_list(&args[1], &items, &n) || n == 0) {
		imap_session_tagged(s, tag, "BAD", "STATUS needs a mailbox and "
		    "a list of items");
		return;
	}
	if ((name = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (imap_cmd_mailbox_open(s, tag, "STATUS", name, &r, &info) < 0)
		return;
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

