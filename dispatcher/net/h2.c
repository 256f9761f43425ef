/*
 * h2.c - our own HTTP/2 client for h2-only hosts.  See h2.h.
 *
 * A connection is a uv_tcp_t, an OpenSSL session on memory BIOs and an
 * nghttp2 client session.  Bytes read go into the read BIO; decrypted
 * bytes go to nghttp2_session_mem_recv(), all of them at once.  Frames
 * nghttp2 has to send are pulled in a uv_prepare_t callback, i.e. once
 * per loop iteration, encrypted into the write BIO and leave in one
 * uv_write: a burst of requests costs one syscall and a few TLS records.
 *
 * States of a connection (conn_set_state(), the only place they change):
 *   RESOLVING -> CONNECTING -> TLS -> SETTINGS -> READY -> DRAINING -> CLOSED
 * SETTINGS waits for the server's first SETTINGS frame, so the stream
 * limit is known before any request goes out.  DRAINING takes no new
 * streams (GOAWAY received, idle close, PING unanswered) and closes when
 * its streams are done.  CLOSED waits for libuv to close the handles.
 *
 * A request is on exactly one list: its host's queue (waiting for a
 * stream), its connection's streams, the client's finished list (answer
 * ready, callback not yet run), or its connection's zombies (done with,
 * but its stream still open in nghttp2, which may read its header block
 * and body until the stream closes).  Finished requests are reported
 * after the nghttp2 or libuv call that finished them returns, so a
 * callback may submit, cancel or close freely.
 *
 * Memory: a connection is freed when its handles have closed and its
 * address lookup has returned; the client when every connection and its
 * own two handles are gone.
 *
 * The files: h2.c (this one) keeps the requests, nghttp2's callbacks,
 * the streams, the clock, the reporting and the API; h2_conn.c the TLS
 * contexts, hosts, connections (state, memory, opening) and writing.
 * What they share is in h2_int.h.
 */
#include "net/h2.h"

#include "net/h2_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

/* ---- response headers (also http_curl.c's) ------------------------ */

void http__header_add(struct buf *b, const void *name, size_t nl,
		      const void *value, size_t vl)
{
	if (b->len + nl + vl + 2 > HTTP_HEADERS_MAX)
		return;
	buf_add(b, name, nl);
	buf_addc(b, '\0');
	buf_add(b, value, vl);
	buf_addc(b, '\0');
}

/* ---- request lists ------------------------------------------------ */

static void list_remove(struct h2_req **head, struct h2_req **tail,
			struct h2_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else if (tail != NULL)
		*tail = r->prev;
	r->prev = r->next = NULL;
}

static void list_append(struct h2_req **head, struct h2_req **tail,
			struct h2_req *r)
{
	r->next = NULL;
	r->prev = *tail;
	if (*tail != NULL)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

/* Push at the front; `tail` may be NULL for a list without one. */
static void list_push(struct h2_req **head, struct h2_req **tail,
		      struct h2_req *r)
{
	r->prev = NULL;
	r->next = *head;
	if (*head != NULL)
		(*head)->prev = r;
	else if (tail != NULL)
		*tail = r;
	*head = r;
}

/* Take `r` off whichever list it is on. */
void h2__req_detach(struct h2_req *r)
{
	switch (r->where) {
	case H2R_QUEUED:
		list_remove(&r->host->queue, &r->host->queue_tail, r);
		break;
	case H2R_STREAM:
		list_remove(&r->conn->reqs, NULL, r);
		r->conn = NULL;
		break;
	case H2R_FINISHED:
		list_remove(&r->h->finished, &r->h->finished_tail, r);
		break;
	case H2R_ZOMBIE:
		list_remove(&r->wire->zombies, NULL, r);
		break;
	}
}

/* nghttp2 forgets `r`: no callback of its stream will find it. */
void h2__req_unwire(struct h2_req *r)
{
	if (r->wire != NULL && r->wire->s != NULL)
		nghttp2_session_set_stream_user_data(r->wire->s, r->stream_id,
						     NULL);
	r->wire = NULL;
}

void h2__req_free(struct h2_req *r);

/*
 * Done with `r` (off every list): freed now, or kept as a zombie of its
 * connection while its stream is open.
 */
static void req_release(struct h2_req *r)
{
	struct h2_conn *c = r->wire;

	if (c == NULL || c->state == H2C_CLOSED) {
		h2__req_unwire(r);
		h2__req_free(r);
		return;
	}
	r->where = H2R_ZOMBIE;
	list_push(&c->zombies, NULL, r);
}

static void wipe_free(char *s, size_t n)
{
	if (s != NULL) {
		explicit_bzero(s, n);
		free(s);
	}
}

void h2__req_free(struct h2_req *r)
{
	size_t i;

	for (i = 0; r->headers != NULL && r->headers[i] != NULL; i++)
		wipe_free(r->headers[i], strlen(r->headers[i]));
	free(r->headers);
	wipe_free(r->body, r->req.body_len);
	free(r->url);
	free(r->method);
	free(r->ca_path);
	free(r->path);
	free(r->nv);
	buf_free(&r->rbody);
	buf_free(&r->rheaders);
	free(r->error);
	free(r);
}

/*
 * Off its list and onto the finished one, with `error` (of kind `err`)
 * if status 0.
 */
void h2__req_finish(struct h2_req *r, enum http_err err,
		    const char *error)
{
	struct h2 *h = r->h;

	h2__req_detach(r);
	if (error != NULL && r->error == NULL) {
		r->error = mem_strdup(error);
		r->err = err;
	}
	r->where = H2R_FINISHED;
	list_append(&h->finished, &h->finished_tail, r);
}

/* Back to the front of its host's queue: it never reached the server. */
void h2__req_requeue(struct h2_req *r)
{
	h2__req_detach(r);
	h2__req_unwire(r);
	r->stream_id = 0;
	r->sent = false;
	r->body_off = 0;
	r->status = 0;
	buf_reset(&r->rbody);
	buf_reset(&r->rheaders);
	r->where = H2R_QUEUED;
	list_push(&r->host->queue, &r->host->queue_tail, r);
}

/* ---- nghttp2 callbacks -------------------------------------------- */

static ssize_t on_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf,
			    size_t len, uint32_t *flags,
			    nghttp2_data_source *src, void *ud)
{
	struct h2_req *r = src->ptr;
	size_t left = r->req.body_len - r->body_off;

	(void)s;
	(void)sid;
	(void)ud;
	if (len > left)
		len = left;
	memcpy(buf, r->body + r->body_off, len);
	r->body_off += len;
	if (r->body_off == r->req.body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)len;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f,
			 void *ud)
{
	struct h2_conn *c = ud;
	struct h2_req *r;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (r != NULL && r->where == H2R_STREAM && !r->sent) {
		r->sent = true;
		r->sent_ms = uv_now(c->h->loop);
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f,
			 void *ud)
{
	struct h2_conn *c = ud;

	switch (f->hd.type) {
	case NGHTTP2_SETTINGS: {
		uint32_t m;

		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			break;
		m = nghttp2_session_get_remote_settings(
			s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
		c->max_streams = m < c->h->opts.max_streams
			? m : c->h->opts.max_streams;
		if (c->state == H2C_SETTINGS) {
			h2__conn_set_state(c, H2C_READY);
			c->deadline_ms = 0;
		}
		break;
	}
	case NGHTTP2_GOAWAY:
		/* Streams past last_stream_id close as REFUSED_STREAM. */
		if (c->state == H2C_READY || c->state == H2C_SETTINGS)
			h2__conn_set_state(c, H2C_DRAINING);
		break;
	case NGHTTP2_PING:
		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			c->ping_sent_ms = 0;
		break;
	default:
		break;
	}
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f,
		     const uint8_t *name, size_t nl, const uint8_t *value,
		     size_t vl, uint8_t flags, void *ud)
{
	struct h2_req *r;

	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (r == NULL || r->where != H2R_STREAM)
		return 0;
	if (nl == 7 && memcmp(name, ":status", 7) == 0) {
		long st = 0;
		size_t i;

		for (i = 0; i < vl && i < 3; i++)
			st = st * 10 + (value[i] - '0');
		r->status = st;
		buf_reset(&r->rheaders);   /* the final response's headers */
		return 0;
	}
	if (nl > 0 && name[0] == ':')
		return 0;
	http__header_add(&r->rheaders, name, nl, value, vl);
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t sid,
			 const uint8_t *data, size_t len, void *ud)
{
	struct h2_req *r = nghttp2_session_get_stream_user_data(s, sid);

	(void)flags;
	(void)ud;
	if (r == NULL || r->where != H2R_STREAM || buf_full(&r->rbody))
		return 0;
	/* Over the cap (r->rbody's max): the buffer stays full. */
	if (buf_add(&r->rbody, data, len) < 0) {
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sid,
					  NGHTTP2_CANCEL);
	}
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t sid, uint32_t code,
			   void *ud)
{
	struct h2_conn *c = ud;
	struct h2_req *r = nghttp2_session_get_stream_user_data(s, sid);
	char buf[160];

	if (c->streams > 0)
		c->streams--;
	if (c->streams == 0)
		c->idle_since_ms = uv_now(c->h->loop);
	if (r == NULL)
		return 0;
	if (r->where == H2R_ZOMBIE) {
		h2__req_detach(r);          /* off r->wire's (c's) zombies */
		r->wire = NULL;
		h2__req_free(r);
		return 0;
	}
	r->wire = NULL;
	if (r->where != H2R_STREAM)
		return 0;       /* timed out: reported from the list */
	if (buf_full(&r->rbody)) {
		snprintf(buf, sizeof buf, "response body over %zu bytes",
			 c->h->opts.max_body);
		h2__req_finish(r, HTTP_ERR_BAD_ANSWER, buf);
	} else if (code == NGHTTP2_NO_ERROR && r->status >= 200) {
		h2__req_finish(r, HTTP_ERR_NONE, NULL);
	} else if (code == NGHTTP2_REFUSED_STREAM &&
		   r->refused < H2_MAX_REFUSED) {
		/* Never processed (RFC 9113 8.7): safe to send again. */
		r->refused++;
		c->h->stats.refused++;
		h2__req_requeue(r);
	} else {
		/* Refused too often, or never sent: not processed; reset
		 * after it left: maybe processed; ended cleanly without a
		 * response: an answer we cannot use. */
		r->status = 0;
		snprintf(buf, sizeof buf,
			 "HTTP/2 stream %d was not closed cleanly: %s "
			 "(err %u)", sid, nghttp2_http2_strerror(code), code);
		h2__req_finish(r, code == NGHTTP2_REFUSED_STREAM || !r->sent
			       ? HTTP_ERR_NOT_SENT : code == NGHTTP2_NO_ERROR
			       ? HTTP_ERR_BAD_ANSWER : HTTP_ERR_NO_ANSWER, buf);
	}
	return 0;
}

static nghttp2_session_callbacks *make_callbacks(void)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return NULL;
	nghttp2_session_callbacks_set_on_frame_send_callback(cb,
							     on_frame_send);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
							     on_frame_recv);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
		cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(
		cb, on_stream_close);
	return cb;
}

/* ---- streams ------------------------------------------------------ */

static void nv_set(nghttp2_nv *nv, const char *name, size_t nl,
		   const char *value, size_t vl)
{
	nv->name = (uint8_t *)name;
	nv->namelen = nl;
	nv->value = (uint8_t *)value;
	nv->valuelen = vl;
	nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME |
		    NGHTTP2_NV_FLAG_NO_COPY_VALUE;
}

/*
 * The header block, built once per request: pseudo-headers, then the
 * caller's "Name: value" lines with names lower-cased (HTTP/2 wants
 * them so) and HTTP/1 connection headers dropped.  Header lines were
 * lower-cased in place at submit.
 */
static void req_build_nv(struct h2_req *r)
{
	size_t n = 0, i;

	for (i = 0; r->headers[i] != NULL; i++)
		;
	r->nv = mem_alloc_zero(i + 5, sizeof *r->nv);
	nv_set(&r->nv[n++], ":method", 7, r->method, strlen(r->method));
	nv_set(&r->nv[n++], ":scheme", 7, "https", 5);
	nv_set(&r->nv[n++], ":authority", 10, r->host->authority,
	       strlen(r->host->authority));
	nv_set(&r->nv[n++], ":path", 5, r->path, strlen(r->path));
	for (i = 0; r->headers[i] != NULL; i++) {
		char *line = r->headers[i], *colon = strchr(line, ':');
		const char *v;
		size_t nl;

		if (colon == NULL || colon == line)
			continue;
		nl = (size_t)(colon - line);
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if ((nl == 4 && strncmp(line, "host", 4) == 0) ||
		    (nl == 10 && strncmp(line, "connection", 10) == 0) ||
		    (nl == 10 && strncmp(line, "keep-alive", 10) == 0) ||
		    (nl == 17 && strncmp(line, "transfer-encoding", 17) == 0) ||
		    (nl == 7 && strncmp(line, "upgrade", 7) == 0) ||
		    (nl == 6 && strncmp(line, "expect", 6) == 0) ||
		    (nl == 16 && strncmp(line, "proxy-connection", 16) == 0))
			continue;
		nv_set(&r->nv[n++], line, nl, v, strlen(v));
	}
	r->nnv = n;
}

/* Open a stream for `r` on `c`; false if nghttp2 refused it. */
static bool stream_start(struct h2_conn *c, struct h2_req *r)
{
	nghttp2_data_provider dp, *dpp = NULL;
	int32_t sid;

	if (r->nv == NULL)
		req_build_nv(r);
	if (r->body != NULL) {
		dp.source.ptr = r;
		dp.read_callback = on_read_body;
		dpp = &dp;
	}
	sid = nghttp2_submit_request(c->s, NULL, r->nv, r->nnv, dpp, r);
	if (sid < 0) {
		log_warn("HTTP/2 request not started", "host=%s err=%s",
			 c->host->authority, nghttp2_strerror(sid));
		return false;
	}
	list_remove(&c->host->queue, &c->host->queue_tail, r);
	r->where = H2R_STREAM;
	r->conn = c;
	r->wire = c;
	r->stream_id = sid;
	list_push(&c->reqs, NULL, r);
	c->streams++;
	c->idle_since_ms = 0;
	h2__conn_mark_dirty(c);
	return true;
}

void h2__conn_open(struct h2_host *hh, const struct h2_req *opener);

/*
 * Give waiting requests streams: on the first ready connection with
 * room; a new connection when all are full and the limit allows (one
 * opening at a time per host).
 */
void h2__host_pump(struct h2_host *hh)
{
	struct h2 *h = hh->h;

	while (hh->queue != NULL && !h->closing) {
		struct h2_conn *c, *best = NULL;
		bool opening = false;

		for (c = hh->conns; c != NULL; c = c->next) {
			if (c->state == H2C_READY &&
			    c->streams < c->max_streams) {
				best = c;
				break;
			}
			if (c->state < H2C_READY)
				opening = true;
		}
		if (best == NULL) {
			if (!opening && hh->n_conns < h->opts.max_conns)
				h2__conn_open(hh, hh->queue);
			return;
		}
		while (hh->queue != NULL &&
		       best->streams < best->max_streams)
			if (!stream_start(best, hh->queue)) {
				h2__conn_set_state(best, H2C_DRAINING);
				break;
			}
	}
}

/* ---- the clock ------------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
	struct h2 *h = t->data;
	uint64_t now = uv_now(h->loop);
	struct h2_host *hh;
	bool any = false;

	for (hh = h->hosts; hh != NULL; hh = hh->next) {
		struct h2_conn *c, *cn;

		for (c = hh->conns; c != NULL; c = cn) {
			struct h2_req *r, *rn;

			cn = c->next;
			if (c->state == H2C_CLOSED)
				continue;
			any = true;
			if (c->state < H2C_READY && c->deadline_ms != 0 &&
			    now >= c->deadline_ms) {
				h2__conn_fail(c, "Connection timed out "
					      "after %ld ms",
					      c->connect_timeout_ms);
				continue;
			}
			if (c->ping_sent_ms != 0 &&
			    now - c->ping_sent_ms >=
			    (uint64_t)c->connect_timeout_ms) {
				h->stats.pings_failed++;
				h2__conn_fail(c, "Operation timed out: no PING "
					      "answer in %ld ms",
					      c->connect_timeout_ms);
				continue;
			}
			if (c->state == H2C_DRAINING && c->streams == 0) {
				h2__conn_close(c, "drained");
				continue;
			}
			if (c->streams == 0 && c->idle_since_ms != 0 &&
			    now - c->idle_since_ms >= (uint64_t)h->opts.idle_ms &&
			    hh->queue == NULL) {
				h2__conn_close(c, "idle");
				continue;
			}
			for (r = c->reqs; r != NULL; r = rn) {
				char buf[128];

				rn = r->next;
				if (!r->sent ||
				    now - r->sent_ms < (uint64_t)r->timeout_ms)
					continue;
				nghttp2_submit_rst_stream(c->s,
							  NGHTTP2_FLAG_NONE,
							  r->stream_id,
							  NGHTTP2_CANCEL);
				snprintf(buf, sizeof buf, "Operation timed "
					 "out: no answer %llu ms after the "
					 "request was sent",
					 (unsigned long long)(now - r->sent_ms));
				h2__req_finish(r, HTTP_ERR_NO_ANSWER, buf);
				if (hh->rebuild) {
					/* A hung provider: not this one. */
					h2__conn_set_state(c, H2C_DRAINING);
				/* Is the connection alive at all? */
				} else if (c->ping_sent_ms == 0 &&
				    nghttp2_submit_ping(c->s,
							NGHTTP2_FLAG_NONE,
							NULL) == 0)
					c->ping_sent_ms = now;
				h2__conn_mark_dirty(c);
			}
		}
	}
	h2__report_finished(h);
	if (!any && h->ticking) {
		h->ticking = false;
		uv_timer_stop(&h->tick);
	}
}

void h2__tick_start(struct h2 *h)
{
	if (!h->ticking && !h->closing) {
		h->ticking = true;
		uv_timer_start(&h->tick, on_tick, H2_TICK_MS, H2_TICK_MS);
	}
}

/* ---- reporting ---------------------------------------------------- */

/*
 * Track whether a host only fails: after rebuild_after_ms of nothing but
 * transport errors, connections that time out are retired (on_tick)
 * until an answer comes back.  The log lines are the bridge's (http_curl.c).
 */
static void note_health(struct h2_host *hh, bool answered)
{
	struct h2 *h = hh->h;
	uint64_t now = uv_now(h->loop);

	if (answered) {
		if (hh->rebuild)
			log_info("provider answers again: connections reused",
				 "host=%s", hh->authority);
		hh->failing_since_ms = 0;
		hh->rebuild = false;
	} else if (h->opts.rebuild_after_ms >= 0) {
		if (hh->failing_since_ms == 0) {
			hh->failing_since_ms = now > 0 ? now : 1;
		} else if (!hh->rebuild &&
			   now - hh->failing_since_ms >=
			   (uint64_t)h->opts.rebuild_after_ms) {
			hh->rebuild = true;
			h->stats.rebuilds++;
			log_warn("only transport errors: rebuilding connections",
				 "host=%s failing_ms=%llu", hh->authority,
				 (unsigned long long)(now -
						      hh->failing_since_ms));
		}
	}
}

/* Run the callbacks of finished requests (outside nghttp2 and TLS). */
void h2__report_finished(struct h2 *h)
{
	if (h->reporting > 0)
		return;
	h->reporting++;
	while (h->finished != NULL && !h->closing) {
		struct h2_req *r = h->finished;
		struct h2_answer a;

		list_remove(&h->finished, &h->finished_tail, r);
		memset(&a, 0, sizeof a);
		a.req = &r->req;
		a.not_h2 = r->not_h2;
		if (r->error != NULL || r->status == 0) {
			a.status = 0;
			a.err = r->error != NULL ? r->err
				: HTTP_ERR_BAD_ANSWER;
			a.error = r->error != NULL ? r->error
				: "HTTP/2 stream ended without a response";
			a.body = "";
		} else {
			a.status = r->status;
			a.body = buf_str(&r->rbody);
			a.body_len = r->rbody.len;
			a.headers = r->rheaders.data;
			a.headers_len = r->rheaders.len;
		}
		if (!r->not_h2)
			note_health(r->host, a.status != 0);
		r->done(r->arg, &a);
		req_release(r);
	}
	h->reporting--;
}

/* ---- the API ------------------------------------------------------ */

int h2_new(struct h2 **out, uv_loop_t *loop, const struct h2_opts *opts)
{
	struct h2 *h = mem_alloc_zero(1, sizeof *h);

	h->loop = loop;
	if (opts != NULL)
		h->opts = *opts;
	if (h->opts.max_conns == 0)
		h->opts.max_conns = HTTP_FALLBACK_MAX_HOST_CONNECTIONS;
	if (h->opts.max_streams == 0)
		h->opts.max_streams = HTTP_FALLBACK_MAX_STREAMS;
	if (h->opts.max_body == 0)
		h->opts.max_body = HTTP_FALLBACK_MAX_BODY;
	if (h->opts.idle_ms <= 0)
		h->opts.idle_ms = 118000;
	if (h->opts.rebuild_after_ms == 0)
		h->opts.rebuild_after_ms = HTTP_FALLBACK_REBUILD_AFTER_MS;
	h->cbs = make_callbacks();
	if (h->cbs == NULL) {
		free(h);
		return -ENOMEM;
	}
	uv_prepare_init(loop, &h->flush);
	h->flush.data = h;
	uv_timer_init(loop, &h->tick);
	h->tick.data = h;
	*out = h;
	return 0;
}

/* Copy the request; lower-case the header names for HTTP/2. */
static void req_copy(struct h2_req *r, const struct http_request *src)
{
	size_t n = 0, i;

	r->req = *src;
	r->url = mem_strdup(src->url);
	r->req.url = r->url;
	r->method = mem_strdup(src->method != NULL ? src->method
			       : src->body != NULL ? "POST" : "GET");
	r->req.method = src->method != NULL ? r->method : NULL;
	r->ca_path = src->ca_path != NULL ? mem_strdup(src->ca_path) : NULL;
	r->req.ca_path = r->ca_path;
	while (src->headers != NULL && src->headers[n] != NULL)
		n++;
	r->headers = mem_alloc_zero(n + 1, sizeof *r->headers);
	for (i = 0; i < n; i++) {
		char *line = mem_strdup(src->headers[i]), *p;

		for (p = line; *p != '\0' && *p != ':'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		r->headers[i] = line;
	}
	r->req.headers = (const char *const *)r->headers;
	if (src->body != NULL) {
		r->body = mem_alloc(src->body_len + 1);
		memcpy(r->body, src->body, src->body_len);
		r->body[src->body_len] = '\0';
	}
	r->req.body = r->body;
	r->req.conn_group = NULL;
	r->req.client_cert = NULL;
	r->req.client_key = NULL;
	r->req.client_p12 = NULL;
	r->req.client_key_password = NULL;
}

struct h2_req *h2_submit(struct h2 *h, const struct http_request *req,
			 long connect_timeout_ms, long timeout_ms,
			 h2_done_fn done, void *arg, int *err)
{
	const char *ca = req->ca_path != NULL ? req->ca_path : "";
	char *host, *port, *path;
	struct h2_host *hh;
	struct h2_req *r;

	if (h->closing) {
		*err = -ECANCELED;
		return NULL;
	}
	if (h->last_url != NULL && strcmp(h->last_url, req->url) == 0 &&
	    strcmp(h->last_ca, ca) == 0) {
		hh = h->last_host;
		path = mem_strdup(h->last_path);
	} else {
		if (h2__parse_url(req->url, &host, &port, &path) < 0) {
			*err = -EINVAL;
			return NULL;
		}
		hh = h2__host_get(h, host, port, req->ca_path);
		free(host);
		free(port);
		free(h->last_url);
		free(h->last_ca);
		free(h->last_path);
		h->last_url = mem_strdup(req->url);
		h->last_ca = mem_strdup(ca);
		h->last_path = mem_strdup(path);
		h->last_host = hh;
	}
	r = mem_alloc_zero(1, sizeof *r);
	buf_init(&r->rbody, h->opts.max_body);
	buf_init(&r->rheaders, HTTP_HEADERS_MAX);
	r->h = h;
	r->host = hh;
	r->path = path;
	r->timeout_ms = timeout_ms;
	r->connect_timeout_ms = connect_timeout_ms;
	r->done = done;
	r->arg = arg;
	req_copy(r, req);
	r->where = H2R_QUEUED;
	list_append(&hh->queue, &hh->queue_tail, r);
	if (hh->not_h2) {
		/* Raced with the ALPN answer: the bridge sends it by curl. */
		r->not_h2 = true;
		h2__req_finish(r, HTTP_ERR_NOT_SENT,
			       "the server does not speak HTTP/2");
	} else {
		h2__host_pump(hh);
	}
	/* Reported from the loop, never from inside h2_submit(). */
	if (h->finished != NULL || h->dirty != NULL) {
		if (!h->flushing) {
			h->flushing = true;
			uv_prepare_start(&h->flush, h2__on_flush);
		}
	}
	h2__tick_start(h);
	*err = 0;
	return r;
}

void h2_cancel(struct h2 *h, struct h2_req *r)
{
	if (r->where == H2R_STREAM) {
		struct h2_conn *c = r->conn;

		nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE,
					  r->stream_id, NGHTTP2_CANCEL);
		h2__conn_mark_dirty(c);
	}
	h2__req_detach(r);
	req_release(r);
}

void h2_get_stats(const struct h2 *h, struct h2_stats *out)
{
	*out = h->stats;
}

static void h2_handle_closed(uv_handle_t *hd)
{
	struct h2 *h = hd->data;

	h->closing_handles--;
	h2__maybe_free(h);
}

void h2__maybe_free(struct h2 *h)
{
	if (!h->closing || h->closing_handles > 0 || h->live_conns > 0)
		return;
	while (h->hosts != NULL) {
		struct h2_host *hh = h->hosts;

		h->hosts = hh->next;
		free(hh->host);
		free(hh->port);
		free(hh->authority);
		free(hh->ca_path);
		free(hh);
	}
	while (h->tls != NULL) {
		struct h2_tls *t = h->tls;

		h->tls = t->next;
		SSL_CTX_free(t->ctx);
		free(t->ca_path);
		free(t->error);
		free(t);
	}
	nghttp2_session_callbacks_del(h->cbs);
	free(h->last_url);
	free(h->last_ca);
	free(h->last_path);
	if (h->close_cb != NULL)
		h->close_cb(h->close_arg);
	free(h);
}

void h2_close(struct h2 *h, void (*cb)(void *arg), void *arg)
{
	struct h2_host *hh;

	if (h == NULL || h->closing)
		return;
	h->closing = true;
	h->close_cb = cb;
	h->close_arg = arg;
	while (h->finished != NULL) {
		struct h2_req *r = h->finished;

		list_remove(&h->finished, &h->finished_tail, r);
		h2__req_unwire(r);
		h2__req_free(r);
	}
	for (hh = h->hosts; hh != NULL; hh = hh->next) {
		struct h2_conn *c, *cn;

		while (hh->queue != NULL) {
			struct h2_req *r = hh->queue;

			list_remove(&hh->queue, &hh->queue_tail, r);
			h2__req_free(r);
		}
		for (c = hh->conns; c != NULL; c = cn) {
			cn = c->next;
			h2__conn_forget_streams(c);
			while (c->reqs != NULL) {
				struct h2_req *r = c->reqs;

				r->where = H2R_STREAM;
				h2__req_detach(r);
				h2__req_free(r);
			}
			/* May free c (then it left the list). */
			h2__conn_close(c, "closing");
		}
	}
	h->dirty = NULL;
	h->closing_handles = 2;
	uv_close((uv_handle_t *)&h->flush, h2_handle_closed);
	uv_close((uv_handle_t *)&h->tick, h2_handle_closed);
}

