/* dbseries.c - the number that stands for a cell of a run in
 * batlab.sample_data (db.h): the first 8 bytes of the MD5 digest of
 * "RUN_ID\nCELL", big-endian, as a signed 64-bit integer. The database
 * computes the same with batlab.series(run_id, cell) (md5() in SQL), so
 * rows spooled while it was away, samples of older spools and the join
 * of the samples view all agree without asking the server. MD5 here is a
 * label, not a protection: nothing secret is hashed. The digest is
 * OpenSSL's (libcrypto, which libpq already brings). */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/db.h"

int bl_md5(const void *data, size_t n, unsigned char out[16])
{
	unsigned int len = 16;

	return EVP_Digest(data, n, out, &len, EVP_md5(), NULL) == 1 && len == 16 ? 0 : -1;
}

int64_t bl_db_series(const char *run_id, const char *cell)
{
	unsigned char small[512], md[16], *buf = small;
	size_t rn = strlen(run_id), cn = strlen(cell);
	uint64_t v = 0;

	if (rn + 1 + cn > sizeof small && !(buf = malloc(rn + 1 + cn)))
		return 0;
	memcpy(buf, run_id, rn);
	buf[rn] = '\n';
	memcpy(buf + rn + 1, cell, cn);
	if (bl_md5(buf, rn + 1 + cn, md) < 0)
		memset(md, 0, sizeof md);
	if (buf != small)
		free(buf);
	for (int i = 0; i < 8; i++)
		v = v << 8 | md[i];
	return (int64_t)v;
}
