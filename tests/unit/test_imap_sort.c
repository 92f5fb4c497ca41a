/* Unit tests of imap-sort: RFC 5256's base subject, message ids, SORT
 * order and both THREAD algorithms. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "imap-frontend/imap-parse.h"
#include "imap-frontend/imap-sort.h"
#include "strbuf.h"

static void
check_base(const char *in, const char *want, bool want_reply)
{
	struct strbuf out = STRBUF_INIT;
	bool reply = !want_reply;

	mail_sortkey_base_subject(in, strlen(in), &out, &reply);
	ck_assert_msg(strcmp(strbuf_str(&out), want) == 0,
	    "base subject of \"%s\": \"%s\", want \"%s\"", in,
	    strbuf_str(&out), want);
	ck_assert_msg(reply == want_reply, "reply flag of \"%s\"", in);
	strbuf_free(&out);
}

START_TEST(sort_base_subject)
{
	check_base("Hello", "hello", false);
	check_base("Re: Hello", "hello", true);
	check_base("RE: re: Fwd: hello", "hello", true);
	check_base("Re:Hello", "hello", true);
	check_base("Re [foo]: Hello", "hello", true);
	check_base("[foo] Re: Hello", "hello", true);
	check_base("[foo]", "[foo]", false);	/* (4): not when all */
	check_base("[foo] [bar] hello", "hello", false);
	check_base("Hello (fwd)", "hello", true);
	check_base("Hello (fwd) (FWD)  ", "hello", true);
	check_base("[Fwd: Re: Hello]", "hello", true);
	check_base("[fwd: [list] hello]", "hello", true);
	check_base("Fw: Hello", "hello", true);
	check_base("  Hello \t  World\r\n ", "hello world", false);
	check_base("Reply to me", "reply to me", false);
	check_base("Re : spaced leader", "spaced leader", true);
	check_base("Rex: not a leader", "rex: not a leader", false);
	check_base("", "", false);
	check_base("Re:", "", true);
	check_base("Re: [bug] [fwd: x]", "x", true);
}
END_TEST

START_TEST(sort_msgids)
{
	struct arena *a = arena_new(1024);
	const char *ids[4];
	const char *v = "<a@x> (comment) <b\r\n @y>  <> <c@z>";
	size_t n = mail_sortkey_msgids(v, strlen(v), a, ids, 4);

	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(ids[0], "<a@x>");
	ck_assert_str_eq(ids[1], "<b@y>");
	ck_assert_str_eq(ids[2], "<c@z>");
	/* more than max: the last ones */
	n = mail_sortkey_msgids(v, strlen(v), a, ids, 2);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(ids[0], "<b@y>");
	ck_assert_str_eq(ids[1], "<c@z>");
	ck_assert_uint_eq(mail_sortkey_msgids("none", 4, a, ids, 4), 0);
	ck_assert_uint_eq(mail_sortkey_msgids("<unterminated", 13, a, ids, 4), 0);
	arena_free(&a);
}
END_TEST

static struct imap_sort_msg
msg(uint32_t seq, int64_t sent, const char *subj, bool reply,
    const char *id, const char **refs, size_t nrefs)
{
	struct imap_sort_msg m;

	memset(&m, 0, sizeof(m));
	m.seq = seq;
	m.uid = seq * 10;
	m.sent = sent;
	m.arrival = 1000 - sent;
	m.size = seq % 3;
	m.subject = subj;
	m.reply = reply;
	m.from = m.to = m.cc = "";
	m.msgid = id;
	m.refs = refs;
	m.nrefs = nrefs;
	return m;
}

START_TEST(sort_order_and_ties)
{
	struct imap_sort_msg v[5] = {
		msg(1, 50, "b", false, NULL, NULL, 0),
		msg(2, 10, "a", false, NULL, NULL, 0),
		msg(3, 50, "a", false, NULL, NULL, 0),
		msg(4, 10, "b", false, NULL, NULL, 0),
		msg(5, 30, "a", false, NULL, NULL, 0),
	};
	struct imap_sort_criterion c[2] = {
		{ IMAP_SORT_SUBJECT, false }, { IMAP_SORT_DATE, true },
	};
	uint32_t want1[] = { 3, 5, 2, 1, 4 };
	uint32_t want2[] = { 1, 3, 5, 2, 4 };	/* REVERSE DATE, ties by seq */

	imap_sort_msgs(v, 5, c, 2);
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(v[i].seq, want1[i]);
	imap_sort_msgs(v, 5, &c[1], 1);
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(v[i].seq, want2[i]);
}
END_TEST

/* The reference order of RFC 5256 3, compared key by key. */
static const struct imap_sort_criterion *ref_crit;
static size_t ref_ncrit;

static int
ref_cmp(const void *x, const void *y)
{
	const struct imap_sort_msg *a = x, *b = y;

	for (size_t i = 0; i < ref_ncrit; i++) {
		int d = 0;

		switch (ref_crit[i].key) {
		case IMAP_SORT_ARRIVAL:
			d = (a->arrival > b->arrival) - (a->arrival < b->arrival);
			break;
		case IMAP_SORT_DATE:
			d = (a->sent > b->sent) - (a->sent < b->sent);
			break;
		case IMAP_SORT_SIZE:
			d = (a->size > b->size) - (a->size < b->size);
			break;
		case IMAP_SORT_SUBJECT:
			d = strcmp(a->subject, b->subject);
			break;
		case IMAP_SORT_FROM:
			d = strcmp(a->from, b->from);
			break;
		case IMAP_SORT_TO:
			d = strcmp(a->to, b->to);
			break;
		case IMAP_SORT_CC:
			d = strcmp(a->cc, b->cc);
			break;
		}
		if (d != 0)
			return ref_crit[i].reverse ? -d : d;
	}
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sorting on the first key's 8-byte prefix gives the reference order:
 * strings that share or exceed their first 8 bytes, 8-bit bytes,
 * negative dates, REVERSE, several keys. */
START_TEST(sort_matches_reference)
{
	enum { N = 300 };
	static const char *const pool[] = {
		"", "a", "ab", "abcdefgh", "abcdefghi", "abcdefgh0",
		"abcdefgg\xff", "\xc3\xa4pfel", "\xff", "zz", "abcdefghij",
	};
	struct imap_sort_msg v[N], w[N];
	struct imap_sort_criterion c[3];
	size_t order[N];
	unsigned seed = 14;

	for (int round = 0; round < 200; round++) {
		size_t nc = 1 + (size_t)(rand_r(&seed) % 3);

		for (size_t i = 0; i < nc; i++) {
			c[i].key = (enum imap_sort_key)(rand_r(&seed) % 7);
			c[i].reverse = rand_r(&seed) % 2;
		}
		for (int i = 0; i < N; i++) {
			memset(&v[i], 0, sizeof(v[i]));
			v[i].seq = v[i].uid = (uint32_t)i + 1;
			v[i].arrival = (int64_t)(rand_r(&seed) % 5) - 2;
			v[i].sent = (int64_t)(rand_r(&seed) % 7) * 1000000007LL -
			    3000000000LL;
			v[i].size = rand_r(&seed) % 4;
			v[i].subject = pool[rand_r(&seed) % 11];
			v[i].from = pool[rand_r(&seed) % 11];
			v[i].to = pool[rand_r(&seed) % 11];
			v[i].cc = pool[rand_r(&seed) % 11];
		}
		memcpy(w, v, sizeof(v));
		ref_crit = c;
		ref_ncrit = nc;
		qsort(w, N, sizeof(w[0]), ref_cmp);
		/* the order alone (what SORT uses), then the messages moved */
		imap_sort_order(v, N, c, nc, false, order);
		for (int i = 0; i < N; i++)
			if (v[order[i]].seq != w[i].seq)
				ck_abort_msg("order, round %d at %d: %u, want "
				    "%u", round, i, v[order[i]].seq, w[i].seq);
		imap_sort_msgs(v, N, c, nc);
		for (int i = 0; i < N; i++)
			ck_assert_msg(v[i].seq == w[i].seq, "round %d at %d: "
			    "%u, want %u", round, i, v[i].seq, w[i].seq);
	}
}
END_TEST

START_TEST(sort_parse_criteria)
{
	struct imap_arg l[3], arg;
	struct imap_sort_criterion c[IMAP_SORT_KEYS_MAX];
	size_t n;
	const char *err;
	const char *words[3] = { "REVERSE", "date", "Subject" };

	memset(l, 0, sizeof(l));
	for (int i = 0; i < 3; i++) {
		l[i].type = IMAP_ARG_ATOM;
		l[i].str = words[i];
		l[i].len = strlen(words[i]);
	}
	memset(&arg, 0, sizeof(arg));
	arg.type = IMAP_ARG_LIST;
	arg.list = l;
	arg.list_count = 3;
	ck_assert_int_eq(imap_sort_parse_criteria(&arg, c, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(c[0].key == IMAP_SORT_DATE && c[0].reverse);
	ck_assert(c[1].key == IMAP_SORT_SUBJECT && !c[1].reverse);
	arg.list_count = 1;	/* REVERSE alone */
	ck_assert_int_eq(imap_sort_parse_criteria(&arg, c, &n, &err), -1);
	l[2].str = "BOGUS";
	l[2].len = 5;
	arg.list_count = 3;
	ck_assert_int_eq(imap_sort_parse_criteria(&arg, c, &n, &err), -1);
}
END_TEST

START_TEST(thread_orderedsubject)
{
	struct arena *a = arena_new(4096);
	struct strbuf out = STRBUF_INIT;
	struct imap_sort_msg v[6] = {
		msg(1, 40, "x", false, NULL, NULL, 0),
		msg(2, 10, "y", false, NULL, NULL, 0),
		msg(3, 20, "x", true, NULL, NULL, 0),
		msg(4, 30, "y", true, NULL, NULL, 0),
		msg(5, 5, "x", false, NULL, NULL, 0),
		msg(6, 50, "z", false, NULL, NULL, 0),
	};

	imap_thread_orderedsubject(v, 6, false, a, &out);
	/* x: 5 (5), 3 (20), 1 (40); y: 2, 4; threads by first date */
	ck_assert_str_eq(strbuf_str(&out), "(5 (3)(1))(2 4)(6)");
	strbuf_reset(&out);
	imap_thread_orderedsubject(v, 6, true, a, &out);
	ck_assert_str_eq(strbuf_str(&out), "(50 (30)(10))(20 40)(60)");
	strbuf_free(&out);
	arena_free(&a);
}
END_TEST

START_TEST(thread_references)
{
	struct arena *a = arena_new(4096);
	struct strbuf out = STRBUF_INIT;
	const char *r2[] = { "<1@x>" };
	const char *r3[] = { "<1@x>", "<2@x>" };
	const char *r4[] = { "<1@x>" };
	const char *r6[] = { "<missing@x>" };
	const char *r7[] = { "<missing@x>" };
	const char *r9[] = { "<9@x>" };	/* refers to itself */
	struct imap_sort_msg v[9] = {
		msg(1, 10, "a", false, "<1@x>", NULL, 0),
		msg(2, 20, "a", true, "<2@x>", r2, 1),
		msg(3, 30, "a", true, "<3@x>", r3, 2),
		msg(4, 25, "a", true, "<4@x>", r4, 1),
		msg(5, 5, "b", false, "<5@x>", NULL, 0),
		msg(6, 60, "c", true, "<6@x>", r6, 1),
		msg(7, 55, "c", true, "<7@x>", r7, 1),
		msg(8, 70, "b", true, NULL, NULL, 0),
		msg(9, 80, "d", false, "<9@x>", r9, 1),
	};

	imap_thread_references(v, 9, false, a, &out);
	/*
	 * 1 has children 2 (-> 3) and 4; 5 and 8 share the subject "b"
	 * (8, a reply, goes below 5); 6 and 7 hang below a missing
	 * parent (a dummy root with two children); 9 alone.
	 */
	ck_assert_str_eq(strbuf_str(&out),
	    "(5 8)(1 (2 3)(4))((7)(6))(9)");
	strbuf_free(&out);
	arena_free(&a);
}
END_TEST

START_TEST(thread_references_subject_merge)
{
	struct arena *a = arena_new(4096);
	struct strbuf out = STRBUF_INIT;
	/* two non-reply roots with one subject: a dummy above both */
	struct imap_sort_msg v[3] = {
		msg(1, 10, "s", false, "<a@x>", NULL, 0),
		msg(2, 20, "s", false, "<b@x>", NULL, 0),
		msg(3, 30, "t", false, "<a@x>", NULL, 0),	/* dup id */
	};

	imap_thread_references(v, 3, false, a, &out);
	ck_assert_str_eq(strbuf_str(&out), "((1)(2))(3)");
	strbuf_free(&out);
	arena_free(&a);
}
END_TEST

/* Random reference graphs (loops, self references, duplicates): every
 * message appears exactly once in the output, parentheses balance. */
START_TEST(thread_references_random)
{
	unsigned seed = 99;

	for (int round = 0; round < 200; round++) {
		struct arena *a = arena_new(4096);
		struct strbuf out = STRBUF_INIT;
		size_t n = 1 + (size_t)round % 40;
		struct imap_sort_msg *v = calloc(n, sizeof(*v));
		static const char *ids[] = { "<a>", "<b>", "<c>", "<d>", "<e>",
		    "<f>", "<g>", "<h>" };
		static const char *subj[] = { "p", "q", "" };
		int depth = 0, seen[41] = { 0 };

		for (size_t i = 0; i < n; i++) {
			const char **refs = arena_alloc(a, 4 * sizeof(*refs));
			size_t nr;

			seed = seed * 1103515245u + 12345u;
			nr = (seed >> 16) % 5;
			for (size_t k = 0; k < nr; k++) {
				seed = seed * 1103515245u + 12345u;
				refs[k] = ids[(seed >> 16) % 8];
			}
			seed = seed * 1103515245u + 12345u;
			v[i] = msg((uint32_t)i + 1, (seed >> 16) % 7,
			    subj[(seed >> 8) % 3], (seed >> 4) % 2,
			    (seed >> 20) % 3 ? ids[(seed >> 12) % 8] : NULL,
			    refs, nr > 4 ? 4 : nr);
		}
		imap_thread_references(v, n, false, a, &out);
		for (const char *p = strbuf_str(&out); *p != '\0'; p++) {
			if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
			else if (*p >= '0' && *p <= '9') {
				int x = (int)strtol(p, (char **)&p, 10);

				p--;
				ck_assert_int_ge(x, 1);
				ck_assert_int_le(x, (int)n);
				ck_assert_int_eq(seen[x]++, 0);
			}
			ck_assert_int_ge(depth, 0);
		}
		ck_assert_int_eq(depth, 0);
		for (size_t i = 1; i <= n; i++)
			ck_assert_int_eq(seen[i], 1);
		free(v);
		strbuf_free(&out);
		arena_free(&a);
	}
}
END_TEST

static Suite *
sort_suite(void)
{
	Suite *s = suite_create("imap_sort");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, sort_base_subject);
	tcase_add_test(tc, sort_msgids);
	tcase_add_test(tc, sort_order_and_ties);
	tcase_add_test(tc, sort_matches_reference);
	tcase_add_test(tc, sort_parse_criteria);
	tcase_add_test(tc, thread_orderedsubject);
	tcase_add_test(tc, thread_references);
	tcase_add_test(tc, thread_references_subject_merge);
	tcase_add_test(tc, thread_references_random);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sort_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
