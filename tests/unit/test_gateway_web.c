/* Check suite for the web page's pure parts: gateway/web-advice (every
 * poll outcome and problem state explained, ordinary ones not) and
 * gateway/web-session (random ids, idle and absolute expiry, a bounded
 * table that drops the least recently used, cookie parsing). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/web-advice.h"
#include "gateway/web-session.h"

START_TEST(advice_outcomes)
{
	static const char *const problems[] = { "temporary", "auth",
	    "login-delay", "tls", "protocol", "store", "aborted",
	    "something-new" };
	const struct web_advice *a;

	ck_assert_ptr_null(web_advice_for("idle", "ok"));
	ck_assert_ptr_null(web_advice_for("idle", NULL));
	ck_assert_ptr_null(web_advice_for("polling", NULL));
	for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++) {
		a = web_advice_for("backoff", problems[i]);
		ck_assert_ptr_nonnull(a);
		ck_assert(strlen(a->title) > 10 && strlen(a->action) > 10);
	}
	ck_assert_str_eq(web_advice_for("backoff", "auth")->code,
	    "password-refused");
	ck_assert(web_advice_for("backoff", "auth")->needs_person);
	ck_assert(!web_advice_for("backoff", "temporary")->needs_person);
	ck_assert_str_eq(web_advice_for("idle", "something-new")->code,
	    "other");
	/* the state wins over an old outcome: it says what holds now */
	ck_assert_str_eq(web_advice_for("auth-failed", "ok")->code,
	    "password-refused");
	ck_assert_str_eq(web_advice_for("over-quota", NULL)->code,
	    "over-quota");
	ck_assert_str_eq(web_advice_for("store-error", "ok")->code, "store");
	ck_assert_str_eq(web_advice_for("disabled", NULL)->code, "stopped");
	ck_assert_str_eq(web_advice_for(NULL, "tls")->code, "tls");
}
END_TEST

START_TEST(state_words)
{
	ck_assert_str_eq(web_state_words("idle"), "Up to date");
	ck_assert_str_eq(web_state_words("auth-failed"), "Password refused");
	ck_assert_str_eq(web_state_words("polling"), "Checking now");
	ck_assert_str_eq(web_state_words("nonsense"), "Unknown");
	ck_assert_str_eq(web_state_words(NULL), "Unknown");
}
END_TEST

static void
fill(unsigned char *rnd, unsigned char v)
{
	for (size_t i = 0; i < 2 * WEB_SESSION_ID_BYTES; i++)
		rnd[i] = (unsigned char)(v + i);
}

START_TEST(sessions_open_find_close)
{
	struct web_sessions *ws = web_sessions_new(10, 600);
	unsigned char rnd[2 * WEB_SESSION_ID_BYTES];
	struct web_session *s, *f;
	char id[WEB_SESSION_HEX_SIZE];
	bool ev;

	fill(rnd, 1);
	s = web_sessions_open(ws, "alice", rnd, 1000, &ev);
	ck_assert(!ev);
	ck_assert_uint_eq(strlen(s->id), 2 * WEB_SESSION_ID_BYTES);
	ck_assert_str_eq(s->id, "0102030405060708090a0b0c0d0e0f10"
	    "1112131415161718191a1b1c1d1e1f20");
	ck_assert_str_ne(s->id, s->csrf);
	strcpy(id, s->id);
	ck_assert_ptr_eq(web_sessions_find(ws, id, 1001), s);
	/* near misses: another id, a prefix, the CSRF token, nothing */
	id[5] = id[5] == 'a' ? 'b' : 'a';
	ck_assert_ptr_null(web_sessions_find(ws, id, 1001));
	ck_assert_ptr_null(web_sessions_find(ws, "0102", 1001));
	ck_assert_ptr_null(web_sessions_find(ws, s->csrf, 1001));
	ck_assert_ptr_null(web_sessions_find(ws, NULL, 1001));
	ck_assert_ptr_null(web_sessions_find(ws, "", 1001));
	strcpy(id, s->id);
	web_sessions_close(ws, s);
	ck_assert_ptr_null(web_sessions_find(ws, id, 1002));
	ck_assert_uint_eq(web_sessions_count(ws), 0);
	/* a use keeps it alive; idle ends it */
	fill(rnd, 7);
	s = web_sessions_open(ws, "bob", rnd, 2000, &ev);
	strcpy(id, s->id);
	f = web_sessions_find(ws, id, 2500);
	ck_assert_ptr_eq(f, s);
	ck_assert_ptr_eq(web_sessions_find(ws, id, 3000), s);
	ck_assert_ptr_null(web_sessions_find(ws, id, 3600));
	ck_assert_uint_eq(web_sessions_count(ws), 0);
	web_sessions_free(&ws);
	ck_assert_ptr_null(ws);
}
END_TEST

/* The daemon's hash is SHA-256; any one-way mapping shows the rules. */
static void
test_hash(const char *id, char out[WEB_SESSION_HEX_SIZE])
{
	size_t n = strlen(id);

	for (size_t i = 0; i < WEB_SESSION_HEX_SIZE - 1; i++)
		out[i] = "0123456789abcdef"[(id[(i * 7 + 3) % n] + i) % 16];
	out[WEB_SESSION_HEX_SIZE - 1] = '\0';
}

static struct web_sessions *
hashed_sessions(size_t max, unsigned idle)
{
	struct web_sessions *ws = web_sessions_new(max, idle);

	web_sessions_set_hash(ws, test_hash);
	return ws;
}

START_TEST(sessions_dump_and_load)
{
	struct web_sessions *ws = hashed_sessions(10, 600), *back;
	unsigned char rnd[2 * WEB_SESSION_ID_BYTES];
	char ida[WEB_SESSION_HEX_SIZE], idb[WEB_SESSION_HEX_SIZE];
	char csrfa[WEB_SESSION_HEX_SIZE];
	struct web_session *s;
	size_t skipped;
	char *text, *again;
	bool ev;

	fill(rnd, 1);
	s = web_sessions_open(ws, "Ann O'Neil", rnd, 1000, &ev);
	strcpy(ida, s->id);
	strcpy(csrfa, s->csrf);
	fill(rnd, 9);
	strcpy(idb, web_sessions_open(ws, "bob", rnd, 1100, &ev)->id);
	fill(rnd, 20);
	web_sessions_open(ws, "old", rnd, 100, &ev);	/* idle by 1200 */
	fill(rnd, 30);
	web_sessions_open(ws, "bad\nname", rnd, 1150, &ev);
	text = web_sessions_dump(ws, 1200);
	/* the ids never appear: only their hashes */
	ck_assert_ptr_null(strstr(text, ida));
	ck_assert_ptr_null(strstr(text, idb));
	ck_assert_ptr_nonnull(strstr(text, csrfa));
	ck_assert_ptr_null(strstr(text, "old"));
	ck_assert_ptr_null(strstr(text, "bad"));

	back = hashed_sessions(10, 600);
	ck_assert_uint_eq(web_sessions_load(back, text, strlen(text), 1210,
	    &skipped), 2);
	ck_assert_uint_eq(skipped, 0);
	s = web_sessions_find(back, ida, 1220);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->user, "Ann O'Neil");
	ck_assert_str_eq(s->csrf, csrfa);
	ck_assert(s->id_hashed);
	/* the hash itself is no cookie */
	ck_assert_ptr_null(web_sessions_find(back, s->id, 1220));
	ck_assert_ptr_nonnull(web_sessions_find(back, idb, 1220));
	/* dumped again, the same hashes (a second restart) */
	again = web_sessions_dump(back, 1230);
	web_sessions_free(&back);
	back = hashed_sessions(1, 600);
	/* a smaller table keeps the most recently used */
	ck_assert_uint_eq(web_sessions_load(back, again, strlen(again), 1240,
	    &skipped), 1);
	ck_assert_uint_eq(skipped, 1);
	ck_assert_ptr_nonnull(web_sessions_find(back, idb, 1250));
	web_sessions_free(&back);
	/* times: idle and absolute age still count from before */
	back = hashed_sessions(10, 600);
	ck_assert_uint_eq(web_sessions_load(back, text, strlen(text), 1650,
	    &skipped), 1);
	ck_assert_ptr_null(web_sessions_find(back, ida, 1650));
	ck_assert_ptr_nonnull(web_sessions_find(back, idb, 1650));
	web_sessions_free(&back);
	free(again);
	free(text);
	web_sessions_free(&ws);
}
END_TEST

START_TEST(sessions_load_refuses_bad_text)
{
	static const char *const bad[] = {
		"",
		"popgate-web-sessions 2\n",
		"not a dump at all",
	};
	static const char *const bad_lines[] = {
		"zz", "", " ", "a b c d e",
	};
	struct web_sessions *ws = hashed_sessions(10, 600);
	char line[512], hex[WEB_SESSION_HEX_SIZE];
	size_t skipped;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_uint_eq(web_sessions_load(ws, bad[i], strlen(bad[i]),
		    100, &skipped), 0);
	for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]);
	    i++) {
		snprintf(line, sizeof(line), "popgate-web-sessions 1\n%s\n",
		    bad_lines[i]);
		ck_assert_uint_eq(web_sessions_load(ws, line, strlen(line),
		    100, &skipped), 0);
	}
	memset(hex, 'a', sizeof(hex) - 1);
	hex[sizeof(hex) - 1] = '\0';
	/* upper case, a time going back, no user, a user too long */
	snprintf(line, sizeof(line), "popgate-web-sessions 1\n%s %s 5 4 u\n"
	    "%s %s 5 6 \n", hex, hex, hex, hex);
	ck_assert_uint_eq(web_sessions_load(ws, line, strlen(line), 10,
	    &skipped), 0);
	ck_assert_uint_eq(skipped, 2);
	hex[3] = 'A';
	snprintf(line, sizeof(line), "popgate-web-sessions 1\n%s %s 5 6 u\n",
	    hex, hex);
	ck_assert_uint_eq(web_sessions_load(ws, line, strlen(line), 10,
	    &skipped), 0);
	hex[3] = 'a';
	/* a control character in the user (found by the fuzz target: the
	   name was freed twice) */
	snprintf(line, sizeof(line), "popgate-web-sessions 1\n%s %s 5 6 "
	    "u\x0e\n", hex, hex);
	ck_assert_uint_eq(web_sessions_load(ws, line, strlen(line), 10,
	    &skipped), 0);
	ck_assert_uint_eq(skipped, 1);
	/* a good line, cut short anywhere, never restores a session */
	snprintf(line, sizeof(line), "popgate-web-sessions 1\n%s %s 5 6 u",
	    hex, hex);
	for (size_t cut = 0; cut < strlen(line); cut++)
		ck_assert_uint_eq(web_sessions_load(ws, line, cut, 10,
		    &skipped), 0);
	ck_assert_uint_eq(web_sessions_load(ws, line, strlen(line), 10,
	    &skipped), 1);
	web_sessions_free(&ws);
	/* without a hash function nothing is written or read */
	{
		char *empty;

		ws = web_sessions_new(10, 600);
		empty = web_sessions_dump(ws, 0);
		ck_assert_str_eq(empty, "popgate-web-sessions 1\n");
		free(empty);
		web_sessions_free(&ws);
	}
}
END_TEST

START_TEST(sessions_max_age)
{
	struct web_sessions *ws = web_sessions_new(10, 3600);
	unsigned char rnd[2 * WEB_SESSION_ID_BYTES];
	char id[WEB_SESSION_HEX_SIZE];
	struct web_session *s;
	time_t t = 5000;
	bool ev;

	fill(rnd, 3);
	s = web_sessions_open(ws, "alice", rnd, t, &ev);
	strcpy(id, s->id);
	/* used every half hour, it still ends after the absolute age */
	while (t + 1800 < 5000 + WEB_SESSION_MAX_AGE_SECS) {
		t += 1800;
		ck_assert_ptr_eq(web_sessions_find(ws, id, t), s);
	}
	ck_assert_ptr_null(web_sessions_find(ws, id,
	    5000 + WEB_SESSION_MAX_AGE_SECS));
	/* a clock that goes back does not make one live for ever */
	s = web_sessions_open(ws, "alice", rnd, 9000, &ev);
	strcpy(id, s->id);
	ck_assert_ptr_null(web_sessions_find(ws, id, 8000));
	web_sessions_free(&ws);
}
END_TEST

START_TEST(sessions_bounded_lru)
{
	struct web_sessions *ws = web_sessions_new(3, 600);
	unsigned char rnd[2 * WEB_SESSION_ID_BYTES];
	char ids[5][WEB_SESSION_HEX_SIZE];
	bool ev;

	for (int i = 0; i < 3; i++) {
		fill(rnd, (unsigned char)(10 * i));
		strcpy(ids[i], web_sessions_open(ws, "u", rnd, 100, &ev)->id);
		ck_assert(!ev);
	}
	/* 0 used last: 1 is the least recently used and goes first */
	ck_assert_ptr_nonnull(web_sessions_find(ws, ids[0], 101));
	fill(rnd, 100);
	strcpy(ids[3], web_sessions_open(ws, "u", rnd, 102, &ev)->id);
	ck_assert(ev);
	ck_assert_uint_eq(web_sessions_count(ws), 3);
	ck_assert_ptr_null(web_sessions_find(ws, ids[1], 103));
	ck_assert_ptr_nonnull(web_sessions_find(ws, ids[0], 103));
	ck_assert_ptr_nonnull(web_sessions_find(ws, ids[2], 103));
	ck_assert_ptr_nonnull(web_sessions_find(ws, ids[3], 103));
	/* a smaller limit at reload ends the least recently used */
	web_sessions_set_limits(ws, 1, 600);
	ck_assert_uint_eq(web_sessions_count(ws), 1);
	ck_assert_ptr_nonnull(web_sessions_find(ws, ids[3], 104));
	web_sessions_free(&ws);
}
END_TEST

START_TEST(cookie_parse)
{
	char buf[80];

	ck_assert(web_cookie_get("a=1; __Host-popgate=abc; b=2",
	    "__Host-popgate", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "abc");
	ck_assert(web_cookie_get("__Host-popgate=xyz", "__Host-popgate", buf,
	    sizeof(buf)));
	ck_assert_str_eq(buf, "xyz");
	ck_assert(web_cookie_get("x=1;__Host-popgate=q  ", "__Host-popgate",
	    buf, sizeof(buf)));
	ck_assert_str_eq(buf, "q");
	/* a longer name that starts the same is another cookie */
	ck_assert(!web_cookie_get("__Host-popgateX=abc", "__Host-popgate",
	    buf, sizeof(buf)));
	ck_assert(!web_cookie_get("other=1", "__Host-popgate", buf,
	    sizeof(buf)));
	ck_assert(!web_cookie_get("", "__Host-popgate", buf, sizeof(buf)));
	/* too long for the buffer: not truncated, refused */
	ck_assert(!web_cookie_get("__Host-popgate=0123456789", "__Host-popgate",
	    buf, 5));
	ck_assert(web_token_equal("abc", "abc"));
	ck_assert(!web_token_equal("abc", "abd"));
	ck_assert(!web_token_equal("abc", "abcd"));
	ck_assert(!web_token_equal("", "a"));
}
END_TEST

static Suite *
web_suite(void)
{
	Suite *s = suite_create("gateway_web");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, advice_outcomes);
	tcase_add_test(tc, state_words);
	tcase_add_test(tc, sessions_open_find_close);
	tcase_add_test(tc, sessions_max_age);
	tcase_add_test(tc, sessions_dump_and_load);
	tcase_add_test(tc, sessions_load_refuses_bad_text);
	tcase_add_test(tc, sessions_bounded_lru);
	tcase_add_test(tc, cookie_parse);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(web_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
