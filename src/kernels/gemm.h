/* gemm.h - single-precision matrix multiply, row-major: C = alpha * op(A) * op(B) + beta * C.
 *
 * Dimensions: C is M x N, op(A) is M x K, op(B) is K x N. Every matrix is row-major with a
 * leading dimension (the distance between rows in floats). ta = 0: A is stored M x K, element
 * (i, k) at A[i*lda + k]; ta = 1: A is stored K x M and op(A) = A^T, (i, k) at A[k*lda + i].
 * Likewise tb = 0: B stored K x N, (k, j) at B[k*ldb + j]; tb = 1: B stored N x K, at B[j*ldb + k].
 *
 * beta == 0 overwrites C without reading it (C may hold garbage, NaN included); beta == 1
 * accumulates. K == 0 or alpha == 0 only scales C by beta.
 *
 * gemm is cache-blocked with packed panels and a register-blocked micro-kernel chosen at run time
 * for the CPU (AVX-512, AVX2+FMA, or portable C); it uses OpenMP over tiles of C when the problem
 * is large enough and the caller is not already inside a parallel region. Each element of C is
 * summed in the same order whatever the thread count, so results do not depend on it.
 * gemm_naive is the triple-loop reference used by the tests.
 *
 * gemm_bias_act fuses a convolution's epilogue; gemm_conv (implicit GEMM) also reads op(B) as
 * the im2col matrix of an image without building it.
 */
#ifndef CN_GEMM_H
#define CN_GEMM_H

#include <stddef.h>

#include "kernels/activations.h"
#include "kernels/im2col.h"

void gemm(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb, int tb,
          int M, int N, int K, float alpha, float beta);

/* Micro-kernel variants, for tests and benchmarks; gemm itself picks the best the CPU has. */
enum gemm_isa { GEMM_ISA_AUTO, GEMM_ISA_PORTABLE, GEMM_ISA_AVX2, GEMM_ISA_AVX512 };

/* gemm with the given variant. Returns 0, or -1 (C untouched) when this CPU or build lacks it. */
int gemm_isa(enum gemm_isa isa, float *C, int ldc, const float *A, int lda, int ta, const float *B,
             int ldb, int tb, int M, int N, int K, float alpha, float beta);

/* gemm, then C[i][j] = act(C[i][j] + bias[i]) (bias per row of C, NULL for none), applied to
 * each tile right after its last K block while it is in cache. Linear, relu and leaky run in
 * the micro-kernel's registers, others through act_apply; the results are bit for bit those of
 * gemm followed by the bias addition and act_apply. With K == 0 or alpha == 0:
 * C = act(beta * C + bias). */
void gemm_bias_act(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb,
                   int tb, int M, int N, int K, float alpha, float beta, const float *bias,
                   enum activation act);
int gemm_bias_act_isa(enum gemm_isa isa, float *C, int ldc, const float *A, int lda, int ta,
                      const float *B, int ldb, int tb, int M, int N, int K, float alpha, float beta,
                      const float *bias, enum activation act);

/* Implicit-GEMM convolution of one image: gemm_bias_act with op(B) = im2col(im, q), the
 * R x P col matrix of im2col.h (R = q->c * q->kh * q->kw, P = q->oh * q->ow), read straight
 * from the C x H x W image im while packing, so no col buffer is needed. C is M x P (ldc >= P),
 * A is M x R untransposed (lda >= R): C = act(alpha * A * col + beta * C + bias). The results
 * are bit for bit those of im2col followed by gemm_bias_act. */
void gemm_conv(float *C, int ldc, const float *A, int lda, const float *im,
               const struct im2col_geom *q, int M, float alpha, float beta, const float *bias,
               enum activation act);
int gemm_conv_isa(enum gemm_isa isa, float *C, int ldc, const float *A, int lda, const float *im,
                  const struct im2col_geom *q, int M, float alpha, float beta, const float *bias,
                  enum activation act);

/* Weights packed once for many products (an inference net's convolution weights, which stay
 * the same from pass to pass): gemm_pack_a_all writes op(A) (M x K, ta as for gemm) into Ap,
 * gemm_packed_a_floats(M, K) floats (M rounded up to the micro-kernel's 6 rows, times K; the
 * layout is the same for every ISA). Repack whenever A changes. */
size_t gemm_packed_a_floats(int M, int K);
void gemm_pack_a_all(float *Ap, const float *A, int lda, int ta, int M, int K);

/* For writing packed operands directly (Winograd's transformed filters): element (i, k) of an
 * M x K op(A) lies at Ap[at + (i / GEMM_PACK_ROWS) * GEMM_PACK_ROWS * kc + i % GEMM_PACK_ROWS],
 * with at and kc set for column k (0 <= k < K); rows M .. M rounded up to GEMM_PACK_ROWS are
 * padding the writer must zero. */
#define GEMM_PACK_ROWS 6
void gemm_packed_a_col(int M, int K, int k, size_t *at, int *kc);

/* gemm_bias_act and gemm_conv with op(A) prepacked (Ap, made for these M and K) and a per-row
 * scale: C[i][j] = act(scale[i] * (alpha * sum + beta * C[i][j]) + bias[i]) (scale or bias NULL:
 * none), bit for bit the unfused gemm followed by act_forward_affine(scale, bias) — which is a
 * folded batch norm. */
void gemm_packed(float *C, int ldc, const float *Ap, const float *B, int ldb, int tb, int M, int N,
                 int K, float alpha, float beta, const float *scale, const float *bias,
                 enum activation act);
int gemm_packed_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap, const float *B, int ldb,
                    int tb, int M, int N, int K, float alpha, float beta, const float *scale,
                    const float *bias, enum activation act);
void gemm_conv_packed(float *C, int ldc, const float *Ap, const float *im,
                      const struct im2col_geom *q, int M, float alpha, float beta,
                      const float *scale, const float *bias, enum activation act);
int gemm_conv_packed_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap, const float *im,
                         const struct im2col_geom *q, int M, float alpha, float beta,
                         const float *scale, const float *bias, enum activation act);

/* b1: gemm_packed and gemm_conv_packed with a residual: C[i][j] = act(scale[i] * (...) + bias[i]
 * + res[i*ldc + j]) (res in C's layout; NULL: none), the sum before res rounded: bit for bit
 * the unfused product with act linear, then a [shortcut]'s y = act(C + res). Return -1 as
 * gemm_isa. */
int gemm_packed_res_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap, const float *B,
                        int ldb, int tb, int M, int N, int K, float alpha, float beta,
                        const float *scale, const float *bias, const float *res,
                        enum activation act);
int gemm_conv_packed_res_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap,
                             const float *im, const struct im2col_geom *q, int M, float alpha,
                             float beta, const float *scale, const float *bias, const float *res,
                             enum activation act);

/* netb1: a pass over each block of C once it is final (rows [i0, i1) x columns [j0, j1), sums
 * and epilogue done), run by the thread that made it while the block is in cache (a [shortcut]
 * whose from= has another shape than C: conv.c). Blocks are disjoint and cover C once. */
struct gemm_post {
    void (*fn)(const void *ctx, float *C, size_t ldc, int i0, int i1, int j0, int j1);
    const void *ctx;
};

/* gemm_packed and gemm_conv_packed, then post over C block by block. Return -1 as gemm_isa. */
int gemm_packed_post_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap, const float *B,
                         int ldb, int tb, int M, int N, int K, float alpha, float beta,
                         const float *scale, const float *bias, enum activation act,
                         const struct gemm_post *post);
int gemm_conv_packed_post_isa(enum gemm_isa isa, float *C, int ldc, const float *Ap,
                              const float *im, const struct im2col_geom *q, int M, float alpha,
                              float beta, const float *scale, const float *bias,
                              enum activation act, const struct gemm_post *post);

/* The reference: the same contract, one dot product per element of C, summed in float in k order.
 */
void gemm_naive(float *C, int ldc, const float *A, int lda, int ta, const float *B, int ldb, int tb,
                int M, int N, int K, float alpha, float beta);

#endif
