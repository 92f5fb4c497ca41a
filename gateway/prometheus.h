/*
 * prometheus — popgated's metrics: the registry (lib/metrics.h) with every
 * metric the admin guide lists, the collectors that read the IMAP server,
 * the upstreams and the store when scraped, and the HTTP endpoint that
 * serves them in the Prometheus text format through libevent's evhttp
 * ([metrics] enabled, listen; loopback by default).
 *
 * Start-up: prometheus_new() right after the store is open (the counters
 * count from then on, endpoint or not); prometheus_listen() while still
 * root, beside the IMAP ports; prometheus_free() at exit.
 *
 * Threads: the registry, its collectors and the endpoint are the event
 * loop's; the instruments in struct gateway_core_metrics (gateway.h) may
 * be updated from any thread.
 */
#ifndef POPGATE_GATEWAY_PROMETHEUS_H
#define POPGATE_GATEWAY_PROMETHEUS_H

#include <stddef.h>
#include <stdint.h>

struct gateway;
struct strbuf;

/* Request headers a scraper may send, in bytes. */
#define PROMETHEUS_HEADERS_MAX 8192
/* A scrape request has no body. */
#define PROMETHEUS_BODY_MAX 1024
/* Seconds an HTTP connection may stay silent. */
#define PROMETHEUS_TIMEOUT_SECS 30

void prometheus_new(struct gateway *gw);
/* Binds [metrics] listen when [metrics] enabled; -1 with errbuf. */
int prometheus_listen(struct gateway *gw, char *errbuf, size_t errsize);
/* The ports bound (0: none), for tests and the start-up log. */
int prometheus_port(const struct gateway *gw);
void prometheus_free(struct gateway *gw);

/* What a scrape returns (for tests and popgatectl-less debugging). */
void prometheus_render(struct gateway *gw, struct strbuf *sb);

/* A poll ended (upstreams.c): outcome is pop3_outcome_name()'s. */
void gateway_metrics_poll_done(struct gateway *gw, const char *outcome,
    uint32_t fetched, uint64_t bytes);

#endif
