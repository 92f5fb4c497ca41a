/*
 * imap-parse-notify — the NOTIFY command's arguments (RFC 5465 8) as a
 * filter specification, and the matching of events against it. Pure
 * (level 1): no I/O, no store; the session side is imap-notify.c.
 *
 *   NOTIFY NONE
 *   NOTIFY SET [STATUS] (filter events) (filter events) ...
 *   filter = SELECTED / SELECTED-DELAYED / INBOXES / PERSONAL /
 *            SUBSCRIBED / SUBTREE mailboxes / MAILBOXES mailboxes
 *   events = NONE / "(" event *(SP event) ")"
 *   event  = MessageNew [SP "(" fetch-att ... ")"] / MessageExpunge /
 *            FlagChange / MailboxName / SubscriptionChange / ...
 */
#ifndef POPGATE_IMAP_PARSE_NOTIFY_H
#define POPGATE_IMAP_PARSE_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "imap-parse.h"

/* Event groups in one NOTIFY SET: a client names a handful (Evolution
 * sends three); each is matched against every event. */
#define IMAP_NOTIFY_GROUPS_MAX 32
/* Mailbox names over all SUBTREE / MAILBOXES filters of one NOTIFY SET
 * (each compared with every event's mailbox). */
#define IMAP_NOTIFY_NAMES_MAX 256
/* fetch-atts after MessageNew (a FETCH response per new message). */
#define IMAP_NOTIFY_FETCH_ATTS_MAX 32

enum imap_notify_filter {
	IMAP_NOTIFY_SELECTED = 0,
	IMAP_NOTIFY_SELECTED_DELAYED,
	IMAP_NOTIFY_INBOXES,
	IMAP_NOTIFY_PERSONAL,
	IMAP_NOTIFY_SUBSCRIBED,
	IMAP_NOTIFY_SUBTREE,
	IMAP_NOTIFY_MAILBOXES,
};

#define IMAP_NOTIFY_EV_MESSAGE_NEW 0x01u
#define IMAP_NOTIFY_EV_MESSAGE_EXPUNGE 0x02u
#define IMAP_NOTIFY_EV_FLAG_CHANGE 0x04u
#define IMAP_NOTIFY_EV_MAILBOX_NAME 0x08u
#define IMAP_NOTIFY_EV_SUBSCRIPTION_CHANGE 0x10u
#define IMAP_NOTIFY_EV_MESSAGE (IMAP_NOTIFY_EV_MESSAGE_NEW | \
	IMAP_NOTIFY_EV_MESSAGE_EXPUNGE | IMAP_NOTIFY_EV_FLAG_CHANGE)
/* The events this server sends: the text of NO [BADEVENT (...)]. */
#define IMAP_NOTIFY_SUPPORTED_EVENTS "MessageNew MessageExpunge FlagChange " \
	"MailboxName SubscriptionChange"

struct imap_notify_group {
	enum imap_notify_filter filter;
	unsigned events;	/* IMAP_NOTIFY_EV_*; 0 for NONE */
	/* SUBTREE / MAILBOXES: the names as the store spells them (UTF-8,
	 * INBOX upper-case); in the spec's arena. */
	const char **names;
	size_t name_count;
};

struct imap_notify_spec {
	struct arena *arena;	/* everything below lives in it */
	bool none;		/* NOTIFY NONE */
	bool status;		/* SET STATUS: STATUS of each mailbox now */
	struct imap_notify_group *groups;
	size_t group_count;
	/* The SELECTED or SELECTED-DELAYED group (at most one), or NULL. */
	const struct imap_notify_group *selected;
	/* Its MessageNew's fetch-atts (none: only EXISTS is sent). */
	struct imap_fetch_att *fetch;
	size_t fetch_count;
};

enum imap_notify_error {
	IMAP_NOTIFY_ERR_NONE = 0,
	IMAP_NOTIFY_ERR_BAD,		/* tagged BAD: syntax or a rule */
	IMAP_NOTIFY_ERR_BADEVENT,	/* NO [BADEVENT (supported)] */
};

/*
 * Parses the arguments after "NOTIFY". Mailbox names are decoded from
 * modified UTF-7, or taken as UTF-8 when utf8 (ENABLE UTF8=ACCEPT).
 * 0 with *spec_r (free with imap_notify_spec_free), or -1 with *code_r
 * and a static *error_r. Enforces RFC 5465's rules: MessageNew and
 * MessageExpunge together, FlagChange only with them, one selected
 * filter with message events only, fetch-atts only there.
 */
int imap_notify_parse(const struct imap_arg *args, size_t argc, bool utf8,
    struct imap_notify_spec **spec_r, enum imap_notify_error *code_r,
    const char **error_r);
void imap_notify_spec_free(struct imap_notify_spec **specp);

/* name is root or below it ("a" holds "a/b", not "ab"). */
bool imap_notify_in_subtree(const char *root, const char *name);

/*
 * Whether an event ev (one IMAP_NOTIFY_EV_ bit) about the mailbox name,
 * which is not the selected mailbox (its message events are decided by
 * spec->selected alone), is to be sent: the groups are tried in order;
 * a group whose filter holds the mailbox and lists ev says yes, one
 * whose events are NONE says no, others pass on. subscribed: the
 * mailbox's subscription (for SUBSCRIBED). inbox: the mailbox receives
 * new mail (for INBOXES).
 */
bool imap_notify_wants(const struct imap_notify_spec *spec, const char *name,
    bool subscribed, bool inbox, unsigned ev);

#endif
