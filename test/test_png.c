/* test_png.c - the common-PNG decoder (png.h) against stb_image, pixel for pixel: synthetic
 * images of 1-4 channels, odd widths and heights (1, 2, 3, 7, 13, 33...), each of the five
 * filter types forced and stb_image_write's own choice, loaded as 1-4 channels; IDAT split into
 * several chunks and ancillary chunks kept; the Fashion-MNIST test set (Debian's IDX file,
 * written as `net prepare` writes it); then broken files (cut anywhere, bytes flipped anywhere,
 * a wrong adler32, a bad filter byte, extra pixel data), each of which must give through
 * image_decode_into exactly stb_image's answer: its pixels, or an error; the file reading
 * (buffer growth, the kept directory, error messages). Files png.h leaves to
 * stb_image (palette, transparency, 16-bit, interlaced) must be refused by png_common. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <stb_image.h>
#include <stb_image_write.h>

#include "data/idx.h"
#include "data/image.h"
#include "data/png.h"
#include "data/stbcheck.h"

#define FASHION_T10K "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

/* stb_image's pixels for the n bytes at p as c channels, planar CHW (malloc'd), or NULL when it
 * cannot decode them. */
static uint8_t *stb_chw(const uint8_t *p, size_t n, int c, int *w, int *h)
{
    int nc;
    uint8_t *px = stbi_load_from_memory(p, (int)n, w, h, &nc, c);
    if (!px)
        return NULL;
    size_t pixels = (size_t)*w * (size_t)*h;
    uint8_t *chw = malloc(pixels * (size_t)c);
    assert_non_null(chw);
    for (int k = 0; k < c; k++)
        for (size_t i = 0; i < pixels; i++)
            chw[(size_t)k * pixels + i] = px[i * (size_t)c + (size_t)k];
    stbi_image_free(px);
    return chw;
}

/* png_common accepts the PNG at p, and png_decode gives stb_image's pixels for c = 1..4. */
static void fast_equals_stb(const uint8_t *p, size_t n, const char *what)
{
    struct png_header hd;
    struct png_scratch s = {0};
    if (!png_common(p, n, &hd))
        fail_msg("%s: png_common refuses it", what);
    for (int c = 1; c <= 4; c++) {
        int w, h;
        uint8_t *want = stb_chw(p, n, c, &w, &h);
        assert_non_null(want);
        assert_int_equal(hd.w, w);
        assert_int_equal(hd.h, h);
        size_t len = (size_t)w * (size_t)h * (size_t)c;
        uint8_t *got = malloc(len);
        if (png_decode(got, c, p, n, &hd, &s))
            fail_msg("%s as %d channels: png_decode failed", what, c);
        for (size_t i = 0; i < len; i++)
            if (got[i] != want[i])
                fail_msg("%s as %d channels: byte %zu is %d, stb_image says %d", what, c, i,
                         got[i], want[i]);
        free(got);
        free(want);
    }
    png_scratch_free(&s);
}

/* Pixels that make every filter matter: gradients, edges and noise, per channel. */
static void pattern(uint8_t *px, int w, int h, int comp, uint32_t seed)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < comp; k++) {
                seed = seed * 1103515245u + 12345u;
                int v = (x * 9 + y * 5 + k * 60) & 255;
                if ((x / 3 + y / 2 + k) % 4 == 0)
                    v = (int)(seed >> 16) & 255;
                px[((size_t)y * (size_t)w + (size_t)x) * (size_t)comp + (size_t)k] = (uint8_t)v;
            }
}

/* A PNG in memory (stbi_write_png_to_func appends to it). */
struct mem {
    uint8_t *p;
    int n;
};

static void append(void *ctx, void *data, int size)
{
    struct mem *m = ctx;
    m->p = realloc(m->p, (size_t)m->n + (size_t)size);
    assert_non_null(m->p);
    memcpy(m->p + m->n, data, (size_t)size);
    m->n += size;
}

/* px (w x h, comp channels interleaved) as a PNG written by stb_image_write with the given
 * filter (-1: its own choice per row, as `net prepare` writes); *len gets its length. */
static uint8_t *encode(const uint8_t *px, int w, int h, int comp, int filter, int *len)
{
    struct mem m = {NULL, 0};
    stbi_write_force_png_filter = filter;
    int ok = stbi_write_png_to_func(append, &m, w, h, comp, px, w * comp);
    stbi_write_force_png_filter = -1;
    assert_true(ok);
    *len = m.n;
    return m.p;
}

static void test_synthetic(void **state)
{
    (void)state;
    static const int sides[][2] = {{1, 1}, {2, 1}, {1, 5}, {3, 2}, {7, 3}, {13, 7}, {33, 5},
                                   {28, 28}, {64, 9}};
    uint8_t px[64 * 28 * 4];
    char what[96];
    for (size_t s = 0; s < sizeof sides / sizeof *sides; s++)
        for (int comp = 1; comp <= 4; comp++)
            for (int filter = -1; filter <= 4; filter++) {
                int w = sides[s][0], h = sides[s][1], len;
                pattern(px, w, h, comp, (uint32_t)(s * 40 + (size_t)comp));
                uint8_t *png = encode(px, w, h, comp, filter, &len);
                snprintf(what, sizeof what, "%dx%dx%d, filter %d", w, h, comp, filter);
                fast_equals_stb(png, (size_t)len, what);
                free(png);
            }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* Appends a chunk (CRC included) at out + *n. */
static void chunk(uint8_t *out, size_t *n, const char *type, const uint8_t *data, uint32_t len)
{
    put_be32(out + *n, len);
    memcpy(out + *n + 4, type, 4);
    if (len)
        memcpy(out + *n + 8, data, len);
    put_be32(out + *n + 8 + len, gz_crc32(0, out + *n + 4, len + 4));
    *n += 12 + len;
}

/* The PNG at p (one IDAT, as stb_image_write writes it) rewritten with a tEXt chunk after IHDR
 * and its IDAT payload split into pieces of at most `piece` bytes, with a zero-length IDAT and
 * another ancillary chunk between two of them. */
static size_t resplit(uint8_t *out, const uint8_t *p, uint32_t piece)
{
    size_t at = 8, len = 8;
    memcpy(out, p, 8);
    chunk(out, &len, "IHDR", p + 16, 13);
    chunk(out, &len, "tEXt", (const uint8_t *)"Comment\0hello", 13);
    at = 8 + 12 + 13;
    assert_memory_equal(p + at + 4, "IDAT", 4);
    uint32_t zlen = be32(p + at);
    const uint8_t *z = p + at + 8;
    for (uint32_t i = 0; i < zlen; i += piece) {
        chunk(out, &len, "IDAT", z + i, zlen - i < piece ? zlen - i : piece);
        if (i == 0) {
            chunk(out, &len, "IDAT", NULL, 0);
            chunk(out, &len, "zzZz", (const uint8_t *)"x", 1);
        }
    }
    chunk(out, &len, "IEND", NULL, 0);
    return len;
}

static void test_chunks(void **state)
{
    (void)state;
    static uint8_t out[32768];
    uint8_t px[33 * 7 * 3];
    int len;
    pattern(px, 33, 7, 3, 7);
    uint8_t *png = encode(px, 33, 7, 3, -1, &len);
    assert_true(13 * len + 100 < (int)sizeof out); /* pieces of 1 byte: 13 bytes each */
    for (uint32_t piece = 1; piece <= 64; piece *= 4) {
        size_t n = resplit(out, png, piece);
        fast_equals_stb(out, n, "split IDAT");
    }
    free(png);
}

/* The Fashion-MNIST test images as `net prepare` writes them (stbi_write_png, 28x28 gray). */
static void test_fashion(void **state)
{
    (void)state;
    if (access(FASHION_T10K, R_OK)) {
        printf("skipped: %s (Debian package dataset-fashion-mnist) is absent\n", FASHION_T10K);
        return;
    }
    struct idx_array a;
    cn_error e;
    if (idx_read(&a, FASHION_T10K, 3, &e))
        fail_msg("%s", e.msg);
    struct png_scratch s = {0};
    uint8_t got[28 * 28];
    char what[64];
    for (uint32_t i = 0; i < a.dim[0]; i++) {
        int len, w, h;
        const uint8_t *img = a.data + (size_t)i * 28 * 28;
        uint8_t *png = encode(img, 28, 28, 1, -1, &len);
        struct png_header hd;
        snprintf(what, sizeof what, "Fashion-MNIST test image %u", i);
        if (!png_common(png, (size_t)len, &hd) ||
            png_decode(got, 1, png, (size_t)len, &hd, &s))
            fail_msg("%s: not decoded", what);
        uint8_t *want = stb_chw(png, (size_t)len, 1, &w, &h);
        if (!want || memcmp(got, want, sizeof got) || memcmp(got, img, sizeof got))
            fail_msg("%s: pixels differ", what);
        free(want);
        free(png);
    }
    png_scratch_free(&s);
    idx_free(&a);
}

/* The n bytes at p as a file decoded by image_decode_into, as c channels, give the answer of
 * stb_image behind stbcheck.h's scans (the decoding before png.h): the same pixels, or an
 * error that names the file. */
static void same_answer(const uint8_t *p, size_t n, const char *path, struct image_scratch *s)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    for (int c = 1; c <= 4; c += 2) {
        int w, h, gw, gh;
        cn_error e = {{0}};
        uint8_t *want = stb_check(p, n, path, &e) ? NULL : stb_chw(p, n, c, &w, &h);
        const uint8_t *got;
        int rc = image_decode_into(&got, &gw, &gh, path, c, s, &e);
        if (!want) {
            if (!rc)
                fail_msg("%s: decoded, but stb_image fails (%s)", path, stbi_failure_reason());
            if (!strstr(e.msg, path))
                fail_msg("%s: the error '%s' does not name the file", path, e.msg);
            continue;
        }
        if (rc)
            fail_msg("%s: %s, but stb_image decodes it", path, e.msg);
        assert_int_equal(gw, w);
        assert_int_equal(gh, h);
        if (memcmp(got, want, (size_t)w * (size_t)h * (size_t)c))
            fail_msg("%s as %d channels: pixels differ from stb_image's", path, c);
        free(want);
    }
}

/* Offset of the first IDAT payload byte and its length in a stb_image_write PNG. */
static size_t idat_at(const uint8_t *p, uint32_t *len)
{
    *len = be32(p + 33);
    assert_memory_equal(p + 37, "IDAT", 4);
    return 41;
}

static void test_broken(void **state)
{
    (void)state;
    char dir[] = "/tmp/cfgnet_png_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.png", dir);
    struct image_scratch s = {0};
    uint8_t px[13 * 9 * 3], bad[4096];
    int len;
    pattern(px, 13, 9, 3, 3);
    uint8_t *png = encode(px, 13, 9, 3, -1, &len);
    size_t n = (size_t)len;
    same_answer(png, n, path, &s);
    for (size_t cut = 0; cut < n; cut++) /* cut anywhere */
        same_answer(png, cut, path, &s);
    uint32_t zlen;
    size_t z = idat_at(png, &zlen);
    for (size_t i = 8; i < n; i++) { /* one byte flipped anywhere: header, chunks, stream */
        memcpy(bad, png, n);
        bad[i] ^= (uint8_t)(i % 7 == 0 ? 0x80 : 0x15);
        same_answer(bad, n, path, &s);
    }
    memcpy(bad, png, n); /* a wrong adler32: stb_image decodes it, and so does png_decode */
    bad[z + zlen - 1] ^= 1;
    same_answer(bad, n, path, &s);
    fast_equals_stb(bad, n, "a wrong adler32");
    /* a filter byte of 5 (stored block so that the byte is plain): every row */
    uint8_t raw[5 * (1 + 5)], zs[64], file[256];
    memset(raw, 9, sizeof raw);
    for (int f = 0; f <= 6; f++) {
        raw[2 * 6] = (uint8_t)f;
        uint32_t a = 1, b = 0;
        for (size_t i = 0; i < sizeof raw; i++) {
            a = (a + raw[i]) % 65521;
            b = (b + a) % 65521;
        }
        size_t zn = 0;
        zs[zn++] = 0x78, zs[zn++] = 0x01, zs[zn++] = 0x01;
        zs[zn++] = sizeof raw, zs[zn++] = 0, zs[zn++] = (uint8_t)~sizeof raw, zs[zn++] = 0xFF;
        memcpy(zs + zn, raw, sizeof raw);
        zn += sizeof raw;
        put_be32(zs + zn, b << 16 | a);
        zn += 4;
        uint8_t ihdr[13] = {0, 0, 0, 5, 0, 0, 0, 5, 8, 0, 0, 0, 0};
        size_t fn = 8;
        memcpy(file, "\x89PNG\r\n\x1a\n", 8);
        chunk(file, &fn, "IHDR", ihdr, 13);
        chunk(file, &fn, "IDAT", zs, (uint32_t)zn);
        chunk(file, &fn, "IEND", NULL, 0);
        same_answer(file, fn, path, &s);
        /* one row more than the image has: stb_image takes the first rows */
        ihdr[7] = 4;
        fn = 8;
        chunk(file, &fn, "IHDR", ihdr, 13);
        chunk(file, &fn, "IDAT", zs, (uint32_t)zn);
        chunk(file, &fn, "IEND", NULL, 0);
        same_answer(file, fn, path, &s);
    }
    image_scratch_free(&s);
    free(png);
    unlink(path);
    rmdir(dir);
}

/* image_decode_into's file reading (one scratch throughout): a file larger than the buffer
 * grows it, files of another directory switch the kept directory, and the errors name the file
 * as before (missing, a directory). */
static void test_reading(void **state)
{
    (void)state;
    char dir[] = "/tmp/cfgnet_png_XXXXXX", sub[64], path[96];
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    static uint8_t big[200 * 150 * 3];
    pattern(big, 200, 150, 3, 11);
    struct image_scratch s = {0};
    const char *where[] = {dir, sub, dir};
    for (int round = 0; round < 3; round++)
        for (int size = 0; size < 2; size++) {
            int w = size ? 200 : 5, h = size ? 150 : 3, len;
            uint8_t *png = encode(big, w, h, 3, -1, &len);
            snprintf(path, sizeof path, "%s/%d.png", where[round], size);
            same_answer(png, (size_t)len, path, &s);
            assert_true(size == 0 || len > 4096);
            free(png);
        }
    const uint8_t *px;
    int w, h;
    cn_error e;
    snprintf(path, sizeof path, "%s/none.png", sub);
    assert_int_equal(image_decode_into(&px, &w, &h, path, 1, &s, &e), -1);
    assert_non_null(strstr(e.msg, "none.png: cannot open: No such file or directory"));
    assert_int_equal(image_decode_into(&px, &w, &h, sub, 1, &s, &e), -1);
    assert_non_null(strstr(e.msg, "sub: not a regular file"));
    image_scratch_free(&s);
    for (int k = 0; k < 2; k++) /* where[2] is where[0] */
        for (int size = 0; size < 2; size++) {
            snprintf(path, sizeof path, "%s/%d.png", where[k], size);
            assert_int_equal(unlink(path), 0);
        }
    rmdir(sub);
    rmdir(dir);
}

/* What png.h leaves to stb_image. */
static void test_refused(void **state)
{
    (void)state;
    uint8_t px[7 * 3 * 3], file[1024];
    int len;
    pattern(px, 7, 3, 3, 1);
    uint8_t *png = encode(px, 7, 3, 3, -1, &len);
    struct png_header hd;
    assert_int_equal(png_common(png, (size_t)len, &hd), 1);
    assert_int_equal(hd.n, 3);
    static const struct {
        int at, value;
    } ihdr_edits[] = {{24, 16}, {24, 4}, {25, 3}, {25, 1}, {26, 1}, {27, 1}, {28, 1}};
    for (size_t i = 0; i < sizeof ihdr_edits / sizeof *ihdr_edits; i++) {
        memcpy(file, png, (size_t)len);
        file[ihdr_edits[i].at] = (uint8_t)ihdr_edits[i].value; /* depth, colour, methods */
        assert_int_equal(png_common(file, (size_t)len, &hd), 0);
    }
    static const char *const types[] = {"PLTE", "tRNS", "CgBI", "IHDR", "ABCD"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        size_t n = 33;
        memcpy(file, png, n);
        chunk(file, &n, types[i], (const uint8_t *)"\0\0\0\0\0\0", 6);
        memcpy(file + n, png + 33, (size_t)len - 33);
        assert_int_equal(png_common(file, n + (size_t)len - 33, &hd), 0);
    }
    assert_int_equal(png_common(png, (size_t)len - 1, &hd), 0); /* IEND cut */
    free(png);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic), cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_fashion),   cmocka_unit_test(test_broken),
        cmocka_unit_test(test_refused),   cmocka_unit_test(test_reading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
