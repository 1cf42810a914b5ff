/* test_gemm.c - the blocked GEMM against the naive reference: awkward shapes (1, primes, tails
 * of the 6 x 16/32 micro-tile and of the 96 x 256 x 256 blocks), all four transpose combinations,
 * alpha/beta variants, padded leading dimensions, beta = 0 over NaN garbage, every micro-kernel
 * variant the CPU has, and results that do not depend on the thread count. */
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
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_transposes),
        cmocka_unit_test(test_every_kernel_variant),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_thread_count_invariance),
    };
    return cmocka_run_group_tests_name("gemm", tests, NULL, NULL);
}
