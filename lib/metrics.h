/*
 * metrics — a small registry of counters, gauges and histograms rendered
 * in the Prometheus text exposition format (version 0.0.4).
 *
 *   struct metrics *m = metrics_new();
 *   struct metric *c = metrics_counter(m, "popgate_things_total",
 *       "kind=\"a\"", "Things done.");
 *   struct metric *h = metrics_histogram(m, "popgate_commit_seconds", NULL,
 *       "Time per commit.", bounds, n);
 *   metric_add(c, 1);            any thread
 *   metric_observe(h, 0.004);    any thread
 *   metrics_render(m, &sb);      the owner thread
 *
 * Threads: the registry belongs to one thread (the event loop), which
 * registers every metric at start-up, before other threads may touch them,
 * and renders. Updates — metric_add, metric_set, metric_gauge_add,
 * metric_observe — are lock-free C11 atomics: any thread may call them at
 * any time on a registered metric, without a lock and without blocking
 * (a worker, the store's writer thread, the loop). A struct metric stays
 * valid until metrics_free(). Reads at render time are relaxed: a scrape
 * may see a histogram's buckets, count and sum a few updates apart, which
 * Prometheus tolerates.
 *
 * Collectors run on the owner thread at render time, for values cheaper
 * to read when asked than to track (sessions by state, the store's size):
 * they set gauges, or counters to the value of a counter kept elsewhere.
 *
 * Names and label sets are the caller's: a name is [a-zA-Z_:][a-zA-Z0-9_:]*
 * and labels a ready rendering such as `state="idle",tls="yes"` (values
 * escaped with metrics_label_value()); the same name registered with
 * several label sets is one family (one HELP and TYPE).
 */
#ifndef POPGATE_METRICS_H
#define POPGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Buckets of one histogram (Prometheus' own default has 11). */
#define METRICS_BUCKETS_MAX 24
/* Metrics in one registry. */
#define METRICS_MAX 256

struct metrics;
struct metric;

struct metrics *metrics_new(void);
/* Frees the registry and every metric in it; accepts NULL. */
void metrics_free(struct metrics **mp);

/* Registration (owner thread, before other threads use the metric);
   name, labels and help are copied. Aborts on a bad name, more than
   METRICS_MAX metrics, or more than METRICS_BUCKETS_MAX bounds (these are
   programming errors, not input). */
struct metric *metrics_counter(struct metrics *m, const char *name,
    const char *labels, const char *help);
struct metric *metrics_gauge(struct metrics *m, const char *name,
    const char *labels, const char *help);
/* bounds: ascending upper bounds; the +Inf bucket is added. */
struct metric *metrics_histogram(struct metrics *m, const char *name,
    const char *labels, const char *help, const double *bounds,
    size_t nbounds);

/* Updates (any thread). */
void metric_add(struct metric *counter, uint64_t n);
/* A gauge's value; or a counter's, mirroring one kept elsewhere. */
void metric_set(struct metric *metric, int64_t value);
void metric_gauge_add(struct metric *gauge, int64_t delta);
void metric_observe(struct metric *histogram, double value);

/* Reads (any thread; relaxed): a counter's or gauge's value, a
   histogram's count. */
int64_t metric_value(const struct metric *metric);

/* Runs fn(arg) at each render, before the values are read (owner
   thread). */
void metrics_add_collector(struct metrics *m, void (*fn)(void *arg),
    void *arg);

/* Appends every family to sb in the text format. */
void metrics_render(struct metrics *m, struct strbuf *sb);

/* Escapes a label value (\\, \" and \n) into dst; returns dst. */
char *metrics_label_value(char *dst, size_t dstsize, const char *value);

#endif
