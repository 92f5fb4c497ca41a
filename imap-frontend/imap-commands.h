/*
 * imap-commands — the command table and the handlers (internal).
 *
 * Every handler gets the session, the tag and the arguments after the
 * command name (after "UID <name>" for UID forms, with uid = true). It
 * writes its untagged responses and exactly one tagged response, unless
 * it switches the session into a mode that spans events (IDLE, SASL,
 * AUTH_WAIT, CONTINUE); then it keeps a copy of the tag in s->tag and the
 * mode's handler writes the tagged response later.
 */
#ifndef POPGATE_IMAP_COMMANDS_H
#define POPGATE_IMAP_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct imap_arg;
struct imap_command;
struct imap_session;
struct strbuf;

typedef void imap_cmd_fn(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid);

/* The command may follow "UID". */
#define IMAP_CMD_UID 0x1u
/* Untagged EXPUNGE must not be sent while it runs (non-UID FETCH, STORE,
 * SEARCH: RFC 3501 7.4.1). */
#define IMAP_CMD_NO_EXPUNGE 0x2u
/* The command leaves the selected mailbox without reading it (SELECT,
 * EXAMINE, CLOSE, UNSELECT, LOGOUT): it may still run after the mailbox
 * was deleted by another session; every other command gets BYE then. */
#define IMAP_CMD_LEAVES 0x4u

struct imap_cmd_def {
	const char *name;
	imap_cmd_fn *fn;
	unsigned states;	/* IMAP_STATE_* where it is allowed */
	unsigned flags;
};

/* Looks the command up and runs it (or answers BAD/NO). */
void imap_cmd_dispatch(struct imap_session *s, const struct imap_command *cmd);

/* The line the client sent after "+ " during AUTHENTICATE. */
void imap_cmd_authenticate_response(struct imap_session *s, const char *line,
    size_t len);

/* Handlers (imap-cmd-*.c). */
imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout,
    imap_cmd_starttls, imap_cmd_login, imap_cmd_authenticate, imap_cmd_id,
    imap_cmd_enable, imap_cmd_namespace, imap_cmd_idle, imap_cmd_check,
    imap_cmd_compress;
imap_cmd_fn imap_cmd_select, imap_cmd_examine, imap_cmd_create,
    imap_cmd_delete, imap_cmd_rename, imap_cmd_subscribe,
    imap_cmd_unsubscribe, imap_cmd_list, imap_cmd_lsub, imap_cmd_status,
    imap_cmd_append, imap_cmd_close, imap_cmd_unselect, imap_cmd_expunge;
imap_cmd_fn imap_cmd_fetch, imap_cmd_store, imap_cmd_search, imap_cmd_copy,
    imap_cmd_move, imap_cmd_sort, imap_cmd_thread;

/*
 * SORT and THREAD (imap-cmd-sort.c) run a SEARCH job (imap-cmd-msg.c:
 * chunked on a worker, over a copy of the view) with these hooks. ctx is
 * the caller's and owned by the job from imap_search_submit() on (free
 * is called with it once, whatever happens).
 */
struct imap_msgview;
struct imap_search_program;
struct store_msg;
struct arena;
struct imap_search_hooks {
	/* Worker: a message matched (seq: its sequence number); the view
	 * loads its structure and body on demand. Non-zero: fail. */
	int (*hit)(void *ctx, struct imap_msgview *view,
	    const struct store_msg *m, uint32_t seq);
	/* Worker: every chunk is done (sort or thread here). */
	void (*done)(void *ctx);
	/* Loop: write the responses and the tagged answer. */
	void (*finish)(struct imap_session *s, const char *tag, void *ctx,
	    bool error, bool cancelled);
	void (*free)(void *ctx);
	void *ctx;
};
/* Search keys args[0..n) with each "$" (SEARCHRES, RFC 5182) made the
 * saved UIDs, copied into arena (args itself when there is no "$"
 * to replace: no mailbox selected or no keys). */
const struct imap_arg *imap_search_saved_args(struct imap_session *s,
    struct arena *arena, const struct imap_arg *args, size_t n);
/* Takes arena and prog (from imap_search_parse). */
void imap_search_submit(struct imap_session *s, const char *tag,
    struct arena *arena, struct imap_search_program *prog, bool uid,
    const struct imap_search_hooks *hooks);
imap_cmd_fn imap_cmd_getquota, imap_cmd_getquotaroot, imap_cmd_setquota;

/* Helpers the mailbox commands share (imap-cmd-mailbox.c). */

/* The store name (UTF-8) of a mailbox argument, in the scratch arena, or
 * NULL after answering the command (BAD / NO). */
const char *imap_cmd_mailbox_arg(struct imap_session *s, const char *tag,
    const struct imap_arg *arg);
/* Appends the wire form of a UTF-8 store name: an mUTF-7 astring, or
 * the UTF-8 name itself when the session enabled UTF8=ACCEPT (utf8). */
void imap_cmd_format_mailbox(struct strbuf *sb, const char *name, bool utf8);
/* A client's mailbox name to the store's (mUTF-7 decoded, or UTF-8 as it
 * is after ENABLE UTF8=ACCEPT), appended to out: 0 or -1 + *error_r. */
int imap_cmd_mailbox_decode(const struct imap_session *s, const char *wire,
    size_t len, struct strbuf *out, const char **error_r);
/* A snapshot (*r_r, the caller ends it) and the mailbox name's info; or
 * -1 after answering NO ([NONEXISTENT] or the store's error) for what. */
int imap_cmd_mailbox_open(struct imap_session *s, const char *tag,
    const char *what, const char *name, struct store_read **r_r,
    struct store_mailbox_info *info_r);
/* Answers NO with the response code that fits the store's last error;
 * logs the errors that are the server's fault. */
void imap_cmd_store_failed(struct imap_session *s, const char *tag,
    const char *what, enum store_error cls, const char *err);

#endif
