/* test_shortcut.c - the [shortcut] layer: alpha * prev + beta * from worked by hand (forward and
 * both gradients), Darknet's rule for inputs of different shapes (a larger from sampled with a
 * stride, a smaller one added at sampled positions, min channels, alpha only where covered),
 * gradient checks on equal and mismatched shapes with activations, and the cfg errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "kernels/activations.h"
#include "net/net.h"

#define NET(h, w, c) "[net]\nbatch=2\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"
#define IDENT "[maxpool]\nsize=1\nstride=1\n" /* an identity layer without parameters */

/* One image 1x2x2, x = (1 2 3 4). Layer 0 identity: A = x. Layer 1 = 1x1 conv, weight 3, bias 1:
 * B = (4 7 10 13). Layer 2 = [shortcut] from=-2 alpha=2 beta=0.5: 2*B + A/2 = (8.5 15 21.5 28). */
static void test_forward_backward_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=2\nwidth=2\nchannels=1\n" IDENT
                             "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n"
                             "[shortcut]\nfrom=-2\nalpha=2\nbeta=0.5\n",
                             0, 1);
    struct layer *s = net_last(n);
    assert_int_equal(s->out.c, 1);
    assert_int_equal(s->out.h, 2);
    test_assert_describe(s, "from 0, linear, a=2, b=0.5");
    assert_float_equal(s->ops->flops(s), 3 * 4, 0);
    test_param(n, 1, "weights")->data[0] = 3;
    test_param(n, 1, "biases")->data[0] = 1;
    const float x[4] = {1, 2, 3, 4};
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    const float want[4] = {8.5f, 15, 21.5f, 28};
    for (int i = 0; i < 4; i++)
        assert_float_equal(net_output(n)[i], want[i], 0);
    /* dy = (1 2 3 4): dB = 2*dy; dA = 0.5*dy + 3*dB = 6.5*dy; dW = sum dB*x = 60, db = 20. */
    const float dy[4] = {1, 2, 3, 4};
    memcpy(s->doutput, dy, sizeof dy);
    net_zero_grads(n);
    net_backward(n, &p);
    for (int i = 0; i < 4; i++) {
        assert_float_equal(n->layers[1].doutput[i], 2 * dy[i], 0);
        assert_float_equal(n->layers[0].doutput[i], 6.5f * dy[i], 1e-6);
    }
    assert_float_equal(test_param(n, 1, "weights")->grad[0], 60, 1e-5);
    assert_float_equal(test_param(n, 1, "biases")->grad[0], 20, 1e-5);
    net_destroy(n);
}

/* from larger than prev. x = 0..15 as one 4x4 channel = A (layer 0). Layer 1 = 1x1 conv, stride
 * 2, 2 filters, weights 0, biases (10, 20): prev = 2x2x2 of 10s and 20s. Darknet: stride = 4/2 =
 * 2, min channels 1, so channel 0 = alpha*10 + A[2j][2i] and channel 1 stays 20 (no alpha). */
static void test_larger_from_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=4\nwidth=4\nchannels=1\n" IDENT
                             "[convolutional]\nfilters=2\nsize=1\nstride=2\nactivation=linear\n"
                             "[shortcut]\nfrom=0\nalpha=2\n",
                             0, 1);
    struct layer *s = net_last(n);
    assert_int_equal(s->out.c, 2);
    assert_int_equal(s->out.w, 2);
    test_assert_describe(s, "from 0 4x4x1, linear, a=2");
    struct param *w = test_param(n, 1, "weights"), *b = test_param(n, 1, "biases");
    memset(w->data, 0, sizeof(float) * w->n);
    b->data[0] = 10;
    b->data[1] = 20;
    for (int i = 0; i < 16; i++)
        n->input[i] = (float)i;
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    const float want[8] = {20, 22, 28, 30, 20, 20, 20, 20};
    for (int i = 0; i < 8; i++)
        assert_float_equal(net_output(n)[i], want[i], 0);
    for (int i = 0; i < 8; i++)
        s->doutput[i] = 1;
    net_zero_grads(n);
    net_backward(n, &p);
    /* dprev = alpha on channel 0, 1 on channel 1; dA = beta at the sampled positions only. */
    assert_float_equal(b->grad[0], 2 * 4, 0);
    assert_float_equal(b->grad[1], 4, 0);
    const float dA[16] = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 16; i++)
        assert_float_equal(n->layers[0].doutput[i], dA[i], 0);
    net_destroy(n);
}

/* from smaller than prev: from = 2x2x1 (a stride-2 1x1 conv of x, weight 1, bias 0: x[2j][2i]),
 * prev = x (4x4x1, via a route back to layer 0). sample = 2: out[2j][2i] = x + from. */
static void test_smaller_from_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=4\nwidth=4\nchannels=1\n" IDENT
                             "[convolutional]\nfilters=1\nsize=1\nstride=2\nactivation=linear\n"
                             "[route]\nlayers=0\n"
                             "[shortcut]\nfrom=-2\n",
                             0, 1);
    test_param(n, 1, "weights")->data[0] = 1;
    test_param(n, 1, "biases")->data[0] = 0;
    for (int i = 0; i < 16; i++)
        n->input[i] = (float)i;
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    const float want[16] = {0, 1, 2 + 2, 3, 4, 5, 6, 7, 8 + 8, 9, 10 + 10, 11, 12, 13, 14, 15};
    for (int i = 0; i < 16; i++)
        assert_float_equal(net_output(n)[i], want[i], 0);
    net_destroy(n);
}

/* Darknet's rule written out plainly (shortcut_cpu): the expected output of [shortcut] with
 * from f (fw x fh x fc) onto prev p (w x h x c), one image, before the activation. */
static void shortcut_reference(float *z, const float *prev, const float *from, int w, int h,
                               int c, int fw, int fh, int fc, float alpha, float beta)
{
    int stride = fw / w > 0 ? fw / w : 1, sample = w / fw > 0 ? w / fw : 1;
    int mw = fw < w ? fw : w, mh = fh < h ? fh : h, mc = fc < c ? fc : c;
    memcpy(z, prev, sizeof(float) * (size_t)w * h * c);
    for (int k = 0; k < mc; k++)
        for (int j = 0; j < mh; j++)
            for (int i = 0; i < mw; i++) {
                size_t zi = ((size_t)k * h + (size_t)j * sample) * w + (size_t)i * sample;
                size_t xi = ((size_t)k * fh + (size_t)j * stride) * fw + (size_t)i * stride;
                z[zi] = alpha * prev[zi] + beta * from[xi];
            }
}

/* Net k of test_resampled_forward built by mode (0: inference with NET_SEPARATE_OUTPUTS, 1:
 * training, 2: inference, the shortcut then fused into the layer below when it can be, whose
 * own output it overwrites: prev and from are read from a mode-0 net with the same parameters),
 * run on random data; its shortcut's output against shortcut_reference then the activation. */
static void check_resampled(const char *cfg, size_t k, int mode)
{
    struct net *n = test_net(cfg, 0, mode == 1 ? NET_TRAIN : mode == 0 ? NET_SEPARATE_OUTPUTS : 0);
    struct net *ref = mode == 2 ? test_net(cfg, 0, NET_SEPARATE_OUTPUTS) : n;
    for (struct net *m = n;; m = ref) {
        cn_rng r;
        cn_rng_seed(&r, 40 + k);
        test_fill_normal(m->input, shape_size(m->layers[0].out) * 3, &r, 1, 0);
        for (int i = 0; i < m->nparams; i++)
            test_fill_normal(m->params[i].data, m->params[i].n, &r, 1, 0);
        net_params_changed(m);
        struct pass p;
        net_pass_init(m, &p, 0, 0);
        net_forward(m, &p);
        if (m == ref)
            break;
    }
    struct layer *s = net_last(n), *from = &ref->layers[k == 4 ? 1 : 0], *prev = net_last(ref) - 1;
    struct shape o = s->out, f = from->out;
    size_t out = shape_size(o);
    float *want = xmalloc(sizeof(float) * out);
    for (int b = 0; b < 3; b++) {
        shortcut_reference(want, prev->output + b * out, from->output + b * shape_size(f), o.w,
                           o.h, o.c, f.w, f.h, f.c, k == 1 ? 0.5f : 1.f, k == 1 ? 1.25f : 1.f);
        enum activation a = k == 1 ? ACT_RELU : k == 2 ? ACT_LOGISTIC : ACT_LEAKY;
        for (size_t i = 0; i < out; i++)
            want[i] = act_apply(a, want[i]);
        if (memcmp(want, s->output + b * out, sizeof(float) * out))
            fail_msg("cfg %zu, mode %d, image %d differs from Darknet's rule", k, mode, b);
    }
    free(want);
    if (ref != n)
        net_destroy(ref);
    net_destroy(n);
}

/* Different shapes on the forward path of inference and training nets (larger from at strides
 * 1, 2 and 3, more and fewer channels, smaller from, sides that do not divide, planes of 1 to
 * 4096 floats, batch 3, activations), bit for bit against shortcut_reference then the
 * activation. Layer 0 (from) and 1 (prev, through a route of layer 0 or a strided 1x1) are
 * identity-like layers whose outputs are read back. */
static void test_resampled_forward(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        /* ResNeXt's first: 64x64x8 -> 64x64x24 at stride 1 (channels beyond from's copied) */
        "[net]\nbatch=3\nheight=64\nwidth=64\nchannels=8\n" IDENT
        "[convolutional]\nfilters=24\nsize=1\nactivation=linear\n"
        "[shortcut]\nfrom=0\nactivation=leaky\n",
        /* 64x64x24 -> 32x32x40, stride 2, alpha and beta */
        "[net]\nbatch=3\nheight=64\nwidth=64\nchannels=24\n" IDENT
        "[convolutional]\nfilters=40\nsize=1\nstride=2\nactivation=linear\n"
        "[shortcut]\nfrom=0\nactivation=relu\nalpha=0.5\nbeta=1.25\n",
        /* 9x9x5 -> 3x3x3, stride 3, fewer channels than from */
        "[net]\nbatch=3\nheight=9\nwidth=9\nchannels=5\n" IDENT
        "[convolutional]\nfilters=3\nsize=1\nstride=3\nactivation=linear\n"
        "[shortcut]\nfrom=0\nactivation=logistic\n",
        /* 7x7x3 -> 4x4x6 (stride 7/4 = 1: the first 4x4 of each plane) */
        "[net]\nbatch=3\nheight=7\nwidth=7\nchannels=3\n" IDENT
        "[convolutional]\nfilters=6\nsize=1\nstride=2\nactivation=linear\n"
        "[shortcut]\nfrom=0\nactivation=leaky\n",
        /* smaller from: 4x4x2 onto 8x8x2 (sample 2) */
        "[net]\nbatch=3\nheight=8\nwidth=8\nchannels=2\n" IDENT
        "[convolutional]\nfilters=2\nsize=1\nstride=2\nactivation=linear\n"
        "[route]\nlayers=0\n"
        "[shortcut]\nfrom=-2\nactivation=leaky\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++)
        for (int mode = 0; mode < 3; mode++)
            check_resampled(cfgs[k], k, mode);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        /* equal shapes, scaled residual, nonlinear activation */
        NET(3, 4, 2) "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                     "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=tanh\n"
                     "[shortcut]\nfrom=-2\nalpha=0.3\nbeta=1.5\nactivation=leaky\n",
        /* an activation that needs its input (swish keeps z) */
        NET(3, 3, 2) "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
                     "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n"
                     "[shortcut]\nfrom=0\nactivation=swish\n",
        /* from larger (stride 2) and with more channels */
        NET(4, 4, 2) "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                     "[convolutional]\nfilters=2\nsize=3\nstride=2\npad=1\nactivation=tanh\n"
                     "[shortcut]\nfrom=-2\nalpha=0.7\nbeta=1.3\n",
        /* from smaller (sample 2) with more channels than prev */
        NET(4, 4, 1) "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n"
                     "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=linear\n"
                     "[route]\nlayers=0\n"
                     "[shortcut]\nfrom=-2\nalpha=0.5\n",
        /* sides that do not divide: 3x3 from, 2x2 prev (stride 1, first 2x2 only) */
        NET(3, 3, 1) "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n"
                     "[convolutional]\nfilters=2\nsize=2\nactivation=linear\n"
                     "[shortcut]\nfrom=-2\nalpha=2\n",
        /* from the layer below itself */
        NET(2, 2, 2) "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
                     "[shortcut]\nfrom=-1\nbeta=0.5\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 11 + k}), 0);
        net_destroy(n);
    }
}

static void test_cfg_errors(void **state)
{
    (void)state;
    const char *one = NET(4, 4, 1) "[convolutional]\nfilters=2\nsize=1\n";
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s[shortcut]\nfrom=-2\n", one);
    test_net_fails(cfg, "test.cfg:10: [shortcut] from=-2: -2 lies before the first layer");
    snprintf(cfg, sizeof cfg, "%s[shortcut]\nfrom=3\n", one);
    test_net_fails(cfg, "[shortcut] from=3: 3 is not an earlier layer (this is layer 1)");
    snprintf(cfg, sizeof cfg, "%s[shortcut]\n", one);
    test_net_fails(cfg, "test.cfg:9: [shortcut]: from= is required");
    snprintf(cfg, sizeof cfg, "%s[shortcut]\nfrom=-1\nactivation=lineer\n", one);
    test_net_fails(cfg, "activation=lineer: unknown value (did you mean 'linear'?)");
    snprintf(cfg, sizeof cfg, "%s[shortcut]\nfrom=-1\nalpha=x\n", one);
    test_net_fails(cfg, "[shortcut] alpha=x");
    /* Width ratio 2 but height ratio 3: Darknet asserts, this is an error. */
    test_net_fails("[net]\nbatch=1\nheight=3\nwidth=4\nchannels=1\n"
                   "[convolutional]\nfilters=1\nsize=1\n"
                   "[maxpool]\nsize=2\nstride=2\npadding=0\n"
                   "[shortcut]\nfrom=-2\n",
                   "test.cfg:14: [shortcut] from=-2: layer 0 [convolutional] is 4x3x1 and the "
                   "layer below 2x1x1 (w x h x c): Darknet's rule needs the same ratio in width "
                   "and height");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_backward_by_hand),
        cmocka_unit_test(test_larger_from_by_hand),
        cmocka_unit_test(test_smaller_from_by_hand),
        cmocka_unit_test(test_resampled_forward),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("shortcut", tests, NULL, NULL);
}
