/* log — see log.h. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
	enum log_target target;
	_Atomic int min_level;
	char ident[32];
	char syslog_path[108];
	int syslog_fd;		/* -1: not connected */
	pthread_mutex_t lock;	/* syslog_fd */
} logger = {
	LOG_TARGET_STDERR, LOG_LEVEL_INFO, "popgate", LOG_SYSLOG_DEFAULT, -1,
	PTHREAD_MUTEX_INITIALIZER
};

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static void
syslog_disconnect(void)
{
	if (logger.syslog_fd >= 0)
		close(logger.syslog_fd);
	logger.syslog_fd = -1;
}

/* With logger.lock held. */
static int
syslog_connect(void)
{
	struct sockaddr_un sun;
	int fd;

	syslog_disconnect();
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, logger.syslog_path, strlen(logger.syslog_path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	logger.syslog_fd = fd;
	return 0;
}

void
log_open(const char *ident, enum log_target target, enum log_level min_level)
{
	if (target == LOG_TARGET_SYSLOG) {
		log_open_syslog(ident, NULL, min_level);
		return;
	}
	pthread_mutex_lock(&logger.lock);
	syslog_disconnect();
	snprintf(logger.ident, sizeof(logger.ident), "%s", ident);
	logger.target = target;
	atomic_store(&logger.min_level, (int)min_level);
	pthread_mutex_unlock(&logger.lock);
}

void
log_open_syslog(const char *ident, const char *syslog_socket,
    enum log_level min_level)
{
	pthread_mutex_lock(&logger.lock);
	snprintf(logger.ident, sizeof(logger.ident), "%s", ident);
	snprintf(logger.syslog_path, sizeof(logger.syslog_path), "%s",
	    syslog_socket != NULL ? syslog_socket : LOG_SYSLOG_DEFAULT);
	logger.target = LOG_TARGET_SYSLOG;
	atomic_store(&logger.min_level, (int)min_level);
	(void)syslog_connect();
	pthread_mutex_unlock(&logger.lock);
}

void
log_set_level(enum log_level min_level)
{
	atomic_store(&logger.min_level, (int)min_level);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load(&logger.min_level);
}

int
log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
log_close(void)
{
	pthread_mutex_lock(&logger.lock);
	syslog_disconnect();
	logger.target = LOG_TARGET_STDERR;
	pthread_mutex_unlock(&logger.lock);
}

/* "imap session=3 ..." -> "component=imap session=3 ...": the leading
   word of a message names the component. Returns the bytes written. */
static size_t
render_fields(char *out, size_t size, const char *msg)
{
	size_t word = strcspn(msg, " =");
	int n;

	if (word > 0 && msg[word] != '=')
		n = snprintf(out, size, "component=%.*s%s", (int)word, msg,
		    msg + word);
	else
		n = snprintf(out, size, "%s", msg);
	if (n < 0)
		return 0;
	if ((size_t)n >= size) {
		memcpy(out + size - 4, "...", 4);
		return size - 1;
	}
	return (size_t)n;
}

static void
write_stderr(enum log_level level, const char *fields)
{
	struct timeval tv;
	struct tm tm;
	char ts[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* one call: stdio's lock keeps lines of threads apart */
	fprintf(stderr, "ts=%s.%03ldZ level=%s %s\n", ts,
	    (long)(tv.tv_usec / 1000), level_names[level], fields);
}

static void
write_syslog(enum log_level level, const char *fields)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
		LOG_DEBUG };
	char dgram[LOG_LINE_MAX + 128], ts[32];
	time_t now = time(NULL);
	struct tm tm;
	bool sent = false;
	int n;

	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%b %e %H:%M:%S", &tm);
	n = snprintf(dgram, sizeof(dgram), "<%d>%s %s[%d]: %s",
	    LOG_MAIL | prio[level], ts, logger.ident, (int)getpid(), fields);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(dgram))
		n = (int)sizeof(dgram) - 1;
	pthread_mutex_lock(&logger.lock);
	/* a restarted syslog daemon gets a new socket: reconnect once */
	for (int attempt = 0; attempt < 2 && !sent; attempt++) {
		if (logger.syslog_fd < 0 && syslog_connect() < 0)
			break;
		if (send(logger.syslog_fd, dgram, (size_t)n, MSG_NOSIGNAL) ==
		    n)
			sent = true;
		else if (errno != EINTR)
			syslog_disconnect();
	}
	pthread_mutex_unlock(&logger.lock);
	if (!sent)
		write_stderr(level, fields);
}

static void
emit(enum log_level level, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX], fields[LOG_LINE_MAX + 16];
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n >= (int)sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	render_fields(fields, sizeof(fields), msg);
	if (logger.target == LOG_TARGET_SYSLOG)
		write_syslog(level, fields);
	else
		write_stderr(level, fields);
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if ((int)level > atomic_load(&logger.min_level))
		return;
	emit(level, fmt, ap);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void
log_trace(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

/* Renders len bytes of s into dst: printable ASCII but '"' and '\\' as is,
   the rest as \xHH; at most cap bytes, ending in "..." when cut. Returns
   the bytes written (no NUL). */
static size_t
escape_to(char *dst, size_t cap, const unsigned char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
		    ? 1 : 4;

		/* keep room for "..." when more input follows */
		if (o + need > cap || (i + 1 < len && o + need + 3 > cap)) {
			size_t dots = cap - o < 3 ? cap - o : 3;

			memcpy(dst + o, "...", dots);
			o += dots;
			break;
		}
		if (need == 1) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	return o;
}

char *
log_escape(char *dst, size_t dstsize, const void *src, size_t len)
{
	size_t cap = dstsize - 1;

	if (cap > LOG_PEER_TEXT_MAX)
		cap = LOG_PEER_TEXT_MAX;
	dst[escape_to(dst, cap, src, len)] = '\0';
	return dst;
}

char *
log_quote(char *dst, size_t dstsize, const char *s)
{
	size_t len = strlen(s), o;
	bool bare = len > 0 && len < dstsize;

	for (size_t i = 0; i < len && bare; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' ||
		    c == '=')
			bare = false;
	}
	if (bare) {
		memcpy(dst, s, len + 1);
		return dst;
	}
	if (dstsize < 6) {
		dst[0] = '\0';
		return dst;
	}
	/* the quotes and the NUL take three bytes */
	o = 1 + escape_to(dst + 1, dstsize - 3, (const unsigned char *)s,
	    len);
	dst[0] = '"';
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}
