/*
 * sender.c - the registry of built-in push platforms (sender_for()).
 * The only place outside tests that includes a platform's header.
 */
#include "platforms/sender.h"

#include <json-c/json.h>

#include "platforms/apns/sender_apns.h"
#include "platforms/fcm/sender_fcm.h"
#include "platforms/mpns/sender_mpns.h"
#include "platforms/wns/sender_wns.h"

const struct sender_ops *sender_for(enum push_platform platform)
{
	switch (platform) {
	case PUSH_PLATFORM_APNS:
		return &sender_apns_ops;
	case PUSH_PLATFORM_FCM:
		return &sender_fcm_ops;
	case PUSH_PLATFORM_WNS:
		return &sender_wns_ops;
	case PUSH_PLATFORM_MPNS:
		return &sender_mpns_ops;
	default:
		return NULL;
	}
}

struct json_object *sender_parse_payload(const char *text)
{
	/* Left for the process's end: one tokener per thread that sends. */
	static _Thread_local struct json_tokener *tok;
	json_object *o;

	if (tok == NULL) {
		/* json-c counts a scalar inside the innermost object as a
		 * level too. */
		tok = json_tokener_new_ex(SENDER_PAYLOAD_MAX_DEPTH + 1);
		if (tok == NULL)
			return NULL;
	}
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, text != NULL ? text : "", -1);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

const char *sender_payload_why(const char *text)
{
	struct json_tokener *tok;
	enum json_tokener_error err;

	tok = json_tokener_new_ex(SENDER_PAYLOAD_MAX_DEPTH + 1);
	if (tok == NULL)
		return "payload is not a JSON object";
	json_object_put(json_tokener_parse_ex(tok, text != NULL ? text : "",
					      -1));
	err = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (err == json_tokener_error_depth)
		return "payload nests deeper than "
		       SENDER_PAYLOAD_MAX_DEPTH_STR " levels of objects and "
		       "arrays";
	return "payload is not a JSON object";
}
