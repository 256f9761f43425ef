/*
 * hdrcheck.h - whether a value taken from a row (a push, a device, a
 * credential) may go into an HTTP header or a URL as it is.
 *
 * A value with a CR or LF in a header would become a header of its own at
 * the provider (header injection); a '/' or '?' in a path segment would
 * address another resource.  The enqueue trigger rejects such values at
 * insert (push.push_problem(), push.token_problem()); the senders check
 * again with these functions right before they build a request, so a row
 * that reached the queue another way fails with a reason and is never
 * sent.  Pure functions: no allocation, no state.
 */
#ifndef PGPUSH_HDRCHECK_H
#define PGPUSH_HDRCHECK_H

#include <stdbool.h>

/*
 * True if `v` can be sent as an HTTP header field value: no control
 * character (0x00-0x1f, 0x7f; a tab neither), and no space at the start
 * or the end (HTTP/2 refuses those).  Bytes from 0x80 up (UTF-8) pass.
 * "" is true; NULL is false.
 */
bool hdrcheck_value_ok(const char *v);

/*
 * True if `s` is one URL path segment: at least one character, each an
 * RFC 3986 unreserved character, sub-delimiter, ':' or '@' or a
 * %-escape of two hex digits, and not "." or "..".  NULL is false.
 */
bool hdrcheck_segment_ok(const char *s);

/*
 * True if `u` is an https URL made of visible ASCII only (0x21-0x7e: no
 * space, no control character, no raw UTF-8), starting "https://" in any
 * case.  The URL's host and form are checked elsewhere (hostlist.h).
 * NULL is false.
 */
bool hdrcheck_url_ok(const char *u);

/* The reason a push fails with when its channel URL is not. */
#define HDRCHECK_URL_REASON "channel URL is not an https URL of visible " \
	"ASCII characters (a space, control character or raw UTF-8)"

#endif
