/*
 * http.c - the HTTP bridge's front: http.h's API, and which path a
 * request takes (the h2_direct client, worker threads, or libcurl's
 * multi driven by libuv on this loop).  See http.h.
 *
 * The glue is curl's multi-uv.c: libcurl tells us, through
 * CURLMOPT_SOCKETFUNCTION, which sockets to watch for what, and we keep
 * one struct http_sock per socket owning its uv_poll_t; through
 * CURLMOPT_TIMERFUNCTION it asks for one timeout, kept in a uv_timer_t (a
 * 0 ms timeout becomes 1 ms so that libcurl is never re-entered from
 * inside its own callback).  Readiness and timeouts go back to libcurl
 * with curl_multi_socket_action(); finished transfers are then collected
 * with curl_multi_info_read() and handed to their callbacks, found
 * through CURLOPT_PRIVATE.
 *
 * Connection groups: every group has its own multi handle (and so its
 * own connection cache and its own timer), all on the one loop; requests
 * that name no group run in the common group.  No connection is ever
 * shared between groups, and CURLMOPT_MAX_HOST_CONNECTIONS bounds each
 * group's connections per host.  (A CURLSH per group on one multi did
 * that with libcurl 7.88, but from 8.x on a share's connection cache
 * ignores the multi's limits: one APNs team opened many times the
 * per-host limit.)
 * Groups live until http_close(), but for retired ones.
 *
 * Retiring a group (http_retire_group(): APNs said 503 Shutdown, 400
 * IdleTimeout) swaps it for a new group of the same name, with a new
 * multi handle and so new connections; what had not gone out yet moves
 * over.  The old group takes no new request; its requests in flight get
 * their answers on the old connections, and once it has none left it is
 * destroyed from the `reap` timer (never from inside libcurl), which
 * closes those connections.
 *
 * Warm-up groups (APNs token auth: one stream per connection until the
 * server has accepted a JWT) are gated twice.  Our own submits wait in
 * the group (struct http_group).  But libcurl 7.88 also retries
 * transfers by itself - streams a GOAWAY left unprocessed, or refused -
 * and puts every such retry on the newest connection, still connecting,
 * so they all leave in the first flight, before the server's SETTINGS
 * can say "one".  The server refuses the extra streams or ends the
 * connection, killing the one request it had processed, which libcurl
 * then sends again: a duplicate.  So each request of a warm-up group
 * passes a pre-request check (CURLOPT_PREREQFUNCTION, called with the
 * connection's addresses right before the request goes out): on a
 * connection that has not answered yet, only one request may be in
 * flight.  A request turned back there never left; it waits in its
 * group until an answer comes, then starts again (not an attempt).
 *
 * Waiting inside libcurl: a transfer in the multi that has no
 * connection or stream to go out on yet (every connection at the
 * server's stream limit and the per-host limit reached) still runs its
 * CURLOPT_TIMEOUT_MS clock, so a busy group would see requests time out
 * that never left, and count them as provider failures (retries, even
 * an auto-ban).  So each group hands libcurl at most GROUP_WAITING_MAX
 * transfers that have not gone out yet (the pre-request callback says
 * when one goes); the rest wait in the group's own queue, with no clock
 * running, and are started after each batch of libcurl work.  Those in
 * libcurl still run its connect timeout, which covers everything before
 * a request goes out: one that reaches it while the group's connections
 * answer goes back to the group's queue rather than failing
 * (xfer_waited_out).
 *
 * Lifetimes: a struct http_xfer lives from http_submit() to the end of
 * its callback, on the bridge's in-flight list.  Easy handles go back to
 * a free list (curl_easy_reset) when their transfer ends; connections
 * live in their group's multi handle, so reuse does not depend on which
 * easy handle runs the next request.  A struct http_sock is freed by its
 * poll handle's close callback, a group by its timer's; the bridge itself
 * only when every timer and poll handle is closed (`closing_handles`
 * counts them).
 *
 * The files: http.c (this one) is the front - http.h's API, choosing
 * the path a request takes; http_curl.c drives libcurl's multi handles
 * on libuv and runs the transfers and groups; http_retire.c retires a
 * group's connections; http_h2glue.c hands requests to the h2_direct
 * client (h2.c); http_threads.c is the bridge on worker threads.  What
 * they share is in http_int.h.
 */
#include "net/http.h"

#include "net/http_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "base/log.h"
#include "base/mem.h"
#include "net/h2.h"

/* ---- lists ------------------------------------------------------- */

void http__xfer_link(struct http *http, struct http_xfer *x)
{
	x->prev = NULL;
	x->next = http->xfers;
	if (http->xfers != NULL)
		http->xfers->prev = x;
	http->xfers = x;
}

void http__xfer_unlink(struct http *http, struct http_xfer *x)
{
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		http->xfers = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}


/* ---- the end of a bridge ----------------------------------------- */

/* The last of a closed bridge: free it, then tell http_close()'s caller. */
void http__free(struct http *http)
{
	void (*cb)(void *) = http->close_cb;
	void *arg = http->close_arg;

	free(http->free_easy);
	free(http);
	curl_global_cleanup();
	if (cb != NULL)
		cb(arg);
}

void http__maybe_free(struct http *http)
{
	if (http->closing && http->closing_handles == 0)
		http__free(http);
}


/* ---- the API ------------------------------------------------------ */

const char *http_response_header(const struct http_response *res,
				 const char *name)
{
	const struct http_xfer *x = res->xfer;
	size_t off = 0;

	if (x == NULL || x->headers.len == 0)
		return NULL;
	while (off < x->headers.len) {
		const char *n = x->headers.data + off;
		const char *v = n + strlen(n) + 1;

		if (strcasecmp(n, name) == 0)
			return v;
		off = (size_t)(v + strlen(v) + 1 - x->headers.data);
	}
	return NULL;
}


int http_submit(struct http *http, const struct http_request *req,
		struct http_xfer **out)
{
	struct http_group *group = http->common;
	struct http_xfer *x;
	int rc;

	if (http->closing)
		return -ECANCELED;
	if (req->url == NULL || req->done == NULL)
		return -EINVAL;
	if (http__wants_h2(http, req))
		return http__h2_submit(http, req, out);
	if (http->th != NULL)
		return http__th_submit(http, req, out);
	if (req->conn_group != NULL && req->conn_group[0] != '\0') {
		group = http__group_get(http, req->conn_group);
		if (group == NULL)
			return -ENOMEM;
		if (req->conn_warmup)
			group->warmup = true;
	}
	x = mem_alloc_zero(1, sizeof *x);
	x->http = http;
	x->done = req->done;
	x->arg = req->arg;
	x->group = group;
	rc = http__xfer_curl_setup(http, x, req);
	if (rc < 0) {
		http__xfer_free(http, x);
		return rc;
	}
	if (http__xfer_curl_go(x) < 0) {
		http__xfer_free(http, x);
		return -EIO;
	}
	http__xfer_link(http, x);
	http->stats.submitted++;
	http->stats.in_flight++;
	if (out != NULL)
		*out = x;
	return 0;
}

void http_cancel(struct http *http, struct http_xfer *xfer)
{
	if (xfer->h2r != NULL) {
		struct h2_answer a;

		h2_cancel(http->h2, xfer->h2r);
		xfer->h2r = NULL;
		memset(&a, 0, sizeof a);
		http__h2_report(http, xfer, &a, HTTP_ERR_CANCELLED,
				"cancelled");
	} else if (xfer->fwd != NULL) {
		http_cancel(http, xfer->fwd);   /* runs on_fwd_done */
	} else if (http->th != NULL) {
		http__th_cancel(http, xfer);
	} else
		http__xfer_finish(http, xfer, CURLE_ABORTED_BY_CALLBACK,
				  HTTP_ERR_CANCELLED, "cancelled");
}

bool http_err_ambiguous(enum http_err e)
{
	return e != HTTP_ERR_NOT_SENT && e != HTTP_ERR_CANCELLED;
}

const char *http_err_name(enum http_err e)
{
	switch (e) {
	case HTTP_ERR_NONE:
		return "none";
	case HTTP_ERR_NOT_SENT:
		return "not sent";
	case HTTP_ERR_NO_ANSWER:
		return "no answer";
	case HTTP_ERR_BAD_ANSWER:
		return "bad answer";
	case HTTP_ERR_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}

const char *http_lib_version(void)
{
	return curl_version_info(CURLVERSION_NOW)->version;
}

void http_get_stats(const struct http *http, struct http_stats *out)
{
	if (http->th != NULL) {
		http__th_get_stats(http, out);
	} else {
		*out = http->stats;
		if (http->h2 != NULL) {
			struct h2_stats hs;

			h2_get_stats(http->h2, &hs);
			out->connects += hs.connects;
			out->rebuilds += hs.rebuilds;
		}
	}
}

/* The first proxy variable libcurl would use for https, or NULL. */
static const char *proxy_env(void)
{
	static const char *const names[] = {
		"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", NULL
	};

	for (size_t i = 0; names[i] != NULL; i++) {
		const char *v = getenv(names[i]);

		if (v != NULL && v[0] != '\0')
			return names[i];
	}
	return NULL;
}

int http_new(struct http **out, uv_loop_t *loop,
	     const struct http_opts *opts)
{
	struct http *http;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	http = mem_alloc_zero(1, sizeof *http);
	http->loop = loop;
	if (opts != NULL)
		http->opts = *opts;
	if (http->opts.max_host_connections <= 0)
		http->opts.max_host_connections =
			HTTP_FALLBACK_MAX_HOST_CONNECTIONS;
	if (http->opts.max_streams <= 0)
		http->opts.max_streams = HTTP_FALLBACK_MAX_STREAMS;
	if (http->opts.max_body == 0)
		http->opts.max_body = HTTP_FALLBACK_MAX_BODY;
	if (http->opts.free_handles == 0)
		http->opts.free_handles = HTTP_FALLBACK_FREE_HANDLES;
	if (http->opts.connect_timeout_ms <= 0)
		http->opts.connect_timeout_ms =
			HTTP_FALLBACK_CONNECT_TIMEOUT_MS;
	if (http->opts.request_timeout_ms <= 0)
		http->opts.request_timeout_ms =
			HTTP_FALLBACK_REQUEST_TIMEOUT_MS;
	if (http->opts.rebuild_after_ms == 0)
		http->opts.rebuild_after_ms = HTTP_FALLBACK_REBUILD_AFTER_MS;
	if (http->opts.h2_direct && proxy_env() != NULL) {
		/* libcurl honours the proxy variables; our client does not. */
		log_info("a proxy is configured: libcurl sends every request",
			 "variable=%s", proxy_env());
	} else if (http->opts.h2_direct) {
		/* On this loop, threads or not: it costs little per request,
		 * less than handing requests to a worker. */
		struct h2_opts ho;

		memset(&ho, 0, sizeof ho);
		ho.max_conns = (unsigned)http->opts.max_host_connections;
		ho.max_streams = (unsigned)http->opts.max_streams;
		ho.max_body = http->opts.max_body;
		ho.rebuild_after_ms = http->opts.rebuild_after_ms;
		if (h2_new(&http->h2, loop, &ho) < 0)
			log_warn("no HTTP/2 client of our own: libcurl sends "
				 "everything", NULL);
	}
	if (http->opts.threads > 0) {
		int rc = http__th_new(http, loop);

		if (rc < 0) {
			h2_close(http->h2, NULL, NULL);
			free(http);
			curl_global_cleanup();
			return rc;
		}
		*out = http;
		return 0;
	}
	http->free_easy = mem_alloc_zero(http->opts.free_handles,
					 sizeof *http->free_easy);
	http->common = http__group_new(http, "-");
	if (http->common == NULL) {
		free(http->free_easy);
		free(http);
		curl_global_cleanup();
		return -ENOMEM;
	}
	uv_timer_init(loop, &http->sweep);
	http->sweep.data = http;
	uv_timer_init(loop, &http->reap);
	http->reap.data = http;
	*out = http;
	return 0;
}

static void h2_closed(void *arg)
{
	struct http *http = arg;

	http->closing_handles--;
	http__maybe_free(http);
}

static void sweep_closed(uv_handle_t *h)
{
	struct http *http = h->data;

	http->closing_handles--;
	http__maybe_free(http);
}

void http__group_closed(uv_handle_t *h)
{
	struct http_group *g = h->data;
	struct http *http = g->http;

	free(g->name);
	free(g);
	http->closing_handles--;
	http__maybe_free(http);
}

void http_close(struct http *http, void (*cb)(void *arg), void *arg)
{
	struct http_sock *sk;
	struct http_group *g;
	unsigned i;

	if (http == NULL || http->closing)
		return;
	if (http->th != NULL) {
		struct http_xfer *x, *xn;

		http->close_cb = cb;
		http->close_arg = arg;
		/* The h2_direct client's first (http__th_close() takes the
		 * rest); it frees itself once its handles are closed.
		 * Callbacks may cancel others: look again after each. */
		http->closing = true;
again:
		for (x = http->xfers; x != NULL; x = xn) {
			xn = x->next;
			if (x->h2r != NULL || x->fwd != NULL) {
				http_cancel(http, x);
				goto again;
			}
		}
		h2_close(http->h2, NULL, NULL);
		http->h2 = NULL;
		http__th_close(http);
		return;
	}
	/* Callbacks may submit more while we cancel; refuse those. */
	http->closing = true;
	while (http->xfers != NULL)
		http_cancel(http, http->xfers);
	/*
	 * Stop every poll before libcurl closes the sockets; curl may
	 * report some of them removed while it cleans up (on_socket then
	 * closes their contexts), the rest are closed below.
	 */
	for (sk = http->socks; sk != NULL; sk = sk->next) {
		uv_poll_stop(&sk->poll);
		sk->events = 0;
	}
	for (g = http->groups; g != NULL; g = g->next) {
		CURLM *multi = g->multi;

		uv_timer_stop(&g->timer);
		g->multi = NULL;
		curl_multi_cleanup(multi);
	}
	for (i = 0; i < http->n_free; i++)
		curl_easy_cleanup(http->free_easy[i]);
	http->n_free = 0;
	while (http->conns != NULL) {       /* closed by now */
		struct http_conn *c = http->conns;

		http->conns = c->next;
		free(c);
	}
	while (http->socks != NULL)
		http__sock_destroy(http, http->socks);
	http->close_cb = cb;
	http->close_arg = arg;
	if (http->h2 != NULL) {
		http->closing_handles++;
		h2_close(http->h2, h2_closed, http);
		http->h2 = NULL;
	}
	http->closing_handles++;
	uv_close((uv_handle_t *)&http->sweep, sweep_closed);
	http->closing_handles++;
	uv_close((uv_handle_t *)&http->reap, sweep_closed);
	/* Each group goes with its timer's close callback. */
	while (http->groups != NULL) {
		g = http->groups;
		http->groups = g->next;
		http->closing_handles++;
		uv_close((uv_handle_t *)&g->timer, http__group_closed);
	}
	http->common = NULL;
}


