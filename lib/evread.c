/* evread — see evread.h. The input buffer of a socket bufferevent has its
 * end frozen (only libevent's reads may add to it); it is thawed for the
 * read, as libevent does around its own. */
#include "evread.h"

#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

/* Bytes reserved in the input buffer per readv. */
#define EVREAD_CHUNK (64 * 1024)

size_t
evread_more(struct bufferevent *bev, size_t max)
{
	evutil_socket_t fd = bufferevent_getfd(bev);
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t total = 0;

	if (fd < 0 || bufferevent_get_underlying(bev) != NULL ||
	    bufferevent_openssl_get_ssl(bev) != NULL)
		return 0;
	evbuffer_unfreeze(in, 0);
	while (total < max) {
		struct evbuffer_iovec v[2];
		struct iovec iov[2];
		size_t want = max - total, left;
		ssize_t r;
		int n, used;

		if (want > EVREAD_CHUNK)
			want = EVREAD_CHUNK;
		n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
		if (n <= 0)
			break;
		/* the reservation may be larger than asked for */
		left = want;
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len < left ? v[i].iov_len :
			    left;
			left -= iov[i].iov_len;
		}
		do
			r = readv(fd, iov, n);
		while (r < 0 && errno == EINTR);
		if (r <= 0) {
			evbuffer_commit_space(in, v, 0);
			break;
		}
		/* commit what arrived: the vectors it filled, in order */
		left = (size_t)r;
		for (used = 0; used < n && left > 0; used++) {
			v[used].iov_len = iov[used].iov_len < left ?
			    iov[used].iov_len : left;
			left -= v[used].iov_len;
		}
		evbuffer_commit_space(in, v, used);
		total += (size_t)r;
		if ((size_t)r < want)
			break;		/* the socket is drained */
	}
	evbuffer_freeze(in, 0);
	return total;
}
