/* conv.c - [convolutional] / [conv]: 2-D convolution of NCHW images (Darknet's
 * convolutional_layer.c), then a bias or a batch norm, then an activation.
 *
 * Dimensions: a C x H x W input, F filters in G groups (group gi sees input channels
 * [gi*C/G, (gi+1)*C/G) and makes filters [gi*F/G, (gi+1)*F/G)); each filter has C/G x kh x kw
 * taps spaced by the dilation D; R = (C/G)*kh*kw taps per filter, P = OH*OW output positions,
 * out = (F, OH, OW) with OH = (H + 2*ph - (D*(kh-1)+1))/sh + 1 and OW likewise.
 * Keys: Darknet's parse_convolutional filters=1 size=1 stride=1 pad=0 padding=0
 * activation=logistic batch_normalize=0 groups=1, AlexeyAB's dilation=1 stride_x stride_y, and
 * cfgnet's size_x size_y (kernel width and height, overriding size) padding_x padding_y
 * (overriding padding) init=he|xavier. pad=1 sets the padding to D*(size_x/2) columns and
 * D*(size_y/2) rows, which is what AlexeyAB's Darknet pads with (it passes pad*dilation to
 * im2col): "same" output for odd kernels at stride 1. An explicit padding is taken as it is, in
 * pixels, as PyTorch does (AlexeyAB multiplies it by the dilation too, and its output size then
 * disagrees with its im2col unless padding = (size-1)/2).
 * Parameters in Darknet's .weights order: biases (F; the batch norm's shift when
 * batch_normalize=1), [scales, rolling_mean, rolling_variance] (F each), weights [F][C/G][kh][kw]
 * (Darknet's and PyTorch's layout).
 *
 * Forward per image and group: z_g = weights_g[F/G x R] * col[R x P] by implicit GEMM
 * (gemm_conv packs col straight from the image; or im2col then GEMM when built with
 * CONV_IMPLICIT=0); a 1x1, stride 1, unpadded kernel uses the image itself as col; a depthwise
 * layer (G > 1, C/G = 1) skips im2col and GEMM and convolves each plane directly
 * (kernels/depthwise.h), and so does the forward of other grouped 3x3 layers the direct grouped
 * kernel takes (ResNeXt's: F/G rows are too few for a GEMM; "grouped direct", unless
 * algorithm=gemm), both with the epilogue fused into the kernel, plane by plane. Then, on the
 * same image while it is in cache, the fused epilogue
 * y = act(s_f * z + t_f) per filter f: without batch norm s = 1, t = the biases (inside the
 * GEMM's own epilogue, gemm_bias_act, tile by tile); with it, in
 * nets built for inference, the batch norm folded into s = scale / denom(rolling_var) and
 * t = bias - rolling_mean * s (kernels/batchnorm.h, the net's bn_style), recomputed at every
 * pass (F floats), so it never goes stale when weights are loaded or set after build. This is
 * folding into the weights applied to the GEMM's result instead of to the weights themselves;
 * on the GEMM path of nets built for inference it runs in the GEMM's epilogue too, tile by tile
 * (gemm_packed / gemm_conv_packed), with the weights packed once for the GEMM (conv_pack_setup).
 * Training passes, and inference-mode passes of nets built for training (which keep x_hat for
 * backward), run the batch norm unfolded over the batch afterwards (the reference path).
 * Backward per image and group: dz (the activation's gradient, made per image without batch
 * norm), the weight gradient dz_g[F/G x P] * row[P x R] (im2row, so neither GEMM operand is
 * transposed), and the input gradient col2im(weights_g^T * dz_g), added into dinput; depthwise
 * and direct grouped layers instead run the plane kernels' adjoints (kernels/depthwise.h) per
 * filter and input channel.
 * Threads: the batch is split into `lanes` contiguous groups of images (as many as OpenMP threads
 * when the net is built, fewer if their col buffers would pass CONV_LANE_FLOATS); each lane has
 * its own col buffer and, in backward, its own weight and bias gradient partials (lane 0 adds
 * straight into the gradients), summed in lane order afterwards, so results depend on the
 * thread count at build time only through that order. Lanes are used when the batch shares out
 * evenly over the threads (or is at least 4 images per thread); with one lane the GEMMs use the
 * threads, and im2col (by channels), im2row (by output rows), col2im (by channels) and the
 * epilogue (by filters) split one image over them too (a depthwise layer: its planes).
 * Winograd (algorithm=auto|gemm|winograd|winograd_f2, cfgnet's key): a 3x3, stride-1,
 * undilated, ungrouped layer may instead run its forward and input gradient by Winograd
 * F(4x4,3x3) over the whole batch (kernels/winograd.h; rule and caching at conv_wino_setup),
 * the fused epilogue then in its output transform.
 * A [shortcut] right above (inference nets, when it alone reads this output: conv_take_residual)
 * may hand its addition and activation to this layer: after the epilogue (in the GEMM's with
 * packed weights, in Winograd's output transform, else one more pass over the image), y =
 * act(y + from), written into this layer's output, which is the shortcut's too. A [shortcut]
 * whose from= is larger or has other channels (Darknet's resampling rule: struct residual) is
 * taken by the packed GEMM only, as a pass over each block of its output right after the GEMM
 * made it, while it is in cache (conv_post_residual: 1-thread CPU time of ResNet-50's 1x1 +
 * shortcut pairs 2.9 -> 2.5, 2.6 -> 2.1 ms; the stride-2 ones are bound by reading from=).
 * Workspace: none in forward by implicit GEMM (lanes col buffers when built with
 * CONV_IMPLICIT=0); lanes col buffers and lanes-1 gradient partials in backward, where dz
 * (batch x out) is made in place over doutput (in the workspace for the last layer, whose
 * doutput is the caller's); training nets' Winograd filters after them (remade every pass, so
 * one copy serves every layer).
 * Training memory: the output is kept for backward unless the activation is linear (then only
 * x_hat and the input are read: layer.h, build_backward_skips_output; a bottleneck's last
 * convolution, read by its [shortcut] alone, then lives through forward only).
 * Left out: Darknet's binary/xnor, AlexeyAB's other extra keys (antialiasing, share_index...),
 * separate dilations per axis.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "kernels/depthwise.h"
#include "kernels/gemm.h"
#include "kernels/im2col.h"
#include "kernels/winograd.h"
#include "net/layer.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define CONV_MAX_SIDE 65536 /* size, stride, padding */
#define CONV_MAX_DILATION 4096
#define CONV_MAX_FILTERS 1048576
#define CONV_LANE_FLOATS ((size_t)1 << 26) /* all lanes' col buffers: 256 MB */
#define CONV_GEMM_MAX ((size_t)1 << 31)    /* GEMM dimensions are ints */
#ifndef CONV_IMPLICIT
#define CONV_IMPLICIT 1 /* forward by gemm_conv; 0: im2col then gemm (for measuring) */
#endif
#ifndef CONV_PACK
#define CONV_PACK 1 /* inference nets pack the weights once; 0: every GEMM packs (for measuring) */
#endif
#ifndef CONV_RESIDUAL
#define CONV_RESIDUAL 1 /* a [shortcut] above may fuse into the layer; 0: never (for measuring) */
#endif
#ifndef CONV_RESAMPLED
#define CONV_RESAMPLED 1 /* a [shortcut] of other shapes may fuse too; 0: never (for measuring) */
#endif
#ifndef CONV_CHECK_VERSION
/* 1: every pass checks, by a hash of the weights, that the packed weights and Winograd filters
 * of inference nets are not stale: finds parameter writers that do not call net_params_changed
 * (make WARN="... -DCONV_CHECK_VERSION=1" test). */
#define CONV_CHECK_VERSION 0
#endif

enum conv_init { INIT_HE, INIT_XAVIER, INIT_COUNT };
static const char *const conv_init_names[INIT_COUNT] = {"he", "xavier"};
enum conv_algo { ALGO_AUTO, ALGO_GEMM, ALGO_WINOGRAD, ALGO_WINOGRAD_F2, ALGO_COUNT };
static const char *const conv_algo_names[ALGO_COUNT] = {"auto", "gemm", "winograd", "winograd_f2"};
static const char *const conv_wino_names[WINOGRAD_VARIANT_COUNT] = {
    "winograd F(4x4,3x3)", "winograd F(4x4,3x3) +-1/2", "winograd F(2x2,3x3)"};

struct conv {
    int filters, groups, bn, act, init;
    int kh, kw, sh, sw, ph, pw, dilation; /* kernel taps, strides, padding per side */
    int fg, cg;                           /* filters and input channels per group */
    struct im2col_geom g;                 /* one group's channels */
    int direct;           /* 1x1 kernel, stride 1, no padding: the image is its own col matrix */
    int depthwise;        /* groups > 1 with one input channel each: planes convolved directly */
    int gdirect;          /* other grouped 3x3 layers whose forward runs the direct kernel */
    int implicit;         /* forward by implicit GEMM: B packed from the image, no col buffer */
    int lanes;            /* groups of images run concurrently, each with its own buffers */
    size_t R, P, col, nw; /* taps per filter, positions, one col buffer (0 if unused), weights */
    float *weights, *dweights, *biases, *dbiases, *scales, *dscales, *rolling_mean, *rolling_var;
    float *z;                  /* batch x out pre-activation, kept when the activation needs it */
    float *x_hat, *mean, *var; /* batch norm caches (training nets) */
    float *fold;               /* 2F with batch norm: the folded inference scale, then shift */
    struct bn_conf bnc;        /* the net's batch-norm convention */
    int algo;                  /* algorithm= as asked (enum conv_algo) */
    int wino;                  /* the choice: 0 the GEMM paths, else 1 + enum winograd_variant */
    int wino_ready;            /* wino_u holds the forward transform of the weights (inference
                                  nets) at layer params_version wino_version */
    struct winograd_geom wg, wgb; /* Winograd geometries: forward, data gradient */
    float *wino_u;             /* transformed filters: the forward's, or during backward dX's */
    unsigned long wino_version;
    size_t wino_at;            /* training nets: wino_u's place in the workspace instead */
    size_t ws;                 /* workspace floats of the GEMM paths (conv_workspace) */
    /* Direct grouped and depthwise layers: gslots scratch pieces of gws floats for their
     * kernels at workspace + gws_at (after the GEMM paths'), one per lane or, with one lane, per
     * chunk of groups (conv_chunks) */
    size_t gws, gws_at;
    int gslots;
    int dz_inplace;            /* training nets: backward makes dz in doutput, not the workspace */
    float *wpack;   /* inference nets' GEMM path: each group's weights by gemm_pack_a_all */
    int wpack_ready; /* wpack holds the weights at layer params_version wpack_version */
    struct residual res; /* inference nets: a fused [shortcut] (take_residual); .from NULL: none */
    unsigned long wpack_version;
    uint64_t wpack_hash, wino_hash; /* CONV_CHECK_VERSION: the weights' hash when made */
};

static size_t conv_align(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Floats of one lane's gradient partial: weights, then biases. */
static size_t conv_part_size(const struct conv *cv)
{
    return conv_align(cv->nw) + conv_align((size_t)cv->filters);
}

/* The kernel's window: size/size_x/size_y, stride/stride_x/stride_y, dilation, and the padding
 * (pad=1: dilation * (side/2); else padding/padding_x/padding_y). */
static int conv_parse_window(struct conv *cv, struct cfg_section *s, cn_error *e)
{
    int size, stride, pad, padding;
    if (cfg_get_int(s, "size", 1, 1, CONV_MAX_SIDE, &size, e) ||
        cfg_get_int(s, "size_x", size, 1, CONV_MAX_SIDE, &cv->kw, e) ||
        cfg_get_int(s, "size_y", size, 1, CONV_MAX_SIDE, &cv->kh, e) ||
        cfg_get_int(s, "stride", 1, 1, CONV_MAX_SIDE, &stride, e) ||
        cfg_get_int(s, "stride_x", stride, 1, CONV_MAX_SIDE, &cv->sw, e) ||
        cfg_get_int(s, "stride_y", stride, 1, CONV_MAX_SIDE, &cv->sh, e) ||
        cfg_get_int(s, "dilation", 1, 1, CONV_MAX_DILATION, &cv->dilation, e) ||
        cfg_get_bool(s, "pad", 0, &pad, e) ||
        cfg_get_int(s, "padding", 0, 0, CONV_MAX_SIDE, &padding, e) ||
        cfg_get_int(s, "padding_x", padding, 0, CONV_MAX_SIDE, &cv->pw, e) ||
        cfg_get_int(s, "padding_y", padding, 0, CONV_MAX_SIDE, &cv->ph, e))
        return -1;
    if (pad) { /* at most 4096 * 32768: no overflow */
        cv->pw = cv->dilation * (cv->kw / 2);
        cv->ph = cv->dilation * (cv->kh / 2);
    }
    return 0;
}

static int conv_parse(struct conv *cv, struct cfg_section *s, cn_error *e)
{
    return cfg_get_int(s, "filters", 1, 1, CONV_MAX_FILTERS, &cv->filters, e) ||
                   cfg_get_int(s, "groups", 1, 1, CONV_MAX_FILTERS, &cv->groups, e) ||
                   conv_parse_window(cv, s, e) ||
                   layer_get_activation(s, ACT_LOGISTIC, &cv->act, e) ||
                   cfg_get_bool(s, "batch_normalize", 0, &cv->bn, e) ||
                   cfg_get_choice(s, "init", conv_init_names, INIT_COUNT, INIT_HE, &cv->init, e) ||
                   cfg_get_choice(s, "algorithm", conv_algo_names, ALGO_COUNT, ALGO_AUTO, &cv->algo,
                                  e)
               ? -1
               : 0;
}

/* " (dilation D: extent EHxEW)" when dilated, else "". */
static void conv_extent_note(const struct conv *cv, char *buf, size_t n)
{
    buf[0] = '\0';
    if (cv->dilation > 1)
        snprintf(buf, n, " (dilation %d: extent %lldx%lld)", cv->dilation,
                 (long long)cv->dilation * (cv->kh - 1) + 1,
                 (long long)cv->dilation * (cv->kw - 1) + 1);
}

/* Groups must divide both the input channels and the filters. */
static int conv_check_groups(struct layer *l, struct conv *cv, struct cfg_section *s, cn_error *e)
{
    if (l->in.c % cv->groups == 0 && cv->filters % cv->groups == 0)
        return 0;
    return cfg_fail_kv(s, cfg_find(s, "groups"), e,
                       "the input's %d channels and filters=%d must both be multiples of it",
                       l->in.c, cv->filters);
}

/* Sets the geometry and sizes; rejects kernels that do not fit and products past size limits. */
static int conv_shape(struct layer *l, struct conv *cv, struct cfg_section *s, cn_error *e)
{
    cv->cg = l->in.c / cv->groups;
    cv->fg = cv->filters / cv->groups;
    if (im2col_geom_init(&cv->g, cv->cg, l->in.h, l->in.w, cv->kh, cv->kw, cv->sh, cv->sw, cv->ph,
                         cv->pw, cv->dilation, cv->dilation)) {
        char ext[96];
        conv_extent_note(cv, ext, sizeof ext);
        return cfg_fail_section(s, e,
                                "a %dx%d kernel%s does not fit the %dx%d input with padding "
                                "%dx%d (height x width)",
                                cv->kh, cv->kw, ext, l->in.h, l->in.w, cv->ph, cv->pw);
    }
    cv->R = im2col_rows(&cv->g);
    cv->P = im2col_cols(&cv->g);
    size_t out, col;
    if (cv->R >= CONV_GEMM_MAX || cv->P >= CONV_GEMM_MAX || cn_mul(&cv->nw, cv->R, cv->filters) ||
        cn_mul(&out, cv->P, cv->filters) || cn_mul(&col, cv->R, cv->P) || out >= CONV_GEMM_MAX)
        return cfg_fail_section(s, e, "%d filters of %dx%dx%d over %dx%d outputs is too large",
                                cv->filters, cv->cg, cv->kh, cv->kw, cv->g.oh, cv->g.ow);
    cv->direct =
        cv->kh == 1 && cv->kw == 1 && cv->sh == 1 && cv->sw == 1 && cv->ph == 0 && cv->pw == 0;
    /* Not for a plain conv of a 1-channel image: its one GEMM with all F filters is faster. */
    cv->depthwise = cv->cg == 1 && cv->groups > 1 && !cv->direct;
    cv->col = cv->direct || cv->depthwise ? 0 : conv_align(col);
    /* algorithm=gemm keeps im2col + GEMM (for measuring against it) */
    cv->gdirect = !cv->depthwise && cv->groups > 1 && cv->cg > 1 && cv->algo == ALGO_AUTO &&
                  depthwise_group_fits(&cv->g);
    /* neither pass of such a layer reads a col buffer when its gradients fit the direct kernel
     * (ResNeXt-50 at batch 16: up to 14 MB per lane) */
    if (cv->gdirect && depthwise_group_back_fits(&cv->g, cv->fg))
        cv->col = 0;
    cv->implicit = CONV_IMPLICIT && cv->col;
    l->out = (struct shape){cv->filters, cv->g.oh, cv->g.ow};
    return 0;
}

/* As many lanes as threads when the batch shares out evenly (or is large enough that an uneven
 * share hardly matters); else one lane, whose GEMMs, im2col and epilogue use the threads. */
static int conv_lanes(int batch, size_t col)
{
    int lanes = 1;
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    if (batch >= threads && (batch % threads == 0 || batch >= 4 * threads))
        lanes = threads;
#else
    (void)batch;
#endif
    while (lanes > 1 && col * (size_t)lanes > CONV_LANE_FLOATS)
        lanes--;
    return CN_MAX(lanes, 1);
}

/* The grouped and depthwise kernels' scratch (conv_grouped_image, conv_grouped_back,
 * conv_depthwise_image, conv_depthwise_back): a piece for each lane, or with one lane for each
 * thread the build sees (one per chunk of conv_chunks), after the GEMM paths' workspace need. */
static int conv_grouped_workspace(struct conv *cv, struct build *b, size_t *need)
{
    if (!cv->gdirect && !cv->depthwise)
        return 0;
    size_t fwd = depthwise_group_scratch(&cv->g), bwd = 0, all;
    if (cv->depthwise)
        fwd = depthwise_scratch(&cv->g); /* both passes */
    else if (build_training(b))
        bwd = depthwise_group_back_scratch(&cv->g, cv->fg);
    cv->gws = conv_align(CN_MAX(fwd, bwd));
    cv->gslots = cv->lanes;
#ifdef _OPENMP
    if (cv->lanes == 1)
        cv->gslots = CN_MAX(omp_get_max_threads(), 1);
#endif
    cv->gws_at = conv_align(*need);
    return cn_mul(&all, cv->gws, (size_t)cv->gslots) || cn_add(need, cv->gws_at, all);
}

/* Declares the workspace: forward needs the lanes' col buffers; backward also dz and the
 * weight partials; direct grouped layers their kernels' scratch after all that. */
static int conv_workspace(struct layer *l, struct conv *cv, struct build *b, struct cfg_section *s,
                          cn_error *e)
{
    size_t fwd = cv->col * (size_t)cv->lanes, need = cv->implicit ? 0 : fwd;
    if (build_training(b)) {
        /* dz in place over doutput, which nothing reads after this backward; but the last
         * layer's doutput is the caller's, left as it was */
        cv->dz_inplace = build_index(b) + 1 < build_layer_count(b);
        size_t dz = 0, parts;
        if ((!cv->dz_inplace && cn_mul(&dz, shape_size(l->out), (size_t)l->batch)) ||
            cn_mul(&parts, conv_part_size(cv), (size_t)cv->lanes - 1) ||
            cn_add(&need, conv_align(dz), fwd) || cn_add(&need, need, parts))
            return cfg_fail_section(s, e, "workspace for %d images is too large", l->batch);
    }
    cv->ws = need;
    if (conv_grouped_workspace(cv, b, &need))
        return cfg_fail_section(s, e, "workspace for %d images is too large", l->batch);
    build_workspace(b, need);
    return 0;
}

/* Winograd (kernels/winograd.h) for 3x3, stride-1, undilated, ungrouped layers: the whole batch's
 * forward in one call (so small images still give the GEMMs enough tiles), and the data gradient
 * as the convolution of dz with the rotated, transposed filters; the weight gradient stays on the
 * GEMM path. Chosen at build time by algorithm= (auto: where it measured faster, with C and
 * F >= 32 and enough tiles to repay the filter transforms, which training redoes every pass; see
 * bench/winograd.c; F(2x2) in nets built for training, below, and in inference where F(4x4)
 * would give its GEMMs less than one 16-column panel of tiles, as a 7x7 image at batch 1 does:
 * F(2x2)'s 16 tiles ran 4.2 ms against 5.9 by GEMM for ResNet-50's 512-channel 7x7 layers,
 * F(4x4)'s 4 tiles 7.6-8.2; bench/conv_layers.c). Training nets' data gradient (auto) takes
 * F(4x4) where the input has as many tiles as inference asks for: it decides no ReLU, and its
 * error (test_torch_parity's inception_v3 input gradient 1.1e-6 -> 3.0e-6 of max, tolerance
 * 1e-4) bought ResNet-18's 3x3 layers 2-4 ms of backward each at 2 threads. wino_u holds the
 * forward's transformed filters, and during backward the data gradient's (training nets
 * transform afresh on every pass, as the weights change between any two); an inference net
 * keeps its transform and redoes it when the layer's params_version moves (layer.h). */
#define CONV_WINO_MIN_CHANNELS 32
#define CONV_WINO_MIN_TILES_INFER 16 /* of F(4x4), else F(2x2) with as many of its own */
#define CONV_WINO_MIN_TILES_TRAIN 32

static int conv_wino_fits(const struct conv *cv)
{
    return cv->groups == 1 && cv->kh == 3 && cv->kw == 3 && cv->sh == 1 && cv->sw == 1 &&
           cv->dilation == 1;
}

/* Tiles of side m over the batch's outputs. */
static size_t conv_wino_tiles(int batch, int oh, int ow, int m)
{
    return (size_t)batch * (size_t)((oh + m - 1) / m) * (size_t)((ow + m - 1) / m);
}

/* algorithm=auto's rule on geometry g of a fitting layer; tiles counted as 4x4 outputs, except
 * for F(2x2) in inference (chosen when there are too few of those), its own. */
static int conv_wino_pays(const struct winograd_geom *g, int training)
{
    size_t min = training ? CONV_WINO_MIN_TILES_TRAIN : CONV_WINO_MIN_TILES_INFER;
    size_t tiles = !training && g->variant == WINOGRAD_F2 ? g->tiles
                                                          : conv_wino_tiles(g->batch, g->oh,
                                                                            g->ow, 4);
    return g->c >= CONV_WINO_MIN_CHANNELS && g->f >= CONV_WINO_MIN_CHANNELS && tiles >= min;
}

/* Chooses the algorithm and declares Winograd's buffers and workspace (forward: after nothing;
 * backward: after dz, where the lanes' buffers were). */
static int conv_wino_setup(struct layer *l, struct conv *cv, struct build *b,
                           struct cfg_section *s, cn_error *e)
{
    int fits = conv_wino_fits(cv), training = build_training(b);
    if (cv->algo == ALGO_GEMM || (cv->algo == ALGO_AUTO && !fits))
        return 0;
    if (!fits)
        return cfg_fail_kv(s, cfg_find(s, "algorithm"), e,
                           "needs a 3x3 kernel at stride 1, dilation 1, groups 1");
    /* auto in training nets: F(2x2), as accurate as direct summation; F(4x4)'s tenfold error
     * flips ReLUs within rounding of 0 often enough that input gradients of deep nets stop
     * matching a reference (test_torch_parity's inception_v3 at 1e-4). */
    int few = conv_wino_tiles(build_batch(b), cv->g.oh, cv->g.ow, 4) < CONV_WINO_MIN_TILES_INFER;
    enum winograd_variant v =
        cv->algo == ALGO_WINOGRAD_F2 || (cv->algo == ALGO_AUTO && (training || few))
            ? WINOGRAD_F2
            : WINOGRAD_F4;
    /* The data gradient decides no ReLU: auto runs it by F(4x4) where that has enough tiles
     * of its own (the input's size), as inference does. */
    int few_in = conv_wino_tiles(build_batch(b), l->in.h, l->in.w, 4) < CONV_WINO_MIN_TILES_INFER;
    enum winograd_variant vb = cv->algo == ALGO_AUTO && !few_in ? WINOGRAD_F4 : v;
    struct winograd_geom fwb;
    size_t dz = 0, bwd;
    if (winograd_geom_init(&cv->wg, v, build_batch(b), l->in.c, l->in.h, l->in.w, cv->filters,
                           cv->ph, cv->pw) ||
        winograd_geom_init(&fwb, vb, build_batch(b), l->in.c, l->in.h, l->in.w, cv->filters,
                           cv->ph, cv->pw) ||
        winograd_geom_data_grad(&cv->wgb, &fwb) ||
        (!cv->dz_inplace && cn_mul(&dz, shape_size(l->out), (size_t)build_batch(b))) ||
        cn_add(&bwd, conv_align(dz), winograd_workspace_floats(&cv->wgb))) {
        if (cv->algo == ALGO_AUTO)
            return 0;
        return cfg_fail_section(s, e, "too large for winograd");
    }
    if (cv->algo == ALGO_AUTO && !conv_wino_pays(&cv->wg, training))
        return 0;
    cv->wino = 1 + (int)v;
    size_t u = CN_MAX(winograd_filter_floats(&cv->wg), winograd_filter_floats(&cv->wgb));
    if (training) { /* remade on every pass: in the workspace, after all else this layer uses */
        cv->wino_at = conv_align(CN_MAX(cv->ws, CN_MAX(winograd_workspace_floats(&cv->wg), bwd)));
        build_workspace(b, cv->wino_at + u);
        return 0;
    }
    build_buffer(b, &cv->wino_u, u, BUF_ALWAYS);
    build_workspace(b, winograd_workspace_floats(&cv->wg));
    return 0;
}

/* The transformed filters: an inference net's own buffer, else the workspace from wino_at. */
static float *conv_wino_filters(const struct conv *cv, const struct pass *p)
{
    return cv->wino_u ? cv->wino_u : p->workspace + cv->wino_at;
}

/* Whether a cache made from the weights (ready: made at all) at layer params_version `version`
 * still holds them. With CONV_CHECK_VERSION, asserts that weights whose version did not move
 * are those hashed when the cache was made: a writer that does not call net_params_changed. */
static int conv_cache_valid(const struct layer *l, int ready, unsigned long version,
                            uint64_t hash)
{
    if (!ready || version != l->params_version)
        return 0;
    const struct conv *cv = l->priv;
    CN_ASSERT(!CONV_CHECK_VERSION || cn_hash_floats(cv->weights, cv->nw) == hash);
    return 1;
}

/* pre (batch x out) = the convolution of the batch, after making wino_u from the weights (an
 * inference net: only when their version moved since it was made). */
static void conv_wino_forward(struct layer *l, struct pass *p, float *pre,
                              const struct winograd_epilogue *ep)
{
    struct conv *cv = l->priv;
    float *u = conv_wino_filters(cv, p);
    if (!cv->wino_u || !conv_cache_valid(l, cv->wino_ready, cv->wino_version, cv->wino_hash)) {
        winograd_filters(u, cv->weights, &cv->wg);
        cv->wino_ready = 1;
        cv->wino_version = l->params_version;
        cv->wino_hash = CONV_CHECK_VERSION ? cn_hash_floats(cv->weights, cv->nw) : 0;
    }
    if (ep)
        winograd_conv_act(pre, l->input, u, p->workspace, &cv->wg, ep);
    else
        winograd_conv(pre, 0, l->input, u, p->workspace, &cv->wg);
}

/* dinput += the data gradient of dz (batch x out); u: where to make its filters; work: the
 * workspace after dz. */
static void conv_wino_data_grad(struct layer *l, const float *dz, float *u, float *work)
{
    struct conv *cv = l->priv;
    winograd_filters_data_grad(u, cv->weights, &cv->wgb);
    cv->wino_ready = 0;
    winograd_conv(l->dinput, 1, dz, u, work, &cv->wgb);
}

/* Whether the forward of an inference net runs the packed GEMM (conv_pack_setup). */
static int conv_packs(const struct conv *cv)
{
    return CONV_PACK && !cv->wino && !cv->depthwise && !cv->gdirect;
}

/* Nets built for inference pack the GEMM path's weights once (gemm_pack_a_all), and again only
 * when the layer's params_version moved (layer.h: every writer of parameters after build calls
 * net_params_changed), so weights loaded or set after build, or between passes, are noticed
 * without reading them. Layers of few output positions too (ResNet-50's 7x7 layers at batch 1,
 * Darknet's 1000-filter 1x1 over 1x1): bound by reading the weights, they read them once packed
 * instead of reading, packing and rereading them every pass (1 thread: 2.2 -> 1.5 ms a 7x7
 * 512->2048 layer, 1.4 -> 0.65 ms the classifier). Before the version counter, comparing the
 * weights with a copy made packing them slower. */
static void conv_pack_setup(struct conv *cv, struct build *b)
{
    if (build_training(b) || !conv_packs(cv))
        return;
    build_buffer(b, &cv->wpack, (size_t)cv->groups * gemm_packed_a_floats(cv->fg, (int)cv->R),
                 BUF_ALWAYS);
}

static void conv_pack_refresh(struct layer *l)
{
    struct conv *cv = l->priv;
    size_t per = gemm_packed_a_floats(cv->fg, (int)cv->R);
    if (conv_cache_valid(l, cv->wpack_ready, cv->wpack_version, cv->wpack_hash))
        return;
    for (int gi = 0; gi < cv->groups; gi++)
        gemm_pack_a_all(cv->wpack + (size_t)gi * per, cv->weights + (size_t)gi * cv->fg * cv->R,
                        (int)cv->R, 0, cv->fg, (int)cv->R);
    cv->wpack_ready = 1;
    cv->wpack_version = l->params_version;
    cv->wpack_hash = CONV_CHECK_VERSION ? cn_hash_floats(cv->weights, cv->nw) : 0;
}

static int conv_build(struct layer *l, struct cfg_section *s, struct build *b, cn_error *e)
{
    struct conv *cv = xcalloc(1, sizeof *cv);
    l->priv = cv;
    if (conv_parse(cv, s, e) || conv_check_groups(l, cv, s, e) || conv_shape(l, cv, s, e))
        return -1;
    size_t F = (size_t)cv->filters, all = shape_size(l->out) * (size_t)build_batch(b);
    cv->lanes = conv_lanes(build_batch(b), cv->col);
    cv->bnc = *build_bn(b);
    build_param(b, &cv->biases, &cv->dbiases, F, "biases", PARAM_TRAIN);
    if (cv->bn) {
        build_param(b, &cv->scales, &cv->dscales, F, "scales", PARAM_TRAIN);
        build_param(b, &cv->rolling_mean, NULL, F, "rolling_mean", 0);
        build_param(b, &cv->rolling_var, NULL, F, "rolling_variance", 0);
        build_buffer(b, &cv->x_hat, all, BUF_BACKWARD);
        build_buffer(b, &cv->mean, F, BUF_TRAIN);
        build_buffer(b, &cv->var, F, BUF_TRAIN);
        build_buffer(b, &cv->fold, 2 * F, BUF_ALWAYS);
    }
    build_param(b, &cv->weights, &cv->dweights, cv->nw, "weights", PARAM_TRAIN | PARAM_DECAY);
    if (act_needs_input(cv->act))
        build_buffer(b, &cv->z, all, BUF_TRAIN);
    if (cv->act == ACT_LINEAR) /* the slope is 1: backward reads x_hat and the input only */
        build_backward_skips_output(b);
    if (conv_workspace(l, cv, b, s, e) || conv_wino_setup(l, cv, b, s, e))
        return -1;
    conv_pack_setup(cv, b);
    return 0;
}

/* He (Darknet's): sqrt(2 / fan_in) * N(0, 1) with fan_in = R, the taps one filter sees; Xavier:
 * uniform in +-sqrt(6 / (fan_in + fan_out)), fan_out = F*kh*kw (PyTorch's, whatever the groups).
 */
static void conv_init(struct layer *l, cn_rng *rng)
{
    struct conv *cv = l->priv;
    double fan_in = (double)cv->R, fan_out = (double)cv->filters * cv->kh * cv->kw;
    double he = sqrt(2.0 / fan_in), xavier = sqrt(6.0 / (fan_in + fan_out));
    for (size_t i = 0; i < cv->nw; i++)
        cv->weights[i] = cv->init == INIT_HE ? (float)(he * cn_rng_normal(rng))
                                             : (float)(xavier * (2 * cn_rng_uniform(rng) - 1));
    for (int f = 0; f < cv->filters; f++) {
        cv->biases[f] = 0.f;
        if (cv->bn) {
            cv->scales[f] = 1.f;
            cv->rolling_mean[f] = 0.f;
            cv->rolling_var[f] = 1.f;
        }
    }
}

/* The images [b0, b1) of lane `lane`. */
static void conv_lane_images(const struct layer *l, int lane, int *b0, int *b1)
{
    const struct conv *cv = l->priv;
    *b0 = (int)((long long)lane * l->batch / cv->lanes);
    *b1 = (int)((long long)(lane + 1) * l->batch / cv->lanes);
}

/* col = im2col(x) of one group, split by channels over the threads when there is one lane. */
static void conv_im2col(const struct conv *cv, float *col, const float *x)
{
    int C = cv->cg;
#pragma omp parallel for schedule(static) if (cv->lanes == 1 && C > 1 && cv->col > 32768)
    for (int c = 0; c < C; c++)
        im2col_channels(col, x, &cv->g, c, c + 1);
}

/* The grouped and depthwise kernels' loops split n items (groups or filters) into this many
 * contiguous chunks, chunk s using scratch piece s of the lane's gws: with one lane, one per
 * thread the build saw, run on the threads (each piece has one user whichever thread runs its
 * chunk, however many threads the region gets); with several lanes, one. */
static int conv_chunks(const struct conv *cv)
{
    return cv->lanes == 1 ? cv->gslots : 1;
}

/* Chunk s's items [*i0, *i1) of n (conv_chunks). */
static void conv_chunk(int n, int s, int chunks, int *i0, int *i1)
{
    *i0 = (int)((long)n * s / chunks);
    *i1 = (int)((long)n * (s + 1) / chunks);
}

/* z[F x P] = the convolution of a depthwise layer's image x, each filter's plane directly, with
 * the fused epilogue y = act(fs[f] * z + fb[f]) (fs NULL: 1; fb NULL: none) while the plane is in
 * cache. Threads over chunks of filters when there is a single lane. gws: the lane's scratch. */
static void conv_depthwise_image(const struct conv *cv, float *z, const float *x, const float *fs,
                                 const float *fb, float *gws)
{
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w, P = cv->P, kk = (size_t)cv->kh * cv->kw;
    int chunks = conv_chunks(cv);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int s = 0; s < chunks; s++) {
        int f0, f1;
        conv_chunk(cv->filters, s, chunks, &f0, &f1);
        for (int f = f0; f < f1; f++)
            depthwise_forward_act(z + (size_t)f * P, x + (size_t)(f / cv->fg) * plane,
                                  cv->weights + (size_t)f * kk, gws + (size_t)s * cv->gws, &cv->g,
                                  fs ? fs + f : NULL, fb ? fb + f : NULL, (enum activation)cv->act);
    }
}

#ifndef CONV_POST_AHEAD
#define CONV_POST_AHEAD 2 /* filter rows ahead that conv_post_residual prefetches from= for */
#endif

/* A fused [shortcut] whose from= has another shape (struct residual, not full), over one
 * image's group of filters from f0: from is the image's from= output. */
struct conv_post {
    const struct residual *r;
    const float *from;
    int f0, ow;         /* the group's first filter, the output's width */
    int fh, fw;         /* from's height and width */
};

/* One output row's covered columns [0, n) of a filter row: y = alpha * y + beta * x[i*stride],
 * as shortcut.c's shortcut_row (the common strides as constants, so the loops vectorise). */
static void conv_post_row(float *y, const float *x, int n, const struct residual *r)
{
    float a = r->alpha, b = r->beta;
    if (r->stride == 1)
        for (int i = 0; i < n; i++)
            y[i] = a * y[i] + b * x[i];
    else if (r->stride == 2)
        for (int i = 0; i < n; i++)
            y[i] = a * y[i] + b * x[2 * i];
    else
        for (int i = 0; i < n; i++)
            y[i] = a * y[i] + b * x[(size_t)i * (size_t)r->stride];
}

/* Where filter row f's covered cells of output row oy, columns [ox, ox + n), read from. */
static const float *conv_post_from(const struct conv_post *cp, int f, int oy, int ox)
{
    const struct residual *r = cp->r;
    return cp->from + ((size_t)f * (size_t)cp->fh + (size_t)oy * (size_t)r->stride) *
                          (size_t)cp->fw + (size_t)ox * (size_t)r->stride;
}

/* Prefetches what filter row f reads of from over columns [j0, j1): a row of from per output
 * row, a stride of rows apart, which the hardware prefetchers do not follow. */
static void conv_post_prefetch(const struct conv_post *cp, int f, int j0, int j1)
{
    const struct residual *r = cp->r;
    for (int j = j0; f < r->minc && j < j1;) {
        int oy = j / cp->ow, ox = j - oy * cp->ow, n = CN_MIN(j1 - j, cp->ow - ox);
        if (oy < r->minh && ox < r->minw) {
            const float *x = conv_post_from(cp, f, oy, ox);
            size_t span = (size_t)(CN_MIN(n, r->minw - ox) - 1) * (size_t)r->stride;
            for (size_t t = 0; t < span; t += 16)
                __builtin_prefetch(x + t, 0, 3);
            __builtin_prefetch(x + span, 0, 3);
        }
        j += n;
    }
}

/* gemm_post over a final block of the group's output (rows: filters f0 + i; columns: output
 * positions), while it is in cache: Darknet's rule of struct residual on the covered positions
 * of each row, then the activation over the row; the float operations of shortcut.c's forward,
 * so bit for bit the unfused pair. */
static void conv_post_residual(const void *ctx, float *C, size_t ldc, int i0, int i1, int j0,
                               int j1)
{
    const struct conv_post *cp = ctx;
    const struct residual *r = cp->r;
    for (int i = i0; i < i1; i++) {
        int f = cp->f0 + i;
        float *c = C + (size_t)i * ldc;
        if (i + CONV_POST_AHEAD < i1)
            conv_post_prefetch(cp, f + CONV_POST_AHEAD, j0, j1);
        for (int j = j0; f < r->minc && j < j1;) {
            int oy = j / cp->ow, ox = j - oy * cp->ow, n = CN_MIN(j1 - j, cp->ow - ox);
            if (oy < r->minh && ox < r->minw)
                conv_post_row(c + j, conv_post_from(cp, f, oy, ox), CN_MIN(n, r->minw - ox), r);
            j += n;
        }
        act_forward(c + j0, c + j0, (size_t)(j1 - j0), (enum activation)r->act);
    }
}

/* Group gi of image x into zg by the packed weights, with the epilogue of conv_image, and rg
 * (NULL: none) added before act: with a full residual group gi's part of a fused [shortcut]'s
 * from=, else the image's whole from= output, resampled by conv_post_residual. */
static void conv_image_packed(const struct conv *cv, float *zg, const float *xg, float *col,
                              int gi, const float *scale, const float *bg, enum activation act,
                              const float *rg)
{
    int fg = cv->fg, R = (int)cv->R, P = (int)cv->P;
    const float *ap = cv->wpack + (size_t)gi * gemm_packed_a_floats(fg, R);
    const float *sg = scale ? scale + (size_t)gi * (size_t)fg : NULL;
    if (rg && !cv->res.full) {
        struct shape fs = cv->res.from->out;
        const struct conv_post cp = {&cv->res, rg, gi * fg, cv->g.ow, fs.h, fs.w};
        const struct gemm_post post = {conv_post_residual, &cp};
        if (!cv->direct && !cv->implicit) {
            conv_im2col(cv, col, xg);
            xg = col;
        }
        if (cv->implicit)
            gemm_conv_packed_post_isa(GEMM_ISA_AUTO, zg, P, ap, xg, &cv->g, fg, 1, 0, sg, bg,
                                      ACT_LINEAR, &post);
        else
            gemm_packed_post_isa(GEMM_ISA_AUTO, zg, P, ap, xg, P, 0, fg, P, R, 1, 0, sg, bg,
                                 ACT_LINEAR, &post);
        return;
    }
    if (cv->implicit) {
        gemm_conv_packed_res_isa(GEMM_ISA_AUTO, zg, P, ap, xg, &cv->g, fg, 1, 0, sg, bg, rg, act);
        return;
    }
    if (!cv->direct) {
        conv_im2col(cv, col, xg);
        xg = col;
    }
    gemm_packed_res_isa(GEMM_ISA_AUTO, zg, P, ap, xg, P, 0, fg, P, R, 1, 0, sg, bg, rg, act);
}

/* Lane `lane`'s piece of the grouped kernels' scratch (with one lane: the first thread's). */
static float *conv_lane_gws(const struct conv *cv, const struct pass *p, int lane)
{
    return p->workspace + cv->gws_at + (size_t)lane * cv->gws;
}

/* The next group, handed out by the shared counter *next. */
static int conv_next_group(int *next)
{
    int gi;
#pragma omp atomic capture
    gi = (*next)++;
    return gi;
}

/* The calling thread's number in its parallel region (0 without OpenMP). */
static int conv_thread(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* z[F x P] = the convolution of a direct grouped layer's image x, group by group
 * (kernels/depthwise.h), with the fused epilogue as conv_depthwise_image. Threads when there is
 * a single lane, each on its own scratch piece (conv_chunks), taking groups one at a time from a
 * shared counter: a thread that another program holds up leaves the rest to the others (a static
 * split waited for it), and the bits do not depend on which thread took which group. gws: the
 * lane's scratch. */
static void conv_grouped_image(const struct conv *cv, float *z, const float *x, const float *fs,
                               const float *fb, float *gws)
{
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w, P = cv->P;
    int next = 0;
#pragma omp parallel num_threads(conv_chunks(cv)) if (conv_chunks(cv) > 1)
    {
        float *ws = gws + (size_t)conv_thread() * cv->gws;
        for (int gi; (gi = conv_next_group(&next)) < cv->groups;) {
            size_t f0 = (size_t)gi * (size_t)cv->fg;
            depthwise_group_forward(
                z + f0 * P, x + (size_t)gi * (size_t)cv->cg * plane, cv->weights + f0 * cv->R, ws,
                cv->fg, &cv->g, fs ? fs + f0 : NULL, fb ? fb + f0 : NULL, (enum activation)cv->act);
        }
    }
}

/* z[F x P] = the convolution of image x: per group, im2col and one GEMM (with the packed
 * weights when made), then y = act(scale[f] * z + bias[f]) in the GEMM's epilogue (scale only
 * with packed weights; NULL: none), and with packed weights res (a fused [shortcut]'s from= of
 * this image, or NULL) added before act. */
static void conv_image(const struct conv *cv, float *z, const float *x, float *col,
                       const float *scale, const float *bias, enum activation act,
                       const float *res)
{
    CN_ASSERT(!res || cv->wpack);
    if (cv->wino)
        return; /* made for the whole batch by conv_wino_forward */
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w, P = cv->P;
    int fg = cv->fg, R = (int)cv->R;
    for (int gi = 0; gi < cv->groups; gi++) {
        const float *xg = x + (size_t)gi * (size_t)cv->cg * plane;
        const float *wg = cv->weights + (size_t)gi * (size_t)fg * cv->R;
        const float *bg = bias ? bias + (size_t)gi * (size_t)fg : NULL;
        float *zg = z + (size_t)gi * (size_t)fg * P;
        if (cv->wpack) {
            conv_image_packed(cv, zg, xg, col, gi, scale, bg, act,
                              res && cv->res.full ? res + (size_t)gi * (size_t)fg * P : res);
            continue;
        }
        if (cv->implicit) {
            gemm_conv(zg, (int)P, wg, R, xg, &cv->g, fg, 1, 0, bg, act);
            continue;
        }
        if (!cv->direct) {
            conv_im2col(cv, col, xg);
            xg = col;
        }
        gemm_bias_act(zg, (int)P, wg, R, 0, xg, (int)P, 0, fg, (int)P, R, 1, 0, bg, act);
    }
}

/* The fused epilogue over one image, in place: y[f] = act(fs[f] * y[f] + fb[f]) per filter row
 * (fs NULL: 1), split by filters over the threads when there is one lane. */
static void conv_epilogue(const struct conv *cv, float *y, const float *fs, const float *fb)
{
    int F = cv->filters;
    size_t P = cv->P;
#pragma omp parallel for schedule(static) if (cv->lanes == 1 && F > 1 && (size_t)F * P > 32768)
    for (int f = 0; f < F; f++)
        act_forward_affine(y + (size_t)f * P, y + (size_t)f * P, 1, P, fs ? fs + f : NULL, fb + f,
                           (enum activation)cv->act);
}

/* A fused [shortcut] on a path whose epilogue does not take it: y = act(y + res) over one
 * image (a [shortcut]'s order: y already holds the convolution's output), split by filters when
 * there is one lane; act_forward runs inline inside this region (kernels/activations.c). */
static void conv_residual(const struct conv *cv, float *y, const float *res, enum activation act)
{
    int F = cv->filters;
    size_t P = cv->P;
#pragma omp parallel for schedule(static) if (cv->lanes == 1 && F > 1 && (size_t)F * P > 32768)
    for (int f = 0; f < F; f++) {
        float *yf = y + (size_t)f * P;
        const float *rf = res + (size_t)f * P;
        for (size_t i = 0; i < P; i++)
            yf[i] = yf[i] + rf[i];
        act_forward(yf, yf, P, act);
    }
}

/* For the lane's images: pre[b] = the convolution of input[b]; then, while the image is in
 * cache, the fused epilogue (fb set: folded batch norm or biases, and the activation), or
 * without batch norm the biases and the activation into output (z kept). res (fb set): a fused
 * [shortcut]'s from= output for the batch, added with activation act after that epilogue (in
 * the GEMM's with packed weights, else by conv_residual); NULL: none. gws: the lane's scratch
 * for the grouped kernels (conv_lane_gws). */
static void conv_forward_lane(struct layer *l, int lane, float *col, float *gws, float *pre,
                              const float *fs, const float *fb, const float *res,
                              enum activation act)
{
    const struct conv *cv = l->priv;
    int b0, b1, F = cv->filters;
    size_t in = shape_size(l->in), out = shape_size(l->out), P = cv->P;
    conv_lane_images(l, lane, &b0, &b1);
    /* biases (and with packed weights the folded batch norm's scale) and the activation go into
     * the GEMM's own epilogue */
    int in_gemm = fb && (!fs || cv->wpack) && !cv->depthwise && !cv->wino;
    int res_gemm = res && in_gemm && cv->wpack && !cv->gdirect;
    CN_ASSERT(!res || fb);
    CN_ASSERT(!res || res_gemm || cv->res.full); /* other shapes: the packed GEMM only */
    size_t rstep = res && !cv->res.full ? shape_size(cv->res.from->out) : out;
    for (int b = b0; b < b1; b++) {
        float *z = pre + (size_t)b * out;
        const float *rb = res ? res + (size_t)b * rstep : NULL;
        if (cv->depthwise)
            conv_depthwise_image(cv, z, l->input + (size_t)b * in, fs, fb, gws);
        else if (cv->gdirect)
            conv_grouped_image(cv, z, l->input + (size_t)b * in, fs, fb, gws);
        else
            conv_image(cv, z, l->input + (size_t)b * in, col, in_gemm ? fs : NULL,
                       in_gemm ? fb : NULL,
                       res_gemm ? act : in_gemm ? (enum activation)cv->act : ACT_LINEAR,
                       res_gemm ? rb : NULL);
        if (fb && !in_gemm && !cv->depthwise && !cv->gdirect)
            conv_epilogue(cv, z, fs, fb);
        if (rb && !res_gemm)
            conv_residual(cv, z, rb, act);
        if (cv->bn || fb)
            continue;
        for (int f = 0; f < F; f++)
            for (size_t p = 0; p < P; p++)
                z[(size_t)f * P + p] += cv->biases[f];
        act_forward(l->output + (size_t)b * out, z, out, (enum activation)cv->act);
    }
}

/* The batch norm over pre; returns 1 when it applied the activation too (a training pass of a
 * ReLU layer whose pre is its output: one pass less over the output), else 0. */
static int conv_bn_forward(struct layer *l, const struct pass *p, float *pre)
{
    struct conv *cv = l->priv;
    int F = cv->filters, P = (int)cv->P;
    if (p->train) {
        CN_ASSERT(cv->x_hat);
        int relu = cv->act == ACT_RELU && pre == l->output;
        bn_forward_train_act(pre, cv->x_hat, cv->mean, cv->var, cv->rolling_mean, cv->rolling_var,
                             pre, cv->scales, cv->biases, l->batch, F, P, &cv->bnc, p->bn_sync,
                             relu ? ACT_RELU : ACT_LINEAR);
        return relu;
    }
    if (cv->x_hat) /* kept so backward can follow an inference-mode pass */
        bn_x_hat_infer(cv->x_hat, pre, cv->rolling_mean, cv->rolling_var, l->batch, F, P, &cv->bnc);
    bn_forward_infer(pre, pre, cv->scales, cv->biases, cv->rolling_mean, cv->rolling_var, l->batch,
                     F, P, &cv->bnc);
    return 0;
}

/* Whether this pass fuses the biases or the batch norm (folded) and the activation into the
 * epilogue: whenever nothing else is kept (z, or batch norm caches for a backward pass after an
 * inference-mode pass), i.e. nets built for inference, and training nets' layers without batch
 * norm and with activations of y alone. The batch norm is folded afresh on every pass (C
 * floats), so weights loaded or changed after build need no notice. */
static int conv_fused(const struct conv *cv, const struct pass *p)
{
    return !cv->z && (!cv->bn || (!p->train && !cv->x_hat));
}

static void conv_forward(struct layer *l, struct pass *p)
{
    struct conv *cv = l->priv;
    float *pre = cv->z ? cv->z : l->output;
    const float *fs = NULL, *fb = NULL;
    if (conv_fused(cv, p) && cv->bn) {
        bn_fold(cv->fold, cv->fold + cv->filters, cv->scales, cv->biases, cv->rolling_mean,
                cv->rolling_var, cv->filters, &cv->bnc);
        fs = cv->fold;
        fb = cv->fold + cv->filters;
    } else if (conv_fused(cv, p)) {
        fb = cv->biases;
    }
    /* a [shortcut] fused into this layer (inference nets), when it runs in this pass too */
    const float *res = cv->res.from && p->upto > l->index ? cv->res.from->output : NULL;
    enum activation act = res ? (enum activation)cv->res.act : (enum activation)cv->act;
    if (cv->wino && fb) { /* the epilogue runs in the output transform */
        struct winograd_epilogue ep = {fs, fb, res, act};
        conv_wino_forward(l, p, pre, &ep);
        return;
    }
    if (cv->wino)
        conv_wino_forward(l, p, pre, NULL);
    if (cv->wpack)
        conv_pack_refresh(l);
    /* One lane runs outside any parallel region: under an inactive one (if false) the GEMM's
     * and the epilogue's regions would be nested, which libgomp serves with threads it starts
     * and ends every time instead of its pool (one clone, a fresh stack and pack buffers per
     * call). */
    if (cv->lanes == 1)
        conv_forward_lane(l, 0, p->workspace, conv_lane_gws(cv, p, 0), pre, fs, fb, res, act);
    else
#pragma omp parallel for schedule(static)
        for (int lane = 0; lane < cv->lanes; lane++)
            conv_forward_lane(l, lane, p->workspace + (size_t)lane * cv->col,
                              conv_lane_gws(cv, p, lane), pre, fs, fb, res, act);
    if (!cv->bn || fb)
        return;
    if (!conv_bn_forward(l, p, pre))
        act_forward(l->output, pre, shape_size(l->out) * (size_t)l->batch,
                    (enum activation)cv->act);
}

/* Batch norm backward; after an inference-mode pass, through the frozen affine map. dz in place. */
static void conv_bn_backward(struct layer *l, const struct pass *p, float *dz)
{
    struct conv *cv = l->priv;
    int F = cv->filters, P = (int)cv->P;
    if (p->train)
        bn_backward_sync(dz, cv->dscales, cv->dbiases, dz, cv->x_hat, cv->var, cv->scales, l->batch,
                         F, P, &cv->bnc, p->bn_sync);
    else
        bn_backward_infer(dz, cv->dscales, cv->dbiases, dz, cv->x_hat, cv->rolling_var, cv->scales,
                          l->batch, F, P, &cv->bnc);
}

/* Where a lane adds its gradients: lane 0 straight into the parameters', the others into
 * partials summed afterwards. fresh: dw holds garbage, so the lane's first image writes it
 * (GEMM with beta 0) instead of adding (no zeroing pass over the weights). */
struct conv_grads {
    float *dw, *db;
    int fresh;
};

/* The sum of d[0 .. n) in 16 interleaved partial sums, which the compiler can vectorise. */
static float conv_sum(const float *d, size_t n)
{
    float acc[16] = {0};
    size_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int j = 0; j < 16; j++)
            acc[j] += d[k + j];
    float s = 0;
    for (; k < n; k++)
        s += d[k];
    for (int j = 0; j < 16; j++)
        s += acc[j];
    return s;
}

/* Without batch norm, dz[b] = dy[b] * f'(z[b]) and the bias gradient, image by image. */
static void conv_dz_image(struct layer *l, int b, float *dz, float *db)
{
    const struct conv *cv = l->priv;
    size_t out = shape_size(l->out), off = (size_t)b * out, P = cv->P;
    act_backward(dz + off, l->doutput + off, cv->z ? cv->z + off : NULL, l->output + off, out,
                 (enum activation)cv->act);
    for (int f = 0; f < cv->filters; f++)
        db[f] += conv_sum(dz + off + (size_t)f * P, P);
}

/* A depthwise image's gradients: dw += each plane's kernel gradient; dx (NULL: skipped) += each
 * plane's data gradient. Threads over chunks of input planes when there is a single lane (each
 * plane's filters are its own: no shared writes). gws: the lane's scratch (conv_chunks). */
static void conv_depthwise_back(const struct conv *cv, float *dw, float *dx, const float *d,
                                const float *x, float *gws)
{
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w, P = cv->P, kk = (size_t)cv->kh * cv->kw;
    int chunks = conv_chunks(cv);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int s = 0; s < chunks; s++) {
        int g0, g1;
        float *ws = gws + (size_t)s * cv->gws;
        conv_chunk(cv->groups, s, chunks, &g0, &g1);
        for (int f = g0 * cv->fg; f < g1 * cv->fg; f++) {
            const float *df = d + (size_t)f * P, *xg = x + (size_t)(f / cv->fg) * plane;
            depthwise_backward_kernel(dw + (size_t)f * kk, df, xg, ws, &cv->g);
            if (dx)
                depthwise_backward_data(dx + (size_t)(f / cv->fg) * plane, df,
                                        cv->weights + (size_t)f * kk, ws, &cv->g);
        }
    }
}

/* Whether backward takes conv_grouped_back: direct grouped layers (stride 1 or 2) whose
 * gradients fit the direct kernel's bands (kernels/depthwise.h). It replaced, at batch 16 and
 * one thread, the plane kernels at stride 1 and im2row + GEMM at stride 2 (1.3-4x on ResNeXt's
 * shapes at stride 1, 3-4x on the plane kernels and 1-3x on GEMM at stride 2, thread CPU time
 * on a loaded machine). */
static int conv_grouped_back_fits(const struct conv *cv)
{
    return cv->gdirect && depthwise_group_back_fits(&cv->g, cv->fg);
}

/* A direct grouped image's gradients, group by group (kernels/depthwise.h): dw_g += the kernel
 * gradient of dout_g over x_g, and dx_g (NULL: skipped) += the data gradient of dout_g through
 * weights_g. Rather than im2row and GEMMs of F/G rows (4 to 32 in ResNeXt), too few to keep a
 * GEMM's registers busy. Threads over groups when there is a single lane (each group's filters
 * and channels are its own: no shared writes). gws: the lane's scratch (conv_chunks). */
static void conv_grouped_back(const struct conv *cv, float *dw, float *dx, const float *d,
                              const float *x, float *gws)
{
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w, in = (size_t)cv->cg * plane;
    size_t wg = (size_t)cv->fg * cv->R, out = (size_t)cv->fg * cv->P;
    int chunks = conv_chunks(cv);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int s = 0; s < chunks; s++) {
        int g0, g1;
        conv_chunk(cv->groups, s, chunks, &g0, &g1);
        for (int gi = g0; gi < g1; gi++)
            depthwise_group_backward(dw + (size_t)gi * wg, dx ? dx + (size_t)gi * in : NULL,
                                     d + (size_t)gi * out, x + (size_t)gi * in,
                                     cv->weights + (size_t)gi * wg, gws + (size_t)s * cv->gws,
                                     cv->fg, &cv->g);
    }
}

/* buf = the im2row block of output rows [oy0, oy1) of one group (their positions' rows of R
 * taps), split by output rows over the threads when there is one lane. */
static void conv_im2row(const struct conv *cv, float *buf, const float *x, int oy0, int oy1)
{
    size_t per = (size_t)cv->g.ow * cv->R;
#pragma omp parallel for schedule(static) if (cv->lanes == 1 && oy1 - oy0 > 1 && cv->col > 32768)
    for (int oy = oy0; oy < oy1; oy++)
        im2row_block(buf + (size_t)(oy - oy0) * per, x, &cv->g, oy, oy + 1);
}

/* Output rows per block of the weight gradient's im2row: the whole image when its matrix fits
 * CONV_ROW_BLOCK_FLOATS, else blocks of about that size (of at least CONV_ROW_BLOCK_MIN
 * positions, the GEMM's K), so that the block stays in the L2 from im2row to the GEMM that
 * reads it instead of going out to memory and back (ResNet-18's 56x56x64 layers: 7 MB an
 * image). */
#define CONV_ROW_BLOCK_FLOATS ((size_t)1 << 18)
#define CONV_ROW_BLOCK_MIN 256

static int conv_row_block(const struct conv *cv)
{
    size_t per = (size_t)cv->g.ow * cv->R;
    if (per * (size_t)cv->g.oh <= CONV_ROW_BLOCK_FLOATS)
        return cv->g.oh;
    int rows = (int)CN_MAX(CONV_ROW_BLOCK_FLOATS / per, (size_t)1);
    rows = CN_MAX(rows, (CONV_ROW_BLOCK_MIN + cv->g.ow - 1) / cv->g.ow);
    return CN_MIN(rows, cv->g.oh);
}

/* dw_g = bw * dw_g + dz_g * row(x_g) for one group, by blocks of output rows (conv_row_block):
 * each block's GEMM adds its positions' share (the first with bw). */
static void conv_weight_grad(const struct conv *cv, float *dwg, float bw, const float *dg,
                             const float *xg, float *buf)
{
    int R = (int)cv->R, P = (int)cv->P, rows = conv_row_block(cv), ow = cv->g.ow;
    for (int oy0 = 0; oy0 < cv->g.oh; oy0 += rows) {
        int oy1 = CN_MIN(oy0 + rows, cv->g.oh), p0 = oy0 * ow;
        conv_im2row(cv, buf, xg, oy0, oy1);
        gemm(dwg, R, dg + p0, P, 0, buf, R, 0, cv->fg, R, (oy1 - oy0) * ow, 1,
             oy0 == 0 ? bw : 1.f);
    }
}

/* dx += col2im(buf) of one group, split by channels (disjoint planes) when there is one lane. */
static void conv_col2im(const struct conv *cv, float *dx, const float *buf)
{
    int C = cv->cg;
#pragma omp parallel for schedule(static) if (cv->lanes == 1 && C > 1 && cv->col > 32768)
    for (int c = 0; c < C; c++)
        col2im_channels(dx, buf, &cv->g, c, c + 1);
}

/* One image's gradients through the GEMM path, group by group: dw_g = bw * dw_g + dz_g *
 * row(x_g) (bw 0 or 1); dx_g += col2im(weights_g^T * dz_g) (dx NULL: skipped). buf holds one col
 * (or row) matrix. */
static void conv_gemm_back(const struct conv *cv, float *dw, float bw, float *dx, const float *d,
                           const float *x, float *buf)
{
    size_t plane = (size_t)cv->g.h * (size_t)cv->g.w;
    int fg = cv->fg, R = (int)cv->R, P = (int)cv->P;
    for (int gi = 0; gi < cv->groups; gi++) {
        const float *xg = x + (size_t)gi * (size_t)cv->cg * plane;
        const float *dg = d + (size_t)gi * (size_t)fg * cv->P;
        const float *wg = cv->weights + (size_t)gi * (size_t)fg * cv->R;
        float *dwg = dw + (size_t)gi * (size_t)fg * cv->R;
        if (cv->direct) {
            gemm(dwg, R, dg, P, 0, xg, P, 1, fg, R, P, 1, bw);
        } else {
            conv_weight_grad(cv, dwg, bw, dg, xg, buf);
        }
        if (!dx)
            continue;
        float *dxg = dx + (size_t)gi * (size_t)cv->cg * plane;
        if (cv->direct) {
            gemm(dxg, P, wg, R, 1, dg, P, 0, R, P, fg, 1, 1);
        } else {
            gemm(buf, P, wg, R, 1, dg, P, 0, R, P, fg, 1, 0);
            conv_col2im(cv, dxg, buf);
        }
    }
}

/* For the lane's images: the weight and input gradients. dz is ready with batch norm, else
 * made here. gws: the lane's scratch for the grouped kernels (conv_lane_gws). */
static void conv_backward_lane(struct layer *l, int lane, float *dz, float *buf, float *gws,
                               struct conv_grads gr)
{
    const struct conv *cv = l->priv;
    int b0, b1;
    size_t in = shape_size(l->in), out = shape_size(l->out);
    conv_lane_images(l, lane, &b0, &b1);
    if (gr.fresh && b0 == b1)
        memset(gr.dw, 0, sizeof(float) * cv->nw);
    for (int b = b0; b < b1; b++) {
        const float *x = l->input + (size_t)b * in, *d = dz + (size_t)b * out;
        float *dx = l->dinput && !cv->wino ? l->dinput + (size_t)b * in : NULL;
        if (!cv->bn)
            conv_dz_image(l, b, dz, gr.db);
        if (cv->depthwise)
            conv_depthwise_back(cv, gr.dw, dx, d, x, gws);
        else if (conv_grouped_back_fits(cv))
            conv_grouped_back(cv, gr.dw, dx, d, x, gws);
        else
            conv_gemm_back(cv, gr.dw, gr.fresh && b == b0 ? 0.f : 1.f, dx, d, x, buf);
    }
}

/* Lane g's gradient targets. Partials (lanes 1..): the bias part is zeroed here; the weight
 * part too for depthwise layers and conv_grouped_back's (their kernels only add), else the lane's
 * first GEMM writes it. */
static struct conv_grads conv_lane_grads(struct conv *cv, float *parts, int lane)
{
    if (lane == 0)
        return (struct conv_grads){cv->dweights, cv->dbiases, 0};
    float *dw = parts + (size_t)(lane - 1) * conv_part_size(cv), *db = dw + conv_align(cv->nw);
    memset(db, 0, sizeof(float) * (size_t)cv->filters);
    int adds = cv->depthwise || conv_grouped_back_fits(cv);
    if (adds)
        memset(dw, 0, sizeof(float) * cv->nw);
    return (struct conv_grads){dw, db, !adds};
}

/* dweights (and dbiases without batch norm) += the lanes' partials 1 .. lanes-1, in order. */
static void conv_reduce_partials(struct conv *cv, const float *parts)
{
    size_t stride = conv_part_size(cv), nb = cv->bn ? 0 : (size_t)cv->filters;
#pragma omp parallel for schedule(static) if (cv->nw * (size_t)cv->lanes > 65536)
    for (size_t i = 0; i < cv->nw + nb; i++) {
        float *t = i < cv->nw ? &cv->dweights[i] : &cv->dbiases[i - cv->nw];
        size_t at = i < cv->nw ? i : conv_align(cv->nw) + (i - cv->nw);
        float s = *t;
        for (int g = 1; g < cv->lanes; g++)
            s += parts[(size_t)(g - 1) * stride + at];
        *t = s;
    }
}

static void conv_backward(struct layer *l, struct pass *p)
{
    struct conv *cv = l->priv;
    size_t all = shape_size(l->out) * (size_t)l->batch;
    float *dz = cv->dz_inplace ? l->doutput : p->workspace;
    float *bufs = cv->dz_inplace ? p->workspace : dz + conv_align(all);
    float *parts = bufs + cv->col * (size_t)cv->lanes;
    CN_ASSERT(cv->z || !act_needs_input((enum activation)cv->act));
    if (cv->bn) {
        act_backward(dz, l->doutput, cv->z, l->output, all, (enum activation)cv->act);
        conv_bn_backward(l, p, dz);
    }
    if (cv->lanes == 1) /* outside any region, as in conv_forward */
        conv_backward_lane(l, 0, dz, bufs, conv_lane_gws(cv, p, 0), conv_lane_grads(cv, parts, 0));
    else
#pragma omp parallel for schedule(static)
        for (int lane = 0; lane < cv->lanes; lane++)
            conv_backward_lane(l, lane, dz, bufs + (size_t)lane * cv->col,
                               conv_lane_gws(cv, p, lane), conv_lane_grads(cv, parts, lane));
    if (cv->lanes > 1)
        conv_reduce_partials(cv, parts);
    if (cv->wino && l->dinput)
        conv_wino_data_grad(l, dz, conv_wino_filters(cv, p), bufs);
}

/* "F KHxKW/S[xSW] [pad P|PHxPW][, dilation D][, groups G], act[, bn]": sizes height x width. */
static void conv_describe(const struct layer *l, char *buf, size_t n)
{
    const struct conv *cv = l->priv;
    char stride[24], pad[32] = "", dil[24] = "", grp[24] = "";
    if (cv->sh == cv->sw)
        snprintf(stride, sizeof stride, "%d", cv->sh);
    else
        snprintf(stride, sizeof stride, "%dx%d", cv->sh, cv->sw);
    if (cv->ph == cv->pw && cv->ph)
        snprintf(pad, sizeof pad, " pad %d", cv->ph);
    else if (cv->ph != cv->pw)
        snprintf(pad, sizeof pad, " pad %dx%d", cv->ph, cv->pw);
    if (cv->dilation > 1)
        snprintf(dil, sizeof dil, ", dilation %d", cv->dilation);
    if (cv->groups > 1)
        snprintf(grp, sizeof grp, ", groups %d", cv->groups);
    snprintf(buf, n, "%d %dx%d/%s%s%s%s, %s%s", cv->filters, cv->kh, cv->kw, stride, pad, dil, grp,
             act_names[cv->act], cv->bn ? ", bn" : "");
}

/* The kernel chosen at build time, and how the batch is shared out: "implicit gemm" (im2col
 * packed into the GEMM's panels), "im2col+gemm" (CONV_IMPLICIT=0), "1x1 gemm"
 * (the image is its own col matrix), "1x1 strided gather+gemm" (an unpadded strided 1x1: the
 * im2col is a plain gather of every s-th pixel), "depthwise direct"; ", G groups" when grouped;
 * ", N lanes" when images run concurrently (else one image at a time over every thread);
 * ", + shortcut N" when the [shortcut] above is fused into it. */
static void conv_algorithm(const struct layer *l, char *buf, size_t n)
{
    const struct conv *cv = l->priv;
    const char *a = cv->implicit ? "implicit gemm" : "im2col+gemm";
    if (cv->wino)
        a = conv_wino_names[cv->wino - 1];
    else if (cv->depthwise)
        a = "depthwise direct";
    else if (cv->gdirect)
        a = "grouped direct";
    else if (cv->direct)
        a = "1x1 gemm";
    else if (cv->kh == 1 && cv->kw == 1 && cv->ph == 0 && cv->pw == 0 && cv->dilation == 1)
        a = cv->implicit ? "1x1 strided implicit gemm" : "1x1 strided gather+gemm";
    char grp[32] = "", lanes[32] = "", res[48] = "";
    if (cv->groups > 1 && !cv->depthwise)
        snprintf(grp, sizeof grp, ", %d groups", cv->groups);
    if (cv->lanes > 1)
        snprintf(lanes, sizeof lanes, ", %d lanes", cv->lanes);
    if (cv->res.from)
        snprintf(res, sizeof res, ", + shortcut %d%s", l->index + 1,
                 cv->res.full ? "" : " (resampled)");
    snprintf(buf, n, "%s%s%s%s", a, grp, lanes, res);
}

/* Inference nets (layer_ops.take_residual): a [shortcut] below which this layer is hands over
 * its addition of from's output and its activation, when this layer's own activation is linear
 * (the shortcut's order: conv output, then + from, then act). With equal shapes (r->full) every
 * forward path takes it: the GEMM's epilogue with packed weights, Winograd's output transform,
 * else a pass over the image after the epilogue (conv_residual); with other shapes only the
 * packed GEMM, by a pass over each block of its output while in cache (conv_post_residual). */
static int conv_take_residual(struct layer *l, const struct residual *r)
{
    struct conv *cv = l->priv;
    if (!CONV_RESIDUAL || cv->act != ACT_LINEAR || cv->res.from ||
        (!r->full && (!CONV_RESAMPLED || !conv_packs(cv))))
        return 0;
    cv->res = *r;
    return 1;
}

/* 2 * F * R multiply-adds per output position (R: one group's taps); the bias or batch norm is
 * not counted. */
static double conv_flops(const struct layer *l)
{
    const struct conv *cv = l->priv;
    return 2.0 * (double)cv->P * (double)cv->filters * (double)cv->R;
}

const struct layer_ops conv_ops = {
    .name = "convolutional",
    .alias = "conv",
    .type = LAYER_CONV,
    .build = conv_build,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
    .describe = conv_describe,
    .algorithm = conv_algorithm,
    .flops = conv_flops,
    .take_residual = conv_take_residual,
};
