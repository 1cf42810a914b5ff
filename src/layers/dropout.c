/* dropout.c - [dropout]: inverted dropout (Srivastava et al. 2014; Darknet's dropout_layer.c).
 *
 * Training: each value is dropped (set to 0) with probability p and kept values are scaled by
 * 1/(1-p), so the expected output equals the input and inference is the identity. A value is
 * dropped when a uniform draw from pass->rng is < p (Darknet's test), one draw per value in
 * batch-major order, sequentially (the stream, not the thread count, fixes the mask). The mask
 * (0 or 1/(1-p) per value) lives in a BUF_TRAIN buffer; backward multiplies by it and reads
 * neither the input nor the output (layer.h, build_backward_skips_*). Output shape is the input
 * shape. Unlike Darknet the layer is not in place in training: it has its own
 * output. An inference net may make it a view of its input (layer.h), and then it costs nothing.
 */
#include <stdio.h>
#include <string.h>

#include "net/layer.h"

struct dropout {
    float prob, scale;
    float *mask; /* batch x in (training nets only) */
};

static int dropout_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct dropout *d = xcalloc(1, sizeof *d);
    l->priv = d;
    if (cfg_get_float(s, "probability", 0.5f, 0.f, 1.f, &d->prob, e))
        return -1;
    if (d->prob >= 1.f)
        return cfg_fail_kv(s, cfg_find(s, "probability"), e, "must be < 1 (nothing would pass)");
    d->scale = 1.f / (1.f - d->prob);
    l->out = l->in;
    build_buffer(b, &d->mask, shape_size(l->in) * (size_t)build_batch(b), BUF_TRAIN);
    build_backward_skips_output(b); /* backward reads the mask and doutput only */
    build_backward_skips_inputs(b);
    if (!build_training(b) && build_index(b) > 0) /* the identity: its input, in place */
        build_output_view(b, build_layer_ref(b, build_index(b) - 1), 0);
    return 0;
}

static void dropout_forward(struct layer *l, struct pass *p)
{
    struct dropout *d = l->priv;
    size_t n = shape_size(l->in) * (size_t)l->batch;
    if (!p->train) {
        if (l->output != l->input)
            memcpy(l->output, l->input, sizeof(float) * n);
        return;
    }
    CN_ASSERT(d->mask && p->rng);
    for (size_t i = 0; i < n; i++) {
        d->mask[i] = cn_rng_uniform(p->rng) < d->prob ? 0.f : d->scale;
        l->output[i] = l->input[i] * d->mask[i];
    }
}

/* dinput += doutput * mask in training passes; += doutput at inference (the identity). */
static void dropout_backward(struct layer *l, struct pass *p)
{
    const struct dropout *d = l->priv;
    size_t n = shape_size(l->in) * (size_t)l->batch;
    if (!l->dinput)
        return;
    if (p->train) {
        for (size_t i = 0; i < n; i++)
            l->dinput[i] += l->doutput[i] * d->mask[i];
    } else {
        for (size_t i = 0; i < n; i++)
            l->dinput[i] += l->doutput[i];
    }
}

static void dropout_describe(const struct layer *l, char *buf, size_t n)
{
    const struct dropout *d = l->priv;
    snprintf(buf, n, "p=%.2f", (double)d->prob);
}

/* One multiply per value (training); inference is a copy. */
static double dropout_flops(const struct layer *l)
{
    return (double)shape_size(l->in);
}

const struct layer_ops dropout_ops = {
    .name = "dropout",
    .type = LAYER_DROPOUT,
    .build = dropout_build,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .describe = dropout_describe,
    .flops = dropout_flops,
};
