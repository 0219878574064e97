/* outfile.h - a file appended to, as it is or gzip-compressed: where the
 * recorder writes a cell's time series (cells/<name>.csv or .csv.gz).
 *
 * A path ending in ".gz" is written through zlib: opening appends a new
 * gzip member to what the file holds (a run's header member, the rows of
 * a resumed run), which gzip, zcat and zlib read as one stream.
 * Writes are buffered (no system call per row); bl_outfile_flush hands
 * everything written so far to the kernel, compressed data included, so
 * that a reader (or a crash) sees every row written before the flush.
 */
#ifndef BL_OUTFILE_H
#define BL_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>

struct bl_outfile;

/* Open path for appending; NULL with a message in err. */
struct bl_outfile *bl_outfile_open(const char *path, char *err, size_t errlen);
/* true: path is written gzip-compressed (it ends in ".gz"). */
bool bl_outfile_is_gzip(const char *path);
/* 0, or -1 with a message in err (each: what the C library or zlib said). */
int bl_outfile_write(struct bl_outfile *o, const void *p, size_t len, char *err, size_t errlen);
int bl_outfile_flush(struct bl_outfile *o, char *err, size_t errlen);
/* Flush, close, free (NULL ok). */
int bl_outfile_close(struct bl_outfile *o, char *err, size_t errlen);

#endif
