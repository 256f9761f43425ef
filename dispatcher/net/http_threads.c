/*
 * http_threads.c - the HTTP bridge on worker threads (http_opts.threads):
 * the caller's bridge becomes a proxy that hands each request to a
 * worker thread running an ordinary bridge on a loop of its own, and
 * hands the answer back to the caller's loop.  See the comment below.
 */
#include "net/http_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "net/h2.h"

/* ---- the bridge on worker threads (http_opts.threads) ----------- */
/*
 * The caller's `struct http` becomes a proxy: http_submit() copies the
 * request into a proxy transfer and queues it for a worker, which runs
 * an ordinary bridge (`inner`) on a loop of its own; the answer comes
 * back copied into the proxy transfer and its callback runs on the
 * caller's loop.  A named connection group always goes to the same
 * worker (hash of the name), so its limits and warm-up hold as on one
 * loop; requests of the common group take the workers in turn (each
 * has its own common connections).  One mutex guards every queue; each
 * side has a uv_async_t.  Every SUBMIT gets exactly one DONE back; a
 * CANCEL (the caller has already called back "cancelled") gets one
 * CANCEL_DONE after that DONE, and the caller frees the proxy transfer
 * on the last of these, so a worker never sees it freed.  CLOSE ends a
 * worker's bridge and loop; its CLOSED lets the caller join it.
 */

enum th_op { TH_SUBMIT, TH_CANCEL, TH_CLOSE, TH_DONE, TH_CANCEL_DONE,
	     TH_CLOSED, TH_RETIRE };

struct th_msg {
	enum th_op op;
	struct http_xfer *px;
	struct th_worker *w;
	char *group;                    /* TH_RETIRE: the group's name */
	uint64_t gen;                   /* and its generation */
	struct th_msg *next;
};

struct th_queue {
	struct th_msg *head, *tail;
};

struct th_worker {
	struct http_th *th;
	uv_thread_t tid;
	uv_loop_t loop;
	uv_async_t wake;                /* on loop */
	struct http *inner;             /* this worker's thread only */
	struct th_queue in;             /* under th->mu */
	struct http_stats stats;        /* inner's, last seen; under th->mu */
	bool started;
};

struct http_th {
	struct http *outer;             /* the caller's side */
	uv_async_t wake_main;           /* on the caller's loop */
	uv_mutex_t mu;
	struct th_queue to_main;
	unsigned n, next_rr, running;
	struct th_worker *w;
};

static void th_push_msg(struct http_th *th, struct th_queue *q,
			struct th_msg *m, uv_async_t *wake)
{
	struct th_worker *w = m->w;

	m->next = NULL;
	uv_mutex_lock(&th->mu);
	if (q->tail != NULL)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	if (q == &th->to_main && w != NULL && w->inner != NULL)
		w->stats = w->inner->stats;
	uv_mutex_unlock(&th->mu);
	uv_async_send(wake);
}

static void th_push(struct http_th *th, struct th_queue *q, enum th_op op,
		    struct http_xfer *px, struct th_worker *w,
		    uv_async_t *wake)
{
	struct th_msg *m = mem_alloc_zero(1, sizeof *m);

	m->op = op;
	m->px = px;
	m->w = w;
	th_push_msg(th, q, m, wake);
}

static struct th_msg *th_take(struct http_th *th, struct th_queue *q)
{
	struct th_msg *m;

	uv_mutex_lock(&th->mu);
	m = q->head;
	q->head = q->tail = NULL;
	uv_mutex_unlock(&th->mu);
	return m;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? mem_strdup(s) : NULL;
}

/* Copy what the worker needs of `src` into px->req. */
static void th_req_copy(struct http_xfer *px, const struct http_request *src)
{
	struct http_request *r = &px->req;

	*r = *src;
	r->method = dup_or_null(src->method);
	r->url = mem_strdup(src->url);
	r->ca_path = dup_or_null(src->ca_path);
	r->conn_group = dup_or_null(src->conn_group);
	r->client_cert = dup_or_null(src->client_cert);
	r->client_key = dup_or_null(src->client_key);
	r->client_key_password = dup_or_null(src->client_key_password);
	if (src->client_p12 != NULL) {
		void *p = mem_alloc(src->client_p12_len + 1);

		memcpy(p, src->client_p12, src->client_p12_len);
		r->client_p12 = p;
	}
	if (src->body != NULL) {
		char *b = mem_alloc(src->body_len + 1);

		memcpy(b, src->body, src->body_len);
		b[src->body_len] = '\0';
		r->body = b;
	}
	if (src->headers != NULL) {
		size_t n = 0;
		const char **h;

		while (src->headers[n] != NULL)
			n++;
		h = mem_alloc((n + 1) * sizeof *h);
		for (size_t i = 0; i < n; i++)
			h[i] = mem_strdup(src->headers[i]);
		h[n] = NULL;
		r->headers = h;
	}
	r->done = NULL;
	r->arg = NULL;
}

static void wipe_str(const char *s)
{
	if (s != NULL) {
		explicit_bzero((char *)s, strlen(s));
		free((char *)s);
	}
}

/* Free a proxy transfer; the secrets of its request are wiped. */
static void th_xfer_free(struct http_xfer *px)
{
	struct http_request *r = &px->req;

	free((char *)r->method);
	free((char *)r->url);
	free((char *)r->ca_path);
	free((char *)r->conn_group);
	free((char *)r->client_cert);
	wipe_str(r->client_key);
	wipe_str(r->client_key_password);
	if (r->client_p12 != NULL) {
		explicit_bzero((void *)r->client_p12, r->client_p12_len);
		free((void *)r->client_p12);
	}
	free((char *)r->body);
	if (r->headers != NULL) {
		for (const char *const *h = r->headers; *h != NULL; h++)
			wipe_str(*h);   /* Authorization lines */
		free((void *)r->headers);
	}
	free(px->res_error);
	buf_free(&px->body);
	buf_free(&px->headers);
	free(px);
}

/* Worker: the inner bridge's answer, copied into the proxy transfer. */
static void th_inner_done(void *arg, const struct http_response *res)
{
	struct http_xfer *px = arg;
	struct http_xfer *x = res->xfer;
	struct th_worker *w = px->w;

	px->inner = NULL;
	px->res_gen = x != NULL && x->group != NULL ? x->group->gen : 0;
	px->res_status = res->status;
	px->res_version = res->http_version;
	px->res_err = res->err;
	px->res_error = dup_or_null(res->error);
	if (res->status != 0)
		buf_add(&px->body, res->body, res->body_len);
	if (x != NULL && x->headers.len > 0)
		buf_add(&px->headers, x->headers.data, x->headers.len);
	th_push(w->th, &w->th->to_main, TH_DONE, px, w, &w->th->wake_main);
}

static void th_inner_closed(void *arg)
{
	struct th_worker *w = arg;

	w->inner = NULL;
	uv_close((uv_handle_t *)&w->wake, NULL);
}

/* Worker: requests, cancellations and the close, from the caller. */
static void th_on_wake(uv_async_t *a)
{
	struct th_worker *w = a->data;
	struct http_th *th = w->th;
	struct th_msg *m = th_take(th, &w->in), *next;

	for (; m != NULL; m = next) {
		struct http_xfer *px = m->px;

		next = m->next;
		if (m->op == TH_SUBMIT) {
			struct http_request req = px->req;
			int rc = -ECANCELED;

			req.done = th_inner_done;
			req.arg = px;
			if (w->inner != NULL)
				rc = http_submit(w->inner, &req, &px->inner);
			if (rc < 0) {
				char err[128];

				px->inner = NULL;
				snprintf(err, sizeof err,
					 "cannot start the request: %s",
					 strerror(-rc));
				px->res_err = HTTP_ERR_NOT_SENT;
				px->res_error = mem_strdup(err);
				th_push(th, &th->to_main, TH_DONE, px, w,
					&th->wake_main);
			}
		} else if (m->op == TH_CANCEL) {
			if (px->inner != NULL && w->inner != NULL)
				http_cancel(w->inner, px->inner);
			th_push(th, &th->to_main, TH_CANCEL_DONE, px, w,
				&th->wake_main);
		} else if (m->op == TH_CLOSE && w->inner != NULL) {
			http_close(w->inner, th_inner_closed, w);
		} else if (m->op == TH_RETIRE && w->inner != NULL) {
			http__group_retire_gen(w->inner, m->group, m->gen);
		}
		free(m->group);
		free(m);
	}
}

static void th_main(void *arg)
{
	struct th_worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_loop_close(&w->loop);
	th_push(w->th, &w->th->to_main, TH_CLOSED, NULL, w,
		&w->th->wake_main);
}

static void th_free(struct http_th *th)
{
	uv_mutex_destroy(&th->mu);
	free(th->w);
	free(th);
}

static void th_free_closed(uv_handle_t *h)
{
	th_free(h->data);
}

static void th_wake_main_closed(uv_handle_t *h)
{
	struct http_th *th = h->data;
	struct http *http = th->outer;

	th_free(th);
	http__free(http);
}

/* Caller: answers, cancellations done, and the workers' ends. */
static void th_on_wake_main(uv_async_t *a)
{
	struct http_th *th = a->data;
	struct http *http = th->outer;
	struct th_msg *m = th_take(th, &th->to_main), *next;

	for (; m != NULL; m = next) {
		struct http_xfer *px = m->px;

		next = m->next;
		if (m->op == TH_DONE && !px->cancelled) {
			struct http_response res;

			http__xfer_unlink(http, px);
			memset(&res, 0, sizeof res);
			res.xfer = px;
			res.status = px->res_status;
			if (px->res_status == 0) {
				res.err = px->res_err != HTTP_ERR_NONE
					? px->res_err : HTTP_ERR_NO_ANSWER;
				res.error = px->res_error != NULL
					? px->res_error : "no answer";
			}
			res.body = buf_str(&px->body);
			res.body_len = px->body.len;
			res.http_version = px->res_version;
			px->done(px->arg, &res);
			th_xfer_free(px);
		} else if (m->op == TH_CANCEL_DONE) {
			th_xfer_free(px);
		} else if (m->op == TH_CLOSED) {
			uv_thread_join(&m->w->tid);
			if (--th->running == 0)
				uv_close((uv_handle_t *)&th->wake_main,
					 th_wake_main_closed);
		}
		free(m);
	}
}

/* A worker's loop, async and bridge, made on this thread. */
static int th_worker_init(struct th_worker *w, const struct http_opts *o)
{
	int rc;

	if ((rc = uv_loop_init(&w->loop)) < 0)
		return rc;
	if ((rc = http_new(&w->inner, &w->loop, o)) < 0)
		goto out_loop;
	w->wake.data = w;
	if ((rc = uv_async_init(&w->loop, &w->wake, th_on_wake)) < 0)
		goto out_inner;
	return 0;

out_inner:
	http_close(w->inner, NULL, NULL);
	w->inner = NULL;
	uv_run(&w->loop, UV_RUN_DEFAULT);
out_loop:
	uv_loop_close(&w->loop);
	return rc;
}

/* Undo th_worker_init() of a worker whose thread never started. */
static void th_worker_undo(struct th_worker *w)
{
	if (w->inner != NULL)
		http_close(w->inner, NULL, NULL);
	w->inner = NULL;
	uv_close((uv_handle_t *)&w->wake, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_loop_close(&w->loop);
}

int http__th_new(struct http *http, uv_loop_t *loop)
{
	struct http_th *th = mem_alloc_zero(1, sizeof *th);
	struct http_opts o = http->opts;
	unsigned i, made = 0;

	o.h2_direct = false;    /* the caller's loop has it */
	int rc;

	th->outer = http;
	th->n = http->opts.threads;
	th->w = mem_alloc_zero(th->n, sizeof *th->w);
	o.threads = 0;
	if ((rc = uv_mutex_init(&th->mu)) < 0) {
		free(th->w);
		free(th);
		return rc;
	}
	for (made = 0; made < th->n; made++) {
		th->w[made].th = th;
		if ((rc = th_worker_init(&th->w[made], &o)) < 0)
			goto out_workers;
	}
	th->wake_main.data = th;
	if ((rc = uv_async_init(loop, &th->wake_main, th_on_wake_main)) < 0)
		goto out_workers;
	http->th = th;
	for (i = 0; i < th->n; i++) {
		rc = uv_thread_create(&th->w[i].tid, th_main, &th->w[i]);
		if (rc < 0)
			break;
		th->w[i].started = true;
		th->running++;
	}
	if (i == th->n)
		return 0;
	/* Some did not start: stop those that did, as http_close() would
	 * (their CLOSED messages wait on the loop: run it to the end). */
	for (unsigned k = i; k < th->n; k++)
		th_worker_undo(&th->w[k]);
	for (unsigned k = 0; k < i; k++)
		th_push(th, &th->w[k].in, TH_CLOSE, NULL, &th->w[k],
			&th->w[k].wake);
	for (unsigned k = 0; k < i; k++)
		uv_thread_join(&th->w[k].tid);
	http->th = NULL;
	while (th->to_main.head != NULL) {
		struct th_msg *m = th->to_main.head;

		th->to_main.head = m->next;
		free(m);
	}
	uv_close((uv_handle_t *)&th->wake_main, th_free_closed);
	return rc;

out_workers:
	while (made-- > 0)
		th_worker_undo(&th->w[made]);
	th_free(th);
	return rc;
}

/* FNV-1a: a named group always lands on the same worker. */
static unsigned th_pick(struct http_th *th, const char *group)
{
	uint32_t h = 2166136261u;

	if (th->n == 1)
		return 0;
	if (group == NULL || group[0] == '\0')
		return th->next_rr++ % th->n;
	for (; *group != '\0'; group++)
		h = (h ^ (unsigned char)*group) * 16777619u;
	return h % th->n;
}

int http__th_submit(struct http *http, const struct http_request *req,
		    struct http_xfer **out)
{
	struct http_th *th = http->th;
	struct http_xfer *px = mem_alloc_zero(1, sizeof *px);

	px->http = http;
	px->done = req->done;
	px->arg = req->arg;
	px->w = &th->w[th_pick(th, req->conn_group)];
	th_req_copy(px, req);
	http__xfer_link(http, px);
	th_push(th, &px->w->in, TH_SUBMIT, px, px->w, &px->w->wake);
	if (out != NULL)
		*out = px;
	return 0;
}

void http__th_cancel(struct http *http, struct http_xfer *px)
{
	struct http_th *th = http->th;
	struct http_response res;

	if (px->cancelled)
		return;
	px->cancelled = true;
	http__xfer_unlink(http, px);
	memset(&res, 0, sizeof res);
	res.err = HTTP_ERR_CANCELLED;
	res.error = "cancelled";
	res.body = "";
	px->done(px->arg, &res);
	th_push(th, &px->w->in, TH_CANCEL, px, px->w, &px->w->wake);
}

/* http_retire_group() of a threaded bridge: to the group's worker. */
void http__th_retire(struct http *http, struct http_xfer *px)
{
	struct th_msg *m;

	if (px->w == NULL || px->req.conn_group == NULL ||
	    px->req.conn_group[0] == '\0' || px->res_gen == 0)
		return;
	m = mem_alloc_zero(1, sizeof *m);
	m->op = TH_RETIRE;
	m->w = px->w;
	m->group = mem_strdup(px->req.conn_group);
	m->gen = px->res_gen;
	th_push_msg(http->th, &px->w->in, m, &px->w->wake);
}

void http__th_close(struct http *http)
{
	struct http_th *th = http->th;

	http->closing = true;
	while (http->xfers != NULL)
		http__th_cancel(http, http->xfers);
	for (unsigned i = 0; i < th->n; i++)
		th_push(th, &th->w[i].in, TH_CLOSE, NULL, &th->w[i],
			&th->w[i].wake);
}

void http__th_get_stats(const struct http *http, struct http_stats *out)
{
	struct http_th *th = http->th;

	/* The h2_direct client's requests, on the caller's loop. */
	*out = http->stats;
	if (http->h2 != NULL) {
		struct h2_stats hs;

		h2_get_stats(http->h2, &hs);
		out->connects += hs.connects;
		out->rebuilds += hs.rebuilds;
	}
	uv_mutex_lock(&th->mu);
	for (unsigned i = 0; i < th->n; i++) {
		const struct http_stats *s = &th->w[i].stats;

		out->submitted += s->submitted;
		out->completed += s->completed;
		out->connects += s->connects;
		out->in_flight += s->in_flight;
		out->groups += s->groups;
		out->rebuilds += s->rebuilds;
		out->turned_back += s->turned_back;
		out->requeued += s->requeued;
		out->retired += s->retired;
	}
	uv_mutex_unlock(&th->mu);
}
