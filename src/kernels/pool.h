/* pool.h - max and average pooling over P independent H x W planes (P = batch * channels, NCHW).
 *
 * Geometry (struct pool_geom): output cell (i, j) pools the size x size window whose top-left
 * input cell is (i*sy - oy, j*sx - ox); window cells outside the image are ignored by max pooling
 * and count as zeros for average pooling.
 *   Max (Darknet's maxpool_layer.c): padding is the TOTAL padding, oh = (h + padding - size) /
 *     sy + 1, oy = ox = padding / 2. An ignored cell is never selected.
 *   Average (windowed): pad is per side, oh = (h + 2*pad - size) / sy + 1, oy = ox = pad.
 *     Divisor: with count_pad (PyTorch's count_include_pad=True, its default; Caffe's AVE) the
 *     window's cells inside the padded extent [-pad, h + pad) - size*size except where a ceil-mode
 *     window hangs past it; without, only its in-image cells.
 *   ceil_mode (PyTorch's name): the division rounds up instead of down, then an output is dropped
 *     again if its window would start at or past the end of the image (i*s - o >= h): PyTorch's
 *     rule that every window starts inside the image or the leading padding.
 *   Global average: one output per plane, the mean of its h*w cells (Darknet's avgpool_layer.c).
 * Forward writes its output; backward ADDS into din. The fast kernels clamp each window to the
 * image once instead of testing every cell; the *_naive references test every cell as Darknet
 * does and exist for tests. Threads: OpenMP over planes (each plane's din is written by one
 * thread only).
 */
#ifndef CN_POOL_H
#define CN_POOL_H

#include <stdint.h>

struct pool_geom {
    int h, w;   /* input plane */
    int oh, ow; /* output plane */
    int size;
    int sy, sx;    /* strides down and across */
    int oy, ox;    /* window (i, j) starts at row i*sy - oy, column j*sx - ox */
    int eh, ew;    /* average: the padded extent ends at row eh, column ew (h + pad, w + pad) */
    int count_pad; /* average: the divisor counts padded cells (else in-image cells only) */
};

/* Fill g for max pooling with total padding `padding` (>= 0) and strides sy, sx. Returns 0, or -1
 * when the output would be empty (h + padding < size) or some window would lie wholly outside
 * the image (padding > 2*(size-1)); then g is unspecified. size, sy, sx >= 1. */
int pool_max_geom(struct pool_geom *g, int h, int w, int size, int sy, int sx, int padding,
                  int ceil_mode);
/* Fill g for windowed average pooling with `pad` zeros on each side (0 <= pad). Returns 0, or -1
 * when the output would be empty (h + 2*pad < size). */
int pool_avg_geom(struct pool_geom *g, int h, int w, int size, int sy, int sx, int pad,
                  int ceil_mode, int count_pad);

/* out: P x oh x ow maxima; idx (P x oh x ow, may be NULL): the offset r*w + c within the input
 * plane of each maximum, the first in row-major window order on ties. */
void pool_max_forward(float *out, int32_t *idx, const float *in, int P, const struct pool_geom *g);
void pool_max_forward_naive(float *out, int32_t *idx, const float *in, int P,
                            const struct pool_geom *g);
/* din[plane p, idx] += dout for every output (scatter-add through the recorded argmax). */
void pool_max_backward(float *din, const float *dout, const int32_t *idx, int P,
                       const struct pool_geom *g);

/* out = (sum of the window's in-image cells) / (the window's divisor, see above). */
void pool_avg_forward(float *out, const float *in, int P, const struct pool_geom *g);
void pool_avg_forward_naive(float *out, const float *in, int P, const struct pool_geom *g);
/* din[cell] += dout / divisor for every in-image cell of every window. */
void pool_avg_backward(float *din, const float *dout, int P, const struct pool_geom *g);
void pool_avg_backward_naive(float *din, const float *dout, int P, const struct pool_geom *g);

/* out[p] = mean of plane p's hw cells; backward: din[p, k] += dout[p] / hw. */
void pool_global_avg_forward(float *out, const float *in, int P, int hw);
void pool_global_avg_backward(float *din, const float *dout, int P, int hw);

#endif
