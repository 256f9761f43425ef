/*
 * fake_util.c — small helpers shared by every module of pgpush-fake:
 * aborting allocators, request/response containers, time and random
 * identifiers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/rand.h>

#include "fake.h"

static const char *prov_names[FAKE_NPROV] = {
	"apns", "fcm", "wns", "mpns", "control"
};

const char *
fake_provider_name(int prov)
{
	return prov >= 0 && prov < FAKE_NPROV ? prov_names[prov] : "?";
}

int
fake_provider_parse(const char *name)
{
	int i;

	for (i = 0; i < FAKE_NPROV; i++)
		if (strcmp(name, prov_names[i]) == 0)
			return i;
	return -1;
}

void *
fake_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

void *
fake_xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		abort();
	return p;
}

void *
fake_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		abort();
	return p;
}

char *
fake_xstrdup(const char *s)
{
	return fake_xstrndup(s, strlen(s));
}

char *
fake_xstrndup(const char *s, size_t n)
{
	char *p = fake_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int64_t
fake_now(void)
{
	return (int64_t)time(NULL);
}

int64_t
fake_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
fake_rand_hex(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[64];
	size_t i;

	while (n > 0) {
		size_t k = n > sizeof r ? sizeof r : n;

		if (RAND_bytes(r, (int)k) != 1)
			abort();
		for (i = 0; i < k; i++)
			*buf++ = hex[r[i] & 15];
		n -= k;
	}
	*buf = '\0';
}

void
fake_uuid(char *buf)
{
	char h[33];

	fake_rand_hex(h, 32);
	h[12] = '4';
	h[16] = "89ab"[h[16] % 4];
	snprintf(buf, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12,
	    h + 16, h + 20);
}

void
fake_resp_header(struct fake_resp *r, const char *name, const char *value)
{
	size_t i;

	/* A later value for the same name replaces the earlier one. */
	for (i = 0; i < r->nhdrs; i++)
		if (strcasecmp(r->hdrs[i].name, name) == 0) {
			free(r->hdrs[i].value);
			r->hdrs[i].value = fake_xstrdup(value);
			return;
		}
	if (r->nhdrs == FAKE_RESP_MAXHDR)
		abort();
	r->hdrs[r->nhdrs].name = fake_xstrdup(name);
	r->hdrs[r->nhdrs].value = fake_xstrdup(value);
	r->nhdrs++;
}

void
fake_resp_body(struct fake_resp *r, const char *body, size_t len)
{
	free(r->body);
	r->body = fake_xmalloc(len + 1);
	if (len > 0)
		memcpy(r->body, body, len);
	r->body[len] = '\0';
	r->body_len = len;
}

void
fake_resp_body_str(struct fake_resp *r, const char *body)
{
	fake_resp_body(r, body, strlen(body));
}

void
fake_resp_free(struct fake_resp *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	free(r->body);
	free(r->goaway_data);
	free(r->token);
	memset(r, 0, sizeof *r);
}

void
fake_resp_move(struct fake_resp *dst, struct fake_resp *src)
{
	*dst = *src;
	memset(src, 0, sizeof *src);
}

const char *
fake_req_header(const struct fake_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nhdrs; i++)
		if (strcmp(req->hdrs[i].name, name) == 0)
			return req->hdrs[i].value;
	return NULL;
}

void
fake_req_add_header(struct fake_req *req, const char *name, size_t nl,
    const char *value, size_t vl)
{
	struct fake_hdr *h;

	if (req->nhdrs == req->caphdrs) {
		req->caphdrs = req->caphdrs ? req->caphdrs * 2 : 16;
		req->hdrs = fake_xrealloc(req->hdrs,
		    req->caphdrs * sizeof *req->hdrs);
	}
	h = &req->hdrs[req->nhdrs];
	h->name = fake_xstrndup(name, nl);
	h->value = fake_xstrndup(value, vl);
	if (req->dup_header == NULL && fake_req_header(req, h->name))
		req->dup_header = fake_xstrdup(h->name);
	req->nhdrs++;
}

void
fake_req_add_body(struct fake_req *req, const char *data, size_t len)
{
	size_t keep = len;

	req->body_total += len;
	if (req->body_len + keep > FAKE_BODY_MAX)
		keep = FAKE_BODY_MAX - req->body_len;
	req->body = fake_xrealloc(req->body, req->body_len + keep + 1);
	if (keep > 0)
		memcpy(req->body + req->body_len, data, keep);
	req->body_len += keep;
	req->body[req->body_len] = '\0';
}

void
fake_req_free(struct fake_req *req)
{
	size_t i;

	if (req == NULL)
		return;
	for (i = 0; i < req->nhdrs; i++) {
		free(req->hdrs[i].name);
		free(req->hdrs[i].value);
	}
	free(req->hdrs);
	free(req->method);
	free(req->path);
	free(req->body);
	free(req->dup_header);
	free(req);
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

char *
fake_url_decode(const char *s, size_t len)
{
	char *o = fake_xmalloc(len + 1), *p = o;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '+') {
			*p++ = ' ';
		} else if (s[i] == '%' && i + 2 < len &&
		    hexval((unsigned char)s[i + 1]) >= 0 &&
		    hexval((unsigned char)s[i + 2]) >= 0) {
			*p++ = (char)(hexval((unsigned char)s[i + 1]) * 16 +
			    hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			*p++ = s[i];
		}
	}
	*p = '\0';
	return o;
}

char *
fake_form_get(const char *form, const char *key)
{
	size_t kl = strlen(key);
	const char *p = form;

	while (p != NULL && *p != '\0') {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);

		if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=')
			return fake_url_decode(p + kl + 1, len - kl - 1);
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

void
fake_resp_json(struct fake_resp *r, int status, json_object *o)
{
	r->status = status;
	fake_resp_header(r, "content-type", "application/json; charset=UTF-8");
	fake_resp_body_str(r, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}
