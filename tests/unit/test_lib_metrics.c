/* Check suite for lib/metrics: the text exposition format byte for byte,
 * histogram buckets, label escaping, and updates from several threads at
 * once adding up exactly (the registry's thread contract). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static int collected;

static void
collector(void *arg)
{
	collected++;
	metric_set(arg, 42);
}

START_TEST(render_text_format)
{
	struct metrics *m = metrics_new();
	struct strbuf sb = STRBUF_INIT;
	static const double b[] = { 0.5, 1, 2.5 };
	struct metric *ok, *bad, *g, *h, *c;

	ok = metrics_counter(m, "t_logins_total", "result=\"ok\"", "Logins.");
	g = metrics_gauge(m, "t_depth", NULL, "Depth.");
	bad = metrics_counter(m, "t_logins_total", "result=\"failed\"",
	    "Logins.");
	h = metrics_histogram(m, "t_seconds", "op=\"x\"", "Time.", b, 3);
	c = metrics_gauge(m, "t_collected", NULL, "Set at render.");
	metrics_add_collector(m, collector, c);
	metric_add(ok, 3);
	metric_add(bad, 1);
	metric_gauge_add(g, 5);
	metric_gauge_add(g, -2);
	metric_observe(h, 0.25);
	metric_observe(h, 1);
	metric_observe(h, 7);
	collected = 0;
	metrics_render(m, &sb);
	ck_assert_int_eq(collected, 1);
	ck_assert_str_eq(strbuf_str(&sb),
	    "# HELP t_logins_total Logins.\n"
	    "# TYPE t_logins_total counter\n"
	    "t_logins_total{result=\"ok\"} 3\n"
	    "t_logins_total{result=\"failed\"} 1\n"
	    "# HELP t_depth Depth.\n"
	    "# TYPE t_depth gauge\n"
	    "t_depth 3\n"
	    "# HELP t_seconds Time.\n"
	    "# TYPE t_seconds histogram\n"
	    "t_seconds_bucket{op=\"x\",le=\"0.5\"} 1\n"
	    "t_seconds_bucket{op=\"x\",le=\"1\"} 2\n"
	    "t_seconds_bucket{op=\"x\",le=\"2.5\"} 2\n"
	    "t_seconds_bucket{op=\"x\",le=\"+Inf\"} 3\n"
	    "t_seconds_sum{op=\"x\"} 8.25\n"
	    "t_seconds_count{op=\"x\"} 3\n"
	    "# HELP t_collected Set at render.\n"
	    "# TYPE t_collected gauge\n"
	    "t_collected 42\n");
	ck_assert_int_eq(metric_value(h), 3);
	ck_assert_int_eq(metric_value(g), 3);
	strbuf_free(&sb);
	metrics_free(&m);
	ck_assert_ptr_null(m);
}
END_TEST

START_TEST(histogram_without_labels_and_zero)
{
	struct metrics *m = metrics_new();
	struct strbuf sb = STRBUF_INIT;
	static const double b[] = { 1 };

	(void)metrics_histogram(m, "t_h", NULL, "H.", b, 1);
	metrics_render(m, &sb);
	ck_assert_str_eq(strbuf_str(&sb),
	    "# HELP t_h H.\n# TYPE t_h histogram\n"
	    "t_h_bucket{le=\"1\"} 0\nt_h_bucket{le=\"+Inf\"} 0\n"
	    "t_h_sum 0\nt_h_count 0\n");
	strbuf_free(&sb);
	metrics_free(&m);
}
END_TEST

START_TEST(label_value_escaping)
{
	char buf[32];

	ck_assert_str_eq(metrics_label_value(buf, sizeof(buf),
	    "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
	ck_assert_str_eq(metrics_label_value(buf, 6, "abcdefgh"), "abcde");
	ck_assert_str_eq(metrics_label_value(buf, 3, "\"\""), "\\\"");
}
END_TEST

#define THREADS 4
#define ROUNDS 100000

struct shared {
	struct metric *c, *g, *h;
};

static void *
hammer(void *arg)
{
	struct shared *s = arg;

	for (int i = 0; i < ROUNDS; i++) {
		metric_add(s->c, 1);
		metric_gauge_add(s->g, (i & 1) ? -1 : 2);
		metric_observe(s->h, 0.5);
	}
	return NULL;
}

START_TEST(updates_from_threads_add_up)
{
	struct metrics *m = metrics_new();
	static const double b[] = { 0.25, 1 };
	struct shared s;
	pthread_t t[THREADS];
	struct strbuf sb = STRBUF_INIT;
	char expect[128];

	s.c = metrics_counter(m, "t_c_total", NULL, "C.");
	s.g = metrics_gauge(m, "t_g", NULL, "G.");
	s.h = metrics_histogram(m, "t_h", NULL, "H.", b, 2);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &s), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(metric_value(s.c), THREADS * ROUNDS);
	ck_assert_int_eq(metric_value(s.g), THREADS * ROUNDS / 2);
	ck_assert_int_eq(metric_value(s.h), THREADS * ROUNDS);
	metrics_render(m, &sb);
	/* 0.5 is exact in binary: the sum of the observations is exact */
	snprintf(expect, sizeof(expect), "t_h_sum %d\n", THREADS * ROUNDS / 2);
	ck_assert_ptr_nonnull(strstr(strbuf_str(&sb), expect));
	snprintf(expect, sizeof(expect), "t_h_bucket{le=\"0.25\"} 0\n"
	    "t_h_bucket{le=\"1\"} %d\n", THREADS * ROUNDS);
	ck_assert_ptr_nonnull(strstr(strbuf_str(&sb), expect));
	strbuf_free(&sb);
	metrics_free(&m);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("lib_metrics");
	TCase *tc = tcase_create("metrics");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, render_text_format);
	tcase_add_test(tc, histogram_without_labels_and_zero);
	tcase_add_test(tc, label_value_escaping);
	tcase_add_test(tc, updates_from_threads_add_up);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
