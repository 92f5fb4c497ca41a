/* Check suite for imap-frontend/imap-proxy-parse: PROXY protocol v1 and
 * v2 headers, good and bad, fed whole and at every split point. */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-proxy-parse.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* v1 lines that parse, with the client's address and port (NULL: no
 * address carried) */
static const struct {
	const char *text;
	const char *src;
	unsigned port;
} v1_good[] = {
	{ "PROXY TCP4 192.0.2.7 198.51.100.1 51000 143\r\n", "192.0.2.7", 51000 },
	{ "PROXY TCP4 127.0.0.5 127.0.0.1 0 65535\r\n", "127.0.0.5", 0 },
	{ "PROXY TCP6 2001:db8::1 ::1 1 993\r\n", "2001:db8::1", 1 },
	{ "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
	  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535 },
	{ "PROXY UNKNOWN\r\n", NULL, 0 },
	{ "PROXY UNKNOWN ffff::1 ::1 1 2\r\n", NULL, 0 },
};

static const char *const v1_bad[] = {
	"PROXY TCP4 192.0.2.7 198.51.100.1 51000\r\n",		/* 5 fields */
	"PROXY TCP4 192.0.2.7 198.51.100.1 51000 143 x\r\n",	/* 7 */
	"PROXY TCP4  192.0.2.7 198.51.100.1 51000 143\r\n",	/* 2 spaces */
	"PROXY TCP4 192.0.2.7 198.51.100.1 051000 143\r\n",	/* leading 0 */
	"PROXY TCP4 192.0.2.7 198.51.100.1 65536 143\r\n",	/* port */
	"PROXY TCP4 192.0.2.7 198.51.100.1 -1 143\r\n",
	"PROXY TCP4 2001:db8::1 198.51.100.1 1 143\r\n",	/* family */
	"PROXY TCP6 192.0.2.7 ::1 1 143\r\n",
	"PROXY TCP4 192.0.2.256 198.51.100.1 1 143\r\n",
	"PROXY UDP4 192.0.2.7 198.51.100.1 1 143\r\n",
	"PROXY tcp4 192.0.2.7 198.51.100.1 1 143\r\n",
	"PROXY TCP4 192.0.2.7 198.51.100.1 1 143\n",		/* bare LF */
	"PROXY TCP4 192.0.2.7\t198.51.100.1 1 143\r\n",
	"PROXY\r\n",
	"PROXYTCP4\r\n",
	"a LOGIN alice pw\r\n",
	"GET / HTTP/1.0\r\n",
};

/* Feeds text[0..len) whole, then every prefix: a prefix never ends in an
 * error the whole does not have, nor claims more than it holds. */
static enum imap_proxy_result
parse_all_splits(const uint8_t *buf, size_t len, struct imap_proxy_header *h,
    size_t *consumed_r)
{
	const char *error = NULL;
	enum imap_proxy_result whole;

	whole = imap_proxy_parse(buf, len, h, consumed_r, &error);
	for (size_t k = 0; k < len; k++) {
		struct imap_proxy_header h2;
		size_t c2 = 0;
		const char *e2 = NULL;
		enum imap_proxy_result r = imap_proxy_parse(buf, k, &h2, &c2,
		    &e2);

		if (whole == IMAP_PROXY_DONE && k < *consumed_r)
			ck_assert_msg(r == IMAP_PROXY_MORE,
			    "prefix %zu of a good header: %d %s", k, r,
			    e2 != NULL ? e2 : "");
		if (r == IMAP_PROXY_DONE)
			ck_assert_uint_le(c2, k);
		if (r == IMAP_PROXY_ERROR)
			ck_assert_int_eq(whole, IMAP_PROXY_ERROR);
	}
	return whole;
}

START_TEST(v1_good_headers)
{
	struct imap_proxy_header h;
	size_t consumed = 0;
	const char *t = v1_good[_i].text;
	/* the session's first bytes follow the header and are not taken */
	char buf[256];
	size_t n = strlen(t);

	memcpy(buf, t, n);
	memcpy(buf + n, "a1 LOGIN", 8);
	ck_assert_int_eq(parse_all_splits((const uint8_t *)buf, n + 8, &h,
	    &consumed), IMAP_PROXY_DONE);
	ck_assert_uint_eq(consumed, n);
	ck_assert_int_eq(h.version, 1);
	if (v1_good[_i].src == NULL) {
		ck_assert(!h.has_addr);
	} else {
		ck_assert(h.has_addr);
		ck_assert_str_eq(h.src_text, v1_good[_i].src);
		ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&h.src)->
		    sin_port), v1_good[_i].port);
	}
}
END_TEST

START_TEST(v1_bad_headers)
{
	struct imap_proxy_header h;
	size_t consumed = 0;
	const char *t = v1_bad[_i];

	ck_assert_msg(parse_all_splits((const uint8_t *)t, strlen(t), &h,
	    &consumed) == IMAP_PROXY_ERROR, "%s", t);
}
END_TEST

START_TEST(v1_too_long)
{
	char buf[400];
	struct imap_proxy_header h;
	size_t consumed;
	const char *error = NULL;

	/* a line without an end: more is wanted up to the limit, then an
	   error, whatever follows */
	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY TCP4 ", 11);
	ck_assert_int_eq(imap_proxy_parse((uint8_t *)buf,
	    IMAP_PROXY_V1_MAX - 1, &h, &consumed, &error), IMAP_PROXY_MORE);
	ck_assert_int_eq(imap_proxy_parse((uint8_t *)buf, IMAP_PROXY_V1_MAX,
	    &h, &consumed, &error), IMAP_PROXY_ERROR);
	ck_assert_int_eq(imap_proxy_parse((uint8_t *)buf, sizeof(buf), &h,
	    &consumed, &error), IMAP_PROXY_ERROR);
	/* a CRLF one byte past the limit is too late */
	buf[IMAP_PROXY_V1_MAX - 1] = '\r';
	buf[IMAP_PROXY_V1_MAX] = '\n';
	ck_assert_int_eq(imap_proxy_parse((uint8_t *)buf, sizeof(buf), &h,
	    &consumed, &error), IMAP_PROXY_ERROR);
}
END_TEST

static size_t
v2(uint8_t *out, uint8_t vercmd, uint8_t fam, const uint8_t *body,
    size_t blen)
{
	memcpy(out, sig, 12);
	out[12] = vercmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	memcpy(out + 16, body, blen);
	return 16 + blen;
}

START_TEST(v2_tcp4_and_tcp6)
{
	uint8_t buf[600], body[300];
	struct imap_proxy_header h;
	size_t n, consumed;

	/* TCP4 127.0.0.9:40000 -> 127.0.0.1:143, then a TLV that is skipped,
	   then the session's bytes */
	memset(body, 0, sizeof(body));
	memcpy(body, (uint8_t[]){ 127, 0, 0, 9, 127, 0, 0, 1, 0x9c, 0x40,
	    0, 143 }, 12);
	memcpy(body + 12, (uint8_t[]){ 0x04, 0x00, 0x02, 'h', 'i' }, 5);
	n = v2(buf, 0x21, 0x11, body, 17);
	memcpy(buf + n, "* x", 3);
	ck_assert_int_eq(parse_all_splits(buf, n + 3, &h, &consumed),
	    IMAP_PROXY_DONE);
	ck_assert_uint_eq(consumed, n);
	ck_assert_int_eq(h.version, 2);
	ck_assert(h.has_addr);
	ck_assert_str_eq(h.src_text, "127.0.0.9");
	ck_assert_int_eq(h.src.ss_family, AF_INET);
	ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&h.src)->sin_port),
	    40000);
	ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&h.dst)->sin_port),
	    143);

	/* TCP6 2001:db8::5 */
	memset(body, 0, 36);
	body[0] = 0x20;
	body[1] = 0x01;
	body[2] = 0x0d;
	body[3] = 0xb8;
	body[15] = 5;
	body[31] = 1;
	body[32] = 0x01;
	body[33] = 0x00;
	n = v2(buf, 0x21, 0x21, body, 36);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_DONE);
	ck_assert_str_eq(h.src_text, "2001:db8::5");
	ck_assert_uint_eq(ntohs(((struct sockaddr_in6 *)&h.src)->sin6_port),
	    256);

	/* LOCAL (a health check) and UNSPEC: no address, body skipped */
	n = v2(buf, 0x20, 0x00, body, 0);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_DONE);
	ck_assert(!h.has_addr);
	n = v2(buf, 0x20, 0x11, body, 12);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_DONE);
	ck_assert(!h.has_addr);
	ck_assert_uint_eq(consumed, 28);
	n = v2(buf, 0x21, 0x00, body, 7);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_DONE);
	ck_assert(!h.has_addr);
}
END_TEST

START_TEST(v2_bad)
{
	uint8_t buf[70000], body[300];
	struct imap_proxy_header h;
	size_t n, consumed;
	const char *error;

	memset(body, 0, sizeof(body));
	/* version 1 in the v2 framing, command 2, UDP, UNIX */
	n = v2(buf, 0x11, 0x11, body, 12);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_ERROR);
	n = v2(buf, 0x22, 0x11, body, 12);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_ERROR);
	n = v2(buf, 0x21, 0x12, body, 12);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_ERROR);
	n = v2(buf, 0x21, 0x31, body, 216);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_ERROR);
	/* the address block shorter than the family needs */
	n = v2(buf, 0x21, 0x11, body, 11);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_ERROR);
	n = v2(buf, 0x21, 0x21, body, 35);
	ck_assert_int_eq(parse_all_splits(buf, n, &h, &consumed),
	    IMAP_PROXY_ERROR);
	/* a declared length past the limit is refused from the fixed part
	   alone, before the body is read */
	memcpy(buf, sig, 12);
	buf[12] = 0x21;
	buf[13] = 0x11;
	buf[14] = 0xff;
	buf[15] = 0xff;
	ck_assert_int_eq(imap_proxy_parse(buf, 16, &h, &consumed, &error),
	    IMAP_PROXY_ERROR);
	buf[14] = (IMAP_PROXY_HEADER_MAX - 16 + 1) >> 8;
	buf[15] = (IMAP_PROXY_HEADER_MAX - 16 + 1) & 0xff;
	ck_assert_int_eq(imap_proxy_parse(buf, 16, &h, &consumed, &error),
	    IMAP_PROXY_ERROR);
	/* exactly the limit is fine */
	memset(buf + 16, 0, IMAP_PROXY_HEADER_MAX);
	buf[14] = (IMAP_PROXY_HEADER_MAX - 16) >> 8;
	buf[15] = (IMAP_PROXY_HEADER_MAX - 16) & 0xff;
	ck_assert_int_eq(imap_proxy_parse(buf, IMAP_PROXY_HEADER_MAX, &h,
	    &consumed, &error), IMAP_PROXY_DONE);
	ck_assert_uint_eq(consumed, IMAP_PROXY_HEADER_MAX);
	/* a signature that goes wrong half-way */
	memcpy(buf, sig, 12);
	buf[7] = 'X';
	ck_assert_int_eq(imap_proxy_parse(buf, 16, &h, &consumed, &error),
	    IMAP_PROXY_ERROR);
}
END_TEST

START_TEST(looks_like)
{
	ck_assert(imap_proxy_looks_like((const uint8_t *)"PROXY TCP4", 10));
	ck_assert(imap_proxy_looks_like((const uint8_t *)"PRO", 3));
	ck_assert(imap_proxy_looks_like(sig, 12));
	ck_assert(imap_proxy_looks_like(sig, 5));
	ck_assert(!imap_proxy_looks_like((const uint8_t *)"a LOGIN", 7));
	ck_assert(!imap_proxy_looks_like((const uint8_t *)"\r\n\r\nX", 5));
	ck_assert(!imap_proxy_looks_like((const uint8_t *)"", 0));
}
END_TEST

static bool
net_match_text(const char *net, const char *addr)
{
	struct imap_proxy_net n;
	struct sockaddr_storage ss;
	const char *error = NULL;

	ck_assert_msg(imap_proxy_net_parse(net, &n, &error) == 0, "%s: %s",
	    net, error);
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr)
	    == 1) {
		ss.ss_family = AF_INET;
	} else {
		ck_assert(inet_pton(AF_INET6, addr,
		    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1);
		ss.ss_family = AF_INET6;
	}
	return imap_proxy_net_match(&n, (struct sockaddr *)&ss);
}

START_TEST(trusted_networks)
{
	struct imap_proxy_net n;
	const char *error;
	static const char *const bad[] = { "", "/8", "10.0.0.0/33",
	    "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/8x", "::/129", "host",
	    "10.0.0.0/-1", "10.0.0.0/1000" };

	ck_assert(net_match_text("127.0.0.1", "127.0.0.1"));
	ck_assert(!net_match_text("127.0.0.1", "127.0.0.2"));
	ck_assert(net_match_text("10.0.0.0/8", "10.200.3.4"));
	ck_assert(!net_match_text("10.0.0.0/8", "11.0.0.1"));
	/* host bits in the network are ignored */
	ck_assert(net_match_text("192.168.1.77/24", "192.168.1.3"));
	ck_assert(net_match_text("127.0.0.64/30", "127.0.0.67"));
	ck_assert(!net_match_text("127.0.0.64/30", "127.0.0.68"));
	ck_assert(net_match_text("172.16.0.0/12", "172.31.255.255"));
	ck_assert(!net_match_text("172.16.0.0/12", "172.32.0.0"));
	ck_assert(net_match_text("0.0.0.0/0", "203.0.113.9"));
	ck_assert(net_match_text("2001:db8::/32", "2001:db8:1::5"));
	ck_assert(!net_match_text("2001:db8::/32", "2001:db9::5"));
	ck_assert(net_match_text("::1", "::1"));
	/* an IPv4-mapped peer matches an IPv4 network, not the reverse */
	ck_assert(net_match_text("10.0.0.0/8", "::ffff:10.1.2.3"));
	ck_assert(!net_match_text("::ffff:10.0.0.0/104", "10.1.2.3"));
	ck_assert(!net_match_text("10.0.0.0/8", "::1"));
	for (size_t i = 0; i < N_ELEMENTS(bad); i++)
		ck_assert_msg(imap_proxy_net_parse(bad[i], &n, &error) != 0,
		    "%s", bad[i]);
}
END_TEST

static Suite *
proxy_suite(void)
{
	Suite *s = suite_create("imap_proxyparse");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, v1_good_headers, 0, (int)N_ELEMENTS(v1_good));
	tcase_add_loop_test(tc, v1_bad_headers, 0, (int)N_ELEMENTS(v1_bad));
	tcase_add_test(tc, v1_too_long);
	tcase_add_test(tc, v2_tcp4_and_tcp6);
	tcase_add_test(tc, v2_bad);
	tcase_add_test(tc, looks_like);
	tcase_add_test(tc, trusted_networks);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(proxy_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
