/*
 * evsecret — putting secret bytes (a POP3 PASS line, an AUTH PLAIN blob)
 * into a libevent output buffer without leaving copies behind.
 *
 * bufferevent_write() / evbuffer_add() copy the bytes into chain memory
 * that libevent frees, unwiped, once written: the password would linger
 * in the heap. evsecret_add() copies them into a block of its own and
 * hands libevent a reference to it (evbuffer_add_reference); the block is
 * wiped (explicit_bzero) and freed when libevent releases the reference:
 * after the bytes are written (drained) or when the buffer is freed
 * unsent. The caller wipes its own copy.
 *
 * What this covers and what it cannot (docs/design-notes.md, "Secrets in
 * buffers"): the plain socket path writes the reference with writev(),
 * and the TLS path (bufferevent_openssl) peeks it and passes it to
 * SSL_write(), which copies it into OpenSSL's write buffer and encrypts it
 * there in place, so only ciphertext stays; neither copies it into other
 * libevent chains (no evbuffer_pullup on output). The kernel's socket
 * buffers are out of reach.
 */
#ifndef POPGATE_EVSECRET_H
#define POPGATE_EVSECRET_H

#include <stddef.h>

struct evbuffer;

/* Appends len (> 0) bytes of data to out as a wiped-on-release reference.
 * 0, or -1 when libevent refused (nothing added, the copy is wiped). */
int evsecret_add(struct evbuffer *out, const void *data, size_t len);

/* Wipes the first len bytes of in (they were copied out: a command line
 * that may hold a password), then drains them, so the chains libevent
 * frees or reuses keep no copy. len <= evbuffer_get_length(in); the
 * chains read from a socket are writable. */
void evsecret_drain(struct evbuffer *in, size_t len);

/* Blocks handed out and not yet released (tests: none may leak). */
size_t evsecret_outstanding(void);

/* Tests only: called with each block after it is wiped, before it is
 * freed. NULL in production. */
extern void (*evsecret_release_hook)(const unsigned char *block,
    size_t len);

#endif
