/*
 * metrics.h - the Prometheus text endpoint (`--metrics-listen HOST:PORT`).
 *
 * A tiny HTTP/1.1 server on the dispatcher's own libuv loop: it accepts a
 * connection, reads one request head (at most METRICS_MAX_REQUEST bytes,
 * within METRICS_TIMEOUT_MS), answers and closes.  GET (or HEAD) /metrics
 * answers 200 with the text exposition format 0.0.4, rendered at that
 * moment by the owner's callback; any other path is 404, any other method
 * 405, a malformed or oversized request 400.  At most METRICS_MAX_CLIENTS
 * connections at once; more are closed at once.  Nothing here blocks the
 * loop: rendering is a few hundred lines of snprintf.
 */
#ifndef PGPUSH_METRICS_H
#define PGPUSH_METRICS_H

#include <stddef.h>
#include <uv.h>

#define METRICS_MAX_REQUEST 8192
#define METRICS_TIMEOUT_MS  5000
#define METRICS_MAX_CLIENTS 16

/*
 * The most a rendered page may hold: far beyond any real page (a few
 * hundred bytes per pool and per (app, platform, outcome)), so only a
 * bug fills it; the scrape then gets a 500 and the log says why.
 */
#define METRICS_MAX_PAGE (64u << 20)

struct buf;

/* Append printf-formatted text to the page (base/buf.h's cap applies). */
void metrics_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append `s` as the value of a Prometheus label (escapes \ " and \n). */
void metrics_label_value(struct buf *b, const char *s);

typedef void (*metrics_render_fn)(void *arg, struct buf *out);

struct metrics;

/*
 * Parse "HOST:PORT" or "[IPv6]:PORT" into `out`.  Returns 0 or -EINVAL.
 */
int metrics_parse_listen(const char *listen, struct sockaddr_storage *out);

/*
 * Listen on `listen` and serve until metrics_close().  Returns 0, or a
 * negative code with a reason in `err` (bad address, port in use).
 */
int metrics_start(struct metrics **out, uv_loop_t *loop, const char *listen,
		  metrics_render_fn render, void *arg, char *err,
		  size_t errlen);

/* Stop listening and close every connection; NULL is a no-op.  The
 * memory is freed once the handles have closed (on the loop). */
void metrics_close(struct metrics *m);

/*
 * Classify one request head (pure; for tests): fills the status (200, 400,
 * 404, 405), and *head_only for HEAD.  Returns 0 when `req` holds a whole
 * head (up to the blank line), 1 when more bytes are needed.
 */
int metrics_route(const char *req, size_t len, int *status, int *head_only);

#endif
