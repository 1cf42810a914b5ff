/* gemv.c - y = W x, streaming W once (contract in gemv.h).
 *
 * A row's dot product: 4 vectors of 8 partial sums over blocks of 32 columns, then the 32 sums
 * added pairwise, then the tail (I % 32 columns) in k order. The same C source is built twice,
 * for AVX2+FMA (function attributes; picked by __builtin_cpu_supports) and for the build's
 * default target, with GCC vector extensions so no intrinsics are needed.
 */
#include "kernels/gemv.h"

#include <stddef.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define GEMV_PAR_MIN 65536.0 /* weights below which threads cost more than they give */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GEMV_X86 1
#else
#define GEMV_X86 0
#endif

typedef float v8 __attribute__((vector_size(32)));

/* v8 loads from unaligned memory: memcpy is one vmovups. */
#define GEMV_ROW(name, attr)                                                                      \
    attr static float name(const float *w, const float *x, int I)                                \
    {                                                                                             \
        v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, a, b;                                          \
        int k = 0;                                                                                \
        for (; k + 32 <= I; k += 32) {                                                            \
            memcpy(&a, w + k, sizeof a), memcpy(&b, x + k, sizeof b), s0 += a * b;                \
            memcpy(&a, w + k + 8, sizeof a), memcpy(&b, x + k + 8, sizeof b), s1 += a * b;        \
            memcpy(&a, w + k + 16, sizeof a), memcpy(&b, x + k + 16, sizeof b), s2 += a * b;      \
            memcpy(&a, w + k + 24, sizeof a), memcpy(&b, x + k + 24, sizeof b), s3 += a * b;      \
        }                                                                                         \
        v8 s = (s0 + s1) + (s2 + s3);                                                             \
        float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));              \
        for (; k < I; k++)                                                                        \
            t += w[k] * x[k];                                                                     \
        return t;                                                                                 \
    }

GEMV_ROW(gemv_row_portable, )
#if GEMV_X86
GEMV_ROW(gemv_row_avx2, __attribute__((target("avx2,fma"))))
#endif

typedef float (*gemv_row_fn)(const float *, const float *, int);

static gemv_row_fn gemv_pick(void)
{
#if GEMV_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return gemv_row_avx2;
#endif
    return gemv_row_portable;
}

void gemv(float *y, const float *W, const float *x, int O, int I, int accumulate)
{
    gemv_row_fn row = gemv_pick();
    int par = (double)O * (double)I >= GEMV_PAR_MIN;
#ifdef _OPENMP
    par = par && !omp_in_parallel();
#else
    (void)par;
#endif
#pragma omp parallel for schedule(static) if (par)
    for (int o = 0; o < O; o++) {
        float d = row(W + (size_t)o * (size_t)I, x, I);
        y[o] = accumulate ? y[o] + d : d;
    }
}

void gemv_naive(float *y, const float *W, const float *x, int O, int I, int accumulate)
{
    for (int o = 0; o < O; o++) {
        float d = 0;
        for (int k = 0; k < I; k++)
            d += W[(size_t)o * (size_t)I + (size_t)k] * x[k];
        y[o] = accumulate ? y[o] + d : d;
    }
}
