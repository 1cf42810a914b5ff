/* depthwise.h - direct convolution of one image plane with one kernel: the building block of a
 * depthwise convolution (groups = channels, MobileNet), where each filter sees a single input
 * channel and im2col + GEMM would multiply matrices with one row per filter.
 *
 * Geometry: struct im2col_geom (kernels/im2col.h) with c = 1: a H x W plane, kh x kw taps with
 * dilations dh, dw, strides sh, sw, zero padding ph, pw per side, giving an OH x OW output plane.
 * Kernel layout k[ki*kw + kj]; the tap (ki, kj) at output (oy, ox) reads the plane at
 * (oy*sh - ph + ki*dh, ox*sw - pw + kj*dw), zero outside: a cross-correlation, as im2col + GEMM.
 *
 * The fast versions walk output rows and, per tap, the run of output columns that reads inside
 * the plane (a multiply-add over a contiguous run when the stride is 1), so no cell is tested.
 * The *_naive references test every cell and sum in double. Single-threaded: callers parallelise
 * over images or planes. Each output and gradient is summed in a fixed order.
 */
#ifndef CN_DEPTHWISE_H
#define CN_DEPTHWISE_H

#include "kernels/im2col.h"

/* out[oy][ox] = sum over taps of k[ki][kj] * plane(tap); out is written (OH x OW). */
void depthwise_forward(float *out, const float *plane, const float *k, const struct im2col_geom *g);
void depthwise_forward_naive(float *out, const float *plane, const float *k,
                             const struct im2col_geom *g);

/* dplane[cell] += sum over (tap, output) reading that cell of k[tap] * dout[output]: the adjoint
 * of depthwise_forward in the plane. Accumulates into dplane (H x W). */
void depthwise_backward_data(float *dplane, const float *dout, const float *k,
                             const struct im2col_geom *g);
void depthwise_backward_data_naive(float *dplane, const float *dout, const float *k,
                                   const struct im2col_geom *g);

/* dk[ki][kj] += sum over outputs of dout[oy][ox] * plane(tap): the kernel's gradient.
 * Accumulates into dk (kh x kw). */
void depthwise_backward_kernel(float *dk, const float *dout, const float *plane,
                               const struct im2col_geom *g);
void depthwise_backward_kernel_naive(float *dk, const float *dout, const float *plane,
                                     const struct im2col_geom *g);

#endif
