/*
 * log.c - one line per event, logfmt style (see log.h).
 *
 * A line is built in a fixed buffer (struct line) and written with one
 * fwrite.  The buffer has a cap: text past LOG_LINE_MAX is dropped and the
 * line ends in "...", so a huge server message costs a truncated line, not
 * an allocation.  The key=value format is walked here rather than handed to
 * vsnprintf because %s values must be quoted individually; every other
 * conversion is passed to snprintf one at a time with its own argument.
 */
#include "base/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static enum log_level log_level_now = LOG_LEVEL_INFO;
static FILE *log_out;

static const char *const level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
};

/* A capped line under construction; `len` never exceeds the cap. */
struct line {
	char buf[LOG_LINE_MAX + 1];
	size_t len;
	int cut;
};

void log_set_level(enum log_level level)
{
	log_level_now = level;
}

enum log_level log_get_level(void)
{
	return log_level_now;
}

void log_set_output(FILE *out)
{
	log_out = out;
}

int log_parse_level(const char *name, enum log_level *out)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "unknown";
	return level_names[level];
}

static void line_put(struct line *l, const char *s, size_t n)
{
	size_t room = LOG_LINE_MAX - l->len;

	if (n > room) {
		n = room;
		l->cut = 1;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void line_puts(struct line *l, const char *s)
{
	line_put(l, s, strlen(s));
}

static void line_putc(struct line *l, char c)
{
	line_put(l, &c, 1);
}

static int needs_quotes(const char *s)
{
	if (*s == '\0')
		return 1;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			return 1;
	}
	return 0;
}

/* Append `s` quoted, with \" \\ \n \r \t and \xNN for other controls. */
static void line_put_quoted(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	line_putc(l, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };

		if (c == '"' || c == '\\') {
			line_putc(l, '\\');
			line_putc(l, (char)c);
		} else if (c == '\n') {
			line_puts(l, "\\n");
		} else if (c == '\r') {
			line_puts(l, "\\r");
		} else if (c == '\t') {
			line_puts(l, "\\t");
		} else if (c < ' ' || c == 0x7f) {
			line_put(l, esc, sizeof(esc));
		} else {
			line_putc(l, (char)c);
		}
	}
	line_putc(l, '"');
}

static void line_put_value(struct line *l, const char *s)
{
	if (s == NULL)
		line_puts(l, "null");
	else if (needs_quotes(s))
		line_put_quoted(l, s);
	else
		line_puts(l, s);
}

/*
 * Format one non-%s conversion `spec` (e.g. "%-5lld") with the next
 * argument of `ap`, whose type follows from the length modifier `len`
 * ("", "l", "ll", "z") and the conversion character `conv`.
 */
static void line_put_conv(struct line *l, const char *spec, const char *len,
			  char conv, va_list *ap)
{
	char out[128];
	int n = -1;

	switch (conv) {
	case 'd':
	case 'i':
	case 'c':
		if (strcmp(len, "l") == 0)
			n = snprintf(out, sizeof(out), spec, va_arg(*ap, long));
		else if (strcmp(len, "ll") == 0)
			n = snprintf(out, sizeof(out), spec,
				     va_arg(*ap, long long));
		else if (strcmp(len, "z") == 0)
			n = snprintf(out, sizeof(out), spec,
				     va_arg(*ap, ptrdiff_t));
		else
			n = snprintf(out, sizeof(out), spec, va_arg(*ap, int));
		break;
	case 'u':
	case 'x':
	case 'X':
		if (strcmp(len, "l") == 0)
			n = snprintf(out, sizeof(out), spec,
				     va_arg(*ap, unsigned long));
		else if (strcmp(len, "ll") == 0)
			n = snprintf(out, sizeof(out), spec,
				     va_arg(*ap, unsigned long long));
		else if (strcmp(len, "z") == 0)
			n = snprintf(out, sizeof(out), spec,
				     va_arg(*ap, size_t));
		else
			n = snprintf(out, sizeof(out), spec,
				     va_arg(*ap, unsigned));
		break;
	case 'f':
	case 'g':
	case 'e':
		n = snprintf(out, sizeof(out), spec, va_arg(*ap, double));
		break;
	case 'p':
		n = snprintf(out, sizeof(out), spec, va_arg(*ap, void *));
		break;
	default:
		break;
	}
	if (n < 0) {
		line_puts(l, "?");
		return;
	}
	if ((size_t)n >= sizeof(out))
		n = (int)sizeof(out) - 1;
	line_put(l, out, (size_t)n);
}

/* Walk `fmt`, copying literal text and formatting each conversion. */
static void line_put_kv(struct line *l, const char *fmt, va_list *ap)
{
	while (*fmt) {
		const char *start = fmt;
		char spec[32], len[3] = "";
		size_t n, k = 0;

		if (*fmt != '%') {
			n = strcspn(fmt, "%");
			line_put(l, fmt, n);
			fmt += n;
			continue;
		}
		fmt++;
		if (*fmt == '%') {
			line_putc(l, '%');
			fmt++;
			continue;
		}
		fmt += strspn(fmt, "-+ #0");
		fmt += strspn(fmt, "0123456789");
		if (*fmt == '.') {
			fmt++;
			fmt += strspn(fmt, "0123456789");
		}
		while ((*fmt == 'l' || *fmt == 'z') && k < 2)
			len[k++] = *fmt++;
		len[k] = '\0';
		if (*fmt == '\0')
			break;
		if (*fmt == 's') {
			line_put_value(l, va_arg(*ap, const char *));
			fmt++;
			continue;
		}
		n = (size_t)(fmt - start) + 1;
		if (n >= sizeof(spec)) {
			line_puts(l, "?");
			return;
		}
		memcpy(spec, start, n);
		spec[n] = '\0';
		line_put_conv(l, spec, len, *fmt, ap);
		fmt++;
	}
}

static void line_put_time(struct line *l)
{
	struct timespec ts;
	struct tm tm;
	char out[40];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, sizeof(out) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	line_puts(l, out);
}

void log_vemit(enum log_level level, const char *msg, const char *kv_fmt,
	       va_list ap)
{
	struct line l;
	va_list aq;

	if (level < log_level_now)
		return;
	l.len = 0;
	l.cut = 0;
	line_puts(&l, "ts=");
	line_put_time(&l);
	line_puts(&l, " level=");
	line_puts(&l, log_level_name(level));
	line_puts(&l, " msg=");
	line_put_quoted(&l, msg ? msg : "");
	if (kv_fmt && *kv_fmt) {
		line_putc(&l, ' ');
		va_copy(aq, ap);
		line_put_kv(&l, kv_fmt, &aq);
		va_end(aq);
	}
	if (l.cut) {
		/* The cap leaves room for the marker: overwrite the tail. */
		l.len = LOG_LINE_MAX - 3;
		line_puts(&l, "...");
	}
	l.buf[l.len++] = '\n';
	fwrite(l.buf, 1, l.len, log_out ? log_out : stderr);
	fflush(log_out ? log_out : stderr);
}

void log_emit(enum log_level level, const char *msg, const char *kv_fmt, ...)
{
	va_list ap;

	va_start(ap, kv_fmt);
	log_vemit(level, msg, kv_fmt, ap);
	va_end(ap);
}

void log_debug(const char *msg, const char *kv_fmt, ...)
{
	va_list ap;

	va_start(ap, kv_fmt);
	log_vemit(LOG_LEVEL_DEBUG, msg, kv_fmt, ap);
	va_end(ap);
}

void log_info(const char *msg, const char *kv_fmt, ...)
{
	va_list ap;

	va_start(ap, kv_fmt);
	log_vemit(LOG_LEVEL_INFO, msg, kv_fmt, ap);
	va_end(ap);
}

void log_warn(const char *msg, const char *kv_fmt, ...)
{
	va_list ap;

	va_start(ap, kv_fmt);
	log_vemit(LOG_LEVEL_WARN, msg, kv_fmt, ap);
	va_end(ap);
}

void log_error(const char *msg, const char *kv_fmt, ...)
{
	va_list ap;

	va_start(ap, kv_fmt);
	log_vemit(LOG_LEVEL_ERROR, msg, kv_fmt, ap);
	va_end(ap);
}
