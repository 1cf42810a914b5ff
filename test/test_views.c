/* test_views.c - padded test-time views (views.h, `-pad P`) and the matching training
 * augmentation (augment.h, pad_crop=P), on images small enough to work by hand: a 3x3 image
 * padded by 1 gives a 5x5 image whose ten 3x3 views are written out below pixel by pixel; the
 * same views from a PNG file, in 3 channels, and for an image of another size (resized first);
 * views_check's errors; aug_pad_crop at every offset against the padded image; pad_crop= through
 * aug_geometry: every draw an exact window of the padded image, every offset drawn, the same
 * stream giving the same sample; and the [net] key's bounds. The command-line side (-pad errors,
 * the views a net sees) is test_views_cli.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <stb_image_write.h>

#include "cfg/cfg.h"
#include "core/rng.h"
#include "data/augment.h"
#include "data/views.h"

/* The 3x3 image of every test: 10, 20, ..., 90 row by row. */
static const uint8_t img3[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};

/* The ten views of img3 padded by 1 (the 5x5 image 0 0 0 0 0 / 0 10 20 30 0 / 0 40 50 60 0 /
 * 0 70 80 90 0 / 0 0 0 0 0), in views.h's order: centre, top-left, top-right, bottom-left,
 * bottom-right, then the same five mirrored left to right. */
static const uint8_t want10[10][9] = {
    {10, 20, 30, 40, 50, 60, 70, 80, 90}, /* centre: the image itself */
    {0, 0, 0, 0, 10, 20, 0, 40, 50},      /* window at (0, 0) of the padded image */
    {0, 0, 0, 20, 30, 0, 50, 60, 0},      /* (2, 0) */
    {0, 40, 50, 0, 70, 80, 0, 0, 0},      /* (0, 2) */
    {50, 60, 0, 80, 90, 0, 0, 0, 0},      /* (2, 2) */
    {30, 20, 10, 60, 50, 40, 90, 80, 70}, /* the centre mirrored */
    {0, 0, 0, 20, 10, 0, 50, 40, 0},      /* top-left mirrored */
    {0, 0, 0, 0, 30, 20, 0, 60, 50},      /* top-right mirrored */
    {50, 40, 0, 80, 70, 0, 0, 0, 0},      /* bottom-left mirrored */
    {0, 60, 50, 0, 90, 80, 0, 0, 0},      /* bottom-right mirrored */
};

static struct view_spec padded(int crops, int pad)
{
    struct view_spec s = {.crops = crops, .nscales = 1, .pad = pad};
    s.scale[0] = 1.0f;
    return s;
}

/* views[v * per + k * 9 + i] == want10[which[v]][i] / 255 for every channel k. */
static void expect_views(const float *views, int nviews, const int *which, int c)
{
    for (int v = 0; v < nviews; v++)
        for (int k = 0; k < c; k++)
            for (int i = 0; i < 9; i++) {
                float got = views[(v * c + k) * 9 + i], want = want10[which[v]][i] / 255.0f;
                if (got != want)
                    fail_msg("view %d channel %d pixel %d: %g, want %g", v, k, i, (double)got,
                             (double)want);
            }
}

static void test_pad_views_by_hand(void **state)
{
    (void)state;
    float out[10 * 9 * 3];
    cn_error e;
    struct view_spec s = padded(10, 1);
    assert_int_equal(views_from_gray(out, img3, 3, 3, 3, 3, 1, &s, "img3", &e), 0);
    expect_views(out, 10, (const int[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 1);
    /* 1, 2 and 5 crops are the first views of the same order (2: the centre and its mirror) */
    s = padded(1, 1);
    assert_int_equal(views_from_gray(out, img3, 3, 3, 3, 3, 1, &s, "img3", &e), 0);
    expect_views(out, 1, (const int[]){0}, 1);
    s = padded(2, 1);
    assert_int_equal(views_from_gray(out, img3, 3, 3, 3, 3, 1, &s, "img3", &e), 0);
    expect_views(out, 2, (const int[]){0, 5}, 1);
    s = padded(5, 1);
    assert_int_equal(views_from_gray(out, img3, 3, 3, 3, 3, 1, &s, "img3", &e), 0);
    expect_views(out, 5, (const int[]){0, 1, 2, 3, 4}, 1);
    /* 3 channels from gray: each plane the same, the padding 0 in all of them */
    s = padded(10, 1);
    assert_int_equal(views_from_gray(out, img3, 3, 3, 3, 3, 3, &s, "img3", &e), 0);
    expect_views(out, 10, (const int[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3);
}

static void test_pad_bytes(void **state)
{
    (void)state;
    const uint8_t two[2 * 2 * 2] = {1, 2, 3, 4, 5, 6, 7, 8}; /* 2 planes of 2x2 */
    uint8_t out[4 * 4 * 2];
    memset(out, 99, sizeof out);
    views_pad_u8(out, two, 2, 2, 2, 1);
    const uint8_t want[4 * 4 * 2] = {0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0,
                                     0, 0, 0, 0, 0, 5, 6, 0, 0, 7, 8, 0, 0, 0, 0, 0};
    assert_memory_equal(out, want, sizeof want);
}

/* The views of a PNG file are those of its pixels in memory; a 6x6 image is first brought to the
 * 3x3 input by the default view (the same resize as views_from_gray's), then padded. */
static void test_pad_views_file(void **state)
{
    (void)state;
    char path[] = "/tmp/cfgnet_views_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_true(stbi_write_png(path, 3, 3, 1, img3, 3) != 0);
    float file[10 * 9], mem[10 * 9];
    cn_error e;
    struct view_spec s = padded(10, 1);
    assert_int_equal(views_load(file, path, 3, 3, 1, &s, &e), 0);
    expect_views(file, 10, (const int[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 1);
    uint8_t big[36];
    for (int i = 0; i < 36; i++)
        big[i] = (uint8_t)(7 * i);
    assert_true(stbi_write_png(path, 6, 6, 1, big, 6) != 0);
    assert_int_equal(views_load(file, path, 3, 3, 1, &s, &e), 0);
    assert_int_equal(views_from_gray(mem, big, 6, 6, 3, 3, 1, &s, "big", &e), 0);
    assert_memory_equal(file, mem, sizeof file);
    /* its centre view is the unpadded single view; its top-left corner starts with zeros */
    float one[9];
    struct view_spec plain = padded(1, 0);
    assert_int_equal(views_load(one, path, 3, 3, 1, &plain, &e), 0);
    assert_memory_equal(file, one, sizeof one);
    assert_true(file[9] == 0 && file[10] == 0 && file[12] == 0 && file[13] == one[0]);
    unlink(path);
}

static void expect_check_error(struct view_spec s, int w, int h, const char *want)
{
    cn_error e;
    assert_int_equal(views_check(&s, w, h, &e), -1);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
}

static void test_pad_check(void **state)
{
    (void)state;
    cn_error e;
    struct view_spec s = padded(10, 14);
    assert_int_equal(views_check(&s, 28, 28, &e), 0);
    s = padded(10, 1);
    assert_int_equal(views_check(&s, 3, 3, &e), 0);
    expect_check_error(padded(10, 2), 3, 3,
                       "-pad 2: must be at least 1 and at most 1 (half the shorter side of the "
                       "3x3 net input)");
    expect_check_error(padded(10, 15), 28, 40, "-pad 15: must be at least 1 and at most 14");
    expect_check_error(padded(10, -1), 28, 28, "-pad -1: must be at least 1");
    s = padded(1, 2);
    s.letterbox = 1;
    expect_check_error(s, 28, 28, "-pad 2: not with -letterbox");
    s = padded(10, 2);
    s.scale[0] = 1.25f;
    expect_check_error(s, 28, 28, "-pad 2: crops of the image at the net input's size");
    s = padded(10, 2);
    s.nscales = 2;
    s.scale[1] = 1.0f;
    expect_check_error(s, 28, 28, "no -scale or -scales");
}

/* x padded by pad zeros, window at (ox, oy): pixel (x, y) of channel k. */
static float window_px(const float *img, int w, int h, int k, int pad, int ox, int oy, int x, int y)
{
    int sx = x + ox - pad, sy = y + oy - pad;
    return sx < 0 || sy < 0 || sx >= w || sy >= h ? 0.f : img[(k * h + sy) * w + sx];
}

static void test_pad_crop_every_offset(void **state)
{
    (void)state;
    enum { W = 5, H = 4, C = 2, P = 2 };
    float img[W * H * C], x[W * H * C];
    for (int i = 0; i < W * H * C; i++)
        img[i] = (float)(i + 1);
    for (int oy = 0; oy <= 2 * P; oy++)
        for (int ox = 0; ox <= 2 * P; ox++) {
            memcpy(x, img, sizeof x);
            aug_pad_crop(x, W, H, C, P, ox, oy);
            for (int k = 0; k < C; k++)
                for (int y = 0; y < H; y++)
                    for (int xx = 0; xx < W; xx++)
                        if (x[(k * H + y) * W + xx] != window_px(img, W, H, k, P, ox, oy, xx, y))
                            fail_msg("offset (%d, %d), pixel (%d, %d, %d)", ox, oy, xx, y, k);
        }
    /* by hand: img3 padded by 1, the window at (0, 2) is the bottom-left view */
    float x3[9];
    for (int i = 0; i < 9; i++)
        x3[i] = img3[i];
    aug_pad_crop(x3, 3, 3, 1, 1, 0, 2);
    for (int i = 0; i < 9; i++)
        assert_true(x3[i] == want10[3][i]);
    /* the offset (P, P) is the image itself */
    memcpy(x, img, sizeof x);
    aug_pad_crop(x, W, H, C, P, P, P);
    assert_memory_equal(x, img, sizeof x);
}

/* The offset (ox, oy) whose window of img3 padded by 1 is out (-1 if none); mirrored windows
 * count as offset + 9. */
static int which_window(const float *out)
{
    float img[9], x[9];
    for (int i = 0; i < 9; i++)
        img[i] = img3[i] / 255.0f;
    for (int m = 0; m < 2; m++)
        for (int o = 0; o < 9; o++) {
            memcpy(x, img, sizeof x);
            aug_pad_crop(x, 3, 3, 1, 1, o % 3, o / 3);
            if (m)
                for (int y = 0; y < 3; y++) {
                    float t = x[3 * y];
                    x[3 * y] = x[3 * y + 2];
                    x[3 * y + 2] = t;
                }
            if (!memcmp(x, out, sizeof x))
                return o + 9 * m;
        }
    return -1;
}

/* pad_crop=1 (and flip) through the training pipeline: each sample is an exact window of the
 * padded image (so inside it), all 9 offsets and both mirrors are drawn, and a stream seeded
 * alike gives the same sample. */
static void test_pad_crop_pipeline(void **state)
{
    (void)state;
    struct aug_config a;
    aug_config_default(&a);
    a.pad_crop = 1;
    a.flip = 1;
    assert_true(aug_has_geometry(&a) && aug_is_random(&a));
    int seen[18] = {0};
    uint8_t *scratch = NULL;
    size_t cap = 0;
    for (int i = 0; i < 400; i++) {
        float out[9], again[9];
        cn_rng r, r2;
        cn_rng_seed(&r, (uint64_t)i + 1);
        cn_rng_seed(&r2, (uint64_t)i + 1);
        assert_int_equal(aug_geometry(out, 3, 3, img3, 3, 3, 1, &a, &r, &scratch, &cap), 0);
        aug_photometric(out, 3, 3, 1, &a, &r);
        assert_int_equal(aug_geometry_ref(again, 3, 3, img3, 3, 3, 1, &a, &r2), 0);
        aug_photometric(again, 3, 3, 1, &a, &r2);
        assert_memory_equal(out, again, sizeof out);
        int wi = which_window(out);
        if (wi < 0)
            fail_msg("sample %d is no window of the padded image", i);
        seen[wi]++;
    }
    for (int o = 0; o < 18; o++)
        if (seen[o] < 5)
            fail_msg("window %d drawn %d times in 400", o, seen[o]);
    free(scratch);
}

/* pad_crop on an image of another size pads the default view (the resize views.h makes). */
static void test_pad_crop_resized(void **state)
{
    (void)state;
    uint8_t big[36];
    for (int i = 0; i < 36; i++)
        big[i] = (uint8_t)(7 * i);
    struct aug_config a;
    aug_config_default(&a);
    float base[9], out[9];
    uint8_t *scratch = NULL;
    size_t cap = 0;
    cn_rng r;
    cn_rng_seed(&r, 3);
    assert_int_equal(aug_geometry(base, 3, 3, big, 6, 6, 1, &a, &r, &scratch, &cap), 0);
    a.pad_crop = 1;
    for (int i = 0; i < 20; i++) {
        cn_rng_seed(&r, (uint64_t)i);
        cn_rng r2 = r;
        assert_int_equal(aug_geometry(out, 3, 3, big, 6, 6, 1, &a, &r, &scratch, &cap), 0);
        int ox = (int)cn_rng_below(&r2, 3), oy = (int)cn_rng_below(&r2, 3);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                assert_true(out[3 * y + x] == window_px(base, 3, 3, 0, 1, ox, oy, x, y));
    }
    free(scratch);
}

static int parse(const char *text, struct input_config *ic, cn_error *e)
{
    struct cfg_file *f;
    if (cfg_read_string(&f, text, "t.cfg", CFG_SECTIONS, e))
        return -1;
    int rc = input_config_parse(ic, &f->sec[0], 8, 6, 3, e);
    cfg_destroy(f);
    return rc;
}

static void test_pad_crop_key(void **state)
{
    (void)state;
    struct input_config ic;
    cn_error e;
    assert_int_equal(parse("[net]\n", &ic, &e), 0);
    assert_int_equal(ic.aug.pad_crop, 0);
    assert_false(aug_has_geometry(&ic.aug));
    assert_int_equal(parse("[net]\npad_crop=3\nflip=1\n", &ic, &e), 0);
    assert_int_equal(ic.aug.pad_crop, 3);
    assert_true(aug_has_geometry(&ic.aug));
    /* at most half the shorter side: 3 for an 8x6 input */
    assert_int_equal(parse("[net]\npad_crop=4\n", &ic, &e), -1);
    if (!strstr(e.msg, "t.cfg:2: [net] pad_crop=4"))
        fail_msg("%s", e.msg);
    assert_int_equal(parse("[net]\npad_crop=-1\n", &ic, &e), -1);
    if (!strstr(e.msg, "pad_crop=-1"))
        fail_msg("%s", e.msg);
    assert_int_equal(parse("[net]\npad_crop=1.5\n", &ic, &e), -1);
    if (!strstr(e.msg, "pad_crop=1.5"))
        fail_msg("%s", e.msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_views_by_hand), cmocka_unit_test(test_pad_bytes),
        cmocka_unit_test(test_pad_views_file),    cmocka_unit_test(test_pad_check),
        cmocka_unit_test(test_pad_crop_every_offset), cmocka_unit_test(test_pad_crop_pipeline),
        cmocka_unit_test(test_pad_crop_resized),  cmocka_unit_test(test_pad_crop_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
