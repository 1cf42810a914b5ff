/* crop.c - [crop]: Darknet's crop_layer.c, a crop_height x crop_width window of the input,
 * rescaled.
 *
 * Output c x crop_height x crop_width, y = x * scale + trans with scale 2, trans -1 (pixels in
 * [0, 1] become [-1, 1]) or, with noadjust=1, scale 1, trans 0. Inference takes the centre
 * window (top (h - crop_height)/2, left (w - crop_width)/2, integer division) and never flips.
 * Training draws, for each image, top in [0, h - crop_height] and left in [0, w - crop_width] and
 * with flip=1 a coin, from pass->rng (three draws per image, in batch order). A flipped image
 * reads column w - left - 1 - j for output column j, as Darknet's forward_crop_layer (so the
 * flipped window is the mirror image of [w - left - crop_width, w - left)). Darknet draws one
 * crop and one coin per batch from the C library's global generator; we draw per image from the seeded stream.
 *
 * Backward: Darknet has none (the layer comes first); this one is the exact gradient of the
 * linear map, dx[source cell] += scale * dy, using the offsets the forward pass recorded.
 *
 * Left out, as errors: angle != 0, saturation != 1, exposure != 1, shift != 0. Darknet parses
 * them but applies them only in its CUDA kernel (random rotation, HSV jitter, translation); its
 * CPU path ignores them. Those belong to the data loader ([net] augmentation keys), so a [crop]
 * that asks for them is refused rather than silently not augmented. Darknet's defaults
 * crop_height=1 and crop_width=1 are kept.
 */
#include <float.h>
#include <stdio.h>

#include "net/layer.h"

#define CROP_MAX_SIDE 65536

struct crop {
    int ch, cw, flip, noadjust;
    float scale, trans;
    int batch;
    int off[]; /* 3 per image: top, left, flipped (written by forward, read by backward) */
};

/* The augmentation keys Darknet reads but applies only on the GPU: each must keep its identity. */
static int crop_check_identity(struct cfg_section *s, cn_error *e)
{
    static const struct {
        const char *key;
        float identity;
    } keys[] = {{"angle", 0.f}, {"saturation", 1.f}, {"exposure", 1.f}, {"shift", 0.f}};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        float v;
        if (cfg_get_float(s, keys[k].key, keys[k].identity, -FLT_MAX, FLT_MAX, &v, e))
            return -1;
        if (v != keys[k].identity)
            return cfg_fail_kv(s, cfg_find(s, keys[k].key), e,
                               "not implemented by [crop] (Darknet applies it only on the GPU; "
                               "its CPU path ignores it): use %g, and augment in the loader",
                               (double)keys[k].identity);
    }
    return 0;
}

static int crop_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    int batch = build_batch(b);
    struct crop *c = xcalloc(1, sizeof *c + sizeof(int) * 3 * (size_t)batch);
    l->priv = c;
    c->batch = batch;
    if (cfg_get_int(s, "crop_height", 1, 1, CROP_MAX_SIDE, &c->ch, e) ||
        cfg_get_int(s, "crop_width", 1, 1, CROP_MAX_SIDE, &c->cw, e) ||
        cfg_get_bool(s, "flip", 0, &c->flip, e) ||
        cfg_get_bool(s, "noadjust", 0, &c->noadjust, e) || crop_check_identity(s, e))
        return -1;
    if (c->ch > l->in.h || c->cw > l->in.w)
        return cfg_fail_section(s, e, "a %dx%d crop does not fit the %dx%d input", c->cw, c->ch,
                                l->in.w, l->in.h);
    c->scale = c->noadjust ? 1.f : 2.f;
    c->trans = c->noadjust ? 0.f : -1.f;
    l->out = (struct shape){l->in.c, c->ch, c->cw};
    return 0;
}

/* Draws (training) or centres (inference) each image's window into c->off. */
static void crop_offsets(struct crop *c, const struct layer *l, struct pass *p)
{
    int rh = l->in.h - c->ch + 1, rw = l->in.w - c->cw + 1;
    for (int b = 0; b < l->batch; b++) {
        int *o = c->off + 3 * b;
        if (p->train && p->rng) {
            o[0] = (int)cn_rng_below(p->rng, (uint64_t)rh);
            o[1] = (int)cn_rng_below(p->rng, (uint64_t)rw);
            o[2] = c->flip && cn_rng_below(p->rng, 2);
        } else {
            o[0] = (l->in.h - c->ch) / 2;
            o[1] = (l->in.w - c->cw) / 2;
            o[2] = 0;
        }
    }
}

/* The input column of output column j for an image with left offset dw. */
static int crop_col(const struct layer *l, int dw, int flipped, int j)
{
    return flipped ? l->in.w - dw - 1 - j : dw + j;
}

static void crop_forward(struct layer *l, struct pass *p)
{
    struct crop *c = l->priv;
    crop_offsets(c, l, p);
    size_t in = shape_size(l->in), out = shape_size(l->out);
    for (int b = 0; b < l->batch; b++) {
        const int *o = c->off + 3 * b;
        for (int k = 0; k < l->in.c; k++)
            for (int i = 0; i < c->ch; i++) {
                const float *x =
                    l->input + (size_t)b * in +
                    ((size_t)k * (size_t)l->in.h + (size_t)(i + o[0])) * (size_t)l->in.w;
                float *y = l->output + (size_t)b * out +
                           ((size_t)k * (size_t)c->ch + (size_t)i) * (size_t)c->cw;
                for (int j = 0; j < c->cw; j++)
                    y[j] = x[crop_col(l, o[1], o[2], j)] * c->scale + c->trans;
            }
    }
}

static void crop_backward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct crop *c = l->priv;
    if (!l->dinput)
        return;
    size_t in = shape_size(l->in), out = shape_size(l->out);
    for (int b = 0; b < l->batch; b++) {
        const int *o = c->off + 3 * b;
        for (int k = 0; k < l->in.c; k++)
            for (int i = 0; i < c->ch; i++) {
                float *dx = l->dinput + (size_t)b * in +
                            ((size_t)k * (size_t)l->in.h + (size_t)(i + o[0])) * (size_t)l->in.w;
                const float *dy = l->doutput + (size_t)b * out +
                                  ((size_t)k * (size_t)c->ch + (size_t)i) * (size_t)c->cw;
                for (int j = 0; j < c->cw; j++)
                    dx[crop_col(l, o[1], o[2], j)] += dy[j] * c->scale;
            }
    }
}

static void crop_describe(const struct layer *l, char *buf, size_t n)
{
    const struct crop *c = l->priv;
    snprintf(buf, n, "%dx%d%s%s", c->cw, c->ch, c->flip ? ", flip" : "",
             c->noadjust ? "" : ", 2x-1");
}

/* A multiply and an add per output value. */
static double crop_flops(const struct layer *l)
{
    return 2.0 * (double)shape_size(l->out);
}

const struct layer_ops crop_ops = {
    .name = "crop",
    .type = LAYER_CROP,
    .build = crop_build,
    .forward = crop_forward,
    .backward = crop_backward,
    .describe = crop_describe,
    .flops = crop_flops,
};
