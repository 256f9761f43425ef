/*
 * h2_conn.c - the connections of our HTTP/2 client (h2.c): TLS
 * contexts per CA bundle, hosts, a connection's states and memory, its
 * opening (resolve, connect, TLS, SETTINGS) and its writing (frames
 * pulled from nghttp2 once per loop iteration, one uv_write).  See
 * h2.c's top comment.
 */
#include "net/h2_int.h"

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

static const char *const state_names[] = {
	"resolving", "connecting", "tls", "settings", "ready", "draining",
	"closed",
};

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
int h2__parse_url(const char *url, char **host, char **port,
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

struct h2_host *h2__host_get(struct h2 *h, const char *host,
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

void h2__conn_set_state(struct h2_conn *c, enum h2_conn_state st)
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

		h2__req_detach(r);
		h2__req_unwire(r);
		h2__req_free(r);
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
	h2__maybe_free(h);
}

static void tcp_closed(uv_handle_t *hd)
{
	struct h2_conn *c = hd->data;

	c->tcp_open = false;
	conn_maybe_free(c);
}

/* Requests leave c's nghttp2 streams (but zombies, freed with c). */
void h2__conn_forget_streams(struct h2_conn *c)
{
	struct h2_req *r;

	for (r = c->reqs; r != NULL; r = r->next)
		h2__req_unwire(r);
	for (r = c->h->finished; r != NULL; r = r->next)
		if (r->wire == c)
			h2__req_unwire(r);
}

/*
 * Close `c` now: its streams end with `why` (or wait again when they had
 * not left, or once when nothing had come back), requests waiting for it
 * fail if it was the host's last hope.
 */
void h2__conn_close(struct h2_conn *c, const char *why)
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
	h2__conn_forget_streams(c);
	while (c->reqs != NULL) {
		struct h2_req *r = c->reqs;

		if (!r->sent) {
			h2__req_requeue(r);
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
			h2__req_requeue(r);
		} else {
			char *e = mem_printf("Recv failure: %s", why);

			h2__req_finish(r, HTTP_ERR_NO_ANSWER, e);
			free(e);
		}
	}
	h2__conn_set_state(c, H2C_CLOSED);
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
				h2__req_finish(hh->queue,
					       HTTP_ERR_NOT_SENT, why);
		} else {
			h2__host_pump(hh);
		}
	}
	conn_maybe_free(c);
}

void h2__conn_fail(struct h2_conn *c, const char *fmt, ...)
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
	h2__conn_close(c, buf);
}

void h2__conn_mark_dirty(struct h2_conn *c)
{
	struct h2 *h = c->h;

	if (c->dirty || c->state == H2C_CLOSED)
		return;
	c->dirty = true;
	c->dirty_next = h->dirty;
	h->dirty = c;
	if (!h->flushing && !h->closing) {
		h->flushing = true;
		uv_prepare_start(&h->flush, h2__on_flush);
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
		h2__conn_fail(c, "Send failure: %s", uv_strerror(status));
	else if (c->state != H2C_CLOSED && c->s != NULL &&
		 nghttp2_session_want_write(c->s))
		h2__conn_mark_dirty(c);  /* was held back (H2_WRITE_HIGH) */
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
		h2__conn_fail(c, "Send failure: %s", uv_strerror(rc));
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
			h2__conn_fail(c, "HTTP/2 framing error: %s",
				      nghttp2_strerror((int)n));
			return -1;
		}
		if (n == 0)
			break;
		while (n > 0) {
			int w = SSL_write(c->ssl, data, (int)n);

			if (w <= 0) {
				h2__conn_fail(c, "Send failure: TLS "
					      "write failed");
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
		h2__conn_close(c, "the HTTP/2 session ended");
		return -1;
	}
	return 0;
}

/* The prepare callback: everything queued this iteration leaves now. */
void h2__on_flush(uv_prepare_t *p)
{
	struct h2 *h = p->data;

	while (h->dirty != NULL) {
		struct h2_conn *c = h->dirty;

		h->dirty = c->dirty_next;
		c->dirty = false;
		if (c->state != H2C_CLOSED && c->s != NULL)
			conn_flush(c);
	}
	h2__report_finished(h);
	if (h->dirty == NULL && h->finished == NULL) {
		h->flushing = false;
		uv_prepare_stop(&h->flush);
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
			h2__req_finish(hh->queue, HTTP_ERR_NOT_SENT,
				       "the server does not speak HTTP/2");
		}
		h2__conn_close(c, "the server does not speak HTTP/2");
		return;
	}
	if (nghttp2_session_client_new(&c->s, c->h->cbs, c) != 0) {
		h2__conn_fail(c, "HTTP/2: cannot make a session");
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
	h2__conn_set_state(c, H2C_SETTINGS);
	h2__conn_mark_dirty(c);
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
				h2__conn_fail(c, "SSL peer certificate was not "
					      "OK: %s",
					      X509_verify_cert_error_string(v));
			else
				h2__conn_fail(c, "SSL connect error: %s", eb);
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
				h2__conn_fail(c, "connection closed by the "
					      "server (TLS close_notify)");
			else
				h2__conn_fail(c, "TLS read error (%d)", err);
			return;
		}
		used = nghttp2_session_mem_recv(c->s, (const uint8_t *)buf,
						(size_t)rc);
		if (used < 0) {
			h2__conn_fail(c, "HTTP/2 protocol error: %s",
				      nghttp2_strerror((int)used));
			return;
		}
	}
	/* SETTINGS ACKs, WINDOW_UPDATEs, PING ACKs; new streams fit now. */
	h2__conn_mark_dirty(c);
	h2__host_pump(c->host);
}

static void on_tcp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct h2_conn *c = st->data;

	if (n == 0 || c->state == H2C_CLOSED)
		return;
	if (n < 0) {
		if (n == UV_EOF)
			h2__conn_fail(c, "connection closed by the server");
		else
			h2__conn_fail(c, "%s", uv_strerror((int)n));
		h2__report_finished(c->h);
		return;
	}
	if (BIO_write(c->rbio, b->base, (int)n) != (int)n) {
		h2__conn_fail(c, "TLS: cannot buffer what was read");
		h2__report_finished(c->h);
		return;
	}
	conn_pump_tls(c);
	h2__report_finished(c->h);
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
		h2__conn_fail(c, "SSL connect error: out of memory");
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
	h2__conn_set_state(c, H2C_TLS);
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
		h2__conn_fail(c, "Failed to connect to %s port %s: %s",
			      c->host->host, c->host->port,
			      uv_strerror(status));
		h2__report_finished(c->h);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, 60);
	conn_start_tls(c);
	h2__report_finished(c->h);
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
		h2__conn_fail(c, "Failed to connect to %s port %s: %s",
			      c->host->host, c->host->port, uv_strerror(rc));
		return;
	}
	h2__conn_fail(c, "Failed to connect to %s port %s: no address",
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
		h2__conn_fail(c, "Could not resolve host: %s (%s)",
			      c->host->host, uv_strerror(status));
		h2__report_finished(c->h);
		return;
	}
	h2__conn_set_state(c, H2C_CONNECTING);
	c->ai_next = res;
	try_connect(c);
	h2__report_finished(c->h);
}

void h2__conn_open(struct h2_host *hh, const struct h2_req *opener)
{
	struct h2 *h = hh->h;
	struct h2_conn *c;
	struct addrinfo hints;
	int rc;

	if (hh->tls->error != NULL)
		tls_load(hh->tls);
	if (hh->tls->error != NULL) {
		while (hh->queue != NULL)
			h2__req_finish(hh->queue, HTTP_ERR_NOT_SENT,
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
	h2__tick_start(h);
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
		h2__conn_fail(c, "Could not resolve host: %s (%s)", hh->host,
			      uv_strerror(rc));
	}
}

