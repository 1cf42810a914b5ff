/* gemm.c - blocked single-precision GEMM (contract in gemm.h) and its naive reference.
 *
 * Scheme (Goto/BLIS): C is cut into macro-tiles of GEMM_MC x GEMM_NC; a tile is computed by one
 * thread, which walks K in blocks of GEMM_KC, packs the KC x NC slice of op(B) into NR-wide
 * column panels and the MC x KC slice of op(A) into MR-high row panels (zero-padded at the
 * edges), and runs an MR x NR micro-kernel over every (panel of B, panel of A) pair: the B panel
 * stays in L1 while the A panels stream from L2. Edge tiles run the kernel into a small buffer
 * and copy the valid part. Tiles of at most GEMM_DIRECT_B_ROWS rows (LeNet's 6 or 16 filters)
 * read whole panels of an untransposed B in place, since so few A panels cannot repay packing.
 * Pack buffers live on each thread's stack (about 350 KB).
 *
 * Micro-kernel: MR = 6 rows by NR columns of accumulators in vector registers, written with GCC
 * vector extensions and compiled three times: AVX-512 (NR = 32: 12 zmm accumulators), AVX2+FMA
 * (NR = 16: 12 ymm) and portable C (NR = 8, 4-wide vectors: SSE or NEON). The variant
 * is chosen once per call from the CPU's features. The kernels ask for fused multiply-adds
 * explicitly, since -std=c11 turns off floating-point contraction.
 *
 * Threads: OpenMP over macro-tiles of C (each written by one thread; no K splitting, so the
 * summation order of an element never depends on the thread count). Problems under
 * GEMM_PAR_MIN multiply-adds, or with a single tile, run on the calling thread.
 * Left out: K splitting for tiny-M*N, huge-K shapes; complex and double precision.
 */
#include "kernels/gemm.h"

#include <stddef.h>
#include <string.h>

#include "core/common.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define GEMM_MR 6
#define GEMM_NR_MAX 32
#define GEMM_KC 256
#define GEMM_MC 96            /* a multiple of GEMM_MR */
#define GEMM_NC 256           /* a multiple of every NR */
#define GEMM_DIRECT_B_ROWS 24 /* tiles of at most this many rows read B in place */
#define GEMM_PAR_MIN 262144.0 /* multiply-adds below which threads cost more than they give */

#if defined(__clang__)
#pragma clang fp contract(fast)
#define GEMM_CONTRACT
#elif defined(__GNUC__)
#define GEMM_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define GEMM_CONTRACT
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GEMM_X86 1
#else
#define GEMM_X86 0
#endif

/* Native vectors of each ISA: a kernel built on a vector wider than its target's registers makes
 * GCC keep the accumulators on the stack, a tenfold slowdown. */
typedef float vec16 __attribute__((vector_size(64)));
typedef float vec16u __attribute__((vector_size(64), aligned(4)));
typedef float vec8 __attribute__((vector_size(32)));
typedef float vec8u __attribute__((vector_size(32), aligned(4)));
typedef float vec4 __attribute__((vector_size(16)));
typedef float vec4u __attribute__((vector_size(16), aligned(4)));

typedef void (*gemm_kernel_fn)(int kc, const float *a, const float *b, size_t ldb, float *c,
                               size_t ldc, float alpha, float beta);

struct gemm_args {
    float *C;
    const float *A, *B;
    size_t ldc, lda, ldb;
    int ta, tb, M, N, K;
    float alpha, beta;
};

struct gemm_arch {
    int nr;
    gemm_kernel_fn kernel;
    void (*pack_a)(float *dst, const struct gemm_args *g, int i0, int mc, int p0, int kc);
    void (*pack_b)(float *dst, const struct gemm_args *g, int p0, int kc, int j0, int nc);
};

/* The micro-kernel for vectors VT of VW floats, two per row (NR = 2 * VW): c[0..MR) x [0..NR)
 * (row stride ldc) = alpha * a_panel * b_panel + beta * c, over kc steps; a: kc x MR, b: kc x NR
 * with row stride ldb. 12 accumulators, 2 B vectors and a broadcast fit the 16 registers of
 * AVX2 and leave AVX-512 room; the loops are unrolled completely by the compiler. */
#define GEMM_MICRO(NAME, VT, VTU, VW)                                                              \
    static inline __attribute__((always_inline)) GEMM_CONTRACT void NAME(                          \
        int kc, const float *restrict a, const float *restrict b, size_t ldb, float *restrict c,   \
        size_t ldc, float alpha, float beta)                                                       \
    {                                                                                              \
        VT acc[GEMM_MR][2];                                                                        \
        for (int i = 0; i < GEMM_MR; i++)                                                          \
            acc[i][0] = acc[i][1] = (VT){0};                                                       \
        for (int k = 0; k < kc; k++, a += GEMM_MR, b += ldb) {                                     \
            VT b0 = *(const VTU *)(const void *)b, b1 = *(const VTU *)(const void *)(b + (VW));    \
            for (int i = 0; i < GEMM_MR; i++) {                                                    \
                acc[i][0] += a[i] * b0;                                                            \
                acc[i][1] += a[i] * b1;                                                            \
            }                                                                                      \
        }                                                                                          \
        for (int i = 0; i < GEMM_MR; i++)                                                          \
            for (int v = 0; v < 2; v++) {                                                          \
                VTU *cp = (VTU *)(void *)(c + (size_t)i * ldc + (size_t)((VW) * v));               \
                VT r = alpha * acc[i][v];                                                          \
                if (beta != 0)                                                                     \
                    r += beta * *cp;                                                               \
                *cp = r;                                                                           \
            }                                                                                      \
    }

GEMM_MICRO(gemm_micro16, vec16, vec16u, 16)
GEMM_MICRO(gemm_micro8, vec8, vec8u, 8)
GEMM_MICRO(gemm_micro4, vec4, vec4u, 4)

/* Packs op(A)[i0 .. i0+mc) x [p0 .. p0+kc) as ceil(mc/MR) panels of kc x MR, zero-padded. */
static inline __attribute__((always_inline)) void
gemm_pack_a(float *restrict dst, const struct gemm_args *g, int i0, int mc, int p0, int kc)
{
    for (int ir = 0; ir < mc; ir += GEMM_MR, dst += (size_t)kc * GEMM_MR) {
        int m = CN_MIN(GEMM_MR, mc - ir);
        if (g->ta) { /* rows of the stored A run along i: copy MR at a time */
            const float *src = g->A + (size_t)p0 * g->lda + (size_t)(i0 + ir);
            for (int k = 0; k < kc; k++, src += g->lda) {
                float *d = dst + (size_t)k * GEMM_MR;
                for (int i = 0; i < GEMM_MR; i++)
                    d[i] = i < m ? src[i] : 0.f;
            }
            continue;
        }
        for (int i = 0; i < GEMM_MR; i++) {
            const float *src = g->A + (size_t)(i0 + ir + i) * g->lda + (size_t)p0;
            if (i < m)
                for (int k = 0; k < kc; k++)
                    dst[(size_t)k * GEMM_MR + (size_t)i] = src[k];
            else
                for (int k = 0; k < kc; k++)
                    dst[(size_t)k * GEMM_MR + (size_t)i] = 0.f;
        }
    }
}

/* Packs op(B)[p0 .. p0+kc) x [j0 .. j0+nc) as ceil(nc/nr) panels of kc x nr, zero-padded. */
static inline __attribute__((always_inline)) void
gemm_pack_b(float *restrict dst, const struct gemm_args *g, int p0, int kc, int j0, int nc, int nr)
{
    for (int jr = 0; jr < nc; jr += nr, dst += (size_t)kc * (size_t)nr) {
        int n = CN_MIN(nr, nc - jr);
        if (!g->tb) { /* rows of the stored B run along j: copy n at a time */
            const float *src = g->B + (size_t)p0 * g->ldb + (size_t)(j0 + jr);
            for (int k = 0; k < kc; k++, src += g->ldb) {
                float *d = dst + (size_t)k * (size_t)nr;
                if (n == nr)
                    for (int j = 0; j < nr; j++)
                        d[j] = src[j];
                else
                    for (int j = 0; j < nr; j++)
                        d[j] = j < n ? src[j] : 0.f;
            }
            continue;
        }
        const float *src = g->B + (size_t)(j0 + jr) * g->ldb + (size_t)p0;
        for (int k = 0; k < kc; k++) {
            float *d = dst + (size_t)k * (size_t)nr;
            for (int j = 0; j < n; j++)
                d[j] = src[(size_t)j * g->ldb + (size_t)k];
            for (int j = n; j < nr; j++)
                d[j] = 0.f;
        }
    }
}

/* Each ISA gets its own compiled copy of the micro-kernel and the packing loops. */
#define GEMM_ISA(SUF, ATTR, MICRO, VW)                                                                    \
    ATTR GEMM_CONTRACT static void gemm_kernel_##SUF(int kc, const float *a, const float *b,       \
                                                     size_t ldb, float *c, size_t ldc,             \
                                                     float alpha, float beta)                      \
    {                                                                                              \
        MICRO(kc, a, b, ldb, c, ldc, alpha, beta);                                        \
    }                                                                                              \
    ATTR static void gemm_pack_a_##SUF(float *dst, const struct gemm_args *g, int i0, int mc,      \
                                       int p0, int kc)                                             \
    {                                                                                              \
        gemm_pack_a(dst, g, i0, mc, p0, kc);                                                       \
    }                                                                                              \
    ATTR static void gemm_pack_b_##SUF(float *dst, const struct gemm_args *g, int p0, int kc,      \
                                       int j0, int nc)                                             \
    {                                                                                              \
        gemm_pack_b(dst, g, p0, kc, j0, nc, 2 * (VW));                                            \
    }

#if GEMM_X86
GEMM_ISA(avx512, __attribute__((target("avx512f,avx2,fma"))), gemm_micro16, 16)
GEMM_ISA(avx2, __attribute__((target("avx2,fma"))), gemm_micro8, 8)
#endif
GEMM_ISA(portable, , gemm_micro4, 4)

/* The kernel set for isa, or NULL when this CPU (or build) lacks it; AUTO picks the best. */
static const struct gemm_arch *gemm_arch_for(enum gemm_isa isa)
{
    static const struct gemm_arch portable = {8, gemm_kernel_portable, gemm_pack_a_portable,
                                              gemm_pack_b_portable};
#if GEMM_X86
    static const struct gemm_arch avx2 = {16, gemm_kernel_avx2, gemm_pack_a_avx2, gemm_pack_b_avx2};
    static const struct gemm_arch avx512 = {32, gemm_kernel_avx512, gemm_pack_a_avx512,
                                            gemm_pack_b_avx512};
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f");
    if (isa == GEMM_ISA_AVX512 || (isa == GEMM_ISA_AUTO && has_avx512))
        return has_avx512 ? &avx512 : NULL;
    if (isa == GEMM_ISA_AVX2 || (isa == GEMM_ISA_AUTO && has_avx2))
        return has_avx2 ? &avx2 : NULL;
#else
    if (isa == GEMM_ISA_AVX2 || isa == GEMM_ISA_AVX512)
        return NULL;
#endif
    return &portable;
}

/* One MR x nr block of C at (i, j) with m x n valid cells from a packed A panel and a B panel
 * of row stride ldb: straight into C when whole, else through a buffer so the padding never
 * touches C. */
static void gemm_block(const struct gemm_args *g, const struct gemm_arch *ar, int kc,
                       const float *ap, const float *b, size_t ldb, int i, int j, int m, int n,
                       float beta)
{
    float *c = g->C + (size_t)i * g->ldc + (size_t)j;
    if (m == GEMM_MR && n == ar->nr) {
        ar->kernel(kc, ap, b, ldb, c, g->ldc, g->alpha, beta);
        return;
    }
    float t[GEMM_MR * GEMM_NR_MAX] __attribute__((aligned(64)));
    ar->kernel(kc, ap, b, ldb, t, (size_t)ar->nr, g->alpha, 0.f);
    for (int r = 0; r < m; r++, c += g->ldc)
        for (int s = 0; s < n; s++)
            c[s] = t[r * ar->nr + s] + (beta != 0 ? beta * c[s] : 0.f);
}

/* The macro-tile of C at (ic, jc), using the caller's pack buffers. A short tile (few A panels)
 * reads whole panels of an untransposed B in place: packing them would cost more than it saves.
 */
static void gemm_tile(const struct gemm_args *g, const struct gemm_arch *ar, int ic, int jc,
                      float *ap, float *bp)
{
    int mc = CN_MIN(GEMM_MC, g->M - ic), nc = CN_MIN(GEMM_NC, g->N - jc), nr = ar->nr;
    int in_place = !g->tb && mc <= GEMM_DIRECT_B_ROWS, whole = in_place ? nc / nr * nr : 0;
    for (int pc = 0; pc < g->K; pc += GEMM_KC) {
        int kc = CN_MIN(GEMM_KC, g->K - pc);
        float beta = pc ? 1.f : g->beta;
        if (whole < nc)
            ar->pack_b(bp, g, pc, kc, jc + whole, nc - whole);
        ar->pack_a(ap, g, ic, mc, pc, kc);
        for (int jr = 0; jr < nc; jr += nr) {
            const float *b = g->B + (size_t)pc * g->ldb + (size_t)(jc + jr);
            size_t ldb = g->ldb;
            if (jr >= whole) {
                b = bp + (size_t)(jr - whole) * (size_t)kc;
                ldb = (size_t)nr;
            }
            for (int ir = 0; ir < mc; ir += GEMM_MR)
                gemm_block(g, ar, kc, ap + (size_t)ir * (size_t)kc, b, ldb, ic + ir, jc + jr,
                           CN_MIN(GEMM_MR, mc - ir), CN_MIN(nr, nc - jr), beta);
        }
    }
}

/* C = beta * C, writing zeros without reading when beta == 0. */
static void gemm_scale(float *C, size_t ldc, int M, int N, float beta)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0)
            memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1)
            for (int j = 0; j < N; j++)
                c[j] *= beta;
    }
}

static int gemm_threads_pay(int M, int N, int K, int ntiles)
{
#ifdef _OPENMP
    return ntiles > 1 && (double)M * (double)N * (double)K >= GEMM_PAR_MIN && !omp_in_parallel();
#else
    (void)M, (void)N, (void)K, (void)ntiles;
    return 0;
#endif
}

/* The blocked product with kernel set ar (contract of gemm). */
static void gemm_run(const struct gemm_arch *ar, const struct gemm_args *g)
{
    if (g->M <= 0 || g->N <= 0)
        return;
    if (g->K <= 0 || g->alpha == 0) {
        gemm_scale(g->C, g->ldc, g->M, g->N, g->beta);
        return;
    }
    int tm = (g->M + GEMM_MC - 1) / GEMM_MC, tn = (g->N + GEMM_NC - 1) / GEMM_NC;
    int ntiles = tm * tn;
    int par = gemm_threads_pay(g->M, g->N, g->K, ntiles);
    (void)par; /* unused without OpenMP */
#pragma omp parallel if (par)
    {
        float ap[GEMM_MC * GEMM_KC] __attribute__((aligned(64)));
        float bp[GEMM_KC * GEMM_NC] __attribute__((aligned(64)));
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < ntiles; t++)
            gemm_tile(g, ar, t % tm * GEMM_MC, t / tm * GEMM_NC, ap, bp);
    }
}

void gemm(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb, int tb,
          int M, int N, int K, float alpha, float beta)
{
    const struct gemm_args g = {C,  A, B, (size_t)ldc, (size_t)lda, (size_t)ldb, ta,
                                tb, M, N, K,           alpha,       beta};
    gemm_run(gemm_arch_for(GEMM_ISA_AUTO), &g);
}

int gemm_isa(enum gemm_isa isa, float *C, int ldc, const float *A, int lda, int ta, const float *B,
             int ldb, int tb, int M, int N, int K, float alpha, float beta)
{
    const struct gemm_arch *ar = gemm_arch_for(isa);
    if (!ar)
        return -1;
    const struct gemm_args g = {C,  A, B, (size_t)ldc, (size_t)lda, (size_t)ldb, ta,
                                tb, M, N, K,           alpha,       beta};
    gemm_run(ar, &g);
    return 0;
}

void gemm_naive(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb, int tb,
                int M, int N, int K, float alpha, float beta)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * (size_t)lda + (size_t)i]
                             : A[(size_t)i * (size_t)lda + (size_t)k];
                float b = tb ? B[(size_t)j * (size_t)ldb + (size_t)k]
                             : B[(size_t)k * (size_t)ldb + (size_t)j];
                s += a * b;
            }
            float *c = &C[(size_t)i * (size_t)ldc + (size_t)j];
            *c = alpha * s + (beta != 0 ? beta * *c : 0.f);
        }
}
