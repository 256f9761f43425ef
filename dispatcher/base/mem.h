/*
 * mem.h - allocation that never returns NULL.
 *
 * pgpushd does not try to run on after malloc fails: every allocation goes
 * through these wrappers, which print one line and abort() on failure, so
 * callers never check for NULL.  Memory comes from malloc and is released
 * with plain free().
 */
#ifndef PGPUSH_MEM_H
#define PGPUSH_MEM_H

#include <stddef.h>

/*
 * malloc(n), never NULL (n == 0 allocates one byte).  Free with free().
 */
void *mem_alloc(size_t n);

/*
 * calloc(count, size), never NULL; aborts on overflow of count * size.
 */
void *mem_alloc_zero(size_t count, size_t size);

/*
 * realloc(p, n), never NULL; `p` is invalid after this call.
 */
void *mem_realloc(void *p, size_t n);

/*
 * A malloc'd copy of the string `s`, never NULL.  Free with free().
 */
char *mem_strdup(const char *s);

/*
 * A malloc'd copy of the first `n` bytes of `s`, NUL-terminated.
 */
char *mem_strndup(const char *s, size_t n);

/*
 * A malloc'd string formatted as by printf(), never NULL.
 */
char *mem_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
