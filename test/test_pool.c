/* test_pool.c - pooling kernels: geometry rules (Darknet's maxpool sizes, windowed average sizes),
 * hand-worked forward and backward cases, and the fast kernels against their naive references on
 * awkward shapes (1 x 1 planes, primes, overlapping and padded windows), and the separable
 * inference kernels on the zoo's shapes and beyond (rows wider than their buffer, threads). */
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
#include "kernels/pool.h"

static void test_max_geometry(void **state)
{
    (void)state;
    struct pool_geom g;
    /* Darknet's defaults (padding = size-1): 28 -> 14 for 2/2, 13 -> 13 for 2/1, 7 -> 4 for 2/2. */
    assert_int_equal(pool_max_geom(&g, 28, 28, 2, 2, 2, 1, 0), 0);
    assert_int_equal(g.oh, 14);
    assert_int_equal(g.oy, 0);
    assert_int_equal(pool_max_geom(&g, 13, 13, 2, 1, 1, 1, 0), 0);
    assert_int_equal(g.oh, 13);
    assert_int_equal(pool_max_geom(&g, 7, 5, 2, 2, 2, 1, 0), 0);
    assert_int_equal(g.oh, 4);
    assert_int_equal(g.ow, 3);
    assert_int_equal(pool_max_geom(&g, 5, 5, 3, 1, 1, 2, 0), 0);
    assert_int_equal(g.oh, 5);
    assert_int_equal(g.oy, 1);
    assert_int_equal(pool_max_geom(&g, 5, 5, 3, 2, 2, 0, 0), 0);
    assert_int_equal(g.oh, 2);
    /* Rejected: a window wholly outside the image, and an empty output. */
    assert_int_equal(pool_max_geom(&g, 5, 5, 2, 1, 1, 3, 0), -1);
    assert_int_equal(pool_max_geom(&g, 2, 5, 4, 1, 1, 1, 0), -1);
    assert_int_equal(pool_max_geom(&g, 5, 5, 0, 1, 1, 0, 0), -1);
    /* ceil_mode: GoogLeNet's 3/2 on 112 gives 56 (floor: 55); 2/2 with padding 2 on 5 rounds
     * (5 + 2 - 2)/2 up to 3, plus one, then drops the window that would start at row 6 - 1 = 5,
     * past the image: 3, as PyTorch's MaxPool2d(2, 2, padding=1, ceil_mode=True). */
    assert_int_equal(pool_max_geom(&g, 112, 112, 3, 2, 2, 0, 1), 0);
    assert_int_equal(g.oh, 56);
    assert_int_equal(pool_max_geom(&g, 112, 112, 3, 2, 2, 0, 0), 0);
    assert_int_equal(g.oh, 55);
    assert_int_equal(pool_max_geom(&g, 5, 5, 2, 2, 2, 2, 1), 0);
    assert_int_equal(g.oh, 3);
    assert_int_equal(pool_max_geom(&g, 6, 6, 2, 2, 2, 2, 1), 0);
    assert_int_equal(g.oh, 4);
    /* stride_y 1, stride_x 2 on 7 x 9 with a 3x3 window, no padding: 5 x 4. */
    assert_int_equal(pool_max_geom(&g, 7, 9, 3, 1, 2, 0, 0), 0);
    assert_int_equal(g.oh, 5);
    assert_int_equal(g.ow, 4);
}

static void test_avg_geometry(void **state)
{
    (void)state;
    struct pool_geom g;
    assert_int_equal(pool_avg_geom(&g, 28, 28, 2, 2, 2, 0, 0, 1), 0);
    assert_int_equal(g.oh, 14);
    assert_int_equal(pool_avg_geom(&g, 7, 5, 2, 2, 2, 0, 0, 1), 0);
    assert_int_equal(g.oh, 3);
    assert_int_equal(g.ow, 2);
    assert_int_equal(pool_avg_geom(&g, 3, 3, 3, 1, 1, 1, 0, 1), 0);
    assert_int_equal(g.oh, 3);
    assert_int_equal(g.oy, 1);
    assert_int_equal(pool_avg_geom(&g, 1, 3, 2, 1, 1, 0, 0, 1), -1);
    /* GoogLeNet's auxiliary 5x5/3 on 14: 4. ceil: 3x3/2 pad 1 on 4 -> ceil(3/2) + 1 = 3. */
    assert_int_equal(pool_avg_geom(&g, 14, 14, 5, 3, 3, 0, 0, 1), 0);
    assert_int_equal(g.oh, 4);
    assert_int_equal(pool_avg_geom(&g, 4, 4, 3, 2, 2, 1, 0, 1), 0);
    assert_int_equal(g.oh, 2);
    assert_int_equal(pool_avg_geom(&g, 4, 4, 3, 2, 2, 1, 1, 1), 0);
    assert_int_equal(g.oh, 3);
}

/* One 3x3 plane, 2x2 windows at stride 1 with Darknet's default padding 1: out 3x3, the last row
 * and column of windows hang over the bottom/right edge and see only in-image cells. */
static void test_max_by_hand(void **state)
{
    (void)state;
    /* clang-format off */
    const float x[9] = {1, 5, 2,
                        7, 3, 4,
                        0, 9, -6};
    const float want[9] = {7, 5, 4,
                           9, 9, 4,
                           9, 9, -6};
    /* clang-format on */
    const int32_t want_idx[9] = {3, 1, 5, 7, 7, 5, 7, 7, 8};
    struct pool_geom g;
    assert_int_equal(pool_max_geom(&g, 3, 3, 2, 1, 1, 1, 0), 0);
    float y[9];
    int32_t idx[9];
    pool_max_forward(y, idx, x, 1, &g);
    for (int i = 0; i < 9; i++) {
        assert_float_equal(y[i], want[i], 0);
        assert_int_equal(idx[i], want_idx[i]);
    }
    /* Backward scatters and adds: cell 7 (the 9) wins four windows. */
    const float dy[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float dx[9] = {0, 0, 0, 0, 0, 0, 0, 0, 100};
    pool_max_backward(dx, dy, idx, 1, &g);
    const float want_dx[9] = {0, 2, 0, 1, 0, 3 + 6, 0, 4 + 5 + 7 + 8, 100 + 9};
    for (int i = 0; i < 9; i++)
        assert_float_equal(dx[i], want_dx[i], 0);
}

/* Ties keep the first maximum in row-major window order, as Darknet's strict '>'. Padding 0. */
static void test_max_ties_and_negative(void **state)
{
    (void)state;
    /* clang-format off */
    const float x[8] = {-3, -3, -1, -1,
                        -3, -3, -1, -2};
    /* clang-format on */
    struct pool_geom g;
    assert_int_equal(pool_max_geom(&g, 2, 4, 2, 2, 2, 0, 0), 0);
    float y[2], yn[2];
    int32_t idx[2], idxn[2];
    pool_max_forward(y, idx, x, 1, &g);
    pool_max_forward_naive(yn, idxn, x, 1, &g);
    assert_float_equal(y[0], -3, 0);
    assert_int_equal(idx[0], 0);
    assert_float_equal(y[1], -1, 0);
    assert_int_equal(idx[1], 2);
    assert_memory_equal(idx, idxn, sizeof idx);
    pool_max_forward(y, NULL, x, 1, &g); /* no index wanted (inference) */
    assert_float_equal(y[1], -1, 0);
}

/* 2x2/2 average (LeNet subsampling) on 2x4, and a 3x3 window with padding 1 on a 3x3 plane: the
 * divisor stays 9 at the borders (count_include_pad). */
static void test_avg_by_hand(void **state)
{
    (void)state;
    /* clang-format off */
    const float x[8] = {1, 2, 3, 4,
                        5, 6, 7, 9};
    /* clang-format on */
    struct pool_geom g;
    float y[9];
    assert_int_equal(pool_avg_geom(&g, 2, 4, 2, 2, 2, 0, 0, 1), 0);
    pool_avg_forward(y, x, 1, &g);
    assert_float_equal(y[0], 3.5f, 1e-6);
    assert_float_equal(y[1], 5.75f, 1e-6);
    /* clang-format off */
    const float p[9] = {1, 2, 3,
                        4, 5, 6,
                        7, 8, 9};
    /* clang-format on */
    assert_int_equal(pool_avg_geom(&g, 3, 3, 3, 1, 1, 1, 0, 1), 0);
    pool_avg_forward(y, p, 1, &g);
    /* clang-format off */
    const float want[9] = {12 / 9.f, 21 / 9.f, 16 / 9.f,
                           27 / 9.f, 45 / 9.f, 33 / 9.f,
                           24 / 9.f, 39 / 9.f, 28 / 9.f};
    /* clang-format on */
    for (int i = 0; i < 9; i++)
        assert_float_equal(y[i], want[i], 1e-6);
    /* Backward: all-ones dy, each cell receives (windows covering it) / 9; corners are in 4. */
    const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float dx[9] = {0};
    pool_avg_backward(dx, ones, 1, &g);
    assert_float_equal(dx[0], 4 / 9.f, 1e-6);
    assert_float_equal(dx[1], 6 / 9.f, 1e-6);
    assert_float_equal(dx[4], 1.f, 1e-6);
    /* count_pad=0: the same windows divide by their in-image cells: corners 4, edges 6. */
    assert_int_equal(pool_avg_geom(&g, 3, 3, 3, 1, 1, 1, 0, 0), 0);
    pool_avg_forward(y, p, 1, &g);
    assert_float_equal(y[0], 12 / 4.f, 1e-6);
    assert_float_equal(y[1], 21 / 6.f, 1e-6);
    assert_float_equal(y[4], 5.f, 1e-6);
    memset(dx, 0, sizeof dx);
    pool_avg_backward(dx, ones, 1, &g);
    assert_float_equal(dx[0], 1 / 4.f + 2 / 6.f + 1 / 9.f, 1e-6);
    /* ceil, 4x4 plane k = 0..15, 3x3/2 pad 1: 3x3 outputs; the last row of windows starts at
     * row 3 and reaches the padded extent's end (row 5) after 2 rows: count_pad divides the
     * bottom-right window (cells 15 and 3 padded) by 2 * 2 = 4, count_pad=0 by 1. */
    float q[16];
    for (int i = 0; i < 16; i++)
        q[i] = (float)i;
    assert_int_equal(pool_avg_geom(&g, 4, 4, 3, 2, 2, 1, 1, 1), 0);
    assert_int_equal(g.oh * g.ow, 9);
    pool_avg_forward(y, q, 1, &g);
    assert_float_equal(y[0], (0 + 1 + 4 + 5) / 9.f, 1e-6);
    assert_float_equal(y[2], (3 + 7) / 6.f, 1e-6);
    assert_float_equal(y[8], 15 / 4.f, 1e-6);
    assert_int_equal(pool_avg_geom(&g, 4, 4, 3, 2, 2, 1, 1, 0), 0);
    pool_avg_forward(y, q, 1, &g);
    assert_float_equal(y[0], (0 + 1 + 4 + 5) / 4.f, 1e-6);
    assert_float_equal(y[2], (3 + 7) / 2.f, 1e-6);
    assert_float_equal(y[8], 15.f, 1e-6);
}

static void test_global_avg(void **state)
{
    (void)state;
    const float x[6] = {1, 2, 3, 10, 20, 60};
    float y[2];
    pool_global_avg_forward(y, x, 2, 3);
    assert_float_equal(y[0], 2.f, 1e-6);
    assert_float_equal(y[1], 30.f, 1e-6);
    const float dy[2] = {3, -6};
    float dx[6] = {1, 1, 1, 1, 1, 1};
    pool_global_avg_backward(dx, dy, 2, 3);
    assert_float_equal(dx[0], 2.f, 1e-6);
    assert_float_equal(dx[5], -1.f, 1e-6);
}

struct case_shape {
    int P, h, w, size, stride, pad;
};

/* Awkward shapes: 1x1 planes, primes, size > stride (overlap), stride > size (gaps), padding;
 * rows of 3x3/2 windows wide enough for the vector argmax kernel (8 outputs at once, the last 8
 * overlapping), with and without padding, odd and even widths. */
static const struct case_shape shapes[] = {
    {1, 1, 1, 1, 1, 0},  {3, 7, 5, 2, 2, 1},  {2, 13, 11, 3, 1, 2}, {5, 6, 9, 3, 2, 1},
    {1, 17, 3, 5, 3, 4}, {7, 4, 4, 1, 3, 0},  {3, 11, 13, 2, 5, 2}, {2, 5, 5, 5, 1, 8},
    {4, 9, 7, 4, 2, 0},  {1, 2, 2, 2, 1, 1},  {6, 3, 8, 3, 3, 2},   {3, 9, 37, 3, 2, 2},
    {2, 7, 34, 3, 2, 0}, {2, 5, 19, 3, 2, 2}, {3, 8, 56, 3, 2, 1},
};

static float *random_floats(cn_rng *r, size_t n)
{
    float *x = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(4 * cn_rng_uniform(r) - 2);
    return x;
}

static void test_max_fast_matches_naive(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 11);
    for (size_t v = 0; v < 3 * sizeof shapes / sizeof shapes[0]; v++) {
        const struct case_shape *c = &shapes[v / 3];
        int ceil_mode = v % 3 == 1, sx = c->stride + (v % 3 == 2); /* plain, ceil, sx != sy */
        struct pool_geom g;
        assert_int_equal(pool_max_geom(&g, c->h, c->w, c->size, c->stride, sx, c->pad, ceil_mode),
                         0);
        size_t ni = (size_t)c->P * (size_t)(c->h * c->w), no = (size_t)c->P * (size_t)(g.oh * g.ow);
        float *x = random_floats(&r, ni), *y = xmalloc(sizeof(float) * no);
        float *yn = xmalloc(sizeof(float) * no);
        int32_t *ix = xmalloc(sizeof(int32_t) * no), *ixn = xmalloc(sizeof(int32_t) * no);
        for (size_t i = 0; v % 2 && i < ni; i++) /* ties: the first maximum must be kept */
            x[i] = floorf(x[i]);
        pool_max_forward(y, ix, x, c->P, &g);
        pool_max_forward_naive(yn, ixn, x, c->P, &g);
        assert_memory_equal(y, yn, sizeof(float) * no);
        assert_memory_equal(ix, ixn, sizeof(int32_t) * no);
        /* The recorded index holds the output value, inside its plane. */
        for (size_t o = 0; o < no; o++) {
            size_t plane = o / (size_t)(g.oh * g.ow);
            assert_true(ix[o] >= 0 && ix[o] < c->h * c->w);
            assert_float_equal(x[plane * (size_t)(c->h * c->w) + (size_t)ix[o]], y[o], 0);
        }
        free(x), free(y), free(yn), free(ix), free(ixn);
    }
}

static void test_avg_fast_matches_naive(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 12);
    for (size_t v = 0; v < 4 * sizeof shapes / sizeof shapes[0]; v++) {
        const struct case_shape *c = &shapes[v / 4];
        int ceil_mode = (v & 1) != 0, count_pad = (v & 2) != 0, sx = c->stride + ceil_mode;
        struct pool_geom g;
        int pad = CN_MIN(c->pad, c->size / 2);
        assert_int_equal(
            pool_avg_geom(&g, c->h, c->w, c->size, c->stride, sx, pad, ceil_mode, count_pad), 0);
        size_t ni = (size_t)c->P * (size_t)(c->h * c->w), no = (size_t)c->P * (size_t)(g.oh * g.ow);
        float *x = random_floats(&r, ni), *dy = random_floats(&r, no);
        float *y = xmalloc(sizeof(float) * no), *yn = xmalloc(sizeof(float) * no);
        float *dx = random_floats(&r, ni), *dxn = xmalloc(sizeof(float) * ni);
        memcpy(dxn, dx, sizeof(float) * ni); /* both accumulate onto the same values */
        pool_avg_forward(y, x, c->P, &g);
        pool_avg_forward_naive(yn, x, c->P, &g);
        pool_avg_backward(dx, dy, c->P, &g);
        pool_avg_backward_naive(dxn, dy, c->P, &g);
        for (size_t o = 0; o < no; o++)
            assert_float_equal(y[o], yn[o], 1e-5);
        for (size_t i = 0; i < ni; i++)
            assert_float_equal(dx[i], dxn[i], 1e-5);
        free(x), free(dy), free(y), free(yn), free(dx), free(dxn);
    }
}

/* Shapes of the zoo and beyond: squeezenet's 3x3/2 ceil on 111, resnet's 3x3/2 padding 2 (one
 * per side), vgg's 2x2/2, GoogLeNet's 3x3/1 padding 2 with enough planes for threads, odd and
 * prime sides, a stride above the size. Rows of 64 and more go through the ring of reduced rows:
 * windows of 1 to 6 rows, borders at both ends, a stride above the size, and a row whose ring
 * outgrows the buffer (the direct kernel). Stride-1 centred windows of 1 to 7 rows, on planes
 * pooled whole (as few rows as the window allows) and on one too large for that. */
static const struct case_shape wide[] = {
    {2, 111, 111, 3, 2, 0}, {3, 56, 57, 3, 2, 2}, {4, 56, 56, 2, 2, 0},  {40, 30, 29, 3, 1, 2},
    {3, 37, 41, 3, 2, 2},   {2, 19, 23, 2, 3, 1}, {1, 5, 2100, 3, 2, 2}, {2, 13, 13, 5, 2, 4},
    {70, 35, 35, 3, 1, 2},  {3, 9, 64, 3, 1, 2},  {2, 11, 67, 5, 1, 4},  {2, 9, 80, 2, 3, 1},
    {2, 13, 71, 6, 2, 5},   {3, 7, 65, 1, 1, 0},  {2, 10, 97, 4, 3, 3},  {1, 4, 5000, 3, 2, 2},
    {2, 9, 10, 7, 1, 6},    {3, 3, 40, 3, 1, 2},  {2, 5, 5, 5, 1, 4},    {1, 70, 63, 3, 1, 2},
};

/* Max without argmax (the inference kernel) equals the naive loop bit for bit, as does the one
 * with argmax; both in floor and ceil mode. */
static void test_max_wide_shapes(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 21);
    for (size_t v = 0; v < 2 * sizeof wide / sizeof wide[0]; v++) {
        const struct case_shape *c = &wide[v / 2];
        struct pool_geom g;
        assert_int_equal(
            pool_max_geom(&g, c->h, c->w, c->size, c->stride, c->stride, c->pad, (int)(v & 1)), 0);
        size_t ni = (size_t)c->P * (size_t)(c->h * c->w), no = (size_t)c->P * (size_t)(g.oh * g.ow);
        float *x = random_floats(&r, ni), *y = xmalloc(sizeof(float) * no);
        float *yi = xmalloc(sizeof(float) * no), *yn = xmalloc(sizeof(float) * no);
        int32_t *ix = xmalloc(sizeof(int32_t) * no), *ixn = xmalloc(sizeof(int32_t) * no);
        for (size_t i = 0; i < ni; i += 7)
            x[i] = -INFINITY; /* never above a real value, and a whole window of them stays -inf */
        pool_max_forward(y, NULL, x, c->P, &g);
        pool_max_forward(yi, ix, x, c->P, &g);
        pool_max_forward_naive(yn, ixn, x, c->P, &g);
        assert_memory_equal(y, yn, sizeof(float) * no);
        assert_memory_equal(yi, yn, sizeof(float) * no);
        assert_memory_equal(ix, ixn, sizeof(int32_t) * no);
        free(x), free(y), free(yi), free(yn), free(ix), free(ixn);
    }
}

/* Average on the same shapes (padding at most size/2), with and without count_pad and ceil. */
static void test_avg_wide_shapes(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 22);
    for (size_t v = 0; v < 4 * sizeof wide / sizeof wide[0]; v++) {
        const struct case_shape *c = &wide[v / 4];
        int ceil_mode = (v & 1) != 0, count_pad = (v & 2) != 0, pad = CN_MIN(c->pad, c->size / 2);
        struct pool_geom g;
        assert_int_equal(
            pool_avg_geom(&g, c->h, c->w, c->size, c->stride, c->stride, pad, ceil_mode, count_pad),
            0);
        size_t ni = (size_t)c->P * (size_t)(c->h * c->w), no = (size_t)c->P * (size_t)(g.oh * g.ow);
        float *x = random_floats(&r, ni), *y = xmalloc(sizeof(float) * no);
        float *yn = xmalloc(sizeof(float) * no);
        pool_avg_forward(y, x, c->P, &g);
        pool_avg_forward_naive(yn, x, c->P, &g);
        for (size_t o = 0; o < no; o++)
            assert_float_equal(y[o], yn[o], 1e-5);
        free(x), free(y), free(yn);
    }
}

/* Global average against a double-precision sum: planes of 1, 7, 49 (7x7), 169 (13x13) and
 * 1001 cells, with enough planes at the end for threads. */
static void test_global_avg_sizes(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 23);
    const int hw[5] = {1, 7, 49, 169, 1001}, planes[5] = {3, 5, 700, 200, 40};
    for (int k = 0; k < 5; k++) {
        size_t n = (size_t)planes[k] * (size_t)hw[k];
        float *x = random_floats(&r, n), *y = xmalloc(sizeof(float) * (size_t)planes[k]);
        pool_global_avg_forward(y, x, planes[k], hw[k]);
        for (int p = 0; p < planes[k]; p++) {
            double s = 0;
            for (int i = 0; i < hw[k]; i++)
                s += x[(size_t)p * (size_t)hw[k] + (size_t)i];
            assert_float_equal(y[p], s / hw[k], 1e-5);
        }
        free(x), free(y);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_geometry),
        cmocka_unit_test(test_avg_geometry),
        cmocka_unit_test(test_max_by_hand),
        cmocka_unit_test(test_max_ties_and_negative),
        cmocka_unit_test(test_avg_by_hand),
        cmocka_unit_test(test_global_avg),
        cmocka_unit_test(test_max_fast_matches_naive),
        cmocka_unit_test(test_avg_fast_matches_naive),
        cmocka_unit_test(test_max_wide_shapes),
        cmocka_unit_test(test_avg_wide_shapes),
        cmocka_unit_test(test_global_avg_sizes),
    };
    return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
