/* imap-compress — RFC 4978 DEFLATE streams through zlib. */
#include "imap-compress.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "log.h"
#include "xmalloc.h"

/* Output space reserved per deflate/inflate step. */
#define IMAP_COMPRESS_STEP (16 * 1024)

struct imap_compress {
	z_stream def, inf;
	bool def_ok, inf_ok;
	size_t memory;		/* what zalloc handed out, not yet freed */
	unsigned long long raw_out, wire_out, wire_in, raw_in;
};

/* zlib's allocations, counted: the size lives in front of each block. */
static voidpf
z_alloc(voidpf opaque, uInt items, uInt size)
{
	struct imap_compress *z = opaque;
	size_t n = (size_t)items * size;
	size_t *p = xmalloc(n + sizeof(size_t) * 2);

	p[0] = n;
	z->memory += n;
	return p + 2;
}

static void
z_free(voidpf opaque, voidpf address)
{
	struct imap_compress *z = opaque;
	size_t *p = (size_t *)address - 2;

	z->memory -= p[0];
	free(p);
}

struct imap_compress *
imap_compress_new(const char **error_r)
{
	struct imap_compress *z = xcalloc(1, sizeof(*z));

	z->def.zalloc = z->inf.zalloc = z_alloc;
	z->def.zfree = z->inf.zfree = z_free;
	z->def.opaque = z->inf.opaque = z;
	/* negative window bits: raw DEFLATE, as RFC 4978 says */
	if (deflateInit2(&z->def, IMAP_DEFLATE_LEVEL, Z_DEFLATED,
	    -IMAP_DEFLATE_WINDOW_BITS, IMAP_DEFLATE_MEM_LEVEL,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		*error_r = "deflateInit2 failed";
		imap_compress_free(&z);
		return NULL;
	}
	z->def_ok = true;
	if (inflateInit2(&z->inf, -15) != Z_OK) {
		*error_r = "inflateInit2 failed";
		imap_compress_free(&z);
		return NULL;
	}
	z->inf_ok = true;
	return z;
}

void
imap_compress_free(struct imap_compress **zp)
{
	struct imap_compress *z = *zp;

	if (z == NULL)
		return;
	if (z->def_ok)
		deflateEnd(&z->def);
	if (z->inf_ok)
		inflateEnd(&z->inf);
	free(z);
	*zp = NULL;
}

size_t
imap_compress_memory(const struct imap_compress *z)
{
	return z->memory;
}

void
imap_compress_counts(const struct imap_compress *z,
    unsigned long long *raw_out, unsigned long long *wire_out,
    unsigned long long *wire_in, unsigned long long *raw_in)
{
	*raw_out = z->raw_out;
	*wire_out = z->wire_out;
	*wire_in = z->wire_in;
	*raw_in = z->raw_in;
}

int
imap_compress_inflate(struct imap_compress *z, struct evbuffer *src,
    struct evbuffer *dst, size_t want, const char **error_r)
{
	while (evbuffer_get_length(dst) < want &&
	    evbuffer_get_length(src) > 0) {
		struct evbuffer_iovec in, out;
		size_t used, made;
		int rc;

		if (evbuffer_peek(src, -1, NULL, &in, 1) < 1)
			break;
		if (evbuffer_reserve_space(dst, IMAP_COMPRESS_STEP, &out,
		    1) < 1) {
			*error_r = "out of buffer space";
			return -1;
		}
		z->inf.next_in = in.iov_base;
		z->inf.avail_in = (uInt)(in.iov_len > UINT32_MAX ? UINT32_MAX :
		    in.iov_len);
		z->inf.next_out = out.iov_base;
		z->inf.avail_out = (uInt)(out.iov_len > IMAP_COMPRESS_STEP ?
		    IMAP_COMPRESS_STEP : out.iov_len);
		made = z->inf.avail_out;
		rc = inflate(&z->inf, Z_SYNC_FLUSH);
		used = (size_t)(z->inf.next_in - (Bytef *)in.iov_base);
		made -= z->inf.avail_out;
		out.iov_len = made;
		evbuffer_commit_space(dst, &out, 1);
		evbuffer_drain(src, used);
		z->wire_in += used;
		z->raw_in += made;
		if (rc == Z_STREAM_END) {
			/* RFC 4978: compression lasts as long as the
			 * connection; a client that ends its stream cannot
			 * send another command */
			*error_r = "compressed stream ended";
			return -1;
		}
		if (rc == Z_BUF_ERROR && used == 0 && made == 0)
			break;	/* needs more input */
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			*error_r = z->inf.msg != NULL ? z->inf.msg :
			    "corrupt compressed data";
			return -1;
		}
	}
	return 0;
}

int
imap_compress_deflate(struct imap_compress *z, struct evbuffer *src,
    struct evbuffer *dst, const char **error_r)
{
	bool last = false;

	while (!last) {
		struct evbuffer_iovec in;
		size_t used = 0;
		int n = evbuffer_peek(src, -1, NULL, &in, 1);

		if (n < 1) {
			in.iov_base = NULL;
			in.iov_len = 0;
		}
		last = evbuffer_get_length(src) == in.iov_len;
		z->def.next_in = in.iov_base;
		z->def.avail_in = (uInt)in.iov_len;
		/* deflate this segment; the sync flush with the last one,
		 * repeated until zlib has room left over (all flushed) */
		for (;;) {
			struct evbuffer_iovec out;
			size_t made;
			int rc;

			if (evbuffer_reserve_space(dst, IMAP_COMPRESS_STEP,
			    &out, 1) < 1) {
				*error_r = "out of buffer space";
				return -1;
			}
			z->def.next_out = out.iov_base;
			z->def.avail_out = (uInt)(out.iov_len >
			    IMAP_COMPRESS_STEP ? IMAP_COMPRESS_STEP :
			    out.iov_len);
			made = z->def.avail_out;
			rc = deflate(&z->def, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
			made -= z->def.avail_out;
			out.iov_len = made;
			evbuffer_commit_space(dst, &out, 1);
			z->wire_out += made;
			if (rc != Z_OK && rc != Z_BUF_ERROR) {
				*error_r = "deflate failed";
				return -1;
			}
			if (z->def.avail_out != 0 && z->def.avail_in == 0)
				break;
		}
		used = in.iov_len;
		z->raw_out += used;
		if (used > 0)
			evbuffer_drain(src, used);
	}
	return 0;
}
