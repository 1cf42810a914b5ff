/* shortcut.c - [shortcut]: residual addition, y = act(alpha * prev + beta * from) (pjreddie
 * Darknet's shortcut_layer.c and blas.c shortcut_cpu).
 *
 * prev is the layer below (the residual branch), from= an earlier layer (the skip, negative =
 * relative, else absolute; resolved at build time). Keys as pjreddie's parse_shortcut:
 * activation=linear, alpha=1 (scales the residual branch: Inception-ResNet scales it by
 * 0.1-0.3), beta=1 (scales the skip). Output shape = prev's shape.
 *
 * Darknet's rule for different shapes, reproduced exactly. With from W1xH1xC1 and prev W2xH2xC2:
 * stride = W1/W2, sample = W2/W1 (each raised to 1 when 0; H must give the same ratios, which
 * Darknet asserts and this layer checks), and for channels k < min(C1,C2), rows j < min(H1,H2),
 * columns i < min(W1,W2):
 *   z[k][y][x] = alpha * prev[k][y][x] + beta * from[k][j*stride][i*stride],
 *   y = j*sample, x = i*sample.
 * Every other z is prev unscaled (alpha applies to covered positions only). Equal shapes cover
 * everything: z = alpha * prev + beta * from.
 * Backward (ADDS): dz = act'(dy); dprev += alpha * dz on covered positions and dz elsewhere;
 * dfrom at the sampled position += beta * dz. This is the gradient of the forward above; Darknet's
 * backward scales every dprev by alpha, which differs only when shapes differ and alpha != 1.
 * Equal shapes (every ResNet block) take one pass over memory: blocks of SHORTCUT_BLOCK floats,
 * split over threads across the whole batch, each added then activated while in L1. Different
 * shapes (Darknet's resampling shortcut: ResNeXt's 64x64x64 -> 64x64x256, 64x64x256 ->
 * 32x32x512) go plane by plane, each made (rows in one pass when from is at least as large)
 * then activated while in cache.
 * Inference nets fuse the layer into the convolution below when it alone reads that output
 * (shortcut_fuse): the convolution's epilogue adds from and applies the activation, bit for bit
 * this layer's order (prev rounded first; 1 * x is exact), and this layer does nothing. Shapes
 * that differ fuse too when from is at least as large (ResNet's 64x64x64 -> 64x64x256 and
 * 64x64x256 -> 32x32x512 in Darknet's cfgs): the convolution then runs this rule over each
 * block of its output right after the GEMM made it, with the same float operations.
 * Left out: AlexeyAB's multi-input from=, weights_type and weights_normalizion.
 */
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kernels/activations.h"
#include "net/layer.h"

#define SHORTCUT_BLOCK 4096 /* floats added then activated together: 16 KB, in L1 */

struct shortcut {
    int act;
    float alpha, beta;
    struct layer *from;
    int stride, sample, minw, minh, minc; /* Darknet's sampling between from and prev */
    int full;                             /* equal shapes: every position is covered */
    float *z; /* batch x out pre-activation, kept when the activation needs it (training) */
    int dz_inplace; /* backward makes dz in doutput (not the last layer's: the caller's) */
    int fused;      /* inference nets: the layer below does this layer's work (shortcut_fuse) */
};

/* Darknet's ratios; -1 when width and height disagree (Darknet's assert). */
static int shortcut_geom(struct shortcut *sc, struct shape f, struct shape p)
{
    sc->stride = f.w / p.w;
    sc->sample = p.w / f.w;
    if (sc->stride != f.h / p.h || sc->sample != p.h / f.h)
        return -1;
    sc->stride = CN_MAX(sc->stride, 1);
    sc->sample = CN_MAX(sc->sample, 1);
    sc->minw = CN_MIN(f.w, p.w);
    sc->minh = CN_MIN(f.h, p.h);
    sc->minc = CN_MIN(f.c, p.c);
    sc->full = f.w == p.w && f.h == p.h && f.c == p.c;
    return 0;
}

static int shortcut_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct shortcut *sc = xcalloc(1, sizeof *sc);
    l->priv = sc;
    int from;
    if (!cfg_find(s, "from"))
        return cfg_fail_section(s, e, "from= is required: the earlier layer to add");
    if (cfg_get_int(s, "from", 0, -INT_MAX, INT_MAX, &from, e) ||
        build_resolve_ref(b, s, cfg_find(s, "from"), from, &sc->from, e) ||
        layer_get_activation(s, ACT_LINEAR, &sc->act, e) ||
        cfg_get_float(s, "alpha", 1.f, -FLT_MAX, FLT_MAX, &sc->alpha, e) ||
        cfg_get_float(s, "beta", 1.f, -FLT_MAX, FLT_MAX, &sc->beta, e))
        return -1;
    struct shape f = sc->from->out;
    if (shortcut_geom(sc, f, l->in))
        return cfg_fail_kv(s, cfg_find(s, "from"), e,
                           "layer %d [%s] is %dx%dx%d and the layer below %dx%dx%d (w x h x c): "
                           "Darknet's rule needs the same ratio in width and height",
                           sc->from->index, sc->from->ops->name, f.w, f.h, f.c, l->in.w, l->in.h,
                           l->in.c);
    l->out = l->in;
    size_t all = shape_size(l->out) * (size_t)build_batch(b);
    if (act_needs_input(sc->act))
        build_buffer(b, &sc->z, all, BUF_TRAIN);
    sc->dz_inplace = build_index(b) + 1 < build_layer_count(b);
    if (build_training(b) && sc->act != ACT_LINEAR && !sc->dz_inplace)
        build_workspace(b, all);
    build_backward_skips_inputs(b); /* backward reads the output (for act) and gradients only */
    if (sc->act == ACT_LINEAR)
        build_backward_skips_output(b);
    return 0;
}

/* Plane k of image b: z = prev (unless the same memory), z[covered] = alpha * z + beta * from. */
static void shortcut_plane(const struct shortcut *sc, float *z, const float *prev, const float *x,
                           int k, struct shape p, struct shape f)
{
    size_t plane = (size_t)p.h * p.w, at = (size_t)k * plane;
    if (z + at != prev + at)
        memcpy(z + at, prev + at, sizeof(float) * plane);
    if (k >= sc->minc)
        return; /* a channel from does not have: prev's plane alone */
    for (int j = 0; j < sc->minh; j++) {
        float *zr = z + ((size_t)k * p.h + (size_t)j * sc->sample) * p.w;
        const float *xr = x + ((size_t)k * f.h + (size_t)j * sc->stride) * f.w;
        for (int i = 0; i < sc->minw; i++)
            zr[i * sc->sample] = sc->alpha * zr[i * sc->sample] + sc->beta * xr[i * sc->stride];
    }
}

/* Equal shapes: z = alpha * prev + beta * from, y = act(z), block by block over all images. */
static void shortcut_forward_full(struct layer *l, float *z)
{
    const struct shortcut *sc = l->priv;
    size_t all = shape_size(l->out) * (size_t)l->batch;
    long blocks = (long)((all + SHORTCUT_BLOCK - 1) / SHORTCUT_BLOCK);
    const float *prev = l->input, *from = sc->from->output;
#pragma omp parallel for schedule(static) if (blocks > 4)
    for (long k = 0; k < blocks; k++) {
        size_t i0 = (size_t)k * SHORTCUT_BLOCK, m = CN_MIN(SHORTCUT_BLOCK, all - i0);
        for (size_t i = i0; i < i0 + m; i++)
            z[i] = sc->alpha * prev[i] + sc->beta * from[i];
        act_forward(l->output + i0, z + i0, m, (enum activation)sc->act);
    }
}

/* Row j < minh of a covered plane when from is at least as large (sample 1): z = alpha * prev +
 * beta * from sampled every stride-th column, for the first minw columns; the rest z = prev. The
 * same operations as shortcut_plane's, in one pass, with the common strides as constants so the
 * loops vectorise. */
static void shortcut_row(const struct shortcut *sc, float *zr, const float *pr, const float *xr,
                         int w)
{
    int i = 0, n = sc->minw;
    float a = sc->alpha, b = sc->beta;
    if (sc->stride == 1)
        for (; i < n; i++)
            zr[i] = a * pr[i] + b * xr[i];
    else if (sc->stride == 2)
        for (; i < n; i++)
            zr[i] = a * pr[i] + b * xr[2 * i];
    else
        for (; i < n; i++)
            zr[i] = a * pr[i] + b * xr[(size_t)i * sc->stride];
    if (zr != pr)
        memcpy(zr + n, pr + n, sizeof(float) * (size_t)(w - n));
}

/* Plane k of image b, from at least as large (sample 1): z = shortcut_plane's, row by row in
 * one pass (no copy of prev first). */
static void shortcut_plane_rows(const struct shortcut *sc, float *z, const float *prev,
                                const float *x, int k, struct shape p, struct shape f)
{
    size_t plane = (size_t)p.h * p.w, at = (size_t)k * plane;
    int rows = k < sc->minc ? sc->minh : 0;
    for (int j = 0; j < rows; j++)
        shortcut_row(sc, z + at + (size_t)j * p.w, prev + at + (size_t)j * p.w,
                     x + ((size_t)k * f.h + (size_t)j * sc->stride) * f.w, p.w);
    if (z != prev)
        memcpy(z + at + (size_t)rows * p.w, prev + at + (size_t)rows * p.w,
               sizeof(float) * (plane - (size_t)rows * p.w));
}

/* Planes [q0, q1) (plane q: image q / C, channel q % C) of different shapes: z as
 * shortcut_plane, then y = act(z) over them while in cache. Planes of the batch lie one after
 * another, plane q at q * plane in z and y. */
static void shortcut_forward_planes(struct layer *l, float *z, long q0, long q1)
{
    const struct shortcut *sc = l->priv;
    struct shape f = sc->from->out;
    size_t out = shape_size(l->out), plane = (size_t)l->out.h * l->out.w;
    for (long q = q0; q < q1; q++) {
        size_t b = (size_t)(q / l->out.c);
        const float *prev = l->input + b * out, *x = sc->from->output + b * shape_size(f);
        if (sc->sample == 1)
            shortcut_plane_rows(sc, z + b * out, prev, x, (int)(q % l->out.c), l->out, f);
        else
            shortcut_plane(sc, z + b * out, prev, x, (int)(q % l->out.c), l->out, f);
    }
    size_t at = (size_t)q0 * plane;
    act_forward(l->output + at, z + at, (size_t)(q1 - q0) * plane, (enum activation)sc->act);
}

static void shortcut_forward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct shortcut *sc = l->priv;
    if (sc->fused) { /* the layer below wrote act(prev + from) into its output, which is ours */
        CN_ASSERT(l->output == l->input);
        return;
    }
    float *z = sc->z ? sc->z : l->output;
    if (sc->full) {
        shortcut_forward_full(l, z);
        return;
    }
    /* pieces of whole planes (at least SHORTCUT_BLOCK floats) over the whole batch: one image
     * still splits over the threads; each piece added then activated in one visit */
    long planes = (long)l->batch * l->out.c;
    long per = (long)CN_MAX((size_t)1, SHORTCUT_BLOCK / ((size_t)l->out.h * l->out.w));
    long pieces = (planes + per - 1) / per;
#pragma omp parallel for schedule(static) \
    if (pieces > 1 && shape_size(l->out) * (size_t)l->batch >= 32768)
    for (long k = 0; k < pieces; k++)
        shortcut_forward_planes(l, z, k * per, CN_MIN(planes, (k + 1) * per));
}

/* Over image b: dprev += dz (alpha * dz where covered), dfrom[sampled] += beta * dz. */
static void shortcut_back_image(const struct shortcut *sc, float *dprev, float *dfrom,
                                const float *dz, struct shape p, struct shape f)
{
    size_t out = shape_size(p);
    if (dprev)
        for (size_t i = 0; i < out; i++)
            dprev[i] += (sc->full ? sc->alpha : 1.f) * dz[i];
    for (int k = 0; k < sc->minc; k++)
        for (int j = 0; j < sc->minh; j++) {
            size_t zo = ((size_t)k * p.h + (size_t)j * sc->sample) * p.w;
            size_t xo = ((size_t)k * f.h + (size_t)j * sc->stride) * f.w;
            for (int i = 0; i < sc->minw; i++) {
                float g = dz[zo + (size_t)i * sc->sample];
                if (dprev && !sc->full)
                    dprev[zo + (size_t)i * sc->sample] += (sc->alpha - 1.f) * g;
                dfrom[xo + (size_t)i * sc->stride] += sc->beta * g;
            }
        }
}

/* ResNet's block end, y = relu(prev + from) of equal shapes with alpha = beta = 1: dz = dy where
 * y > 0, else 0 (act_backward's ReLU), added into both inputs' gradients in one pass over the
 * batch instead of a pass making dz and one adding it (56x56x64 at batch 16: 7.5 ms). Pieces of
 * SHORTCUT_BLOCK floats: when from= is the layer below (dprev == dfrom) an element's two adds
 * stay in one thread, in the same order as shortcut_back_image's. */
static void shortcut_backward_relu(struct layer *l)
{
    const struct shortcut *sc = l->priv;
    long n = (long)(shape_size(l->out) * (size_t)l->batch);
    long pieces = (n + (long)SHORTCUT_BLOCK - 1) / (long)SHORTCUT_BLOCK;
    float *dprev = l->dinput, *dfrom = sc->from->doutput;
    const float *dy = l->doutput, *y = l->output;
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (long k = 0; k < pieces; k++) {
        long i0 = k * (long)SHORTCUT_BLOCK, i1 = CN_MIN(n, i0 + (long)SHORTCUT_BLOCK);
        for (long i = i0; i < i1; i++) {
            float d = dy[i], g = y[i] > 0 ? d : 0.f;
            dprev[i] += g;
            dfrom[i] += g;
        }
    }
}

static void shortcut_backward(struct layer *l, struct pass *p)
{
    const struct shortcut *sc = l->priv;
    struct shape f = sc->from->out;
    size_t out = shape_size(l->out), fin = shape_size(f), all = out * (size_t)l->batch;
    const float *dz = l->doutput;
    if (sc->act == ACT_RELU && sc->full && sc->alpha == 1.f && sc->beta == 1.f && l->dinput) {
        shortcut_backward_relu(l);
        return;
    }
    if (sc->act != ACT_LINEAR) {
        CN_ASSERT(sc->z || !act_needs_input((enum activation)sc->act));
        float *d = sc->dz_inplace ? l->doutput : p->workspace;
        act_backward(d, l->doutput, sc->z, l->output, all, (enum activation)sc->act);
        dz = d;
    }
    /* Images are independent, but from= may be the layer below (dprev == dfrom): keep one
     * image per thread so the two adds into one buffer never race. */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < l->batch; b++)
        shortcut_back_image(sc, l->dinput ? l->dinput + (size_t)b * out : NULL,
                            sc->from->doutput + (size_t)b * fin, dz + (size_t)b * out, l->out, f);
}

/* "from 5, linear"; "from 2 8x8x8, ..." when from's shape differs; ", a=0.2", ", b=2" unless 1. */
static void shortcut_describe(const struct layer *l, char *buf, size_t n)
{
    const struct shortcut *sc = l->priv;
    char shape[40] = "";
    if (!sc->full)
        snprintf(shape, sizeof shape, " %dx%dx%d", sc->from->out.w, sc->from->out.h,
                 sc->from->out.c);
    int k = snprintf(buf, n, "from %d%s, %s", sc->from->index, shape, act_names[sc->act]);
    if (sc->alpha != 1.f && k >= 0 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, ", a=%g", (double)sc->alpha);
    if (sc->beta != 1.f && k >= 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, ", b=%g", (double)sc->beta);
}

/* Inference nets, when this layer alone reads the layer below (net.c): from= another layer, at
 * least as large as prev (sample 1), hands the addition and the activation to the layer below
 * (layer_ops.take_residual: a convolution adds from's output in its epilogue; struct residual
 * says which positions, full when the shapes are equal and alpha = beta = 1). */
static int shortcut_fuse(struct layer *l, struct layer *below)
{
    struct shortcut *sc = l->priv;
    int full = sc->full && sc->alpha == 1.f && sc->beta == 1.f;
    struct residual r = {sc->from, sc->act,  sc->alpha, sc->beta, sc->stride,
                         sc->minc, sc->minh, sc->minw,  full};
    /* from smaller than prev (sample > 1) stays here; so does a from= of the layer below */
    if ((!full && sc->sample != 1) || sc->from == below || !below->ops->take_residual ||
        !below->ops->take_residual(below, &r))
        return 0;
    sc->fused = 1;
    return 1;
}

/* "fused into layer N" when the layer below does this layer's work, else "-" (one way). */
static void shortcut_algorithm(const struct layer *l, char *buf, size_t n)
{
    const struct shortcut *sc = l->priv;
    if (sc->fused)
        snprintf(buf, n, "fused into layer %d", l->index - 1);
    else
        snprintf(buf, n, "-");
}

/* Per covered position one add, plus a multiply for each of alpha, beta that is not 1. */
static double shortcut_flops(const struct layer *l)
{
    const struct shortcut *sc = l->priv;
    double ops = 1 + (sc->alpha != 1.f) + (sc->beta != 1.f);
    return ops * (double)sc->minc * sc->minh * sc->minw;
}

const struct layer_ops shortcut_ops = {
    .name = "shortcut",
    .type = LAYER_SHORTCUT,
    .build = shortcut_build,
    .forward = shortcut_forward,
    .backward = shortcut_backward,
    .describe = shortcut_describe,
    .algorithm = shortcut_algorithm,
    .flops = shortcut_flops,
    .fuse = shortcut_fuse,
};
