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
 * encoded.  auth_wns_new() makes one token cache (oauth_cache.h: refresh
 * before expiry, single flight, backoff, invalidate on 401) per
 * credential; errors read "wns token endpoint: ..." (with at most 80
 * characters of error_description).  An answer without expires_in lives
 * a day.
 *
 * Ownership: the caller owns the cache (oauth_cache_free()), which owns
 * the form body holding the secret.  The secret and the token are wiped
 * when freed or replaced; no error text holds either.
 */
#ifndef PGPUSH_AUTH_WNS_H
#define PGPUSH_AUTH_WNS_H

#include <stddef.h>
#include <uv.h>

#include "platforms/oauth_cache.h"

struct http;

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

/*
 * Make the cache (nothing fetched yet).  Returns 0, or -EINVAL with a
 * reason in `err` for a missing client id, secret or (entra) tenant.
 */
int auth_wns_new(struct oauth_cache **out, uv_loop_t *loop,
		 struct http *http, const struct auth_wns_config *cfg,
		 char *err, size_t errlen);

/*
 * The form body of a token request (malloc'd; wipe and free it): pure,
 * for tests.  Values are percent-encoded.
 */
char *auth_wns_form(const struct auth_wns_config *cfg);

#endif
