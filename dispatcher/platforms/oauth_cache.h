/*
 * oauth_cache.h - an OAuth 2.0 access-token cache, shared by auth_fcm.c
 * (Google's JWT-bearer grant) and auth_wns.c (Microsoft's client
 * credentials).  The provider module says how to make the body of a token
 * request; the cache does the rest:
 *
 *   - it POSTs the request through the HTTP bridge and reads the standard
 *     JSON answer (RFC 6749 5.1: access_token, expires_in; 5.2: error,
 *     error_description);
 *   - it keeps the token and refreshes it in the background before it
 *     expires (oauth_cache_refresh_after(): at 80 % of its lifetime or 5
 *     minutes before the end, whichever comes first, but never before
 *     half of it); it is used until 10 s (a tenth of short lifetimes)
 *     before the end, counted from when the request was sent;
 *   - one fetch at a time however many sends wait for it (single
 *     flight): waiters queue behind it and are all answered by it;
 *   - a failed fetch is not retried before a backoff delay (1 s doubling
 *     up to 5 min, jittered, at least 1 s); meanwhile waiters get the last
 *     error at once.  A 4xx other than 408 and 429, or a body that cannot
 *     be made, is a permanent error (the credential is bad);
 *   - a token the provider rejects (401) is dropped with
 *     oauth_cache_invalidate(), so the next wait fetches a new one at once
 *     (the sender resends once).
 *
 * Error reasons read "<endpoint_name>: HTTP 400 invalid_grant (...)",
 * "<endpoint_name>: <transport error>", "cannot send the token request:
 * ..." or the provider's make_body error; autoban.c recognises the
 * "token endpoint: " ones.
 *
 * Ownership: the caller owns the struct oauth_cache (oauth_cache_free())
 * and its waiters (struct oauth_cache_waiter, usually inside a send's
 * state); the cache owns the provider's context from oauth_cache_new()
 * on and frees it with the config's ctx_free.  The token is wiped when
 * replaced or freed, and no error text ever holds a secret.
 */
#ifndef PGPUSH_OAUTH_CACHE_H
#define PGPUSH_OAUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http;
struct oauth_cache;

/* Why no token could be had. */
struct oauth_cache_error {
	bool permanent;        /* the credential is bad (key, account, 4xx
				* from the token endpoint): an auth failure */
	long http_status;      /* of the token endpoint; 0: none */
	int64_t retry_at_us;   /* transient: no new fetch before this */
	char reason[256];
};

/*
 * Called from the loop with a token (valid during the call; copy it), or
 * with NULL and the error.
 */
typedef void (*oauth_cache_ready_fn)(void *arg, const char *token,
				     const struct oauth_cache_error *err);

/* A waiting caller; owned by the caller, linked while waiting. */
struct oauth_cache_waiter {
	oauth_cache_ready_fn fn;
	void *arg;
	bool waiting;
	struct oauth_cache_waiter *prev, *next;
};

struct oauth_cache_stats {
	uint64_t fetches;        /* token requests sent */
	uint64_t failures;       /* of which failed */
	long last_lifetime_s;    /* expires_in of the last token */
};

/*
 * Make the body of one token request: a malloc'd string of *len bytes
 * (NUL-terminated) in *body, which the cache wipes and frees once it is
 * submitted.  Returns 0, or a negative code with the whole reason in
 * `err`: the request cannot be made (a permanent error).
 */
typedef int (*oauth_cache_body_fn)(void *ctx, int64_t now_us, char **body,
				   size_t *len, char *err, size_t errlen);

/*
 * What the provider module tells the cache.  Strings marked static must
 * outlive the cache; the others are copied.
 */
struct oauth_cache_config {
	const char *name;              /* static: "fcm", for log messages */
	const char *client_key;        /* static: "account", the log key */
	const char *client;            /* its value (never a secret) */
	const char *endpoint_name;     /* static: "oauth token endpoint",
					* the start of answer errors */
	const char *token_url;         /* POST here */
	const char *ca_path;           /* CA bundle; NULL or "": system's */
	const char *const *headers;    /* static: the request's headers */
	long connect_timeout_ms;       /* 0: the bridge's default */
	long request_timeout_ms;       /* 0: the bridge's default */
	long default_lifetime_s;       /* an answer without expires_in */
	int description_max;           /* error_description characters a
					* reason keeps; 0: all that fit */
	oauth_cache_body_fn make_body;
	void (*ctx_free)(void *ctx);   /* wipe and free ctx */
	void *ctx;                     /* the provider's; owned from now */
};

/*
 * Make the cache.  Nothing is fetched yet.  `loop` and `http` must
 * outlive it.  Never fails: the provider checks its credential first.
 */
struct oauth_cache *oauth_cache_new(uv_loop_t *loop, struct http *http,
				    const struct oauth_cache_config *cfg);

/*
 * Free the cache: a fetch in flight is cancelled; waiters still queued
 * are called with a transient error "cancelled" first; then the
 * provider's ctx is freed.  The memory goes after libuv closes the
 * cache's timer.  NULL is a no-op.
 */
void oauth_cache_free(struct oauth_cache *c);

/*
 * The cached token if it is still good at `now_us`, else NULL.  When the
 * token is due for refresh this starts a background fetch and still
 * returns the current one.  The string is valid until the next call into
 * this module; copy it.
 */
const char *oauth_cache_token(struct oauth_cache *c, int64_t now_us);

/*
 * Wait for a token: `w` is queued and `fn(arg, ...)` is called later from
 * the loop, never from inside this call.  Starts a fetch unless one is in
 * flight or the backoff after a failure is running.
 */
void oauth_cache_wait(struct oauth_cache *c, struct oauth_cache_waiter *w,
		      oauth_cache_ready_fn fn, void *arg);

/* Stop waiting; `fn` will not be called.  A no-op if not waiting. */
void oauth_cache_cancel(struct oauth_cache *c, struct oauth_cache_waiter *w);

/*
 * The provider rejected `token` (401): forget it if it is still the
 * cached one, so the next wait fetches a new one at once.
 */
void oauth_cache_invalidate(struct oauth_cache *c, const char *token);

void oauth_cache_get_stats(const struct oauth_cache *c,
			   struct oauth_cache_stats *out);

/*
 * When to refresh a token that lives `lifetime_s` seconds: seconds after
 * it was issued (pure; exposed for tests).
 */
long oauth_cache_refresh_after(long lifetime_s);

#endif
