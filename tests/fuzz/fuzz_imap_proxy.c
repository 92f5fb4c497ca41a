/*
 * Fuzz target for imap-frontend/imap-proxy-parse. Properties:
 *  - a header that parses takes no more than was given and no more than
 *    IMAP_PROXY_HEADER_MAX bytes, and its address has the family's shape;
 *  - every prefix of it needs more (a header is never accepted early),
 *    and the same bytes with anything after them parse the same;
 *  - an error on a prefix means an error on the whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "imap-frontend/imap-proxy-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_proxy_header h, h2;
	size_t consumed = 0, c2 = 0;
	const char *error = NULL;
	enum imap_proxy_result r, r2;

	r = imap_proxy_parse(data, size, &h, &consumed, &error);
	if (r == IMAP_PROXY_ERROR && error == NULL)
		abort();
	if (r != IMAP_PROXY_DONE)
		return 0;
	if (consumed == 0 || consumed > size ||
	    consumed > IMAP_PROXY_HEADER_MAX)
		abort();
	if (h.has_addr && h.src.ss_family != AF_INET &&
	    h.src.ss_family != AF_INET6)
		abort();
	if (h.has_addr && h.src_text[0] == '\0')
		abort();
	for (size_t k = 0; k < consumed; k++) {
		r2 = imap_proxy_parse(data, k, &h2, &c2, &error);
		if (r2 != IMAP_PROXY_MORE)
			abort();
	}
	r2 = imap_proxy_parse(data, consumed, &h2, &c2, &error);
	if (r2 != IMAP_PROXY_DONE || c2 != consumed ||
	    h2.has_addr != h.has_addr ||
	    strcmp(h2.src_text, h.src_text) != 0)
		abort();
	return 0;
}
