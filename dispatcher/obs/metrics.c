/*
 * metrics.c - see metrics.h.  Each connection: read until the blank line
 * ending the request head, route it, write the whole answer with
 * "Connection: close", then close.  A timer per connection closes a
 * client that is too slow.
 */
#include "obs/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

struct metrics_client;

struct metrics {
	uv_tcp_t server;
	uv_loop_t *loop;
	metrics_render_fn render;
	void *arg;
	struct metrics_client *clients;   /* doubly linked */
	int nclients;
	bool closing;
	int open_handles;                  /* server + clients' handles */
};

struct metrics_client {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	struct metrics *m;
	struct metrics_client *prev, *next;
	char req[METRICS_MAX_REQUEST];
	size_t len;
	bool answered;
	bool closing;
	int handles;                       /* 2 until both closed */
	struct buf out;
};

void metrics_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);    /* a full page is seen by the caller */
	va_end(ap);
}

void metrics_label_value(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\')
			buf_addstr(b, "\\\\");
		else if (*s == '"')
			buf_addstr(b, "\\\"");
		else if (*s == '\n')
			buf_addstr(b, "\\n");
		else
			buf_addc(b, *s);
	}
}

int metrics_parse_listen(const char *listen, struct sockaddr_storage *out)
{
	char host[256];
	const char *colon;
	char *end;
	long port;

	if (listen == NULL || *listen == '\0')
		return -EINVAL;
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (close == NULL || close[1] != ':' ||
		    (size_t)(close - listen - 1) >= sizeof host)
			return -EINVAL;
		memcpy(host, listen + 1, (size_t)(close - listen - 1));
		host[close - listen - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL || (size_t)(colon - listen) >= sizeof host ||
		    colon == listen)
			return -EINVAL;
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || port < 0 ||
	    port > 65535)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0)
		return 0;
	return -EINVAL;
}

int metrics_route(const char *req, size_t len, int *status, int *head_only)
{
	const char *end = NULL;

	*head_only = 0;
	for (size_t i = 0; i + 3 < len; i++) {
		if (memcmp(req + i, "\r\n\r\n", 4) == 0) {
			end = req + i;
			break;
		}
	}
	if (end == NULL) {
		for (size_t i = 0; i + 1 < len; i++)
			if (req[i] == '\n' && req[i + 1] == '\n') {
				end = req + i;
				break;
			}
	}
	if (end == NULL)
		return 1;
	/* Request line: METHOD SP TARGET SP HTTP/x.y */
	const char *sp1 = memchr(req, ' ', (size_t)(end - req));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ',
				       (size_t)(end - sp1 - 1)) : NULL;
	if (sp1 == NULL || sp2 == NULL || sp2 == sp1 + 1 ||
	    (size_t)(end - sp2) < 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		*status = 400;
		return 0;
	}
	size_t mlen = (size_t)(sp1 - req);
	bool get = mlen == 3 && memcmp(req, "GET", 3) == 0;
	bool head = mlen == 4 && memcmp(req, "HEAD", 4) == 0;
	size_t tlen = (size_t)(sp2 - sp1 - 1);
	const char *target = sp1 + 1;
	/* "/metrics", optionally with a query string */
	bool path_ok = (tlen == 8 && memcmp(target, "/metrics", 8) == 0) ||
		       (tlen > 8 && memcmp(target, "/metrics?", 9) == 0);
	if (!get && !head)
		*status = 405;
	else if (!path_ok)
		*status = 404;
	else
		*status = 200;
	*head_only = head;
	return 0;
}

static void on_client_handle_closed(uv_handle_t *h)
{
	struct metrics_client *c = h->data;
	struct metrics *m = c->m;

	if (--c->handles > 0)
		return;
	buf_free(&c->out);
	free(c);
	if (--m->open_handles == 0 && m->closing)
		free(m);
}

static void client_close(struct metrics_client *c)
{
	struct metrics *m = c->m;

	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		m->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	m->nclients--;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_client_handle_closed);
}

static void on_written(uv_write_t *w, int status)
{
	struct metrics_client *c = w->data;

	(void)status;
	client_close(c);
}

static void respond(struct metrics_client *c, int status, int head_only)
{
	struct buf body;
	const char *ctype = "text/plain; charset=utf-8";

	buf_init(&body, METRICS_MAX_PAGE);
	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (status == 200) {
		c->m->render(c->m->arg, &body);
		ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (buf_full(&body)) {
			log_error("metrics page too large, answered 500",
				  "max_bytes=%u", METRICS_MAX_PAGE);
			status = 500;
			buf_reset(&body);
			ctype = "text/plain; charset=utf-8";
		}
	}
	const char *reason = status == 200 ? "OK" : status == 404
		? "Not Found" : status == 405 ? "Method Not Allowed"
		: status == 500 ? "Internal Server Error" : "Bad Request";
	if (status != 200)
		metrics_printf(&body, "%d %s\n", status, reason);
	metrics_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
		       "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
		       status, reason, ctype, body.len,
		       status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head_only && body.len > 0)
		buf_add(&c->out, body.data, body.len);
	buf_free(&body);
	uv_buf_t buf = uv_buf_init(c->out.data, (unsigned)c->out.len);
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1,
		     on_written) != 0)
		client_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct metrics_client *c = h->data;

	(void)suggested;
	buf->base = c->req + c->len;
	buf->len = sizeof c->req - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct metrics_client *c = s->data;
	int status, head_only;

	(void)buf;
	if (c->answered || c->closing)
		return;
	if (n < 0) {
		client_close(c);
		return;
	}
	c->len += (size_t)n;
	if (metrics_route(c->req, c->len, &status, &head_only) == 0)
		respond(c, status, head_only);
	else if (c->len >= sizeof c->req)
		respond(c, 400, 0);
}

static void on_timeout(uv_timer_t *t)
{
	struct metrics_client *c = t->data;

	if (!c->answered)
		client_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct metrics *m = server->data;

	if (status < 0 || m->closing)
		return;
	struct metrics_client *c = mem_alloc_zero(1, sizeof *c);

	/* The head and the page. */
	buf_init(&c->out, METRICS_MAX_PAGE + 1024);
	c->m = m;
	c->handles = 2;
	uv_tcp_init(m->loop, &c->tcp);
	uv_timer_init(m->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	m->open_handles++;
	c->next = m->clients;
	if (m->clients)
		m->clients->prev = c;
	m->clients = c;
	m->nclients++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
	    m->nclients > METRICS_MAX_CLIENTS) {
		client_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, METRICS_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		client_close(c);
}

int metrics_start(struct metrics **out, uv_loop_t *loop, const char *listen,
		  metrics_render_fn render, void *arg, char *err,
		  size_t errlen)
{
	struct sockaddr_storage addr;
	int rc;

	*out = NULL;
	if (metrics_parse_listen(listen, &addr) < 0) {
		snprintf(err, errlen, "--metrics-listen: '%s' is not "
			 "HOST:PORT (an IP address and a port)", listen);
		return -EINVAL;
	}
	struct metrics *m = mem_alloc_zero(1, sizeof *m);
	m->loop = loop;
	m->render = render;
	m->arg = arg;
	uv_tcp_init(loop, &m->server);
	m->server.data = m;
	m->open_handles = 1;
	rc = uv_tcp_bind(&m->server, (const struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&m->server, 64, on_connection);
	if (rc != 0) {
		snprintf(err, errlen, "--metrics-listen %s: %s", listen,
			 uv_strerror(rc));
		metrics_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

static void on_server_closed(uv_handle_t *h)
{
	struct metrics *m = h->data;

	if (--m->open_handles == 0)
		free(m);
}

void metrics_close(struct metrics *m)
{
	if (m == NULL || m->closing)
		return;
	m->closing = true;
	while (m->clients)
		client_close(m->clients);
	uv_close((uv_handle_t *)&m->server, on_server_closed);
}
