/* test_augment.c - the augmentation steps of data/augment.h one by one, on images built in
 * memory: identity settings copy bytes, flip mirrors exactly, crop offsets and scales stay in
 * Darknet's ranges, rotation of a constant image is constant, HSV round trips, exposure and
 * channel shifts are uniform per image within their bounds, mixup and cutmix blend as stated,
 * Beta draws, mean/std; and the [net] keys: defaults, Darknet's classification cfgs parse, and
 * wrong counts are errors naming the cfg line and key. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg/cfg.h"
#include "core/rng.h"
#include "data/augment.h"
#include "data/image.h"

static struct aug_config plain(void)
{
    struct aug_config a;
    aug_config_default(&a);
    return a;
}

/* w x h x c bytes, value = f(x, y, k). */
static void ramp(uint8_t *p, int w, int h, int c, int gx, int gy, int gk)
{
    for (int k = 0; k < c; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                p[(k * h + y) * w + x] = (uint8_t)(gx * x + gy * y + gk * k);
}

static void test_identity(void **state)
{
    (void)state;
    uint8_t src[6 * 4 * 3], tmp[3 * 2 * 3];
    float out[6 * 4 * 3];
    ramp(src, 6, 4, 3, 7, 20, 90);
    struct aug_config a = plain();
    uint8_t *scratch = NULL;
    size_t cap = 0;
    cn_rng r;
    cn_rng_seed(&r, 1);
    assert_int_equal(aug_geometry(out, 6, 4, src, 6, 4, 3, &a, &r, &scratch, &cap), 0);
    for (int i = 0; i < 72; i++)
        assert_true(out[i] == src[i] / 255.0f);
    /* A crop of exactly the input size at scale 1 (offset range 0) is also a copy. */
    a.crop = 1;
    a.min_crop = a.max_crop = 4;
    assert_int_equal(aug_geometry(out, 6, 4, src, 6, 4, 3, &a, &r, &scratch, &cap), 0);
    for (int i = 0; i < 72; i++)
        assert_true(out[i] == src[i] / 255.0f);
    /* Without geometry, another size is image_resize_u8's anti-aliased resize. */
    a = plain();
    assert_int_equal(aug_geometry(out, 3, 2, src, 6, 4, 3, &a, &r, &scratch, &cap), 0);
    assert_int_equal(image_resize_u8(tmp, 3, 2, src, 6, 4, 3), 0);
    for (int i = 0; i < 18; i++)
        assert_true(out[i] == tmp[i] / 255.0f);
    free(scratch);
}

static void test_flip(void **state)
{
    (void)state;
    enum { W = 5, H = 3, C = 2 };
    float x[W * H * C], orig[W * H * C];
    for (int i = 0; i < W * H * C; i++)
        orig[i] = (float)i / 64;
    struct aug_config a = plain();
    a.flip = 1;
    cn_rng r;
    cn_rng_seed(&r, 4);
    int flips = 0;
    for (int n = 0; n < 40; n++) {
        memcpy(x, orig, sizeof x);
        aug_photometric(x, W, H, C, &a, &r);
        int same = !memcmp(x, orig, sizeof x), mirrored = 1;
        for (int k = 0; k < C; k++)
            for (int y = 0; y < H; y++)
                for (int i = 0; i < W; i++)
                    mirrored &= x[(k * H + y) * W + i] == orig[(k * H + y) * W + W - 1 - i];
        assert_true(same != mirrored);
        flips += mirrored;
    }
    assert_true(flips > 8 && flips < 32);
}

/* A 40x20 horizontal ramp (6 per pixel) into a 10x10 window. */
static void test_crop_ranges(void **state)
{
    (void)state;
    enum { IW = 40, IH = 20, W = 10 };
    uint8_t src[IW * IH];
    ramp(src, IW, IH, 1, 6, 0, 0);
    struct aug_config a = plain();
    a.crop = 1;
    a.min_crop = a.max_crop = 20; /* shorter side 20: scale 1, offsets within +-15 */
    float out[W * W], lo = 1, hi = 0;
    uint8_t *scratch = NULL;
    size_t cap = 0;
    cn_rng r;
    cn_rng_seed(&r, 8);
    for (int n = 0; n < 300; n++) {
        assert_int_equal(aug_geometry(out, W, W, src, IW, IH, 1, &a, &r, &scratch, &cap), 0);
        for (int x = 1; x < W; x++) /* scale 1: one source pixel per output pixel */
            assert_float_equal(out[x] - out[x - 1], 6 / 255.0f, 1e-4f);
        lo = fminf(lo, out[0]);
        hi = fmaxf(hi, out[0]);
        assert_true(out[0] >= -1e-6f && out[0] <= 30 * 6 / 255.0f + 1e-5f);
    }
    assert_true(lo < 2 * 6 / 255.0f && hi > 28 * 6 / 255.0f); /* the whole range is used */
    /* Shorter side 10: scale 1/2, two source pixels per output pixel (anti-aliased first). */
    a.min_crop = a.max_crop = 10;
    assert_int_equal(aug_geometry(out, W, W, src, IW, IH, 1, &a, &r, &scratch, &cap), 0);
    for (int x = 3; x < 7; x++)
        assert_float_equal(out[x] - out[x - 1], 12 / 255.0f, 1.5f / 255.0f);
    free(scratch);
}

static void test_rotation(void **state)
{
    (void)state;
    uint8_t flat[9 * 9], grad[9 * 9];
    memset(flat, 77, sizeof flat);
    ramp(grad, 9, 9, 1, 10, 1, 0);
    struct aug_config a = plain();
    a.angle = 30;
    float out[81], ref[81];
    uint8_t *scratch = NULL;
    size_t cap = 0;
    cn_rng r;
    cn_rng_seed(&r, 2);
    assert_int_equal(aug_geometry(out, 9, 9, flat, 9, 9, 1, &a, &r, &scratch, &cap), 0);
    for (int i = 0; i < 81; i++)
        assert_float_equal(out[i], 77 / 255.0f, 1e-5f);
    assert_int_equal(aug_geometry(out, 9, 9, grad, 9, 9, 1, &a, &r, &scratch, &cap), 0);
    for (int i = 0; i < 81; i++)
        ref[i] = grad[i] / 255.0f;
    assert_float_equal(out[40], ref[40], 1e-5f); /* the centre stays */
    assert_true(memcmp(out, ref, sizeof out));
    free(scratch);
}

static void test_hsv(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 3);
    for (int n = 0; n < 1000; n++) {
        float rgb[3], hsv[3], back[3];
        for (int k = 0; k < 3; k++)
            rgb[k] = (float)cn_rng_uniform(&r);
        aug_rgb_to_hsv(rgb, hsv);
        assert_true(hsv[0] >= 0 && hsv[0] < 1 && hsv[1] >= 0 && hsv[1] <= 1);
        aug_hsv_to_rgb(hsv, back);
        for (int k = 0; k < 3; k++)
            assert_float_equal(back[k], rgb[k], 1e-5f);
    }
    float red[3] = {1, 0, 0}, hsv[3];
    aug_rgb_to_hsv(red, hsv);
    assert_float_equal(hsv[0], 0, 0);
    hsv[0] = 1.0f / 3; /* green */
    aug_hsv_to_rgb(hsv, red);
    assert_float_equal(red[0], 0, 1e-6f);
    assert_float_equal(red[1], 1, 1e-6f);
}

/* Exposure on gray: one factor for the whole image, in [1/1.5, 1.5]; channel shifts: one offset
 * per channel within +-20/255. */
static void test_exposure_shift(void **state)
{
    (void)state;
    enum { P = 12 };
    float x[P * 3];
    struct aug_config a = plain();
    a.exposure = 1.5f;
    cn_rng r;
    cn_rng_seed(&r, 6);
    float fmin = 9, fmax = 0;
    for (int n = 0; n < 200; n++) {
        for (int i = 0; i < P; i++)
            x[i] = .1f + .05f * i;
        aug_photometric(x, P, 1, 1, &a, &r);
        float f = x[0] / .1f;
        for (int i = 0; i < P; i++)
            assert_float_equal(x[i], fminf((.1f + .05f * i) * f, 1.f), 1e-5f);
        assert_true(f >= 1 / 1.5f - 1e-5f && f <= 1.5f + 1e-5f);
        fmin = fminf(fmin, f);
        fmax = fmaxf(fmax, f);
    }
    assert_true(fmin < .75f && fmax > 1.35f);
    a = plain();
    a.shift[0] = a.shift[1] = a.shift[2] = 20;
    int differ = 0;
    for (int n = 0; n < 50; n++) {
        for (int i = 0; i < P * 3; i++)
            x[i] = 128 / 255.0f;
        aug_photometric(x, P, 1, 3, &a, &r);
        for (int k = 0; k < 3; k++) {
            float d = x[k * P] - 128 / 255.0f;
            assert_true(fabsf(d) <= 20 / 255.0f + 1e-6f);
            for (int i = 0; i < P; i++)
                assert_float_equal(x[k * P + i], x[k * P], 1e-7f);
        }
        differ += x[0] != x[P];
    }
    assert_true(differ > 40);
}

static void test_mix(void **state)
{
    (void)state;
    enum { W = 8, H = 6 };
    float a1[W * H], b[W * H];
    for (int i = 0; i < W * H; i++) {
        a1[i] = 1;
        b[i] = 0;
    }
    cn_rng r;
    cn_rng_seed(&r, 11);
    assert_float_equal(aug_mix_apply(a1, b, W, H, 1, .25f, 0, &r), .25f, 0);
    for (int i = 0; i < W * H; i++)
        assert_float_equal(a1[i], .25f, 1e-7f);
    for (int n = 0; n < 50; n++) {
        for (int i = 0; i < W * H; i++)
            a1[i] = 1;
        float lam = aug_mix_apply(a1, b, W, H, 1, .6f, 1, &r);
        int covered = 0;
        for (int i = 0; i < W * H; i++)
            covered += a1[i] == 0;
        assert_float_equal(lam, 1 - (float)covered / (W * H), 1e-6f);
    }
    struct aug_config c = plain();
    float lambda;
    int cut;
    assert_int_equal(aug_mix_draw(&c, &r, &lambda, &cut), 0);
    c.mixup = 1;
    c.mix_alpha = .4f;
    double sum = 0;
    for (int n = 0; n < 4000; n++) {
        assert_int_equal(aug_mix_draw(&c, &r, &lambda, &cut), 1);
        assert_int_equal(cut, 0);
        assert_true(lambda >= 0 && lambda <= 1);
        sum += lambda;
    }
    assert_float_equal(sum / 4000, .5, .03); /* Beta(a, a) has mean 1/2 */
}

static void test_normalize(void **state)
{
    (void)state;
    struct aug_config a = plain();
    float x[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        x[i] = (float)i / 24;
    aug_normalize(x, 2, 2, 2, 3, &a); /* no mean=: unchanged */
    assert_float_equal(x[5], 5.f / 24, 0);
    a.nmean = 3;
    const float m[3] = {.1f, .2f, .3f}, s[3] = {.5f, .25f, 2};
    memcpy(a.mean, m, sizeof m);
    memcpy(a.std, s, sizeof s);
    aug_normalize(x, 2, 2, 2, 3, &a);
    for (int i = 0; i < 24; i++) {
        int k = (i / 4) % 3;
        assert_float_equal(x[i], ((float)i / 24 - m[k]) / s[k], 1e-6f);
    }
}

/* Parses the [net] section of text (named "t.cfg"). */
static int parse(const char *text, struct input_config *ic, cn_error *e)
{
    struct cfg_file *f;
    if (cfg_read_string(&f, text, "t.cfg", CFG_SECTIONS, e))
        return -1;
    int rc = input_config_parse(ic, &f->sec[0], 8, 8, 3, e);
    cfg_destroy(f);
    return rc;
}

static void expect_error(const char *text, const char *want)
{
    struct input_config ic;
    cn_error e;
    assert_int_equal(parse(text, &ic, &e), -1);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
}

static void test_keys(void **state)
{
    (void)state;
    struct input_config ic;
    cn_error e;
    assert_int_equal(parse("[net]\n", &ic, &e), 0);
    assert_int_equal(ic.workers, 2);
    assert_int_equal(ic.sampling, SAMPLING_EPOCH);
    assert_false(aug_is_random(&ic.aug));
    assert_int_equal(ic.aug.nmean, 0);
    assert_int_equal(parse("[net]\nmin_crop=4\nflip=1\nchannel_shift=20\nsampling=balanced\n"
                           "mean=.4,.5,.6\nworkers=0\nlabel_smooth_eps=.1\n",
                           &ic, &e),
                     0);
    assert_int_equal(ic.aug.crop, 1);
    assert_int_equal(ic.aug.max_crop, 16); /* Darknet's default: 2 * width */
    assert_float_equal(ic.aug.shift[2], 20, 0);
    assert_float_equal(ic.aug.mean[2], .6f, 1e-7f);
    assert_float_equal(ic.aug.std[1], 1, 0);
    assert_int_equal(ic.sampling, SAMPLING_BALANCED);
    assert_int_equal(ic.workers, 0);
    expect_error("[net]\n\nmean=0.5,0.5\n", "t.cfg:3: [net] mean=0.5,0.5: has 2 values but channels=3");
    expect_error("[net]\nstd=1,2,3,4\n", "t.cfg:2: [net] std=1,2,3,4: has 4 values but channels=3");
    expect_error("[net]\nchannel_shift=1,2\n", "channel_shift=1,2: has 2 values but channels=3");
    expect_error("[net]\nstd=0,1,1\n", "std=0,1,1: item 1");
    expect_error("[net]\nmin_crop=20\nmax_crop=10\n", "min_crop=20 (default: width) is larger");
    expect_error("[net]\nsampling=balance\n", "balanced");
}

/* Darknet's classification cfgs use angle aspect exposure hue saturation max_crop min_crop. */
static void test_darknet_cfgs(void **state)
{
    (void)state;
    const char *names[] = {"resnet18", "darknet19", "alexnet", "extraction", "tiny", "darknet53"};
    int tried = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[256];
        snprintf(path, sizeof path, "/usr/share/darknet/cfg/%s.cfg", names[i]);
        if (access(path, R_OK))
            continue;
        struct cfg_file *f;
        cn_error e;
        assert_int_equal(cfg_read_file(&f, path, CFG_SECTIONS, &e), 0);
        struct input_config ic;
        if (input_config_parse(&ic, &f->sec[0], 224, 224, 3, &e))
            fail_msg("%s", e.msg);
        cfg_destroy(f);
        tried++;
    }
    if (!tried)
        printf("skipped: /usr/share/darknet/cfg (Debian package darknet) is not installed\n");
}

/* The fast warp against its naive reference on awkward shapes (1-pixel sides, odd sizes,
 * windows beyond the edges, enlarging and shrinking, 1 to 4 channels): bit for bit without
 * rotation (the separable path computes the same taps), within float rounding with it. */
static void test_warp_fast_vs_ref(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 11);
    for (int t = 0; t < 300; t++) {
        int w = 1 + (int)cn_rng_below(&r, 37), h = 1 + (int)cn_rng_below(&r, 29);
        int iw = 1 + (int)cn_rng_below(&r, 45), ih = 1 + (int)cn_rng_below(&r, 41);
        int c = 1 + (int)cn_rng_below(&r, 4), rotated = t % 2;
        double rad = rotated ? (cn_rng_uniform(&r) - .5) * 2.5 : 0;
        struct aug_warp wp = {.sx = .3 + 3 * cn_rng_uniform(&r),
                              .sy = .3 + 3 * cn_rng_uniform(&r),
                              .ox = (cn_rng_uniform(&r) - .5) * 2 * w,
                              .oy = (cn_rng_uniform(&r) - .5) * 2 * h,
                              .cs = cos(rad),
                              .sn = sin(rad)};
        size_t n = (size_t)w * (size_t)h * (size_t)c, in = (size_t)iw * (size_t)ih * (size_t)c;
        uint8_t *src = malloc(in);
        float *fast = malloc(sizeof *fast * n), *ref = malloc(sizeof *ref * n);
        void *scratch = malloc(aug_warp_scratch(w, h));
        for (size_t i = 0; i < in; i++)
            src[i] = (uint8_t)cn_rng_below(&r, 256);
        aug_warp(fast, w, h, src, iw, ih, c, &wp, scratch);
        aug_warp_ref(ref, w, h, src, iw, ih, c, &wp);
        for (size_t i = 0; i < n; i++) {
            if (rotated)
                assert_float_equal(fast[i], ref[i], 2e-4f);
            else if (fast[i] != ref[i])
                fail_msg("unrotated warp %dx%d from %dx%d, value %zu: %g != %g", w, h, iw, ih, i,
                         (double)fast[i], (double)ref[i]);
        }
        free(src);
        free(fast);
        free(ref);
        free(scratch);
    }
}

/* The one-pass HSV jitter against the reference (rgb -> hsv -> rgb per pixel): random pixels
 * plus grays, blacks, whites and ties between channels, hue shifts of both signs, saturation
 * and exposure factors on both sides of 1, 1 to 4 channels (the 4th is left alone). */
static void test_distort_fast_vs_ref(void **state)
{
    (void)state;
    enum { P = 257 };
    static const float special[][3] = {{0, 0, 0}, {1, 1, 1}, {.5f, .5f, .5f}, {1, 0, 0},
                                       {1, 1, 0}, {0, 1, 1}, {.2f, .7f, .7f}, {.7f, .7f, .2f},
                                       {.3f, .1f, .3f}, {0, 0, 1}};
    cn_rng r;
    cn_rng_seed(&r, 12);
    for (int t = 0; t < 200; t++) {
        int c = 1 + t % 4;
        float fast[P * 4], ref[P * 4];
        for (int i = 0; i < P * c; i++)
            fast[i] = (float)cn_rng_uniform(&r);
        for (int i = 0; i < 10 && c >= 3; i++)
            for (int k = 0; k < 3; k++)
                fast[k * P + i] = special[i][k];
        memcpy(ref, fast, sizeof fast);
        float dhue = t % 5 == 0 ? 0 : (float)(cn_rng_uniform(&r) - .5);
        float dsat = t % 7 == 0 ? 1 : (float)(.5 + 1.5 * cn_rng_uniform(&r));
        float dexp = t % 3 == 0 ? 1 : (float)(.5 + 1.5 * cn_rng_uniform(&r));
        aug_distort(fast, P, c, dhue, dsat, dexp);
        aug_distort_ref(ref, P, c, dhue, dsat, dexp);
        for (int i = 0; i < P * c; i++)
            if (fabsf(fast[i] - ref[i]) > 1e-5f)
                fail_msg("c=%d hue %g sat %g exp %g, value %d (pixel %d): fast %.7f, ref %.7f", c,
                         (double)dhue, (double)dsat, (double)dexp, i, i % P, (double)fast[i],
                         (double)ref[i]);
    }
    /* Identity factors leave the image as it is, bit for bit. */
    float x[P * 3], y[P * 3];
    for (int i = 0; i < P * 3; i++)
        x[i] = y[i] = (float)cn_rng_uniform(&r);
    aug_distort(x, P, 3, 0, 1, 1);
    assert_memory_equal(x, y, sizeof x);
}

/* Whole aug_geometry runs (pre-shrink, crop, aspect, rotation, translation) against the same
 * steps with the reference warp, on one draw stream. */
static void test_geometry_vs_ref(void **state)
{
    (void)state;
    enum { IW = 61, IH = 47, W = 32, H = 24, C = 3 };
    uint8_t src[IW * IH * C];
    float fast[W * H * C], ref[W * H * C];
    ramp(src, IW, IH, C, 3, 5, 40);
    for (int i = 0; i < IW * IH * C; i += 7)
        src[i] ^= 0x5a; /* texture, so that misplaced taps show */
    struct aug_config a = plain();
    a.crop = 1;
    a.min_crop = 20;
    a.max_crop = 60;
    a.aspect = 1.5f;
    a.translate = .1f;
    uint8_t *scratch = NULL;
    size_t cap = 0;
    cn_rng r;
    for (int t = 0; t < 60; t++) {
        a.angle = t % 2 ? 15.f : 0.f;
        cn_rng_seed_stream(&r, 5, (uint64_t)t);
        assert_int_equal(aug_geometry(fast, W, H, src, IW, IH, C, &a, &r, &scratch, &cap), 0);
        cn_rng_seed_stream(&r, 5, (uint64_t)t);
        assert_int_equal(aug_geometry_ref(ref, W, H, src, IW, IH, C, &a, &r), 0);
        for (int i = 0; i < W * H * C; i++)
            assert_float_equal(fast[i], ref[i], a.angle > 0 ? 2e-4f : 0.f);
    }
    free(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),     cmocka_unit_test(test_flip),
        cmocka_unit_test(test_crop_ranges),  cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_hsv),          cmocka_unit_test(test_exposure_shift),
        cmocka_unit_test(test_mix),          cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_keys),         cmocka_unit_test(test_darknet_cfgs),
        cmocka_unit_test(test_warp_fast_vs_ref), cmocka_unit_test(test_distort_fast_vs_ref),
        cmocka_unit_test(test_geometry_vs_ref),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
