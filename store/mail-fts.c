/* mail-fts — the full-text index's terms; see mail-fts.h. */
#include "mail-fts.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail-charset.h"
#include "mail-header.h"
#include "mail-message.h"
#include "mail-search.h"
#include "strbuf.h"
#include "xmalloc.h"

#define EMPTY UINT32_MAX

static size_t
slot(uint32_t term, size_t cap)
{
	return (size_t)((term * 0x9E3779B1u) >> 7) & (cap - 1);
}


void
mail_fts_terms_reset(struct mail_fts_terms *t)
{
	/* clear only the slots used: the table may be large from an
	   earlier, bigger message */
	for (size_t i = 0; i < t->table_used && t->table != NULL; i++) {
		size_t s = slot(t->terms[i], t->table_cap);

		while (t->table[s] != t->terms[i])
			s = (s + 1) & (t->table_cap - 1);
		t->table[s] = EMPTY;
	}
	if (t->table_cap > 65536 && t->table_used < t->table_cap / 16) {
		/* shrink after a big message: a small table stays in cache */
		free(t->table);
		t->table = NULL;
		t->table_cap = 0;
	}
	t->count = 0;
	t->saturated = false;
	t->table_used = 0;
}

void
mail_fts_terms_free(struct mail_fts_terms *t)
{
	free(t->terms);
	free(t->table);
	memset(t, 0, sizeof(*t));
}

static void
table_grow(struct mail_fts_terms *t)
{
	size_t ncap = t->table_cap == 0 ? 4096 : t->table_cap * 2;
	uint32_t *nt = xreallocarray(NULL, ncap, sizeof(*nt));

	memset(nt, 0xff, ncap * sizeof(*nt));
	for (size_t i = 0; i < t->table_cap; i++) {
		uint32_t v = t->table[i];
		size_t s;

		if (v == EMPTY)
			continue;
		for (s = slot(v, ncap); nt[s] != EMPTY; s = (s + 1) & (ncap - 1))
			;
		nt[s] = v;
	}
	free(t->table);
	t->table = nt;
	t->table_cap = ncap;
}

static void
add_term(struct mail_fts_terms *t, uint32_t term)
{
	size_t s;

	if (t->table_used * 2 >= t->table_cap)
		table_grow(t);
	for (s = slot(term, t->table_cap); t->table[s] != EMPTY;
	    s = (s + 1) & (t->table_cap - 1))
		if (t->table[s] == term)
			return;
	t->table[s] = term;
	if (t->table_used == t->terms_cap) {
		t->terms_cap = t->terms_cap == 0 ? 1024 : t->terms_cap * 2;
		t->terms = xreallocarray(t->terms, t->terms_cap,
		    sizeof(*t->terms));
	}
	t->terms[t->table_used] = term;
	if (++t->table_used > MAIL_FTS_DOC_TERMS_MAX)
		t->saturated = true;
}

/* Every trigram of text s[0..n) (folded already) in class cls. */
static void
add_text(struct mail_fts_terms *t, unsigned cls, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t v;

	if (n < MAIL_FTS_UNIT || t->saturated)
		return;
	v = (uint32_t)p[0] << 8 | p[1];
	for (size_t i = 2; i < n && !t->saturated; i++) {
		v = (v << 8 | p[i]) & 0xffffffu;
		add_term(t, (uint32_t)cls << 24 | v);
	}
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
	if (t->saturated) {
		t->count = 0;
		return;
	}
	/* terms[0..table_used) are the distinct terms in arrival order
	   (reset clears the table through this list, in any order) */
	t->count = t->table_used;
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
