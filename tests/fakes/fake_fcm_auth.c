/*
 * fake_fcm_auth.c — Google's OAuth2 token endpoint for the FCM fake:
 * the service accounts registered with --fcm-sa, the JWT-bearer grant
 * and the access tokens it issued (PROTOCOLS.md section 2.3).
 *
 * The assertion is checked like Google does: RS256 signature with the
 * service account's key (and kid = private_key_id when present), iss,
 * aud = fake_cfg.fcm_aud, iat/exp integers at most one hour apart with
 * exp in the future, and a scope that allows FCM.  Tokens live
 * fake_cfg.fcm_token_ttl seconds.  Script rules keyed by the service
 * account email make the endpoint itself fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake_fcm.h"
#include "fake_jwt.h"
#include "fake_script.h"

#define GRANT "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define SCOPE_FCM "https://www.googleapis.com/auth/firebase.messaging"
#define SCOPE_CLOUD "https://www.googleapis.com/auth/cloud-platform"

struct sa {
	char *email, *project, *key_id;
	EVP_PKEY *key;
	struct sa *next;
};

struct token {
	char *value;
	struct sa *sa;
	int64_t expires_ms;
	struct token *next;
};

static struct sa *sas;
static struct token *tokens;

/* Registers a service account from its JSON file. */
int
fake_fcm_add_sa(const char *path, char *err, size_t errlen)
{
	json_object *o = json_object_from_file(path);
	const char *email, *project, *pem, *kid;
	struct sa *s;

	email = fake_jwt_str(o, "client_email");
	project = fake_jwt_str(o, "project_id");
	pem = fake_jwt_str(o, "private_key");
	kid = fake_jwt_str(o, "private_key_id");
	if (email == NULL || project == NULL || pem == NULL) {
		snprintf(err, errlen, "%s: not a service-account JSON", path);
		json_object_put(o);
		return -1;
	}
	s = fake_xcalloc(1, sizeof *s);
	s->key = fake_key_load_pem(pem);
	if (s->key == NULL) {
		snprintf(err, errlen, "%s: bad private_key", path);
		json_object_put(o);
		free(s);
		return -1;
	}
	s->email = fake_xstrdup(email);
	s->project = fake_xstrdup(project);
	s->key_id = kid ? fake_xstrdup(kid) : NULL;
	s->next = sas;
	sas = s;
	json_object_put(o);
	return 0;
}

void
fake_fcm_expire_tokens(void)
{
	struct token *t;

	for (t = tokens; t != NULL; t = t->next)
		t->expires_ms = 0;
}

void
fake_fcm_free(void)
{
	while (tokens != NULL) {
		struct token *t = tokens;

		tokens = t->next;
		free(t->value);
		free(t);
	}
	while (sas != NULL) {
		struct sa *s = sas;

		sas = s->next;
		free(s->email);
		free(s->project);
		free(s->key_id);
		EVP_PKEY_free(s->key);
		free(s);
	}
}

const char *
fake_fcm__project(const char *access_token, int *expired)
{
	struct token *t;

	*expired = 0;
	for (t = tokens; t != NULL; t = t->next)
		if (strcmp(t->value, access_token) == 0) {
			if (t->expires_ms <= fake_now_ms()) {
				*expired = 1;
				return NULL;
			}
			return t->sa->project;
		}
	return NULL;
}

static void
oauth_error(struct fake_resp *r, int status, const char *err,
    const char *desc)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(err));
	json_object_object_add(o, "error_description",
	    json_object_new_string(desc));
	fake_resp_json(r, status, o);
}

#define BAD_TIME "Invalid JWT: Token must be a short-lived token (60 " \
	"minutes) and in a reasonable timeframe. Check your iat and exp " \
	"values in the JWT claim."

static int
has_scope(const char *scopes)
{
	const char *p = scopes;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		if ((n == strlen(SCOPE_FCM) && !strncmp(p, SCOPE_FCM, n)) ||
		    (n == strlen(SCOPE_CLOUD) && !strncmp(p, SCOPE_CLOUD, n)))
			return 1;
		p += n;
		while (*p == ' ')
			p++;
	}
	return 0;
}

void
fake_fcm__token(struct fake_req *req, struct fake_resp *r)
{
	const char *ct = fake_req_header(req, "content-type");
	char *grant = NULL, *assertion = NULL, tok[64];
	const char *iss, *aud, *scope, *kid;
	struct fake_jwt j;
	struct fake_rule rule;
	struct token *t;
	struct sa *s;
	int64_t iat, exp, now = fake_now();
	json_object *o;

	memset(&j, 0, sizeof j);
	if (strcmp(req->method, "POST") != 0) {
		oauth_error(r, 405, "invalid_request", "Method not allowed");
		return;
	}
	if (ct == NULL || strncasecmp(ct,
	    "application/x-www-form-urlencoded", 33) != 0) {
		oauth_error(r, 400, "invalid_request",
		    "Content-Type must be application/x-www-form-urlencoded");
		return;
	}
	grant = fake_form_get(req->body, "grant_type");
	assertion = fake_form_get(req->body, "assertion");
	if (grant == NULL || strcmp(grant, GRANT) != 0) {
		oauth_error(r, 400, "unsupported_grant_type",
		    "Invalid grant_type: ");
		goto out;
	}
	if (assertion == NULL || fake_jwt_parse(assertion, &j) != 0) {
		oauth_error(r, 400, "invalid_request",
		    "Invalid assertion format");
		goto out;
	}
	iss = fake_jwt_str(j.claims, "iss");
	for (s = sas; s != NULL && iss != NULL; s = s->next)
		if (strcmp(s->email, iss) == 0)
			break;
	if (iss == NULL || s == NULL) {
		oauth_error(r, 400, "invalid_grant",
		    "Invalid grant: account not found");
		goto out;
	}
	r->token = fake_xstrdup(iss);
	if (fake_script_match(FAKE_FCM, iss, &rule)) {
		oauth_error(r, rule.status ? rule.status : 400,
		    rule.reason ? rule.reason : "invalid_grant",
		    "scripted failure");
		if (rule.status == 0)
			r->status = 400;
		fake_rule_apply(&rule, r);
		fake_rule_clear(&rule);
		goto out;
	}
	kid = fake_jwt_str(j.header, "kid");
	if (fake_jwt_str(j.header, "alg") == NULL ||
	    strcmp(fake_jwt_str(j.header, "alg"), "RS256") != 0 ||
	    (kid != NULL && s->key_id != NULL && strcmp(kid, s->key_id)) ||
	    !fake_jwt_verify(&j, "RS256", s->key)) {
		oauth_error(r, 400, "invalid_grant", "Invalid JWT Signature.");
		goto out;
	}
	aud = fake_jwt_str(j.claims, "aud");
	if (aud == NULL || strcmp(aud, fake_cfg.fcm_aud) != 0) {
		oauth_error(r, 400, "invalid_grant",
		    "Invalid JWT: Failed audience check.");
		goto out;
	}
	if (fake_jwt_int(j.claims, "iat", &iat) != 0 ||
	    fake_jwt_int(j.claims, "exp", &exp) != 0 || exp <= iat ||
	    exp - iat > 3600 || exp <= now || iat > now + 60) {
		oauth_error(r, 400, "invalid_grant", BAD_TIME);
		goto out;
	}
	scope = fake_jwt_str(j.claims, "scope");
	if (scope == NULL || *scope == '\0') {
		oauth_error(r, 400, "invalid_scope",
		    "Empty or missing scope not allowed.");
		goto out;
	}
	if (!has_scope(scope)) {
		oauth_error(r, 400, "invalid_scope",
		    "Invalid OAuth scope or ID token audience provided.");
		goto out;
	}
	strcpy(tok, "ya29.c.fake-");
	fake_rand_hex(tok + strlen(tok), 40);
	t = fake_xcalloc(1, sizeof *t);
	t->value = fake_xstrdup(tok);
	t->sa = s;
	t->expires_ms = fake_now_ms() + (int64_t)fake_cfg.fcm_token_ttl *
	    1000;
	t->next = tokens;
	tokens = t;
	o = json_object_new_object();
	json_object_object_add(o, "access_token", json_object_new_string(tok));
	json_object_object_add(o, "expires_in",
	    json_object_new_int(fake_cfg.fcm_token_ttl));
	json_object_object_add(o, "token_type",
	    json_object_new_string("Bearer"));
	fake_resp_json(r, 200, o);
out:
	fake_jwt_free(&j);
	free(grant);
	free(assertion);
}
