/* outfile.c - a file appended to, plain or through zlib (outfile.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "host/outfile.h"

/* zlib's input and output buffers: a few seconds of rows of a virtual
 * run between deflate calls, one write(2) per 64 KiB of output. */
#define GZ_BUFFER (64u * 1024u)
/* A plain file's stdio buffer: 160 rows a write(2) in a virtual run; a
 * lab of 256 cells holds 256 of them (4 MB), where 64 kB each made 16. */
#define FILE_BUFFER (16u * 1024u)

struct bl_outfile {
	FILE *f;        /* plain */
	gzFile gz;      /* or compressed */
	size_t pathlen; /* zlib's messages start "PATH: " (the recorder adds its own) */
	char buf[FILE_BUFFER];  /* the plain file's stdio buffer */
};

bool bl_outfile_is_gzip(const char *path)
{
	size_t n = strlen(path);

	return n > 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* What zlib said about the last error (errno for a system error), its
 * "PATH: " left out. */
static int gz_fail(const struct bl_outfile *o, char *err, size_t errlen)
{
	int zerr = Z_OK;
	const char *msg = gzerror(o->gz, &zerr);

	if (strlen(msg) > o->pathlen + 2 && msg[o->pathlen] == ':')
		msg += o->pathlen + 2;
	snprintf(err, errlen, "%s", zerr == Z_ERRNO ? strerror(errno) : msg);
	return -1;
}

struct bl_outfile *bl_outfile_open(const char *path, char *err, size_t errlen)
{
	struct bl_outfile *o = calloc(1, sizeof *o);

	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->pathlen = strlen(path);
	errno = 0;  /* gzopen may fail without setting it (out of memory) */
	if (bl_outfile_is_gzip(path)) {
		/* "a": a new member after what is there */
		o->gz = gzopen(path, "ab" BL_OUTFILE_GZ_LEVEL);
		if (o->gz && gzbuffer(o->gz, GZ_BUFFER) != 0) {
			gzclose(o->gz);
			o->gz = NULL;
			errno = ENOMEM;
		}
	} else {
		o->f = fopen(path, "a");
		/* rows come far faster than a 4 kB stdio buffer empties in a
		 * virtual run (a write(2) per 40 rows); glibc keeps its own size
		 * unless it is given the buffer */
		if (o->f)
			setvbuf(o->f, o->buf, _IOFBF, sizeof o->buf);
	}
	if (!o->f && !o->gz) {
		snprintf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "out of memory");
		free(o);
		return NULL;
	}
	return o;
}

int bl_outfile_write(struct bl_outfile *o, const void *p, size_t len, char *err, size_t errlen)
{
	if (o->gz) {
		if (len > 0 && gzwrite(o->gz, p, (unsigned)len) == 0)
			return gz_fail(o, err, errlen);
		return 0;
	}
	if (fwrite(p, 1, len, o->f) != len) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

int bl_outfile_flush(struct bl_outfile *o, char *err, size_t errlen)
{
	if (o->gz) {
		/* Z_SYNC_FLUSH: the deflate block in progress is ended and
		 * padded to a byte, so inflating the file from its start
		 * yields every row written so far; the dictionary is kept, so
		 * the rows after it compress as well as before. Z_FULL_FLUSH
		 * would also reset the dictionary, which only helps a reader
		 * starting in the middle of a damaged file: a crash cuts the
		 * end, never the middle, and the reset costs ratio at every
		 * flush (every row in real-time runs). */
		if (gzflush(o->gz, Z_SYNC_FLUSH) != Z_OK)
			return gz_fail(o, err, errlen);
		return 0;
	}
	if (fflush(o->f) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

int bl_outfile_close(struct bl_outfile *o, char *err, size_t errlen)
{
	int rc = 0;

	if (!o)
		return 0;
	if (o->gz) {
		int zrc = gzclose(o->gz);  /* the member's trailer: CRC and length */
		if (zrc != Z_OK) {
			snprintf(err, errlen, "%s", zrc == Z_ERRNO ? strerror(errno) : "zlib error on close");
			rc = -1;
		}
	} else if (fclose(o->f) != 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		rc = -1;
	}
	free(o);
	return rc;
}
