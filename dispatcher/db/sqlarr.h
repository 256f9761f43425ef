/*
 * sqlarr.h - PostgreSQL array literals ("{1,2,NULL}", "{\"a b\",\"c\"}")
 * built in a struct buf, so a batch of rows can travel as a few text
 * parameters of one set-based statement (unnest($1::bigint[], ...)).
 *
 * Every element is written quoted (except NULL), with " and \ escaped, so
 * any string is safe.  The buffer is owned by the struct; reuse it with
 * sqlarr_reset() and release it with sqlarr_free().
 */
#ifndef PGPUSH_SQLARR_H
#define PGPUSH_SQLARR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct sqlarr {
	struct buf text;  /* "{" and the elements so far (no cap: sqlarr.c) */
	size_t count;     /* elements added */
	bool closed;      /* text ends with the "}" of sqlarr_text() */
};

/* Start an empty array; the struct may be zeroed memory. */
void sqlarr_reset(struct sqlarr *a);

/* Append an element. */
void sqlarr_add_int(struct sqlarr *a, int64_t v);
void sqlarr_add_double(struct sqlarr *a, double v);
/* v / 1000 exactly, with three decimals: 1234567 -> 1234.567 */
void sqlarr_add_milli(struct sqlarr *a, int64_t v);
void sqlarr_add_str(struct sqlarr *a, const char *s);   /* NULL: NULL */
void sqlarr_add_null(struct sqlarr *a);

/*
 * The literal so far, closed ("{...}"); valid until the next call on `a`.
 */
const char *sqlarr_text(struct sqlarr *a);

/* Free the buffer; the struct can be reset and used again. */
void sqlarr_free(struct sqlarr *a);

#endif
