/*
 * fake_conn.h — one accepted connection of pgpush-fake and the
 * transports that run on it.
 *
 * A connection is a uv_tcp_t plus, on provider ports, an OpenSSL
 * session driven through memory BIOs.  After the handshake the ALPN
 * result picks HTTP/2 (fake_h2.c) or HTTP/1.1 (fake_h1.c).  The control
 * port is plain-text HTTP/1.1.
 *
 * Lifetime: the connection owns its handles; it is freed when the last
 * of them (the TCP handle and the timers of deferred responses) has
 * been closed.  fake_conn_close() starts that; it is idempotent.
 */
#ifndef FAKE_CONN_H
#define FAKE_CONN_H

#include "fake.h"

struct fake_h2;
struct fake_h1;
struct fake_defer;

struct fake_listener {
	uv_tcp_t tcp;
	int prov;
	SSL_CTX *ssl_ctx;	/* NULL: plain text (control port) */
	int port;
};

enum fake_proto { FAKE_PROTO_NONE, FAKE_PROTO_H2, FAKE_PROTO_H1 };

struct fake_conn {
	uv_tcp_t tcp;
	struct fake_listener *lis;
	uint64_t id;
	SSL *ssl;
	BIO *rbio, *wbio;
	int proto;		/* enum fake_proto */
	struct fake_h2 *h2;
	struct fake_h1 *h1;
	int refs;		/* open handles */
	int closing;
	int close_after_write;	/* linger once the writes are out */
	int lingering;		/* linger timer running */
	uv_timer_t linger;
	uv_shutdown_t shut;
	int reset_on_close;
	int writes;		/* uv_write requests in flight */
	struct fake_defer *defers;
	/* Authentication state. */
	int client_cert;	/* 1: verified client certificate */
	char *cert_uid;		/* its subject UID (APNs topic) or CN */
	char *apns_team;	/* team bound by the first valid JWT */
	int apns_authed;	/* saw a valid JWT: streams raised */
	struct fake_conn *next, *prev;	/* all connections */
};

/* Starts listening; 0 or a negative errno. port 0 picks one. */
int fake_listen(uv_loop_t *loop, struct fake_listener *lis, int prov,
    SSL_CTX *ctx, int port);

/* Writes bytes to the peer (through TLS when there is a session). */
void fake_conn_write(struct fake_conn *c, const void *data, size_t len);
/* Closes the connection (after pending writes if graceful). */
void fake_conn_close(struct fake_conn *c, int graceful);
/* Closes every connection and listener-owned state at shutdown. */
void fake_conn_close_all(void);
/* Applies fn to each live connection. */
void fake_conn_each(void (*fn)(struct fake_conn *, void *), void *arg);

/*
 * Sends resp for the request (stream_id on HTTP/2, 0 on HTTP/1.1) now,
 * or after resp->delay_ms.  Takes ownership of resp's contents.
 */
void fake_conn_respond(struct fake_conn *c, int32_t stream_id,
    struct fake_resp *resp);
/* Cancels a deferred response for a stream the peer closed. */
void fake_conn_cancel_stream(struct fake_conn *c, int32_t stream_id);

/* HTTP/2 transport (fake_h2.c). */
int fake_h2_start(struct fake_conn *c);
int fake_h2_feed(struct fake_conn *c, const uint8_t *data, size_t len);
void fake_h2_flush(struct fake_conn *c);
void fake_h2_respond(struct fake_conn *c, int32_t sid,
    struct fake_resp *resp);
void fake_h2_set_max_streams(struct fake_conn *c, uint32_t n);
/*
 * Sends GOAWAY (NO_ERROR, last processed stream, data); the connection
 * closes once its open streams are answered.
 */
void fake_h2_goaway(struct fake_conn *c, const char *data);
void fake_h2_free(struct fake_conn *c);

/* HTTP/1.1 transport (fake_h1.c). */
int fake_h1_start(struct fake_conn *c);
int fake_h1_feed(struct fake_conn *c, const uint8_t *data, size_t len);
void fake_h1_respond(struct fake_conn *c, struct fake_resp *resp);
void fake_h1_free(struct fake_conn *c);

/* TLS contexts (fake_tls.c). alpn: "h2", "h1" or "both". */
SSL_CTX *fake_tls_ctx(const char *certdir, const char *alpn,
    int want_client_cert, char *err, size_t errlen);

#endif
