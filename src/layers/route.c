/* route.c - [route]: concatenation along channels of earlier layers' outputs (Darknet's
 * route_layer.c): Inception branches, SqueezeNet fire modules, DenseNet blocks.
 *
 * layers= lists K references, each negative (relative: this layer's index + v) or absolute, as
 * Darknet's parse_route; they are resolved once at build time (build_resolve_ref) and must be
 * earlier layers. All inputs share width and height; channels add up. With groups=G and
 * group_id=g (AlexeyAB's route_layer.c, used by CSP nets) each input contributes only its g-th of
 * G equal channel slices, so out.c = sum_k C_k / G; G must divide every C_k (AlexeyAB does not
 * check and slices the flat C*H*W block, which is the same thing when it does).
 *
 * Layout: NCHW per image makes a channel slice of one image a contiguous block of (C_k/G)*H*W
 * floats, so forward is one copy per input and image, in list order; backward ADDS each block of
 * doutput into the slice of its source's doutput it came from (the source's backward runs later:
 * it has a lower index). The layer below is read only when it is listed: a single-input route
 * (layers=-4) is how a net jumps back to its trunk after an auxiliary head. No parameters.
 *
 * In place (layer.h): a single-input route offers to be a view of its input's slice, and a
 * concatenation without groups offers each input a slot in its output, so the net may point the
 * outputs at each other (a view at any batch when the whole input is taken; slots at batch 1,
 * where per-image slices are contiguous). Forward skips every copy whose source already is its
 * destination: an Inception or DenseNet concatenation then costs nothing.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/layer.h"

#define ROUTE_MAX_INPUTS 1024 /* far above any real concatenation */
#define ROUTE_PAR_MIN 65536   /* floats copied below which one thread does it all */

struct route {
    int n, groups, group_id;
    struct layer **src; /* n earlier layers, in list order */
};

static int route_resolve(struct route *r, struct cfg_section *s, struct build *b, cn_error *e)
{
    int *v = NULL, n = 0;
    if (cfg_get_int_list(s, "layers", -INT_MAX, INT_MAX, &v, &n, e))
        return -1;
    int rc = 0;
    const struct cfg_kv *kv = cfg_find(s, "layers");
    if (n == 0)
        rc = cfg_fail_section(s, e, "layers= is required: the earlier layers to concatenate");
    else if (n > ROUTE_MAX_INPUTS)
        rc = cfg_fail_kv(s, kv, e, "%d inputs; at most %d", n, ROUTE_MAX_INPUTS);
    r->src = xcalloc((size_t)(n > 0 ? n : 1), sizeof *r->src);
    for (int k = 0; k < n && !rc; k++)
        rc = build_resolve_ref(b, s, kv, v[k], &r->src[k], e);
    r->n = rc ? 0 : n;
    free(v);
    return rc;
}

/* Every input has the first one's width and height, and channels the groups divide. */
static int route_shapes(struct layer *l, struct route *r, struct cfg_section *s, cn_error *e)
{
    const struct layer *a = r->src[0];
    long c = 0;
    for (int k = 0; k < r->n; k++) {
        const struct layer *x = r->src[k];
        if (x->out.w != a->out.w || x->out.h != a->out.h)
            return cfg_fail_kv(s, cfg_find(s, "layers"), e,
                               "layer %d [%s] is %dx%dx%d but layer %d [%s] is %dx%dx%d (w x h x "
                               "c): inputs must share width and height",
                               a->index, a->ops->name, a->out.w, a->out.h, a->out.c, x->index,
                               x->ops->name, x->out.w, x->out.h, x->out.c);
        if (x->out.c % r->groups)
            return cfg_fail_kv(s, cfg_find(s, "groups"), e,
                               "must divide the channels of every input, but layer %d [%s] has %d",
                               x->index, x->ops->name, x->out.c);
        c += x->out.c / r->groups;
    }
    if (c > INT_MAX)
        return cfg_fail_section(s, e, "%ld output channels is too many", c);
    l->out = (struct shape){(int)c, a->out.h, a->out.w};
    return 0;
}

/* The in-place offers described at the top: per image, input k starts at the sum of the parts
 * before it. */
static void route_offer(const struct route *r, struct build *b)
{
    if (r->n == 1) {
        size_t part = shape_size(r->src[0]->out) / (size_t)r->groups;
        build_output_view(b, r->src[0], part * (size_t)r->group_id);
        return;
    }
    size_t at = 0;
    for (int k = 0; k < r->n && r->groups == 1; k++) {
        build_output_slot(b, r->src[k], at);
        at += shape_size(r->src[k]->out);
    }
}

static int route_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct route *r = xcalloc(1, sizeof *r);
    l->priv = r;
    build_input_unused(b);
    if (route_resolve(r, s, b, e) || cfg_get_int(s, "groups", 1, 1, INT_MAX, &r->groups, e) ||
        cfg_get_int(s, "group_id", 0, 0, r->groups - 1, &r->group_id, e) ||
        route_shapes(l, r, s, e))
        return -1;
    route_offer(r, b);
    build_backward_skips_output(b); /* backward only adds gradients */
    build_backward_skips_inputs(b);
    return 0;
}

/* Floats route_forward must copy: 0 when every input already lies in its place (in place). */
static size_t route_copies(const struct layer *l)
{
    const struct route *r = l->priv;
    size_t out = shape_size(l->out), count = 0;
    for (int b = 0; b < l->batch; b++) {
        const float *y = l->output + (size_t)b * out;
        for (int k = 0; k < r->n; k++) {
            const struct layer *x = r->src[k];
            size_t in = shape_size(x->out), part = in / (size_t)r->groups;
            count += x->output + (size_t)b * in + part * (size_t)r->group_id != y ? part : 0;
            y += part;
        }
    }
    return count;
}

/* An in-place route returns at once, and a small copy runs on one thread: at batch 1 waking the
 * OpenMP threads costs more than the copy (tens of microseconds on a busy machine). */
static void route_forward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct route *r = l->priv;
    size_t out = shape_size(l->out), copies = route_copies(l);
    if (!copies)
        return;
#pragma omp parallel for schedule(static) if (l->batch > 1 && copies >= ROUTE_PAR_MIN)
    for (int b = 0; b < l->batch; b++) {
        float *y = l->output + (size_t)b * out;
        for (int k = 0; k < r->n; k++) {
            const struct layer *x = r->src[k];
            size_t in = shape_size(x->out), part = in / (size_t)r->groups;
            const float *from = x->output + (size_t)b * in + part * (size_t)r->group_id;
            if (from != y)
                memcpy(y, from, sizeof(float) * part);
            y += part;
        }
    }
}

static void route_backward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct route *r = l->priv;
    size_t out = shape_size(l->out);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < l->batch; b++) {
        const float *dy = l->doutput + (size_t)b * out;
        for (int k = 0; k < r->n; k++) {
            const struct layer *x = r->src[k];
            size_t in = shape_size(x->out), part = in / (size_t)r->groups;
            float *dx = x->doutput + (size_t)b * in + part * (size_t)r->group_id;
            for (size_t i = 0; i < part; i++)
                dx[i] += dy[i];
            dy += part;
        }
    }
}

/* "layers 3, 7" (absolute indices), then ", group 1/2" with groups. */
static void route_describe(const struct layer *l, char *buf, size_t n)
{
    const struct route *r = l->priv;
    size_t k = 0;
    for (int i = 0; i < r->n && k < n; i++) {
        int w = snprintf(buf + k, n - k, "%s%d", i ? ", " : (r->n > 1 ? "layers " : "layer "),
                         r->src[i]->index);
        k += w > 0 ? (size_t)w : 0;
    }
    if (r->groups > 1 && k < n)
        snprintf(buf + k, n - k, ", group %d/%d", r->group_id, r->groups);
}

/* Copies only: no floating-point operations. */
static double route_flops(const struct layer *l)
{
    (void)l;
    return 0;
}

static void route_destroy(struct layer *l)
{
    struct route *r = l->priv;
    if (r)
        free(r->src);
    free(r);
}

const struct layer_ops route_ops = {
    .name = "route",
    .type = LAYER_ROUTE,
    .build = route_build,
    .forward = route_forward,
    .backward = route_backward,
    .describe = route_describe,
    .flops = route_flops,
    .destroy = route_destroy,
};
