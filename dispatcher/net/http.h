/*
 * http.h - the HTTP client of pgpushd: libcurl's multi interface driven
 * by the libuv loop (the shape of curl's docs/examples/multi-uv.c).  This
 * is the only module that calls curl_multi_*.
 *
 * One struct http serves every sender.  It speaks HTTP/2 where the server
 * offers it (ALPN) and multiplexes requests to one host over as few
 * connections as possible (CURLPIPE_MULTIPLEX, CURLOPT_PIPEWAIT), keeps
 * connections alive for reuse, and reuses easy handles from a small free
 * list.  TLS peer and host verification are always on; a request may only
 * name the CA bundle to trust (and present a client certificate).
 * Requests may name a connection group: each group has its own multi
 * handle and so its own connection cache, so groups never share a
 * connection and the per-host limit counts per group.  Nothing here
 * blocks.
 *
 * A request goes in with http_submit(), which copies everything it needs
 * from the struct http_request, and comes out exactly once through its
 * done callback, always called from the loop (never from inside
 * http_submit()): with the HTTP status, the response headers and the body
 * (capped; a larger body fails the request), or with status 0, the kind
 * of failure (enum http_err: whether the request can have reached the
 * provider) and an error text for the logs.
 *
 * Ownership: the caller owns the struct http and frees it with
 * http_close(), which cancels what is in flight (their callbacks run)
 * and frees the memory only after libuv has closed every handle.  A
 * struct http_xfer belongs to the bridge; the caller may keep its pointer
 * to cancel it, until its done callback starts.
 */
#ifndef PGPUSH_HTTP_H
#define PGPUSH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http;
struct http_xfer;

/*
 * The library's own fallbacks: what http_new() takes for a zero field of
 * struct http_opts.  `pgpushd run` always passes its own values (cli.h's
 * PGPUSH_DEFAULT_...), so these apply only to other callers (tests,
 * drivers).
 */
#define HTTP_FALLBACK_MAX_HOST_CONNECTIONS 4
#define HTTP_FALLBACK_MAX_STREAMS 1000
#define HTTP_FALLBACK_MAX_BODY (64 * 1024)
#define HTTP_FALLBACK_FREE_HANDLES 64
#define HTTP_FALLBACK_CONNECT_TIMEOUT_MS 10000
#define HTTP_FALLBACK_REQUEST_TIMEOUT_MS 30000
#define HTTP_FALLBACK_REBUILD_AFTER_MS 120000

/* Tuning; a zero field takes the library's fallback in brackets. */
struct http_opts {
	long max_host_connections;   /* connections per host
				      * [0: HTTP_FALLBACK_MAX_HOST_...] */
	long max_streams;            /* concurrent h2 streams used per
				      * connection, server limit permitting
				      * [0: HTTP_FALLBACK_MAX_STREAMS] */
	size_t max_body;             /* response body cap, bytes
				      * [0: HTTP_FALLBACK_MAX_BODY] */
	unsigned free_handles;       /* idle easy handles kept
				      * [0: HTTP_FALLBACK_FREE_HANDLES] */
	long connect_timeout_ms;     /* default per request
				      * [0: HTTP_FALLBACK_CONNECT_...] */
	long request_timeout_ms;     /* default per request
				      * [0: HTTP_FALLBACK_REQUEST_...] */
	/*
	 * Hung provider: when every request of a connection group (or of
	 * the common cache) has ended in a transport error (timeout, reset)
	 * for this long, its next requests each open a fresh connection and
	 * do not keep it, until one gets an HTTP answer again; the old,
	 * possibly hung connections are then no longer picked.
	 * [0: HTTP_FALLBACK_REBUILD_AFTER_MS]; negative: never.
	 */
	long rebuild_after_ms;
	/*
	 * Worker threads for libcurl, each with a loop and bridge of its
	 * own: requests are copied to a worker and answers copied back, and
	 * callbacks still run on the caller's loop; the API is the same.  A
	 * named connection group always runs on one worker (its limits hold
	 * as without threads); the common group's requests take the workers
	 * in turn, and each worker has its own common connections (the
	 * per-host limit is then per worker).  [0: none, all on the loop]
	 */
	unsigned threads;
	/*
	 * Requests that ask for it (http_request.h2_direct) go over the
	 * bridge's own HTTP/2 client (h2.c: nghttp2 + OpenSSL on the same
	 * loop) instead of libcurl: much less CPU per request
	 * (docs/performance.md).  A host that does not choose h2
	 * in ALPN is served by libcurl after all.  Off when a proxy
	 * variable libcurl would honour for https is set (https_proxy,
	 * HTTPS_PROXY, all_proxy, ALL_PROXY): our client speaks no proxy.
	 * [false]
	 */
	bool h2_direct;
};

/*
 * Why a request has no usable answer (status 0), as far as whether the
 * provider can have acted on it.  Senders decide on this, never on the
 * error text, which differs between libcurl versions and our own client.
 */
enum http_err {
	HTTP_ERR_NONE = 0,     /* an HTTP answer (status != 0) */
	/*
	 * The request never reached the provider whole: no address, no
	 * connection, a failed TLS handshake, a connect timeout, a stream
	 * the server refused or left above a GOAWAY's last stream id, a
	 * request that could not be written to its end, or one that could
	 * not be started.  Always safe to send again.
	 */
	HTTP_ERR_NOT_SENT,
	/*
	 * The request went out (maybe only partly taken in) and no
	 * complete answer came: a timeout after it was sent, a stream
	 * reset, the connection lost while waiting.  The provider may have
	 * acted on it: ambiguous.
	 */
	HTTP_ERR_NO_ANSWER,
	/*
	 * An answer came but cannot be used: a body over the cap, a stream
	 * that ended without a response.  The provider got the request;
	 * what it did is unknown: ambiguous.
	 */
	HTTP_ERR_BAD_ANSWER,
	/* http_cancel() or http_close(): the caller gave up on it. */
	HTTP_ERR_CANCELLED,
};

/*
 * Can the provider have acted on a request that failed with `e`?  True
 * for NO_ANSWER and BAD_ANSWER, and for NONE (a status-0 answer of no
 * known kind counts as the worst case); false for NOT_SENT and
 * CANCELLED.
 */
bool http_err_ambiguous(enum http_err e);

/* "not sent", "no answer", ...: for logs and tests. */
const char *http_err_name(enum http_err e);

struct http_response {
	long status;           /* HTTP status; 0: no answer, see err */
	enum http_err err;     /* status 0: the kind of failure; else NONE */
	const char *error;     /* status 0: what went wrong, for logs and
				* reasons (never to decide on); else NULL */
	const char *body;      /* NUL-terminated; "" when none */
	size_t body_len;
	int http_version;      /* 2, 1 (1.x) or 0 (no answer) */
	struct http_xfer *xfer;/* for http_response_header() */
};

/*
 * Called once per submitted request, from the loop.  `res` and
 * everything it points to are valid only during the call.  The callback
 * may submit or cancel other requests and may call http_close().
 */
typedef void (*http_done_fn)(void *arg, const struct http_response *res);

/* What to send; http_submit() copies it all. */
struct http_request {
	const char *method;            /* NULL: POST with a body, else GET */
	const char *url;               /* http:// or https:// only */
	const char *ca_path;           /* CA bundle to trust; NULL: the
					* system's */
	const char *const *headers;    /* "Name: value" lines, NULL-ended;
					* may be NULL */
	const char *body;              /* may be NULL */
	size_t body_len;
	long connect_timeout_ms;       /* 0: the bridge's default */
	long timeout_ms;               /* whole exchange; 0: default */
	/*
	 * Connection group: NULL (or "") uses the bridge's common connection
	 * cache; a name gets its own cache, so requests of different groups
	 * never share a connection (APNs pins a connection to one team).
	 * The per-host connection limit applies per group.
	 */
	const char *conn_group;
	/*
	 * The group's connections start with one stream until the server
	 * has accepted a request (APNs token auth): while the group has had
	 * no HTTP answer yet, or since a transport error, only one of its
	 * requests is in flight and the others wait their turn, so libcurl
	 * does not send streams a new connection would refuse.
	 */
	bool conn_warmup;
	/*
	 * TLS client certificate (APNs certificate auth), copied per
	 * request: PEM `client_cert` + `client_key`, or a PKCS#12 bundle
	 * (`client_p12`, `client_p12_len` bytes).  `client_key_password`
	 * unlocks the key or the bundle; NULL: none.  Give each credential
	 * its own conn_group: a connection carries one identity.
	 */
	const char *client_cert;
	const char *client_key;
	const void *client_p12;
	size_t client_p12_len;
	const char *client_key_password;
	/*
	 * The host speaks HTTP/2 and gets many small requests (FCM): send
	 * it over the bridge's own HTTP/2 client when the bridge has one
	 * (http_opts.h2_direct).  Ignored with a conn_group or a client
	 * certificate, and for http:// URLs.
	 */
	bool h2_direct;
	http_done_fn done;
	void *arg;
};

/*
 * The libcurl this process runs with, e.g. "8.14.1" (its HTTP/2 cost
 * per request differs a lot between 7.x and 8.x: docs/performance.md).
 */
const char *http_lib_version(void);

/* Counters since http_new(), for logs, stats and tests. */
struct http_stats {
	uint64_t submitted;
	uint64_t completed;      /* callbacks run, cancellations included */
	uint64_t connects;       /* new connections made (sum of
				  * CURLINFO_NUM_CONNECTS, and those of
				  * the h2_direct client) */
	uint64_t in_flight;
	uint64_t groups;         /* connection groups made */
	uint64_t rebuilds;       /* times a group started rebuilding its
				  * connections (rebuild_after_ms) */
	uint64_t turned_back;    /* warm-up requests held back from a
				  * connection that had not answered yet */
	uint64_t requeued;       /* requests that waited past the connect
				  * timeout for a stream while the group's
				  * connections worked: queued again, not
				  * failed */
	uint64_t retired;        /* groups whose connections were retired
				  * (http_retire_group) */
};

/*
 * Make a bridge on `loop`.  `opts` may be NULL (all defaults).  Also
 * initialises libcurl's globals (reference-counted by libcurl; balanced
 * when the bridge is freed).  Returns 0 and *out, or a negative code.
 */
int http_new(struct http **out, uv_loop_t *loop,
	     const struct http_opts *opts);

/*
 * Start a request.  Returns 0 and, when `out` is not NULL, the transfer
 * (for http_cancel()); its done callback will run exactly once.  Returns
 * -ECANCELED when the bridge is closing, -EINVAL for a bad request (no
 * URL or callback), or another negative code when libcurl refuses it;
 * then the callback never runs.
 */
int http_submit(struct http *http, const struct http_request *req,
		struct http_xfer **out);

/*
 * Cancel a transfer whose callback has not started: the callback runs
 * before this returns, with status 0, HTTP_ERR_CANCELLED and error
 * "cancelled".  The pointer is invalid afterwards.
 */
void http_cancel(struct http *http, struct http_xfer *xfer);

/*
 * The value of response header `name` (case-insensitive; the first one
 * if repeated), or NULL.  Only during the done callback.
 */
const char *http_response_header(const struct http_response *res,
				 const char *name);

/*
 * Retire the connections of the group that answered `res` (the server
 * asked for a new connection: APNs 503 Shutdown, 400 IdleTimeout): the
 * group's next requests, and those of its requests that have not gone
 * out yet, go out on a new connection; the old ones are no longer picked,
 * its requests in flight there still get their answers, and then they
 * are closed.  Answers from connections already retired change nothing,
 * so a burst of such answers retires once; a group that replaced a
 * retired one is kept for its first second (APNs treats rapid
 * reconnection as an attack).  Call only during the done callback.  A
 * no-op for requests without a conn_group (the common connections and
 * the h2_direct client are left alone).
 */
void http_retire_group(struct http *http, const struct http_response *res);

/* Copy the counters into *out. */
void http_get_stats(const struct http *http, struct http_stats *out);

/*
 * Close the bridge: in-flight transfers are cancelled (their callbacks
 * run before this returns), new submits are refused, connections are
 * closed, and once libuv has closed every handle the memory is freed and
 * `cb(arg)` is called from the loop.  `cb` may be NULL.  NULL `http` is a
 * no-op.
 */
void http_close(struct http *http, void (*cb)(void *arg), void *arg);

#endif
