/* Check suite for gateway/control-proto: request validation (every error
 * class, for every command's required fields) and the CSV splitter. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/control-proto.h"

struct req_case {
	const char *line;
	const char *code;	/* NULL: valid */
	const char *field;	/* expected error field, or NULL */
	const char *message;	/* expected message, or NULL: not checked */
};

static const struct req_case req_cases[] = {
	/* issue 18's commands */
	{ "{\"command\":\"backup\",\"path\":\"/var/backups/p.mdb\"}", NULL,
	  NULL, NULL },
	{ "{\"command\":\"backup\",\"path\":\"p.mdb\"}", "invalid-value",
	  "path", NULL },
	{ "{\"command\":\"backup\",\"path\":\"/a\\nb\"}", "invalid-value",
	  "path", NULL },
	{ "{\"command\":\"account.history\",\"user\":\"a\",\"account\":"
	  "\"b\",\"limit\":5}", NULL, NULL, NULL },
	{ "{\"command\":\"account.history\",\"user\":\"a\",\"account\":"
	  "\"b\",\"limit\":0}", "invalid-value", "limit", NULL },
	{ "{\"command\":\"account.history\",\"user\":\"a\",\"account\":"
	  "\"b\",\"limit\":1001}", "invalid-value", "limit", NULL },
	{ "{\"command\":\"trace\"}", NULL, NULL, NULL },
	{ "{\"command\":\"trace\",\"user\":\"a\",\"on\":true}", NULL, NULL,
	  NULL },
	{ "{\"command\":\"trace\",\"session\":\"7\",\"on\":true}",
	  "wrong-type", "session", NULL },
	{ "{\"command\":\"stats\"}", NULL, NULL, NULL },
	{ "{\"command\":\"stats\",\"id\":7}", NULL, NULL, NULL },
	{ " { \"command\" : \"shutdown\" } ", NULL, NULL, NULL },
	{ "{\"command\":\"user.add\",\"user\":\"alice\",\"password\":\"pw\"}",
	  NULL, NULL, NULL },
	{ "{\"command\":\"account.add\",\"user\":\"alice\",\"host\":\"pop."
	  "example.org\",\"port\":995,\"tls\":\"pop3s\",\"login\":\"a\","
	  "\"password\":\"x\",\"mode\":\"delete-after:30\",\"folder\":\"Old\","
	  "\"interval\":600}", NULL, NULL, NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":995,\"tls\":\"pop3s\",\"login\":\"a\","
	  "\"password\":\"x\",\"auth\":\"cram-md5\"}", NULL, NULL, NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":995,\"tls\":\"pop3s\",\"login\":\"a\","
	  "\"password\":\"x\",\"auth\":\"digest-md5\"}", "invalid-value",
	  "auth", "\"auth\": expected auto, user, apop, plain, login, "
	  "cram-md5, scram-sha-1, scram-sha-256, xoauth2 or oauthbearer" },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":995,\"tls\":\"pop3s\",\"login\":\"a\","
	  "\"password\":\"x\",\"auth\":\"login\"}", NULL, NULL, NULL },
	{ "{\"command\":\"poll\"}", NULL, NULL, NULL },
	{ "{\"command\":\"status\",\"user\":null}", NULL, NULL, NULL },

	{ "", "bad-json", NULL, NULL },
	{ "{\"command\":", "bad-json", NULL, NULL },
	{ "{\"command\":\"stats\"} trailing", "bad-json", NULL, NULL },
	{ "{'command':'stats'}", "bad-json", NULL, NULL },
	{ "{\"command\":\"stats\",\"command\":\"shutdown\"}", "bad-json", NULL,
	  NULL },
	{ "{\"command\":\"user.add\",\"user\":\"a\\u0000b\",\"password\":\"\"}",
	  "bad-json", NULL, NULL },
	{ "[\"stats\"]", "not-an-object", NULL,
	  "a request is a JSON object" },
	{ "\"stats\"", "not-an-object", NULL, NULL },
	{ "{}", "missing-field", "command", "\"command\" is required" },
	{ "{\"command\":42}", "wrong-type", "command",
	  "\"command\" must be a string" },
	{ "{\"command\":\"frobnicate\"}", "unknown-command", "command",
	  "unknown command \"frobnicate\"" },
	{ "{\"command\":\"user.add\\u001b[2J\"}", "unknown-command", "command",
	  "unknown command \"user.add\\x1b[2J\"" },
	{ "{\"command\":\"user.add\",\"user\":\"alice\"}", "missing-field",
	  "password", "user.add needs \"password\"" },
	{ "{\"command\":\"user.add\",\"password\":\"x\"}", "missing-field",
	  "user", "user.add needs \"user\"" },
	{ "{\"command\":\"user.add\",\"user\":7,\"password\":\"x\"}",
	  "wrong-type", "user", "\"user\" must be a string" },
	{ "{\"command\":\"user.add\",\"user\":\"a\",\"password\":\"x\","
	  "\"pasword\":\"y\"}", "unknown-field", NULL,
	  "user.add has no field \"pasword\"" },
	{ "{\"command\":\"user.add\",\"user\":\"\",\"password\":\"x\"}",
	  "invalid-value", "user", "\"user\": must be 1 to 255 bytes" },
	{ "{\"command\":\"user.add\",\"user\":\"a/b\",\"password\":\"x\"}",
	  "invalid-value", "user", NULL },
	{ "{\"command\":\"user.add\",\"user\":\"a\\nb\",\"password\":\"x\"}",
	  "invalid-value", "user", NULL },
	{ "{\"command\":\"user.delete\",\"user\":[\"a\"]}", "wrong-type",
	  "user", NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":\"995\",\"tls\":\"pop3s\",\"login\":\"a\","
	  "\"password\":\"x\"}", "wrong-type", "port",
	  "\"port\" must be an integer" },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":99.5,\"tls\":\"pop3s\",\"login\":\"a\","
	  "\"password\":\"x\"}", "wrong-type", "port", NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":70000,\"tls\":\"pop3s\",\"login\":\"a\","
	  "\"password\":\"x\"}", "invalid-value", "port",
	  "\"port\": must be from 1 to 65535" },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":995,\"tls\":\"ssl\",\"login\":\"a\","
	  "\"password\":\"x\"}", "invalid-value", "tls",
	  "\"tls\": expected pop3s, stls or none" },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":995,\"tls\":\"none\",\"login\":\"a\","
	  "\"password\":\"x\",\"mode\":\"purge\"}", "invalid-value", "mode",
	  NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":995,\"tls\":\"none\",\"login\":\"a\","
	  "\"password\":\"x\",\"interval\":5}", "invalid-value", "interval",
	  NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h h\","
	  "\"port\":995,\"tls\":\"none\",\"login\":\"a\","
	  "\"password\":\"x\"}", "invalid-value", "host", NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"host\":\"h\","
	  "\"port\":995,\"tls\":\"none\",\"login\":\"a\"}", "missing-field",
	  "password", NULL },
	{ "{\"command\":\"account.enable\",\"user\":\"a\"}", "missing-field",
	  "account", NULL },
	/* issue 16: host, port, tls from an OAuth provider; no password
	   for an OAuth mechanism; trust fields checked */
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"login\":\"a\","
	  "\"port\":995,\"tls\":\"pop3s\",\"password\":\"x\"}",
	  "missing-field", "host", "account.add needs \"host\"" },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"login\":\"a\","
	  "\"oauth_provider\":\"microsoft\"}", NULL, NULL, NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"login\":\"a\","
	  "\"host\":\"h\",\"port\":995,\"tls\":\"pop3s\","
	  "\"auth\":\"xoauth2\"}", NULL, NULL, NULL },
	{ "{\"command\":\"account.add\",\"user\":\"a\",\"login\":\"a\","
	  "\"host\":\"h\",\"port\":995,\"tls\":\"pop3s\","
	  "\"auth\":\"scram-sha-256\"}", "missing-field", "password", NULL },
	{ "{\"command\":\"account.set\",\"user\":\"a\",\"account\":\"b\","
	  "\"fingerprint\":\"ab:cd\"}", "invalid-value", "fingerprint", NULL },
	{ "{\"command\":\"account.set\",\"user\":\"a\",\"account\":\"b\","
	  "\"fingerprint\":\"\"}", NULL, NULL, NULL },
	{ "{\"command\":\"account.set\",\"user\":\"a\",\"account\":\"b\","
	  "\"fingerprint\":\"00112233445566778899AABBCCDDEEFF00112233445566778899"
	  "aabbccddeeff\"}", NULL, NULL, NULL },
	{ "{\"command\":\"account.set\",\"user\":\"a\",\"account\":\"b\","
	  "\"ca_file\":\"relative.pem\"}", "invalid-value", "ca_file", NULL },
	{ "{\"command\":\"account.set\",\"user\":\"a\",\"account\":\"b\","
	  "\"ca_only\":\"yes\"}", "wrong-type", "ca_only", NULL },
	{ "{\"command\":\"account.set\",\"user\":\"a\",\"account\":\"b\","
	  "\"oauth_provider\":\"Big Co\"}", "invalid-value", "oauth_provider",
	  NULL },
	{ "{\"command\":\"account.enable\",\"user\":\"a\",\"account\":"
	  "\"a b\"}", "invalid-value", "account",
	  "\"account\": may contain only letters, digits and ._@+-" },
	{ "{\"command\":\"import\",\"csv\":true}", "wrong-type", "csv",
	  "\"csv\" must be a string" },
	{ "{\"command\":\"import\",\"csv\":\"\",\"dry_run\":1}", "wrong-type",
	  "dry_run", "\"dry_run\" must be true or false" },
	{ "{\"command\":\"stats\",\"verbose\":true}", "unknown-field", NULL,
	  NULL },
};

START_TEST(request_validation)
{
	const struct req_case *rc = &req_cases[_i];
	const struct ctl_command *cmd = NULL;
	json_t *req = NULL;
	struct ctl_error err;
	int ret;

	memset(&err, 0, sizeof(err));
	ret = ctl_request_parse(rc->line, strlen(rc->line), &cmd, &req, &err);
	if (rc->code == NULL) {
		ck_assert_msg(ret == 0, "%s: %s %s", rc->line,
		    err.code ? err.code : "", err.message);
		ck_assert_ptr_nonnull(cmd);
		ck_assert(json_is_object(req));
		json_decref(req);
		return;
	}
	ck_assert_int_eq(ret, -1);
	ck_assert_str_eq(err.code, rc->code);
	if (rc->field == NULL)
		ck_assert_ptr_null(err.field);
	else
		ck_assert_str_eq(err.field, rc->field);
	if (rc->message != NULL)
		ck_assert_str_eq(err.message, rc->message);
}
END_TEST

/* Every required field of every command, left out, is named. */
START_TEST(every_required_field_is_enforced)
{
	const struct ctl_command *c = &ctl_commands[_i];
	json_t *full = json_pack("{s:s}", "command", c->name);

	for (const struct ctl_field *f = c->fields; f->name; f++) {
		/* account.add's host, port, tls and password are required
		   by its cross-field check (unless OAuth): give them too */
		bool cond = c->check != NULL && (strcmp(f->name, "host") == 0 ||
		    strcmp(f->name, "port") == 0 ||
		    strcmp(f->name, "tls") == 0 ||
		    strcmp(f->name, "password") == 0);

		if (!f->required && !cond)
			continue;
		json_object_set_new(full, f->name,
		    f->type == CTL_T_INT ? json_integer(995) :
		    f->type == CTL_T_BOOL ? json_true() :
		    json_string(strcmp(f->name, "tls") == 0 ? "none" :
		    f->check == CTL_C_PATH ? "/x" : "x"));
	}
	{
		char *s = json_dumps(full, 0);
		const struct ctl_command *cmd;
		json_t *req;
		struct ctl_error err;

		ck_assert_int_eq(ctl_request_parse(s, strlen(s), &cmd, &req,
		    &err), 0);
		ck_assert_ptr_eq(cmd, c);
		json_decref(req);
		free(s);
	}
	for (const struct ctl_field *f = c->fields; f->name; f++) {
		json_t *copy;
		char *s;
		const struct ctl_command *cmd;
		json_t *req;
		struct ctl_error err;

		if (!f->required)
			continue;
		copy = json_deep_copy(full);
		json_object_del(copy, f->name);
		s = json_dumps(copy, 0);
		ck_assert_int_eq(ctl_request_parse(s, strlen(s), &cmd, &req,
		    &err), -1);
		ck_assert_str_eq(err.code, CTL_E_MISSING_FIELD);
		ck_assert_str_eq(err.field, f->name);
		/* and with the wrong type */
		json_object_set_new(copy, f->name, json_array());
		free(s);
		s = json_dumps(copy, 0);
		ck_assert_int_eq(ctl_request_parse(s, strlen(s), &cmd, &req,
		    &err), -1);
		ck_assert_str_eq(err.code, CTL_E_WRONG_TYPE);
		ck_assert_str_eq(err.field, f->name);
		free(s);
		json_decref(copy);
	}
	json_decref(full);
}
END_TEST

START_TEST(error_and_ok_rendering)
{
	struct ctl_error err;
	json_t *j;
	char *line;

	ctl_error_set(&err, CTL_E_UNKNOWN_USER, "user", "no user \"%s\"",
	    "bob");
	j = ctl_error_json(&err);
	line = ctl_json_line(j);
	ck_assert_str_eq(line, "{\"ok\":false,\"error\":{\"code\":"
	    "\"unknown-user\",\"message\":\"no user \\\"bob\\\"\","
	    "\"field\":\"user\"}}\n");
	free(line);
	json_decref(j);
	j = ctl_ok_json();
	json_object_set_new(j, "name", json_string("caf\xc3\xa9"));
	line = ctl_json_line(j);
	ck_assert_str_eq(line, "{\"ok\":true,\"name\":\"caf\\u00E9\"}\n");
	free(line);
	json_decref(j);
}
END_TEST

/* Control requests (and import lines) hold passwords in jansson strings,
   which were freed with plain free(): the secret stayed in the heap (and
   in any core). */
START_TEST(jansson_frees_secrets_unwiped)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;
	const struct ctl_command *cmd;
	json_t *req;
	struct ctl_error err;
	const char *line = "{\"command\":\"user.add\",\"user\":\"alice\","
	    "\"password\":\"s3cret-pw\"}";

	ctl_json_wipe_on_free();
	json_get_alloc_funcs(&m, &f);
	ck_assert_ptr_ne((void *)f, (void *)free);
	ck_assert_ptr_nonnull((void *)f);
	ck_assert_int_eq(ctl_request_parse(line, strlen(line), &cmd, &req,
	    &err), 0);
	ck_assert_str_eq(ctl_req_str(req, "password"), "s3cret-pw");
	json_decref(req);
	/* a json_dumps result is still released with plain free() */
	req = json_pack("{s:s}", "password", "b");
	free(json_dumps(req, 0));
	json_decref(req);
	/* the allocator's own round trip, odd sizes included */
	for (size_t n = 0; n < 40; n++) {
		char *p = m(n + 1);

		ck_assert_ptr_nonnull(p);
		memset(p, 'x', n + 1);
		f(p);
	}
	f(NULL);
	json_set_alloc_funcs(malloc, free);
}
END_TEST

START_TEST(csv_split)
{
	char *f[CTL_CSV_FIELDS_MAX];
	size_t n;
	const char *e;
	const char *line = "alice,\"pa,ss\"\"word\",,pop.example.org,995";
	char big[64];

	ck_assert_int_eq(ctl_csv_split(line, strlen(line), ',', f, &n, &e), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(f[0], "alice");
	ck_assert_str_eq(f[1], "pa,ss\"word");
	ck_assert_str_eq(f[2], "");
	ck_assert_str_eq(f[4], "995");
	for (size_t i = 0; i < n; i++)
		free(f[i]);
	ck_assert_int_eq(ctl_csv_split("", 0, ',', f, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	free(f[0]);
	ck_assert_int_eq(ctl_csv_split("a,", 2, ',', f, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	free(f[0]);
	free(f[1]);
	ck_assert_int_eq(ctl_csv_split("\"abc", 4, ',', f, &n, &e), -1);
	ck_assert_str_eq(e, "unterminated quoted field");
	ck_assert_int_eq(ctl_csv_split("\"a\"b,c", 6, ',', f, &n, &e), -1);
	ck_assert_str_eq(e, "text after a closing quote");
	ck_assert_int_eq(ctl_csv_split("a\"b", 3, ',', f, &n, &e), -1);
	ck_assert_int_eq(ctl_csv_split("a\0b", 3, ',', f, &n, &e), -1);
	memset(big, ',', sizeof(big));
	ck_assert_int_eq(ctl_csv_split(big, sizeof(big), ',', f, &n, &e), -1);
	ck_assert_str_eq(e, "too many fields");
	ck_assert_int_eq(ctl_csv_split(big, CTL_CSV_FIELDS_MAX - 1, ',', f, &n,
	    &e), 0);
	ck_assert_uint_eq(n, CTL_CSV_FIELDS_MAX);
	for (size_t i = 0; i < n; i++)
		free(f[i]);
}
END_TEST

static Suite *
proto_suite(void)
{
	Suite *s = suite_create("gateway_control_proto");
	TCase *tc = tcase_create("proto");

	tcase_add_loop_test(tc, request_validation, 0,
	    (int)(sizeof(req_cases) / sizeof(req_cases[0])));
	tcase_add_loop_test(tc, every_required_field_is_enforced, 0,
	    CTL_CMD_COUNT);
	tcase_add_test(tc, error_and_ok_rendering);
	tcase_add_test(tc, csv_split);
	tcase_add_test(tc, jansson_frees_secrets_unwiped);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
