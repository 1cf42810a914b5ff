/* stbcheck.c - the scans of stbcheck.h, over a file's bytes in memory. JPEG layout (ITU T.81
 * B.1): SOI FFD8, then segments FF <marker> <uint16 big-endian length including itself>
 * <payload>; after SOS (FFDA) comes entropy-coded data, in which FF is followed by 00 (a stuffed
 * byte) or D0-D7 (restart markers). A DHT (FFC4) payload is a list of tables: one byte class/id,
 * 16 counts of codes per length, then as many symbol bytes as the counts sum to (at most 256).
 * A scan (SOS) may only use Huffman tables that a DHT before it defined.
 * The scans read through a cursor whose get() returns EOF past the end, as getc() on the file
 * did, so they walk exactly as stb's stream readers would. Cost: one pass over the bytes. */
#include "data/stbcheck.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MAX_CODES 256
#define PNG_CHUNK_SLACK (64ul << 20) /* bytes a truncated chunk may claim past the end */

struct cursor {
    const uint8_t *p;
    size_t n, i;
};

static int get(struct cursor *c)
{
    return c->i < c->n ? c->p[c->i++] : (c->i = c->n, EOF);
}

/* Moves len bytes on (clamped to the end, where every get() is EOF). */
static void skip(struct cursor *c, unsigned long len)
{
    c->i = len < c->n - c->i ? c->i + len : c->n;
}

/* What the walk has seen of the frame: the Huffman tables defined so far (bit 4*class + id) and
 * whether the frame is progressive (SOF2). stb_image 2.27 mallocs its decoder state without
 * clearing it, so a scan that names a table no DHT defined decodes with whatever the heap held:
 * an out-of-bounds read in stbi__jpeg_huff_decode (found by the fuzzer; stb 2.28 bounds the
 * index). The walk rejects such scans. */
struct frame {
    unsigned tables;
    int progressive;
};

/* Checks the tables of one DHT payload of len bytes as stb reads them: a table is read whole
 * (17 bytes and its symbols) while len > 0, even past the segment's stated end. */
static int check_dht(struct cursor *f, long len, struct frame *fr, const char *path, cn_error *e)
{
    while (len > 0) {
        int n = 0, q = get(f);
        if (q == EOF)
            return 0; /* truncated: stb reports it */
        for (int i = 0; i < 16; i++) {
            int c = get(f);
            n += c == EOF ? 0 : c;
        }
        if (n > MAX_CODES)
            return cn_fail(e, "%s: corrupt JPEG: a Huffman table declares %d codes (at most %d)",
                           path, n, MAX_CODES);
        if (q >> 4 <= 1 && (q & 15) <= 3)
            fr->tables |= 1u << ((q >> 4) * 4 + (q & 15));
        skip(f, (unsigned long)n);
        len -= 17 + n;
    }
    return 0;
}

/* Whether a scan of header h (after the length: Ns, Ns pairs of component and Td<<4|Ta, Ss, Se,
 * Ah<<4|Al) uses table id of class cls (0 DC, 1 AC): a baseline scan decodes with both, a
 * progressive first DC scan (Ss 0, Ah 0) with the DC table, a DC refinement with none, an AC
 * scan (Ss > 0) with the AC table, as stbi__decode_block(_prog_dc/_ac) do. */
static int scan_uses(const uint8_t *h, int ns, int progressive, int cls)
{
    int ss = h[1 + 2 * ns], ah = h[3 + 2 * ns] >> 4;
    if (!progressive)
        return 1;
    return cls == 0 ? ss == 0 && ah == 0 : ss > 0;
}

/* A SOS header of len bytes at the cursor (left in place); headers stb rejects itself (Ns not
 * 1-4, a length that disagrees, table ids above 3) pass, for stb to report. */
static int check_sos(const struct cursor *f, long len, const struct frame *fr, const char *path,
                     cn_error *e)
{
    const uint8_t *h = f->p + f->i;
    if (len < 1 || (size_t)len > f->n - f->i)
        return 0;
    int ns = h[0];
    if (ns < 1 || ns > 4 || len != 4 + 2 * ns)
        return 0;
    for (int k = 0; k < ns; k++)
        for (int cls = 0; cls < 2; cls++) {
            int id = cls ? h[2 + 2 * k] & 15 : h[2 + 2 * k] >> 4;
            if (id > 3 || !scan_uses(h, ns, fr->progressive, cls) ||
                fr->tables >> (cls * 4 + id) & 1)
                continue;
            return cn_fail(e, "%s: corrupt JPEG: a scan uses %s Huffman table %d, which no DHT "
                              "segment before it defines", path, cls ? "AC" : "DC", id);
        }
    return 0;
}

/* The marker walk, as stb_image resynchronises: bytes other than FF are skipped, FF fill bytes
 * too; markers 00, 01 and D0-D9 stand alone; DHT segments are checked; every other segment
 * (APPn payloads such as EXIF data included) is skipped by its length, SOS by its header's, after
 * which entropy-coded data reads as skipped bytes and stand-alone markers. A FF C4 anywhere
 * outside a skipped payload is therefore checked. */
static int walk(struct cursor *f, const char *path, cn_error *e)
{
    struct frame fr = {0, 0};
    for (int c = get(f); c != EOF; c = get(f)) {
        if (c != 0xFF)
            continue;
        int m = get(f);
        while (m == 0xFF)
            m = get(f);
        if (m == EOF)
            return 0;
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD9))
            continue;
        int hi = get(f), lo = get(f);
        if (hi == EOF || lo == EOF)
            return 0;
        long len = (long)(hi << 8 | lo) - 2;
        if (m == 0xC4) {
            if (check_dht(f, len, &fr, path, e))
                return -1;
            continue;
        }
        if (m >= 0xC0 && m <= 0xC2)
            fr.progressive = m == 0xC2;
        if (m == 0xDA && check_sos(f, len, &fr, path, e))
            return -1;
        if (len > 0)
            skip(f, (unsigned long)len);
    }
    return 0;
}

/* stb's JPEG test: FF, any FF fill bytes, then SOI (D8). */
static int is_jpeg(struct cursor *f)
{
    if (get(f) != 0xFF)
        return 0;
    int c = get(f);
    while (c == 0xFF)
        c = get(f);
    return c == 0xD8;
}

/* PNM (P5, P6; stb reads no other): three decimal numbers after the magic (f is just past it),
 * separated by blanks and '#' comments, as stbi__pnm_info skips them. */
static int pnm_walk(struct cursor *f, const char *path, cn_error *e)
{
    int c = get(f);
    for (int k = 0; k < 3; k++) {
        while (c == '#' || isspace(c)) {
            if (c == '#')
                while ((c = get(f)) != EOF && c != '\n' && c != '\r')
                    ;
            c = get(f);
        }
        int digits = 0;
        for (; c >= '0' && c <= '9'; c = get(f))
            if (++digits > 9)
                return cn_fail(e, "%s: corrupt PNM header: a number of more than 9 digits", path);
        if (!digits)
            return 0; /* not a number: stb reports it */
    }
    return 0;
}

/* Every "P5" or "P6" of the file, not only at its start: stbi_info tries the formats in turn,
 * and its rewind between them only reaches back over its read buffer when it reads a file, so
 * the PNM test can meet a "P6" from the middle of a JPEG (found by the fuzzer; kept although
 * stb now reads from memory, where rewinds are exact). A false alarm needs "P5", blanks and a
 * ten-digit number, which no image format produces. */
static int pnm_scan(struct cursor *f, const char *path, cn_error *e)
{
    for (;;) {
        const uint8_t *p = memchr(f->p + f->i, 'P', f->n - f->i);
        if (!p || (size_t)(p - f->p) + 1 >= f->n)
            return 0;
        f->i = (size_t)(p - f->p) + 1;
        if (f->p[f->i] != '5' && f->p[f->i] != '6')
            continue;
        size_t pos = ++f->i;
        if (pnm_walk(f, path, e))
            return -1;
        f->i = pos;
    }
}

/* stb's PNG test: the 8-byte signature. */
static int is_png(struct cursor *f)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    for (int i = 0; i < 8; i++)
        if (get(f) != sig[i])
            return 0;
    return 1;
}

/* PNG chunks (f just past the signature): uint32 big-endian length, 4-byte type, payload, CRC.
 * stb grows its IDAT buffer to a chunk's declared length before reading it, so a chunk that
 * claims more bytes than the file has left would make it allocate up to 4 GB (found by the
 * fuzzer); such a chunk is rejected here when the claim also passes PNG_CHUNK_SLACK. A file cut
 * short inside a modest chunk passes, so that it fails later, at decoding, as truncated. */
static int png_walk(struct cursor *f, const char *path, cn_error *e)
{
    for (;;) {
        if (f->n - f->i < 8)
            return 0; /* truncated: stb reports it */
        const uint8_t *h = f->p + f->i;
        f->i += 8;
        unsigned long len = (unsigned long)h[0] << 24 | (unsigned long)h[1] << 16 |
                            (unsigned long)h[2] << 8 | h[3];
        size_t left = f->n - f->i;
        if (len > left && len > PNG_CHUNK_SLACK)
            return cn_fail(e, "%s: corrupt PNG: a %.4s chunk declares %lu bytes, %zu remain", path,
                           (const char *)(h + 4), len, left);
        if (!memcmp(h + 4, "IEND", 4))
            return 0;
        skip(f, len + 4);
    }
}

int stb_check(const uint8_t *p, size_t n, const char *path, cn_error *e)
{
    struct cursor f = {p, n, 0};
    if (is_png(&f) && png_walk(&f, path, e))
        return -1;
    f.i = 0;
    if (is_jpeg(&f) && walk(&f, path, e))
        return -1;
    f.i = 0;
    return pnm_scan(&f, path, e);
}
