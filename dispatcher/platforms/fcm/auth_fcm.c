/*
 * auth_fcm.c - FCM's token requests: a service account's signed JWT
 * assertion, for the access-token cache (oauth_cache.c).  See auth_fcm.h.
 *
 * struct auth_fcm is the cache's provider context: the account's key and
 * the assertion's claims.  fcm_body() signs a new assertion per request
 * (iat = now), so a refresh never reuses an expired one.
 */
#include "platforms/fcm/auth_fcm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "base/mem.h"
#include "platforms/jwt.h"

#define USEC 1000000LL
#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct auth_fcm {
	struct jwt_key *key;
	char *client_email;
	char *key_id;
	char *audience;
};

/* Sign an assertion; the body of the JWT-bearer grant. */
static int fcm_body(void *ctx, int64_t now_us, char **out, size_t *len,
		    char *err, size_t errlen)
{
	struct auth_fcm *a = ctx;
	json_object *hdr = json_object_new_object();
	json_object *cl = json_object_new_object();
	static const char grant[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth"
				    "%3Agrant-type%3Ajwt-bearer&assertion=";
	char jerr[256], *jwt = NULL, *body;
	int64_t iat = now_us / USEC;
	size_t blen;
	int rc;

	json_object_object_add(hdr, "alg", json_object_new_string("RS256"));
	json_object_object_add(hdr, "typ", json_object_new_string("JWT"));
	if (a->key_id != NULL)
		json_object_object_add(hdr, "kid",
				       json_object_new_string(a->key_id));
	json_object_object_add(cl, "iss",
			       json_object_new_string(a->client_email));
	json_object_object_add(cl, "scope",
			       json_object_new_string(AUTH_FCM_SCOPE));
	json_object_object_add(cl, "aud",
			       json_object_new_string(a->audience));
	json_object_object_add(cl, "iat", json_object_new_int64(iat));
	json_object_object_add(cl, "exp", json_object_new_int64(iat + 3600));
	rc = jwt_sign(a->key, JWT_ALG_RS256,
		      json_object_to_json_string_ext(hdr, JSON_FLAGS),
		      json_object_to_json_string_ext(cl, JSON_FLAGS),
		      &jwt, jerr, sizeof jerr);
	json_object_put(hdr);
	json_object_put(cl);
	if (rc < 0) {
		snprintf(err, errlen, "cannot sign the oauth assertion: %s",
			 jerr);
		return rc;
	}
	/* A JWT is base64url and dots: nothing to percent-encode. */
	blen = sizeof grant - 1 + strlen(jwt);
	body = mem_alloc(blen + 1);
	memcpy(body, grant, sizeof grant - 1);
	memcpy(body + sizeof grant - 1, jwt, strlen(jwt) + 1);
	free(jwt);
	*out = body;
	*len = blen;
	return 0;
}

static void fcm_free(void *ctx)
{
	struct auth_fcm *a = ctx;

	jwt_key_free(a->key);
	free(a->client_email);
	free(a->key_id);
	free(a->audience);
	free(a);
}

int auth_fcm_new(struct oauth_cache **out, uv_loop_t *loop,
		 struct http *http, const struct auth_fcm_config *cfg,
		 char *err, size_t errlen)
{
	static const char *const headers[] = {
		"Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", NULL
	};
	struct oauth_cache_config cc;
	struct auth_fcm *a;
	int rc;

	if (cfg->client_email == NULL || cfg->client_email[0] == '\0') {
		snprintf(err, errlen, "service account has no client_email");
		return -EINVAL;
	}
	if (cfg->private_key_pem == NULL || cfg->private_key_pem[0] == '\0') {
		snprintf(err, errlen, "service account has no private_key");
		return -EINVAL;
	}
	if (cfg->token_url == NULL || cfg->token_url[0] == '\0') {
		snprintf(err, errlen, "no token endpoint");
		return -EINVAL;
	}
	a = mem_alloc_zero(1, sizeof *a);
	rc = jwt_key_from_pem(&a->key, cfg->private_key_pem,
			      strlen(cfg->private_key_pem), err, errlen);
	if (rc < 0) {
		free(a);
		return rc;
	}
	a->client_email = mem_strdup(cfg->client_email);
	a->key_id = cfg->private_key_id != NULL && cfg->private_key_id[0]
		    ? mem_strdup(cfg->private_key_id) : NULL;
	a->audience = mem_strdup(cfg->audience != NULL && cfg->audience[0]
				 ? cfg->audience : cfg->token_url);

	memset(&cc, 0, sizeof cc);
	cc.name = "fcm";
	cc.client_key = "account";
	cc.client = cfg->client_email;
	cc.endpoint_name = "oauth token endpoint";
	cc.token_url = cfg->token_url;
	cc.ca_path = cfg->ca_path;
	cc.headers = headers;
	cc.connect_timeout_ms = cfg->connect_timeout_ms;
	cc.request_timeout_ms = cfg->request_timeout_ms;
	cc.default_lifetime_s = 3600;
	cc.make_body = fcm_body;
	cc.ctx_free = fcm_free;
	cc.ctx = a;
	*out = oauth_cache_new(loop, http, &cc);
	return 0;
}
