/* test_depthwise.c - the direct single-plane convolution kernels against their naive references
 * on awkward geometries (1x1, 1x7 and 7x1, primes, kernels wider than the plane with padding,
 * strides past the kernel, dilations), a case worked by hand, and the two backward kernels as
 * the adjoints of the forward one in the plane and in the kernel. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/rng.h"
#include "kernels/depthwise.h"

/* h, w, kh, kw, sh, sw, ph, pw, dh, dw */
static const int geoms[][10] = {
    {1, 1, 1, 1, 1, 1, 0, 0, 1, 1},   {5, 7, 3, 3, 1, 1, 1, 1, 1, 1},
    {7, 6, 3, 3, 2, 2, 1, 1, 1, 1},   {4, 4, 5, 5, 1, 1, 2, 2, 1, 1},
    {3, 2, 5, 5, 2, 2, 2, 2, 1, 1},   {9, 9, 1, 7, 1, 1, 0, 3, 1, 1},
    {8, 5, 7, 1, 1, 1, 3, 0, 1, 1},   {11, 13, 2, 3, 3, 4, 0, 1, 1, 1},
    {5, 5, 3, 3, 5, 5, 0, 0, 1, 1},   {13, 11, 5, 3, 2, 1, 2, 1, 1, 1},
    {9, 8, 3, 3, 1, 1, 2, 2, 2, 2},   {11, 13, 3, 2, 2, 1, 1, 3, 3, 2},
    {7, 7, 3, 3, 2, 2, 0, 0, 3, 1},   {5, 12, 1, 7, 1, 2, 0, 6, 1, 2},
    {17, 19, 3, 3, 1, 1, 1, 1, 1, 1}, {6, 6, 2, 2, 1, 1, 0, 0, 5, 5},
    {3, 3, 3, 3, 1, 1, 4, 4, 1, 1},   {29, 31, 3, 3, 2, 2, 1, 1, 1, 1},
};
#define NGEOMS (sizeof geoms / sizeof geoms[0])

static struct im2col_geom geom_at(size_t i)
{
    const int *v = geoms[i];
    struct im2col_geom g;
    assert_int_equal(
        im2col_geom_init(&g, 1, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]), 0);
    return g;
}

static float *random_floats(size_t n, uint64_t seed)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    float *p = xmalloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(2 * cn_rng_uniform(&r) - 1);
    return p;
}

/* 4x4 plane holding 0..15, 2x2 kernel (1, 2; 3, 4) at dilation 2, stride 1, padding 1:
 * OH = OW = (4 + 2 - 3) + 1 = 4; output (oy, ox) reads rows oy-1, oy+1 and columns ox-1, ox+1. */
static void test_by_hand(void **state)
{
    (void)state;
    float plane[16], out[16];
    for (int i = 0; i < 16; i++)
        plane[i] = (float)i;
    const float k[4] = {1, 2, 3, 4};
    struct im2col_geom g;
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 2, 2, 1, 1, 1, 1, 2, 2), 0);
    assert_int_equal(g.oh, 4);
    depthwise_forward(out, plane, k, &g);
    /* (0, 0): only tap (1, 1) is inside, at (1, 1) = 5: 4*5 = 20.
     * (1, 1): taps at (0, 0), (0, 2), (2, 0), (2, 2) = 0, 2, 8, 10: 0 + 4 + 24 + 40 = 68.
     * (2, 3): taps at (1, 2), (3, 2) (columns 4 are outside) = 6, 14: 1*6 + 3*14 = 48.
     * (3, 0): tap (0, 1) at (2, 1) = 9: 2*9 = 18. */
    assert_float_equal(out[0], 20, 0);
    assert_float_equal(out[5], 68, 0);
    assert_float_equal(out[11], 48, 0);
    assert_float_equal(out[12], 18, 0);
    float naive[16];
    depthwise_forward_naive(naive, plane, k, &g);
    assert_memory_equal(out, naive, sizeof out);
}

static void test_fast_matches_naive(void **state)
{
    (void)state;
    for (size_t i = 0; i < NGEOMS; i++) {
        struct im2col_geom g = geom_at(i);
        size_t n = (size_t)g.h * (size_t)g.w, m = im2col_cols(&g), kk = (size_t)g.kh * g.kw;
        float *x = random_floats(n, 10 + i), *k = random_floats(kk, 20 + i);
        float *dy = random_floats(m, 30 + i), *a = random_floats(m, 40 + i);
        float *b = random_floats(m, 50 + i);
        depthwise_forward(a, x, k, &g);
        depthwise_forward_naive(b, x, k, &g);
        for (size_t j = 0; j < m; j++)
            assert_float_equal(a[j], b[j], 1e-5 * (double)kk);
        float *dxa = random_floats(n, 60 + i), *dxb = xmalloc(sizeof(float) * n);
        memcpy(dxb, dxa, sizeof(float) * n); /* both accumulate onto the same values */
        depthwise_backward_data(dxa, dy, k, &g);
        depthwise_backward_data_naive(dxb, dy, k, &g);
        for (size_t j = 0; j < n; j++)
            assert_float_equal(dxa[j], dxb[j], 1e-5 * (double)kk);
        float *dka = random_floats(kk, 70 + i), *dkb = xmalloc(sizeof(float) * kk);
        memcpy(dkb, dka, sizeof(float) * kk);
        depthwise_backward_kernel(dka, dy, x, &g);
        depthwise_backward_kernel_naive(dkb, dy, x, &g);
        for (size_t j = 0; j < kk; j++)
            assert_float_equal(dka[j], dkb[j], 1e-5 * (double)m);
        free(x), free(k), free(dy), free(a), free(b), free(dxa), free(dxb), free(dka), free(dkb);
    }
}

/* <forward(x; k), y> == <x, backward_data(y; k)> == <k, backward_kernel(y; x)>. */
static void test_adjoint(void **state)
{
    (void)state;
    for (size_t i = 0; i < NGEOMS; i++) {
        struct im2col_geom g = geom_at(i);
        size_t n = (size_t)g.h * (size_t)g.w, m = im2col_cols(&g), kk = (size_t)g.kh * g.kw;
        float *x = random_floats(n, 80 + i), *k = random_floats(kk, 90 + i);
        float *y = random_floats(m, 100 + i), *out = xmalloc(sizeof(float) * m);
        float *dx = xcalloc(n, sizeof(float)), *dk = xcalloc(kk, sizeof(float));
        depthwise_forward(out, x, k, &g);
        depthwise_backward_data(dx, y, k, &g);
        depthwise_backward_kernel(dk, y, x, &g);
        double lhs = 0, rx = 0, rk = 0;
        for (size_t j = 0; j < m; j++)
            lhs += (double)out[j] * y[j];
        for (size_t j = 0; j < n; j++)
            rx += (double)x[j] * dx[j];
        for (size_t j = 0; j < kk; j++)
            rk += (double)k[j] * dk[j];
        assert_float_equal(lhs, rx, 1e-4 * (1 + fabs(lhs)));
        assert_float_equal(lhs, rk, 1e-4 * (1 + fabs(lhs)));
        free(x), free(k), free(y), free(out), free(dx), free(dk);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_fast_matches_naive),
        cmocka_unit_test(test_adjoint),
    };
    return cmocka_run_group_tests_name("depthwise", tests, NULL, NULL);
}
