/* fileio.h - checked file I/O: atomic replacement of a file, whole-file reads with a size cap, and
 * an early check that a directory will accept files, and joining a directory and a name.
 *
 * Every failure returns -1 with one line in the cn_error naming the path and strerror(errno);
 * nothing prints. POSIX only (open, fsync, rename).
 */
#ifndef CN_FILEIO_H
#define CN_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* One piece of a file being written: len bytes at data. */
struct fileio_chunk {
    const void *data;
    size_t len;
};

/* Replaces path with the concatenation of the chunks, atomically: the bytes go to
 * "<path>.tmp.<pid>" in the same directory (fwrite checked, fflush, fsync, fclose checked), which
 * is then renamed over path, and the directory is fsync'd. On any failure before the rename the
 * temporary file is removed and path is left as it was. Returns 0 or -1. */
int fileio_write_atomic(const char *path, const struct fileio_chunk *chunks, int nchunks,
                        cn_error *e);

/* Reads the whole file into a malloc'd buffer with a NUL after the last byte (*len excludes it).
 * Fails, leaving *out NULL, when the file holds more than max bytes or cannot be read. */
int fileio_read_all(const char *path, size_t max, char **out, size_t *len, cn_error *e);

/* out = dir + "/" + name (no second slash when dir ends in one), at most cap bytes with the NUL;
 * fails, naming dir, when it does not fit. */
int fileio_join(char *out, size_t cap, const char *dir, const char *name, cn_error *e);

/* Size in bytes of the regular file at path; fails for directories and missing files. */
int fileio_size(const char *path, uint64_t *size, cn_error *e);

/* Checks that files can be written in dir: it exists or can be created (with its missing
 * parents, like mkdir -p), it is a directory, and a probe file can be created and removed there.
 * Meant for the start of a long job, so a bad backup directory fails in the first second. */
int fileio_check_dir_writable(const char *dir, cn_error *e);

#endif
