/* test_maxpool.c - the [maxpool] layer: Darknet's keys, defaults and output sizes, a forward and
 * backward case worked by hand (and a ceil_mode one), gradient checks on odd, overlapping, padded,
 * ceil-mode and unequal-stride shapes, F.max_pool2d's numbers when python3-torch is there, and the
 * cfg errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"
#include "torchref.h"

#define NET(h, w, c) "[net]\nbatch=2\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"

static void assert_out(const char *cfg, int c, int h, int w, const char *desc)
{
    test_assert_out(cfg, c, h, w, desc, -1); /* maxpool declares no flops */
}

static void test_shapes_and_defaults(void **state)
{
    (void)state;
    /* Darknet: stride 1, size = stride, padding = size - 1; out = (in + padding - size)/stride + 1.
     */
    assert_out(NET(28, 28, 6) "[maxpool]\nsize=2\nstride=2\n", 6, 14, 14, "2x2/2");
    assert_out(NET(13, 13, 3) "[max]\nsize=2\nstride=1\n", 3, 13, 13, "2x2/1");
    assert_out(NET(7, 5, 2) "[maxpool]\nstride=2\n", 2, 4, 3, "2x2/2");
    assert_out(NET(7, 5, 2) "[maxpool]\n", 2, 7, 5, "1x1/1");
    assert_out(NET(9, 9, 1) "[maxpool]\nsize=3\nstride=2\npadding=0\n", 1, 4, 4, "3x3/2 padding 0");
    assert_out(NET(5, 4, 1) "[maxpool]\nsize=3\nstride=1\npadding=4\n", 1, 7, 6, "3x3/1 padding 4");
    /* AlexNet's overlapping 3/2 (55 -> 27), Inception's stride-1 branch 3/1 padding 2 ("same"),
     * GoogLeNet's ceil_mode 3/2 (112 -> 56, floor 55), AlexeyAB's stride_x / stride_y. */
    assert_out(NET(55, 55, 2) "[maxpool]\nsize=3\nstride=2\npadding=0\n", 2, 27, 27,
               "3x3/2 padding 0");
    assert_out(NET(5, 7, 2) "[maxpool]\nsize=3\nstride=1\npadding=2\n", 2, 5, 7, "3x3/1");
    assert_out(NET(112, 112, 1) "[maxpool]\nsize=3\nstride=2\npadding=0\nceil_mode=1\n", 1, 56, 56,
               "3x3/2 padding 0 ceil");
    assert_out(NET(5, 5, 1) "[maxpool]\nsize=2\nstride=2\npadding=2\nceil_mode=1\n", 1, 3, 3,
               "2x2/2 padding 2 ceil");
    assert_out(NET(7, 9, 1) "[maxpool]\nsize=3\nstride_x=2\nstride_y=1\npadding=0\n", 1, 5, 4,
               "3x3/2x1 padding 0");
    struct net *n = test_net(NET(6, 6, 4) "[maxpool]\nsize=2\nstride=2\n", 0, 0);
    assert_float_equal(net_last(n)->ops->flops(net_last(n)), 4 * 3 * 3 * 4, 0);
    net_destroy(n);
}

/* 1 image, 1 channel, 3x4; size 2 stride 2, default padding 1 (offset 0): out 2x2, and the
 * bottom windows see only row 2. */
static void test_forward_backward_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=3\nwidth=4\nchannels=1\n"
                             "[maxpool]\nsize=2\nstride=2\n",
                             0, 1);
    /* clang-format off */
    const float x[12] = {1, 8, -2, 0,
                         3, 4, 6, 5,
                         -7, -1, 2, 9};
    /* clang-format on */
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    const float *y = net_output(n);
    assert_float_equal(y[0], 8, 0);
    assert_float_equal(y[1], 6, 0);
    assert_float_equal(y[2], -1, 0);
    assert_float_equal(y[3], 9, 0);
    /* Backward through the first layer's dinput (wired by hand, as the harness does). */
    float dx[12];
    memset(dx, 0, sizeof dx);
    dx[0] = 0.5f; /* backward adds */
    struct layer *l = net_last(n);
    l->dinput = dx;
    const float dy[4] = {1, 2, 3, 4};
    memcpy(l->doutput, dy, sizeof dy);
    net_backward(n, &p);
    const float want[12] = {0.5f, 1, 0, 0, 0, 0, 2, 0, 0, 3, 0, 4};
    for (int i = 0; i < 12; i++)
        assert_float_equal(dx[i], want[i], 0);
    l->dinput = NULL;
    net_backward(n, &p); /* nothing below wants a gradient: a no-op, no crash */
    net_destroy(n);
}

/* ceil_mode on a 3x3 plane x = 1..9, 2x2/2 padding 0: floor would give 1x1; ceil gives 2x2, the
 * right and bottom windows holding only column 2 / row 2: (5, 6, 8, 9). */
static void test_ceil_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=3\nwidth=3\nchannels=1\n"
                             "[maxpool]\nsize=2\nstride=2\npadding=0\nceil_mode=1\n",
                             0, 1);
    for (int i = 0; i < 9; i++)
        n->input[i] = (float)(i + 1);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    const float want[4] = {5, 6, 8, 9};
    for (int i = 0; i < 4; i++)
        assert_float_equal(net_output(n)[i], want[i], 0);
    net_destroy(n);
}

static void test_matches_torch(void **state)
{
    (void)state;
    static const struct torchref_pair cases[] = {
        {NET(9, 8, 3) "[maxpool]\nsize=3\nstride=2\npadding=0\n", "maxpool 2 3 9 8 3 2 2 0 0"},
        {NET(6, 7, 2) "[maxpool]\nsize=3\nstride=1\n", "maxpool 2 2 6 7 3 1 1 2 0"},
        {NET(7, 5, 2) "[maxpool]\nsize=2\nstride=2\n", "maxpool 2 2 7 5 2 2 2 1 0"},
        {NET(8, 7, 2) "[maxpool]\nsize=3\nstride=2\npadding=0\nceil_mode=1\n",
         "maxpool 2 2 8 7 3 2 2 0 1"},
        {NET(5, 6, 2) "[maxpool]\nsize=2\nstride=2\npadding=2\nceil_mode=1\n",
         "maxpool 2 2 5 6 2 2 2 2 1"},
        {NET(9, 10, 1) "[maxpool]\nsize=3\nstride_x=3\nstride_y=2\npadding=2\nceil_mode=1\n",
         "maxpool 2 1 9 10 3 2 3 2 1"},
        {NET(7, 9, 2) "[maxpool]\nsize=4\nstride_x=1\nstride_y=3\npadding=3\n",
         "maxpool 2 2 7 9 4 3 1 3 0"},
    };
    torchref_check(cases, (int)(sizeof cases / sizeof *cases), 9, 1e-6f,
                   "maxpool against F.max_pool2d");
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        NET(5, 7, 2) "[maxpool]\nsize=3\nstride=1\n",            /* overlapping, padding 2 */
        NET(7, 5, 3) "[maxpool]\nsize=2\nstride=2\n",            /* odd sides, edge windows */
        NET(9, 6, 2) "[maxpool]\nsize=3\nstride=2\npadding=0\n", /* no padding */
        NET(4, 5, 1) "[maxpool]\nsize=2\nstride=3\npadding=2\n", /* gaps between windows */
        NET(6, 6, 2) "[maxpool]\nsize=2\nstride=1\n[maxpool]\nsize=3\nstride=2\n",
        NET(9, 8, 2) "[maxpool]\nsize=3\nstride=2\npadding=0\n",              /* AlexNet 3/2 */
        NET(8, 7, 2) "[maxpool]\nsize=3\nstride=2\npadding=0\nceil_mode=1\n", /* GoogLeNet */
        NET(5, 6, 1) "[maxpool]\nsize=2\nstride=2\npadding=2\nceil_mode=1\n",
        NET(7, 9, 2) "[maxpool]\nsize=3\nstride_x=2\nstride_y=1\n",
    };
    /* eps 1e-4: max pooling copies values exactly, so a small step costs no precision, and it
     * narrows the band around near-ties (two inputs within eps) that the harness must skip. */
    gradcheck_cfgs(cfgs, sizeof cfgs / sizeof *cfgs,
                   &(struct gradcheck_opts){.seed = 21, .eps = 1e-4f},
                   &(struct gradcheck_opts){.seed = 3, .eps = 1e-4f, .eval = 1});
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(NET(8, 8, 1) "[maxpool]\nsize=0\n",
                   "test.cfg:7: [maxpool] size=0: out of range");
    test_net_fails(NET(8, 8, 1) "[maxpool]\nstride=-2\n", "[maxpool] stride=-2: out of range");
    test_net_fails(NET(8, 8, 1) "[maxpool]\nsize=two\n", "size=two: not an integer");
    test_net_fails(NET(8, 8, 1) "[maxpool]\nsize=2\npadding=3\n",
                   "[maxpool] padding=3: must be <= 2*(size-1) = 2");
    test_net_fails(NET(8, 8, 1) "[maxpool]\nsize=2\nceil_mode=2\n", "ceil_mode=2");
    test_net_fails(NET(8, 8, 1) "[maxpool]\nsize=2\nstride_x=0\n", "stride_x=0: out of range");
    test_net_fails(NET(8, 8, 1) "[maxpool]\npadding=-1\n", "padding=-1: out of range");
    test_net_fails(NET(3, 8, 1) "[maxpool]\nsize=5\npadding=0\n",
                   "test.cfg:6: [maxpool]: a 5x5 window does not fit the 8x3 input with padding 0");
    test_net_fails(NET(8, 8, 1) "[maxpool]\nsize=2\nfilters=3\n", "unknown key 'filters'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_defaults), cmocka_unit_test(test_forward_backward_by_hand),
        cmocka_unit_test(test_ceil_by_hand),        cmocka_unit_test(test_matches_torch),
        cmocka_unit_test(test_gradcheck),           cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("maxpool", tests, NULL, NULL);
}
