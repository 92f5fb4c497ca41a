/* mail-fts — the full-text index's terms; see mail-fts.h. */
#include "mail-fts.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail-charset.h"
#include "mail-header.h"
#include "mail-message.h"
#include "mail-search.h"
#include "strbuf.h"
#include "xmalloc.h"

/*
 * Which terms a message already has: one bit per possible term (2^25
 * bits, 4 MB of address space per thread, allocated once per thread and
 * zero-filled by the kernel on first touch). A test and set per byte of
 * text, without hashing or probing; text clusters (the terms of one
 * leading byte pair share 32 bytes), so the few kilobytes a message
 * touches stay in cache. Every bit set is cleared again before
 * mail_fts_message_terms returns, through the term list.
 */
#define SEEN_WORDS ((size_t)MAIL_FTS_TERM_LIMIT / 64)

static pthread_key_t seen_key;
static pthread_once_t seen_once = PTHREAD_ONCE_INIT;

static void
seen_key_init(void)
{
	PG_ASSERT(pthread_key_create(&seen_key, free) == 0);
}

static uint64_t *
seen_bits(void)
{
	uint64_t *bits;

	PG_ASSERT(pthread_once(&seen_once, seen_key_init) == 0);
	bits = pthread_getspecific(seen_key);
	if (bits == NULL) {
		bits = xcalloc(SEEN_WORDS, sizeof(*bits));
		PG_ASSERT(pthread_setspecific(seen_key, bits) == 0);
	}
	return bits;
}

void
mail_fts_terms_reset(struct mail_fts_terms *t)
{
	if (t->terms_cap > 4 * (size_t)MAIL_FTS_DOC_TERMS_MAX / 16 &&
	    t->count < t->terms_cap / 16) {
		/* shrink after a big message */
		free(t->terms);
		t->terms = NULL;
		t->terms_cap = 0;
	}
	t->count = 0;
	t->saturated = false;
	t->used = 0;
}

void
mail_fts_terms_free(struct mail_fts_terms *t)
{
	free(t->terms);
	memset(t, 0, sizeof(*t));
}

/* Every trigram of text s[0..n) (folded already) in class cls. */
static void
add_text(struct mail_fts_terms *t, unsigned cls, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	uint64_t *seen = t->seen;
	uint32_t v, *out;
	size_t used, room, end;

	if (n < MAIL_FTS_UNIT || t->saturated)
		return;
	/* room for every trigram of s, up to one past the limit */
	room = n - 2;
	if (room > (size_t)MAIL_FTS_DOC_TERMS_MAX + 1 - t->used)
		room = (size_t)MAIL_FTS_DOC_TERMS_MAX + 1 - t->used;
	if (t->used + room > t->terms_cap) {
		size_t cap = t->terms_cap == 0 ? 1024 : t->terms_cap;

		while (cap < t->used + room)
			cap *= 2;
		t->terms = xreallocarray(t->terms, cap, sizeof(*t->terms));
		t->terms_cap = cap;
	}
	out = t->terms;
	used = t->used;
	end = t->used + room;
	v = (uint32_t)cls << 24 | (uint32_t)p[0] << 8 | p[1];
	for (size_t i = 2; i < n && used < end; i++) {
		uint32_t term = (v << 8 | p[i]) & 0xffffffu;
		uint64_t w, bit;

		v = term;
		term |= (uint32_t)cls << 24;
		w = seen[term >> 6];
		bit = (uint64_t)1 << (term & 63);
		/* branch-free: store always, count only a new term */
		out[used] = term;
		used += (w & bit) == 0;
		seen[term >> 6] = w | bit;
	}
	t->used = used;
	if (used > MAIL_FTS_DOC_TERMS_MAX)
		t->saturated = true;
}

/* LSD radix sort of 25-bit values, 3 passes of 9 bits. */
size_t
mail_fts_sort_unique(uint32_t *v, size_t n)
{
	uint32_t *tmp, *src = v, *dst;
	size_t out = 0;

	if (n < 64) {
		/* insertion sort: the needle's few terms */
		for (size_t i = 1; i < n; i++) {
			uint32_t x = v[i];
			size_t j = i;

			while (j > 0 && v[j - 1] > x) {
				v[j] = v[j - 1];
				j--;
			}
			v[j] = x;
		}
	} else {
		tmp = xreallocarray(NULL, n, sizeof(*tmp));
		dst = tmp;
		for (unsigned shift = 0; shift < 27; shift += 9) {
			size_t count[513];

			memset(count, 0, sizeof(count));
			for (size_t i = 0; i < n; i++)
				count[((src[i] >> shift) & 511) + 1]++;
			for (size_t i = 1; i < 513; i++)
				count[i] += count[i - 1];
			for (size_t i = 0; i < n; i++)
				dst[count[(src[i] >> shift) & 511]++] = src[i];
			uint32_t *sw = src;
			src = dst;
			dst = sw;
		}
		/* three passes: the result is in tmp */
		memcpy(v, src, n * sizeof(*v));
		free(tmp);
	}
	for (size_t i = 0; i < n; i++)
		if (out == 0 || v[out - 1] != v[i])
			v[out++] = v[i];
	return out;
}

static void
add_header_block(struct mail_fts_terms *t, const char *hdr, size_t len,
    struct strbuf *tmp)
{
	struct mail_header_iter it;
	struct mail_header_field f;

	mail_header_iter_init(&it, hdr, len);
	while (!t->saturated && mail_header_iter_next(&it, &f)) {
		strbuf_reset(tmp);
		mail_utf8_casefold(f.name, f.name_len, tmp);
		add_text(t, MAIL_FTS_CLASS_HEADER, strbuf_str(tmp), tmp->len);
		strbuf_reset(tmp);
		mail_search_field_value(f.value, f.value_len, true, tmp);
		add_text(t, MAIL_FTS_CLASS_HEADER, strbuf_str(tmp), tmp->len);
	}
}

static void
finish(struct mail_fts_terms *t)
{
	/* terms[0..used) are the distinct terms in arrival order: clear
	   their bits for the thread's next message */
	for (size_t i = 0; i < t->used; i++)
		t->seen[t->terms[i] >> 6] &= ~((uint64_t)1 <<
		    (t->terms[i] & 63));
	t->seen = NULL;
	if (t->saturated) {
		t->count = 0;
		return;
	}
	t->count = t->used;
	mail_fts_sort_unique(t->terms, t->count);
}

void
mail_fts_message_terms(const void *data, size_t len,
    const struct mail_message *msg, struct mail_fts_terms *out)
{
	static const char *const address_fields[] = {
		"from", "to", "cc", "bcc",
	};
	struct strbuf tmp = STRBUF_INIT, folded = STRBUF_INIT;

	mail_fts_terms_reset(out);
	if (msg == NULL || msg->nparts == 0 || len != msg->size) {
		out->saturated = true;
		return;
	}
	out->seen = seen_bits();
	for (uint32_t i = 0; i < msg->nparts && !out->saturated; i++) {
		const struct mail_part *p = &msg->parts[i];

		if (!mail_search_part_in_bounds(p, len))
			continue;
		add_header_block(out, (const char *)data + p->hdr_off,
		    (size_t)p->hdr_len, &tmp);
		if (i == 0) {
			for (size_t k = 0; k < 4; k++) {
				strbuf_reset(&tmp);
				(void)mail_search_address_values(
				    (const char *)data + p->hdr_off,
				    (size_t)p->hdr_len, address_fields[k],
				    true, &tmp);
				add_text(out, MAIL_FTS_CLASS_HEADER,
				    strbuf_str(&tmp), tmp.len);
			}
		}
		if (!mail_search_part_is_text(p))
			continue;
		strbuf_reset(&tmp);
		strbuf_reset(&folded);
		mail_search_part_text(data, len, p, &tmp);
		mail_utf8_casefold(strbuf_str(&tmp), tmp.len, &folded);
		add_text(out, MAIL_FTS_CLASS_BODY, strbuf_str(&folded),
		    folded.len);
	}
	strbuf_free(&tmp);
	strbuf_free(&folded);
	finish(out);
}

size_t
mail_fts_needle_terms(const char *folded, size_t len, unsigned cls,
    uint32_t *out)
{
	const unsigned char *p = (const unsigned char *)folded;
	size_t n = 0;

	if (len < MAIL_FTS_UNIT)
		return 0;
	for (size_t i = 0; i + 2 < len; i++)
		out[n++] = mail_fts_term(cls, p[i], p[i + 1], p[i + 2]);
	return mail_fts_sort_unique(out, n);
}
