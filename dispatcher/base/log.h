/*
 * log.h - one line per event, logfmt style, to stderr.
 *
 * Every event is a single line:
 *
 *   ts=2026-11-22T02:40:04.123Z level=info msg="applied" file=0001_x.sql
 *
 * The message is always quoted; the key=value part comes from a small
 * printf-like format in which every %s value is quoted and escaped when it
 * needs to be, so a server error message with spaces, quotes or newlines
 * can never break the one-event-one-line rule.  Events below the current
 * level are dropped before anything is formatted.
 *
 * The level and the output stream are process globals, set once at start
 * (before any thread exists); a line is written with a single fwrite, so
 * lines from several threads do not interleave.
 */
#ifndef PGPUSH_LOG_H
#define PGPUSH_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR
};

/* The longest line written; longer lines are cut and end in "...". */
#define LOG_LINE_MAX 4096

/*
 * Drop events below `level` from now on.  The default is LOG_LEVEL_INFO.
 */
void log_set_level(enum log_level level);

/*
 * The current level.
 */
enum log_level log_get_level(void);

/*
 * Write lines to `out` instead of stderr (NULL restores stderr).  The
 * stream stays owned by the caller, who must keep it open while it is set.
 * Meant for tests.
 */
void log_set_output(FILE *out);

/*
 * Parse "debug", "info", "warn" or "error" into *out.  Returns 0, or
 * -EINVAL (and leaves *out alone) for anything else.
 */
int log_parse_level(const char *name, enum log_level *out);

/*
 * The lower-case name of `level` ("info"); "unknown" when out of range.
 */
const char *log_level_name(enum log_level level);

/*
 * Log one event at `level`.  `msg` is the event's human message (quoted
 * and escaped in the output).  `kv_fmt` is "key=%s key2=%d ..." or NULL:
 * printf conversions d i u x c (with l, ll, z), f g e, p, and %% are
 * formatted as printf does; every %s is quoted when it holds a space, a
 * quote, '=', a control character or nothing at all, and a NULL %s
 * prints as null.  Field width and precision are honoured, '*' is not
 * supported.
 */
void log_emit(enum log_level level, const char *msg, const char *kv_fmt,
	      ...) __attribute__((format(printf, 3, 4)));

/*
 * log_emit with a va_list.
 */
void log_vemit(enum log_level level, const char *msg, const char *kv_fmt,
	       va_list ap) __attribute__((format(printf, 3, 0)));

/* Shorthands for log_emit at a fixed level. */
void log_debug(const char *msg, const char *kv_fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_info(const char *msg, const char *kv_fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_warn(const char *msg, const char *kv_fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_error(const char *msg, const char *kv_fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
