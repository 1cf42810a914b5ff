/* test_softmax.c - the [softmax] layer: probabilities per group summing to 1, a hand-worked
 * forward, loss and gradient (with temperature), large logits staying finite, gradient checks of
 * the loss (one-hot and soft targets, groups, a [batchnorm] below), the Jacobian path without a
 * loss, and the cfg errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"

static void test_groups_sum_to_one(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=2\nwidth=2\nchannels=3\n"
                             "[softmax]\ngroups=3\ntemperature=0.7\n",
                             0, 0);
    cn_rng r;
    cn_rng_seed(&r, 1);
    for (int i = 0; i < 24; i++)
        n->input[i] = (float)(10 * cn_rng_uniform(&r) - 5);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    const float *y = net_output(n);
    for (int g = 0; g < 6; g++) {
        double s = 0;
        for (int i = 0; i < 4; i++) {
            assert_true(y[g * 4 + i] > 0 && y[g * 4 + i] < 1);
            s += y[g * 4 + i];
        }
        assert_float_equal(s, 1.0, 1e-6);
    }
    assert_float_equal(p.loss, 0, 0); /* no truth, no loss */
    struct layer *l = net_last(n);
    assert_int_equal(l->out.c, 3);
    assert_int_equal(l->out.h, 2);
    char buf[64];
    l->ops->describe(l, buf, sizeof buf);
    assert_string_equal(buf, "3 groups of 4, T=0.7");
    assert_float_equal(l->ops->flops(l), 5 * 12, 0);
    net_destroy(n);
}

/* Image 0: logits (0, ln 2, ln 3) -> (1/6, 1/3, 1/2), label 2: loss ln 2.
 * Image 1: logits (1, 1, 1) -> 1/3 each, label 0: loss ln 3.
 * dlogits = (y - t) * loss_scale / T with loss_scale = 1/2 (two images per step). */
static void check_by_hand(float T)
{
    char cfg[160];
    snprintf(cfg, sizeof cfg,
             "[net]\nbatch=2\nheight=1\nwidth=1\nchannels=3\n[soft]\ntemperature=%g\n", (double)T);
    struct net *n = test_net(cfg, 0, 1);
    const float x[6] = {0, logf(2), logf(3), 1, 1, 1}, t[6] = {0, 0, 1, 1, 0, 0};
    for (int i = 0; i < 6; i++) {
        n->input[i] = x[i] * T; /* scaled so the probabilities are the same for every T */
        n->truth[i] = t[i];
    }
    struct pass p;
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    const float *y = net_output(n);
    const float want[6] = {1 / 6.f, 1 / 3.f, 1 / 2.f, 1 / 3.f, 1 / 3.f, 1 / 3.f};
    for (int i = 0; i < 6; i++)
        assert_float_equal(y[i], want[i], 1e-6);
    assert_float_equal(p.loss, 0.693147 + 1.098612, 1e-5);
    float dx[6] = {0};
    net_last(n)->dinput = dx;
    net_backward(n, &p);
    const float g[6] = {1 / 12.f, 1 / 6.f, -1 / 4.f, -1 / 3.f, 1 / 6.f, 1 / 6.f};
    for (int i = 0; i < 6; i++)
        assert_float_equal(dx[i], g[i] / T, 1e-6);
    net_last(n)->dinput = NULL;
    net_destroy(n);
}

static void test_by_hand(void **state)
{
    (void)state;
    check_by_hand(1.f);
    check_by_hand(2.f);
    check_by_hand(0.25f);
}

static void test_large_logits_stay_finite(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=1\nwidth=1\nchannels=3\n[softmax]\n", 0, 1);
    const float x[6] = {1000, 1001, 999, -1000, 0, 1000}, t[6] = {0, 1, 0, 1, 0, 0};
    memcpy(n->input, x, sizeof x);
    memcpy(n->truth, t, sizeof t);
    struct pass p;
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    const float *y = net_output(n);
    /* softmax(0, 1, -1) = (e^0, e^1, e^-1) / 4.0861613. */
    assert_float_equal(y[0], 0.2447285f, 1e-6);
    assert_float_equal(y[1], 0.6652410f, 1e-6);
    assert_float_equal(y[2], 0.0900306f, 1e-6);
    assert_float_equal(y[3], 0.f, 0);
    assert_float_equal(y[5], 1.f, 0);
    /* -log(0.665241) + -log(max(0, 1e-30)) = 0.4076059 + 69.0775528. */
    assert_true(isfinite(p.loss));
    assert_float_equal(p.loss, 0.4076059 + 69.0775528, 1e-4);
    net_destroy(n);
}

/* One-hot targets in every group, or (soft) positive targets normalised per group. */
static void fill_truth(struct net *n, int groups, int soft, uint64_t seed)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    size_t per = net_outputs(n) / (size_t)groups, rows = net_outputs(n) * (size_t)n->batch / per;
    for (size_t g = 0; g < rows; g++) {
        float *t = n->truth + g * per;
        size_t hot = (size_t)cn_rng_below(&r, per);
        double s = 0;
        for (size_t i = 0; i < per; i++) {
            t[i] = soft ? (float)cn_rng_uniform(&r) + 0.05f : (float)(i == hot);
            s += t[i];
        }
        for (size_t i = 0; i < per; i++)
            t[i] = (float)(t[i] / s);
    }
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const struct {
        const char *cfg;
        int groups, soft;
    } cases[] = {
        {"[net]\nbatch=2\nheight=2\nwidth=1\nchannels=3\n[softmax]\n", 1, 0},
        {"[net]\nbatch=3\nheight=1\nwidth=1\nchannels=10\n[softmax]\ngroups=2\ntemperature=1.5\n",
         2, 0},
        {"[net]\nbatch=2\nheight=1\nwidth=3\nchannels=3\nsubdivisions=2\n[softmax]\ngroups=3\n", 3,
         1},
        {"[net]\nbatch=4\nheight=2\nwidth=2\nchannels=3\n[batchnorm]\n[softmax]\ntemperature=0.5\n",
         1, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct net *n = test_net(cases[k].cfg, 0, 1);
        fill_truth(n, cases[k].groups, cases[k].soft, 50 + k);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 51 + k}), 0);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 5, .eval = 1}), 0);
        net_destroy(n);
    }
}

static double objective(struct net *n, const float *r, size_t m)
{
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    double L = 0;
    for (size_t i = 0; i < m; i++)
        L += (double)r[i] * net_output(n)[i];
    return L;
}

/* Without truth, backward applies the softmax Jacobian to doutput: compare with differences of
 * L = sum r * y. */
static void test_jacobian_without_truth(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=1\nwidth=1\nchannels=6\n"
                             "[softmax]\ngroups=2\ntemperature=1.5\n",
                             0, 1);
    size_t m = 12;
    float r[12], dx[12];
    cn_rng g;
    cn_rng_seed(&g, 8);
    for (size_t i = 0; i < m; i++) {
        n->input[i] = (float)(4 * cn_rng_uniform(&g) - 2);
        r[i] = (float)(2 * cn_rng_uniform(&g) - 1);
        dx[i] = 0;
    }
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    struct layer *l = net_last(n);
    memcpy(l->doutput, r, sizeof r);
    l->dinput = dx;
    net_backward(n, &p);
    l->dinput = NULL;
    for (size_t i = 0; i < m; i++) {
        float v = n->input[i];
        n->input[i] = v + 1e-3f;
        double Lp = objective(n, r, m);
        n->input[i] = v - 1e-3f;
        double Lm = objective(n, r, m);
        n->input[i] = v;
        assert_float_equal(dx[i], (Lp - Lm) / (double)((v + 1e-3f) - (v - 1e-3f)), 1e-3);
    }
    net_destroy(n);
}

static void test_cfg_errors(void **state)
{
    (void)state;
#define NET "[net]\nbatch=2\nheight=2\nwidth=2\nchannels=3\n"
    test_net_fails(NET "[softmax]\ngroups=0\n", "test.cfg:7: [softmax] groups=0: out of range");
    test_net_fails(NET "[softmax]\ngroups=5\n",
                   "[softmax] groups=5: must divide the input size 12");
    test_net_fails(NET "[softmax]\ntemperature=0\n", "[softmax] temperature=0: must be > 0");
    test_net_fails(NET "[softmax]\ntemperature=-1\n", "temperature=-1: out of range");
    test_net_fails(NET "[softmax]\ngroup=2\n", "unknown key 'group'");
#undef NET
    struct net *n = test_net("[net]\nbatch=1\nheight=1\nwidth=1\nchannels=10\n[softmax]\n", 0, 0);
    char buf[64];
    net_last(n)->ops->describe(net_last(n), buf, sizeof buf);
    assert_string_equal(buf, "10 classes");
    net_destroy(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups_sum_to_one),        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_large_logits_stay_finite), cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_jacobian_without_truth),   cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("softmax", tests, NULL, NULL);
}
