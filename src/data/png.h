/* png.h - the common PNG decoded without stb_image: 8-bit gray, gray+alpha, RGB or RGBA, not
 * interlaced, with no palette or transparency chunk (what `net prepare` writes and most datasets
 * ship). Everything else, and every file this path has a doubt about, is left to stb_image
 * (image.c), so that errors and odd files keep stb's behaviour.
 *
 * Layout (PNG spec, ISO/IEC 15948): the 8-byte signature, then chunks of a uint32 big-endian
 * length, a 4-byte type, the payload and a CRC. IHDR first (width, height, bit depth, colour
 * type, compression, filter, interlace); the IDAT payloads, concatenated, are one zlib stream of
 * h rows, each a filter-type byte and w*n bytes (n channels); IEND last. Decoding: inflate (zlib
 * as a raw inflater, the zlib header checked as stb_image checks it), then unfilter each row
 * (spec section 9: None, Sub, Up, Average, Paeth on bytes, the row above the first being
 * zeros), then the channel conversion of stb_image (image.h) into planar CHW. Neither the CRCs
 * nor the stream's adler32 are checked: stb_image checks neither, and a file it decodes must
 * decode the same here. The pixels equal stb_image's, bit for bit (test_image.c compares the
 * two). */
#ifndef CN_DATA_PNG_H
#define CN_DATA_PNG_H

#include <stddef.h>
#include <stdint.h>

/* Scratch one thread keeps from file to file: the inflated rows and zlib's state (allocated on
 * first use). Zero-initialise it; png_scratch_free releases it. */
struct png_scratch {
    uint8_t *raw;
    size_t raw_cap;
    void *z; /* a z_stream, inflateInit'ed once and reset per file */
};
void png_scratch_free(struct png_scratch *s);

/* What png_common reads from the header: w x h pixels of n channels (1..4). */
struct png_header {
    int w, h, n;
};

/* 1 when the n bytes at p are a PNG of the common case above, whose chunks are all there, in an
 * order stb_image accepts, up to IEND (the chunks are walked, not inflated); *hd gets its
 * header. 0: another kind of file, or one for stb_image to judge. */
int png_common(const uint8_t *p, size_t n, struct png_header *hd);

/* Decodes the common-case PNG at p (png_common said 1 and gave hd) into dst: w*h*c bytes, planar
 * CHW, converted to c channels (1..4) as stb_image converts them. Returns 0, or -1 when anything
 * is amiss (corrupt data, extra or missing pixels, no memory): the caller then asks stb_image,
 * whose answer (pixels or its error) is the file's. */
int png_decode(uint8_t *dst, int c, const uint8_t *p, size_t n, const struct png_header *hd,
               struct png_scratch *s);

#endif
