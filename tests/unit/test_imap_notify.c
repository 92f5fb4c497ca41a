/* Unit tests of imap-parse-notify: NOTIFY's arguments (RFC 5465 8), the
 * rules between events, mailbox names, and the matching of events. The
 * arguments come from the real command parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-parse.h"
#include "imap-frontend/imap-parse-notify.h"

/* Parses "t NOTIFY <rest>\r\n" and its NOTIFY arguments. */
static int
notify(const char *rest, bool utf8, struct imap_notify_spec **spec_r,
    enum imap_notify_error *code_r)
{
	struct imap_parse_limits lim;
	struct imap_parser *p;
	const struct imap_command *cmd = NULL;
	char line[4096];
	size_t used = 0;
	const char *err = NULL;
	int rc;

	imap_parse_limits_default(&lim);
	p = imap_parser_new(&lim);
	imap_parser_set_authenticated(p, true);
	snprintf(line, sizeof(line), "t NOTIFY%s%s\r\n", *rest ? " " : "",
	    rest);
	ck_assert_int_eq(imap_parser_feed(p, line, strlen(line), &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_ptr_nonnull(cmd);
	rc = imap_notify_parse(cmd->args, cmd->arg_count, utf8, spec_r,
	    code_r, &err);
	if (rc != 0) {
		ck_assert_ptr_nonnull(err);
		ck_assert_ptr_null(*spec_r);
	}
	imap_parser_free(&p);
	return rc;
}

static void
expect_error(const char *rest, enum imap_notify_error want)
{
	struct imap_notify_spec *spec = NULL;
	enum imap_notify_error code;

	ck_assert_msg(notify(rest, false, &spec, &code) == -1,
	    "accepted: %s", rest);
	ck_assert_msg(code == want, "code %d for: %s", (int)code, rest);
}

START_TEST(notify_valid)
{
	struct imap_notify_spec *spec = NULL;
	enum imap_notify_error code;
	const struct imap_notify_group *g;

	ck_assert_int_eq(notify("NONE", false, &spec, &code), 0);
	ck_assert(spec->none);
	imap_notify_spec_free(&spec);
	ck_assert_ptr_null(spec);

	ck_assert_int_eq(notify("set status (selected (MessageNew (UID "
	    "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] FLAGS) MessageExpunge "
	    "flagchange)) (SUBTREE Lists (MessageNew MessageExpunge)) "
	    "(MAILBOXES (inbox \"a b\" Caf&AOk-) NONE) (personal "
	    "(MailboxName SubscriptionChange))", false, &spec, &code), 0);
	ck_assert_int_eq(code, IMAP_NOTIFY_ERR_NONE);
	ck_assert(!spec->none && spec->status);
	ck_assert_uint_eq(spec->group_count, 4);
	g = spec->selected;
	ck_assert_ptr_eq(g, &spec->groups[0]);
	ck_assert_int_eq(g->filter, IMAP_NOTIFY_SELECTED);
	ck_assert_uint_eq(g->events, IMAP_NOTIFY_EV_MESSAGE);
	ck_assert_uint_eq(spec->fetch_count, 3);
	ck_assert_int_eq(spec->fetch[0].type, IMAP_FETCH_UID);
	ck_assert_int_eq(spec->fetch[1].type, IMAP_FETCH_BODY_SECTION);
	ck_assert(spec->fetch[1].peek);
	ck_assert_uint_eq(spec->fetch[1].section.field_count, 2);
	ck_assert_str_eq(spec->fetch[1].section.fields[1], "SUBJECT");
	ck_assert_int_eq(spec->fetch[2].type, IMAP_FETCH_FLAGS);
	g = &spec->groups[1];
	ck_assert_int_eq(g->filter, IMAP_NOTIFY_SUBTREE);
	ck_assert_uint_eq(g->name_count, 1);
	ck_assert_str_eq(g->names[0], "Lists");
	g = &spec->groups[2];
	ck_assert_int_eq(g->filter, IMAP_NOTIFY_MAILBOXES);
	ck_assert_uint_eq(g->events, 0);	/* NONE */
	ck_assert_uint_eq(g->name_count, 3);
	ck_assert_str_eq(g->names[0], "INBOX");
	ck_assert_str_eq(g->names[1], "a b");
	ck_assert_str_eq(g->names[2], "Caf\xc3\xa9");
	ck_assert_uint_eq(spec->groups[3].events,
	    IMAP_NOTIFY_EV_MAILBOX_NAME | IMAP_NOTIFY_EV_SUBSCRIPTION_CHANGE);
	imap_notify_spec_free(&spec);

	/* SELECTED-DELAYED, NONE on a selected filter, no fetch-atts */
	ck_assert_int_eq(notify("SET (SELECTED-DELAYED NONE) (INBOXES "
	    "(MessageExpunge MessageNew))", false, &spec, &code), 0);
	ck_assert_int_eq(spec->selected->filter, IMAP_NOTIFY_SELECTED_DELAYED);
	ck_assert_uint_eq(spec->selected->events, 0);
	ck_assert_uint_eq(spec->fetch_count, 0);
	imap_notify_spec_free(&spec);

	/* UTF-8 names after ENABLE UTF8=ACCEPT: '&' is itself */
	ck_assert_int_eq(notify("SET (MAILBOXES (\"Caf\xc3\xa9\" a&b) "
	    "(MailboxName))", true, &spec, &code), 0);
	ck_assert_str_eq(spec->groups[0].names[0], "Caf\xc3\xa9");
	ck_assert_str_eq(spec->groups[0].names[1], "a&b");
	imap_notify_spec_free(&spec);
	imap_notify_spec_free(&spec);	/* NULL is fine */
}
END_TEST

START_TEST(notify_errors)
{
	static const char *const bad[] = {
		"SET", "SET STATUS", "NONE x", "GET (PERSONAL NONE)",
		"SET PERSONAL", "SET ()", "SET (PERSONAL)",
		"SET (BOGUS (MailboxName))", "SET (SUBTREE (MailboxName))",
		"SET (SUBTREE a b (MailboxName))",
		"SET (PERSONAL x (MailboxName))",
		"SET (PERSONAL (MessageNew))", "SET (PERSONAL (MessageExpunge))",
		"SET (PERSONAL (FlagChange))",
		"SET (PERSONAL (FlagChange MessageNew))",
		"SET (SELECTED (MailboxName))",
		"SET (SELECTED (MessageNew MessageExpunge SubscriptionChange))",
		"SET (SELECTED NONE) (SELECTED-DELAYED NONE)",
		"SET (PERSONAL (MessageNew (UID) MessageExpunge))",
		"SET (SELECTED (MessageNew (BOGUS) MessageExpunge))",
		"SET (SELECTED (MessageNew () MessageExpunge))",
		"SET (SELECTED (MessageNew (UID) MessageNew (UID) "
		    "MessageExpunge))",
		"SET (MAILBOXES () (MailboxName))",
		"SET (PERSONAL ())", "SET (PERSONAL (\"MessageNew\"))",
		"SET (PERSONAL ((MailboxName)))", "SET \"x\"",
	};

	expect_error("", IMAP_NOTIFY_ERR_BAD);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(bad[i], IMAP_NOTIFY_ERR_BAD);
	/* known to RFC 5465 but not served, or an extension's: NO */
	expect_error("SET (PERSONAL (MessageNew MessageExpunge "
	    "AnnotationChange))", IMAP_NOTIFY_ERR_BADEVENT);
	expect_error("SET (PERSONAL (MailboxMetadataChange))",
	    IMAP_NOTIFY_ERR_BADEVENT);
	expect_error("SET (PERSONAL (ServerMetadataChange))",
	    IMAP_NOTIFY_ERR_BADEVENT);
	expect_error("SET (PERSONAL (FutureThing MailboxName))",
	    IMAP_NOTIFY_ERR_BADEVENT);
	/* a rule broken beside an unknown event: BAD first */
	expect_error("SET (PERSONAL (MessageNew FutureThing))",
	    IMAP_NOTIFY_ERR_BAD);
}
END_TEST

START_TEST(notify_limits)
{
	char buf[4000];
	size_t off;
	struct imap_notify_spec *spec = NULL;
	enum imap_notify_error code;

	/* IMAP_NOTIFY_GROUPS_MAX groups pass, one more does not */
	off = snprintf(buf, sizeof(buf), "SET");
	for (int i = 0; i < IMAP_NOTIFY_GROUPS_MAX; i++)
		off += snprintf(buf + off, sizeof(buf) - off,
		    " (PERSONAL NONE)");
	ck_assert_int_eq(notify(buf, false, &spec, &code), 0);
	imap_notify_spec_free(&spec);
	snprintf(buf + off, sizeof(buf) - off, " (PERSONAL NONE)");
	expect_error(buf, IMAP_NOTIFY_ERR_BAD);

	/* IMAP_NOTIFY_NAMES_MAX names over all groups */
	off = snprintf(buf, sizeof(buf), "SET (MAILBOXES (");
	for (int i = 0; i < IMAP_NOTIFY_NAMES_MAX; i++)
		off += snprintf(buf + off, sizeof(buf) - off, "%s%d",
		    i > 0 ? " " : "", i);
	snprintf(buf + off, sizeof(buf) - off, ") NONE)");
	ck_assert_int_eq(notify(buf, false, &spec, &code), 0);
	imap_notify_spec_free(&spec);
	snprintf(buf + off, sizeof(buf) - off, ") NONE) (SUBTREE x NONE)");
	expect_error(buf, IMAP_NOTIFY_ERR_BAD);
}
END_TEST

START_TEST(notify_matching)
{
	struct imap_notify_spec *spec = NULL;
	enum imap_notify_error code;
	const unsigned NEW = IMAP_NOTIFY_EV_MESSAGE_NEW;
	const unsigned NAME = IMAP_NOTIFY_EV_MAILBOX_NAME;

	ck_assert(imap_notify_in_subtree("a", "a"));
	ck_assert(imap_notify_in_subtree("a", "a/b/c"));
	ck_assert(!imap_notify_in_subtree("a", "ab"));
	ck_assert(!imap_notify_in_subtree("a/b", "a"));

	/* the first group holding the mailbox and listing the event says
	 * yes; a NONE group holding it says no; others pass on */
	ck_assert_int_eq(notify("SET (SELECTED (MessageNew MessageExpunge)) "
	    "(MAILBOXES Quiet NONE) (SUBTREE Work (MessageNew "
	    "MessageExpunge)) (SUBSCRIBED (MailboxName)) (INBOXES "
	    "(MessageNew MessageExpunge)) (PERSONAL (MailboxName))", false,
	    &spec, &code), 0);
	ck_assert(imap_notify_wants(spec, "Work/x", false, false, NEW));
	ck_assert(!imap_notify_wants(spec, "Workshop", false, false, NEW));
	ck_assert(imap_notify_wants(spec, "Workshop", false, false, NAME));
	ck_assert(!imap_notify_wants(spec, "Quiet", true, true, NEW));
	ck_assert(!imap_notify_wants(spec, "Quiet", true, true, NAME));
	ck_assert(imap_notify_wants(spec, "Sub", true, false, NAME));
	ck_assert(!imap_notify_wants(spec, "Sub", true, false, NEW));
	ck_assert(imap_notify_wants(spec, "INBOX", false, true, NEW));
	ck_assert(!imap_notify_wants(spec, "Other", false, false,
	    IMAP_NOTIFY_EV_FLAG_CHANGE));
	ck_assert(!imap_notify_wants(spec, "Other", false, false,
	    IMAP_NOTIFY_EV_SUBSCRIPTION_CHANGE));
	imap_notify_spec_free(&spec);

	ck_assert_int_eq(notify("NONE", false, &spec, &code), 0);
	ck_assert(!imap_notify_wants(spec, "INBOX", true, true, NEW));
	imap_notify_spec_free(&spec);
	ck_assert(!imap_notify_wants(NULL, "INBOX", true, true, NEW));
}
END_TEST

static Suite *
notify_suite(void)
{
	Suite *s = suite_create("imap_notify");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, notify_valid);
	tcase_add_test(tc, notify_errors);
	tcase_add_test(tc, notify_limits);
	tcase_add_test(tc, notify_matching);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(notify_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
