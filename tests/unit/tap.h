/*
 * tap.h - a small Test Anything Protocol helper for the C unit tests.
 *
 * Each test program calls plan(N) (or nothing, and then done_testing()
 * prints the plan at the end), then assertions, and returns
 * done_testing() from main.  prove runs the binaries and reads the TAP.
 * A failed assertion prints where it is and both values, e.g.
 *
 *   not ok 3 - batch size parsed
 *   #   Failed test 'batch size parsed'
 *   #   at tests/unit/test_cli.c line 42.
 *   #   got: 3
 *   #   expected: 4
 *
 * Every assertion takes a printf-style test name and returns 1 when it
 * passed, so a test can skip what depends on it.  State is global: one
 * test program, one thread.
 */
#ifndef PGPUSH_TAP_H
#define PGPUSH_TAP_H

/* Announce that `n` tests will run ("1..n"). */
void tap_plan(int n);

/* Print a "# ..." comment line (to stderr, as prove expects). */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Print the plan if none was given, a summary if something failed, and
 * return the exit status: 0 when every test passed and the plan (if any)
 * matched, the number of failures (at most 254), or 255 for a plan
 * mismatch with no failure.
 */
int tap_done_testing(void);

/* The functions behind the macros below; call the macros instead. */
int tap_check(int pass, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int tap_check_int(long long got, long long expected, const char *file,
		  int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int tap_check_str(const char *got, const char *expected, const char *file,
		  int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int tap_check_ptr(const void *got, const void *expected, const char *file,
		  int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int tap_check_contains(const char *haystack, const char *needle,
		       const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define plan(n) tap_plan(n)
#define diag(...) tap_diag(__VA_ARGS__)
#define done_testing() tap_done_testing()

/* Pass when `cond` is true. */
#define ok(cond, ...) tap_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* Pass when two integers are equal; both printed on failure. */
#define is_int(got, expected, ...) \
	tap_check_int((long long)(got), (long long)(expected), __FILE__, \
		      __LINE__, __VA_ARGS__)

/* Pass when two strings are equal (two NULLs are equal). */
#define is_str(got, expected, ...) \
	tap_check_str((got), (expected), __FILE__, __LINE__, __VA_ARGS__)

/* Pass when two pointers are equal (e.g. is_ptr(p, NULL, ...)). */
#define is_ptr(got, expected, ...) \
	tap_check_ptr((got), (expected), __FILE__, __LINE__, __VA_ARGS__)

/* Pass when `haystack` contains `needle`. */
#define like_str(haystack, needle, ...) \
	tap_check_contains((haystack), (needle), __FILE__, __LINE__, \
			   __VA_ARGS__)

#endif
