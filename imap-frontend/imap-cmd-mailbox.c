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
#include "imap-sync.h"
#include "imap-utf7.h"
#include "log.h"
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
void
imap_cmd_format_mailbox(struct strbuf *sb, const char *name)
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

void
imap_cmd_store_failed(struct imap_session *s, const char *tag,
    const char *what, const char *err)
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

/* ---- CREATE / DELETE / RENAME / SUBSCRIBE ---- */

void
imap_cmd_create(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *n, *wire, *err;
	struct imap_arg arg;
	size_t wlen;

	if (argc < 1 || argc > 2) {
		imap_session_tagged(s, tag, "BAD", "CREATE needs a mailbox "
		    "name");
		return;
	}
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
	if (store_mailbox_create(s->server->store, s->user_id, n,
	    STORE_ROLE_NONE, NULL, &err) != 0) {
		imap_cmd_store_failed(s, tag, "CREATE", err);
		return;
	}
	imap_session_tagged(s, tag, "OK", "CREATE completed");
}

void
imap_cmd_delete(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	const char *name, *err;
	int rc;

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
	s->server->actor = s;
	rc = store_mailbox_delete(s->server->store, s->user_id, name, &err);
	s->server->actor = NULL;
	if (rc != 0) {
		imap_cmd_store_failed(s, tag, "DELETE", err);
		return;
	}
	if (s->sel != NULL && s->sel->deleted) {
		/* This session deleted its own selected mailbox (the change
		 * feed marked the view). A QRESYNC client knows [CLOSED]
		 * (RFC 7162 3.2.11): it stays, usable, in the authenticated
		 * state. Any other client could not tell it was deselected
		 * and would get BAD for its next FETCH: it gets what
		 * Dovecot sends, OK and then BYE. */
		if (!s->enabled_qresync) {
			/* written directly: imap_session_tagged() would
			   send the BYE in place of the OK */
			imap_session_printf(s, "%s OK DELETE completed\r\n",
			    tag);
			imap_session_bye_deleted(s);
			return;
		}
		imap_session_unselect(s);
		imap_session_printf(s, "* OK [CLOSED] Selected mailbox was "
		    "deleted\r\n");
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
	if ((from = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL ||
	    (to = imap_cmd_mailbox_arg(s, tag, &args[1])) == NULL)
		return;
	if (store_mailbox_rename(s->server->store, s->user_id, from, to,
	    &err) != 0) {
		imap_cmd_store_failed(s, tag, "RENAME", err);
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
	if ((name = imap_cmd_mailbox_arg(s, tag, &args[0])) == NULL)
		return;
	if (store_mailbox_subscribe(s->server->store, s->user_id, name, sub,
	    &err) != 0) {
		imap_cmd_store_failed(s, tag, sub ? "SUBSCRIBE" : "UNSUBSCRIBE", err);
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
		imap_cmd_store_failed(s, tag, "APPEND", err);
		return;
	}
	rc = store_mailbox_lookup(r, s->user_id, name, &info, &err);
	store_read_end(&r);
	if (rc != 0) {
		if (rc == STORE_NOT_FOUND)
			imap_session_tagged(s, tag, "NO", "[TRYCREATE] Mailbox "
			    "does not exist");
		else
			imap_cmd_store_failed(s, tag, "APPEND", err);
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
		imap_cmd_store_failed(s, tag, "APPEND", err);
		return;
	}
	imap_session_tagged(s, tag, "OK", "[APPENDUID %u %u] APPEND completed",
	    uidvalidity, new_uid);
}
