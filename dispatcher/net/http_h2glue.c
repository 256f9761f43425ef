/*
 * http_h2glue.c - the bridge's side of the h2_direct client (h2.c):
 * which requests take it, handing them over, and turning its answers
 * into http_response callbacks (or back to libcurl when the server
 * does not speak HTTP/2).
 */
#include "net/http_int.h"

#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "net/h2.h"

/* ---- the h2_direct client (h2.c) ---------------------------------- */

/* Report and free a transfer of the h2_direct client. */
void http__h2_report(struct http *http, struct http_xfer *x,
		     const struct h2_answer *a, enum http_err err,
		     const char *error)
{
	struct http_response res;

	http__xfer_unlink(http, x);
	http->stats.in_flight--;
	http->stats.completed++;
	memset(&res, 0, sizeof res);
	res.xfer = x;
	if (error != NULL || a->status == 0) {
		res.err = error != NULL ? err : a->err;
		if (res.err == HTTP_ERR_NONE)
			res.err = HTTP_ERR_NO_ANSWER;
		res.error = error != NULL ? error : a->error;
		res.body = "";
	} else {
		res.status = a->status;
		res.body = a->body;
		res.body_len = a->body_len;
		res.http_version = 2;
		/* Lent for http_response_header(), during the call. */
		x->headers.data = a->headers;
		x->headers.len = a->headers_len;
	}
	x->done(x->arg, &res);
	memset(&x->headers, 0, sizeof x->headers);
	http__xfer_free(http, x);
}

/* A forwarded request's answer, from the worker: to the caller. */
static void on_fwd_done(void *arg, const struct http_response *res)
{
	struct http_xfer *x = arg;
	struct http *http = x->http;

	x->fwd = NULL;
	http__xfer_unlink(http, x);
	http->stats.in_flight--;
	http->stats.completed++;
	x->done(x->arg, res);
	http__xfer_free(http, x);
}

static void on_h2_done(void *arg, struct h2_answer *a)
{
	struct http_xfer *x = arg;
	struct http *http = x->http;

	x->h2r = NULL;
	if (a->not_h2 && !http->closing && http->th != NULL) {
		/* ALPN said http/1.1: a worker's libcurl sends it. */
		struct http_request r2 = *a->req;

		r2.h2_direct = false;
		r2.done = on_fwd_done;
		r2.arg = x;
		if (http__th_submit(http, &r2, &x->fwd) == 0)
			return;
		http__h2_report(http, x, a, HTTP_ERR_NOT_SENT,
				"cannot start the request");
		return;
	}
	if (a->not_h2 && !http->closing) {
		/* ALPN said http/1.1: libcurl sends it after all. */
		x->group = http->common;
		if (http__xfer_curl_setup(http, x, a->req) == 0 &&
		    http__xfer_curl_go(x) == 0)
			return;
		http__h2_report(http, x, a, HTTP_ERR_NOT_SENT,
				"cannot start the request");
		return;
	}
	http__h2_report(http, x, a, HTTP_ERR_NONE, NULL);
}

/* May `req` take the h2_direct client? */
bool http__wants_h2(const struct http *http, const struct http_request *req)
{
	return http->h2 != NULL && req->h2_direct &&
	       (req->conn_group == NULL || req->conn_group[0] == '\0') &&
	       req->client_cert == NULL && req->client_p12 == NULL &&
	       strncasecmp(req->url, "https://", 8) == 0;
}

/* http_submit() of a request for the h2_direct client. */
int http__h2_submit(struct http *http, const struct http_request *req,
		    struct http_xfer **out)
{
	struct http_xfer *x = mem_alloc_zero(1, sizeof *x);
	int rc;

	x->http = http;
	x->done = req->done;
	x->arg = req->arg;
	x->h2r = h2_submit(http->h2, req,
			   req->connect_timeout_ms > 0
			   ? req->connect_timeout_ms
			   : http->opts.connect_timeout_ms,
			   req->timeout_ms > 0 ? req->timeout_ms
			   : http->opts.request_timeout_ms,
			   on_h2_done, x, &rc);
	if (x->h2r == NULL) {
		http__xfer_free(http, x);
		return rc;
	}
	http__xfer_link(http, x);
	http->stats.submitted++;
	http->stats.in_flight++;
	if (out != NULL)
		*out = x;
	return 0;
}

