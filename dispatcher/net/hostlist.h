/*
 * hostlist.h - host allow-lists for URLs that come from device rows (WNS
 * and MPNS channel URLs, later Web Push endpoints): a request is only
 * made when the URL's host matches one of the credential's patterns, so
 * a device row can never point the dispatcher into the private network.
 *
 * Patterns (case-insensitive; a trailing dot is ignored):
 *   "cloud.notify.windows.com"  that host only
 *   "*.notify.windows.com"      any host below notify.windows.com (at
 *                               least one more label), not the bare name
 *   "127.0.0.1:8443"            that host on that port only (without a
 *                               port a pattern allows any port)
 * IPv6 literals are written in brackets ("[::1]").
 *
 * URLs are parsed with libcurl's own parser (curl_url), so the host
 * checked is exactly the host libcurl would connect to.  Only https URLs
 * without user info pass.
 *
 * Ownership: the caller owns the struct hostlist (hostlist_free()).
 */
#ifndef PGPUSH_HOSTLIST_H
#define PGPUSH_HOSTLIST_H

#include <stdbool.h>
#include <stddef.h>

struct hostlist;

/* An empty list (it allows nothing). */
struct hostlist *hostlist_new(void);

/* Free it; NULL is a no-op. */
void hostlist_free(struct hostlist *hl);

/*
 * Add one pattern.  Returns 0, or -EINVAL with a reason in `err` for a
 * malformed pattern (empty, a '*' anywhere but a leading "*.", a bad
 * port, characters no host name has).
 */
int hostlist_add(struct hostlist *hl, const char *pattern, char *err,
		 size_t errlen);

/* Patterns added so far. */
size_t hostlist_count(const struct hostlist *hl);

/*
 * Add the patterns of a credential's `channel_hosts` JSON value: an array
 * of strings, or `def` (one pattern) when `hosts` is NULL or JSON null.
 * 0, or -EINVAL with a reason in err (not an array, a non-string, or a
 * pattern hostlist_add() refuses).
 */
struct json_object;
int hostlist_add_json(struct hostlist *hl, struct json_object *hosts,
		      const char *def, char *err, size_t errlen);

/*
 * Does host (with port, 0 for the scheme's default) match a pattern?
 * `host` is as libcurl gives it (IPv6 in brackets).
 */
bool hostlist_match(const struct hostlist *hl, const char *host, int port);

/*
 * Check a URL: an https URL without user info whose host matches.
 * Returns 0, or -EPERM (host not allowed) / -EINVAL (not such a URL)
 * with a reason in `err` naming the host (never the whole URL, whose
 * query holds the channel's secret token).
 */
int hostlist_check_url(const struct hostlist *hl, const char *url,
		       char *err, size_t errlen);

/*
 * The URL to request for `url` when every request goes to `origin`
 * (a credential's endpoint override, "https://host[:port]"): origin's
 * scheme, host and port with url's path and query.  With origin NULL, a
 * copy of url.  Returns a malloc'd string, or NULL if either does not
 * parse.
 */
char *hostlist_rebase_url(const char *url, const char *origin);

#endif
