/* idx.c - gzip member parsing (RFC 1952), inflate through stb_image's zlib, IDX arrays. See idx.h.
 *
 * Debian's stb_image 2.27 reports "bad huffman code" when fewer than 16 bits remain at the end of
 * its input, even if the last codes fit in them (fixed in 2.28); the decoder is therefore given the
 * 8 trailer bytes too, as lookahead it never decodes (it stops at the final block).
 *
 * The CRC-32 is the bytewise table method (reflected polynomial 0xEDB88320), with the table built
 * on the stack per call: 1 KiB of work, no global state.
 */
#include "data/idx.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image.h>

#include "core/fileio.h"

enum { GZ_FTEXT = 1, GZ_FHCRC = 2, GZ_FEXTRA = 4, GZ_FNAME = 8, GZ_FCOMMENT = 16 };

uint32_t gz_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Skips a zero-terminated header field starting at *pos. */
static int skip_string(const uint8_t *p, size_t n, size_t *pos)
{
    const uint8_t *z = *pos < n ? memchr(p + *pos, 0, n - *pos) : NULL;
    if (!z)
        return -1;
    *pos = (size_t)(z - p) + 1;
    return 0;
}

/* Parses the member header; *pos gets the offset of the deflate data. Leaves room for the
 * 8-byte trailer. */
static int gz_header(const uint8_t *p, size_t n, size_t *pos, const char *path, cn_error *e)
{
    if (n < 2 || p[0] != 0x1f || p[1] != 0x8b)
        return cn_fail(e, "%s: not a gzip file (no 1f 8b magic)", path);
    if (n < 18)
        return cn_fail(e, "%s: truncated gzip file (%zu bytes)", path, n);
    if (p[2] != 8)
        return cn_fail(e, "%s: gzip compression method %d, expected 8 (deflate)", path, p[2]);
    int flg = p[3];
    if (flg & 0xe0)
        return cn_fail(e, "%s: gzip header has reserved flag bits set (0x%02x)", path, flg);
    size_t at = 10;
    if (flg & GZ_FEXTRA) {
        size_t xlen = at + 2 <= n ? (size_t)p[at] | (size_t)p[at + 1] << 8 : 0;
        at += 2 + xlen;
    }
    if (at > n || ((flg & GZ_FNAME) && skip_string(p, n, &at)) ||
        ((flg & GZ_FCOMMENT) && skip_string(p, n, &at)))
        return cn_fail(e, "%s: truncated gzip header", path);
    if (flg & GZ_FHCRC) {
        if (at + 2 > n)
            return cn_fail(e, "%s: truncated gzip header", path);
        if ((gz_crc32(0, p, at) & 0xffff) != ((uint32_t)p[at] | (uint32_t)p[at + 1] << 8))
            return cn_fail(e, "%s: gzip header CRC mismatch", path);
        at += 2;
    }
    if (at + 8 > n)
        return cn_fail(e, "%s: truncated gzip file (no room for the trailer)", path);
    *pos = at;
    return 0;
}

/* Inflates the deflate data starting at p (n bytes, trailer included) into a buffer of exactly
 * isize bytes and checks the CRC. */
static int gz_inflate(const uint8_t *p, size_t n, uint32_t isize, uint32_t crc, uint8_t **out,
                      const char *path, cn_error *e)
{
    if (n > INT_MAX)
        return cn_fail(e, "%s: compressed data too large", path);
    uint8_t *buf = malloc(isize ? isize : 1);
    if (!buf)
        return cn_fail(e, "%s: out of memory for %u uncompressed bytes", path, isize);
    int got = stbi_zlib_decode_noheader_buffer((char *)buf, (int)isize, (const char *)p, (int)n);
    const char *why = NULL;
    if (got < 0)
        why = stbi_failure_reason();
    else if ((uint32_t)got != isize)
        why = "uncompressed length differs from the trailer's ISIZE";
    else if (gz_crc32(0, buf, isize) != crc)
        why = "CRC-32 mismatch";
    if (why) {
        free(buf);
        return cn_fail(e, "%s: cannot inflate (%s): truncated or corrupt gzip file?", path, why);
    }
    *out = buf;
    return 0;
}

int gz_read_file(const char *path, size_t max, uint8_t **out, size_t *len, cn_error *e)
{
    *out = NULL;
    *len = 0;
    char *file;
    size_t n, pos = 0;
    size_t max_in = max > SIZE_MAX / 2 ? SIZE_MAX - 2 : max + max / 8 + (1 << 20);
    if (fileio_read_all(path, max_in, &file, &n, e))
        return -1;
    const uint8_t *p = (const uint8_t *)file;
    int rc = gz_header(p, n, &pos, path, e);
    uint32_t crc = n >= 8 ? le32(p + n - 8) : 0, isize = n >= 8 ? le32(p + n - 4) : 0;
    if (!rc && (isize > max || isize > INT_MAX))
        rc = cn_fail(e,
                     "%s: gzip trailer claims %u uncompressed bytes, more than the %zu "
                     "allowed: truncated or corrupt gzip file?",
                     path, isize, max);
    if (!rc)
        rc = gz_inflate(p + pos, n - pos, isize, crc, out, path, e);
    free(file);
    if (!rc)
        *len = isize;
    return rc;
}

/* Checks the IDX header in a->bytes[0..len) and fills the dims. */
static int idx_parse(struct idx_array *a, size_t len, int ndim, const char *path, cn_error *e)
{
    uint32_t want = 0x0800u | (uint32_t)ndim;
    if (len < 4 || be32(a->bytes) != want)
        return cn_fail(e, "%s: IDX magic 0x%08x, expected 0x%08x (unsigned bytes, %d dimension%s)",
                       path, len < 4 ? 0u : be32(a->bytes), want, ndim, ndim == 1 ? "" : "s");
    size_t head = 4 + 4 * (size_t)ndim, count = 1;
    if (len < head)
        return cn_fail(e, "%s: IDX header cut short (%zu bytes)", path, len);
    a->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        a->dim[i] = be32(a->bytes + 4 + 4 * i);
        if (a->dim[i] == 0 || cn_mul(&count, count, a->dim[i]))
            return cn_fail(e, "%s: IDX dimension %d is %u", path, i, a->dim[i]);
    }
    if (len - head != count)
        return cn_fail(e, "%s: IDX sizes give %zu bytes of data, but the file holds %zu", path,
                       count, len - head);
    a->data = a->bytes + head;
    a->count = count;
    return 0;
}

int idx_read_gz(struct idx_array *a, const char *path, int ndim, cn_error *e)
{
    CN_ASSERT(ndim >= 1 && ndim <= IDX_MAX_DIMS);
    memset(a, 0, sizeof *a);
    size_t len;
    if (gz_read_file(path, (size_t)1 << 30, &a->bytes, &len, e))
        return -1;
    if (idx_parse(a, len, ndim, path, e)) {
        idx_free(a);
        return -1;
    }
    return 0;
}

int idx_read(struct idx_array *a, const char *path, int ndim, cn_error *e)
{
    CN_ASSERT(ndim >= 1 && ndim <= IDX_MAX_DIMS);
    memset(a, 0, sizeof *a);
    char *file;
    size_t len;
    if (fileio_read_all(path, ((size_t)1 << 30) + 64, &file, &len, e))
        return -1;
    if (len >= 2 && (uint8_t)file[0] == 0x1f && (uint8_t)file[1] == 0x8b) {
        free(file);
        return idx_read_gz(a, path, ndim, e);
    }
    a->bytes = (uint8_t *)file;
    if (idx_parse(a, len, ndim, path, e)) {
        idx_free(a);
        return -1;
    }
    return 0;
}

void idx_free(struct idx_array *a)
{
    free(a->bytes);
    memset(a, 0, sizeof *a);
}
