/* outfile.c - a file appended to, plain or through zlib (outfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "host/outfile.h"

/* zlib's input and output buffers: a few seconds of rows of a virtual
 * run between deflate calls, one write(2) per 64 KiB of output. */
#define GZ_BUFFER (64u * 1024u)

struct bl_outfile {
	int fd;         /* plain, or -1 */
	gzFile gz;      /* or compressed */
	size_t pathlen; /* zlib's messages start "PATH: " (the recorder adds its own) */
	size_t len;     /* bytes in buf not yet handed on */
	char buf[BL_OUTFILE_BUFFER];
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
	struct bl_outfile *o = malloc(sizeof *o);

	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->fd = -1;
	o->gz = NULL;
	o->len = 0;
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
		/* what fopen(path, "a") does */
		o->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	}
	if (o->fd < 0 && !o->gz) {
		snprintf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "out of memory");
		free(o);
		return NULL;
	}
	return o;
}

/* Hand what the buffer holds to the kernel or to zlib. The buffer is
 * empty afterwards, also after an error (what it held is lost). */
static int spill(struct bl_outfile *o, char *err, size_t errlen)
{
	const char *p = o->buf;
	size_t left = o->len;

	o->len = 0;
	if (left == 0)
		return 0;
	if (o->gz) {
		if (gzwrite(o->gz, p, (unsigned)left) == 0)
			return gz_fail(o, err, errlen);
		return 0;
	}
	while (left > 0) {
		ssize_t n = write(o->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s", n < 0 ? strerror(errno) : "nothing written");
			return -1;
		}
		p += n;
		left -= (size_t)n;
	}
	return 0;
}

char *bl_outfile_room(struct bl_outfile *o, size_t n, char *err, size_t errlen)
{
	if (n > sizeof o->buf) {
		snprintf(err, errlen, "%zu bytes at once: more than the buffer holds", n);
		return NULL;
	}
	if (sizeof o->buf - o->len < n && spill(o, err, errlen) != 0)
		return NULL;
	return o->buf + o->len;
}

void bl_outfile_commit(struct bl_outfile *o, const char *end)
{
	o->len = (size_t)(end - o->buf);
}

int bl_outfile_write(struct bl_outfile *o, const void *p, size_t len, char *err, size_t errlen)
{
	const char *s = p;

	while (len > 0) {
		size_t n = len < sizeof o->buf ? len : sizeof o->buf;
		char *q = bl_outfile_room(o, n, err, errlen);
		if (!q)
			return -1;
		memcpy(q, s, n);
		o->len += n;
		s += n;
		len -= n;
	}
	return 0;
}

int bl_outfile_flush(struct bl_outfile *o, char *err, size_t errlen)
{
	if (spill(o, err, errlen) != 0)
		return -1;
	/* Z_SYNC_FLUSH: the deflate block in progress is ended and padded
	 * to a byte, so inflating the file from its start yields every row
	 * written so far; the dictionary is kept, so the rows after it
	 * compress as well as before. Z_FULL_FLUSH would also reset the
	 * dictionary, which only helps a reader starting in the middle of a
	 * damaged file: a crash cuts the end, never the middle, and the
	 * reset costs ratio at every flush (every row in real-time runs). */
	if (o->gz && gzflush(o->gz, Z_SYNC_FLUSH) != Z_OK)
		return gz_fail(o, err, errlen);
	return 0;
}

int bl_outfile_close(struct bl_outfile *o, char *err, size_t errlen)
{
	int rc = 0;

	if (!o)
		return 0;
	if (spill(o, err, errlen) != 0)
		rc = -1;
	if (o->gz) {
		int zrc = gzclose(o->gz);  /* the member's trailer: CRC and length */
		if (zrc != Z_OK && rc == 0) {
			snprintf(err, errlen, "%s", zrc == Z_ERRNO ? strerror(errno) : "zlib error on close");
			rc = -1;
		}
	} else if (close(o->fd) != 0 && rc == 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		rc = -1;
	}
	free(o);
	return rc;
}
