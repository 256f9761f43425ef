/*
 * auth_wns.h - OAuth 2.0 client-credentials access tokens for WNS
 * (PROTOCOLS.md 3.1), in either of Microsoft's two flows, chosen by the
 * credential:
 *
 *   store  POST https://login.live.com/accesstoken.srf
 *          client_id = the Package SID, scope = notify.windows.com
 *   entra  POST https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token
 *          client_id = the Azure app id,
 *          scope = https://wns.windows.com/.default
 *
 * both with grant_type=client_credentials and the client secret, form
 * encoded.  One struct auth_wns per credential caches the token and
 * refreshes it in the background before it expires (the same schedule as
 * auth_fcm: at 80 % of its lifetime or 5 minutes before the end, never
 * before half of it), one fetch at a time however many sends wait.  A
 * token WNS rejects (401) is dropped with auth_wns_invalidate() so the
 * next wait fetches a new one at once; the sender resends at most once.
 * A failed fetch is not retried before a backoff delay; meanwhile
 * waiters get the last error at once.
 *
 * Ownership: the caller owns the struct auth_wns (auth_wns_free()) and
 * its waiters.  The secret and the token are wiped when freed or
 * replaced; no error text holds either.
 */
#ifndef PGPUSH_AUTH_WNS_H
#define PGPUSH_AUTH_WNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http;
struct auth_wns;

#define AUTH_WNS_STORE_URL "https://login.live.com/accesstoken.srf"
#define AUTH_WNS_STORE_SCOPE "notify.windows.com"
#define AUTH_WNS_ENTRA_URL_FMT \
	"https://login.microsoftonline.com/%s/oauth2/v2.0/token"
#define AUTH_WNS_ENTRA_SCOPE "https://wns.windows.com/.default"

enum auth_wns_flow {
	AUTH_WNS_STORE,
	AUTH_WNS_ENTRA
};

struct auth_wns_config {
	enum auth_wns_flow flow;
	const char *client_id;
	const char *client_secret;
	const char *tenant_id;        /* entra: required */
	const char *token_url;        /* NULL: the flow's default */
	const char *ca_path;          /* NULL: the system's */
	long connect_timeout_ms;
	long request_timeout_ms;
};

struct auth_wns_error {
	bool permanent;        /* the token endpoint refused the credential
				* (4xx other than 408/429) */
	long http_status;      /* of the token endpoint; 0: none */
	int64_t retry_at_us;   /* no new fetch before this */
	char reason[256];
};

typedef void (*auth_wns_ready_fn)(void *arg, const char *token,
				  const struct auth_wns_error *err);

struct auth_wns_waiter {
	auth_wns_ready_fn fn;
	void *arg;
	bool waiting;
	struct auth_wns_waiter *prev, *next;
};

struct auth_wns_stats {
	uint64_t fetches;
	uint64_t failures;
	long last_lifetime_s;
};

/*
 * Make the cache (nothing fetched yet).  Returns 0, or -EINVAL with a
 * reason in `err` for a missing client id, secret or (entra) tenant.
 */
int auth_wns_new(struct auth_wns **out, uv_loop_t *loop, struct http *http,
		 const struct auth_wns_config *cfg, char *err, size_t errlen);

/* Free; a fetch in flight is cancelled, waiters get "cancelled" first.
 * NULL is a no-op. */
void auth_wns_free(struct auth_wns *auth);

/*
 * The cached token if usable at `now_us` (valid until the next call into
 * this module: copy it), else NULL.  Starts a background refresh when
 * one is due.
 */
const char *auth_wns_token(struct auth_wns *auth, int64_t now_us);

/* Wait for a token; `fn` is called later from the loop, never from in
 * here. */
void auth_wns_wait(struct auth_wns *auth, struct auth_wns_waiter *w,
		   auth_wns_ready_fn fn, void *arg);

/* Stop waiting; a no-op if not waiting. */
void auth_wns_cancel(struct auth_wns *auth, struct auth_wns_waiter *w);

/* WNS rejected `token`: forget it if it is still the cached one. */
void auth_wns_invalidate(struct auth_wns *auth, const char *token);

void auth_wns_get_stats(const struct auth_wns *auth,
			struct auth_wns_stats *out);

/*
 * The form body of a token request (malloc'd; wipe and free it): pure,
 * for tests.  Values are percent-encoded.
 */
char *auth_wns_form(const struct auth_wns_config *cfg);

#endif
