/* test_image.c - image decoding through image_load: PNG/BMP/TGA/JPEG in gray, gray+alpha, RGB and
 * RGBA, paletted and 16-bit PNG and 16-bit PGM (written by hand), loaded as 1, 3 and 4 channels
 * with exact expected values; CHW layout; resizing; header checks (missing, not an image,
 * truncated, absurd dimensions rejected before any allocation); Darknet's resize and letterbox
 * against values worked by hand, and the aliasing it has and image_resize_u8 has not. Files are
 * written at test time into a temporary directory. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <stb_image_write.h>

#include "data/idx.h"
#include "data/image.h"

#define W 3
#define H 2
#define NPX (W * H)

/* Source pixels of the 3x2 test images, per channel. */
static const uint8_t gray[NPX] = {0, 17, 34, 128, 200, 255};
static const uint8_t alpha[NPX] = {255, 0, 128, 7, 255, 64};
static const uint8_t red[NPX] = {255, 0, 0, 10, 200, 33};
static const uint8_t green[NPX] = {0, 255, 0, 20, 100, 66};
static const uint8_t blue[NPX] = {0, 0, 255, 30, 50, 99};

struct fixture {
    char dir[64];
    char path[512];
};

static const char *at(struct fixture *fx, const char *name)
{
    snprintf(fx->path, sizeof fx->path, "%s/%s", fx->dir, name);
    return fx->path;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cfgnet_image_XXXXXX");
    *state = fx;
    return mkdtemp(fx->dir) ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    DIR *d = opendir(fx->dir);
    struct dirent *ent;
    while (d && (ent = readdir(d))) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
            continue;
        if (unlink(at(fx, ent->d_name)))
            rmdir(fx->path);
    }
    if (d)
        closedir(d);
    int rc = rmdir(fx->dir);
    free(fx);
    return rc;
}

static void put_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Interleaved source pixels with comp channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. */
static void source(uint8_t *px, int comp)
{
    for (int i = 0; i < NPX; i++) {
        uint8_t *p = px + i * comp;
        if (comp <= 2) {
            p[0] = gray[i];
        } else {
            p[0] = red[i];
            p[1] = green[i];
            p[2] = blue[i];
        }
        if (comp == 2 || comp == 4)
            p[comp - 1] = alpha[i];
    }
}

/* What image_load must give for source(comp) loaded as c channels, CHW, in bytes. */
static void expected(uint8_t *out, int comp, int c)
{
    for (int i = 0; i < NPX; i++) {
        int colour = comp >= 3;
        int y = colour ? (77 * red[i] + 150 * green[i] + 29 * blue[i]) >> 8 : gray[i];
        int has_alpha = comp == 2 || comp == 4;
        for (int k = 0; k < c; k++) {
            int v;
            if (c <= 2 && k == 0)
                v = y;
            else if (c >= 3 && k < 3)
                v = colour ? (k == 0 ? red[i] : k == 1 ? green[i] : blue[i]) : gray[i];
            else
                v = has_alpha ? alpha[i] : 255;
            out[k * NPX + i] = (uint8_t)v;
        }
    }
}

/* Loads path as c channels at the source size and compares with the expectation within tol. */
static void check_load(const char *path, int comp, int c, int tol)
{
    float got[NPX * 4];
    uint8_t want[NPX * 4];
    cn_error e;
    if (image_load(got, path, W, H, c, &e))
        fail_msg("%s", e.msg);
    expected(want, comp, c);
    for (int i = 0; i < NPX * c; i++) {
        float d = got[i] * 255.0f - want[i];
        if (d > tol + 1e-3f || d < -tol - 1e-3f)
            fail_msg("%s as c=%d: value %d is %g, expected %d", path, c, i, got[i] * 255.0f,
                     want[i]);
        if (tol == 0 && got[i] != want[i] / 255.0f)
            fail_msg("%s: value %d is not exactly %d/255", path, i, want[i]);
    }
}

static void test_png_bmp_tga(void **state)
{
    struct fixture *fx = *state;
    for (int comp = 1; comp <= 4; comp++) {
        uint8_t px[NPX * 4];
        source(px, comp);
        char name[32];
        snprintf(name, sizeof name, "c%d.png", comp);
        assert_true(stbi_write_png(at(fx, name), W, H, comp, px, W * comp));
        for (int c = 1; c <= 4; c++)
            check_load(fx->path, comp, c, 0);
        snprintf(name, sizeof name, "c%d.bmp", comp);
        assert_true(stbi_write_bmp(at(fx, name), W, H, comp, px));
        check_load(fx->path, comp == 2 ? 1 : comp, 1, 0); /* BMP drops a gray alpha */
        check_load(fx->path, comp == 2 ? 1 : comp, 3, 0);
        snprintf(name, sizeof name, "c%d.tga", comp);
        assert_true(stbi_write_tga(at(fx, name), W, H, comp, px));
        check_load(fx->path, comp, 1, 0);
        check_load(fx->path, comp, 3, 0);
        if (comp == 1 || comp == 3) { /* 8-bit binary PGM and PPM */
            uint8_t pnm[64];
            int n = snprintf((char *)pnm, sizeof pnm, "P%d\n%d %d\n255\n", comp == 1 ? 5 : 6, W, H);
            memcpy(pnm + n, px, (size_t)(NPX * comp));
            snprintf(name, sizeof name, "c%d.pnm", comp);
            put_bytes(at(fx, name), pnm, (size_t)(n + NPX * comp));
            check_load(fx->path, comp, 1, 0);
            check_load(fx->path, comp, 3, 0);
        }
    }
}

static void test_jpeg(void **state)
{
    struct fixture *fx = *state;
    /* JPEG is lossy; a flat image survives within a level or two. */
    enum { S = 16 };
    uint8_t px[S * S * 3];
    for (int i = 0; i < S * S; i++) {
        px[3 * i] = 200;
        px[3 * i + 1] = 40;
        px[3 * i + 2] = 90;
    }
    assert_true(stbi_write_jpg(at(fx, "rgb.jpg"), S, S, 3, px, 100));
    float got[S * S * 3];
    cn_error e;
    if (image_load(got, fx->path, S, S, 3, &e))
        fail_msg("%s", e.msg);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < S * S; i++)
            assert_float_equal(got[k * S * S + i] * 255.0f, px[k], 3.0f);
    memset(px, 77, S * S);
    assert_true(stbi_write_jpg(at(fx, "gray.jpg"), S, S, 1, px, 100));
    if (image_load(got, fx->path, S, S, 3, &e))
        fail_msg("%s", e.msg);
    for (int i = 0; i < S * S * 3; i++)
        assert_float_equal(got[i] * 255.0f, 77.0f, 2.0f);
}

/* A PNG chunk: length, type, data, CRC-32 of type and data. */
static size_t png_chunk(uint8_t *out, const char *type, const uint8_t *data, uint32_t n)
{
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    memcpy(out + 4, type, 4);
    if (n)
        memcpy(out + 8, data, n);
    uint32_t crc = gz_crc32(0, out + 4, n + 4);
    for (int i = 0; i < 4; i++)
        out[8 + n + i] = (uint8_t)(crc >> (24 - 8 * i));
    return 12 + n;
}

/* A zlib stream holding raw in one stored (uncompressed) deflate block. */
static size_t zlib_stored(uint8_t *out, const uint8_t *raw, uint16_t n)
{
    uint32_t a = 1, b = 0;
    for (int i = 0; i < n; i++) {
        a = (a + raw[i]) % 65521;
        b = (b + a) % 65521;
    }
    uint8_t head[7] = {
        0x78, 0x01, 0x01, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)~n, (uint8_t)(~n >> 8)};
    memcpy(out, head, 7);
    memcpy(out + 7, raw, n);
    uint32_t adler = b << 16 | a;
    for (int i = 0; i < 4; i++)
        out[7 + n + i] = (uint8_t)(adler >> (24 - 8 * i));
    return 11 + (size_t)n;
}

/* Writes a w x h PNG of the given depth and colour type; rows are the filter-less row bytes. */
static void put_png(const char *path, int w, int h, int depth, int type, const uint8_t *rows,
                    size_t row_bytes, const uint8_t *plte, uint32_t nplte)
{
    uint8_t raw[1024], z[1100], file[4096];
    size_t n = 0;
    for (int y = 0; y < h; y++) {
        raw[n++] = 0;
        memcpy(raw + n, rows + (size_t)y * row_bytes, row_bytes);
        n += row_bytes;
    }
    size_t zn = zlib_stored(z, raw, (uint16_t)n);
    uint8_t ihdr[13] = {0, 0, 0, (uint8_t)w, 0, 0, 0, (uint8_t)h, (uint8_t)depth, (uint8_t)type};
    size_t len = 8;
    memcpy(file, "\x89PNG\r\n\x1a\n", 8);
    len += png_chunk(file + len, "IHDR", ihdr, 13);
    if (plte)
        len += png_chunk(file + len, "PLTE", plte, nplte);
    len += png_chunk(file + len, "IDAT", z, (uint32_t)zn);
    len += png_chunk(file + len, "IEND", NULL, 0);
    put_bytes(path, file, len);
}

static void test_paletted_png(void **state)
{
    struct fixture *fx = *state;
    /* Palette entry i is (red, green, blue)[i]; pixel i uses entry i. */
    uint8_t plte[NPX * 3], rows[NPX];
    for (int i = 0; i < NPX; i++) {
        plte[3 * i] = red[i];
        plte[3 * i + 1] = green[i];
        plte[3 * i + 2] = blue[i];
        rows[i] = (uint8_t)i;
    }
    put_png(at(fx, "pal.png"), W, H, 8, 3, rows, W, plte, sizeof plte);
    check_load(fx->path, 3, 1, 0);
    check_load(fx->path, 3, 3, 0);
    /* 2 bits per pixel: the row of 3 pixels packs into one byte, high bits first. */
    uint8_t packed[H] = {0 << 6 | 1 << 4 | 2 << 2, 3 << 6 | 3 << 4 | 0 << 2};
    put_png(at(fx, "pal2.png"), W, H, 2, 3, packed, 1, plte, 12);
    float got[NPX * 3];
    cn_error e;
    if (image_load(got, fx->path, W, H, 3, &e))
        fail_msg("%s", e.msg);
    const int entry[NPX] = {0, 1, 2, 3, 3, 0};
    for (int i = 0; i < NPX; i++) {
        assert_true(got[i] == red[entry[i]] / 255.0f);
        assert_true(got[NPX + i] == green[entry[i]] / 255.0f);
        assert_true(got[2 * NPX + i] == blue[entry[i]] / 255.0f);
    }
}

/* 16-bit samples keep their high byte: 0xAB?? becomes 0xAB. */
static void test_16bit(void **state)
{
    struct fixture *fx = *state;
    uint8_t rows[NPX * 2];
    for (int i = 0; i < NPX; i++) {
        rows[2 * i] = gray[i];
        rows[2 * i + 1] = (uint8_t)(0xff - i * 40);
    }
    put_png(at(fx, "g16.png"), W, H, 16, 0, rows, 2 * W, NULL, 0);
    check_load(fx->path, 1, 1, 0);
    check_load(fx->path, 1, 3, 0);
    uint8_t rgb[NPX * 6];
    for (int i = 0; i < NPX; i++) {
        const uint8_t v[3] = {red[i], green[i], blue[i]};
        for (int k = 0; k < 3; k++) {
            rgb[6 * i + 2 * k] = v[k];
            rgb[6 * i + 2 * k + 1] = (uint8_t)(i * 31 + k);
        }
    }
    put_png(at(fx, "rgb16.png"), W, H, 16, 2, rgb, 6 * W, NULL, 0);
    check_load(fx->path, 3, 3, 0);
    /* To gray, stb_image weighs the full 16-bit samples, then keeps the high byte. */
    float got[NPX];
    cn_error e;
    assert_int_equal(image_load(got, fx->path, W, H, 1, &e), 0);
    for (int i = 0; i < NPX; i++) {
        const uint8_t *p = rgb + 6 * i;
        int r = p[0] << 8 | p[1], g = p[2] << 8 | p[3], b = p[4] << 8 | p[5];
        int y = ((77 * r + 150 * g + 29 * b) >> 8) >> 8;
        assert_true(got[i] == y / 255.0f);
    }
    uint8_t pgm[64];
    int n = snprintf((char *)pgm, sizeof pgm, "P5\n%d %d\n65535\n", W, H);
    memcpy(pgm + n, rows, sizeof rows);
    put_bytes(at(fx, "g16.pgm"), pgm, (size_t)n + sizeof rows);
    check_load(fx->path, 1, 1, 0);
    check_load(fx->path, 1, 3, 0);
    check_load(fx->path, 1, 4, 0);
    /* 16-bit PPM, with a comment in the header; then the same file cut short. */
    uint8_t ppm[128];
    n = snprintf((char *)ppm, sizeof ppm, "P6\n# made by test_image\n%d %d\n65535\n", W, H);
    memcpy(ppm + n, rgb, sizeof rgb);
    put_bytes(at(fx, "rgb16.ppm"), ppm, (size_t)n + sizeof rgb);
    check_load(fx->path, 3, 3, 0);
    assert_int_equal(image_load(got, fx->path, W, H, 1, &e), 0);
    for (int i = 0; i < NPX; i++) {
        const uint8_t *p = rgb + 6 * i;
        int r = p[0] << 8 | p[1], g = p[2] << 8 | p[3], b = p[4] << 8 | p[5];
        assert_true(got[i] == (((77 * r + 150 * g + 29 * b) >> 8) >> 8) / 255.0f);
    }
    put_bytes(at(fx, "cut16.ppm"), ppm, (size_t)n + sizeof rgb - 1);
    assert_int_equal(image_load(got, fx->path, W, H, 1, &e), -1);
    assert_non_null(strstr(e.msg, "cannot decode 16-bit PNM"));
}

static void test_chw_layout(void **state)
{
    struct fixture *fx = *state;
    uint8_t px[NPX * 3];
    source(px, 3);
    assert_true(stbi_write_png(at(fx, "rgb.png"), W, H, 3, px, W * 3));
    uint8_t got[NPX * 3];
    cn_error e;
    assert_int_equal(image_load_u8(got, fx->path, W, H, 3, &e), 0);
    /* plane 0 is red, row 0 then row 1 */
    const uint8_t want[NPX * 3] = {255, 0,   0,  10, 200, 33,  0,  255, 0,
                                   20,  100, 66, 0,  0,   255, 30, 50,  99};
    assert_memory_equal(got, want, sizeof want);
}

static void test_resize(void **state)
{
    struct fixture *fx = *state;
    cn_error e;
    /* Upsampling [0 255] to 4 wide: pixel centres at -0.25, 0.25, 0.75, 1.25 of the source,
     * edges clamped: 0, 63.75, 191.25, 255. */
    const uint8_t two[2] = {0, 255};
    assert_true(stbi_write_png(at(fx, "two.png"), 2, 1, 1, two, 2));
    float up[4];
    assert_int_equal(image_load(up, fx->path, 4, 1, 1, &e), 0);
    const float want_up[4] = {0, 64 / 255.0f, 191 / 255.0f, 1};
    for (int i = 0; i < 4; i++)
        assert_true(up[i] == want_up[i]);
    /* Shrinking a checkerboard averages it (no aliasing to 0 or 255). */
    uint8_t board[64];
    for (int i = 0; i < 64; i++)
        board[i] = ((i / 8 + i % 8) & 1) ? 255 : 0;
    assert_true(stbi_write_png(at(fx, "board.png"), 8, 8, 1, board, 8));
    float small[16];
    assert_int_equal(image_load(small, fx->path, 4, 4, 1, &e), 0);
    for (int i = 0; i < 16; i++)
        assert_float_equal(small[i] * 255.0f, 127.5f, 8.0f);
    /* A flat colour stays flat both ways, to the exact byte. */
    uint8_t flat[5 * 7 * 3];
    for (int i = 0; i < 5 * 7; i++) {
        flat[3 * i] = 12;
        flat[3 * i + 1] = 99;
        flat[3 * i + 2] = 240;
    }
    assert_true(stbi_write_png(at(fx, "flat.png"), 5, 7, 3, flat, 15));
    const int sizes[][2] = {{3, 2}, {11, 13}, {1, 1}, {5, 3}};
    for (int s = 0; s < 4; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        float out[11 * 13 * 3];
        assert_int_equal(image_load(out, fx->path, w, h, 3, &e), 0);
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < w * h; i++)
                assert_true(out[k * w * h + i] == flat[k] / 255.0f);
    }
}

/* An 18-byte TGA header: uncompressed true colour, 24 bits, w x h. */
static void put_tga_header(const char *path, int w, int h)
{
    uint8_t t[18] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    t[12] = (uint8_t)w;
    t[13] = (uint8_t)(w >> 8);
    t[14] = (uint8_t)h;
    t[15] = (uint8_t)(h >> 8);
    t[16] = 24;
    put_bytes(path, t, sizeof t);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fails_with(const char *path, const char *want, int check_only)
{
    cn_error e = {{0}};
    float px[4];
    int rc = check_only ? image_check(path, &e) : image_load(px, path, 2, 2, 1, &e);
    assert_int_equal(rc, -1);
    if (!strstr(e.msg, path) || !strstr(e.msg, want))
        fail_msg("expected '%s' and the path in '%s'", want, e.msg);
}

static void test_huge_header(void **state)
{
    struct fixture *fx = *state;
    double t0 = now();
    put_tga_header(at(fx, "huge.tga"), 65535, 65535);
    fails_with(fx->path, "the header claims 65535x65535 pixels, more than the limit", 1);
    fails_with(fx->path, "the header claims 65535x65535 pixels", 0);
    put_tga_header(at(fx, "wide.tga"), 20000, 1);
    fails_with(fx->path, "claims 20000x1", 0);
    put_tga_header(at(fx, "big.tga"), 16384, 8192);
    fails_with(fx->path, "claims 16384x8192", 0);
    assert_true(now() - t0 < 0.5);
    /* At the limit the header passes (the body is missing, so a load would fail). */
    put_tga_header(at(fx, "limit.tga"), 16384, 4096);
    int w, h;
    cn_error e;
    assert_int_equal(image_info(fx->path, &w, &h, &e), 0);
    assert_int_equal(w, 16384);
    assert_int_equal(h, 4096);
}

static void test_bad_files(void **state)
{
    struct fixture *fx = *state;
    fails_with(at(fx, "missing.png"), "cannot open: No such file or directory", 1);
    fails_with(fx->dir, "not a regular file", 0);
    put_bytes(at(fx, "text.png"), "hello, world\n", 13);
    fails_with(fx->path, "not an image stb_image can read (unknown image type)", 1);
    /* 32x32 noise compresses badly, so half the file cuts the pixel data. */
    uint8_t noise[32 * 32 * 3];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (uint8_t)(x >> 16);
    }
    assert_true(stbi_write_png(at(fx, "full.png"), 32, 32, 3, noise, 96));
    FILE *f = fopen(fx->path, "rb");
    uint8_t buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 1000 && n < sizeof buf);
    put_bytes(at(fx, "half.png"), buf, n / 2);
    cn_error e;
    assert_int_equal(image_check(fx->path, &e), 0); /* the header is intact */
    fails_with(fx->path, "cannot decode", 0);
    put_bytes(at(fx, "stub.png"), buf, 12);
    fails_with(fx->path, "not an image stb_image can read", 1);
}

/* Darknet's resize_image by hand: 3 -> 5 columns samples at x * 2/4; 2x2 -> 3x3 puts the mean of
 * the four at the centre; w = 1 takes the last column (Darknet's c == w-1 rule). */
static void test_resize_darknet(void **state)
{
    (void)state;
    const float row[3] = {0, .4f, 1};
    float out[5];
    assert_int_equal(image_resize_darknet(out, 5, 1, row, 3, 1, 1), 0);
    const float want[5] = {0, .2f, .4f, .7f, 1};
    for (int i = 0; i < 5; i++)
        assert_float_equal(out[i], want[i], 1e-6f);
    const float sq[4] = {0, 1, 2, 3};
    float big[9];
    assert_int_equal(image_resize_darknet(big, 3, 3, sq, 2, 2, 1), 0);
    const float want9[9] = {0, .5f, 1, 1, 1.5f, 2, 2, 2.5f, 3};
    for (int i = 0; i < 9; i++)
        assert_float_equal(big[i], want9[i], 1e-6f);
    float one;
    assert_int_equal(image_resize_darknet(&one, 1, 1, sq, 2, 2, 1), 0);
    assert_float_equal(one, 1, 0); /* row 0 (h scale 0), last column */
}

/* 4x2 into 4x4: resized to 4x2, centred at row 1, rows 0 and 3 are 0.5; 2 channels. */
static void test_letterbox(void **state)
{
    (void)state;
    float src[2 * 8], dst[2 * 16];
    for (int i = 0; i < 16; i++)
        src[i] = (float)i / 16;
    assert_int_equal(image_letterbox_darknet(dst, 4, 4, src, 4, 2, 2), 0);
    for (int k = 0; k < 2; k++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) {
                float v = dst[(k * 4 + y) * 4 + x];
                if (y == 0 || y == 3)
                    assert_float_equal(v, .5f, 0);
                else
                    assert_float_equal(v, src[(k * 2 + y - 1) * 4 + x], 1e-6f);
            }
}

/* A 1-pixel checkerboard shrunk 8x: the anti-aliased resize averages to mid-gray, Darknet's
 * point sampling keeps pure black and white. */
static void test_aliasing(void **state)
{
    (void)state;
    enum { S = 64, D = 8 };
    static uint8_t board[S * S];
    static float fboard[S * S];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            board[y * S + x] = (uint8_t)((x + y) % 2 ? 255 : 0);
            fboard[y * S + x] = board[y * S + x] / 255.0f;
        }
    uint8_t small[D * D];
    float dk[D * D];
    assert_int_equal(image_resize_u8(small, D, D, board, S, S, 1), 0);
    assert_int_equal(image_resize_darknet(dk, D, D, fboard, S, S, 1), 0);
    int extreme = 0;
    for (int i = 0; i < D * D; i++) {
        assert_true(abs(small[i] - 128) <= 12);
        extreme += dk[i] < .05f || dk[i] > .95f;
    }
    assert_true(extreme > D * D / 2);
}

/* Every size from 1 to 41 into every size from 1 to 45 (Debian's stb_image_resize aborts on
 * 19 -> 13 and thousands more): a constant stays constant, a ramp stays monotonic. */
static void test_resize_all_ratios(void **state)
{
    (void)state;
    static uint8_t flat[41 * 3], ramp[41 * 3], out[45 * 3];
    memset(flat, 77, sizeof flat);
    for (int i = 0; i < 41 * 3; i++)
        ramp[i] = (uint8_t)(6 * (i % 41));
    for (int iw = 1; iw <= 41; iw++)
        for (int w = 1; w <= 45; w++) {
            assert_int_equal(image_resize_u8(out, w, 3, flat, iw, 3, 1), 0);
            for (int i = 0; i < w * 3; i++)
                assert_int_equal(out[i], 77);
            uint8_t src[41 * 3];
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < iw; x++)
                    src[y * iw + x] = ramp[x];
            assert_int_equal(image_resize_u8(out, w, 3, src, iw, 3, 1), 0);
            for (int x = 1; x < w; x++)
                assert_true(out[x] >= out[x - 1]);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_png_bmp_tga, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jpeg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paletted_png, setup, teardown),
        cmocka_unit_test_setup_teardown(test_16bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chw_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test(test_resize_darknet),
        cmocka_unit_test(test_letterbox),
        cmocka_unit_test(test_aliasing),
        cmocka_unit_test(test_resize_all_ratios),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
