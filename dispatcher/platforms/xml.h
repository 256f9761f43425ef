/*
 * xml.h - a small XML writer for provider payloads (WNS toast, badge and
 * tile; MPNS toast and tile).
 *
 * Elements are opened and closed in order; attribute values and text are
 * escaped (&, <, >, " and ' become entities), valid UTF-8 passes through
 * unchanged, and what XML 1.0 cannot carry is repaired rather than sent:
 * a byte that is not part of valid UTF-8 (and an encoded surrogate or
 * U+FFFE/U+FFFF) becomes U+FFFD, and a control character other than tab,
 * newline and carriage return is dropped.  So any string a user put in a
 * payload gives well-formed XML.
 *
 * The document lives in a struct buf capped at XML_MAX_LEN, a cap no
 * valid push reaches: every provider refuses a body far smaller (WNS 5000
 * bytes, MPNS 3072) and a payload is at most 5120 bytes of JSON text
 * (push.payload_limit()), which escaping can make at most six times
 * longer, twice over for a tile.  A document past it makes xml_finish()
 * return NULL, which the builders turn into a FAILED push.
 *
 * Ownership: the caller owns the struct xml (on the stack is fine); its
 * buffer is freed by xml_finish() (which hands it over) or xml_free().
 * Misuse (closing more than was opened, nesting deeper than
 * XML_MAX_DEPTH) is a programming error and asserts.
 */
#ifndef PGPUSH_XML_H
#define PGPUSH_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define XML_MAX_DEPTH 16
#define XML_MAX_LEN (256 * 1024)

struct xml {
	struct buf b;
	int depth;
	bool in_tag;                       /* "<name attr=..." not yet ">" */
	const char *names[XML_MAX_DEPTH];  /* open elements (not copied:
					    * the caller's strings, which
					    * must outlive the element) */
};

/* Start an empty document. */
void xml_init(struct xml *x);

/* Append <?xml version="1.0" encoding="utf-8"?>. */
void xml_decl(struct xml *x);

/* Open element `name` (a literal name: not escaped). */
void xml_open(struct xml *x, const char *name);

/* Add an attribute to the element just opened (before any content). */
void xml_attr(struct xml *x, const char *name, const char *value);

/* Append escaped text to the current element. */
void xml_text(struct xml *x, const char *text);

/* Close the innermost open element ("/>" when it is empty). */
void xml_close(struct xml *x);

/* <name>text</name>; nothing when text is NULL. */
void xml_elem_text(struct xml *x, const char *name, const char *text);

/*
 * Close what is still open and return the document (malloc'd,
 * NUL-terminated; free()), its length in *len if `len` is not NULL; NULL
 * when it went past XML_MAX_LEN.  The struct is empty afterwards.
 */
char *xml_finish(struct xml *x, size_t *len);

/* Free the buffer without returning it. */
void xml_free(struct xml *x);

/*
 * Append `s` (n bytes) to `x` escaped, with the repairs described above.
 * Exposed for tests.
 */
void xml_escape(struct xml *x, const char *s, size_t n);

#endif
