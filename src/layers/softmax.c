/* softmax.c - [softmax] / [soft]: softmax over groups, with cross-entropy loss against the truth.
 *
 * Each image's inputs (c*h*w values, flattened in NCHW order) split into `groups` equal
 * consecutive slices; each slice gets y = softmax(x / temperature), computed stably by
 * subtracting the slice's maximum first (Darknet's softmax() in blas.c). Output shape = input
 * shape. With pass->truth: loss = -sum t * log(max(y, 1e-30)) over all values and images, added
 * to pass->loss, and backward starts the chain with the combined gradient
 *   dinput += (y - t) * loss_scale / temperature,
 * exact when each group's targets sum to 1 (one-hot labels); docs/softmax.md derives it. The
 * code computes (y * sum(t) - t), the same for such targets and the exact gradient when a class
 * weight scales a group's targets (the loader's class_weights=). Without
 * truth, backward applies the softmax Jacobian to doutput instead.
 *
 * loss_weight=w (default 1) scales the loss and its gradient. A [softmax] that is not the last
 * layer is one of two things. Followed by a [route] (which may not include it: no layer may read
 * a loss layer), it is an auxiliary classifier (GoogLeNet's, w = 0.3): it reads the same
 * pass->truth as the main head (the net checks its size), adds w * its loss to pass->loss, and
 * starts its own branch of backward, ignoring its doutput. Followed by another loss layer
 * (Darknet's resnet101.cfg puts a [cost] after it) it is the main head and its output feeds that
 * loss, so backward adds the Jacobian of doutput to its own gradient. Anything else is an error.
 * Backward reads y, doutput and the truth, never the input, yet declares no
 * build_backward_skips_inputs (layer.h): it would save batch x classes floats, and make the
 * linear layer under the head forward-only, whose output the trainer's non-finite report then
 * cannot look at (cli/train.c name_nonfinite: it would name this layer, not the one that
 * overflowed; test_train's test_nonfinite_loss).
 * Left out: Darknet's softmax_tree (hierarchical softmax) and spatial softmax.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "net/layer.h"

#define SOFTMAX_LOG_FLOOR 1e-30f /* log(y) of a vanishing probability stays finite */

enum softmax_place {
    SOFTMAX_LAST, /* the net's output */
    SOFTMAX_AUX,  /* an auxiliary head: a [route] follows */
    SOFTMAX_FEEDS /* a loss layer follows and reads the output */
};

struct softmax {
    int groups, place;
    float temperature, loss_weight;
};

/* Where this softmax sits; "auxiliary head without a route back" when nothing legal follows. */
static int softmax_place(struct softmax *m, struct cfg_section *s, const struct build *b,
                         cn_error *e)
{
    const struct layer_ops *next = build_next_ops(b);
    m->place = SOFTMAX_LAST;
    if (build_index(b) == build_layer_count(b) - 1 || !next)
        return 0; /* last, or an unknown section follows: its own build reports it */
    if (next->type == LAYER_ROUTE)
        m->place = SOFTMAX_AUX;
    else if (next->is_loss)
        m->place = SOFTMAX_FEEDS;
    else
        return cfg_fail_section(s, e,
                                "auxiliary head without a route back: layer %d is not the last "
                                "layer, so a [route] back to the trunk must follow it, not [%s]",
                                build_index(b), next->name);
    return 0;
}

static int softmax_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct softmax *m = xcalloc(1, sizeof *m);
    l->priv = m;
    if (cfg_get_int(s, "groups", 1, 1, INT32_MAX, &m->groups, e) ||
        cfg_get_float(s, "temperature", 1.f, 0.f, FLT_MAX, &m->temperature, e) ||
        cfg_get_float(s, "loss_weight", 1.f, 0.f, FLT_MAX, &m->loss_weight, e) ||
        softmax_place(m, s, b, e))
        return -1;
    if (!(m->temperature > 0.f))
        return cfg_fail_kv(s, cfg_find(s, "temperature"), e, "must be > 0");
    if (shape_size(l->in) % (size_t)m->groups)
        return cfg_fail_kv(s, cfg_find(s, "groups"), e, "must divide the input size %zu",
                           shape_size(l->in));
    l->out = l->in;
    return 0;
}

/* y = softmax(x / T) over n values, max subtracted first. */
static void softmax_row(float *y, const float *x, size_t n, float T)
{
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        y[i] = expf((x[i] - mx) / T);
        sum += y[i];
    }
    for (size_t i = 0; i < n; i++)
        y[i] /= sum;
}

static void softmax_forward(struct layer *l, struct pass *p)
{
    const struct softmax *m = l->priv;
    size_t total = shape_size(l->in) * (size_t)l->batch;
    size_t n = shape_size(l->in) / (size_t)m->groups, rows = total / n;
#pragma omp parallel for schedule(static) if (rows > 1 && total >= 65536) /* else waking costs more */
    for (size_t r = 0; r < rows; r++)
        softmax_row(l->output + r * n, l->input + r * n, n, m->temperature);
    if (!p->truth)
        return;
    double loss = 0;
    for (size_t i = 0; i < total; i++)
        if (p->truth[i] != 0)
            loss -= (double)p->truth[i] * log((double)fmaxf(l->output[i], SOFTMAX_LOG_FLOOR));
    p->loss += (double)m->loss_weight * loss;
}

/* Without a loss: dx = y * (dy - sum(dy * y)) / T per group. */
static void softmax_backward_jacobian(struct layer *l, size_t n, size_t rows, float T)
{
    for (size_t r = 0; r < rows; r++) {
        const float *y = l->output + r * n, *dy = l->doutput + r * n;
        float *dx = l->dinput + r * n;
        double dot = 0;
        for (size_t i = 0; i < n; i++)
            dot += (double)dy[i] * (double)y[i];
        for (size_t i = 0; i < n; i++)
            dx[i] += y[i] * (dy[i] - (float)dot) / T;
    }
}

static void softmax_backward(struct layer *l, struct pass *p)
{
    const struct softmax *m = l->priv;
    size_t total = shape_size(l->in) * (size_t)l->batch;
    size_t n = shape_size(l->in) / (size_t)m->groups;
    if (!l->dinput)
        return;
    if (m->place == SOFTMAX_AUX && !p->truth)
        return; /* nothing reads an auxiliary head: no loss, no gradient */
    if (m->place != SOFTMAX_AUX && (!p->truth || m->place == SOFTMAX_FEEDS))
        softmax_backward_jacobian(l, n, total / n, m->temperature);
    if (!p->truth)
        return;
    float k = m->loss_weight * p->loss_scale / m->temperature;
    for (size_t r = 0; r < total / n; r++) { /* (y * sum(t) - t): targets need not sum to 1 */
        const float *y = l->output + r * n, *t = p->truth + r * n;
        float st = 0, *dx = l->dinput + r * n;
        for (size_t i = 0; i < n; i++)
            st += t[i];
        for (size_t i = 0; i < n; i++)
            dx[i] += (y[i] * st - t[i]) * k;
    }
}

static void softmax_describe(const struct layer *l, char *buf, size_t len)
{
    const struct softmax *m = l->priv;
    size_t n = shape_size(l->in) / (size_t)m->groups;
    int k = m->groups == 1 ? snprintf(buf, len, "%zu classes", n)
                           : snprintf(buf, len, "%d groups of %zu", m->groups, n);
    if (m->temperature != 1.f && k >= 0 && (size_t)k < len)
        k += snprintf(buf + k, len - (size_t)k, ", T=%g", (double)m->temperature);
    if (m->place == SOFTMAX_AUX && k >= 0 && (size_t)k < len)
        k += snprintf(buf + k, len - (size_t)k, ", auxiliary");
    if (m->loss_weight != 1.f && k >= 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, ", loss x%g", (double)m->loss_weight);
}

/* Per value: max compare, subtract-and-divide, exp, add, normalise: 5 operations (exp as one). */
static double softmax_flops(const struct layer *l)
{
    return 5.0 * (double)shape_size(l->in);
}

const struct layer_ops softmax_ops = {
    .name = "softmax",
    .alias = "soft",
    .type = LAYER_SOFTMAX,
    .is_loss = 1,
    .build = softmax_build,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .describe = softmax_describe,
    .flops = softmax_flops,
};
