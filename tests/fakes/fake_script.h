/*
 * fake_script.h — scripted behaviour of the fakes: per-token rules,
 * server-wide failure modes, latency, and per-token counters.
 *
 * Everything here is changed at run time through the control port
 * (fake_ctl.c) and read by the provider modules on every request.
 */
#ifndef FAKE_SCRIPT_H
#define FAKE_SCRIPT_H

#include <json-c/json.h>

#include "fake.h"

/* One scripted behaviour; see tests/fakes/README.md for the fields. */
struct fake_rule {
	int prov;
	char *token;		/* "*" matches every token */
	int status;		/* 0: the provider's success answer */
	char *reason;		/* provider-specific reason, or NULL */
	int times;		/* matches left, -1: forever */
	int delay_ms;
	int action;		/* enum fake_action */
	uint32_t h2_error;
	int retry_after;	/* -1: no Retry-After */
	int64_t timestamp;	/* APNs 410 timestamp (ms), 0: now */
	json_object *headers;	/* extra response headers, owned */
	char *body;		/* replaces the body, or NULL */
	int64_t until_ms;	/* modes: end time */
	int percent;		/* modes: share of requests hit, 1..100 */
	struct fake_rule *next;
};

/* Adds (or replaces, same provider+token) a rule from a JSON spec. */
int fake_script_add_rule(json_object *spec, char *err, size_t errlen);
/* Removes the rule for (prov, token); 0, or -1 if there was none. */
int fake_script_del_rule(int prov, const char *token);
/* Starts a server-wide mode from a JSON spec (adds "seconds"). */
int fake_script_add_mode(json_object *spec, char *err, size_t errlen);
/* Sets the latency distribution from a JSON spec. */
int fake_script_set_latency(json_object *spec, char *err, size_t errlen);

/*
 * Finds the rule for (prov, token), consumes one of its "times" and
 * copies it into out (caller clears with fake_rule_clear).  Exact
 * tokens win over "*".  Returns 1 if a rule applied, else 0.
 */
int fake_script_match(int prov, const char *token, struct fake_rule *out);
/* Copies the active server-wide mode for prov into out; 1 if any. */
int fake_script_mode(int prov, struct fake_rule *out);
/* Extra delay drawn from the latency distribution for prov (ms). */
int fake_script_latency(int prov);

/*
 * Applies a rule's transport-level parts to a response the provider
 * already rendered: delay, action, Retry-After, extra headers, body.
 */
void fake_rule_apply(const struct fake_rule *r, struct fake_resp *resp);
/* Frees what a copied rule owns. */
void fake_rule_clear(struct fake_rule *r);

/* Counts one answered request for (prov, token). */
void fake_script_count(int prov, const char *token, int status);
/* Counters as JSON (prov -1 / token NULL: all); new reference. */
json_object *fake_script_counters(int prov, const char *token);

/* Requests count of (prov, token) so far (MPNS daily limit). */
long fake_script_requests(int prov, const char *token);

/* Drops rules, modes, latency and counters. */
void fake_script_reset(void);

#endif
