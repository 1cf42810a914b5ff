/* test_conv.c - the [convolutional] layer: Darknet's keys, defaults, output sizes and parameter
 * order, initialisation, a forward and backward case worked by hand, gradient checks (with and
 * without batch norm, several activations, strides, paddings, 1x1 kernels, stacked layers), the
 * same results whatever the thread count, and the cfg errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define NET(b, h, w, c) "[net]\nbatch=" #b "\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"

static void assert_out(const char *cfg, int c, int h, int w, const char *desc, double flops)
{
    struct net *n = test_net(cfg, 0, 0);
    struct layer *l = net_last(n);
    assert_int_equal(l->out.c, c);
    assert_int_equal(l->out.h, h);
    assert_int_equal(l->out.w, w);
    char buf[64];
    l->ops->describe(l, buf, sizeof buf);
    assert_string_equal(buf, desc);
    assert_float_equal(l->ops->flops(l), flops, 0);
    net_destroy(n);
}

static void test_shapes_and_defaults(void **state)
{
    (void)state;
    /* out = (h + 2*padding - size)/stride + 1; pad=1 means padding = size/2. */
    assert_out(NET(2, 28, 28, 1) "[convolutional]\nfilters=6\nsize=5\npad=1\nactivation=relu\n", 6,
               28, 28, "6 5x5/1 pad 2, relu", 2.0 * 784 * 6 * 25);
    assert_out(NET(2, 14, 14, 6) "[conv]\nfilters=16\nsize=5\nactivation=relu\n", 16, 10, 10,
               "16 5x5/1, relu", 2.0 * 100 * 16 * 150);
    assert_out(NET(1, 5, 4, 3) "[conv]\n", 1, 5, 4, "1 1x1/1, logistic", 2.0 * 20 * 3);
    assert_out(NET(1, 7, 6, 2) "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\n"
                               "batch_normalize=1\nactivation=leaky\n",
               3, 4, 3, "3 3x3/2 pad 1, leaky, bn", 2.0 * 12 * 3 * 18);
    assert_out(NET(1, 7, 6, 2) "[convolutional]\nfilters=2\nsize=3\npadding=2\n", 2, 9, 8,
               "2 3x3/1 pad 2, logistic", 2.0 * 72 * 2 * 18);
    /* pad=1 wins over padding (Darknet); size 4 gives padding 2. */
    assert_out(NET(1, 6, 6, 1) "[convolutional]\nsize=4\npad=1\npadding=1\nstride=3\n", 1, 3, 3,
               "1 4x4/3 pad 2, logistic", 2.0 * 9 * 16);
}

static void test_params_and_init(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 9, 9, 16) "[convolutional]\nfilters=64\nsize=3\npad=1\n"
                                              "batch_normalize=1\n",
                             0, 1);
    static const char *const names[] = {"biases", "scales", "rolling_mean", "rolling_variance",
                                        "weights"};
    static const unsigned flags[] = {PARAM_TRAIN, PARAM_TRAIN, 0, 0, PARAM_TRAIN | PARAM_DECAY};
    assert_int_equal(n->nparams, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(n->params[i].name, names[i]);
        assert_int_equal(n->params[i].flags, flags[i]);
        assert_int_equal(n->params[i].n, i < 4 ? 64 : 64 * 16 * 9);
        for (size_t k = 0; i < 4 && k < 64; k++)
            assert_float_equal(n->params[i].data[k], i == 1 || i == 3 ? 1 : 0, 0);
    }
    /* He (Darknet's): N(0, 2/fan_in), fan_in = 16*3*3 = 144: the sample deviation within 4%. */
    const struct param *w = &n->params[4];
    double sq = 0, sum = 0;
    for (size_t k = 0; k < w->n; k++) {
        sum += w->data[k];
        sq += (double)w->data[k] * w->data[k];
    }
    assert_float_equal(sqrt(sq / (double)w->n), sqrt(2.0 / 144), 0.04 * sqrt(2.0 / 144));
    assert_float_equal(sum / (double)w->n, 0, 0.01);
    net_destroy(n);
    /* Xavier: uniform in +-sqrt(6/(fan_in + fan_out)) = sqrt(6/(144 + 576)). */
    n = test_net(NET(2, 9, 9, 16) "[conv]\nfilters=64\nsize=3\ninit=xavier\n", 0, 0);
    assert_int_equal(n->nparams, 2);
    double bound = sqrt(6.0 / 720), lo = 0, hi = 0;
    for (size_t k = 0; k < n->params[1].n; k++) {
        lo = fmin(lo, n->params[1].data[k]);
        hi = fmax(hi, n->params[1].data[k]);
    }
    assert_true(hi <= bound && hi > 0.98 * bound && lo >= -bound && lo < -0.98 * bound);
    net_destroy(n);
}

/* 1 image, 1 channel 3x3, 2 filters 2x2, stride 1, no padding, linear: out 2 x 2 x 2. */
static void test_forward_backward_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(1, 3, 3, 1) "[convolutional]\nfilters=2\nsize=2\n"
                                             "activation=linear\n",
                             0, 1);
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[8] = {1, 2, 3, 4, 0.5f, 0.5f, 0.5f, 0.5f}, b[2] = {1, -2};
    assert_string_equal(n->params[0].name, "biases");
    memcpy(n->params[0].data, b, sizeof b);
    memcpy(n->params[1].data, w, sizeof w);
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    /* Filter 0: 1*x00 + 2*x01 + 3*x10 + 4*x11 + 1; filter 1: half the window sum - 2. */
    const float want[8] = {38, 48, 68, 78, 4, 6, 10, 12};
    for (int i = 0; i < 8; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-5);
    /* Backward with dy = 1 on filter 0, 0 on filter 1, dinput wired by hand and preloaded. */
    struct layer *l = net_last(n);
    float dx[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0.5f};
    l->dinput = dx;
    const float dy[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    memcpy(l->doutput, dy, sizeof dy);
    net_zero_grads(n);
    net_backward(n, &p);
    /* dW0[ki][kj] = sum of the windows' taps; dW1 = 0; dbias = (4, 0). */
    const float want_dw[8] = {12, 16, 24, 28, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        assert_float_equal(n->params[1].grad[i], want_dw[i], 1e-5);
    assert_float_equal(n->params[0].grad[0], 4, 0);
    assert_float_equal(n->params[0].grad[1], 0, 0);
    /* dx[cell] = sum of filter 0's weights over the windows covering the cell (added to dx). */
    const float want_dx[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4.5f};
    for (int i = 0; i < 9; i++)
        assert_float_equal(dx[i], want_dx[i], 1e-6);
    l->dinput = NULL;
    net_destroy(n);
}

/* Stride 2 with explicit padding 1 and leaky: windows start at (-1, -1). */
static void test_strided_padded_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(1, 3, 3, 1) "[conv]\nsize=2\nstride=2\npadding=1\n"
                                             "activation=leaky\n",
                             0, 0);
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 2, 3, -4};
    memcpy(n->params[1].data, w, sizeof w);
    n->params[0].data[0] = 0;
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    /* (0,0): -4*1 = -4; (0,1): 3*2 - 4*3 = -6; (1,0): 2*4 - 4*7 = -20; (1,1): 5+12+24-36 = 5;
     * leaky keeps a tenth of the negatives. */
    const float want[4] = {-0.4f, -0.6f, -2.f, 5.f};
    for (int i = 0; i < 4; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-6);
    net_destroy(n);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        NET(3, 7, 6, 2) "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=leaky\n",
        NET(3, 7, 6, 2) "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
                        "batch_normalize=1\n",
        NET(2, 5, 4, 3) "[convolutional]\nfilters=2\nsize=3\nactivation=tanh\n",
        NET(3, 5, 5, 3) "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n",
        NET(2, 6, 5, 2) "[convolutional]\nfilters=3\nsize=2\npadding=1\nactivation=swish\n"
                        "batch_normalize=1\n",
        NET(2, 4, 5, 1) "[convolutional]\nfilters=2\nsize=5\npad=1\nactivation=linear\n",
        NET(3, 5, 7, 2) "[convolutional]\nfilters=3\nsize=1\nstride=2\nactivation=tanh\n"
                        "batch_normalize=1\n",
        NET(3, 7, 7, 1) "[conv]\nfilters=3\nsize=3\npad=1\nactivation=tanh\n"
                        "[conv]\nfilters=2\nsize=3\nstride=2\nactivation=swish\n"
                        "[conv]\nfilters=2\nsize=1\nactivation=linear\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 5 + k}), 0);
        net_destroy(n);
    }
}

/* A training net run in inference mode: batch norm through its rolling statistics. */
static void test_gradcheck_eval_bn(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 5, 6, 2) "[convolutional]\nfilters=3\nsize=3\npad=1\n"
                                             "activation=logistic\nbatch_normalize=1\n",
                             0, 1);
    for (int k = 0; k < 3; k++) { /* rolling statistics away from 0 and 1 */
        n->params[2].data[k] = 0.1f * (float)(k + 1);
        n->params[3].data[k] = 0.5f + 0.25f * (float)k;
        n->params[1].data[k] = 1.f - 0.3f * (float)k;
    }
    assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 3, .eval = 1}), 0);
    net_destroy(n);
}

/* Output bits do not depend on the thread count; weight gradients only up to summation order. */
static void test_threads_agree(void **state)
{
    (void)state;
#ifdef _OPENMP
    static const char cfg[] = NET(5, 9, 8, 3) "[convolutional]\nfilters=5\nsize=3\npad=1\n"
                                              "activation=leaky\n";
    int saved = omp_get_max_threads();
    struct net *nets[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t == 0 ? 1 : 3);
        nets[t] = test_net(cfg, 0, 1);
        struct net *n = nets[t];
        for (size_t i = 0; i < net_inputs(n) * 5; i++)
            n->input[i] = (float)((i * 37) % 11) / 11.f - 0.4f;
        struct pass p;
        net_pass_init(n, &p, 1, 0);
        net_forward(n, &p);
        for (size_t i = 0; i < net_outputs(n) * 5; i++)
            net_last(n)->doutput[i] = (float)((i * 13) % 7) / 7.f - 0.5f;
        net_zero_grads(n);
        net_backward(n, &p);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(net_output(nets[0]), net_output(nets[1]),
                        sizeof(float) * net_outputs(nets[0]) * 5);
    for (int k = 0; k < nets[0]->nparams; k++)
        for (size_t i = 0; i < nets[0]->params[k].n; i++)
            assert_float_equal(nets[0]->params[k].grad[i], nets[1]->params[k].grad[i], 1e-4);
    net_destroy(nets[0]);
    net_destroy(nets[1]);
#else
    skip();
#endif
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(NET(2, 8, 8, 1) "[convolutional]\nfilters=0\n",
                   "test.cfg:7: [convolutional] filters=0: out of range");
    test_net_fails(NET(2, 8, 8, 1) "[convolutional]\nsize=0\n", "[convolutional] size=0: out of");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\nstride=-1\n", "[conv] stride=-1: out of range");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\npadding=-2\n", "[conv] padding=-2: out of range");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\npad=2\n", "[conv] pad=2: out of range");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\nbatch_normalize=yes\n", "batch_normalize=yes");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\nactivation=lekay\n",
                   "[conv] activation=lekay: unknown value");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\ninit=glorot\n", "[conv] init=glorot");
    test_net_fails(NET(2, 3, 8, 1) "[convolutional]\nsize=5\n",
                   "test.cfg:6: [convolutional]: a 5x5 kernel does not fit the 8x3 input with "
                   "padding 0");
    test_net_fails(NET(2, 3, 3, 1) "[convolutional]\nsize=6\npadding=1\n",
                   "a 6x6 kernel does not fit the 3x3 input with padding 1");
    test_net_fails(NET(2, 8, 8, 1) "[convolutional]\nfilters=2\nsizee=3\n",
                   "unknown key 'sizee' (did you mean 'size'?)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_defaults),
        cmocka_unit_test(test_params_and_init),
        cmocka_unit_test(test_forward_backward_by_hand),
        cmocka_unit_test(test_strided_padded_by_hand),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_gradcheck_eval_bn),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("conv", tests, NULL, NULL);
}
