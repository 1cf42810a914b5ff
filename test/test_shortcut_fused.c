/* test_shortcut_fused.c - a [shortcut] fused into the convolution below it (inference nets:
 * layer_ops.fuse / take_residual): bit for bit the unfused order, against the same net built
 * with NET_SEPARATE_OUTPUTS (nothing fused, every output its own), over every forward path of the
 * convolution that takes the residual: the packed GEMM's epilogue (1x1 and implicit 3x3, tails
 * of rows and columns, a narrow column tail), Winograd's output transform, and the pass after
 * the epilogue where the weights are not packed (depthwise and direct grouped layers), and a
 * non-fusable activation; at batch 1 and 2 (lanes). Also: the fusion happened (the shortcut's
 * output is the convolution's), it does not happen where the convolution's output has another
 * reader, a pass run layer by layer from net_pass_init (as `net speed` does) fuses too, and
 * net_forward_upto(the convolution) still leaves the convolution's own output there. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "gradcheck.h"
#include "net/net.h"

struct fcase {
    int batch, c, hw, size, groups, bn;
    const char *algo, *conv_act, *sc_act;
    int fused; /* expected */
};

/* The same random parameters in a and b (variances positive). */
static void fill_params(struct net *a, struct net *b, cn_rng *r)
{
    for (int i = 0; i < a->nparams; i++) {
        struct param *p = &a->params[i];
        int var = !strcmp(p->name, "rolling_variance");
        test_fill_normal(p->data, p->n, r, var ? 0.2 : 0.5, var ? 1.0 : 0.0);
        for (size_t j = 0; var && j < p->n; j++)
            p->data[j] = fabsf(p->data[j]) + 0.05f;
        memcpy(b->params[i].data, p->data, sizeof(float) * p->n);
    }
    net_params_changed(a);
    net_params_changed(b);
}

/* layer 0: a 3x3 convolution; 1: the one under test; 2: [shortcut] from=0; 3: a 1x1 after it
 * (so the shortcut is not the last layer); with `reread`, 4: a [route] reading layers 1 and 3. */
static void case_cfg(char *cfg, size_t n, const struct fcase *k, int reread)
{
    snprintf(cfg, n,
             "[net]\nbatch=%d\nheight=%d\nwidth=%d\nchannels=3\n"
             "[convolutional]\nfilters=%d\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"
             "[convolutional]\nfilters=%d\nsize=%d\npad=1\ngroups=%d\nbatch_normalize=%d\n"
             "activation=%s\nalgorithm=%s\n"
             "[shortcut]\nfrom=0\nactivation=%s\n"
             "[convolutional]\nfilters=5\nsize=1\nactivation=linear\n%s",
             k->batch, k->hw, k->hw, k->c, k->c, k->size, k->groups, k->bn, k->conv_act, k->algo,
             k->sc_act, reread ? "[route]\nlayers=1,3\n" : "");
}

/* Two rounds of fresh inputs and parameters through the fused net fu and the unfused sep (batch
 * images): the same output bits; without reread also the shortcut's output (layer 2, also layer
 * 1's with fusion), layer by layer as `net speed` runs them, and layer 1's own output. */
static void compare_nets(struct net *fu, struct net *sep, int batch, int reread, uint64_t seed)
{
    assert_ptr_not_equal(sep->layers[2].output, sep->layers[1].output);
    cn_rng r;
    cn_rng_seed(&r, seed);
    size_t nin = shape_size(fu->in) * (size_t)batch;
    for (int round = 0; round < 2; round++) {
        test_fill_normal(fu->input, nin, &r, 1, 0);
        memcpy(sep->input, fu->input, sizeof(float) * nin);
        fill_params(fu, sep, &r);
        struct pass p;
        net_pass_init(sep, &p, 0, 0);
        net_forward(sep, &p);
        net_pass_init(fu, &p, 0, 0);
        net_forward(fu, &p);
        size_t nout = shape_size(net_last(fu)->out) * (size_t)batch;
        assert_memory_equal(net_output(fu), net_output(sep), sizeof(float) * nout);
        if (reread)
            continue;
        /* the shortcut's output is layer 2's in both nets (with fusion, also layer 1's) */
        size_t n2 = shape_size(fu->layers[2].out) * (size_t)batch;
        assert_memory_equal(fu->layers[2].output, sep->layers[2].output, sizeof(float) * n2);
        net_pass_init(fu, &p, 0, 0); /* layer by layer, as `net speed` runs them */
        for (int i = 0; i < fu->n; i++)
            fu->layers[i].ops->forward(&fu->layers[i], &p);
        assert_memory_equal(fu->layers[2].output, sep->layers[2].output, sizeof(float) * n2);
        net_forward_upto(fu, &p, 1); /* stops at the convolution: its own output */
        assert_memory_equal(fu->layers[1].output, sep->layers[1].output, sizeof(float) * n2);
    }
}

static void run_case(const struct fcase *k, int reread, uint64_t seed)
{
    char cfg[1024];
    case_cfg(cfg, sizeof cfg, k, reread);
    struct net *fu = test_net(cfg, 0, 0), *sep = test_net(cfg, 0, NET_SEPARATE_OUTPUTS);
    int fused = fu->layers[2].output == fu->layers[1].output;
    if (fused != (k->fused && !reread))
        fail_msg("c=%d %dx%d size=%d %s %s/%s reread=%d: fused %d, expected %d", k->c, k->hw,
                 k->hw, k->size, k->algo, k->conv_act, k->sc_act, reread, fused,
                 k->fused && !reread);
    compare_nets(fu, sep, k->batch, reread, seed);
    net_destroy(fu);
    net_destroy(sep);
}

static void test_fused_matches_unfused(void **state)
{
    (void)state;
    static const struct fcase cases[] = {
        {1, 8, 16, 1, 1, 1, "gemm", "linear", "leaky", 1},      /* packed 1x1, P = 256 */
        {1, 7, 13, 1, 1, 1, "gemm", "linear", "relu", 1},       /* row and column tails */
        {1, 7, 18, 1, 1, 1, "gemm", "linear", "leaky", 1},      /* 324 = 20 x 16 + 4 columns */
        {2, 8, 16, 1, 1, 1, "gemm", "linear", "leaky", 1},      /* two lanes */
        {1, 8, 16, 3, 1, 1, "gemm", "linear", "relu6", 1},      /* implicit 3x3, packed */
        {1, 7, 13, 3, 1, 0, "gemm", "linear", "leaky", 1},      /* biases only, tails */
        {1, 8, 16, 3, 1, 1, "winograd", "linear", "leaky", 1},  /* F(4x4) output transform */
        {2, 7, 13, 3, 1, 0, "winograd", "linear", "relu", 1},   /* edge tiles, batch 2 */
        {1, 8, 10, 3, 1, 1, "winograd_f2", "linear", "linear", 1},
        {1, 8, 8, 1, 1, 1, "gemm", "linear", "leaky", 1},       /* P = 64: one B block */
        {1, 8, 16, 1, 1, 1, "gemm", "linear", "logistic", 1},   /* act after the GEMM */
        {1, 8, 16, 3, 2, 1, "gemm", "linear", "leaky", 1},      /* grouped */
        {1, 8, 16, 3, 8, 1, "auto", "linear", "leaky", 1},      /* depthwise: the pass after */
        {2, 8, 13, 3, 2, 0, "auto", "linear", "relu", 1},       /* direct grouped, lanes */
        {1, 8, 16, 1, 1, 1, "gemm", "leaky", "linear", 0},      /* conv's own act: not fused */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(&cases[i], 0, 300 + i);
        run_case(&cases[i], 1, 400 + i);
    }
}

/* Shapes that differ (Darknet's resampling rule, shortcut.c), or alpha/beta other than 1:
 * fused into the packed GEMM by a pass over each block of its output (conv_post_residual). */
struct rcase {
    int batch, hw, c0, c1, size, stride; /* from= (layer 0) and the convolution under test */
    float alpha, beta;
    const char *algo, *act;
    int fused;
};

/* layer 0: a 3x3 convolution of c0 filters over hw x hw; 1: the one under test (c1 filters,
 * stride, "same" padding); 2: [shortcut] from=0; 3: a 1x1 after it; with `reread`, 4: a
 * [route]. k->stride 0: from smaller than prev (layer 0 at stride 2, layer 1 padded back up to
 * hw x hw). */
static void rcase_cfg(char *cfg, size_t n, const struct rcase *k, int reread)
{
    snprintf(cfg, n,
             "[net]\nbatch=%d\nheight=%d\nwidth=%d\nchannels=3\n"
             "[convolutional]\nfilters=%d\nsize=3\nstride=%d\npad=1\nbatch_normalize=1\n"
             "activation=leaky\n"
             "[convolutional]\nfilters=%d\nsize=%d\nstride=%d\npadding=%d\nbatch_normalize=1\n"
             "activation=linear\nalgorithm=%s\n"
             "[shortcut]\nfrom=0\nactivation=%s\nalpha=%g\nbeta=%g\n"
             "[convolutional]\nfilters=5\nsize=1\nactivation=linear\n%s",
             k->batch, k->hw, k->hw, k->c0, k->stride ? 1 : 2, k->c1, k->size,
             k->stride ? k->stride : 1, k->stride ? k->size / 2 : k->hw / 4, k->algo, k->act, (double)k->alpha, (double)k->beta,
             reread ? "[route]\nlayers=1,3\n" : "");
}

static void run_rcase(const struct rcase *k, int reread, uint64_t seed)
{
    char cfg[1024];
    rcase_cfg(cfg, sizeof cfg, k, reread);
    struct net *fu = test_net(cfg, 0, 0), *sep = test_net(cfg, 0, NET_SEPARATE_OUTPUTS);
    char how[64]; /* an unfused shortcut may still run in place over prev: ask the layer */
    fu->layers[2].ops->algorithm(&fu->layers[2], how, sizeof how);
    int fused = !strcmp(how, "fused into layer 1");
    assert_int_equal(fused, fused && fu->layers[2].output == fu->layers[1].output);
    if (fused != (k->fused && !reread))
        fail_msg("hw=%d c %d->%d size=%d stride=%d a=%g b=%g %s reread=%d: fused %d, expected %d",
                 k->hw, k->c0, k->c1, k->size, k->stride, (double)k->alpha, (double)k->beta,
                 k->algo, reread, fused, k->fused && !reread);
    compare_nets(fu, sep, k->batch, reread, seed);
    net_destroy(fu);
    net_destroy(sep);
}

static void test_resampled_matches_unfused(void **state)
{
    (void)state;
    static const struct rcase cases[] = {
        {1, 16, 8, 20, 1, 1, 1, 1, "gemm", "leaky", 1},      /* channels 8 -> 20 (ResNet's 5) */
        {1, 16, 8, 20, 1, 2, 1, 1, "gemm", "leaky", 1},      /* and stride 2 (ResNet's 17) */
        {1, 16, 20, 8, 1, 2, 1, 1, "gemm", "relu", 1},       /* from has more channels */
        {1, 13, 7, 10, 3, 2, 1, 1, "gemm", "leaky", 1},      /* implicit 3x3: 13x13 -> 7x7 */
        {1, 18, 7, 9, 1, 1, 1, 1, "gemm", "logistic", 1},    /* a narrow column tail */
        {1, 16, 8, 8, 1, 1, 0.5f, 2, "gemm", "leaky", 1},    /* equal shapes, alpha and beta */
        {2, 16, 8, 20, 1, 2, 1, 1, "gemm", "leaky", 1},      /* two lanes */
        {2, 16, 8, 20, 1, 2, 0.25f, -1, "gemm", "relu6", 1}, /* lanes, alpha and beta */
        {1, 16, 32, 40, 3, 1, 1, 1, "winograd", "leaky", 0}, /* other shapes: packed GEMM only */
        {1, 16, 8, 20, 1, 0, 1, 1, "gemm", "leaky", 0},      /* from smaller (sample 2): not */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_rcase(&cases[i], 0, 500 + i);
        run_rcase(&cases[i], 1, 600 + i);
    }
}

/* By hand: layer 0 (1x1, weight 1, bias 0.25, linear) makes u = x + 0.25 of {1, -2, 3, 0.5};
 * layer 1 (weight 2, bias -1, linear) 2u - 1; the [shortcut] adds u back with relu:
 * relu(3u - 1) = relu(3x - 0.25) = {2.75, 0, 8.75, 1.25}; layer 3 (weight 1, bias 0) copies. */
static void test_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=2\nwidth=2\nchannels=1\n"
                             "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n"
                             "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n"
                             "[shortcut]\nfrom=0\nactivation=relu\n"
                             "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n",
                             0, 0);
    const float vals[4][2] = {{0.25f, 1.f}, {-1.f, 2.f}, {0.f, 1.f}}; /* bias, weight */
    for (int i = 0; i < n->nparams; i++)
        n->params[i].data[0] = vals[n->params[i].layer == 3 ? 2 : n->params[i].layer]
                                   [!strcmp(n->params[i].name, "weights")];
    net_params_changed(n);
    assert_ptr_equal(n->layers[2].output, n->layers[1].output);
    const float x[4] = {1, -2, 3, 0.5f}, want[4] = {2.75f, 0, 8.75f, 1.25f};
    test_forward_expect(n, x, want, 1e-6f);
    net_destroy(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_matches_unfused),
        cmocka_unit_test(test_resampled_matches_unfused),
        cmocka_unit_test(test_by_hand),
    };
    return cmocka_run_group_tests_name("shortcut_fused", tests, NULL, NULL);
}
