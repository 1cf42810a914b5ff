/* test_scale_channels.c - the [scale_channels] layer (squeeze-and-excitation): a forward and
 * backward case worked by hand, gradient checks through a whole SE block (both inputs, with and
 * without an activation after the product), and the cfg errors. */
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

/* One image, 2 channels x 1 x 2: x = (1 2 | 3 4) (layer 0, identity). Layer 1 = global average:
 * gate g = (1.5, 3.5). Layer 2 = [scale_channels] from=-2: (1.5 3 | 10.5 14). */
static void test_forward_backward_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=1\nwidth=2\nchannels=2\n"
                             "[maxpool]\nsize=1\nstride=1\n[avgpool]\n"
                             "[scale_channels]\nfrom=-2\n",
                             0, 1);
    struct layer *s = net_last(n);
    assert_int_equal(s->out.c, 2);
    assert_int_equal(s->out.h, 1);
    assert_int_equal(s->out.w, 2);
    char buf[64];
    s->ops->describe(s, buf, sizeof buf);
    assert_string_equal(buf, "layer 0 x gate, linear");
    assert_float_equal(s->ops->flops(s), 4, 0);
    const float x[4] = {1, 2, 3, 4};
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    const float want[4] = {1.5f, 3, 10.5f, 14};
    for (int i = 0; i < 4; i++)
        assert_float_equal(net_output(n)[i], want[i], 0);
    /* dy = (1 2 3 4): dg = (1*1 + 2*2, 3*3 + 4*4) = (5, 25); dx = dy * g = (1.5 3 | 10.5 14)
     * directly, plus dg / 2 through the average: (4 5.5 | 23 26.5). */
    const float dy[4] = {1, 2, 3, 4};
    memcpy(s->doutput, dy, sizeof dy);
    net_backward(n, &p);
    assert_float_equal(n->layers[1].doutput[0], 5, 0);
    assert_float_equal(n->layers[1].doutput[1], 25, 0);
    const float dx[4] = {4, 5.5f, 23, 26.5f};
    for (int i = 0; i < 4; i++)
        assert_float_equal(n->layers[0].doutput[i], dx[i], 0);
    net_destroy(n);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        /* SENet's block: squeeze (global average), excite (reduce, relu, expand, logistic) */
        NET(3, 4, 3) "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n"
                     "[avgpool]\n"
                     "[connected]\noutput=2\nactivation=relu\n"
                     "[connected]\noutput=4\nactivation=logistic\n"
                     "[scale_channels]\nfrom=-4\n",
        /* 1x1 convolutions for the excitation, an activation after the product, then a
         * residual add as in SE-ResNet */
        NET(2, 3, 2) "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n"
                     "[avgpool]\n"
                     "[convolutional]\nfilters=3\nsize=1\nactivation=logistic\n"
                     "[scale_channels]\nfrom=0\nactivation=tanh\n"
                     "[shortcut]\nfrom=0\n",
        /* the gate scales itself: y = g * g */
        NET(1, 1, 3) "[connected]\noutput=3\nactivation=logistic\n"
                     "[scale_channels]\nfrom=-1\nactivation=mish\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 31 + k}), 0);
        net_destroy(n);
    }
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(NET(4, 4, 3) "[convolutional]\nfilters=2\nsize=1\n[avgpool]\n"
                                "[scale_channels]\n",
                   "test.cfg:10: [scale_channels]: from= is required");
    test_net_fails(NET(4, 4, 3) "[convolutional]\nfilters=2\nsize=1\n[avgpool]\n"
                                "[scale_channels]\nfrom=-3\n",
                   "[scale_channels] from=-3: -3 lies before the first layer (this is layer 2)");
    test_net_fails(NET(4, 4, 3) "[convolutional]\nfilters=2\nsize=1\n[avgpool]\n"
                                "[connected]\noutput=3\n[scale_channels]\nfrom=0\n",
                   "test.cfg:13: [scale_channels] from=0: the layer below (the gate) is 1x1x3 "
                   "and layer 0 [convolutional] is 4x4x2 (w x h x c): the gate must be 1x1x2, "
                   "one value per channel");
    test_net_fails(NET(4, 4, 3) "[convolutional]\nfilters=2\nsize=1\n"
                                "[convolutional]\nfilters=2\nsize=1\n[scale_channels]\nfrom=0\n",
                   "the layer below (the gate) is 4x4x2 and layer 0");
    test_net_fails(NET(4, 4, 3) "[convolutional]\nfilters=2\nsize=1\n[avgpool]\n"
                                "[scale_channels]\nfrom=0\nscale_wh=1\n",
                   "unknown key 'scale_wh'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_backward_by_hand),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("scale_channels", tests, NULL, NULL);
}
