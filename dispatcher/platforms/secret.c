/*
 * secret.c - wiping secrets before they are freed (secret.h).
 */
#include "platforms/secret.h"

#include <stdlib.h>
#include <string.h>

void secret_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}
