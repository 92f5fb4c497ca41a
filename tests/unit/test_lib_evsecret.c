/* Check suite for lib/evsecret: secret bytes reach the peer intact and
 * the block holding them is wiped when libevent lets go of it. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "evsecret.h"

static unsigned released;
static size_t released_bytes;
static bool released_nonzero;

static void
hook(const unsigned char *block, size_t len)
{
	released++;
	released_bytes += len;
	for (size_t i = 0; i < len; i++) {
		if (block[i] != 0)
			released_nonzero = true;
	}
}

static void
setup(void)
{
	released = 0;
	released_bytes = 0;
	released_nonzero = false;
	evsecret_release_hook = hook;
}

static void
teardown(void)
{
	evsecret_release_hook = NULL;
}

START_TEST(referenced_not_copied_and_wiped_on_drain)
{
	static const char line[] = "PASS hunter2\r\n";
	struct evbuffer *b = evbuffer_new();
	struct evbuffer_iovec v[4];
	char out[64];
	int n;

	evbuffer_add(b, "USER bob\r\n", 10);
	ck_assert_int_eq(evsecret_add(b, line, strlen(line)), 0);
	evbuffer_add(b, "QUIT\r\n", 6);
	ck_assert_uint_eq(evsecret_outstanding(), 1);
	ck_assert_uint_eq(evbuffer_get_length(b), 10 + strlen(line) + 6);
	ck_assert_int_eq(evbuffer_copyout(b, out, sizeof(out)),
	    (int)(10 + strlen(line) + 6));
	ck_assert(memcmp(out, "USER bob\r\nPASS hunter2\r\nQUIT\r\n", 30) == 0);
	/* the secret is its own chain: libevent never copied it into one
	   of its own (a later add does not append to it either) */
	n = evbuffer_peek(b, -1, NULL, v, 4);
	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(v[1].iov_len, strlen(line));
	ck_assert(memcmp(v[1].iov_base, line, strlen(line)) == 0);
	ck_assert_ptr_ne(v[1].iov_base, line);
	evbuffer_drain(b, 12);	/* part of it: still held */
	ck_assert_uint_eq(released, 0);
	evbuffer_drain(b, 12);
	ck_assert_uint_eq(released, 1);
	ck_assert_uint_eq(released_bytes, strlen(line));
	ck_assert(!released_nonzero);
	ck_assert_uint_eq(evsecret_outstanding(), 0);
	evbuffer_free(b);
}
END_TEST

START_TEST(wiped_when_freed_unsent)
{
	struct evbuffer *b = evbuffer_new();

	ck_assert_int_eq(evsecret_add(b, "AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n",
	    29), 0);
	ck_assert_uint_eq(released, 0);
	evbuffer_free(b);
	ck_assert_uint_eq(released, 1);
	ck_assert(!released_nonzero);
	ck_assert_uint_eq(evsecret_outstanding(), 0);
}
END_TEST

START_TEST(written_through_a_bufferevent_then_wiped)
{
	static const char line[] = "PASS correct horse battery staple\r\n";
	struct event_base *base = event_base_new();
	struct bufferevent *bev;
	int sv[2];
	char got[128];
	size_t have = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	bufferevent_enable(bev, EV_WRITE);
	ck_assert_int_eq(evsecret_add(bufferevent_get_output(bev), line,
	    strlen(line)), 0);
	for (int i = 0; i < 100 && released == 0; i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert_uint_eq(released, 1);
	ck_assert(!released_nonzero);
	while (have < strlen(line)) {
		ssize_t r = read(sv[1], got + have, sizeof(got) - have);

		ck_assert_int_gt(r, 0);
		have += (size_t)r;
	}
	ck_assert_uint_eq(have, strlen(line));
	ck_assert(memcmp(got, line, have) == 0);
	bufferevent_free(bev);
	close(sv[1]);
	event_base_free(base);
	ck_assert_uint_eq(evsecret_outstanding(), 0);
}
END_TEST

START_TEST(drain_wipes_what_it_drains)
{
	struct evbuffer *b = evbuffer_new();
	struct evbuffer_iovec v[64];
	unsigned char *keep[64];
	size_t lens[64], total = 0, drained = 0;
	char rest[8];
	int n;

	/* many small chains, so the wipe spans more than one peek */
	for (int i = 0; i < 40; i++) {
		struct evbuffer *part = evbuffer_new();

		evbuffer_add_printf(part, "LOGIN bob pw%02d\r\n", i);
		total += evbuffer_get_length(part);
		evbuffer_add_buffer(b, part);
		evbuffer_free(part);
	}
	evbuffer_add(b, "tail!", 5);
	n = evbuffer_peek(b, -1, NULL, v, 64);
	ck_assert_int_gt(n, 1);
	for (int i = 0; i < n; i++) {
		keep[i] = v[i].iov_base;
		lens[i] = v[i].iov_len;
	}
	/* keep one chain alive past the drain to look at its memory: the
	   last one holds the tail, which stays */
	evsecret_drain(b, total);
	ck_assert_uint_eq(evbuffer_get_length(b), 5);
	ck_assert_int_eq(evbuffer_copyout(b, rest, 5), 5);
	ck_assert(memcmp(rest, "tail!", 5) == 0);
	/* the surviving chain's drained bytes are zero */
	for (int i = 0; i < n; i++) {
		if (drained + lens[i] > total) {
			for (size_t k = 0; k < total - drained; k++)
				ck_assert_int_eq(keep[i][k], 0);
			break;
		}
		drained += lens[i];
	}
	evbuffer_free(b);
}
END_TEST

/* A throw-away self-signed server context (EC P-256). */
static SSL_CTX *
server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *crt = X509_new();

	ck_assert_ptr_nonnull(ctx);
	ck_assert_ptr_nonnull(key);
	ASN1_INTEGER_set(X509_get_serialNumber(crt), 1);
	X509_gmtime_adj(X509_getm_notBefore(crt), -60);
	X509_gmtime_adj(X509_getm_notAfter(crt), 3600);
	X509_set_pubkey(crt, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(crt), "CN",
	    MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(crt, X509_get_subject_name(crt));
	ck_assert_int_gt(X509_sign(crt, key, EVP_sha256()), 0);
	ck_assert_int_eq(SSL_CTX_use_certificate(ctx, crt), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, key), 1);
	X509_free(crt);
	EVP_PKEY_free(key);
	return ctx;
}

/* Through bufferevent_openssl (what POP3S/STLS use): the reference is
 * released, wiped, once SSL_write has taken it; the peer gets the bytes. */
START_TEST(written_through_tls_then_wiped)
{
	static const char line[] = "PASS tls-secret-123\r\n";
	struct event_base *base = event_base_new();
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	struct bufferevent *srv, *cli;
	struct evbuffer *in;
	char got[64];
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	srv = bufferevent_openssl_socket_new(base, sv[0], SSL_new(sctx),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	cli = bufferevent_openssl_socket_new(base, sv[1], SSL_new(cctx),
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(srv);
	ck_assert_ptr_nonnull(cli);
	bufferevent_enable(srv, EV_READ | EV_WRITE);
	bufferevent_enable(cli, EV_READ | EV_WRITE);
	ck_assert_int_eq(evsecret_add(bufferevent_get_output(cli), line,
	    strlen(line)), 0);
	in = bufferevent_get_input(srv);
	for (int i = 0; i < 100000 && (released == 0 ||
	    evbuffer_get_length(in) < strlen(line)); i++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert_uint_eq(released, 1);
	ck_assert(!released_nonzero);
	ck_assert_uint_eq(evbuffer_get_length(in), strlen(line));
	evbuffer_remove(in, got, sizeof(got));
	ck_assert(memcmp(got, line, strlen(line)) == 0);
	bufferevent_free(cli);
	bufferevent_free(srv);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	event_base_free(base);
	ck_assert_uint_eq(evsecret_outstanding(), 0);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("lib_evsecret");
	TCase *tc = tcase_create("evsecret");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, referenced_not_copied_and_wiped_on_drain);
	tcase_add_test(tc, wiped_when_freed_unsent);
	tcase_add_test(tc, written_through_a_bufferevent_then_wiped);
	tcase_add_test(tc, drain_wipes_what_it_drains);
	tcase_add_test(tc, written_through_tls_then_wiped);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
