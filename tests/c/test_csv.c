/* test_csv.c - bl_csv_fixed writes exactly what "%.Nf" writes (the time
 * series and Lexcelon's log depend on it for byte-identical files),
 * over every precision the columns use, magnitudes from 1e-6 to 1e9,
 * exact halves, values a hair from a half, and negatives (bl_csv_fixed
 * is bl_csv_put_fixed, which is the recorder's inline bl_csv_put_fixed_n
 * at each precision); bl_csv_time and bl_csv_put_time what strftime
 * writes; bl_csv_put_uint what printf writes. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	static char w[BL_CSV_FIXED_ROOM];

	snprintf(w, sizeof w, "%.*f", prec, v);
	if (w[0] == '-' && strspn(w + 1, "0.") == strlen(w + 1))
		memmove(w, w + 1, strlen(w));
	return w;
}

/* The date-time column as strftime and printf write it. */
static const char *want_time(double epoch, bool utc)
{
	static char w[64];
	long long unit = utc ? 1000 : 1000000;
	long long t = (long long)floor(epoch * (double)unit + 0.5);
	long long sec = t >= 0 ? t / unit : -((-t + unit - 1) / unit);
	time_t tt = (time_t)sec;
	struct tm tm;
	char d[32];

	if (utc)
		gmtime_r(&tt, &tm);
	else
		localtime_r(&tt, &tm);
	strftime(d, sizeof d, utc ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(w, sizeof w, utc ? "%s.%03lldZ" : "%s.%06lld", d, t - sec * unit);
	return w;
}

static const char *got_time(double epoch, bool utc)
{
	struct bl_buf b = {0};

	bl_csv_time(&b, epoch, utc);
	snprintf(got, sizeof got, "%.*s", (int)b.len, b.p ? b.p : "");
	bl_buf_free(&b);
	return got;
}

/* Around each change of a half-hour daylight-saving zone in 2024, rows
 * going forward, then back (interleaved cells, an older row). */
static void test_time_changes(void)
{
	unsigned long bad = 0, n = 0;
	int changes = 0;
	long prev_off = 0;

	setenv("TZ", "Australia/Lord_Howe", 1);
	tzset();
	for (time_t t = 1704067200; t < 1735689600; t += 900) {
		struct tm tm;
		localtime_r(&t, &tm);
		if (t > 1704067200 && tm.tm_gmtoff != prev_off) {
			changes++;
			for (int dir = 1; dir >= -1; dir -= 2)
				for (int k = 0; k <= 2000; k++, n++) {
					double e = (double)t + (dir > 0 ? -3600 + 3.6 * k : 3600 - 3.6 * k);
					if (strcmp(got_time(e, false), want_time(e, false)) != 0 && bad++ < 5)
						diag("%.1f: %s, strftime %s", e, got, want_time(e, false));
				}
		}
		prev_off = tm.tm_gmtoff;
	}
	ok(changes == 2 || changes == 0, "Lord Howe changes its clock twice a year (%d seen)", changes);
	is_int((long long)bad, 0, "%lu times around its changes, forwards and back: as strftime", n);
}

/* bl_csv_time keeps the date and hour for the hour: across hours, days,
 * and the daylight-saving changes of zones with whole- and half-hour
 * offsets, it writes what strftime writes. */
static void test_times(void)
{
	static const char *zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
	                              "Australia/Lord_Howe"};
	unsigned seed = 777;
	unsigned long bad = 0, n = 0;

	for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
		setenv("TZ", zones[z], 1);
		tzset();
		for (int k = 0; k < 3000; k++) {
			double base = 946684800.0 + (double)(rand_r(&seed) % 946080000) + rand_r(&seed) % 1000 / 1e3;
			for (int j = 0; j < 8; j++) {
				double t = base + j * 613.7;
				for (int utc = 0; utc < 2; utc++, n++)
					if (strcmp(got_time(t, utc), want_time(t, utc)) != 0 && bad++ < 5)
						diag("%s %.6f: %s, strftime %s", zones[z], t, got, want_time(t, utc));
			}
		}
	}
	is_int((long long)bad, 0, "%lu times in %zu zones: the same text as strftime", n,
	       sizeof zones / sizeof zones[0]);
	test_time_changes();
}

/* Lexcelon's UTC date-time ("YYYY-mm-dd HH:MM:SS.ffffff"), from the
 * hour and second caches: what gmtime and strftime write, whatever the
 * zone. */
static void test_utc_us(void)
{
	unsigned seed = 4242;
	unsigned long bad = 0, n = 0;

	setenv("TZ", "Asia/Kolkata", 1);
	tzset();
	for (int k = 0; k < 20000; k++, n++) {
		double e = (double)(rand_r(&seed) % 2000000000) + rand_r(&seed) % 1000000 / 1e6;
		long long us = (long long)floor(e * 1e6 + 0.5);
		time_t tt = (time_t)(us / 1000000);
		struct tm tm;
		char want_s[64], buf[BL_CSV_TIME_ROOM], *end;
		size_t w;

		gmtime_r(&tt, &tm);
		w = strftime(want_s, sizeof want_s, "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(want_s + w, sizeof want_s - w, ".%06lld", us % 1000000);
		end = bl_csv_put_time(buf, e, BL_CSV_UTC_US);
		*end = '\0';
		if (strcmp(buf, want_s) != 0 && bad++ < 5)
			diag("%.6f: %s, strftime %s", e, buf, want_s);
	}
	is_int((long long)bad, 0, "%lu UTC times with microseconds: as gmtime and strftime", n);
}

/* The last second's text is kept: rows of several cells in one second,
 * then a step back over a second's and an hour's change, in both zones'
 * kinds, interleaved. */
static void test_same_second(void)
{
	unsigned long bad = 0, n = 0;

	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	for (double base = 1711846800.0 - 7200; base < 1711846800.0 + 7200; base += 1799.5) {
		static const double steps[] = {0, 0.25, 0.5, 0.9999994, 1.0, -0.4, -1.2, 3599.9, -3600.1};
		for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
			for (int utc = 0; utc < 2; utc++, n++) {
				double e = base + steps[i];
				if (strcmp(got_time(e, utc), want_time(e, utc)) != 0 && bad++ < 5)
					diag("%.7f: %s, strftime %s", e, got, want_time(e, utc));
			}
	}
	is_int((long long)bad, 0, "%lu times within and across seconds around a clock change", n);
}

/* Whole numbers at a cursor: "%llu"'s digits, at the ends of each digit
 * count. */
static void test_uint(void)
{
	unsigned long bad = 0, n = 0;
	unsigned long long u = 1;
	char buf[BL_CSV_UINT_ROOM], want_s[32], *end;

	for (int d = 0; d < 20; d++, u *= 10)
		for (int k = -2; k <= 2; k++, n++) {
			unsigned long long v = u + (unsigned long long)(long long)k;
			if (d == 0 && k < -1)
				continue;
			end = bl_csv_put_uint(buf, v);
			*end = '\0';
			snprintf(want_s, sizeof want_s, "%llu", v);
			if (strcmp(buf, want_s) != 0 && bad++ < 5)
				diag("%s, printf %s", buf, want_s);
		}
	end = bl_csv_put_uint(buf, ~0ull);
	*end = '\0';
	snprintf(want_s, sizeof want_s, "%llu", ~0ull);
	is_str(buf, want_s, "the largest");
	is_int((long long)bad, 0, "%lu whole numbers around powers of ten: as printf", n);
}

/* The room a fixed field may take is enough for any double at any
 * precision, and the edges of the fast path print as printf. */
static void test_fixed_edges(void)
{
	static const double v[] = {DBL_MAX, -DBL_MAX, 1e9, -1e9, 999999999.99999, 999999999.5,
	                           0.9999999995, -0.00000000049, 5e-324, -0.0, 1e17, 123456789.125};
	char buf[BL_CSV_FIXED_ROOM + 1], *end;

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		for (int p = 0; p <= 15; p += (p < 9 ? 1 : 6)) {
			end = bl_csv_put_fixed(buf, v[i], p);
			ok(end - buf < BL_CSV_FIXED_ROOM, "%.17g at %d digits fits the room (%td)", v[i], p,
			   end - buf);
			*end = '\0';
			is_str(buf, want(v[i], p), "%.17g at %d digits", v[i], p);
		}
	ok(bl_csv_put_fixed(buf, NAN, 3) == buf && bl_csv_put_fixed(buf, INFINITY, 3) == buf,
	   "NaN and infinity: an empty field");
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
	test_times();
	test_utc_us();
	test_same_second();
	test_uint();
	test_fixed_edges();
	return done_testing();
}
