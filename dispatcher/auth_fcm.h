/*
 * auth_fcm.h - OAuth2 access tokens for FCM HTTP v1, from a Google
 * service account (the JWT-bearer grant, RFC 7523).
 *
 * One struct auth_fcm per credential.  It signs an RS256 assertion (iss =
 * the service account, scope firebase.messaging, aud = the service
 * account's token_uri (Google's token URL, even when an override sends
 * the request elsewhere),
 * exp = iat + 3600), POSTs it to the token endpoint through the HTTP
 * bridge, and caches the access token it gets back.  The token is
 * refreshed in the background before it expires (at 80 % of its lifetime
 * or 5 minutes before the end, whichever comes first, but never before
 * half of it), with one fetch at a time however many sends wait for it
 * (single flight).  A failed fetch is not retried before a backoff
 * delay; meanwhile waiters get the last error at once.
 *
 * Ownership: the caller owns the struct auth_fcm (auth_fcm_free()) and
 * its waiters (struct auth_fcm_waiter, usually inside a send's state).
 * The access token and the key are wiped when replaced or freed, and no
 * error text ever holds a secret.
 */
#ifndef PGPUSH_AUTH_FCM_H
#define PGPUSH_AUTH_FCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http;
struct auth_fcm;

#define AUTH_FCM_SCOPE "https://www.googleapis.com/auth/firebase.messaging"
#define AUTH_FCM_TOKEN_URL "https://oauth2.googleapis.com/token"

struct auth_fcm_config {
	const char *client_email;     /* service account, the JWT's iss */
	const char *private_key_pem;  /* its RSA key */
	const char *private_key_id;   /* the JWT's kid; NULL: none */
	const char *token_url;        /* POST here */
	const char *audience;         /* the JWT's aud; NULL: token_url */
	const char *ca_path;          /* CA bundle; NULL: the system's */
	long connect_timeout_ms;      /* 0: the bridge's default */
	long request_timeout_ms;      /* 0: the bridge's default */
};

/* Why no token could be had. */
struct auth_fcm_error {
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
typedef void (*auth_fcm_ready_fn)(void *arg, const char *token,
				  const struct auth_fcm_error *err);

/* A waiting caller; owned by the caller, linked while waiting. */
struct auth_fcm_waiter {
	auth_fcm_ready_fn fn;
	void *arg;
	bool waiting;
	struct auth_fcm_waiter *prev, *next;
};

struct auth_fcm_stats {
	uint64_t fetches;        /* token requests sent */
	uint64_t failures;       /* of which failed */
	long last_lifetime_s;    /* expires_in of the last token */
};

/*
 * Make the cache.  Nothing is fetched yet.  `loop` and `http` must
 * outlive it.  Returns 0 and *out, or -EINVAL with a reason in `err` (a
 * missing field or a key that is not a valid RSA PEM key).
 */
int auth_fcm_new(struct auth_fcm **out, uv_loop_t *loop, struct http *http,
		 const struct auth_fcm_config *cfg, char *err, size_t errlen);

/*
 * Free the cache: a fetch in flight is cancelled; waiters still queued
 * are called with a transient error "cancelled" first.  The memory goes
 * after libuv closes the cache's timer.  NULL is a no-op.
 */
void auth_fcm_free(struct auth_fcm *auth);

/*
 * The cached token if it is still good at `now_us`, else NULL.  When the
 * token is due for refresh this starts a background fetch and still
 * returns the current one.  The string is valid until the next call into
 * this module; copy it.
 */
const char *auth_fcm_token(struct auth_fcm *auth, int64_t now_us);

/*
 * Wait for a token: `w` is queued and `fn(arg, ...)` is called later from
 * the loop, never from inside this call.  Starts a fetch unless one is in
 * flight or the backoff after a failure is running.
 */
void auth_fcm_wait(struct auth_fcm *auth, struct auth_fcm_waiter *w,
		   auth_fcm_ready_fn fn, void *arg);

/* Stop waiting; `fn` will not be called.  A no-op if not waiting. */
void auth_fcm_cancel(struct auth_fcm *auth, struct auth_fcm_waiter *w);

/*
 * The provider rejected `token` (401): forget it if it is still the
 * cached one, so the next wait fetches a new one at once.
 */
void auth_fcm_invalidate(struct auth_fcm *auth, const char *token);

void auth_fcm_get_stats(const struct auth_fcm *auth,
			struct auth_fcm_stats *out);

/*
 * When to refresh a token that lives `lifetime_s` seconds: seconds after
 * it was issued (pure; exposed for tests).
 */
long auth_fcm_refresh_after(long lifetime_s);

#endif
