/* test_dbbinary.c - what the database sink computes without the server:
 * a cell's number in batlab.sample_data (MD5 of "RUN_ID\nCELL", the value
 * the server's batlab.series gives, test_lab_db checks the two agree on a
 * run), and a spool row re-encoded in COPY's binary format (host/dbbinary.c):
 * each field's bytes as PostgreSQL reads them, the numbers the doubles
 * strtod gives for their text, and rows binary cannot say refused with the
 * buffer left as it was (the sender then sends them as text).
 */
#include <stdint.h>
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

int main(void)
{
	plan_lazy();
	md5_vectors();
	sample_rows();
	return done_testing();
}
