/* gemv.h - single-precision matrix-vector product for fully connected layers at batch 1:
 * y = W x (+ y when accumulate), W row-major O x I (row o at W + o * I), x of I, y of O.
 *
 * At batch 1 a fully connected layer is memory-bound: every weight is read once (VGG-16's fc6 is
 * 411 MB), so the kernel streams W row by row, one dot product per output with 32 partial sums in
 * vector registers (AVX2+FMA when the CPU has it, chosen at run time; portable C otherwise),
 * OpenMP over rows when W is large and the caller is not in a parallel region. Each y[o] is
 * summed in the same order whatever the thread count; the order differs from gemv_naive's
 * (plain k order in float), so they agree within rounding. gemv_naive is the reference.
 */
#ifndef CN_GEMV_H
#define CN_GEMV_H

void gemv(float *y, const float *W, const float *x, int O, int I, int accumulate);
void gemv_naive(float *y, const float *W, const float *x, int O, int I, int accumulate);

#endif
