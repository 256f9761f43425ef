/*
 * hostlist.c - see hostlist.h.  A list is a plain array: credentials
 * hold one or two patterns, and matching is a few string compares.
 */
#include "net/hostlist.h"

#include <json-c/json.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "base/mem.h"

struct pattern {
	char *host;        /* lower case, no trailing dot, no "*." */
	bool wildcard;     /* "*.host": strictly below host */
	int port;          /* 0: any */
};

struct hostlist {
	struct pattern *p;
	size_t n;
};

struct hostlist *hostlist_new(void)
{
	return mem_alloc_zero(1, sizeof(struct hostlist));
}

void hostlist_free(struct hostlist *hl)
{
	if (hl == NULL)
		return;
	for (size_t i = 0; i < hl->n; i++)
		free(hl->p[i].host);
	free(hl->p);
	free(hl);
}

size_t hostlist_count(const struct hostlist *hl)
{
	return hl->n;
}

/* Lower-case copy of s[0..n) without a trailing dot. */
static char *norm(const char *s, size_t n)
{
	char *h;

	if (n > 0 && s[n - 1] == '.')
		n--;
	h = mem_alloc(n + 1);
	for (size_t i = 0; i < n; i++)
		h[i] = (char)tolower((unsigned char)s[i]);
	h[n] = '\0';
	return h;
}

static bool host_chars_ok(const char *h)
{
	if (h[0] == '[') {
		size_t n = strlen(h);

		if (n < 3 || h[n - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < n; i++)
			if (!isxdigit((unsigned char)h[i]) && h[i] != ':' &&
			    h[i] != '.')
				return false;
		return true;
	}
	if (h[0] == '\0' || h[0] == '.' || strstr(h, "..") != NULL)
		return false;
	for (; *h; h++)
		if (!isalnum((unsigned char)*h) && *h != '-' && *h != '.' &&
		    *h != '_')
			return false;
	return true;
}

int hostlist_add(struct hostlist *hl, const char *pattern, char *err,
		 size_t errlen)
{
	struct pattern p = { 0 };
	const char *s = pattern, *colon, *end;
	char *endp;
	long port = 0;

	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "empty host pattern");
		return -EINVAL;
	}
	if (strncmp(s, "*.", 2) == 0) {
		p.wildcard = true;
		s += 2;
	}
	/* A port follows the last ':' unless that is inside [v6]. */
	colon = strrchr(s, ':');
	if (colon != NULL && s[0] == '[' && strchr(colon, ']') != NULL)
		colon = NULL;
	end = colon != NULL ? colon : s + strlen(s);
	if (colon != NULL) {
		errno = 0;
		port = strtol(colon + 1, &endp, 10);
		if (errno != 0 || endp == colon + 1 || *endp != '\0' ||
		    port < 1 || port > 65535) {
			snprintf(err, errlen, "bad port in host pattern %.100s",
				 pattern);
			return -EINVAL;
		}
	}
	p.host = norm(s, (size_t)(end - s));
	if (strchr(p.host, '*') != NULL || !host_chars_ok(p.host)) {
		snprintf(err, errlen, "bad host pattern %.100s (only a "
			 "leading \"*.\" may be a wildcard)", pattern);
		free(p.host);
		return -EINVAL;
	}
	p.port = (int)port;
	hl->p = mem_realloc(hl->p, (hl->n + 1) * sizeof *hl->p);
	hl->p[hl->n++] = p;
	return 0;
}

bool hostlist_match(const struct hostlist *hl, const char *host, int port)
{
	char *h;
	size_t hn;
	bool ok = false;

	if (host == NULL || *host == '\0')
		return false;
	h = norm(host, strlen(host));
	hn = strlen(h);
	for (size_t i = 0; i < hl->n && !ok; i++) {
		const struct pattern *p = &hl->p[i];
		size_t pn = strlen(p->host);

		if (p->port != 0 && p->port != port)
			continue;
		if (!p->wildcard)
			ok = strcmp(h, p->host) == 0;
		else
			ok = hn > pn + 1 && h[hn - pn - 1] == '.' &&
			     strcmp(h + hn - pn, p->host) == 0;
	}
	free(h);
	return ok;
}

int hostlist_check_url(const struct hostlist *hl, const char *url,
		       char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL, *pw = NULL;
	char *port = NULL;
	int rc = -EINVAL;

	if (u == NULL || url == NULL ||
	    curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen, "channel URL is not a valid URL");
		goto out;
	}
	if (strcasecmp(scheme, "https") != 0) {
		snprintf(err, errlen, "channel URL is not https");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK) {
		snprintf(err, errlen, "channel URL has user info");
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (!hostlist_match(hl, host, port != NULL ? atoi(port) : 443)) {
		snprintf(err, errlen, "channel host %.100s is not in the "
			 "allowed channel hosts", host);
		rc = -EPERM;
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(pw);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

char *hostlist_rebase_url(const char *url, const char *origin)
{
	CURLU *u = curl_url(), *o = NULL;
	char *part = NULL, *full = NULL, *out = NULL;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (origin != NULL) {
		o = curl_url();
		if (o == NULL ||
		    curl_url_set(o, CURLUPART_URL, origin, 0) != CURLUE_OK)
			goto out;
		if (curl_url_get(o, CURLUPART_SCHEME, &part, 0) != CURLUE_OK ||
		    curl_url_set(u, CURLUPART_SCHEME, part, 0) != CURLUE_OK)
			goto out;
		curl_free(part);
		part = NULL;
		if (curl_url_get(o, CURLUPART_HOST, &part, 0) != CURLUE_OK ||
		    curl_url_set(u, CURLUPART_HOST, part, 0) != CURLUE_OK)
			goto out;
		curl_free(part);
		part = NULL;
		/* No port in the origin: the scheme's default. */
		if (curl_url_get(o, CURLUPART_PORT, &part, 0) != CURLUE_OK)
			part = NULL;
		if (curl_url_set(u, CURLUPART_PORT, part, 0) != CURLUE_OK)
			goto out;
	}
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		goto out;
	out = mem_strdup(full);
out:
	curl_free(part);
	curl_free(full);
	curl_url_cleanup(o);
	curl_url_cleanup(u);
	return out;
}

int hostlist_add_json(struct hostlist *hl, struct json_object *hosts,
		      const char *def, char *err, size_t errlen)
{
	if (hosts == NULL || json_object_is_type(hosts, json_type_null))
		return hostlist_add(hl, def, err, errlen);
	if (!json_object_is_type(hosts, json_type_array)) {
		snprintf(err, errlen, "channel_hosts is not an array");
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(hosts); i++) {
		json_object *e = json_object_array_get_idx(hosts, i);

		if (!json_object_is_type(e, json_type_string)) {
			snprintf(err, errlen, "channel_hosts holds a "
				 "non-string");
			return -EINVAL;
		}
		if (hostlist_add(hl, json_object_get_string(e), err,
				 errlen) < 0)
			return -EINVAL;
	}
	return 0;
}
