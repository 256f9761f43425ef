/*
 * buf.c - the capped growable buffer (buf.h).
 */
#include "base/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max;
}

/* Room for `n` more bytes and the NUL, or -ENOSPC past the cap. */
static int reserve(struct buf *b, size_t n)
{
	if (b->full)
		return -ENOSPC;
	if (n > SIZE_MAX / 2 - b->len ||
	    (b->max != BUF_NO_CAP && n > b->max - b->len)) {
		b->full = true;
		return -ENOSPC;
	}
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = mem_realloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int buf_add(struct buf *b, const void *data, size_t n)
{
	int rc = reserve(b, n);

	if (rc < 0)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	if (b->full)
		return -ENOSPC;
	/* Try in the room there is; grow once if it was not enough. */
	size_t room = b->cap > b->len ? b->cap - b->len : 0;
	va_copy(again, ap);
	n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
	if (n < 0) {
		va_end(again);
		return -EINVAL;
	}
	if ((size_t)n >= room) {
		int rc = reserve(b, (size_t)n);
		if (rc < 0) {
			if (b->data != NULL)
				b->data[b->len] = '\0';
			va_end(again);
			return rc;
		}
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
	} else if (b->max != BUF_NO_CAP && (size_t)n > b->max - b->len) {
		b->data[b->len] = '\0';
		b->full = true;
		va_end(again);
		return -ENOSPC;
	}
	va_end(again);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void buf_truncate(struct buf *b, size_t len)
{
	if (len >= b->len)
		return;
	b->len = len;
	b->data[len] = '\0';
}

const char *buf_str(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

bool buf_full(const struct buf *b)
{
	return b->full;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->full = false;
	if (b->data != NULL)
		b->data[0] = '\0';
}

char *buf_take(struct buf *b)
{
	char *s = b->data != NULL ? b->data : mem_strdup("");

	b->data = NULL;
	b->len = b->cap = 0;
	b->full = false;
	return s;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->full = false;
}

void buf_wipe_free(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}
