/* batchnorm.c - [batchnorm]: standalone batch normalisation over the channels of its input
 * (Darknet's batchnorm_layer.c), S = h*w values per channel and image; kernels/batchnorm.h.
 *
 * No keys. Parameters, in this order: scales (trained), rolling_mean, rolling_variance (not
 * trained), then biases (trained). Darknet's .weights hold only the first three for a [batchnorm]
 * layer (load_batchnorm_weights) even though its forward adds the biases; cfgnet appends the
 * biases after them, so a Darknet file's [batchnorm] data is followed by C extra floats here.
 * Initial values: scales 1, biases 0, rolling mean 0, rolling variance 1.
 * The net's bn_style (darknet or torch: where eps goes, which variance; kernels/batchnorm.h).
 * Training passes use batch statistics; inference passes the rolling ones. A training net run in
 * inference mode still keeps x_hat, so backward then differentiates the frozen affine map;
 * below the backward cut, where no backward runs, it has none (BUF_BACKWARD) and skips it.
 */
#include <stdio.h>

#include "kernels/batchnorm.h"
#include "net/layer.h"

struct bnorm {
    float *scales, *dscales, *biases, *dbiases, *rolling_mean, *rolling_var;
    float *x_hat;       /* batch x in (training nets, not below the backward cut) */
    float *mean, *var;  /* C: the last training pass's batch statistics (training nets only) */
    struct bn_conf bnc; /* the net's batch-norm convention */
};

static int batchnorm_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    (void)s;
    (void)e;
    struct bnorm *n = xcalloc(1, sizeof *n);
    size_t C = (size_t)l->in.c, all = shape_size(l->in) * (size_t)build_batch(b);
    l->priv = n;
    l->out = l->in;
    n->bnc = *build_bn(b);
    build_param(b, &n->scales, &n->dscales, C, "scales", PARAM_TRAIN);
    build_param(b, &n->rolling_mean, NULL, C, "rolling_mean", 0);
    build_param(b, &n->rolling_var, NULL, C, "rolling_variance", 0);
    build_param(b, &n->biases, &n->dbiases, C, "biases", PARAM_TRAIN);
    build_buffer(b, &n->x_hat, all, BUF_BACKWARD);
    build_buffer(b, &n->mean, C, BUF_TRAIN);
    build_buffer(b, &n->var, C, BUF_TRAIN);
    if (build_training(b))
        build_workspace(b, all); /* dx before it is added into dinput */
    return 0;
}

static void batchnorm_init(struct layer *l, cn_rng *rng)
{
    (void)rng;
    struct bnorm *n = l->priv;
    for (int c = 0; c < l->in.c; c++) {
        n->scales[c] = 1.f;
        n->biases[c] = 0.f;
        n->rolling_mean[c] = 0.f;
        n->rolling_var[c] = 1.f;
    }
}

static void batchnorm_forward(struct layer *l, struct pass *p)
{
    struct bnorm *n = l->priv;
    int S = l->in.h * l->in.w;
    if (p->train) {
        CN_ASSERT(n->x_hat);
        bn_forward_train_sync(l->output, n->x_hat, n->mean, n->var, n->rolling_mean, n->rolling_var,
                              l->input, n->scales, n->biases, l->batch, l->in.c, S, &n->bnc,
                              p->bn_sync);
        return;
    }
    bn_forward_infer(l->output, l->input, n->scales, n->biases, n->rolling_mean, n->rolling_var,
                     l->batch, l->in.c, S, &n->bnc);
    if (n->x_hat) /* for backward through an inference-mode pass */
        bn_x_hat_infer(n->x_hat, l->input, n->rolling_mean, n->rolling_var, l->batch, l->in.c, S,
                       &n->bnc);
}

/* Training passes: through the batch statistics; inference passes: through the frozen affine
 * map. dx goes to the workspace, then is added into dinput. */
static void batchnorm_backward(struct layer *l, struct pass *p)
{
    struct bnorm *n = l->priv;
    size_t all = shape_size(l->in) * (size_t)l->batch;
    float *dx = p->workspace;
    int S = l->in.h * l->in.w;
    if (p->train)
        bn_backward_sync(dx, n->dscales, n->dbiases, l->doutput, n->x_hat, n->var, n->scales,
                         l->batch, l->in.c, S, &n->bnc, p->bn_sync);
    else
        bn_backward_infer(dx, n->dscales, n->dbiases, l->doutput, n->x_hat, n->rolling_var,
                          n->scales, l->batch, l->in.c, S, &n->bnc);
    if (l->dinput)
        for (size_t i = 0; i < all; i++)
            l->dinput[i] += dx[i];
}

static void batchnorm_describe(const struct layer *l, char *buf, size_t n)
{
    snprintf(buf, n, "%d channels", l->in.c);
}

/* Inference folds to one multiply-add per value (2 operations). */
static double batchnorm_flops(const struct layer *l)
{
    return 2.0 * (double)shape_size(l->in);
}

const struct layer_ops batchnorm_ops = {
    .name = "batchnorm",
    .type = LAYER_BATCHNORM,
    .build = batchnorm_build,
    .init = batchnorm_init,
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
    .describe = batchnorm_describe,
    .flops = batchnorm_flops,
};
