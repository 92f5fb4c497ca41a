/*
 * evread — reading a streaming peer in fewer, larger reads than
 * libevent 2.1 makes.
 *
 * libevent 2.1's evbuffer_read() reads at most 4,096 bytes a call (2.2
 * has evbuffer_set_max_read() to change that), and a socket bufferevent
 * makes one call per readiness event: a peer that streams (a POP3 RETR
 * answer, an IMAP APPEND literal) costs the loop an epoll_wait, an ioctl
 * and a readv for every 4 KB. evread_more() reads what the socket holds
 * beyond that, up to a limit, straight into the bufferevent's input
 * buffer, so that one read callback takes a large chunk in few calls.
 *
 *   static void read_cb(struct bufferevent *bev, void *arg) {
 *       if (want_more)
 *           evread_more(bev, MY_READ_MAX);
 *       ... parse evbuffer input as before ...
 *   }
 *
 * Only for a plain socket bufferevent (not OpenSSL, not a filter: their
 * socket belongs to TLS); anything else is left alone. Never blocks. End
 * of stream and errors are left for libevent's own next read, which
 * reports them as usual. Loop thread (the bufferevent's owner).
 */
#ifndef POPGATE_EVREAD_H
#define POPGATE_EVREAD_H

#include <stddef.h>

#include <event2/bufferevent.h>

/* Reads up to max more bytes from bev's socket into its input buffer;
 * returns how many it added (0: nothing waiting, end of stream, error,
 * or not a plain socket bufferevent). */
size_t evread_more(struct bufferevent *bev, size_t max);

#endif
