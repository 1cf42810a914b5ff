/* im2col.h - unrolling one NCHW image into the patch matrix of a convolution, and back.
 *
 * Dimensions (struct im2col_geom): the image is C x H x W; the kernel has kh x kw taps spaced by
 * the dilations dh, dw (1: adjacent), so it spans EH = dh*(kh-1)+1 rows by EW = dw*(kw-1)+1
 * columns; it moves with strides sh, sw over the image padded by ph rows and pw columns of zeros
 * on each side, giving OH = (H + 2*ph - EH)/sh + 1 by OW = (W + 2*pw - EW)/sw + 1 positions.
 *
 * Layouts, with r = (c*kh + ki)*kw + kj (a kernel tap) and p = oy*OW + ox (an output position),
 * the tap reading image cell (c, oy*sh - ph + ki*dh, ox*sw - pw + kj*dw), zero when outside:
 *   col: R x P, R = C*kh*kw rows of P = OH*OW; the convolution is then W[F x R] * col (Darknet's
 *        and Caffe's im2col layout).
 *   row: P x R, the transpose, so the weight gradient dz[F x P] * row is a GEMM without a
 *        transposed operand.
 * im2col/im2row write every entry; col2im ADDS each entry into the image cell it was read from
 * (padding entries are dropped), which is the adjoint of im2col and accumulates into im.
 * Single-threaded: callers parallelise over images, or split one image with the *_channels and
 * *_rows variants (disjoint rows of col/row, disjoint planes of im). The *_naive references test
 * every cell.
 * Groups are the caller's business: it unrolls one group's channels (C = channels per group).
 */
#ifndef CN_IM2COL_H
#define CN_IM2COL_H

#include <stddef.h>

struct im2col_geom {
    int c, h, w; /* input image */
    int kh, kw;  /* kernel taps */
    int sh, sw;  /* strides */
    int ph, pw;  /* zero padding on each side */
    int dh, dw;  /* dilations: taps ki*dh rows and kj*dw columns from the window's corner */
    int oh, ow;  /* output positions */
};

/* Fills g. Returns 0, or -1 when some size is out of range (c, h, w, kh, kw, sh, sw, dh, dw >= 1,
 * ph, pw >= 0) or the dilated kernel does not fit the padded image (H + 2*ph < EH, or the same
 * for W). */
int im2col_geom_init(struct im2col_geom *g, int c, int h, int w, int kh, int kw, int sh, int sw,
                     int ph, int pw, int dh, int dw);

/* The outputs o in [*lo, *hi) (within [0, nout)) whose tap o*stride - pad + k lies inside
 * [0, n); k is the tap's offset in the window (its index times the dilation). */
void im2col_tap_range(int *lo, int *hi, int nout, int stride, int pad, int k, int n);

/* Rows (C*kh*kw) and columns (OH*OW) of the col matrix. */
size_t im2col_rows(const struct im2col_geom *g);
size_t im2col_cols(const struct im2col_geom *g);

/* col[r][p] = image tap (r, p), 0 in the padding. */
void im2col(float *col, const float *im, const struct im2col_geom *g);
void im2col_naive(float *col, const float *im, const struct im2col_geom *g);
/* im2col of channels [c0, c1) only: their kh*kw rows each of the whole col matrix (col and im
 * are the whole matrix and image), so threads can split one image by channels. */
void im2col_channels(float *col, const float *im, const struct im2col_geom *g, int c0, int c1);

/* row[p][r] = image tap (r, p), 0 in the padding: the transpose of im2col. */
void im2row(float *row, const float *im, const struct im2col_geom *g);
/* im2row of the positions of output rows [oy0, oy1) only, written from block's start:
 * (oy1 - oy0) * OW rows of R (a block of the matrix, for a GEMM over part of P). */
void im2row_block(float *block, const float *im, const struct im2col_geom *g, int oy0, int oy1);

/* im[cell of tap (r, p)] += col[r][p] for every tap inside the image. */
void col2im(float *im, const float *col, const struct im2col_geom *g);
void col2im_naive(float *im, const float *col, const struct im2col_geom *g);
/* col2im of channels [c0, c1) only: they add into their own planes, so channel ranges run on
 * separate threads without sharing a cell. */
void col2im_channels(float *im, const float *col, const struct im2col_geom *g, int c0, int c1);

#endif
