/* pool.c - max, windowed-average and global-average pooling kernels (contracts in pool.h).
 *
 * Each kernel runs over P planes of h x w (NCHW: plane p = image p / C, channel p % C) with OpenMP
 * over planes when there is enough work to pay for waking the threads (POOL_PAR_MIN); a plane's
 * output and input gradient are touched by one thread only.
 *
 * Forward of max (without argmax: inference) and average pooling works a row of outputs at a
 * time, separably. Each input row is reduced along its columns once (max, or sum: a plain loop
 * over contiguous or stride-2 floats that the compiler vectorises, windows at the borders clamped)
 * into a ring of the last `size` such rows on the stack; an output row then reduces the ring
 * rows of its window. So the input is read once, whole rows in order, one stream the hardware
 * prefetcher follows. Narrow planes (rows of a few cache lines) instead reduce a window's rows
 * side by side into a row buffer padded with the identity (-inf, or 0), then its columns: fewer
 * passes over short rows. Stride-1 windows centred on their outputs (GoogLeNet's and
 * Inception's 3x3/1) on planes that fit the buffer go further: the whole plane's rows, then its
 * columns, each as one array (same_plane). Planes whose ring outgrows its buffer, and max
 * pooling that records the argmax (training), take the direct kernel: every window clamped to
 * the image once. The naive ones test each window cell (Darknet's forward_maxpool_layer loop)
 * and are kept as references for the tests.
 *
 * Max: the same values as Darknet's loop, which keeps the first maximum in row-major window
 * order; the narrow and same_plane kernels keep the first in column-major order, which differs
 * only between -0 and +0 of equal value. NaN inputs give unspecified results. Average: the
 * separable sums add in another order than the direct one (the ring along rows first, the
 * narrow and same_plane kernels down columns first), so results may differ in the last bits;
 * the divisor is applied as a multiplication by 1/divisor in both.
 */
#include "kernels/pool.h"

#include <math.h>
#include <stddef.h>

#include "core/common.h"

#define POOL_ROW_MAX 2048  /* outputs of a row of the average's divisors (8 KiB on the stack) */
#define POOL_RING_MAX 4096 /* floats of the ring of column-reduced rows (16 KiB) */
#define POOL_NARROW 64     /* floats of a row below which a plane is narrow (narrow_rows) */
/* Input floats below which one thread is faster than two (waking a sleeping thread costs 5-50
 * us; a thread reduces ~4 floats/ns). */
#define POOL_PAR_MIN 131072

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

/* Whether the separable kernels' stack buffers hold a plane's rows: g->size rows of outputs in
 * the ring (and a row of outputs the divisors of the average). */
static int row_fits(const struct pool_geom *g)
{
    return g->ow <= POOL_ROW_MAX && (size_t)g->ow * (size_t)g->size <= POOL_RING_MAX;
}

enum pool_op { POOL_MAX, POOL_SUM };

/* a when a > b, else b: with the running maximum as b, the earlier of equal values stays. */
static inline float max2(float a, float b)
{
    return a > b ? a : b;
}

/* o[j] = max of s[j*sx + k], k < size (s: the row from the first window's start). */
static inline __attribute__((always_inline)) void
max_cols(float *restrict o, const float *restrict s, int ow, int sx, int size)
{
    if (sx == 2 && size == 3) {
        for (int j = 0; j < ow; j++)
            o[j] = max2(s[2 * j + 2], max2(s[2 * j + 1], s[2 * j]));
    } else if (sx == 2 && size == 2) {
        for (int j = 0; j < ow; j++)
            o[j] = max2(s[2 * j + 1], s[2 * j]);
    } else if (sx == 1 && size == 3) {
        for (int j = 0; j < ow; j++)
            o[j] = max2(s[j + 2], max2(s[j + 1], s[j]));
    } else if (sx == 1) {
        for (int j = 0; j < ow; j++)
            o[j] = s[j];
        for (int k = 1; k < size; k++)
            for (int j = 0; j < ow; j++)
                o[j] = max2(s[j + k], o[j]);
    } else {
        for (int j = 0; j < ow; j++)
            o[j] = s[(size_t)j * (size_t)sx];
        for (int k = 1; k < size; k++)
            for (int j = 0; j < ow; j++)
                o[j] = max2(s[(size_t)j * (size_t)sx + (size_t)k], o[j]);
    }
}

/* o[j] = sum of s[j*sx + k], k < size. */
static inline __attribute__((always_inline)) void
sum_cols(float *restrict o, const float *restrict s, int ow, int sx, int size)
{
    if (sx == 2 && size == 3) {
        for (int j = 0; j < ow; j++)
            o[j] = s[2 * j] + s[2 * j + 1] + s[2 * j + 2];
    } else if (sx == 2 && size == 2) {
        for (int j = 0; j < ow; j++)
            o[j] = s[2 * j] + s[2 * j + 1];
    } else if (sx == 1 && size == 3) {
        for (int j = 0; j < ow; j++)
            o[j] = s[j] + s[j + 1] + s[j + 2];
    } else if (sx == 1) {
        for (int j = 0; j < ow; j++)
            o[j] = s[j];
        for (int k = 1; k < size; k++)
            for (int j = 0; j < ow; j++)
                o[j] += s[j + k];
    } else {
        for (int j = 0; j < ow; j++)
            o[j] = s[(size_t)j * (size_t)sx];
        for (int k = 1; k < size; k++)
            for (int j = 0; j < ow; j++)
                o[j] += s[(size_t)j * (size_t)sx + (size_t)k];
    }
}

/* The outputs [*ja, *jb) of a row whose windows lie inside the image's columns (start >= 0,
 * start + size <= w); the others, at most a few at each end, see the border. */
static void inner_cols(int *ja, int *jb, const struct pool_geom *g)
{
    *ja = CN_MIN((g->ox + g->sx - 1) / g->sx, g->ow);
    int last = g->w - g->size + g->ox;
    *jb = CN_MAX(*ja, last < 0 ? 0 : CN_MIN(g->ow, last / g->sx + 1));
}

/* Output j of a row by its window clamped to the image's columns: cells outside are the identity
 * of op (-inf, 0), so they are skipped. */
static inline __attribute__((always_inline)) float
border_col(const float *row, int j, const struct pool_geom *g, enum pool_op op)
{
    int c0, c1;
    clamp_window(&c0, &c1, j * g->sx - g->ox, g->size, g->w);
    float v = op == POOL_MAX ? -INFINITY : 0.f;
    for (int c = c0; c < c1; c++)
        v = op == POOL_MAX ? max2(row[c], v) : v + row[c];
    return v;
}

/* The rows of a plane reduced along their columns, the last g->size of them: row r in slot
 * r % size, kept without a division per row (next: the first row not yet in; slot: its slot);
 * [ja, jb): the inner outputs of a row (inner_cols). Narrow planes (narrow_rows) use base as a
 * row buffer instead. */
struct pool_ring {
    float *base;
    int next, slot, ja, jb, narrow;
};

static inline float *ring_slot(const struct pool_ring *q, const struct pool_geom *g, int s)
{
    return q->base + (size_t)s * (size_t)g->ow;
}

static inline int ring_step(int s, const struct pool_geom *g)
{
    return s + 1 == g->size ? 0 : s + 1;
}

/* The column windows of input row r into d (g->ow floats), read in place. */
static inline __attribute__((always_inline)) void row_cols(float *d, const struct pool_ring *q,
                                                           const float *x, int r,
                                                           const struct pool_geom *g,
                                                           enum pool_op op)
{
    const float *row = x + (size_t)r * (size_t)g->w;
    int ja = q->ja, jb = q->jb;
    for (int j = 0; j < ja; j++)
        d[j] = border_col(row, j, g, op);
    const float *s = row + (ptrdiff_t)ja * g->sx - g->ox;
    if (op == POOL_MAX)
        max_cols(d + ja, s, jb - ja, g->sx, g->size);
    else
        sum_cols(d + ja, s, jb - ja, g->sx, g->size);
    for (int j = jb; j < g->ow; j++)
        d[j] = border_col(row, j, g, op);
}

/* y = the reduction of rows [r0, r1), the last rows in the ring (r1 == q->next); a later row
 * replaces the running maximum only when greater, so the first maximum in row-major order stays. */
static inline __attribute__((always_inline)) void reduce_slots(float *restrict y,
                                                               const struct pool_ring *q,
                                                               const struct pool_geom *g, int r0,
                                                               int r1, enum pool_op op)
{
    int n = r1 - r0, s = q->slot - n < 0 ? q->slot - n + g->size : q->slot - n;
    const float *restrict a = ring_slot(q, g, s);
    const float *restrict b = n > 1 ? ring_slot(q, g, s = ring_step(s, g)) : a;
    const float *restrict d = n > 2 ? ring_slot(q, g, s = ring_step(s, g)) : b;
    int ow = g->ow;
    if (op == POOL_MAX)
        for (int j = 0; j < ow; j++)
            y[j] = max2(d[j], max2(b[j], a[j]));
    else if (n == 1)
        for (int j = 0; j < ow; j++)
            y[j] = a[j];
    else if (n == 2)
        for (int j = 0; j < ow; j++)
            y[j] = a[j] + b[j];
    else
        for (int j = 0; j < ow; j++)
            y[j] = a[j] + b[j] + d[j];
    for (int r = r0 + 3; r < r1; r++) {
        const float *restrict e = ring_slot(q, g, s = ring_step(s, g));
        if (op == POOL_MAX)
            for (int j = 0; j < ow; j++)
                y[j] = max2(e[j], y[j]);
        else
            for (int j = 0; j < ow; j++)
                y[j] += e[j];
    }
}

/* t[c] = the reduction of a[c + k*stride] over k < n, c < len: n rows of a plane side by side
 * (len: one row, or the rows of a span of windows that all hold n rows). */
static inline __attribute__((always_inline)) void
window_span(float *restrict t, const float *restrict a, int stride, int len, int n, enum pool_op op)
{
    const float *b = n > 1 ? a + stride : a, *d = n > 2 ? b + stride : b;
    if (op == POOL_MAX)
        for (int c = 0; c < len; c++)
            t[c] = max2(d[c], max2(b[c], a[c]));
    else if (n == 1)
        for (int c = 0; c < len; c++)
            t[c] = a[c];
    else if (n == 2)
        for (int c = 0; c < len; c++)
            t[c] = a[c] + b[c];
    else
        for (int c = 0; c < len; c++)
            t[c] = a[c] + b[c] + d[c];
    for (int k = 3; k < n; k++) {
        const float *e = a + (size_t)k * (size_t)stride;
        if (op == POOL_MAX)
            for (int c = 0; c < len; c++)
                t[c] = max2(e[c], t[c]);
        else
            for (int c = 0; c < len; c++)
                t[c] += e[c];
    }
}

/* t[c] = the reduction over rows [r0, r1) of x[r][c], c < w. */
static inline __attribute__((always_inline)) void
window_rows(float *restrict t, const float *restrict x, int w, int r0, int r1, enum pool_op op)
{
    window_span(t, x + (size_t)r0 * (size_t)w, w, w, r1 - r0, op);
}

/* Output row y of a plane: its window's rows [r0, r1) reduced. Rows enter the ring in order, each
 * once (rows that a stride skips are never read). A narrow plane's window rows are reduced side
 * by side into the row buffer, then its columns. */
static inline __attribute__((always_inline)) void plane_row(float *y, struct pool_ring *q,
                                                            const float *x,
                                                            const struct pool_geom *g, int r0,
                                                            int r1, enum pool_op op)
{
    if (q->narrow) {
        window_rows(q->base + g->ox, x, g->w, r0, r1, op);
        if (op == POOL_MAX)
            max_cols(y, q->base, g->ow, g->sx, g->size);
        else
            sum_cols(y, q->base, g->ow, g->sx, g->size);
        return;
    }
    for (q->next = CN_MAX(q->next, r0); q->next < r1; q->next++) {
        row_cols(ring_slot(q, g, q->slot), q, x, q->next, g, op);
        q->slot = ring_step(q->slot, g);
    }
    reduce_slots(y, q, g, r0, r1, op);
}

/* End (exclusive) of the last window along a row. */
static int row_extent(const struct pool_geom *g)
{
    return (g->ow - 1) * g->sx - g->ox + g->size;
}

/* Whether a plane's rows are so short (a few cache lines) that reducing a window's rows side by
 * side, then the columns of the result, costs less than the ring's extra passes. Longer rows go
 * through the ring, each read alone: read side by side they lost the hardware prefetcher (Zen 4:
 * a 2x2/2 max over 224-wide rows read 9 GB/s, against 21 for one stream). */
static int narrow_rows(const struct pool_geom *g)
{
    return g->w < POOL_NARROW &&
           (size_t)g->ox + (size_t)CN_MAX(g->w, row_extent(g)) <= POOL_RING_MAX;
}

static void ring_init(struct pool_ring *q, float *base, const struct pool_geom *g, enum pool_op op)
{
    *q = (struct pool_ring){.base = base, .narrow = narrow_rows(g)};
    inner_cols(&q->ja, &q->jb, g);
    if (!q->narrow)
        return;
    float id = op == POOL_MAX ? -INFINITY : 0.f; /* the pads of the row buffer */
    for (int c = 0; c < g->ox; c++)
        base[c] = id;
    for (int c = g->w; c < row_extent(g); c++)
        base[g->ox + c] = id;
}

/* Whether a plane pools stride-1 windows centred on their outputs (size odd, size/2 cells of
 * padding: the output plane is the input plane) and fits the ring whole. Then its window rows
 * are reduced as one array, and so are its columns, the outputs near each row's ends (whose
 * windows ran into the next row) redone after: a few long loops instead of a few short ones per
 * row (with rows of 35 floats, Inception's, the loops' ends cost more than their bodies). */
static int same_plane(const struct pool_geom *g)
{
    int p = g->size / 2;
    return g->sx == 1 && g->sy == 1 && g->size % 2 == 1 && g->ox == p && g->oy == p &&
           g->oh == g->h && g->ow == g->w && g->h > 2 * p && g->w > 2 * p &&
           (size_t)g->h * (size_t)g->w <= POOL_RING_MAX;
}

/* The p outputs at each end of a row of a same_plane, from its rows' reduction v: windows
 * clamped to the row, cells combined left to right from the identity as border_col does. */
static inline __attribute__((always_inline)) void
same_ends(float *restrict y, const float *restrict v, int w, int p, enum pool_op op)
{
    float id = op == POOL_MAX ? -INFINITY : 0.f;
    for (int j = 0; j < p; j++) {
        float a = id, b = id;
        for (int c = 0; c <= j + p; c++)
            a = op == POOL_MAX ? max2(v[c], a) : a + v[c];
        for (int c = w - 1 - j - p; c < w; c++)
            b = op == POOL_MAX ? max2(v[c], b) : b + v[c];
        y[j] = a;
        y[w - 1 - j] = b;
    }
}

/* y = the reduction of each window of a plane (same_plane(g)), through v (h*w floats): rows,
 * then columns, each window clamped to the image, as plane_row does (so the same values). */
static inline __attribute__((always_inline)) void same_pool(float *restrict y, float *restrict v,
                                                            const float *x,
                                                            const struct pool_geom *g,
                                                            enum pool_op op)
{
    int h = g->h, w = g->w, p = g->size / 2, n = h * w;
    for (int i = 0; i < p; i++)
        window_rows(v + (size_t)i * (size_t)w, x, w, 0, i + p + 1, op);
    window_span(v + (size_t)p * (size_t)w, x, w, (h - 2 * p) * w, g->size, op);
    for (int i = h - p; i < h; i++)
        window_rows(v + (size_t)i * (size_t)w, x, w, i - p, h, op);
    if (op == POOL_MAX)
        max_cols(y + p, v, n - 2 * p, 1, g->size);
    else
        sum_cols(y + p, v, n - 2 * p, 1, g->size);
    for (int i = 0; i < h; i++)
        same_ends(y + (size_t)i * (size_t)w, v + (size_t)i * (size_t)w, w, p, op);
}

/* The separable max of one plane (row_fits(g)): window rows and columns clamped to the image, so
 * an ignored cell is never selected. */
static inline __attribute__((always_inline)) void max_plane_rows_body(float *o, const float *x,
                                                                      const struct pool_geom *g)
{
    float ring[POOL_RING_MAX];
    if (same_plane(g)) {
        same_pool(o, ring, x, g, POOL_MAX);
        return;
    }
    struct pool_ring q;
    ring_init(&q, ring, g, POOL_MAX);
    for (int i = 0; i < g->oh; i++) {
        int r0, r1;
        clamp_window(&r0, &r1, i * g->sy - g->oy, g->size, g->h);
        plane_row(o + (size_t)i * (size_t)g->ow, &q, x, g, r0, r1, POOL_MAX);
    }
}

typedef void (*plane_fn)(float *, const float *, const struct pool_geom *);

static void max_plane_rows(float *o, const float *x, const struct pool_geom *g)
{
    max_plane_rows_body(o, x, g);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static void max_plane_rows_avx2(float *o, const float *x,
                                                                const struct pool_geom *g)
{
    max_plane_rows_body(o, x, g);
}
#else
#define max_plane_rows_avx2 max_plane_rows
#endif

/* avx2 where the CPU has it (the same operations in the same order, so the same results). */
static plane_fn isa_plane(plane_fn base, plane_fn avx2)
{
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2"))
        return avx2;
#endif
    (void)avx2;
    return base;
}

/* Window (i, j) by the clamped loop: the first maximum in row-major order. */
static void max_window(float *o, int32_t *ix, const float *x, const struct pool_geom *g, int r0,
                       int r1, int j)
{
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
    *o = m;
    if (ix)
        *ix = best;
}

typedef float pool_v8 __attribute__((vector_size(32)));
typedef float pool_v8u __attribute__((vector_size(32), aligned(4)));
typedef int32_t pool_v8i __attribute__((vector_size(32)));
typedef int32_t pool_v8iu __attribute__((vector_size(32), aligned(4)));

/* Outputs [j, j + 8) of a row of a 3-wide stride-2 window inside the image's columns (rows
 * [r0, r1)), with their argmax: the first cell, then every cell in row-major order with strict
 * >, as max_window, 8 outputs at once by compares and selects (branching per cell mispredicted
 * on every new maximum: ResNet-18's 3x3/2 over 112x112x64 at batch 16 took 14 ms with argmax,
 * 3.3 without). The 8 cells of one tap are the even ones of x[c .. c + 15), read as two
 * overlapping vectors so that nothing past the last cell is touched. */
static inline __attribute__((always_inline)) void
max_vec_s2k3(float *o, int32_t *ix, const float *x, int w, int r0, int r1, int c0)
{
    const pool_v8i lane = {0, 2, 4, 6, 8, 10, 12, 14};
    pool_v8 m = {0};
    pool_v8i best = {0};
    for (int r = r0; r < r1; r++)
        for (int k = 0; k < 3; k++) {
            int at = r * w + c0 + k;
            pool_v8 lo = *(const pool_v8u *)(const void *)(x + at);
            pool_v8 hi = *(const pool_v8u *)(const void *)(x + at + 7);
            pool_v8 v = CN_SHUF8(lo, hi, 0, 2, 4, 6, 9, 11, 13, 15);
            pool_v8i cand = lane + at;
            if (r == r0 && k == 0) {
                m = v;
                best = cand;
                continue;
            }
            pool_v8i sel = v > m;
            m = (pool_v8)(((pool_v8i)v & sel) | ((pool_v8i)m & ~sel));
            best = (cand & sel) | (best & ~sel);
        }
    *(pool_v8u *)(void *)o = m;
    *(pool_v8iu *)(void *)ix = best;
}

/* Outputs [ja, jb) (jb - ja >= 8) of a row by max_vec_s2k3, the last 8 overlapping the others
 * (recomputed alike). */
static inline __attribute__((always_inline)) void max_row_s2k3_body(float *o, int32_t *ix,
                                                                    const float *x,
                                                                    const struct pool_geom *g,
                                                                    int r0, int r1, int ja, int jb)
{
    for (int j = ja;; j += 8) {
        j = CN_MIN(j, jb - 8);
        max_vec_s2k3(o + j, ix + j, x, g->w, r0, r1, 2 * j - g->ox);
        if (j == jb - 8)
            return;
    }
}

static void max_row_s2k3(float *o, int32_t *ix, const float *x, const struct pool_geom *g, int r0,
                         int r1, int ja, int jb)
{
    max_row_s2k3_body(o, ix, x, g, r0, r1, ja, jb);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static void max_row_s2k3_avx2(float *o, int32_t *ix, const float *x,
                                                              const struct pool_geom *g, int r0,
                                                              int r1, int ja, int jb)
{
    max_row_s2k3_body(o, ix, x, g, r0, r1, ja, jb);
}
#endif

typedef void (*max_row_fn)(float *, int32_t *, const float *, const struct pool_geom *, int, int,
                           int, int);

/* The vector row kernel for g (3-wide windows at stride 2 across) and its [ja, jb), else NULL:
 * AVX2 where the CPU has it (the same compares and selects, so the same results). */
static max_row_fn max_row_for(const struct pool_geom *g, int ja, int jb)
{
    if (g->size != 3 || g->sx != 2 || jb - ja < 8)
        return NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (__builtin_cpu_supports("avx2"))
        return max_row_s2k3_avx2;
#endif
    return max_row_s2k3;
}

static void max_plane(float *o, int32_t *ix, const float *x, const struct pool_geom *g)
{
    /* outputs [ja, jb) have windows inside the columns: start >= 0, start + size <= w */
    int ja, jb;
    inner_cols(&ja, &jb, g);
    max_row_fn row = ix ? max_row_for(g, ja, jb) : NULL;
    for (int i = 0; i < g->oh; i++) {
        int r0, r1;
        clamp_window(&r0, &r1, i * g->sy - g->oy, g->size, g->h);
        float *orow = o + (size_t)i * (size_t)g->ow;
        int32_t *irow = ix ? ix + (size_t)i * (size_t)g->ow : NULL;
        for (int j = 0; j < g->ow; j++) {
            if (row && j == ja) {
                row(orow, irow, x, g, r0, r1, ja, jb);
                j = jb - 1;
                continue;
            }
            max_window(orow + j, irow ? irow + j : NULL, x, g, r0, r1, j);
        }
    }
}

void pool_max_forward(float *out, int32_t *idx, const float *in, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w, osz = (size_t)g->oh * (size_t)g->ow;
    int rows = !idx && row_fits(g);
    plane_fn plane = isa_plane(max_plane_rows, max_plane_rows_avx2);
#pragma omp parallel for schedule(static) if ((size_t)P * isz >= POOL_PAR_MIN)
    for (int p = 0; p < P; p++) {
        if (rows)
            plane(out + (size_t)p * osz, in + (size_t)p * isz, g);
        else
            max_plane(out + (size_t)p * osz, idx ? idx + (size_t)p * osz : NULL,
                      in + (size_t)p * isz, g);
    }
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

/* y[j] *= f[j] (restrict and plain ints: -fno-strict-aliasing would otherwise keep the loop
 * from being vectorised, re-reading the bound after each store). */
static inline __attribute__((always_inline)) void scale_by(float *restrict y,
                                                           const float *restrict f, int n)
{
    for (int j = 0; j < n; j++)
        y[j] *= f[j];
}

static inline __attribute__((always_inline)) void scale_all(float *restrict y, float f, int n)
{
    for (int j = 0; j < n; j++)
        y[j] *= f;
}

/* The separable average of one plane (row_fits(g)): zeros outside the image in the row buffer,
 * then each output times 1/divisor, the divisor a product of its row's and its column's counts. */
static inline __attribute__((always_inline)) void avg_plane_rows_body(float *o, const float *x,
                                                                      const struct pool_geom *g)
{
    float ring[POOL_RING_MAX], inv[POOL_ROW_MAX]; /* inv: 1/divisor of each output of a row */
    int cols[POOL_ROW_MAX];                       /* the column count of each output's window */
    int same = same_plane(g);
    if (same) {
        same_pool(o, ring, x, g, POOL_SUM);
        if (g->count_pad) { /* every window inside the padded extent: one divisor */
            scale_all(o, 1.f / (float)(g->size * g->size), g->h * g->w);
            return;
        }
    }
    struct pool_ring q = {0};
    if (!same) /* same_pool has reduced the plane already: only the divisors remain */
        ring_init(&q, ring, g, POOL_SUM);
    for (int j = 0; j < g->ow; j++)
        cols[j] = divisor_side(j * g->sx - g->ox, g->size, g->w, g->ew, g->count_pad);
    for (int i = 0, last_rows = 0; i < g->oh; i++) {
        int r0, r1, ys = i * g->sy - g->oy;
        clamp_window(&r0, &r1, ys, g->size, g->h);
        int rows = divisor_side(ys, g->size, g->h, g->eh, g->count_pad);
        if (rows != last_rows) /* inner rows share one count: divide once for them all */
            for (int j = 0; j < g->ow; j++)
                inv[j] = 1.f / (float)(rows * cols[j]);
        last_rows = rows;
        float *y = o + (size_t)i * (size_t)g->ow;
        if (!same)
            plane_row(y, &q, x, g, r0, r1, POOL_SUM);
        scale_by(y, inv, g->ow);
    }
}

static void avg_plane_rows(float *o, const float *x, const struct pool_geom *g)
{
    avg_plane_rows_body(o, x, g);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static void avg_plane_rows_avx2(float *o, const float *x,
                                                                const struct pool_geom *g)
{
    avg_plane_rows_body(o, x, g);
}
#else
#define avg_plane_rows_avx2 avg_plane_rows
#endif

void pool_avg_forward(float *out, const float *in, int P, const struct pool_geom *g)
{
    size_t isz = (size_t)g->h * (size_t)g->w, osz = (size_t)g->oh * (size_t)g->ow;
    int rows = row_fits(g);
    plane_fn plane = isa_plane(avg_plane_rows, avg_plane_rows_avx2);
#pragma omp parallel for schedule(static) if ((size_t)P * isz >= POOL_PAR_MIN)
    for (int p = 0; p < P; p++) {
        if (rows)
            plane(out + (size_t)p * osz, in + (size_t)p * isz, g);
        else
            avg_plane(out + (size_t)p * osz, in + (size_t)p * isz, g);
    }
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

/* The sum of x[0..n) in 8 interleaved partial sums (a vector's worth: the compiler may not
 * reorder a single running sum), then their sum and the tail. */
static float sum_floats(const float *restrict x, int n)
{
    float acc[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int v = 0; v < 8; v++)
            acc[v] += x[k + v];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; k < n; k++)
        s += x[k];
    return s;
}

void pool_global_avg_forward(float *out, const float *in, int P, int hw)
{
#pragma omp parallel for schedule(static) if ((size_t)P * (size_t)hw >= POOL_PAR_MIN)
    for (int p = 0; p < P; p++)
        out[p] = sum_floats(in + (size_t)p * (size_t)hw, hw) / (float)hw;
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
