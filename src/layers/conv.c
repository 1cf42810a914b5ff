/* conv.c - [convolutional] / [conv]: 2-D convolution of NCHW images (Darknet's
 * convolutional_layer.c), then a bias or a batch norm, then an activation.
 *
 * Dimensions: a C x H x W input, F filters in G groups (group gi sees input channels
 * [gi*C/G, (gi+1)*C/G) and makes filters [gi*F/G, (gi+1)*F/G)); each filter has C/G x kh x kw
 * taps spaced by the dilation D; R = (C/G)*kh*kw taps per filter, P = OH*OW output positions,
 * out = (F, OH, OW) with OH = (H + 2*ph - (D*(kh-1)+1))/sh + 1 and OW likewise.
 * Keys: Darknet's parse_convolutional filters=1 size=1 stride=1 pad=0 padding=0
 * activation=logistic batch_normalize=0 groups=1, AlexeyAB's dilation=1 stride_x stride_y, and
 * cfgnet's size_x size_y (kernel width and height, overriding size) padding_x padding_y
 * (overriding padding) init=he|xavier. pad=1 sets the padding to D*(size_x/2) columns and
 * D*(size_y/2) rows, which is what AlexeyAB's Darknet pads with (it passes pad*dilation to
 * im2col): "same" output for odd kernels at stride 1. An explicit padding is taken as it is, in
 * pixels, as PyTorch does (AlexeyAB multiplies it by the dilation too, and its output size then
 * disagrees with its im2col unless padding = (size-1)/2).
 * Parameters in Darknet's .weights order: biases (F; the batch norm's shift when
 * batch_normalize=1), [scales, rolling_mean, rolling_variance] (F each), weights [F][C/G][kh][kw]
 * (Darknet's and PyTorch's layout).
 *
 * Forward per image and group: im2col of the group's channels, then z_g = weights_g[F/G x R] *
 * col[R x P] by GEMM (a 1x1, stride 1, unpadded kernel uses the image itself as col); a
 * depthwise layer (G > 1, C/G = 1) skips im2col and GEMM and convolves each plane directly
 * (kernels/depthwise.h). Without batch norm the bias and activation follow on the same image
 * while it is in cache; with it they run over the batch afterwards, in the net's bn_style.
 * Backward per image and group: dz (the activation's gradient, made per image without batch
 * norm), the weight gradient dz_g[F/G x P] * row[P x R] (im2row, so neither GEMM operand is
 * transposed), and the input gradient col2im(weights_g^T * dz_g), added into dinput.
 * Threads: the batch is split into `lanes` contiguous groups of images (as many as OpenMP threads
 * when the net is built, fewer if their col buffers would pass CONV_LANE_FLOATS); each lane has
 * its own col buffer and, in backward, its own weight and bias gradient partials (lane 0 adds
 * straight into the gradients), summed in lane order afterwards, so results depend on the
 * thread count at build time only through that order. With one lane the GEMMs use the threads
 * (a depthwise layer: its planes).
 * Workspace: lanes col buffers in forward; dz (batch x out), lanes col buffers and lanes-1
 * gradient partials in backward.
 * Left out: Darknet's binary/xnor, AlexeyAB's other extra keys (antialiasing, share_index...),
 * separate dilations per axis.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "kernels/depthwise.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "net/layer.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define CONV_MAX_SIDE 65536 /* size, stride, padding */
#define CONV_MAX_DILATION 4096
#define CONV_MAX_FILTERS 1048576
#define CONV_LANE_FLOATS ((size_t)1 << 26) /* all lanes' col buffers: 256 MB */
#define CONV_GEMM_MAX ((size_t)1 << 31)    /* GEMM dimensions are ints */

enum conv_init { INIT_HE, INIT_XAVIER, INIT_COUNT };
static const char *const conv_init_names[INIT_COUNT] = {"he", "xavier"};

struct conv {
    int filters, groups, bn, act, init;
    int kh, kw, sh, sw, ph, pw, dilation; /* kernel taps, strides, padding per side */
    int fg, cg;                           /* filters and input channels per group */
    struct im2col_geom g;                 /* one group's channels */
    int direct;           /* 1x1 kernel, stride 1, no padding: the image is its own col matrix */
    int depthwise;        /* groups > 1 with one input channel each: planes convolved directly */
    int lanes;            /* groups of images run concurrently, each with its own buffers */
    size_t R, P, col, nw; /* taps per filter, positions, one col buffer (0 if unused), weights */
    float *weights, *dweights, *biases, *dbiases, *scales, *dscales, *rolling_mean, *rolling_var;
    float *z;                  /* batch x out pre-activation, kept when the activation needs it */
    float *x_hat, *mean, *var; /* batch norm caches (training nets) */
    struct bn_conf bnc;        /* the net's batch-norm convention */
};

static size_t conv_align(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Floats of one lane's gradient partial: weights, then biases. */
static size_t conv_part_size(const struct conv *cv)
{
    return conv_align(cv->nw) + conv_align((size_t)cv->filters);
}

/* The kernel's window: size/size_x/size_y, stride/stride_x/stride_y, dilation, and the padding
 * (pad=1: dilation * (side/2); else padding/padding_x/padding_y). */
static int conv_parse_window(struct conv *cv, struct cfg_section *s, cn_error *e)
{
    int size, stride, pad, padding;
    if (cfg_get_int(s, "size", 1, 1, CONV_MAX_SIDE, &size, e) ||
        cfg_get_int(s, "size_x", size, 1, CONV_MAX_SIDE, &cv->kw, e) ||
        cfg_get_int(s, "size_y", size, 1, CONV_MAX_SIDE, &cv->kh, e) ||
        cfg_get_int(s, "stride", 1, 1, CONV_MAX_SIDE, &stride, e) ||
        cfg_get_int(s, "stride_x", stride, 1, CONV_MAX_SIDE, &cv->sw, e) ||
        cfg_get_int(s, "stride_y", stride, 1, CONV_MAX_SIDE, &cv->sh, e) ||
        cfg_get_int(s, "dilation", 1, 1, CONV_MAX_DILATION, &cv->dilation, e) ||
        cfg_get_bool(s, "pad", 0, &pad, e) ||
        cfg_get_int(s, "padding", 0, 0, CONV_MAX_SIDE, &padding, e) ||
        cfg_get_int(s, "padding_x", padding, 0, CONV_MAX_SIDE, &cv->pw, e) ||
        cfg_get_int(s, "padding_y", padding, 0, CONV_MAX_SIDE, &cv->ph, e))
        return -1;
    if (pad) { /* at most 4096 * 32768: no overflow */
        cv->pw = cv->dilation * (cv->kw / 2);
        cv->ph = cv->dilation * (cv->kh / 2);
    }
    return 0;
}

static int conv_parse(struct conv *cv, struct cfg_section *s, cn_error *e)
{
    return cfg_get_int(s, "filters", 1, 1, CONV_MAX_FILTERS, &cv->filters, e) ||
                   cfg_get_int(s, "groups", 1, 1, CONV_MAX_FILTERS, &cv->groups, e) ||
                   conv_parse_window(cv, s, e) ||
                   layer_get_activation(s, ACT_LOGISTIC, &cv->act, e) ||
                   cfg_get_bool(s, "batch_normalize", 0, &cv->bn, e) ||
                   cfg_get_choice(s, "init", conv_init_names, INIT_COUNT, INIT_HE, &cv->init, e)
               ? -1
               : 0;
}

/* " (dilation D: extent EHxEW)" when dilated, else "". */
static void conv_extent_note(const struct conv *cv, char *buf, size_t n)
{
    buf[0] = '\0';
    if (cv->dilation > 1)
        snprintf(buf, n, " (dilation %d: extent %lldx%lld)", cv->dilation,
                 (long long)cv->dilation * (cv->kh - 1) + 1,
                 (long long)cv->dilation * (cv->kw - 1) + 1);
}

/* Groups must divide both the input channels and the filters. */
static int conv_check_groups(struct layer *l, struct conv *cv, struct cfg_section *s, cn_error *e)
{
    if (l->in.c % cv->groups == 0 && cv->filters % cv->groups == 0)
        return 0;
    return cfg_fail_kv(s, cfg_find(s, "groups"), e,
                       "the input's %d channels and filters=%d must both be multiples of it",
                       l->in.c, cv->filters);
}

/* Sets the geometry and sizes; rejects kernels that do not fit and products past size limits. */
static int conv_shape(struct layer *l, struct conv *cv, struct cfg_section *s, cn_error *e)
{
    cv->cg = l->in.c / cv->groups;
    cv->fg = cv->filters / cv->groups;
    if (im2col_geom_init(&cv->g, cv->cg, l->in.h, l->in.w, cv->kh, cv->kw, cv->sh, cv->sw, cv->ph,
                         cv->pw, cv->dilation, cv->dilation)) {
        char ext[96];
        conv_extent_note(cv, ext, sizeof ext);
        return cfg_fail_section(s, e,
                                "a %dx%d kernel%s does not fit the %dx%d input with padding "
                                "%dx%d (height x width)",
                                cv->kh, cv->kw, ext, l->in.h, l->in.w, cv->ph, cv->pw);
    }
    cv->R = im2col_rows(&cv->g);
    cv->P = im2col_cols(&cv->g);
    size_t out, col;
    if (cv->R >= CONV_GEMM_MAX || cv->P >= CONV_GEMM_MAX || cn_mul(&cv->nw, cv->R, cv->filters) ||
        cn_mul(&out, cv->P, cv->filters) || cn_mul(&col, cv->R, cv->P) || out >= CONV_GEMM_MAX)
        return cfg_fail_section(s, e, "%d filters of %dx%dx%d over %dx%d outputs is too large",
                                cv->filters, cv->cg, cv->kh, cv->kw, cv->g.oh, cv->g.ow);
    cv->direct =
        cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0;
    /* Not for a plain conv of a 1-channel image: its one GEMM with all F filters is faster. */
    cv->depthwise = cv->cg == 1 && cv->groups > 1 && !cv->direct;
    cv->col = cv->direct || cv->depthwise ? 0 : conv_align(col);
    l->out = (struct shape){cv->filters, cv->g.oh, cv->g.ow};
    return 0;
}

static int conv_lanes(int batch, size_t col)
{
    int lanes = 1;
#ifdef _OPENMP
    lanes = CN_MIN(batch, omp_get_max_threads());
#else
    (void)batch;
#endif
    while (lanes > 1 && col * (size_t)lanes > CONV_LANE_FLOATS)
        lanes--;
    return CN_MAX(lanes, 1);
}

/* Declares the workspace: forward needs the lanes' col buffers; backward also dz and the
 * weight partials. */
static int conv_workspace(struct layer *l, struct conv *cv, struct build *b, struct cfg_section *s,
                          cn_error *e)
{
    size_t fwd = cv->col * (size_t)cv->lanes, need = fwd;
    if (build_training(b)) {
        size_t dz, parts;
        if (cn_mul(&dz, shape_size(l->out), (size_t)l->batch) ||
            cn_mul(&parts, conv_part_size(cv), (size_t)cv->lanes - 1) ||
            cn_add(&need, conv_align(dz), fwd) || cn_add(&need, need, parts))
            return cfg_fail_section(s, e, "workspace for %d images is too large", l->batch);
    }
    build_workspace(b, need);
    return 0;
}

static int conv_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct conv *cv = xcalloc(1, sizeof *cv);
    l->priv = cv;
    if (conv_parse(cv, s, e) || conv_check_groups(l, cv, s, e) || conv_shape(l, cv, s, e))
        return -1;
    size_t F = (size_t)cv->filters, all = shape_size(l->out) * (size_t)build_batch(b);
    cv->lanes = conv_lanes(build_batch(b), cv->col);
    cv->bnc = *build_bn(b);
    build_param(b, &cv->biases, &cv->dbiases, F, "biases", PARAM_TRAIN);
    if (cv->bn) {
        build_param(b, &cv->scales, &cv->dscales, F, "scales", PARAM_TRAIN);
        build_param(b, &cv->rolling_mean, NULL, F, "rolling_mean", 0);
        build_param(b, &cv->rolling_var, NULL, F, "rolling_variance", 0);
        build_buffer(b, &cv->x_hat, all, BUF_TRAIN);
        build_buffer(b, &cv->mean, F, BUF_TRAIN);
        build_buffer(b, &cv->var, F, BUF_TRAIN);
    }
    build_param(b, &cv->weights, &cv->dweights, cv->nw, "weights", PARAM_TRAIN | PARAM_DECAY);
    if (act_needs_input(cv->act))
        build_buffer(b, &cv->z, all, BUF_TRAIN);
    return conv_workspace(l, cv, b, s, e);
}

/* He (Darknet's): sqrt(2 / fan_in) * N(0, 1) with fan_in = R, the taps one filter sees; Xavier:
 * uniform in +-sqrt(6 / (fan_in + fan_out)), fan_out = F*kh*kw (PyTorch's, whatever the groups).
 */
static void conv_init(struct layer *l, cn_rng *rng)
{
    struct conv *cv = l->priv;
    double fan_in = (double)cv->R, fan_out = (double)cv->filters * cv->kh * cv->kw;
    double he = sqrt(2.0 / fan_in), xavier = sqrt(6.0 / (fan_in + fan_out));
    for (size_t i = 0; i < cv->nw; i++)
        cv->weights[i] = cv->init == INIT_HE ? (float)(he * cn_rng_normal(rng))
                                             : (float)(xavier * (2 * cn_rng_uniform(rng) - 1));
    for (int f = 0; f < cv->filters; f++) {
        cv->biases[f] = 0.f;
        if (cv->bn) {
            cv->scales[f] = 1.f;
            cv->rolling_mean[f] = 0.f;
            cv->rolling_var[f] = 1.f;
        }
    }
}

/* The images [b0, b1) of lane `lane`. */
static void conv_lane_images(const struct layer *l, int lane, int *b0, int *b1)
{
    const struct conv *cv = l->priv;
    *b0 = (int)((long long)lane * l->batch / cv->lanes);
    *b1 = (int)((long long)(lane + 1) * l->batch / cv->lanes);
}

/* z[F x P] = the convolution of image x: per group, im2col and one GEMM, or for a depthwise
 * layer each filter's plane directly (threads over filters when there is a single lane). */
static void conv_image(const struct conv *cv, float *z, const float *x, float *col)
{
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w, P = cv->P, kk = (size_t)cv->kh * cv->kw;
    if (cv->depthwise) {
#pragma omp parallel for schedule(static) if (cv->lanes == 1 && cv->filters > 1)
        for (int f = 0; f < cv->filters; f++)
            depthwise_forward(z + (size_t)f * P, x + (size_t)(f / cv->fg) * plane,
                              cv->weights + (size_t)f * kk, &cv->g);
        return;
    }
    int fg = cv->fg, R = (int)cv->R;
    for (int gi = 0; gi < cv->groups; gi++) {
        const float *xg = x + (size_t)gi * (size_t)cv->cg * plane;
        if (!cv->direct) {
            im2col(col, xg, &cv->g);
            xg = col;
        }
        gemm(z + (size_t)gi * (size_t)fg * P, (int)P, cv->weights + (size_t)gi * (size_t)fg * cv->R,
             R, 0, xg, (int)P, 0, fg, (int)P, R, 1, 0);
    }
}

/* For the lane's images: pre[b] = the convolution of input[b]; without batch norm also the
 * biases and the activation, while the image is in cache. */
static void conv_forward_lane(struct layer *l, int lane, float *col, float *pre)
{
    const struct conv *cv = l->priv;
    int b0, b1, F = cv->filters;
    size_t in = shape_size(l->in), out = shape_size(l->out), P = cv->P;
    conv_lane_images(l, lane, &b0, &b1);
    for (int b = b0; b < b1; b++) {
        float *z = pre + (size_t)b * out;
        conv_image(cv, z, l->input + (size_t)b * in, col);
        if (cv->bn)
            continue;
        for (int f = 0; f < F; f++)
            for (size_t p = 0; p < P; p++)
                z[(size_t)f * P + p] += cv->biases[f];
        act_forward(l->output + (size_t)b * out, z, out, (enum activation)cv->act);
    }
}

static void conv_bn_forward(struct layer *l, const struct pass *p, float *pre)
{
    struct conv *cv = l->priv;
    int F = cv->filters, P = (int)cv->P;
    if (p->train) {
        CN_ASSERT(cv->x_hat);
        bn_forward_train(pre, cv->x_hat, cv->mean, cv->var, cv->rolling_mean, cv->rolling_var, pre,
                         cv->scales, cv->biases, l->batch, F, P, &cv->bnc);
        return;
    }
    if (cv->x_hat) /* kept so backward can follow an inference-mode pass */
        bn_x_hat_infer(cv->x_hat, pre, cv->rolling_mean, cv->rolling_var, l->batch, F, P, &cv->bnc);
    bn_forward_infer(pre, pre, cv->scales, cv->biases, cv->rolling_mean, cv->rolling_var, l->batch,
                     F, P, &cv->bnc);
}

static void conv_forward(struct layer *l, struct pass *p)
{
    struct conv *cv = l->priv;
    float *pre = cv->z ? cv->z : l->output;
#pragma omp parallel for schedule(static) if (cv->lanes > 1)
    for (int lane = 0; lane < cv->lanes; lane++)
        conv_forward_lane(l, lane, p->workspace + (size_t)lane * cv->col, pre);
    if (!cv->bn)
        return;
    conv_bn_forward(l, p, pre);
    act_forward(l->output, pre, shape_size(l->out) * (size_t)l->batch, (enum activation)cv->act);
}

/* Batch norm backward; after an inference-mode pass, through the frozen affine map. dz in place. */
static void conv_bn_backward(struct layer *l, const struct pass *p, float *dz)
{
    struct conv *cv = l->priv;
    int F = cv->filters, P = (int)cv->P;
    if (p->train)
        bn_backward(dz, cv->dscales, cv->dbiases, dz, cv->x_hat, cv->var, cv->scales, l->batch, F,
                    P, &cv->bnc);
    else
        bn_backward_infer(dz, cv->dscales, cv->dbiases, dz, cv->x_hat, cv->rolling_var, cv->scales,
                          l->batch, F, P, &cv->bnc);
}

/* Where a lane adds its gradients: lane 0 straight into the parameters', the others into
 * partials summed afterwards. */
struct conv_grads {
    float *dw, *db;
};

/* The sum of d[0 .. n) in 16 interleaved partial sums, which the compiler can vectorise. */
static float conv_sum(const float *d, size_t n)
{
    float acc[16] = {0};
    size_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += d[k + j];
    float s = 0;
    for (; k < n; k++)
        s += d[k];
    for (int j = 0; j < 16; j++)
        s += acc[j];
    return s;
}

/* Without batch norm, dz[b] = dy[b] * f'(z[b]) and the bias gradient, image by image. */
static void conv_dz_image(struct layer *l, int b, float *dz, float *db)
{
    const struct conv *cv = l->priv;
    size_t out = shape_size(l->out), off = (size_t)b * out, P = cv->P;
    act_backward(dz + off, l->doutput + off, cv->z ? cv->z + off : NULL, l->output + off, out,
                 (enum activation)cv->act);
    for (int f = 0; f < cv->filters; f++)
        db[f] += conv_sum(dz + off + (size_t)f * P, P);
}

/* A depthwise image's gradients: dw += each plane's kernel gradient; dx (NULL: skipped) += each
 * plane's data gradient. Threads over input planes when there is a single lane (each plane's
 * filters are its own: no shared writes). */
static void conv_depthwise_back(const struct conv *cv, float *dw, float *dx, const float *d,
                                const float *x)
{
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w, P = cv->P, kk = (size_t)cv->kh * cv->kw;
#pragma omp parallel for schedule(static) if (cv->lanes == 1 && cv->groups > 1)
    for (int gi = 0; gi < cv->groups; gi++)
        for (int f = gi * cv->fg; f < (gi + 1) * cv->fg; f++) {
            const float *df = d + (size_t)f * P;
            depthwise_backward_kernel(dw + (size_t)f * kk, df, x + (size_t)gi * plane, &cv->g);
            if (dx)
                depthwise_backward_data(dx + (size_t)gi * plane, df, cv->weights + (size_t)f * kk,
                                        &cv->g);
        }
}

/* One image's gradients through the GEMM path, group by group: dw_g += dz_g * row(x_g);
 * dx_g += col2im(weights_g^T * dz_g) (dx NULL: skipped). buf holds one col (or row) matrix. */
static void conv_gemm_back(const struct conv *cv, float *dw, float *dx, const float *d,
                           const float *x, float *buf)
{
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w;
    int fg = cv->fg, R = (int)cv->R, P = (int)cv->P;
    for (int gi = 0; gi < cv->groups; gi++) {
        const float *xg = x + (size_t)gi * (size_t)cv->cg * plane;
        const float *dg = d + (size_t)gi * (size_t)fg * cv->P;
        const float *wg = cv->weights + (size_t)gi * (size_t)fg * cv->R;
        float *dwg = dw + (size_t)gi * (size_t)fg * cv->R;
        if (cv->direct) {
            gemm(dwg, R, dg, P, 0, xg, P, 1, fg, R, P, 1, 1);
        } else {
            im2row(buf, xg, &cv->g);
            gemm(dwg, R, dg, P, 0, buf, R, 0, fg, R, P, 1, 1);
        }
        if (!dx)
            continue;
        float *dxg = dx + (size_t)gi * (size_t)cv->cg * plane;
        if (cv->direct) {
            gemm(dxg, P, wg, R, 1, dg, P, 0, R, P, fg, 1, 1);
        } else {
            gemm(buf, P, wg, R, 1, dg, P, 0, R, P, fg, 1, 0);
            col2im(dxg, buf, &cv->g);
        }
    }
}

/* For the lane's images: the weight and input gradients. dz is ready with batch norm, else
 * made here. */
static void conv_backward_lane(struct layer *l, int lane, float *dz, float *buf,
                               struct conv_grads gr)
{
    const struct conv *cv = l->priv;
    int b0, b1;
    size_t in = shape_size(l->in), out = shape_size(l->out);
    conv_lane_images(l, lane, &b0, &b1);
    for (int b = b0; b < b1; b++) {
        const float *x = l->input + (size_t)b * in, *d = dz + (size_t)b * out;
        float *dx = l->dinput ? l->dinput + (size_t)b * in : NULL;
        if (!cv->bn)
            conv_dz_image(l, b, dz, gr.db);
        if (cv->depthwise)
            conv_depthwise_back(cv, gr.dw, dx, d, x);
        else
            conv_gemm_back(cv, gr.dw, dx, d, x, buf);
    }
}

/* Lane g's gradient targets; partials (lanes 1..) are zeroed here. */
static struct conv_grads conv_lane_grads(struct conv *cv, float *parts, int lane)
{
    if (lane == 0)
        return (struct conv_grads){cv->dweights, cv->dbiases};
    float *dw = parts + (size_t)(lane - 1) * conv_part_size(cv);
    memset(dw, 0, sizeof(float) * conv_part_size(cv));
    return (struct conv_grads){dw, dw + conv_align(cv->nw)};
}

/* dweights (and dbiases without batch norm) += the lanes' partials 1 .. lanes-1, in order. */
static void conv_reduce_partials(struct conv *cv, const float *parts)
{
    size_t stride = conv_part_size(cv), nb = cv->bn ? 0 : (size_t)cv->filters;
#pragma omp parallel for schedule(static) if (cv->nw * (size_t)cv->lanes > 65536)
    for (size_t i = 0; i < cv->nw + nb; i++) {
        float *t = i < cv->nw ? &cv->dweights[i] : &cv->dbiases[i - cv->nw];
        size_t at = i < cv->nw ? i : conv_align(cv->nw) + (i - cv->nw);
        float s = *t;
        for (int g = 1; g < cv->lanes; g++)
            s += parts[(size_t)(g - 1) * stride + at];
        *t = s;
    }
}

static void conv_backward(struct layer *l, struct pass *p)
{
    struct conv *cv = l->priv;
    size_t all = shape_size(l->out) * (size_t)l->batch;
    float *dz = p->workspace, *bufs = dz + conv_align(all);
    float *parts = bufs + cv->col * (size_t)cv->lanes;
    CN_ASSERT(cv->z || !act_needs_input((enum activation)cv->act));
    if (cv->bn) {
        act_backward(dz, l->doutput, cv->z, l->output, all, (enum activation)cv->act);
        conv_bn_backward(l, p, dz);
    }
#pragma omp parallel for schedule(static) if (cv->lanes > 1)
    for (int lane = 0; lane < cv->lanes; lane++)
        conv_backward_lane(l, lane, dz, bufs + (size_t)lane * cv->col,
                           conv_lane_grads(cv, parts, lane));
    if (cv->lanes > 1)
        conv_reduce_partials(cv, parts);
}

/* "F KHxKW/S[xSW] [pad P|PHxPW][, dilation D][, groups G], act[, bn]": sizes height x width. */
static void conv_describe(const struct layer *l, char *buf, size_t n)
{
    const struct conv *cv = l->priv;
    char stride[24], pad[32] = "", dil[24] = "", grp[24] = "";
    if (cv->sh == cv->sw)
        snprintf(stride, sizeof stride, "%d", cv->sh);
    else
        snprintf(stride, sizeof stride, "%dx%d", cv->sh, cv->sw);
    if (cv->ph == cv->pw && cv->ph)
        snprintf(pad, sizeof pad, " pad %d", cv->ph);
    else if (cv->ph != cv->pw)
        snprintf(pad, sizeof pad, " pad %dx%d", cv->ph, cv->pw);
    if (cv->dilation > 1)
        snprintf(dil, sizeof dil, ", dilation %d", cv->dilation);
    if (cv->groups > 1)
        snprintf(grp, sizeof grp, ", groups %d", cv->groups);
    snprintf(buf, n, "%d %dx%d/%s%s%s%s, %s%s", cv->filters, cv->kh, cv->kw, stride, pad, dil, grp,
             act_names[cv->act], cv->bn ? ", bn" : "");
}

/* 2 * F * R multiply-adds per output position (R: one group's taps); the bias or batch norm is
 * not counted. */
static double conv_flops(const struct layer *l)
{
    const struct conv *cv = l->priv;
    return 2.0 * (double)cv->P * (double)cv->filters * (double)cv->R;
}

const struct layer_ops conv_ops = {
    .name = "convolutional",
    .alias = "conv",
    .type = LAYER_CONV,
    .build = conv_build,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
    .describe = conv_describe,
    .flops = conv_flops,
};
