/* test_connected.c - the [connected] layer: Darknet's keys, defaults and parameter order,
 * initialisation, a forward and backward case worked by hand, gradient checks (with and without
 * batch norm, several activations, flattened NCHW inputs, stacked layers) and the cfg errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"

#define NET(b, h, w, c) "[net]\nbatch=" #b "\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"

static void test_shapes_and_defaults(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 5, 4, 3) "[connected]\noutput=3\n", 0, 0);
    struct layer *l = net_last(n);
    assert_int_equal(l->out.c, 3);
    assert_int_equal(l->out.h, 1);
    assert_int_equal(l->out.w, 1);
    char buf[64];
    l->ops->describe(l, buf, sizeof buf);
    assert_string_equal(buf, "60 -> 3, logistic");
    assert_float_equal(l->ops->flops(l), 2.0 * 60 * 3, 0);
    net_destroy(n);
    n = test_net(NET(2, 1, 1, 7) "[conn]\nbatch_normalize=1\nactivation=relu\n", 0, 0);
    l = net_last(n);
    assert_int_equal(l->out.c, 1);
    l->ops->describe(l, buf, sizeof buf);
    assert_string_equal(buf, "7 -> 1, relu, bn");
    net_destroy(n);
}

static void test_params_and_init(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 4, 4, 8) "[connected]\noutput=50\nbatch_normalize=1\n", 0, 1);
    static const char *const names[] = {"biases", "weights", "scales", "rolling_mean",
                                        "rolling_variance"};
    static const size_t sizes[] = {50, 50 * 128, 50, 50, 50};
    static const unsigned flags[] = {PARAM_TRAIN, PARAM_TRAIN | PARAM_DECAY, PARAM_TRAIN, 0, 0};
    assert_int_equal(n->nparams, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(n->params[i].name, names[i]);
        assert_int_equal(n->params[i].n, sizes[i]);
        assert_int_equal(n->params[i].flags, flags[i]);
    }
    for (int k = 0; k < 50; k++) {
        assert_float_equal(n->params[0].data[k], 0, 0);
        assert_float_equal(n->params[2].data[k], 1, 0);
        assert_float_equal(n->params[3].data[k], 0, 0);
        assert_float_equal(n->params[4].data[k], 1, 0);
    }
    /* Darknet's: sqrt(2/inputs) * uniform(-1, 1), inputs = 128. */
    test_assert_uniform(n->params[1].data, n->params[1].n, sqrt(2.0 / 128), 0.99);
    net_destroy(n);
    n = test_net(NET(2, 4, 4, 8) "[connected]\noutput=50\ninit=xavier\n", 0, 0);
    test_assert_uniform(n->params[1].data, n->params[1].n, sqrt(6.0 / (128 + 50)), 0.99);
    net_destroy(n);
}

/* 2 images of 3 inputs, 2 outputs, relu: y = x W^T + b. */
static void test_forward_backward_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 1, 1, 3) "[connected]\noutput=2\nactivation=relu\n", 0, 1);
    const float w[6] = {1, 2, 3, -1, 0, 0.5f}, b[2] = {0.5f, -1};
    const float x[6] = {1, 2, 3, -1, 0, 2};
    memcpy(n->params[0].data, b, sizeof b);
    memcpy(n->params[1].data, w, sizeof w);
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    /* Image 0: 1+4+9+0.5 = 14.5, -1+1.5-1 = -0.5 -> 0; image 1: -1+6+0.5 = 5.5, 1+1-1 = 1. */
    const float want[4] = {14.5f, 0, 5.5f, 1};
    for (int i = 0; i < 4; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-6);
    struct layer *l = net_last(n);
    float dx[6] = {0, 0, 0, 0, 0, 1};
    l->dinput = dx;
    const float dy[4] = {1, 2, 0, 1}; /* the 2 meets relu's zero slope: dz = (1, 0; 0, 1) */
    memcpy(l->doutput, dy, sizeof dy);
    net_zero_grads(n);
    net_backward(n, &p);
    const float want_dw[6] = {1, 2, 3, -1, 0, 2}, want_dx[6] = {1, 2, 3, -1, 0, 1.5f};
    for (int i = 0; i < 6; i++) {
        assert_float_equal(n->params[1].grad[i], want_dw[i], 1e-6);
        assert_float_equal(dx[i], want_dx[i], 1e-6);
    }
    assert_float_equal(n->params[0].grad[0], 1, 0);
    assert_float_equal(n->params[0].grad[1], 1, 0);
    l->dinput = NULL;
    net_destroy(n);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        NET(3, 3, 2, 2) "[connected]\noutput=5\nactivation=tanh\n",
        NET(3, 3, 2, 2) "[connected]\noutput=5\nactivation=linear\nbatch_normalize=1\n",
        NET(4, 1, 1, 7) "[connected]\noutput=3\nactivation=logistic\n",
        NET(2, 2, 3, 1) "[connected]\noutput=4\nactivation=swish\nbatch_normalize=1\n",
        NET(5, 2, 2, 2) "[connected]\noutput=1\nactivation=leaky\n",
        NET(3, 4, 3, 2) "[connected]\noutput=7\nactivation=tanh\n"
                        "[connected]\noutput=6\nactivation=swish\nbatch_normalize=1\n"
                        "[connected]\noutput=2\nactivation=linear\n",
        NET(3, 5, 5, 1) "[convolutional]\nfilters=2\nsize=3\nstride=2\nactivation=tanh\n"
                        "[connected]\noutput=3\nactivation=logistic\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 11 + k}), 0);
        net_destroy(n);
    }
}

/* A training net run in inference mode: batch norm through its rolling statistics. */
static void test_gradcheck_eval_bn(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 2, 2, 2) "[connected]\noutput=3\nactivation=tanh\n"
                                             "batch_normalize=1\n",
                             0, 1);
    for (int k = 0; k < 3; k++) {
        n->params[2].data[k] = 1.f - 0.25f * (float)k; /* scales */
        n->params[3].data[k] = 0.2f * (float)k - 0.1f; /* rolling mean */
        n->params[4].data[k] = 0.4f + 0.5f * (float)k; /* rolling variance */
    }
    assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 8, .eval = 1}), 0);
    net_destroy(n);
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(NET(2, 2, 2, 1) "[connected]\noutput=0\n",
                   "test.cfg:7: [connected] output=0: out of range");
    test_net_fails(NET(2, 2, 2, 1) "[conn]\noutput=-4\n", "[conn] output=-4: out of range");
    test_net_fails(NET(2, 2, 2, 1) "[connected]\noutput=two\n", "output=two: not an integer");
    test_net_fails(NET(2, 2, 2, 1) "[connected]\nbatch_normalize=2\n",
                   "[connected] batch_normalize=2: out of range");
    test_net_fails(NET(2, 2, 2, 1) "[connected]\ninit=normal\n", "[connected] init=normal");
    test_net_fails(NET(2, 2, 2, 1) "[connected]\noutputs=3\n",
                   "unknown key 'outputs' (did you mean 'output'?)");
    test_net_fails(NET(2, 2, 2, 1) "[connected]\nactivation=soft\n",
                   "[connected] activation=soft: unknown value");
    /* 2^22 inputs x 512 outputs = 2^31 weights (8 GiB): refused at parse time, on its line */
    test_net_fails(NET(1, 1024, 1024, 4) "[connected]\noutput=512\n",
                   "test.cfg:7: [connected] output=512: 4194304 inputs (4x1024x1024) x 512 "
                   "outputs = 2147483648 weights, more than 1073741824");
    /* without output= (1 output), 3 x 2^29 inputs: the bound names the section */
    test_net_fails(NET(1, 32768, 16384, 3) "[connected]\n",
                   "test.cfg:6: [connected]: 1610612736 inputs (3x32768x16384) x 1 outputs");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_defaults),      cmocka_unit_test(test_params_and_init),
        cmocka_unit_test(test_forward_backward_by_hand), cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_gradcheck_eval_bn),        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("connected", tests, NULL, NULL);
}
