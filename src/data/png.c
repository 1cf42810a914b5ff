/* png.c - the common PNG decoded with zlib's inflate and our own unfiltering; see png.h.
 *
 * Why not stb_image: on a 28x28 Fashion-MNIST PNG its inflate (a byte-at-a-time bit reader,
 * Huffman tables rebuilt through several passes) is most of the decode, and it allocates its
 * buffers per file; zlib's inflate with a state kept from file to file and the rows inflated
 * into one reused buffer cost less than half as much (figures in the commit). Anything this file
 * does not handle exactly as stb_image would is handed back (png_common says 0, png_decode -1),
 * so stb_image stays the judge of every odd or broken file. */
#include "data/png.h"

#include "core/common.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define PNG_MAX_SIDE (1u << 24) /* stb_image's limit on either side */
#define INFLATE_SLACK 259u      /* see inflate_rows */

void png_scratch_free(struct png_scratch *s)
{
    if (s->z) {
        inflateEnd(s->z);
        free(s->z);
    }
    free(s->raw);
    memset(s, 0, sizeof *s);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A walk over the chunks after the signature. */
struct chunks {
    const uint8_t *p;
    size_t n, i;
};

/* The next chunk, when it is there whole (header, payload, CRC): 1 with its type, payload and
 * length; 0 at the end of the bytes or a chunk cut short. */
static int chunk_next(struct chunks *it, const uint8_t **type, const uint8_t **data, size_t *len)
{
    if (it->n - it->i < 12)
        return 0;
    size_t l = be32(it->p + it->i);
    if (l > it->n - it->i - 12)
        return 0;
    *type = it->p + it->i + 4;
    *data = it->p + it->i + 8;
    *len = l;
    it->i += 12 + l;
    return 1;
}

/* IHDR's payload (13 bytes) as the common case, or 0. */
static int common_header(const uint8_t *d, size_t len, struct png_header *hd)
{
    static const int channels[7] = {1, 0, 3, 0, 2, 0, 4}; /* of colour types 0, 2, 4, 6 */
    if (len != 13)
        return 0;
    uint32_t w = be32(d), h = be32(d + 4);
    int depth = d[8], colour = d[9];
    if (w < 1 || h < 1 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE || depth != 8 || colour > 6 ||
        !channels[colour] || d[10] || d[11] || d[12])
        return 0;
    hd->w = (int)w;
    hd->h = (int)h;
    hd->n = channels[colour];
    return 1;
}

int png_common(const uint8_t *p, size_t n, struct png_header *hd)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n < 8 || memcmp(p, sig, 8))
        return 0;
    struct chunks it = {p, n, 8};
    const uint8_t *type, *data;
    size_t len;
    if (!chunk_next(&it, &type, &data, &len) || memcmp(type, "IHDR", 4) ||
        !common_header(data, len, hd))
        return 0;
    int idat = 0;
    while (chunk_next(&it, &type, &data, &len)) {
        if (!memcmp(type, "IEND", 4))
            return idat;
        if (!memcmp(type, "IDAT", 4))
            idat = 1;
        else if (!(type[0] & 0x20) || !memcmp(type, "tRNS", 4))
            return 0; /* PLTE, a second IHDR, other critical chunks, transparency: stb's */
    }
    return 0;
}

/* The zlib header (RFC 1950), the stream's first two bytes, checked as stb_image checks it:
 * deflate, no preset dictionary, the check bits right; the window size is not looked at, nor
 * (at the stream's end) the adler32, which stb_image does not check either. 0 or -1. */
static int zlib_header(const uint8_t h[2])
{
    return (h[0] * 256 + h[1]) % 31 || h[1] & 32 || (h[0] & 15) != 8 ? -1 : 0;
}

/* Inflates every IDAT payload of the file at p into raw: exactly len bytes, the deflate stream
 * ending there. raw has INFLATE_SLACK bytes beyond len: zlib's fast loop (inflate_fast) runs
 * only while 258 bytes of output space are left, so without the slack the last 258 bytes of
 * every image go through its byte-at-a-time state machine, which costs as much as the rest of a
 * 28x28 image. Extra data shows as total_out > len. z is a raw inflater: the zlib header is
 * taken off here (it may be split over IDATs). Returns 0 or -1. */
static int inflate_rows(uint8_t *raw, size_t len, const uint8_t *p, size_t n, z_stream *z)
{
    struct chunks it = {p, n, 8};
    const uint8_t *type, *data;
    uint8_t head[2];
    size_t clen, got = 0;
    int rc = Z_OK;
    z->next_out = raw;
    z->avail_out = (uInt)(len + INFLATE_SLACK);
    /* Z_FINISH: the whole output fits, so zlib keeps no window copy of it; Z_BUF_ERROR with
     * the input used up only asks for the next IDAT */
    while ((rc == Z_OK || rc == Z_BUF_ERROR) && chunk_next(&it, &type, &data, &clen)) {
        if (memcmp(type, "IDAT", 4))
            continue;
        size_t skip = 0;
        while (got < 2 && skip < clen)
            head[got++] = data[skip++];
        if (got < 2)
            continue;
        if (skip && zlib_header(head)) /* this IDAT completed the header */
            return -1;
        z->next_in = (Bytef *)(uintptr_t)(data + skip);
        z->avail_in = (uInt)(clen - skip);
        do
            rc = inflate(z, Z_FINISH);
        while (rc == Z_OK);
        if (rc == Z_BUF_ERROR && z->avail_in)
            return -1; /* the output is full: more data than the image holds */
    }
    return rc == Z_STREAM_END && z->total_out == len ? 0 : -1;
}

/* The Paeth predictor (PNG spec 9.4) of a (left), b (above), c (above left): whichever is
 * closest to a + b - c, ties to a, then b. The distances are written so that only pb and pc
 * depend on a, which the gray loop below carries from byte to byte. */
static int paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    int bc = pb <= pc ? b : c;
    int take_a = -((pa <= pb) & (pa <= pc)); /* a mask, not a branch: the choice is data */
    return bc ^ ((a ^ bc) & take_a);
}

/* Undoes the filter f of one row x of len bytes, bpp bytes per pixel, in place; up is the
 * unfiltered row above (zeros above the first). Returns -1 for a filter type beyond 4. One byte
 * per pixel (gray) keeps the left and upper-left bytes in registers: Sub, Average and Paeth
 * are then a chain from byte to byte through registers rather than through the row's memory. */
static int unfilter(uint8_t *x, const uint8_t *up, size_t len, size_t bpp, int f)
{
    size_t i;
    int a = 0, c = 0;
    switch (f) {
    case 0:
        return 0;
    case 1:
        if (bpp == 1)
            for (i = 0; i < len; i++)
                x[i] = (uint8_t)(a = (uint8_t)(x[i] + a));
        for (i = bpp; bpp > 1 && i < len; i++)
            x[i] = (uint8_t)(x[i] + x[i - bpp]);
        return 0;
    case 2:
        for (i = 0; i < len; i++)
            x[i] = (uint8_t)(x[i] + up[i]);
        return 0;
    case 3:
        if (bpp == 1)
            for (i = 0; i < len; i++)
                x[i] = (uint8_t)(a = (uint8_t)(x[i] + ((a + up[i]) >> 1)));
        for (i = 0; bpp > 1 && i < bpp; i++)
            x[i] = (uint8_t)(x[i] + (up[i] >> 1));
        for (i = bpp; bpp > 1 && i < len; i++)
            x[i] = (uint8_t)(x[i] + ((x[i - bpp] + up[i]) >> 1));
        return 0;
    case 4:
        if (bpp == 1)
            for (i = 0; i < len; i++) {
                int b = up[i];
                x[i] = (uint8_t)(a = (uint8_t)(x[i] + paeth(a, b, c)));
                c = b;
            }
        for (i = 0; bpp > 1 && i < bpp; i++)
            x[i] = (uint8_t)(x[i] + up[i]); /* paeth(0, b, 0) = b */
        for (i = bpp; bpp > 1 && i < len; i++)
            x[i] = (uint8_t)(x[i] + paeth(x[i - bpp], up[i], up[i - bpp]));
        return 0;
    default:
        return -1;
    }
}

/* Source channel of output channel k (c outputs from n inputs), as stbi__convert_format maps
 * them: >= 0 a copy of that channel, -1 alpha 255, -2 gray from colour, (77 R + 150 G + 29 B)
 * >> 8. */
static int source_of(int k, int c, int n)
{
    if ((c == 2 && k == 1) || (c == 4 && k == 3))
        return n == 2 || n == 4 ? n - 1 : -1;
    if (c <= 2)
        return n <= 2 ? 0 : -2;
    return n <= 2 ? 0 : k;
}

/* The unfiltered rows (each a filter byte, then w*n bytes) into planar dst, c channels. */
static void to_planes(uint8_t *dst, int c, const uint8_t *raw, const struct png_header *hd)
{
    size_t w = (size_t)hd->w, n = (size_t)hd->n, row = w * n + 1, plane = w * (size_t)hd->h;
    for (int k = 0; k < c; k++) {
        int src = source_of(k, c, hd->n);
        for (size_t y = 0; y < (size_t)hd->h; y++) {
            const uint8_t *s = raw + y * row + 1;
            uint8_t *d = dst + (size_t)k * plane + y * w;
            if (src == -1)
                memset(d, 255, w);
            else if (src == -2)
                for (size_t x = 0; x < w; x++)
                    d[x] = (uint8_t)((s[x * n] * 77 + s[x * n + 1] * 150 + s[x * n + 2] * 29) >> 8);
            else if (n == 1)
                memcpy(d, s, w);
            else
                for (size_t x = 0; x < w; x++)
                    d[x] = s[x * n + (size_t)src];
        }
    }
}

/* s->z ready for a new stream: created on first use, reset after. */
static z_stream *stream_ready(struct png_scratch *s)
{
    if (s->z)
        return inflateReset(s->z) == Z_OK ? s->z : NULL;
    z_stream *z = calloc(1, sizeof *z);
    if (!z || inflateInit2(z, -15) != Z_OK) { /* raw deflate, 32 KiB window: see zlib_header */
        free(z);
        return NULL;
    }
    s->z = z;
    return z;
}

int png_decode(uint8_t *dst, int c, const uint8_t *p, size_t n, const struct png_header *hd,
               struct png_scratch *s)
{
    size_t bpp = (size_t)hd->n, row = (size_t)hd->w * bpp + 1, h = (size_t)hd->h;
    if (row > (UINT32_MAX - INFLATE_SLACK) / (h + 1)) /* need below fits zlib's uInt */
        return -1;
    size_t len = row * h, need = row + len + INFLATE_SLACK; /* zeros above the first row */
    if (cn_reserve(&s->raw, &s->raw_cap, need, 0, 0))
        return -1;
    memset(s->raw, 0, row);
    uint8_t *rows = s->raw + row;
    z_stream *z = stream_ready(s);
    if (!z || inflate_rows(rows, len, p, n, z))
        return -1;
    for (size_t y = 0; y < h; y++) {
        uint8_t *x = rows + y * row;
        if (unfilter(x + 1, x + 1 - row, row - 1, bpp, x[0]))
            return -1;
    }
    to_planes(dst, c, rows, hd);
    return 0;
}
