/*
 * pop3-parse-sasl — the client side of the SASL messages popgate sends
 * and reads in POP3 AUTH (RFC 5034), as pure functions (level 1: no
 * OpenSSL, no libevent), unit-tested and fuzzed on their own:
 *
 *   SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677): the client-first
 *   message, the server-first message's parse (nonce, salt, iteration
 *   count), the client-final message without its proof, and the
 *   server-final message's parse ("v=" signature or "e=" error). The
 *   keyed hashes live in pop3-login.c (OpenSSL); channel binding is not
 *   used ("n,,": the TLS layer below is verified on its own).
 *
 *   XOAUTH2 (Google, Microsoft) and OAUTHBEARER (RFC 7628): the initial
 *   client response that carries the bearer token.
 *
 *   base64 (RFC 4648, with padding) both ways, strict on input.
 *
 * Every output goes into a caller's buffer with its size; every function
 * returns 0, or -1 with a static reason in *error_r. Nothing allocates.
 */
#ifndef POPGATE_POP3_PARSE_SASL_H
#define POPGATE_POP3_PARSE_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest server-first message accepted (decoded): a nonce, a salt and a
 * count are well under 200 bytes; the POP3 status line bounds it anyway. */
#define POP3_SCRAM_MSG_MAX 512
/* Longest salt accepted (decoded bytes); servers use 12 to 32. */
#define POP3_SCRAM_SALT_MAX 128
/* Most PBKDF2 iterations accepted from a server: RFC 7677 asks for at
 * least 4096; each costs two HMACs on the event loop (about 2 ms per
 * 4096 with SHA-256), so a hostile server cannot make one login cost
 * more than about 50 ms of CPU. */
#define POP3_SCRAM_ITER_MAX 100000
/* Fewest iterations accepted: fewer makes offline guessing of the
 * password from a captured exchange cheap. */
#define POP3_SCRAM_ITER_MIN 1024
/* Length of the client nonce we generate (printable characters). */
#define POP3_SCRAM_NONCE_LEN 24

/* The parts of a server-first message; nonce points into the message. */
struct pop3_scram_server_first {
	const char *nonce;	/* the whole nonce (client's + server's) */
	size_t nonce_len;
	unsigned char salt[POP3_SCRAM_SALT_MAX];
	size_t salt_len;
	uint32_t iterations;
};

/* "n,,n=<login, '=' and ',' escaped>,r=<cnonce>" into out; the client-
 * first-message-bare (for the AuthMessage) starts at out + 3. -1 for a
 * login with a NUL or control byte, or an output too small. */
int pop3_scram_client_first(const char *login, const char *cnonce,
    char *out, size_t outsize, const char **error_r);

/* Parses the server-first message (already base64-decoded). The nonce
 * must extend the client's cnonce; a mandatory extension ("m=") is
 * refused; the salt must be base64; the iteration count between
 * POP3_SCRAM_ITER_MIN and POP3_SCRAM_ITER_MAX. */
int pop3_scram_parse_server_first(const char *msg, size_t len,
    const char *cnonce, struct pop3_scram_server_first *r,
    const char **error_r);

/* "c=biws,r=<nonce>" (biws: base64 of the gs2 header "n,,") into out. */
int pop3_scram_client_final_bare(const struct pop3_scram_server_first *sf,
    char *out, size_t outsize, const char **error_r);

/* Parses the server-final message: "v=<base64 signature>" fills sig
 * (expected_len bytes, which must match); "e=<error>" is -1 with the
 * server's error copied (escaped) into err_text when it is given. */
int pop3_scram_parse_server_final(const char *msg, size_t len,
    unsigned char *sig, size_t expected_len, char *err_text,
    size_t err_size, const char **error_r);

/* XOAUTH2: "user=<login>\x01auth=Bearer <token>\x01\x01" (raw bytes; the
 * caller base64-encodes). *len_r is its length. */
int pop3_xoauth2_response(const char *login, const char *token, char *out,
    size_t outsize, size_t *len_r, const char **error_r);
/* OAUTHBEARER (RFC 7628 3.1): "n,a=<login escaped>,\x01host=<host>\x01
 * port=<port>\x01auth=Bearer <token>\x01\x01". */
int pop3_oauthbearer_response(const char *login, const char *host,
    uint16_t port, const char *token, char *out, size_t outsize,
    size_t *len_r, const char **error_r);

/* Bytes base64 of n bytes takes, without the NUL. */
#define POP3_B64_LEN(n) (4 * (((n) + 2) / 3))
/* Encodes len bytes, NUL-terminated, into out (at least
 * POP3_B64_LEN(len) + 1 bytes). */
int pop3_b64_encode(const void *in, size_t len, char *out, size_t outsize);
/* Decodes strict base64 (padding required, no white space) into out;
 * -1 for anything else or an output too small. */
int pop3_b64_decode(const char *in, size_t len, unsigned char *out,
    size_t outsize, size_t *len_r);

#endif
