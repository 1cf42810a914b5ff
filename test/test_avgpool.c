/* test_avgpool.c - the [avgpool] layer: global (Darknet) and windowed (LeNet subsampling) modes,
 * their key defaults and output sizes, forward and backward cases worked by hand (including the
 * size*size divisor at padded borders, count_pad=0 and ceil_mode), gradient checks on odd,
 * overlapping, padded and ceil-mode shapes, F.avg_pool2d's numbers when python3-torch is there,
 * and the cfg errors. */
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

static void test_shapes_and_defaults(void **state)
{
    (void)state;
    test_assert_out(NET(7, 5, 3) "[avgpool]\n", 3, 1, 1, "global", 3 * 35 + 3);
    test_assert_out(NET(28, 28, 6) "[avg]\nsize=2\nstride=2\n", 6, 14, 14, "2x2/2", 6 * 196 * 5);
    test_assert_out(NET(10, 10, 16) "[avgpool]\nsize=2\n", 16, 5, 5, "2x2/2", 16 * 25 * 5);
    test_assert_out(NET(7, 5, 1) "[avgpool]\nstride=2\n", 1, 3, 2, "2x2/2", 6 * 5);
    test_assert_out(NET(7, 5, 1) "[avgpool]\nsize=3\nstride=1\n", 1, 5, 3, "3x3/1", 15 * 10);
    test_assert_out(NET(7, 5, 1) "[avgpool]\nsize=3\nstride=1\npadding=1\n", 1, 7, 5,
                    "3x3/1 padding 1", 35 * 10);
    /* GoogLeNet's auxiliary 5x5/3 on 14 -> 4; ceil_mode; count_pad=0 (shown: it changes the
     * divisor only where there is padding). */
    test_assert_out(NET(14, 14, 2) "[avgpool]\nsize=5\nstride=3\n", 2, 4, 4, "5x5/3", 32 * 26);
    test_assert_out(NET(4, 4, 1) "[avgpool]\nsize=3\nstride=2\npadding=1\nceil_mode=1\n", 1, 3, 3,
                    "3x3/2 padding 1 ceil", 9 * 10);
    test_assert_out(NET(4, 4, 1) "[avgpool]\nsize=3\nstride=1\npadding=1\ncount_pad=0\n", 1, 4, 4,
                    "3x3/1 padding 1 excl-pad", 16 * 10);
}

/* Forward then backward with dy = 1..n for the one-layer net in cfg and a 1-image input. */
static struct net *run_by_hand(const char *cfg, const float *x, size_t nx, float *dx)
{
    struct net *n = test_net(cfg, 0, 1);
    memcpy(n->input, x, sizeof(float) * nx);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    struct layer *l = net_last(n);
    for (size_t i = 0; i < shape_size(l->out); i++)
        l->doutput[i] = (float)(i + 1);
    l->dinput = dx;
    net_backward(n, &p);
    l->dinput = NULL;
    return n;
}

static void test_windowed_by_hand(void **state)
{
    (void)state;
    /* LeNet's 2x2/2 on one 2x4 channel. */
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    float dx[9] = {0};
    struct net *n = run_by_hand("[net]\nbatch=1\nheight=2\nwidth=4\nchannels=1\n"
                                "[avgpool]\nsize=2\nstride=2\n",
                                x, 8, dx);
    assert_float_equal(net_output(n)[0], 3.5f, 1e-6);
    assert_float_equal(net_output(n)[1], 5.75f, 1e-6);
    assert_float_equal(dx[0], 0.25f, 1e-7);
    assert_float_equal(dx[5], 0.25f, 1e-7);
    assert_float_equal(dx[3], 0.5f, 1e-7);
    net_destroy(n);
    /* 3x3/1 with padding 1 on 3x3: border windows still divide by 9. */
    const float p[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    memset(dx, 0, sizeof dx);
    n = run_by_hand("[net]\nbatch=1\nheight=3\nwidth=3\nchannels=1\n"
                    "[avgpool]\nsize=3\nstride=1\npadding=1\n",
                    p, 9, dx);
    const float want[9] = {12 / 9.f, 21 / 9.f, 16 / 9.f, 27 / 9.f, 45 / 9.f,
                           33 / 9.f, 24 / 9.f, 39 / 9.f, 28 / 9.f};
    for (int i = 0; i < 9; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-6);
    /* dx[0] gathers outputs 1, 2, 4, 5 (dy = 1, 2, 4, 5) / 9 = 12/9; the centre gathers 45/9. */
    assert_float_equal(dx[0], 12 / 9.f, 1e-6);
    assert_float_equal(dx[4], 5.f, 1e-6);
    net_destroy(n);
}

/* count_pad=0 on the 3x3 example: corners divide by 4, edges by 6. ceil on x = 1..9 with 2x2/2:
 * 2x2 outputs, the last column and row of windows one cell wide (divisors 2, 2 and 1). */
static void test_count_pad_and_ceil_by_hand(void **state)
{
    (void)state;
    const float p[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float dx[9] = {0};
    struct net *n = run_by_hand("[net]\nbatch=1\nheight=3\nwidth=3\nchannels=1\n"
                                "[avgpool]\nsize=3\nstride=1\npadding=1\ncount_pad=0\n",
                                p, 9, dx);
    assert_float_equal(net_output(n)[0], 12 / 4.f, 1e-6);
    assert_float_equal(net_output(n)[1], 21 / 6.f, 1e-6);
    assert_float_equal(net_output(n)[4], 5.f, 1e-6);
    /* dx[0] gathers dy 1, 2, 4, 5 over divisors 4, 6, 6, 9. */
    assert_float_equal(dx[0], 1 / 4.f + 2 / 6.f + 4 / 6.f + 5 / 9.f, 1e-6);
    net_destroy(n);
    memset(dx, 0, sizeof dx);
    n = run_by_hand("[net]\nbatch=1\nheight=3\nwidth=3\nchannels=1\n"
                    "[avgpool]\nsize=2\nstride=2\nceil_mode=1\n",
                    p, 9, dx);
    const float want[4] = {3, 4.5f, 7.5f, 9};
    for (int i = 0; i < 4; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-6);
    assert_float_equal(dx[8], 4.f, 1e-6); /* dy = 4 over a divisor of 1 */
    assert_float_equal(dx[2], 1.f, 1e-6); /* dy = 2 over 2 */
    net_destroy(n);
}

static void test_matches_torch(void **state)
{
    (void)state;
    static const struct torchref_pair cases[] = {
        {NET(7, 6, 3) "[avgpool]\nsize=3\nstride=1\npadding=1\n", "avgpool 2 3 7 6 3 1 1 1 0 1"},
        {NET(7, 6, 3) "[avgpool]\nsize=3\nstride=1\npadding=1\ncount_pad=0\n",
         "avgpool 2 3 7 6 3 1 1 1 0 0"},
        {NET(14, 14, 2) "[avgpool]\nsize=5\nstride=3\n", "avgpool 2 2 14 14 5 3 3 0 0 1"},
        {NET(8, 9, 2) "[avgpool]\nsize=3\nstride=2\npadding=1\nceil_mode=1\n",
         "avgpool 2 2 8 9 3 2 2 1 1 1"},
        {NET(8, 9, 2) "[avgpool]\nsize=3\nstride=2\npadding=1\nceil_mode=1\ncount_pad=0\n",
         "avgpool 2 2 8 9 3 2 2 1 1 0"},
        {NET(5, 7, 1) "[avgpool]\nsize=2\nstride=3\nceil_mode=1\n", "avgpool 2 1 5 7 2 3 3 0 1 1"},
        {NET(6, 6, 2) "[avgpool]\nsize=4\nstride=2\npadding=2\nceil_mode=1\n",
         "avgpool 2 2 6 6 4 2 2 2 1 1"},
    };
    torchref_check(cases, (int)(sizeof cases / sizeof *cases), 19, 1e-5f,
                   "avgpool against F.avg_pool2d");
}

static void test_global_by_hand(void **state)
{
    (void)state;
    const float x[6] = {1, 2, 3, 10, 20, 60};
    float dx[6] = {1, 1, 1, 1, 1, 1};
    struct net *n =
        run_by_hand("[net]\nbatch=1\nheight=1\nwidth=3\nchannels=2\n[avgpool]\n", x, 6, dx);
    assert_float_equal(net_output(n)[0], 2.f, 1e-6);
    assert_float_equal(net_output(n)[1], 30.f, 1e-6);
    assert_float_equal(dx[0], 1 + 1 / 3.f, 1e-6); /* dy = 1, added to the 1 already there */
    assert_float_equal(dx[5], 1 + 2 / 3.f, 1e-6);
    net_destroy(n);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        NET(5, 7, 3) "[avgpool]\n",
        NET(7, 5, 2) "[avgpool]\nsize=2\nstride=2\n",            /* odd sides: last row dropped */
        NET(6, 7, 2) "[avgpool]\nsize=3\nstride=1\npadding=1\n", /* overlapping, padded */
        NET(9, 8, 1) "[avgpool]\nsize=4\nstride=3\npadding=2\n",
        NET(5, 5, 2) "[avgpool]\nsize=2\nstride=1\n[avgpool]\n",
        NET(6, 7, 2) "[avgpool]\nsize=3\nstride=1\npadding=1\ncount_pad=0\n",
        NET(8, 9, 1) "[avgpool]\nsize=3\nstride=2\npadding=1\nceil_mode=1\n",
        NET(8, 9, 1) "[avgpool]\nsize=3\nstride=2\npadding=1\nceil_mode=1\ncount_pad=0\n",
    };
    gradcheck_cfgs(cfgs, sizeof cfgs / sizeof *cfgs, &(struct gradcheck_opts){.seed = 31},
                   &(struct gradcheck_opts){.seed = 2, .eval = 1});
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(NET(8, 8, 1) "[avgpool]\nsize=0\n",
                   "test.cfg:7: [avgpool] size=0: out of range");
    test_net_fails(NET(8, 8, 1) "[avgpool]\nstride=0\n", "[avgpool] stride=0: out of range");
    test_net_fails(NET(8, 8, 1) "[avgpool]\npadding=1\n",
                   "[avgpool] padding=1: needs size= or stride= (global pooling has no padding)");
    test_net_fails(
        NET(8, 8, 1) "[avgpool]\nceil_mode=1\n",
        "[avgpool] ceil_mode=1: needs size= or stride= (global pooling has no ceil_mode)");
    test_net_fails(NET(8, 8, 1) "[avgpool]\nsize=2\ncount_pad=3\n", "count_pad=3");
    test_net_fails(NET(8, 8, 1) "[avgpool]\nsize=3\npadding=2\n",
                   "[avgpool] padding=2: must be <= size/2 = 1");
    test_net_fails(NET(8, 8, 1) "[avgpool]\nsize=2\npadding=-1\n", "padding=-1: out of range");
    test_net_fails(NET(3, 8, 1) "[avgpool]\nsize=4\n",
                   "test.cfg:6: [avgpool]: a 4x4 window does not fit the 8x3 input with padding 0");
    test_net_fails(NET(8, 8, 1) "[avgpool]\nsize=2\nfilters=2\n", "unknown key 'filters'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_defaults),
        cmocka_unit_test(test_windowed_by_hand),
        cmocka_unit_test(test_count_pad_and_ceil_by_hand),
        cmocka_unit_test(test_matches_torch),
        cmocka_unit_test(test_global_by_hand),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("avgpool", tests, NULL, NULL);
}
