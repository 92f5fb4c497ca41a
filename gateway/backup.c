/* backup — see backup.h. */
#include "backup.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gateway/fsutil.h"
#include "gateway/gateway.h"
#include "log.h"
#include "store/store.h"
#include "xmalloc.h"

struct backup {
	struct gateway *gw;
	struct control_client *client;
	char *path;		/* the file asked for */
	char *tmp;		/* where the copy is written */
	int fd;
	int pipe[2];		/* the copy thread says "done" here */
	struct event *done_ev;
	pthread_t thread;
	bool running;
	struct timespec started;
	/* the thread's result (read after the pipe says done) */
	int result;
	char error[256];
};

/* The copy thread: nothing but the store's copy and the fd. */
static void *
copy_thread(void *arg)
{
	struct backup *b = arg;
	char c = 'd';

	b->result = store_backup_fd(b->gw->store, b->fd, b->error,
	    sizeof(b->error));
	/* wakes the loop (libevent may not be set up for threads) */
	while (write(b->pipe[1], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void
finish(struct backup *b)
{
	struct ctl_error err;
	struct timespec now;
	struct stat st;
	char q[LOG_QUOTE_MAX + CTL_PATH_MAX];
	double secs;
	json_t *resp;

	pthread_join(b->thread, NULL);
	b->running = false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - b->started.tv_sec) +
	    (double)(now.tv_nsec - b->started.tv_nsec) / 1e9;
	if (b->result == 0 && fstat(b->fd, &st) < 0) {
		b->result = -1;
		snprintf(b->error, sizeof(b->error), "stat: %s",
		    strerror(errno));
	}
	close(b->fd);
	b->fd = -1;
	/* link() never replaces: the file appears complete, or not at all */
	if (b->result == 0 && link(b->tmp, b->path) < 0) {
		b->result = -1;
		snprintf(b->error, sizeof(b->error), "%s", errno == EEXIST ?
		    "the file exists now (made during the copy); the copy "
		    "was removed" : strerror(errno));
	}
	unlink(b->tmp);
	if (b->result == 0)
		fs_sync_parent_dir(b->path);
	log_quote(q, sizeof(q), b->path);
	if (b->result < 0) {
		log_error("backup event=failed path=%s error=\"%s\"", q,
		    b->error);
		ctl_error_set(&err, CTL_E_STORE, "path", "backup failed: %s",
		    b->error);
		if (b->client != NULL)
			control_reply_error(b->client, &err);
	} else {
		log_info("backup event=done path=%s bytes=%lld seconds=%.3f",
		    q, (long long)st.st_size, secs);
		resp = ctl_ok_json();
		json_object_set_new(resp, "backup", json_pack("{s:s, s:I, "
		    "s:f, s:s}", "path", b->path, "bytes",
		    (json_int_t)st.st_size, "seconds", secs, "mode", "0600"));
		if (b->client != NULL)
			control_reply(b->client, resp);
		else
			json_decref(resp);
	}
	b->client = NULL;
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct backup *b = arg;
	char c;

	(void)what;
	if (read(fd, &c, 1) != 1 || !b->running)
		return;
	finish(b);
}

int
backup_start(struct gateway *gw, struct control_client *client,
    const char *path, struct ctl_error *err)
{
	struct backup *b = gw->backup;
	struct stat st;
	int rc;

	if (b != NULL && b->running) {
		ctl_error_set(err, "busy", NULL, "a backup is running (to "
		    "%s); try again when it is done", b->path);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		ctl_error_set(err, CTL_E_EXISTS, "path", "%s exists; a backup "
		    "never overwrites a file", path);
		return -1;
	}
	if (b == NULL) {
		b = xcalloc(1, sizeof(*b));
		b->gw = gw;
		b->fd = -1;
		if (pipe2(b->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
			ctl_error_set(err, CTL_E_INTERNAL, NULL, "pipe: %s",
			    strerror(errno));
			free(b);
			return -1;
		}
		b->done_ev = event_new(gw->base, b->pipe[0],
		    EV_READ | EV_PERSIST, done_cb, b);
		event_add(b->done_ev, NULL);
		gw->backup = b;
	}
	free(b->path);
	free(b->tmp);
	b->path = xstrdup(path);
	b->tmp = xasprintf("%s.partial-XXXXXX", path);
	/* mkostemp makes the file 0600 whatever the umask */
	b->fd = mkostemp(b->tmp, O_CLOEXEC);
	if (b->fd < 0) {
		ctl_error_set(err, CTL_E_INVALID, "path", "cannot create a "
		    "file in the directory of %s: %s (it must exist and be "
		    "writable by the daemon's user)", path, strerror(errno));
		return -1;
	}
	(void)fchmod(b->fd, 0600);
	b->client = client;
	b->result = -1;
	b->error[0] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &b->started);
	rc = pthread_create(&b->thread, NULL, copy_thread, b);
	if (rc != 0) {
		close(b->fd);
		b->fd = -1;
		unlink(b->tmp);
		ctl_error_set(err, CTL_E_INTERNAL, NULL, "thread: %s",
		    strerror(rc));
		return -1;
	}
	b->running = true;
	{
		char q[LOG_QUOTE_MAX + CTL_PATH_MAX];

		log_info("backup event=start path=%s", log_quote(q, sizeof(q),
		    path));
	}
	return 0;
}

void
backup_free(struct gateway *gw)
{
	struct backup *b = gw->backup;

	if (b == NULL)
		return;
	if (b->running) {
		log_info("backup event=waiting note=\"the copy finishes "
		    "before popgated exits\"");
		b->client = NULL;	/* the control socket is gone */
		finish(b);
	}
	event_free(b->done_ev);
	close(b->pipe[0]);
	close(b->pipe[1]);
	free(b->path);
	free(b->tmp);
	free(b);
	gw->backup = NULL;
}
