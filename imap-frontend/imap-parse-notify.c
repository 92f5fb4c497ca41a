/* imap-parse-notify — NOTIFY's filters and events (RFC 5465). */
#include "imap-parse-notify.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-utf7.h"
#include "strbuf.h"
#include "xmalloc.h"

#define NOTIFY_ARENA_CHUNK 2048

struct notify_parse {
	struct imap_notify_spec *spec;
	bool utf8;
	size_t names;		/* over all groups */
	enum imap_notify_error code;
	const char *error;
};

static int
fail(struct notify_parse *p, enum imap_notify_error code, const char *error)
{
	p->code = code;
	p->error = error;
	return -1;
}

/* A mailbox argument as the store names it: decoded, INBOX in upper
 * case when it is the first component ("inbox/x" is "INBOX/x"). */
static int
parse_name(struct notify_parse *p, const struct imap_arg *arg,
    const char **name_r)
{
	const char *wire, *err;
	size_t len;
	struct strbuf sb = STRBUF_INIT;
	int rc;

	if (!imap_arg_get_astring(arg, &wire, &len))
		return fail(p, IMAP_NOTIFY_ERR_BAD, "Invalid mailbox name");
	rc = p->utf8 ? imap_mailbox_name_from_utf8(wire, len, &sb, &err) :
	    imap_mailbox_name_from_wire(wire, len, &sb, &err);
	if (rc != 0) {
		strbuf_free(&sb);
		return fail(p, IMAP_NOTIFY_ERR_BAD, "Invalid mailbox name");
	}
	if (sb.len >= 5 && strncasecmp(sb.data, "INBOX", 5) == 0 &&
	    (sb.len == 5 || sb.data[5] == '/'))
		memcpy(sb.data, "INBOX", 5);
	*name_r = arena_strndup(p->spec->arena, sb.len > 0 ? sb.data : "",
	    sb.len);
	strbuf_free(&sb);
	return 0;
}

/* one-or-more-mailbox: a mailbox, or a parenthesised list of them. */
static int
parse_names(struct notify_parse *p, const struct imap_arg *arg,
    struct imap_notify_group *g)
{
	const struct imap_arg *l = arg;
	size_t n = 1;

	if (arg->type == IMAP_ARG_LIST) {
		l = arg->list;
		n = arg->list_count;
		if (n == 0)
			return fail(p, IMAP_NOTIFY_ERR_BAD, "Empty mailbox "
			    "list");
	}
	if (n > IMAP_NOTIFY_NAMES_MAX - p->names)
		return fail(p, IMAP_NOTIFY_ERR_BAD, "Too many mailbox names");
	p->names += n;
	g->names = arena_alloc(p->spec->arena, n * sizeof(*g->names));
	g->name_count = n;
	for (size_t i = 0; i < n; i++)
		if (parse_name(p, &l[i], &g->names[i]) != 0)
			return -1;
	return 0;
}

static const struct {
	const char *name;
	unsigned ev;		/* 0: known but not supported */
} event_names[] = {
	{ "MessageNew", IMAP_NOTIFY_EV_MESSAGE_NEW },
	{ "MessageExpunge", IMAP_NOTIFY_EV_MESSAGE_EXPUNGE },
	{ "FlagChange", IMAP_NOTIFY_EV_FLAG_CHANGE },
	{ "MailboxName", IMAP_NOTIFY_EV_MAILBOX_NAME },
	{ "SubscriptionChange", IMAP_NOTIFY_EV_SUBSCRIPTION_CHANGE },
};

static int
parse_fetch_atts(struct notify_parse *p, const struct imap_arg *arg)
{
	struct imap_notify_spec *spec = p->spec;
	const char *err;

	if (arg->list_count == 0 ||
	    arg->list_count > IMAP_NOTIFY_FETCH_ATTS_MAX)
		return fail(p, IMAP_NOTIFY_ERR_BAD, "Invalid MessageNew fetch "
		    "attributes");
	if (spec->fetch != NULL)
		return fail(p, IMAP_NOTIFY_ERR_BAD, "MessageNew given twice");
	spec->fetch = arena_zalloc(spec->arena,
	    arg->list_count * sizeof(*spec->fetch));
	for (size_t i = 0; i < arg->list_count; i++) {
		if (imap_parse_fetch_att(&arg->list[i], spec->arena,
		    &spec->fetch[i], &err) != 0)
			return fail(p, IMAP_NOTIFY_ERR_BAD, "Invalid MessageNew "
			    "fetch attribute");
	}
	spec->fetch_count = arg->list_count;
	return 0;
}

/* events = NONE / "(" event *(SP event) ")" */
static int
parse_events(struct notify_parse *p, const struct imap_arg *arg,
    struct imap_notify_group *g)
{
	bool selected = g->filter == IMAP_NOTIFY_SELECTED ||
	    g->filter == IMAP_NOTIFY_SELECTED_DELAYED;
	bool unsupported = false;
	unsigned ev = 0;

	if (imap_arg_atom_equals(arg, "NONE")) {
		g->events = 0;
		return 0;
	}
	if (arg->type != IMAP_ARG_LIST || arg->list_count == 0)
		return fail(p, IMAP_NOTIFY_ERR_BAD, "Events must be NONE or a "
		    "list");
	for (size_t i = 0; i < arg->list_count; i++) {
		const struct imap_arg *e = &arg->list[i];
		const char *name;
		unsigned bit = 0;
		size_t k;

		if (!imap_arg_get_atom(e, &name))
			return fail(p, IMAP_NOTIFY_ERR_BAD, "Invalid event");
		for (k = 0; k < N_ELEMENTS(event_names); k++)
			if (strcasecmp(name, event_names[k].name) == 0)
				break;
		if (k == N_ELEMENTS(event_names))
			unsupported = true;	/* an extension's event */
		else
			bit = event_names[k].ev;
		if (bit == IMAP_NOTIFY_EV_MESSAGE_NEW &&
		    i + 1 < arg->list_count &&
		    arg->list[i + 1].type == IMAP_ARG_LIST) {
			if (!selected)
				return fail(p, IMAP_NOTIFY_ERR_BAD, "MessageNew "
				    "fetch attributes are only for SELECTED");
			if (parse_fetch_atts(p, &arg->list[++i]) != 0)
				return -1;
		}
		ev |= bit;
	}
	/* RFC 5465 5: these go together (or the client loses track) */
	if (!!(ev & IMAP_NOTIFY_EV_MESSAGE_NEW) !=
	    !!(ev & IMAP_NOTIFY_EV_MESSAGE_EXPUNGE))
		return fail(p, IMAP_NOTIFY_ERR_BAD, "MessageNew and "
		    "MessageExpunge must be given together");
	if ((ev & IMAP_NOTIFY_EV_FLAG_CHANGE) &&
	    !(ev & IMAP_NOTIFY_EV_MESSAGE_NEW))
		return fail(p, IMAP_NOTIFY_ERR_BAD, "FlagChange needs "
		    "MessageNew and MessageExpunge");
	if (selected && (ev & ~IMAP_NOTIFY_EV_MESSAGE) != 0)
		return fail(p, IMAP_NOTIFY_ERR_BAD, "SELECTED takes message "
		    "events only");
	if (unsupported)
		return fail(p, IMAP_NOTIFY_ERR_BADEVENT, "Unsupported event");
	g->events = ev;
	return 0;
}

static const struct {
	const char *name;
	enum imap_notify_filter filter;
	bool names;
} filter_names[] = {
	{ "SELECTED", IMAP_NOTIFY_SELECTED, false },
	{ "SELECTED-DELAYED", IMAP_NOTIFY_SELECTED_DELAYED, false },
	{ "INBOXES", IMAP_NOTIFY_INBOXES, false },
	{ "PERSONAL", IMAP_NOTIFY_PERSONAL, false },
	{ "SUBSCRIBED", IMAP_NOTIFY_SUBSCRIBED, false },
	{ "SUBTREE", IMAP_NOTIFY_SUBTREE, true },
	{ "MAILBOXES", IMAP_NOTIFY_MAILBOXES, true },
};

/* event-group = "(" filter-mailboxes SP events ")" */
static int
parse_group(struct notify_parse *p, const struct imap_arg *arg,
    struct imap_notify_group *g)
{
	const struct imap_arg *l = arg->list;
	const char *name;
	size_t k, want;

	if (arg->type != IMAP_ARG_LIST || arg->list_count == 0 ||
	    !imap_arg_get_atom(&l[0], &name))
		return fail(p, IMAP_NOTIFY_ERR_BAD, "Invalid event group");
	for (k = 0; k < N_ELEMENTS(filter_names); k++)
		if (strcasecmp(name, filter_names[k].name) == 0)
			break;
	if (k == N_ELEMENTS(filter_names))
		return fail(p, IMAP_NOTIFY_ERR_BAD, "Unknown mailbox filter");
	g->filter = filter_names[k].filter;
	want = filter_names[k].names ? 3 : 2;
	if (arg->list_count != want)
		return fail(p, IMAP_NOTIFY_ERR_BAD, "Invalid event group");
	if (filter_names[k].names && parse_names(p, &l[1], g) != 0)
		return -1;
	return parse_events(p, &l[want - 1], g);
}

int
imap_notify_parse(const struct imap_arg *args, size_t argc, bool utf8,
    struct imap_notify_spec **spec_r, enum imap_notify_error *code_r,
    const char **error_r)
{
	struct notify_parse p = { .utf8 = utf8 };
	struct imap_notify_spec *spec;
	size_t i = 1, n;

	*spec_r = NULL;
	*code_r = IMAP_NOTIFY_ERR_BAD;
	if (argc == 0) {
		*error_r = "NOTIFY needs SET or NONE";
		return -1;
	}
	if (imap_arg_atom_equals(&args[0], "NONE")) {
		if (argc != 1) {
			*error_r = "NOTIFY NONE takes no arguments";
			return -1;
		}
		spec = xcalloc(1, sizeof(*spec));
		spec->none = true;
		*spec_r = spec;
		*code_r = IMAP_NOTIFY_ERR_NONE;
		return 0;
	}
	if (!imap_arg_atom_equals(&args[0], "SET")) {
		*error_r = "NOTIFY needs SET or NONE";
		return -1;
	}
	spec = xcalloc(1, sizeof(*spec));
	spec->arena = arena_new(NOTIFY_ARENA_CHUNK);
	p.spec = spec;
	if (i < argc && imap_arg_atom_equals(&args[i], "STATUS")) {
		spec->status = true;
		i++;
	}
	n = argc - i;
	if (n == 0 || n > IMAP_NOTIFY_GROUPS_MAX) {
		fail(&p, IMAP_NOTIFY_ERR_BAD, n == 0 ? "NOTIFY SET needs an "
		    "event group" : "Too many event groups");
		goto err;
	}
	spec->groups = arena_zalloc(spec->arena, n * sizeof(*spec->groups));
	spec->group_count = n;
	for (size_t k = 0; k < n; k++) {
		struct imap_notify_group *g = &spec->groups[k];

		if (parse_group(&p, &args[i + k], g) != 0)
			goto err;
		if (g->filter != IMAP_NOTIFY_SELECTED &&
		    g->filter != IMAP_NOTIFY_SELECTED_DELAYED)
			continue;
		if (spec->selected != NULL) {
			fail(&p, IMAP_NOTIFY_ERR_BAD, "Only one SELECTED or "
			    "SELECTED-DELAYED filter");
			goto err;
		}
		spec->selected = g;
	}
	*spec_r = spec;
	*code_r = IMAP_NOTIFY_ERR_NONE;
	return 0;
err:
	*code_r = p.code;
	*error_r = p.error;
	imap_notify_spec_free(&spec);
	return -1;
}

void
imap_notify_spec_free(struct imap_notify_spec **specp)
{
	struct imap_notify_spec *spec = *specp;

	if (spec == NULL)
		return;
	*specp = NULL;
	arena_free(&spec->arena);
	free(spec);
}

bool
imap_notify_in_subtree(const char *root, const char *name)
{
	size_t n = strlen(root);

	return strncmp(root, name, n) == 0 &&
	    (name[n] == '\0' || name[n] == '/');
}

static bool
group_holds(const struct imap_notify_group *g, const char *name,
    bool subscribed, bool inbox)
{
	switch (g->filter) {
	case IMAP_NOTIFY_SELECTED:
	case IMAP_NOTIFY_SELECTED_DELAYED:
		return false;
	case IMAP_NOTIFY_INBOXES:
		return inbox;
	case IMAP_NOTIFY_PERSONAL:
		return true;	/* one namespace: all of the user's */
	case IMAP_NOTIFY_SUBSCRIBED:
		return subscribed;
	case IMAP_NOTIFY_SUBTREE:
		for (size_t i = 0; i < g->name_count; i++)
			if (imap_notify_in_subtree(g->names[i], name))
				return true;
		return false;
	case IMAP_NOTIFY_MAILBOXES:
		for (size_t i = 0; i < g->name_count; i++)
			if (strcmp(g->names[i], name) == 0)
				return true;
		return false;
	}
	return false;
}

bool
imap_notify_wants(const struct imap_notify_spec *spec, const char *name,
    bool subscribed, bool inbox, unsigned ev)
{
	if (spec == NULL || spec->none)
		return false;
	for (size_t i = 0; i < spec->group_count; i++) {
		const struct imap_notify_group *g = &spec->groups[i];

		if (!group_holds(g, name, subscribed, inbox))
			continue;
		if (g->events == 0)
			return false;
		if (g->events & ev)
			return true;
	}
	return false;
}
