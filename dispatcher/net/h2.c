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
 */
#include "net/h2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

/* Timeouts, idle connections and PINGs are checked this often. */
#define H2_TICK_MS 50
/* A stream refused this many times fails (a server that refuses all). */
#define H2_MAX_REFUSED 5
/* Stop pulling frames from nghttp2 while this much waits in libuv. */
#define H2_WRITE_HIGH (1024 * 1024)
#define H2_READ_CHUNK (64 * 1024)

enum h2_conn_state {
	H2C_RESOLVING,
	H2C_CONNECTING,
	H2C_TLS,
	H2C_SETTINGS,
	H2C_READY,
	H2C_DRAINING,
	H2C_CLOSED,
};

static const char *const state_names[] = {
	"resolving", "connecting", "tls", "settings", "ready", "draining",
	"closed",
};

/*
 * Where a request is.  ZOMBIE: reported or cancelled, but its nghttp2
 * stream is still open and may read its header block or body (nghttp2
 * keeps pointers to them): freed when the stream closes, or with its
 * connection.
 */
enum h2_req_where { H2R_QUEUED, H2R_STREAM, H2R_FINISHED, H2R_ZOMBIE };

struct h2_tls {                    /* one SSL_CTX per CA bundle */
	char *ca_path;             /* "" for the system's */
	SSL_CTX *ctx;
	char *error;               /* the bundle could not be loaded */
	struct h2_tls *next;
};

struct h2_host {
	char *host, *port, *authority, *ca_path;
	bool is_ip;
	bool not_h2;
	bool rebuild;               /* only failing: retire connections */
	uint64_t failing_since_ms;  /* only transport errors since; 0 */
	struct h2_tls *tls;
	struct h2_conn *conns;
	unsigned n_conns;           /* not CLOSED */
	struct h2_req *queue, *queue_tail;
	struct h2_host *next;
	struct h2 *h;
};

struct h2_conn {
	uv_tcp_t tcp;
	uv_getaddrinfo_t gai;
	struct h2 *h;
	struct h2_host *host;
	enum h2_conn_state state;
	bool tcp_open;              /* tcp initialised, close cb pending */
	bool gai_pending;
	struct addrinfo *ai, *ai_next;
	SSL *ssl;
	BIO *rbio, *wbio;           /* owned by ssl */
	nghttp2_session *s;
	uint64_t deadline_ms;       /* connect deadline; 0 once READY */
	uint64_t idle_since_ms;     /* no streams since; 0: busy */
	uint64_t ping_sent_ms;      /* PING awaiting its ACK; 0: none */
	long connect_timeout_ms;
	unsigned streams;           /* open in nghttp2, ours or cancelled */
	unsigned max_streams;
	struct h2_req *reqs;        /* our streams on it */
	struct h2_req *zombies;     /* done with, streams still open */
	bool dirty;                 /* has frames to send */
	struct h2_conn *dirty_next;
	struct h2_conn *next;
	char *why;                  /* why it closed, for the requests */
};

struct h2_req {
	struct h2 *h;
	struct h2_host *host;
	struct h2_conn *conn;       /* STREAM: the connection */
	struct h2_conn *wire;       /* whose nghttp2 stream points at it */
	enum h2_req_where where;
	int32_t stream_id;
	bool sent;                  /* HEADERS left */
	uint64_t sent_ms;
	long timeout_ms, connect_timeout_ms;
	unsigned refused;
	bool resent;                /* sent again once after its
				     * connection died with no answer */
	struct http_request req;    /* owned copies */
	char *url, *method, *ca_path, *body, **headers;
	char *path;
	nghttp2_nv *nv;
	size_t nnv, body_off;
	long status;
	struct buf rbody;           /* capped at h2_opts.max_body */
	struct buf rheaders;        /* "name\0value\0", HTTP_HEADERS_MAX */
	char *error;
	enum http_err err;          /* with `error` */
	bool not_h2;
	h2_done_fn done;
	void *arg;
	struct h2_req *prev, *next;
};

struct h2 {
	uv_loop_t *loop;
	struct h2_opts opts;
	uv_prepare_t flush;
	uv_timer_t tick;
	bool ticking, flushing;
	struct h2_tls *tls;
	struct h2_host *hosts;
	struct h2_conn *dirty;
	struct h2_req *finished, *finished_tail;
	unsigned reporting;         /* report_finished() depth */
	unsigned live_conns;        /* allocated, not yet freed */
	bool closing;
	int closing_handles;
	void (*close_cb)(void *arg);
	void *close_arg;
	struct h2_stats stats;
	nghttp2_session_callbacks *cbs;
	/* The last URL submitted, parsed (FCM sends to one URL). */
	char *last_url, *last_ca, *last_path;
	struct h2_host *last_host;
	char readbuf[H2_READ_CHUNK];
};

static void conn_fail(struct h2_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void host_pump(struct h2_host *hh);
static void report_finished(struct h2 *h);
static void on_flush(uv_prepare_t *p);
static void maybe_free_h2(struct h2 *h);
static void tick_start(struct h2 *h);

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
static void req_detach(struct h2_req *r)
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
static void req_unwire(struct h2_req *r)
{
	if (r->wire != NULL && r->wire->s != NULL)
		nghttp2_session_set_stream_user_data(r->wire->s, r->stream_id,
						     NULL);
	r->wire = NULL;
}

static void req_free(struct h2_req *r);

/*
 * Done with `r` (off every list): freed now, or kept as a zombie of its
 * connection while its stream is open.
 */
static void req_release(struct h2_req *r)
{
	struct h2_conn *c = r->wire;

	if (c == NULL || c->state == H2C_CLOSED) {
		req_unwire(r);
		req_free(r);
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

static void req_free(struct h2_req *r)
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
static void req_finish(struct h2_req *r, enum http_err err,
		       const char *error)
{
	struct h2 *h = r->h;

	req_detach(r);
	if (error != NULL && r->error == NULL) {
		r->error = mem_strdup(error);
		r->err = err;
	}
	r->where = H2R_FINISHED;
	list_append(&h->finished, &h->finished_tail, r);
}

/* Back to the front of its host's queue: it never reached the server. */
static void req_requeue(struct h2_req *r)
{
	req_detach(r);
	req_unwire(r);
	r->stream_id = 0;
	r->sent = false;
	r->body_off = 0;
	r->status = 0;
	buf_reset(&r->rbody);
	buf_reset(&r->rheaders);
	r->where = H2R_QUEUED;
	list_push(&r->host->queue, &r->host->queue_tail, r);
}

/* ---- TLS contexts ------------------------------------------------- */

/*
 * (Re)make t's context: verification on, ALPN h2 then http/1.1, the CA
 * bundle loaded.  On failure t->error says why; connections retry the
 * load (the bundle may be fixed without a restart).
 */
static void tls_load(struct h2_tls *t)
{
	static const unsigned char alpn[] = "\x02h2\x08http/1.1";
	const char *key = t->ca_path;
	char buf[256];

	SSL_CTX_free(t->ctx);
	free(t->error);
	t->error = NULL;
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (t->ctx == NULL) {
		t->error = mem_strdup("SSL: cannot make a TLS context");
		return;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_alpn_protos(t->ctx, alpn, sizeof alpn - 1);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (key[0] != '\0' ?
	    SSL_CTX_load_verify_locations(t->ctx, key, NULL) != 1 :
	    SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
		ERR_clear_error();
		t->error = mem_printf("error setting certificate file: %s (%s)",
				      key, buf);
	}
}

static struct h2_tls *tls_get(struct h2 *h, const char *ca_path)
{
	struct h2_tls *t;
	const char *key = ca_path != NULL ? ca_path : "";

	for (t = h->tls; t != NULL; t = t->next)
		if (strcmp(t->ca_path, key) == 0)
			return t;
	t = mem_alloc_zero(1, sizeof *t);
	t->ca_path = mem_strdup(key);
	t->next = h->tls;
	h->tls = t;
	tls_load(t);
	return t;
}

/* ---- hosts -------------------------------------------------------- */

/*
 * Split "https://host[:port]/path" into its parts; 0 or -EINVAL.  The
 * path (with the query) is at least "/".
 */
static int parse_url(const char *url, char **host, char **port,
		     char **path)
{
	const char *p, *hs, *he, *ps = NULL, *pe;

	if (strncasecmp(url, "https://", 8) != 0)
		return -EINVAL;
	p = url + 8;
	if (*p == '[') {
		hs = p + 1;
		he = strchr(hs, ']');
		if (he == NULL)
			return -EINVAL;
		p = he + 1;
	} else {
		hs = p;
		p += strcspn(p, ":/?#");
		he = p;
	}
	if (he == hs || memchr(hs, '@', (size_t)(he - hs)) != NULL)
		return -EINVAL;
	pe = p;
	if (*p == ':') {
		ps = p + 1;
		pe = ps + strspn(ps, "0123456789");
		if (pe == ps || pe - ps > 5)
			return -EINVAL;
	}
	if (*pe != '\0' && *pe != '/' && *pe != '?')
		return -EINVAL;
	*host = mem_strndup(hs, (size_t)(he - hs));
	*port = ps != NULL ? mem_strndup(ps, (size_t)(pe - ps))
		: mem_strdup("443");
	if (*pe == '?')
		*path = mem_printf("/%s", pe);
	else
		*path = mem_strdup(*pe == '\0' ? "/" : pe);
	/* The fragment never goes on the wire. */
	(*path)[strcspn(*path, "#")] = '\0';
	return 0;
}

static struct h2_host *host_find(const struct h2 *h, const char *host,
				 const char *port, const char *ca_path)
{
	struct h2_host *hh;
	const char *ca = ca_path != NULL ? ca_path : "";

	for (hh = h->hosts; hh != NULL; hh = hh->next)
		if (strcmp(hh->host, host) == 0 &&
		    strcmp(hh->port, port) == 0 &&
		    strcmp(hh->ca_path, ca) == 0)
			return hh;
	return NULL;
}

static struct h2_host *host_get(struct h2 *h, const char *host,
				const char *port, const char *ca_path)
{
	struct h2_host *hh = host_find(h, host, port, ca_path);
	unsigned char addr[sizeof(struct in6_addr)];

	if (hh != NULL)
		return hh;
	hh = mem_alloc_zero(1, sizeof *hh);
	hh->h = h;
	hh->host = mem_strdup(host);
	hh->port = mem_strdup(port);
	hh->ca_path = mem_strdup(ca_path != NULL ? ca_path : "");
	hh->is_ip = inet_pton(AF_INET, host, addr) == 1 ||
		    inet_pton(AF_INET6, host, addr) == 1;
	if (strchr(host, ':') != NULL)
		hh->authority = strcmp(port, "443") == 0
			? mem_printf("[%s]", host)
			: mem_printf("[%s]:%s", host, port);
	else
		hh->authority = strcmp(port, "443") == 0
			? mem_strdup(host) : mem_printf("%s:%s", host, port);
	hh->tls = tls_get(h, ca_path);
	hh->next = h->hosts;
	h->hosts = hh;
	return hh;
}

/* ---- connections: state, memory ----------------------------------- */

static void conn_set_state(struct h2_conn *c, enum h2_conn_state st)
{
	if (c->state == st)
		return;
	log_debug("h2 connection", "host=%s from=%s to=%s",
		  c->host->authority, state_names[c->state], state_names[st]);
	if (c->state != H2C_CLOSED && st == H2C_CLOSED)
		c->host->n_conns--;
	c->state = st;
}

static void conn_maybe_free(struct h2_conn *c)
{
	struct h2 *h = c->h;
	struct h2_conn **pp;

	if (c->state != H2C_CLOSED || c->tcp_open || c->gai_pending)
		return;
	for (pp = &c->host->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	while (c->zombies != NULL) {
		struct h2_req *r = c->zombies;

		req_detach(r);
		req_unwire(r);
		req_free(r);
	}
	if (c->s != NULL)
		nghttp2_session_del(c->s);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->ai != NULL)
		uv_freeaddrinfo(c->ai);
	free(c->why);
	free(c);
	h->live_conns--;
	maybe_free_h2(h);
}

static void tcp_closed(uv_handle_t *hd)
{
	struct h2_conn *c = hd->data;

	c->tcp_open = false;
	conn_maybe_free(c);
}

/* Requests leave c's nghttp2 streams (but zombies, freed with c). */
static void conn_forget_streams(struct h2_conn *c)
{
	struct h2_req *r;

	for (r = c->reqs; r != NULL; r = r->next)
		req_unwire(r);
	for (r = c->h->finished; r != NULL; r = r->next)
		if (r->wire == c)
			req_unwire(r);
}

/*
 * Close `c` now: its streams end with `why` (or wait again when they had
 * not left, or once when nothing had come back), requests waiting for it fail if it was the host's last hope.
 */
static void conn_close(struct h2_conn *c, const char *why)
{
	struct h2_host *hh = c->host;
	bool was_open = c->state >= H2C_READY;

	if (c->state == H2C_CLOSED)
		return;
	if (c->why == NULL)
		c->why = mem_strdup(why);
	if (c->dirty) {
		struct h2_conn **pp;

		for (pp = &c->h->dirty; *pp != NULL; pp = &(*pp)->dirty_next)
			if (*pp == c) {
				*pp = c->dirty_next;
				break;
			}
		c->dirty = false;
	}
	conn_forget_streams(c);
	while (c->reqs != NULL) {
		struct h2_req *r = c->reqs;

		if (!r->sent) {
			req_requeue(r);
		} else if (r->status == 0 && r->rbody.len == 0 &&
			   !r->resent && !c->h->closing) {
			/*
			 * Nothing came back before the connection died: sent
			 * again once on another connection, as libcurl does
			 * (the provider may have processed it: the same
			 * duplicate risk as a retry, without counting an
			 * attempt against the app; a second loss fails it).
			 */
			r->resent = true;
			c->h->stats.resent++;
			req_requeue(r);
		} else {
			char *e = mem_printf("Recv failure: %s", why);

			req_finish(r, HTTP_ERR_NO_ANSWER, e);
			free(e);
		}
	}
	conn_set_state(c, H2C_CLOSED);
	if (c->gai_pending)
		uv_cancel((uv_req_t *)&c->gai);
	if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, tcp_closed);
	/*
	 * Requests that waited: to another connection if there is one (or
	 * one may be opened), else they fail with what stopped this one -
	 * unless it had worked, then they get a fresh connection.
	 */
	if (hh->queue != NULL && !c->h->closing) {
		if (hh->n_conns == 0 && !was_open) {
			while (hh->queue != NULL)
				req_finish(hh->queue, HTTP_ERR_NOT_SENT, why);
		} else {
			host_pump(hh);
		}
	}
	conn_maybe_free(c);
}

static void conn_fail(struct h2_conn *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (c->state != H2C_CLOSED)
		log_info("HTTP/2 connection closed", "host=%s state=%s "
			 "streams=%u reason=\"%s\"", c->host->authority,
			 state_names[c->state], c->streams, buf);
	conn_close(c, buf);
}

static void conn_mark_dirty(struct h2_conn *c)
{
	struct h2 *h = c->h;

	if (c->dirty || c->state == H2C_CLOSED)
		return;
	c->dirty = true;
	c->dirty_next = h->dirty;
	h->dirty = c;
	if (!h->flushing && !h->closing) {
		h->flushing = true;
		uv_prepare_start(&h->flush, on_flush);
	}
}

/* ---- writing ------------------------------------------------------ */

struct h2_write {
	uv_write_t w;
	struct h2_conn *c;
	char data[];
};

static void on_written(uv_write_t *w, int status)
{
	struct h2_write *wr = (struct h2_write *)w;
	struct h2_conn *c = wr->c;

	free(wr);
	if (status < 0 && status != UV_ECANCELED)
		conn_fail(c, "Send failure: %s", uv_strerror(status));
	else if (c->state != H2C_CLOSED && c->s != NULL &&
		 nghttp2_session_want_write(c->s))
		conn_mark_dirty(c);       /* was held back (H2_WRITE_HIGH) */
}

/* Send what TLS has put in the write BIO, in one uv_write. */
static int conn_send_bio(struct h2_conn *c)
{
	char *p;
	long n = BIO_get_mem_data(c->wbio, &p);
	struct h2_write *wr;
	uv_buf_t b;
	int rc;

	if (n <= 0)
		return 0;
	wr = mem_alloc(sizeof *wr + (size_t)n);
	wr->c = c;
	memcpy(wr->data, p, (size_t)n);
	(void)BIO_reset(c->wbio);
	b = uv_buf_init(wr->data, (unsigned)n);
	rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (rc < 0) {
		free(wr);
		conn_fail(c, "Send failure: %s", uv_strerror(rc));
		return -1;
	}
	return 0;
}

/* Pull nghttp2's frames, encrypt, send.  -1 when the connection died. */
static int conn_flush(struct h2_conn *c)
{
	for (;;) {
		const uint8_t *data;
		ssize_t n;

		if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >
		    H2_WRITE_HIGH)
			break;
		n = nghttp2_session_mem_send(c->s, &data);
		if (n < 0) {
			conn_fail(c, "HTTP/2 framing error: %s",
				  nghttp2_strerror((int)n));
			return -1;
		}
		if (n == 0)
			break;
		while (n > 0) {
			int w = SSL_write(c->ssl, data, (int)n);

			if (w <= 0) {
				conn_fail(c, "Send failure: TLS write failed");
				return -1;
			}
			data += w;
			n -= w;
		}
		if (BIO_ctrl_pending(c->wbio) >= 256 * 1024 &&
		    conn_send_bio(c) < 0)
			return -1;
	}
	if (conn_send_bio(c) < 0)
		return -1;
	if (!nghttp2_session_want_read(c->s) &&
	    !nghttp2_session_want_write(c->s)) {
		conn_close(c, "the HTTP/2 session ended");
		return -1;
	}
	return 0;
}

/* The prepare callback: everything queued this iteration leaves now. */
static void on_flush(uv_prepare_t *p)
{
	struct h2 *h = p->data;

	while (h->dirty != NULL) {
		struct h2_conn *c = h->dirty;

		h->dirty = c->dirty_next;
		c->dirty = false;
		if (c->state != H2C_CLOSED && c->s != NULL)
			conn_flush(c);
	}
	report_finished(h);
	if (h->dirty == NULL && h->finished == NULL) {
		h->flushing = false;
		uv_prepare_stop(&h->flush);
	}
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
			conn_set_state(c, H2C_READY);
			c->deadline_ms = 0;
		}
		break;
	}
	case NGHTTP2_GOAWAY:
		/* Streams past last_stream_id close as REFUSED_STREAM. */
		if (c->state == H2C_READY || c->state == H2C_SETTINGS)
			conn_set_state(c, H2C_DRAINING);
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
		req_detach(r);          /* off r->wire's (c's) zombies */
		r->wire = NULL;
		req_free(r);
		return 0;
	}
	r->wire = NULL;
	if (r->where != H2R_STREAM)
		return 0;       /* timed out: reported from the list */
	if (buf_full(&r->rbody)) {
		snprintf(buf, sizeof buf, "response body over %zu bytes",
			 c->h->opts.max_body);
		req_finish(r, HTTP_ERR_BAD_ANSWER, buf);
	} else if (code == NGHTTP2_NO_ERROR && r->status >= 200) {
		req_finish(r, HTTP_ERR_NONE, NULL);
	} else if (code == NGHTTP2_REFUSED_STREAM &&
		   r->refused < H2_MAX_REFUSED) {
		/* Never processed (RFC 9113 8.7): safe to send again. */
		r->refused++;
		c->h->stats.refused++;
		req_requeue(r);
	} else {
		/* Refused too often, or never sent: not processed; reset
		 * after it left: maybe processed; ended cleanly without a
		 * response: an answer we cannot use. */
		r->status = 0;
		snprintf(buf, sizeof buf,
			 "HTTP/2 stream %d was not closed cleanly: %s "
			 "(err %u)", sid, nghttp2_http2_strerror(code), code);
		req_finish(r, code == NGHTTP2_REFUSED_STREAM || !r->sent
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
	conn_mark_dirty(c);
	return true;
}

static void conn_open(struct h2_host *hh, const struct h2_req *opener);

/*
 * Give waiting requests streams: on the first ready connection with
 * room; a new connection when all are full and the limit allows (one
 * opening at a time per host).
 */
static void host_pump(struct h2_host *hh)
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
				conn_open(hh, hh->queue);
			return;
		}
		while (hh->queue != NULL &&
		       best->streams < best->max_streams)
			if (!stream_start(best, hh->queue)) {
				conn_set_state(best, H2C_DRAINING);
				break;
			}
	}
}

/* ---- connections: opening ----------------------------------------- */

static void on_tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *b)
{
	struct h2_conn *c = hd->data;

	(void)want;
	*b = uv_buf_init(c->h->readbuf, sizeof c->h->readbuf);
}

/* The TLS handshake is done: ALPN decides. */
static void conn_tls_done(struct h2_conn *c)
{
	const unsigned char *p = NULL;
	unsigned n = 0;
	nghttp2_settings_entry iv[3];

	SSL_get0_alpn_selected(c->ssl, &p, &n);
	if (n != 2 || memcmp(p, "h2", 2) != 0) {
		struct h2_host *hh = c->host;

		log_info("host does not speak HTTP/2: libcurl serves it",
			 "host=%s", hh->authority);
		hh->not_h2 = true;
		while (hh->queue != NULL) {
			hh->queue->not_h2 = true;
			req_finish(hh->queue, HTTP_ERR_NOT_SENT,
				   "the server does not speak HTTP/2");
		}
		conn_close(c, "the server does not speak HTTP/2");
		return;
	}
	if (nghttp2_session_client_new(&c->s, c->h->cbs, c) != 0) {
		conn_fail(c, "HTTP/2: cannot make a session");
		return;
	}
	iv[0].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
	iv[0].value = 0;
	iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	iv[1].value = 1 << 20;
	iv[2].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv[2].value = 0;        /* we take no pushed streams */
	nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 3);
	nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0,
					      16 << 20);
	c->h->stats.connects++;
	conn_set_state(c, H2C_SETTINGS);
	conn_mark_dirty(c);
}

/* Drive the handshake; after it, decrypt and feed nghttp2. */
static void conn_pump_tls(struct h2_conn *c)
{
	char *buf = c->h->readbuf;
	int rc, err;

	if (c->state == H2C_TLS) {
		rc = SSL_do_handshake(c->ssl);
		if (rc != 1) {
			err = SSL_get_error(c->ssl, rc);
			if (err == SSL_ERROR_WANT_READ) {
				conn_send_bio(c);
				return;
			}
			long v = SSL_get_verify_result(c->ssl);
			char eb[256];

			ERR_error_string_n(ERR_get_error(), eb, sizeof eb);
			ERR_clear_error();
			if (v != X509_V_OK)
				conn_fail(c, "SSL peer certificate was not "
					  "OK: %s",
					  X509_verify_cert_error_string(v));
			else
				conn_fail(c, "SSL connect error: %s", eb);
			return;
		}
		if (conn_send_bio(c) < 0)
			return;
		conn_tls_done(c);
		if (c->state == H2C_CLOSED)
			return;
	}
	for (;;) {
		ssize_t used;

		rc = SSL_read(c->ssl, buf, H2_READ_CHUNK);
		if (rc <= 0) {
			err = SSL_get_error(c->ssl, rc);
			if (err == SSL_ERROR_WANT_READ)
				break;
			ERR_clear_error();
			if (err == SSL_ERROR_ZERO_RETURN)
				conn_fail(c, "connection closed by the "
					  "server (TLS close_notify)");
			else
				conn_fail(c, "TLS read error (%d)", err);
			return;
		}
		used = nghttp2_session_mem_recv(c->s, (const uint8_t *)buf,
						(size_t)rc);
		if (used < 0) {
			conn_fail(c, "HTTP/2 protocol error: %s",
				  nghttp2_strerror((int)used));
			return;
		}
	}
	/* SETTINGS ACKs, WINDOW_UPDATEs, PING ACKs; new streams fit now. */
	conn_mark_dirty(c);
	host_pump(c->host);
}

static void on_tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct h2_conn *c = st->data;

	if (n == 0 || c->state == H2C_CLOSED)
		return;
	if (n < 0) {
		if (n == UV_EOF)
			conn_fail(c, "connection closed by the server");
		else
			conn_fail(c, "%s", uv_strerror((int)n));
		report_finished(c->h);
		return;
	}
	if (BIO_write(c->rbio, b->base, (int)n) != (int)n) {
		conn_fail(c, "TLS: cannot buffer what was read");
		report_finished(c->h);
		return;
	}
	conn_pump_tls(c);
	report_finished(c->h);
}

static void conn_start_tls(struct h2_conn *c)
{
	struct h2_host *hh = c->host;
	X509_VERIFY_PARAM *vp;

	c->ssl = SSL_new(hh->tls->ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		c->rbio = c->wbio = NULL;
		conn_fail(c, "SSL connect error: out of memory");
		return;
	}
	BIO_set_mem_eof_return(c->rbio, -1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
	vp = SSL_get0_param(c->ssl);
	if (hh->is_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(vp, hh->host);
	} else {
		SSL_set_tlsext_host_name(c->ssl, hh->host);
		X509_VERIFY_PARAM_set_hostflags(
			vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		X509_VERIFY_PARAM_set1_host(vp, hh->host, 0);
	}
	conn_set_state(c, H2C_TLS);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_tcp_read);
	conn_pump_tls(c);
}

static void try_connect(struct h2_conn *c);
static void tcp_closed_retry(uv_handle_t *hd);

static void on_connect(uv_connect_t *req, int status)
{
	struct h2_conn *c = req->data;

	free(req);
	if (c->state == H2C_CLOSED)
		return;
	if (status < 0) {
		if (c->ai_next != NULL) {
			/* Next address, on a fresh handle. */
			uv_close((uv_handle_t *)&c->tcp, tcp_closed_retry);
			return;
		}
		conn_fail(c, "Failed to connect to %s port %s: %s",
			  c->host->host, c->host->port, uv_strerror(status));
		report_finished(c->h);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, 60);
	conn_start_tls(c);
	report_finished(c->h);
}

/* After the handle of a failed address closed: the next address. */
static void tcp_closed_retry(uv_handle_t *hd)
{
	struct h2_conn *c = hd->data;

	c->tcp_open = false;
	if (c->state == H2C_CONNECTING)
		try_connect(c);
	else
		conn_maybe_free(c);
}

static void try_connect(struct h2_conn *c)
{
	uv_connect_t *cr;
	int rc;

	while (c->ai_next != NULL) {
		struct addrinfo *a = c->ai_next;

		c->ai_next = a->ai_next;
		if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
			continue;
		uv_tcp_init(c->h->loop, &c->tcp);
		c->tcp.data = c;
		c->tcp_open = true;
		cr = mem_alloc(sizeof *cr);
		cr->data = c;
		rc = uv_tcp_connect(cr, &c->tcp, a->ai_addr, on_connect);
		if (rc == 0)
			return;
		free(cr);
		if (c->ai_next != NULL) {
			uv_close((uv_handle_t *)&c->tcp, tcp_closed_retry);
			return;
		}
		conn_fail(c, "Failed to connect to %s port %s: %s",
			  c->host->host, c->host->port, uv_strerror(rc));
		return;
	}
	conn_fail(c, "Failed to connect to %s port %s: no address",
		  c->host->host, c->host->port);
}

static void on_resolved(uv_getaddrinfo_t *g, int status,
			struct addrinfo *res)
{
	struct h2_conn *c = g->data;

	c->gai_pending = false;
	c->ai = res;
	if (c->state == H2C_CLOSED) {
		conn_maybe_free(c);
		return;
	}
	if (status < 0) {
		conn_fail(c, "Could not resolve host: %s (%s)", c->host->host,
			  uv_strerror(status));
		report_finished(c->h);
		return;
	}
	conn_set_state(c, H2C_CONNECTING);
	c->ai_next = res;
	try_connect(c);
	report_finished(c->h);
}

static void conn_open(struct h2_host *hh, const struct h2_req *opener)
{
	struct h2 *h = hh->h;
	struct h2_conn *c;
	struct addrinfo hints;
	int rc;

	if (hh->tls->error != NULL)
		tls_load(hh->tls);
	if (hh->tls->error != NULL) {
		while (hh->queue != NULL)
			req_finish(hh->queue, HTTP_ERR_NOT_SENT,
				   hh->tls->error);
		return;
	}
	c = mem_alloc_zero(1, sizeof *c);
	c->h = h;
	c->host = hh;
	c->state = H2C_RESOLVING;
	c->connect_timeout_ms = opener->connect_timeout_ms;
	c->deadline_ms = uv_now(h->loop) + (uint64_t)c->connect_timeout_ms;
	c->max_streams = 1;
	c->next = hh->conns;
	hh->conns = c;
	hh->n_conns++;
	h->live_conns++;
	tick_start(h);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
	c->gai.data = c;
	c->gai_pending = true;
	rc = uv_getaddrinfo(h->loop, &c->gai, on_resolved, hh->host, hh->port,
			    &hints);
	if (rc < 0) {
		c->gai_pending = false;
		conn_fail(c, "Could not resolve host: %s (%s)", hh->host,
			  uv_strerror(rc));
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
				conn_fail(c, "Connection timed out after %ld "
					  "ms", c->connect_timeout_ms);
				continue;
			}
			if (c->ping_sent_ms != 0 &&
			    now - c->ping_sent_ms >=
			    (uint64_t)c->connect_timeout_ms) {
				h->stats.pings_failed++;
				conn_fail(c, "Operation timed out: no PING "
					  "answer in %ld ms",
					  c->connect_timeout_ms);
				continue;
			}
			if (c->state == H2C_DRAINING && c->streams == 0) {
				conn_close(c, "drained");
				continue;
			}
			if (c->streams == 0 && c->idle_since_ms != 0 &&
			    now - c->idle_since_ms >= (uint64_t)h->opts.idle_ms &&
			    hh->queue == NULL) {
				conn_close(c, "idle");
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
				req_finish(r, HTTP_ERR_NO_ANSWER, buf);
				if (hh->rebuild) {
					/* A hung provider: not this one. */
					conn_set_state(c, H2C_DRAINING);
				/* Is the connection alive at all? */
				} else if (c->ping_sent_ms == 0 &&
				    nghttp2_submit_ping(c->s,
							NGHTTP2_FLAG_NONE,
							NULL) == 0)
					c->ping_sent_ms = now;
				conn_mark_dirty(c);
			}
		}
	}
	report_finished(h);
	if (!any && h->ticking) {
		h->ticking = false;
		uv_timer_stop(&h->tick);
	}
}

static void tick_start(struct h2 *h)
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
 * until an answer comes back.  The log lines are the bridge's (http.c).
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
static void report_finished(struct h2 *h)
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
		h->opts.max_conns = 4;
	if (h->opts.max_streams == 0)
		h->opts.max_streams = 1000;
	if (h->opts.max_body == 0)
		h->opts.max_body = 64 * 1024;
	if (h->opts.idle_ms <= 0)
		h->opts.idle_ms = 118000;
	if (h->opts.rebuild_after_ms == 0)
		h->opts.rebuild_after_ms = 120000;
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
		if (parse_url(req->url, &host, &port, &path) < 0) {
			*err = -EINVAL;
			return NULL;
		}
		hh = host_get(h, host, port, req->ca_path);
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
		req_finish(r, HTTP_ERR_NOT_SENT,
			   "the server does not speak HTTP/2");
	} else {
		host_pump(hh);
	}
	/* Reported from the loop, never from inside h2_submit(). */
	if (h->finished != NULL || h->dirty != NULL) {
		if (!h->flushing) {
			h->flushing = true;
			uv_prepare_start(&h->flush, on_flush);
		}
	}
	tick_start(h);
	*err = 0;
	return r;
}

void h2_cancel(struct h2 *h, struct h2_req *r)
{
	if (r->where == H2R_STREAM) {
		struct h2_conn *c = r->conn;

		nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE,
					  r->stream_id, NGHTTP2_CANCEL);
		conn_mark_dirty(c);
	}
	req_detach(r);
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
	maybe_free_h2(h);
}

static void maybe_free_h2(struct h2 *h)
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
		req_unwire(r);
		req_free(r);
	}
	for (hh = h->hosts; hh != NULL; hh = hh->next) {
		struct h2_conn *c, *cn;

		while (hh->queue != NULL) {
			struct h2_req *r = hh->queue;

			list_remove(&hh->queue, &hh->queue_tail, r);
			req_free(r);
		}
		for (c = hh->conns; c != NULL; c = cn) {
			cn = c->next;
			conn_forget_streams(c);
			while (c->reqs != NULL) {
				struct h2_req *r = c->reqs;

				r->where = H2R_STREAM;
				req_detach(r);
				req_free(r);
			}
			/* May free c (then it left the list). */
			conn_close(c, "closing");
		}
	}
	h->dirty = NULL;
	h->closing_handles = 2;
	uv_close((uv_handle_t *)&h->flush, h2_handle_closed);
	uv_close((uv_handle_t *)&h->tick, h2_handle_closed);
}
