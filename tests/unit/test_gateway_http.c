/* Check suite for gateway/http-client: the libcurl multi interface on a
 * libevent loop without a server of its own: only https:// URLs, a refused
 * connection reported through the callback (never from within the call),
 * cancelled requests never called back, and the in-flight bound. */
#include <check.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http-client.h"

struct result {
	int calls;
	long status;
	char error[256];
	struct event_base *base;
	int *pending;
};

static void
done(void *arg, const struct http_response *resp)
{
	struct result *r = arg;

	r->calls++;
	r->status = resp->status;
	snprintf(r->error, sizeof(r->error), "%s", resp->error);
	if (--*r->pending == 0)
		event_base_loopexit(r->base, NULL);
}

START_TEST(only_https)
{
	struct event_base *base = event_base_new();
	struct http_client *c = http_client_new(base);
	struct http_request *req = NULL;
	const char *err = NULL;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(http_post_form(c, "http://127.0.0.1:1/token", "a=b",
	    NULL, done, NULL, &req, &err), -1);
	ck_assert_str_eq(err, "only https:// endpoints are used");
	ck_assert_int_eq(http_post_form(c, "file:///etc/passwd", "", NULL,
	    done, NULL, &req, &err), -1);
	http_client_free(&c);
	ck_assert_ptr_null(c);
	event_base_free(base);
}
END_TEST

/* More requests than HTTP_INFLIGHT_MAX to a port nobody listens on: each
   fails through its callback, after the call returned; one cancelled is
   never called back. */
START_TEST(refused_and_cancelled)
{
	struct event_base *base = event_base_new();
	struct http_client *c = http_client_new(base);
	enum { N = HTTP_INFLIGHT_MAX + 4 };
	struct result res[N];
	struct http_request *req[N];
	int pending = N - 1;
	struct timeval limit = { 60, 0 };
	const char *err = NULL;

	memset(res, 0, sizeof(res));
	for (int i = 0; i < N; i++) {
		res[i].base = base;
		res[i].pending = &pending;
		ck_assert_int_eq(http_post_form(c, "https://127.0.0.1:1/token",
		    "grant_type=refresh_token", NULL, done, &res[i], &req[i],
		    &err), 0);
		ck_assert_int_eq(res[i].calls, 0);
	}
	http_cancel(&req[3]);
	ck_assert_ptr_null(req[3]);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	for (int i = 0; i < N; i++) {
		if (i == 3) {
			ck_assert_int_eq(res[i].calls, 0);
			continue;
		}
		ck_assert_int_eq(res[i].calls, 1);
		ck_assert_int_eq(res[i].status, 0);
		ck_assert(res[i].error[0] != '\0');
	}
	ck_assert_int_eq(pending, 0);
	http_client_free(&c);
	event_base_free(base);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("gateway_http");
	TCase *tc = tcase_create("http");

	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, only_https);
	tcase_add_test(tc, refused_and_cancelled);
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
