/* gemm.c - blocked single-precision GEMM (contracts in gemm.h) and its naive reference.
 *
 * Scheme (Goto/BLIS), as one thread runs it (gemm_thread; with more threads each tile of the
 * dynamic schedule, gemm_worker, runs the prepacked-A scheme below on its rows of A, packed for
 * all K). A thread walks K in blocks of at most GEMM_KC; for each K block it packs its rows of
 * op(A) once into MR-high row panels (KC x its rows: a few MB at most), then walks its columns
 * in blocks of GEMM_NC, packing each KC x NC slice of op(B) into NR-wide column panels (the
 * slice stays in L2), and runs the MR x NR micro-kernel over every (A panel, B panel) pair, A
 * panels outer: the A panel (KC x MR, 6 KB) stays in L1 while the B panels stream from L2, and
 * C is walked along its rows. So each element of A and B is packed once.
 * Panels are zero-padded at the edges. A thread with at most GEMM_DIRECT_B_ROWS rows (LeNet's
 * 6 or 16 filters) reads whole panels of an untransposed B in place, since so few A panels
 * cannot repay packing. Pack buffers are allocated per call and thread; a thread of more than
 * GEMM_A_ROWS rows takes them GEMM_A_ROWS at a time.
 * gemm_conv packs B straight from an NCHW image by im2col geometry (implicit GEMM), tap by tap
 * across all the panels of a block, each panel row cut into runs within one output row.
 * Prepacked A (gemm_pack_a_all: the same panels for every K block, one after the other, so any
 * MR-aligned row block of any K block is contiguous) skips packing A; B blocks are then only
 * GEMM_NC_PACKED wide, since revisiting A costs nothing and the packed B block stays in L2.
 *
 * Micro-kernel: MR = 6 rows by NR columns of accumulators in vector registers, written with GCC
 * vector extensions and compiled three times: AVX-512 (NR = 32: 12 zmm accumulators), AVX2+FMA
 * (NR = 16: 12 ymm) and portable C (NR = 8, 4-wide vectors: SSE or NEON). A half-width kernel
 * (MR x NR/2) serves column tails of at most NR/2, and on AVX2/AVX-512 a narrow kernel (rows in
 * the lanes, B broadcast, several A panels at once) column tails of at most GEMM_NARROW_MAX (the
 * 49 columns of a 7x7 map). Row tails run a kernel compiled for their row count. The variant is
 * chosen once per call from the CPU's features. The kernels ask for fused multiply-adds
 * explicitly, since -std=c11 turns off floating-point contraction. Other edge tiles run the
 * same kernel on a copy of the valid part of C. Every kernel applies the same operations to an
 * element (multiply-adds in k order, then the same epilogue), so its arithmetic never depends on
 * where its tile falls (test_gemm checks this bit for bit).
 *
 * Epilogue: alpha * sum is rounded on its own (when alpha != 1) before beta * C is added, so
 * that no kernel and no compiler has a choice of which product to fuse. After the last K block
 * the kernel multiplies by the row's scale (rounded on its own, as act_forward_affine does),
 * adds the row's bias and applies linear, relu or leaky in registers (the same float operations
 * as activations.c, so the results are those of gemm, then the scale and bias, then act_apply);
 * other activations are applied to the tile just written. Each step runs over the whole tile in
 * turn (all twelve accumulators scaled, then all biased, ...), so that each flag is tested once a
 * tile: tested per vector, the branches cost a tenth of a 1x1 layer's time at K = 64.
 *
 * Threads: C is cut into more tiles than threads (gemm_grid_for), handed out from a shared
 * counter, so that a thread another process preempts holds up a call by one tile at most (with a
 * busy loop beside us, the old one-rectangle-per-thread split left each layer waiting for the
 * preempted thread). Tile edges are multiples of MR and NR, a tile walks all its K blocks in
 * order and K is blocked the same way whatever the thread count, so each element of C is summed
 * in the same order: results do not depend on the thread count or on which thread takes which
 * tile (test_sched). Problems under GEMM_PAR_MIN multiply-adds run on the calling thread.
 * Left out: K splitting for tiny-M*N, huge-K shapes; complex and double precision.
 */
#include "kernels/gemm.h"

#include <math.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define GEMM_MR GEMM_PACK_ROWS /* 6 */
#define GEMM_NR_MAX 32
#ifndef GEMM_KC /* the block sizes may be set with -D when tuning */
#define GEMM_KC 256 /* most K per block: a 6 x KC A panel + KC x NR B panel fit L1 */
#endif
#ifndef GEMM_MC
#define GEMM_MC 144 /* most rows per block of prepacked A (MC x KC: 144 KB of L2), a multiple
                    * of MR */
#endif
#ifndef GEMM_NC
#define GEMM_NC 384 /* most columns per B block, a multiple of every NR: KC x NC stays in L2 */
#endif
#ifndef GEMM_A_ROWS
#define GEMM_A_ROWS 3072 /* most rows a thread packs at once (A: KC x 3072, 3 MB), a multiple of
                          * MR */
#endif
#ifndef GEMM_NC_ONE
#define GEMM_NC_ONE 1024 /* most columns of a thread of many rows whose B is packed as one block */
#endif
#ifndef GEMM_NC_PACKED
#define GEMM_NC_PACKED 256 /* the same with A prepacked, whose blocks cost nothing to revisit:
                            * the packed B block then stays in L2 (5-10 % on ResNet's 1x1s) */
#endif
#ifndef GEMM_PACK_B_COLS
#define GEMM_PACK_B_COLS 256 /* columns of B packed together, row by row (a multiple of NR) */
#endif
#ifndef GEMM_PACK_B_AHEAD
#define GEMM_PACK_B_AHEAD 8 /* rows of B ahead of packing that it prefetches */
#endif
#ifndef GEMM_A_AHEAD
#define GEMM_A_AHEAD 64 /* k steps of the A panel ahead of the micro-kernel that it prefetches:
                         * prepacked weights come from memory (16: 3-7 % slower on ResNet's
                         * 2048 x 49 x 512 shapes with cold weights) */
#endif
#define GEMM_DIRECT_B_ROWS 24 /* threads with at most this many rows read B in place */
#define GEMM_PAR_MIN 262144.0 /* multiply-adds below which threads cost more than they give */
#define GEMM_PACK_COST 12.0   /* multiply-adds one packed element costs, for gemm_grid_for */

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

/* Makes the compiler treat vector v as unknown, so that a product stored into it is rounded
 * before the next addition instead of fused into a multiply-add (the scale-then-shift epilogue
 * must round as act_forward_affine does). */
#if defined(__clang__)
/* clang takes "+x" only for a vector as wide as the registers of the function's target, which the
 * generic kernels are not built for: the barrier goes through memory instead (epilogue only). */
#define GEMM_ROUNDED(v) __asm__("" : "+m"(v))
#elif GEMM_X86
#define GEMM_ROUNDED(v) __asm__("" : "+x"(v))
#elif defined(__aarch64__)
#define GEMM_ROUNDED(v) __asm__("" : "+w"(v))
#else
#define GEMM_ROUNDED(v) __asm__("" : "+m"(v))
#endif

/* Native vectors of each ISA: a kernel built on a vector wider than its target's registers makes
 * GCC keep the accumulators on the stack, a tenfold slowdown. */
typedef float vec16 __attribute__((vector_size(64)));
typedef float vec16u __attribute__((vector_size(64), aligned(4)));
typedef int vec16i __attribute__((vector_size(64)));
typedef float vec8 __attribute__((vector_size(32)));
typedef float vec8u __attribute__((vector_size(32), aligned(4)));
typedef int vec8i __attribute__((vector_size(32)));
typedef float vec4 __attribute__((vector_size(16)));
typedef float vec4u __attribute__((vector_size(16), aligned(4)));
typedef int vec4i __attribute__((vector_size(16)));

/* What the kernel does with its sums: c = act(scale[row] * (alpha * sum + beta * c) +
 * bias[row]). */
enum gemm_fuse { GEMM_FUSE_NONE, GEMM_FUSE_RELU, GEMM_FUSE_LEAKY, GEMM_FUSE_RELU6 };
struct gemm_out {
    float alpha, beta;
    const float *scale, *bias; /* MR values each, or NULL */
    int fuse;                  /* enum gemm_fuse */
    const float *res;          /* b1: a residual added after the bias, before the activation: */
    size_t ldr;                /* (row, col) at res[row * ldr + col]; NULL: none */
};

/* m (1 .. MR) rows of a tile, the first m rows of the A panel. */
typedef void (*gemm_kernel_fn)(int m, int kc, const float *a, const float *b, size_t ldb, float *c,
                               size_t ldc, const struct gemm_out *o);
/* n (1 .. GEMM_NARROW_MAX) columns of np (1 .. GEMM_NARROW_PANELS) panels, the last of mlast
 * rows. */
typedef void (*gemm_narrow_fn)(int np, int n, int mlast, int kc, const float *a, const float *b,
                               size_t ldb, float *c, size_t ldc, const struct gemm_out *o);

/* np m x NR tiles side by side: B panels at b + p * panel, C (and o->res) at c + p * NR. */
typedef void (*gemm_row_fn)(int m, int np, int kc, const float *a, const float *b, size_t panel,
                            size_t ldb, float *c, size_t ldc, const struct gemm_out *o);

struct gemm_args {
    float *C;
    const float *A, *B; /* B: the image when geom is set */
    size_t ldc, lda, ldb;
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *scale, *bias;      /* per row of C, or NULL */
    enum activation act;            /* applied after the bias */
    const struct im2col_geom *geom; /* op(B) = im2col(B) when set */
    const float *Ap;                /* op(A) packed whole by gemm_pack_a_all, or NULL */
    int ap_row0, ap_rows;           /* Ap holds rows [ap_row0, +ap_rows) (0 rows: all M) */
    const float *res;               /* b1: added after the bias, in C's layout (ldc), or NULL */
    const struct gemm_post *post;   /* netb1: run over each final block of C, or NULL */
};

struct gemm_arch {
    int nr;
    gemm_kernel_fn full, half; /* m x NR and m x NR/2 */
    gemm_kernel_fn half2;      /* 2*MR x NR/2 over two A panels (m ignored), or NULL */
    gemm_narrow_fn narrow;     /* column tails of n <= GEMM_NARROW_MAX, or NULL */
    void (*pack_a)(float *dst, const struct gemm_args *g, int i0, int mc, int p0, int kc);
    void (*pack_b)(float *dst, const struct gemm_args *g, int p0, int kc, int j0, int nc);
    gemm_row_fn row; /* np full m x NR tiles side by side */
};

/* The micro-kernel for vectors VT of VW floats, NV per row (NR = NV * VW): c[0..rows) x [0..NR)
 * (row stride ldc) = epilogue of a_panel * b_panel over kc steps; a: kc x MR, b: kc x NR with row
 * stride ldb; rows (1 .. MR) is a constant at each call, so a row tail's tile computes only its
 * rows. 12 accumulators, 2 B vectors and a broadcast fit the 16 registers of AVX2; the
 * loops are unrolled completely by the compiler. Relu, leaky and relu6 select with masks, exactly
 * as z > 0 ? z : 0, z > 0 ? z : .1f * z and z < 0 ? 0 : (z > 6 ? 6 : z) (NaN and -0 pass). The
 * scale (a folded batch norm) is rounded before the bias is added, as act_forward_affine does. */
/* One k step of GEMM_MICRO: acc += a[0 .. rows) x b[0 .. NR) (row i in A panel i / MR, pa
 * floats apart), then a and b move on. */
#define GEMM_MICRO_STEP(VT, VTU, VW, NV)                                                           \
    do {                                                                                           \
        VT bv[NV];                                                                                 \
        for (int v = 0; v < (NV); v++)                                                             \
            bv[v] = *(const VTU *)(const void *)(b + (VW) * v);                                    \
        for (int i = 0; i < rows; i++)                                                             \
            for (int v = 0; v < (NV); v++)                                                         \
                acc[i][v] += a[(size_t)(i / GEMM_MR) * pa + (size_t)(i % GEMM_MR)] * bv[v];        \
        a += GEMM_MR;                                                                              \
        b += ldb;                                                                                  \
    } while (0)

#define GEMM_MICRO(NAME, VT, VTU, VTI, VW, NV) GEMM_MICRO_NP(NAME, VT, VTU, VTI, VW, NV, 1)
/* GEMM_MICRO over NP consecutive A panels (kc * MR floats apart) at once: rows up to NP * MR of
 * C, whose scale, bias and residual rows follow on. */
#define GEMM_MICRO_NP(NAME, VT, VTU, VTI, VW, NV, NP)                                              \
    static inline __attribute__((always_inline)) GEMM_CONTRACT void NAME(                          \
        int rows, int kc, const float *restrict a, const float *restrict b, size_t ldb,            \
        float *restrict c, size_t ldc, const struct gemm_out *o)                                   \
    {                                                                                              \
        VT acc[GEMM_MR * (NP)][NV];                                                                \
        const size_t pa = (size_t)kc * GEMM_MR;                                                    \
        for (int i = 0; i < rows; i++) {                                                           \
            __builtin_prefetch(c + (size_t)i * ldc, 1, 3);                                         \
            __builtin_prefetch(c + (size_t)i * ldc + (NV) * (VW) - 1, 1, 3);                       \
            for (int v = 0; v < (NV); v++)                                                         \
                acc[i][v] = (VT){0};                                                               \
        }                                                                                          \
        /* two k steps (12 floats of A, less than a line) per prefetch: one per step cost 6 % */  \
        int k = 0;                                                                                 \
        _Pragma("GCC unroll 2") for (; k + 2 <= kc; k += 2) {                                      \
            for (int q = 0; q < (NP); q++)                                                         \
                __builtin_prefetch(a + (size_t)q * pa + GEMM_MR * GEMM_A_AHEAD, 0, 3);             \
            GEMM_MICRO_STEP(VT, VTU, VW, NV);                                                      \
            GEMM_MICRO_STEP(VT, VTU, VW, NV);                                                      \
        }                                                                                          \
        if (k < kc)                                                                                \
            GEMM_MICRO_STEP(VT, VTU, VW, NV);                                                      \
        /* Every K block but the last (alpha 1, beta 0 or 1, nothing fused): straight-line code    \
         * that keeps the accumulators in registers: the bits of the general epilogue below        \
         * (sum + beta * c, fused or not, rounds sum + c once). */                                 \
        if (o->alpha == 1 && (o->beta == 0 || o->beta == 1) && !o->scale && !o->bias &&            \
            !o->res && o->fuse == GEMM_FUSE_NONE) {                                                \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++) {                           \
                    VTU *cp = (VTU *)(void *)(c + (size_t)i * ldc + (size_t)((VW) * v));           \
                    *cp = o->beta != 0 ? acc[i][v] + *cp : acc[i][v];                              \
                }                                                                                  \
            return;                                                                                \
        }                                                                                          \
        /* The last K block: each step of the epilogue over the whole tile in turn, so that        \
         * each flag is tested once a tile, not once a vector (a tenth of a tile at K = 64). */    \
        const VT zero = {0};                                                                       \
        if (o->alpha != 1) /* rounded alone: beta * c can then only fuse with it */                \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++) {                           \
                    VT r = acc[i][v] * o->alpha;                                                   \
                    GEMM_ROUNDED(r);                                                               \
                    acc[i][v] = r;                                                                 \
                }                                                                                  \
        if (o->beta != 0)                                                                          \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++)                             \
                    acc[i][v] += o->beta * *(const VTU *)(const void *)(c + (size_t)i * ldc +      \
                                                                        (size_t)((VW) * v));       \
        if (o->scale)                                                                              \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++) {                           \
                    VT r = acc[i][v] * o->scale[i];                                                \
                    GEMM_ROUNDED(r);                                                               \
                    acc[i][v] = r;                                                                 \
                }                                                                                  \
        if (o->bias)                                                                               \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++)                             \
                    acc[i][v] += o->bias[i];                                                       \
        if (o->res)                                                                                \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++) {                           \
                    const float *rp = o->res + (size_t)i * o->ldr + (size_t)((VW) * v);            \
                    VT r = acc[i][v];                                                              \
                    GEMM_ROUNDED(r);                                                               \
                    acc[i][v] = r + *(const VTU *)(const void *)rp;                                \
                }                                                                                  \
        if (o->fuse == GEMM_FUSE_RELU)                                                             \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++)                             \
                    acc[i][v] = (VT)((VTI)acc[i][v] & (acc[i][v] > zero));                         \
        else if (o->fuse == GEMM_FUSE_LEAKY)                                                       \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++) {                           \
                    VTI m = acc[i][v] > zero;                                                      \
                    acc[i][v] = (VT)(((VTI)acc[i][v] & m) | ((VTI)(.1f * acc[i][v]) & ~m));        \
                }                                                                                  \
        else if (o->fuse == GEMM_FUSE_RELU6)                                                       \
            _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                \
                _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++) {                           \
                    const VT six = zero + 6.f;                                                     \
                    VT r = acc[i][v];                                                              \
                    VTI hi = r > six;                                                              \
                    r = (VT)((VTI)r & ~(r < zero));                                                \
                    acc[i][v] = (VT)(((VTI)r & ~hi) | ((VTI)six & hi));                            \
                }                                                                                  \
        _Pragma("GCC unroll 12") for (int i = 0; i < rows; i++)                                    \
            _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++)                                 \
                *(VTU *)(void *)(c + (size_t)i * ldc + (size_t)((VW) * v)) = acc[i][v];            \
    }

GEMM_MICRO(gemm_micro16x2, vec16, vec16u, vec16i, 16, 2)
GEMM_MICRO(gemm_micro16x1, vec16, vec16u, vec16i, 16, 1)
GEMM_MICRO_NP(gemm_micro16x1x2, vec16, vec16u, vec16i, 16, 1, 2)
GEMM_MICRO(gemm_micro8x2, vec8, vec8u, vec8i, 8, 2)
GEMM_MICRO(gemm_micro8x1, vec8, vec8u, vec8i, 8, 1)
GEMM_MICRO(gemm_micro4x2, vec4, vec4u, vec4i, 4, 2)
GEMM_MICRO(gemm_micro4x1, vec4, vec4u, vec4i, 4, 1)

#define GEMM_NARROW_MAX 4 /* widest column tail the narrow kernel takes */
#define GEMM_NARROW_PANELS 8 /* most A panels it runs at once (8 chains for one column) */

/* Column tails of n <= GEMM_NARROW_MAX columns, for np consecutive A panels (panel stride kc * MR;
 * the last has mlast rows, the others MR): one 8-float vector per panel and column with the MR
 * rows of a k step in its lanes (the last two lanes unused), B broadcast. A k step costs np * n
 * multiply-adds where the half kernel spends np * MR (a 49-column tile: 14 % of the work); the
 * np * n chains hide the latency of the multiply-add. Every element goes through the operations
 * of GEMM_MICRO (multiply-adds in k order from zero, then the same epilogue), so its result does
 * not depend on which kernel computed it. np and n are constants at each call. */
static inline __attribute__((always_inline)) GEMM_CONTRACT void
gemm_narrow8(int np, int n, int mlast, int kc, const float *restrict a, const float *restrict b,
             size_t ldb, float *restrict c, size_t ldc, const struct gemm_out *o)
{
    size_t pa = (size_t)kc * GEMM_MR;
    vec8 acc[GEMM_NARROW_PANELS][GEMM_NARROW_MAX] = {{{0}}};
    for (int k = 0; k < kc - 1; k++, a += GEMM_MR, b += ldb)
        for (int j = 0; j < n; j++)
            for (int p = 0; p < np; p++) /* lanes 6, 7: the next k step's */
                acc[p][j] += *(const vec8u *)(const void *)(a + p * pa) * b[j];
    for (int p = 0; p < np; p++) { /* the last k step ends the panel: no 8-float load */
        const float *e = a + p * pa;
        vec8 av = {e[0], e[1], e[2], e[3], e[4], e[5], 0, 0};
        for (int j = 0; j < n; j++)
            acc[p][j] += av * b[j];
    }
    const vec8 zero = {0};
    for (int p = 0; p < np; p++) {
        int m = p == np - 1 ? mlast : GEMM_MR;
        vec8 scale = zero, bias = zero;
        for (int i = 0; i < m; i++) {
            scale[i] = o->scale ? o->scale[p * GEMM_MR + i] : 0.f;
            bias[i] = o->bias ? o->bias[p * GEMM_MR + i] : 0.f;
        }
        for (int j = 0; j < n; j++) {
            float *cp = c + (size_t)(p * GEMM_MR) * ldc + (size_t)j;
            vec8 cv = zero;
            for (int i = 0; i < m && o->beta != 0; i++)
                cv[i] = cp[(size_t)i * ldc];
            vec8 r = acc[p][j];
            if (o->alpha != 1) {
                r *= o->alpha;
                GEMM_ROUNDED(r);
            }
            if (o->beta != 0)
                r += o->beta * cv;
            if (o->scale) {
                r *= scale;
                GEMM_ROUNDED(r);
            }
            if (o->bias)
                r += bias;
            if (o->res) { /* b1: the residual, as in GEMM_MICRO */
                vec8 rv = zero;
                for (int i = 0; i < m; i++)
                    rv[i] = o->res[(size_t)(p * GEMM_MR + i) * o->ldr + (size_t)j];
                GEMM_ROUNDED(r);
                r += rv;
            }
            if (o->fuse == GEMM_FUSE_RELU)
                r = (vec8)((vec8i)r & (r > zero));
            else if (o->fuse == GEMM_FUSE_LEAKY) {
                vec8i msk = r > zero;
                r = (vec8)(((vec8i)r & msk) | ((vec8i)(.1f * r) & ~msk));
            } else if (o->fuse == GEMM_FUSE_RELU6) {
                const vec8 six = zero + 6.f;
                vec8i hi = r > six;
                r = (vec8)((vec8i)r & ~(r < zero));
                r = (vec8)(((vec8i)r & ~hi) | ((vec8i)six & hi));
            }
            for (int i = 0; i < m; i++)
                cp[(size_t)i * ldc] = r[i];
        }
    }
}

#if defined(__clang__)
#define GEMM_SHUF(x, y, i0, i1, i2, i3) __builtin_shufflevector(x, y, i0, i1, i2, i3)
#else
#define GEMM_SHUF(x, y, i0, i1, i2, i3) __builtin_shuffle(x, y, (vec4i){i0, i1, i2, i3})
#endif

/* Four k steps of a full panel from 6 rows of an untransposed A (src, row stride lda) into
 * d[24]: a 6 x 4 transpose in 4-wide vectors, several times faster than scalar stores. */
static inline __attribute__((always_inline)) void gemm_pack_a6x4(float *restrict d,
                                                                 const float *restrict src,
                                                                 size_t lda)
{
    vec4 r[GEMM_MR];
    for (int i = 0; i < GEMM_MR; i++)
        r[i] = *(const vec4u *)(const void *)(src + (size_t)i * lda);
    vec4 u0 = GEMM_SHUF(r[0], r[1], 0, 4, 1, 5), u1 = GEMM_SHUF(r[0], r[1], 2, 6, 3, 7);
    vec4 u2 = GEMM_SHUF(r[2], r[3], 0, 4, 1, 5), u3 = GEMM_SHUF(r[2], r[3], 2, 6, 3, 7);
    vec4 w0 = GEMM_SHUF(r[4], r[5], 0, 4, 1, 5), w1 = GEMM_SHUF(r[4], r[5], 2, 6, 3, 7);
    vec4 t0 = GEMM_SHUF(u0, u2, 0, 1, 4, 5), t1 = GEMM_SHUF(u0, u2, 2, 3, 6, 7);
    vec4 t2 = GEMM_SHUF(u1, u3, 0, 1, 4, 5), t3 = GEMM_SHUF(u1, u3, 2, 3, 6, 7);
    vec4u *o = (vec4u *)(void *)d; /* k: rows 0-3 then rows 4-5, four times */
    o[0] = t0;
    o[1] = GEMM_SHUF(w0, t1, 0, 1, 4, 5);
    o[2] = GEMM_SHUF(t1, w0, 2, 3, 6, 7);
    o[3] = t2;
    o[4] = GEMM_SHUF(w1, t3, 0, 1, 4, 5);
    o[5] = GEMM_SHUF(t3, w1, 2, 3, 6, 7);
}

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
        int k4 = m == GEMM_MR ? kc / 4 * 4 : 0;
        const float *a = g->A + (size_t)(i0 + ir) * g->lda + (size_t)p0;
        for (int k = 0; k < k4; k += 4)
            gemm_pack_a6x4(dst + (size_t)k * GEMM_MR, a + k, g->lda);
        for (int i = 0; i < GEMM_MR; i++) {
            const float *src = a + (size_t)i * g->lda;
            if (i < m)
                for (int k = k4; k < kc; k++)
                    dst[(size_t)k * GEMM_MR + (size_t)i] = src[k];
            else
                for (int k = 0; k < kc; k++)
                    dst[(size_t)k * GEMM_MR + (size_t)i] = 0.f;
        }
    }
}

/* One kc x nr panel of op(B) (n valid columns from j0, rows from p0), zero-padded. */
static inline __attribute__((always_inline)) void
gemm_pack_b_panel(float *restrict dst, const struct gemm_args *g, int p0, int kc, int j0, int n,
                  int nr)
{
    if (g->tb) { /* stored B is N x K: read each column's run of k, write it strided */
        for (int j = 0; j < n; j++) {
            const float *src = g->B + (size_t)(j0 + j) * g->ldb + (size_t)p0;
            for (int k = 0; k < kc; k++)
                dst[(size_t)k * (size_t)nr + (size_t)j] = src[k];
        }
        for (int k = 0; k < kc && n < nr; k++)
            for (int j = n; j < nr; j++)
                dst[(size_t)k * (size_t)nr + (size_t)j] = 0.f;
        return;
    }
    const float *src = g->B + (size_t)p0 * g->ldb + (size_t)j0;
    for (int k = 0; k < kc; k++, src += g->ldb, dst += nr) {
        if (n == nr)
            for (int j = 0; j < nr; j++)
                dst[j] = src[j];
        else
            for (int j = 0; j < nr; j++)
                dst[j] = j < n ? src[j] : 0.f;
    }
}

/* One output row's share of a panel of im2col columns: n columns written at off (and then every
 * nr-float panel row) whose tap (0, 0) reads input row iy from column ix, then every sw-th. */
struct gemm_conv_run {
    size_t off;
    int n, iy, ix;
};

/* d[t] = s[2t] for t < n, s holding avail >= 2n - 1 floats: 4 at a time from two 4-float loads
 * (a shuffle of their even lanes) while the second load stays within avail, since a strided
 * loop compiles to one scalar load and store per element (stride-2 layers: ResNet's 7x7/2
 * conv0 packed 29 % of its time that way). */
static inline __attribute__((always_inline)) void
gemm_conv_copy_s2(float *restrict d, const float *restrict s, int n, int avail, int nr)
{
    int t = 0;
    if (n == nr && 2 * nr <= avail) { /* a whole panel row: nr is a constant, no loop is left */
        for (; t < nr; t += 4) {
            vec4 a = *(const vec4u *)(const void *)(s + 2 * t);
            vec4 b = *(const vec4u *)(const void *)(s + 2 * t + 4);
            *(vec4u *)(void *)(d + t) = GEMM_SHUF(a, b, 0, 2, 4, 6);
        }
        return;
    }
    for (; t + 4 <= n && 2 * t + 8 <= avail; t += 4) {
        vec4 a = *(const vec4u *)(const void *)(s + 2 * t);
        vec4 b = *(const vec4u *)(const void *)(s + 2 * t + 4);
        *(vec4u *)(void *)(d + t) = GEMM_SHUF(a, b, 0, 2, 4, 6);
    }
    for (; t < n; t++)
        d[t] = s[2 * t];
}

/* d[t] = s[t * sw] for t < n inside the image (avail floats from s). */
static inline __attribute__((always_inline)) void
gemm_conv_copy(float *restrict d, const float *restrict s, int n, int sw, int avail, int nr)
{
    if (sw == 1 && n == nr)
        for (int t = 0; t < nr; t++)
            d[t] = s[t];
    else if (sw == 1)
        for (int t = 0; t < n; t++)
            d[t] = s[t];
    else if (sw == 2)
        gemm_conv_copy_s2(d, s, n, avail, nr);
    else
        for (int t = 0; t < n; t++)
            d[t] = s[(size_t)t * (size_t)sw];
}

/* One run's share of a packed row for a tap offset (dy, dx) into d: a strided copy where the run
 * lies inside the image, zeros on a padding row; a run reaching into the padding columns is
 * cut into zeros, the copy of the cells inside, zeros. nr: the panel width, a constant, so that
 * runs of a whole panel row copy in straight-line code (the loops' own overhead was most of the
 * cost of runs of 16). */
static inline __attribute__((always_inline)) void
gemm_conv_run_copy(float *restrict d, const float *restrict im, const struct im2col_geom *q,
                   const struct gemm_conv_run *r, int dy, int dx, int nr)
{
    int y = r->iy + dy, x0 = r->ix + dx, sw = q->sw, n = r->n;
    if ((unsigned)y >= (unsigned)q->h) {
        for (int t = 0; t < n; t++)
            d[t] = 0.f;
        return;
    }
    const float *s = im + (size_t)y * (size_t)q->w;
    if (x0 >= 0 && x0 + (n - 1) * sw < q->w) {
        gemm_conv_copy(d, s + x0, n, sw, q->w - x0, nr);
        return;
    }
    /* t in [lo, hi): the cells x0 + t * sw inside [0, w) */
    int lo = x0 < 0 ? CN_MIN(n, (-x0 + sw - 1) / sw) : 0;
    int hi = x0 >= q->w ? lo : CN_MAX(lo, CN_MIN(n, (q->w - 1 - x0) / sw + 1));
    for (int t = 0; t < lo; t++)
        d[t] = 0.f;
    if (hi > lo)
        gemm_conv_copy(d + lo, s + x0 + lo * sw, hi - lo, sw, q->w - (x0 + lo * sw), nr);
    for (int t = hi; t < n; t++)
        d[t] = 0.f;
}

/* Prefetches the image cells a run reads on image row r->iy + dy over all kw taps of the row. */
static inline __attribute__((always_inline)) void
gemm_conv_run_prefetch(const float *im, const struct im2col_geom *q, const struct gemm_conv_run *r,
                       int dy)
{
    int y = r->iy + dy;
    if ((unsigned)y >= (unsigned)q->h)
        return;
    int x0 = CN_MAX(r->ix, 0), x1 = CN_MIN(r->ix + (r->n - 1) * q->sw + (q->kw - 1) * q->dw,
                                             q->w - 1);
    const float *s = im + (size_t)y * (size_t)q->w;
    for (int x = x0; x < x1; x += 16)
        __builtin_prefetch(s + x, 0, 3);
    if (x0 <= x1)
        __builtin_prefetch(s + x1, 0, 3);
}

/* Panels of im2col(image g->B) for taps [p0, p0 + kc) and the w <= GEMM_PACK_B_COLS output
 * positions from j0, zero-padded to whole panels: each panel row is a tap (c, ki, kj), each
 * column an output position. The columns are cut once into runs within one output row and one
 * panel; then tap by tap every run is copied, so that the image is read along its rows across
 * all the panels (reading one panel's taps in turn would touch a new plane at every row). */
static inline __attribute__((always_inline)) void
gemm_pack_conv(float *restrict dst, const struct gemm_args *g, int p0, int kc, int j0, int w,
               int nr)
{
    const struct im2col_geom *q = g->geom;
    struct gemm_conv_run runs[GEMM_PACK_B_COLS];
    int nruns = 0, np = (w + nr - 1) / nr;
    size_t panel = (size_t)kc * (size_t)nr;
    for (int j = 0; j < w;) {
        int p = j0 + j, oy = p / q->ow, ox = p - oy * q->ow;
        int len = CN_MIN(CN_MIN(w - j, q->ow - ox), nr - j % nr);
        runs[nruns++] = (struct gemm_conv_run){(size_t)(j / nr) * panel + (size_t)(j % nr), len,
                                               oy * q->sh - q->ph, ox * q->sw - q->pw};
        j += len;
    }
    int kj = p0 % q->kw, ki = p0 / q->kw % q->kh, c = p0 / (q->kw * q->kh);
    for (int k = 0; k < kc; k++) {
        const float *im = g->B + (size_t)c * (size_t)q->h * (size_t)q->w;
        float *row = dst + (size_t)k * (size_t)nr;
        for (int r = 0; r < nruns; r++)
            gemm_conv_run_copy(row + runs[r].off, im, q, &runs[r], ki * q->dh, kj * q->dw, nr);
        /* the next channel's rows, ahead of its taps: the image is read across its planes, which
         * no hardware prefetcher follows (the first touch of each row waited on memory: 40 %
         * of packing ResNet-50's 3x3/2 layers) */
        for (int r = 0; kj == 0 && c + 1 < q->c && r < nruns; r++)
            gemm_conv_run_prefetch(im + (size_t)q->h * (size_t)q->w, q, &runs[r], ki * q->dh);
        for (int j = w; j < np * nr; j++)
            row[(size_t)(np - 1) * panel + (size_t)(j % nr)] = 0.f;
        if (++kj == q->kw) {
            kj = 0;
            if (++ki == q->kh)
                ki = 0, c++;
        }
    }
}

/* Packs op(B)[p0 .. p0+kc) x [j0 .. j0+nc) as ceil(nc/nr) panels of kc x nr, zero-padded. */
static inline __attribute__((always_inline)) void
gemm_pack_b(float *restrict dst, const struct gemm_args *g, int p0, int kc, int j0, int nc, int nr)
{
    /* Whole panels of an untransposed B, GEMM_PACK_B_COLS columns at a time row by row, so that
     * B is read in runs of 1 KB rather than one 64-byte piece per row. */
    for (int whole = nc / nr * nr; !g->tb && !g->geom && whole > 0; whole = nc / nr * nr) {
        int w = CN_MIN(whole, GEMM_PACK_B_COLS);
        const float *src = g->B + (size_t)p0 * g->ldb + (size_t)j0;
        for (int k = 0; k < kc; k++, src += g->ldb)
            for (int jr = 0; jr < w; jr += nr) {
                float *d = dst + (size_t)jr * (size_t)kc + (size_t)k * (size_t)nr;
                if (k + GEMM_PACK_B_AHEAD < kc) /* many short runs: the prefetcher lags */
                    __builtin_prefetch(src + GEMM_PACK_B_AHEAD * g->ldb + jr, 0, 0);
                for (int j = 0; j < nr; j++)
                    d[j] = src[jr + j];
            }
        dst += (size_t)w * (size_t)kc;
        j0 += w;
        nc -= w;
    }
    for (int jc = 0; g->geom && jc < nc; jc += GEMM_PACK_B_COLS) /* a multiple of nr */
        gemm_pack_conv(dst + (size_t)jc * (size_t)kc, g, p0, kc, j0 + jc,
                       CN_MIN(GEMM_PACK_B_COLS, nc - jc), nr);
    for (int jr = 0; !g->geom && jr < nc; jr += nr, dst += (size_t)kc * (size_t)nr)
        gemm_pack_b_panel(dst, g, p0, kc, j0 + jr, CN_MIN(nr, nc - jr), nr);
}

/* Each ISA gets its own compiled copy of the micro-kernels and the packing loops. */
/* A kernel for each row count m of a tile (a constant in each case). */
#define GEMM_ROWS_CASES(KERNEL, ...)                                                               \
    switch (m) {                                                                                   \
    case 1: KERNEL(1, __VA_ARGS__); break;                                                         \
    case 2: KERNEL(2, __VA_ARGS__); break;                                                         \
    case 3: KERNEL(3, __VA_ARGS__); break;                                                         \
    case 4: KERNEL(4, __VA_ARGS__); break;                                                         \
    case 5: KERNEL(5, __VA_ARGS__); break;                                                         \
    default: KERNEL(GEMM_MR, __VA_ARGS__); break;                                                  \
    }
/* np tiles side by side in one call: the call, the switch on m and the set-up of a tile cost
 * 5 % of a tile at K = 64. */
#define GEMM_ROW_LOOP(ROWS, FULL, NR, np, kc, a, b, panel, ldb, c, ldc, o)                         \
    for (int p = 0; p < (np); p++) {                                                               \
        struct gemm_out op = *(o);                                                                 \
        op.res = (o)->res ? (o)->res + (size_t)p * (NR) : NULL;                                    \
        FULL(ROWS, kc, a, (b) + (size_t)p * (panel), ldb, (c) + (size_t)p * (NR), ldc, &op);       \
    }

#define GEMM_ISA(SUF, ATTR, FULL, HALF, NR)                                                        \
    ATTR GEMM_CONTRACT static void gemm_row_##SUF(int m, int np, int kc, const float *a,           \
                                                  const float *b, size_t panel, size_t ldb,        \
                                                  float *c, size_t ldc, const struct gemm_out *o)  \
    {                                                                                              \
        GEMM_ROWS_CASES(GEMM_ROW_LOOP, FULL, NR, np, kc, a, b, panel, ldb, c, ldc, o)              \
    }                                                                                              \
    ATTR GEMM_CONTRACT static void gemm_full_##SUF(int m, int kc, const float *a, const float *b,  \
                                                   size_t ldb, float *c, size_t ldc,               \
                                                   const struct gemm_out *o)                       \
    {                                                                                              \
        GEMM_ROWS_CASES(FULL, kc, a, b, ldb, c, ldc, o)                                            \
    }                                                                                              \
    ATTR GEMM_CONTRACT static void gemm_half_##SUF(int m, int kc, const float *a, const float *b,  \
                                                   size_t ldb, float *c, size_t ldc,               \
                                                   const struct gemm_out *o)                       \
    {                                                                                              \
        GEMM_ROWS_CASES(HALF, kc, a, b, ldb, c, ldc, o)                                            \
    }                                                                                              \
    ATTR static void gemm_pack_a_##SUF(float *dst, const struct gemm_args *g, int i0, int mc,      \
                                       int p0, int kc)                                             \
    {                                                                                              \
        gemm_pack_a(dst, g, i0, mc, p0, kc);                                                       \
    }                                                                                              \
    ATTR static void gemm_pack_b_##SUF(float *dst, const struct gemm_args *g, int p0, int kc,      \
                                       int j0, int nc)                                             \
    {                                                                                              \
        gemm_pack_b(dst, g, p0, kc, j0, nc, NR);                                                   \
    }

#if GEMM_X86
/* The narrow kernel of AVX2 and AVX-512 (8-float vectors hold the MR rows): np panels at once
 * with n columns, np at most 12 / n chains (12 accumulators, as the main kernel's; for one
 * column 8, which two FMA pipes of latency 4 need to stay busy). */
#define GEMM_NARROW_CASES(N, NP, ...)                                                              \
    if (np == (NP))                                                                                \
        gemm_narrow8(NP, N, __VA_ARGS__);                                                          \
    else if (np == 2)                                                                              \
        gemm_narrow8(2, N, __VA_ARGS__);                                                           \
    else                                                                                           \
        gemm_narrow8(1, N, __VA_ARGS__);
#define GEMM_NARROW_ISA(SUF, ATTR)                                                                 \
    ATTR GEMM_CONTRACT static void gemm_narrow_##SUF(int np, int n, int mlast, int kc,             \
                                                     const float *a, const float *b, size_t ldb,   \
                                                     float *c, size_t ldc,                         \
                                                     const struct gemm_out *o)                     \
    {                                                                                              \
        if (n == 1) {                                                                              \
            GEMM_NARROW_CASES(1, 8, mlast, kc, a, b, ldb, c, ldc, o)                               \
        } else if (n == 2) {                                                                       \
            GEMM_NARROW_CASES(2, 6, mlast, kc, a, b, ldb, c, ldc, o)                               \
        } else if (n == 3) {                                                                       \
            GEMM_NARROW_CASES(3, 4, mlast, kc, a, b, ldb, c, ldc, o)                               \
        } else {                                                                                   \
            GEMM_NARROW_CASES(4, 3, mlast, kc, a, b, ldb, c, ldc, o)                               \
        }                                                                                          \
    }
GEMM_NARROW_ISA(avx512, __attribute__((target("avx512f,avx2,fma"))))
GEMM_NARROW_ISA(avx2, __attribute__((target("avx2,fma"))))
GEMM_ISA(avx512, __attribute__((target("avx512f,avx2,fma"))), gemm_micro16x2, gemm_micro16x1, 32)
/* Half-width tiles of two A panels at once: 12 accumulators where gemm_half_avx512 has 6, which
 * leave the FMA pipes waiting on their latency and the loads (the 16 columns of Winograd's 16
 * tiles at 7x7 and 14x14 maps). */
__attribute__((target("avx512f,avx2,fma"))) GEMM_CONTRACT static void
gemm_half2_avx512(int m, int kc, const float *a, const float *b, size_t ldb, float *c, size_t ldc,
                  const struct gemm_out *o)
{
    (void)m;
    gemm_micro16x1x2(2 * GEMM_MR, kc, a, b, ldb, c, ldc, o);
}
GEMM_ISA(avx2, __attribute__((target("avx2,fma"))), gemm_micro8x2, gemm_micro8x1, 16)
#endif
GEMM_ISA(portable, , gemm_micro4x2, gemm_micro4x1, 8)

/* The kernel set for isa, or NULL when this CPU (or build) lacks it; AUTO picks the best. */
static const struct gemm_arch *gemm_arch_for(enum gemm_isa isa)
{
    static const struct gemm_arch portable = {8,    gemm_full_portable,   gemm_half_portable,
                                              NULL, NULL,                 gemm_pack_a_portable,
                                              gemm_pack_b_portable, gemm_row_portable};
#if GEMM_X86
    static const struct gemm_arch avx2 = {16,   gemm_full_avx2,   gemm_half_avx2,
                                          NULL, gemm_narrow_avx2, gemm_pack_a_avx2,
                                          gemm_pack_b_avx2, gemm_row_avx2};
    static const struct gemm_arch avx512 = {32,
                                            gemm_full_avx512,
                                            gemm_half_avx512,
                                            gemm_half2_avx512,
                                            gemm_narrow_avx512,
                                            gemm_pack_a_avx512,
                                            gemm_pack_b_avx512,
                                            gemm_row_avx512};
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

/* One MR x nr block of C at c with m x n valid cells: the half kernel when n <= nr/2; straight
 * into C when the kernel's columns are all valid (m rows of them), else on a copy of the valid
 * part (padding never touches C), the scale and bias of the m rows padded to MR. Activations the
 * kernel cannot fuse are applied afterwards. */
static void gemm_block(const struct gemm_args *g, const struct gemm_arch *ar, int kc,
                       const float *ap, const float *b, size_t ldb, float *c, int m, int n,
                       const struct gemm_out *o, int act_after)
{
    int w = n <= ar->nr / 2 ? ar->nr / 2 : ar->nr;
    gemm_kernel_fn kernel = w == ar->nr ? ar->full : ar->half;
    if (n == w) {
        kernel(m, kc, ap, b, ldb, c, g->ldc, o);
    } else {
        float t[GEMM_MR * GEMM_NR_MAX] __attribute__((aligned(64))) = {0}, bias[GEMM_MR] = {0};
        float scale[GEMM_MR] = {0};
        struct gemm_out oe = *o;
        if (o->bias) {
            memcpy(bias, o->bias, sizeof(float) * (size_t)m);
            oe.bias = bias;
        }
        if (o->scale) {
            memcpy(scale, o->scale, sizeof(float) * (size_t)m);
            oe.scale = scale;
        }
        float res[GEMM_MR * GEMM_NR_MAX] __attribute__((aligned(64))) = {0};
        for (int r = 0; r < m && o->res; r++)
            memcpy(res + r * w, o->res + (size_t)r * o->ldr, sizeof(float) * (size_t)n);
        oe.res = o->res ? res : NULL;
        oe.ldr = (size_t)w;
        for (int r = 0; r < m && o->beta != 0; r++)
            memcpy(t + r * w, c + (size_t)r * g->ldc, sizeof(float) * (size_t)n);
        kernel(m, kc, ap, b, (size_t)ldb, t, (size_t)w, &oe);
        for (int r = 0; r < m; r++)
            memcpy(c + (size_t)r * g->ldc, t + r * w, sizeof(float) * (size_t)n);
    }
    for (int r = 0; r < m && act_after; r++)
        for (int s = 0; s < n; s++)
            c[(size_t)r * g->ldc + (size_t)s] = act_apply(g->act, c[(size_t)r * g->ldc + (size_t)s]);
}

/* o for the tile of C at row i, column j: the rows' bias, scale and residual when last (the
 * final K block), none before; *at gets the tile's offset in C (and in the residual). */
static struct gemm_out gemm_rows_out(const struct gemm_args *g, const struct gemm_out *o, int i,
                                     int j, int last, size_t *at)
{
    struct gemm_out oo = *o;
    *at = (size_t)i * g->ldc + (size_t)j;
    oo.bias = last && g->bias ? g->bias + i : NULL;
    oo.scale = last && g->scale ? g->scale + i : NULL;
    oo.res = last && g->res ? g->res + *at : NULL;
    oo.ldr = g->ldc;
    return oo;
}

/* A column tail of n <= GEMM_NARROW_MAX columns from j0 (B panel b, row stride ldb) for packed
 * A rows [i0, i0+mc) (ap): the narrow kernel over groups of panels, straight into C. */
static void gemm_narrow_tail(const struct gemm_args *g, const struct gemm_arch *ar, const float *ap,
                             const float *b, size_t ldb, int i0, int mc, int j0, int n, int kc,
                             const struct gemm_out *o, int last, int act_after)
{
    int pmax = CN_MIN(GEMM_NARROW_PANELS, 12 / n);
    for (int ir = 0; ir < mc;) {
        int left = (mc - ir + GEMM_MR - 1) / GEMM_MR, np = left >= pmax ? pmax : left >= 2 ? 2 : 1;
        int rows = CN_MIN(np * GEMM_MR, mc - ir);
        size_t at;
        struct gemm_out oo = gemm_rows_out(g, o, i0 + ir, j0, last, &at);
        float *c = g->C + at;
        ar->narrow(np, n, rows - (np - 1) * GEMM_MR, kc, ap + (size_t)ir * (size_t)kc, b, ldb, c,
                   g->ldc, &oo);
        for (int r = 0; r < rows && act_after; r++)
            for (float *e = c + (size_t)r * g->ldc; e < c + (size_t)r * g->ldc + n; e++)
                *e = act_apply(g->act, *e);
        ir += np * GEMM_MR;
    }
}

/* The MR x n tile of C at packed A panel ir of the block at ap (rows i0 + ir ...) and the B panel
 * b of columns j0 ...: gemm_block with the rows' epilogue (bias, scale, residual when last). */
static void gemm_tile(const struct gemm_args *g, const struct gemm_arch *ar, const float *ap,
                      const float *b, size_t ldb, int i0, int ir, int mc, int j0, int n, int kc,
                      const struct gemm_out *o, int last, int act_after)
{
    int m = CN_MIN(GEMM_MR, mc - ir);
    size_t at;
    struct gemm_out oo = gemm_rows_out(g, o, i0 + ir, j0, last, &at);
    if (m == GEMM_MR && n == ar->nr && !act_after) { /* gemm_block's first case, without its */
        ar->full(GEMM_MR, kc, ap + (size_t)ir * (size_t)kc, b, ldb, g->C + at, g->ldc, &oo);
        return; /* frame (two aligned edge buffers): 6 % of the cycles at K = 27 */
    }
    gemm_block(g, ar, kc, ap + (size_t)ir * (size_t)kc, b, ldb, g->C + at, m, n, &oo, act_after);
}

/* The 2*MR x NR/2 tile of C at packed A panels ir and ir + MR of the block at ap and the B panel
 * b of columns j0 ... (all its cells valid), by ar->half2, with the rows' epilogue. */
static void gemm_half2_tile(const struct gemm_args *g, const struct gemm_arch *ar,
                            const float *ap, const float *b, size_t ldb, int i0, int ir, int j0,
                            int kc, const struct gemm_out *o, int last)
{
    size_t at;
    struct gemm_out oo = gemm_rows_out(g, o, i0 + ir, j0, last, &at);
    ar->half2(2 * GEMM_MR, kc, ap + (size_t)ir * (size_t)kc, b, ldb, g->C + at, g->ldc, &oo);
}

/* The product of packed A rows [i0, i0+mc) (ap) and nc columns of B from j0, as panels at bp
 * panel apart with row stride ldb, into C, with epilogue o (bias applied when last). rows_outer
 * (the B block is in L2): A panel by A panel, each kept in L1 while the B panels stream from L2,
 * so that C (and the residual) are walked along their rows, the panel's whole tiles in one
 * ar->row call (gemm_tile for a partial one and for activations applied after); else (a B
 * block larger than L2) B panel by B panel, each kept in L1 while the A block streams from L2,
 * C then read one line per row at a stride of ldc, which no hardware prefetcher follows. A
 * column tail of at most GEMM_NARROW_MAX columns goes to the narrow kernel over the whole block.
 */
static void gemm_macro(const struct gemm_args *g, const struct gemm_arch *ar, const float *ap,
                       const float *bp, size_t panel, size_t ldb, int i0, int mc, int j0, int nc,
                       int kc, const struct gemm_out *o, int last, int rows_outer)
{
    int nr = ar->nr, act_after = last && o->fuse == GEMM_FUSE_NONE && g->act != ACT_LINEAR;
    int tail = nc % nr, wide = ar->narrow && tail && tail <= GEMM_NARROW_MAX ? nc - tail : nc;
    /* a last tile of exactly NR/2 columns: two A panels at a time by half2 where it exists; a
     * tail of NR/2 + 1 .. + GEMM_NARROW_MAX columns too, the rest then narrow (the 49 columns of
     * a 7x7 map: 32 + 16 + 1, where the full kernel on a copy spent 32 on the last 17) */
    int half2 = ar->half2 && !act_after && rows_outer;
    if (half2 && ar->narrow && tail > nr / 2 && tail - nr / 2 <= GEMM_NARROW_MAX)
        wide = nc - (tail - nr / 2);
    half2 = half2 && wide % nr == nr / 2;
    for (int ir = 0, full = act_after ? 0 : wide / nr; rows_outer && ir < mc; ir += GEMM_MR) {
        size_t at;
        struct gemm_out oo = gemm_rows_out(g, o, i0 + ir, j0, last, &at);
        if (full) /* the whole tiles in one call, straight into C */
            ar->row(CN_MIN(GEMM_MR, mc - ir), full, kc, ap + (size_t)ir * (size_t)kc, bp, panel,
                    ldb, g->C + at, g->ldc, &oo);
        int jr = full * nr, pair = half2 && ir % (2 * GEMM_MR) == 0 && ir + 2 * GEMM_MR <= mc;
        if (pair || (half2 && ir % (2 * GEMM_MR) && ir + GEMM_MR <= mc)) {
            if (pair) /* this panel and the next; an odd one's tail was its pair's */
                gemm_half2_tile(g, ar, ap, bp + (size_t)(jr / nr) * panel, ldb, i0, ir, j0 + jr,
                                kc, o, last);
            jr += nr;
        }
        for (; jr < wide; jr += nr)
            gemm_tile(g, ar, ap, bp + (size_t)(jr / nr) * panel, ldb, i0, ir, mc, j0 + jr,
                      CN_MIN(nr, wide - jr), kc, o, last, act_after);
    }
    for (int jr = 0; !rows_outer && jr < wide; jr += nr)
        for (int ir = 0; ir < mc; ir += GEMM_MR)
            gemm_tile(g, ar, ap, bp + (size_t)(jr / nr) * panel, ldb, i0, ir, mc, j0 + jr,
                      CN_MIN(nr, wide - jr), kc, o, last, act_after);
    if (wide < nc)
        gemm_narrow_tail(g, ar, ap, bp + (size_t)(wide / nr) * panel + (size_t)(wide % nr), ldb,
                         i0, mc, j0 + wide, nc - wide, kc, o, last, act_after);
}

static int gemm_fuse_of(enum activation act)
{
    if (act == ACT_RELU6)
        return GEMM_FUSE_RELU6;
    return act == ACT_RELU ? GEMM_FUSE_RELU : act == ACT_LEAKY ? GEMM_FUSE_LEAKY : GEMM_FUSE_NONE;
}

/* K block p of nkb: [*p0, *p0 + *kc), sizes balanced so no block is a sliver. */
static void gemm_kblock(int K, int nkb, int p, int *p0, int *kc)
{
    *p0 = (int)((long)K * p / nkb);
    *kc = (int)((long)K * (p + 1) / nkb) - *p0;
}

/* Where rows [i0, ...) of K block [p0, p0 + kc) start in g->Ap: the blocks follow each other
 * in K order, each ceil(rows/MR) panels of kc x MR (gemm_pack_a_all; rows: ap_rows or M). */
static const float *gemm_packed_block(const struct gemm_args *g, int p0, int kc, int i0)
{
    size_t mp = (size_t)((g->ap_rows ? g->ap_rows : g->M) + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    return g->Ap + (size_t)p0 * mp + (size_t)(i0 - g->ap_row0) * (size_t)kc;
}

/* Whether a thread of rows x cols packs its B as one block (gemm_region): few columns, and more
 * rows than would keep their packed A in L2. */
static int gemm_one_block(const struct gemm_args *g, int rows, int cols)
{
    return !g->Ap && cols <= GEMM_NC_ONE && rows > GEMM_MC;
}

/* Columns per B block for a thread of rows x cols (see GEMM_NC_ONE, GEMM_NC, GEMM_NC_PACKED). */
static int gemm_nc(const struct gemm_args *g, int rows, int cols)
{
    return g->Ap ? GEMM_NC_PACKED : gemm_one_block(g, rows, cols) ? cols : GEMM_NC;
}

/* The epilogue of K block p of nkb: beta only in the first, the fused activation in the last. */
static struct gemm_out gemm_kblock_out(const struct gemm_args *g, int p, int nkb)
{
    return (struct gemm_out){g->alpha, p ? 1.f : g->beta, NULL, NULL,
                             p == nkb - 1 ? gemm_fuse_of(g->act) : GEMM_FUSE_NONE, NULL, 0};
}

/* Packed A rows [i0, i0+mc) (ap) times columns [j0, j0+nc) of K block [pc, pc+kc): the first
 * whole columns read in place from B, the rest from bp, packed. */
static void gemm_pass(const struct gemm_args *g, const struct gemm_arch *ar, const float *ap,
                      const float *bp, int pc, int kc, int i0, int mc, int j0, int nc, int whole,
                      const struct gemm_out *o, int last, int rows_outer)
{
    int nr = ar->nr;
    if (whole)
        gemm_macro(g, ar, ap, g->B + (size_t)pc * g->ldb + (size_t)j0, (size_t)nr, g->ldb, i0, mc,
                   j0, whole, kc, o, last, rows_outer);
    if (whole < nc)
        gemm_macro(g, ar, ap, bp, (size_t)kc * (size_t)nr, (size_t)nr, i0, mc, j0 + whole,
                   nc - whole, kc, o, last, rows_outer);
}

/* op(B) packed once for all the tiles of a call (the dynamic schedule's shared mode, for
 * grids of several row chunks, whose tiles would each pack the same B): K block p of column
 * block jb (GEMM_NC_PACKED columns from jc = jb * GEMM_NC_PACKED) at buf + pc * np + jc * kc (np:
 * N rounded up to NR; pc, kc: the block's first row and height), ready[jb * nkb + p] set
 * (release) once it is packed. */
struct gemm_shared_b {
    float *buf;
    int *ready;
    size_t np;
    int nkb;
};

#ifdef _OPENMP
/* The packed K block [pc, pc + kc) of the column block from jc, once its packer is done. */
static const float *gemm_shared_block(const struct gemm_shared_b *sb, int p, int pc, int kc, int jc)
{
    const int *ready = sb->ready + (size_t)(jc / GEMM_NC_PACKED * sb->nkb + p);
    for (int spins = 0; !__atomic_load_n(ready, __ATOMIC_ACQUIRE); spins++) {
        if (spins > 4096) /* its packer was preempted: let it run */
            sched_yield();
#if GEMM_X86
        __builtin_ia32_pause();
#endif
    }
    return sb->buf + (size_t)pc * sb->np + (size_t)jc * (size_t)kc;
}
#else
static const float *gemm_shared_block(const struct gemm_shared_b *sb, int p, int pc, int kc, int jc)
{
    (void)p;
    return sb->buf + (size_t)pc * sb->np + (size_t)jc * (size_t)kc;
}
#endif

/* Rows [m0, m1) x columns [n0, n1) of C with A prepacked (g->Ap), on one thread, with the pack
 * buffer bp, or B packed by all threads (sb, then n0 is a multiple of GEMM_NC_PACKED): for each
 * column block and K block, the B block is packed once (or, for a thread
 * of at most GEMM_DIRECT_B_ROWS rows, its whole panels read in place) and multiplied by the
 * MC-row blocks of A, A panels outermost, so that C (and the residual) are walked along their
 * rows: with B panels outer, C's lines one per row at a stride of ldc (a power of two in ResNet's
 * maps) thrash a few cache sets (netb1: 1.1-1.6x on the fused 1x1 + shortcut layers; gemm: 5-7 %
 * on resnet50.cfg's 1x1 layers at 1 thread, none consistently worse). */
static void gemm_region_packed(const struct gemm_args *g, const struct gemm_arch *ar, int m0,
                               int m1, int n0, int n1, float *bp, const struct gemm_shared_b *sb)
{
    int nr = ar->nr, nkb = (g->K + GEMM_KC - 1) / GEMM_KC, nmb = (m1 - m0 + GEMM_MC - 1) / GEMM_MC;
    int mcb = ((m1 - m0 + nmb - 1) / nmb + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    int in_place = !sb && !g->geom && !g->tb && m1 - m0 <= GEMM_DIRECT_B_ROWS;
    for (int jc = n0; jc < n1; jc += GEMM_NC_PACKED) {
        int nc = CN_MIN(GEMM_NC_PACKED, n1 - jc), whole = in_place ? nc / nr * nr : 0;
        for (int p = 0; p < nkb; p++) {
            int pc, kc, last = p == nkb - 1;
            gemm_kblock(g->K, nkb, p, &pc, &kc);
            struct gemm_out o = gemm_kblock_out(g, p, nkb);
            const float *b = bp;
            if (sb)
                b = gemm_shared_block(sb, p, pc, kc, jc);
            else if (whole < nc)
                ar->pack_b(bp, g, pc, kc, jc + whole, nc - whole);
            for (int ic = m0; ic < m1; ic += mcb) {
                int mc = CN_MIN(mcb, m1 - ic);
                gemm_pass(g, ar, gemm_packed_block(g, pc, kc, ic), b, pc, kc, ic, mc, jc, nc, whole,
                          &o, last, 1);
                if (last && g->post) /* the block is final and in L2 */
                    g->post->fn(g->post->ctx, g->C, g->ldc, ic, ic + mc, jc, jc + nc);
            }
        }
    }
}

/* Rows [m0, m1) x columns [n0, n1) of C, on one thread, with pack buffers ap and bp (sizes in
 * gemm_thread), K block by K block. At most GEMM_NC_ONE columns and more than GEMM_MC rows: B
 * is packed once for all of them (it stays in L2/L3) and A in blocks of GEMM_MC rows, each used
 * while it is in L2. Otherwise:
 * the thread's rows of A are packed once, then each block of GEMM_NC columns of B (kept in L2)
 * is packed and multiplied by all of them, so that neither is packed twice (the old scheme's
 * repacked A cost 2 % on VGG's 64- and 128-filter layers, and its 2 MB B block left L2). A
 * thread of at most GEMM_DIRECT_B_ROWS rows reads whole panels of an untransposed B in place. */
static void gemm_region(const struct gemm_args *g, const struct gemm_arch *ar, int m0, int m1,
                        int n0, int n1, float *ap, float *bp)
{
    int nr = ar->nr, nkb = (g->K + GEMM_KC - 1) / GEMM_KC, nmb = (m1 - m0 + GEMM_MC - 1) / GEMM_MC;
    int mcb = ((m1 - m0 + nmb - 1) / nmb + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    int in_place = !g->geom && !g->tb && m1 - m0 <= GEMM_DIRECT_B_ROWS;
    int one = gemm_one_block(g, m1 - m0, n1 - n0), ncb = one ? n1 - n0 : GEMM_NC;
    for (int p = 0; p < nkb; p++) {
        int pc, kc, last = p == nkb - 1;
        gemm_kblock(g->K, nkb, p, &pc, &kc);
        struct gemm_out o = gemm_kblock_out(g, p, nkb);
        if (!one)
            ar->pack_a(ap, g, m0, m1 - m0, pc, kc);
        for (int jc = n0; jc < n1; jc += ncb) {
            int nc = CN_MIN(ncb, n1 - jc), whole = in_place ? nc / nr * nr : 0;
            if (whole < nc)
                ar->pack_b(bp, g, pc, kc, jc + whole, nc - whole);
            for (int ic = m0; one && ic < m1; ic += mcb) {
                ar->pack_a(ap, g, ic, CN_MIN(mcb, m1 - ic), pc, kc);
                gemm_pass(g, ar, ap, bp, pc, kc, ic, CN_MIN(mcb, m1 - ic), jc, nc, whole, &o,
                          last, g->res != NULL || nc <= GEMM_NC_PACKED);
            }
            if (!one)
                gemm_pass(g, ar, ap, bp, pc, kc, m0, m1 - m0, jc, nc, whole, &o, last, 1);
        }
    }
}

/* All of C on the calling thread (the one-thread scheme), with its pack buffers. */
static void gemm_thread(const struct gemm_args *g, const struct gemm_arch *ar)
{
    int nr = ar->nr, m0 = 0, m1 = g->M, n0 = 0, n1 = g->N;
    int nkb = (g->K + GEMM_KC - 1) / GEMM_KC;
    size_t kc = (size_t)((g->K + nkb - 1) / nkb);
    int rows = CN_MIN(m1 - m0, GEMM_A_ROWS); /* gemm_region's at a time */
    size_t ncb = (size_t)CN_MIN(gemm_nc(g, rows, n1 - n0), n1 - n0);
    size_t mp = gemm_one_block(g, rows, n1 - n0) ? GEMM_MC /* rows of packed A */
                                                 : (size_t)(rows + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
    size_t na = g->Ap ? 0 : (mp * kc + 15) / 16 * 16;
    size_t nb = kc * ((ncb + nr - 1) / nr * nr);
    float *buf = NULL;
    /* KC x (the thread's rows + NC): out of memory here is not recoverable. */
    CN_ASSERT(posix_memalign((void **)&buf, 64, sizeof(float) * (na + nb)) == 0);
    if (g->Ap)
        gemm_region_packed(g, ar, m0, m1, n0, n1, buf, NULL);
    for (int r = m0; !g->Ap && r < m1; r += rows)
        gemm_region(g, ar, r, CN_MIN(r + rows, m1), n0, n1, buf, buf + na);
    free(buf);
}

#ifdef _OPENMP
/* The dynamic schedule of 2 or more threads: C is cut into a grid of tm x tn tiles (row chunks x
 * column blocks, split at multiples of MR and NR) handed out in order from a shared counter, so
 * that a thread another process preempts holds up the call by at most the tile it has: the
 * running threads take the rest. A tile owns all the K blocks of its cells and walks them in
 * order (gemm_region_packed), so each element of C is summed as on one thread. Without prepacked
 * A, a thread packs its tile's row chunk for every K block when it first gets a tile of that chunk
 * (tiles go chunk by chunk, so at most once a chunk), into its own buffer of at most
 * GEMM_A_FLOATS. Each tile packs its own B columns, except in the shared mode (grids of several
 * row chunks, whose tiles would each pack the same columns: ResNet's 1x1 and 3x3 layers at 7x7
 * to 16x16 maps): there the counter first hands out pack tasks, one K block of one column block
 * of GEMM_NC_PACKED each, into one buffer for the call (struct gemm_shared_b), and a tile reading
 * a block waits for its ready flag, so B is packed once and tiles can be cut along M only, each
 * then reading its rows of A once. The grid and the mode minimise work / threads + the largest
 * tile (what a thread finishing last adds), with packing and the tiles' reads of packed A and
 * shared B (from L3) counted in multiply-adds. */
#ifndef GEMM_A_FLOATS
#define GEMM_A_FLOATS 4194304 /* most packed A a thread of the dynamic schedule holds (16 MB) */
#endif
#ifndef GEMM_B_SHARED_FLOATS
#define GEMM_B_SHARED_FLOATS 4194304 /* most B packed for all the threads at once (16 MB) */
#endif
#ifndef GEMM_A_READ_COST
#define GEMM_A_READ_COST 2.0 /* multiply-adds a tile's read of one packed A element costs */
#endif
#ifndef GEMM_B_READ_COST
#define GEMM_B_READ_COST 2.0 /* the same for one element of the shared packed B */
#endif
#ifndef GEMM_TILE_COST
#define GEMM_TILE_COST 1e5 /* multiply-adds one tile costs beyond its work (set-up, cold caches) */
#endif
#ifndef GEMM_TILES_MAX
#define GEMM_TILES_MAX 16 /* most tiles per thread */
#endif

struct gemm_grid {
    int tm, tn;  /* row chunks, column blocks */
    long pm, pn; /* row panels (MR) and column panels (NR) of C */
    long cu;     /* column panels per unit of the column split: 1, or GEMM_NC_PACKED / NR */
    int shared;  /* B packed once for all tiles (struct gemm_shared_b) */
    int npack;   /* the pack tasks handed out before the tiles when shared */
};

static double ceil_div_d(double a, double b)
{
    double q = (double)(long)(a / b);
    return q * b < a ? q + 1 : q;
}

/* Columns [*n0, *n1) of column block b of grid q. */
static void gemm_grid_cols(const struct gemm_grid *q, int nr, int N, int b, int *n0, int *n1)
{
    long units = (q->pn + q->cu - 1) / q->cu;
    *n0 = nr * (int)(q->cu * (units * b / q->tn));
    *n1 = CN_MIN(N, nr * (int)(q->cu * (units * (b + 1) / q->tn)));
}

/* The estimated time of grid q (tm x tn) in multiply-adds, or -1 for a grid to skip. */
static double gemm_grid_cost(const struct gemm_args *g, int nr, int nt, const struct gemm_grid *q)
{
    double K = g->K, apack = g->Ap ? 0 : GEMM_PACK_COST, a = q->tm, b = q->tn;
    double units = (double)((q->pn + q->cu - 1) / q->cu);
    double rows = fmin(g->M, GEMM_MR * ceil_div_d((double)q->pm, a));
    double cols = fmin(g->N, nr * q->cu * ceil_div_d(units, b));
    double tile, sum;
    if (q->shared) { /* B packed once, each tile reading its columns from L3 */
        tile = K * (rows * cols + GEMM_B_READ_COST * cols + (GEMM_A_READ_COST + apack) * rows);
        sum = K * ((double)g->M * g->N + GEMM_PACK_COST * g->N + GEMM_B_READ_COST * g->N * a +
                   GEMM_A_READ_COST * g->M * b);
    } else {
        if (rows <= GEMM_DIRECT_B_ROWS && g->M > GEMM_DIRECT_B_ROWS)
            return -1; /* B read in place by chunks of a few rows: each rereads it from memory */
        double bpack = !g->geom && !g->tb && rows <= GEMM_DIRECT_B_ROWS ? 0 : GEMM_PACK_COST;
        tile = K * (rows * cols + bpack * cols + (GEMM_A_READ_COST + apack) * rows);
        sum = K * ((double)g->M * g->N + bpack * g->N * a + GEMM_A_READ_COST * g->M * b);
    }
    return (sum + GEMM_TILE_COST * a * b) / nt + tile + GEMM_TILE_COST;
}

/* The best grid for nt threads, in each mode: private B (split at panels) and, when B fits
 * GEMM_B_SHARED_FLOATS, shared B (columns split at GEMM_NC_PACKED). */
static struct gemm_grid gemm_grid_for(const struct gemm_args *g, int nr, int nt)
{
    long pm = (g->M + GEMM_MR - 1) / GEMM_MR, pn = (g->N + nr - 1) / nr;
    struct gemm_grid best = {1, 1, pm, pn, 1, 0, 0};
    double best_est = -1;
    long chunk_max = g->Ap ? pm : CN_MAX(1, GEMM_A_FLOATS / ((long)g->K * GEMM_MR));
    int modes = (double)g->K * (double)(pn * nr) <= GEMM_B_SHARED_FLOATS ? 2 : 1;
    for (int shared = 0; shared < modes; shared++) {
        struct gemm_grid q = {1, 1, pm, pn, shared ? GEMM_NC_PACKED / nr : 1, shared, 0};
        long units = (pn + q.cu - 1) / q.cu;
        for (long a = (pm + chunk_max - 1) / chunk_max; a <= pm; a++)
            for (long b = 1; b <= units && a * b <= (long)GEMM_TILES_MAX * nt; b++) {
                q.tm = (int)a, q.tn = (int)b;
                double est = gemm_grid_cost(g, nr, nt, &q);
                if (est >= 0 && (best_est < 0 || est < best_est))
                    best_est = est, best = q;
            }
    }
    int nkb = (g->K + GEMM_KC - 1) / GEMM_KC;
    best.npack = best.shared ? (int)((best.pn + best.cu - 1) / best.cu) * nkb : 0;
    return best;
}

/* The next task to take: *next, incremented. */
static int gemm_next_tile(int *next)
{
    int t;
#pragma omp atomic capture
    t = (*next)++;
    return t;
}

/* Pack task t of the shared mode: K block t % nkb of column block t / nkb, then its flag. */
static void gemm_pack_shared(const struct gemm_args *g, const struct gemm_arch *ar,
                             const struct gemm_shared_b *sb, int t)
{
    int p = t % sb->nkb, jc = t / sb->nkb * GEMM_NC_PACKED, pc, kc;
    gemm_kblock(g->K, sb->nkb, p, &pc, &kc);
    ar->pack_b(sb->buf + (size_t)pc * sb->np + (size_t)jc * (size_t)kc, g, pc, kc, jc,
               CN_MIN(GEMM_NC_PACKED, g->N - jc));
    __atomic_store_n(sb->ready + t, 1, __ATOMIC_RELEASE);
}

/* One thread of the dynamic schedule over grid q: tasks from *next until none is left (the
 * pack tasks of the shared B sb first, when q->shared). */
static void gemm_worker(const struct gemm_args *g, const struct gemm_arch *ar,
                        const struct gemm_grid *q, const struct gemm_shared_b *sb, int *next)
{
    int nr = ar->nr, nkb = (g->K + GEMM_KC - 1) / GEMM_KC, chunk = -1;
    size_t kc = (size_t)((g->K + nkb - 1) / nkb);
    size_t cols = (size_t)CN_MIN(GEMM_NC_PACKED, nr * ((q->pn + q->tn - 1) / q->tn));
    size_t rows = (size_t)(GEMM_MR * ((q->pm + q->tm - 1) / q->tm));
    size_t na = g->Ap ? 0 : (rows * (size_t)g->K + 15) / 16 * 16, nb = q->shared ? 0 : kc * cols;
    float *buf = NULL;
    /* out of memory here is not recoverable */
    CN_ASSERT(na + nb == 0 || posix_memalign((void **)&buf, 64, sizeof(float) * (na + nb)) == 0);
    struct gemm_args ga = *g;
    for (int t; (t = gemm_next_tile(next)) < q->npack + q->tm * q->tn;) {
        if (t < q->npack) {
            gemm_pack_shared(g, ar, sb, t);
            continue;
        }
        int a = (t - q->npack) / q->tn, b = (t - q->npack) % q->tn, n0, n1;
        int m0 = GEMM_MR * (int)(q->pm * a / q->tm);
        int m1 = CN_MIN(g->M, GEMM_MR * (int)(q->pm * (a + 1) / q->tm));
        gemm_grid_cols(q, nr, g->N, b, &n0, &n1);
        if (!g->Ap && a != chunk) { /* its rows for every K block, as gemm_pack_a_all lays them */
            ga.Ap = buf + nb, ga.ap_row0 = m0, ga.ap_rows = m1 - m0, chunk = a;
            size_t mp = (size_t)(m1 - m0 + GEMM_MR - 1) / GEMM_MR * GEMM_MR;
            for (int p = 0, pc, pk; p < nkb; p++) {
                gemm_kblock(g->K, nkb, p, &pc, &pk);
                ar->pack_a(buf + nb + (size_t)pc * mp, g, m0, m1 - m0, pc, pk);
            }
        }
        if (m0 < m1 && n0 < n1)
            gemm_region_packed(&ga, ar, m0, m1, n0, n1, buf, q->shared ? sb : NULL);
    }
    free(buf);
}

/* The dynamic schedule over grid q on up to nt threads, with the shared B when q->shared. */
static void gemm_schedule(const struct gemm_args *g, const struct gemm_arch *ar,
                          const struct gemm_grid *q, int nt)
{
    struct gemm_shared_b sb = {NULL, NULL, (size_t)(q->pn * ar->nr),
                               (g->K + GEMM_KC - 1) / GEMM_KC};
    if (q->shared) { /* out of memory here is not recoverable */
        CN_ASSERT(posix_memalign((void **)&sb.buf, 64, sizeof(float) * sb.np * (size_t)g->K) == 0);
        sb.ready = xcalloc((size_t)q->npack, sizeof(int));
    }
    int next = 0;
#pragma omp parallel num_threads(CN_MIN(nt, q->tm * q->tn))
    gemm_worker(g, ar, q, &sb, &next);
    free(sb.buf);
    free(sb.ready);
}
#endif

/* C = act(scale * beta * C + bias), for K == 0 or alpha == 0; beta == 0 writes without
 * reading C. */
static void gemm_scale(const struct gemm_args *g)
{
    for (int i = 0; i < g->M; i++) {
        float *c = g->C + (size_t)i * g->ldc, bias = g->bias ? g->bias[i] : 0.f;
        for (int j = 0; j < g->N; j++) {
            float z = g->beta != 0 ? g->beta * c[j] : 0.f;
            if (g->scale)
                z *= g->scale[i];
            if (g->res)
                c[j] = act_apply(g->act, (z + bias) + g->res[(size_t)i * g->ldc + (size_t)j]);
            else
                c[j] = g->bias || g->act != ACT_LINEAR ? act_apply(g->act, z + bias) : z;
        }
    }
}

#ifdef _OPENMP
static int gemm_threads(const struct gemm_args *g)
{
    if ((double)g->M * (double)g->N * (double)g->K >= GEMM_PAR_MIN && !omp_in_parallel())
        return omp_get_max_threads();
    return 1;
}
#endif

/* The blocked product with kernel set ar (contract of gemm_bias_act). */
static void gemm_run(const struct gemm_arch *ar, const struct gemm_args *g)
{
    if (g->M <= 0 || g->N <= 0)
        return;
    if (g->K <= 0 || g->alpha == 0) {
        gemm_scale(g);
        if (g->post)
            g->post->fn(g->post->ctx, g->C, g->ldc, 0, g->M, 0, g->N);
        return;
    }
#ifdef _OPENMP
    int nt = gemm_threads(g);
    struct gemm_grid q = {1, 1, 1, 1, 1, 0, 0};
    if (nt > 1)
        q = gemm_grid_for(g, ar->nr, nt);
    if (q.tm * q.tn > 1) {
        gemm_schedule(g, ar, &q, nt);
        return;
    }
#endif
    gemm_thread(g, ar);
}

/* gemm_run with isa's kernels: 0, or -1 when this CPU (or build) lacks them. */
static int gemm_call(enum gemm_isa isa, const struct gemm_args *g)
{
    const struct gemm_arch *ar = gemm_arch_for(isa);
    if (!ar)
        return -1;
    gemm_run(ar, g);
    return 0;
}

int gemm_bias_act_isa(enum gemm_isa isa, float *C, int ldc, const float *A, int lda, int ta,
                      const float *B, int ldb, int tb, int M, int N, int K, float alpha, float beta,
                      const float *bias, enum activation act)
{
    const struct gemm_args g = {.C = C, .A = A, .B = B, .ldc = (size_t)ldc, .lda = (size_t)lda,
                                .ldb = (size_t)ldb, .ta = ta, .tb = tb, .M = M, .N = N, .K = K,
                                .alpha = alpha, .beta = beta, .bias = bias, .act = act};
    return gemm_call(isa, &g);
}

void gemm_bias_act(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb,
                   int tb, int M, int N, int K, float alpha, float beta, const float *bias,
                   enum activation act)
{
    gemm_bias_act_isa(GEMM_ISA_AUTO, C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta, bias,
                      act);
}

void gemm(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb, int tb,
          int M, int N, int K, float alpha, float beta)
{
    gemm_bias_act_isa(GEMM_ISA_AUTO, C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta, NULL,
                      ACT_LINEAR);
}

int gemm_isa(enum gemm_isa isa, float *C, int ldc, const float *A, int lda, int ta, const float *B,
             int ldb, int tb, int M, int N, int K, float alpha, float beta)
{
    return gemm_bias_act_isa(isa, C, ldc, A, lda, ta, B, ldb, tb, M, N, K, alpha, beta, NULL,
                             ACT_LINEAR);
}

int gemm_conv_isa(enum gemm_isa isa, float *C, int ldc, const float *A, int lda, const float *im,
                  const struct im2col_geom *q, int M, float alpha, float beta, const float *bias,
                  enum activation act)
{
    const struct gemm_args g = {.C = C, .A = A, .B = im, .ldc = (size_t)ldc, .lda = (size_t)lda,
                                .M = M, .N = q->oh * q->ow, .K = q->c * q->kh * q->kw,
                                .alpha = alpha, .beta = beta, .bias = bias, .act = act,
                                .geom = q};
    return gemm_call(isa, &g);
}

void gemm_conv(float *C, int ldc, const float *A, int lda, const float *im,
               const struct im2col_geom *q, int M, float alpha, float beta, const float *bias,
               enum activation act)
{
    gemm_conv_isa(GEMM_ISA_AUTO, C, ldc, A, lda, im, q, M, alpha, beta, bias, act);
}

size_t gemm_packed_a_floats(int M, int K)
{
    if (M <= 0 || K <= 0)
        return 0;
    return (size_t)(M + GEMM_MR - 1) / GEMM_MR * GEMM_MR * (size_t)K;
}

void gemm_packed_a_col(int M, int K, int k, size_t *at, int *kc)
{
    int nkb = (K + GEMM_KC - 1) / GEMM_KC, p = (int)(((long)(k + 1) * nkb + K - 1) / K) - 1, p0;
    gemm_kblock(K, nkb, p, &p0, kc);
    *at = (size_t)p0 * gemm_packed_a_floats(M, 1) + (size_t)(k - p0) * GEMM_MR;
}

void gemm_pack_a_all(float *Ap, const float *A, int lda, int ta, int M, int K)
{
    if (M <= 0 || K <= 0)
        return;
    const struct gemm_arch *ar = gemm_arch_for(GEMM_ISA_AUTO);
    const struct gemm_args g = {.A = A, .lda = (size_t)lda, .ta = ta, .M = M, .K = K};
    size_t mp = gemm_packed_a_floats(M, 1);
    int nkb = (K + GEMM_KC - 1) / GEMM_KC;
    for (int p = 0; p < nkb; p++) {
        int pc, kc;
        gemm_kblock(K, nkb, p, &pc, &kc);
        ar->pack_a(Ap + (size_t)pc * mp, &g, 0, M, pc, kc);
    }
}

int gemm_packed_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap, const float *B, int ldb,
                    int tb, int M, int N, int K, float alpha, float beta, const float *scale,
                    const float *bias, enum activation act)
{
    const struct gemm_args g = {.C = C, .B = B, .ldc = (size_t)ldc, .ldb = (size_t)ldb, .tb = tb,
                                .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                                .scale = scale, .bias = bias, .act = act, .Ap = Ap};
    return gemm_call(isa, &g);
}

void gemm_packed(float *C, int ldc, const float *Ap, const float *B, int ldb, int tb, int M, int N,
                 int K, float alpha, float beta, const float *scale, const float *bias,
                 enum activation act)
{
    gemm_packed_isa(GEMM_ISA_AUTO, C, ldc, Ap, B, ldb, tb, M, N, K, alpha, beta, scale, bias, act);
}

int gemm_conv_packed_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap, const float *im,
                         const struct im2col_geom *q, int M, float alpha, float beta,
                         const float *scale, const float *bias, enum activation act)
{
    return gemm_conv_packed_res_isa(isa, C, ldc, Ap, im, q, M, alpha, beta, scale, bias, NULL,
                                    act);
}

int gemm_conv_packed_res_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap,
                             const float *im, const struct im2col_geom *q, int M, float alpha,
                             float beta, const float *scale, const float *bias, const float *res,
                             enum activation act)
{
    const struct gemm_args g = {.C = C, .B = im, .ldc = (size_t)ldc, .M = M, .N = q->oh * q->ow,
                                .K = q->c * q->kh * q->kw, .alpha = alpha, .beta = beta,
                                .scale = scale, .bias = bias, .act = act, .geom = q, .Ap = Ap,
                                .res = res};
    return gemm_call(isa, &g);
}

int gemm_packed_res_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap, const float *B,
                        int ldb, int tb, int M, int N, int K, float alpha, float beta,
                        const float *scale, const float *bias, const float *res,
                        enum activation act)
{
    const struct gemm_args g = {.C = C, .B = B, .ldc = (size_t)ldc, .ldb = (size_t)ldb, .tb = tb,
                                .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                                .scale = scale, .bias = bias, .act = act, .Ap = Ap, .res = res};
    return gemm_call(isa, &g);
}

int gemm_packed_post_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap, const float *B,
                         int ldb, int tb, int M, int N, int K, float alpha, float beta,
                         const float *scale, const float *bias, enum activation act,
                         const struct gemm_post *post)
{
    const struct gemm_args g = {.C = C, .B = B, .ldc = (size_t)ldc, .ldb = (size_t)ldb, .tb = tb,
                                .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
                                .scale = scale, .bias = bias, .act = act, .Ap = Ap, .post = post};
    return gemm_call(isa, &g);
}

int gemm_conv_packed_post_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap,
                              const float *im, const struct im2col_geom *q, int M, float alpha,
                              float beta, const float *scale, const float *bias,
                              enum activation act, const struct gemm_post *post)
{
    const struct gemm_args g = {.C = C, .B = im, .ldc = (size_t)ldc, .M = M, .N = q->oh * q->ow,
                                .K = q->c * q->kh * q->kw, .alpha = alpha, .beta = beta,
                                .scale = scale, .bias = bias, .act = act, .geom = q, .Ap = Ap,
                                .post = post};
    return gemm_call(isa, &g);
}

void gemm_conv_packed(float *C, int ldc, const float *Ap, const float *im,
                      const struct im2col_geom *q, int M, float alpha, float beta,
                      const float *scale, const float *bias, enum activation act)
{
    gemm_conv_packed_isa(GEMM_ISA_AUTO, C, ldc, Ap, im, q, M, alpha, beta, scale, bias, act);
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
