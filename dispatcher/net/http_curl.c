/*
 * http_curl.c - libcurl's multi handles driven by libuv (after curl's
 * multi-uv.c): sockets and the timer, the transfers (start, hold, turn
 * back, requeue, finish), connection groups and their warm-up gate, and
 * the easy handles' setup.  See http.c's top comment for the design.
 */
#include "net/http_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <curl/curl.h>

#include "base/log.h"
#include "base/mem.h"
#include "net/h2.h"

static void on_sweep(uv_timer_t *t);
static void check_multi_info(struct http_group *g);
static void group_release_after(struct http_group *g);

/* ---- sockets and the timer (multi-uv.c) -------------------------- */
static void sock_closed(uv_handle_t *h)
{
	struct http_sock *sk = h->data;
	struct http *http = sk->http;

	free(sk);
	http->closing_handles--;
	http__maybe_free(http);
}

/* Stop watching a socket and free its context (after the close cb). */
void http__sock_destroy(struct http *http, struct http_sock *sk)
{
	if (sk->prev != NULL)
		sk->prev->next = sk->next;
	else
		http->socks = sk->next;
	if (sk->next != NULL)
		sk->next->prev = sk->prev;
	uv_poll_stop(&sk->poll);
	http->closing_handles++;
	uv_close((uv_handle_t *)&sk->poll, sock_closed);
}

/*
 * Hold back partial TCP segments while libcurl works through a batch of
 * events.  libcurl 7.88 writes every HTTP/2 frame as its own TLS record
 * and send(): hundreds of tiny segments per loop turn, each a full trip
 * through the TCP stack.  Corked, they leave as few full segments when
 * the batch is done (uncorking flushes at once, so nothing waits).
 * Sockets that are not TCP ignore it.
 */
static void cork_all(struct http *http, int on)
{
	struct http_sock *sk;

	for (sk = http->socks; sk != NULL; sk = sk->next)
		(void)setsockopt(sk->fd, IPPROTO_TCP, TCP_CORK, &on,
				 sizeof on);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
	struct http_sock *sk = poll->data;
	struct http *http = sk->http;
	struct http_group *g = sk->group;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	cork_all(http, 1);
	curl_multi_socket_action(g->multi, sk->fd, flags, &running);
	cork_all(http, 0);
	check_multi_info(g);
	group_release_after(g);
}

/* Has the warm-up connection on socket `fd` answered a request? */
static bool conn_answered(const struct http *http, curl_socket_t fd)
{
	const struct http_conn *c;

	for (c = http->conns; c != NULL; c = c->next)
		if (c->fd == fd)
			return c->answered;
	return false;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp,
		     void *socketp)
{
	struct http_group *g = userp;
	struct http *http = g->http;
	struct http_sock *sk = socketp;
	int events = 0, rc;

	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL) {
			http__sock_destroy(http, sk);
			if (g->multi != NULL)
				curl_multi_assign(g->multi, s, NULL);
		}
		return 0;
	}
	if (sk == NULL) {
		struct http_xfer *x = NULL;

		/* A socket not watched: `easy` is opening a connection, or
		 * takes up an idle one again (libcurl stops watching those),
		 * which has answered before. */
		if (easy != NULL &&
		    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x) ==
		    CURLE_OK && x != NULL && x->group != NULL &&
		    x->group->warmup && x->group->warm &&
		    x->group->opening == NULL && !conn_answered(http, s))
			x->group->opening = x;
		sk = mem_alloc_zero(1, sizeof *sk);
		sk->http = http;
		sk->group = g;
		sk->fd = s;
		rc = uv_poll_init_socket(http->loop, &sk->poll, s);
		if (rc < 0) {
			log_error("cannot watch a socket", "fd=%d err=%s",
				  (int)s, uv_strerror(rc));
			free(sk);
			return -1;
		}
		sk->poll.data = sk;
		sk->next = http->socks;
		if (http->socks != NULL)
			http->socks->prev = sk;
		http->socks = sk;
		curl_multi_assign(g->multi, s, sk);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	/* libcurl repeats itself; every uv_poll_start() costs two
	 * epoll_ctl() calls at the next loop turn, even for no change. */
	if (events == sk->events)
		return 0;
	rc = uv_poll_start(&sk->poll, events, on_poll);
	if (rc < 0) {
		log_error("cannot watch a socket", "fd=%d err=%s", (int)s,
			  uv_strerror(rc));
		return -1;
	}
	sk->events = events;
	return 0;
}

static void on_timeout(uv_timer_t *t)
{
	struct http_group *g = t->data;
	int running;

	cork_all(g->http, 1);
	curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	cork_all(g->http, 0);
	check_multi_info(g);
	group_release_after(g);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_group *g = userp;

	(void)multi;
	if (timeout_ms < 0) {
		uv_timer_stop(&g->timer);
		return 0;
	}
	/* 0 means "now": from the loop, never from inside libcurl. */
	uv_timer_start(&g->timer, on_timeout,
		       timeout_ms == 0 ? 1 : (uint64_t)timeout_ms, 0);
	return 0;
}

/* ---- transfers --------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userp)
{
	struct http_xfer *x = userp;
	size_t n = size * nmemb;

	/* Over the cap (x->body's max): the buffer stays full. */
	if (buf_add(&x->body, ptr, n) < 0)
		return 0;       /* CURLE_WRITE_ERROR */
	return n;
}

/*
 * One header line.  A status line starts a new response (after a 1xx),
 * so the headers kept are those of the final response.  Headers beyond
 * HTTP_HEADERS_MAX bytes are dropped, not fatal.
 */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userp)
{
	struct http_xfer *x = userp;
	size_t n = size * nmemb, nl, vl;
	const char *colon, *v;

	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		buf_reset(&x->headers);
		return n;
	}
	colon = memchr(ptr, ':', n);
	if (colon == NULL || colon == ptr)
		return n;
	nl = (size_t)(colon - ptr);
	v = colon + 1;
	vl = n - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
			  v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	http__header_add(&x->headers, ptr, nl, v, vl);
	return n;
}

static CURL *easy_get(struct http *http)
{
	if (http->n_free > 0)
		return http->free_easy[--http->n_free];
	return curl_easy_init();
}

static void easy_put(struct http *http, CURL *easy)
{
	if (!http->closing && http->n_free < http->opts.free_handles) {
		curl_easy_reset(easy);
		http->free_easy[http->n_free++] = easy;
	} else {
		curl_easy_cleanup(easy);
	}
}

void http__xfer_free(struct http *http, struct http_xfer *x)
{
	if (x->easy != NULL)
		easy_put(http, x->easy);
	curl_slist_free_all(x->hdrs);
	free(x->req_body);
	buf_free(&x->body);
	buf_free(&x->headers);
	free(x);
}

static void group_unhold(struct http_group *g, struct http_xfer *x)
{
	struct http_xfer **pp, *prev = NULL;

	for (pp = &g->held; *pp != NULL; pp = &(*pp)->held_next) {
		if (*pp == x) {
			*pp = x->held_next;
			if (g->held_tail == x)
				g->held_tail = prev;
			break;
		}
		prev = *pp;
	}
	x->held = false;
	x->held_next = NULL;
}

/* The transfer goes out now: no longer waiting inside libcurl. */
static void xfer_went_out(struct http_xfer *x)
{
	struct http *http = x->http;

	x->tries++;
	if (!x->went_out) {
		x->went_out = true;
		x->group->out++;
		x->out_at_ms = uv_now(http->loop);
		if (http->out++ == 0 && !http->closing)
			uv_timer_start(&http->sweep, on_sweep, SWEEP_MS,
				       SWEEP_MS);
	}
}

/* A transfer of `g` that went out is out of the multi again. */
static void xfer_left(struct http_group *g, struct http_xfer *x)
{
	if (x->went_out) {
		x->went_out = false;
		g->out--;
		x->http->out--;
	}
}

/*
 * Request timeouts count from when a request went out (the pre-request
 * callback), not from when it was handed to libcurl, whose
 * CURLOPT_TIMEOUT_MS clock also runs while a request waits for a free
 * stream or connection: under load, requests the provider never saw
 * timed out and counted as its failures (retries, even an auto-ban).
 * Every SWEEP_MS the transfers that went out are checked; one past its
 * time ends as libcurl's own timeout would.  CURLOPT_TIMEOUT_MS stays
 * as a backstop for a request that never goes out (WAIT_CAP_FACTOR).
 */
static void on_sweep(uv_timer_t *t)
{
	struct http *http = t->data;
	uint64_t now = uv_now(http->loop);
	struct http_xfer *x;

again:
	if (http->out == 0) {
		uv_timer_stop(&http->sweep);
		return;
	}
	for (x = http->xfers; x != NULL; x = x->next) {
		if (x->went_out && !x->held &&
		    now - x->out_at_ms >= (uint64_t)x->timeout_ms) {
			snprintf(x->errbuf, sizeof x->errbuf,
				 "no answer %llu ms after the request was "
				 "sent",
				 (unsigned long long)(now - x->out_at_ms));
			/* Callbacks may end or start others: look again. */
			http__xfer_finish(http, x, CURLE_OPERATION_TIMEDOUT,
					  HTTP_ERR_NONE, NULL);
			if (http->closing)
				return;
			goto again;
		}
	}
}

/* May one more of the group's transfers run now? */
static bool group_may_run(const struct http_group *g)
{
	if (g->active - g->out >= GROUP_WAITING_MAX)
		return false;
	return !g->warmup ||
	       ((g->warm || g->active == 0) && g->opening == NULL);
}

/* Hand a transfer to libcurl; 0 or -EIO. */
static int xfer_start(struct http_xfer *x)
{
	CURLMcode mrc = curl_multi_add_handle(x->group->multi, x->easy);

	if (mrc != CURLM_OK) {
		log_error("cannot start an HTTP request", "err=%s",
			  curl_multi_strerror(mrc));
		return -EIO;
	}
	x->group->active++;
	x->started_ms = uv_now(x->http->loop);
	return 0;
}

/* Start held transfers of `g` while it allows. */
void http__group_release(struct http *http, struct http_group *g)
{
	while (g->held != NULL && group_may_run(g)) {
		struct http_xfer *x = g->held;

		group_unhold(g, x);
		if (xfer_start(x) < 0) {
			/* Never in the multi: finish it as a held one. */
			x->held = true;
			http__xfer_finish(http, x, CURLE_FAILED_INIT,
					  HTTP_ERR_NOT_SENT,
					  "cannot start the request");
			if (http->closing)
				return;
		}
	}
}

/* After a batch of libcurl work (never inside it: libcurl refuses
 * curl_multi_add_handle() from its callbacks), start what may run now. */
static void group_release_after(struct http_group *g)
{
	if (!g->http->closing && g->held != NULL)
		http__group_release(g->http, g);
}

/*
 * Track whether a group only fails: after rebuild_after_ms of nothing
 * but transport errors, its requests open fresh connections (see
 * http_opts) until an answer comes back.
 */
static void note_health(struct http *http, struct http_group *g,
			bool answered, bool transport_error)
{
	int64_t *since = &g->failing_since_ms;
	bool *rebuild = &g->rebuild;
	int64_t now = (int64_t)uv_now(http->loop);

	if (answered) {
		if (*rebuild)
			log_info("provider answers again: connections reused",
				 "group=%s", g->name);
		*since = 0;
		*rebuild = false;
	} else if (transport_error && http->opts.rebuild_after_ms >= 0) {
		if (*since == 0)
			*since = now > 0 ? now : 1;
		else if (!*rebuild &&
			 now - *since >= http->opts.rebuild_after_ms) {
			*rebuild = true;
			http->stats.rebuilds++;
			log_warn("only transport errors: rebuilding connections",
				 "group=%s failing_ms=%lld",
				 g->name, (long long)(now - *since));
		}
	}
}

/*
 * A transfer that never left goes back to the front of its group's
 * queue (it is among the oldest), out of the multi, as if it had not
 * been started; http__group_release() starts it again when the group allows.
 */
static void xfer_requeue(struct http *http, struct http_xfer *x)
{
	struct http_group *g = x->group;

	curl_multi_remove_handle(g->multi, x->easy);
	xfer_left(g, x);
	x->turned_back = false;
	x->tries = 0;
	buf_reset(&x->body);
	buf_reset(&x->headers);
	x->errbuf[0] = '\0';
	if (g->opening == x)
		g->opening = NULL;
	g->active--;
	if (g->retired) {
		/* Not onto the retired connections: the group's successor. */
		struct http_group *ng = http__group_get(http, g->name);

		http__reap_check(http, g);
		if (ng != NULL) {
			ng->warmup = g->warmup;
			x->group = g = ng;
		}
	}
	x->held = true;
	x->held_next = g->held;
	g->held = x;
	if (g->held_tail == NULL)
		g->held_tail = x;
}

/*
 * A request on_prereq() turned back never left: back to the queue, and
 * the group waits for an answer before it starts anything more.
 */
static void xfer_turn_back(struct http *http, struct http_xfer *x)
{
	struct http_group *g = x->group;

	if (g->warm)
		log_info("holding requests until a new connection answers",
			 "group=%s", g->name);
	g->warm = false;
	xfer_requeue(http, x);
	http__group_release(http, x->group);
}

/*
 * Did `x` end in libcurl's connect-phase timeout while only waiting for
 * a stream?  libcurl applies the connect timeout to everything before a
 * request goes out, waiting for a free stream or connection included
 * (CURLOPT_PIPEWAIT), so with every stream busy on answers slower than
 * the connect timeout, requests the provider never saw would fail as
 * transport errors (retries, auto-ban counts).  While the group's
 * connections work - some of its requests are out, or one got an answer
 * since this one was started - such a request goes back to the queue
 * instead, not an attempt.  Otherwise there was nothing to wait for, and
 * the timeout is the provider's (unreachable, hung handshake, no answer
 * at all): reported as it is.
 */
static bool xfer_waited_out(const struct http_xfer *x, CURLcode rc)
{
	const struct http_group *g = x->group;

	return rc == CURLE_OPERATION_TIMEDOUT && !x->went_out &&
	       !x->turned_back && x->body.len == 0 && x->headers.len == 0 &&
	       (g->out > 0 || g->answered_ms >= x->started_ms);
}

/*
 * The kind of a libcurl failure of `x` (see enum http_err).  Whether the
 * request went out is the pre-request callback's word: one it never let
 * go never left (DNS, connect, TLS, a connect timeout).  After that, the
 * connect-phase codes can only come from libcurl's own resend on a fresh
 * connection, which it makes only for a try it judged unprocessed (a
 * refused stream - what a GOAWAY makes of the streams past its last id -
 * or a reused connection that died with nothing read).  When it has made
 * all its resends (the pre-request callback ran for each), the last try
 * was such a one too and it gives up ("Connection died", a receive or
 * send error): not sent.  A send error is also "not sent" when the body
 * was not all taken (a provider acts on a whole request only).  Anything
 * else after the request went out may have reached the provider.
 */
static enum http_err curl_err_kind(const struct http_xfer *x, CURLcode rc)
{
	curl_off_t up = 0;

	if (x->tries == 0)
		return HTTP_ERR_NOT_SENT;
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return HTTP_ERR_NOT_SENT;
	case CURLE_RECV_ERROR:
		return x->tries > CURL_RESENDS_MAX ? HTTP_ERR_NOT_SENT
		       : HTTP_ERR_NO_ANSWER;
	case CURLE_SEND_ERROR:
		if (x->tries > CURL_RESENDS_MAX)
			return HTTP_ERR_NOT_SENT;
		if (x->req_body_len > 0 &&
		    (curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up) !=
		     CURLE_OK || up < (curl_off_t)x->req_body_len))
			return HTTP_ERR_NOT_SENT;
		return HTTP_ERR_NO_ANSWER;
	default:
		return HTTP_ERR_NO_ANSWER;
	}
}

/*
 * Detach, report and free one transfer.  `why`, when not NULL, is the
 * bridge's own reason (a cancellation, a request that could not start),
 * of kind `why_err`; else libcurl's `rc` (and the response) tell.
 */
void http__xfer_finish(struct http *http, struct http_xfer *x,
		       CURLcode rc, enum http_err why_err, const char *why)
{
	struct http_response res;
	long status = 0, ver = 0, connects = 0;
	char err[CURL_ERROR_SIZE + 64];
	enum http_err kind = HTTP_ERR_NONE;
	struct http_group *g = x->group;
	bool held = x->held;

	http__xfer_unlink(http, x);
	if (x->held)
		group_unhold(g, x);
	else
		curl_multi_remove_handle(g->multi, x->easy);
	http->stats.in_flight--;
	http->stats.completed++;
	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects) ==
	    CURLE_OK && connects > 0)
		http->stats.connects += (uint64_t)connects;

	memset(&res, 0, sizeof res);
	res.xfer = x;
	if (why == NULL && rc == CURLE_OK)
		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (why != NULL) {
		snprintf(err, sizeof err, "%s", why);
		kind = why_err;
	} else if (buf_full(&x->body)) {
		snprintf(err, sizeof err, "response body over %zu bytes",
			 http->opts.max_body);
		kind = HTTP_ERR_BAD_ANSWER;
		status = 0;
	} else if (rc != CURLE_OK) {
		snprintf(err, sizeof err, "%s%s%s", curl_easy_strerror(rc),
			 x->errbuf[0] ? ": " : "", x->errbuf);
		kind = curl_err_kind(x, rc);
		status = 0;
	} else if (status == 0) {
		/* Done without a status line: nothing usable came back. */
		snprintf(err, sizeof err, "%s%s%s", curl_easy_strerror(rc),
			 x->errbuf[0] ? ": " : "", x->errbuf);
		kind = HTTP_ERR_BAD_ANSWER;
	}
	res.status = status;
	if (status == 0) {
		res.err = kind != HTTP_ERR_NONE ? kind : HTTP_ERR_NO_ANSWER;
		res.error = err;
		res.body = "";
		res.body_len = 0;
	} else {
		res.body = buf_str(&x->body);
		res.body_len = x->body.len;
		curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &ver);
		res.http_version = ver == CURL_HTTP_VERSION_2_0 ? 2 : 1;
	}
	if (x->conn != NULL) {
		x->conn->streams--;
		if (status != 0)
			x->conn->answered = true;
		x->conn = NULL;
	}
	if (g->opening == x)
		g->opening = NULL;
	if (!held) {
		xfer_left(g, x);
		g->active--;
		if (status != 0) {
			g->warm = true;
			g->answered_ms = uv_now(http->loop);
		} else if (why == NULL) {
			g->warm = false;   /* transport error: start over */
		}
	}
	note_health(http, g, status != 0, why == NULL && status == 0);
	x->done(x->arg, &res);
	http__xfer_free(http, x);
	/* The callback may have closed the bridge (groups are gone then). */
	if (!held && !http->closing)
		http__group_release(http, g);
	if (!http->closing)
		http__reap_check(http, g);
}

static void check_multi_info(struct http_group *g)
{
	struct http *http = g->http;
	CURLMsg *msg;
	int pending;
	bool requeued = false;

	while (!http->closing &&
	       (msg = curl_multi_info_read(g->multi, &pending)) != NULL) {
		struct http_xfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				  (char **)&x);
		if (x == NULL)
			continue;
		if (x->turned_back) {
			xfer_turn_back(http, x);
		} else if (xfer_waited_out(x, msg->data.result)) {
			http->stats.requeued++;
			xfer_requeue(http, x);
			if (x->group != g)      /* g is retired */
				http__group_release(http, x->group);
			else
				requeued = true;
		} else {
			http__xfer_finish(http, x, msg->data.result,
					  HTTP_ERR_NONE, NULL);
		}
	}
	if (requeued && !http->closing)
		http__group_release(http, g);
}

/* CURLOPT_OPENSOCKETFUNCTION of warm-up groups: note the connection. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose,
				    struct curl_sockaddr *addr)
{
	struct http *http = arg;
	struct http_conn *c;
	int fd;

	(void)purpose;
	fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC,
		    addr->protocol);
	if (fd < 0)
		return CURL_SOCKET_BAD;
	c = mem_alloc_zero(1, sizeof *c);
	c->fd = fd;
	c->next = http->conns;
	http->conns = c;
	return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the connection is gone. */
static int on_close_socket(void *arg, curl_socket_t fd)
{
	struct http *http = arg;
	struct http_conn **pp, *c;
	struct http_xfer *x;

	for (pp = &http->conns; (c = *pp) != NULL; pp = &c->next) {
		if (c->fd != fd)
			continue;
		*pp = c->next;
		for (x = http->xfers; x != NULL; x = x->next)
			if (x->conn == c)
				x->conn = NULL;
		free(c);
		break;
	}
	return close(fd);
}

/* The warm-up connection whose local end is ip:port, or NULL. */
static struct http_conn *conn_by_local(struct http *http, const char *ip,
				       int port)
{
	struct http_conn *c;

	for (c = http->conns; c != NULL; c = c->next) {
		if (c->local_port == 0) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof ss;
			const void *a = NULL;

			if (getsockname(c->fd, (struct sockaddr *)&ss,
					&len) < 0)
				continue;
			if (ss.ss_family == AF_INET) {
				struct sockaddr_in *in = (void *)&ss;

				c->local_port = ntohs(in->sin_port);
				a = &in->sin_addr;
			} else if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *in6 = (void *)&ss;

				c->local_port = ntohs(in6->sin6_port);
				a = &in6->sin6_addr;
			}
			if (c->local_port == 0)
				continue;          /* not bound yet */
			if (a == NULL || inet_ntop(ss.ss_family, a,
			    c->local_ip, sizeof c->local_ip) == NULL)
				c->local_ip[0] = '\0';
		}
		if (c->local_port == port && strcmp(c->local_ip, ip) == 0)
			return c;
	}
	return NULL;
}

/*
 * CURLOPT_PREREQFUNCTION of every request: it is about to go out (the
 * group's count of transfers waiting inside libcurl drops, see the top).
 * In warm-up groups (see the top) more: the request is about to go out
 * on the connection with this local end.  One request
 * at a time on a connection until it has answered; others are turned
 * back (http__xfer_finish() puts them back in their group).  libcurl gives no
 * address (port 0) to a request that joined a connection still being
 * made: a new connection, so the same rule, as long as another request
 * of the group is out to bring the answer that lets it go.
 */
static int on_prereq(void *arg, char *peer_ip, char *local_ip,
		     int peer_port, int local_port)
{
	struct http_xfer *x = arg;
	struct http_conn *c;

	(void)peer_ip;
	(void)peer_port;
	if (!x->group->warmup) {
		xfer_went_out(x);
		return CURL_PREREQFUNC_OK;
	}
	/* libcurl retrying it elsewhere: it left the old connection. */
	if (x->conn != NULL) {
		x->conn->streams--;
		x->conn = NULL;
	}
	c = local_port > 0 ? conn_by_local(x->http, local_ip, local_port)
	    : NULL;
	if (c != NULL ? !c->answered && c->streams > 0
	    : local_port <= 0 && x->group->active > 1) {
		x->turned_back = true;
		x->http->stats.turned_back++;
		return CURL_PREREQFUNC_ABORT;
	}
	if (c != NULL) {
		c->streams++;
		x->conn = c;
	}
	xfer_went_out(x);
	return CURL_PREREQFUNC_OK;
}

/* A new group with its own multi handle and timer; NULL on failure. */
struct http_group *http__group_new(struct http *http, const char *name)
{
	struct http_group *g = mem_alloc_zero(1, sizeof *g);
	CURLM *m = curl_multi_init();

	if (m == NULL || uv_timer_init(http->loop, &g->timer) < 0) {
		curl_multi_cleanup(m);
		free(g);
		return NULL;
	}
	g->name = mem_strdup(name);
	g->http = http;
	g->multi = m;
	g->timer.data = g;
	g->gen = ++http->next_gen;
	curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m, CURLMOPT_SOCKETDATA, g);
	curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m, CURLMOPT_TIMERDATA, g);
	curl_multi_setopt(m, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS,
			  http->opts.max_host_connections);
	curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS,
			  http->opts.max_streams);
	/* Keep idle connections: by default the cache shrinks with the
	 * number of transfers, and a lull between bursts would close
	 * connections only to open (and TLS-handshake) them again. */
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 256L);
	g->next = http->groups;
	http->groups = g;
	return g;
}

/* Group `name`, made on first use; NULL when it cannot be. */
struct http_group *http__group_get(struct http *http, const char *name)
{
	struct http_group *g;

	for (g = http->groups; g != NULL; g = g->next)
		if (g != http->common && !g->retired &&
		    strcmp(g->name, name) == 0)
			return g;
	g = http__group_new(http, name);
	if (g != NULL)
		http->stats.groups++;
	return g;
}

static int set_client_cert(CURL *e, const struct http_request *req)
{
	struct curl_blob b;
	CURLcode rc = CURLE_OK;

	memset(&b, 0, sizeof b);
	b.flags = CURL_BLOB_COPY;
	if (req->client_p12 != NULL && req->client_p12_len > 0) {
		b.data = (void *)req->client_p12;
		b.len = req->client_p12_len;
		rc = curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "P12");
	} else if (req->client_cert != NULL && req->client_key != NULL) {
		b.data = (void *)req->client_cert;
		b.len = strlen(req->client_cert);
		rc = curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		b.data = (void *)req->client_key;
		b.len = strlen(req->client_key);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	} else {
		return 0;
	}
	if (rc == CURLE_OK && req->client_key_password != NULL)
		rc = curl_easy_setopt(e, CURLOPT_KEYPASSWD,
				      req->client_key_password);
	return rc == CURLE_OK ? 0 : -EINVAL;
}

/*
 * Give `x` an easy handle set up for `req` in its group; 0 or -EINVAL
 * (bad client certificate; x keeps the handle for http__xfer_free()).
 */
int http__xfer_curl_setup(struct http *http, struct http_xfer *x,
			  const struct http_request *req)
{
	struct http_group *group = x->group;
	const char *const *h;

	buf_init(&x->body, http->opts.max_body);
	buf_init(&x->headers, HTTP_HEADERS_MAX);
	CURL *e = easy_get(http);

	if (e == NULL)
		return -ENOMEM;
	x->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
	/*
	 * Wait for a connection that may multiplex rather than open one;
	 * not in a warm-up group: a new connection there takes one stream
	 * until the server has accepted a request, and requests waiting for
	 * it would all be put on it at once (and refused).
	 */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, group->warmup ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
	if (group->warmup) {
		curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
		curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, http);
		curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION,
				 on_close_socket);
		curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, http);
	}
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/* A group that only fails (hung provider): a fresh connection per
	 * request, not kept (note_health). */
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, group->rebuild ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, group->rebuild ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms > 0 ? req->connect_timeout_ms
			 : http->opts.connect_timeout_ms);
	x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms
			: http->opts.request_timeout_ms;
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
			 x->timeout_ms * WAIT_CAP_FACTOR +
			 (req->connect_timeout_ms > 0 ? req->connect_timeout_ms
			  : http->opts.connect_timeout_ms));
	/* Verification stays on: only which CA to trust can be chosen. */
	if (req->ca_path != NULL && req->ca_path[0] != '\0')
		curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_path);
	if (set_client_cert(e, req) < 0)
		return -EINVAL;

	/* No "Expect: 100-continue" round trip on HTTP/1.1. */
	x->hdrs = curl_slist_append(x->hdrs, "Expect:");
	for (h = req->headers; h != NULL && *h != NULL; h++)
		x->hdrs = curl_slist_append(x->hdrs, *h);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);

	if (req->body != NULL) {
		x->req_body = mem_alloc(req->body_len + 1);
		memcpy(x->req_body, req->body, req->body_len);
		x->req_body[req->body_len] = '\0';
		x->req_body_len = req->body_len;
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body);
	}
	if (req->method != NULL && strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	else if (req->method != NULL && strcmp(req->method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	return 0;
}

/* Into libcurl now, or wait in the group; 0 or -EIO. */
int http__xfer_curl_go(struct http_xfer *x)
{
	struct http_group *group = x->group;

	if (!group_may_run(group)) {
		x->held = true;
		if (group->held_tail != NULL)
			group->held_tail->held_next = x;
		else
			group->held = x;
		group->held_tail = x;
		return 0;
	}
	return xfer_start(x);
}

