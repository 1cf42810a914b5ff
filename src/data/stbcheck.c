/* stbcheck.c - the scans of stbcheck.h. JPEG layout (ITU T.81 B.1): SOI FFD8, then segments
 * FF <marker> <uint16 big-endian length including itself> <payload>; after SOS (FFDA) comes
 * entropy-coded data, in which FF is followed by 00 (a stuffed byte) or D0-D7 (restart markers).
 * A DHT (FFC4) payload is a list of tables: one byte class/id, 16 counts of codes per length,
 * then as many symbol bytes as the counts sum to (at most 256). Cost: one pass over the file. */
#include "data/stbcheck.h"

#include <ctype.h>
#include <string.h>

#define MAX_CODES 256
#define PNG_CHUNK_SLACK (64ul << 20) /* bytes a truncated chunk may claim past the end */

/* Checks the tables of one DHT payload of len bytes as stb reads them: a table is read whole
 * (17 bytes and its symbols) while len > 0, even past the segment's stated end. */
static int check_dht(FILE *f, long len, const char *path, cn_error *e)
{
    while (len > 0) {
        int n = 0;
        if (getc(f) == EOF)
            return 0; /* truncated: stb reports it */
        for (int i = 0; i < 16; i++) {
            int c = getc(f);
            n += c == EOF ? 0 : c;
        }
        if (n > MAX_CODES)
            return cn_fail(e, "%s: corrupt JPEG: a Huffman table declares %d codes (at most %d)",
                           path, n, MAX_CODES);
        for (int i = 0; i < n; i++)
            getc(f);
        len -= 17 + n;
    }
    return 0;
}

/* The marker walk, as stb_image resynchronises: bytes other than FF are skipped, FF fill bytes
 * too; markers 00, 01 and D0-D9 stand alone; DHT segments are checked; every other segment
 * (APPn payloads such as EXIF data included) is skipped by its length, SOS by its header's, after
 * which entropy-coded data reads as skipped bytes and stand-alone markers. A FF C4 anywhere
 * outside a skipped payload is therefore checked. */
static int walk(FILE *f, const char *path, cn_error *e)
{
    for (int c = getc(f); c != EOF; c = getc(f)) {
        if (c != 0xFF)
            continue;
        int m = getc(f);
        while (m == 0xFF)
            m = getc(f);
        if (m == EOF)
            return 0;
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD9))
            continue;
        int hi = getc(f), lo = getc(f);
        if (hi == EOF || lo == EOF)
            return 0;
        long len = (long)(hi << 8 | lo) - 2;
        if (m == 0xC4) {
            if (check_dht(f, len, path, e))
                return -1;
            continue;
        }
        for (long i = 0; i < len && getc(f) != EOF; i++)
            ;
    }
    return 0;
}

/* stb's JPEG test: FF, any FF fill bytes, then SOI (D8). */
static int is_jpeg(FILE *f)
{
    if (getc(f) != 0xFF)
        return 0;
    int c = getc(f);
    while (c == 0xFF)
        c = getc(f);
    return c == 0xD8;
}

/* PNM (P5, P6; stb reads no other): three decimal numbers after the magic (f is just past it),
 * separated by blanks and '#' comments, as stbi__pnm_info skips them. */
static int pnm_walk(FILE *f, const char *path, cn_error *e)
{
    int c = getc(f);
    for (int k = 0; k < 3; k++) {
        while (c == '#' || isspace(c)) {
            if (c == '#')
                while ((c = getc(f)) != EOF && c != '\n' && c != '\r')
                    ;
            c = getc(f);
        }
        int digits = 0;
        for (; c >= '0' && c <= '9'; c = getc(f))
            if (++digits > 9)
                return cn_fail(e, "%s: corrupt PNM header: a number of more than 9 digits", path);
        if (!digits)
            return 0; /* not a number: stb reports it */
    }
    return 0;
}

/* Every "P5" or "P6" of the file, not only at its start: stbi_info tries the formats in turn,
 * and its rewind between them only reaches back over its read buffer, so the PNM test can meet
 * a "P6" from the middle of a JPEG (found by the fuzzer). A false alarm needs "P5", blanks and
 * a ten-digit number, which no image format produces. */
static int pnm_scan(FILE *f, const char *path, cn_error *e)
{
    int prev = 0;
    for (int c = getc(f); c != EOF; prev = c, c = getc(f)) {
        if (prev != 'P' || (c != '5' && c != '6'))
            continue;
        long pos = ftell(f);
        if (pnm_walk(f, path, e))
            return -1;
        fseek(f, pos, SEEK_SET);
    }
    return 0;
}

/* stb's PNG test: the 8-byte signature. */
static int is_png(FILE *f)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    for (int i = 0; i < 8; i++)
        if (getc(f) != sig[i])
            return 0;
    return 1;
}

/* PNG chunks (f just past the signature): uint32 big-endian length, 4-byte type, payload, CRC.
 * stb grows its IDAT buffer to a chunk's declared length before reading it, so a chunk that
 * claims more bytes than the file has left would make it allocate up to 4 GB (found by the
 * fuzzer); such a chunk is rejected here when the claim also passes PNG_CHUNK_SLACK. A file cut
 * short inside a modest chunk passes, so that it fails later, at decoding, as truncated. */
static int png_walk(FILE *f, long size, const char *path, cn_error *e)
{
    for (;;) {
        unsigned char h[8];
        if (fread(h, 1, sizeof h, f) != sizeof h)
            return 0; /* truncated: stb reports it */
        unsigned long len = (unsigned long)h[0] << 24 | (unsigned long)h[1] << 16 |
                            (unsigned long)h[2] << 8 | h[3];
        long left = size - ftell(f);
        if (len > (unsigned long)left && len > PNG_CHUNK_SLACK)
            return cn_fail(e, "%s: corrupt PNG: a %.4s chunk declares %lu bytes, %ld remain", path,
                           (const char *)(h + 4), len, left);
        if (!memcmp(h + 4, "IEND", 4) || fseek(f, (long)len + 4, SEEK_CUR))
            return 0;
    }
}

int stb_check(FILE *f, const char *path, cn_error *e)
{
    long start = ftell(f);
    int rc = 0;
    if (is_png(f)) {
        long here = ftell(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, here, SEEK_SET);
        rc = png_walk(f, size, path, e);
    }
    fseek(f, start, SEEK_SET);
    if (!rc)
        rc = is_jpeg(f) ? walk(f, path, e) : 0;
    fseek(f, start, SEEK_SET);
    if (!rc)
        rc = pnm_scan(f, path, e);
    fseek(f, start, SEEK_SET);
    return rc;
}
