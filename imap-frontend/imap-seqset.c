/* imap-seqset — sequence sets; see imap-seqset.h. */
#include "imap-seqset.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "xmalloc.h"

void
imap_seqset_init(struct imap_seqset *set)
{
	memset(set, 0, sizeof(*set));
}

void
imap_seqset_free(struct imap_seqset *set)
{
	if (set == NULL)
		return;
	free(set->ranges);
	memset(set, 0, sizeof(*set));
}

void
imap_seqset_clear(struct imap_seqset *set)
{
	set->count = 0;
}

static void
seqset_grow(struct imap_seqset *set, size_t need)
{
	if (need <= set->cap)
		return;
	size_t cap = set->cap < 8 ? 8 : set->cap;
	while (cap < need)
		cap *= 2;
	set->ranges = xreallocarray(set->ranges, cap, sizeof(*set->ranges));
	set->cap = cap;
}

/* Index of the first range whose hi + 1 >= n (the first that n could
 * touch or precede). */
static size_t
seqset_lower_bound(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uint64_t)set->ranges[mid].hi + 1 < n)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
imap_seqset_add_range(struct imap_seqset *set, uint32_t lo, uint32_t hi)
{
	if (lo > hi) {
		uint32_t t = lo;
		lo = hi;
		hi = t;
	}
	if (hi == 0)
		return;
	if (lo == 0)
		lo = 1;

	/* Fast path: appending after the last range. */
	if (set->count > 0) {
		struct imap_seq_range *last = &set->ranges[set->count - 1];
		if (lo > last->hi && (uint64_t)last->hi + 1 < lo) {
			seqset_grow(set, set->count + 1);
			set->ranges[set->count].lo = lo;
			set->ranges[set->count].hi = hi;
			set->count++;
			return;
		}
		if (lo >= last->lo) {
			if (hi > last->hi)
				last->hi = hi;
			return;
		}
	}

	size_t i = seqset_lower_bound(set, lo);
	/* Ranges i..j-1 overlap or touch [lo, hi]. */
	size_t j = i;
	while (j < set->count && set->ranges[j].lo <= (uint64_t)hi + 1)
		j++;
	if (i == j) {
		seqset_grow(set, set->count + 1);
		memmove(&set->ranges[i + 1], &set->ranges[i],
		    (set->count - i) * sizeof(*set->ranges));
		set->ranges[i].lo = lo;
		set->ranges[i].hi = hi;
		set->count++;
		return;
	}
	if (set->ranges[i].lo < lo)
		lo = set->ranges[i].lo;
	if (set->ranges[j - 1].hi > hi)
		hi = set->ranges[j - 1].hi;
	set->ranges[i].lo = lo;
	set->ranges[i].hi = hi;
	memmove(&set->ranges[i + 1], &set->ranges[j],
	    (set->count - j) * sizeof(*set->ranges));
	set->count -= j - i - 1;
}

void
imap_seqset_add(struct imap_seqset *set, uint32_t n)
{
	imap_seqset_add_range(set, n, n);
}

void
imap_seqset_merge(struct imap_seqset *set, const struct imap_seqset *src)
{
	for (size_t i = 0; i < src->count; i++)
		imap_seqset_add_range(set, src->ranges[i].lo, src->ranges[i].hi);
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (set->ranges[mid].hi < n)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < set->count && set->ranges[lo].lo <= n;
}

uint64_t
imap_seqset_count(const struct imap_seqset *set)
{
	uint64_t n = 0;

	for (size_t i = 0; i < set->count; i++)
		n += (uint64_t)set->ranges[i].hi - set->ranges[i].lo + 1;
	return n;
}

bool
imap_seqset_is_empty(const struct imap_seqset *set)
{
	return set->count == 0;
}

uint32_t
imap_seqset_min(const struct imap_seqset *set)
{
	return set->count == 0 ? 0 : set->ranges[0].lo;
}

uint32_t
imap_seqset_max(const struct imap_seqset *set)
{
	return set->count == 0 ? 0 : set->ranges[set->count - 1].hi;
}

void
imap_seqset_format(const struct imap_seqset *set, struct strbuf *out)
{
	for (size_t i = 0; i < set->count; i++) {
		if (i > 0)
			strbuf_appendc(out, ',');
		if (set->ranges[i].lo == set->ranges[i].hi)
			strbuf_appendf(out, "%u", set->ranges[i].lo);
		else
			strbuf_appendf(out, "%u:%u", set->ranges[i].lo,
			    set->ranges[i].hi);
	}
}

static int
range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return 0;
}

/* Sorts and merges set in place: O(n log n) for any input order. */
static void
seqset_normalise(struct imap_seqset *set)
{
	size_t out = 0;

	if (set->count < 2)
		return;
	qsort(set->ranges, set->count, sizeof(*set->ranges), range_cmp);
	for (size_t i = 1; i < set->count; i++) {
		struct imap_seq_range *cur = &set->ranges[out];
		if ((uint64_t)cur->hi + 1 >= set->ranges[i].lo) {
			if (set->ranges[i].hi > cur->hi)
				cur->hi = set->ranges[i].hi;
		} else {
			set->ranges[++out] = set->ranges[i];
		}
	}
	set->count = out + 1;
}

/* Reads "*" or a number 1..4294967295 at s[*pos]; *star_r says which. */
static int
seq_number(const char *s, size_t len, size_t *pos, uint32_t *num_r,
    bool *star_r, const char **error_r)
{
	size_t i = *pos;
	uint64_t n = 0;

	*star_r = false;
	if (i < len && s[i] == '*') {
		*star_r = true;
		*num_r = 0;
		*pos = i + 1;
		return 0;
	}
	if (i >= len || s[i] < '0' || s[i] > '9') {
		*error_r = "Invalid sequence set: number expected";
		return -1;
	}
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		n = n * 10 + (uint64_t)(s[i] - '0');
		if (n > UINT32_MAX) {
			*error_r = "Invalid sequence set: number too large";
			return -1;
		}
		i++;
	}
	if (n == 0) {
		*error_r = "Invalid sequence set: 0 is not a valid number";
		return -1;
	}
	*num_r = (uint32_t)n;
	*pos = i;
	return 0;
}

int
imap_seqset_parse(const char *s, size_t len, struct imap_seqset_spec *spec_r,
    const char **error_r)
{
	size_t pos = 0;

	memset(spec_r, 0, sizeof(*spec_r));
	spec_r->star_lo = UINT32_MAX;
	if (len == 0) {
		*error_r = "Invalid sequence set: empty";
		goto fail;
	}
	for (;;) {
		uint32_t a, b;
		bool a_star, b_star;

		if (seq_number(s, len, &pos, &a, &a_star, error_r) < 0)
			goto fail;
		b = a;
		b_star = a_star;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (seq_number(s, len, &pos, &b, &b_star, error_r) < 0)
				goto fail;
		}
		if (a_star || b_star) {
			spec_r->has_star = true;
			if (!a_star || !b_star) {
				uint32_t n = a_star ? b : a;
				if (n < spec_r->star_lo)
					spec_r->star_lo = n;
				if (n > spec_r->star_hi)
					spec_r->star_hi = n;
			}
		} else {
			struct imap_seqset *f = &spec_r->fixed;
			seqset_grow(f, f->count + 1);
			f->ranges[f->count].lo = a < b ? a : b;
			f->ranges[f->count].hi = a < b ? b : a;
			f->count++;
		}
		if (pos == len)
			break;
		if (s[pos] != ',') {
			*error_r = "Invalid sequence set: unexpected character";
			goto fail;
		}
		pos++;
	}
	seqset_normalise(&spec_r->fixed);
	return 0;
fail:
	imap_seqset_spec_free(spec_r);
	return -1;
}

void
imap_seqset_spec_free(struct imap_seqset_spec *spec)
{
	if (spec == NULL)
		return;
	imap_seqset_free(&spec->fixed);
	memset(spec, 0, sizeof(*spec));
	spec->star_lo = UINT32_MAX;
}

/* The range covered by the '*' elements for this max; false if none. */
static bool
star_range(const struct imap_seqset_spec *spec, uint32_t max, uint32_t *lo_r,
    uint32_t *hi_r)
{
	uint32_t lo = max, hi = max;

	if (!spec->has_star)
		return false;
	if (spec->star_hi != 0) {	/* some "n:*" element */
		if (spec->star_lo < lo)
			lo = spec->star_lo;
		if (spec->star_hi > hi)
			hi = spec->star_hi;
	}
	if (lo == 0)
		lo = 1;
	if (hi == 0)
		return false;
	*lo_r = lo;
	*hi_r = hi;
	return true;
}

void
imap_seqset_resolve(const struct imap_seqset_spec *spec, uint32_t max,
    struct imap_seqset *set_r)
{
	uint32_t lo = 0, hi = 0;

	imap_seqset_clear(set_r);
	seqset_grow(set_r, spec->fixed.count + 1);
	if (spec->fixed.count > 0)
		memcpy(set_r->ranges, spec->fixed.ranges,
		    spec->fixed.count * sizeof(*set_r->ranges));
	set_r->count = spec->fixed.count;
	if (star_range(spec, max, &lo, &hi))
		imap_seqset_add_range(set_r, lo, hi);
}

bool
imap_seqset_spec_contains(const struct imap_seqset_spec *spec, uint32_t max,
    uint32_t n)
{
	uint32_t lo = 0, hi = 0;

	if (imap_seqset_contains(&spec->fixed, n))
		return true;
	return star_range(spec, max, &lo, &hi) && lo <= n && n <= hi;
}
