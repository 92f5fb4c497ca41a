/*
 * control — the control socket: a UNIX stream socket speaking one JSON
 * request per line (control-proto.h), served on the daemon's event loop.
 *
 * Creation (control_socket_open) is separate from serving so the daemon
 * can create the socket while still root and serve it after dropping
 * privileges. The socket has its final mode from the first instant (the
 * umask is set around bind()); a symlink, a regular file or anything else
 * that is not a socket at the path makes it refuse, as does a socket a
 * live daemon answers on; a stale socket (nobody answers) is replaced.
 *
 * Each connection's peer credentials (SO_PEERCRED) are checked when it is
 * accepted: root, the daemon's own uid, and, when a group is configured,
 * members of that group are served; anyone else gets one error line and
 * the connection is closed.
 *
 * A client sends one request at a time; the next line is read once the
 * handler has replied (control_reply). A line longer than the configured
 * maximum gets a request-too-long error and the connection is closed.
 */
#ifndef POPGATE_GATEWAY_CONTROL_H
#define POPGATE_GATEWAY_CONTROL_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gateway/control-proto.h"

/* Seconds a client may stay silent between requests. */
#define CONTROL_IDLE_TIMEOUT 300

struct control;
struct control_client;

struct control_settings {
	size_t request_max;	/* bytes per request line */
	unsigned int max_clients;
	gid_t group;		/* (gid_t)-1: no group */
};

/*
 * Called for every valid request. The handler must eventually call
 * control_reply() exactly once for this client (now or later, from the
 * event loop); req is borrowed for the duration of the call.
 */
typedef void control_handler_fn(void *ctx, struct control_client *client,
    const struct ctl_command *cmd, json_t *req);

/*
 * Creates, binds and listens on path with mode (group gid unless -1).
 * On success *fd_r is a non-blocking, close-on-exec listening socket.
 * On failure writes the reason into errbuf.
 */
int control_socket_open(const char *path, mode_t mode, gid_t gid, int *fd_r,
    char *errbuf, size_t errsize);

/*
 * Whether members of group gid can reach the socket at path through its
 * directory (search permission for them, or for everyone). false with a
 * reason in why ("/run/popgate is root:root 0750") when they cannot —
 * as with a systemd RuntimeDirectory made root's without a chgrp.
 */
bool control_socket_dir_reachable(const char *path, gid_t gid, char *why,
    size_t whysize);

/* Serves fd (takes ownership). path is removed by control_free(). */
struct control *control_new(struct event_base *base, int fd,
    const char *path, const struct control_settings *settings,
    control_handler_fn *handler, void *ctx);
/* The worker pool for the group look-up of a connecting peer (NSS may
 * block). NULL (the default): done on the loop. Borrowed. */
struct workq;
void control_set_workq(struct control *control, struct workq *workq);
/* Applies new limits (reload); existing clients keep their connection. */
void control_set_settings(struct control *control,
    const struct control_settings *settings);
/* Closes every client and the socket, unlinks the path. Accepts NULL. */
void control_free(struct control **controlp);

/*
 * An in-process client (the web page, gateway/web.h): its request goes to
 * the same handler as the socket's, and control_reply() hands the
 * response to reply(arg, response) (borrowed during the call) instead of
 * a socket, then frees the client. Made busy: pass it to the handler
 * (commands_handle) at once; the reply may come later, on the loop.
 */
typedef void control_internal_reply_fn(void *arg, json_t *response);
struct control_client *control_client_internal(
    control_internal_reply_fn *reply, void *arg);

/* Sends response (a reference is taken over) and reads the next request.
 * If the client has gone meanwhile, the response is dropped. */
void control_reply(struct control_client *client, json_t *response);
/* Sends an error response built from err. */
void control_reply_error(struct control_client *client,
    const struct ctl_error *err);
/* Writes pending output to the socket now, before a shutdown. */
void control_client_flush(struct control_client *client);
/* Credentials of the peer, for logs. */
uid_t control_client_uid(const struct control_client *client);
pid_t control_client_pid(const struct control_client *client);

unsigned int control_client_count(const struct control *control);
/* Requests refused before reaching a handler (syntax, limits). */
uint64_t control_bad_requests(const struct control *control);

#endif
