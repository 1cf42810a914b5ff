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
 * over images or planes. Each output and gradient is summed in a fixed order. The fast kernels
 * allocate nothing and use under 1 KB of stack: their buffers are the caller's scratch (ws, one
 * piece per concurrent call, sized by depthwise_scratch and the grouped *_scratch functions).
 * Forward 3x3 at stride 1 or 2 (padding <= 2, output rows up to 2048 wide) has an AVX2+FMA path
 * with the epilogue fused (depthwise_forward_act), and so have both backward kernels (input
 * widths up to 2048; the sums' order then differs from the generic kernels'), and
 * depthwise_group_forward convolves a group of several channels directly (ResNeXt), where
 * im2col + GEMM has too few rows per group, and depthwise_group_backward makes both its
 * gradients.
 */
#ifndef CN_DEPTHWISE_H
#define CN_DEPTHWISE_H

#include <stddef.h>

#include "kernels/activations.h"
#include "kernels/im2col.h"

/* Floats of scratch ws the plane kernels below need for g (depthwise_forward, _act,
 * backward_data and backward_kernel alike): the 3x3 fast path's ring of padded rows, at most
 * about 48 KB for the widest rows it takes and a few KB for MobileNet's; 0 where no kernel takes
 * the fast path (ws may then be NULL). */
size_t depthwise_scratch(const struct im2col_geom *g);
/* out[oy][ox] = sum over taps of k[ki][kj] * plane(tap); out is written (OH x OW). ws: the
 * caller's scratch of depthwise_scratch(g) floats (contents ignored). */
void depthwise_forward(float *out, const float *plane, const float *k, float *ws,
                       const struct im2col_geom *g);
/* depthwise_forward with a fused epilogue: out = act(s * conv + t), s = *scale (NULL: 1) and
 * t = *shift, as act_forward_affine on the plane (bit for bit, given the convolution's sums);
 * shift NULL: no epilogue, the convolution alone (act ignored). */
void depthwise_forward_act(float *out, const float *plane, const float *k, float *ws,
                           const struct im2col_geom *g, const float *scale, const float *shift,
                           enum activation act);
void depthwise_forward_naive(float *out, const float *plane, const float *k,
                             const struct im2col_geom *g);

/* Grouped convolution of one group's g->c input planes x (C x H x W) by fg filters k
 * [fg][C][3][3] into out (fg x OH x OW), with depthwise_forward_act's epilogue per filter
 * (scale[f], shift[f]; shift NULL: none). Only where depthwise_group_fits(g): a 3x3 kernel at
 * stride 1 or 2, dilation 1, padding <= 2, C <= 64, a band of at least one output row fitting
 * 64 KB, and AVX2+FMA (the caller otherwise runs im2col + GEMM). ws: the caller's scratch of
 * depthwise_group_scratch(g) floats (at most about 75 KB; 0 where the kernel does not fit), one
 * per concurrent call: the kernel keeps its bands there, not on the stack (which it uses under
 * 1 KB of), and allocates nothing. Single-threaded (callers parallelise over groups or images).
 * The naive reference sums each output in double. */
int depthwise_group_fits(const struct im2col_geom *g);
size_t depthwise_group_scratch(const struct im2col_geom *g);
void depthwise_group_forward(float *out, const float *x, const float *k, float *ws, int fg,
                             const struct im2col_geom *g, const float *scale, const float *shift,
                             enum activation act);
void depthwise_group_forward_naive(float *out, const float *x, const float *k, int fg,
                                   const struct im2col_geom *g);

/* The gradients of depthwise_group_forward's convolution (no epilogue): dk [fg][C][3][3] += the
 * kernel gradient of dout (fg x OH x OW) over x (C x H x W), and dx (C x H x W; NULL: skipped) +=
 * the data gradient through k. Only where depthwise_group_back_fits(g, fg): the forward's
 * conditions, fg <= 64 and bands fitting 64 KB buffers (the caller otherwise runs im2row +
 * GEMM). ws: scratch of depthwise_group_back_scratch(g, fg) floats (at most about 220 KB), as
 * the forward's. The naive reference runs the plane kernels' references per filter and channel
 * (the data gradient not in double). */
int depthwise_group_back_fits(const struct im2col_geom *g, int fg);
size_t depthwise_group_back_scratch(const struct im2col_geom *g, int fg);
void depthwise_group_backward(float *dk, float *dx, const float *dout, const float *x,
                              const float *k, float *ws, int fg, const struct im2col_geom *g);
void depthwise_group_backward_naive(float *dk, float *dx, const float *dout, const float *x,
                                    const float *k, int fg, const struct im2col_geom *g);

/* dplane[cell] += sum over (tap, output) reading that cell of k[tap] * dout[output]: the adjoint
 * of depthwise_forward in the plane. Accumulates into dplane (H x W). ws: as
 * depthwise_forward's. */
void depthwise_backward_data(float *dplane, const float *dout, const float *k, float *ws,
                             const struct im2col_geom *g);
void depthwise_backward_data_naive(float *dplane, const float *dout, const float *k,
                                   const struct im2col_geom *g);

/* dk[ki][kj] += sum over outputs of dout[oy][ox] * plane(tap): the kernel's gradient.
 * Accumulates into dk (kh x kw). ws: as depthwise_forward's. */
void depthwise_backward_kernel(float *dk, const float *dout, const float *plane, float *ws,
                               const struct im2col_geom *g);
void depthwise_backward_kernel_naive(float *dk, const float *dout, const float *plane,
                                     const struct im2col_geom *g);

#endif
