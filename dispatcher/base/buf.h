/*
 * buf.h - the one growable byte buffer: a hard cap, one error on overflow.
 *
 * Every place that builds text or collects bytes of unknown length (an
 * HTTP answer's body, a JSON or XML document, a metrics page, a SQL array
 * literal) uses a struct buf instead of its own char pointer, length and
 * capacity.  The buffer is always NUL-terminated once anything was added,
 * so buf_str() can be handed to C string functions.
 *
 * The cap bounds what a hostile or broken peer can make us allocate: an
 * append that would take the length past `max` appends nothing, marks the
 * buffer full and returns -ENOSPC; every later append fails the same way,
 * so a builder may append freely and check once at the end (buf_full()).
 * The bytes already there stay valid.  Running out of memory aborts the
 * process (mem.h), as everywhere in pgpush.
 *
 * Ownership: the buffer owns its memory until buf_take() hands it over or
 * buf_free() releases it.  A zeroed struct buf is an empty buffer with no
 * cap (BUF_NO_CAP); buf_init() sets one.
 */
#ifndef PGPUSH_BUF_H
#define PGPUSH_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define BUF_NO_CAP ((size_t)0)  /* `max` 0: only memory limits it */

struct buf {
	char *data;     /* NULL until the first append */
	size_t len;     /* bytes in use, not counting the NUL */
	size_t cap;     /* bytes allocated */
	size_t max;     /* most `len` may become; BUF_NO_CAP: no limit */
	bool full;      /* an append went past `max` */
};

/* An empty buffer that never holds more than `max` bytes (BUF_NO_CAP). */
void buf_init(struct buf *b, size_t max);

/* Append `n` bytes.  0, or -ENOSPC when over the cap (nothing appended). */
int buf_add(struct buf *b, const void *data, size_t n);

/* Append a C string / one byte. */
int buf_addstr(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);

/* Append printf-formatted text.  0, -ENOSPC, or -EINVAL (bad format). */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* buf_printf() with a va_list (the caller's va_start/va_end). */
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Shorten the contents to `len` bytes (no-op when already shorter). */
void buf_truncate(struct buf *b, size_t len);

/* The contents as a C string ("" when empty); valid until the next append. */
const char *buf_str(const struct buf *b);

/* Whether an append went past the cap since the last buf_reset(). */
bool buf_full(const struct buf *b);

/* Empty the buffer, keeping its memory and cap; clears `full`. */
void buf_reset(struct buf *b);

/*
 * Hand the contents over as a malloc'd C string (never NULL: an empty
 * buffer gives "") and leave the buffer empty, cap kept.
 */
char *buf_take(struct buf *b);

/* Release the memory (wiping it first with buf_wipe_free()); empty after. */
void buf_free(struct buf *b);
void buf_wipe_free(struct buf *b);

#endif
