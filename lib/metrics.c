/* metrics — see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

enum metric_type { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct metric {
	enum metric_type type;
	char *name;
	char *labels;		/* "" when none */
	char *help;
	_Atomic int64_t value;	/* counter, gauge */
	/* histogram: per-bucket (not cumulative) counts, the last one
	   +Inf; the sum as the bits of a double */
	size_t nbounds;
	double bounds[METRICS_BUCKETS_MAX];
	_Atomic uint64_t buckets[METRICS_BUCKETS_MAX + 1];
	_Atomic uint64_t count;
	_Atomic uint64_t sum_bits;
};

struct collector {
	void (*fn)(void *arg);
	void *arg;
};

struct metrics {
	struct metric *list[METRICS_MAX];
	size_t count;
	struct collector *collectors;
	size_t ncollectors;
};

struct metrics *
metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

void
metrics_free(struct metrics **mp)
{
	struct metrics *m = *mp;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->count; i++) {
		free(m->list[i]->name);
		free(m->list[i]->labels);
		free(m->list[i]->help);
		free(m->list[i]);
	}
	free(m->collectors);
	free(m);
	*mp = NULL;
}

static bool
name_valid(const char *name)
{
	if (name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
			return false;
	}
	return true;
}

static struct metric *
add(struct metrics *m, enum metric_type type, const char *name,
    const char *labels, const char *help)
{
	struct metric *x;

	PG_ASSERT(name_valid(name));
	PG_ASSERT(m->count < METRICS_MAX);
	x = xcalloc(1, sizeof(*x));
	x->type = type;
	x->name = xstrdup(name);
	x->labels = xstrdup(labels != NULL ? labels : "");
	x->help = xstrdup(help);
	m->list[m->count++] = x;
	return x;
}

struct metric *
metrics_counter(struct metrics *m, const char *name, const char *labels,
    const char *help)
{
	return add(m, M_COUNTER, name, labels, help);
}

struct metric *
metrics_gauge(struct metrics *m, const char *name, const char *labels,
    const char *help)
{
	return add(m, M_GAUGE, name, labels, help);
}

struct metric *
metrics_histogram(struct metrics *m, const char *name, const char *labels,
    const char *help, const double *bounds, size_t nbounds)
{
	struct metric *x;

	PG_ASSERT(nbounds <= METRICS_BUCKETS_MAX);
	for (size_t i = 1; i < nbounds; i++)
		PG_ASSERT(bounds[i - 1] < bounds[i]);
	x = add(m, M_HISTOGRAM, name, labels, help);
	x->nbounds = nbounds;
	memcpy(x->bounds, bounds, nbounds * sizeof(*bounds));
	return x;
}

void
metric_add(struct metric *c, uint64_t n)
{
	atomic_fetch_add_explicit(&c->value, (int64_t)n,
	    memory_order_relaxed);
}

void
metric_set(struct metric *g, int64_t v)
{
	atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

void
metric_gauge_add(struct metric *g, int64_t d)
{
	atomic_fetch_add_explicit(&g->value, d, memory_order_relaxed);
}

int64_t
metric_value(const struct metric *x)
{
	if (x->type == M_HISTOGRAM)
		return (int64_t)atomic_load_explicit(&((struct metric *)x)->count,
		    memory_order_relaxed);
	return atomic_load_explicit(&((struct metric *)x)->value,
	    memory_order_relaxed);
}

static double
bits_to_double(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t
double_to_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

void
metric_observe(struct metric *h, double v)
{
	uint64_t old, new;
	size_t i = 0;

	while (i < h->nbounds && v > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	/* C11 has no atomic add for doubles: compare and swap the bits */
	old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
	do {
		new = double_to_bits(bits_to_double(old) + v);
	} while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old,
	    new, memory_order_relaxed, memory_order_relaxed));
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void
metrics_add_collector(struct metrics *m, void (*fn)(void *arg), void *arg)
{
	m->collectors = xreallocarray(m->collectors, m->ncollectors + 1,
	    sizeof(*m->collectors));
	m->collectors[m->ncollectors].fn = fn;
	m->collectors[m->ncollectors].arg = arg;
	m->ncollectors++;
}

/* A float as Prometheus reads it: integers without a fraction. */
static void
append_double(struct strbuf *sb, double d)
{
	if (isinf(d))
		strbuf_appends(sb, d > 0 ? "+Inf" : "-Inf");
	else if (isnan(d))
		strbuf_appends(sb, "NaN");
	else if (d == floor(d) && fabs(d) < 1e15)
		strbuf_appendf(sb, "%.0f", d);
	else
		strbuf_appendf(sb, "%.17g", d);
}

/* name{labels[,extra]} */
static void
append_series(struct strbuf *sb, const char *name, const char *suffix,
    const char *labels, const char *extra)
{
	strbuf_appendf(sb, "%s%s", name, suffix);
	if (labels[0] != '\0' || extra != NULL) {
		strbuf_appendc(sb, '{');
		strbuf_appends(sb, labels);
		if (extra != NULL)
			strbuf_appendf(sb, "%s%s", labels[0] != '\0' ? "," :
			    "", extra);
		strbuf_appendc(sb, '}');
	}
	strbuf_appendc(sb, ' ');
}

static void
render_one(struct strbuf *sb, struct metric *x)
{
	uint64_t cum = 0;
	char le[64];

	if (x->type != M_HISTOGRAM) {
		append_series(sb, x->name, "", x->labels, NULL);
		strbuf_appendf(sb, "%lld\n", (long long)atomic_load_explicit(
		    &x->value, memory_order_relaxed));
		return;
	}
	for (size_t i = 0; i <= x->nbounds; i++) {
		struct strbuf b = STRBUF_INIT;

		cum += atomic_load_explicit(&x->buckets[i],
		    memory_order_relaxed);
		append_double(&b, i < x->nbounds ? x->bounds[i] : INFINITY);
		snprintf(le, sizeof(le), "le=\"%s\"", strbuf_str(&b));
		strbuf_free(&b);
		append_series(sb, x->name, "_bucket", x->labels, le);
		strbuf_appendf(sb, "%llu\n", (unsigned long long)cum);
	}
	append_series(sb, x->name, "_sum", x->labels, NULL);
	append_double(sb, bits_to_double(atomic_load_explicit(&x->sum_bits,
	    memory_order_relaxed)));
	strbuf_appendc(sb, '\n');
	append_series(sb, x->name, "_count", x->labels, NULL);
	/* the count is the buckets' total, so the two always agree */
	strbuf_appendf(sb, "%llu\n", (unsigned long long)cum);
}

void
metrics_render(struct metrics *m, struct strbuf *sb)
{
	static const char *const types[] = { "counter", "gauge",
		"histogram" };
	bool *done = xcalloc(m->count + 1, sizeof(*done));

	for (size_t i = 0; i < m->ncollectors; i++)
		m->collectors[i].fn(m->collectors[i].arg);
	/* families in registration order, each with all its series */
	for (size_t i = 0; i < m->count; i++) {
		if (done[i])
			continue;
		strbuf_appendf(sb, "# HELP %s %s\n# TYPE %s %s\n",
		    m->list[i]->name, m->list[i]->help, m->list[i]->name,
		    types[m->list[i]->type]);
		for (size_t j = i; j < m->count; j++) {
			if (strcmp(m->list[j]->name, m->list[i]->name) != 0)
				continue;
			render_one(sb, m->list[j]);
			done[j] = true;
		}
	}
	free(done);
}

char *
metrics_label_value(char *dst, size_t dstsize, const char *value)
{
	size_t o = 0;

	for (const char *p = value; *p != '\0'; p++) {
		const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" :
		    *p == '\n' ? "\\n" : NULL;
		size_t need = rep != NULL ? 2 : 1;

		if (o + need + 1 > dstsize)
			break;
		if (rep != NULL) {
			memcpy(dst + o, rep, 2);
			o += 2;
		} else {
			dst[o++] = *p;
		}
	}
	dst[o] = '\0';
	return dst;
}
