/*
 * Fuzz target for pop3-upstream/pop3-parse-sasl: the input is what a
 * hostile POP3 server may send in SASL challenges: a SCRAM server-first
 * message (against a fixed client nonce), a server-final message, and
 * base64. Checks: no crash, nothing read past the input, the nonce kept
 * inside the message and extending ours, counts within their limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-upstream/pop3-parse-sasl.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: ASan sees any over-read */
	char *msg = xmalloc(size + 1);
	struct pop3_scram_server_first sf;
	unsigned char sig[32], out[512];
	char etext[64], final[700];
	const char *err = NULL;
	size_t n = 0;

	memcpy(msg, data, size);
	if (pop3_scram_parse_server_first(msg, size, "abc", &sf, &err) == 0) {
		if (sf.nonce < msg || sf.nonce + sf.nonce_len > msg + size ||
		    sf.nonce_len <= 3 || memcmp(sf.nonce, "abc", 3) != 0 ||
		    sf.iterations < POP3_SCRAM_ITER_MIN ||
		    sf.iterations > POP3_SCRAM_ITER_MAX || sf.salt_len == 0 ||
		    sf.salt_len > POP3_SCRAM_SALT_MAX)
			abort();
		(void)pop3_scram_client_final_bare(&sf, final, sizeof(final),
		    &err);
	}
	(void)pop3_scram_parse_server_final(msg, size, sig, 32, etext,
	    sizeof(etext), &err);
	if (pop3_b64_decode(msg, size, out, sizeof(out), &n) == 0 &&
	    (n > sizeof(out) || n > size))
		abort();
	free(msg);
	return 0;
}
