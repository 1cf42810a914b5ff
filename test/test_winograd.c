/* test_winograd.c - the Winograd 3x3 convolution (kernels/winograd.h), forward and data
 * gradient, against the direct references, for each variant: every H, W in 1..13 with padding 0,
 * 1, 2 (so every clipped edge tile and every partial group of 8 tiles occurs), channel and filter
 * counts 1, 3, 17, 64, batches 1 and 3; a case worked by hand; the filter transform redone after a
 * weight change; the fused epilogue (winograd_conv_act) bit for bit against the unfused one; and
 * the error on a realistic layer (64 -> 64 channels, 56x56, normal data).
 *
 * Tolerance: |winograd - reference| <= TOL[variant] * S for each output, where S is the largest
 * sum of |terms| (the reference run on |input| and |weights|) in the output's image plane, or,
 * if larger, the sum of |terms| of a full window at the input's RMS (sum over inputs of
 * |filter|_1 * rms(plane)): the error of a sum scales with its terms, not with its value (which
 * cancels), and a Winograd output's error with its whole tile's terms (an edge output next to
 * the padding has few terms of its own but shares its tile's error). Measured maxima of that
 * ratio on 64 -> 64 channels at 56x56, random normal data (printed by test_realistic): F(4x4)
 * about 1.4e-6 forward and dX with either point set (+-1/2 is no better than +-2), F(2x2) 9e-8,
 * im2col + GEMM (float direct summation) 1.0e-7. TOL leaves a factor of 5 or more.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/rng.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/winograd.h"

static const double TOL[WINOGRAD_VARIANT_COUNT] = {1e-5, 1e-5, 2e-6};

static float *normal_floats(size_t n, uint64_t seed)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)cn_rng_normal(&r);
    return p;
}

static float *abs_copy(const float *x, size_t n)
{
    float *p = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        p[i] = fabsf(x[i]);
    return p;
}

/* The largest |a - b| / S over values in planes of `plane`, S the larger of the largest sum of
 * |terms| s in the value's plane and floor[plane]: a Winograd output's error scales with its
 * whole tile's data, so an edge output with few terms of its own (next to the padding) gets the
 * error scale of its neighbours, or of a full window when there are none (tiny images). */
static double max_ratio(const float *a, const float *b, const float *s, const double *floor,
                        size_t n, size_t plane)
{
    double worst = 0;
    for (size_t p0 = 0; p0 < n; p0 += plane) {
        double smax = fmax(floor[p0 / plane], 1e-30);
        for (size_t i = p0; i < p0 + plane; i++)
            smax = fmax(smax, (double)s[i]);
        for (size_t i = p0; i < p0 + plane; i++) {
            double r = fabs((double)a[i] - b[i]) / smax;
            if (!(r <= worst))
                worst = r; /* NaN sticks */
        }
    }
    return worst;
}

/* floor[b][o] = sum over inputs i of |w(o, i)|_1 * rms(x[b][i]): the sum of |terms| of a full
 * window over data of x's size. w(o, i) = w[o][i] (nin = C), or w[i][o] with transposed (the data
 * gradient: outputs are the forward inputs). */
static double *window_floor(const float *x, const float *w, int batch, int nin, int nout,
                            size_t plane, int transposed)
{
    double *fl = xcalloc((size_t)batch * nout, sizeof(double));
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < nin; i++) {
            const float *xp = x + ((size_t)b * nin + i) * plane;
            double ss = 0;
            for (size_t k = 0; k < plane; k++)
                ss += (double)xp[k] * xp[k];
            double rms = sqrt(ss / (double)plane);
            for (int o = 0; o < nout; o++) {
                const float *wp = w + (transposed ? (size_t)i * nout + o : (size_t)o * nin + i) * 9;
                double l1 = 0;
                for (int k = 0; k < 9; k++)
                    l1 += fabs(wp[k]);
                fl[(size_t)b * nout + o] += l1 * rms;
            }
        }
    return fl;
}

static size_t in_size(const struct winograd_geom *g)
{
    return (size_t)g->batch * g->c * g->h * g->w;
}

static size_t out_size(const struct winograd_geom *g)
{
    return (size_t)g->batch * g->f * g->oh * g->ow;
}

/* The worst ratio of winograd's forward to the reference's on geometry g, seeded. */
static double forward_error(const struct winograd_geom *g, uint64_t seed)
{
    size_t ni = in_size(g), no = out_size(g), nw = (size_t)g->f * g->c * 9;
    float *x = normal_floats(ni, seed), *w = normal_floats(nw, seed + 1);
    float *ax = abs_copy(x, ni), *aw = abs_copy(w, nw);
    float *U = xmalloc(sizeof(float) * winograd_filter_floats(g));
    float *work = xmalloc(sizeof(float) * winograd_workspace_floats(g));
    float *out = normal_floats(no, seed + 2), *ref = xmalloc(sizeof(float) * no);
    float *sum = xmalloc(sizeof(float) * no);
    winograd_filters(U, w, g);
    winograd_conv(out, 0, x, U, work, g);
    winograd_conv_naive(ref, x, w, g);
    winograd_conv_naive(sum, ax, aw, g);
    double *fl = window_floor(x, w, g->batch, g->c, g->f, (size_t)g->h * g->w, 0);
    double r = max_ratio(out, ref, sum, fl, no, (size_t)g->oh * g->ow);
    free(fl), free(x), free(w), free(ax), free(aw), free(U), free(work), free(out), free(ref), free(sum);
    return r;
}

/* The same for the data gradient, which adds onto a nonzero din. */
static double data_grad_error(const struct winograd_geom *g, uint64_t seed)
{
    struct winograd_geom gb;
    assert_int_equal(winograd_geom_data_grad(&gb, g), 0);
    assert_int_equal(gb.oh, g->h);
    assert_int_equal(gb.ow, g->w);
    size_t ni = in_size(g), no = out_size(g), nw = (size_t)g->f * g->c * 9;
    float *dz = normal_floats(no, seed), *w = normal_floats(nw, seed + 1);
    float *adz = abs_copy(dz, no), *aw = abs_copy(w, nw);
    float *U = xmalloc(sizeof(float) * winograd_filter_floats(&gb));
    float *work = xmalloc(sizeof(float) * winograd_workspace_floats(&gb));
    float *dx = normal_floats(ni, seed + 2), *ref = xmalloc(sizeof(float) * ni);
    float *sum = xcalloc(ni, sizeof(float));
    memcpy(ref, dx, sizeof(float) * ni);
    winograd_filters_data_grad(U, w, &gb);
    winograd_conv(dx, 1, dz, U, work, &gb);
    winograd_data_grad_naive(ref, dz, w, g);
    winograd_data_grad_naive(sum, adz, aw, g);
    for (size_t i = 0; i < ni; i++)
        sum[i] += fabsf(ref[i]); /* the value added onto is a term too */
    double *fl = window_floor(dz, w, g->batch, g->f, g->c, (size_t)g->oh * g->ow, 1);
    double r = max_ratio(dx, ref, sum, fl, ni, (size_t)g->h * g->w);
    free(fl), free(dz), free(w), free(adz), free(aw), free(U), free(work), free(dx), free(ref), free(sum);
    return r;
}

/* 4x4 image 0..15, one all-ones filter, no padding: the four 3x3 window sums. */
static void test_by_hand(void **state)
{
    (void)state;
    float x[16], w[9], out[4];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    for (int i = 0; i < 9; i++)
        w[i] = 1;
    /* (0,0): 0+1+2+4+5+6+8+9+10 = 45; one column right adds 9: 54; one row down adds 36. */
    const float want[4] = {45, 54, 81, 90};
    for (int v = 0; v < WINOGRAD_VARIANT_COUNT; v++) {
        struct winograd_geom g;
        assert_int_equal(winograd_geom_init(&g, (enum winograd_variant)v, 1, 1, 4, 4, 1, 0, 0), 0);
        assert_int_equal(g.oh, 2);
        float U[36 * 6], work[256];
        assert_true(winograd_workspace_floats(&g) <= 256);
        assert_true(winograd_filter_floats(&g) <= 36 * 6);
        winograd_filters(U, w, &g);
        winograd_conv(out, 0, x, U, work, &g);
        for (int i = 0; i < 4; i++)
            assert_float_equal(out[i], want[i], 1e-4);
        winograd_conv_naive(out, x, w, &g);
        for (int i = 0; i < 4; i++)
            assert_float_equal(out[i], want[i], 0);
    }
}

static void test_geometry(void **state)
{
    (void)state;
    struct winograd_geom g, gb;
    assert_int_equal(winograd_geom_init(&g, WINOGRAD_F4, 2, 3, 13, 11, 5, 1, 0), 0);
    assert_int_equal(g.oh, 13);
    assert_int_equal(g.ow, 9);
    assert_int_equal(g.th, 4);
    assert_int_equal(g.tw, 3);
    assert_int_equal((int)g.tiles, 24);
    assert_int_equal(winograd_geom_data_grad(&gb, &g), 0);
    assert_int_equal(gb.c, 5);
    assert_int_equal(gb.f, 3);
    assert_int_equal(gb.ph, 1);
    assert_int_equal(gb.pw, 2);
    assert_int_equal(winograd_geom_init(&g, WINOGRAD_F4, 1, 1, 2, 5, 1, 0, 0), -1); /* 0 rows */
    assert_int_equal(winograd_geom_init(&g, WINOGRAD_F2, 1, 0, 5, 5, 1, 1, 1), -1);
    assert_int_equal(winograd_geom_init(&g, WINOGRAD_VARIANT_COUNT, 1, 1, 5, 5, 1, 1, 1), -1);
}

/* Every H, W in 1..13 and padding 0..2, small channel counts, batches 1 and 3. */
static void test_every_edge(void **state)
{
    (void)state;
    uint64_t seed = 100;
    for (int v = 0; v < WINOGRAD_VARIANT_COUNT; v++)
        for (int h = 1; h <= 13; h++)
            for (int w = 1; w <= 13; w++)
                for (int p = 0; p <= 2; p++) {
                    struct winograd_geom g;
                    int batch = (h + w) % 2 ? 3 : 1, c = h % 2 ? 3 : 1, f = w % 2 ? 1 : 3;
                    if (winograd_geom_init(&g, (enum winograd_variant)v, batch, c, h, w, f, p, p))
                        continue; /* output would be empty */
                    double ef = forward_error(&g, seed++), eb = data_grad_error(&g, seed++);
                    if (!(ef <= TOL[v] && eb <= TOL[v]))
                        fail_msg("%s %dx%dx%d -> %d, batch %d, pad %d: error %.3g / %.3g",
                                 winograd_variant_names[v], c, h, w, f, batch, p, ef, eb);
                }
}

/* Channel and filter counts 1, 3, 17, 64 on a few shapes, uneven paddings too. */
static void test_channels(void **state)
{
    (void)state;
    static const int counts[] = {1, 3, 17, 64};
    static const int shapes[][4] = {{1, 1, 1, 1}, {7, 5, 1, 0}, {13, 11, 2, 1}, {8, 8, 0, 2}};
    uint64_t seed = 5000;
    for (int v = 0; v < WINOGRAD_VARIANT_COUNT; v++)
        for (int ci = 0; ci < 4; ci++)
            for (int fi = 0; fi < 4; fi++)
                for (int s = 0; s < 4; s++) {
                    const int *sh = shapes[s];
                    int batch = (ci + fi + s) % 2 ? 3 : 1;
                    struct winograd_geom g;
                    if (winograd_geom_init(&g, (enum winograd_variant)v, batch, counts[ci], sh[0],
                                           sh[1], counts[fi], sh[2], sh[3]))
                        continue;
                    double ef = forward_error(&g, seed++), eb = data_grad_error(&g, seed++);
                    if (!(ef <= TOL[v] && eb <= TOL[v]))
                        fail_msg("%s %dx%dx%d -> %d, batch %d, pad %dx%d: error %.3g / %.3g",
                                 winograd_variant_names[v], counts[ci], sh[0], sh[1], counts[fi],
                                 batch, sh[2], sh[3], ef, eb);
                }
}

/* Rows of tiles wide enough that 8 tiles side by side lie in one row (F(2x2)'s row kernels:
 * the gather by runs of the image row, with and without the border, and the unclipped row
 * stores), with clipped last tiles and the groups that straddle two rows or images beside them. */
static void test_wide_rows(void **state)
{
    (void)state;
    static const int sizes[][2] = {{17, 16}, {9, 33}, {6, 40}, {11, 57}, {4, 18}};
    uint64_t seed = 7000;
    for (int v = 0; v < WINOGRAD_VARIANT_COUNT; v++)
        for (int s = 0; s < 5; s++)
            for (int p = 0; p <= 2; p++) {
                struct winograd_geom g;
                assert_int_equal(winograd_geom_init(&g, (enum winograd_variant)v, 3, 5, sizes[s][0],
                                                    sizes[s][1], 4, p, p),
                                 0);
                double ef = forward_error(&g, seed++), eb = data_grad_error(&g, seed++);
                if (!(ef <= TOL[v] && eb <= TOL[v]))
                    fail_msg("%s %dx%d pad %d: error %.3g / %.3g", winograd_variant_names[v],
                             sizes[s][0], sizes[s][1], p, ef, eb);
            }
}

/* Several chunks of tiles (a small chunk forced by many channels), against the reference. */
static void test_chunks(void **state)
{
    (void)state;
    struct winograd_geom g;
    assert_int_equal(winograd_geom_init(&g, WINOGRAD_F4, 3, 200, 29, 23, 90, 1, 1), 0);
    assert_true((size_t)g.chunk < g.tiles);
    double e = forward_error(&g, 77);
    assert_true(e <= TOL[WINOGRAD_F4]);
}

/* The filters transformed again after the weights change give the new convolution; the stale
 * transform does not (so the comparison can fail). */
static void test_weight_change(void **state)
{
    (void)state;
    struct winograd_geom g;
    assert_int_equal(winograd_geom_init(&g, WINOGRAD_F4, 1, 5, 9, 9, 4, 1, 1), 0);
    size_t ni = in_size(&g), no = out_size(&g), nw = (size_t)g.f * g.c * 9;
    float *x = normal_floats(ni, 1), *w = normal_floats(nw, 2);
    float *U = xmalloc(sizeof(float) * winograd_filter_floats(&g));
    float *work = xmalloc(sizeof(float) * winograd_workspace_floats(&g));
    float *out = xmalloc(sizeof(float) * no), *ref = xmalloc(sizeof(float) * no);
    winograd_filters(U, w, &g);
    for (size_t i = 0; i < nw; i++)
        w[i] = 0.5f * w[i] + 0.25f;
    winograd_conv_naive(ref, x, w, &g);
    winograd_conv(out, 0, x, U, work, &g);
    double stale = 0, fresh = 0;
    for (size_t i = 0; i < no; i++)
        stale = fmax(stale, fabs((double)out[i] - ref[i]));
    winograd_filters(U, w, &g);
    winograd_conv(out, 0, x, U, work, &g);
    for (size_t i = 0; i < no; i++)
        fresh = fmax(fresh, fabs((double)out[i] - ref[i]));
    assert_true(stale > 0.1);
    assert_true(fresh < 1e-3);
    free(x), free(w), free(U), free(work), free(out), free(ref);
}

/* winograd_conv_act's epilogue against winograd_conv followed by act_forward_affine (a conv's
 * folded batch norm and activation) and, with a residual, a [shortcut]'s addition and
 * activation: bit for bit, for each variant, over edge tiles (11x13 outputs), 2 images, with
 * and without scale, residual and a fused activation (leaky, relu6; logistic by act_apply). */
static void check_epilogue(int variant, int with_scale, int with_res, enum activation act)
{
    struct winograd_geom g;
    assert_int_equal(winograd_geom_init(&g, variant, 2, 5, 11, 13, 7, 1, 1), 0);
    size_t ni = in_size(&g), no = out_size(&g), nw = (size_t)g.f * g.c * 9;
    size_t plane = (size_t)g.oh * g.ow;
    float *x = normal_floats(ni, 11), *w = normal_floats(nw, 12), *res = normal_floats(no, 13);
    float *sb = normal_floats(2 * (size_t)g.f, 14);
    float *U = xmalloc(sizeof(float) * winograd_filter_floats(&g));
    float *work = xmalloc(sizeof(float) * winograd_workspace_floats(&g));
    float *out = xmalloc(sizeof(float) * no), *ref = xmalloc(sizeof(float) * no);
    winograd_filters(U, w, &g);
    enum activation own = with_res ? ACT_LINEAR : act;
    struct winograd_epilogue ep = {with_scale ? sb : NULL, sb + g.f, with_res ? res : NULL, act};
    winograd_conv_act(out, x, U, work, &g, &ep);
    winograd_conv(ref, 0, x, U, work, &g);
    for (int b = 0; b < g.batch; b++) {
        float *r = ref + (size_t)b * g.f * plane;
        act_forward_affine(r, r, g.f, plane, ep.scale, ep.bias, own);
    }
    for (size_t i = 0; with_res && i < no; i++)
        ref[i] = 1.f * ref[i] + 1.f * res[i];
    if (with_res)
        act_forward(ref, ref, no, act);
    if (memcmp(out, ref, sizeof(float) * no)) {
        size_t i = 0;
        while (!memcmp(&out[i], &ref[i], sizeof(float)))
            i++;
        fail_msg("variant %d scale %d res %d act %s: out[%zu] = %.9g, unfused %.9g", variant,
                 with_scale, with_res, act_names[act], i, (double)out[i], (double)ref[i]);
    }
    free(x), free(w), free(res), free(sb), free(U), free(work), free(out), free(ref);
}

static void test_epilogue(void **state)
{
    (void)state;
    static const enum activation acts[] = {ACT_LINEAR, ACT_RELU, ACT_LEAKY, ACT_RELU6,
                                           ACT_LOGISTIC};
    for (int v = 0; v < WINOGRAD_VARIANT_COUNT; v++)
        for (int k = 0; k < 4; k++)
            for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
                check_epilogue(v, k & 1, k >> 1, acts[a]);
}

/* The float error of im2col + GEMM (direct summation) on g, batch 1, for comparison. */
static double direct_error(const struct winograd_geom *g, uint64_t seed)
{
    struct im2col_geom ig;
    assert_int_equal(im2col_geom_init(&ig, g->c, g->h, g->w, 3, 3, 1, 1, g->ph, g->pw, 1, 1), 0);
    size_t ni = in_size(g), no = out_size(g), nw = (size_t)g->f * g->c * 9;
    float *x = normal_floats(ni, seed), *w = normal_floats(nw, seed + 1);
    float *ax = abs_copy(x, ni), *aw = abs_copy(w, nw);
    float *col = xmalloc(sizeof(float) * im2col_rows(&ig) * im2col_cols(&ig));
    float *out = xmalloc(sizeof(float) * no), *ref = xmalloc(sizeof(float) * no);
    float *sum = xmalloc(sizeof(float) * no);
    int P = g->oh * g->ow, R = g->c * 9;
    im2col(col, x, &ig);
    gemm(out, P, w, R, 0, col, P, 0, g->f, P, R, 1, 0);
    winograd_conv_naive(ref, x, w, g);
    winograd_conv_naive(sum, ax, aw, g);
    double *fl = window_floor(x, w, 1, g->c, g->f, (size_t)g->h * g->w, 0);
    double r = max_ratio(out, ref, sum, fl, no, (size_t)P);
    free(fl), free(x), free(w), free(ax), free(aw), free(col), free(out), free(ref), free(sum);
    return r;
}

/* ResNet's first 3x3 stage, 64 -> 64 channels at 56x56, pad 1: the error each variant gives. */
static void test_realistic(void **state)
{
    (void)state;
    for (int v = 0; v < WINOGRAD_VARIANT_COUNT; v++) {
        struct winograd_geom g;
        assert_int_equal(winograd_geom_init(&g, (enum winograd_variant)v, 1, 64, 56, 56, 64, 1, 1),
                         0);
        double ef = forward_error(&g, 900), eb = data_grad_error(&g, 901);
        printf("%-18s 64x56x56 -> 64, max |error| / sum|terms|: forward %.3g, dX %.3g\n",
               winograd_variant_names[v], ef, eb);
        assert_true(ef <= TOL[v]);
        assert_true(eb <= TOL[v]);
    }
    struct winograd_geom g;
    assert_int_equal(winograd_geom_init(&g, WINOGRAD_F4, 1, 64, 56, 56, 64, 1, 1), 0);
    printf("%-18s 64x56x56 -> 64, max |error| / sum|terms|: forward %.3g\n", "im2col+gemm",
           direct_error(&g, 900));
}

/* The build's default-target transforms (g.portable) give the same bits as the ones the CPU
 * runs by default (AVX2 or AVX-512 here, when it has them), and match the reference: odd sizes,
 * wide rows, several chunks, every variant, forward and data gradient, with and without the
 * epilogue. */
static void test_portable(void **state)
{
    (void)state;
    static const int shapes[][7] = {
        {1, 3, 13, 11, 5, 1, 1}, {3, 17, 9, 14, 3, 2, 0}, {3, 200, 29, 23, 90, 1, 1},
        {2, 5, 11, 75, 4, 1, 1}}; /* the last: rows of 19 and 38 tiles, runs of 8 lanes */
    uint64_t seed = 9000;
    for (int v = 0; v < WINOGRAD_VARIANT_COUNT; v++)
        for (int s = 0; s < 4; s++) {
            const int *q = shapes[s];
            struct winograd_geom g, gp;
            assert_int_equal(winograd_geom_init(&g, (enum winograd_variant)v, q[0], q[1], q[2],
                                                q[3], q[4], q[5], q[6]),
                             0);
            gp = g;
            gp.portable = 1;
            size_t ni = in_size(&g), no = out_size(&g), nw = (size_t)g.f * g.c * 9;
            float *x = normal_floats(ni, seed++), *w = normal_floats(nw, seed++);
            float *U = xmalloc(sizeof(float) * winograd_filter_floats(&g));
            float *Up = xmalloc(sizeof(float) * winograd_filter_floats(&g));
            float *work = xmalloc(sizeof(float) * winograd_workspace_floats(&g));
            float *a = xmalloc(sizeof(float) * no), *b = xmalloc(sizeof(float) * no);
            float *scale = normal_floats((size_t)g.f, seed++), *bias = normal_floats((size_t)g.f, seed++);
            winograd_filters(U, w, &g);
            winograd_filters(Up, w, &gp);
            assert_memory_equal(U, Up, sizeof(float) * winograd_filter_floats(&g));
            winograd_conv(a, 0, x, U, work, &g);
            winograd_conv(b, 0, x, U, work, &gp);
            assert_memory_equal(a, b, sizeof(float) * no);
            struct winograd_epilogue ep = {scale, bias, x, ACT_LEAKY};
            if (g.c == g.f && g.oh == g.h && g.ow == g.w) { /* res in out's layout */
                winograd_conv_act(a, x, U, work, &g, &ep);
                winograd_conv_act(b, x, U, work, &gp, &ep);
                assert_memory_equal(a, b, sizeof(float) * no);
            }
            if (s == 2) { /* several chunks: test_chunks compares the default ones */
                assert_true((size_t)g.chunk < g.tiles);
                free(x), free(w), free(U), free(Up), free(work), free(a), free(b), free(scale),
                    free(bias);
                continue;
            }
            double e = forward_error(&gp, seed++), eb = data_grad_error(&gp, seed++);
            if (!(e <= TOL[v] && eb <= TOL[v]))
                fail_msg("portable %s shape %d: error %.3g / %.3g", winograd_variant_names[v], s,
                         e, eb);
            free(x), free(w), free(U), free(Up), free(work), free(a), free(b), free(scale), free(bias);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_hand),      cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_every_edge),   cmocka_unit_test(test_channels),
        cmocka_unit_test(test_chunks),       cmocka_unit_test(test_weight_change),
        cmocka_unit_test(test_epilogue),
        cmocka_unit_test(test_realistic), cmocka_unit_test(test_wide_rows),   cmocka_unit_test(test_portable),
    };
    return cmocka_run_group_tests_name("winograd", tests, NULL, NULL);
}
