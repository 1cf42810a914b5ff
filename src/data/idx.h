/* idx.h - gzip files (RFC 1952) and the IDX arrays of MNIST-style datasets inside them.
 *
 * gzip: one member; the header's optional fields (FEXTRA, FNAME, FCOMMENT, FHCRC) are parsed and
 * skipped, the deflate stream is inflated by stb_image's zlib decoder into a buffer of exactly the
 * trailer's ISIZE bytes, and both ISIZE and the CRC-32 are verified, so a truncated or corrupt
 * file is an error rather than short data.
 * IDX (http://yann.lecun.com/exdb/mnist/): a big-endian magic 0x0000TTDD (TT = 0x08, unsigned
 * bytes, the only type read here; DD = number of dimensions), DD big-endian uint32 sizes, then
 * the data, row-major. The data must be exactly as long as the sizes say.
 */
#ifndef CN_DATA_IDX_H
#define CN_DATA_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

/* Reads and inflates the gzip file at path, whose uncompressed size must be at most max bytes.
 * *out is malloc'd (free it), *len its length. Returns 0, or -1 with "path: problem". */
int gz_read_file(const char *path, size_t max, uint8_t **out, size_t *len, cn_error *e);

/* CRC-32 (ISO 3309, as gzip and PNG use) of n bytes, continuing from crc (0 to start). */
uint32_t gz_crc32(uint32_t crc, const uint8_t *p, size_t n);

#define IDX_MAX_DIMS 4

struct idx_array {
    uint8_t *bytes;      /* the whole inflated file (owns the memory) */
    const uint8_t *data; /* the array: count bytes inside bytes */
    int ndim;
    uint32_t dim[IDX_MAX_DIMS];
    size_t count; /* product of the dims */
};

/* Reads a gzipped IDX file of unsigned bytes with exactly ndim dimensions (magic 0x0800 | ndim).
 * Returns 0, or -1 with "path: problem" (wrong magic, zero size, length mismatch...). */
int idx_read_gz(struct idx_array *a, const char *path, int ndim, cn_error *e);

/* idx_read_gz for a gzipped file (first bytes 1f 8b), else the same checks on the raw file. */
int idx_read(struct idx_array *a, const char *path, int ndim, cn_error *e);

/* Frees a's memory and zeroes it. */
void idx_free(struct idx_array *a);

#endif
