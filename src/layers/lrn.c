/* lrn.c - [lrn] and Darknet's [normalization]: local response normalisation across channels
 * (Krizhevsky, Sutskever, Hinton 2012, section 3.3; Darknet's normalization_layer.c).
 *
 * At every pixel of every image (NCHW, planes of H*W), for channel c of C:
 *   N[c] = kappa + alpha' * S[c],   S[c] = sum of a[j]^2 over the window W(c),   b[c] = a[c] *
 * N[c]^-beta Keys: size (default 5), alpha (1e-4), beta (0.75), kappa (1): Darknet's
 * parse_normalization defaults, for both spellings. The spellings differ in two defaults:
 *   alpha_per_size: alpha' = alpha/size (1, [lrn]: Caffe, PyTorch's nn.LocalResponseNorm) or
 *     alpha' = alpha (0, [normalization]: Darknet does not divide).
 *   window: torch ([lrn]) W(c) = [c - size/2, c + (size-1)/2], F.local_response_norm's zero
 *     padding of size/2 channels before and (size-1)/2 after; caffe W(c) = [c - (size-1)/2,
 *     c + size/2] (Caffe's pre_pad; the same as torch for odd sizes); darknet ([normalization])
 *     what Darknet's forward_normalization_layer computes: the caffe window minus channel
 *     size/2 at every c (when size/2 < C). Its running sum starts from channels 0..size/2-1
 *     instead of 0..size/2, so channel size/2 is never added but is subtracted once the window
 *     slides past it: S[c] = sum over [c-(size-1)/2, c+size/2] - a[size/2]^2, and N can fall
 *     below kappa. Checked against the Debian libdarknet (test_lrn holds its numbers).
 *   Channels outside [0, C) count as zeros.
 * Backward is the exact gradient of that forward (Darknet's backward_normalization_layer keeps
 * only the dy * N^-beta term and overwrites instead of adding; ours passes a gradient check):
 *   da[j] += dy[j] N[j]^-beta - 2 alpha' beta a[j] sum_{c : j in W(c)} dy[c] b[c] / N[c]
 * N is kept (batch x in floats) for backward, which recomputes b = a N^-beta from it, bit for bit
 * forward's, and so leaves the output unread (layer.h, build_backward_skips_output: an LRN read
 * by a [maxpool] alone, as in AlexNet and GoogLeNet, keeps no output for backward). Backward's
 * workspace: N^-beta, dy b / N and one plane of sums (2*C*H*W + H*W floats).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "net/layer.h"

#define LRN_MAX_SIZE 4096 /* window in channels: far beyond any real one */

enum lrn_window { LRN_TORCH, LRN_CAFFE, LRN_DARKNET, LRN_WINDOW_COUNT };
static const char *const lrn_window_names[LRN_WINDOW_COUNT] = {"torch", "caffe", "darknet"};

struct lrn {
    int size, per_size, window;
    float alpha, beta, kappa;
    float a;     /* alpha' */
    int lo, hi;  /* W(c) = [c + lo, c + hi] intersected with [0, C) */
    int ghost;   /* darknet window: the channel subtracted from every S[c], or -1 */
    float *norm; /* batch x in: N */
};

static int lrn_parse(struct lrn *r, struct cfg_section *s, int darknet, cn_error *e)
{
    if (cfg_get_int(s, "size", 5, 1, LRN_MAX_SIZE, &r->size, e) ||
        cfg_get_float(s, "alpha", 1e-4f, 0.f, FLT_MAX, &r->alpha, e) ||
        cfg_get_float(s, "beta", 0.75f, 0.f, FLT_MAX, &r->beta, e) ||
        cfg_get_float(s, "kappa", 1.f, 0.f, FLT_MAX, &r->kappa, e) ||
        cfg_get_bool(s, "alpha_per_size", !darknet, &r->per_size, e) ||
        cfg_get_choice(s, "window", lrn_window_names, LRN_WINDOW_COUNT,
                       darknet ? LRN_DARKNET : LRN_TORCH, &r->window, e))
        return -1;
    if (!(r->kappa > 0.f))
        return cfg_fail_kv(s, cfg_find(s, "kappa"), e, "must be > 0 (N would reach 0)");
    return 0;
}

static int lrn_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct lrn *r = xcalloc(1, sizeof *r);
    l->priv = r;
    if (lrn_parse(r, s, !strcmp(s->name, "normalization"), e))
        return -1;
    r->a = r->per_size ? r->alpha / (float)r->size : r->alpha;
    r->lo = r->window == LRN_TORCH ? -(r->size / 2) : -((r->size - 1) / 2);
    r->hi = r->window == LRN_TORCH ? (r->size - 1) / 2 : r->size / 2;
    r->ghost = r->window == LRN_DARKNET && r->size / 2 < l->in.c ? r->size / 2 : -1;
    l->out = l->in;
    size_t hw = (size_t)l->in.h * (size_t)l->in.w;
    build_buffer(b, &r->norm, shape_size(l->in) * (size_t)build_batch(b), BUF_ALWAYS);
    build_workspace(b, 2 * shape_size(l->in) + hw);
    build_backward_skips_output(b); /* backward reads the input, N and doutput */
    return 0;
}

/* n[c] = kappa + a * (sum of sq over W(c) - sq[ghost]) for the C planes of one image. */
static void lrn_norms(const struct lrn *r, float *n, const float *x, int C, size_t hw)
{
    for (int c = 0; c < C; c++) {
        float *nc = n + (size_t)c * hw;
        for (size_t p = 0; p < hw; p++)
            nc[p] = 0;
        int j0 = CN_MAX(c + r->lo, 0), j1 = CN_MIN(c + r->hi, C - 1);
        for (int j = j0; j <= j1; j++) {
            const float *xj = x + (size_t)j * hw;
            for (size_t p = 0; p < hw; p++)
                nc[p] += xj[p] * xj[p];
        }
        if (r->ghost >= 0) {
            const float *xg = x + (size_t)r->ghost * hw;
            for (size_t p = 0; p < hw; p++)
                nc[p] -= xg[p] * xg[p];
        }
        for (size_t p = 0; p < hw; p++)
            nc[p] = r->kappa + r->a * nc[p];
    }
}

static void lrn_forward(struct layer *l, struct pass *p)
{
    (void)p;
    const struct lrn *r = l->priv;
    size_t n = shape_size(l->in), hw = (size_t)l->in.h * (size_t)l->in.w;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < l->batch; b++) {
        const float *x = l->input + (size_t)b * n;
        float *nb = r->norm + (size_t)b * n, *y = l->output + (size_t)b * n;
        lrn_norms(r, nb, x, l->in.c, hw);
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] * powf(nb[i], -r->beta);
    }
}

/* One image: s = N^-beta and t = dy * b / N (in ws), b = x * s as forward computes it, then for
 * each channel j the sum of t over the channels whose window holds j, [j - hi, j - lo], minus
 * all of t at the ghost channel. */
static void lrn_backward_image(const struct lrn *r, float *dx, const float *dy, const float *x,
                               const float *nb, float *ws, int C, size_t hw)
{
    size_t n = (size_t)C * hw;
    float *s = ws, *t = ws + n, *acc = ws + 2 * n;
    for (size_t i = 0; i < n; i++) {
        s[i] = powf(nb[i], -r->beta);
        float y = x[i] * s[i];
        t[i] = dy[i] * y / nb[i];
    }
    float k = 2.f * r->a * r->beta;
    for (int j = 0; j < C; j++) {
        memset(acc, 0, sizeof(float) * hw);
        int c0 = CN_MAX(j - r->hi, 0), c1 = CN_MIN(j - r->lo, C - 1);
        for (int c = 0; c < C; c++) {
            float sign = (c >= c0 && c <= c1 ? 1.f : 0.f) - (j == r->ghost ? 1.f : 0.f);
            if (sign == 0)
                continue;
            const float *tc = t + (size_t)c * hw;
            for (size_t q = 0; q < hw; q++)
                acc[q] += sign * tc[q];
        }
        size_t o = (size_t)j * hw;
        for (size_t q = 0; q < hw; q++)
            dx[o + q] += dy[o + q] * s[o + q] - k * x[o + q] * acc[q];
    }
}

static void lrn_backward(struct layer *l, struct pass *p)
{
    const struct lrn *r = l->priv;
    if (!l->dinput)
        return;
    size_t n = shape_size(l->in), hw = (size_t)l->in.h * (size_t)l->in.w;
    for (int b = 0; b < l->batch; b++) {
        size_t o = (size_t)b * n;
        lrn_backward_image(r, l->dinput + o, l->doutput + o, l->input + o, r->norm + o,
                           p->workspace, l->in.c, hw);
    }
}

static void lrn_describe(const struct layer *l, char *buf, size_t n)
{
    const struct lrn *r = l->priv;
    snprintf(buf, n, "%d, a=%g%s b=%g k=%g %s", r->size, (double)r->alpha, r->per_size ? "/n" : "",
             (double)r->beta, (double)r->kappa, lrn_window_names[r->window]);
}

/* Per value: a square, `size` window adds, the scale-and-shift (2), the power and the product. */
static double lrn_flops(const struct layer *l)
{
    const struct lrn *r = l->priv;
    return (double)shape_size(l->in) * (r->size + 5);
}

const struct layer_ops lrn_ops = {
    .name = "lrn",
    .alias = "normalization",
    .type = LAYER_LRN,
    .build = lrn_build,
    .forward = lrn_forward,
    .backward = lrn_backward,
    .describe = lrn_describe,
    .flops = lrn_flops,
};
