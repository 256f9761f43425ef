/*
 * h2.h - a small HTTP/2 client of our own (nghttp2 over OpenSSL on the
 * libuv loop), for the hot path: many small POSTs to one HTTPS host that
 * speaks HTTP/2 (FCM).  Private to the HTTP bridge (http_h2glue.c), which
 * routes a request here when the request asks for it (http_request.
 * h2_direct) and the bridge allows it (http_opts.h2_direct); callers only
 * ever see http.h.
 *
 * Why not libcurl for these: libcurl 8 spends, per request, a URL parse,
 * a new connection struct before its pool lookup, one send() and one TLS
 * record, a poll() after every read and an HTTP/1-text-to-HTTP/2
 * conversion - most of the daemon's CPU per push (docs/performance.md).
 * Here every request submitted during one loop iteration leaves in one
 * TLS write, and every read feeds all the frames it holds to nghttp2 at
 * once.
 *
 * What it does: per host (scheme https, host, port, CA bundle) up to
 * `max_conns` connections, a new one only when the others' streams are
 * all in use; streams per connection up to the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS and our own cap; requests wait in the
 * host's FIFO (no clock running) until a stream is free.  TLS always
 * verifies the peer and its name.  Timeouts: connect (resolve + TCP +
 * TLS + the server's SETTINGS), and each request from when its HEADERS
 * left; a request that times out makes its connection prove it is alive
 * with a PING, or be dropped.  A stream the server refused (REFUSED_
 * STREAM, or past a GOAWAY's last stream id) never reached it and waits
 * again; one whose connection died before any answer is sent again once
 * (as libcurl does), a second such loss fails it.  Idle connections
 * close after `idle_ms`.  A host that only fails for `rebuild_after_ms`
 * gets fresh connections (see h2_opts).
 *
 * When the server does not choose h2 in ALPN, the host is remembered as
 * "not h2" and each of its requests (then and later) ends with `not_h2`
 * set: the bridge sends them through libcurl instead.
 *
 * Callbacks run from the loop, never from inside h2_submit(), and never
 * from inside nghttp2.  A failed request carries its kind (enum
 * http_err): NOT_SENT when it never reached the server whole (no
 * connection, TLS failed, refused, the connection died before its
 * HEADERS left), NO_ANSWER once its HEADERS left (timeout, reset,
 * connection lost), BAD_ANSWER for an answer that cannot be used; the
 * senders decide on that.  Error texts name what happened in libcurl's
 * words where one exists ("Operation timed out", "Could not resolve
 * host", "Failed to connect"), for the logs.
 */
#ifndef PGPUSH_H2_H
#define PGPUSH_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/http.h"

struct h2;
struct h2_req;

/* A zero field takes the value in brackets (http.h's fallbacks). */
struct h2_opts {
	unsigned max_conns;        /* per host
				    * [HTTP_FALLBACK_MAX_HOST_CONNECTIONS] */
	unsigned max_streams;      /* per connection, server permitting
				    * [HTTP_FALLBACK_MAX_STREAMS] */
	size_t max_body;           /* response body cap
				    * [HTTP_FALLBACK_MAX_BODY] */
	long idle_ms;              /* close a connection idle this long
				    * [118000, as libcurl] */
	/*
	 * After this long of nothing but transport errors from a host (its
	 * connections answer PINGs but not requests: a hung provider),
	 * each connection a request times out on is retired and the next
	 * requests open fresh ones, until an answer comes.
	 * [HTTP_FALLBACK_REBUILD_AFTER_MS]; negative: never.
	 */
	long rebuild_after_ms;
};

/* An answer; it and all it points to are valid during the callback. */
struct h2_answer {
	long status;               /* 0: see err, error / not_h2 */
	enum http_err err;         /* status 0: the kind of failure */
	const char *error;         /* status 0: what went wrong */
	bool not_h2;               /* the host does not speak h2: send
				    * `req` another way */
	const struct http_request *req;  /* the request as submitted
				    * (copies), during the call only */
	const char *body;          /* NUL-terminated, "" when none */
	size_t body_len;
	char *headers;             /* "name\0value\0" pairs, or NULL */
	size_t headers_len;
};

typedef void (*h2_done_fn)(void *arg, struct h2_answer *a);

struct h2_stats {
	uint64_t connects;         /* TLS connections made */
	uint64_t refused;          /* streams refused and sent again */
	uint64_t resent;           /* sent again after their connection
				    * died with no answer */
	uint64_t pings_failed;     /* connections dropped: no PING answer */
	uint64_t rebuilds;         /* times a host began rebuilding */
};

/* 0 and *out, or a negative code. */
int h2_new(struct h2 **out, uv_loop_t *loop, const struct h2_opts *opts);

/*
 * Queue `req` (https only; copied, headers and body included, secrets
 * wiped when freed).  `timeout_ms` counts from when the request leaves;
 * `connect_timeout_ms` bounds each connection's opening.  Returns the
 * request, or NULL with *err set (-EINVAL: not an https URL we can
 * parse; -ECANCELED: closing).  `done` runs exactly once unless
 * h2_cancel() comes first.
 */
struct h2_req *h2_submit(struct h2 *h, const struct http_request *req,
			 long connect_timeout_ms, long timeout_ms,
			 h2_done_fn done, void *arg, int *err);

/* Forget `r` (no callback): a stream in flight is reset (CANCEL). */
void h2_cancel(struct h2 *h, struct h2_req *r);

void h2_get_stats(const struct h2 *h, struct h2_stats *out);

/*
 * Response headers, kept the same way by both clients of the bridge
 * (http_curl.c, h2.c): append a "name\0value\0" pair to `b` (a buffer
 * capped at HTTP_HEADERS_MAX); a pair that does not fit is dropped.
 */
#define HTTP_HEADERS_MAX (16 * 1024)
struct buf;
void http__header_add(struct buf *b, const void *name, size_t nl,
		      const void *value, size_t vl);

/*
 * Close: requests still queued or in flight are dropped without their
 * callbacks (the bridge cancels them first), connections are closed,
 * and when libuv has closed every handle the memory is freed and
 * `cb(arg)` runs.  NULL `h` is a no-op.
 */
void h2_close(struct h2 *h, void (*cb)(void *arg), void *arg);

#endif
