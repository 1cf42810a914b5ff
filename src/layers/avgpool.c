/* avgpool.c - [avgpool] / [avg]: average pooling per channel, global or windowed.
 *
 * Without size= and stride=: Darknet's avgpool_layer.c, the mean of each channel, c x 1 x 1.
 * With either (LeNet's 2x2 subsampling): stride defaults to size and size to stride, padding= is
 * per side (default 0, at most size/2 as in PyTorch), out = (in + 2*padding - size)/stride + 1.
 * count_pad=1 (default; PyTorch's count_include_pad=True and Caffe's AVE pooling) divides by the
 * window's cells inside the padded image, size*size but for a ceil-mode window hanging past the
 * padding; count_pad=0 by its in-image cells only. ceil_mode=1 rounds the division up and drops
 * a last window that would start past the image (PyTorch's rule). So PyTorch's
 * AvgPool2d(k, s, p, ceil_mode, count_include_pad) is size=k stride=s padding=p ceil_mode=
 * count_pad=. Kernels: kernels/pool.h. Backward spreads doutput by the shapes alone: it reads
 * neither the input nor the output (layer.h, build_backward_skips_*). Left out: trainable
 * subsampling coefficients, divisor_override.
 */
#include <stdio.h>

#include "kernels/pool.h"
#include "net/layer.h"

#define AVGPOOL_MAX_SIDE 65536 /* size and stride: far beyond any real window */

struct avgpool {
    int global;
    int size, stride, padding;
    int count_pad, ceil_mode;
    struct pool_geom g;
};

/* The windowed keys: size and stride default to each other, padding to 0. */
static int avgpool_parse_window(struct avgpool *a, struct cfg_section *s, cn_error *e)
{
    if (cfg_find(s, "size")) {
        if (cfg_get_int(s, "size", 1, 1, AVGPOOL_MAX_SIDE, &a->size, e) ||
            cfg_get_int(s, "stride", a->size, 1, AVGPOOL_MAX_SIDE, &a->stride, e))
            return -1;
    } else if (cfg_get_int(s, "stride", 1, 1, AVGPOOL_MAX_SIDE, &a->stride, e) ||
               cfg_get_int(s, "size", a->stride, 1, AVGPOOL_MAX_SIDE, &a->size, e)) {
        return -1;
    }
    if (cfg_get_int(s, "padding", 0, 0, AVGPOOL_MAX_SIDE, &a->padding, e) ||
        cfg_get_bool(s, "count_pad", 1, &a->count_pad, e) ||
        cfg_get_bool(s, "ceil_mode", 0, &a->ceil_mode, e))
        return -1;
    if (a->padding > a->size / 2)
        return cfg_fail_kv(s, cfg_find(s, "padding"), e,
                           "must be <= size/2 = %d (each window must lie mostly in the image)",
                           a->size / 2);
    return 0;
}

static int avgpool_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct avgpool *a = xcalloc(1, sizeof *a);
    l->priv = a;
    build_backward_skips_output(b); /* backward reads doutput and the shapes only */
    build_backward_skips_inputs(b);
    if (!cfg_find(s, "size") && !cfg_find(s, "stride")) {
        static const char *const windowed[] = {"padding", "count_pad", "ceil_mode"};
        for (size_t k = 0; k < sizeof windowed / sizeof windowed[0]; k++) {
            struct cfg_kv *kv = cfg_find(s, windowed[k]);
            if (kv) {
                cfg_ask(s, windowed[k]);
                return cfg_fail_kv(s, kv, e, "needs size= or stride= (global pooling has no %s)",
                                   windowed[k]);
            }
        }
        a->global = 1;
        l->out = (struct shape){l->in.c, 1, 1};
        return 0;
    }
    if (avgpool_parse_window(a, s, e))
        return -1;
    if (pool_avg_geom(&a->g, l->in.h, l->in.w, a->size, a->stride, a->stride, a->padding,
                      a->ceil_mode, a->count_pad))
        return cfg_fail_section(s, e, "a %dx%d window does not fit the %dx%d input with padding %d",
                                a->size, a->size, l->in.w, l->in.h, a->padding);
    l->out = (struct shape){l->in.c, a->g.oh, a->g.ow};
    return 0;
}

static void avgpool_forward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct avgpool *a = l->priv;
    int planes = l->batch * l->in.c;
    if (a->global)
        pool_global_avg_forward(l->output, l->input, planes, l->in.h * l->in.w);
    else
        pool_avg_forward(l->output, l->input, planes, &a->g);
}

static void avgpool_backward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct avgpool *a = l->priv;
    int planes = l->batch * l->in.c;
    if (!l->dinput)
        return;
    if (a->global)
        pool_global_avg_backward(l->dinput, l->doutput, planes, l->in.h * l->in.w);
    else
        pool_avg_backward(l->dinput, l->doutput, planes, &a->g);
}

static void avgpool_describe(const struct layer *l, char *buf, size_t n)
{
    const struct avgpool *a = l->priv;
    if (a->global) {
        snprintf(buf, n, "global");
        return;
    }
    char pad[32] = "";
    if (a->padding)
        snprintf(pad, sizeof pad, " padding %d", a->padding);
    snprintf(buf, n, "%dx%d/%d%s%s%s", a->size, a->size, a->stride, pad,
             a->ceil_mode ? " ceil" : "", a->padding && !a->count_pad ? " excl-pad" : "");
}

/* One add per window cell (global: per input cell) plus the division, each counted as one. */
static double avgpool_flops(const struct layer *l)
{
    const struct avgpool *a = l->priv;
    if (a->global)
        return (double)shape_size(l->in) + l->in.c;
    return (double)shape_size(l->out) * (a->size * a->size + 1);
}

const struct layer_ops avgpool_ops = {
    .name = "avgpool",
    .alias = "avg",
    .type = LAYER_AVGPOOL,
    .build = avgpool_build,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .describe = avgpool_describe,
    .flops = avgpool_flops,
};
