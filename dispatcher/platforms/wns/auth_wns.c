/*
 * auth_wns.c - WNS's token requests (client credentials, in the store or
 * the Entra flow), for the access-token cache (oauth_cache.c).  See
 * auth_wns.h.
 *
 * The cache's provider context is the form body, made once by
 * auth_wns_form() (it holds the client secret) and sent as it is by every
 * token request.
 */
#include "platforms/wns/auth_wns.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "platforms/secret.h"

/* Append s percent-encoded (RFC 3986 unreserved kept) to buf at *len. */
static void form_put(char *buf, size_t *len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			buf[(*len)++] = (char)c;
		} else {
			buf[(*len)++] = '%';
			buf[(*len)++] = hex[c >> 4];
			buf[(*len)++] = hex[c & 15];
		}
	}
	buf[*len] = '\0';
}

char *auth_wns_form(const struct auth_wns_config *cfg)
{
	const char *scope = cfg->flow == AUTH_WNS_ENTRA
			    ? AUTH_WNS_ENTRA_SCOPE : AUTH_WNS_STORE_SCOPE;
	size_t cap = 3 * (strlen(cfg->client_id) +
			  strlen(cfg->client_secret) + strlen(scope)) + 128;
	char *buf = mem_alloc(cap);
	size_t len = 0;

	buf[0] = '\0';
	strcpy(buf, "grant_type=client_credentials&client_id=");
	len = strlen(buf);
	form_put(buf, &len, cfg->client_id);
	strcpy(buf + len, "&client_secret=");
	len += strlen(buf + len);
	form_put(buf, &len, cfg->client_secret);
	strcpy(buf + len, "&scope=");
	len += strlen(buf + len);
	form_put(buf, &len, scope);
	return buf;
}

/* The body of every token request: a copy of the form (`ctx`). */
static int wns_body(void *ctx, int64_t now_us, char **body, size_t *len,
		    char *err, size_t errlen)
{
	*len = strlen(ctx);
	*body = mem_strdup(ctx);
	return 0;
}

static void wns_free(void *ctx)
{
	secret_free(ctx);
}

int auth_wns_new(struct oauth_cache **out, uv_loop_t *loop,
		 struct http *http, const struct auth_wns_config *cfg,
		 char *err, size_t errlen)
{
	static const char *const headers[] = {
		"Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", "Expect:", NULL
	};
	struct oauth_cache_config cc;
	char url[512];

	if (cfg->client_id == NULL || cfg->client_id[0] == '\0') {
		snprintf(err, errlen, "no client_id");
		return -EINVAL;
	}
	if (cfg->client_secret == NULL || cfg->client_secret[0] == '\0') {
		snprintf(err, errlen, "no client_secret");
		return -EINVAL;
	}
	if (cfg->token_url != NULL && cfg->token_url[0] != '\0') {
		snprintf(url, sizeof url, "%s", cfg->token_url);
	} else if (cfg->flow == AUTH_WNS_ENTRA) {
		const char *t = cfg->tenant_id;

		if (t == NULL || t[0] == '\0') {
			snprintf(err, errlen, "entra flow needs a tenant_id");
			return -EINVAL;
		}
		for (const char *c = t; *c; c++)
			if (!isalnum((unsigned char)*c) && *c != '-' &&
			    *c != '.') {
				snprintf(err, errlen, "bad tenant_id");
				return -EINVAL;
			}
		snprintf(url, sizeof url, AUTH_WNS_ENTRA_URL_FMT, t);
	} else {
		snprintf(url, sizeof url, "%s", AUTH_WNS_STORE_URL);
	}
	memset(&cc, 0, sizeof cc);
	cc.name = "wns";
	cc.client_key = "client_id";
	cc.client = cfg->client_id;
	cc.endpoint_name = "wns token endpoint";
	cc.token_url = url;
	cc.ca_path = cfg->ca_path;
	cc.headers = headers;
	cc.connect_timeout_ms = cfg->connect_timeout_ms;
	cc.request_timeout_ms = cfg->request_timeout_ms;
	cc.default_lifetime_s = 86400;
	cc.description_max = 80;
	cc.make_body = wns_body;
	cc.ctx_free = wns_free;
	cc.ctx = auth_wns_form(cfg);
	*out = oauth_cache_new(loop, http, &cc);
	return 0;
}
