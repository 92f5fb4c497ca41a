/*
 * log — one line per event: a session or account id, then key=value pairs.
 *
 *   log_info("imap session=%u event=login user=%s", id, user);
 *
 * Passwords never go through here. Bytes that came from a peer (a POP3
 * status line, an IMAP command) are passed through log_escape() first, which
 * escapes control and 8-bit bytes and truncates, so a hostile peer cannot
 * forge log lines or flood the log.
 *
 * The logger is process-wide state by necessity (syslog is); everything
 * else in popgate is passed explicitly.
 */
#ifndef POPGATE_LOG_H
#define POPGATE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_target {
	LOG_TARGET_STDERR = 0,
	LOG_TARGET_SYSLOG,
};

/* Longest line written; longer messages are truncated with "...". */
#define LOG_LINE_MAX 2048
/* Longest escaped rendering of peer bytes that log_escape() produces. */
#define LOG_PEER_TEXT_MAX 200

/* Default: stderr, level INFO, ident "popgate". ident is copied. */
void log_open(const char *ident, enum log_target target,
    enum log_level min_level);
void log_set_level(enum log_level min_level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *name);
void log_close(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/*
 * Renders len bytes of src into dst (dstsize > 0) for a log or an admin's
 * screen: printable ASCII except '"' and '\\' as is, the rest as \xHH;
 * truncated with "..." to fit dstsize and LOG_PEER_TEXT_MAX. Returns dst.
 */
char *log_escape(char *dst, size_t dstsize, const void *src, size_t len);

#endif
