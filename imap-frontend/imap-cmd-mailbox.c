/* imap-cmd-mailbox — CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
 * APPEND, and the helpers the mailbox commands share. */
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
#include "imap-spool.h"
#include "imap-sync.h"
#include "imap-utf7.h"
#include "log.h"
#include "store/mail-fts.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Flags in one APPEND (system flags plus keywords). */
#define IMAP_APPEND_FLAGS_MAX (STORE_KEYWORDS_MAX + 8)

/* The store name of a mailbox argument, in the scratch arena, or NULL
 * after answering the command (BAD / NO). */
const char *
imap_cmd_mailbox_arg(struct imap_session *s, const char *tag,
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
	if (imap_cmd_mailbox_decode(s, wire, len, &sb, &err) != 0) {
		imap_session_tagged(s, tag, "NO", "Invalid mailbox name: %s",
		    err);
		strbuf_free(&sb);
		return NULL;
	}
	name = arena_strndup(s->server->scratch, sb.data, sb.len);
	strbuf_free(&sb);
	return name;
}

int
imap_cmd_mailbox_decode(const struct imap_session *s, const char *wire,
    size_t len, struct strbuf *out, const char **error_r)
{
	return s->enabled_utf8 ?
	    imap_mailbox_name_from_utf8(wire, len, out, error_r) :
	    imap_mailbox_name_from_wire(wire, len, out, error_r);
}

/* Appends the wire form of a UTF-8 store name: an mUTF-7 astring, or
 * after ENABLE UTF8=ACCEPT the UTF-8 itself (quoted when it can be). */
void
imap_cmd_format_mailbox(struct strbuf *sb, const char *name, bool utf8)
{
	struct strbuf w = STRBUF_INIT;
	const char *err;

	if (utf8) {
		size_t len = strlen(name);
		bool quote = len > 0 && len <= 1000 &&
		    strpbrk(name, "\"\\\r\n") == NULL;

		if (quote) {
			strbuf_appendc(sb, '"');
			strbuf_append(sb, name, len);
			strbuf_appendc(sb, '"');
		} else {
			imap_format_astring(sb, name, len);
		}
		return;
	}

	if (imap_utf8_to_utf7(name, strlen(name), &w, &err) != 0) {
		strbuf_reset(&w);
		strbuf_appends(&w, name);
	}
	imap_format_astring(sb, w.data != NULL ? w.data : "", w.len);
	strbuf_free(&w);
}

void
imap_cmd_store_failed(struct imap_session *s, const char *tag,
    const char *what, enum store_error cls, const char *err)
{
	switch (cls) {
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
	case STORE_ERR_QUOTA:
		imap_session_tagged(s, tag, "NO", "[OVERQUOTA] %s: %s", what,
		    err != NULL ? err : "quota exceeded");
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

/* ---- CREATE / DELETE / RENAME / SUBSCRIBE ---- */

enum mbox_op {
	MBOX_CREATE = 0,
	MBOX_DELETE,
	MBOX_RENAME,
	MBOX_SUBSCRIBE,
	MBOX_UNSUBSCRIBE,
};

static const char *const mbox_op_names[] = {
	[MBOX_CREATE] = "CREATE",
	[MBOX_DELETE] = "DELETE",
	[MBOX_RENAME] = "RENAME",
	[MBOX_SUBSCRIBE] = "SUBSCRIBE",
	[MBOX_UNSUBSCRIBE] = "UNSUBSCRIBE",
};

/* A mailbox command on its way through the writer. */
struct mbox_job {
	struct imap_job job;
	enum mbox_op op;
	char *name;
	char *to;		/* RENAME */
	enum store_role role;	/* CREATE (USE (...)), RFC 6154 */
	uint32_t id;		/* CREATE: the new mailbox's (OBJECTID) */
};

static void
mbox_job_free(struct imap_job *job)
{
	struct mbox_job *j = (struct mbox_job *)job;

	free(j->name);
	free(j->to);
	free(j);
}

static int
mbox_job_apply(struct store *store, void *ctx, const char **error_r)
{
	struct mbox_job *j = ctx;
	uint32_t user = j->job.user_id;

	switch (j->op) {
	case MBOX_CREATE:
		return store_mailbox_create(store, user, j->name, j->role,
		    &j->id, error_r);
	case MBOX_DELETE:
		return store_mailbox_delete(store, user, j->name, error_r);
	case MBOX_RENAME:
		return store_mailbox_rename(store, user, j->name, j->to,
		    error_r);
	case MBOX_SUBSCRIBE:
	case MBOX_UNSUBSCRIBE:
		return store_mailbox_subscribe(store, user, j->name,
		    j->op == MBOX_SUBSCRIBE, error_r);
	}
	return -1;
}

/* DELETE of this session's own selected mailbox (the change feed marked
 * the view before this runs). A QRESYNC client knows [CLOSED] (RFC 7162
 * 3.2.11): it stays, usable, in the authenticated state. Any other client
 * could not tell it was deselected and would get BAD for its next FETCH:
 * it gets what Dovecot sends, OK and then BYE. */
static void
delete_own_selected(struct imap_session *s, const char *tag)
{
	if (!s->enabled_qresync) {
		/* written directly: imap_session_tagged() would send the
		   BYE in place of the OK */
		imap_session_printf(s, "%s OK DELETE completed\r\n", tag);
		imap_session_bye_deleted(s);
		return;
	}
	imap_session_unselect(s);
	imap_session_printf(s, "* OK [CLOSED] Selected mailbox was "
	    "deleted\r\n");
	imap_session_tagged(s, tag, "OK", "DELETE completed");
}

static void
mbox_job_finish(struct imap_session *s, const char *tag,
    struct imap_job *job)
{
	struct mbox_job *j = (struct mbox_job *)job;
	const char *what = mbox_op_names[j->op];

	if (job->rc != 0) {
		imap_cmd_store_failed(s, tag, what, job->cls, job->error);
		return;
	}
	if (j->op == MBOX_DELETE && s->sel != NULL && s->sel->deleted) {
		delete_own_selected(s, tag);
		return;
	}
	if (j->op == MBOX_CREATE) {
		/* RFC 8474 4.1 */
		imap_session_tagged(s, tag, "OK", "[MAILBOXID (F%u)] CREATE "
		    "completed", j->id);
		return;
	}
	imap_session_tagged(s, tag, "OK", "%s completed", what);
}

static void
mbox_submit_role(struct imap_session *s, const char *tag, enum mbox_op op,
    const char *name, const char *to, enum store_role role)
{
	struct mbox_job *j = xcalloc(1, sizeof(*j));

	j->job.free = mbox_job_free;
	j->job.finish = mbox_job_finish;
	j->role = role;
	j->op = op;
	j->name = xstrdup(name);
	j->to = to != NULL ? xstrdup(to) : NULL;
	imap_session_submit_write(s, tag, &j->job, 0, mbox_job_apply);
}

static void
mbox_submit(struct imap_session *s, const char *tag, enum mbox_op op,
    const char *name, const char *to)
{
	mbox_submit_role(s, tag, op, name, to, STORE_ROLE_NONE);
}

/*
 * CREATE's parameter list (RFC 4466 create-param): "USE (\Sent)" of
 * CREATE-SPECIAL-USE (RFC 6154 3). The store keeps one role per mailbox:
 * two uses, or one it does not know (\Important), get NO [USEATTR].
 * Returns 0 with *role_r, or -1 after answering the command.
 */
static int
create_params(struct imap_session *s, const char *tag,
    const struct imap_arg *arg, enum store_role *role_r)
{
	const struct imap_arg *l, *uses;
	size_t n, nuses;
	bool have_use = false;

	*role_r = STORE_ROLE_NONE;
	if (!imap_arg_get_list(arg, &l, &n)) {
		imap_session_tagged(s, tag, "BAD", "CREATE parameters must be "
		    "a list");
		return -1;
	}
	for (size_t i = 0; i < n; i += 2) {
		if (!imap_arg_atom_equals(&l[i], "USE") || i + 1 >= n ||
		    have_use || !imap_arg_get_list(&l[i + 1], &uses, &nuses)) {
			imap_session_tagged(s, tag, "BAD", "Unknown CREATE "
			    "parameter");
			return -1;
		}
		have_use = true;
		for (size_t k = 0; k < nuses; k++) {
			const char *f;
			enum store_role r = STORE_ROLE_NONE;

			if (!imap_arg_get_atom(&uses[k], &f) || f[0] != '\\') {
				imap_session_tagged(s, tag, "BAD", "USE takes "
				    "special-use flags");
				return -1;
			}
			for (int c = STORE_ROLE_SENT; c <= STORE_ROLE_FLAGGED;
			    c++)
				if (strcasecmp(store_role_name(c), f) == 0)
					r = (enum store_role)c;
			if (r == STORE_ROLE_NONE || (*role_r != STORE_ROLE_NONE &&
			    *role_r != r)) {
				imap_session_tagged(s, tag, "NO", "[USEATTR] "
				    "%s", r == STORE_ROLE_NONE ? "Unsupported "
				    "special-use attribute" : "One special use "
				    "per mailbox");
				return -1;
			}
			*role_r = r;
		}
	}
	return 0;
}

void
imap_cmd_create(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *n, *wire;
	struct imap_arg arg;
	size_t wlen;
	enum store_role role = STORE_ROLE_NONE;

	if (argc < 1 || argc > 2) {
		imap_session_tagged(s, tag, "BAD", "CREATE needs a mailbox "
		    "name");
		return;
	}
	if (argc == 2 && create_params(s, tag, &args[1], &role) != 0)
		return;
	/* RFC 3501 6.3.3: a trailing hierarchy separator only says that
	 * children may follow; it MUST be ignored, so it is dropped before
	 * the name is checked ("Folder2/" creates "Folder2"). */
	arg = args[0];
	if (imap_arg_get_astring(&arg, &wire, &wlen) && wlen > 1 &&
	    wire[wlen - 1] == '/')
		arg.len = wlen - 1;
	if ((n = imap_cmd_mailbox_arg(s, tag, &arg)) == NULL)
		return;
	if (strcmp(n, "INBOX") == 0) {
		imap_session_tagged(s, tag, "NO", "[ALREADYEXISTS] INBOX "
		    "always exists");
		return;
	}
	mbox_submit_role(s, tag, MBOX_CREATE, n, NULL, role);
}

void
imap_cmd_delete(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *name;

	if (argc != 1) {
		imap_session_tagged(s, tag, "BAD", "DELETE needs a mailbox "
		    "name");
		return;
	}
	if ((name = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (strcmp(name, "INBOX") == 0) {
		imap_session_tagged(s, tag, "NO", "[CANNOT] INBOX cannot be "
		    "deleted");
		return;
	}
	mbox_submit(s, tag, MBOX_DELETE, name, NULL);
}

void
imap_cmd_rename(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *from, *to;

	if (argc != 2) {
		imap_session_tagged(s, tag, "BAD", "RENAME needs two mailbox "
		    "names");
		return;
	}
	if ((from = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL ||
	    (to = imap_cmd_mailbox_arg(s, tag, &args[1])) == NULL)
		return;
	mbox_submit(s, tag, MBOX_RENAME, from, to);
}

static void
subscribe_common(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool sub)
{
	const char *name;

	if (argc != 1) {
		imap_session_tagged(s, tag, "BAD", "Mailbox name expected");
		return;
	}
	if ((name = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	mbox_submit(s, tag, sub ? MBOX_SUBSCRIBE : MBOX_UNSUBSCRIBE, name,
	    NULL);
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

int
imap_cmd_mailbox_open(struct imap_session *s, const char *tag,
    const char *what, const char *name, struct store_read **r_r,
    struct store_mailbox_info *info_r)
{
	const char *err = NULL;
	int rc;

	if (store_read_begin(s->server->store, r_r, &err) != 0) {
		imap_cmd_store_failed(s, tag, what,
		    store_last_error(s->server->store), err);
		return -1;
	}
	rc = store_mailbox_lookup(*r_r, s->user_id, name, info_r, &err);
	if (rc == 0)
		return 0;
	store_read_end(r_r);
	if (rc == STORE_NOT_FOUND)
		imap_session_tagged(s, tag, "NO", "[NONEXISTENT] Mailbox does "
		    "not exist");
	else
		imap_cmd_store_failed(s, tag, what,
		    store_last_error(s->server->store), err);
	return -1;
}

/* ---- APPEND ----
 *
 * Two hops off the loop: the message's MIME structure is parsed on a
 * worker (the blob FETCH reads instead of parsing again), then the
 * delivery goes through the writer. The message arrived in a spool file
 * (imap-spool.h) that the job takes over and maps read-only, so no copy
 * of it is ever in memory; a small one that came without a sink is the
 * parser's literal, taken over. */

struct append_job {
	struct imap_job job;
	uint32_t mailbox_id;
	const char *data;		/* the spool's mapping or the literal */
	size_t len;
	struct imap_spool *spool;	/* owned; NULL: data is a literal */
	char *kws[IMAP_APPEND_FLAGS_MAX];
	size_t nkw;
	uint32_t system_flags;
	int64_t internaldate;
	int32_t tz_offset_min;
	struct strbuf blob;		/* the parsed structure */
	struct strbuf sortkey;		/* its SORT/THREAD keys */
	struct mail_fts_terms terms;	/* index terms, when indexed */
	struct store_fts_doc doc;
	struct strbuf segment;		/* its index segment */
	bool indexed;
	uint32_t uid, uidvalidity;
};

static void
append_job_free(struct imap_job *job)
{
	struct append_job *j = (struct append_job *)job;

	if (j->spool != NULL)
		imap_spool_free(&j->spool);
	else
		free((char *)j->data);
	for (size_t i = 0; i < j->nkw; i++)
		free(j->kws[i]);
	strbuf_free(&j->blob);
	strbuf_free(&j->sortkey);
	mail_fts_terms_free(&j->terms);
	strbuf_free(&j->segment);
	free(j);
}

/* Worker: the structure blob of the message. */
static enum workq_run_result
append_parse_run(struct workq_job *wq)
{
	struct append_job *j = (struct append_job *)wq;

	imap_message_structure_blob(j->data, j->len, &j->blob, &j->sortkey,
	    j->indexed ? &j->terms : NULL);
	if (j->indexed) {
		const struct store_fts_doc *d = &j->doc;

		j->doc.terms = j->terms.terms;
		j->doc.count = j->terms.count;
		j->doc.saturated = j->terms.saturated;
		store_fts_batch_build(&d, 1, &j->segment);
	}
	return WORKQ_DONE;
}

/* Writer: the delivery. */
static int
append_apply(struct store *store, void *ctx, const char **error_r)
{
	struct append_job *j = ctx;
	struct store_new_msg m;

	memset(&m, 0, sizeof(m));
	m.data = j->data;
	m.size = j->len;
	m.structure = j->blob.len > 0 ? j->blob.data : NULL;
	m.structure_size = j->blob.len;
	m.sortkey = j->sortkey.data;
	m.sortkey_size = j->sortkey.len;
	m.internaldate = j->internaldate;
	m.tz_offset_min = j->tz_offset_min;
	m.system_flags = j->system_flags;
	m.keywords = (const char *const *)j->kws;
	m.keyword_count = j->nkw;
	if (j->indexed) {
		m.fts = &j->doc;
		m.fts_batch = j->segment.data;
		m.fts_batch_size = j->segment.len;
	}
	return store_deliver(store, j->job.user_id, j->mailbox_id, &m, 1,
	    &j->uid, &j->uidvalidity, error_r);
}

static void
append_stored(struct imap_session *s, const char *tag, struct imap_job *job)
{
	struct append_job *j = (struct append_job *)job;

	if (job->rc != 0) {
		if (job->cls == STORE_ERR_NOTFOUND)
			imap_session_tagged(s, tag, "NO", "[TRYCREATE] Mailbox "
			    "does not exist");
		else
			imap_cmd_store_failed(s, tag, "APPEND", job->cls,
			    job->error);
		return;
	}
	imap_session_tagged(s, tag, "OK", "[APPENDUID %u %u] APPEND completed",
	    j->uidvalidity, j->uid);
}

/* The structure is parsed: on to the writer, with the same job's data
 * moved into a new one (the finished job is freed by the session). */
static void
append_parsed(struct imap_session *s, const char *tag, struct imap_job *job)
{
	struct append_job *j = (struct append_job *)job, *w;

	if (job->wq.cancelled) {
		imap_session_tagged(s, tag, "NO", "[UNAVAILABLE] Server "
		    "shutting down");
		return;
	}
	w = xmalloc(sizeof(*w));
	memcpy(w, j, sizeof(*w));
	memset(&w->job, 0, sizeof(w->job));
	w->job.free = append_job_free;
	w->job.finish = append_stored;
	/* j keeps nothing it would free twice */
	j->data = NULL;
	j->spool = NULL;
	j->nkw = 0;
	memset(&j->blob, 0, sizeof(j->blob));
	memset(&j->sortkey, 0, sizeof(j->sortkey));
	memset(&j->terms, 0, sizeof(j->terms));
	memset(&j->segment, 0, sizeof(j->segment));
	imap_session_submit_write(s, tag, &w->job, w->len, append_apply);
}

void
imap_cmd_append(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *name, *err, *data;
	size_t i = 1, len;
	const char *kws[IMAP_APPEND_FLAGS_MAX];
	size_t nkw = 0;
	uint32_t system_flags = 0;
	int64_t internaldate;
	int32_t tz_offset = 0;
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	struct append_job *j;
	int rc;

	if (argc < 2) {
		imap_session_tagged(s, tag, "BAD", "APPEND needs a mailbox and "
		    "a message");
		return;
	}
	if ((name = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (i < argc && args[i].type == IMAP_ARG_LIST) {
		const struct imap_arg *fl;
		size_t fn;

		imap_arg_get_list(&args[i], &fl, &fn);
		for (size_t k = 0; k < fn; k++) {
			const char *f;
			unsigned bit;
			bool is_kw;

			if (!imap_arg_get_flag_atom(&fl[k], &f) ||
			    imap_flag_parse(f, strlen(f), &bit, &is_kw,
			    &err) != 0) {
				imap_session_tagged(s, tag, "BAD", "Invalid "
				    "flag in APPEND");
				return;
			}
			if (is_kw) {
				if (nkw >= N_ELEMENTS(kws)) {
					imap_session_tagged(s, tag, "NO",
					    "[LIMIT] Too many keywords");
					return;
				}
				kws[nkw++] = f;
			} else {
				system_flags |= bit;
			}
		}
		i++;
	}
	internaldate = (int64_t)time(NULL);
	if (i < argc && args[i].type == IMAP_ARG_QUOTED) {
		int64_t t;
		int tz;

		if (imap_parse_datetime(args[i].str, args[i].len, &t, &tz) != 0) {
			imap_session_tagged(s, tag, "BAD", "Invalid date-time "
			    "in APPEND");
			return;
		}
		internaldate = t;
		tz_offset = tz;
		i++;
	}
	if (i + 1 == argc && imap_arg_atom_equals(&args[i], "UTF8")) {
		/* RFC 6855 4: "UTF8 (" literal8 ")" needs a list */
		i = argc + 1;
	} else if (i + 2 == argc && imap_arg_atom_equals(&args[i], "UTF8")) {
		const struct imap_arg *l;
		size_t ln;

		if (!s->enabled_utf8) {
			imap_session_tagged(s, tag, "BAD", "APPEND UTF8 needs "
			    "ENABLE UTF8=ACCEPT");
			return;
		}
		if (!imap_arg_get_list(&args[i + 1], &l, &ln) || ln != 1 ||
		    l[0].type != IMAP_ARG_LITERAL || !l[0].literal8) {
			imap_session_tagged(s, tag, "BAD", "APPEND UTF8 takes "
			    "(literal8)");
			return;
		}
		args = l;
		i = 0;
		argc = 1;
	}
	if (i + 1 != argc || args[i].type != IMAP_ARG_LITERAL ||
	    !imap_arg_get_string(&args[i], &data, &len)) {
		imap_session_tagged(s, tag, "BAD", "APPEND needs the message as "
		    "a literal");
		return;
	}
	if (args[i].stream != NULL)
		len = (size_t)args[i].stream_size;
	if (len == 0) {
		imap_session_tagged(s, tag, "NO", "Empty message");
		return;
	}
	if (store_read_begin(s->server->store, &r, &err) != 0) {
		imap_cmd_store_failed(s, tag, "APPEND",
		    store_last_error(s->server->store), err);
		return;
	}
	rc = store_mailbox_lookup(r, s->user_id, name, &info, &err);
	store_read_end(&r);
	if (rc != 0) {
		if (rc == STORE_NOT_FOUND)
			imap_session_tagged(s, tag, "NO", "[TRYCREATE] Mailbox "
			    "does not exist");
		else
			imap_cmd_store_failed(s, tag, "APPEND",
			    store_last_error(s->server->store), err);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->job.free = append_job_free;
	j->job.finish = append_parsed;
	j->job.wq.run = append_parse_run;
	j->mailbox_id = info.id;
	if (args[i].stream != NULL) {
		j->spool = imap_parser_take_stream(s->parser, args[i].stream);
		PG_ASSERT(j->spool != NULL);
		j->data = imap_spool_map(j->spool, &err);
		if (j->data == NULL) {
			imap_session_tagged(s, tag, "NO", "[SERVERBUG] %s",
			    err);
			append_job_free(&j->job);
			return;
		}
	} else {
		j->data = imap_parser_take_literal(s->parser, data);
		if (j->data == NULL)
			j->data = xmemdup(data, len);
	}
	j->len = len;
	for (size_t k = 0; k < nkw; k++)
		j->kws[k] = xstrdup(kws[k]);
	j->nkw = nkw;
	j->system_flags = system_flags;
	j->internaldate = internaldate;
	j->tz_offset_min = tz_offset;
	j->indexed = store_fts_enabled(s->server->store);
	imap_session_submit_work(s, tag, &j->job);
}
