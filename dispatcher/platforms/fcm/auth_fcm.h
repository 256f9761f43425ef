/*
 * auth_fcm.h - OAuth2 access tokens for FCM HTTP v1, from a Google
 * service account (the JWT-bearer grant, RFC 7523).
 *
 * auth_fcm_new() makes one token cache (oauth_cache.h: refresh before
 * expiry, single flight, backoff, invalidate on 401) per credential.  Each
 * token request signs a new RS256 assertion (iss = the service account,
 * scope firebase.messaging, aud = the service account's token_uri
 * (Google's token URL, even when an override sends the request
 * elsewhere), exp = iat + 3600) and POSTs it to the token endpoint; errors
 * read "oauth token endpoint: ...".  An answer without expires_in lives an
 * hour.
 *
 * Ownership: the caller owns the cache (oauth_cache_free()), which owns
 * the key; the key is wiped when freed, and no error text ever holds a
 * secret.
 */
#ifndef PGPUSH_AUTH_FCM_H
#define PGPUSH_AUTH_FCM_H

#include <stddef.h>
#include <uv.h>

#include "platforms/oauth_cache.h"

struct http;

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

/*
 * Make the cache.  Nothing is fetched yet.  `loop` and `http` must
 * outlive it.  Returns 0 and *out, or -EINVAL with a reason in `err` (a
 * missing field or a key that is not a valid RSA PEM key).
 */
int auth_fcm_new(struct oauth_cache **out, uv_loop_t *loop,
		 struct http *http, const struct auth_fcm_config *cfg,
		 char *err, size_t errlen);

#endif
