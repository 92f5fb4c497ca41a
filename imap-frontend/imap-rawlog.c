/* imap-rawlog — see imap-rawlog.h. */
#include "imap-rawlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"

/* Pieces of the buffer's chain looked at per callback. */
#define IMAP_RAWLOG_IOVECS 16

struct imap_rawlog {
	FILE *f;
	struct evbuffer *out;
	struct evbuffer_cb_entry *cb;
};

struct imap_rawlog *
imap_rawlog_open(const char *dir, unsigned session_id)
{
	struct imap_rawlog *rl;
	char *path;
	int fd;
	FILE *f;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_warn("imap event=rawlog_failed dir=\"%s\" error=\"%s\"", dir,
		    strerror(errno));
		return NULL;
	}
	path = xasprintf("%s/%ld-%u.out", dir, (long)getpid(), session_id);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
		log_warn("imap event=rawlog_failed path=\"%s\" error=\"%s\"",
		    path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return NULL;
	}
	free(path);
	rl = xcalloc(1, sizeof(*rl));
	rl->f = f;
	return rl;
}

/* Runs synchronously on every change of the buffer: what was added is
 * its last n_added bytes (drains only take from the front). */
static void
rawlog_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct imap_rawlog *rl = arg;
	struct evbuffer_iovec v[IMAP_RAWLOG_IOVECS];
	struct evbuffer_ptr pos;
	size_t len = evbuffer_get_length(buf), left = info->n_added;

	if (left == 0 || rl->f == NULL || left > len)
		return;
	if (evbuffer_ptr_set(buf, &pos, len - left, EVBUFFER_PTR_SET) < 0)
		return;
	while (left > 0) {
		int n = evbuffer_peek(buf, (ev_ssize_t)left, &pos, v,
		    IMAP_RAWLOG_IOVECS);

		if (n <= 0)
			break;
		for (int i = 0; i < n && i < IMAP_RAWLOG_IOVECS && left > 0;
		    i++) {
			size_t k = v[i].iov_len < left ? v[i].iov_len : left;

			fwrite(v[i].iov_base, 1, k, rl->f);
			left -= k;
			if (evbuffer_ptr_set(buf, &pos, k, EVBUFFER_PTR_ADD) < 0)
				left = 0;
		}
	}
	fflush(rl->f);
}

void
imap_rawlog_attach(struct imap_rawlog *rl, struct evbuffer *out)
{
	if (rl == NULL)
		return;
	imap_rawlog_detach(rl);
	rl->out = out;
	rl->cb = evbuffer_add_cb(out, rawlog_cb, rl);
}

void
imap_rawlog_detach(struct imap_rawlog *rl)
{
	if (rl == NULL || rl->cb == NULL)
		return;
	evbuffer_remove_cb_entry(rl->out, rl->cb);
	rl->cb = NULL;
	rl->out = NULL;
}

void
imap_rawlog_close(struct imap_rawlog **rlp)
{
	struct imap_rawlog *rl = *rlp;

	if (rl == NULL)
		return;
	imap_rawlog_detach(rl);
	fclose(rl->f);
	free(rl);
	*rlp = NULL;
}
