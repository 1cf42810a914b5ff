/* test_im2col.c - im2col / im2row / col2im: output sizes, small cases by hand (one dilated), the
 * fast kernels against the naive ones on awkward geometries (1x1, 1x7, kernels wider than the
 * image with padding, strides past the kernel, dilations in one or both axes), a convolution
 * through im2col + GEMM against a direct convolution, and col2im as the adjoint of im2col
 * (accumulating). */
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
#include "kernels/gemm.h"
#include "kernels/im2col.h"

/* c, h, w, kh, kw, sh, sw, ph, pw, dh, dw */
static const int geoms[][11] = {
    {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1},   {2, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1},
    {3, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1},   {1, 4, 4, 5, 5, 1, 1, 2, 2, 1, 1},
    {2, 3, 2, 5, 5, 2, 2, 2, 2, 1, 1},   {1, 9, 9, 1, 7, 1, 1, 0, 3, 1, 1},
    {2, 8, 5, 7, 1, 1, 1, 3, 0, 1, 1},   {1, 11, 13, 2, 3, 3, 4, 0, 1, 1, 1},
    {3, 6, 6, 1, 1, 1, 1, 0, 0, 1, 1},   {2, 6, 7, 1, 1, 2, 2, 0, 0, 1, 1},
    {1, 5, 5, 3, 3, 5, 5, 0, 0, 1, 1},   {1, 2, 9, 2, 4, 1, 2, 1, 3, 1, 1},
    {4, 13, 11, 5, 3, 2, 1, 2, 1, 1, 1}, {1, 1, 3, 3, 3, 1, 1, 1, 0, 1, 1},
    {1, 3, 3, 3, 3, 1, 1, 4, 4, 1, 1},   {2, 9, 8, 3, 3, 1, 1, 2, 2, 2, 2},
    {1, 11, 13, 3, 2, 2, 1, 1, 3, 3, 2}, {3, 7, 7, 3, 3, 2, 2, 0, 0, 3, 1},
    {1, 5, 12, 1, 7, 1, 2, 0, 6, 1, 2},  {1, 4, 4, 2, 2, 3, 3, 1, 1, 3, 3},
    {2, 7, 5, 7, 1, 1, 1, 6, 0, 2, 1},   {1, 6, 6, 2, 2, 1, 1, 0, 0, 5, 5},
};
#define NGEOMS (sizeof geoms / sizeof geoms[0])

static struct im2col_geom geom_at(size_t i)
{
    const int *v = geoms[i];
    struct im2col_geom g;
    assert_int_equal(
        im2col_geom_init(&g, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]), 0);
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

static size_t image_size(const struct im2col_geom *g)
{
    return (size_t)g->c * (size_t)g->h * (size_t)g->w;
}

static void test_geometry(void **state)
{
    (void)state;
    struct im2col_geom g;
    assert_int_equal(im2col_geom_init(&g, 3, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1), 0);
    assert_int_equal(g.oh, 28);
    assert_int_equal(g.ow, 28);
    assert_int_equal(im2col_rows(&g), 75);
    assert_int_equal(im2col_cols(&g), 784);
    assert_int_equal(im2col_geom_init(&g, 1, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1), 0);
    assert_int_equal(g.oh, 4);
    assert_int_equal(g.ow, 3);
    assert_int_equal(im2col_geom_init(&g, 1, 224, 224, 1, 7, 1, 1, 0, 3, 1, 1), 0);
    assert_int_equal(g.oh, 224);
    assert_int_equal(g.ow, 224);
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 5, 5, 1, 1, 0, 0, 1, 1), -1); /* does not fit */
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 5, 5, 1, 1, 1, 0, 1, 1),
                     -1); /* fits in h only */
    assert_int_equal(im2col_geom_init(&g, 0, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1), -1);
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 1, 1, 0, 1, 0, 0, 1, 1), -1);
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 1, 1, 1, 1, -1, 0, 1, 1), -1);
    /* Dilation D spreads k taps over D*(k-1)+1 cells: 3x3 at D = 2 spans 5x5. */
    assert_int_equal(im2col_geom_init(&g, 1, 9, 8, 3, 3, 1, 1, 0, 0, 2, 2), 0);
    assert_int_equal(g.oh, 5);
    assert_int_equal(g.ow, 4);
    assert_int_equal(im2col_rows(&g), 9);
    assert_int_equal(im2col_geom_init(&g, 1, 9, 8, 3, 3, 2, 1, 2, 2, 2, 2), 0); /* "same" */
    assert_int_equal(g.oh, 5);
    assert_int_equal(g.ow, 8);
    /* 7x1 at dilation 2 (x: 3, irrelevant for one column) spans 13 rows. */
    assert_int_equal(im2col_geom_init(&g, 1, 13, 5, 7, 1, 1, 1, 0, 0, 2, 3), 0);
    assert_int_equal(g.oh, 1);
    assert_int_equal(g.ow, 5);
    assert_int_equal(im2col_geom_init(&g, 1, 12, 5, 7, 1, 1, 1, 0, 0, 2, 3), -1);
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 3, 3, 1, 1, 0, 0, 2, 2), -1); /* 5 > 4 */
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 3, 3, 1, 1, 0, 1, 1, 2), 0);  /* 5 <= 6 */
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 3, 3, 1, 1, 0, 0, 1, 0), -1);
}

/* 1 channel 3x3, kernel 2x2, stride 1, padding 1 on the left/right only: OH = 2, OW = 4. */
static void test_by_hand(void **state)
{
    (void)state;
    const float im[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct im2col_geom g;
    assert_int_equal(im2col_geom_init(&g, 1, 3, 3, 2, 2, 1, 1, 0, 1, 1, 1), 0);
    assert_int_equal(g.oh, 2);
    assert_int_equal(g.ow, 4);
    /* Tap (ki, kj) at (oy, ox) reads im[oy + ki][ox - 1 + kj]. */
    /* clang-format off */
    const float want[4][8] = {
        {0, 1, 2, 3,  0, 4, 5, 6},  /* ki 0, kj 0 */
        {1, 2, 3, 0,  4, 5, 6, 0},  /* ki 0, kj 1 */
        {0, 4, 5, 6,  0, 7, 8, 9},  /* ki 1, kj 0 */
        {4, 5, 6, 0,  7, 8, 9, 0},  /* ki 1, kj 1 */
    };
    /* clang-format on */
    float col[32], row[32];
    im2col(col, im, &g);
    im2row(row, im, &g);
    for (int r = 0; r < 4; r++)
        for (int p = 0; p < 8; p++) {
            assert_float_equal(col[r * 8 + p], want[r][p], 0);
            assert_float_equal(row[p * 4 + r], want[r][p], 0);
        }
    /* col2im of all ones counts how many taps read each cell, added to what is there. */
    float ones[32], counts[9] = {10, 10, 10, 10, 10, 10, 10, 10, 10};
    for (int i = 0; i < 32; i++)
        ones[i] = 1;
    col2im(counts, ones, &g);
    const float want_counts[9] = {12, 12, 12, 14, 14, 14, 12, 12, 12};
    for (int i = 0; i < 9; i++)
        assert_float_equal(counts[i], want_counts[i], 0);
}

/* 1 channel 4x4 holding 0..15, kernel 2x2 at dilation 2, no padding: OH = OW = (4 - 3) + 1 = 2,
 * and tap (ki, kj) at (oy, ox) reads im[oy + 2*ki][ox + 2*kj]. */
static void test_dilated_by_hand(void **state)
{
    (void)state;
    float im[16];
    for (int i = 0; i < 16; i++)
        im[i] = (float)i;
    struct im2col_geom g;
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 2, 2, 1, 1, 0, 0, 2, 2), 0);
    assert_int_equal(g.oh, 2);
    assert_int_equal(g.ow, 2);
    const float want[4][4] = {{0, 1, 4, 5}, {2, 3, 6, 7}, {8, 9, 12, 13}, {10, 11, 14, 15}};
    float col[16], row[16], naive[16];
    im2col(col, im, &g);
    im2row(row, im, &g);
    im2col_naive(naive, im, &g);
    for (int r = 0; r < 4; r++)
        for (int p = 0; p < 4; p++) {
            assert_float_equal(col[r * 4 + p], want[r][p], 0);
            assert_float_equal(row[p * 4 + r], want[r][p], 0);
            assert_float_equal(naive[r * 4 + p], want[r][p], 0);
        }
    /* With padding 1 at stride 3: OH = (4 + 2 - 3)/3 + 1 = 2; (1, 1) reads from (2, 2) on. */
    assert_int_equal(im2col_geom_init(&g, 1, 4, 4, 2, 2, 3, 3, 1, 1, 2, 2), 0);
    assert_int_equal(g.oh, 2);
    im2col(col, im, &g);
    const float want_pad[4][4] = {{0, 0, 0, 10}, {0, 0, 9, 0}, {0, 6, 0, 0}, {5, 0, 0, 0}};
    for (int r = 0; r < 4; r++)
        for (int p = 0; p < 4; p++)
            assert_float_equal(col[r * 4 + p], want_pad[r][p], 0);
    /* col2im of ones: each cell counts the taps that read it, only 5, 6, 9 and 10 once. */
    float ones[16], counts[16] = {0};
    for (int i = 0; i < 16; i++)
        ones[i] = 1;
    col2im(counts, ones, &g);
    for (int i = 0; i < 16; i++)
        assert_float_equal(counts[i], i == 5 || i == 6 || i == 9 || i == 10, 0);
}

static void test_fast_matches_naive(void **state)
{
    (void)state;
    for (size_t i = 0; i < NGEOMS; i++) {
        struct im2col_geom g = geom_at(i);
        size_t R = im2col_rows(&g), P = im2col_cols(&g), n = image_size(&g);
        float *im = random_floats(n, 10 + i), *col = random_floats(R * P, 20 + i);
        float *fast = random_floats(R * P, 30 + i), *naive = random_floats(R * P, 40 + i);
        float *row = random_floats(R * P, 50 + i);
        im2col(fast, im, &g);
        im2col_naive(naive, im, &g);
        assert_memory_equal(fast, naive, sizeof(float) * R * P);
        im2row(row, im, &g);
        for (size_t r = 0; r < R; r++)
            for (size_t p = 0; p < P; p++)
                assert_true(row[p * R + r] == naive[r * P + p]);
        float *a = random_floats(n, 60 + i), *b = xmalloc(sizeof(float) * n);
        memcpy(b, a, sizeof(float) * n);
        col2im(a, col, &g);
        col2im_naive(b, col, &g);
        for (size_t k = 0; k < n; k++)
            assert_float_equal(a[k], b[k], 1e-5);
        free(im);
        free(col);
        free(fast);
        free(naive);
        free(row);
        free(a);
        free(b);
    }
}

/* out[f][oy][ox] = sum over c, ki, kj of w[f][c][ki][kj] * im[c][oy*sh-ph+ki*dh][ox*sw-pw+kj*dw].
 */
static void direct_conv(float *out, const float *im, const float *w, int F,
                        const struct im2col_geom *g)
{
    for (int f = 0; f < F; f++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                double s = 0;
                for (int c = 0; c < g->c; c++)
                    for (int ki = 0; ki < g->kh; ki++)
                        for (int kj = 0; kj < g->kw; kj++) {
                            int iy = oy * g->sh - g->ph + ki * g->dh;
                            int ix = ox * g->sw - g->pw + kj * g->dw;
                            if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                continue;
                            s += (double)w[((f * g->c + c) * g->kh + ki) * g->kw + kj] *
                                 im[(c * g->h + iy) * g->w + ix];
                        }
                out[(f * g->oh + oy) * g->ow + ox] = (float)s;
            }
}

static void test_convolution(void **state)
{
    (void)state;
    const int F = 3;
    for (size_t i = 0; i < NGEOMS; i++) {
        struct im2col_geom g = geom_at(i);
        size_t R = im2col_rows(&g), P = im2col_cols(&g);
        float *im = random_floats(image_size(&g), 70 + i), *w = random_floats(F * R, 80 + i);
        float *col = xmalloc(sizeof(float) * R * P), *want = xmalloc(sizeof(float) * F * P);
        float *got = xmalloc(sizeof(float) * F * P);
        im2col(col, im, &g);
        gemm(got, (int)P, w, (int)R, 0, col, (int)P, 0, F, (int)P, (int)R, 1, 0);
        direct_conv(want, im, w, F, &g);
        for (size_t k = 0; k < F * P; k++)
            assert_float_equal(got[k], want[k], 1e-5 * (double)R);
        free(im);
        free(w);
        free(col);
        free(want);
        free(got);
    }
}

/* <im2col(x), y> == <x, col2im(y)>: col2im is im2col's adjoint, as backward needs. */
static void test_adjoint(void **state)
{
    (void)state;
    for (size_t i = 0; i < NGEOMS; i++) {
        struct im2col_geom g = geom_at(i);
        size_t R = im2col_rows(&g), P = im2col_cols(&g), n = image_size(&g);
        float *x = random_floats(n, 90 + i), *y = random_floats(R * P, 100 + i);
        float *col = xmalloc(sizeof(float) * R * P), *back = xcalloc(n, sizeof(float));
        im2col(col, x, &g);
        col2im(back, y, &g);
        double lhs = 0, rhs = 0;
        for (size_t k = 0; k < R * P; k++)
            lhs += (double)col[k] * y[k];
        for (size_t k = 0; k < n; k++)
            rhs += (double)x[k] * back[k];
        assert_float_equal(lhs, rhs, 1e-4 * (1 + fabs(lhs)));
        free(x);
        free(y);
        free(col);
        free(back);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_dilated_by_hand), cmocka_unit_test(test_fast_matches_naive),
        cmocka_unit_test(test_convolution),     cmocka_unit_test(test_adjoint),
    };
    return cmocka_run_group_tests_name("im2col", tests, NULL, NULL);
}
