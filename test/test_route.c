/* test_route.c - the [route] layer: concatenation along channels worked by hand (forward and the
 * gradient fanned back into each source), AlexeyAB's groups/group_id, relative and absolute
 * references, gradient checks through routes with several, repeated and single inputs, and the
 * cfg errors (out of range, forward, itself, spatial mismatch, groups). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"

#define NET(h, w, c) "[net]\nbatch=2\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"
#define IDENT "[maxpool]\nsize=1\nstride=1\n" /* an identity layer without parameters */

/* Input: 2 images of 2 channels x 1 x 2, x = [1 2 | 3 4] and [5 6 | 7 8].
 * Layer 0 = identity: A = x. Layer 1 = 1x1 conv, weights (2, 1), bias 0: B = 2*a + b per pixel,
 * [5 8] and [17 20]. Layer 2 = [route] layers=-1,0: [B | A] per image. */
static void test_forward_backward_by_hand(void **state)
{
    (void)state;
    struct net *n =
        test_net(NET(1, 2, 2) IDENT "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n"
                                    "[route]\nlayers=-1,0\n",
                 0, 1);
    struct layer *r = net_last(n);
    assert_int_equal(r->out.c, 3);
    assert_int_equal(r->out.h, 1);
    assert_int_equal(r->out.w, 2);
    test_assert_describe(r, "layers 1, 0");
    assert_float_equal(r->ops->flops(r), 0, 0);
    struct param *w = test_param(n, 1, "weights"), *bias = test_param(n, 1, "biases");
    w->data[0] = 2;
    w->data[1] = 1;
    bias->data[0] = 0;
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    const float want[12] = {5, 8, 1, 2, 3, 4, 17, 20, 5, 6, 7, 8};
    for (int i = 0; i < 12; i++)
        assert_float_equal(net_output(n)[i], want[i], 0);
    /* dy = 1..12. Layer 0's doutput gets dy's A part plus the conv's W^T dB:
     * image 0: dB = (1, 2): ch0 = (3, 4) + 2*(1, 2) = (5, 8), ch1 = (5, 6) + (1, 2) = (6, 8);
     * image 1: dB = (7, 8): ch0 = (9, 10) + (14, 16), ch1 = (11, 12) + (7, 8). */
    for (int i = 0; i < 12; i++)
        r->doutput[i] = (float)(i + 1);
    net_zero_grads(n);
    net_backward(n, &p);
    const float dA[8] = {5, 8, 6, 8, 23, 26, 18, 20};
    for (int i = 0; i < 8; i++)
        assert_float_equal(n->layers[0].doutput[i], dA[i], 0);
    /* dW = sum over pixels of dB * (a, b): a: 1*1 + 2*2 + 7*5 + 8*6 = 88, b: 3 + 8 + 49 + 64. */
    assert_float_equal(w->grad[0], 88, 0);
    assert_float_equal(w->grad[1], 124, 0);
    assert_float_equal(bias->grad[0], 1 + 2 + 7 + 8, 0);
    net_destroy(n);
}

/* groups=2 group_id=1 takes channels 2..3 of a 4-channel input; a second route takes group 0
 * of that and of the input (absolute indices, in that order). */
static void test_groups_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=1\nwidth=2\nchannels=4\n" IDENT
                             "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n"
                             "[route]\nlayers=1, 0\ngroups=2\n",
                             0, 1);
    assert_int_equal(n->layers[1].out.c, 2);
    assert_int_equal(n->layers[2].out.c, 3);
    test_assert_describe(&n->layers[1], "layer 0, group 1/2");
    test_assert_describe(&n->layers[2], "layers 1, 0, group 0/2");
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    /* Layer 1 = channels 2, 3 = (5 6 | 7 8); layer 2 = layer 1's first half (its channel 0,
     * 5 6), then x's first half (channels 0 and 1, 1 2 | 3 4). */
    const float w1[4] = {5, 6, 7, 8}, w2[6] = {5, 6, 1, 2, 3, 4};
    for (int i = 0; i < 4; i++)
        assert_float_equal(n->layers[1].output[i], w1[i], 0);
    for (int i = 0; i < 6; i++)
        assert_float_equal(net_output(n)[i], w2[i], 0);
    const float dy[6] = {1, 2, 3, 4, 5, 6};
    memcpy(net_last(n)->doutput, dy, sizeof dy);
    net_backward(n, &p);
    /* Layer 1's doutput: (1 2 | 0 0); layer 0: channels 0, 1 get (3 4 | 5 6) directly, channel 2
     * gets layer 1's (1 2) through its backward, channel 3 nothing. */
    const float d1[4] = {1, 2, 0, 0}, d0[8] = {3, 4, 5, 6, 1, 2, 0, 0};
    for (int i = 0; i < 4; i++)
        assert_float_equal(n->layers[1].doutput[i], d1[i], 0);
    for (int i = 0; i < 8; i++)
        assert_float_equal(n->layers[0].doutput[i], d0[i], 0);
    net_destroy(n);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        /* two parametrised sources of different depth */
        NET(4, 5, 3) "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n"
                     "[convolutional]\nfilters=3\nsize=1\nactivation=tanh\n"
                     "[route]\nlayers=-1,-2\n"
                     "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n",
        /* groups: only a slice of each source gets a gradient */
        NET(3, 3, 2) "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n"
                     "[convolutional]\nfilters=2\nsize=1\nactivation=logistic\n"
                     "[route]\nlayers=-2,-1\ngroups=2\ngroup_id=1\n"
                     "[connected]\noutput=3\nactivation=linear\n",
        /* the same source twice (absolute and relative): gradients add */
        NET(2, 3, 2) "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n"
                     "[route]\nlayers=0,-1\n"
                     "[connected]\noutput=2\nactivation=linear\n",
        /* a single-input route jumps back over a dead branch */
        NET(4, 4, 1) "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n"
                     "[maxpool]\nsize=2\nstride=2\n"
                     "[route]\nlayers=-2\n"
                     "[connected]\noutput=2\nactivation=linear\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 5 + k}), 0);
        net_destroy(n);
    }
}

static void test_cfg_errors(void **state)
{
    (void)state;
    const char *two = NET(4, 4, 1) "[convolutional]\nfilters=2\nsize=1\n";
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s[route]\nlayers=-1,-3\n", two);
    test_net_fails(cfg, "test.cfg:10: [route] layers=-1,-3: -3 lies before the first layer "
                        "(this is layer 1)");
    snprintf(cfg, sizeof cfg, "%s[route]\nlayers=1\n", two);
    test_net_fails(cfg, "[route] layers=1: 1 is this layer itself (layer 1)");
    snprintf(cfg, sizeof cfg, "%s[route]\nlayers=0,4\n", two);
    test_net_fails(cfg, "[route] layers=0,4: 4 is not an earlier layer (this is layer 1)");
    test_net_fails(NET(4, 4, 1) "[route]\nlayers=-1\n",
                   "[route] layers=-1: -1 lies before the first layer (this is layer 0)");
    snprintf(cfg, sizeof cfg, "%s[route]\n", two);
    test_net_fails(cfg, "test.cfg:9: [route]: layers= is required");
    snprintf(cfg, sizeof cfg, "%s[route]\nlayers=-1,x\n", two);
    test_net_fails(cfg, "[route] layers=-1,x: item 2 'x' is not an integer");
    snprintf(cfg, sizeof cfg, "%s[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,-2\n", two);
    test_net_fails(cfg, "test.cfg:13: [route] layers=-1,-2: layer 1 [maxpool] is 2x2x2 but "
                        "layer 0 [convolutional] is 4x4x2 (w x h x c): inputs must share width "
                        "and height");
    snprintf(cfg, sizeof cfg, "%s[route]\nlayers=-1\ngroups=3\n", two);
    test_net_fails(cfg, "[route] groups=3: must divide the channels of every input, but layer 0 "
                        "[convolutional] has 2");
    snprintf(cfg, sizeof cfg, "%s[route]\nlayers=-1\ngroups=2\ngroup_id=2\n", two);
    test_net_fails(cfg, "[route] group_id=2: out of range");
    snprintf(cfg, sizeof cfg, "%s[route]\nlayers=-1\nfrom=-1\n", two);
    test_net_fails(cfg, "unknown key 'from'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_backward_by_hand),
        cmocka_unit_test(test_groups_by_hand),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
