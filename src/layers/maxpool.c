/* maxpool.c - [maxpool] / [max]: max pooling per channel, Darknet's layer (maxpool_layer.c).
 *
 * Keys as Darknet's parse_maxpool: stride (default 1), size (default stride), padding (TOTAL
 * padding, default size-1). out = (in + padding - size)/stride + 1 per side, windows start at
 * -padding/2, out-of-image cells are never selected (kernels/pool.h). padding is limited to
 * 2*(size-1) so every window overlaps the image (Darknet would emit -FLT_MAX and index -1).
 * PyTorch's MaxPool2d(k, s, padding=p) is size=k stride=s padding=2p. AlexeyAB's stride_x /
 * stride_y (default stride) set the strides across and down. ceil_mode=1 (PyTorch's name, as
 * GoogLeNet uses) rounds the division up, dropping a last window that would start past the
 * image, as PyTorch does. Training nets record each output's argmax (int32 offsets in the plane,
 * in a BUF_TRAIN buffer) and backward scatters the gradient through it: it reads neither the
 * input nor the output, so a training net need not keep them for it (layer.h,
 * build_backward_skips_*). Left out: AlexeyAB's maxpool_depth, antialiasing and out_channels.
 */
#include <limits.h>
#include <stdio.h>

#include "kernels/pool.h"
#include "net/layer.h"

#define MAXPOOL_MAX_SIDE 65536 /* size and stride: far beyond any real window */

_Static_assert(sizeof(float) == sizeof(int32_t), "argmax offsets are stored in float slots");

struct maxpool {
    int size, stride, padding;
    int sx, sy, ceil_mode;
    struct pool_geom g;
    float *idx_store; /* batch x out int32 offsets (training nets only) */
};

static int32_t *maxpool_idx(const struct maxpool *m)
{
    return (int32_t *)(void *)m->idx_store;
}

static int maxpool_parse(struct maxpool *m, struct cfg_section *s, cn_error *e)
{
    if (cfg_get_int(s, "stride", 1, 1, MAXPOOL_MAX_SIDE, &m->stride, e) ||
        cfg_get_int(s, "size", m->stride, 1, MAXPOOL_MAX_SIDE, &m->size, e) ||
        cfg_get_int(s, "padding", m->size - 1, 0, INT_MAX, &m->padding, e) ||
        cfg_get_int(s, "stride_x", m->stride, 1, MAXPOOL_MAX_SIDE, &m->sx, e) ||
        cfg_get_int(s, "stride_y", m->stride, 1, MAXPOOL_MAX_SIDE, &m->sy, e) ||
        cfg_get_bool(s, "ceil_mode", 0, &m->ceil_mode, e))
        return -1;
    if (m->padding > 2 * (m->size - 1))
        return cfg_fail_kv(s, cfg_find(s, "padding"), e,
                           "must be <= 2*(size-1) = %d, or some window lies outside the image",
                           2 * (m->size - 1));
    return 0;
}

static int maxpool_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct maxpool *m = xcalloc(1, sizeof *m);
    l->priv = m;
    if (maxpool_parse(m, s, e))
        return -1;
    if ((size_t)l->in.h * (size_t)l->in.w > INT32_MAX)
        return cfg_fail_section(s, e, "input plane %dx%d is too large", l->in.w, l->in.h);
    if (pool_max_geom(&m->g, l->in.h, l->in.w, m->size, m->sy, m->sx, m->padding, m->ceil_mode))
        return cfg_fail_section(s, e, "a %dx%d window does not fit the %dx%d input with padding %d",
                                m->size, m->size, l->in.w, l->in.h, m->padding);
    l->out = (struct shape){l->in.c, m->g.oh, m->g.ow};
    build_buffer(b, &m->idx_store, shape_size(l->out) * (size_t)build_batch(b), BUF_TRAIN);
    build_backward_skips_output(b); /* backward reads the argmax offsets and doutput only */
    build_backward_skips_inputs(b);
    return 0;
}

static void maxpool_forward(struct layer *l, struct pass *p)
{
    (void)p;
    struct maxpool *m = l->priv;
    pool_max_forward(l->output, m->idx_store ? maxpool_idx(m) : NULL, l->input, l->batch * l->in.c,
                     &m->g);
}

static void maxpool_backward(struct layer *l, struct pass *p)
{
    (void)p;
    struct maxpool *m = l->priv;
    if (!l->dinput)
        return;
    CN_ASSERT(m->idx_store);
    pool_max_backward(l->dinput, l->doutput, maxpool_idx(m), l->batch * l->in.c, &m->g);
}

static void maxpool_describe(const struct layer *l, char *buf, size_t n)
{
    const struct maxpool *m = l->priv;
    char stride[32], pad[32] = "";
    if (m->sx == m->sy)
        snprintf(stride, sizeof stride, "%d", m->sx);
    else
        snprintf(stride, sizeof stride, "%dx%d", m->sx, m->sy);
    if (m->padding != m->size - 1)
        snprintf(pad, sizeof pad, " padding %d", m->padding);
    snprintf(buf, n, "%dx%d/%s%s%s", m->size, m->size, stride, pad, m->ceil_mode ? " ceil" : "");
}

/* One comparison per window cell and output (counted as one operation). */
static double maxpool_flops(const struct layer *l)
{
    const struct maxpool *m = l->priv;
    return (double)shape_size(l->out) * m->size * m->size;
}

const struct layer_ops maxpool_ops = {
    .name = "maxpool",
    .alias = "max",
    .type = LAYER_MAXPOOL,
    .build = maxpool_build,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .describe = maxpool_describe,
    .flops = maxpool_flops,
};
