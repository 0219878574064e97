/* outfile.h - a file appended to, as it is or gzip-compressed: where the
 * recorder writes a cell's time series (cells/<name>.csv or .csv.gz).
 *
 * A path ending in ".gz" is written through zlib: opening appends a new
 * gzip member to what the file holds (a run's header member, the rows of
 * a resumed run), which gzip, zcat and zlib read as one stream.
 * Writes are buffered (no system call per row) in the outfile's own
 * buffer, which a writer may also fill in place (bl_outfile_room, then
 * bl_outfile_commit: a row formatted where it goes, no copy);
 * bl_outfile_flush hands everything written so far to the kernel,
 * compressed data included, so that a reader (or a crash) sees every row
 * written before the flush.
 */
#ifndef BL_OUTFILE_H
#define BL_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>

/* The compression level of every .gz batlab writes (zlib's 1..9): 1,
 * zlib's fastest. Measured on `cycletest --sim --seed 1 A B C D` (41,396
 * rows, 5.08 MB; instructions counted by callgrind): level 1 writes
 * 1.17 MB (4.4 times smaller) for 15 % more instructions than the
 * uncompressed run (6,700 a row), level 6 (zlib's default) 0.99 MB for
 * 35 % more (15,600 a row). Issue 14 is about a dry run's CPU; 18 % of a
 * file already 4 times smaller is worth less. */
#define BL_OUTFILE_GZ_LEVEL "1"

/* The buffer: a write(2) per 16 kB of a virtual run's rows (about 160);
 * a lab of 256 cells holds 256 of them (4 MB). */
#define BL_OUTFILE_BUFFER (16u * 1024u)

struct bl_outfile;

/* Open path for appending; NULL with a message in err. */
struct bl_outfile *bl_outfile_open(const char *path, char *err, size_t errlen);
/* true: path is written gzip-compressed (it ends in ".gz"). */
bool bl_outfile_is_gzip(const char *path);
/* 0, or -1 with a message in err (each: what the C library or zlib said). */
int bl_outfile_write(struct bl_outfile *o, const void *p, size_t len, char *err, size_t errlen);
/* Where to write n bytes (n <= BL_OUTFILE_BUFFER), the buffer emptied
 * first if they do not fit; NULL with a message in err when that write
 * failed. bl_outfile_commit: what was written there ends at end. */
char *bl_outfile_room(struct bl_outfile *o, size_t n, char *err, size_t errlen);
void bl_outfile_commit(struct bl_outfile *o, const char *end);
int bl_outfile_flush(struct bl_outfile *o, char *err, size_t errlen);
/* Flush, close, free (NULL ok). */
int bl_outfile_close(struct bl_outfile *o, char *err, size_t errlen);

#endif
