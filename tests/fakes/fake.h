/*
 * fake.h — shared types of pgpush-fake, the fake push provider servers.
 *
 * One process serves APNs, FCM, WNS and MPNS on their own loopback TLS
 * ports plus a plain-HTTP control port.  The transports (fake_h2.c,
 * fake_h1.c over fake_conn.c) turn bytes into a struct fake_req; the
 * provider modules (fake_apns.c, fake_fcm.c, fake_wns.c, fake_mpns.c)
 * turn a request into a struct fake_resp; fake_dispatch() in
 * fake_main.c glues them, applies the script (fake_script.c) and writes
 * the request log (fake_log.c).
 *
 * Ownership: a fake_req belongs to the transport that built it; a
 * fake_resp belongs to whoever holds it (the dispatcher fills it, the
 * transport frees it with fake_resp_free() once sent).  Allocation
 * failure aborts (fake_xmalloc and friends).
 */
#ifndef FAKE_H
#define FAKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <json-c/json.h>
#include <openssl/ssl.h>

enum fake_provider {
	FAKE_APNS, FAKE_FCM, FAKE_WNS, FAKE_MPNS, FAKE_CTL, FAKE_NPROV
};

/* Name of a provider ("apns", ...); -1 from fake_provider_parse if unknown. */
const char *fake_provider_name(int prov);
int fake_provider_parse(const char *name);

struct fake_hdr {
	char *name;		/* lower case */
	char *value;
};

#define FAKE_BODY_MAX (256 * 1024)	/* bytes kept of a request body */

struct fake_conn;

struct fake_req {
	int prov;
	struct fake_conn *conn;
	int32_t stream_id;	/* 0 on HTTP/1.1 */
	int http2;
	char *method;
	char *path;
	struct fake_hdr *hdrs;
	size_t nhdrs, caphdrs;
	char *body;		/* NUL-terminated, body_len bytes kept */
	size_t body_len;
	size_t body_total;	/* bytes received, may exceed body_len */
	char *dup_header;	/* first repeated header name, or NULL */
};

enum fake_action {
	FAKE_ACT_RESPOND,	/* send the response */
	FAKE_ACT_RESET_STREAM,	/* RST_STREAM (HTTP/1.1: close) */
	FAKE_ACT_RESET_CONN,	/* TCP reset of the connection */
	FAKE_ACT_GOAWAY,	/* GOAWAY excluding this stream, no response */
	FAKE_ACT_RESPOND_GOAWAY,/* response, then GOAWAY including it */
	FAKE_ACT_CLOSE		/* close the connection, no response */
};

#define FAKE_RESP_MAXHDR 16

struct fake_resp {
	int status;
	struct fake_hdr hdrs[FAKE_RESP_MAXHDR];
	size_t nhdrs;
	char *body;
	size_t body_len;
	int delay_ms;
	int action;		/* enum fake_action */
	uint32_t h2_error;	/* RST_STREAM / GOAWAY error code */
	char *goaway_data;	/* GOAWAY opaque data, or NULL */
	char *token;		/* token / channel for the log, or NULL */
	const char *auth;	/* auth kind for the log, or NULL */
	int scripted;		/* 1 when a script rule or mode chose it */
	int nolog;		/* 1: keep out of the request log */
};

/* Adds a response header (copies both strings). */
void fake_resp_header(struct fake_resp *r, const char *name,
    const char *value);
/* Sets the body (copies len bytes). */
void fake_resp_body(struct fake_resp *r, const char *body, size_t len);
/* Sets the body from a NUL-terminated string. */
void fake_resp_body_str(struct fake_resp *r, const char *body);
/* Sets status, a JSON content type and the body; drops o. */
void fake_resp_json(struct fake_resp *r, int status, json_object *o);
/* Frees what the response owns and zeroes it; NULL is a no-op. */
void fake_resp_free(struct fake_resp *r);
/* Moves src into dst (dst must be empty); src is left zeroed. */
void fake_resp_move(struct fake_resp *dst, struct fake_resp *src);

/* First value of header name (lower case) in req, or NULL. */
const char *fake_req_header(const struct fake_req *req, const char *name);
/* Frees everything the request owns; the struct itself too. */
void fake_req_free(struct fake_req *req);
/* Appends a header to req (copies), noting a duplicate name. */
void fake_req_add_header(struct fake_req *req, const char *name, size_t nl,
    const char *value, size_t vl);
/* Appends body bytes, keeping at most FAKE_BODY_MAX. */
void fake_req_add_body(struct fake_req *req, const char *data, size_t len);

/* Server configuration; one global instance, see fake_main.c. */
struct fake_cfg {
	int sink;
	int apns_jwt_max_age;	/* s, default 3600 */
	int apns_jwt_min_refresh;	/* s, default 1200 */
	int apns_max_streams;	/* after first valid JWT, default 1000 */
	int fcm_token_ttl;	/* s, default 3599 */
	char *fcm_aud;
	int wns_token_ttl;	/* s, default 86400 */
	int mpns_raw_max;	/* bytes, default 1024 */
	int mpns_notif_max;	/* bytes, default 3072 */
	int mpns_daily_limit;	/* per channel, unauthenticated, 500 */
	int max_streams_override;	/* 0: none */
};
extern struct fake_cfg fake_cfg;

/* Current time: seconds and milliseconds since the epoch. */
int64_t fake_now(void);
int64_t fake_now_ms(void);
/* Fills buf with n random lower-case hex digits and a NUL. */
void fake_rand_hex(char *buf, size_t n);
/* Writes a random lower-case v4 UUID (37 bytes with NUL) to buf. */
void fake_uuid(char *buf);

/* %-decodes (and '+' to space) len bytes into a new string. */
char *fake_url_decode(const char *s, size_t len);
/* Decoded value of key in an x-www-form-urlencoded body, or NULL. */
char *fake_form_get(const char *form, const char *key);

void *fake_xmalloc(size_t n);
void *fake_xcalloc(size_t n, size_t m);
void *fake_xrealloc(void *p, size_t n);
char *fake_xstrdup(const char *s);
char *fake_xstrndup(const char *s, size_t n);

/*
 * Turns a complete request into a response: control or provider
 * handler, script, counters, latency and the request log.  resp must
 * be zeroed.  Called by the transports.
 */
void fake_dispatch(struct fake_req *req, struct fake_resp *resp);

/* Provider handlers: fill resp for req (resp zeroed on entry). */
void fake_apns_handle(struct fake_req *req, struct fake_resp *resp);
void fake_fcm_handle(struct fake_req *req, struct fake_resp *resp);
void fake_wns_handle(struct fake_req *req, struct fake_resp *resp);
void fake_mpns_handle(struct fake_req *req, struct fake_resp *resp);
void fake_ctl_handle(struct fake_req *req, struct fake_resp *resp);

/*
 * Success response of each provider for the --sink fast path: no
 * checks, no log.  path only matters for the token endpoints.
 */
void fake_sink_handle(int prov, const char *path, struct fake_resp *resp);
/* Requests answered in sink mode so far. */
uint64_t fake_sink_count(void);

/* Frees the provider modules' state at exit. */
void fake_apns_free(void);
void fake_fcm_free(void);
void fake_wns_free(void);

/* Expire every access token issued so far (tests of REAUTH). */
void fake_fcm_expire_tokens(void);
void fake_wns_expire_tokens(void);

/* Registers credentials (from the command line); 0 or -1 + message. */
int fake_apns_add_key(const char *spec, char *err, size_t errlen);
int fake_fcm_add_sa(const char *path, char *err, size_t errlen);
int fake_wns_add_client(const char *spec, char *err, size_t errlen);

#endif
