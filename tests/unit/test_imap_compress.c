/* Unit tests of imap-compress: RFC 4978 streams against zlib itself,
 * the memory bound, a compressed bomb, corrupt and ended streams. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <zlib.h>

#include "imap-frontend/imap-compress.h"

/* A client's deflater: raw DEFLATE with zlib's largest window. */
static void
client_deflate(z_stream *c, const void *data, size_t len, int flush,
    struct evbuffer *out)
{
	unsigned char buf[4096];

	c->next_in = (Bytef *)(uintptr_t)data;
	c->avail_in = (uInt)len;
	do {
		c->next_out = buf;
		c->avail_out = sizeof(buf);
		ck_assert_int_ne(deflate(c, flush), Z_STREAM_ERROR);
		evbuffer_add(out, buf, sizeof(buf) - c->avail_out);
	} while (c->avail_out == 0 || c->avail_in > 0);
}

static void
client_init(z_stream *c)
{
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(deflateInit2(c, 9, Z_DEFLATED, -15, 9,
	    Z_DEFAULT_STRATEGY), Z_OK);
}

/* Pseudo-random text with repeats far apart (uses the whole window). */
static char *
make_text(size_t len, unsigned seed)
{
	char *t = malloc(len);

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		t[i] = (char)('a' + (seed >> 16) % 26);
		if (i >= 30000 && (i / 64) % 2 == 0)
			t[i] = t[i - 30000];
	}
	return t;
}

START_TEST(compress_inflate_client_stream)
{
	struct imap_compress *z;
	struct evbuffer *wire = evbuffer_new(), *plain = evbuffer_new();
	const char *err;
	size_t len = 200000;
	char *text = make_text(len, 7);
	unsigned char *got;
	z_stream c;

	client_init(&c);
	z = imap_compress_new(&err);
	ck_assert_ptr_nonnull(z);
	/* the client's commands arrive in pieces, each sync-flushed */
	for (size_t off = 0; off < len; off += 7001) {
		size_t n = len - off < 7001 ? len - off : 7001;

		client_deflate(&c, text + off, n, Z_SYNC_FLUSH, wire);
		/* the server reads at most IMAP_INFLATE_CHUNK ahead */
		while (evbuffer_get_length(wire) > 0) {
			size_t before = evbuffer_get_length(plain);

			ck_assert_int_eq(imap_compress_inflate(z, wire, plain,
			    before + IMAP_INFLATE_CHUNK, &err), 0);
			if (evbuffer_get_length(plain) == before)
				break;
		}
	}
	ck_assert_uint_eq(evbuffer_get_length(plain), len);
	got = evbuffer_pullup(plain, -1);
	ck_assert(memcmp(got, text, len) == 0);
	/* zlib's whole allocation, both directions, within the bound */
	ck_assert_uint_le(imap_compress_memory(z), IMAP_COMPRESS_MEMORY_MAX);
	ck_assert_uint_gt(imap_compress_memory(z), 100 * 1024);
	deflateEnd(&c);
	imap_compress_free(&z);
	ck_assert_ptr_null(z);
	evbuffer_free(wire);
	evbuffer_free(plain);
	free(text);
}
END_TEST

START_TEST(compress_deflate_roundtrip)
{
	struct imap_compress *z;
	struct evbuffer *src = evbuffer_new(), *wire = evbuffer_new();
	const char *err;
	size_t len = 300000, off = 0;
	char *text = make_text(len, 3);
	unsigned char *out = malloc(len + 1);
	z_stream d;
	unsigned long long ro, wo, wi, ri;

	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(inflateInit2(&d, -15), Z_OK);
	z = imap_compress_new(&err);
	d.next_out = out;
	d.avail_out = (uInt)len + 1;
	/* after every deflate call the client can read all sent so far */
	while (off < len) {
		size_t n = len - off < 50000 ? len - off : 50000;
		unsigned char *w;
		size_t wl;

		evbuffer_add(src, text + off, n);
		ck_assert_int_eq(imap_compress_deflate(z, src, wire, &err), 0);
		ck_assert_uint_eq(evbuffer_get_length(src), 0);
		wl = evbuffer_get_length(wire);
		w = evbuffer_pullup(wire, -1);
		d.next_in = w;
		d.avail_in = (uInt)wl;
		ck_assert_int_eq(inflate(&d, Z_SYNC_FLUSH), Z_OK);
		ck_assert_uint_eq(d.avail_in, 0);
		evbuffer_drain(wire, wl);
		off += n;
		ck_assert_uint_eq(d.total_out, off);
	}
	ck_assert(memcmp(out, text, len) == 0);
	imap_compress_counts(z, &ro, &wo, &wi, &ri);
	ck_assert_uint_eq(ro, len);
	ck_assert_uint_eq(wo, d.total_in);
	ck_assert_uint_lt(wo, len);
	ck_assert_uint_le(imap_compress_memory(z), IMAP_COMPRESS_MEMORY_MAX);
	inflateEnd(&d);
	imap_compress_free(&z);
	evbuffer_free(src);
	evbuffer_free(wire);
	free(text);
	free(out);
}
END_TEST

/* 64 MB of zeros compress to about 64 KB: the inflater never holds more
 * than it was asked for plus one step, however far the input reaches. */
START_TEST(compress_bomb_bounded)
{
	struct imap_compress *z;
	struct evbuffer *wire = evbuffer_new(), *plain = evbuffer_new();
	const char *err;
	char *zeros = calloc(1, 1024 * 1024);
	z_stream c;
	size_t total = 0;

	client_init(&c);
	for (int i = 0; i < 64; i++)
		client_deflate(&c, zeros, 1024 * 1024, Z_NO_FLUSH, wire);
	client_deflate(&c, "", 0, Z_SYNC_FLUSH, wire);
	ck_assert_uint_lt(evbuffer_get_length(wire), 200 * 1024);
	z = imap_compress_new(&err);
	while (evbuffer_get_length(wire) > 0 || total < 64u * 1024 * 1024) {
		ck_assert_int_eq(imap_compress_inflate(z, wire, plain,
		    IMAP_INFLATE_CHUNK, &err), 0);
		ck_assert_uint_le(evbuffer_get_length(plain),
		    2 * IMAP_INFLATE_CHUNK);
		if (evbuffer_get_length(plain) == 0)
			break;
		total += evbuffer_get_length(plain);
		evbuffer_drain(plain, evbuffer_get_length(plain));
	}
	ck_assert_uint_eq(total, 64u * 1024 * 1024);
	deflateEnd(&c);
	imap_compress_free(&z);
	evbuffer_free(wire);
	evbuffer_free(plain);
	free(zeros);
}
END_TEST

START_TEST(compress_corrupt_and_end)
{
	struct imap_compress *z;
	struct evbuffer *wire = evbuffer_new(), *plain = evbuffer_new();
	const char *err = NULL;
	z_stream c;

	/* a block type 3 (reserved) is corrupt */
	z = imap_compress_new(&err);
	evbuffer_add(wire, "\xff\xff\xff\xff", 4);
	ck_assert_int_eq(imap_compress_inflate(z, wire, plain, 100, &err), -1);
	ck_assert_ptr_nonnull(err);
	imap_compress_free(&z);

	/* a client that ends its stream (Z_FINISH) cannot go on */
	evbuffer_drain(wire, evbuffer_get_length(wire));
	client_init(&c);
	client_deflate(&c, "a NOOP\r\n", 8, Z_FINISH, wire);
	z = imap_compress_new(&err);
	ck_assert_int_eq(imap_compress_inflate(z, wire, plain, 100, &err), -1);
	deflateEnd(&c);
	imap_compress_free(&z);
	imap_compress_free(&z);	/* NULL is fine */
	evbuffer_free(wire);
	evbuffer_free(plain);
}
END_TEST

/* A stream cut anywhere inflates what it can and waits for the rest. */
START_TEST(compress_every_split)
{
	struct evbuffer *wire = evbuffer_new();
	const char *cmd = "a1 SELECT INBOX\r\na2 FETCH 1:* (FLAGS)\r\n";
	size_t len = strlen(cmd), wl;
	unsigned char *w;
	z_stream c;

	client_init(&c);
	client_deflate(&c, cmd, len, Z_SYNC_FLUSH, wire);
	wl = evbuffer_get_length(wire);
	w = malloc(wl);
	evbuffer_remove(wire, w, wl);
	for (size_t cut = 0; cut <= wl; cut++) {
		struct imap_compress *z;
		struct evbuffer *src = evbuffer_new(), *plain = evbuffer_new();
		const char *err;
		char got[128];

		z = imap_compress_new(&err);
		evbuffer_add(src, w, cut);
		ck_assert_int_eq(imap_compress_inflate(z, src, plain, 4096,
		    &err), 0);
		evbuffer_add(src, w + cut, wl - cut);
		ck_assert_int_eq(imap_compress_inflate(z, src, plain, 4096,
		    &err), 0);
		ck_assert_uint_eq(evbuffer_get_length(plain), len);
		evbuffer_remove(plain, got, len);
		ck_assert(memcmp(got, cmd, len) == 0);
		imap_compress_free(&z);
		evbuffer_free(src);
		evbuffer_free(plain);
	}
	deflateEnd(&c);
	free(w);
	evbuffer_free(wire);
}
END_TEST

static Suite *
compress_suite(void)
{
	Suite *s = suite_create("imap_compress");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, compress_inflate_client_stream);
	tcase_add_test(tc, compress_deflate_roundtrip);
	tcase_add_test(tc, compress_bomb_bounded);
	tcase_add_test(tc, compress_corrupt_and_end);
	tcase_add_test(tc, compress_every_split);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(compress_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
