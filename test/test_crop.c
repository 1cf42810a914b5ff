/* test_crop.c - [crop]: shapes and description, the inference centre crop and its [-1, 1] rescale
 * worked by hand, training crops (every output is a legal window of its own image, flipped as
 * Darknet flips, reproducible from the seed, and they vary), gradient checks in both modes, the
 * refused GPU-only augmentation keys and other cfg errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"

#define NET(h, w, c) "[net]\nbatch=2\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"

static void test_shapes_and_describe(void **state)
{
    (void)state;
    struct net *n = test_net(NET(5, 6, 2) "[crop]\ncrop_height=3\ncrop_width=4\nflip=1\n"
                                          "angle=0\nsaturation=1\nexposure=1\nshift=0\n",
                             0, 0);
    struct layer *l = net_last(n);
    assert_int_equal(l->out.c, 2);
    assert_int_equal(l->out.h, 3);
    assert_int_equal(l->out.w, 4);
    char buf[64];
    l->ops->describe(l, buf, sizeof buf);
    assert_string_equal(buf, "4x3, flip, 2x-1");
    assert_float_equal(l->ops->flops(l), 2 * 24, 0);
    net_destroy(n);
    n = test_net(NET(5, 6, 2) "[crop]\ncrop_height=5\ncrop_width=6\nnoadjust=1\n", 0, 0);
    net_last(n)->ops->describe(net_last(n), buf, sizeof buf);
    assert_string_equal(buf, "6x5");
    net_destroy(n);
}

/* 4x5 plane x = k/20 (k = 0..19), a 2x3 crop: inference starts at row (4-2)/2 = 1, column
 * (5-3)/2 = 1, and maps x to 2x - 1; noadjust keeps x. */
static void test_inference_by_hand(void **state)
{
    (void)state;
    for (int noadjust = 0; noadjust < 2; noadjust++) {
        struct net *n = test_net(noadjust ? "[net]\nbatch=1\nheight=4\nwidth=5\nchannels=1\n"
                                            "[crop]\ncrop_height=2\ncrop_width=3\nflip=1\n"
                                            "noadjust=1\n"
                                          : "[net]\nbatch=1\nheight=4\nwidth=5\nchannels=1\n"
                                            "[crop]\ncrop_height=2\ncrop_width=3\nflip=1\n",
                                 0, 0);
        for (int k = 0; k < 20; k++)
            n->input[k] = (float)k / 20;
        struct pass p;
        net_pass_init(n, &p, 0, 0);
        net_forward(n, &p);
        const int src[6] = {6, 7, 8, 11, 12, 13};
        for (int i = 0; i < 6; i++) {
            float x = (float)src[i] / 20;
            assert_float_equal(net_output(n)[i], noadjust ? x : 2 * x - 1, 1e-6);
        }
        net_destroy(n);
    }
}

/* Whether image b's output is the crop at (dh, dw), flipped or not, of its input (noadjust). */
static int is_crop(const float *y, const float *x, int c, int h, int w, int ch, int cw, int dh,
                   int dw, int flip)
{
    for (int k = 0; k < c; k++)
        for (int i = 0; i < ch; i++)
            for (int j = 0; j < cw; j++) {
                int col = flip ? w - dw - 1 - j : dw + j;
                if (y[(k * ch + i) * cw + j] != x[(k * h + i + dh) * w + col])
                    return 0;
            }
    return 1;
}

/* Which window (dh * 16 + dw) * 2 + flip produced image b, or -1. */
static int find_crop(const float *y, const float *x, int c, int h, int w, int ch, int cw)
{
    for (int dh = 0; dh <= h - ch; dh++)
        for (int dw = 0; dw <= w - cw; dw++)
            for (int f = 0; f < 2; f++)
                if (is_crop(y, x, c, h, w, ch, cw, dh, dw, f))
                    return (dh * 16 + dw) * 2 + f;
    return -1;
}

static void test_training_crops(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=8\nheight=5\nwidth=7\nchannels=2\n"
                             "[crop]\ncrop_height=3\ncrop_width=4\nflip=1\nnoadjust=1\n",
                             0, 1);
    for (int k = 0; k < 8 * 70; k++)
        n->input[k] = (float)k; /* distinct values: a window is identified by its contents */
    int seen[128] = {0}, flips = 0;
    for (int round = 0; round < 20; round++) {
        struct pass p;
        net_pass_init(n, &p, 1, 0);
        net_forward(n, &p);
        for (int b = 0; b < 8; b++) {
            int id = find_crop(net_output(n) + b * 24, n->input + b * 70, 2, 5, 7, 3, 4);
            assert_true(id >= 0);
            seen[id >> 1] = 1;
            flips += id & 1;
        }
    }
    int windows = 0;
    for (int i = 0; i < 128; i++)
        windows += seen[i];
    assert_int_equal(windows, 3 * 4); /* every (dh, dw) in [0, 2] x [0, 3] was drawn */
    assert_true(flips > 20 && flips < 140);
    /* The same stream gives the same crops: reseed, redo the first round. */
    cn_rng_seed_stream(&n->rng, n->cfg.seed, 0xD0D0D0ULL);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    int again[8];
    for (int b = 0; b < 8; b++)
        again[b] = find_crop(net_output(n) + b * 24, n->input + b * 70, 2, 5, 7, 3, 4);
    cn_rng_seed_stream(&n->rng, n->cfg.seed, 0xD0D0D0ULL);
    net_forward(n, &p);
    for (int b = 0; b < 8; b++)
        assert_int_equal(find_crop(net_output(n) + b * 24, n->input + b * 70, 2, 5, 7, 3, 4),
                         again[b]);
    net_destroy(n);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        NET(5, 6, 2) "[crop]\ncrop_height=3\ncrop_width=4\nflip=1\n",
        NET(4, 4, 3) "[crop]\ncrop_height=4\ncrop_width=2\nnoadjust=1\n",
        NET(6, 5, 1) "[crop]\ncrop_height=3\ncrop_width=3\nflip=1\n[crop]\ncrop_height=2\n"
                     "crop_width=2\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 51 + k}), 0);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 7, .eval = 1}), 0);
        net_destroy(n);
    }
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(NET(8, 8, 3) "[crop]\ncrop_height=4\ncrop_width=4\nangle=7\n",
                   "test.cfg:9: [crop] angle=7: not implemented by [crop] (Darknet applies it "
                   "only on the GPU");
    test_net_fails(NET(8, 8, 3) "[crop]\ncrop_height=4\ncrop_width=4\nsaturation=1.5\n",
                   "saturation=1.5: not implemented");
    test_net_fails(NET(8, 8, 3) "[crop]\ncrop_height=4\ncrop_width=4\nexposure=.75\n",
                   "exposure=.75: not implemented");
    test_net_fails(NET(8, 8, 3) "[crop]\ncrop_height=4\ncrop_width=4\nshift=.2\n",
                   "shift=.2: not implemented");
    test_net_fails(NET(8, 6, 3) "[crop]\ncrop_height=4\ncrop_width=7\n",
                   "test.cfg:6: [crop]: a 7x4 crop does not fit the 6x8 input");
    test_net_fails(NET(8, 8, 3) "[crop]\ncrop_height=0\n", "crop_height=0: out of range");
    test_net_fails(NET(8, 8, 3) "[crop]\ncrop_heigth=4\n", "unknown key 'crop_heigth'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_describe), cmocka_unit_test(test_inference_by_hand),
        cmocka_unit_test(test_training_crops),      cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("crop", tests, NULL, NULL);
}
