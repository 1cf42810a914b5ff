/* depthwise.c - direct single-plane convolution for depthwise layers (contract in depthwise.h).
 *
 * Each fast routine visits an output row, then each kernel row ki whose image row lies inside
 * the plane, then each tap kj with the run [x0, x1) of output columns that reads inside the
 * plane (im2col_tap_range): the padding is never read or tested. With stride 1 the run is a
 * contiguous multiply-add the compiler vectorises; the kernel gradient is a dot product kept in
 * eight interleaved partial sums for the same reason (no fast-math: the order is fixed).
 *
 * Forward 3x3 kernels at stride 1 or 2 (MobileNet's, ResNeXt's) take a fast path on CPUs with
 * AVX2+FMA (intrinsics under a target attribute, chosen by __builtin_cpu_supports): each input
 * row is copied once into a ring of three zero-padded rows in the caller's scratch (at stride 2
 * split into its even and odd columns, so every tap reads 8 adjacent floats), then each block of
 * 8 output columns sums its 9 taps (times the channels of a group) in registers by FMA, in tap
 * order, gets the epilogue (affine map and activation) and is stored once: one pass over the
 * output instead of nine. Sums differ from the generic kernel's in rounding only (fused
 * multiply-adds). The grouped kernels (forward and both gradients) work on bands of rows packed
 * flat (see "Grouped 3x3 forward on flattened bands" below) in the caller's scratch. The 3x3
 * backward kernels reuse the ring: the data gradient as a forward convolution of the output
 * gradient (stride 1: the kernel turned by 180 degrees; stride 2: by column and row parity,
 * interleaved), the kernel gradient as nine vector accumulators over the plane (see
 * dw_adjoint_geom).
 */
#include "kernels/depthwise.h"

#include <stddef.h>
#include <string.h>

#include "core/common.h"

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

/* The generic kernel: any window, stride, padding and dilation. */
static void dw_forward_generic(float *out, const float *plane, const float *k,
                               const struct im2col_geom *g)
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

/* The 3x3 fast path (AVX2+FMA): a padded copy of each input row in a ring of three in the
 * caller's scratch (each row copied once per plane), then per output row and block of 8 columns
 * the nine taps in registers, the epilogue, one store. See the file comment. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define DW_X86 1
#include <immintrin.h>
#define DW_AVX2 __attribute__((target("avx2,fma")))
#else
#define DW_X86 0
#endif

#define DW_ROW_FLOATS 2048 /* one ring row: caps the output width of the fast path */

#if DW_X86

/* The epilogue: none (the convolution alone), the affine map then linear, relu, relu6 or leaky in
 * registers, or (DW_LATER) the affine map and any activation by act_forward_affine per row. */
enum dw_mode { DW_RAW, DW_LINEAR, DW_RELU, DW_RELU6, DW_LEAKY, DW_LATER };
struct dw_epi {
    const float *scale, *shift; /* one float each (scale NULL: 1); shift NULL: DW_RAW */
    enum activation act;
    enum dw_mode mode;
};

/* Output columns rounded up to whole vectors (the tail is computed on zeros and dropped) and the
 * floats of a ring row: stride 1 the padded row P[j] = x[j - pw], j < ow8 + 8; stride 2 its even
 * and odd columns E[i] = P[2i] then O[i] = P[2i + 1], ow8 + 8 of each. */
static int dw_ow8(const struct im2col_geom *g)
{
    return (g->ow + 7) & ~7;
}

static int dw_row_floats(const struct im2col_geom *g)
{
    return g->sw * (dw_ow8(g) + 8);
}

static int dw_fast_fits(const struct im2col_geom *g)
{
    return g->kh == 3 && g->kw == 3 && g->dh == 1 && g->dw == 1 && g->sh == g->sw && g->sw <= 2 &&
           g->ph <= 2 && g->pw <= 2 && g->ow <= DW_ROW_FLOATS && dw_row_floats(g) <= DW_ROW_FLOATS;
}

struct dw_ring {
    float *row[4]; /* 3 slots, then zeros */
    int tag[3];    /* image row in each slot, or -1 */
};

/* Floats of a ring (4 rows), rounded up to whole cache lines. */
static size_t dw_ring_floats(const struct im2col_geom *g)
{
    return (4 * (size_t)dw_row_floats(g) + 15) & ~(size_t)15;
}

/* A ring on store (4 * dw_row_floats(g) floats, the caller's scratch), zeroed: the padding
 * columns are never written afterwards. */
static void dw_ring_init(struct dw_ring *r, float *store, const struct im2col_geom *g)
{
    size_t n = (size_t)dw_row_floats(g);
    memset(store, 0, sizeof(float) * 4 * n);
    for (int i = 0; i < 4; i++)
        r->row[i] = store + (size_t)i * n;
    r->tag[0] = r->tag[1] = r->tag[2] = -1;
}

/* Stride 2: e[i] = x[2i - pw] and o[i] = x[2i + 1 - pw] for the cells of x[0 .. n). */
static void dw_split_scalar(float *e, float *o, const float *x, int n, int pw, int c0, int c1)
{
    for (int c = c0; c < c1 && c < n; c++) {
        int j = c + pw;
        (j & 1 ? o : e)[j >> 1] = x[c];
    }
}

/* dw_split_scalar with vectors in the middle: 16 cells from c = 2i - pw at a time, each pair of
 * vectors shuffled into its 8 even and 8 odd cells. */
DW_AVX2 static void dw_split_avx2(float *e, float *o, const float *x, int n, int pw)
{
    int i = (pw + 1) / 2, c = 2 * i - pw; /* the first i with c >= 0 */
    dw_split_scalar(e, o, x, n, pw, 0, c);
    for (; c + 16 <= n; i += 8, c += 16) {
        __m256 a = _mm256_loadu_ps(x + c), b = _mm256_loadu_ps(x + c + 8);
        __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 od = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xd8));
        od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xd8));
        _mm256_storeu_ps(e + i, ev);
        _mm256_storeu_ps(o + i, od);
    }
    dw_split_scalar(e, o, x, n, pw, c, n);
}

/* The ring row holding image row iy (copied in if it is not there yet), zeros outside the plane.
 * Only the columns some output reads are copied (fewer than W when the plane is wider). */
static const float *dw_ring_row(struct dw_ring *r, const float *plane, const struct im2col_geom *g,
                                int iy)
{
    if (iy < 0 || iy >= g->h)
        return r->row[3];
    int slot = iy % 3, half = dw_ow8(g) + 8;
    float *dst = r->row[slot];
    if (r->tag[slot] == iy)
        return dst;
    r->tag[slot] = iy;
    const float *x = plane + (size_t)iy * (size_t)g->w;
    int n = CN_MIN(g->w, g->sw * half - g->pw);
    if (g->sw == 1) {
        memcpy(dst + g->pw, x, sizeof(float) * (size_t)n);
        return dst;
    }
    dw_split_avx2(dst, dst + half, x, n, g->pw);
    return dst;
}

struct dw_vepi {
    __m256 s, t, six, leak;
    enum dw_mode mode;
};

DW_AVX2 static inline __m256 dw_apply(__m256 a, const struct dw_vepi *e)
{
    if (e->mode == DW_RAW || e->mode == DW_LATER)
        return a;
    __m256 v = _mm256_add_ps(_mm256_mul_ps(e->s, a), e->t), zero = _mm256_setzero_ps();
    switch (e->mode) {
    case DW_RELU: /* as act_apply, operand order included: -0 and NaN give 0 */
        return _mm256_max_ps(v, zero);
    case DW_RELU6: /* NaN and -0 pass through, as in act_apply */
        return _mm256_min_ps(e->six, _mm256_max_ps(zero, v));
    case DW_LEAKY:
        return _mm256_blendv_ps(_mm256_mul_ps(e->leak, v), v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
    default:
        return v;
    }
}

/* o[x .. x+8) = a, or its first ow - x lanes at the row's end. */
DW_AVX2 static inline void dw_store(float *o, int x, int ow, __m256 a)
{
    if (x + 8 <= ow) {
        _mm256_storeu_ps(o + x, a);
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, a);
    memcpy(o + x, t, sizeof(float) * (size_t)(ow - x));
}

/* The nine taps of 8 output columns from x at stride 1: sum over ki, kj of w[3ki + kj] *
 * r[ki][x + kj], in tap order. */
DW_AVX2 static inline __m256 dw3_taps_s1(const float *const r[3], const __m256 w[9], int x)
{
        __m256 a = _mm256_mul_ps(w[0], _mm256_loadu_ps(r[0] + x));
        a = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(r[0] + x + 1), a);
        a = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(r[0] + x + 2), a);
        a = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(r[1] + x), a);
        a = _mm256_fmadd_ps(w[4], _mm256_loadu_ps(r[1] + x + 1), a);
        a = _mm256_fmadd_ps(w[5], _mm256_loadu_ps(r[1] + x + 2), a);
        a = _mm256_fmadd_ps(w[6], _mm256_loadu_ps(r[2] + x), a);
        a = _mm256_fmadd_ps(w[7], _mm256_loadu_ps(r[2] + x + 1), a);
        a = _mm256_fmadd_ps(w[8], _mm256_loadu_ps(r[2] + x + 2), a);
    return a;
}

/* One output row at stride 1: o[x] = sum over ki, kj of w[3ki + kj] * r[ki][x + kj]. */
DW_AVX2 static void dw3_row_s1(float *o, const float *const r[3], const __m256 w[9], int ow,
                               const struct dw_vepi *e)
{
    for (int x = 0; x < ow; x += 8) {
        dw_store(o, x, ow, dw_apply(dw3_taps_s1(r, w, x), e));
    }
}

/* One output row at stride 2 on even/odd rows (E at r, O at r + half):
 * o[x] = sum over ki of w[3ki] E[x] + w[3ki + 1] O[x] + w[3ki + 2] E[x + 1]. */
DW_AVX2 static void dw3_row_s2(float *o, const float *const r[3], int half, const __m256 w[9],
                               int ow, const struct dw_vepi *e)
{
    for (int x = 0; x < ow; x += 8) {
        __m256 a = _mm256_mul_ps(w[0], _mm256_loadu_ps(r[0] + x));
        a = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(r[0] + half + x), a);
        a = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(r[0] + x + 1), a);
        a = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(r[1] + x), a);
        a = _mm256_fmadd_ps(w[4], _mm256_loadu_ps(r[1] + half + x), a);
        a = _mm256_fmadd_ps(w[5], _mm256_loadu_ps(r[1] + x + 1), a);
        a = _mm256_fmadd_ps(w[6], _mm256_loadu_ps(r[2] + x), a);
        a = _mm256_fmadd_ps(w[7], _mm256_loadu_ps(r[2] + half + x), a);
        a = _mm256_fmadd_ps(w[8], _mm256_loadu_ps(r[2] + x + 1), a);
        dw_store(o, x, ow, dw_apply(a, e));
    }
}

DW_AVX2 static void dw3_plane_avx2(float *out, const float *plane, const float *k, float *ws,
                                   const struct im2col_geom *g, const struct dw_epi *ep)
{
    struct dw_ring ring;
    dw_ring_init(&ring, ws, g);
    __m256 w[9];
    for (int i = 0; i < 9; i++)
        w[i] = _mm256_set1_ps(k[i]);
    struct dw_vepi e = {_mm256_set1_ps(ep->scale ? *ep->scale : 1.f),
                        _mm256_set1_ps(ep->shift ? *ep->shift : 0.f), _mm256_set1_ps(6.f),
                        _mm256_set1_ps(.1f), ep->mode};
    for (int oy = 0; oy < g->oh; oy++) {
        const float *r[3];
        for (int ki = 0; ki < 3; ki++)
            r[ki] = dw_ring_row(&ring, plane, g, oy * g->sh - g->ph + ki);
        float *o = out + (size_t)oy * (size_t)g->ow;
        if (g->sw == 1)
            dw3_row_s1(o, r, w, g->ow, &e);
        else
            dw3_row_s2(o, r, dw_ow8(g) + 8, w, g->ow, &e);
        if (e.mode == DW_LATER)
            act_forward_affine(o, o, 1, (size_t)g->ow, ep->scale, ep->shift, ep->act);
    }
}
/* Grouped 3x3 forward on flattened bands. A band of output rows [oy0, oy0 + n) of one group is
 * convolved from a zero-padded copy of the input rows it reads, all the group's channels one
 * after another: at stride 1 the padded rows P[r][m] = x[oy0 + r - ph][m - pw] (r < n + 2), rows
 * of wr = OW + 2 floats; at stride 2 the four phase planes Q_ab[i][j] = P[2(oy0 + i) + a][2j + b]
 * (i <= n), rows of wr = OW + 1, in the order Q00, Q01, Q10, Q11. Output (oy0 + i, ox) is then
 * the flattened position q = i * wr + ox, and tap (ki, kj) reads the band at q plus a constant
 * (stride 1: ki * wr + kj; stride 2: the plane of (ki & 1, kj & 1), plus (ki >> 1) * wr +
 * (kj >> 1)): every tap of a vector of 8 outputs is one plain load per channel, whatever the
 * stride. The output vectors start at multiples of 8 in each row (lanes past OW are computed on
 * zeros or the next row's cells and dropped at the store). Register block: DG_FM = 4 filters x
 * DG_FV = 3 vectors (12 accumulators; the vectors may lie in different rows, so rows of 8 or 16
 * columns still fill it), each input vector loaded once for the block's filters, whose weights
 * are packed [c][tap][DG_FM] so each broadcast reads one pointer at a fixed offset; the epilogue
 * in registers, one store. The full block is assembly on x86-64 (dg_block3: GCC spills at 16
 * live vector registers), the shorter last blocks of a band (and every block elsewhere) 4 x 2 in
 * intrinsics. Padding <= 2 keeps every tap of a kept output inside its row (ox + 2 < wr at
 * stride 1, ox + 1 < wr at stride 2). */
#define DG_MR 4 /* the data gradient's block: channels */
#define DG_NV 2 /* and vectors */
#define DG_FM 4 /* the forward's block: filters (dg_block3 is written for 4) */
#if defined(__x86_64__)
#define DG_ASM 1
#define DG_FV 3 /* and vectors at most */
#else
#define DG_ASM 0
#define DG_FV 2
#endif
#ifndef DG_BUF
#define DG_BUF 16384 /* floats of a packed band, all channels */
#endif
#ifndef DG_TQ
#define DG_TQ 2048 /* flattened positions of a band */
#endif
#define DG_SLACK 16 /* zeros after each packed plane: what the last blocks read past it */
#define DG_MAX_CG 64
#ifndef DG_HINT
#define DG_HINT _MM_HINT_T0
#endif

struct dg_plan {
    int wr;   /* floats of a packed row (stride 1) or phase row (stride 2) */
    int nb;   /* output rows of a band (the last may have fewer) */
    int ps;   /* floats of the packed rows (stride 1) or of one phase plane (stride 2) */
    int cs;   /* floats of one channel's packed band */
    int lead; /* backward: zeros before each filter's packed dout band */
};

/* Output rows per band: as many as DG_BUF and DG_TQ hold, evened out over the output; 0 if
 * not even one row fits. */
static int dg_plan_of(struct dg_plan *p, const struct im2col_geom *g)
{
    int s2 = g->sw == 2, planes = s2 ? 4 : 1;
    p->wr = g->ow + (s2 ? 1 : 2);
    long per = DG_BUF / ((long)planes * g->c) - DG_SLACK; /* floats of one plane's rows */
    long nb = CN_MIN(per / p->wr - (s2 ? 1 : 2), DG_TQ / p->wr);
    if (nb < 1 || g->c > DG_MAX_CG)
        return 0;
    int bands = (int)((g->oh + nb - 1) / nb);
    p->nb = (g->oh + bands - 1) / bands;
    p->ps = (p->nb + (s2 ? 1 : 2)) * p->wr + DG_SLACK;
    p->cs = planes * p->ps;
    return 1;
}

/* One packed row, all wr floats (and up to 7 past them, which the next row or the slack
 * takes): stride 1 d[m] = x[m - pw]; zeros outside x[0 .. n); x NULL: zeros. */
DW_AVX2 static void dg_row_s1(float *d, const float *x, int n, int pw, int wr)
{
    if (!x) {
        memset(d, 0, sizeof(float) * (size_t)wr);
        return;
    }
    for (int m = 0; m < pw; m++)
        d[m] = 0.f;
    /* by vectors, the last one masked (and its zeros past n stored): a memcpy call per row
     * took about 8 % of ResNeXt's first grouped layer in a profile */
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + pw + i, _mm256_loadu_ps(x + i));
    if (i < n) {
        __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - i), lane);
        _mm256_storeu_ps(d + pw + i, _mm256_maskload_ps(x + i, in));
    }
    for (int m = pw + n; m < wr; m++)
        d[m] = 0.f;
}

/* Cells x[c .. c + 8), zeros outside [0, n), for c > -8: a masked load from max(c, 0) (no cell
 * outside x is read), its lanes moved up by -c when c < 0 (only a row's first vector). */
DW_AVX2 static inline __m256 dg_cells8(const float *x, int c, int n)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int c0 = CN_MAX(c, 0);
    if (c0 >= n)
        return _mm256_setzero_ps();
    __m256 v = _mm256_maskload_ps(x + c0, _mm256_cmpgt_epi32(_mm256_set1_epi32(n - c0), lane));
    if (c >= 0)
        return v;
    __m256i idx = _mm256_add_epi32(lane, _mm256_set1_epi32(c)); /* lane L holds x[c + L] */
    v = _mm256_permutevar8x32_ps(v, idx);
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1))));
}

/* Stride 2: the even and odd columns e[j] = x[2j - pw], o[j] = x[2j + 1 - pw] as dg_row_s1, 16
 * cells at a time, those at the row's ends (before x[0], at or past x[n]) by dg_cells8. (Packing
 * takes about half of a stride-2 forward; its first 16 cells one at a time were a hot spot.) */
DW_AVX2 static void dg_row_s2(float *e, float *o, const float *x, int n, int pw, int wr)
{
    if (!x) {
        memset(e, 0, sizeof(float) * (size_t)wr);
        memset(o, 0, sizeof(float) * (size_t)wr);
        return;
    }
    for (int j = 0; j < wr; j += 8) {
        int c = 2 * j - pw;
        __m256 a, b;
        if (c >= 0 && c + 16 <= n) {
            a = _mm256_loadu_ps(x + c);
            b = _mm256_loadu_ps(x + c + 8);
        } else {
            a = dg_cells8(x, c, n);
            b = dg_cells8(x, c + 8, n);
        }
        __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
        __m256 od = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xd8));
        od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xd8));
        _mm256_storeu_ps(e + j, ev);
        _mm256_storeu_ps(o + j, od);
    }
}

/* Asks for the cache lines of x[0 .. n) ahead of their use. */
static void dg_prefetch(const float *x, int n)
{
    for (int i = 0; i < n; i += 16)
        _mm_prefetch((const char *)(x + i), DG_HINT);
    _mm_prefetch((const char *)(x + n - 1), DG_HINT);
}

/* The packed band of output rows from oy0 (see above) into buf (g->c * p->cs floats): every
 * row written whole, the slack after each plane zeroed. Each input row read asks for the row
 * the next band reads in its place: the input is read once, often from memory (a layer's input
 * outgrows the caches), and the band's convolution then hides the wait. */
DW_AVX2 static void dg_pack(float *buf, const float *x, const struct im2col_geom *g,
                            const struct dg_plan *p, int oy0)
{
    size_t plane = (size_t)g->h * (size_t)g->w, wr = (size_t)p->wr;
    int s2 = g->sw == 2, rows = p->nb + (s2 ? 1 : 2), planes = s2 ? 4 : 1;
    int n = CN_MIN(g->w, 2 * p->wr - g->pw); /* stride 2: the cells some output reads */
    for (int c = 0; c < g->c; c++) {
        const float *xc = x + (size_t)c * plane;
        float *bc = buf + (size_t)c * (size_t)p->cs;
        for (int r = 0; r < rows * (s2 ? 2 : 1); r++) {
            int a = s2 ? r & 1 : 0, i = s2 ? r >> 1 : r; /* rows in order */
            int iy = (s2 ? 2 * (oy0 + i) + a : oy0 + i) - g->ph;
            const float *xr = iy >= 0 && iy < g->h ? xc + (size_t)iy * (size_t)g->w : NULL;
            float *d = bc + (size_t)(2 * a) * (size_t)p->ps + (size_t)i * wr;
            int ahead = iy + (s2 ? 2 : 1) * p->nb;
            if (xr && ahead < g->h)
                dg_prefetch(xc + (size_t)ahead * (size_t)g->w, s2 ? n : g->w);
            if (s2)
                dg_row_s2(d, d + p->ps, xr, n, g->pw, p->wr);
            else
                dg_row_s1(d, xr, g->w, g->pw, p->wr);
        }
        for (int k = 0; k < planes; k++)
            memset(bc + (size_t)k * (size_t)p->ps + (size_t)rows * wr, 0, sizeof(float) * DG_SLACK);
    }
}

/* Filters [f0, f0 + DG_FM) of k [fg][cg][9] as wp[c][tap][DG_FM], zeros past fg. */
static void dg_pack_w(float *wp, const float *k, int f0, int fg, int cg)
{
    for (int c = 0; c < cg; c++)
        for (int t = 0; t < 9; t++)
            for (int fi = 0; fi < DG_FM; fi++) {
                int f = f0 + fi;
                wp[((size_t)c * 9 + (size_t)t) * DG_FM + (size_t)fi] =
                    f < fg ? k[((size_t)f * (size_t)cg + (size_t)c) * 9 + (size_t)t] : 0.f;
            }
}

/* Where a block's output vectors go: vector j starts at flattened position q[j] (row i[j], column
 * x[j] of the band), and at o[j] in filter 0's output plane. */
struct dg_vecs {
    int q[DG_FV], x[DG_FV];
    float *o[DG_FV];
};

/* The convolution at the band's flattened positions v->q[j] .. + 8 (j < nv <= 2) by filters
 * [f0, f0 + DG_FM) of wp, through the epilogue into out (filter f's plane P floats after
 * filter 0's), the lanes past OW dropped; nv is a constant once inlined. */
DW_AVX2 __attribute__((always_inline)) static inline void
dg_block(const struct dg_vecs *v, const float *b, const float *wp, int cg, const int off[9], int cs,
         int nv, int nf, size_t P, int ow, const struct dw_vepi e[DG_FM])
{
    __m256 acc[DG_FM][2];
    const float *bj[2] = {b + v->q[0], b + v->q[nv > 1 ? 1 : 0]};
    for (int f = 0; f < DG_FM; f++)
        acc[f][0] = acc[f][1] = _mm256_setzero_ps();
    for (int c = 0; c < cg; c++, bj[0] += cs, bj[1] += cs, wp += 9 * DG_FM)
        for (int t = 0; t < 9; t++) {
            __m256 x[2] = {_mm256_loadu_ps(bj[0] + off[t]), _mm256_loadu_ps(bj[1] + off[t])};
            for (int f = 0; f < DG_FM; f++) {
                __m256 w = _mm256_broadcast_ss(wp + t * DG_FM + f);
                for (int j = 0; j < nv && j < 2; j++)
                    acc[f][j] = _mm256_fmadd_ps(w, x[j], acc[f][j]);
            }
        }
    for (int f = 0; f < nf; f++)
        for (int j = 0; j < nv && j < 2; j++)
            dw_store(v->o[j] + (size_t)f * P, v->x[j], ow, dw_apply(acc[f][j], &e[f]));
}

#if DG_ASM
/* The full block (4 filters x 3 vectors, 12 accumulators) in assembly. GCC, given it in
 * intrinsics, kept one accumulator on the stack and reloaded inputs as memory operands: 0.77
 * loads per multiply-add where the block needs 7 per 12 (0.58), and it ran no faster than 4 x 2
 * (whose 0.75 it matched). Here ymm12-14 hold a tap's three input vectors, ymm15 one broadcast
 * weight: 8-13 % faster than 4 x 2 on ResNeXt-50's shapes with the band in cache. */
#define DG_F3(a, b, c)                                                                             \
    "vfmadd231ps %%ymm12, %%ymm15, %[" a "]\n\t"                                                   \
    "vfmadd231ps %%ymm13, %%ymm15, %[" b "]\n\t"                                                   \
    "vfmadd231ps %%ymm14, %%ymm15, %[" c "]\n\t"
/* tap t: its three loads at address A(j) of vector j, then the four filters' weights */
#define DG_TAP_(A0, A1, A2, t)                                                                     \
    "vmovups " A0 ", %%ymm12\n\t"                                                                  \
    "vmovups " A1 ", %%ymm13\n\t"                                                                  \
    "vmovups " A2 ", %%ymm14\n\t"                                                                  \
    "vbroadcastss " #t "*16(%[w]), %%ymm15\n\t" DG_F3(                                             \
        "a00", "a01", "a02") "vbroadcastss " #t                                                    \
                             "*16+4(%[w]), %%ymm15\n\t" DG_F3(                                     \
                                 "a10", "a11",                                                     \
                                 "a12") "vbroadcastss " #t                                         \
                                        "*16+8(%[w]), %%ymm15\n\t" DG_F3(                          \
                                            "a20", "a21",                                          \
                                            "a22") "vbroadcastss " #t                              \
                                                   "*16+12(%[w]), %%ymm15\n\t" DG_F3("a30", "a31", \
                                                                                     "a32")
#define DG_TAP(at, t) DG_TAP_(at, t)
#define DG_AT(d, i) #d "(%[b0]" i ")", #d "(%[b1]" i ")", #d "(%[b2]" i ")"
/* stride 1: tap (ki, kj) at ki * wr + kj (i1 = wr, i2 = 2 wr, in bytes); stride 2: at
 * ro[ki] + co[kj] with ro = (0, 2 ps, wr), co = (0, ps, 1): i1..i5 = ps, 2 ps, 3 ps, wr, wr + ps */
#define DG_TAPS_S1                                                                                 \
    DG_TAP(DG_AT(0, ""), 0)                                                                        \
    DG_TAP(DG_AT(4, ""), 1) DG_TAP(DG_AT(8, ""), 2) DG_TAP(DG_AT(0, ",%[i1]"), 3)                  \
        DG_TAP(DG_AT(4, ",%[i1]"), 4) DG_TAP(DG_AT(8, ",%[i1]"), 5) DG_TAP(DG_AT(0, ",%[i2]"), 6)  \
            DG_TAP(DG_AT(4, ",%[i2]"), 7) DG_TAP(DG_AT(8, ",%[i2]"), 8)
#define DG_TAPS_S2                                                                                 \
    DG_TAP(DG_AT(0, ""), 0)                                                                        \
    DG_TAP(DG_AT(0, ",%[i1]"), 1) DG_TAP(DG_AT(4, ""), 2) DG_TAP(DG_AT(0, ",%[i2]"), 3)            \
        DG_TAP(DG_AT(0, ",%[i3]"), 4) DG_TAP(DG_AT(4, ",%[i2]"), 5) DG_TAP(DG_AT(0, ",%[i4]"), 6)  \
            DG_TAP(DG_AT(0, ",%[i5]"), 7) DG_TAP(DG_AT(4, ",%[i4]"), 8)
#define DG_Z(a) "vxorps %[" a "], %[" a "], %[" a "]\n\t"
#define DG_LOOP(taps)                                                                              \
    DG_Z("a00")                                                                                    \
    DG_Z("a01") DG_Z("a02") DG_Z("a10") DG_Z("a11") DG_Z("a12") DG_Z("a20") DG_Z("a21")            \
        DG_Z("a22") DG_Z("a30") DG_Z("a31") DG_Z("a32") "1:\n\t" taps "add %[cs], %[b0]\n\t"       \
                                                        "add %[cs], %[b1]\n\t"                     \
                                                        "add %[cs], %[b2]\n\t"                     \
                                                        "add $144, %[w]\n\t"                       \
                                                        "dec %[n]\n\t"                             \
                                                        "jnz 1b\n\t"
#define DG_ACC_OUT                                                                                 \
    [a00] "=&x"(a00), [a01] "=&x"(a01), [a02] "=&x"(a02), [a10] "=&x"(a10), [a11] "=&x"(a11),      \
        [a12] "=&x"(a12), [a20] "=&x"(a20), [a21] "=&x"(a21), [a22] "=&x"(a22), [a30] "=&x"(a30),  \
        [a31] "=&x"(a31), [a32] "=&x"(a32), [b0] "+r"(b0), [b1] "+r"(b1), [b2] "+r"(b2),           \
        [w] "+r"(w), [n] "+r"(n)

DW_AVX2 static void dg_block3(const struct dg_vecs *v, const float *b, const float *wp, int cg,
                              const struct dg_plan *p, int s, int nf, size_t P, int ow,
                              const struct dw_vepi e[DG_FM])
{
    __m256 a00, a01, a02, a10, a11, a12, a20, a21, a22, a30, a31, a32;
    const float *b0 = b + v->q[0], *b1 = b + v->q[1], *b2 = b + v->q[2], *w = wp;
    long n = cg, cs = 4L * p->cs, wr = 4L * p->wr, ps = 4L * p->ps;
    if (s == 1)
        __asm__(DG_LOOP(DG_TAPS_S1)
                : DG_ACC_OUT
                : [cs] "r"(cs), [i1] "r"(wr), [i2] "r"(2 * wr)
                : "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    else
        __asm__(DG_LOOP(DG_TAPS_S2)
                : DG_ACC_OUT
                : [cs] "r"(cs), [i1] "r"(ps), [i2] "r"(2 * ps), [i3] "r"(3 * ps), [i4] "r"(wr),
                  [i5] "r"(wr + ps)
                : "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    const __m256 acc[DG_FM][3] = {
        {a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
    for (int f = 0; f < nf; f++)
        for (int j = 0; j < 3; j++)
            dw_store(v->o[j] + (size_t)f * P, v->x[j], ow, dw_apply(acc[f][j], &e[f]));
}
#endif

/* The taps' offsets into a packed band (see above). */
static void dg_offsets(int off[9], const struct dg_plan *p, int s)
{
    const int ro[3] = {0, s == 1 ? p->wr : 2 * p->ps, s == 1 ? 2 * p->wr : p->wr};
    const int co[3] = {0, s == 1 ? 1 : p->ps, s == 1 ? 2 : 1};
    for (int t = 0; t < 9; t++)
        off[t] = ro[t / 3] + co[t % 3];
}

/* All n rows of a band's outputs (filters [f0, f0 + nf)) in blocks of DG_FV vectors, the last
 * block shorter: every vector starts at a multiple of 8 in its row. */
DW_AVX2 static void dg_blocks(float *out, const float *b, const float *wp, int n, int oy0, int nf,
                              const struct im2col_geom *g, const struct dg_plan *p,
                              const struct dw_vepi e[DG_FM])
{
    size_t P = (size_t)g->oh * (size_t)g->ow;
    int off[9], nvr = (g->ow + 7) / 8, nvec = n * nvr, i = 0, x = 0;
    dg_offsets(off, p, g->sw);
    struct dg_vecs v;
    for (int k = 0; k < nvec;) {
        int nv = CN_MIN(DG_FV, nvec - k);
        for (int j = 0; j < nv; j++, k++) {
            v.q[j] = i * p->wr + x;
            v.x[j] = x;
            v.o[j] = out + (size_t)(oy0 + i) * (size_t)g->ow;
            x += 8;
            if (x >= g->ow)
                x = 0, i++;
        }
#if DG_ASM
        if (nv == 3) {
            dg_block3(&v, b, wp, g->c, p, g->sw, nf, P, g->ow, e);
            continue;
        }
#endif
        if (nv == 2)
            dg_block(&v, b, wp, g->c, off, p->cs, 2, nf, P, g->ow, e);
        else
            dg_block(&v, b, wp, g->c, off, p->cs, 1, nf, P, g->ow, e);
    }
}

/* The epilogue vectors of filters [f0, f0 + DG_FM) (1 and 0 past fg). */
DW_AVX2 static void dg_epi(struct dw_vepi e[DG_FM], int f0, int fg, const struct dw_epi *ep)
{
    for (int fi = 0; fi < DG_FM; fi++) {
        int f = f0 + fi, in = f < fg;
        float sc = in && ep->scale ? ep->scale[f] : 1.f, sh = in && ep->shift ? ep->shift[f] : 0.f;
        e[fi] = (struct dw_vepi){_mm256_set1_ps(sc), _mm256_set1_ps(sh), _mm256_set1_ps(6.f),
                                 _mm256_set1_ps(.1f), ep->mode};
    }
}

/* Floats of a scratch piece of n floats: rounded up to whole cache lines, plus a line of slack. */
static size_t dg_piece(size_t n)
{
    return ((n + 15) & ~(size_t)15) + 16;
}

/* The forward's scratch: the packed band (g->c * cs), then one block's packed weights. */
static size_t dg_fwd_floats(const struct dg_plan *p, const struct im2col_geom *g)
{
    return dg_piece((size_t)g->c * (size_t)p->cs) + dg_piece((size_t)g->c * 9 * DG_FM);
}

DW_AVX2 static void dw_group_avx2(float *out, const float *x, const float *k, float *ws, int fg,
                                  const struct im2col_geom *g, const struct dw_epi *ep)
{
    struct dw_vepi e[DG_FM];
    struct dg_plan p;
    CN_ASSERT(dg_plan_of(&p, g));
    float *buf = ws, *wp = ws + dg_piece((size_t)g->c * (size_t)p.cs);
    size_t P = (size_t)g->oh * (size_t)g->ow;
    for (int oy0 = 0; oy0 < g->oh; oy0 += p.nb) {
        int n = CN_MIN(p.nb, g->oh - oy0);
        dg_pack(buf, x, g, &p, oy0);
        for (int f0 = 0; f0 < fg; f0 += DG_FM) {
            int nf = CN_MIN(DG_FM, fg - f0);
            dg_pack_w(wp, k, f0, fg, g->c);
            if (oy0 == 0 && f0 + DG_FM < fg) /* the next block's weights, read from memory once */
                dg_prefetch(k + (size_t)(f0 + DG_FM) * (size_t)g->c * 9,
                            CN_MIN(DG_FM, fg - f0 - DG_FM) * g->c * 9);
            dg_epi(e, f0, fg, ep);
            dg_blocks(out + (size_t)f0 * P, buf, wp, n, oy0, nf, g, &p, e);
            for (int f = f0; f < f0 + nf && ep->mode == DW_LATER; f++)
                act_forward_affine(out + f * P + (size_t)oy0 * (size_t)g->ow,
                                   out + f * P + (size_t)oy0 * (size_t)g->ow, 1,
                                   (size_t)n * (size_t)g->ow, ep->scale ? ep->scale + f : NULL,
                                   ep->shift + f, ep->act);
        }
    }
}

/* o[x .. x+8) += a, or its first ow - x lanes at the row's end. */
DW_AVX2 static inline void dw_store_add(float *o, int x, int ow, __m256 a)
{
    if (x + 8 <= ow) {
        _mm256_storeu_ps(o + x, _mm256_add_ps(_mm256_loadu_ps(o + x), a));
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, a);
    for (int i = 0; i < ow - x; i++)
        o[x + i] += t[i];
}

/* Backward 3x3. The data gradient at stride 1 is a forward convolution of dout, zero-padded by
 * 2 - p, with the kernel turned by 180 degrees: dx[iy][ix] += sum k[ki][kj] dout[iy + ph - ki]
 * [ix + pw - kj]; dw_adjoint_geom is that convolution's geometry (dout is its plane, dx its
 * output). At stride 2 the rows of dx of one parity of iy + ph take kernel rows 0 and 2 (dout
 * rows (iy + ph) / 2 and one above), the others row 1; within a row, m = ix + pw even takes taps
 * 0 and 2 (dout columns m / 2 and m / 2 - 1), odd m tap 1: both halves as vectors over q = m / 2
 * on a dout row padded by one column (D[q + 1] = dout[q]), interleaved into a row buffer, added
 * to dx. The kernel gradient runs the forward's ring over the input: per output row, nine
 * accumulators of dout * (tap's input vector), summed across lanes at the end. */
static void dw_adjoint_geom(struct im2col_geom *a, const struct im2col_geom *g)
{
    int s2 = g->sw == 2;
    *a = *g; /* c = 1, 3x3, dilation 1 */
    a->h = g->oh;
    a->w = g->ow;
    a->sh = a->sw = 1;
    a->ph = s2 ? 0 : 2 - g->ph;
    a->pw = s2 ? 1 : 2 - g->pw;
    a->oh = g->h;
    a->ow = s2 ? (g->w + g->pw + 1) / 2 : g->w;
}

/* One row of dx at stride 1: o[x] += sum over ki, kj of w[3ki + kj] * r[ki][x + kj]. */
DW_AVX2 static void dw3_row_s1_add(float *o, const float *const r[3], const __m256 w[9], int ow)
{
    for (int x = 0; x < ow; x += 8) {
        dw_store_add(o, x, ow, dw3_taps_s1(r, w, x));
    }
}

/* One row of dx at stride 2 into t (t[m] for m = ix + pw in [0, 2 * q8)): nr dout rows r[j]
 * padded by one column, each with its kernel row w + 3 * ki[j]. */
DW_AVX2 static void dw3_row_s2_data(float *t, const float *const r[2], const int ki[2], int nr,
                                    const __m256 w[9], int q8)
{
    for (int q = 0; q < q8; q += 8) {
        __m256 e = _mm256_setzero_ps(), o = _mm256_setzero_ps();
        for (int j = 0; j < nr; j++) {
            __m256 d0 = _mm256_loadu_ps(r[j] + q), d1 = _mm256_loadu_ps(r[j] + q + 1);
            const __m256 *wr = w + 3 * ki[j];
            e = _mm256_fmadd_ps(wr[0], d1, e);
            e = _mm256_fmadd_ps(wr[2], d0, e);
            o = _mm256_fmadd_ps(wr[1], d1, o);
        }
        __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
        _mm256_storeu_ps(t + 2 * q, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(t + 2 * q + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
}

DW_AVX2 static void dw3_data_avx2(float *dplane, const float *dout, const float *k, float *ws,
                                  const struct im2col_geom *g)
{
    struct im2col_geom a;
    dw_adjoint_geom(&a, g);
    struct dw_ring ring;
    dw_ring_init(&ring, ws, &a);
    float *t = ws + dw_ring_floats(&a); /* one interleaved row at stride 2 */
    __m256 w[9];
    for (int i = 0; i < 9; i++)
        w[i] = _mm256_set1_ps(g->sw == 1 ? k[8 - i] : k[i]);
    for (int iy = 0; iy < g->h; iy++) {
        float *o = dplane + (size_t)iy * (size_t)g->w;
        if (g->sw == 1) {
            const float *r[3];
            for (int ki = 0; ki < 3; ki++)
                r[ki] = dw_ring_row(&ring, dout, &a, iy - a.ph + ki);
            dw3_row_s1_add(o, r, w, g->w);
            continue;
        }
        int m = iy + g->ph, nr = 0, ki[2];
        const float *r[2];
        for (int kr = m & 1; kr < 3; kr += 2) {
            r[nr] = dw_ring_row(&ring, dout, &a, (m - kr) / 2);
            ki[nr++] = kr;
        }
        dw3_row_s2_data(t, r, ki, nr, w, dw_ow8(&a));
        for (int ix = 0; ix < g->w; ix++)
            o[ix] += t[ix + g->pw];
    }
}

/* The sum of a's eight lanes. */
DW_AVX2 static inline float dw_hsum(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

DW_AVX2 static void dw3_kernel_avx2(float *dk, const float *dout, const float *plane, float *ws,
                                    const struct im2col_geom *g)
{
    struct dw_ring ring;
    dw_ring_init(&ring, ws, g);
    __m256 acc[9];
    for (int i = 0; i < 9; i++)
        acc[i] = _mm256_setzero_ps();
    int half = dw_ow8(g) + 8, tail = g->ow & 7;
    const int off[3] = {0, g->sw == 1 ? 1 : half, g->sw == 1 ? 2 : 1};
    __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int oy = 0; oy < g->oh; oy++) {
        const float *r[3], *d = dout + (size_t)oy * (size_t)g->ow;
        for (int ki = 0; ki < 3; ki++)
            r[ki] = dw_ring_row(&ring, plane, g, oy * g->sh - g->ph + ki);
        for (int x = 0; x < g->ow; x += 8) {
            __m256 dv = x + 8 <= g->ow ? _mm256_loadu_ps(d + x) : _mm256_maskload_ps(d + x, mask);
            for (int ki = 0; ki < 3; ki++) {
                if (r[ki] == ring.row[3])
                    continue; /* outside the plane: zeros */
                for (int kj = 0; kj < 3; kj++)
                    acc[3 * ki + kj] =
                        _mm256_fmadd_ps(dv, _mm256_loadu_ps(r[ki] + x + off[kj]), acc[3 * ki + kj]);
            }
        }
    }
    for (int i = 0; i < 9; i++)
        dk[i] += dw_hsum(acc[i]);
}

/* Grouped 3x3 backward on the forward's bands. The band of dout is packed flattened too, Dq_f[q]
 * = dout_f[oy0 + i][ox] at q = i * wr + ox, zeros at ox >= OW and for p->lead floats before and
 * DG_TRAIL after (every read below of a position outside the band finds a zero). Kernel
 * gradient: dk[f][c][t] += sum over q of Dq_f[q] * B_c[q + off_t] (B the packed input, off_t the
 * forward's tap offsets; the dropped positions add zeros), in blocks of 2 filters x one kernel
 * row's 3 taps x 2 interleaved vectors of q (12 accumulators), summed across lanes at the end.
 * Data gradient: dB_c[m] = sum over filters f and taps t reading packed cell m of k[f][c][t] *
 * Dq_f[m - off_t], the forward's adjoint within the band, per packed plane (stride 1 its one
 * plane and all 9 taps; stride 2 plane (a, b) the taps with ki = a, kj = b mod 2, at offsets
 * (ki >> 1) * wr + (kj >> 1)), by the forward's register block with filters for channels and 4
 * channels for filters; then each band's packed rows are added into dx (input rows two bands
 * share get both bands' parts). */
/* Floats of the packed input band, of the dout band, and of dB's 4 channels, and positions of a
 * band: larger than the forward's (in the caller's scratch, no longer on the stack), which cut
 * the stride-2 layers' bands to a few rows, each paying the kernel gradient's lane sums: 8192 ->
 * 16384 floats and 2048 -> 4096 positions took ResNeXt-50's seven grouped shapes (32 groups,
 * both gradients, 1 thread, best of 3 x 40) from 17.8 to 13.8 ms, 2x on some stride-2 shapes;
 * 32768 measured no better (the bands spill out of L2). */
#ifndef DG_BB
#define DG_BB 16384
#endif
#ifndef DG_TQB
#define DG_TQB 4096
#endif
#define DG_TRAIL 32
#define DG_MAX_FG 64

/* Floats of one filter's packed dout band of nb rows. */
static int dg_dq_floats(const struct dg_plan *p, int nb)
{
    return p->lead + nb * p->wr + 2 * p->wr + DG_TRAIL;
}

/* The backward bands: the forward's layout with DG_BB for each buffer; 0 if no row fits. */
static int dg_plan_back(struct dg_plan *p, const struct im2col_geom *g, int fg)
{
    int s2 = g->sw == 2, planes = s2 ? 4 : 1, e = s2 ? 1 : 2, fg2 = (fg + 1) & ~1;
    p->wr = g->ow + (s2 ? 1 : 2);
    p->lead = (2 * p->wr + 2 + 7) & ~7;
    long by_x = (DG_BB / ((long)planes * CN_MAX(g->c, 4)) - DG_SLACK) / p->wr - e;
    long by_d = ((long)DG_BB / fg2 - p->lead - 2 * p->wr - DG_TRAIL) / p->wr;
    long nb = CN_MIN(CN_MIN(by_x, by_d), DG_TQB / p->wr);
    if (nb < 1 || g->c > DG_MAX_CG || fg > DG_MAX_FG)
        return 0;
    int bands = (int)((g->oh + nb - 1) / nb);
    p->nb = (g->oh + bands - 1) / bands;
    p->ps = (p->nb + e) * p->wr + DG_SLACK;
    p->cs = planes * p->ps;
    return 1;
}

/* Rows [oy0, oy0 + n) of dout's fg planes (and zeros for filter fg when fg is odd) into dq. */
static void dg_pack_dout(float *dq, const float *dout, int fg, const struct im2col_geom *g,
                         const struct dg_plan *p, int oy0, int n)
{
    size_t P = (size_t)g->oh * (size_t)g->ow, ds = (size_t)dg_dq_floats(p, p->nb);
    for (int f = 0; f < ((fg + 1) & ~1); f++) {
        float *d = dq + (size_t)f * ds;
        memset(d, 0, sizeof(float) * ds);
        for (int i = 0; f < fg && i < n; i++)
            memcpy(d + p->lead + (size_t)i * (size_t)p->wr,
                   dout + (size_t)f * P + (size_t)(oy0 + i) * (size_t)g->ow,
                   sizeof(float) * (size_t)g->ow);
    }
}

/* dk[f][c][3ki + kj] += sum over q < nq of Dq_f[q] * B_c[q + off] for filters f0, f0 + 1 (the
 * second only below fg), every channel and tap; s a constant once inlined. */
DW_AVX2 __attribute__((always_inline)) static inline void
dg_kgrad(float *dk, const float *dq, const float *b, int f0, int fg, int cg, int nq,
         const struct dg_plan *p, int s)
{
    const int ro[3] = {0, s == 1 ? p->wr : 2 * p->ps, s == 1 ? 2 * p->wr : p->wr};
    const int co[3] = {0, s == 1 ? 1 : p->ps, s == 1 ? 2 : 1};
    size_t ds = (size_t)dg_dq_floats(p, p->nb);
    const float *d0 = dq + (size_t)f0 * ds + p->lead, *d1 = d0 + ds;
    for (int c = 0; c < cg; c++)
        for (int ki = 0; ki < 3; ki++) {
            const float *r = b + (size_t)c * (size_t)p->cs + ro[ki];
            __m256 acc[2][3][2];
            for (int i = 0; i < 12; i++)
                acc[i / 6][i / 2 % 3][i % 2] = _mm256_setzero_ps();
            for (int q = 0; q < nq; q += 16)
                for (int u = 0; u < 2 && q + 8 * u < nq; u++) {
                    __m256 a0 = _mm256_loadu_ps(d0 + q + 8 * u);
                    __m256 a1 = _mm256_loadu_ps(d1 + q + 8 * u);
                    for (int kj = 0; kj < 3; kj++) {
                        __m256 v = _mm256_loadu_ps(r + co[kj] + q + 8 * u);
                        acc[0][kj][u] = _mm256_fmadd_ps(a0, v, acc[0][kj][u]);
                        acc[1][kj][u] = _mm256_fmadd_ps(a1, v, acc[1][kj][u]);
                    }
                }
            for (int fi = 0; fi < 2 && f0 + fi < fg; fi++)
                for (int kj = 0; kj < 3; kj++)
                    dk[((size_t)(f0 + fi) * (size_t)cg + (size_t)c) * 9 + (size_t)(3 * ki + kj)] +=
                        dw_hsum(_mm256_add_ps(acc[fi][kj][0], acc[fi][kj][1]));
        }
}

DW_AVX2 static void dg_kgrad_s1(float *dk, const float *dq, const float *b, int f0, int fg, int cg,
                                int nq, const struct dg_plan *p)
{
    dg_kgrad(dk, dq, b, f0, fg, cg, nq, p, 1);
}

DW_AVX2 static void dg_kgrad_s2(float *dk, const float *dq, const float *b, int f0, int fg, int cg,
                                int nq, const struct dg_plan *p)
{
    dg_kgrad(dk, dq, b, f0, fg, cg, nq, p, 2);
}

/* Channels [c0, c0 + DG_MR) of k [fg][cg][9] as wq[f][tap][DG_MR], zeros past cg. */
static void dg_pack_wt(float *wq, const float *k, int c0, int fg, int cg)
{
    for (int f = 0; f < fg; f++)
        for (int t = 0; t < 9; t++)
            for (int ci = 0; ci < DG_MR; ci++) {
                int c = c0 + ci;
                wq[((size_t)f * 9 + (size_t)t) * DG_MR + (size_t)ci] =
                    c < cg ? k[((size_t)f * (size_t)cg + (size_t)c) * 9 + (size_t)t] : 0.f;
            }
}

/* The taps of one packed plane: their kernel indices and offsets dr * wr + dc back into Dq. */
struct dg_taps {
    int n, t[9], dr[9], dc[9];
};

/* dst[ci * cs + j] = sum over f and the plane's taps of wq[f][t][ci] * Dq_f[j - off], j in
 * [0, 8 * nv) of the block at dq; nv a constant once inlined. */
DW_AVX2 __attribute__((always_inline)) static inline void
dg_dblock(float *dst, const float *dq, const float *wq, int fg, const struct dg_taps *tp,
          const struct dg_plan *p, int nv)
{
    size_t ds = (size_t)dg_dq_floats(p, p->nb);
    __m256 acc[DG_MR][DG_NV];
    for (int ci = 0; ci < DG_MR; ci++)
        for (int j = 0; j < DG_NV; j++)
            acc[ci][j] = _mm256_setzero_ps();
    for (int f = 0; f < fg; f++, dq += ds, wq += 9 * DG_MR)
        for (int i = 0; i < tp->n; i++) {
            const float *r = dq - tp->dr[i] * p->wr - tp->dc[i], *w = wq + tp->t[i] * DG_MR;
            __m256 wv[DG_MR];
            for (int ci = 0; ci < DG_MR; ci++)
                wv[ci] = _mm256_broadcast_ss(w + ci);
            for (int j = 0; j < nv && j < DG_NV; j++) {
                __m256 v = _mm256_loadu_ps(r + 8 * j);
                for (int ci = 0; ci < DG_MR; ci++)
                    acc[ci][j] = _mm256_fmadd_ps(wv[ci], v, acc[ci][j]);
            }
        }
    for (int ci = 0; ci < DG_MR; ci++)
        for (int j = 0; j < nv && j < DG_NV; j++)
            _mm256_storeu_ps(dst + (size_t)ci * (size_t)p->cs + 8 * j, acc[ci][j]);
}

/* One packed plane of 4 channels' dB (at dst, rows cells) from the packed dout. */
DW_AVX2 static void dg_dplane(float *dst, const float *dq, const float *wq, int fg,
                              const struct dg_taps *tp, const struct dg_plan *p, int cells)
{
    int m = 0;
    for (; m + 8 * DG_NV <= cells; m += 8 * DG_NV)
        dg_dblock(dst + m, dq + m, wq, fg, tp, p, DG_NV);
    for (; m < cells; m += 8)
        dg_dblock(dst + m, dq + m, wq, fg, tp, p, 1);
}

/* dx_c += channel c's packed gradient db (the band from oy0; layout as dg_pack); t holds one
 * interleaved row at stride 2 (2 * wr + 32 floats). */
DW_AVX2 static void dg_unpack(float *dxc, const float *db, float *t, const struct im2col_geom *g,
                              const struct dg_plan *p, int oy0)
{
    int s2 = g->sw == 2, rows = p->nb + (s2 ? 1 : 2);
    for (int r = 0; r < rows * (s2 ? 2 : 1); r++) {
        int a = s2 ? r / rows : 0, i = s2 ? r % rows : r;
        int iy = (s2 ? 2 * (oy0 + i) + a : oy0 + i) - g->ph;
        if (iy < 0 || iy >= g->h)
            continue;
        const float *src = db + (size_t)(2 * a) * (size_t)p->ps + (size_t)i * (size_t)p->wr;
        if (s2) { /* t[2j + b] = plane (a, b)[j] */
            for (int j = 0; j < p->wr; j += 8) {
                __m256 e = _mm256_loadu_ps(src + j), o = _mm256_loadu_ps(src + p->ps + j);
                __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
                _mm256_storeu_ps(t + 2 * j, _mm256_permute2f128_ps(lo, hi, 0x20));
                _mm256_storeu_ps(t + 2 * j + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
            }
            src = t;
        }
        src += g->pw;
        float *o = dxc + (size_t)iy * (size_t)g->w;
        int x = 0;
        for (; x + 8 <= g->w; x += 8)
            _mm256_storeu_ps(o + x,
                             _mm256_add_ps(_mm256_loadu_ps(o + x), _mm256_loadu_ps(src + x)));
        for (; x < g->w; x++)
            o[x] += src[x];
    }
}

/* The packed planes and their taps (see above). */
static int dg_taps_of(struct dg_taps tp[4], int s)
{
    if (s == 1) {
        tp[0].n = 9;
        for (int t = 0; t < 9; t++)
            tp[0].t[t] = t, tp[0].dr[t] = t / 3, tp[0].dc[t] = t % 3;
        return 1;
    }
    for (int pl = 0; pl < 4; pl++) {
        tp[pl].n = 0;
        for (int t = 0; t < 9; t++)
            if ((t / 3 & 1) == pl / 2 && (t % 3 & 1) == pl % 2) {
                int i = tp[pl].n++;
                tp[pl].t[i] = t, tp[pl].dr[i] = t / 3 >> 1, tp[pl].dc[i] = t % 3 >> 1;
            }
    }
    return 4;
}

/* The backward's scratch pieces: the packed input band (g->c * cs), the packed dout bands (fg
 * rounded up to even), dB of DG_MR channels, their packed weights, and one unpacked row. */
struct dg_back_ws {
    float *b, *dq, *db, *wq, *t;
};

static size_t dg_back_layout(struct dg_back_ws *w, float *ws, const struct dg_plan *p,
                             const struct im2col_geom *g, int fg)
{
    size_t n[5] = {(size_t)g->c * (size_t)p->cs,
                   (size_t)((fg + 1) & ~1) * (size_t)dg_dq_floats(p, p->nb),
                   (size_t)DG_MR * (size_t)p->cs, (size_t)fg * 9 * DG_MR, 2 * (size_t)p->wr + 32};
    float **at[5] = {&w->b, &w->dq, &w->db, &w->wq, &w->t};
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        *at[i] = ws ? ws + off : NULL;
        off += dg_piece(n[i]);
    }
    return off;
}

DW_AVX2 static void dg_back_avx2(float *dk, float *dx, const float *dout, const float *x,
                                 const float *k, float *ws, int fg, const struct im2col_geom *g)
{
    struct dg_plan p;
    struct dg_taps tp[4];
    struct dg_back_ws w;
    CN_ASSERT(dg_plan_back(&p, g, fg));
    dg_back_layout(&w, ws, &p, g, fg);
    float *b = w.b, *dq = w.dq, *db = w.db, *wq = w.wq;
    int planes = dg_taps_of(tp, g->sw), rows = p.nb + (g->sw == 2 ? 1 : 2);
    size_t plane = (size_t)g->h * (size_t)g->w;
    for (int oy0 = 0; oy0 < g->oh; oy0 += p.nb) {
        int n = CN_MIN(p.nb, g->oh - oy0), nq = n * p.wr;
        dg_pack(b, x, g, &p, oy0);
        dg_pack_dout(dq, dout, fg, g, &p, oy0, n);
        for (int f0 = 0; f0 < fg; f0 += 2)
            if (g->sw == 1)
                dg_kgrad_s1(dk, dq, b, f0, fg, g->c, nq, &p);
            else
                dg_kgrad_s2(dk, dq, b, f0, fg, g->c, nq, &p);
        for (int c0 = 0; dx && c0 < g->c; c0 += DG_MR) {
            dg_pack_wt(wq, k, c0, fg, g->c);
            for (int pl = 0; pl < planes; pl++)
                dg_dplane(db + (size_t)pl * (size_t)p.ps, dq + p.lead, wq, fg, &tp[pl], &p,
                          rows * p.wr);
            for (int ci = 0; ci < DG_MR && c0 + ci < g->c; ci++)
                dg_unpack(dx + (size_t)(c0 + ci) * plane, db + (size_t)ci * (size_t)p.cs, w.t, g,
                          &p, oy0);
        }
    }
}

/* Whether the forward takes the 3x3 fast path. */
static int dw_forward_ok(const struct im2col_geom *g)
{
    return dw_fast_fits(g) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Whether the 3x3 backward kernels take the fast path: the forward's conditions, and for the
 * data gradient its adjoint geometry's ring rows too. */
static int dw_back_fits(const struct im2col_geom *g, int data)
{
    if (!dw_forward_ok(g))
        return 0;
    struct im2col_geom a;
    dw_adjoint_geom(&a, g);
    return !data || (g->w <= DW_ROW_FLOATS && dw_row_floats(&a) <= DW_ROW_FLOATS);
}

static enum dw_mode dw_mode_of(const float *shift, enum activation act)
{
    if (!shift)
        return DW_RAW;
    switch (act) {
    case ACT_LINEAR: return DW_LINEAR;
    case ACT_RELU: return DW_RELU;
    case ACT_RELU6: return DW_RELU6;
    case ACT_LEAKY: return DW_LEAKY;
    default: return DW_LATER;
    }
}
#endif

/* The plane kernels' scratch: the ring, and for the data gradient at stride 2 one interleaved
 * row after its ring (see dw3_data_avx2). */
size_t depthwise_scratch(const struct im2col_geom *g)
{
#if DW_X86
    size_t n = dw_forward_ok(g) ? dw_ring_floats(g) : 0;
    if (dw_back_fits(g, 1)) {
        struct im2col_geom a;
        dw_adjoint_geom(&a, g);
        n = CN_MAX(n, dw_ring_floats(&a) + 2 * (size_t)dw_ow8(&a));
    }
    return n;
#else
    (void)g;
    return 0;
#endif
}

void depthwise_forward_act(float *out, const float *plane, const float *k, float *ws,
                           const struct im2col_geom *g, const float *scale, const float *shift,
                           enum activation act)
{
#if DW_X86
    if (dw_forward_ok(g)) {
        CN_ASSERT(ws);
        struct dw_epi ep = {scale, shift, act, dw_mode_of(shift, act)};
        dw3_plane_avx2(out, plane, k, ws, g, &ep);
        return;
    }
#else
    (void)ws;
#endif
    dw_forward_generic(out, plane, k, g);
    if (shift)
        act_forward_affine(out, out, 1, (size_t)g->oh * (size_t)g->ow, scale, shift, act);
}

void depthwise_forward(float *out, const float *plane, const float *k, float *ws,
                       const struct im2col_geom *g)
{
    depthwise_forward_act(out, plane, k, ws, g, NULL, NULL, ACT_LINEAR);
}

int depthwise_group_fits(const struct im2col_geom *g)
{
#if DW_X86
    struct im2col_geom g1 = *g;
    g1.c = 1;
    struct dg_plan p;
    return dw_fast_fits(&g1) && dg_plan_of(&p, g) && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
#else
    (void)g;
    return 0;
#endif
}

size_t depthwise_group_scratch(const struct im2col_geom *g)
{
#if DW_X86
    struct dg_plan p;
    return depthwise_group_fits(g) && dg_plan_of(&p, g) ? dg_fwd_floats(&p, g) : 0;
#else
    (void)g;
    return 0;
#endif
}

void depthwise_group_forward(float *out, const float *x, const float *k, float *ws, int fg,
                             const struct im2col_geom *g, const float *scale, const float *shift,
                             enum activation act)
{
    CN_ASSERT(depthwise_group_fits(g) && ws);
#if DW_X86
    struct dw_epi ep = {scale, shift, act, dw_mode_of(shift, act)};
    dw_group_avx2(out, x, k, ws, fg, g, &ep);
#else
    (void)out, (void)x, (void)k, (void)fg, (void)scale, (void)shift, (void)act;
#endif
}

int depthwise_group_back_fits(const struct im2col_geom *g, int fg)
{
#if DW_X86
    struct dg_plan p;
    return depthwise_group_fits(g) && dg_plan_back(&p, g, fg);
#else
    (void)g, (void)fg;
    return 0;
#endif
}

size_t depthwise_group_back_scratch(const struct im2col_geom *g, int fg)
{
#if DW_X86
    struct dg_plan p;
    struct dg_back_ws w;
    if (!depthwise_group_back_fits(g, fg) || !dg_plan_back(&p, g, fg))
        return 0;
    return dg_back_layout(&w, NULL, &p, g, fg);
#else
    (void)g, (void)fg;
    return 0;
#endif
}

void depthwise_group_backward(float *dk, float *dx, const float *dout, const float *x,
                              const float *k, float *ws, int fg, const struct im2col_geom *g)
{
    CN_ASSERT(depthwise_group_back_fits(g, fg) && ws);
#if DW_X86
    dg_back_avx2(dk, dx, dout, x, k, ws, fg, g);
#else
    (void)dk, (void)dx, (void)dout, (void)x, (void)k, (void)ws;
#endif
}

void depthwise_backward_data(float *dplane, const float *dout, const float *k, float *ws,
                             const struct im2col_geom *g)
{
#if DW_X86
    if (dw_back_fits(g, 1)) {
        CN_ASSERT(ws);
        dw3_data_avx2(dplane, dout, k, ws, g);
        return;
    }
#else
    (void)ws;
#endif
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

void depthwise_backward_kernel(float *dk, const float *dout, const float *plane, float *ws,
                               const struct im2col_geom *g)
{
#if DW_X86
    if (dw_back_fits(g, 0)) {
        CN_ASSERT(ws);
        dw3_kernel_avx2(dk, dout, plane, ws, g);
        return;
    }
#else
    (void)ws;
#endif
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

void depthwise_group_forward_naive(float *out, const float *x, const float *k, int fg,
                                   const struct im2col_geom *g)
{
    struct im2col_geom g1 = *g;
    g1.c = 1;
    size_t plane = (size_t)g->h * (size_t)g->w, kk = (size_t)g->kh * (size_t)g->kw;
    for (int f = 0; f < fg; f++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                double sum = 0;
                for (int c = 0; c < g->c; c++)
                    for (int t = 0; t < g->kh * g->kw; t++) {
                        long long cell = cell_of(&g1, t / g->kw, t % g->kw, oy, ox);
                        if (cell >= 0)
                            sum += (double)k[((size_t)f * (size_t)g->c + (size_t)c) * kk +
                                             (size_t)t] *
                                   x[(size_t)c * plane + (size_t)cell];
                    }
                out[((size_t)f * (size_t)g->oh + (size_t)oy) * (size_t)g->ow + (size_t)ox] =
                    (float)sum;
            }
}

void depthwise_group_backward_naive(float *dk, float *dx, const float *dout, const float *x,
                                    const float *k, int fg, const struct im2col_geom *g)
{
    struct im2col_geom g1 = *g;
    g1.c = 1;
    size_t plane = (size_t)g->h * (size_t)g->w, P = (size_t)g->oh * (size_t)g->ow;
    for (int f = 0; f < fg; f++)
        for (int c = 0; c < g->c; c++) {
            size_t at = ((size_t)f * (size_t)g->c + (size_t)c) * 9;
            depthwise_backward_kernel_naive(dk + at, dout + (size_t)f * P, x + (size_t)c * plane,
                                            &g1);
            if (dx)
                depthwise_backward_data_naive(dx + (size_t)c * plane, dout + (size_t)f * P, k + at,
                                              &g1);
        }
}
