/* conv.c - [convolutional] / [conv]: 2-D convolution of NCHW images (Darknet's
 * convolutional_layer.c), then a bias or a batch norm, then an activation.
 *
 * Dimensions: F filters of C x size x size over a C x H x W input, R = C*size*size taps, P =
 * OH*OW output positions, out = (F, OH, OW) with OH = (H + 2*padding - size)/stride + 1.
 * Keys and defaults as Darknet's parse_convolutional: filters=1 size=1 stride=1 pad=0 (1: padding
 * = size/2) padding=0 (per side, used when pad=0) activation=logistic batch_normalize=0, plus
 * init=he|xavier. Parameters in Darknet's .weights order: biases (F; the batch norm's shift when
 * batch_normalize=1), [scales, rolling_mean, rolling_variance] (F each), weights
 * [F][C][size][size].
 *
 * Forward per image: im2col, then z = weights[F x R] * col[R x P] by GEMM (a 1x1, stride 1,
 * unpadded kernel uses the image itself as col); without batch norm the bias and activation
 * follow on the same image while it is in cache, with it they run over the batch afterwards.
 * Backward per image: dz (the activation's gradient, made per image without batch norm), the
 * weight gradient dz[F x P] * row[P x R] (im2row, so neither GEMM operand is transposed), and
 * the input gradient col2im(weights^T * dz), added into dinput.
 * Threads: the batch is split into `lanes` contiguous groups of images (as many as OpenMP threads
 * when the net is built, fewer if their col buffers would pass CONV_LANE_FLOATS); each lane has
 * its own col buffer and, in backward, its own weight and bias gradient partials (lane 0 adds
 * straight into the gradients), summed in lane order afterwards, so results depend on the
 * thread count at build time only through that order. With one lane the GEMMs use the threads.
 * Workspace: lanes col buffers in forward; dz (batch x out), lanes col buffers and lanes-1
 * gradient partials in backward.
 * Left out: groups, dilation, non-square kernels in the cfg, Darknet's binary/xnor and
 * AlexeyAB's extra keys.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "net/layer.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define CONV_MAX_SIDE 65536 /* size, stride, padding */
#define CONV_MAX_FILTERS 1048576
#define CONV_LANE_FLOATS ((size_t)1 << 26) /* all lanes' col buffers: 256 MB */
#define CONV_GEMM_MAX ((size_t)1 << 31)    /* GEMM dimensions are ints */

enum conv_init { INIT_HE, INIT_XAVIER, INIT_COUNT };
static const char *const conv_init_names[INIT_COUNT] = {"he", "xavier"};

struct conv {
    int filters, size, stride, padding, bn, act, init;
    struct im2col_geom g;
    int direct;           /* 1x1 kernel, stride 1, no padding: the image is its own col matrix */
    int lanes;            /* groups of images run concurrently, each with its own buffers */
    size_t R, P, col, nw; /* taps, positions, one col buffer (0 when direct), weights */
    float *weights, *dweights, *biases, *dbiases, *scales, *dscales, *rolling_mean, *rolling_var;
    float *z;                  /* batch x out pre-activation, kept when the activation needs it */
    float *x_hat, *mean, *var; /* batch norm caches (training nets) */
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

static int conv_parse(struct conv *cv, struct cfg_section *s, cn_error *e)
{
    int pad;
    if (cfg_get_int(s, "filters", 1, 1, CONV_MAX_FILTERS, &cv->filters, e) ||
        cfg_get_int(s, "size", 1, 1, CONV_MAX_SIDE, &cv->size, e) ||
        cfg_get_int(s, "stride", 1, 1, CONV_MAX_SIDE, &cv->stride, e) ||
        cfg_get_bool(s, "pad", 0, &pad, e) ||
        cfg_get_int(s, "padding", 0, 0, CONV_MAX_SIDE, &cv->padding, e) ||
        layer_get_activation(s, ACT_LOGISTIC, &cv->act, e) ||
        cfg_get_bool(s, "batch_normalize", 0, &cv->bn, e) ||
        cfg_get_choice(s, "init", conv_init_names, INIT_COUNT, INIT_HE, &cv->init, e))
        return -1;
    if (pad)
        cv->padding = cv->size / 2;
    return 0;
}

/* Sets the geometry and sizes; rejects kernels that do not fit and products past size limits. */
static int conv_shape(struct layer *l, struct conv *cv, struct cfg_section *s, cn_error *e)
{
    if (im2col_geom_init(&cv->g, l->in.c, l->in.h, l->in.w, cv->size, cv->size, cv->stride,
                         cv->stride, cv->padding, cv->padding))
        return cfg_fail_section(s, e, "a %dx%d kernel does not fit the %dx%d input with padding %d",
                                cv->size, cv->size, l->in.w, l->in.h, cv->padding);
    cv->R = im2col_rows(&cv->g);
    cv->P = im2col_cols(&cv->g);
    size_t out, col;
    if (cv->R >= CONV_GEMM_MAX || cv->P >= CONV_GEMM_MAX || cn_mul(&cv->nw, cv->R, cv->filters) ||
        cn_mul(&out, cv->P, cv->filters) || cn_mul(&col, cv->R, cv->P) || out >= CONV_GEMM_MAX)
        return cfg_fail_section(s, e, "%d filters of %dx%dx%d over %dx%d outputs is too large",
                                cv->filters, l->in.c, cv->size, cv->size, cv->g.ow, cv->g.oh);
    cv->direct = cv->size == 1 && cv->stride == 1 && cv->padding == 0;
    cv->col = cv->direct ? 0 : conv_align(col);
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
    if (conv_parse(cv, s, e) || conv_shape(l, cv, s, e))
        return -1;
    size_t F = (size_t)cv->filters, all = shape_size(l->out) * (size_t)build_batch(b);
    cv->lanes = conv_lanes(build_batch(b), cv->col);
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

/* He (Darknet's): sqrt(2 / fan_in) * N(0, 1); Xavier: uniform in +-sqrt(6 / (fan_in + fan_out)). */
static void conv_init(struct layer *l, cn_rng *rng)
{
    struct conv *cv = l->priv;
    double fan_in = (double)cv->R, fan_out = (double)cv->filters * cv->size * cv->size;
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

/* For the lane's images: pre[b] = weights * col(input[b]); without batch norm also the biases
 * and the activation, while the image is in cache. */
static void conv_forward_lane(struct layer *l, int lane, float *col, float *pre)
{
    const struct conv *cv = l->priv;
    int b0, b1, F = cv->filters, R = (int)cv->R, P = (int)cv->P;
    size_t in = shape_size(l->in), out = shape_size(l->out);
    conv_lane_images(l, lane, &b0, &b1);
    for (int b = b0; b < b1; b++) {
        const float *x = l->input + (size_t)b * in;
        float *z = pre + (size_t)b * out;
        if (!cv->direct) {
            im2col(col, x, &cv->g);
            x = col;
        }
        gemm(z, P, cv->weights, R, 0, x, P, 0, F, P, R, 1, 0);
        if (cv->bn)
            continue;
        for (int f = 0; f < F; f++)
            for (int p = 0; p < P; p++)
                z[(size_t)f * (size_t)P + (size_t)p] += cv->biases[f];
        act_forward(l->output + (size_t)b * out, z, out, (enum activation)cv->act);
    }
}

/* x_hat from the rolling statistics, kept so backward can follow an inference-mode pass. */
static void conv_eval_x_hat(struct layer *l, const float *pre)
{
    const struct conv *cv = l->priv;
    size_t P = cv->P;
    for (int b = 0; b < l->batch; b++)
        for (int f = 0; f < cv->filters; f++) {
            size_t off = ((size_t)b * (size_t)cv->filters + (size_t)f) * P;
            float m = cv->rolling_mean[f], inv = 1.f / sqrtf(cv->rolling_var[f] + BN_EPS);
            for (size_t k = 0; k < P; k++)
                cv->x_hat[off + k] = (pre[off + k] - m) * inv;
        }
}

static void conv_bn_forward(struct layer *l, const struct pass *p, float *pre)
{
    struct conv *cv = l->priv;
    if (p->train) {
        CN_ASSERT(cv->x_hat);
        bn_forward_train(pre, cv->x_hat, cv->mean, cv->var, cv->rolling_mean, cv->rolling_var, pre,
                         cv->scales, cv->biases, l->batch, cv->filters, (int)cv->P);
        return;
    }
    if (cv->x_hat)
        conv_eval_x_hat(l, pre);
    bn_forward_infer(pre, pre, cv->scales, cv->biases, cv->rolling_mean, cv->rolling_var, l->batch,
                     cv->filters, (int)cv->P);
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
    size_t P = cv->P;
    if (p->train) {
        bn_backward(dz, cv->dscales, cv->dbiases, dz, cv->x_hat, cv->var, cv->scales, l->batch,
                    cv->filters, (int)P);
        return;
    }
    for (int b = 0; b < l->batch; b++)
        for (int f = 0; f < cv->filters; f++) {
            size_t off = ((size_t)b * (size_t)cv->filters + (size_t)f) * P;
            float k = cv->scales[f] / sqrtf(cv->rolling_var[f] + BN_EPS);
            float db = 0, ds = 0;
            for (size_t i = 0; i < P; i++) {
                db += dz[off + i];
                ds += dz[off + i] * cv->x_hat[off + i];
                dz[off + i] *= k;
            }
            cv->dbiases[f] += db;
            cv->dscales[f] += ds;
        }
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

/* For the lane's images: dw += dz[b] * row(input[b]); dinput[b] += col2im(weights^T * dz[b]).
 * buf holds one col (or row) matrix. dz is ready with batch norm, else made here. */
static void conv_backward_lane(struct layer *l, int lane, float *dz, float *buf,
                               struct conv_grads gr)
{
    const struct conv *cv = l->priv;
    int b0, b1, F = cv->filters, R = (int)cv->R, P = (int)cv->P;
    size_t in = shape_size(l->in), out = shape_size(l->out);
    conv_lane_images(l, lane, &b0, &b1);
    for (int b = b0; b < b1; b++) {
        const float *x = l->input + (size_t)b * in, *d = dz + (size_t)b * out;
        if (!cv->bn)
            conv_dz_image(l, b, dz, gr.db);
        if (cv->direct) {
            gemm(gr.dw, R, d, P, 0, x, P, 1, F, R, P, 1, 1);
        } else {
            im2row(buf, x, &cv->g);
            gemm(gr.dw, R, d, P, 0, buf, R, 0, F, R, P, 1, 1);
        }
        if (!l->dinput)
            continue;
        float *dx = l->dinput + (size_t)b * in;
        if (cv->direct) {
            gemm(dx, P, cv->weights, R, 1, d, P, 0, R, P, F, 1, 1);
        } else {
            gemm(buf, P, cv->weights, R, 1, d, P, 0, R, P, F, 1, 0);
            col2im(dx, buf, &cv->g);
        }
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

static void conv_describe(const struct layer *l, char *buf, size_t n)
{
    const struct conv *cv = l->priv;
    char pad[32] = "";
    if (cv->padding)
        snprintf(pad, sizeof pad, " pad %d", cv->padding);
    snprintf(buf, n, "%d %dx%d/%d%s, %s%s", cv->filters, cv->size, cv->size, cv->stride, pad,
             act_names[cv->act], cv->bn ? ", bn" : "");
}

/* 2 * F * R multiply-adds per output position; the bias or batch norm is not counted. */
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
