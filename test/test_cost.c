/* test_cost.c - [cost]: the output is the input (the net's prediction is the layer below), sse,
 * masked and L1 losses and gradients worked by hand, a [cost] after a [softmax] leaving the
 * cross-entropy gradient as it is (or, straight_through=1, adding scale times it, as Darknet),
 * gradient checks, and the cfg errors. */
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

#define NET3 "[net]\nbatch=1\nheight=1\nwidth=1\nchannels=3\n"
#define HEAD                                                                                       \
    "[net]\nbatch=2\nheight=2\nwidth=2\nchannels=3\n[connected]\noutput=4\nactivation=linear\n"

/* One image x through a lone [cost] with targets t: returns the loss, fills dx. */
static double run_cost(const char *cfg, const float *x, const float *t, float *dx)
{
    struct net *n = test_net(cfg, 0, 1);
    memcpy(n->input, x, sizeof(float) * 3);
    memcpy(n->truth, t, sizeof(float) * 3);
    struct pass p;
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    for (int i = 0; i < 3; i++)
        assert_float_equal(net_output(n)[i], x[i], 0); /* the output is the input */
    memset(dx, 0, sizeof(float) * 3);
    n->layers[0].dinput = dx;
    net_backward(n, &p);
    n->layers[0].dinput = NULL;
    double loss = p.loss;
    net_destroy(n);
    return loss;
}

static void test_losses_by_hand(void **state)
{
    (void)state;
    const float x[3] = {1, -2, 0.5f}, t[3] = {0, 1, 0.5f};
    float dx[3];
    /* sse, scale 2: L = 2/2 * (1 + 9 + 0) = 10, dL/dx = 2 * (x - t) = (2, -6, 0). */
    assert_float_equal(run_cost(NET3 "[cost]\ntype=sse\nscale=2\n", x, t, dx), 10, 1e-6);
    assert_float_equal(dx[0], 2, 1e-6);
    assert_float_equal(dx[1], -6, 1e-6);
    assert_float_equal(dx[2], 0, 1e-6);
    /* The default is sse, scale 1: L = 5. */
    assert_float_equal(run_cost(NET3 "[cost]\n", x, t, dx), 5, 1e-6);
    /* masked: the -1234 target is skipped: L = 9/2, no gradient at 0. */
    const float tm[3] = {-1234, 1, 0.5f};
    assert_float_equal(run_cost(NET3 "[cost]\ntype=masked\n", x, tm, dx), 4.5, 1e-6);
    assert_float_equal(dx[0], 0, 0);
    assert_float_equal(dx[1], -3, 1e-6);
    /* L1: L = 1 + 3 + 0, gradient sign(x - t), +1 at a tie (Darknet's). */
    assert_float_equal(run_cost(NET3 "[cost]\ntype=L1\nratio=0.5\nnoobj=2\n", x, t, dx), 4, 1e-6);
    assert_float_equal(dx[0], 1, 0);
    assert_float_equal(dx[1], -1, 0);
    assert_float_equal(dx[2], 1, 0);
}

static void fill_truth(struct net *n)
{
    memset(n->truth, 0, sizeof(float) * net_outputs(n) * (size_t)n->batch);
    for (int b = 0; b < n->batch; b++)
        n->truth[(size_t)b * net_outputs(n) + (size_t)(b * 3 % net_outputs(n))] = 1;
}

/* Loss, output and the weight gradient of [connected] -> [softmax] (+ tail) on fixed data. */
static double head_pass(const char *tail, float *out, float *wgrad, size_t nw)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s[softmax]\n%s", HEAD, tail);
    struct net *n = test_net(cfg, 0, 1);
    for (size_t i = 0; i < net_inputs(n) * 2; i++)
        n->input[i] = (float)sin((double)i);
    fill_truth(n);
    net_zero_grads(n);
    struct pass p;
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    net_backward(n, &p);
    memcpy(out, net_output(n), sizeof(float) * 8);
    struct param *w = &n->params[1]; /* biases, then weights */
    assert_string_equal(w->name, "weights");
    assert_int_equal(w->n, nw);
    memcpy(wgrad, w->grad, sizeof(float) * nw);
    double loss = p.loss;
    net_destroy(n);
    return loss;
}

static void test_after_softmax(void **state)
{
    (void)state;
    float y0[8], y1[8], y2[8], y3[8], g0[48], g1[48], g2[48], g3[48];
    double l0 = head_pass("", y0, g0, 48);
    double l1 = head_pass("[cost]\ntype=sse\n", y1, g1, 48);
    double l2 = head_pass("[cost]\ntype=sse\nstraight_through=1\n", y2, g2, 48);
    double l3 = head_pass("[cost]\nstraight_through=1\nscale=0.5\n", y3, g3, 48);
    assert_true(l0 > 0.1);
    /* The prediction is the softmax's; the default adds neither loss nor gradient. */
    assert_memory_equal(y0, y1, sizeof y0);
    assert_memory_equal(y0, y2, sizeof y0);
    assert_float_equal(y1[0] + y1[1] + y1[2] + y1[3], 1, 1e-6);
    assert_float_equal(l1, l0, 1e-9);
    for (int i = 0; i < 48; i++)
        assert_float_equal(g1[i], g0[i], 0);
    /* straight_through: Darknet's (1 + scale) x the cross-entropy gradient and loss. */
    assert_float_equal(l2, 2 * l0, 1e-5);
    assert_float_equal(l3, 1.5 * l0, 1e-5);
    for (int i = 0; i < 48; i++) {
        assert_float_equal(g2[i], 2 * g0[i], 1e-5 + 1e-4 * fabsf(g0[i]));
        assert_float_equal(g3[i], 1.5f * g0[i], 1e-5 + 1e-4 * fabsf(g0[i]));
    }
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        HEAD "[cost]\n",
        HEAD "[cost]\ntype=L1\nscale=0.7\n",
        HEAD "[cost]\ntype=masked\nscale=3\n",
        HEAD "[softmax]\n[cost]\n",
        HEAD "[softmax]\n[cost]\nstraight_through=1\nscale=0.5\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        fill_truth(n);
        if (k == 2)
            n->truth[1] = -1234; /* masked out */
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 61 + k}), 0);
        net_destroy(n);
    }
}

static void test_describe(void **state)
{
    (void)state;
    char buf[64];
    struct net *n = test_net(HEAD "[softmax]\n[cost]\ntype=sse\n", 0, 0);
    net_last(n)->ops->describe(net_last(n), buf, sizeof buf);
    assert_string_equal(buf, "sse, output");
    assert_int_equal(net_outputs(n), 4);
    net_destroy(n);
    n = test_net(HEAD "[cost]\ntype=L1\nscale=2\n", 0, 0);
    net_last(n)->ops->describe(net_last(n), buf, sizeof buf);
    assert_string_equal(buf, "L1 x2");
    assert_float_equal(net_last(n)->ops->flops(net_last(n)), 12, 0);
    net_destroy(n);
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(HEAD "[cost]\ntype=smooth\n", "[cost] type=smooth");
    test_net_fails(HEAD "[cost]\nthresh=0.5\n",
                   "[cost] thresh=0.5: not implemented (Darknet applies it only on the GPU)");
    test_net_fails(HEAD "[softmax]\n[cost]\ntype=L1\n",
                   "test.cfg:11: [cost] type=L1: only type=sse may follow a [softmax]");
    test_net_fails(HEAD "[cost]\nstraight_through=1\n",
                   "straight_through=1: only means something right after a [softmax]");
    test_net_fails(HEAD "[cost]\nscale=-1\n", "scale=-1: out of range");
    test_net_fails(HEAD "[cost]\nnoobject_scale=2\n", "unknown key 'noobject_scale'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_losses_by_hand), cmocka_unit_test(test_after_softmax),
        cmocka_unit_test(test_gradcheck),      cmocka_unit_test(test_describe),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("cost", tests, NULL, NULL);
}
