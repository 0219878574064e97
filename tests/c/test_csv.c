/* test_csv.c - bl_csv_fixed writes exactly what "%.Nf" writes (the time
 * series and Lexcelon's log depend on it for byte-identical files),
 * over every precision the columns use, magnitudes from 1e-6 to 1e9,
 * exact halves, values a hair from a half, and negatives. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/csv.h"
#include "tap.h"

static char got[128];

static const char *fixed(double v, int prec)
{
	struct bl_buf b = {0};

	bl_csv_fixed(&b, v, prec);
	snprintf(got, sizeof got, "%.*s", (int)b.len, b.p ? b.p : "");
	bl_buf_free(&b);
	return got;
}

/* printf's text, with a negative zero written without its sign (as the
 * columns want it). */
static const char *want(double v, int prec)
{
	static char w[128];

	snprintf(w, sizeof w, "%.*f", prec, v);
	if (w[0] == '-' && strspn(w + 1, "0.") == strlen(w + 1))
		memmove(w, w + 1, strlen(w));
	return w;
}

int main(void)
{
	static const double halves[] = {0.5, 1.5, 2.5, 0.125, 0.375, 1234.5, 2.675, 1.005, 0.0005};
	unsigned long bad = 0, n = 0;
	unsigned seed = 12345;

	plan_lazy();
	for (size_t i = 0; i < sizeof halves / sizeof halves[0]; i++)
		for (int p = 0; p <= 6; p++) {
			is_str(fixed(halves[i], p), want(halves[i], p), "%.17g at %d digits", halves[i], p);
			is_str(fixed(-halves[i], p), want(-halves[i], p), "-%.17g at %d digits", halves[i], p);
		}
	/* random values over the magnitudes rows hold, and their neighbours a
	 * few units in the last place away (where a half is closest) */
	for (int k = 0; k < 400000; k++) {
		double mag = pow(10.0, (double)(rand_r(&seed) % 16) - 6.0);
		double v = mag * ((double)rand_r(&seed) / RAND_MAX) * (rand_r(&seed) % 2 ? 1 : -1);
		int p = rand_r(&seed) % 9;
		if (k % 4 == 0) /* a half at this precision, nudged */
			v = (floor(v * pow(10, p)) + 0.5) / pow(10, p) + (double)(rand_r(&seed) % 5 - 2) * v * 1e-16;
		n++;
		if (strcmp(fixed(v, p), want(v, p)) != 0 && bad++ < 5)
			diag("%.17g at %d digits: %s, printf %s", v, p, got, want(v, p));
	}
	is_int((long long)bad, 0, "%lu random values and halves: the same text as printf", n);
	return done_testing();
}
