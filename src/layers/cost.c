/* cost.c - [cost]: Darknet's cost_layer.c, a loss on the layer below; its output is its input.
 *
 * Forward copies the input to the output: Darknet's get_network_output skips cost layers, so the
 * net's prediction is the layer below (for resnet101.cfg, the [softmax]'s probabilities). With
 * pass->truth it adds its loss to pass->loss; backward starts the chain (is_loss).
 *
 * Keys as Darknet's parse_cost: type = sse (default), masked (sse that skips targets equal to
 * Darknet's SECRET_NUM, -1234) or L1; scale (default 1) multiplies loss and gradient. ratio,
 * noobj and thresh are parsed as Darknet does: ratio has no effect in Darknet either (its GPU
 * path computes a threshold, then overwrites it with 0), noobj only acts on type=seg, which is
 * not implemented; thresh (GPU only in Darknet: it zeroes deltas below thresh/inputs) must be 0.
 *
 * The loss, on y (the input) against t, with the ordinary gradient sign, so that the gradient is
 * Darknet's delta negated (Darknet's l2_cpu: delta = t - y; backward adds scale * delta):
 *   sse:  L = scale/2 * sum (y - t)^2     dL/dy = scale * (y - t)
 *   L1:   L = scale * sum |y - t|         dL/dy = scale * sign(y - t)   (+1 at y = t, as Darknet)
 * Darknet reports sum (t - y)^2 for sse, twice our value: the halving keeps L and its gradient
 * consistent (the gradient check needs that). Gradients are multiplied by pass->loss_scale like
 * every loss here (Darknet divides the update by the batch instead).
 *
 * After a [softmax] (only type=sse): the softmax already adds its cross-entropy and the logit
 * gradient y - t. Darknet then ALSO passes the cost's delta scale*(t - y) straight through the
 * softmax (backward_softmax_layer only adds), so Darknet trains resnet101.cfg with a logit
 * gradient of (1 + scale)(y - t), twice the cross-entropy's (checked with the Debian
 * libdarknet: the layer-0 deltas double when [cost] is appended). Our default, straight_through=0,
 * adds nothing: the [cost] is the net's output marker and the loss stays the softmax's
 * cross-entropy, gradient y - t. straight_through=1 reproduces Darknet: as the [softmax] applies
 * its Jacobian J to the gradient it receives, the cost adds the loss scale * CE(y, t) =
 * -scale * sum t log y, whose gradient -scale * t / y becomes scale * (y - t) through J when each
 * group's targets sum to 1 (J applied to t/y gives t - y * sum(t)); the same logit gradient as
 * Darknet's straight-through delta, and an exact one.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "net/layer.h"

#define COST_SECRET_NUM -1234.f /* Darknet's "no target here" value for type=masked */
#define COST_PROB_FLOOR 1e-30f  /* t / y of a vanishing probability stays finite */

enum cost_type { COST_SSE, COST_MASKED, COST_L1, COST_TYPE_COUNT };
static const char *const cost_type_names[COST_TYPE_COUNT] = {"sse", "masked", "L1"};

struct cost {
    int type;
    float scale, ratio, noobj, thresh;
    int after_softmax, straight_through;
};

static int cost_parse(struct cost *c, struct cfg_section *s, cn_error *e)
{
    if (cfg_get_choice(s, "type", cost_type_names, COST_TYPE_COUNT, COST_SSE, &c->type, e) ||
        cfg_get_float(s, "scale", 1.f, 0.f, FLT_MAX, &c->scale, e) ||
        cfg_get_float(s, "ratio", 0.f, 0.f, 1.f, &c->ratio, e) ||
        cfg_get_float(s, "noobj", 1.f, 0.f, FLT_MAX, &c->noobj, e) ||
        cfg_get_float(s, "thresh", 0.f, 0.f, FLT_MAX, &c->thresh, e) ||
        cfg_get_bool(s, "straight_through", 0, &c->straight_through, e))
        return -1;
    if (c->thresh != 0.f)
        return cfg_fail_kv(s, cfg_find(s, "thresh"), e,
                           "not implemented (Darknet applies it only on the GPU): use 0");
    return 0;
}

static int cost_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct cost *c = xcalloc(1, sizeof *c);
    l->priv = c;
    if (cost_parse(c, s, e))
        return -1;
    int i = build_index(b);
    c->after_softmax = i > 0 && build_layer_ref(b, i - 1)->ops->type == LAYER_SOFTMAX;
    if (c->after_softmax && c->type != COST_SSE)
        return cfg_fail_kv(s, cfg_find(s, "type"), e,
                           "only type=sse may follow a [softmax] (as Darknet's resnet101.cfg)");
    if (!c->after_softmax && c->straight_through)
        return cfg_fail_kv(s, cfg_find(s, "straight_through"), e,
                           "only means something right after a [softmax]");
    l->out = l->in;
    return 0;
}

/* The loss over n values, and (when dx) its gradient times k added into dx. */
static double cost_eval(const struct cost *c, const float *y, const float *t, size_t n, float *dx,
                        float k)
{
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        if (c->type == COST_MASKED && t[i] == COST_SECRET_NUM)
            continue;
        float d = y[i] - t[i];
        if (c->type == COST_L1) {
            loss += fabs((double)d);
            if (dx)
                dx[i] += (d >= 0 ? 1.f : -1.f) * k;
        } else {
            loss += 0.5 * (double)d * (double)d;
            if (dx)
                dx[i] += d * k;
        }
    }
    return loss * (double)c->scale;
}

/* straight_through: scale * CE(y, t), and its gradient -scale * t / y times loss_scale. */
static double cost_xent(const struct cost *c, const float *y, const float *t, size_t n, float *dx,
                        float k)
{
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == 0)
            continue;
        float yy = fmaxf(y[i], COST_PROB_FLOOR);
        loss -= (double)t[i] * log((double)yy);
        if (dx)
            dx[i] -= t[i] / yy * k;
    }
    return loss * (double)c->scale;
}

static void cost_forward(struct layer *l, struct pass *p)
{
    const struct cost *c = l->priv;
    size_t n = shape_size(l->in) * (size_t)l->batch;
    memcpy(l->output, l->input, sizeof(float) * n);
    if (!p->truth || (c->after_softmax && !c->straight_through))
        return;
    if (c->after_softmax)
        p->loss += cost_xent(c, l->input, p->truth, n, NULL, 0);
    else
        p->loss += cost_eval(c, l->input, p->truth, n, NULL, 0);
}

static void cost_backward(struct layer *l, struct pass *p)
{
    const struct cost *c = l->priv;
    if (!l->dinput || !p->truth || (c->after_softmax && !c->straight_through))
        return;
    size_t n = shape_size(l->in) * (size_t)l->batch;
    float k = c->scale * p->loss_scale;
    if (c->after_softmax)
        cost_xent(c, l->input, p->truth, n, l->dinput, k);
    else
        cost_eval(c, l->input, p->truth, n, l->dinput, k);
}

static void cost_describe(const struct layer *l, char *buf, size_t n)
{
    const struct cost *c = l->priv;
    const char *how = !c->after_softmax ? "" : c->straight_through ? ", + scale x CE" : ", output";
    if (c->scale != 1.f)
        snprintf(buf, n, "%s x%g%s", cost_type_names[c->type], (double)c->scale, how);
    else
        snprintf(buf, n, "%s%s", cost_type_names[c->type], how);
}

/* Per value: a subtract, a square (or abs) and an add. */
static double cost_flops(const struct layer *l)
{
    return 3.0 * (double)shape_size(l->in);
}

const struct layer_ops cost_ops = {
    .name = "cost",
    .type = LAYER_COST,
    .is_loss = 1,
    .build = cost_build,
    .forward = cost_forward,
    .backward = cost_backward,
    .describe = cost_describe,
    .flops = cost_flops,
};
