/* im2col.c - patch-matrix unrolling for convolutions (contract and layouts in im2col.h).
 *
 * The fast versions work a row of col (one tap) at a time: for each output row they find once
 * the range of output columns whose tap lies inside the image, copy that run (contiguous when the
 * stride is 1) and zero the padding on either side. A dilated tap is the same run, read from
 * ki*dh rows and kj*dw columns further on. The naive versions test every cell.
 */
#include "kernels/im2col.h"

#include <string.h>

#include "core/common.h"

int im2col_geom_init(struct im2col_geom *g, int c, int h, int w, int kh, int kw, int sh, int sw,
                     int ph, int pw, int dh, int dw)
{
    if (c < 1 || h < 1 || w < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 ||
        dh < 1 || dw < 1)
        return -1;
    long long eh = (long long)dh * (kh - 1) + 1, ew = (long long)dw * (kw - 1) + 1;
    if ((long long)h + 2LL * ph < eh || (long long)w + 2LL * pw < ew)
        return -1;
    *g = (struct im2col_geom){c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, 0, 0};
    g->oh = (int)(((long long)h + 2LL * ph - eh) / sh + 1);
    g->ow = (int)(((long long)w + 2LL * pw - ew) / sw + 1);
    return 0;
}

size_t im2col_rows(const struct im2col_geom *g)
{
    return (size_t)g->c * (size_t)g->kh * (size_t)g->kw;
}

size_t im2col_cols(const struct im2col_geom *g)
{
    return (size_t)g->oh * (size_t)g->ow;
}

void im2col_tap_range(int *lo, int *hi, int nout, int stride, int pad, int k, int n)
{
    int first = pad - k, last = n - 1 + pad - k; /* o*stride must lie in [first, last] */
    *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    *hi = last < 0 ? 0 : CN_MIN(nout, last / stride + 1);
    if (*hi < *lo)
        *hi = *lo;
}

/* One tap's row of col: dst[oy*ow + ox] from image plane `plane`. ki, kj: the tap's offsets in
 * the window (index times dilation). */
static void tap_copy(float *dst, const float *plane, const struct im2col_geom *g, int ki, int kj)
{
    int y0, y1, x0, x1;
    im2col_tap_range(&y0, &y1, g->oh, g->sh, g->ph, ki, g->h);
    im2col_tap_range(&x0, &x1, g->ow, g->sw, g->pw, kj, g->w);
    size_t ow = (size_t)g->ow;
    for (int oy = 0; oy < g->oh; oy++, dst += ow) {
        if (oy < y0 || oy >= y1 || x0 == x1) {
            memset(dst, 0, sizeof(float) * ow);
            continue;
        }
        const float *src = plane + (size_t)(oy * g->sh - g->ph + ki) * (size_t)g->w;
        for (int ox = 0; ox < x0; ox++)
            dst[ox] = 0.f;
        if (g->sw == 1) {
            const float *run = src + (kj - g->pw);
            for (int ox = x0; ox < x1; ox++)
                dst[ox] = run[ox];
        } else {
            for (int ox = x0; ox < x1; ox++)
                dst[ox] = src[ox * g->sw - g->pw + kj];
        }
        for (int ox = x1; ox < g->ow; ox++)
            dst[ox] = 0.f;
    }
}

/* The adjoint of tap_copy: the tap's row of col added back into the image plane. */
static void tap_add(float *plane, const float *src, const struct im2col_geom *g, int ki, int kj)
{
    int y0, y1, x0, x1;
    im2col_tap_range(&y0, &y1, g->oh, g->sh, g->ph, ki, g->h);
    im2col_tap_range(&x0, &x1, g->ow, g->sw, g->pw, kj, g->w);
    for (int oy = y0; oy < y1; oy++) {
        float *dst = plane + (size_t)(oy * g->sh - g->ph + ki) * (size_t)g->w;
        const float *s = src + (size_t)oy * (size_t)g->ow;
        if (g->sw == 1) {
            float *run = dst + (kj - g->pw);
            for (int ox = x0; ox < x1; ox++)
                run[ox] += s[ox];
        } else {
            for (int ox = x0; ox < x1; ox++)
                dst[ox * g->sw - g->pw + kj] += s[ox];
        }
    }
}

void im2col_channels(float *col, const float *im, const struct im2col_geom *g, int c0, int c1)
{
    size_t P = im2col_cols(g), plane = (size_t)g->h * (size_t)g->w;
    col += (size_t)c0 * (size_t)g->kh * (size_t)g->kw * P;
    for (int c = c0; c < c1; c++)
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++, col += P)
                tap_copy(col, im + (size_t)c * plane, g, ki * g->dh, kj * g->dw);
}

void im2col(float *col, const float *im, const struct im2col_geom *g)
{
    im2col_channels(col, im, g, 0, g->c);
}

void col2im_channels(float *im, const float *col, const struct im2col_geom *g, int c0, int c1)
{
    size_t P = im2col_cols(g), plane = (size_t)g->h * (size_t)g->w;
    col += (size_t)c0 * (size_t)g->kh * (size_t)g->kw * P;
    for (int c = c0; c < c1; c++)
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++, col += P)
                tap_add(im + (size_t)c * plane, col, g, ki * g->dh, kj * g->dw);
}

void col2im(float *im, const float *col, const struct im2col_geom *g)
{
    col2im_channels(im, col, g, 0, g->c);
}

/* dst[0 .. n) = src[0 .. n), with the common kernel widths unrolled. */
static inline void copy_run(float *restrict dst, const float *restrict src, int n)
{
    switch (n) {
    case 1: dst[0] = src[0]; return;
    case 3:
        for (int i = 0; i < 3; i++)
            dst[i] = src[i];
        return;
    case 5:
        for (int i = 0; i < 5; i++)
            dst[i] = src[i];
        return;
    case 7:
        for (int i = 0; i < 7; i++)
            dst[i] = src[i];
        return;
    default:
        for (int i = 0; i < n; i++)
            dst[i] = src[i];
    }
}

/* row_taps of a 3-wide, undilated window inside the image's columns: no test per tap, and no
 * dispatch on the width (copy_run's switch per tap took a third of im2row's time). */
static void row_taps3(float *restrict dst, const float *restrict im, const struct im2col_geom *g,
                      int oy, int ix0)
{
    const int C = g->c, H = g->h, W = g->w, kh = g->kh;
    const int iy0 = oy * g->sh - g->ph;
    for (int c = 0; c < C; c++, im += (size_t)H * (size_t)W)
        for (int ki = 0; ki < kh; ki++, dst += 3) {
            int iy = iy0 + ki * g->dh;
            if (iy < 0 || iy >= H) {
                dst[0] = dst[1] = dst[2] = 0.f;
                continue;
            }
            const float *src = im + (size_t)iy * (size_t)W + ix0;
            dst[0] = src[0];
            dst[1] = src[1];
            dst[2] = src[2];
        }
}

/* One output position's taps from image rows iy (one per c, ki): dst[(c*kh + ki)*kw + kj]. The
 * window's columns ix0 + kj*dw are tested only when `edge` says it crosses the border. */
static void row_taps(float *restrict dst, const float *restrict im, const struct im2col_geom *g,
                     int oy, int ix0, int edge)
{
    const int C = g->c, H = g->h, W = g->w, kh = g->kh, kw = g->kw, dw = g->dw;
    const int iy0 = oy * g->sh - g->ph;
    if (!edge && dw == 1 && kw == 3) {
        row_taps3(dst, im, g, oy, ix0);
        return;
    }
    for (int c = 0; c < C; c++, im += (size_t)H * (size_t)W)
        for (int ki = 0; ki < kh; ki++, dst += kw) {
            int iy = iy0 + ki * g->dh;
            if (iy < 0 || iy >= H) {
                for (int kj = 0; kj < kw; kj++)
                    dst[kj] = 0.f;
                continue;
            }
            const float *src = im + (size_t)iy * (size_t)W;
            if (!edge && dw == 1) {
                copy_run(dst, src + ix0, kw);
                continue;
            }
            for (int kj = 0; kj < kw; kj++) {
                int ix = ix0 + kj * dw;
                dst[kj] = ix >= 0 && ix < W ? src[ix] : 0.f;
            }
        }
}

void im2row_block(float *block, const float *im, const struct im2col_geom *g, int oy0, int oy1)
{
    size_t R = im2col_rows(g);
    /* Windows of outputs [xa, xb) lie wholly inside the image's columns. */
    int ew = g->dw * (g->kw - 1) + 1;
    int xa = (g->pw + g->sw - 1) / g->sw, last = g->w - ew + g->pw;
    int xb = last < 0 ? 0 : CN_MIN(g->ow, last / g->sw + 1);
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = 0; ox < g->ow; ox++, block += R)
            row_taps(block, im, g, oy, ox * g->sw - g->pw, ox < xa || ox >= xb);
}

void im2row(float *row, const float *im, const struct im2col_geom *g)
{
    im2row_block(row, im, g, 0, g->oh);
}

/* The image cell read by tap (c, ki, kj) at output (oy, ox), or -1 in the padding. */
static long long tap_cell(const struct im2col_geom *g, int c, int ki, int kj, int oy, int ox)
{
    int iy = oy * g->sh - g->ph + ki * g->dh, ix = ox * g->sw - g->pw + kj * g->dw;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return -1;
    return ((long long)c * g->h + iy) * g->w + ix;
}

void im2col_naive(float *col, const float *im, const struct im2col_geom *g)
{
    for (int c = 0; c < g->c; c++)
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++)
                for (int oy = 0; oy < g->oh; oy++)
                    for (int ox = 0; ox < g->ow; ox++) {
                        long long cell = tap_cell(g, c, ki, kj, oy, ox);
                        *col++ = cell < 0 ? 0.f : im[cell];
                    }
}

void col2im_naive(float *im, const float *col, const struct im2col_geom *g)
{
    for (int c = 0; c < g->c; c++)
        for (int ki = 0; ki < g->kh; ki++)
            for (int kj = 0; kj < g->kw; kj++)
                for (int oy = 0; oy < g->oh; oy++)
                    for (int ox = 0; ox < g->ow; ox++) {
                        long long cell = tap_cell(g, c, ki, kj, oy, ox);
                        float v = *col++;
                        if (cell >= 0)
                            im[cell] += v;
                    }
}
