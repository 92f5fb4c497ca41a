/* Check suite for gateway/oauth-proto (form bodies, device and token
 * responses, errors, scope, refresh time) and gateway/config-oauth
 * ([oauth.NAME] sections and presets). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/oauth-proto.h"
#include "xmalloc.h"

START_TEST(form_encoding)
{
	const char *n[] = { "grant_type", "scope", "x" };
	const char *v[] = { "urn:ietf:params:oauth:grant-type:device_code",
	    "https://outlook.office.com/POP.AccessAsUser.All offline_access",
	    "a+b&c=d~._-\xc3\xa9" };
	char *f = oauth_form(n, v, 3);

	ck_assert_str_eq(f, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
	    "grant-type%3Adevice_code&scope=https%3A%2F%2Foutlook.office.com"
	    "%2FPOP.AccessAsUser.All%20offline_access&x=a%2Bb%26c%3Dd~._-"
	    "%C3%A9");
	free(f);
	f = oauth_form(n, v, 0);
	ck_assert_str_eq(f, "");
	free(f);
}
END_TEST

START_TEST(device_responses)
{
	struct oauth_device d;
	char err[256];
	const char *ok = "{\"device_code\":\"GmRh\",\"user_code\":"
	    "\"WDJB-MJHT\",\"verification_uri\":\"https://example.com/device\","
	    "\"verification_uri_complete\":\"https://example.com/device?c=1\","
	    "\"expires_in\":1800,\"interval\":5}";
	const char *google = "{\"device_code\":\"x\",\"user_code\":\"A-B\","
	    "\"verification_url\":\"https://www.google.com/device\","
	    "\"expires_in\":\"1800\",\"interval\":0}";

	ck_assert_int_eq(oauth_parse_device(200, ok, strlen(ok), &d, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(d.device_code, "GmRh");
	ck_assert_str_eq(d.user_code, "WDJB-MJHT");
	ck_assert_str_eq(d.verification_uri, "https://example.com/device");
	ck_assert_str_eq(d.verification_uri_complete,
	    "https://example.com/device?c=1");
	ck_assert_uint_eq(d.expires_in, 1800);
	ck_assert_uint_eq(d.interval, 5);
	oauth_device_clear(&d);
	/* Google's names, a string number, an interval raised to the
	   minimum */
	ck_assert_int_eq(oauth_parse_device(200, google, strlen(google), &d,
	    err, sizeof(err)), 0);
	ck_assert_str_eq(d.verification_uri, "https://www.google.com/device");
	ck_assert_ptr_null(d.verification_uri_complete);
	ck_assert_uint_eq(d.expires_in, 1800);
	ck_assert_uint_eq(d.interval, OAUTH_INTERVAL_MIN);
	oauth_device_clear(&d);
	/* errors */
	{
		const char *e = "{\"error\":\"invalid_client\","
		    "\"error_description\":\"bad \\u001b id\"}";

		ck_assert_int_eq(oauth_parse_device(400, e, strlen(e), &d,
		    err, sizeof(err)), -1);
	}
	ck_assert_str_eq(err, "invalid_client (bad \\x1b id)");
	ck_assert_int_eq(oauth_parse_device(200, "[]", 2, &d, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(oauth_parse_device(200, "{\"device_code\":\"a\"}",
	    19, &d, err, sizeof(err)), -1);
	/* a user code with a control byte is not shown to an admin */
	ck_assert_int_eq(oauth_parse_device(200, "{\"device_code\":\"a\","
	    "\"user_code\":\"A\\nB\",\"verification_uri\":\"https://x\"}",
	    strlen("{\"device_code\":\"a\",\"user_code\":\"A\\nB\","
	    "\"verification_uri\":\"https://x\"}"), &d, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(oauth_parse_device(200, "{\"a\":1,\"a\":2}", 13, &d,
	    err, sizeof(err)), -1);
}
END_TEST

struct token_case {
	long status;
	const char *body;
	enum oauth_result result;
	const char *message;	/* err, for results other than OK */
};

static const struct token_case token_cases[] = {
	{ 200, "{\"access_token\":\"at1\",\"token_type\":\"Bearer\","
	  "\"expires_in\":3599,\"refresh_token\":\"rt1\",\"scope\":\"a b\"}",
	  OAUTH_OK, NULL },
	{ 200, "{\"access_token\":\"at1\",\"token_type\":\"bearer\"}",
	  OAUTH_OK, NULL },
	{ 400, "{\"error\":\"authorization_pending\"}", OAUTH_PENDING,
	  "authorization_pending" },
	{ 400, "{\"error\":\"slow_down\"}", OAUTH_SLOW_DOWN, "slow_down" },
	{ 400, "{\"error\":\"access_denied\"}", OAUTH_DENIED,
	  "access_denied" },
	{ 400, "{\"error\":\"expired_token\"}", OAUTH_EXPIRED,
	  "expired_token" },
	{ 400, "{\"error\":\"invalid_grant\",\"error_description\":"
	  "\"AADSTS70008: expired\"}", OAUTH_INVALID_GRANT,
	  "invalid_grant (AADSTS70008: expired)" },
	{ 401, "{\"error\":\"invalid_client\"}", OAUTH_BAD_CLIENT,
	  "invalid_client" },
	{ 400, "{\"error\":\"something_new\"}", OAUTH_BAD_CLIENT,
	  "something_new" },
	{ 503, "{\"error\":\"temporarily_unavailable\"}", OAUTH_TEMP,
	  "temporarily_unavailable" },
	{ 502, "<html>bad gateway</html>", OAUTH_TEMP,
	  "token endpoint answered HTTP 502 without a JSON object" },
	{ 429, "{}", OAUTH_TEMP, "HTTP status 429 without an OAuth error" },
	{ 0, "", OAUTH_TEMP, "no answer from the token endpoint" },
	{ 200, "{\"token_type\":\"Bearer\"}", OAUTH_TEMP,
	  "token answer has no usable access_token" },
	{ 200, "{\"access_token\":\"a b\",\"token_type\":\"Bearer\"}",
	  OAUTH_TEMP, "token answer has no usable access_token" },
	{ 200, "{\"access_token\":\"ab\",\"token_type\":\"mac\"}",
	  OAUTH_TEMP, "token answer is not a Bearer token" },
	{ 200, "{\"access_token\":\"ab\",\"token_type\":\"Bearer\","
	  "\"refresh_token\":\"a b\"}", OAUTH_TEMP,
	  "token answer has an unusable refresh_token" },
	{ 200, "{\"error\":\"invalid_grant\"}", OAUTH_INVALID_GRANT,
	  "invalid_grant" },
};

START_TEST(token_responses)
{
	const struct token_case *c = &token_cases[_i];
	struct oauth_token t;
	char err[256];
	enum oauth_result r = oauth_parse_token(c->status, c->body,
	    strlen(c->body), &t, err, sizeof(err));

	ck_assert_msg(r == c->result, "%s: %s", c->body,
	    oauth_result_name(r));
	if (r == OAUTH_OK) {
		ck_assert_str_eq(t.access_token, "at1");
		if (_i == 0) {
			ck_assert_str_eq(t.refresh_token, "rt1");
			ck_assert_str_eq(t.scope, "a b");
			ck_assert_uint_eq(t.expires_in, 3599);
		} else {
			ck_assert_ptr_null(t.refresh_token);
			ck_assert_ptr_null(t.scope);
			ck_assert_uint_eq(t.expires_in,
			    OAUTH_LIFETIME_DEFAULT);
		}
	} else {
		ck_assert_str_eq(err, c->message);
		ck_assert_ptr_null(t.access_token);
	}
	oauth_token_clear(&t);
}
END_TEST

START_TEST(token_limits)
{
	size_t n = OAUTH_TOKEN_MAX + 1;
	char *tok = xmalloc(n + 1), *body;
	struct oauth_token t;
	char err[128];

	memset(tok, 'a', n);
	tok[n] = '\0';
	body = xasprintf("{\"access_token\":\"%s\",\"token_type\":\"Bearer\"}",
	    tok);
	ck_assert_int_eq(oauth_parse_token(200, body, strlen(body), &t, err,
	    sizeof(err)), OAUTH_TEMP);
	free(body);
	tok[n - 1] = '\0';
	body = xasprintf("{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
	    "\"expires_in\":0}", tok);
	ck_assert_int_eq(oauth_parse_token(200, body, strlen(body), &t, err,
	    sizeof(err)), OAUTH_OK);
	/* a lifetime of 0 would make us refresh in a loop */
	ck_assert_uint_eq(t.expires_in, OAUTH_LIFETIME_MIN);
	oauth_token_clear(&t);
	free(body);
	free(tok);
}
END_TEST

START_TEST(scope_and_refresh_time)
{
	ck_assert(oauth_scope_covers(NULL, "a b"));
	ck_assert(oauth_scope_covers("a b", "a b"));
	ck_assert(oauth_scope_covers("b  a c", "a b"));
	ck_assert(oauth_scope_covers("https://outlook.office.com/POP."
	    "AccessAsUser.All", "https://outlook.office.com/POP.AccessAsUser."
	    "All offline_access"));
	ck_assert(!oauth_scope_covers("profile", "pop3 offline_access"));
	ck_assert(!oauth_scope_covers("pop", "pop3"));
	ck_assert(!oauth_scope_covers("", "pop3"));
	ck_assert(oauth_scope_covers("", ""));
	/* a quarter of the life before expiry, at most five minutes */
	ck_assert_int_eq(oauth_refresh_at(1000, 8), 1006);
	ck_assert_int_eq(oauth_refresh_at(1000, 3600), 1000 + 3300);
	ck_assert_int_eq(oauth_refresh_at(1000, 600), 1000 + 450);
}
END_TEST

static struct config *
load(const char *extra, char *err, size_t errsize)
{
	struct config *c = NULL;
	char *text = xasprintf("[store]\ndata_dir = /tmp/x\n%s", extra);

	err[0] = '\0';
	(void)config_load_string("t.conf", text, &c, err, errsize);
	free(text);
	return c;
}

START_TEST(config_providers)
{
	char err[CONFIG_ERROR_MAX];
	struct config *c;
	const struct config_oauth *p;

	c = load("[oauth.microsoft]\nclient_id = abc\n"
	    "[oauth.contoso]\npreset = microsoft\nclient_id = def\n"
	    "tenant = contoso.onmicrosoft.com\nmechanism = oauthbearer\n"
	    "[oauth.google]\nclient_id = g\nclient_secret = s\n"
	    "[oauth.own]\nclient_id = o\n"
	    "device_endpoint = https://idp.example/device\n"
	    "token_endpoint = https://idp.example/token\nscope = pop\n"
	    "host = pop.example\ntls = stls\n", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	p = config_oauth_find(c, "microsoft");
	ck_assert_str_eq(p->device_endpoint, "https://login.microsoftonline."
	    "com/common/oauth2/v2.0/devicecode");
	ck_assert_str_eq(p->token_endpoint, "https://login.microsoftonline."
	    "com/common/oauth2/v2.0/token");
	ck_assert_str_eq(p->scope, "https://outlook.office.com/POP."
	    "AccessAsUser.All offline_access");
	ck_assert_str_eq(p->host, "outlook.office365.com");
	ck_assert_uint_eq(p->port, 995);
	ck_assert_int_eq(p->tls, CONFIG_TLS_POP3S);
	ck_assert_str_eq(p->mechanism, "xoauth2");
	p = config_oauth_find(c, "contoso");
	ck_assert_str_eq(p->token_endpoint, "https://login.microsoftonline."
	    "com/contoso.onmicrosoft.com/oauth2/v2.0/token");
	ck_assert_str_eq(p->mechanism, "oauthbearer");
	p = config_oauth_find(c, "google");
	ck_assert_str_eq(p->host, "pop.gmail.com");
	ck_assert_str_eq(p->client_secret, "s");
	p = config_oauth_find(c, "own");
	ck_assert_ptr_null(p->preset);
	ck_assert_str_eq(p->host, "pop.example");
	ck_assert_int_eq(p->tls, CONFIG_TLS_STLS);
	ck_assert_uint_eq(p->port, 0);
	ck_assert_ptr_null(config_oauth_find(c, "nope"));
	config_free(&c);
}
END_TEST

struct bad_case {
	const char *text;
	const char *error;
};

static const struct bad_case bad_cases[] = {
	{ "[oauth.x]\nclient_id = a\n",
	  "t.conf: [oauth.x] needs client_id, device_endpoint, "
	  "token_endpoint and scope (or a preset)" },
	{ "[oauth.microsoft]\ntenant = t\n",
	  "t.conf: [oauth.microsoft] needs client_id" },
	{ "[oauth.x]\ntoken_endpoint = http://idp/token\n",
	  "t.conf:4: [oauth.x] token_endpoint = \"http://idp/token\": an "
	  "endpoint must be an https:// URL" },
	{ "[oauth.x]\nclient_id = a\nclient_id = b\n",
	  "t.conf:5: [oauth.x] client_id = \"b\": set twice" },
	{ "[oauth.x]\nsecret = a\n",
	  "t.conf:4: [oauth.x] secret = \"a\": unknown key (preset, "
	  "client_id, client_secret, tenant, device_endpoint, token_endpoint,"
	  " scope, host, port, tls, mechanism, ca_file)" },
	{ "[oauth.Big]\nclient_id = a\n",
	  "t.conf:4: [oauth.Big] client_id = \"a\": a provider name is 1 to "
	  "32 of a-z, 0-9, - and _" },
	{ "[oauth.x]\nmechanism = plain\n",
	  "t.conf:4: [oauth.x] mechanism = \"plain\": expected xoauth2 or "
	  "oauthbearer" },
	{ "[oauth.x]\npreset = yahoo\n",
	  "t.conf:4: [oauth.x] preset = \"yahoo\": expected microsoft, google "
	  "or none" },
	{ "[oauth.x]\nca_file = rel.pem\n",
	  "t.conf:4: [oauth.x] ca_file = \"rel.pem\": must be an absolute "
	  "path" },
	{ "[oauth.x]\nclient_id = a\ntenant = t\npreset = none\n"
	  "device_endpoint = https://a\ntoken_endpoint = https://b\n"
	  "scope = s\n", "t.conf: [oauth.x] tenant needs preset microsoft" },
	/* issue 16: clear text needs saying so */
	{ "[passthrough]\nenabled = yes\nhost = pop.example.net\nport = 110\n"
	  "tls = none\n", "t.conf: [passthrough] tls = none to a host that "
	  "is not loopback sends users' passwords in clear: set "
	  "allow_cleartext = yes if you mean it" },
	{ "[upstream-defaults]\nca_only = yes\n",
	  "t.conf: [upstream-defaults] ca_only needs ca_file" },
};

START_TEST(config_bad)
{
	char err[CONFIG_ERROR_MAX];
	struct config *c = load(bad_cases[_i].text, err, sizeof(err));

	ck_assert_ptr_null(c);
	ck_assert_str_eq(err, bad_cases[_i].error);
}
END_TEST

START_TEST(config_cleartext_allowed)
{
	char err[CONFIG_ERROR_MAX];
	struct config *c = load("[passthrough]\nenabled = yes\n"
	    "host = pop.example.net\nport = 110\ntls = none\n"
	    "allow_cleartext = yes\n", err, sizeof(err));

	ck_assert_msg(c != NULL, "%s", err);
	config_free(&c);
	c = load("[passthrough]\nenabled = yes\nhost = 127.0.0.1\n"
	    "port = 110\ntls = none\n", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	config_free(&c);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("gateway_oauth");
	TCase *tc = tcase_create("oauth");

	tcase_add_test(tc, form_encoding);
	tcase_add_test(tc, device_responses);
	tcase_add_loop_test(tc, token_responses, 0,
	    sizeof(token_cases) / sizeof(token_cases[0]));
	tcase_add_test(tc, token_limits);
	tcase_add_test(tc, scope_and_refresh_time);
	tcase_add_test(tc, config_providers);
	tcase_add_loop_test(tc, config_bad, 0,
	    sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, config_cleartext_allowed);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
