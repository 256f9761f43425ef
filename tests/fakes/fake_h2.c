/*
 * fake_h2.c — the HTTP/2 transport: an nghttp2 server session per
 * connection.
 *
 * Frames arrive through fake_h2_feed(); a stream's headers and body are
 * collected into a struct fake_req, and when the stream half-closes the
 * request is dispatched.  Responses are submitted from inside the
 * receive callbacks or later from a timer; output is produced only by
 * fake_h2_flush(), which nghttp2 forbids inside its own callbacks, so a
 * flag defers it until fake_h2_feed() returns.  Each stream owns its
 * request and its response body until nghttp2 closes it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

#include "fake_conn.h"

struct fake_h2 {
	nghttp2_session *s;
	int in_recv;
	struct h2_stream *streams;	/* open streams we allocated */
	uint8_t *out;
	size_t outcap;
	int goaway_sent;		/* a GOAWAY was submitted ... */
	int32_t goaway_last;		/* ... with this last-stream-id */
};

struct h2_stream {
	struct fake_req *req;
	struct fake_resp resp;
	size_t off;
	int token_ep;		/* sink: :path is an OAuth endpoint */
	struct h2_stream *next, *prev;
};

static void
stream_free(struct fake_h2 *h, struct h2_stream *st)
{
	if (st->next != NULL)
		st->next->prev = st->prev;
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->req != NULL)
		fake_req_free(st->req);
	fake_resp_free(&st->resp);
	free(st);
}

static int
on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct fake_conn *c = ud;
	struct h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = fake_xcalloc(1, sizeof *st);
	st->next = c->h2->streams;
	if (st->next != NULL)
		st->next->prev = st;
	c->h2->streams = st;
	if (!fake_cfg.sink) {
		st->req = fake_xcalloc(1, sizeof *st->req);
		st->req->prov = c->lis->prov;
		st->req->conn = c;
		st->req->stream_id = f->hd.stream_id;
		st->req->http2 = 1;
	}
	nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
	return 0;
}

static int
on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
    size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct h2_stream *st;
	struct fake_req *r;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (st == NULL)
		return 0;
	if ((r = st->req) == NULL) {
		if (nl == 5 && memcmp(name, ":path", 5) == 0 &&
		    vl >= 6 && memcmp(value + vl - 6, "/token", 6) == 0)
			st->token_ep = 1;
		return 0;
	}
	if (nl == 7 && memcmp(name, ":method", 7) == 0)
		r->method = fake_xstrndup((const char *)value, vl);
	else if (nl == 5 && memcmp(name, ":path", 5) == 0)
		r->path = fake_xstrndup((const char *)value, vl);
	else if (nl > 0 && name[0] == ':')
		return 0;
	else
		fake_req_add_header(r, (const char *)name, nl,
		    (const char *)value, vl);
	return 0;
}

static int
on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
    size_t len, void *ud)
{
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s, sid);

	if (st != NULL && st->req != NULL)
		fake_req_add_body(st->req, (const char *)data, len);
	return 0;
}

static int
on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct fake_conn *c = ud;
	struct h2_stream *st;
	struct fake_resp resp;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
	if (st == NULL)
		return 0;
	if (c->h2->goaway_sent && f->hd.stream_id > c->h2->goaway_last) {
		/* Above our GOAWAY's last-stream-id: not processed (RFC 9113
		 * 6.8), so not logged or answered; the client may retry it. */
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE,
		    f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	memset(&resp, 0, sizeof resp);
	if (fake_cfg.sink) {
		fake_sink_handle(c->lis->prov,
		    st->token_ep ? "/token" : "", &resp);
	} else {
		if (st->req->method == NULL)
			st->req->method = fake_xstrdup("");
		if (st->req->path == NULL)
			st->req->path = fake_xstrdup("");
		fake_dispatch(st->req, &resp);
	}
	fake_conn_respond(c, f->hd.stream_id, &resp);
	return 0;
}

static int
on_stream_close(nghttp2_session *s, int32_t sid, uint32_t err, void *ud)
{
	struct fake_conn *c = ud;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(s, sid);

	if (st == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(s, sid, NULL);
	if (c->defers != NULL)
		fake_conn_cancel_stream(c, sid);
	stream_free(c->h2, st);
	return 0;
}

static ssize_t
read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2_stream *st = src->ptr;
	size_t n = st->resp.body_len - st->off;

	if (n > len)
		n = len;
	memcpy(buf, st->resp.body + st->off, n);
	st->off += n;
	if (st->off == st->resp.body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/*
 * Creates the server session and queues our SETTINGS.  APNs token-auth
 * connections start at one concurrent stream (Apple: "only one stream
 * until you post a request with a valid authentication token"), except
 * in sink mode, which checks no token.
 */
int
fake_h2_start(struct fake_conn *c)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry iv[2];
	struct fake_h2 *h;
	uint32_t streams = 1000;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		abort();
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    on_stream_close);
	h = fake_xcalloc(1, sizeof *h);
	c->h2 = h;
	c->proto = FAKE_PROTO_H2;
	/*
	 * libcurl 7.88 sends RST_STREAM(STREAM_CLOSED) when it finishes a
	 * stream the server has already answered, one per request.  nghttp2's
	 * "rapid reset" guard (CVE-2023-44487; 1000 resets, then 33/s) would
	 * then end every busy connection with GOAWAY INTERNAL_ERROR after
	 * about a thousand requests.  The providers' guards count streams
	 * reset before they are answered; these are not, so allow them.
	 */
	nghttp2_option *opt;
	if (nghttp2_option_new(&opt) != 0)
		abort();
	nghttp2_option_set_stream_reset_rate_limit(opt, UINT64_MAX / 2,
						   UINT64_MAX / 2);
	if (nghttp2_session_server_new2(&h->s, cb, c, opt) != 0)
		abort();
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	if (c->lis->prov == FAKE_APNS) {
		streams = (uint32_t)fake_cfg.apns_max_streams;
		if (!c->client_cert && !fake_cfg.sink)
			streams = 1;
	}
	if (fake_cfg.max_streams_override > 0 &&
	    (c->lis->prov != FAKE_APNS || streams != 1))
		streams = (uint32_t)fake_cfg.max_streams_override;
	iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv[0].value = streams;
	iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	iv[1].value = 1 << 20;
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, 2) != 0)
		return -1;
	return 0;
}

/* Feeds decrypted bytes; -1 on a connection-level protocol error. */
int
fake_h2_feed(struct fake_conn *c, const uint8_t *data, size_t len)
{
	ssize_t r;

	c->h2->in_recv = 1;
	r = nghttp2_session_mem_recv(c->h2->s, data, len);
	c->h2->in_recv = 0;
	if (r < 0) {
		fake_h2_flush(c);	/* the GOAWAY nghttp2 queued */
		return -1;
	}
	return 0;
}

/*
 * Serialises everything nghttp2 has queued and writes it in one go.
 * No-op inside receive callbacks.  Closes the connection when the
 * session is done (after a GOAWAY: when no stream is left).
 */
void
fake_h2_flush(struct fake_conn *c)
{
	struct fake_h2 *h = c->h2;
	size_t len = 0;

	if (h == NULL || h->in_recv || c->closing)
		return;
	for (;;) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(h->s, &d);

		if (n < 0) {
			fake_conn_close(c, 0);
			return;
		}
		if (n == 0)
			break;
		if (len + (size_t)n > h->outcap) {
			h->outcap = (len + (size_t)n) * 2;
			h->out = fake_xrealloc(h->out, h->outcap);
		}
		memcpy(h->out + len, d, (size_t)n);
		len += (size_t)n;
	}
	fake_conn_write(c, h->out, len);
	/* After a GOAWAY this turns false once the last stream is done. */
	if (!nghttp2_session_want_read(h->s) &&
	    !nghttp2_session_want_write(h->s))
		fake_conn_close(c, 1);
}

static void
goaway(struct fake_conn *c, int32_t last, struct fake_resp *resp)
{
	const char *d = resp->goaway_data;

	c->h2->goaway_sent = 1;
	c->h2->goaway_last = last;
	nghttp2_submit_goaway(c->h2->s, NGHTTP2_FLAG_NONE, last,
	    resp->h2_error, (const uint8_t *)d, d ? strlen(d) : 0);
}

/*
 * Submits resp on stream sid (a stream the peer already closed is
 * skipped): headers and body, a RST_STREAM, or a GOAWAY.  The body is
 * moved into the stream; resp keeps the rest for the caller to free.
 */
void
fake_h2_respond(struct fake_conn *c, int32_t sid, struct fake_resp *resp)
{
	struct fake_h2 *h = c->h2;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(h->s,
	    sid);
	nghttp2_nv nva[FAKE_RESP_MAXHDR + 1];
	nghttp2_data_provider dp;
	char status[8];
	size_t i;

	if (st == NULL)
		return;
	if (resp->action == FAKE_ACT_RESET_STREAM) {
		nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, sid,
		    resp->h2_error ? resp->h2_error : NGHTTP2_INTERNAL_ERROR);
		return;
	}
	if (resp->action == FAKE_ACT_GOAWAY) {
		/* Not processed: the client may retry it elsewhere. */
		goaway(c, sid > 2 ? sid - 2 : 0, resp);
		nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, sid,
		    NGHTTP2_REFUSED_STREAM);
		return;
	}
	snprintf(status, sizeof status, "%d", resp->status);
	nva[0].name = (uint8_t *)":status";
	nva[0].namelen = 7;
	nva[0].value = (uint8_t *)status;
	nva[0].valuelen = strlen(status);
	nva[0].flags = NGHTTP2_NV_FLAG_NONE;
	for (i = 0; i < resp->nhdrs; i++) {
		char *q;

		for (q = resp->hdrs[i].name; *q != '\0'; q++)
			*q = (char)tolower((unsigned char)*q);
		nva[i + 1].name = (uint8_t *)resp->hdrs[i].name;
		nva[i + 1].namelen = strlen(resp->hdrs[i].name);
		nva[i + 1].value = (uint8_t *)resp->hdrs[i].value;
		nva[i + 1].valuelen = strlen(resp->hdrs[i].value);
		nva[i + 1].flags = NGHTTP2_NV_FLAG_NONE;
	}
	st->resp.body = resp->body;
	st->resp.body_len = resp->body_len;
	resp->body = NULL;
	resp->body_len = 0;
	dp.source.ptr = st;
	dp.read_callback = read_body;
	nghttp2_submit_response(h->s, sid, nva, resp->nhdrs + 1,
	    st->resp.body_len > 0 ? &dp : NULL);
	if (resp->action == FAKE_ACT_RESPOND_GOAWAY)
		goaway(c, sid, resp);
}

void
fake_h2_goaway(struct fake_conn *c, const char *data)
{
	nghttp2_session *s = c->h2->s;

	c->h2->goaway_sent = 1;
	c->h2->goaway_last = nghttp2_session_get_last_proc_stream_id(s);
	nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, c->h2->goaway_last,
	    NGHTTP2_NO_ERROR,
	    (const uint8_t *)data, data ? strlen(data) : 0);
	fake_h2_flush(c);
}

/* Queues a SETTINGS frame changing SETTINGS_MAX_CONCURRENT_STREAMS. */
void
fake_h2_set_max_streams(struct fake_conn *c, uint32_t n)
{
	nghttp2_settings_entry iv;

	if (c->h2 == NULL)
		return;
	iv.settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv.value = n;
	nghttp2_submit_settings(c->h2->s, NGHTTP2_FLAG_NONE, &iv, 1);
}

/* Frees the session and every stream still open; NULL-safe. */
void
fake_h2_free(struct fake_conn *c)
{
	struct fake_h2 *h = c->h2;

	if (h == NULL)
		return;
	/* nghttp2_session_del() does not call on_stream_close. */
	while (h->streams != NULL)
		stream_free(h, h->streams);
	nghttp2_session_del(h->s);
	free(h->out);
	free(h);
	c->h2 = NULL;
}
