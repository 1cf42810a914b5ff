/* test_activation_layer.c - the [activation] layer: shape and default, a forward and backward
 * case worked by hand (relu, relu6, logistic; backward adds into dinput), gradient checks for
 * functions that read the output (relu6, tanh) and one that reads the input (swish), the VGG-BN
 * chain conv -> [batchnorm] -> [activation], and the cfg error for an unknown name. (The
 * activation functions themselves are tested in test_activations.c.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"

#define NET1 "[net]\nbatch=1\nheight=2\nwidth=3\nchannels=1\n"

static void test_shape_and_default(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=4\nwidth=5\nchannels=3\n[activation]\n", 0, 0);
    struct layer *l = net_last(n);
    assert_int_equal(l->out.c, 3);
    assert_int_equal(l->out.h, 4);
    assert_int_equal(l->out.w, 5);
    char buf[32];
    l->ops->describe(l, buf, sizeof buf);
    assert_string_equal(buf, "linear"); /* Darknet's default for [activation] */
    assert_float_equal(l->ops->flops(l), 60, 0);
    n->input[7] = -2.5f;
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    assert_float_equal(net_output(n)[7], -2.5f, 0);
    net_destroy(n);
}

/* Forward x, backward dy = 1..6 with dinput prefilled by 10: dinput = 10 + dy * f'(x). */
static void by_hand(const char *act, const float *want_y, const float *want_dx)
{
    static const float x[6] = {-1.f, 0.5f, 2.f, 7.f, -0.25f, 3.f};
    char cfg[128];
    snprintf(cfg, sizeof cfg, NET1 "[activation]\nactivation=%s\n", act);
    struct net *n = test_net(cfg, 0, 1);
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    struct layer *l = net_last(n);
    float dx[6];
    for (int i = 0; i < 6; i++) {
        assert_float_equal(l->output[i], want_y[i], 1e-6);
        l->doutput[i] = (float)(i + 1);
        dx[i] = 10.f;
    }
    l->dinput = dx;
    net_backward(n, &p);
    l->dinput = NULL;
    for (int i = 0; i < 6; i++)
        assert_float_equal(dx[i], want_dx[i], 1e-6);
    net_destroy(n);
}

static void test_forward_backward_by_hand(void **state)
{
    (void)state;
    /* relu: y = max(0, x); slope 1 where y > 0. */
    by_hand("relu", (const float[]){0, .5f, 2, 7, 0, 3}, (const float[]){10, 12, 13, 14, 10, 16});
    /* relu6: clipped at 6, so x = 7 gives 6 with slope 0. */
    by_hand("relu6", (const float[]){0, .5f, 2, 6, 0, 3}, (const float[]){10, 12, 13, 10, 10, 16});
    /* logistic: s(x) = 1/(1+e^-x), slope s(1-s): s(-1) = 0.268941, s(0.5) = 0.622459, ... */
    float y[6], dx[6];
    static const float x[6] = {-1.f, 0.5f, 2.f, 7.f, -0.25f, 3.f};
    for (int i = 0; i < 6; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i]));
        y[i] = (float)s;
        dx[i] = (float)(10.0 + (i + 1) * s * (1 - s));
    }
    assert_float_equal(y[0], 0.268941f, 1e-6);
    by_hand("logistic", y, dx);
}

static void test_gradients(void **state)
{
    (void)state;
    static const char *const acts[] = {"relu6", "tanh", "swish", "leaky"};
    for (int k = 0; k < 4; k++) {
        char cfg[160];
        snprintf(cfg, sizeof cfg,
                 "[net]\nbatch=2\nheight=3\nwidth=4\nchannels=2\n[activation]\nactivation=%s\n",
                 acts[k]);
        struct net *n = test_net(cfg, 0, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 11 + (uint64_t)k}), 0);
        net_destroy(n);
    }
}

/* torchvision's VGG-BN block: the convolution keeps its bias, then batch norm, then ReLU. */
static void test_vgg_bn_chain(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=5\nwidth=5\nchannels=2\n"
                             "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                             "[batchnorm]\n[activation]\nactivation=relu\n",
                             0, 1);
    /* conv: 3*2*9 weights + 3 biases; batch norm: 3 scales + 3 shifts (rolling stats untrained). */
    assert_int_equal(net_param_count(n), 54 + 3 + 6);
    assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 5}), 0);
    net_destroy(n);
}

static void test_errors(void **state)
{
    (void)state;
    test_net_fails(NET1 "[activation]\nactivation=rleu\n", "did you mean 'relu'");
    test_net_fails(NET1 "[activation]\nsize=3\n", "size");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_and_default),
        cmocka_unit_test(test_forward_backward_by_hand),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_vgg_bn_chain),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
