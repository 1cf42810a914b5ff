/* connected.c - [connected] / [conn]: fully connected layer (Darknet's connected_layer.c), then a
 * bias or a batch norm, then an activation.
 *
 * Dimensions: B images of I = c*h*w inputs (the input flattened, NCHW order) to O outputs; the
 * output shape is (O, 1, 1). y = x * weights^T + biases with weights [O][I] row-major, so
 * forward is one GEMM over the batch: z[B x O] = x[B x I] * W^T; at batch 1 a GEMV (z = W x,
 * kernels/gemv.h), which streams the weights once instead of packing them for a GEMM of N = 1.
 * Keys and defaults as Darknet's parse_connected: output=1 activation=logistic batch_normalize=0,
 * plus init=he (Darknet's: sqrt(2/I) * uniform(-1, 1)) | xavier (uniform in +-sqrt(6/(I+O))).
 * Parameters in Darknet's .weights order: biases (O; the batch norm's shift with
 * batch_normalize=1), weights [O][I], then [scales, rolling_mean, rolling_variance] (O each).
 * Batch norm normalises each output over the batch (S = 1), in the net's bn_style.
 * Backward: dW += dz^T * x, dinput += dz * W (GEMMs over the whole batch, threads inside).
 * Workspace (training nets): dz, batch x O.
 * Training memory: backward reads the input (for dW) and the output only where the activation's
 * slope is taken from y; a linear activation, or one whose slope needs z (kept then: swish, mish,
 * stair), leaves the output unread (layer.h, build_backward_skips_output).
 * Left out: Darknet's transposed-weights .weights variant (the loader rejects it).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "kernels/gemm.h"
#include "kernels/gemv.h"
#include "net/layer.h"

#define CONNECTED_MAX_OUTPUTS (1 << 24)
/* inputs x outputs: 4 GiB of weights, a quarter of NET_MAX_BYTES (training adds their gradients
 * and momentum), so that an oversized layer fails here, naming its line, not at allocation */
#define CONNECTED_MAX_WEIGHTS ((size_t)1 << 30)

enum connected_init { INIT_HE, INIT_XAVIER, INIT_COUNT };
static const char *const connected_init_names[INIT_COUNT] = {"he", "xavier"};

struct connected {
    int outputs, inputs, bn, act, init;
    float *weights, *dweights, *biases, *dbiases, *scales, *dscales, *rolling_mean, *rolling_var;
    float *z;                  /* batch x O pre-activation, kept when the activation needs it */
    float *x_hat, *mean, *var; /* batch norm caches (training nets) */
    struct bn_conf bnc;        /* the net's batch-norm convention */
};

/* The error for a layer over CONNECTED_MAX_WEIGHTS, on its output= line (or the section's). */
static int too_many_weights(const struct layer *l, struct cfg_section *s, size_t nw, cn_error *e)
{
    char what[160];
    snprintf(what, sizeof what, "%zu inputs (%dx%dx%d) x %zu outputs = %zu weights, more than %zu",
             shape_size(l->in), l->in.c, l->in.h, l->in.w, nw / shape_size(l->in), nw,
             CONNECTED_MAX_WEIGHTS);
    struct cfg_kv *kv = cfg_find(s, "output");
    return kv ? cfg_fail_kv(s, kv, e, "%s", what) : cfg_fail_section(s, e, "%s", what);
}

static int connected_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct connected *c = xcalloc(1, sizeof *c);
    l->priv = c;
    if (cfg_get_int(s, "output", 1, 1, CONNECTED_MAX_OUTPUTS, &c->outputs, e) ||
        layer_get_activation(s, ACT_LOGISTIC, &c->act, e) ||
        cfg_get_bool(s, "batch_normalize", 0, &c->bn, e) ||
        cfg_get_choice(s, "init", connected_init_names, INIT_COUNT, INIT_HE, &c->init, e))
        return -1;
    size_t nw, O = (size_t)c->outputs, all = O * (size_t)build_batch(b);
    if (shape_size(l->in) > INT_MAX || cn_mul(&nw, shape_size(l->in), O))
        return cfg_fail_section(s, e, "%d outputs from %dx%dx%d inputs is too large", c->outputs,
                                l->in.c, l->in.h, l->in.w);
    if (nw > CONNECTED_MAX_WEIGHTS)
        return too_many_weights(l, s, nw, e);
    c->inputs = (int)shape_size(l->in);
    c->bnc = *build_bn(b);
    l->out = (struct shape){c->outputs, 1, 1};
    build_param(b, &c->biases, &c->dbiases, O, "biases", PARAM_TRAIN);
    build_param(b, &c->weights, &c->dweights, nw, "weights", PARAM_TRAIN | PARAM_DECAY);
    if (c->bn) {
        build_param(b, &c->scales, &c->dscales, O, "scales", PARAM_TRAIN);
        build_param(b, &c->rolling_mean, NULL, O, "rolling_mean", 0);
        build_param(b, &c->rolling_var, NULL, O, "rolling_variance", 0);
        build_buffer(b, &c->x_hat, all, BUF_BACKWARD);
        build_buffer(b, &c->mean, O, BUF_TRAIN);
        build_buffer(b, &c->var, O, BUF_TRAIN);
    }
    if (act_needs_input(c->act))
        build_buffer(b, &c->z, all, BUF_TRAIN);
    if (c->act == ACT_LINEAR || act_needs_input(c->act))
        build_backward_skips_output(b);
    if (build_training(b))
        build_workspace(b, all);
    return 0;
}

static void connected_init(struct layer *l, cn_rng *rng)
{
    struct connected *c = l->priv;
    size_t nw = (size_t)c->inputs * (size_t)c->outputs;
    double he = sqrt(2.0 / c->inputs), xavier = sqrt(6.0 / ((double)c->inputs + c->outputs));
    double scale = c->init == INIT_HE ? he : xavier;
    for (size_t i = 0; i < nw; i++)
        c->weights[i] = (float)(scale * (2 * cn_rng_uniform(rng) - 1));
    for (int o = 0; o < c->outputs; o++) {
        c->biases[o] = 0.f;
        if (c->bn) {
            c->scales[o] = 1.f;
            c->rolling_mean[o] = 0.f;
            c->rolling_var[o] = 1.f;
        }
    }
}

/* Batch norm over the batch, per output; an inference-mode pass of a training net also keeps
 * x_hat (from the rolling statistics) so backward can follow it, except below the backward cut
 * (no x_hat: BUF_BACKWARD). */
static void connected_bn_forward(struct layer *l, const struct pass *p, float *pre)
{
    struct connected *c = l->priv;
    int O = c->outputs;
    if (p->train) {
        CN_ASSERT(c->x_hat);
        bn_forward_train_sync(pre, c->x_hat, c->mean, c->var, c->rolling_mean, c->rolling_var, pre,
                              c->scales, c->biases, l->batch, O, 1, &c->bnc, p->bn_sync);
        return;
    }
    if (c->x_hat)
        bn_x_hat_infer(c->x_hat, pre, c->rolling_mean, c->rolling_var, l->batch, O, 1, &c->bnc);
    bn_forward_infer(pre, pre, c->scales, c->biases, c->rolling_mean, c->rolling_var, l->batch, O,
                     1, &c->bnc);
}

static void connected_forward(struct layer *l, struct pass *p)
{
    struct connected *c = l->priv;
    int B = l->batch, O = c->outputs, I = c->inputs;
    float *pre = c->z ? c->z : l->output;
    if (B == 1)
        gemv(pre, c->weights, l->input, O, I, 0);
    else
        gemm(pre, O, l->input, I, 0, c->weights, I, 1, B, O, I, 1, 0);
    if (c->bn)
        connected_bn_forward(l, p, pre);
    else
        for (int b = 0; b < B; b++)
            for (int o = 0; o < O; o++)
                pre[(size_t)b * (size_t)O + (size_t)o] += c->biases[o];
    act_forward(l->output, pre, (size_t)B * (size_t)O, (enum activation)c->act);
}

/* Bias or batch-norm gradients; dz becomes the gradient of the GEMM's output (in place). */
static void connected_affine_backward(struct layer *l, const struct pass *p, float *dz)
{
    struct connected *c = l->priv;
    int O = c->outputs;
    if (c->bn && p->train) {
        bn_backward_sync(dz, c->dscales, c->dbiases, dz, c->x_hat, c->var, c->scales, l->batch, O,
                         1, &c->bnc, p->bn_sync);
        return;
    }
    if (c->bn) { /* inference-mode pass: the frozen affine map */
        bn_backward_infer(dz, c->dscales, c->dbiases, dz, c->x_hat, c->rolling_var, c->scales,
                          l->batch, O, 1, &c->bnc);
        return;
    }
    for (int b = 0; b < l->batch; b++)
        for (int o = 0; o < O; o++)
            c->dbiases[o] += dz[(size_t)b * (size_t)O + (size_t)o];
}

static void connected_backward(struct layer *l, struct pass *p)
{
    struct connected *c = l->priv;
    int B = l->batch, O = c->outputs, I = c->inputs;
    float *dz = p->workspace;
    CN_ASSERT(c->z || !act_needs_input((enum activation)c->act));
    const float *y = c->z || c->act == ACT_LINEAR ? NULL : l->output; /* see connected_build */
    act_backward(dz, l->doutput, c->z, y, (size_t)B * (size_t)O, (enum activation)c->act);
    connected_affine_backward(l, p, dz);
    gemm(c->dweights, I, dz, O, 1, l->input, I, 0, O, I, B, 1, 1);
    if (l->dinput)
        gemm(l->dinput, I, dz, O, 0, c->weights, I, 0, B, I, O, 1, 1);
}

static void connected_describe(const struct layer *l, char *buf, size_t n)
{
    const struct connected *c = l->priv;
    snprintf(buf, n, "%d -> %d, %s%s", c->inputs, c->outputs, act_names[c->act],
             c->bn ? ", bn" : "");
}

static void connected_algorithm(const struct layer *l, char *buf, size_t n)
{
    snprintf(buf, n, "%s", l->batch == 1 ? "gemv" : "gemm");
}

static double connected_flops(const struct layer *l)
{
    const struct connected *c = l->priv;
    return 2.0 * (double)c->inputs * (double)c->outputs;
}

const struct layer_ops connected_ops = {
    .name = "connected",
    .alias = "conn",
    .type = LAYER_CONNECTED,
    .build = connected_build,
    .init = connected_init,
    .forward = connected_forward,
    .backward = connected_backward,
    .describe = connected_describe,
    .algorithm = connected_algorithm,
    .flops = connected_flops,
};
