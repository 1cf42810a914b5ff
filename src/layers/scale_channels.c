/* scale_channels.c - [scale_channels]: squeeze-and-excitation channel scaling (Hu et al. 2018,
 * SENet; AlexeyAB's scale_channels_layer.c and its name).
 *
 * The layer below is the gate g, C x 1 x 1 per image (the excitation: already through a logistic
 * activation of the [connected] or 1x1 [convolutional] that made it); from= names an earlier layer
 * x of shape C x H x W (negative = relative, else absolute; resolved at build time). Output shape
 * = x's shape, y[c][h][w] = act(x[c][h][w] * g[c]), activation= default linear (AlexeyAB's).
 * Backward (ADDS): dz = act'(dy); dg[c] += sum_hw dz * x; dx += dz * g[c]. This is the exact
 * gradient; AlexeyAB's backward divides dg by H*W, which this layer does not copy.
 * Left out: AlexeyAB's scale_wh=1 (a 1 x H x W spatial gate).
 */
#include <limits.h>
#include <stdio.h>

#include "kernels/activations.h"
#include "net/layer.h"

struct scale_channels {
    int act;
    struct layer *from;
    float *z; /* batch x out pre-activation, kept when the activation needs it (training) */
};

static int scale_channels_build(struct layer *l, struct cfg_section *s, struct build *b,
                                cn_error *e)
{
    struct scale_channels *sc = xcalloc(1, sizeof *sc);
    l->priv = sc;
    int from;
    if (!cfg_find(s, "from"))
        return cfg_fail_section(s, e, "from= is required: the earlier layer to scale");
    if (cfg_get_int(s, "from", 0, -INT_MAX, INT_MAX, &from, e) ||
        build_resolve_ref(b, s, cfg_find(s, "from"), from, &sc->from, e) ||
        layer_get_activation(s, ACT_LINEAR, &sc->act, e))
        return -1;
    struct shape f = sc->from->out, g = l->in;
    if (g.w != 1 || g.h != 1 || g.c != f.c)
        return cfg_fail_kv(s, cfg_find(s, "from"), e,
                           "the layer below (the gate) is %dx%dx%d and layer %d [%s] is %dx%dx%d "
                           "(w x h x c): the gate must be 1x1x%d, one value per channel",
                           g.w, g.h, g.c, sc->from->index, sc->from->ops->name, f.w, f.h, f.c, f.c);
    l->out = f;
    size_t all = shape_size(l->out) * (size_t)build_batch(b);
    if (act_needs_input(sc->act))
        build_buffer(b, &sc->z, all, BUF_TRAIN);
    if (build_training(b) && sc->act != ACT_LINEAR)
        build_workspace(b, all);
    return 0;
}

static void scale_channels_forward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct scale_channels *sc = l->priv;
    size_t plane = (size_t)l->out.h * (size_t)l->out.w, rows = (size_t)l->batch * l->out.c;
    float *z = sc->z ? sc->z : l->output;
    const float *x = sc->from->output;
    /* Row r = (image, channel): its gate is input[r], because the gate is C x 1 x 1 per image. */
#pragma omp parallel for schedule(static) if (rows * plane >= 65536) /* else waking costs more */
    for (size_t r = 0; r < rows; r++) {
        float g = l->input[r];
        for (size_t i = 0; i < plane; i++)
            z[r * plane + i] = x[r * plane + i] * g;
    }
    act_forward(l->output, z, rows * plane, (enum activation)sc->act);
}

static void scale_channels_backward(struct layer *l, struct pass *p)
{
    const struct scale_channels *sc = l->priv;
    size_t plane = (size_t)l->out.h * (size_t)l->out.w, rows = (size_t)l->batch * l->out.c;
    const float *dz = l->doutput, *x = sc->from->output;
    float *dx = sc->from->doutput;
    if (sc->act != ACT_LINEAR) {
        CN_ASSERT(sc->z || !act_needs_input((enum activation)sc->act));
        act_backward(p->workspace, l->doutput, sc->z, l->output, rows * plane,
                     (enum activation)sc->act);
        dz = p->workspace;
    }
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        float g = l->input[r];
        double dg = 0;
        for (size_t i = 0; i < plane; i++) {
            dg += (double)dz[r * plane + i] * (double)x[r * plane + i];
            dx[r * plane + i] += dz[r * plane + i] * g;
        }
        if (l->dinput)
            l->dinput[r] += (float)dg;
    }
}

static void scale_channels_describe(const struct layer *l, char *buf, size_t n)
{
    const struct scale_channels *sc = l->priv;
    snprintf(buf, n, "layer %d x gate, %s", sc->from->index, act_names[sc->act]);
}

/* One multiply per output value. */
static double scale_channels_flops(const struct layer *l)
{
    return (double)shape_size(l->out);
}

const struct layer_ops scale_channels_ops = {
    .name = "scale_channels",
    .type = LAYER_SCALE_CHANNELS,
    .build = scale_channels_build,
    .forward = scale_channels_forward,
    .backward = scale_channels_backward,
    .describe = scale_channels_describe,
    .flops = scale_channels_flops,
};
