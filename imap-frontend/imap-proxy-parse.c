/* imap-proxy-parse — PROXY protocol v1 and v2 headers (pure). */
#include "imap-proxy-parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1_sig[] = "PROXY ";

/* v2 family byte: address family (high nibble) and transport (low). */
#define V2_FAM_UNSPEC 0x00
#define V2_FAM_TCP4 0x11
#define V2_FAM_TCP6 0x21
#define V2_ADDR_LEN_TCP4 12
#define V2_ADDR_LEN_TCP6 36

bool
imap_proxy_looks_like(const uint8_t *buf, size_t len)
{
	size_t n1 = len < sizeof(v1_sig) - 1 ? len : sizeof(v1_sig) - 1;
	size_t n2 = len < sizeof(v2_sig) ? len : sizeof(v2_sig);

	if (len == 0)
		return false;
	return memcmp(buf, v1_sig, n1) == 0 || memcmp(buf, v2_sig, n2) == 0;
}

/* A port in decimal: 0..65535, no sign, no leading zero (v1 spec). */
static bool
parse_port(const char *s, size_t n, uint16_t *port_r)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*port_r = (uint16_t)v;
	return true;
}

static bool
parse_ip(int family, const char *s, size_t n, uint16_t port,
    struct sockaddr_storage *ss, socklen_t *len_r)
{
	char tmp[IMAP_PROXY_ADDR_MAX];

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, tmp, &s4->sin_addr) != 1)
			return false;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len_r = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, tmp, &s6->sin6_addr) != 1)
			return false;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len_r = sizeof(*s6);
	}
	return true;
}

static void
src_to_text(struct imap_proxy_header *h)
{
	const void *a = h->src.ss_family == AF_INET ?
	    (const void *)&((struct sockaddr_in *)&h->src)->sin_addr :
	    (const void *)&((struct sockaddr_in6 *)&h->src)->sin6_addr;

	if (inet_ntop(h->src.ss_family, a, h->src_text,
	    sizeof(h->src_text)) == NULL)
		h->src_text[0] = '\0';
}

/* The v1 line without its CRLF: "PROXY TCP4 a b p q" or "PROXY UNKNOWN". */
static enum imap_proxy_result
parse_v1_line(const char *line, size_t n, struct imap_proxy_header *h,
    const char **error_r)
{
	const char *f[6];
	size_t fl[6];
	size_t nf = 0, i = 0;
	int family;
	uint16_t sport, dport;

	/* fields separated by exactly one space */
	while (i <= n && nf < 6) {
		size_t start = i;

		while (i < n && line[i] != ' ')
			i++;
		f[nf] = line + start;
		fl[nf] = i - start;
		nf++;
		i++;
	}
	if (nf >= 2 && fl[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
		/* the rest, if any, is to be ignored (spec 2.1) */
		h->has_addr = false;
		return IMAP_PROXY_DONE;
	}
	if (i <= n || nf != 6) {
		*error_r = "PROXY v1: want PROXY TCP4|TCP6 src dst sport dport";
		return IMAP_PROXY_ERROR;
	}
	if (fl[1] == 4 && memcmp(f[1], "TCP4", 4) == 0) {
		family = AF_INET;
	} else if (fl[1] == 4 && memcmp(f[1], "TCP6", 4) == 0) {
		family = AF_INET6;
	} else {
		*error_r = "PROXY v1: unknown protocol (want TCP4, TCP6, UNKNOWN)";
		return IMAP_PROXY_ERROR;
	}
	if (!parse_port(f[4], fl[4], &sport) ||
	    !parse_port(f[5], fl[5], &dport)) {
		*error_r = "PROXY v1: bad port";
		return IMAP_PROXY_ERROR;
	}
	if (!parse_ip(family, f[2], fl[2], sport, &h->src, &h->src_len) ||
	    !parse_ip(family, f[3], fl[3], dport, &h->dst, &h->dst_len)) {
		*error_r = "PROXY v1: bad address for the protocol";
		return IMAP_PROXY_ERROR;
	}
	h->has_addr = true;
	src_to_text(h);
	return IMAP_PROXY_DONE;
}

static enum imap_proxy_result
parse_v1(const uint8_t *buf, size_t len, struct imap_proxy_header *h,
    size_t *consumed_r, const char **error_r)
{
	size_t max = len < IMAP_PROXY_V1_MAX ? len : IMAP_PROXY_V1_MAX;

	for (size_t i = 0; i < max; i++) {
		if (buf[i] == '\r') {
			if (i + 2 > IMAP_PROXY_V1_MAX) {
				*error_r = "PROXY v1: line too long";
				return IMAP_PROXY_ERROR;
			}
			if (i + 1 >= len)
				return IMAP_PROXY_MORE;
			if (buf[i + 1] != '\n') {
				*error_r = "PROXY v1: CR without LF";
				return IMAP_PROXY_ERROR;
			}
			h->version = 1;
			*consumed_r = i + 2;
			return parse_v1_line((const char *)buf, i, h, error_r);
		}
		/* printable US-ASCII only */
		if (buf[i] < 0x20 || buf[i] > 0x7e) {
			*error_r = "PROXY v1: bad character in the line";
			return IMAP_PROXY_ERROR;
		}
	}
	if (len < IMAP_PROXY_V1_MAX)
		return IMAP_PROXY_MORE;
	*error_r = "PROXY v1: line too long";
	return IMAP_PROXY_ERROR;
}

static enum imap_proxy_result
parse_v2(const uint8_t *buf, size_t len, struct imap_proxy_header *h,
    size_t *consumed_r, const char **error_r)
{
	size_t alen, total;
	uint8_t cmd, fam;

	if (len < IMAP_PROXY_V2_HEAD)
		return IMAP_PROXY_MORE;
	if ((buf[12] >> 4) != 2) {
		*error_r = "PROXY v2: unknown version";
		return IMAP_PROXY_ERROR;
	}
	cmd = buf[12] & 0x0f;
	fam = buf[13];
	alen = ((size_t)buf[14] << 8) | buf[15];
	total = IMAP_PROXY_V2_HEAD + alen;
	if (total > IMAP_PROXY_HEADER_MAX) {
		*error_r = "PROXY v2: header too long";
		return IMAP_PROXY_ERROR;
	}
	if (cmd > 1) {
		*error_r = "PROXY v2: unknown command";
		return IMAP_PROXY_ERROR;
	}
	if (cmd == 1 && fam != V2_FAM_UNSPEC && fam != V2_FAM_TCP4 &&
	    fam != V2_FAM_TCP6) {
		*error_r = "PROXY v2: not TCP over IPv4 or IPv6";
		return IMAP_PROXY_ERROR;
	}
	if (cmd == 1 && ((fam == V2_FAM_TCP4 && alen < V2_ADDR_LEN_TCP4) ||
	    (fam == V2_FAM_TCP6 && alen < V2_ADDR_LEN_TCP6))) {
		*error_r = "PROXY v2: address block too short";
		return IMAP_PROXY_ERROR;
	}
	if (len < total)
		return IMAP_PROXY_MORE;
	h->version = 2;
	*consumed_r = total;
	if (cmd == 0 || fam == V2_FAM_UNSPEC) {
		h->has_addr = false;
		return IMAP_PROXY_DONE;
	}
	if (fam == V2_FAM_TCP4) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&h->dst;

		memset(&h->src, 0, sizeof(h->src));
		memset(&h->dst, 0, sizeof(h->dst));
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, buf + 16, 4);
		memcpy(&d->sin_addr, buf + 20, 4);
		memcpy(&s->sin_port, buf + 24, 2);
		memcpy(&d->sin_port, buf + 26, 2);
		h->src_len = h->dst_len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;

		memset(&h->src, 0, sizeof(h->src));
		memset(&h->dst, 0, sizeof(h->dst));
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, buf + 16, 16);
		memcpy(&d->sin6_addr, buf + 32, 16);
		memcpy(&s->sin6_port, buf + 48, 2);
		memcpy(&d->sin6_port, buf + 50, 2);
		h->src_len = h->dst_len = sizeof(*s);
	}
	h->has_addr = true;
	src_to_text(h);
	return IMAP_PROXY_DONE;
}

enum imap_proxy_result
imap_proxy_parse(const uint8_t *buf, size_t len, struct imap_proxy_header *h,
    size_t *consumed_r, const char **error_r)
{
	memset(h, 0, sizeof(*h));
	*consumed_r = 0;
	if (len == 0)
		return IMAP_PROXY_MORE;
	if (!imap_proxy_looks_like(buf, len)) {
		*error_r = "not a PROXY protocol header";
		return IMAP_PROXY_ERROR;
	}
	if (buf[0] == 'P')
		return parse_v1(buf, len, h, consumed_r, error_r);
	if (len < sizeof(v2_sig))
		return IMAP_PROXY_MORE;
	return parse_v2(buf, len, h, consumed_r, error_r);
}

int
imap_proxy_net_parse(const char *s, struct imap_proxy_net *net,
    const char **error_r)
{
	char tmp[IMAP_PROXY_ADDR_MAX + 4];
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned max;

	memset(net, 0, sizeof(*net));
	if (alen == 0 || alen >= IMAP_PROXY_ADDR_MAX) {
		*error_r = "not an address or address/prefix";
		return -1;
	}
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';
	if (inet_pton(AF_INET, tmp, net->addr) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, tmp, net->addr) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else {
		*error_r = "not an address or address/prefix";
		return -1;
	}
	net->prefix = max;
	if (slash != NULL) {
		const char *p = slash + 1;
		unsigned v = 0;

		if (*p == '\0' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0')) {
			*error_r = "bad prefix length";
			return -1;
		}
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9') {
				*error_r = "bad prefix length";
				return -1;
			}
			v = v * 10 + (unsigned)(*p - '0');
		}
		if (v > max) {
			*error_r = "prefix length past the address size";
			return -1;
		}
		net->prefix = v;
	}
	/* keep only the network part, so that a match compares bytes */
	for (unsigned bit = net->prefix; bit < max; bit++)
		net->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	return 0;
}

bool
imap_proxy_net_match(const struct imap_proxy_net *net,
    const struct sockaddr *sa)
{
	const uint8_t *a;
	int family = sa->sa_family;

	if (family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr.s6_addr;
		if (net->family == AF_INET && IN6_IS_ADDR_V4MAPPED(
		    &((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr)) {
			a += 12;
			family = AF_INET;
		}
	} else {
		return false;
	}
	if (family != net->family)
		return false;
	for (unsigned bit = 0; bit < net->prefix; bit += 8) {
		unsigned left = net->prefix - bit;
		uint8_t mask = left >= 8 ? 0xff : (uint8_t)(0xff00u >> left);

		if ((a[bit / 8] & mask) != net->addr[bit / 8])
			return false;
	}
	return true;
}
