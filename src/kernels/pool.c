/* pool.c - max, windowed-average and global-average pooling kernels (contracts in pool.h).
 *
 * Each kernel runs over P planes of h x w (NCHW: plane p = image p / C, channel p % C) with OpenMP
 * over planes; a plane's output and input gradient are touched by one thread only. The fast
 * kernels clamp every window to the image once; the naive ones test each window cell (Darknet's
 * forward_maxpool_layer loop) and are kept as references for the tests.
 */
#include "kernels/pool.h"

#include <stddef.h>

#include "core/common.h"

/* Outputs along one axis: floor or ceil of (n + total - size)/stride, plus one; in ceil mode the
 * last window is dropped when it would start at or past the end of the input (lead = offset). */
static int out_side(int n, int size, int stride, int total, int lead, int ceil_mode)
{
    int span = n + total - size;
    int o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (o - 1) * stride >= n + lead)
        o--;
    return o;
}

int pool_max_geom(struct pool_geom *g, int h, int w, int size, int sy, int sx, int padding,
                  int ceil_mode)
{
    if (size < 1 || sy < 1 || sx < 1 || padding < 0 || padding > 2 * (size - 1))
        return -1;
    if (h + padding < size || w + padding < size)
        return -1;
    int o = padding / 2;
    *g = (struct pool_geom){.h = h,
                            .w = w,
                            .oh = out_side(h, size, sy, padding, o, ceil_mode),
                            .ow = out_side(w, size, sx, padding, o, ceil_mode),
                            .size = size,
                            .sy = sy,
                            .sx = sx,
                            .oy = o,
                            .ox = o,
                            .eh = h + padding - o,
                            .ew = w + padding - o,
                            .count_pad = 0};
    return 0;
}

int pool_avg_geom(struct pool_geom *g, int h, int w, int size, int sy, int sx, int pad,
                  int ceil_mode, int count_pad)
{
    if (size < 1 || sy < 1 || sx < 1 || pad < 0 || h + 2 * pad < size || w + 2 * pad < size)
        return -1;
    *g = (struct pool_geom){.h = h,
                            .w = w,
                            .oh = out_side(h, size, sy, 2 * pad, pad, ceil_mode),
                            .ow = out_side(w, size, sx, 2 * pad, pad, ceil_mode),
                            .size = size,
                            .sy = sy,
                            .sx = sx,
                            .oy = pad,
                            .ox = pad,
                            .eh = h + pad,
                            .ew = w + pad,
                            .count_pad = count_pad != 0};
    return 0;
}

/* The in-image part [*lo, *hi) of the window that starts at start. */
static void clamp_window(int *lo, int *hi, int start, int size, int n)
{
    *lo = CN_MAX(start, 0);
    *hi = CN_MIN(start + size, n);
}

static void max_plane(float *o, int32_t *ix, const float *x, const struct pool_geom *g)
{
    for (int i = 0; i < g->oh; i++) {
        int r0, r1;
        clamp_window(&r0, &r1, i * g->sy - g->oy, g->size, g->h);
        for (int j = 0; j < g->ow; j++) {
            int c0, c1;
            clamp_window(&c0, &c1, j * g->sx - g->ox, g->size, g->w);
            int best = r0 * g->w + c0;
            float m = x[best];
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    if (x[r * g->w + c] > m) {
                        m = x[r * g->w + c];
                        best = r * g->w + c;
                    }
            o[i * g->ow + j] = m;
            if (ix)
                ix[i * g->ow + j] = best;
        }
    }
}

void pool_max_forward(float *out, int32_t *idx, const float *in, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w, osz = (size_t)g->oh * (size_t)g->ow;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++)
        max_plane(out + (size_t)p * osz, idx ? idx + (size_t)p * osz : NULL, in + (size_t)p * isz,
                  g);
}

/* Darknet's loop: every window cell, out-of-image cells skipped, strict > keeps the first max. */
void pool_max_forward_naive(float *out, int32_t *idx, const float *in, int P,
                            const struct pool_geom *g)
{
    for (int p = 0; p < P; p++)
        for (int i = 0; i < g->oh; i++)
            for (int j = 0; j < g->ow; j++) {
                const float *x = in + (size_t)p * (size_t)g->h * (size_t)g->w;
                float m = 0;
                int best = -1;
                for (int a = 0; a < g->size; a++)
                    for (int b = 0; b < g->size; b++) {
                        int r = i * g->sy - g->oy + a, c = j * g->sx - g->ox + b;
                        if (r < 0 || r >= g->h || c < 0 || c >= g->w)
                            continue;
                        if (best < 0 || x[r * g->w + c] > m) {
                            m = x[r * g->w + c];
                            best = r * g->w + c;
                        }
                    }
                size_t o = ((size_t)p * (size_t)g->oh + (size_t)i) * (size_t)g->ow + (size_t)j;
                out[o] = m;
                if (idx)
                    idx[o] = best;
            }
}

void pool_max_backward(float *din, const float *dout, const int32_t *idx, int P,
                       const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w, osz = (size_t)g->oh * (size_t)g->ow;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        float *d = din + (size_t)p * isz;
        const float *dy = dout + (size_t)p * osz;
        const int32_t *ix = idx + (size_t)p * osz;
        for (size_t o = 0; o < osz; o++)
            d[ix[o]] += dy[o];
    }
}

/* Cells of a window starting at `start` that the divisor counts along one axis: up to the padded
 * extent `end` with count_pad (start >= -pad always), else the in-image ones. */
static int divisor_side(int start, int size, int n, int end, int count_pad)
{
    if (count_pad)
        return CN_MIN(start + size, end) - start;
    return CN_MIN(start + size, n) - CN_MAX(start, 0);
}

static float avg_inverse(const struct pool_geom *g, int ys, int xs)
{
    int d = divisor_side(ys, g->size, g->h, g->eh, g->count_pad) *
            divisor_side(xs, g->size, g->w, g->ew, g->count_pad);
    return 1.f / (float)d;
}

static void avg_plane(float *o, const float *x, const struct pool_geom *g)
{
    for (int i = 0; i < g->oh; i++) {
        int r0, r1, ys = i * g->sy - g->oy;
        clamp_window(&r0, &r1, ys, g->size, g->h);
        for (int j = 0; j < g->ow; j++) {
            int c0, c1, xs = j * g->sx - g->ox;
            clamp_window(&c0, &c1, xs, g->size, g->w);
            float s = 0;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    s += x[r * g->w + c];
            o[i * g->ow + j] = s * avg_inverse(g, ys, xs);
        }
    }
}

void pool_avg_forward(float *out, const float *in, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w, osz = (size_t)g->oh * (size_t)g->ow;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++)
        avg_plane(out + (size_t)p * osz, in + (size_t)p * isz, g);
}

/* The naive way over window (i, j): every window cell, tested. Adds v to the in-image cells of dx
 * (when dx), and returns the in-image sum of x (when x) divided by the divisor, which it counts
 * cell by cell. */
static float naive_window(float *dx, const float *x, float v, const struct pool_geom *g, int i,
                          int j)
{
    float s = 0;
    int count = 0;
    for (int a = 0; a < g->size; a++)
        for (int b = 0; b < g->size; b++) {
            int r = i * g->sy - g->oy + a, c = j * g->sx - g->ox + b;
            int inside = r >= 0 && r < g->h && c >= 0 && c < g->w;
            count += g->count_pad ? (r < g->eh && c < g->ew) : inside;
            if (!inside)
                continue;
            if (x)
                s += x[r * g->w + c];
        }
    for (int a = 0; dx && a < g->size; a++)
        for (int b = 0; b < g->size; b++) {
            int r = i * g->sy - g->oy + a, c = j * g->sx - g->ox + b;
            if (r >= 0 && r < g->h && c >= 0 && c < g->w)
                dx[r * g->w + c] += v / (float)count;
        }
    return s / (float)count;
}

void pool_avg_forward_naive(float *out, const float *in, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w;
    for (int p = 0; p < P; p++)
        for (int i = 0; i < g->oh; i++)
            for (int j = 0; j < g->ow; j++)
                *out++ = naive_window(NULL, in + (size_t)p * isz, 0, g, i, j);
}

void pool_avg_backward(float *din, const float *dout, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w, osz = (size_t)g->oh * (size_t)g->ow;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        float *d = din + (size_t)p * isz;
        const float *dy = dout + (size_t)p * osz;
        for (int i = 0; i < g->oh; i++) {
            int r0, r1, ys = i * g->sy - g->oy;
            clamp_window(&r0, &r1, ys, g->size, g->h);
            for (int j = 0; j < g->ow; j++) {
                int c0, c1, xs = j * g->sx - g->ox;
                clamp_window(&c0, &c1, xs, g->size, g->w);
                float v = dy[i * g->ow + j] * avg_inverse(g, ys, xs);
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++)
                        d[r * g->w + c] += v;
            }
        }
    }
}

void pool_avg_backward_naive(float *din, const float *dout, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w;
    for (int p = 0; p < P; p++)
        for (int i = 0; i < g->oh; i++)
            for (int j = 0; j < g->ow; j++)
                naive_window(din + (size_t)p * isz, NULL, *dout++, g, i, j);
}

void pool_global_avg_forward(float *out, const float *in, int P, int hw)
{
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        const float *x = in + (size_t)p * (size_t)hw;
        float s = 0;
        for (int k = 0; k < hw; k++)
            s += x[k];
        out[p] = s / (float)hw;
    }
}

void pool_global_avg_backward(float *din, const float *dout, int P, int hw)
{
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        float *d = din + (size_t)p * (size_t)hw;
        float v = dout[p] / (float)hw;
        for (int k = 0; k < hw; k++)
            d[k] += v;
    }
}
