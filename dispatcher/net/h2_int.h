/*
 * h2_int.h - what the files of our HTTP/2 client share (h2.c: requests,
 * nghttp2 callbacks, streams, the clock, the API; h2_conn.c: TLS
 * contexts, hosts, connections and writing); private to dispatcher/net.
 * See h2.c's top comment for the design.
 */
#ifndef PGPUSH_NET_H2_INT_H
#define PGPUSH_NET_H2_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netdb.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "base/buf.h"
#include "net/h2.h"

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

/* ---- h2.c: requests, streams, the clock, reporting ---- */

/* Take `r` off whichever list it is on. */
void h2__req_detach(struct h2_req *r);
/* nghttp2 forgets `r`: no callback of its stream will find it. */
void h2__req_unwire(struct h2_req *r);
/* Free `r` and its copies (secrets wiped). */
void h2__req_free(struct h2_req *r);
/* Off its list and onto the finished one, with `error` (of kind `err`)
 * if status 0. */
void h2__req_finish(struct h2_req *r, enum http_err err,
		    const char *error);
/* Back to the front of its host's queue: it never reached the server. */
void h2__req_requeue(struct h2_req *r);
/* Give waiting requests streams, opening a connection when all are full
 * and the limit allows (one opening at a time per host). */
void h2__host_pump(struct h2_host *hh);
/* Start the clock (timeouts, idle connections, PINGs) if it is not. */
void h2__tick_start(struct h2 *h);
/* Run the callbacks of finished requests (outside nghttp2 and TLS). */
void h2__report_finished(struct h2 *h);
/* Free the client once h2_close() began and nothing is left. */
void h2__maybe_free(struct h2 *h);

/* ---- h2_conn.c: TLS, hosts, connections, writing ---- */

/* Split "https://host[:port]/path" into its parts; 0 or -EINVAL.  The
 * path (with the query) is at least "/". */
int h2__parse_url(const char *url, char **host, char **port, char **path);
/* The host entry for host:port with CA bundle `ca_path`, made on first
 * use. */
struct h2_host *h2__host_get(struct h2 *h, const char *host,
			     const char *port, const char *ca_path);
/* The only place a connection's state changes (and is logged). */
void h2__conn_set_state(struct h2_conn *c, enum h2_conn_state st);
/* Requests leave c's nghttp2 streams (but zombies, freed with c). */
void h2__conn_forget_streams(struct h2_conn *c);
/* Close `c` now: its streams end with `why` (or wait again when they had
 * not left, or once when nothing had come back). */
void h2__conn_close(struct h2_conn *c, const char *why);
/* h2__conn_close() with a formatted reason, logged. */
void h2__conn_fail(struct h2_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* `c` has frames to send: flushed in this loop iteration. */
void h2__conn_mark_dirty(struct h2_conn *c);
/* The prepare callback: everything queued this iteration leaves now. */
void h2__on_flush(uv_prepare_t *p);
/* A new connection for `hh`, its timeout from `opener`. */
void h2__conn_open(struct h2_host *hh, const struct h2_req *opener);

#endif
