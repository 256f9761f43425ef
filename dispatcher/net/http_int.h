/*
 * http_int.h - what the files of the HTTP bridge share (http.c,
 * http_curl.c, http_retire.c, http_h2glue.c, http_threads.c); private
 * to dispatcher/net.  See http.c's top comment for how the parts fit
 * together.
 */
#ifndef PGPUSH_NET_HTTP_INT_H
#define PGPUSH_NET_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "base/buf.h"
#include "net/http.h"

/* Transfers per group in libcurl that have not gone out yet (see
 * http.c's top comment, "Waiting inside libcurl"). */
#define GROUP_WAITING_MAX 256
/* Request timeouts are checked this often (on_sweep). */
#define SWEEP_MS 50
/* libcurl's own clock ends a request that waited this many times its
 * timeout (plus the connect timeout) without going out. */
#define WAIT_CAP_FACTOR 4
/* libcurl resends a request it judged unprocessed at most this often,
 * then gives up with "Connection died" (CONN_MAX_RETRIES, 7.x and 8.x). */
#define CURL_RESENDS_MAX 5
/* A group that replaced a retired one is not retired sooner than this:
 * APNs treats rapid reconnection as an attack. */
#define RETIRE_MIN_MS 1000

struct http_sock {
	uv_poll_t poll;            /* owned; freed in its close callback */
	struct http *http;
	struct http_group *group;  /* whose multi watches it */
	curl_socket_t fd;
	int events;                /* UV_READABLE | UV_WRITABLE watched */
	struct http_sock *prev, *next;
};

struct http_xfer {
	struct http *http;
	CURL *easy;
	struct curl_slist *hdrs;
	char *req_body;
	size_t req_body_len;
	struct buf body;           /* response body, capped at
				    * http_opts.max_body */
	struct buf headers;        /* "name\0value\0" pairs, at most
				    * HTTP_HEADERS_MAX bytes */
	http_done_fn done;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
	struct http_group *group;  /* never NULL: http->common at least */
	bool held;                 /* waiting on group->held, not in multi */
	bool turned_back;          /* refused by on_prereq(): not sent */
	bool went_out;             /* on_prereq() let it go: counted in
				    * its group's `out` */
	uint64_t out_at_ms;        /* when it went out (uv_now) */
	unsigned tries;            /* times on_prereq() let it go: more
				    * than one when libcurl resent it */
	uint64_t started_ms;       /* when handed to libcurl (uv_now) */
	long timeout_ms;           /* answer due this long after that */
	struct http_conn *conn;    /* counted in its streams; or NULL */
	struct h2_req *h2r;        /* on the h2_direct client, or NULL */
	struct http_xfer *fwd;     /* threaded bridge: the h2_direct
				    * request went to a worker after all
				    * (not h2): that transfer */
	struct http_xfer *held_next;
	struct http_xfer *prev, *next;
	/* A request of a threaded bridge (struct http_th), on the caller's
	 * side: its copy for the worker, and the answer copied back. */
	struct th_worker *w;       /* its worker */
	struct http_xfer *inner;   /* the worker's transfer; worker only */
	uint64_t res_gen;          /* the worker's group that answered
				    * (its `gen`), for http_retire_group() */
	struct http_request req;   /* strings owned (th_req_copy) */
	long res_status;
	int res_version;
	enum http_err res_err;
	char *res_error;
	bool cancelled;            /* http_cancel()ed: its answer is void */
};

/*
 * One connection group: its own multi handle, connection cache and
 * timer.  The common group (name "-") serves requests that name none.
 * A warm-up group
 * (http_request.conn_warmup) is "cold" until one of its requests got an
 * HTTP answer, and again after a transport error: while cold, one of its
 * requests is in flight and the others wait on `held` (FIFO).  The same
 * while one of its requests opens a new connection (`opening`, seen when
 * libcurl hands us a socket we do not know yet): nothing more is started
 * in the group until that request has its answer, so the new connection
 * carries one stream until the server has accepted it.
 */
struct http_group {
	char *name;
	struct http *http;
	CURLM *multi;                   /* NULL once http_close() began */
	uv_timer_t timer;               /* freed (with the group) in its
					 * close callback */
	bool warmup;
	bool warm;
	unsigned active;                /* its transfers in the multi */
	unsigned out;                   /* of those, gone out (on_prereq) */
	uint64_t answered_ms;           /* uv_now of its latest HTTP answer */
	struct http_xfer *opening;      /* opening a connection, or NULL */
	struct http_xfer *held, *held_tail;
	struct http_group *next;
	int64_t failing_since_ms;       /* only transport errors since; 0 */
	bool rebuild;                   /* fresh connection per request */
	uint64_t gen;                   /* unique in its bridge */
	uint64_t successor_ms;          /* uv_now when it replaced a
					 * retired group; 0: first of its name */
	bool retired;                   /* replaced (http_retire_group());
					 * destroyed once it has no requests */
};

/*
 * A connection of a warm-up group, from the socket libcurl opens for it
 * (on_open_socket) until libcurl closes that socket (on_close_socket):
 * whether it has answered, and how many of our requests are on it.
 */
struct http_conn {
	curl_socket_t fd;
	int local_port;            /* 0: not looked up yet */
	char local_ip[64];
	bool answered;
	unsigned streams;
	struct http_conn *next;
};

struct http {
	uv_loop_t *loop;
	struct http_opts opts;
	struct http_sock *socks;
	struct http_xfer *xfers;
	CURL **free_easy;
	unsigned n_free;
	struct http_group *common;      /* also first on `groups` */
	struct http_group *groups;
	struct http_conn *conns;        /* warm-up groups' connections */
	struct http_stats stats;
	bool closing;
	int closing_handles;
	void (*close_cb)(void *arg);
	void *close_arg;
	struct http_th *th;             /* threaded: the worker, else NULL */
	uv_timer_t sweep;               /* request timeouts (on_sweep) */
	struct h2 *h2;                  /* http_opts.h2_direct, or NULL */
	unsigned out;                   /* transfers gone out, all groups */
	uv_timer_t reap;                /* destroys idle retired groups */
	uint64_t next_gen;
};

struct h2_answer;

/* ---- http.c: the front ---- */

/* Link / unlink a transfer on the bridge's in-flight list. */
void http__xfer_link(struct http *http, struct http_xfer *x);
void http__xfer_unlink(struct http *http, struct http_xfer *x);
/* Free a closed bridge, then call http_close()'s callback. */
void http__free(struct http *http);
/* Free the bridge once http_close() began and no handle is left. */
void http__maybe_free(struct http *http);
/* A group's timer closed: free the group (and maybe the bridge). */
void http__group_closed(uv_handle_t *h);

/* ---- http_curl.c: libcurl on libuv, transfers, groups ---- */

/* Close a socket's poll handle and unlink its context. */
void http__sock_destroy(struct http *http, struct http_sock *sk);
/* A new group with its own multi handle and timer; NULL on failure. */
struct http_group *http__group_new(struct http *http, const char *name);
/* Group `name`, made on first use; NULL when it cannot be. */
struct http_group *http__group_get(struct http *http, const char *name);
/* Start held transfers of `g` while it allows. */
void http__group_release(struct http *http, struct http_group *g);
/* Return an easy handle to the free list and free `x`. */
void http__xfer_free(struct http *http, struct http_xfer *x);
/* End `x` and call back: with `why` (of kind `why_err`) when the bridge
 * ends it itself, else as libcurl's `rc` and the response tell. */
void http__xfer_finish(struct http *http, struct http_xfer *x,
		       CURLcode rc, enum http_err why_err, const char *why);
/* Give `x` an easy handle set up for `req` in its group; 0 or -EINVAL
 * (bad client certificate; x keeps the handle for http__xfer_free()). */
int http__xfer_curl_setup(struct http *http, struct http_xfer *x,
			  const struct http_request *req);
/* Into libcurl now, or wait in the group; 0 or -EIO. */
int http__xfer_curl_go(struct http_xfer *x);

/* ---- http_retire.c: retiring groups ---- */

/* A retired group with no request left is destroyed soon (`reap`). */
void http__reap_check(struct http *http, struct http_group *g);
/* Retire `name`'s group of generation `gen`, if it is still current. */
void http__group_retire_gen(struct http *http, const char *name,
			    uint64_t gen);

/* ---- http_h2glue.c: the h2_direct client ---- */

/* May `req` take the h2_direct client? */
bool http__wants_h2(const struct http *http, const struct http_request *req);
/* http_submit() of a request for the h2_direct client. */
int http__h2_submit(struct http *http, const struct http_request *req,
		    struct http_xfer **out);
/* Report `x` of the h2_direct client (answer `a`, or `error` of kind
 * `err` when not NULL) and free it. */
void http__h2_report(struct http *http, struct http_xfer *x,
		     const struct h2_answer *a, enum http_err err,
		     const char *error);

/* ---- http_threads.c: the bridge on worker threads ---- */

/* With http_opts.threads > 0:
 * http_new(), http_submit(), http_cancel(), http_retire_group(),
 * http_close() and http_get_stats() of such a bridge. */
int http__th_new(struct http *http, uv_loop_t *loop);
int http__th_submit(struct http *http, const struct http_request *req,
		    struct http_xfer **out);
void http__th_cancel(struct http *http, struct http_xfer *px);
void http__th_retire(struct http *http, struct http_xfer *px);
void http__th_close(struct http *http);
void http__th_get_stats(const struct http *http, struct http_stats *out);

#endif
