/* test_depthwise.c - the direct single-plane convolution kernels against their naive references
 * on awkward geometries (1x1, 1x7 and 7x1, primes, kernels wider than the plane with padding,
 * strides past the kernel, dilations), a case worked by hand, the two backward kernels as the
 * adjoints of the forward one in the plane and in the kernel, and the 3x3 fast path with its
 * fused epilogue on every tail width, the 3x3 backward fast path (both gradients) on every
 * tail width, and the grouped 3x3 kernel (several channels per group) against its reference,
 * also on a thread with a 64 KB stack (the kernels keep their bands in the caller's scratch), as
 * the plane kernels on one of 32 KB (their rings too). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/rng.h"
#include "kernels/activations.h"
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

/* The plane kernels' scratch for g, filled with garbage (the kernels must not read it first). */
static float *plane_scratch(const struct im2col_geom *g, uint64_t seed)
{
    return random_floats(CN_MAX(depthwise_scratch(g), (size_t)1), seed);
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
    depthwise_forward(out, plane, k, NULL, &g); /* 2x2: no scratch */
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
        float *b = random_floats(m, 50 + i), *ws = plane_scratch(&g, 55 + i);
        depthwise_forward(a, x, k, ws, &g);
        depthwise_forward_naive(b, x, k, &g);
        for (size_t j = 0; j < m; j++)
            assert_float_equal(a[j], b[j], 1e-5 * (double)kk);
        float *dxa = random_floats(n, 60 + i), *dxb = xmalloc(sizeof(float) * n);
        memcpy(dxb, dxa, sizeof(float) * n); /* both accumulate onto the same values */
        depthwise_backward_data(dxa, dy, k, ws, &g);
        depthwise_backward_data_naive(dxb, dy, k, &g);
        for (size_t j = 0; j < n; j++)
            assert_float_equal(dxa[j], dxb[j], 1e-5 * (double)kk);
        float *dka = random_floats(kk, 70 + i), *dkb = xmalloc(sizeof(float) * kk);
        memcpy(dkb, dka, sizeof(float) * kk);
        depthwise_backward_kernel(dka, dy, x, ws, &g);
        depthwise_backward_kernel_naive(dkb, dy, x, &g);
        for (size_t j = 0; j < kk; j++)
            assert_float_equal(dka[j], dkb[j], 1e-5 * (double)m);
        free(x), free(k), free(dy), free(a), free(b), free(dxa), free(dxb), free(dka), free(dkb);
        free(ws);
    }
}

/* The 3x3 fast path (stride 1 and 2, padding 0, 1, 2, output widths 1 .. 19 so every tail of a
 * vector, a wide plane, and one wider than its row ring) with each epilogue against the naive
 * forward followed by act_forward_affine: within rounding of the sums before the epilogue. */
static void check_fused(int h, int w, int s, int p, enum activation act, uint64_t seed)
{
    struct im2col_geom g;
    if (im2col_geom_init(&g, 1, h, w, 3, 3, s, s, p, p, 1, 1))
        return; /* the kernel does not fit */
    size_t n = (size_t)h * (size_t)w, m = im2col_cols(&g);
    float *x = random_floats(n, seed), *k = random_floats(9, seed + 1);
    float *a = random_floats(m, seed + 2), *b = random_floats(m, seed + 3);
    float *ws = plane_scratch(&g, seed + 4);
    const float scale = 1.5f, shift = .25f;
    depthwise_forward_act(a, x, k, ws, &g, &scale, &shift, act);
    depthwise_forward_naive(b, x, k, &g);
    act_forward_affine(b, b, 1, m, &scale, &shift, act);
    for (size_t j = 0; j < m; j++)
        assert_float_equal(a[j], b[j], 1e-5);
    depthwise_forward_act(a, x, k, ws, &g, NULL, NULL, act); /* no epilogue */
    depthwise_forward_naive(b, x, k, &g);
    for (size_t j = 0; j < m; j++)
        assert_float_equal(a[j], b[j], 1e-5);
    free(x), free(k), free(a), free(b), free(ws);
}

static void test_fused_3x3(void **state)
{
    (void)state;
    static const enum activation acts[] = {ACT_LINEAR, ACT_RELU, ACT_RELU6, ACT_LEAKY,
                                           ACT_LOGISTIC};
    uint64_t seed = 1000;
    for (int s = 1; s <= 2; s++)
        for (int p = 0; p <= 2; p++)
            for (int w = 1; w <= 19 * s + 2; w++)
                for (int a = 0; a < 5; a++, seed += 4)
                    check_fused(w % 7 + 1 + 2 * p, w, s, p, acts[a], seed);
    check_fused(5, 300, 1, 1, ACT_RELU6, 7);
    check_fused(9, 301, 2, 1, ACT_RELU6, 8);
    check_fused(3, 2500, 1, 1, ACT_LEAKY, 9);
    check_fused(4, 4500, 2, 2, ACT_LEAKY, 10);
}

/* The 3x3 backward fast path (stride 1 and 2, padding 0, 1, 2, every tail width, planes wider
 * than a row ring, which fall back to the generic kernels): both gradients, accumulated onto
 * random values, against the naive references. */
static void check_back(int h, int w, int s, int p, uint64_t seed)
{
    struct im2col_geom g;
    if (im2col_geom_init(&g, 1, h, w, 3, 3, s, s, p, p, 1, 1))
        return;
    size_t n = (size_t)h * (size_t)w, m = im2col_cols(&g);
    float *x = random_floats(n, seed), *k = random_floats(9, seed + 1);
    float *dy = random_floats(m, seed + 2), *dxa = random_floats(n, seed + 3);
    float *dxb = xmalloc(sizeof(float) * n), dka[9], dkb[9], *ws = plane_scratch(&g, seed + 4);
    memcpy(dxb, dxa, sizeof(float) * n);
    for (int i = 0; i < 9; i++)
        dka[i] = dkb[i] = 0.5f - 0.125f * (float)i;
    depthwise_backward_data(dxa, dy, k, ws, &g);
    depthwise_backward_data_naive(dxb, dy, k, &g);
    for (size_t j = 0; j < n; j++)
        if (fabs((double)dxa[j] - dxb[j]) > 1e-5)
            fail_msg("%dx%d stride %d pad %d: dx[%zu] = %.7g, naive %.7g", h, w, s, p, j,
                     (double)dxa[j], (double)dxb[j]);
    depthwise_backward_kernel(dka, dy, x, ws, &g);
    depthwise_backward_kernel_naive(dkb, dy, x, &g);
    for (int j = 0; j < 9; j++)
        if (fabs((double)dka[j] - dkb[j]) > 1e-6 * (double)m + 1e-5)
            fail_msg("%dx%d stride %d pad %d: dk[%d] = %.7g, naive %.7g", h, w, s, p, j,
                     (double)dka[j], (double)dkb[j]);
    free(x), free(k), free(dy), free(dxa), free(dxb), free(ws);
}

static void test_backward_3x3(void **state)
{
    (void)state;
    uint64_t seed = 9000;
    for (int s = 1; s <= 2; s++)
        for (int p = 0; p <= 2; p++)
            for (int w = 1; w <= 19 * s + 3; w++, seed += 4)
                check_back(w % 9 + 1 + 2 * p, w, s, p, seed);
    check_back(112, 112, 1, 1, 1);
    check_back(113, 111, 2, 1, 2);
    check_back(7, 300, 1, 2, 3);
    check_back(9, 301, 2, 0, 4);
    check_back(3, 2031, 1, 1, 5);
    check_back(3, 2500, 1, 1, 6);
    check_back(4, 4093, 2, 2, 7);
    check_back(4, 4500, 2, 1, 8);
}

/* The grouped 3x3 kernel: cg channels, fg filters (blocks of 4 with every remainder), against
 * its naive reference followed by act_forward_affine per filter. */
static void check_group(int cg, int fg, int h, int w, int s, int p, enum activation act,
                        uint64_t seed)
{
    struct im2col_geom g;
    if (im2col_geom_init(&g, cg, h, w, 3, 3, s, s, p, p, 1, 1))
        return;
    if (!depthwise_group_fits(&g)) {
        print_message("grouped kernel skipped: needs AVX2+FMA\n");
        return;
    }
    size_t P = im2col_cols(&g), m = P * (size_t)fg, n = (size_t)cg * (size_t)h * (size_t)w;
    float *x = random_floats(n, seed), *k = random_floats((size_t)fg * (size_t)cg * 9, seed + 1);
    float *sc = random_floats((size_t)fg, seed + 2), *sh = random_floats((size_t)fg, seed + 3);
    float *a = random_floats(m, seed + 4), *b = random_floats(m, seed + 5);
    float *ws = random_floats(depthwise_group_scratch(&g), seed + 6); /* garbage: never read */
    depthwise_group_forward(a, x, k, ws, fg, &g, sc, sh, act);
    depthwise_group_forward_naive(b, x, k, fg, &g);
    act_forward_affine(b, b, fg, P, sc, sh, act);
    for (size_t j = 0; j < m; j++)
        assert_float_equal(a[j], b[j], 1e-5 * cg);
    depthwise_group_forward(a, x, k, ws, fg, &g, NULL, NULL, act);
    depthwise_group_forward_naive(b, x, k, fg, &g);
    for (size_t j = 0; j < m; j++)
        assert_float_equal(a[j], b[j], 1e-5 * cg);
    free(x), free(k), free(sc), free(sh), free(a), free(b), free(ws);
}

static void test_group_3x3(void **state)
{
    (void)state;
    static const int cgs[] = {2, 3, 4, 5, 8}, fgs[] = {1, 3, 4, 5, 9};
    static const enum activation acts[] = {ACT_LINEAR, ACT_RELU, ACT_RELU6, ACT_LEAKY, ACT_MISH};
    uint64_t seed = 5000;
    for (int s = 1; s <= 2; s++)
        for (int p = 0; p <= 2; p++)
            for (int w = 1; w <= 18 * s + 2; w++, seed += 8)
                check_group(cgs[w % 5], fgs[(w / 5) % 5], w % 5 + 1 + 2 * p, w, s, p,
                            acts[(w + p) % 5], seed);
    check_group(33, 8, 7, 7, 1, 1, ACT_RELU, 1);
    check_group(16, 16, 14, 14, 2, 1, ACT_RELU, 2);
    check_group(4, 4, 56, 56, 1, 1, ACT_RELU, 3);
}

/* The grouped 3x3 backward kernel: both gradients accumulated onto random values, against the
 * reference, on the shapes of check_group; dx NULL too (the kernel gradient alone). */
static void check_group_back(int cg, int fg, int h, int w, int s, int p, uint64_t seed)
{
    struct im2col_geom g;
    if (im2col_geom_init(&g, cg, h, w, 3, 3, s, s, p, p, 1, 1))
        return;
    if (!depthwise_group_back_fits(&g, fg)) {
        print_message("grouped backward skipped: no AVX2+FMA, or the shape does not fit\n");
        return;
    }
    size_t P = im2col_cols(&g), n = (size_t)cg * (size_t)h * (size_t)w, nk = (size_t)fg * cg * 9;
    float *x = random_floats(n, seed), *k = random_floats(nk, seed + 1);
    float *d = random_floats(P * (size_t)fg, seed + 2);
    float *dka = random_floats(nk, seed + 3), *dkb = malloc(sizeof(float) * nk);
    float *dxa = random_floats(n, seed + 4), *dxb = malloc(sizeof(float) * n);
    memcpy(dkb, dka, sizeof(float) * nk);
    memcpy(dxb, dxa, sizeof(float) * n);
    float *ws = random_floats(depthwise_group_back_scratch(&g, fg), seed + 5);
    depthwise_group_backward(dka, dxa, d, x, k, ws, fg, &g);
    depthwise_group_backward_naive(dkb, dxb, d, x, k, fg, &g);
    for (size_t j = 0; j < nk; j++)
        assert_float_equal(dka[j], dkb[j], 1e-5 * (double)P + 1e-5);
    for (size_t j = 0; j < n; j++)
        assert_float_equal(dxa[j], dxb[j], 1e-5 * 9 * fg + 1e-5);
    depthwise_group_backward(dka, NULL, d, x, k, ws, fg, &g);
    depthwise_group_backward_naive(dkb, NULL, d, x, k, fg, &g);
    for (size_t j = 0; j < nk; j++)
        assert_float_equal(dka[j], dkb[j], 2e-5 * (double)P + 1e-5);
    free(x), free(k), free(d), free(dka), free(dkb), free(dxa), free(dxb), free(ws);
}

static void test_group_back_3x3(void **state)
{
    (void)state;
    static const int cgs[] = {2, 3, 4, 5, 8}, fgs[] = {1, 3, 4, 5, 9};
    uint64_t seed = 7000;
    for (int s = 1; s <= 2; s++)
        for (int p = 0; p <= 2; p++)
            for (int w = 1; w <= 18 * s + 2; w++, seed += 8)
                check_group_back(cgs[w % 5], fgs[(w / 5) % 5], w % 5 + 1 + 2 * p, w, s, p, seed);
    check_group_back(32, 32, 7, 7, 1, 1, 1);
    check_group_back(16, 16, 14, 14, 2, 1, 2);
    check_group_back(4, 4, 56, 56, 1, 1, 3);
    check_group_back(8, 8, 56, 56, 2, 1, 4);
    check_group_back(1, 1, 9, 9, 2, 0, 5);
    check_group_back(64, 64, 5, 6, 2, 2, 6);
    check_group_back(16, 16, 57, 45, 1, 1, 7); /* three bands at stride 1 */
    check_group_back(12, 20, 50, 61, 2, 2, 8); /* several uneven bands at stride 2 */
}

/* fn(arg) on a thread whose stack is exactly `size` bytes over an inaccessible page, so that
 * going past it faults: a stack of our own (pthread_attr_setstacksize alone may get a larger
 * stack from glibc's cache of an earlier thread's). */
static void run_on_small_stack(void *(*fn)(void *), void *arg, size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m, page, PROT_NONE), 0);
    pthread_attr_t attr;
    pthread_t t;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstack(&attr, m + page, size), 0);
    assert_int_equal(pthread_create(&t, &attr, fn, arg), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
    munmap(m, size + page);
}

/* One grouped forward and backward (both gradients) by the fast kernels, run on a thread of
 * its own. */
struct stack_job {
    float *out, *dk, *dx, *ws;
    const float *x, *k, *d;
    int fg;
    struct im2col_geom g;
};

static void *stack_job_run(void *arg)
{
    struct stack_job *j = arg;
    depthwise_group_forward(j->out, j->x, j->k, j->ws, j->fg, &j->g, NULL, NULL, ACT_LINEAR);
    depthwise_group_backward(j->dk, j->dx, j->d, j->x, j->k, j->ws, j->fg, &j->g);
    return NULL;
}

/* The grouped kernels on a thread whose stack is 64 KB (a program's own small-stack thread:
 * the kernels' bands once took about 90 KB forward and 130 KB backward of stack, which
 * overflowed it), against the references run here. */
static void check_small_stack(int cg, int fg, int h, int w, int s, uint64_t seed)
{
    struct stack_job j = {.fg = fg};
    assert_int_equal(im2col_geom_init(&j.g, cg, h, w, 3, 3, s, s, 1, 1, 1, 1), 0);
    if (!depthwise_group_back_fits(&j.g, fg)) {
        print_message("grouped small-stack case skipped: no AVX2+FMA\n");
        return;
    }
    size_t P = im2col_cols(&j.g), n = (size_t)cg * (size_t)h * (size_t)w, nk = (size_t)fg * cg * 9;
    size_t nws = CN_MAX(depthwise_group_scratch(&j.g), depthwise_group_back_scratch(&j.g, fg));
    float *x = random_floats(n, seed), *k = random_floats(nk, seed + 1);
    float *d = random_floats(P * (size_t)fg, seed + 2), *ref = xcalloc(P * (size_t)fg, 4);
    float *dkr = xcalloc(nk, sizeof(float)), *dxr = xcalloc(n, sizeof(float));
    j.x = x, j.k = k, j.d = d, j.ws = random_floats(nws, seed + 3);
    j.out = xcalloc(P * (size_t)fg, 4), j.dk = xcalloc(nk, 4), j.dx = xcalloc(n, 4);
    run_on_small_stack(stack_job_run, &j, 64 * 1024);
    depthwise_group_forward_naive(ref, x, k, fg, &j.g);
    depthwise_group_backward_naive(dkr, dxr, d, x, k, fg, &j.g);
    for (size_t i = 0; i < P * (size_t)fg; i++)
        assert_float_equal(j.out[i], ref[i], 1e-5 * cg);
    for (size_t i = 0; i < nk; i++)
        assert_float_equal(j.dk[i], dkr[i], 1e-5 * (double)P + 1e-5);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(j.dx[i], dxr[i], 1e-5 * 9 * fg + 1e-5);
    free(x), free(k), free(d), free(ref), free(dkr), free(dxr);
    free(j.ws), free(j.out), free(j.dk), free(j.dx);
}

static void test_group_small_stack(void **state)
{
    (void)state;
    check_small_stack(4, 4, 56, 56, 1, 1);   /* ResNeXt-50's first stage: two bands */
    check_small_stack(8, 8, 57, 57, 2, 2);   /* stride 2, odd sizes */
    check_small_stack(5, 7, 31, 45, 1, 3);   /* tails of every block */
    check_small_stack(32, 32, 28, 28, 1, 4); /* the bands' buffers full */
}

/* One plane's forward (with an epilogue) and both gradients by the 3x3 fast kernels, run on a
 * thread of its own. */
struct plane_job {
    float *out, *dk, *dx, *ws;
    const float *x, *k, *d;
    struct im2col_geom g;
};

static void *plane_job_run(void *arg)
{
    struct plane_job *j = arg;
    const float scale = 1.5f, shift = .25f;
    depthwise_forward_act(j->out, j->x, j->k, j->ws, &j->g, &scale, &shift, ACT_RELU6);
    depthwise_backward_data(j->dx, j->d, j->k, j->ws, &j->g);
    depthwise_backward_kernel(j->dk, j->d, j->x, j->ws, &j->g);
    return NULL;
}

/* The depthwise (MobileNet) plane kernels on a thread whose stack is 32 KB: their row rings
 * once took 32 KB (forward, kernel gradient) and 48 KB (data gradient) of stack; they are now in
 * the caller's scratch, filled with garbage here. Against the references run on this thread. */
static void check_plane_small_stack(int h, int w, int s, int p, uint64_t seed)
{
    struct plane_job j;
    assert_int_equal(im2col_geom_init(&j.g, 1, h, w, 3, 3, s, s, p, p, 1, 1), 0);
    if (!depthwise_scratch(&j.g)) {
        print_message("depthwise small-stack case skipped: no AVX2+FMA\n");
        return;
    }
    size_t n = (size_t)h * (size_t)w, m = im2col_cols(&j.g);
    float *x = random_floats(n, seed), *k = random_floats(9, seed + 1);
    float *d = random_floats(m, seed + 2), *ref = xmalloc(sizeof(float) * m);
    float *dxr = xcalloc(n, sizeof(float)), dkr[9] = {0}, dk[9] = {0};
    j.x = x, j.k = k, j.d = d, j.dk = dk, j.ws = plane_scratch(&j.g, seed + 3);
    j.out = xmalloc(sizeof(float) * m), j.dx = xcalloc(n, sizeof(float));
    run_on_small_stack(plane_job_run, &j, 32 * 1024);
    const float scale = 1.5f, shift = .25f;
    depthwise_forward_naive(ref, x, k, &j.g);
    act_forward_affine(ref, ref, 1, m, &scale, &shift, ACT_RELU6);
    depthwise_backward_data_naive(dxr, d, k, &j.g);
    depthwise_backward_kernel_naive(dkr, d, x, &j.g);
    for (size_t i = 0; i < m; i++)
        assert_float_equal(j.out[i], ref[i], 1e-5);
    for (size_t i = 0; i < n; i++)
        assert_float_equal(j.dx[i], dxr[i], 1e-5);
    for (int i = 0; i < 9; i++)
        assert_float_equal(dk[i], dkr[i], 1e-6 * (double)m + 1e-5);
    free(x), free(k), free(d), free(ref), free(dxr), free(j.ws), free(j.out), free(j.dx);
}

static void test_plane_small_stack(void **state)
{
    (void)state;
    check_plane_small_stack(112, 112, 1, 1, 1); /* MobileNet's first depthwise layer */
    check_plane_small_stack(57, 57, 2, 1, 2);   /* stride 2, odd sizes */
    check_plane_small_stack(3, 2000, 1, 2, 3);  /* rows near the widest ring */
    check_plane_small_stack(5, 2000, 2, 0, 4);
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
        float *ws = plane_scratch(&g, 110 + i);
        depthwise_forward(out, x, k, ws, &g);
        depthwise_backward_data(dx, y, k, ws, &g);
        depthwise_backward_kernel(dk, y, x, ws, &g);
        double lhs = 0, rx = 0, rk = 0;
        for (size_t j = 0; j < m; j++)
            lhs += (double)out[j] * y[j];
        for (size_t j = 0; j < n; j++)
            rx += (double)x[j] * dx[j];
        for (size_t j = 0; j < kk; j++)
            rk += (double)k[j] * dk[j];
        assert_float_equal(lhs, rx, 1e-4 * (1 + fabs(lhs)));
        assert_float_equal(lhs, rk, 1e-4 * (1 + fabs(lhs)));
        free(x), free(k), free(y), free(out), free(dx), free(dk), free(ws);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_fast_matches_naive),
        cmocka_unit_test(test_adjoint),
        cmocka_unit_test(test_fused_3x3),
        cmocka_unit_test(test_group_3x3),
        cmocka_unit_test(test_backward_3x3),
        cmocka_unit_test(test_group_back_3x3),
        cmocka_unit_test(test_group_small_stack),
        cmocka_unit_test(test_plane_small_stack),
    };
    return cmocka_run_group_tests_name("depthwise", tests, NULL, NULL);
}
