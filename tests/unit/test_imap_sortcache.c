/* Unit tests of imap-sortcache: ranks that order as the strings do
 * through merges, SORT on ranks against SORT on strings, publishing
 * rules, the byte bound (LRU) and several threads at once. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-sort.h"
#include "imap-frontend/imap-sortcache.h"

static const char *const pool[] = {
	"", "a", "ab", "abcdefgh", "abcdefghi", "abcdefgh0", "abcdefgg\xff",
	"\xc3\xa4pfel", "\xff", "zz", "abcdefghij", "b", "plans", "budget",
};
#define POOL (sizeof(pool) / sizeof(pool[0]))

struct tmsg {
	uint32_t uid;
	int64_t sent;
	const char *key[IMAP_SORT_RANKS];
};

static void
random_msgs(struct tmsg *t, size_t n, unsigned *seed)
{
	for (size_t i = 0; i < n; i++) {
		t[i].uid = (uint32_t)(i * 3 + 1 + rand_r(seed) % 3);
		t[i].sent = (int64_t)(rand_r(seed) % 9) * 1000000007LL -
		    4000000000LL;
		for (size_t k = 0; k < IMAP_SORT_RANKS; k++)
			t[i].key[k] = pool[rand_r(seed) % POOL];
	}
}

/* Every held message's ranks order as its strings do, equal strings
 * having equal ranks, and its sent date is kept. */
static void
check_gen(const struct imap_sortcache_gen *g, const struct tmsg *t,
    const bool *held, size_t n)
{
	uint32_t (*rank)[IMAP_SORT_RANKS] = calloc(n, sizeof(*rank));
	size_t count = 0, pos = 0, bad = 0;

	/* (check's assertions write to a pipe each: counted, checked once) */
	for (size_t i = 0; i < n; i++) {
		int64_t sent;

		if (imap_sortcache_find(g, t[i].uid, &pos, &sent, rank[i]) !=
		    held[i])
			bad++;
		if (!held[i])
			continue;
		count++;
		if (sent != t[i].sent)
			bad++;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n && held[i]; j++) {
			if (!held[j])
				continue;
			for (size_t k = 0; k < IMAP_SORT_RANKS; k++) {
				int d = strcmp(t[i].key[k], t[j].key[k]);
				int r = rank[i][k] < rank[j][k] ? -1 :
				    rank[i][k] > rank[j][k];

				if ((d < 0 ? -1 : d > 0) != r)
					bad++;
			}
		}
	}
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_eq(imap_sortcache_gen_count(g), count);
	free(rank);
}

static struct imap_sortcache_gen *
merge_some(const struct imap_sortcache_gen *old, const struct tmsg *t,
    const size_t *which, size_t m)
{
	struct imap_sortcache_msg nm[64];

	ck_assert_uint_le(m, 64);
	for (size_t i = 0; i < m; i++) {
		nm[i].uid = t[which[i]].uid;
		nm[i].sent = t[which[i]].sent;
		memcpy(nm[i].key, t[which[i]].key, sizeof(nm[i].key));
	}
	return imap_sortcache_merge(old, nm, m, 7, 3, 42);
}

START_TEST(merges_keep_string_order)
{
	enum { N = 60 };
	struct tmsg t[N];
	unsigned seed = 5256;

	for (int round = 0; round < 40; round++) {
		struct imap_sortcache_gen *g = NULL;
		bool held[N] = { false };
		size_t left = N;

		random_msgs(t, N, &seed);
		/* the messages arrive in batches of random size and order,
		   as SORTs after deliveries see them */
		while (left > 0) {
			size_t which[N], m = 0;
			struct imap_sortcache_gen *ng;
			size_t want = 1 + (size_t)rand_r(&seed) % 20;

			for (size_t i = 0; i < N && m < want; i++) {
				size_t j = (i * 7 + (size_t)round) % N;

				if (!held[j] && rand_r(&seed) % 2 == 0)
					which[m++] = j;
			}
			if (m == 0)
				continue;
			ng = merge_some(g, t, which, m);
			for (size_t i = 0; i < m; i++)
				held[which[i]] = true;
			left -= m;
			imap_sortcache_unref(&g);
			g = ng;
			check_gen(g, t, held, N);
		}
		imap_sortcache_unref(&g);
		ck_assert_ptr_null(g);
	}
}
END_TEST

START_TEST(find_any_order)
{
	struct tmsg t[10];
	size_t all[10], pos = 0;
	unsigned seed = 1;
	struct imap_sortcache_gen *g;
	uint32_t rank[IMAP_SORT_RANKS];
	int64_t sent;

	random_msgs(t, 10, &seed);
	for (size_t i = 0; i < 10; i++)
		all[i] = 9 - i;		/* merged in reverse UID order */
	g = merge_some(NULL, t, all, 10);
	/* ascending, then back to an earlier UID, then one never held */
	ck_assert(imap_sortcache_find(g, t[2].uid, &pos, &sent, rank));
	ck_assert(imap_sortcache_find(g, t[8].uid, &pos, &sent, rank));
	ck_assert(imap_sortcache_find(g, t[1].uid, &pos, &sent, rank));
	ck_assert(!imap_sortcache_find(g, t[9].uid + 1, &pos, &sent, rank));
	ck_assert(!imap_sortcache_find(g, 0, &pos, &sent, rank));
	ck_assert(imap_sortcache_find(g, t[0].uid, &pos, &sent, rank));
	/* the same UID merged twice is held once */
	{
		struct imap_sortcache_gen *g2;
		size_t two[2] = { 3, 3 };

		g2 = merge_some(NULL, t, two, 2);
		ck_assert_uint_eq(imap_sortcache_gen_count(g2), 1);
		imap_sortcache_unref(&g2);
	}
	imap_sortcache_unref(&g);
}
END_TEST

/* SORT on ranks answers as SORT on the strings, any criteria. */
START_TEST(ranked_sort_matches_strings)
{
	enum { N = 200 };
	struct tmsg t[N];
	struct imap_sort_msg v[N], w[N];
	struct imap_sort_criterion c[3];
	size_t order[N];
	unsigned seed = 14;

	for (int round = 0; round < 200; round++) {
		size_t nc = 1 + (size_t)(rand_r(&seed) % 3);
		struct imap_sortcache_gen *g;
		struct imap_sortcache_msg nm[N];
		size_t pos = 0;

		random_msgs(t, N, &seed);
		for (size_t i = 0; i < nc; i++) {
			c[i].key = (enum imap_sort_key)(rand_r(&seed) % 7);
			c[i].reverse = rand_r(&seed) % 2;
		}
		for (size_t i = 0; i < N; i++) {
			nm[i].uid = t[i].uid;
			nm[i].sent = t[i].sent;
			memcpy(nm[i].key, t[i].key, sizeof(nm[i].key));
		}
		g = imap_sortcache_merge(NULL, nm, N, 1, 1, 1);
		for (size_t i = 0; i < N; i++) {
			int64_t sent;

			memset(&v[i], 0, sizeof(v[i]));
			v[i].seq = (uint32_t)i + 1;
			v[i].uid = t[i].uid;
			v[i].arrival = (int64_t)(rand_r(&seed) % 5);
			v[i].size = rand_r(&seed) % 4;
			v[i].sent = t[i].sent;
			v[i].subject = t[i].key[IMAP_SORT_RANK_SUBJECT];
			v[i].from = t[i].key[IMAP_SORT_RANK_FROM];
			v[i].to = t[i].key[IMAP_SORT_RANK_TO];
			v[i].cc = t[i].key[IMAP_SORT_RANK_CC];
			if (!imap_sortcache_find(g, t[i].uid, &pos, &sent,
			    v[i].rank))
				ck_abort_msg("uid %u not held", t[i].uid);
		}
		imap_sortcache_unref(&g);
		memcpy(w, v, sizeof(v));
		imap_sort_msgs(w, N, c, nc);
		/* the ranked sort must not read the strings */
		for (size_t i = 0; i < N; i++)
			v[i].subject = v[i].from = v[i].to = v[i].cc = NULL;
		imap_sort_order(v, N, c, nc, true, order);
		for (size_t i = 0; i < N; i++)
			if (v[order[i]].seq != w[i].seq)
				ck_abort_msg("round %d at %zu: %u, want %u",
				    round, i, v[order[i]].seq, w[i].seq);
	}
}
END_TEST

static struct imap_sortcache_gen *
one_gen(uint32_t user, uint32_t mailbox, size_t n)
{
	struct imap_sortcache_msg nm[64];

	ck_assert_uint_le(n, 64);
	for (size_t i = 0; i < n; i++) {
		nm[i].uid = (uint32_t)i + 1;
		nm[i].sent = (int64_t)i;
		for (size_t k = 0; k < IMAP_SORT_RANKS; k++)
			nm[i].key[k] = pool[i % POOL];
	}
	return imap_sortcache_merge(NULL, nm, n, user, mailbox, 1);
}

START_TEST(publish_rules)
{
	struct imap_sortcache *c = imap_sortcache_new(1 << 20);
	struct imap_sortcache_gen *a = one_gen(1, 1, 10), *b = one_gen(1, 1, 20);
	struct imap_sortcache_gen *got, *x;
	struct imap_sortcache_stats st;

	ck_assert_ptr_null(imap_sortcache_get(c, 1, 1, 1, 10));
	imap_sortcache_publish(c, NULL, a);
	got = imap_sortcache_get(c, 1, 1, 1, 10);
	ck_assert_ptr_eq(got, a);
	/* another mailbox, user or UIDVALIDITY is another entry */
	ck_assert_ptr_null(imap_sortcache_get(c, 1, 2, 1, 10));
	ck_assert_ptr_null(imap_sortcache_get(c, 2, 1, 1, 10));
	ck_assert_ptr_null(imap_sortcache_get(c, 1, 1, 2, 10));
	/* b was merged from nothing, but a is there now: a stays */
	imap_sortcache_publish(c, NULL, b);
	x = imap_sortcache_get(c, 1, 1, 1, 10);
	ck_assert_ptr_eq(x, a);
	imap_sortcache_unref(&x);
	/* merged from a: replaces it; a lives on while referenced */
	imap_sortcache_publish(c, a, b);
	x = imap_sortcache_get(c, 1, 1, 1, 10);
	ck_assert_ptr_eq(x, b);
	ck_assert_uint_eq(imap_sortcache_gen_count(got), 10);
	imap_sortcache_unref(&got);
	imap_sortcache_unref(&a);
	imap_sortcache_stats(c, &st);
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_uint_eq(st.bytes, imap_sortcache_gen_bytes(b));
	/* 20 held for a view of none is not stale (at most 2 x 0 + 1024) */
	imap_sortcache_unref(&x);
	x = imap_sortcache_get(c, 1, 1, 1, 0);
	ck_assert_ptr_eq(x, b);
	imap_sortcache_unref(&x);
	imap_sortcache_unref(&b);
	imap_sortcache_free(&c);
	ck_assert_ptr_null(c);
}
END_TEST

/* A generation of mostly expunged mail is dropped at lookup. */
START_TEST(stale_generation_dropped)
{
	enum { N = 3000 };
	struct imap_sortcache *c = imap_sortcache_new(64u << 20);
	struct imap_sortcache_msg *nm = calloc(N, sizeof(*nm));
	struct imap_sortcache_gen *g, *x;
	struct imap_sortcache_stats st;

	for (size_t i = 0; i < N; i++) {
		nm[i].uid = (uint32_t)i + 1;
		for (size_t k = 0; k < IMAP_SORT_RANKS; k++)
			nm[i].key[k] = pool[i % POOL];
	}
	g = imap_sortcache_merge(NULL, nm, N, 1, 1, 1);
	imap_sortcache_publish(c, NULL, g);
	/* 3000 held for a view of 1000: 2 x 1000 + 1024 = 3024, kept */
	x = imap_sortcache_get(c, 1, 1, 1, 1000);
	ck_assert_ptr_eq(x, g);
	imap_sortcache_unref(&x);
	/* for a view of 900: dropped */
	ck_assert_ptr_null(imap_sortcache_get(c, 1, 1, 1, 900));
	imap_sortcache_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.bytes, 0);
	imap_sortcache_unref(&g);
	imap_sortcache_free(&c);
	free(nm);
}
END_TEST

START_TEST(bounded_lru)
{
	struct imap_sortcache_gen *g = one_gen(1, 1, 40), *x;
	size_t one = imap_sortcache_gen_bytes(g);
	/* room for three generations of this size, not four */
	struct imap_sortcache *c = imap_sortcache_new(3 * one + one / 2);
	struct imap_sortcache_stats st;

	imap_sortcache_unref(&g);
	for (uint32_t m = 1; m <= 50; m++) {
		g = one_gen(1, m, 40);
		imap_sortcache_publish(c, NULL, g);
		imap_sortcache_unref(&g);
		/* mailbox 1 is used all the time: it stays */
		x = imap_sortcache_get(c, 1, 1, 1, 40);
		ck_assert_ptr_nonnull(x);
		imap_sortcache_unref(&x);
		imap_sortcache_stats(c, &st);
		ck_assert_uint_le(st.bytes, 3 * one + one / 2);
		ck_assert_uint_eq(st.entries, m < 3 ? m : 3);
	}
	imap_sortcache_stats(c, &st);
	ck_assert_uint_eq(st.evicted, 47);
	/* the two newest besides mailbox 1 */
	ck_assert_ptr_null(imap_sortcache_get(c, 1, 48, 1, 40));
	x = imap_sortcache_get(c, 1, 49, 1, 40);
	ck_assert_ptr_nonnull(x);
	imap_sortcache_unref(&x);
	x = imap_sortcache_get(c, 1, 50, 1, 40);
	ck_assert_ptr_nonnull(x);
	imap_sortcache_unref(&x);
	/* one generation bigger than the whole cache is not kept */
	imap_sortcache_free(&c);
	c = imap_sortcache_new(one - 1);
	g = one_gen(1, 1, 40);
	imap_sortcache_publish(c, NULL, g);
	ck_assert_ptr_null(imap_sortcache_get(c, 1, 1, 1, 40));
	imap_sortcache_unref(&g);
	/* and the entry count is bounded too */
	imap_sortcache_free(&c);
	c = imap_sortcache_new(1u << 30);
	for (uint32_t m = 1; m <= IMAP_SORTCACHE_ENTRIES_MAX + 10; m++) {
		g = one_gen(2, m, 1);
		imap_sortcache_publish(c, NULL, g);
		imap_sortcache_unref(&g);
	}
	imap_sortcache_stats(c, &st);
	ck_assert_uint_eq(st.entries, IMAP_SORTCACHE_ENTRIES_MAX);
	ck_assert_uint_eq(st.evicted, 10);
	ck_assert_ptr_null(imap_sortcache_get(c, 2, 1, 1, 1));
	imap_sortcache_free(&c);
}
END_TEST

/* Threads looking up, merging and publishing on shared mailboxes while
 * the bound evicts (for ThreadSanitizer; every lookup checked). */
struct hammer {
	struct imap_sortcache *c;
	unsigned seed;
	size_t bad;	/* lookups that answered wrong */
};

static void *
hammer(void *arg)
{
	struct hammer *h = arg;

	h->bad = 0;

	for (int i = 0; i < 400; i++) {
		uint32_t mb = 1 + (uint32_t)(rand_r(&h->seed) % 4);
		struct imap_sortcache_gen *g, *ng;
		struct imap_sortcache_msg nm[4];
		size_t n = 0, pos = 0;
		uint32_t rank[IMAP_SORT_RANKS];
		int64_t sent;

		g = imap_sortcache_get(h->c, 1, mb, 1, 100);
		for (uint32_t u = 1; u <= 200 && n < 4; u += 1 +
		    (uint32_t)(rand_r(&h->seed) % 40)) {
			if (g != NULL &&
			    imap_sortcache_find(g, u, &pos, &sent, rank)) {
				if (sent != (int64_t)u * 10)
					h->bad++;
				continue;
			}
			nm[n].uid = u;
			nm[n].sent = (int64_t)u * 10;
			for (size_t k = 0; k < IMAP_SORT_RANKS; k++)
				nm[n].key[k] = pool[u % POOL];
			n++;
		}
		if (n > 0) {
			ng = imap_sortcache_merge(g, nm, n, 1, mb, 1);
			imap_sortcache_publish(h->c, g, ng);
			imap_sortcache_unref(&ng);
		}
		imap_sortcache_unref(&g);
	}
	return NULL;
}

START_TEST(threads)
{
	struct imap_sortcache *c = imap_sortcache_new(6000);
	struct hammer h[4];
	pthread_t t[4];
	struct imap_sortcache_stats st;

	for (int i = 0; i < 4; i++) {
		h[i].c = c;
		h[i].seed = (unsigned)i + 1;
		ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_uint_eq(h[i].bad, 0);
	}
	imap_sortcache_stats(c, &st);
	ck_assert_uint_le(st.bytes, 6000);
	imap_sortcache_free(&c);
}
END_TEST

static Suite *
sortcache_suite(void)
{
	Suite *s = suite_create("imap_sortcache");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, merges_keep_string_order);
	tcase_add_test(tc, find_any_order);
	tcase_add_test(tc, ranked_sort_matches_strings);
	tcase_add_test(tc, publish_rules);
	tcase_add_test(tc, stale_generation_dropped);
	tcase_add_test(tc, bounded_lru);
	tcase_add_test(tc, threads);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sortcache_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
