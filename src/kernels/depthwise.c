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
 * row is copied once into a ring of three zero-padded rows on the stack (at stride 2 split into
 * its even and odd columns, so every tap reads 8 adjacent floats), then each block of 8 output
 * columns sums its 9 taps (times the channels of a group) in registers by FMA, in tap order, gets
 * the epilogue (affine map and activation) and is stored once: one pass over the output instead
 * of nine. Sums differ from the generic kernel's in rounding only (fused multiply-adds). The
 * grouped kernel keeps 4 filters x 2 column vectors of accumulators. The 3x3 backward kernels
 * reuse the ring: the data gradient as a forward convolution of the output gradient (stride 1:
 * the kernel turned by 180 degrees; stride 2: by column and row parity, interleaved), the kernel
 * gradient as nine vector accumulators over the plane (see dw_adjoint_geom).
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

/* The 3x3 fast path (AVX2+FMA): a padded copy of each input row in a ring of three on the
 * stack (each row copied once per plane), then per output row and block of 8 columns the nine
 * taps in registers, the epilogue, one store. See the file comment. */
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

/* A ring on store (4 * dw_row_floats(g) floats), zeroed: the padding columns are never written
 * afterwards. */
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

DW_AVX2 static void dw3_plane_avx2(float *out, const float *plane, const float *k,
                                   const struct im2col_geom *g, const struct dw_epi *ep)
{
    float store[4 * DW_ROW_FLOATS] __attribute__((aligned(32)));
    struct dw_ring ring;
    dw_ring_init(&ring, store, g);
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
/* Grouped 3x3: filters in blocks of DW_FB, each block's outputs in pairs of column vectors
 * (2 * DW_FB accumulators): per channel and tap two input loads and DW_FB broadcast weights feed
 * 2 * DW_FB multiply-adds. A block short of DW_FB filters reads zero weights, stores nothing. */
#define DW_FB 4
#define DW_GROUP_FLOATS 16384 /* the rings of all of a group's channels, on the stack */
#define DW_GROUP_MAX_CG 64

/* Output row o[f][x .. x + 8*nv) of DW_FB filters: nv = 1 or 2 column vectors (a constant once
 * inlined). w[fi]: filter fi's cg x 9 weights; rc[c * 3 + ki]: channel c's ring row for kernel
 * row ki; off[kj]: where tap kj's vector starts in a ring row (stride 2: in E or O). */
DW_AVX2 __attribute__((always_inline)) static inline void
dw_group_cols(float *const o[DW_FB], const float *const rc[], const float *const w[DW_FB], int cg,
              int x, int nv, const int off[3], int ow, const struct dw_vepi e[DW_FB])
{
    __m256 acc[DW_FB][2];
    for (int fi = 0; fi < DW_FB; fi++)
        acc[fi][0] = acc[fi][1] = _mm256_setzero_ps();
    for (int c = 0; c < cg; c++)
        for (int ki = 0; ki < 3; ki++) {
            const float *rr = rc[c * 3 + ki] + x;
            for (int kj = 0; kj < 3; kj++) {
                __m256 v0 = _mm256_loadu_ps(rr + off[kj]);
                __m256 v1 = nv > 1 ? _mm256_loadu_ps(rr + off[kj] + 8) : v0;
                for (int fi = 0; fi < DW_FB; fi++) {
                    __m256 wv = _mm256_broadcast_ss(w[fi] + c * 9 + ki * 3 + kj);
                    acc[fi][0] = _mm256_fmadd_ps(wv, v0, acc[fi][0]);
                    if (nv > 1)
                        acc[fi][1] = _mm256_fmadd_ps(wv, v1, acc[fi][1]);
                }
            }
        }
    for (int fi = 0; fi < DW_FB; fi++) {
        if (!o[fi])
            continue;
        dw_store(o[fi], x, ow, dw_apply(acc[fi][0], &e[fi]));
        if (nv > 1)
            dw_store(o[fi], x + 8, ow, dw_apply(acc[fi][1], &e[fi]));
    }
}

/* One output row oy of filters [f0, f0 + DW_FB) (those below fg). */
DW_AVX2 static void dw_group_row(float *out, const float *const rc[], const float *k,
                                 const float *zeros, int f0, int fg, int oy,
                                 const struct im2col_geom *g, const struct dw_epi *ep)
{
    size_t P = (size_t)g->oh * (size_t)g->ow, kc = (size_t)g->c * 9;
    float *o[DW_FB];
    const float *w[DW_FB];
    struct dw_vepi e[DW_FB];
    for (int fi = 0; fi < DW_FB; fi++) {
        int f = f0 + fi, in = f < fg;
        o[fi] = in ? out + (size_t)f * P + (size_t)oy * (size_t)g->ow : NULL;
        w[fi] = in ? k + (size_t)f * kc : zeros;
        float s = in && ep->scale ? ep->scale[f] : 1.f, t = in && ep->shift ? ep->shift[f] : 0.f;
        e[fi] = (struct dw_vepi){_mm256_set1_ps(s), _mm256_set1_ps(t), _mm256_set1_ps(6.f),
                                 _mm256_set1_ps(.1f), ep->mode};
    }
    int half = dw_ow8(g) + 8, x = 0;
    const int off[3] = {0, g->sw == 1 ? 1 : half, g->sw == 1 ? 2 : 1};
    for (; x + 8 < g->ow; x += 16)
        dw_group_cols(o, rc, w, g->c, x, 2, off, g->ow, e);
    if (x < g->ow)
        dw_group_cols(o, rc, w, g->c, x, 1, off, g->ow, e);
    for (int fi = 0; fi < DW_FB && ep->mode == DW_LATER; fi++)
        if (o[fi])
            act_forward_affine(o[fi], o[fi], 1, (size_t)g->ow, ep->scale ? ep->scale + f0 + fi
                                                                         : NULL,
                               ep->shift + f0 + fi, ep->act);
}

DW_AVX2 static void dw_group_avx2(float *out, const float *x, const float *k, int fg,
                                  const struct im2col_geom *g, const struct dw_epi *ep)
{
    float store[DW_GROUP_FLOATS] __attribute__((aligned(32)));
    static const float zeros[DW_GROUP_MAX_CG * 9];
    struct dw_ring ring[DW_GROUP_MAX_CG];
    const float *rc[DW_GROUP_MAX_CG * 3];
    size_t plane = (size_t)g->h * (size_t)g->w, rl = 4 * (size_t)dw_row_floats(g);
    for (int c = 0; c < g->c; c++)
        dw_ring_init(&ring[c], store + (size_t)c * rl, g);
    for (int oy = 0; oy < g->oh; oy++) {
        for (int c = 0; c < g->c; c++)
            for (int ki = 0; ki < 3; ki++)
                rc[c * 3 + ki] =
                    dw_ring_row(&ring[c], x + (size_t)c * plane, g, oy * g->sh - g->ph + ki);
        for (int f0 = 0; f0 < fg; f0 += DW_FB)
            dw_group_row(out, rc, k, zeros, f0, fg, oy, g, ep);
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

DW_AVX2 static void dw3_data_avx2(float *dplane, const float *dout, const float *k,
                                  const struct im2col_geom *g)
{
    float store[4 * DW_ROW_FLOATS] __attribute__((aligned(32)));
    float t[2 * DW_ROW_FLOATS];
    struct im2col_geom a;
    dw_adjoint_geom(&a, g);
    struct dw_ring ring;
    dw_ring_init(&ring, store, &a);
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

DW_AVX2 static void dw3_kernel_avx2(float *dk, const float *dout, const float *plane,
                                    const struct im2col_geom *g)
{
    float store[4 * DW_ROW_FLOATS] __attribute__((aligned(32)));
    struct dw_ring ring;
    dw_ring_init(&ring, store, g);
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

/* Whether the 3x3 backward kernels take the fast path: the forward's conditions, and for the
 * data gradient its adjoint geometry's ring rows too. */
static int dw_back_fits(const struct im2col_geom *g, int data)
{
    if (!dw_fast_fits(g) || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
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

void depthwise_forward_act(float *out, const float *plane, const float *k,
                           const struct im2col_geom *g, const float *scale, const float *shift,
                           enum activation act)
{
#if DW_X86
    if (dw_fast_fits(g) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        struct dw_epi ep = {scale, shift, act, dw_mode_of(shift, act)};
        dw3_plane_avx2(out, plane, k, g, &ep);
        return;
    }
#endif
    dw_forward_generic(out, plane, k, g);
    if (shift)
        act_forward_affine(out, out, 1, (size_t)g->oh * (size_t)g->ow, scale, shift, act);
}

void depthwise_forward(float *out, const float *plane, const float *k, const struct im2col_geom *g)
{
    depthwise_forward_act(out, plane, k, g, NULL, NULL, ACT_LINEAR);
}

int depthwise_group_fits(const struct im2col_geom *g)
{
#if DW_X86
    struct im2col_geom g1 = *g;
    g1.c = 1;
    return g->c <= DW_GROUP_MAX_CG && dw_fast_fits(&g1) &&
           (size_t)g->c * 4 * (size_t)dw_row_floats(g) <= DW_GROUP_FLOATS &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)g;
    return 0;
#endif
}

void depthwise_group_forward(float *out, const float *x, const float *k, int fg,
                             const struct im2col_geom *g, const float *scale, const float *shift,
                             enum activation act)
{
    CN_ASSERT(depthwise_group_fits(g));
#if DW_X86
    struct dw_epi ep = {scale, shift, act, dw_mode_of(shift, act)};
    dw_group_avx2(out, x, k, fg, g, &ep);
#else
    (void)out, (void)x, (void)k, (void)fg, (void)scale, (void)shift, (void)act;
#endif
}

void depthwise_backward_data(float *dplane, const float *dout, const float *k,
                             const struct im2col_geom *g)
{
#if DW_X86
    if (dw_back_fits(g, 1)) {
        dw3_data_avx2(dplane, dout, k, g);
        return;
    }
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

void depthwise_backward_kernel(float *dk, const float *dout, const float *plane,
                               const struct im2col_geom *g)
{
#if DW_X86
    if (dw_back_fits(g, 0)) {
        dw3_kernel_avx2(dk, dout, plane, g);
        return;
    }
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
