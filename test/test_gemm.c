/* test_gemm.c - the blocked GEMM against the naive reference: awkward shapes (1, primes, every
 * tail of the 6 x 8/16/32 micro-tiles, tails of the 144 x 256 x 2048 blocks), all four transpose
 * combinations, alpha/beta variants, padded leading dimensions, beta = 0 over NaN garbage, every
 * micro-kernel variant the CPU has, and results that do not depend on the thread count; the
 * bias + activation epilogue against gemm followed by the bias and act_apply (bit for bit) and
 * the naive reference; the implicit-GEMM convolution against im2col + gemm; prepacked A with the
 * per-row scale (folded batch norm) against gemm + act_forward_affine's arithmetic; results that
 * do not depend on where an element's tile falls (full tile, row or column tail). */
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
#include "kernels/activations.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define PAD 3 /* extra floats per row of every operand */
#define SENTINEL 7.25f

struct operands {
    int M, N, K, ta, tb, lda, ldb, ldc;
    float *A, *B, *C0; /* C0: the initial C, padding columns set to SENTINEL */
};

static float *random_floats(size_t n, cn_rng *r)
{
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(2 * cn_rng_uniform(r) - 1);
    return p;
}

static struct operands make_operands(int M, int N, int K, int ta, int tb, uint64_t seed)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    struct operands o = {M, N, K, ta, tb, 0, 0, N + PAD, NULL, NULL, NULL};
    int arows = ta ? K : M, brows = tb ? N : K;
    o.lda = (ta ? M : K) + PAD;
    o.ldb = (tb ? K : N) + PAD;
    o.A = random_floats((size_t)arows * (size_t)o.lda, &r);
    o.B = random_floats((size_t)brows * (size_t)o.ldb, &r);
    o.C0 = random_floats((size_t)M * (size_t)o.ldc, &r);
    for (int i = 0; i < M; i++)
        for (int j = N; j < o.ldc; j++)
            o.C0[(size_t)i * (size_t)o.ldc + (size_t)j] = SENTINEL;
    return o;
}

static void free_operands(struct operands *o)
{
    free(o->A);
    free(o->B);
    free(o->C0);
}

static float *copy_c(const struct operands *o, int nan_fill)
{
    size_t n = (size_t)o->M * (size_t)o->ldc;
    float *c = xmalloc(sizeof(float) * (n ? n : 1));
    memcpy(c, o->C0, sizeof(float) * n);
    if (nan_fill) /* beta == 0 must not read C */
        for (int i = 0; i < o->M; i++)
            for (int j = 0; j < o->N; j++)
                c[(size_t)i * (size_t)o->ldc + (size_t)j] = NAN;
    return c;
}

/* Runs one variant and compares with gemm_naive; padding columns of C must stay untouched. */
static void check_one(const struct operands *o, enum gemm_isa isa, float alpha, float beta)
{
    float *want = copy_c(o, beta == 0), *got = copy_c(o, beta == 0);
    gemm_naive(want, o->ldc, o->A, o->lda, o->ta, o->B, o->ldb, o->tb, o->M, o->N, o->K, alpha,
               beta);
    if (isa == GEMM_ISA_AUTO)
        gemm(got, o->ldc, o->A, o->lda, o->ta, o->B, o->ldb, o->tb, o->M, o->N, o->K, alpha, beta);
    else
        assert_int_equal(gemm_isa(isa, got, o->ldc, o->A, o->lda, o->ta, o->B, o->ldb, o->tb, o->M,
                                  o->N, o->K, alpha, beta),
                         0);
    /* Operands lie in [-1, 1]: each product is below 1, so rounding stays under ~K ulps. */
    double tol = 1e-6 * (o->K + 4) * (fabs(alpha) + 1) + 1e-6 * fabs(beta);
    for (int i = 0; i < o->M; i++)
        for (int j = 0; j < o->ldc; j++) {
            size_t at = (size_t)i * (size_t)o->ldc + (size_t)j;
            if (j >= o->N) {
                assert_true(got[at] == SENTINEL);
                continue;
            }
            if (!(fabs((double)got[at] - (double)want[at]) <= tol))
                fail_msg("isa %d M=%d N=%d K=%d ta=%d tb=%d alpha=%g beta=%g: C[%d][%d] = %.7g, "
                         "naive %.7g",
                         (int)isa, o->M, o->N, o->K, o->ta, o->tb, (double)alpha, (double)beta, i,
                         j, (double)got[at], (double)want[at]);
        }
    free(want);
    free(got);
}

static int isa_available(enum gemm_isa isa)
{
    float c = 0, a = 1, b = 1;
    return gemm_isa(isa, &c, 1, &a, 1, 0, &b, 1, 0, 1, 1, 1, 1, 0) == 0;
}

static const int shapes[][3] = {
    {1, 1, 1},    {1, 1, 2},     {2, 1, 1},     {1, 7, 3},    {7, 1, 5},    {5, 3, 1},
    {6, 16, 8},   {6, 32, 8},    {7, 33, 9},    {5, 15, 31},  {13, 17, 19}, {11, 47, 2},
    {12, 64, 64}, {31, 29, 37},  {6, 25, 784},  {25, 784, 6}, {97, 257, 5}, {101, 37, 263},
    {3, 521, 7},  {193, 13, 11}, {97, 263, 257}};

static void test_shapes_transposes(void **state)
{
    (void)state;
    static const float ab[][2] = {{1, 0}, {1, 1}, {0.5f, -2}, {-1.5f, 0.25f}};
    uint64_t seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            struct operands o =
                make_operands(shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, seed++);
            for (size_t v = 0; v < sizeof ab / sizeof ab[0]; v++)
                check_one(&o, GEMM_ISA_AUTO, ab[v][0], ab[v][1]);
            free_operands(&o);
        }
}

/* Every micro-kernel variant this CPU can run, on tails in all three dimensions. */
static void test_every_kernel_variant(void **state)
{
    (void)state;
    static const int few[][3] = {{1, 1, 1}, {7, 33, 9}, {13, 17, 19}, {97, 263, 257}, {6, 50, 300}};
    int ran = 0;
    for (int isa = GEMM_ISA_PORTABLE; isa <= GEMM_ISA_AVX512; isa++) {
        if (!isa_available((enum gemm_isa)isa))
            continue;
        ran++;
        for (size_t s = 0; s < sizeof few / sizeof few[0]; s++)
            for (int t = 0; t < 4; t++) {
                struct operands o =
                    make_operands(few[s][0], few[s][1], few[s][2], t & 1, t >> 1, 100 + s);
                check_one(&o, (enum gemm_isa)isa, 1, 0);
                check_one(&o, (enum gemm_isa)isa, -0.5f, 1.5f);
                free_operands(&o);
            }
    }
    assert_true(ran >= 1); /* the portable kernel always exists */
    assert_true(isa_available(GEMM_ISA_PORTABLE));
}

/* Every tail of the micro-tile in rows (1..MR+1) and columns (1..33, past every NR), with one
 * and two K blocks, for every variant. */
static void test_every_tail(void **state)
{
    (void)state;
    static const int ks[] = {3, 300};
    for (int isa = GEMM_ISA_PORTABLE; isa <= GEMM_ISA_AVX512; isa++) {
        if (!isa_available((enum gemm_isa)isa))
            continue;
        for (int M = 1; M <= 7; M++)
            for (int N = 1; N <= 33; N++)
                for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++) {
                    int t = (M + N) & 3;
                    struct operands o = make_operands(M, N, ks[k], t & 1, t >> 1,
                                                      (uint64_t)(1000 + 40 * M + N));
                    check_one(&o, (enum gemm_isa)isa, 1, 0);
                    check_one(&o, (enum gemm_isa)isa, 0.75f, 1);
                    free_operands(&o);
                }
    }
}

/* C (ldc wide) = act(C + bias[row]) with activations.c's formulas: the epilogue's reference. */
static void bias_act_ref(float *C, int ldc, int M, int N, const float *bias, enum activation act)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * (size_t)ldc + (size_t)j];
            *c = act_apply(act, *c + (bias ? bias[i] : 0.f));
        }
}

/* The epilogue: bit for bit gemm + bias + act_apply of the same variant, and close to naive. */
static void check_bias_act(const struct operands *o, enum gemm_isa isa, float alpha, float beta,
                           const float *bias, enum activation act)
{
    float *want = copy_c(o, beta == 0), *got = copy_c(o, beta == 0), *naive = copy_c(o, beta == 0);
    size_t n = (size_t)o->M * (size_t)o->ldc;
    assert_int_equal(gemm_isa(isa, want, o->ldc, o->A, o->lda, o->ta, o->B, o->ldb, o->tb, o->M,
                              o->N, o->K, alpha, beta),
                     0);
    bias_act_ref(want, o->ldc, o->M, o->N, bias, act);
    assert_int_equal(gemm_bias_act_isa(isa, got, o->ldc, o->A, o->lda, o->ta, o->B, o->ldb, o->tb,
                                       o->M, o->N, o->K, alpha, beta, bias, act),
                     0);
    if (memcmp(want, got, sizeof(float) * n) != 0)
        fail_msg("isa %d M=%d N=%d K=%d act %s bias %s: epilogue differs from gemm + bias + act",
                 (int)isa, o->M, o->N, o->K, act_names[act], bias ? "yes" : "no");
    gemm_naive(naive, o->ldc, o->A, o->lda, o->ta, o->B, o->ldb, o->tb, o->M, o->N, o->K, alpha,
               beta);
    bias_act_ref(naive, o->ldc, o->M, o->N, bias, act);
    double tol = 1e-6 * (o->K + 4) * (fabs(alpha) + 1) + 1e-6 * (fabs(beta) + 2);
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - (double)naive[i]) <= tol))
            fail_msg("isa %d M=%d N=%d K=%d act %s: C[%zu] = %.7g, naive %.7g", (int)isa, o->M,
                     o->N, o->K, act_names[act], i, (double)got[i], (double)naive[i]);
    free(want);
    free(got);
    free(naive);
}

static void test_bias_act(void **state)
{
    (void)state;
    static const int few[][3] = {{1, 1, 1},   {7, 33, 9}, {13, 17, 300},
                                 {97, 263, 31}, {6, 8, 5},  {151, 21, 7}};
    static const enum activation acts[] = {ACT_LINEAR, ACT_RELU, ACT_LEAKY, ACT_RELU6,
                                           ACT_LOGISTIC};
    cn_rng r;
    cn_rng_seed(&r, 7);
    float *bias = random_floats(151, &r); /* one per row of the tallest case */
    for (int isa = GEMM_ISA_PORTABLE; isa <= GEMM_ISA_AVX512; isa++) {
        if (!isa_available((enum gemm_isa)isa))
            continue;
        for (size_t s = 0; s < sizeof few / sizeof few[0]; s++) {
            int t = (int)s & 3;
            struct operands o = make_operands(few[s][0], few[s][1], few[s][2], t & 1, t >> 1, 300 + s);
            for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
                check_bias_act(&o, (enum gemm_isa)isa, 1, 0, bias, acts[a]);
                check_bias_act(&o, (enum gemm_isa)isa, -0.5f, 1, bias, acts[a]);
                check_bias_act(&o, (enum gemm_isa)isa, 1, 1, NULL, acts[a]);
            }
            free_operands(&o);
        }
    }
    /* K == 0: C = act(beta * C + bias); by hand: relu(2 * {1, -3} + {0.5, 1}) = {2.5, 0}. */
    float C[2] = {1, -3}, b2[2] = {0.5f, 1}, one = 1;
    gemm_bias_act(C, 1, &one, 1, 0, &one, 1, 0, 2, 1, 0, 1, 2, b2, ACT_RELU);
    assert_float_equal(C[0], 2.5f, 0);
    assert_float_equal(C[1], 0, 0);
    /* leaky(1*2*3 + -7) = -0.1 */
    float a1 = 2, bb = 3, c1 = 0, bias1 = -7;
    gemm_bias_act(&c1, 1, &a1, 1, 0, &bb, 1, 0, 1, 1, 1, 1, 0, &bias1, ACT_LEAKY);
    assert_float_equal(c1, .1f * -1.f, 0);
    free(bias);
}

/* gemm_conv on one geometry: bit for bit im2col + gemm_bias_act of the same variant, close to
 * im2col_naive + gemm_naive. C has PAD spare columns that must stay untouched. */
static void check_conv(enum gemm_isa isa, int M, int c, int h, int w, int k, int s, int p, int d,
                       enum activation act, float beta)
{
    struct im2col_geom q;
    assert_int_equal(im2col_geom_init(&q, c, h, w, k, k, s, s, p, p, d, d), 0);
    int R = (int)im2col_rows(&q), P = (int)im2col_cols(&q), ldc = P + PAD;
    cn_rng r;
    cn_rng_seed(&r, (uint64_t)(M * 131 + c * 17 + h + k));
    float *im = random_floats((size_t)c * h * w, &r), *A = random_floats((size_t)M * R, &r);
    float *bias = random_floats((size_t)M, &r), *col = xmalloc(sizeof(float) * (size_t)R * P);
    float *C0 = random_floats((size_t)M * ldc, &r);
    float *want = xmalloc(sizeof(float) * (size_t)M * ldc), *got = xmalloc(sizeof(float) * (size_t)M * ldc);
    memcpy(want, C0, sizeof(float) * (size_t)M * ldc);
    memcpy(got, C0, sizeof(float) * (size_t)M * ldc);
    im2col(col, im, &q);
    assert_int_equal(gemm_bias_act_isa(isa, want, ldc, A, R, 0, col, P, 0, M, P, R, 1, beta, bias, act), 0);
    assert_int_equal(gemm_conv_isa(isa, got, ldc, A, R, im, &q, M, 1, beta, bias, act), 0);
    if (memcmp(want, got, sizeof(float) * (size_t)M * ldc) != 0)
        fail_msg("isa %d conv M=%d c=%d %dx%d k=%d s=%d p=%d d=%d: differs from im2col + gemm",
                 (int)isa, M, c, h, w, k, s, p, d);
    im2col_naive(col, im, &q);
    memcpy(want, C0, sizeof(float) * (size_t)M * ldc);
    gemm_naive(want, ldc, A, R, 0, col, P, 0, M, P, R, 1, beta);
    bias_act_ref(want, ldc, M, P, bias, act);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            size_t at = (size_t)i * ldc + (size_t)j;
            double tol = j < P ? 1e-6 * (R + 6) : 0;
            if (!(fabs((double)got[at] - (double)want[at]) <= tol))
                fail_msg("isa %d conv M=%d R=%d P=%d: C[%d][%d] = %.7g, naive %.7g", (int)isa, M,
                         R, P, i, j, (double)got[at], (double)want[at]);
        }
    free(im), free(A), free(bias), free(col), free(C0), free(want), free(got);
}

static void test_conv_implicit(void **state)
{
    (void)state;
    /* M, c, h, w, kernel, stride, pad, dilation: 3x3 same, strided, 1x1, 7x7/2, dilated, an
     * image narrower than a panel, one output, and enough taps for two K blocks. */
    static const int geo[][8] = {{5, 3, 9, 11, 3, 1, 1, 1}, {7, 2, 13, 8, 3, 2, 1, 1},
                                 {6, 4, 7, 7, 1, 1, 0, 1}, {13, 3, 23, 19, 7, 2, 3, 1},
                                 {4, 2, 12, 12, 3, 1, 2, 2}, {3, 5, 3, 2, 3, 1, 1, 1},
                                 {2, 1, 3, 3, 3, 1, 0, 1}, {8, 31, 6, 21, 3, 1, 1, 1}};
    for (int isa = GEMM_ISA_PORTABLE; isa <= GEMM_ISA_AVX512; isa++) {
        if (!isa_available((enum gemm_isa)isa))
            continue;
        for (size_t g = 0; g < sizeof geo / sizeof geo[0]; g++) {
            const int *x = geo[g];
            check_conv((enum gemm_isa)isa, x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7],
                       g & 1 ? ACT_LEAKY : ACT_RELU, g & 2 ? 1.f : 0.f);
        }
    }
}

/* C (ldc wide) = act(scale[row] * C + bias[row]) as act_forward_affine computes it (the product
 * rounded, then the sum): the reference of the packed entry points' epilogue. */
static void affine_ref(float *C, int ldc, int M, int N, const float *scale, const float *bias,
                       enum activation act)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *c = &C[(size_t)i * (size_t)ldc + (size_t)j];
            float z = scale ? scale[i] * *c : *c;
            *c = bias || act != ACT_LINEAR ? act_apply(act, z + (bias ? bias[i] : 0.f)) : z;
        }
}

/* gemm_packed: bit for bit gemm + affine_ref of the same variant, close to naive. */
static void check_packed(const struct operands *o, enum gemm_isa isa, float alpha, float beta,
                         const float *scale, const float *bias, enum activation act)
{
    float *want = copy_c(o, beta == 0), *got = copy_c(o, beta == 0), *naive = copy_c(o, beta == 0);
    float *Ap = xmalloc(sizeof(float) * (gemm_packed_a_floats(o->M, o->K) + 1));
    size_t n = (size_t)o->M * (size_t)o->ldc;
    gemm_pack_a_all(Ap, o->A, o->lda, o->ta, o->M, o->K);
    assert_int_equal(gemm_isa(isa, want, o->ldc, o->A, o->lda, o->ta, o->B, o->ldb, o->tb, o->M,
                              o->N, o->K, alpha, beta),
                     0);
    affine_ref(want, o->ldc, o->M, o->N, scale, bias, act);
    assert_int_equal(gemm_packed_isa(isa, got, o->ldc, Ap, o->B, o->ldb, o->tb, o->M, o->N, o->K,
                                     alpha, beta, scale, bias, act),
                     0);
    if (memcmp(want, got, sizeof(float) * n) != 0)
        fail_msg("isa %d M=%d N=%d K=%d ta=%d tb=%d act %s scale %s: packed differs from gemm + "
                 "affine",
                 (int)isa, o->M, o->N, o->K, o->ta, o->tb, act_names[act], scale ? "yes" : "no");
    gemm_naive(naive, o->ldc, o->A, o->lda, o->ta, o->B, o->ldb, o->tb, o->M, o->N, o->K, alpha,
               beta);
    affine_ref(naive, o->ldc, o->M, o->N, scale, bias, act);
    double tol = 2e-6 * (o->K + 4) * (fabs(alpha) + 1) + 2e-6 * (fabs(beta) + 2);
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - (double)naive[i]) <= tol))
            fail_msg("isa %d packed M=%d N=%d K=%d: C[%zu] = %.7g, naive %.7g", (int)isa, o->M,
                     o->N, o->K, i, (double)got[i], (double)naive[i]);
    free(want), free(got), free(naive), free(Ap);
}

/* Prepacked A with the scaled epilogue: row and column tails, one to three K blocks (K 600 >
 * 2 * 256), every transpose, every variant; and one case by hand. */
static void test_packed(void **state)
{
    (void)state;
    static const int few[][3] = {{1, 1, 1},    {7, 33, 9},  {13, 17, 300}, {97, 263, 31},
                                 {6, 16, 600}, {151, 21, 7}, {5, 49, 513}, {200, 50, 64}};
    static const enum activation acts[] = {ACT_LINEAR, ACT_RELU, ACT_LEAKY, ACT_RELU6,
                                           ACT_LOGISTIC};
    cn_rng r;
    cn_rng_seed(&r, 8);
    float *bias = random_floats(200, &r), *scale = random_floats(200, &r); /* tallest case */
    for (int isa = GEMM_ISA_PORTABLE; isa <= GEMM_ISA_AVX512; isa++) {
        if (!isa_available((enum gemm_isa)isa))
            continue;
        for (size_t s = 0; s < sizeof few / sizeof few[0]; s++) {
            int t = (int)s & 3;
            struct operands o = make_operands(few[s][0], few[s][1], few[s][2], t & 1, t >> 1, 500 + s);
            for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
                check_packed(&o, (enum gemm_isa)isa, 1, 0, scale, bias, acts[a]);
                check_packed(&o, (enum gemm_isa)isa, -0.5f, 1, scale, bias, acts[a]);
                check_packed(&o, (enum gemm_isa)isa, 1, 0, NULL, bias, acts[a]);
                check_packed(&o, (enum gemm_isa)isa, 1, 1, NULL, NULL, acts[a]);
            }
            free_operands(&o);
        }
    }
    /* By hand: A = [1 2; 3 4] (packed), B = [1; 1]: sums {3, 7}; relu(s * sum + b) with
     * s = {2, -1}, b = {1, 0.5}: {7, 0}; K == 0: relu(s * beta * C + b) = relu({2*3*1 + 1,
     * -1*3*2 + 0.5}) = {7, 0}. */
    const float a[4] = {1, 2, 3, 4}, b1[2] = {1, 1}, sc[2] = {2, -1}, sh[2] = {1, 0.5f};
    float Ap[12], c[2] = {NAN, NAN};
    assert_true(gemm_packed_a_floats(2, 2) <= 12);
    gemm_pack_a_all(Ap, a, 2, 0, 2, 2);
    gemm_packed(c, 1, Ap, b1, 1, 0, 2, 1, 2, 1, 0, sc, sh, ACT_RELU);
    assert_float_equal(c[0], 7, 0);
    assert_float_equal(c[1], 0, 0);
    float c0[2] = {1, 2};
    gemm_packed(c0, 1, Ap, b1, 1, 0, 2, 1, 0, 1, 3, sc, sh, ACT_RELU);
    assert_float_equal(c0[0], 7, 0);
    assert_float_equal(c0[1], 0, 0);
    free(bias);
    free(scale);
}

/* gemm_packed_a_col locates every element of gemm_pack_a_all's layout, padding zero. */
static void test_packed_index(void **state)
{
    (void)state;
    static const int mk[][2] = {{1, 1}, {7, 3}, {6, 256}, {13, 257}, {5, 600}, {31, 1000}};
    for (size_t s = 0; s < sizeof mk / sizeof mk[0]; s++) {
        int M = mk[s][0], K = mk[s][1];
        size_t n = gemm_packed_a_floats(M, K);
        float *A = xmalloc(sizeof(float) * (size_t)M * K), *Ap = xmalloc(sizeof(float) * n);
        unsigned char *seen = xcalloc(n, 1);
        for (size_t i = 0; i < (size_t)M * K; i++)
            A[i] = (float)(i + 1);
        gemm_pack_a_all(Ap, A, K, 0, M, K);
        int mp = (M + GEMM_PACK_ROWS - 1) / GEMM_PACK_ROWS * GEMM_PACK_ROWS;
        for (int k = 0; k < K; k++) {
            size_t at;
            int kc;
            gemm_packed_a_col(M, K, k, &at, &kc);
            for (int i = 0; i < mp; i++) {
                size_t x = at + (size_t)(i / GEMM_PACK_ROWS) * GEMM_PACK_ROWS * kc +
                           (size_t)(i % GEMM_PACK_ROWS);
                assert_true(x < n);
                assert_false(seen[x]);
                seen[x] = 1;
                assert_float_equal(Ap[x], i < M ? A[(size_t)i * K + k] : 0.f, 0);
            }
        }
        free(A), free(Ap), free(seen);
    }
}

/* gemm_conv_packed: bit for bit im2col + gemm + affine_ref of the same variant. */
static void check_conv_packed(enum gemm_isa isa, int M, int c, int h, int w, int k, int s, int p,
                              enum activation act)
{
    struct im2col_geom q;
    assert_int_equal(im2col_geom_init(&q, c, h, w, k, k, s, s, p, p, 1, 1), 0);
    int R = (int)im2col_rows(&q), P = (int)im2col_cols(&q), ldc = P + PAD;
    cn_rng r;
    cn_rng_seed(&r, (uint64_t)(M * 37 + c * 5 + h + k));
    float *im = random_floats((size_t)c * h * w, &r), *A = random_floats((size_t)M * R, &r);
    float *bias = random_floats((size_t)M, &r), *scale = random_floats((size_t)M, &r);
    float *col = xmalloc(sizeof(float) * (size_t)R * P);
    float *Ap = xmalloc(sizeof(float) * gemm_packed_a_floats(M, R));
    float *want = random_floats((size_t)M * ldc, &r), *got = xmalloc(sizeof(float) * (size_t)M * ldc);
    memcpy(got, want, sizeof(float) * (size_t)M * ldc);
    im2col(col, im, &q);
    gemm_pack_a_all(Ap, A, R, 0, M, R);
    assert_int_equal(gemm_isa(isa, want, ldc, A, R, 0, col, P, 0, M, P, R, 1, 0), 0);
    affine_ref(want, ldc, M, P, scale, bias, act);
    assert_int_equal(gemm_conv_packed_isa(isa, got, ldc, Ap, im, &q, M, 1, 0, scale, bias, act), 0);
    if (memcmp(want, got, sizeof(float) * (size_t)M * ldc) != 0)
        fail_msg("isa %d packed conv M=%d c=%d %dx%d k=%d s=%d p=%d: differs from im2col + gemm",
                 (int)isa, M, c, h, w, k, s, p);
    free(im), free(A), free(bias), free(scale), free(col), free(Ap), free(want), free(got);
}

static void test_conv_packed(void **state)
{
    (void)state;
    /* M, c, h, w, kernel, stride, pad: 3x3 same, 3x3/2, strided 1x1, 7x7/2, and enough taps
     * for three K blocks. */
    static const int geo[][7] = {{5, 3, 9, 11, 3, 1, 1}, {7, 2, 13, 8, 3, 2, 1},
                                 {13, 8, 9, 9, 1, 2, 0}, {13, 3, 23, 19, 7, 2, 3},
                                 {8, 70, 6, 21, 3, 1, 1}};
    for (int isa = GEMM_ISA_PORTABLE; isa <= GEMM_ISA_AVX512; isa++) {
        if (!isa_available((enum gemm_isa)isa))
            continue;
        for (size_t g = 0; g < sizeof geo / sizeof geo[0]; g++) {
            const int *x = geo[g];
            check_conv_packed((enum gemm_isa)isa, x[0], x[1], x[2], x[3], x[4], x[5], x[6],
                              g & 1 ? ACT_LEAKY : ACT_RELU);
        }
    }
}

/* K == 0 and alpha == 0 only scale C; beta == 0 then writes zeros over garbage. */
static void test_degenerate(void **state)
{
    (void)state;
    float C[6] = {1, 2, 3, 4, 5, 6}, A[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    gemm(C, 3, A, 1, 0, A, 3, 0, 2, 3, 0, 1, 2);
    for (int i = 0; i < 6; i++)
        assert_float_equal(C[i], 2 * (i + 1), 0);
    float G[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    const float one[6] = {1, 1, 1, 1, 1, 1};
    gemm(G, 3, one, 2, 0, one, 3, 0, 2, 3, 2, 0, 0);
    for (int i = 0; i < 6; i++)
        assert_float_equal(G[i], 0, 0);
    gemm(G, 3, one, 2, 0, one, 3, 0, 0, 3, 2, 1, 0); /* M == 0: nothing, no crash */
    /* A 2x2 case by hand: [1 2; 3 4] * [5 6; 7 8] = [19 22; 43 50], then 2*that + 1*C. */
    const float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    float c[4] = {1, 1, 1, 1};
    gemm(c, 2, a, 2, 0, b, 2, 0, 2, 2, 2, 2, 1);
    assert_float_equal(c[0], 39, 0);
    assert_float_equal(c[1], 45, 0);
    assert_float_equal(c[2], 87, 0);
    assert_float_equal(c[3], 101, 0);
    /* A^T * B^T: [1 3; 2 4] * [5 7; 6 8] = [23 31; 34 46]. */
    gemm(c, 2, a, 2, 1, b, 2, 1, 2, 2, 2, 1, 0);
    assert_float_equal(c[0], 23, 0);
    assert_float_equal(c[1], 31, 0);
    assert_float_equal(c[2], 34, 0);
    assert_float_equal(c[3], 46, 0);
}

/* Where an element's tile falls (a full tile, a row tail, a column tail of the half, the
 * two-panel half or the narrow kernel) does not change its bits: the leading M' x N' block of a product, computed on
 * its own, equals that block of the M x N product, with alpha, beta, a per-row scale and bias
 * and an activation, for both layouts of B and every variant. */
static void test_tile_position_invariance(void **state)
{
    (void)state;
    enum { M = 13, N = 50 };
    static const int ks[] = {3, 300}, ms[] = {1, 2, 4, 5, 6, 7, 12, 13};
    static const int ns[] = {1, 2, 3, 4, 5, 8, 9, 12, 16, 17, 20, 33, 48};
    cn_rng r;
    cn_rng_seed(&r, 77);
    float *scale = random_floats(M, &r), *bias = random_floats(M, &r);
    for (int isa = GEMM_ISA_PORTABLE; isa <= GEMM_ISA_AVX512; isa++) {
        if (!isa_available((enum gemm_isa)isa))
            continue;
        for (size_t k = 0; k < sizeof ks / sizeof ks[0]; k++)
            for (int tb = 0; tb < 2; tb++) {
                struct operands o = make_operands(M, N, ks[k], 0, tb, (uint64_t)(500 + 2 * k + tb));
                float *ap = xmalloc(sizeof(float) * gemm_packed_a_floats(M, o.K));
                float *full = copy_c(&o, 0), *part = xmalloc(sizeof(float) * (size_t)M * o.ldc);
                gemm_pack_a_all(ap, o.A, o.lda, 0, M, o.K);
                assert_int_equal(gemm_packed_isa((enum gemm_isa)isa, full, o.ldc, ap, o.B, o.ldb,
                                                 tb, M, N, o.K, 0.75f, 1.5f, scale, bias,
                                                 ACT_RELU6),
                                 0);
                for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
                    for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
                        int m = ms[a], n = ns[b];
                        memcpy(part, o.C0, sizeof(float) * (size_t)M * o.ldc);
                        gemm_pack_a_all(ap, o.A, o.lda, 0, m, o.K);
                        assert_int_equal(gemm_packed_isa((enum gemm_isa)isa, part, o.ldc, ap, o.B,
                                                         o.ldb, tb, m, n, o.K, 0.75f, 1.5f, scale,
                                                         bias, ACT_RELU6),
                                         0);
                        for (int i = 0; i < m; i++)
                            for (int j = 0; j < n; j++)
                                if (memcmp(part + (size_t)i * o.ldc + j,
                                           full + (size_t)i * o.ldc + j, sizeof(float)) != 0)
                                    fail_msg("isa %d K=%d tb=%d: C[%d][%d] of the %d x %d block "
                                             "differs from the %d x %d product's",
                                             isa, o.K, tb, i, j, m, n, M, N);
                    }
                free(ap);
                free(full);
                free(part);
                free_operands(&o);
            }
    }
    free(scale);
    free(bias);
}

/* The narrow kernel's groups of panels (8 at once for one column, 6 for two, 4 for three, 3 for
 * four; then groups of 2 and 1, the last panel short): the 49..52 columns of a 7x7 map with 53
 * and 97 rows, with a scale, bias, residual and relu6, bit for bit the same columns of a
 * 64-column product, where the full kernel computes them. */
static void test_narrow_groups(void **state)
{
    (void)state;
    static const int ms[] = {53, 97};
    cn_rng r;
    cn_rng_seed(&r, 91);
    float *scale = random_floats(97, &r), *bias = random_floats(97, &r);
    for (int isa = GEMM_ISA_AVX2; isa <= GEMM_ISA_AVX512; isa++) {
        if (!isa_available((enum gemm_isa)isa))
            continue;
        for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
            for (int tb = 0; tb < 2; tb++) {
                int M = ms[a];
                struct operands o = make_operands(M, 64, 300, 0, tb, (uint64_t)(900 + 2 * a + tb));
                float *ap = xmalloc(sizeof(float) * gemm_packed_a_floats(M, o.K));
                float *res = random_floats((size_t)M * o.ldc, &r);
                float *full = copy_c(&o, 0), *part = copy_c(&o, 0);
                gemm_pack_a_all(ap, o.A, o.lda, 0, M, o.K);
                assert_int_equal(gemm_packed_res_isa((enum gemm_isa)isa, full, o.ldc, ap, o.B,
                                                     o.ldb, tb, M, 64, o.K, 0.75f, 1.5f, scale,
                                                     bias, res, ACT_RELU6),
                                 0);
                for (int n = 49; n <= 52; n++) {
                    memcpy(part, o.C0, sizeof(float) * (size_t)M * o.ldc);
                    assert_int_equal(gemm_packed_res_isa((enum gemm_isa)isa, part, o.ldc, ap, o.B,
                                                         o.ldb, tb, M, n, o.K, 0.75f, 1.5f, scale,
                                                         bias, res, ACT_RELU6),
                                     0);
                    for (int i = 0; i < M; i++)
                        if (memcmp(part + (size_t)i * o.ldc, full + (size_t)i * o.ldc,
                                   sizeof(float) * (size_t)n) != 0)
                            fail_msg("isa %d M=%d N=%d tb=%d: row %d differs from the 64-column "
                                     "product's", isa, M, n, tb, i);
                }
                free(ap), free(res), free(full), free(part);
                free_operands(&o);
            }
    }
    free(scale);
    free(bias);
}

/* A product big enough to be split over threads gives the same bits on one thread. */
static void test_thread_count_invariance(void **state)
{
    (void)state;
#ifdef _OPENMP
    struct operands o = make_operands(200, 600, 300, 0, 1, 42);
    float *one = copy_c(&o, 0), *many = copy_c(&o, 0);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    gemm(one, o.ldc, o.A, o.lda, 0, o.B, o.ldb, 1, o.M, o.N, o.K, 1, 0.5f);
    omp_set_num_threads(saved > 1 ? saved : 2);
    gemm(many, o.ldc, o.A, o.lda, 0, o.B, o.ldb, 1, o.M, o.N, o.K, 1, 0.5f);
    omp_set_num_threads(saved);
    assert_memory_equal(one, many, sizeof(float) * (size_t)o.M * (size_t)o.ldc);
    free(one);
    free(many);
    free_operands(&o);
    /* The same for the fused convolution: a 3x3 layer, 64 filters over 16 x 20 x 20. */
    struct im2col_geom q;
    assert_int_equal(im2col_geom_init(&q, 16, 20, 20, 3, 3, 1, 1, 1, 1, 1, 1), 0);
    int R = (int)im2col_rows(&q), P = (int)im2col_cols(&q), F = 64;
    cn_rng r;
    cn_rng_seed(&r, 43);
    float *im = random_floats((size_t)16 * 400, &r), *w = random_floats((size_t)F * R, &r);
    float *bias = random_floats((size_t)F, &r);
    float *c1 = xmalloc(sizeof(float) * (size_t)F * P), *c2 = xmalloc(sizeof(float) * (size_t)F * P);
    omp_set_num_threads(1);
    gemm_conv(c1, P, w, R, im, &q, F, 1, 0, bias, ACT_LEAKY);
    omp_set_num_threads(saved > 1 ? saved : 2);
    gemm_conv(c2, P, w, R, im, &q, F, 1, 0, bias, ACT_LEAKY);
    omp_set_num_threads(saved);
    assert_memory_equal(c1, c2, sizeof(float) * (size_t)F * P);
    free(im), free(w), free(bias), free(c1), free(c2);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_transposes),
        cmocka_unit_test(test_every_kernel_variant),
        cmocka_unit_test(test_every_tail),
        cmocka_unit_test(test_bias_act),
        cmocka_unit_test(test_conv_implicit),
        cmocka_unit_test(test_packed),
        cmocka_unit_test(test_packed_index),
        cmocka_unit_test(test_conv_packed),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_tile_position_invariance),
        cmocka_unit_test(test_narrow_groups),
        cmocka_unit_test(test_thread_count_invariance),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
