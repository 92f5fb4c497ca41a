/* evsecret — see evsecret.h. */
#include "evsecret.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "xmalloc.h"

void (*evsecret_release_hook)(const unsigned char *block, size_t len);

static size_t outstanding;

/* libevent's cleanup for a reference chain: data is our block. */
static void
release(const void *data, size_t len, void *extra)
{
	unsigned char *block = extra;

	(void)data;
	secure_zero(block, len);
	if (evsecret_release_hook != NULL)
		evsecret_release_hook(block, len);
	free(block);
	outstanding--;
}

int
evsecret_add(struct evbuffer *out, const void *data, size_t len)
{
	unsigned char *block;

	PG_ASSERT(len > 0);
	block = xmalloc(len);
	memcpy(block, data, len);
	outstanding++;
	if (evbuffer_add_reference(out, block, len, release, block) < 0) {
		release(block, len, block);
		return -1;
	}
	return 0;
}

size_t
evsecret_outstanding(void)
{
	return outstanding;
}

void
evsecret_drain(struct evbuffer *in, size_t len)
{
	size_t left = len;

	while (left > 0) {
		struct evbuffer_iovec v[8];
		struct evbuffer_ptr pos;
		int n;

		evbuffer_ptr_set(in, &pos, len - left, EVBUFFER_PTR_SET);
		n = evbuffer_peek(in, (ev_ssize_t)left, &pos, v, 8);
		PG_ASSERT(n > 0);
		for (int i = 0; i < n && i < 8 && left > 0; i++) {
			size_t k = v[i].iov_len < left ? v[i].iov_len : left;

			secure_zero(v[i].iov_base, k);
			left -= k;
		}
	}
	evbuffer_drain(in, len);
}
