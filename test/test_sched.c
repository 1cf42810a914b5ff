/* test_sched.c - gemm's dynamic tile schedule (2 or more threads: tiles handed out from a shared
 * counter) gives the same bits as one thread, whatever the thread count (1, 2, 3, 7: more threads
 * than cores or tiles too) and whichever thread takes which tile: plain gemm over all four
 * transposes, a few rows read in place, many rows in several chunks, K in several blocks, the
 * implicit-GEMM convolution, and prepacked A with the full epilogue (scale, bias, residual,
 * relu6), with B packed by each tile or once for all the tiles (shapes of few columns). Every
 * product is above gemm's threshold for threads. Each is also checked against the naive
 * reference within a tolerance, so that a schedule that skipped a tile fails. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

#ifdef _OPENMP
static const int threads[] = {2, 3, 7};

static float *random_floats(size_t n, uint64_t seed)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(2 * cn_rng_uniform(&r) - 1);
    return p;
}

/* One product of M x N into c (ldc = N), given the thread count: what each case computes. */
typedef void (*product_fn)(float *c, const void *ctx);

/* The product on 1 thread, then on each of threads[], from the same initial C: identical bits. */
static void assert_thread_invariant(product_fn run, const void *ctx, int M, int N, const char *what)
{
    size_t n = (size_t)M * (size_t)N;
    float *c0 = random_floats(n, 99), *one = xmalloc(sizeof(float) * n);
    float *many = xmalloc(sizeof(float) * n);
    int saved = omp_get_max_threads();
    memcpy(one, c0, sizeof(float) * n);
    omp_set_num_threads(1);
    run(one, ctx);
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        memcpy(many, c0, sizeof(float) * n);
        omp_set_num_threads(threads[t]);
        run(many, ctx);
        for (size_t i = 0; i < n; i++)
            if (memcmp(&one[i], &many[i], sizeof(float)) != 0) {
                omp_set_num_threads(saved);
                fail_msg("%s, %d threads: C[%zu] = %.9g, on 1 thread %.9g", what, threads[t], i,
                         (double)many[i], (double)one[i]);
            }
    }
    omp_set_num_threads(saved);
    free(c0), free(one), free(many);
}

struct plain {
    int M, N, K, ta, tb;
    const float *A, *B;
};

static void run_plain(float *c, const void *ctx)
{
    const struct plain *p = ctx;
    gemm(c, p->N, p->A, p->ta ? p->M : p->K, p->ta, p->B, p->tb ? p->K : p->N, p->tb, p->M, p->N,
         p->K, 1.f, 0.5f);
}

/* 1-thread gemm against the naive reference: the schedule covered every element. */
static void assert_near_naive(const struct plain *p)
{
    size_t n = (size_t)p->M * (size_t)p->N;
    float *c = random_floats(n, 5), *ref = xmalloc(sizeof(float) * n);
    memcpy(ref, c, sizeof(float) * n);
    omp_set_num_threads(3);
    run_plain(c, p);
    gemm_naive(ref, p->N, p->A, p->ta ? p->M : p->K, p->ta, p->B, p->tb ? p->K : p->N, p->tb, p->M,
               p->N, p->K, 1.f, 0.5f);
    for (size_t i = 0; i < n; i++)
        assert_true(fabsf(c[i] - ref[i]) <= 1e-4f * (float)p->K);
    free(c), free(ref);
}
#endif

/* Plain gemm on shapes that exercise each way of cutting C. */
static void test_plain_shapes(void **state)
{
    (void)state;
#ifdef _OPENMP
    static const int shapes[][3] = {
        {1, 3001, 700},  /* one row: columns only */
        {7, 5003, 33},   /* few rows, B read in place */
        {301, 67, 513},  /* K in 3 blocks, a column tail */
        {1000, 40, 300}, /* many rows, few columns: row chunks */
        {64, 3136, 64},  /* a ResNet 1x1 */
        {2048, 49, 97},  /* a 7x7 map, narrow tail */
        {300, 600, 300}, /* B shared by row chunks, in column blocks */
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tt = 0; tt < 4; tt++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            float *A = random_floats((size_t)M * K, 1 + s);
            float *B = random_floats((size_t)K * N, 2 + s);
            struct plain p = {M, N, K, tt & 1, tt >> 1, A, B};
            char what[64];
            snprintf(what, sizeof what, "gemm M=%d N=%d K=%d ta=%d tb=%d", M, N, K, p.ta, p.tb);
            assert_thread_invariant(run_plain, &p, M, N, what);
            if (tt == 0)
                assert_near_naive(&p);
            free(A), free(B);
        }
#else
    skip();
#endif
}

#ifdef _OPENMP
struct packed {
    int M, N, K;
    const float *Ap, *B, *scale, *bias, *res;
    const struct im2col_geom *q;
};

static void run_packed(float *c, const void *ctx)
{
    const struct packed *p = ctx;
    if (p->q)
        assert_int_equal(gemm_conv_packed_res_isa(GEMM_ISA_AUTO, c, p->N, p->Ap, p->B, p->q, p->M,
                                                  1.f, 0.f, p->scale, p->bias, p->res, ACT_RELU6),
                         0);
    else
        assert_int_equal(gemm_packed_res_isa(GEMM_ISA_AUTO, c, p->N, p->Ap, p->B, p->N, 0, p->M,
                                             p->N, p->K, 0.75f, 1.5f, p->scale, p->bias, p->res,
                                             ACT_RELU6),
                         0);
}

static void run_conv(float *c, const void *ctx)
{
    const struct packed *p = ctx;
    gemm_conv(c, p->N, p->Ap, p->K, p->B, p->q, p->M, 1.f, 0.f, p->bias, ACT_LEAKY);
}
#endif

/* Prepacked A with scale, bias, residual and relu6; the implicit-GEMM convolution, plain and
 * prepacked. */
static void test_packed_and_conv(void **state)
{
    (void)state;
#ifdef _OPENMP
    static const int shapes[][3] = {
        {256, 196, 1024}, {13, 4096, 64}, {517, 77, 129}, {600, 520, 300}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = random_floats((size_t)M * K, 10 + s), *B = random_floats((size_t)K * N, 20 + s);
        float *Ap = xmalloc(sizeof(float) * gemm_packed_a_floats(M, K));
        float *scale = random_floats((size_t)M, 30), *bias = random_floats((size_t)M, 31);
        float *res = random_floats((size_t)M * N, 32);
        gemm_pack_a_all(Ap, A, K, 0, M, K);
        struct packed p = {M, N, K, Ap, B, scale, bias, res, NULL};
        assert_thread_invariant(run_packed, &p, M, N, "packed + residual");
        free(A), free(B), free(Ap), free(scale), free(bias), free(res);
    }
    /* 3x3 stride 2 over 19 x 23 x 23 (odd sizes), 70 filters; 3x3 over 64 x 9 x 9, 300 filters
     * (B shared by row chunks) */
    static const int convs[][4] = {{19, 23, 2, 70}, {64, 9, 1, 300}};
    for (size_t s = 0; s < sizeof convs / sizeof convs[0]; s++) {
        int C = convs[s][0], H = convs[s][1], S = convs[s][2], F = convs[s][3];
        struct im2col_geom q;
        assert_int_equal(im2col_geom_init(&q, C, H, H, 3, 3, S, S, 1, 1, 1, 1), 0);
        int R = (int)im2col_rows(&q), P = (int)im2col_cols(&q);
        float *im = random_floats((size_t)C * H * H, 40 + s);
        float *w = random_floats((size_t)F * R, 41 + s);
        float *Ap = xmalloc(sizeof(float) * gemm_packed_a_floats(F, R));
        float *bias = random_floats((size_t)F, 42 + s);
        gemm_pack_a_all(Ap, w, R, 0, F, R);
        struct packed pc = {F, P, R, w, im, NULL, bias, NULL, &q};
        assert_thread_invariant(run_conv, &pc, F, P, "gemm_conv");
        pc.Ap = Ap;
        assert_thread_invariant(run_packed, &pc, F, P, "gemm_conv_packed");
        free(im), free(w), free(Ap), free(bias);
    }
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_shapes),
        cmocka_unit_test(test_packed_and_conv),
    };
    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
