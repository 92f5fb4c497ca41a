/*
 * log — one line per event, every field key=value (logfmt):
 *
 *   log_info("imap session=%u event=login user=%s", id,
 *       log_quote(q, sizeof(q), user));
 *
 * comes out on stderr as
 *
 *   ts=2024-05-01T10:00:00.123Z level=info component=imap session=3 event=login user=alice
 *
 * and through syslog (facility mail) as "component=imap session=3 ...".
 * The first word of a message, when it has no '=', names the component
 * ("imap", "pop3", "control" ...). Values that may hold a space, a quote,
 * a backslash, an '=' or anything outside printable ASCII — user names,
 * paths, error texts — go through log_quote() (or log_escape() inside
 * "..."), so every line splits into fields the same way; a hostile peer
 * can neither forge a line nor a field.
 *
 * Passwords never go through here. Bytes that came from a peer (a POP3
 * status line, an IMAP command) are passed through log_escape() first,
 * which escapes control and 8-bit bytes and truncates, so a hostile peer
 * cannot forge log lines or flood the log.
 *
 * Threads: every function may be called from any thread once log_open()
 * has returned (the loop and the workers log alike); a line is written
 * with one write, so lines never interleave. log_open and log_close are
 * for the main thread.
 *
 * The logger is process-wide state by necessity (syslog is); everything
 * else in popgate is passed explicitly.
 */
#ifndef POPGATE_LOG_H
#define POPGATE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
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
/* The syslog socket when none is configured. */
#define LOG_SYSLOG_DEFAULT "/dev/log"
/* A log_quote() buffer for a value from a peer: long enough for any
   sensible name, short enough that a peer cannot flood the log. */
#define LOG_QUOTE_MAX (LOG_PEER_TEXT_MAX + 3)

/*
 * Default: stderr, level INFO, ident "popgate". ident is copied. For
 * LOG_TARGET_SYSLOG, lines are sent as RFC 3164 datagrams (facility mail)
 * to syslog_socket (NULL: LOG_SYSLOG_DEFAULT); while it cannot be reached
 * they go to stderr instead, so nothing is lost silently.
 */
void log_open(const char *ident, enum log_target target,
    enum log_level min_level);
void log_open_syslog(const char *ident, const char *syslog_socket,
    enum log_level min_level);
void log_set_level(enum log_level min_level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *name);
void log_close(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);
/* A line an admin asked for (a protocol trace): written at level info
   whatever the configured level. */
void log_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/*
 * Renders len bytes of src into dst (dstsize > 0) for a log or an admin's
 * screen: printable ASCII except '"' and '\\' as is, the rest as \xHH;
 * truncated with "..." to fit dstsize and LOG_PEER_TEXT_MAX. Returns dst.
 * Put the result inside "..." in a log line.
 */
char *log_escape(char *dst, size_t dstsize, const void *src, size_t len);

/*
 * A log field's value: s itself when it is a non-empty run of printable
 * ASCII without space, '"', '\\' or '=' that fits; otherwise s in double
 * quotes with '"', '\\', control and 8-bit bytes as \xHH, truncated with
 * "..." to fit dstsize (>= 6). Returns dst.
 */
char *log_quote(char *dst, size_t dstsize, const char *s);

#endif
