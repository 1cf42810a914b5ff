/* depthwise.c - direct single-plane convolution for depthwise layers (contract in depthwise.h).
 *
 * Each fast routine visits an output row, then each kernel row ki whose image row lies inside
 * the plane, then each tap kj with the run [x0, x1) of output columns that reads inside the
 * plane (im2col_tap_range): the padding is never read or tested. With stride 1 the run is a
 * contiguous multiply-add the compiler vectorises; the kernel gradient is a dot product kept in
 * eight interleaved partial sums for the same reason (no fast-math: the order is fixed).
 */
#include "kernels/depthwise.h"

#include <stddef.h>

/* o[i] += w * src[i * sw] for i in [0, n). */
static void run_axpy(float *restrict o, const float *restrict src, float w, int n, int sw)
{
    if (sw == 1) {
        for (int i = 0; i < n; i++)
            o[i] += w * src[i];
        return;
    }
    for (int i = 0; i < n; i++)
        o[i] += w * src[(size_t)i * (size_t)sw];
}

/* dst[i * sw] += w * d[i] for i in [0, n): run_axpy's adjoint. */
static void run_scatter(float *restrict dst, const float *restrict d, float w, int n, int sw)
{
    if (sw == 1) {
        for (int i = 0; i < n; i++)
            dst[i] += w * d[i];
        return;
    }
    for (int i = 0; i < n; i++)
        dst[(size_t)i * (size_t)sw] += w * d[i];
}

/* sum of d[i] * src[i * sw] for i in [0, n), in eight interleaved partial sums. */
static float run_dot(const float *restrict d, const float *restrict src, int n, int sw)
{
    float acc[8] = {0};
    int i = 0;
    if (sw == 1)
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++)
                acc[j] += d[i + j] * src[i + j];
    float s = 0;
    for (; i < n; i++)
        s += d[i] * src[(size_t)i * (size_t)sw];
    for (int j = 0; j < 8; j++)
        s += acc[j];
    return s;
}

/* The plane row read by kernel row ki at output row oy, or -1 outside the plane. */
static int tap_row(const struct im2col_geom *g, int oy, int ki)
{
    int iy = oy * g->sh - g->ph + ki * g->dh;
    return iy >= 0 && iy < g->h ? iy : -1;
}

void depthwise_forward(float *out, const float *plane, const float *k, const struct im2col_geom *g)
{
    for (int oy = 0; oy < g->oh; oy++) {
        float *o = out + (size_t)oy * (size_t)g->ow;
        for (int ox = 0; ox < g->ow; ox++)
            o[ox] = 0.f;
        for (int ki = 0; ki < g->kh; ki++) {
            int iy = tap_row(g, oy, ki);
            if (iy < 0)
                continue;
            const float *row = plane + (size_t)iy * (size_t)g->w;
            for (int kj = 0; kj < g->kw; kj++) {
                int x0, x1, off = kj * g->dw - g->pw;
                im2col_tap_range(&x0, &x1, g->ow, g->sw, g->pw, kj * g->dw, g->w);
                if (x0 < x1)
                    run_axpy(o + x0, row + (x0 * g->sw + off), k[ki * g->kw + kj], x1 - x0, g->sw);
            }
        }
    }
}

void depthwise_backward_data(float *dplane, const float *dout, const float *k,
                             const struct im2col_geom *g)
{
    for (int oy = 0; oy < g->oh; oy++) {
        const float *d = dout + (size_t)oy * (size_t)g->ow;
        for (int ki = 0; ki < g->kh; ki++) {
            int iy = tap_row(g, oy, ki);
            if (iy < 0)
                continue;
            float *row = dplane + (size_t)iy * (size_t)g->w;
            for (int kj = 0; kj < g->kw; kj++) {
                int x0, x1, off = kj * g->dw - g->pw;
                im2col_tap_range(&x0, &x1, g->ow, g->sw, g->pw, kj * g->dw, g->w);
                if (x0 < x1)
                    run_scatter(row + (x0 * g->sw + off), d + x0, k[ki * g->kw + kj], x1 - x0,
                                g->sw);
            }
        }
    }
}

void depthwise_backward_kernel(float *dk, const float *dout, const float *plane,
                               const struct im2col_geom *g)
{
    for (int ki = 0; ki < g->kh; ki++) {
        int y0, y1;
        im2col_tap_range(&y0, &y1, g->oh, g->sh, g->ph, ki * g->dh, g->h);
        for (int kj = 0; kj < g->kw; kj++) {
            int x0, x1, off = kj * g->dw - g->pw;
            im2col_tap_range(&x0, &x1, g->ow, g->sw, g->pw, kj * g->dw, g->w);
            float s = 0;
            for (int oy = y0; oy < y1 && x0 < x1; oy++) {
                const float *row = plane + (size_t)tap_row(g, oy, ki) * (size_t)g->w;
                s += run_dot(dout + (size_t)oy * (size_t)g->ow + x0, row + (x0 * g->sw + off),
                             x1 - x0, g->sw);
            }
            dk[ki * g->kw + kj] += s;
        }
    }
}

/* The plane cell read by tap (ki, kj) at output (oy, ox), or -1 in the padding. */
static long long cell_of(const struct im2col_geom *g, int ki, int kj, int oy, int ox)
{
    int iy = oy * g->sh - g->ph + ki * g->dh, ix = ox * g->sw - g->pw + kj * g->dw;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return -1;
    return (long long)iy * g->w + ix;
}

void depthwise_forward_naive(float *out, const float *plane, const float *k,
                             const struct im2col_geom *g)
{
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
            double s = 0;
            for (int ki = 0; ki < g->kh; ki++)
                for (int kj = 0; kj < g->kw; kj++) {
                    long long c = cell_of(g, ki, kj, oy, ox);
                    if (c >= 0)
                        s += (double)k[ki * g->kw + kj] * plane[c];
                }
            out[(size_t)oy * (size_t)g->ow + (size_t)ox] = (float)s;
        }
}

void depthwise_backward_data_naive(float *dplane, const float *dout, const float *k,
                                   const struct im2col_geom *g)
{
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++)
            for (int ki = 0; ki < g->kh; ki++)
                for (int kj = 0; kj < g->kw; kj++) {
                    long long c = cell_of(g, ki, kj, oy, ox);
                    if (c >= 0)
                        dplane[c] +=
                            k[ki * g->kw + kj] * dout[(size_t)oy * (size_t)g->ow + (size_t)ox];
                }
}

void depthwise_backward_kernel_naive(float *dk, const float *dout, const float *plane,
                                     const struct im2col_geom *g)
{
    for (int ki = 0; ki < g->kh; ki++)
        for (int kj = 0; kj < g->kw; kj++) {
            double s = 0;
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    long long c = cell_of(g, ki, kj, oy, ox);
                    if (c >= 0)
                        s += (double)dout[(size_t)oy * (size_t)g->ow + (size_t)ox] * plane[c];
                }
            dk[ki * g->kw + kj] += (float)s;
        }
}
