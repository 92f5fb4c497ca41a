/* Fuzz target: the pure SORT / THREAD code (imap-sort). The input is
 * split into lines; each line is a Subject (base subject) and a
 * References value (message ids) of one message, which are then sorted
 * and threaded both ways. Checks: the base subject never grows, every
 * message appears once in each THREAD answer, parentheses balance. The
 * whole input is also read as a stored key record (mail-sortkey). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "imap-frontend/imap-sort.h"
#include "imap-frontend/imap-sortcache.h"
#include "strbuf.h"

#define FUZZ_SORT_MSGS 64

/* The subjects as ranks (imap-sortcache: merged in two halves, as
 * SORTs before and after new mail see them): SORT on the ranks must
 * answer as SORT on the strings. */
static void
check_ranks(struct imap_sort_msg *msgs, size_t n,
    const struct imap_sort_criterion *crit)
{
	struct imap_sortcache_msg cm[FUZZ_SORT_MSGS];
	struct imap_sortcache_gen *g1, *g2;
	size_t a[FUZZ_SORT_MSGS], b[FUZZ_SORT_MSGS], pos = 0;
	int64_t sent;

	for (size_t i = 0; i < n; i++) {
		cm[i].uid = msgs[i].uid;
		cm[i].sent = msgs[i].sent;
		cm[i].key[IMAP_SORT_RANK_SUBJECT] = msgs[i].subject;
		cm[i].key[IMAP_SORT_RANK_FROM] = msgs[i].from;
		cm[i].key[IMAP_SORT_RANK_TO] = msgs[i].to;
		cm[i].key[IMAP_SORT_RANK_CC] = msgs[i].cc;
	}
	g1 = imap_sortcache_merge(NULL, cm + n / 2, n - n / 2, 1, 1, 1);
	g2 = imap_sortcache_merge(g1, cm, n / 2, 1, 1, 1);
	for (size_t i = 0; i < n; i++)
		if (!imap_sortcache_find(g2, msgs[i].uid, &pos, &sent,
		    msgs[i].rank) || sent != msgs[i].sent)
			abort();
	imap_sort_order(msgs, n, crit, 2, true, a);
	imap_sort_order(msgs, n, crit, 2, false, b);
	if (n > 0 && memcmp(a, b, n * sizeof(a[0])) != 0)
		abort();
	imap_sortcache_unref(&g1);
	imap_sortcache_unref(&g2);
}

static void
check_thread(const struct strbuf *out, size_t n)
{
	unsigned char seen[FUZZ_SORT_MSGS + 1] = { 0 };
	long depth = 0;

	for (const char *p = strbuf_str(out); *p != '\0'; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')')
			depth--;
		else if (*p >= '0' && *p <= '9') {
			long x = strtol(p, (char **)&p, 10);

			p--;
			if (x < 1 || x > (long)n || seen[x]++)
				abort();
		}
		if (depth < 0)
			abort();
	}
	if (depth != 0)
		abort();
	for (size_t i = 1; i <= n; i++)
		if (!seen[i])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new(4096);
	struct imap_sort_msg msgs[FUZZ_SORT_MSGS];
	struct imap_sort_criterion crit[2] = {
		{ IMAP_SORT_SUBJECT, false }, { IMAP_SORT_DATE, true },
	};
	struct strbuf sb = STRBUF_INIT, out = STRBUF_INIT;
	const char *p = (const char *)data, *end = p + size;
	size_t n = 0;
	struct mail_sortkey sk;

	/* the input as a stored key record: read or refused, in bounds */
	if (mail_sortkey_read(data, size, &sk) == 0)
		for (size_t i = 0; i < sk.nrefs; i++)
			(void)strlen(sk.refs[i]);

	while (p < end && n < FUZZ_SORT_MSGS) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		struct imap_sort_msg *m = &msgs[n];
		const char *ids[1];

		memset(m, 0, sizeof(*m));
		m->seq = m->uid = (uint32_t)n + 1;
		m->sent = len % 5;
		mail_sortkey_base_subject(p, len, &sb, &m->reply);
		/* folding may grow UTF-8 a little, never more than 2x */
		if (sb.len > 2 * len + 4)
			abort();
		m->subject = arena_strndup(a, strbuf_str(&sb), sb.len);
		m->from = m->to = m->cc = "";
		m->refs = arena_alloc(a, IMAP_THREAD_REFS_MAX * sizeof(*m->refs));
		m->nrefs = mail_sortkey_msgids(p, len, a, m->refs,
		    IMAP_THREAD_REFS_MAX);
		if (mail_sortkey_msgids(p, len / 2, a, ids, 1) == 1)
			m->msgid = ids[0];
		n++;
		p += len + 1;
	}
	check_ranks(msgs, n, crit);
	imap_sort_msgs(msgs, n, crit, 2);
	for (size_t i = 1; i < n; i++)
		if (strcmp(msgs[i - 1].subject, msgs[i].subject) > 0)
			abort();
	imap_thread_orderedsubject(msgs, n, false, a, &out);
	check_thread(&out, n);
	strbuf_reset(&out);
	imap_thread_references(msgs, n, false, a, &out);
	check_thread(&out, n);
	strbuf_free(&sb);
	strbuf_free(&out);
	arena_free(&a);
	return 0;
}
