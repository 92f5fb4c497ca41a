/*
 * imap-compress — COMPRESS=DEFLATE (RFC 4978) for one session: a raw
 * DEFLATE stream each way (RFC 1951, no zlib header), through zlib.
 *
 * The session keeps its uncompressed output in an evbuffer of its own
 * and compresses it into the socket's (or the TLS bufferevent's) output
 * at the end of each loop iteration, with a sync flush, so every
 * response reaches the client whole; it inflates the client's bytes on
 * demand, at most IMAP_INFLATE_CHUNK ahead of the command parser, so a
 * small compressed input never turns into a large buffer ("zip bomb").
 *
 * Memory, per compressed session (measured: imap_compress_memory(), and
 * the unit test and `make bench` report it):
 *   deflate  (1 << (IMAP_DEFLATE_WINDOW_BITS + 2))
 *            + (1 << (IMAP_DEFLATE_MEM_LEVEL + 9)) + ~6 KiB of state
 *   inflate  (1 << 15) window (a client may use any window size, so the
 *            inflater must take the largest) + ~7 KiB of state
 * With the values below: 64 + 32 + 6 + 32 + 7 = about 141 KiB, against
 * 256 KiB for deflate alone with zlib's defaults (Dovecot's choice).
 * IMAP_COMPRESS_MEMORY_MAX is the bound the unit test holds it to.
 *
 * Threads: the event loop's, like the session.
 */
#ifndef POPGATE_IMAP_COMPRESS_H
#define POPGATE_IMAP_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

/*
 * The server's DEFLATE window (2^14 = 16 KiB of history) and hash memory
 * level, chosen on the output of a first sync (FETCH 1:* (FLAGS ENVELOPE
 * BODY.PEEK[HEADER]) of generated mail, one sync flush per 64 KiB):
 * compressed to 8.4 % of its size with a 8 KiB window, 6.9 % with 16 KiB
 * and 6.9 % with 32 KiB (zlib's default, 96 KiB more per session); a
 * memLevel above 6 changed the size by less than 0.1 % for 64 KiB more.
 */
#define IMAP_DEFLATE_WINDOW_BITS 14
#define IMAP_DEFLATE_MEM_LEVEL 6
/* zlib's default level: level 9 is twice the CPU for 1-2 % less. */
#define IMAP_DEFLATE_LEVEL 6
/* Inflated bytes kept ahead of the command parser. */
#define IMAP_INFLATE_CHUNK (16 * 1024)
/* What zlib may allocate for one session, both directions. */
#define IMAP_COMPRESS_MEMORY_MAX (160 * 1024)

struct imap_compress;

/* A deflater and an inflater; NULL (with *error_r) when zlib refuses. */
struct imap_compress *imap_compress_new(const char **error_r);
/* Frees and sets *zp to NULL; accepts NULL. */
void imap_compress_free(struct imap_compress **zp);

/*
 * Inflates bytes of src (compressed; what it uses is drained) into dst
 * until dst holds at least want bytes or src is used up. Returns 0, or -1
 * with *error_r on a corrupt stream or data after the stream's end (the
 * connection must close).
 */
int imap_compress_inflate(struct imap_compress *z, struct evbuffer *src,
    struct evbuffer *dst, size_t want, const char **error_r);
/*
 * Compresses all of src (drained) into dst, ending with a sync flush so
 * that the peer can inflate everything sent so far. 0, or -1 with
 * *error_r.
 */
int imap_compress_deflate(struct imap_compress *z, struct evbuffer *src,
    struct evbuffer *dst, const char **error_r);
/* Bytes zlib holds now for this session. */
size_t imap_compress_memory(const struct imap_compress *z);
/* Bytes in and out of the deflater and the inflater so far. */
void imap_compress_counts(const struct imap_compress *z,
    unsigned long long *raw_out, unsigned long long *wire_out,
    unsigned long long *wire_in, unsigned long long *raw_in);

#endif
