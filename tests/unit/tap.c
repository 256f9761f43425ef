/*
 * tap.c - the TAP helper behind tap.h.
 *
 * Results go to stdout, diagnostics to stderr; stdout is flushed before
 * every diagnostic so the two stay in order on a terminal.
 */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_planned = -1;
static int tap_run;
static int tap_failed;

void tap_plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static void vdiag(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("# ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(fmt, ap);
	va_end(ap);
}

/* Print "ok N - name" or "not ok N - name" plus where it failed. */
static int report(int pass, const char *file, int line, const char *fmt,
		  va_list ap)
{
	char name[512];

	vsnprintf(name, sizeof(name), fmt, ap);
	tap_run++;
	printf("%sok %d - %s\n", pass ? "" : "not ", tap_run, name);
	fflush(stdout);
	if (!pass) {
		tap_failed++;
		tap_diag("  Failed test '%s'", name);
		tap_diag("  at %s line %d.", file, line);
	}
	return pass;
}

/* A string for a diagnostic: quoted, control characters escaped. */
static void diag_str(const char *label, const char *s)
{
	fflush(stdout);
	fprintf(stderr, "#   %s: ", label);
	if (s == NULL) {
		fputs("NULL\n", stderr);
		return;
	}
	fputc('"', stderr);
	for (; *s; s++) {
		if (*s == '\n')
			fputs("\\n", stderr);
		else if (*s == '"' || *s == '\\')
			fprintf(stderr, "\\%c", *s);
		else if ((unsigned char)*s < ' ')
			fprintf(stderr, "\\x%02x", (unsigned char)*s);
		else
			fputc(*s, stderr);
	}
	fputs("\"\n", stderr);
	fflush(stderr);
}

int tap_check(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pass = report(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

int tap_check_int(long long got, long long expected, const char *file,
		  int line, const char *fmt, ...)
{
	va_list ap;
	int pass;

	va_start(ap, fmt);
	pass = report(got == expected, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		tap_diag("  got: %lld", got);
		tap_diag("  expected: %lld", expected);
	}
	return pass;
}

int tap_check_str(const char *got, const char *expected, const char *file,
		  int line, const char *fmt, ...)
{
	va_list ap;
	int pass;

	if (got == NULL || expected == NULL)
		pass = got == expected;
	else
		pass = strcmp(got, expected) == 0;
	va_start(ap, fmt);
	pass = report(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag_str("got", got);
		diag_str("expected", expected);
	}
	return pass;
}

int tap_check_ptr(const void *got, const void *expected, const char *file,
		  int line, const char *fmt, ...)
{
	va_list ap;
	int pass;

	va_start(ap, fmt);
	pass = report(got == expected, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		tap_diag("  got: %p", got);
		tap_diag("  expected: %p", expected);
	}
	return pass;
}

int tap_check_contains(const char *haystack, const char *needle,
		       const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int pass;

	pass = haystack && needle && strstr(haystack, needle) != NULL;
	va_start(ap, fmt);
	pass = report(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag_str("got", haystack);
		diag_str("expected to contain", needle);
	}
	return pass;
}

int tap_done_testing(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_run);
	fflush(stdout);
	if (tap_failed > 0)
		tap_diag("Looks like you failed %d test%s of %d.", tap_failed,
			 tap_failed == 1 ? "" : "s", tap_run);
	if (tap_planned >= 0 && tap_planned != tap_run)
		tap_diag("Looks like you planned %d test%s but ran %d.",
			 tap_planned, tap_planned == 1 ? "" : "s", tap_run);
	if (tap_failed > 0)
		return tap_failed > 254 ? 254 : tap_failed;
	if (tap_planned >= 0 && tap_planned != tap_run)
		return 255;
	return 0;
}
