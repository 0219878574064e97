/* tap.h - a tiny TAP producer for the C tests (run under prove).
 *
 *   plan_lazy();                 ... ok(cond, "name %d", i); ...  return done_testing();
 *   is_int(got, want, "name"); is_num(got, want, tol, "name"); is_str(...)
 *
 * Failures print the values as TAP diagnostics (# lines). Header-only:
 * every test file includes it once.
 */
#ifndef BL_TAP_H
#define BL_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void plan_lazy(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

static inline int tap_vok(int cond, const char *fmt, va_list ap)
{
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	vprintf(fmt, ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	return cond;
}

static inline __attribute__((format(printf, 2, 3))) int ok(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_vok(cond, fmt, ap);
	va_end(ap);
	return r;
}

static inline __attribute__((format(printf, 1, 2))) void diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline __attribute__((format(printf, 3, 4))) int is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_vok(got == want, fmt, ap);
	va_end(ap);
	if (!r)
		diag("     got: %lld\n#     want: %lld", got, want);
	return r;
}

static inline __attribute__((format(printf, 4, 5))) int is_num(double got, double want, double tol, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_vok(fabs(got - want) <= tol, fmt, ap);
	va_end(ap);
	if (!r)
		diag("     got: %.9g\n#     want: %.9g (+/- %g)", got, want, tol);
	return r;
}

static inline __attribute__((format(printf, 3, 4))) int is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = tap_vok(got && want && strcmp(got, want) == 0, fmt, ap);
	va_end(ap);
	if (!r)
		diag("     got: '%s'\n#     want: '%s'", got ? got : "(null)", want ? want : "(null)");
	return r;
}

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
