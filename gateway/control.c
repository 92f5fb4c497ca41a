/* control — see control.h. */
#include "control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "evsecret.h"
#include "log.h"
#include "workq.h"
#include "xmalloc.h"

/* Supplementary groups looked at for a peer (getgrouplist). */
#define CONTROL_PEER_GROUPS_MAX 256
/* Replies a client has not read yet: past this, its requests wait. */
#define CONTROL_OUTPUT_PAUSE (256 * 1024)

struct control_client {
	struct control *control;
	struct control_client *next;
	struct bufferevent *bev;
	unsigned int id;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool busy;		/* a request is with its handler */
	bool gone;		/* connection closed while busy */
	bool closing;		/* close once the output is written */
	bool dispatching;	/* inside process_input() */
	bool paused;		/* replies unread: reading stopped */
	/* an in-process client (control_client_internal): no socket */
	control_internal_reply_fn *reply_fn;
	void *reply_arg;
};

struct control {
	struct event_base *base;
	struct evconnlistener *listener;
	char *path;
	struct control_settings settings;
	control_handler_fn *handler;
	void *ctx;
	struct control_client *clients;
	unsigned int client_count;
	unsigned int next_id;
	uint64_t bad_requests;
	struct workq *workq;	/* group look-ups (NSS may block) */
};

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_free(struct control_client *c);
static void reply_and_close(struct control_client *c, const char *code,
    const char *message);
static void process_input(struct control_client *c);

int
control_socket_open(const char *path, mode_t mode, gid_t gid, int *fd_r,
    char *errbuf, size_t errsize)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old_umask;
	int fd = -1, ret;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(errbuf, errsize, "%s: path too long for a UNIX "
		    "socket", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));

	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode)) {
			snprintf(errbuf, errsize, "%s: is a symbolic link; "
			    "refusing to use it as the control socket", path);
			return -1;
		}
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(errbuf, errsize, "%s: exists and is not a "
			    "socket; refusing to replace it", path);
			return -1;
		}
		/* A socket: live (another daemon) or stale (left by a
		   crash)? Only a refused connection proves it is stale. */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(errbuf, errsize, "socket: %s",
			    strerror(errno));
			return -1;
		}
		ret = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
		if (ret == 0 || errno != ECONNREFUSED) {
			int saved = errno;

			close(fd);
			if (ret == 0)
				snprintf(errbuf, errsize, "%s: a running daemon "
				    "answers on this socket; refusing to "
				    "take it over", path);
			else
				snprintf(errbuf, errsize, "%s: cannot tell "
				    "whether the socket is in use: %s", path,
				    strerror(saved));
			return -1;
		}
		close(fd);
		fd = -1;
		if (unlink(path) < 0) {
			snprintf(errbuf, errsize, "%s: cannot remove stale "
			    "socket: %s", path, strerror(errno));
			return -1;
		}
		char q[LOG_QUOTE_MAX + 128];

		log_info("control event=stale-socket-removed path=%s",
		    log_quote(q, sizeof(q), path));
	} else if (errno != ENOENT) {
		snprintf(errbuf, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(errbuf, errsize, "socket: %s", strerror(errno));
		return -1;
	}
	/* The mode is right from the first instant: bind() creates the
	   node with 0777 & ~umask. */
	old_umask = umask((mode_t)(~mode & 0777));
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_umask);
	if (ret < 0) {
		snprintf(errbuf, errsize, "%s: bind: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) {
		snprintf(errbuf, errsize, "%s: chown to group %u: %s", path,
		    (unsigned)gid, strerror(errno));
		unlink(path);
		goto fail;
	}
	if (listen(fd, 16) < 0) {
		snprintf(errbuf, errsize, "%s: listen: %s", path,
		    strerror(errno));
		unlink(path);
		goto fail;
	}
	*fd_r = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

bool
control_socket_dir_reachable(const char *path, gid_t gid, char *why,
    size_t whysize)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	struct stat st;
	struct group *gr;
	struct passwd *pw;
	bool ok = true;

	if (slash != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	if (stat(dir, &st) == 0 && (st.st_mode & S_IXOTH) == 0 &&
	    !(st.st_gid == gid && (st.st_mode & S_IXGRP) != 0)) {
		char user[64], group[64];

		pw = getpwuid(st.st_uid);
		gr = getgrgid(st.st_gid);
		snprintf(user, sizeof(user), "%s", pw != NULL ? pw->pw_name :
		    "?");
		snprintf(group, sizeof(group), "%s", gr != NULL ? gr->gr_name :
		    "?");
		snprintf(why, whysize, "%s is %s:%s %04o", dir, user, group,
		    (unsigned)(st.st_mode & 07777));
		ok = false;
	}
	free(dir);
	return ok;
}

static bool
peer_in_group(uid_t uid, gid_t pgid, gid_t group)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	gid_t groups[CONTROL_PEER_GROUPS_MAX];
	int n = CONTROL_PEER_GROUPS_MAX;

	if (pgid == group)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
		return false;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++) {
		if (groups[i] == group)
			return true;
	}
	return false;
}

/* The group check of a new peer, on a worker: getpwuid_r and
 * getgrouplist may ask a directory server (NSS) and block. The client is
 * busy meanwhile (reads nothing; a close waits for the answer). */
struct peer_check {
	struct workq_job wq;
	struct control_client *c;
	uid_t uid;
	gid_t gid, group;
	bool allowed;
};

static enum workq_run_result
peer_check_run(struct workq_job *wq)
{
	struct peer_check *pc = (struct peer_check *)wq;

	pc->allowed = peer_in_group(pc->uid, pc->gid, pc->group);
	return WORKQ_DONE;
}

static void
peer_allowed(struct control_client *c, bool allowed)
{
	if (!allowed) {
		log_warn("control client=%u event=refused uid=%u pid=%d "
		    "reason=credentials", c->id, (unsigned)c->uid, (int)c->pid);
		reply_and_close(c, "permission-denied",
		    "this user may not use the control socket");
		return;
	}
	if (c->control->client_count > c->control->settings.max_clients) {
		log_warn("control client=%u event=refused reason=too-many",
		    c->id);
		reply_and_close(c, "busy", "too many control clients; "
		    "try again");
		return;
	}
	log_debug("control client=%u event=connect uid=%u pid=%d", c->id,
	    (unsigned)c->uid, (int)c->pid);
}

static void
peer_check_done(struct workq_job *wq)
{
	struct peer_check *pc = (struct peer_check *)wq;
	struct control_client *c = pc->c;
	bool allowed = pc->allowed && !wq->cancelled;

	free(pc);
	c->busy = false;
	if (c->gone) {
		client_free(c);
		return;
	}
	peer_allowed(c, allowed);
	if (!c->closing) {
		bufferevent_enable(c->bev, EV_READ);
		process_input(c);
	}
}

static void
client_free(struct control_client *c)
{
	struct control *control = c->control;
	struct control_client **pp;

	for (pp = &control->clients; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	control->client_count--;
	if (c->bev != NULL) {
		struct evbuffer *in = bufferevent_get_input(c->bev);

		/* a request cut short may hold a password */
		evsecret_drain(in, evbuffer_get_length(in));
		bufferevent_free(c->bev);
	}
	free(c);
}

/* Closes the connection now, or once the handler replies. */
static void
client_close(struct control_client *c)
{
	if (c->busy) {
		c->gone = true;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	client_free(c);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct control_client *c = arg;

	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev))
	    == 0) {
		client_free(c);
		return;
	}
	if (c->paused && !c->busy && !c->closing && !c->dispatching) {
		/* the replies were read: take the next requests */
		c->paused = false;
		bufferevent_enable(bev, EV_READ);
		process_input(c);
	}
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct control_client *c = arg;

	if (what & BEV_EVENT_TIMEOUT)
		log_info("control client=%u event=timeout", c->id);
	client_close(c);
}

static void
send_line(struct control_client *c, json_t *response)
{
	char *line = ctl_json_line(response);

	bufferevent_write(c->bev, line, strlen(line));
	free(line);
}

/* Sends an error and closes the connection once it is written. */
static void
reply_and_close(struct control_client *c, const char *code,
    const char *message)
{
	struct ctl_error err;
	json_t *j;

	ctl_error_set(&err, code, NULL, "%s", message);
	j = ctl_error_json(&err);
	send_line(c, j);
	json_decref(j);
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
}

static void
process_input(struct control_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t max = c->control->settings.request_max;

	c->dispatching = true;
	while (!c->busy && !c->closing) {
		struct evbuffer_ptr eol;
		size_t eol_len = 0, line_len;
		char *line;
		const struct ctl_command *cmd;
		json_t *req;
		struct ctl_error err;

		if (evbuffer_get_length(bufferevent_get_output(c->bev)) >=
		    CONTROL_OUTPUT_PAUSE) {
			/* a client that sends without reading the answers
			   must not grow the output without bound */
			c->paused = true;
			break;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > max) {
				log_warn("control client=%u event=too-long "
				    "bytes=%zu", c->id,
				    evbuffer_get_length(in));
				reply_and_close(c, CTL_E_TOO_LONG,
				    "request line longer than the limit; "
				    "closing");
			}
			return;
		}
		line_len = (size_t)eol.pos;
		if (line_len > max) {
			log_warn("control client=%u event=too-long bytes=%zu",
			    c->id, line_len);
			reply_and_close(c, CTL_E_TOO_LONG,
			    "request line longer than the limit; closing");
			return;
		}
		line = xmalloc(line_len + 1);
		/* a request may carry a password: the chain bytes are
		   wiped as they are drained (evsecret.h) */
		evbuffer_copyout(in, line, line_len);
		line[line_len] = '\0';
		evsecret_drain(in, line_len + eol_len);
		if (line_len > 0 && line[line_len - 1] == '\r')
			line[--line_len] = '\0';
		if (line_len == 0) {
			free(line);
			continue;
		}
		if (ctl_request_parse(line, line_len, &cmd, &req, &err) < 0) {
			json_t *j = ctl_error_json(&err);

			log_info("control client=%u event=bad-request "
			    "code=%s", c->id, err.code);
			c->control->bad_requests++;
			send_line(c, j);
			json_decref(j);
			/* a password may be in it: wipe before freeing */
			secure_zero(line, line_len);
			free(line);
			continue;
		}
		secure_zero(line, line_len);
		free(line);
		log_info("control client=%u uid=%u event=request command=%s",
		    c->id, (unsigned)c->uid, cmd->name);
		c->busy = true;
		c->control->handler(c->control->ctx, c, cmd, req);
		json_decref(req);
		/* The handler may have replied already (busy false): then
		   the loop reads the next request. c is never freed while
		   dispatching. */
	}
	c->dispatching = false;
	if (c->busy || c->paused)
		bufferevent_disable(c->bev, EV_READ);
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	process_input(arg);
}

static void
accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	struct control *control = arg;
	struct control_client *c;
	struct ucred cred;
	socklen_t credlen = sizeof(cred);
	struct timeval tv = { CONTROL_IDLE_TIMEOUT, 0 };
	bool allowed;

	(void)allowed;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) < 0) {
		log_warn("control event=peercred-failed error=\"%s\"",
		    strerror(errno));
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->control = control;
	c->id = ++control->next_id;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->bev = bufferevent_socket_new(control->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	c->next = control->clients;
	control->clients = c;
	control->client_count++;
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);

	if (cred.uid == 0 || cred.uid == geteuid() ||
	    control->settings.group == (gid_t)-1 ||
	    cred.gid == control->settings.group) {
		/* no directory look-up needed to decide */
		allowed = cred.uid == 0 || cred.uid == geteuid() ||
		    (control->settings.group != (gid_t)-1 &&
		    cred.gid == control->settings.group);
		peer_allowed(c, allowed);
		return;
	}
	{
		struct peer_check *pc = xcalloc(1, sizeof(*pc));

		pc->c = c;
		pc->uid = cred.uid;
		pc->gid = cred.gid;
		pc->group = control->settings.group;
		pc->wq.run = peer_check_run;
		pc->wq.done = peer_check_done;
		pc->wq.key = (uint64_t)cred.uid | (1ULL << 62);
		c->busy = true;
		bufferevent_disable(c->bev, EV_READ);
		workq_submit(control->workq, &pc->wq);
	}
}

void
control_set_workq(struct control *control, struct workq *workq)
{
	control->workq = workq;
}

struct control *
control_new(struct event_base *base, int fd, const char *path,
    const struct control_settings *settings, control_handler_fn *handler,
    void *ctx)
{
	struct control *control = xcalloc(1, sizeof(*control));

	control->base = base;
	control->path = xstrdup(path);
	control->settings = *settings;
	control->handler = handler;
	control->ctx = ctx;
	control->listener = evconnlistener_new(base, accept_cb, control,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	PG_ASSERT(control->listener != NULL);
	return control;
}

void
control_set_settings(struct control *control,
    const struct control_settings *settings)
{
	control->settings = *settings;
}

/* How long the teardown waits for one client to take its last reply. */
#define CONTROL_FLUSH_MS 1000

/*
 * Writes out what the client's output buffer holds, now, waiting at most
 * wait_ms (in steps of 50) for a client that does not read.
 */
static void
output_flush(struct control_client *c, int wait_ms)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct pollfd pfd = { .fd = bufferevent_getfd(c->bev),
	    .events = POLLOUT };
	int waited = 0;

	if (pfd.fd < 0)
		return;
	/* A socket bufferevent freezes the front of its output buffer;
	   thaw it for these synchronous writes. */
	evbuffer_unfreeze(out, 1);
	while (evbuffer_get_length(out) > 0) {
		int n = evbuffer_write(out, pfd.fd);

		if (n > 0)
			continue;
		if ((n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) || waited >= wait_ms)
			break;
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			break;
		waited += 50;
	}
	evbuffer_freeze(out, 1);
}

void
control_free(struct control **controlp)
{
	struct control *control = *controlp;

	if (control == NULL)
		return;
	while (control->clients != NULL) {
		struct control_client *c = control->clients;

		/* busy clients are freed too: their handler is done with
		   them by the time the daemon tears down */
		/* a reply made as the daemon stops (an import aborted by
		   SIGTERM) is still in the buffer: the loop has exited */
		if (c->bev != NULL && !c->gone)
			output_flush(c, CONTROL_FLUSH_MS);
		client_free(c);
	}
	evconnlistener_free(control->listener);
	unlink(control->path);
	free(control->path);
	free(control);
	*controlp = NULL;
}

struct control_client *
control_client_internal(control_internal_reply_fn *reply, void *arg)
{
	struct control_client *c = xcalloc(1, sizeof(*c));

	c->reply_fn = reply;
	c->reply_arg = arg;
	c->uid = (uid_t)-1;
	c->pid = (pid_t)-1;
	c->busy = true;
	return c;
}

void
control_reply(struct control_client *c, json_t *response)
{
	PG_ASSERT(c->busy);
	c->busy = false;
	if (c->reply_fn != NULL) {
		c->reply_fn(c->reply_arg, response);
		json_decref(response);
		free(c);
		return;
	}
	if (c->gone) {
		json_decref(response);
		client_free(c);
		return;
	}
	send_line(c, response);
	json_decref(response);
	if (!c->dispatching) {
		bufferevent_enable(c->bev, EV_READ);
		process_input(c);
	}
}

void
control_reply_error(struct control_client *c, const struct ctl_error *err)
{
	log_info("control client=%u event=error code=%s", c->id, err->code);
	control_reply(c, ctl_error_json(err));
}

void
control_client_flush(struct control_client *c)
{
	if (c->bev != NULL)	/* NULL: internal, replied already */
		output_flush(c, 0);
}

uid_t
control_client_uid(const struct control_client *c)
{
	return c->uid;
}

pid_t
control_client_pid(const struct control_client *c)
{
	return c->pid;
}

uint64_t
control_bad_requests(const struct control *control)
{
	return control->bad_requests;
}

unsigned int
control_client_count(const struct control *control)
{
	return control->client_count;
}
