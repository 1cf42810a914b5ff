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

int pool_max_geom(struct pool_geom *g, int h, int w, int size, int stride, int padding)
{
    if (size < 1 || stride < 1 || padding < 0 || padding > 2 * (size - 1))
        return -1;
    if (h + padding < size || w + padding < size)
        return -1;
    *g = (struct pool_geom){h,
                            w,
                            (h + padding - size) / stride + 1,
                            (w + padding - size) / stride + 1,
                            size,
                            stride,
                            padding / 2};
    return 0;
}

int pool_avg_geom(struct pool_geom *g, int h, int w, int size, int stride, int pad)
{
    if (size < 1 || stride < 1 || pad < 0 || h + 2 * pad < size || w + 2 * pad < size)
        return -1;
    *g = (struct pool_geom){
        h,      w,  (h + 2 * pad - size) / stride + 1, (w + 2 * pad - size) / stride + 1, size,
        stride, pad};
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
        clamp_window(&r0, &r1, i * g->stride - g->offset, g->size, g->h);
        for (int j = 0; j < g->ow; j++) {
            int c0, c1;
            clamp_window(&c0, &c1, j * g->stride - g->offset, g->size, g->w);
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
                        int r = i * g->stride - g->offset + a, c = j * g->stride - g->offset + b;
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

static void avg_plane(float *o, const float *x, const struct pool_geom *g)
{
    float inv = 1.f / (float)(g->size * g->size);
    for (int i = 0; i < g->oh; i++) {
        int r0, r1;
        clamp_window(&r0, &r1, i * g->stride - g->offset, g->size, g->h);
        for (int j = 0; j < g->ow; j++) {
            int c0, c1;
            clamp_window(&c0, &c1, j * g->stride - g->offset, g->size, g->w);
            float s = 0;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++)
                    s += x[r * g->w + c];
            o[i * g->ow + j] = s * inv;
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

/* Adds v to (forward) or gathers from (backward) the in-image cells of window (i, j), the naive
 * way: every window cell, tested. Returns the gathered sum. */
static float naive_window(float *dx, const float *x, float v, const struct pool_geom *g, int i,
                          int j)
{
    float s = 0;
    for (int a = 0; a < g->size; a++)
        for (int b = 0; b < g->size; b++) {
            int r = i * g->stride - g->offset + a, c = j * g->stride - g->offset + b;
            if (r < 0 || r >= g->h || c < 0 || c >= g->w)
                continue;
            if (x)
                s += x[r * g->w + c];
            if (dx)
                dx[r * g->w + c] += v;
        }
    return s;
}

void pool_avg_forward_naive(float *out, const float *in, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w;
    for (int p = 0; p < P; p++)
        for (int i = 0; i < g->oh; i++)
            for (int j = 0; j < g->ow; j++)
                *out++ = naive_window(NULL, in + (size_t)p * isz, 0, g, i, j) /
                         (float)(g->size * g->size);
}

void pool_avg_backward(float *din, const float *dout, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w, osz = (size_t)g->oh * (size_t)g->ow;
    float inv = 1.f / (float)(g->size * g->size);
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        float *d = din + (size_t)p * isz;
        const float *dy = dout + (size_t)p * osz;
        for (int i = 0; i < g->oh; i++) {
            int r0, r1;
            clamp_window(&r0, &r1, i * g->stride - g->offset, g->size, g->h);
            for (int j = 0; j < g->ow; j++) {
                int c0, c1;
                clamp_window(&c0, &c1, j * g->stride - g->offset, g->size, g->w);
                float v = dy[i * g->ow + j] * inv;
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
                naive_window(din + (size_t)p * isz, NULL, *dout++ / (float)(g->size * g->size), g,
                             i, j);
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
