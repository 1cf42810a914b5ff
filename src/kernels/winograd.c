/* winograd.c - Winograd F(m x m, 3 x 3) convolution (contract in winograd.h) and the direct
 * references it is tested against.
 *
 * Math (Lavin & Gray 2015, Toom-Cook form): with interpolation points p_0 .. p_{a-2} and
 * infinity, the 1-D F(m, 3) is y = A^T [(G g) .* (B^T d)] for an a-sample input d and a 3-tap
 * filter g, where A^T[i][j] = p_j^i (last column e_{m-1}), G[j][k] = p_j^k / prod_{l!=j}(p_j -
 * p_l) (last row e_2), and row j of B^T holds the coefficients of prod_{l!=j}(x - p_l) (last row:
 * of prod_l (x - p_l)), lowest power first. The 2-D form nests it: Y = A^T [(G g G^T) .* (B^T d
 * B)] A, and summing the element-wise products over input channels makes one GEMM per element.
 * The tables below were generated from these formulas in exact fractions. Points 0, +-1, +-2
 * (Lavin's) and 0, +-1, +-1/2 give the same operation count; F(2x2) uses Lavin's signs.
 * Error in float32 (test_winograd, 64 -> 64 channels at 56x56, normal data; max |error| over
 * the sum of |terms| of an output): about 1.4e-6 for either F(4x4) point set (+-1/2 is no
 * better), 9e-8 for F(2x2), against 1.0e-7 for direct summation (im2col + GEMM).
 *
 * Vectors: transforms run on 8 lanes at once (GCC vector extensions; 8 tiles for the input and
 * output transforms, 8 input channels for the filter transform), compiled twice: for the build's
 * target (SSE2 on x86-64: each 8-lane operation is two) and for AVX2, chosen at run time by
 * __builtin_cpu_supports (the same operations, so the same bits; DenseNet-201's 128 -> 32 64x64
 * layer at one thread: about 3.6 -> 3.0 ms); with AVX-512 the input transform gathers its tiles by
 * masked loads and permutes (wino_gather_avx512: that layer 3.08 -> 2.81 ms, DenseNet-201's 3x3
 * layers 29.0 -> 26.1 ms at one thread). The coefficient tables are constants folded into
 * the fully unrolled loops, so zero coefficients cost nothing and +-1 become additions. Lanes past
 * the last tile or channel are computed on zeros and not stored.
 * Workspace per chunk of T tiles: V[C][a*a][T], then M[F][a*a][T], then 8 floats of slack (the
 * output transform reads whole 8-lane vectors of M), then the chunk's lane descriptors. The
 * GEMM of element xi reads its rows of V and writes its rows of M with a stride of a*a*T (GEMM
 * operands with a leading dimension): channel-major, so the input transform of one channel
 * fills one a*a*T block (about 25 KB, in L1) along its rows, instead of scattering half-lines
 * over a*a planes of C*T floats each, which missed the L2 on nearly every store and took 60 %
 * of a 128 -> 32 channel layer's time (6.0 -> 4.3 ms at one thread, with the loop by channel
 * below).
 */
#include "kernels/winograd.h"

#include <limits.h>
#include <string.h>

#include "core/common.h"
#include "kernels/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* The AVX2 and default-target transforms give the same bits only if neither contracts a * b + c
 * into an FMA: gcc does not under -std=c11, clang does unless told. */
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define WINO_LANES 8
#ifndef WINO_CHUNK_FLOATS
#define WINO_CHUNK_FLOATS ((size_t)1 << 20) /* V + M of one chunk: 4 MB, within the L3 */
#endif
#ifndef WINO_MIN_CHUNK
#define WINO_MIN_CHUNK 64                   /* tiles: narrower GEMMs lose more than cache gains */
#endif
#define WINO_MAX_PAD 65536
#define WINO_PAR_MIN 1e6 /* GEMM multiply-adds below which one thread does it all */

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef int v8i __attribute__((vector_size(32)));

const char *const winograd_variant_names[WINOGRAD_VARIANT_COUNT] = {
    "F(4x4,3x3)", "F(4x4,3x3) +-1/2", "F(2x2,3x3)"};

struct wino_mats {
    int m, a;
    float at[4][6]; /* m x a */
    float g[6][3];  /* a x 3 */
    float bt[6][6]; /* a x a */
};

static const struct wino_mats wino_f4 = {
    4,
    6,
    {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}},
    {{1.f / 4, 0, 0},
     {-1.f / 6, -1.f / 6, -1.f / 6},
     {-1.f / 6, 1.f / 6, -1.f / 6},
     {1.f / 24, 1.f / 12, 1.f / 6},
     {1.f / 24, -1.f / 12, 1.f / 6},
     {0, 0, 1}},
    {{4, 0, -5, 0, 1, 0},
     {0, -4, -4, 1, 1, 0},
     {0, 4, -4, -1, 1, 0},
     {0, -2, -1, 2, 1, 0},
     {0, 2, -1, -2, 1, 0},
     {0, 4, 0, -5, 0, 1}},
};

static const struct wino_mats wino_f4_half = {
    4,
    6,
    {{1, 1, 1, 1, 1, 0},
     {0, 1, -1, 0.5f, -0.5f, 0},
     {0, 1, 1, 0.25f, 0.25f, 0},
     {0, 1, -1, 0.125f, -0.125f, 1}},
    {{4, 0, 0},
     {2.f / 3, 2.f / 3, 2.f / 3},
     {2.f / 3, -2.f / 3, 2.f / 3},
     {-8.f / 3, -4.f / 3, -2.f / 3},
     {-8.f / 3, 4.f / 3, -2.f / 3},
     {0, 0, 1}},
    {{0.25f, 0, -1.25f, 0, 1, 0},
     {0, -0.25f, -0.25f, 1, 1, 0},
     {0, 0.25f, -0.25f, -1, 1, 0},
     {0, -0.5f, -1, 0.5f, 1, 0},
     {0, 0.5f, -1, -0.5f, 1, 0},
     {0, 0.25f, 0, -1.25f, 0, 1}},
};

static const struct wino_mats wino_f2 = {
    2,
    4,
    {{1, 1, 1, 0}, {0, 1, -1, -1}},
    {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}},
    {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
};

static const struct wino_mats *wino_mats_of(int variant)
{
    return variant == WINOGRAD_F4 ? &wino_f4 : variant == WINOGRAD_F4_HALF ? &wino_f4_half : &wino_f2;
}

/* sum over q < n of c[q] * x[q*stride]. With constant c (after inlining) zero terms vanish and
 * +-1 become additions. */
static inline __attribute__((always_inline)) void wino_dot(v8 *out, const float *c, int n,
                                                           const v8 *x, int stride)
{
    v8 s = {0};
    int first = 1;
#pragma GCC unroll 6
    for (int q = 0; q < n; q++) {
        float k = c[q];
        v8 t = x[q * stride];
        if (k == 0.f)
            continue;
        if (first)
            s = k == 1.f ? t : k == -1.f ? -t : k * t;
        else
            s = k == 1.f ? s + t : k == -1.f ? s - t : s + k * t;
        first = 0;
    }
    *out = s;
}

/* y[p x p] = L x L^T for L p x n (row stride ldl) and x n x n, 8 lanes per element. */
static inline __attribute__((always_inline)) void wino_sandwich(v8 *y, const float *L, int p,
                                                                int n, int ldl, const v8 *x)
{
    v8 t[6 * 6];
#pragma GCC unroll 6
    for (int i = 0; i < p; i++)
#pragma GCC unroll 6
        for (int r = 0; r < n; r++)
            wino_dot(&t[i * n + r], L + i * ldl, n, x + r, n);
#pragma GCC unroll 6
    for (int i = 0; i < p; i++)
#pragma GCC unroll 6
        for (int j = 0; j < p; j++)
            wino_dot(&y[i * p + j], L + j * ldl, n, t + i * n, 1);
}

int winograd_geom_init(struct winograd_geom *g, enum winograd_variant v, int batch, int c, int h,
                       int w, int f, int ph, int pw)
{
    if ((int)v < 0 || v >= WINOGRAD_VARIANT_COUNT || batch < 1 || c < 1 || h < 1 || w < 1 ||
        f < 1 || ph < -WINO_MAX_PAD || ph > WINO_MAX_PAD || pw < -WINO_MAX_PAD || pw > WINO_MAX_PAD)
        return -1;
    const struct wino_mats *mt = wino_mats_of(v);
    long long oh = (long long)h + 2LL * ph - 2, ow = (long long)w + 2LL * pw - 2;
    if (oh < 1 || ow < 1 || oh > INT_MAX || ow > INT_MAX)
        return -1;
    *g = (struct winograd_geom){.variant = v, .m = mt->m, .a = mt->a, .batch = batch, .c = c,
                                .h = h, .w = w, .f = f, .ph = ph, .pw = pw, .oh = (int)oh,
                                .ow = (int)ow};
    g->th = (g->oh + g->m - 1) / g->m;
    g->tw = (g->ow + g->m - 1) / g->m;
    g->tiles = (size_t)batch * (size_t)g->th * (size_t)g->tw;
    size_t per_tile = (size_t)g->a * g->a * ((size_t)c + (size_t)f);
    size_t chunk = CN_MAX(WINO_CHUNK_FLOATS / per_tile, WINO_MIN_CHUNK);
    chunk = chunk / WINO_LANES * WINO_LANES;
    if (chunk >= g->tiles)
        chunk = g->tiles;
    g->chunk = (int)CN_MIN(chunk, (size_t)INT_MAX / per_tile);
    if (g->chunk < 1 || (size_t)f * (size_t)c > INT_MAX)
        return -1;
    return 0;
}

int winograd_geom_data_grad(struct winograd_geom *g, const struct winograd_geom *fw)
{
    if (winograd_geom_init(g, (enum winograd_variant)fw->variant, fw->batch, fw->f, fw->oh,
                           fw->ow, fw->c, 2 - fw->ph, 2 - fw->pw))
        return -1;
    g->portable = fw->portable;
    return 0;
}

size_t winograd_filter_floats(const struct winograd_geom *g)
{
    return (size_t)g->a * g->a * gemm_packed_a_floats(g->f, g->c);
}

/* Where the tiles of one group of lanes sit: each lane's image offset in the input and its
 * output tile's offset, corner, clipped size and whether its input tile lies inside the image. */
struct wino_lane {
    size_t in, out;
    int y0, x0, inside, ni, nj;
};

static void wino_lanes(struct wino_lane *ln, const struct winograd_geom *g, size_t t, int nl)
{
    size_t per_img = (size_t)g->th * (size_t)g->tw;
    size_t in_img = (size_t)g->c * g->h * g->w, out_img = (size_t)g->f * g->oh * g->ow;
    for (int k = 0; k < nl; k++) {
        size_t b = (t + (size_t)k) / per_img, r = (t + (size_t)k) % per_img;
        int ty = (int)(r / (size_t)g->tw), tx = (int)(r % (size_t)g->tw);
        int y0 = ty * g->m - g->ph, x0 = tx * g->m - g->pw;
        ln[k] = (struct wino_lane){
            .in = b * in_img,
            .out = b * out_img + (size_t)ty * g->m * g->ow + (size_t)tx * g->m,
            .y0 = y0,
            .x0 = x0,
            .inside = y0 >= 0 && x0 >= 0 && y0 + g->a <= g->h && x0 + g->a <= g->w,
            .ni = CN_MIN(g->m, g->oh - ty * g->m),
            .nj = CN_MIN(g->m, g->ow - tx * g->m),
        };
    }
}

/* buf[i*a + j][k] = input tile element (i, j) of lane k in channel plane p (zero outside). */
static inline __attribute__((always_inline)) void
wino_gather(float (*buf)[WINO_LANES], const float *in, size_t plane_off,
            const struct wino_lane *ln, int nl, const struct winograd_geom *g, int a)
{
    for (int k = 0; k < WINO_LANES; k++) {
        if (k >= nl) {
            for (int q = 0; q < a * a; q++)
                buf[q][k] = 0.f;
            continue;
        }
        const float *p = in + ln[k].in + plane_off;
        int y0 = ln[k].y0, x0 = ln[k].x0, W = g->w;
        if (ln[k].inside) {
            const float *s = p + (size_t)y0 * W + x0;
#pragma GCC unroll 6
            for (int i = 0; i < a; i++)
#pragma GCC unroll 6
                for (int j = 0; j < a; j++)
                    buf[i * a + j][k] = s[(size_t)i * W + j];
            continue;
        }
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++) {
                int y = y0 + i, x = x0 + j;
                buf[i * a + j][k] =
                    y >= 0 && y < g->h && x >= 0 && x < W ? p[(size_t)y * W + x] : 0.f;
            }
    }
}

/* Whether the nl lanes are 8 tiles side by side in one row of tiles of one image (tile side
 * m), so that their input rows, and output rows, are runs of one image row. */
static inline int wino_one_row(const struct wino_lane *ln, int nl, int m)
{
    return nl == WINO_LANES && ln[7].in == ln[0].in && ln[7].y0 == ln[0].y0 &&
           ln[7].x0 == ln[0].x0 + 7 * m;
}

/* Shuffle indices (CN_SHUF8): the even and odd elements of two vectors; their halves
 * interleaved element by element (ZIP) and pair by pair (ZIP2). */
#define WINO_EVEN 0, 2, 4, 6, 8, 10, 12, 14
#define WINO_ODD 1, 3, 5, 7, 9, 11, 13, 15
#define WINO_ZIP_LO 0, 8, 1, 9, 2, 10, 3, 11
#define WINO_ZIP_HI 4, 12, 5, 13, 6, 14, 7, 15
#define WINO_ZIP2_LO 0, 1, 8, 9, 2, 3, 10, 11
#define WINO_ZIP2_HI 4, 5, 12, 13, 6, 7, 14, 15

/* Row y of plane p from column x0, n floats (zero outside the image): in place, or copied into
 * seg (n floats) where the run crosses a border; NULL when row y lies outside. */
static inline __attribute__((always_inline)) const float *
wino_row_run(const float *p, int y, int x0, int n, const struct winograd_geom *g, float *seg)
{
    if (y < 0 || y >= g->h)
        return NULL;
    const float *r = p + (size_t)y * g->w + x0;
    if (x0 >= 0 && x0 + n <= g->w)
        return r;
    for (int q = 0; q < n; q++)
        seg[q] = x0 + q >= 0 && x0 + q < g->w ? r[q] : 0.f;
    return seg;
}

/* x[i*4 + j][k] = element (i, j) of the 4x4 input tile of lane k, for F(2x2)'s 8 tiles side by
 * side from corner (y0, x0) of plane p (zero outside): each input row is one run of 18 floats
 * (a copy with zeros where it crosses the border), and column j of the 8 tiles its elements
 * j, j + 2, ..., j + 14: the even or odd ones of two vectors. Replaces 128 scalar loads and
 * stores per 8 tiles (wino_gather) by 4 loads and 4 shuffles a row. */
static inline __attribute__((always_inline)) void
wino_gather_f2_row(v8 *x, const float *p, int y0, int x0, const struct winograd_geom *g)
{
    for (int i = 0; i < 4; i++) {
        float seg[18];
        const float *r = wino_row_run(p, y0 + i, x0, 18, g, seg);
        if (!r) {
            for (int j = 0; j < 4; j++)
                x[i * 4 + j] = (v8){0};
            continue;
        }
        v8 a0 = *(const v8u *)(const void *)r, a1 = *(const v8u *)(const void *)(r + 8);
        v8 b0 = *(const v8u *)(const void *)(r + 2), b1 = *(const v8u *)(const void *)(r + 10);
        x[i * 4 + 0] = CN_SHUF8(a0, a1, WINO_EVEN);
        x[i * 4 + 1] = CN_SHUF8(a0, a1, WINO_ODD);
        x[i * 4 + 2] = CN_SHUF8(b0, b1, WINO_EVEN);
        x[i * 4 + 3] = CN_SHUF8(b0, b1, WINO_ODD);
    }
}

/* x[i*6 + j][k] = element (i, j) of the 6x6 input tile of lane k, for F(4x4)'s 8 tiles side by
 * side from corner (y0, x0) of plane p (zero outside), as wino_gather_f2_row: each input row one
 * run of 34 floats, column j of the 8 tiles its elements j, j + 4, ..., j + 28, picked from
 * four vectors by three shuffles (nothing past element 33 is read). */
static inline __attribute__((always_inline)) void
wino_gather_f4_row(v8 *x, const float *p, int y0, int x0, const struct winograd_geom *g)
{
    for (int i = 0; i < 6; i++) {
        float seg[34];
        const float *r = wino_row_run(p, y0 + i, x0, 34, g, seg);
        if (!r) {
            for (int j = 0; j < 6; j++)
                x[i * 6 + j] = (v8){0};
            continue;
        }
        for (int j = 0; j < 6; j++) {
            const float *c = r + j;
            v8 a = *(const v8u *)(const void *)c, b = *(const v8u *)(const void *)(c + 8);
            v8 e = *(const v8u *)(const void *)(c + 16), d = *(const v8u *)(const void *)(c + 21);
            x[i * 6 + j] = CN_SHUF8(CN_SHUF8(a, b, 0, 4, 8, 12, 0, 0, 0, 0),
                                    CN_SHUF8(e, d, 0, 4, 11, 15, 0, 0, 0, 0),
                                    0, 1, 2, 3, 8, 9, 10, 11);
        }
    }
}

/* Stores 8-lane vectors y[0 .. n) to dst + q*stride (lanes past nl dropped). */
static inline __attribute__((always_inline)) void wino_store(float *dst, size_t stride,
                                                             const v8 *y, int n, int nl)
{
    for (int q = 0; q < n; q++) {
        float *d = dst + (size_t)q * stride;
        if (nl == WINO_LANES) {
            *(v8u *)(void *)d = y[q];
        } else {
            for (int k = 0; k < nl; k++)
                d[k] = y[q][k];
        }
    }
}

/* V[xi][c][tl .. tl+nl) for channel c and the groups [grp0, grp1) of the chunk of T tiles (ln:
 * its lane descriptors, 8 per group): one channel at a time, so that each of the a*a planes of V
 * is written in order along its row of tiles (as many sequential streams as planes: scattered
 * half-line stores, missing the L2 on every line, took most of the transform's time). */
static inline __attribute__((always_inline)) void
wino_input_run(float *V, const float *in, const struct winograd_geom *g, size_t T, int c,
               size_t grp0, size_t grp1, const struct wino_lane *ln, const struct wino_mats *mt)
{
    const int a = mt->a;
    size_t plane = (size_t)g->h * g->w, stride = T;
    for (size_t grp = grp0; grp < grp1; grp++) {
        size_t tl = grp * WINO_LANES;
        int nl = (int)CN_MIN((size_t)WINO_LANES, T - tl);
        float buf[36][WINO_LANES] __attribute__((aligned(32)));
        v8 x[36], y[36];
        if (a == 4 && wino_one_row(ln + tl, nl, 2)) {
            wino_gather_f2_row(x, in + ln[tl].in + (size_t)c * plane, ln[tl].y0, ln[tl].x0, g);
        } else if (a == 6 && wino_one_row(ln + tl, nl, 4)) {
            wino_gather_f4_row(x, in + ln[tl].in + (size_t)c * plane, ln[tl].y0, ln[tl].x0, g);
        } else {
            wino_gather(buf, in, (size_t)c * plane, ln + tl, nl, g, a);
            memcpy(x, buf, sizeof(v8) * (size_t)(a * a));
        }
        wino_sandwich(y, &mt->bt[0][0], a, a, 6, x);
        wino_store(V + (size_t)c * a * a * T + tl, stride, y, a * a, nl);
    }
}

/* y[q] += the residual of each lane's outputs (valid ones only): the [shortcut]'s addition. */
static inline __attribute__((always_inline)) void
wino_add_res(v8 *y, const float *res, const struct wino_lane *ln, int nl, size_t fo,
             const struct winograd_geom *g, int m)
{
    for (int k = 0; k < nl; k++) {
        const float *r = res + ln[k].out + fo;
        int ni = CN_MIN(ln[k].ni, m), nj = CN_MIN(ln[k].nj, m); /* m: for the compiler */
        for (int i = 0; i < ni; i++)
            for (int j = 0; j < nj; j++)
                y[i * m + j][k] += r[(size_t)i * g->ow + j];
    }
}

/* y[q] = act(y[q]) for q < n: relu, leaky and relu6 by masks, exactly act_apply's z > 0 ? z : 0,
 * z > 0 ? z : .1f * z and z < 0 ? 0 : (z > 6 ? 6 : z) (NaN and -0 pass alike), without the
 * branch a scalar select mispredicts on signs; the others by act_apply. */
static inline __attribute__((always_inline)) void wino_act(v8 *y, int n, enum activation a)
{
    const v8 zero = {0}, six = zero + 6.f;
    for (int q = 0; q < n; q++) {
        v8 r = y[q];
        if (a == ACT_RELU) {
            r = (v8)((v8i)r & (r > zero));
        } else if (a == ACT_LEAKY) {
            v8i msk = r > zero;
            r = (v8)(((v8i)r & msk) | ((v8i)(.1f * r) & ~msk));
        } else if (a == ACT_RELU6) {
            v8i hi = r > six;
            r = (v8)((v8i)r & ~(r < zero));
            r = (v8)(((v8i)r & ~hi) | ((v8i)six & hi));
        } else if (a != ACT_LINEAR) {
            for (int k = 0; k < WINO_LANES; k++)
                r[k] = act_apply(a, r[k]);
        }
        y[q] = r;
    }
}

/* Stores one filter's m x m outputs y of the nl lanes: out (+)= y. */
static inline __attribute__((always_inline)) void
wino_output_store(float *out, const v8 *y, const struct wino_lane *ln, int nl, size_t fo,
                  const struct winograd_geom *g, int m, int accumulate)
{
    for (int k = 0; k < nl; k++) {
        float *o = out + ln[k].out + fo;
        int ni = CN_MIN(ln[k].ni, m), nj = CN_MIN(ln[k].nj, m); /* m: for the compiler */
        for (int i = 0; i < ni; i++)
            for (int j = 0; j < nj; j++) {
                size_t q = (size_t)i * g->ow + j;
                float v = y[i * m + j][k];
                o[q] = accumulate ? o[q] + v : v;
            }
    }
}

/* Rows i = 0, 1 of F(2x2)'s outputs y[i*2 + j][k] (lane k: columns 2k, 2k + 1) into o + i*ow
 * as runs of 16 floats, y[i*2] and y[i*2 + 1] interleaved; accumulate: o += them. */
static inline __attribute__((always_inline)) void wino_store_f2_row(float *o, const v8 *y,
                                                                    int ow, int accumulate)
{
    for (int i = 0; i < 2; i++) {
        v8u *d = (v8u *)(void *)(o + (size_t)i * ow);
        v8 a = CN_SHUF8(y[i * 2], y[i * 2 + 1], WINO_ZIP_LO);
        v8 b = CN_SHUF8(y[i * 2], y[i * 2 + 1], WINO_ZIP_HI);
        if (accumulate) {
            a = d[0] + a;
            b = d[1] + b;
        }
        d[0] = a;
        d[1] = b;
    }
}

/* Rows i < 4 of F(4x4)'s outputs y[i*4 + j][k] (lane k: columns 4k .. 4k + 3) into o + i*ow as
 * runs of 32 floats (a 4 x 8 transpose by shuffles); accumulate: o += them. */
static inline __attribute__((always_inline)) void wino_store_f4_row(float *o, const v8 *y,
                                                                    int ow, int accumulate)
{
    for (int i = 0; i < 4; i++) {
        const v8 *r = y + i * 4;
        v8 a = CN_SHUF8(r[0], r[1], WINO_ZIP_LO), b = CN_SHUF8(r[0], r[1], WINO_ZIP_HI);
        v8 c = CN_SHUF8(r[2], r[3], WINO_ZIP_LO), d = CN_SHUF8(r[2], r[3], WINO_ZIP_HI);
        v8 v[4] = {CN_SHUF8(a, c, WINO_ZIP2_LO), CN_SHUF8(a, c, WINO_ZIP2_HI),
                   CN_SHUF8(b, d, WINO_ZIP2_LO), CN_SHUF8(b, d, WINO_ZIP2_HI)};
        v8u *dst = (v8u *)(void *)(o + (size_t)i * ow);
        for (int q = 0; q < 4; q++)
            dst[q] = accumulate ? dst[q] + v[q] : v[q];
    }
}

/* Groups of 8 tiles one output-transform task covers: 128 tiles. */
#define WINO_OUTPUT_RUN 16

/* out (+)= A^T M A for the groups [grp0, grp1) of the chunk (at most WINO_OUTPUT_RUN), every
 * filter, edge tiles clipped; with ep (not with accumulate) out = act(scale[f] * that + bias[f]
 * + res), the product rounded first; tiles not in one full row stored by store
 * (wino_output_store or its AVX-512 form). Filters outer, groups inner: each of a filter's a*a rows
 * of M is then read along its run of tiles, instead of 32 bytes of each of F*a*a rows per group
 * (ResNet-18's 64-filter layers: most of the transform's time went to those loads). */
typedef void (*wino_store_fn)(float *out, const v8 *y, const struct wino_lane *ln, int nl,
                              size_t fo, const struct winograd_geom *g, int m, int accumulate);
static inline __attribute__((always_inline)) void
wino_output_run(float *out, const float *M, const struct winograd_geom *g, size_t T, size_t grp0,
                size_t grp1, const struct wino_lane *lanes, int accumulate,
                const struct winograd_epilogue *ep, const struct wino_mats *mt, wino_store_fn store)
{
    const int a = mt->a, m = mt->m;
    size_t plane = (size_t)g->oh * g->ow, stride = T;
    int full_row[WINO_OUTPUT_RUN];
    for (size_t grp = grp0; grp < grp1; grp++) {
        /* 8 tiles side by side, none clipped: each output row one run of 8m floats */
        const struct wino_lane *ln = lanes + grp * WINO_LANES;
        int nl = (int)CN_MIN((size_t)WINO_LANES, T - grp * WINO_LANES);
        full_row[grp - grp0] = (m == 2 || m == 4) && wino_one_row(ln, nl, m) && ln[7].ni == m &&
                               ln[7].nj == m;
    }
    for (int f = 0; f < g->f; f++)
        for (size_t grp = grp0; grp < grp1; grp++) {
            size_t tl = grp * WINO_LANES;
            int nl = (int)CN_MIN((size_t)WINO_LANES, T - tl);
            const struct wino_lane *ln = lanes + tl;
            v8 x[36], y[16];
            const float *src = M + (size_t)f * a * a * T + tl;
            for (int q = 0; q < a * a; q++)
                x[q] = *(const v8u *)(const void *)(src + (size_t)q * stride);
            wino_sandwich(y, &mt->at[0][0], m, a, 6, x);
            for (int q = 0; ep && q < m * m; q++) {
                if (ep->scale)
                    y[q] *= ep->scale[f];
                if (ep->bias)
                    y[q] += ep->bias[f];
            }
            if (ep && ep->res)
                wino_add_res(y, ep->res, ln, nl, (size_t)f * plane, g, m);
            if (ep)
                wino_act(y, m * m, ep->act);
            if (full_row[grp - grp0] && m == 2)
                wino_store_f2_row(out + ln[0].out + (size_t)f * plane, y, g->ow, accumulate);
            else if (full_row[grp - grp0])
                wino_store_f4_row(out + ln[0].out + (size_t)f * plane, y, g->ow, accumulate);
            else
                store(out, y, ln, nl, (size_t)f * plane, g, m, accumulate);
        }
}

/* Channels per run of the filter transform: its a*a planes are gathered in a buffer (36 x 32 x
 * 6 floats at most, 27 KB) and each stored in one piece. */
#define WINO_FILTER_RUN 32
_Static_assert(GEMM_PACK_ROWS <= WINO_LANES, "a packed panel of filters fits the lanes");

/* U[xi] (f0 + k, c) for the GEMM_PACK_ROWS filters of the packed panel from f0 (those from nl
 * on are zero: the panel's padding) and channels [c0, c1), which lie in one K block of
 * gemm_pack_a_all's layout, so that in each of U's a*a planes they are one run of
 * (c1 - c0) * GEMM_PACK_ROWS floats; rot: the data-gradient filters (w stored [g->c][g->f][3][3],
 * rotated by 180 degrees). One store per plane and run: stored element by element, the a*a
 * planes, a power of two apart for such counts, fell into one cache set and missed the L1 on
 * nearly every store (512 -> 512 channels by F(2x2) at one thread: 18.1 ms). */
static inline __attribute__((always_inline)) void
wino_filter_run(float *U, const float *w, const struct winograd_geom *g, int c0, int c1, int f0,
                int nl, int rot, const struct wino_mats *mt)
{
    enum { PR = GEMM_PACK_ROWS };
    float tmp[36][WINO_FILTER_RUN * PR];
    int aa = mt->a * mt->a;
    for (int c = c0; c < c1; c++) {
        float buf[9][WINO_LANES] __attribute__((aligned(32)));
        for (int k = 0; k < WINO_LANES; k++)
            for (int q = 0; q < 9; q++) {
                size_t f = (size_t)(f0 + k);
                buf[q][k] = k >= nl ? 0.f
                            : rot   ? w[((size_t)c * (size_t)g->f + f) * 9 + (size_t)(8 - q)]
                                    : w[(f * (size_t)g->c + (size_t)c) * 9 + (size_t)q];
            }
        v8 x[9], y[36];
        memcpy(x, buf, sizeof x);
        wino_sandwich(y, &mt->g[0][0], mt->a, 3, 3, x);
        for (int q = 0; q < aa; q++)
            for (int k = 0; k < PR; k++)
                tmp[q][(c - c0) * PR + k] = y[q][k];
    }
    size_t at, per = gemm_packed_a_floats(g->f, g->c);
    int kc;
    gemm_packed_a_col(g->f, g->c, c0, &at, &kc);
    float *d = U + at + (size_t)(f0 / PR) * PR * (size_t)kc;
    for (int q = 0; q < aa; q++)
        memcpy(d + (size_t)q * per, tmp[q], sizeof(float) * PR * (size_t)(c1 - c0));
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define WINO_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))

/* wino_gather's result, as x[i*a + j] lane k, with AVX-512 masked loads and permutes instead of
 * scalar copies (three quarters of the scalar input transform's time): the lanes are cut into
 * runs of tiles side by side on one row of tiles of one image (input tiles m apart), and for
 * each run, tap row i and column j, the cells x0 + j + m*k of image row y0 + i come from two
 * 16-float loads (masked to the image's columns and to what the run reads: padding is zero and
 * nothing past the image is touched) and one two-source permute. Only data moves, so the bits
 * are those of wino_gather. */
WINO_AVX512 static inline __attribute__((always_inline)) void
wino_gather_avx512(v8 *x, const float *in, size_t plane_off, const struct wino_lane *ln, int nl,
                   const struct winograd_geom *g, int a, int m)
{
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int q = 0; q < a * a; q++)
        x[q] = (v8){0};
    for (int k0 = 0, k1; k0 < nl; k0 = k1) {
        for (k1 = k0 + 1; k1 < nl && ln[k1].in == ln[k0].in && ln[k1].y0 == ln[k0].y0 &&
                          ln[k1].x0 == ln[k1 - 1].x0 + m;)
            k1++;
        const float *p = in + ln[k0].in + plane_off;
        int x0 = ln[k0].x0, y0 = ln[k0].y0, need = m * (k1 - 1 - k0) + 1; /* cells per (i, j) */
        __m512i idx = _mm512_mullo_epi32(_mm512_sub_epi32(iota, _mm512_set1_epi32(k0)),
                                         _mm512_set1_epi32(m));
        __mmask8 run = (__mmask8)(((1u << k1) - 1) & ~((1u << k0) - 1));
        __mmask16 lo[6], hi[6];
        for (int j = 0; j < a; j++) { /* cell t of the run's row from x0 + j: t < need, inside */
            __m512i xl = _mm512_add_epi32(iota, _mm512_set1_epi32(x0 + j));
            __m512i xh = _mm512_add_epi32(xl, _mm512_set1_epi32(16));
            __m512i w = _mm512_set1_epi32(g->w), zero = _mm512_setzero_si512();
            __mmask16 nl0 = _mm512_cmplt_epi32_mask(iota, _mm512_set1_epi32(need));
            __mmask16 nh0 = _mm512_cmplt_epi32_mask(iota, _mm512_set1_epi32(need - 16));
            lo[j] = nl0 & _mm512_cmpge_epi32_mask(xl, zero) & _mm512_cmplt_epi32_mask(xl, w);
            hi[j] = nh0 & _mm512_cmpge_epi32_mask(xh, zero) & _mm512_cmplt_epi32_mask(xh, w);
        }
        for (int i = 0; i < a; i++) {
            int y = y0 + i;
            if (y < 0 || y >= g->h)
                continue;
            const float *s = p + (ptrdiff_t)y * g->w + x0;
            for (int j = 0; j < a; j++) {
                __m512 vl = _mm512_maskz_loadu_ps(lo[j], s + j);
                __m512 vh = _mm512_maskz_loadu_ps(hi[j], s + j + 16);
                __m256 v = _mm512_castps512_ps256(_mm512_permutex2var_ps(vl, idx, vh));
                x[i * a + j] = (v8)_mm256_mask_mov_ps((__m256)x[i * a + j], run, v);
            }
        }
    }
}

/* wino_input_run with wino_gather_avx512. */
WINO_AVX512 static inline __attribute__((always_inline)) void
wino_input_run_avx512(float *V, const float *in, const struct winograd_geom *g, size_t T, int c,
                      size_t grp0, size_t grp1, const struct wino_lane *ln,
                      const struct wino_mats *mt)
{
    const int a = mt->a;
    size_t plane = (size_t)g->h * g->w, stride = T;
    for (size_t grp = grp0; grp < grp1; grp++) {
        size_t tl = grp * WINO_LANES;
        int nl = (int)CN_MIN((size_t)WINO_LANES, T - tl);
        v8 x[36], y[36];
        wino_gather_avx512(x, in, (size_t)c * plane, ln + tl, nl, g, a, mt->m);
        wino_sandwich(y, &mt->bt[0][0], a, a, 6, x);
        wino_store(V + (size_t)c * a * a * T + tl, stride, y, a * a, nl);
    }
}

/* wino_output_store with AVX-512: for each run of tiles side by side (each tile's outputs m
 * floats on from the last's, as many rows, all but the last m wide) and each output row i of
 * them, the run's m * (its length) cells of that row (up to 32) from two permutes of y[i*m + j]
 * (lane k, cell m*k + j) per 16 floats, then one masked store (or load, add, store) clipped to
 * the last tile's columns. Inlined: called, it cost inception_v3's 147x147 layers 10 %. */
WINO_AVX512 static inline __attribute__((always_inline)) void
wino_output_store_avx512(float *out, const v8 *y, const struct wino_lane *ln, int nl, size_t fo,
                         const struct winograd_geom *g, int m, int accumulate)
{
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i sh = _mm512_set1_epi32(m == 4 ? 2 : 1), jm = _mm512_set1_epi32(m - 1);
    __mmask16 hi_j = m == 4 ? 0xCCCC : 0; /* cells of j = 2, 3, from the second permute */
    for (int k0 = 0, k1; k0 < nl; k0 = k1) {
        /* a run: each tile's cells m on from the last's, as many rows, all but the last whole */
        for (k1 = k0 + 1; k1 < nl && ln[k1].out == ln[k1 - 1].out + (size_t)m &&
                          ln[k1].ni == ln[k0].ni && ln[k1 - 1].nj == m;)
            k1++;
        int cells = m * (k1 - 1 - k0) + CN_MIN(ln[k1 - 1].nj, m), ni = CN_MIN(ln[k0].ni, m);
        for (int h = 0; h * 16 < cells; h++) {
            /* cell p = 16h + lane: tile k0 + p / m, column j = p % m: lane (j & 1) * 16 + k */
            __m512i p = _mm512_add_epi32(iota, _mm512_set1_epi32(16 * h));
            __m512i k = _mm512_add_epi32(_mm512_srlv_epi32(p, sh), _mm512_set1_epi32(k0));
            __m512i j = _mm512_and_si512(p, jm);
            __m512i idx = _mm512_add_epi32(
                k, _mm512_slli_epi32(_mm512_and_si512(j, _mm512_set1_epi32(1)), 4));
            __mmask16 keep = _mm512_cmplt_epi32_mask(p, _mm512_set1_epi32(cells));
            for (int i = 0; i < ni; i++) {
                const v8 *r = y + i * m;
                __m512 v = _mm512_permutex2var_ps(_mm512_castps256_ps512((__m256)r[0]), idx,
                                                  _mm512_castps256_ps512((__m256)r[1]));
                if (m == 4)
                    v = _mm512_mask_blend_ps(
                        hi_j, v,
                        _mm512_permutex2var_ps(_mm512_castps256_ps512((__m256)r[2]), idx,
                                               _mm512_castps256_ps512((__m256)r[3])));
                float *o = out + ln[k0].out + fo + (size_t)i * g->ow + (size_t)(16 * h);
                if (accumulate)
                    v = _mm512_add_ps(_mm512_maskz_loadu_ps(keep, o), v);
                if (keep == 0xFFFF)
                    _mm512_storeu_ps(o, v);
                else
                    _mm512_mask_storeu_ps(o, keep, v);
            }
        }
    }
}
#endif

/* Each variant's transforms, compiled with its tables as constants. */
struct wino_fns {
    void (*input)(float *V, const float *in, const struct winograd_geom *g, size_t T, int c,
                  size_t grp0, size_t grp1, const struct wino_lane *ln);
    void (*output)(float *out, const float *M, const struct winograd_geom *g, size_t T,
                   size_t grp0, size_t grp1, const struct wino_lane *ln, int accumulate,
                   const struct winograd_epilogue *ep);
    void (*filter)(float *U, const float *w, const struct winograd_geom *g, int c0, int c1, int f0,
                   int nl, int rot);
};

#define WINO_VARIANT(SUF, MATS, ATTR)                                                              \
    ATTR static void wino_input_##SUF(float *V, const float *in, const struct winograd_geom *g,   \
                                      size_t T, int c, size_t grp0, size_t grp1,                   \
                                      const struct wino_lane *ln)                                  \
    {                                                                                              \
        wino_input_run(V, in, g, T, c, grp0, grp1, ln, &MATS);                                     \
    }                                                                                              \
    ATTR static void wino_output_##SUF(float *out, const float *M, const struct winograd_geom *g, \
                                       size_t T, size_t grp0, size_t grp1,                         \
                                       const struct wino_lane *ln, int accumulate,                 \
                                       const struct winograd_epilogue *ep)                         \
    {                                                                                              \
        wino_output_run(out, M, g, T, grp0, grp1, ln, accumulate, ep, &MATS, wino_output_store); \
    }                                                                                              \
    ATTR static void wino_filter_##SUF(float *U, const float *w, const struct winograd_geom *g,   \
                                       int c0, int c1, int f0, int nl, int rot)                    \
    {                                                                                              \
        wino_filter_run(U, w, g, c0, c1, f0, nl, rot, &MATS);                                      \
    }

WINO_VARIANT(f4, wino_f4, )
WINO_VARIANT(f4_half, wino_f4_half, )
WINO_VARIANT(f2, wino_f2, )

/* [isa][variant]: the build's default target, then AVX2 (same results: nothing is contracted
 * into FMAs under -std=c11, and every operation is the same IEEE one on twice the lanes). */
#if defined(__x86_64__) || defined(__i386__)
#define WINO_X86 1
#define WINO_AVX2 __attribute__((target("avx2,fma")))
WINO_VARIANT(f4_avx2, wino_f4, WINO_AVX2)
WINO_VARIANT(f4_half_avx2, wino_f4_half, WINO_AVX2)
WINO_VARIANT(f2_avx2, wino_f2, WINO_AVX2)
#define WINO_FNS_AVX2                                                                              \
    {{wino_input_f4_avx2, wino_output_f4_avx2, wino_filter_f4_avx2},                               \
     {wino_input_f4_half_avx2, wino_output_f4_half_avx2, wino_filter_f4_half_avx2},                \
     {wino_input_f2_avx2, wino_output_f2_avx2, wino_filter_f2_avx2}}
/* AVX-512: the input transform's gather by wino_gather_avx512, the output transform's stores by
 * wino_output_store_avx512, the filter transform as AVX2's. */
#define WINO_INPUT_AVX512(SUF, MATS)                                                               \
    WINO_AVX512 static void wino_input_##SUF(float *V, const float *in,                            \
                                             const struct winograd_geom *g, size_t T, int c,       \
                                             size_t grp0, size_t grp1,                             \
                                             const struct wino_lane *ln)                           \
    {                                                                                              \
        wino_input_run_avx512(V, in, g, T, c, grp0, grp1, ln, &MATS);                              \
    }
#define WINO_OUTPUT_AVX512(SUF, MATS)                                                              \
    WINO_AVX512 static void wino_output_##SUF(float *out, const float *M,                          \
                                              const struct winograd_geom *g, size_t T,             \
                                              size_t grp0, size_t grp1,                            \
                                              const struct wino_lane *ln, int accumulate,          \
                                              const struct winograd_epilogue *ep)                  \
    {                                                                                              \
        wino_output_run(out, M, g, T, grp0, grp1, ln, accumulate, ep, &MATS,                       \
                        wino_output_store_avx512);                                                 \
    }
WINO_INPUT_AVX512(f4_avx512, wino_f4)
WINO_INPUT_AVX512(f4_half_avx512, wino_f4_half)
WINO_INPUT_AVX512(f2_avx512, wino_f2)
WINO_OUTPUT_AVX512(f4_avx512, wino_f4)
WINO_OUTPUT_AVX512(f4_half_avx512, wino_f4_half)
WINO_OUTPUT_AVX512(f2_avx512, wino_f2)
#define WINO_FNS_AVX512                                                                            \
    {{wino_input_f4_avx512, wino_output_f4_avx512, wino_filter_f4_avx2},                           \
     {wino_input_f4_half_avx512, wino_output_f4_half_avx512, wino_filter_f4_half_avx2},            \
     {wino_input_f2_avx512, wino_output_f2_avx512, wino_filter_f2_avx2}}
#else
#define WINO_X86 0
#define WINO_FNS_AVX2 WINO_FNS_DEFAULT
#define WINO_FNS_AVX512 WINO_FNS_DEFAULT
#endif
#define WINO_FNS_DEFAULT                                                                           \
    {{wino_input_f4, wino_output_f4, wino_filter_f4},                                              \
     {wino_input_f4_half, wino_output_f4_half, wino_filter_f4_half},                               \
     {wino_input_f2, wino_output_f2, wino_filter_f2}}

static const struct wino_fns wino_fns[3][WINOGRAD_VARIANT_COUNT] = {
    WINO_FNS_DEFAULT, WINO_FNS_AVX2, WINO_FNS_AVX512};

/* g's transforms: AVX-512's or AVX2's when the CPU has them and g does not ask for the
 * portable ones. */
static const struct wino_fns *wino_fns_of(const struct winograd_geom *g)
{
    int isa = 0;
#if WINO_X86
    if (!g->portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        isa = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 2 : 1;
#endif
    return &wino_fns[isa][g->variant];
}

/* The end of the run of channels from c0 (at most WINO_FILTER_RUN, up to c1) that lies in
 * c0's K block of the packed layout. */
static int wino_filter_run_end(const struct winograd_geom *g, int c0, int c1)
{
    size_t at0, at;
    int kc0, kc, c = c0 + 1;
    gemm_packed_a_col(g->f, g->c, c0, &at0, &kc0);
    for (; c < c1 && c - c0 < WINO_FILTER_RUN; c++) {
        gemm_packed_a_col(g->f, g->c, c, &at, &kc);
        if (kc != kc0 || at != at0 + (size_t)(c - c0) * GEMM_PACK_ROWS)
            break;
    }
    return c;
}

static void wino_filters_any(float *U, const float *w, const struct winograd_geom *g, int rot)
{
    const struct wino_fns *fn = wino_fns_of(g);
    int fp = (int)(gemm_packed_a_floats(g->f, g->c) / (size_t)g->c); /* filters with padding */
    long long panels = fp / GEMM_PACK_ROWS;
    long long runs = (g->c + WINO_FILTER_RUN - 1) / WINO_FILTER_RUN;
    /* tasks: a panel of filters by a stretch of WINO_FILTER_RUN channels, cut where a K block
     * of the packed layout ends */
#pragma omp parallel for schedule(static) if ((double)g->f * g->c >= 4096)
    for (long long q = 0; q < panels * runs; q++) {
        int f0 = (int)(q / runs) * GEMM_PACK_ROWS, c = (int)(q % runs) * WINO_FILTER_RUN;
        int end = CN_MIN(c + WINO_FILTER_RUN, g->c);
        while (c < end) {
            int c1 = wino_filter_run_end(g, c, end);
            fn->filter(U, w, g, c, c1, f0, CN_MAX(0, CN_MIN(GEMM_PACK_ROWS, g->f - f0)), rot);
            c = c1;
        }
    }
}

void winograd_filters(float *U, const float *w, const struct winograd_geom *g)
{
    wino_filters_any(U, w, g, 0);
}

void winograd_filters_data_grad(float *U, const float *w, const struct winograd_geom *g)
{
    wino_filters_any(U, w, g, 1);
}

/* Groups of 8 tiles one input-transform task covers (of one channel): 64 tiles. */
#define WINO_INPUT_RUN 8

/* One chunk of T tiles from t0, run by every thread of the enclosing team: the lanes'
 * descriptors (ln), input transforms (over channels and runs of groups of 8 tiles), the a*a
 * GEMMs, output transforms (over runs of groups, filters outer); the worksharing loops'
 * barriers order them. */
static void wino_chunk(float *out, int accumulate, const float *in, const float *U, float *V,
                       float *M, struct wino_lane *ln, const struct winograd_geom *g, size_t t0,
                       size_t T, const struct winograd_epilogue *ep)
{
    const struct wino_fns *fn = wino_fns_of(g);
    int aa = g->a * g->a, F = g->f, C = g->c;
    long long groups = (long long)((T + WINO_LANES - 1) / WINO_LANES);
    long long runs = (groups + WINO_INPUT_RUN - 1) / WINO_INPUT_RUN;
#pragma omp single nowait
    memset(M + (size_t)aa * F * T, 0, sizeof(float) * WINO_LANES);
#pragma omp for schedule(static)
    for (long long grp = 0; grp < groups; grp++)
        wino_lanes(ln + grp * WINO_LANES, g, t0 + (size_t)grp * WINO_LANES,
                   (int)CN_MIN((size_t)WINO_LANES, T - (size_t)grp * WINO_LANES));
#pragma omp for schedule(static)
    for (long long q = 0; q < (long long)C * runs; q++) {
        size_t g0 = (size_t)(q % runs) * WINO_INPUT_RUN;
        fn->input(V, in, g, T, (int)(q / runs), g0, CN_MIN(g0 + WINO_INPUT_RUN, (size_t)groups),
                  ln);
    }
#pragma omp for schedule(dynamic, 1)
    for (int xi = 0; xi < aa; xi++)
        gemm_packed(M + (size_t)xi * T, aa * (int)T, U + (size_t)xi * gemm_packed_a_floats(F, C),
                    V + (size_t)xi * T, aa * (int)T, 0, F, (int)T, C, 1, 0, NULL, NULL,
                    ACT_LINEAR);
    long long oruns = (groups + WINO_OUTPUT_RUN - 1) / WINO_OUTPUT_RUN;
#pragma omp for schedule(static)
    for (long long q = 0; q < oruns; q++) {
        size_t g0 = (size_t)q * WINO_OUTPUT_RUN;
        fn->output(out, M, g, T, g0, CN_MIN(g0 + WINO_OUTPUT_RUN, (size_t)groups), ln, accumulate,
                   ep);
    }
}

/* Floats from the workspace's start to the lane descriptors: V and M of a chunk, M's slack,
 * rounded up so that the descriptors are aligned. */
static size_t wino_lanes_at(const struct winograd_geom *g)
{
    size_t vm = (size_t)g->a * g->a * ((size_t)g->c + (size_t)g->f) * (size_t)g->chunk;
    return (vm + WINO_LANES + 15) & ~(size_t)15;
}

size_t winograd_workspace_floats(const struct winograd_geom *g)
{
    size_t per = (sizeof(struct wino_lane) + sizeof(float) - 1) / sizeof(float);
    return wino_lanes_at(g) + per * ((size_t)g->chunk + WINO_LANES);
}

/* winograd_conv, and winograd_conv_act with ep (accumulate 0). */
static void wino_conv_any(float *out, int accumulate, const float *in, const float *U,
                          float *work, const struct winograd_geom *g,
                          const struct winograd_epilogue *ep)
{
    size_t aa = (size_t)g->a * g->a, ch = (size_t)g->chunk;
    float *V = work, *M = work + aa * (size_t)g->c * ch;
    struct wino_lane *ln = (struct wino_lane *)(void *)(work + wino_lanes_at(g));
    int par = (double)aa * g->f * g->c * (double)g->tiles >= WINO_PAR_MIN;
    (void)par; /* read only by OpenMP */
#pragma omp parallel if (par)
    for (size_t t0 = 0; t0 < g->tiles; t0 += ch)
        wino_chunk(out, accumulate, in, U, V, M, ln, g, t0, CN_MIN(ch, g->tiles - t0), ep);
}

void winograd_conv(float *out, int accumulate, const float *in, const float *U, float *work,
                   const struct winograd_geom *g)
{
    wino_conv_any(out, accumulate, in, U, work, g, NULL);
}

void winograd_conv_act(float *out, const float *in, const float *U, float *work,
                       const struct winograd_geom *g, const struct winograd_epilogue *ep)
{
    wino_conv_any(out, 0, in, U, work, g, ep);
}

void winograd_conv_naive(float *out, const float *in, const float *w,
                         const struct winograd_geom *g)
{
    size_t plane = (size_t)g->h * g->w;
    for (int b = 0; b < g->batch; b++)
        for (int f = 0; f < g->f; f++)
            for (int y = 0; y < g->oh; y++)
                for (int x = 0; x < g->ow; x++) {
                    double s = 0;
                    for (int c = 0; c < g->c; c++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                int yy = y + i - g->ph, xx = x + j - g->pw;
                                if (yy < 0 || yy >= g->h || xx < 0 || xx >= g->w)
                                    continue;
                                s += (double)w[(((size_t)f * g->c + c) * 3 + i) * 3 + j] *
                                     in[((size_t)b * g->c + c) * plane + (size_t)yy * g->w + xx];
                            }
                    out[(((size_t)b * g->f + f) * g->oh + y) * g->ow + x] = (float)s;
                }
}

void winograd_data_grad_naive(float *din, const float *dout, const float *w,
                              const struct winograd_geom *g)
{
    size_t oplane = (size_t)g->oh * g->ow;
    for (int b = 0; b < g->batch; b++)
        for (int c = 0; c < g->c; c++)
            for (int y = 0; y < g->h; y++)
                for (int x = 0; x < g->w; x++) {
                    double s = 0;
                    for (int f = 0; f < g->f; f++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                int oy = y - i + g->ph, ox = x - j + g->pw;
                                if (oy < 0 || oy >= g->oh || ox < 0 || ox >= g->ow)
                                    continue;
                                s += (double)w[(((size_t)f * g->c + c) * 3 + i) * 3 + j] *
                                     dout[((size_t)b * g->f + f) * oplane + (size_t)oy * g->ow +
                                          ox];
                            }
                    din[(((size_t)b * g->c + c) * g->h + y) * g->w + x] += (float)s;
                }
}
