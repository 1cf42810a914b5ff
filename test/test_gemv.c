/* test_gemv.c - the GEMV kernel (kernels/gemv.h) against its naive reference on awkward shapes
 * (1, primes, every tail of the 32-column blocks), and a [connected] layer at batch 1 (GEMV)
 * against the same layer at batch 3 (GEMM) on the same image. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "gradcheck.h"
#include "kernels/gemv.h"
#include "net/net.h"

static void fill(float *v, size_t n, cn_rng *r)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)cn_rng_uniform(r) * 2.f - 1.f;
}

/* |a - b| within 1e-5 of the sum of |w x| (the error bound of a reordered float sum). */
static void check(int O, int I, int accumulate, cn_rng *r)
{
    float *W = malloc(sizeof *W * (size_t)O * (size_t)I), *x = malloc(sizeof *x * (size_t)I);
    float *y = malloc(sizeof *y * (size_t)O), *want = malloc(sizeof *want * (size_t)O);
    fill(W, (size_t)O * (size_t)I, r);
    fill(x, (size_t)I, r);
    fill(y, (size_t)O, r);
    memcpy(want, y, sizeof *y * (size_t)O);
    gemv(y, W, x, O, I, accumulate);
    gemv_naive(want, W, x, O, I, accumulate);
    for (int o = 0; o < O; o++) {
        double mag = accumulate ? 1.0 : 0.0;
        for (int k = 0; k < I; k++)
            mag += fabs((double)W[(size_t)o * I + k] * x[k]);
        if (fabs((double)y[o] - want[o]) > 1e-5 * (mag + 1.0))
            fail_msg("O=%d I=%d acc=%d row %d: %g, reference %g", O, I, accumulate, o,
                     (double)y[o], (double)want[o]);
    }
    free(W), free(x), free(y), free(want);
}

static void test_awkward_shapes(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 11);
    static const int os[] = {1, 2, 3, 17, 64};
    for (int a = 0; a < 5; a++)
        for (int I = 1; I <= 70; I++)
            check(os[a], I, I % 2, &r);
    check(1000, 4099, 0, &r); /* large enough for threads */
    check(257, 25088, 1, &r);
}

/* A worked case: W = [[1 2 3], [4 5 6]], x = (1, -1, 2): y = (5, 11); accumulated onto (1, 1). */
static void test_by_hand(void **state)
{
    (void)state;
    const float W[6] = {1, 2, 3, 4, 5, 6}, x[3] = {1, -1, 2};
    float y[2] = {1, 1};
    gemv(y, W, x, 2, 3, 0);
    assert_float_equal(y[0], 5, 0);
    assert_float_equal(y[1], 11, 0);
    gemv(y, W, x, 2, 3, 1);
    assert_float_equal(y[0], 10, 0);
    assert_float_equal(y[1], 22, 0);
}

static void test_connected_batch1_matches_gemm(void **state)
{
    (void)state;
    const char *cfg = "[net]\nheight=7\nwidth=9\nchannels=5\n[connected]\noutput=37\n"
                      "activation=leaky\n[connected]\noutput=10\nactivation=linear\n";
    struct net *one = test_net(cfg, 1, 0), *three = test_net(cfg, 3, 0);
    cn_rng r;
    cn_rng_seed(&r, 2);
    fill(three->input, net_inputs(three) * 3, &r);
    memcpy(one->input, three->input + net_inputs(three), sizeof(float) * net_inputs(one));
    struct pass p;
    net_pass_init(one, &p, 0, 0);
    net_forward(one, &p);
    net_pass_init(three, &p, 0, 0);
    net_forward(three, &p);
    for (int o = 0; o < 10; o++)
        assert_float_equal(net_output(one)[o], net_output(three)[10 + o], 1e-5);
    net_destroy(one);
    net_destroy(three);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_awkward_shapes),
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_connected_batch1_matches_gemm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
