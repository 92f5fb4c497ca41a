/*
 * imap-proxy-parse — the PROXY protocol header, versions 1 and 2 (level 1:
 * pure, no I/O).
 *
 * A proxy in front of popgate (nginx's mail module with proxy_protocol on,
 * HAProxy) may open each connection with one header that says which
 * client it carries (haproxy.org's proxy-protocol.txt). The caller keeps
 * the bytes read so far and calls imap_proxy_parse() on all of them after
 * each read: the answer is "need more", "done" with the number of bytes
 * the header took (what follows belongs to the session), or an error.
 * Every bound is checked on the bytes given, so a caller that never
 * holds more than IMAP_PROXY_HEADER_MAX bytes never needs more.
 *
 * Accepted: v1 "PROXY TCP4|TCP6 src dst sport dport\r\n" and
 * "PROXY UNKNOWN...\r\n"; v2 PROXY over TCP/IPv4 and TCP/IPv6 (TLVs after
 * the addresses are skipped), v2 LOCAL and the UNSPEC family. UNKNOWN,
 * LOCAL and UNSPEC carry no client: the connection's own address stands
 * (a proxy's health check). UDP and UNIX families are errors: the IMAP
 * listeners are TCP.
 */
#ifndef POPGATE_IMAP_PROXY_PARSE_H
#define POPGATE_IMAP_PROXY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The spec's longest v1 line, CRLF included ("PROXY UNKNOWN" + two IPv6
 * addresses and ports). */
#define IMAP_PROXY_V1_MAX 107
/* The v2 fixed part: the 12-byte signature, version/command, family,
 * length. */
#define IMAP_PROXY_V2_HEAD 16
/* The largest header accepted, v2 TLVs included: HAProxy's recommended
 * receive buffer for the header (addresses of every family and a few
 * TLVs). A header that declares more is refused before it is read. */
#define IMAP_PROXY_HEADER_MAX 536
/* Room for an address in text (INET6_ADDRSTRLEN). */
#define IMAP_PROXY_ADDR_MAX 46

enum imap_proxy_result {
	IMAP_PROXY_MORE = 0,	/* no error so far: read more */
	IMAP_PROXY_DONE,	/* a whole header: *consumed_r bytes */
	IMAP_PROXY_ERROR,	/* not a valid header: *error_r says why */
};

struct imap_proxy_header {
	int version;		/* 1 or 2 */
	/* false: no client carried (v1 UNKNOWN, v2 LOCAL or UNSPEC); the
	 * fields below are then zero. */
	bool has_addr;
	/* The client (source) and the address it connected to (the
	 * proxy's), as sockaddr_in or sockaddr_in6 with the port set, and
	 * the client's address in text. */
	struct sockaddr_storage src;
	struct sockaddr_storage dst;
	socklen_t src_len, dst_len;
	char src_text[IMAP_PROXY_ADDR_MAX];
};

/*
 * Parses the start of a connection: buf holds the len bytes read so far
 * (len may be more than the header: only the header is consumed). On
 * IMAP_PROXY_DONE *h is filled and *consumed_r is the header's length;
 * on IMAP_PROXY_ERROR *error_r is static text. Never reads past len nor
 * past IMAP_PROXY_HEADER_MAX bytes.
 */
enum imap_proxy_result imap_proxy_parse(const uint8_t *buf, size_t len,
    struct imap_proxy_header *h, size_t *consumed_r, const char **error_r);

/* True when buf (len bytes, len may be short) starts like a PROXY header
 * of either version: used to refuse one from a peer that is not trusted
 * with a clear message rather than a run of BADs. */
bool imap_proxy_looks_like(const uint8_t *buf, size_t len);

/* A trusted network: an address, or an address with a prefix length
 * ("10.0.0.0/8", "::1", "2001:db8::/32"). */
struct imap_proxy_net {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network order, masked to prefix */
	unsigned prefix;	/* bits: 0..32 or 0..128 */
};

/* Parses one network: 0, or -1 with *error_r (static text). */
int imap_proxy_net_parse(const char *s, struct imap_proxy_net *net,
    const char **error_r);
/* True when sa (AF_INET, or AF_INET6 also as an IPv4-mapped address) is
 * inside net. */
bool imap_proxy_net_match(const struct imap_proxy_net *net,
    const struct sockaddr *sa);

#endif
