#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <sys/time.h>

static struct {
	enum log_target target;
	enum log_level min_level;
	char ident[32];
} logger = { LOG_TARGET_STDERR, LOG_LEVEL_INFO, "popgate" };

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void
log_open(const char *ident, enum log_target target, enum log_level min_level)
{
	snprintf(logger.ident, sizeof(logger.ident), "%s", ident);
	logger.target = target;
	logger.min_level = min_level;
	if (target == LOG_TARGET_SYSLOG)
		openlog(logger.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level min_level)
{
	logger.min_level = min_level;
}

enum log_level
log_get_level(void)
{
	return logger.min_level;
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
	if (logger.target == LOG_TARGET_SYSLOG)
		closelog();
	logger.target = LOG_TARGET_STDERR;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int n;

	if (level > logger.min_level)
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n >= (int)sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	if (logger.target == LOG_TARGET_SYSLOG) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
			LOG_DEBUG };
		syslog(prio[level], "%s", line);
	} else {
		struct timeval tv;
		struct tm tm;
		char ts[32];

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s %s: %s\n", ts,
		    (long)(tv.tv_usec / 1000), logger.ident,
		    level_names[level], line);
	}
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

char *
log_escape(char *dst, size_t dstsize, const void *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t cap = dstsize - 1, o = 0;

	if (cap > LOG_PEER_TEXT_MAX)
		cap = LOG_PEER_TEXT_MAX;
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
	dst[o] = '\0';
	return dst;
}
