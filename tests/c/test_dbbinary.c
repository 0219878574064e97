/* test_dbbinary.c - what the database sink computes without the server:
 * a cell's number in batlab.sample_data (MD5 of "RUN_ID\nCELL", the value
 * the server's batlab.series gives, test_lab_db checks the two agree on a
 * run), and a spool row re-encoded in COPY's binary format (host/dbbinary.c):
 * each field's bytes as PostgreSQL reads them, the numbers the doubles
 * strtod gives for their text, and rows binary cannot say refused with the
 * buffer left as it was (the sender then sends them as text); and a row
 * built field by field (what the feed spools): each field the same bytes
 * as the text batlab writes of its value, re-encoded, over a quarter of a
 * million values with ties, signs, zeros and the limits.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/db.h"
#include "host/db_parts.h"
#include "tap.h"

static int64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	if (n == 4)
		return (int32_t)(uint32_t)v;
	return (int64_t)v;
}

static void hex(const unsigned char *md, char *out)
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void md5_vectors(void)
{
	/* RFC 1321's test suite */
	static const char *const in[] = {"", "a", "abc", "message digest",
	                                 "12345678901234567890123456789012345678901234567890123456789012345678901234567890"};
	static const char *const want[] = {"d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661",
	                                   "900150983cd24fb0d6963f7d28e17f72", "f96b697d7cb7938d525a2f31aaf161d0",
	                                   "57edf4a22be3c955ac49da2e2107b67a"};
	unsigned char md[16];
	char h[33];

	for (int i = 0; i < 5; i++) {
		if (bl_md5(in[i], strlen(in[i]), md) < 0)
			memset(md, 0, sizeof md);
		hex(md, h);
		is_str(h, want[i], "md5 of \"%.20s\"", in[i]);
	}
	/* SELECT batlab.series('vm:x:1', 'A1') on PostgreSQL 15 */
	is_int(bl_db_series("vm:x:1", "A1"), -3235462286877971030LL, "series of vm:x:1 / A1: the server's value");
}

/* Field k of a tuple at p (after its count): its length and bytes. */
static const unsigned char *field(const unsigned char *p, int k, int32_t *len)
{
	p += 2;
	for (int i = 0; i < k; i++) {
		int32_t n = (int32_t)be(p, 4);
		p += 4 + (n > 0 ? n : 0);
	}
	*len = (int32_t)be(p, 4);
	return p + 4;
}

static double dbl(const unsigned char *p)
{
	uint64_t bits = (uint64_t)be(p, 8);
	double d;

	memcpy(&d, &bits, sizeof d);
	return d;
}

static int enc(struct bl_buf *b, const char *row)
{
	return bl_dbbin_row(b, BL_DB_SAMPLE_TYPES, row, strlen(row));
}

static void sample_rows(void)
{
	static const char row[] = "-3235462286877971030\t7035\t2000-01-01T01:23:18.944Z\t4998.944\t954.954\t1\t"
	                          "measure\\tment\t5\ta\\\\b\\x01\tCHARGE\t3.7601\t-2.0001\t\\N\t1e-05\t"
	                          "3.7601000000000002\t-0.0000\t12\n";
	struct bl_buf b = {0};
	const unsigned char *p, *f;
	int32_t n;

	ok(bl_dbbin_row(&b, BL_DB_SAMPLE_TYPES, row, sizeof row - 1) == 0, "a sample row: encoded");
	p = (const unsigned char *)b.p;
	is_int(be(p, 2), 17, "17 fields");
	f = field(p, 0, &n);
	ok(n == 8 && be(f, 8) == -3235462286877971030LL, "series: a negative bigint of 19 digits");
	f = field(p, 1, &n);
	ok(n == 8 && be(f, 8) == 7035, "seq");
	f = field(p, 2, &n);
	ok(n == 8 && be(f, 8) == (1LL * 3600 + 23 * 60 + 18) * 1000000 + 944000,
	   "at: microseconds from 2000-01-01 UTC");
	f = field(p, 3, &n);
	ok(n == 8 && dbl(f) == strtod("4998.944", NULL), "t_s: the double strtod gives");
	f = field(p, 5, &n);
	ok(n == 4 && be(f, 4) == 1, "cycle: an integer");
	f = field(p, 6, &n);
	ok(n == 12 && memcmp(f, "measure\tment", 12) == 0, "cycle_kind: the COPY escape undone");
	f = field(p, 8, &n);
	ok(n == 4 && memcmp(f, "a\\b\x01", 4) == 0, "step_name: \\\\ and \\x01 undone");
	f = field(p, 10, &n);
	ok(n == 8 && dbl(f) == strtod("3.7601", NULL), "voltage 3.7601");
	f = field(p, 11, &n);
	ok(n == 8 && dbl(f) == strtod("-2.0001", NULL), "current -2.0001");
	field(p, 12, &n);
	is_int(n, -1, "temp_c \\N: NULL");
	f = field(p, 13, &n);
	ok(n == 8 && dbl(f) == 1e-05, "1e-05 (through strtod)");
	f = field(p, 14, &n);
	ok(n == 8 && dbl(f) == strtod("3.7601000000000002", NULL), "17 digits (through strtod)");
	f = field(p, 16, &n);
	ok(n == 4 && be(f, 4) == 12, "errors");
	is_int((long long)b.len, (long long)(f + 4 - p), "nothing after the last field");
	b.len = 0;
	ok(enc(&b, "9223372036854775807\t1\t\\N\t0\t0\t0\t\t0\t\t\t0\t0\t0\t0\t0\t0\t0") ==
	       0 && be(field((const unsigned char *)b.p, 0, &n), 8) == INT64_MAX,
	   "the largest bigint");
	b.len = 0;
	bl_buf_adds(&b, "kept");
	ok(enc(&b, "1\t1\t2000-01-01 00:00:00\t0\t0\t0\t\t0\t\t\t0\t0\t0\t0\t0\t0\t0") < 0 && b.len == 4, "a time in another spelling: refused, the buffer as it was");
	ok(enc(&b, "1\t1\t\\N\t0\t0\t0\t\t0\t\t\t0\t0\t0\t0\t0\t0") < 0 && b.len == 4,
	   "16 fields: refused");
	ok(enc(&b, "1\t1\t\\N\tx\t0\t0\t\t0\t\t\t0\t0\t0\t0\t0\t0\t0") < 0 && b.len == 4,
	   "a number that is not one: refused");
	ok(enc(&b, "9223372036854775808\t1\t\\N\t0\t0\t0\t\t0\t\t\t0\t0\t0\t0\t0\t0\t0") < 0 && b.len == 4, "a bigint too large: refused");
	bl_buf_free(&b);
}

/* A seeded xorshift: the same values every run. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_u64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A value of any size from 1e-9 to 1e12, either sign; every eighth a
 * decimal tie at prec (k + 0.5) / 10^prec, as near as a double comes. */
static double any_value(int prec)
{
	static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
	uint64_t r = next_u64();
	double v;

	if (r % 8 == 0)
		v = ((double)(r >> 40) + 0.5) / p10[prec];
	else
		v = (double)(r >> 11) / 9007199254740992.0 * pow(10, (double)((r >> 3) % 22) - 9);
	return (r & 4) ? -v : v;
}

/* The builder's field (bin) and the text path's the same bytes: the
 * text re-encoded by bl_dbbin_row as a one-field row (its count first),
 * or where that refuses a number (too many digits: it goes as text), the
 * double the server's strtod reads. */
static bool same_field(const struct bl_buf *bin, char type, const struct bl_buf *text)
{
	struct bl_buf r = {0};
	char types[2] = {type, '\0'};
	bool same;

	if (bl_dbbin_row(&r, types, text->p ? text->p : "", text->len) < 0 && type == 'f') {
		double d = strtod(text->p, NULL);
		uint64_t bits;
		unsigned char f[14] = {0, 1, 0, 0, 0, 8};
		memcpy(&bits, &d, sizeof bits);
		for (int i = 0; i < 8; i++)
			f[6 + i] = (unsigned char)(bits >> (56 - 8 * i));
		r.len = 0;
		bl_buf_add(&r, (const char *)f, sizeof f);
	}
	same = r.len == bin->len + 2 && memcmp(r.p + 2, bin->p, bin->len) == 0;

	bl_buf_free(&r);
	return same;
}

static void built_fields(void)
{
	static const double edge[] = {0, -0.0, 0.5, -0.5, 1e-9, -0.00004, 0.125, 2.675, 999999999.9999996,
	                              1e9, -1e9, 123456789012.5, 1e300, NAN, INFINITY, -INFINITY};
	static const char *const texts[] = {"CHARGE", "", "tab\there", "line\nbreak", "back\\slash", "\x01\x1f",
	                                    "caf\xc3\xa9", NULL};
	struct bl_buf bin = {0}, text = {0};
	int bad;

	for (int prec = 0; prec <= 8; prec++) {
		bad = 0;
		for (int i = 0; i < 30000 + (int)(sizeof edge / sizeof edge[0]); i++) {
			double v = i < (int)(sizeof edge / sizeof edge[0]) ? edge[i] : any_value(prec);
			bin.len = text.len = 0;
			bl_dbbin_fixed(&bin, v, prec);
			bl_copy_fixed(&text, v, prec);
			if (!same_field(&bin, 'f', &text) && bad++ < 3)
				diag("prec %d: %.17g: %s", prec, v, text.p);
		}
		is_int(bad, 0, "bl_dbbin_fixed, %d decimals: every value the double its text reads as", prec);
	}
	bad = 0;
	for (int i = 0; i < 30000; i++) {
		uint64_t r = next_u64();
		/* 1e-4 s steps around a millisecond's half, 1900 to 2300, and the limits */
		double e = i == 0 ? 0 : i == 1 ? -1e11 : i == 2 ? 99999999999.9995 : i == 3 ? 1e11 : i == 4 ? -0.0005 :
		           (double)(int64_t)(r % 12600000000ull) - 2208988800.0 + (double)((r >> 40) % 10) * 1e-4 + 0.0005;
		bin.len = text.len = 0;
		bl_dbbin_time(&bin, e);
		bl_copy_time(&text, e);
		if (!same_field(&bin, 'T', &text) && bad++ < 3)
			diag("time %.6f: %s", e, text.p);
	}
	is_int(bad, 0, "bl_dbbin_time: every time the microseconds its text reads as (or both NULL)");
	bad = 0;
	for (int i = 0; i < (int)(sizeof texts / sizeof texts[0]); i++) {
		bin.len = text.len = 0;
		bl_dbbin_text(&bin, texts[i]);
		bl_copy_text(&text, texts[i]);
		bad += !same_field(&bin, 't', &text);
	}
	is_int(bad, 0, "bl_dbbin_text: tabs, newlines, backslashes, control bytes, UTF-8, empty and NULL as COPY reads them");
	bad = 0;
	for (int i = 0; i < 1000; i++) {
		int64_t v = i == 0 ? INT64_MIN + 1 : i == 1 ? INT64_MAX : (int64_t)next_u64();
		int32_t w = i == 0 ? INT32_MIN : i == 1 ? INT32_MAX : (int32_t)next_u64();
		bin.len = text.len = 0;
		bl_dbbin_int8(&bin, v);
		bl_copy_int(&text, v);
		bad += !same_field(&bin, '8', &text);
		bin.len = text.len = 0;
		bl_dbbin_int4(&bin, w);
		bl_copy_int(&text, w);
		bad += !same_field(&bin, '4', &text);
	}
	is_int(bad, 0, "bl_dbbin_int8, bl_dbbin_int4: as their digits read");
	bl_buf_free(&bin);
	bl_buf_free(&text);
}

static void tuple_lengths(void)
{
	struct bl_buf b = {0};
	int64_t a = 0, c = 0;
	bool all = true;

	bl_dbbin_fields(&b, 3);
	bl_dbbin_int8(&b, -7);
	bl_dbbin_int8(&b, 42);
	bl_dbbin_text(&b, "a\nb");
	is_int(bl_dbbin_tuple_len(b.p, b.len), (long long)b.len, "a tuple's length from its fields");
	for (size_t n = 0; n < b.len; n++)
		all = all && bl_dbbin_tuple_len(b.p, n) == 0;
	ok(all, "cut short anywhere: not all there yet (0)");
	ok(bl_db_sample_key(b.p, b.len, true, &a, &c) && a == -7 && c == 42, "its first two bigints: the key");
	b.p[1] = 0;
	is_int(bl_dbbin_tuple_len(b.p, b.len), -1, "no fields: not a tuple");
	b.len = 0;
	bl_dbbin_fields(&b, 1);
	bl_buf_add(&b, "\x7f\0\0\0", 4);
	is_int(bl_dbbin_tuple_len(b.p, b.len), -1, "a field longer than a row can be: not a tuple");
	bl_buf_free(&b);
}

int main(void)
{
	plan_lazy();
	md5_vectors();
	sample_rows();
	built_fields();
	tuple_lengths();
	return done_testing();
}
