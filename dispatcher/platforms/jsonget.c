/*
 * jsonget.c - reading members of json-c objects (jsonget.h).
 */
#include "platforms/jsonget.h"

json_object *jsonget(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *jsonget_str(json_object *o, const char *key)
{
	json_object *v = jsonget(o, key);

	return v != NULL && json_object_is_type(v, json_type_string)
	       ? json_object_get_string(v) : NULL;
}

const char *jsonget_nonempty(json_object *o, const char *key)
{
	const char *s = jsonget_str(o, key);

	return s != NULL && s[0] != '\0' ? s : NULL;
}
