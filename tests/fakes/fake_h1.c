/*
 * fake_h1.c — the HTTP/1.1 transport (WNS, MPNS, FCM's OAuth endpoint
 * when a client prefers it, and the plain-text control port).
 *
 * One request at a time per connection: bytes are buffered, the head is
 * parsed once "\r\n\r\n" arrives, then Content-Length bytes of body are
 * awaited and the request is dispatched.  While its response is pending
 * (it may be delayed by the script) nothing more is parsed; pipelined
 * bytes wait in the buffer.  Like WNS we refuse chunked bodies and
 * "Expect: 100-continue" (WNS: "no chunking", "disable Expect").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake_conn.h"

#define H1_HEAD_MAX (64 * 1024)

struct fake_h1 {
	char *buf;
	size_t len, cap;
	int busy;		/* a response is pending */
	int in_process;
	int close_after;	/* Connection: close, or HTTP/1.0 */
};

static const char *
reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Request Entity Too Large";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

/* Starts the HTTP/1.1 transport on c. */
int
fake_h1_start(struct fake_conn *c)
{
	c->h1 = fake_xcalloc(1, sizeof *c->h1);
	c->proto = FAKE_PROTO_H1;
	return 0;
}

static void
plain_error(struct fake_conn *c, int status, const char *msg)
{
	struct fake_resp r;

	memset(&r, 0, sizeof r);
	r.status = status;
	fake_resp_header(&r, "content-type", "text/plain");
	fake_resp_body_str(&r, msg);
	c->h1->close_after = 1;
	c->h1->busy = 1;
	fake_h1_respond(c, &r);
	fake_resp_free(&r);
}

static char *
trim(char *s, char *e)
{
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	return s;
}

static int
parse_copy(char *buf, size_t hlen, struct fake_req *req, int *http10)
{
	char *p = buf, *end = buf + hlen, *eol, *sp1, *sp2;

	eol = memchr(p, '\r', (size_t)(end - p));
	if (eol == NULL)
		return -1;
	*eol = '\0';
	sp1 = strchr(p, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7))
		return -1;
	req->method = fake_xstrndup(p, (size_t)(sp1 - p));
	req->path = fake_xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	*http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
	p = eol + 2;
	while (p < end) {
		char *colon, *name, *val;

		eol = memchr(p, '\r', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		if (eol == p)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL || colon == p)
			return -1;
		for (name = p; name < colon; name++) {
			if (*name == ' ' || *name == '\t')
				return -1;
			*name = (char)tolower((unsigned char)*name);
		}
		val = trim(colon + 1, eol);
		fake_req_add_header(req, p, (size_t)(colon - p), val,
		    strlen(val));
		p = eol + 2;
	}
	return 0;
}

/*
 * Parses a private copy of the head h->buf[0..hlen) (the buffer must
 * stay intact: the body may not have arrived yet).  -1: malformed.
 */
static int
parse_head(struct fake_h1 *h, size_t hlen, struct fake_req *req,
    int *http10)
{
	char *copy = fake_xstrndup(h->buf, hlen);
	int rc = parse_copy(copy, hlen, req, http10);

	free(copy);
	return rc;
}

static void
consume(struct fake_h1 *h, size_t n)
{
	memmove(h->buf, h->buf + n, h->len - n);
	h->len -= n;
}

static void
process(struct fake_conn *c)
{
	struct fake_h1 *h = c->h1;

	h->in_process = 1;
	while (!h->busy && !c->closing && h->len > 0) {
		char *eoh = NULL;
		struct fake_req *req;
		struct fake_resp resp;
		const char *v;
		size_t i, hlen, need = 0;
		int http10 = 0;

		for (i = 0; i + 3 < h->len; i++)
			if (memcmp(h->buf + i, "\r\n\r\n", 4) == 0) {
				eoh = h->buf + i;
				break;
			}
		if (eoh == NULL) {
			if (h->len > H1_HEAD_MAX)
				plain_error(c, 431, "header too large\n");
			break;
		}
		hlen = (size_t)(eoh - h->buf) + 4;
		req = fake_xcalloc(1, sizeof *req);
		req->prov = c->lis->prov;
		req->conn = c;
		if (parse_head(h, hlen - 2, req, &http10) != 0) {
			fake_req_free(req);
			plain_error(c, 400, "malformed request\n");
			break;
		}
		if (fake_req_header(req, "transfer-encoding") != NULL) {
			fake_req_free(req);
			plain_error(c, 411, "chunked bodies not accepted\n");
			break;
		}
		if ((v = fake_req_header(req, "expect")) != NULL) {
			fake_req_free(req);
			plain_error(c, 417, "Expect not supported\n");
			break;
		}
		if ((v = fake_req_header(req, "content-length")) != NULL) {
			char *e;
			unsigned long long n = strtoull(v, &e, 10);

			if (*v == '\0' || *e != '\0' || n > 8u << 20) {
				fake_req_free(req);
				plain_error(c, 413, "bad content-length\n");
				break;
			}
			need = (size_t)n;
		}
		if (h->len < hlen + need) {
			fake_req_free(req);	/* parse again when complete */
			break;
		}
		v = fake_req_header(req, "connection");
		if ((v != NULL && strcasecmp(v, "close") == 0) ||
		    (http10 && (v == NULL || strcasecmp(v, "keep-alive"))))
			h->close_after = 1;
		fake_req_add_body(req, h->buf + hlen, need);
		consume(h, hlen + need);
		h->busy = 1;
		memset(&resp, 0, sizeof resp);
		fake_dispatch(req, &resp);
		fake_req_free(req);
		fake_conn_respond(c, 0, &resp);
	}
	h->in_process = 0;
}

/* Buffers bytes and parses complete requests. */
int
fake_h1_feed(struct fake_conn *c, const uint8_t *data, size_t len)
{
	struct fake_h1 *h = c->h1;

	if (h->len + len > H1_HEAD_MAX + (8u << 20) + 1)
		return -1;
	if (h->len + len + 1 > h->cap) {
		h->cap = (h->len + len + 1) * 2;
		h->buf = fake_xrealloc(h->buf, h->cap);
	}
	memcpy(h->buf + h->len, data, len);
	h->len += len;
	process(c);
	return 0;
}

/* Serialises resp (or closes, for the reset/GOAWAY actions). */
void
fake_h1_respond(struct fake_conn *c, struct fake_resp *resp)
{
	struct fake_h1 *h = c->h1;
	char *out;
	size_t cap = 256 + resp->body_len, n, i;

	if (resp->action == FAKE_ACT_RESET_STREAM) {
		c->reset_on_close = 1;
		fake_conn_close(c, 0);
		return;
	}
	if (resp->action == FAKE_ACT_GOAWAY) {
		fake_conn_close(c, 1);
		return;
	}
	for (i = 0; i < resp->nhdrs; i++)
		cap += strlen(resp->hdrs[i].name) +
		    strlen(resp->hdrs[i].value) + 4;
	out = fake_xmalloc(cap);
	n = (size_t)snprintf(out, cap, "HTTP/1.1 %d %s\r\n", resp->status,
	    reason_phrase(resp->status));
	for (i = 0; i < resp->nhdrs; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s: %s\r\n",
		    resp->hdrs[i].name, resp->hdrs[i].value);
	if (resp->action == FAKE_ACT_RESPOND_GOAWAY)
		h->close_after = 1;
	n += (size_t)snprintf(out + n, cap - n,
	    "Content-Length: %zu\r\n%s\r\n", resp->body_len,
	    h->close_after ? "Connection: close\r\n" : "");
	if (resp->body_len > 0)
		memcpy(out + n, resp->body, resp->body_len);
	n += resp->body_len;
	fake_conn_write(c, out, n);
	free(out);
	h->busy = 0;
	if (h->close_after) {
		fake_conn_close(c, 1);
		return;
	}
	if (!h->in_process)
		process(c);
}

/* Frees the transport state; NULL-safe. */
void
fake_h1_free(struct fake_conn *c)
{
	if (c->h1 == NULL)
		return;
	free(c->h1->buf);
	free(c->h1);
	c->h1 = NULL;
}
