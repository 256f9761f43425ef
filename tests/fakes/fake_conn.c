/*
 * fake_conn.c — accepted connections: TCP, the TLS pump and deferred
 * responses.
 *
 * Bytes read from the socket go into the session's read BIO; the
 * handshake runs until it finishes, then decrypted bytes go to the
 * transport that ALPN chose.  Everything the session writes lands in
 * the write BIO, which is drained into one uv_write per flush, so a
 * burst of HTTP/2 responses costs one syscall.
 *
 * A connection is freed when its last handle closes: the TCP handle
 * holds one reference and every deferred-response timer another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "fake_conn.h"

struct fake_defer {
	uv_timer_t timer;
	struct fake_conn *c;
	int32_t sid;
	struct fake_resp resp;
	struct fake_defer *next, *prev;
};

struct wreq {
	uv_write_t req;
	struct fake_conn *c;
	char data[];
};

static struct fake_conn *conns;
static uint64_t next_conn_id = 1;
static char readbuf[256 * 1024];

static void do_close(struct fake_conn *c);
static void linger_start(struct fake_conn *c);

/* How long a closing connection waits for the peer's FIN at most. */
#define LINGER_MS 2000

static void
conn_unref(struct fake_conn *c)
{
	if (--c->refs > 0)
		return;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	fake_h2_free(c);
	fake_h1_free(c);
	SSL_free(c->ssl);	/* frees both BIOs */
	free(c->cert_uid);
	free(c->apns_team);
	free(c);
}

static void
on_tcp_close(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void
on_defer_close(uv_handle_t *h)
{
	struct fake_defer *d = h->data;
	struct fake_conn *c = d->c;

	fake_resp_free(&d->resp);
	free(d);
	conn_unref(c);
}

static void
defer_unlink(struct fake_defer *d)
{
	struct fake_conn *c = d->c;

	if (d->next != NULL)
		d->next->prev = d->prev;
	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		c->defers = d->next;
	d->next = d->prev = NULL;
}

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct fake_conn *c = w->c;

	free(w);
	c->writes--;
	if (c->close_after_write && c->writes == 0) {
		c->close_after_write = 0;
		linger_start(c);
	}
}

static void
raw_write(struct fake_conn *c, const void *data, size_t len)
{
	struct wreq *w;
	uv_buf_t b;

	if (len == 0)
		return;
	w = fake_xmalloc(sizeof *w + len);
	w->c = c;
	memcpy(w->data, data, len);
	b = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
		free(w);
		return;
	}
	c->writes++;
}

static void
drain_wbio(struct fake_conn *c)
{
	size_t n = BIO_ctrl_pending(c->wbio);
	struct wreq *w;
	uv_buf_t b;

	if (n == 0)
		return;
	w = fake_xmalloc(sizeof *w + n);
	w->c = c;
	if (BIO_read(c->wbio, w->data, (int)n) != (int)n)
		abort();
	b = uv_buf_init(w->data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
		free(w);
		return;
	}
	c->writes++;
}

/*
 * Writes len bytes to the peer: through the TLS session when there is
 * one (then flushed to the socket at once), else straight to the socket.
 */
void
fake_conn_write(struct fake_conn *c, const void *data, size_t len)
{
	if (c->closing || len == 0)
		return;
	if (c->ssl == NULL) {
		raw_write(c, data, len);
		return;
	}
	ERR_clear_error();
	if (SSL_write(c->ssl, data, (int)len) <= 0) {
		fake_conn_close(c, 0);
		return;
	}
	drain_wbio(c);
}

static void
on_linger_close(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	conn_unref(req->data);
}

static void
on_linger_timeout(uv_timer_t *t)
{
	do_close(t->data);
}

/*
 * A graceful close lingers, as servers do (RFC 9112 section 9.6): our
 * last bytes go out, then a TLS close_notify and a FIN, and we keep
 * reading (and dropping) what the peer still sends until its FIN, or
 * LINGER_MS.  Closing at once with unread input makes the kernel answer
 * with a RST, and the peer may lose the responses we have just sent
 * (libcurl sends a RST_STREAM for every answered stream, so there is
 * always something unread).
 */
static void
linger_start(struct fake_conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->tcp) || c->lingering)
		return;
	if (c->ssl != NULL && SSL_is_init_finished(c->ssl)) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
		drain_wbio(c);
	}
	c->shut.data = c;
	if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
		c->refs++;
	uv_timer_init(c->tcp.loop, &c->linger);
	c->linger.data = c;
	c->refs++;
	c->lingering = 1;
	uv_timer_start(&c->linger, on_linger_timeout, LINGER_MS, 0);
}

static void
do_close(struct fake_conn *c)
{
	if (c->lingering) {
		c->lingering = 0;
		uv_timer_stop(&c->linger);
		uv_close((uv_handle_t *)&c->linger, on_linger_close);
	}
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	if (c->reset_on_close)
		uv_tcp_close_reset(&c->tcp, on_tcp_close);
	else
		uv_close((uv_handle_t *)&c->tcp, on_tcp_close);
}

/*
 * Closes the connection.  graceful: let queued writes go out first.
 * Deferred responses are dropped.  Idempotent.
 */
void
fake_conn_close(struct fake_conn *c, int graceful)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (!graceful || c->reset_on_close)
		uv_read_stop((uv_stream_t *)&c->tcp);
	while (c->defers != NULL) {
		struct fake_defer *d = c->defers;

		defer_unlink(d);
		uv_timer_stop(&d->timer);
		uv_close((uv_handle_t *)&d->timer, on_defer_close);
	}
	if (graceful && c->writes > 0 && !c->reset_on_close)
		c->close_after_write = 1;
	else if (graceful && !c->reset_on_close)
		linger_start(c);
	else
		do_close(c);
}

/* Closes every connection (shutdown). */
void
fake_conn_close_all(void)
{
	struct fake_conn *c;

	for (c = conns; c != NULL; c = c->next) {
		if (c->closing)
			do_close(c);	/* was waiting for its writes */
		else
			fake_conn_close(c, 0);
	}
}

/* Applies fn to every connection that is not closing. */
void
fake_conn_each(void (*fn)(struct fake_conn *, void *), void *arg)
{
	struct fake_conn *c, *next;

	for (c = conns; c != NULL; c = next) {
		next = c->next;
		if (!c->closing)
			fn(c, arg);
	}
}

static void
send_now(struct fake_conn *c, int32_t sid, struct fake_resp *resp)
{
	if (c->closing) {
		fake_resp_free(resp);
		return;
	}
	switch (resp->action) {
	case FAKE_ACT_RESET_CONN:
		c->reset_on_close = 1;
		fake_conn_close(c, 0);
		break;
	case FAKE_ACT_CLOSE:
		fake_conn_close(c, 1);
		break;
	default:
		if (c->proto == FAKE_PROTO_H2) {
			fake_h2_respond(c, sid, resp);
			fake_h2_flush(c);
		} else {
			fake_h1_respond(c, resp);
		}
	}
	fake_resp_free(resp);
}

static void
on_defer(uv_timer_t *t)
{
	struct fake_defer *d = t->data;

	defer_unlink(d);
	send_now(d->c, d->sid, &d->resp);
	uv_close((uv_handle_t *)&d->timer, on_defer_close);
}

/*
 * Sends resp now, or after resp->delay_ms on a timer.  Takes ownership
 * of resp's contents (resp is zeroed on return).
 */
void
fake_conn_respond(struct fake_conn *c, int32_t sid, struct fake_resp *resp)
{
	struct fake_defer *d;

	if (resp->delay_ms <= 0 || c->closing) {
		send_now(c, sid, resp);
		return;
	}
	d = fake_xcalloc(1, sizeof *d);
	d->c = c;
	d->sid = sid;
	fake_resp_move(&d->resp, resp);
	uv_timer_init(c->tcp.loop, &d->timer);
	d->timer.data = d;
	c->refs++;
	d->next = c->defers;
	if (d->next != NULL)
		d->next->prev = d;
	c->defers = d;
	uv_timer_start(&d->timer, on_defer, (uint64_t)d->resp.delay_ms, 0);
}

/* Drops the deferred response of a stream the peer reset or closed. */
void
fake_conn_cancel_stream(struct fake_conn *c, int32_t sid)
{
	struct fake_defer *d, *next;

	for (d = c->defers; d != NULL; d = next) {
		next = d->next;
		if (d->sid != sid)
			continue;
		defer_unlink(d);
		uv_timer_stop(&d->timer);
		uv_close((uv_handle_t *)&d->timer, on_defer_close);
	}
}

static void
note_client_cert(struct fake_conn *c)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	X509_NAME *n;
	char buf[256];

	if (x == NULL)
		return;
	if (SSL_get_verify_result(c->ssl) == X509_V_OK) {
		c->client_cert = 1;
		n = X509_get_subject_name(x);
		if (X509_NAME_get_text_by_NID(n, NID_userId, buf,
		    sizeof buf) > 0 ||
		    X509_NAME_get_text_by_NID(n, NID_commonName, buf,
		    sizeof buf) > 0)
			c->cert_uid = fake_xstrdup(buf);
	}
	X509_free(x);
}

static int
start_proto(struct fake_conn *c)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;

	SSL_get0_alpn_selected(c->ssl, &p, &n);
	if (n == 2 && memcmp(p, "h2", 2) == 0)
		return fake_h2_start(c);
	if (n == 0 && c->lis->prov == FAKE_APNS)
		return fake_h2_start(c);	/* prior knowledge */
	return fake_h1_start(c);
}

static int
feed(struct fake_conn *c, const uint8_t *data, size_t len)
{
	if (c->proto == FAKE_PROTO_H2)
		return fake_h2_feed(c, data, len);
	return fake_h1_feed(c, data, len);
}

static void
tls_input(struct fake_conn *c, const char *data, size_t len)
{
	int r;

	if (BIO_write(c->rbio, data, (int)len) != (int)len)
		abort();
	if (!SSL_is_init_finished(c->ssl)) {
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);

			drain_wbio(c);	/* handshake flight or alert */
			if (e != SSL_ERROR_WANT_READ)
				fake_conn_close(c, 1);
			ERR_clear_error();
			return;
		}
		drain_wbio(c);
		note_client_cert(c);
		if (start_proto(c) != 0) {
			fake_conn_close(c, 0);
			return;
		}
	}
	for (;;) {
		ERR_clear_error();
		r = SSL_read(c->ssl, readbuf, sizeof readbuf);
		if (r <= 0)
			break;
		if (feed(c, (uint8_t *)readbuf, (size_t)r) != 0) {
			fake_conn_close(c, 1);
			return;
		}
		if (c->closing)
			return;
	}
	r = SSL_get_error(c->ssl, r);
	ERR_clear_error();
	if (r != SSL_ERROR_WANT_READ) {
		fake_conn_close(c, r == SSL_ERROR_ZERO_RETURN);
		return;
	}
	if (c->proto == FAKE_PROTO_H2)
		fake_h2_flush(c);
	drain_wbio(c);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char inbuf[256 * 1024];

	*buf = uv_buf_init(inbuf, sizeof inbuf);
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fake_conn *c = s->data;

	if (nread < 0) {
		if (c->closing)
			do_close(c);	/* the peer's FIN while lingering */
		else
			fake_conn_close(c, 0);
		return;
	}
	if (nread == 0 || c->closing)
		return;		/* closing: read and dropped */
	if (c->ssl != NULL) {
		tls_input(c, buf->base, (size_t)nread);
		return;
	}
	if (feed(c, (uint8_t *)buf->base, (size_t)nread) != 0)
		fake_conn_close(c, 1);
	else if (c->proto == FAKE_PROTO_H2)
		fake_h2_flush(c);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct fake_listener *lis = server->data;
	struct fake_conn *c;

	if (status < 0)
		return;
	c = fake_xcalloc(1, sizeof *c);
	uv_tcp_init(server->loop, &c->tcp);
	c->tcp.data = c;
	c->refs = 1;
	c->lis = lis;
	c->id = next_conn_id++;
	c->next = conns;
	if (conns != NULL)
		conns->prev = c;
	conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		fake_conn_close(c, 0);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (lis->ssl_ctx != NULL) {
		c->ssl = SSL_new(lis->ssl_ctx);
		c->rbio = BIO_new(BIO_s_mem());
		c->wbio = BIO_new(BIO_s_mem());
		if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL)
			abort();
		SSL_set_bio(c->ssl, c->rbio, c->wbio);
		SSL_set_accept_state(c->ssl);
	} else if (fake_h1_start(c) != 0) {
		fake_conn_close(c, 0);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/*
 * Binds 127.0.0.1:port (0 = any free port, the chosen one is stored in
 * lis->port) and starts accepting.  Returns 0 or a negative errno.
 */
int
fake_listen(uv_loop_t *loop, struct fake_listener *lis, int prov,
    SSL_CTX *ctx, int port)
{
	struct sockaddr_in sa;
	struct sockaddr_storage ss;
	int len = sizeof ss, r;

	lis->prov = prov;
	lis->ssl_ctx = ctx;
	uv_tcp_init(loop, &lis->tcp);
	lis->tcp.data = lis;
	uv_ip4_addr("127.0.0.1", port, &sa);
	if ((r = uv_tcp_bind(&lis->tcp, (struct sockaddr *)&sa, 0)) != 0 ||
	    (r = uv_listen((uv_stream_t *)&lis->tcp, 128,
	    on_connection)) != 0 ||
	    (r = uv_tcp_getsockname(&lis->tcp, (struct sockaddr *)&ss,
	    &len)) != 0)
		return r;
	lis->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}
