/* test_lrn.c - [lrn] / [normalization]: the spellings' defaults, the three windows worked by hand,
 * Darknet's own numbers (printed by the Debian libdarknet's network_predict on the same cfgs),
 * gradient checks on odd, even and oversized windows, PyTorch's F.local_response_norm when
 * python3-torch is there, and the cfg errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"
#include "torchref.h"

#define NET(h, w, c) "[net]\nbatch=2\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"
#define NET1(c) "[net]\nbatch=1\nheight=1\nwidth=1\nchannels=" #c "\n"

/* Runs a one-image forward pass of cfg on x and compares the output with want (tolerance tol). */
static void assert_forward(const char *cfg, const float *x, const float *want, int n, float tol)
{
    struct net *net = test_net(cfg, 0, 0);
    assert_int_equal(net_inputs(net), n);
    assert_int_equal(net_outputs(net), n);
    test_forward_expect(net, x, want, tol);
    net_destroy(net);
}

static void test_describe_and_defaults(void **state)
{
    (void)state;
    char buf[96];
    struct net *n = test_net(NET(3, 4, 6) "[lrn]\n[normalization]\n", 0, 0);
    n->layers[0].ops->describe(&n->layers[0], buf, sizeof buf);
    assert_string_equal(buf, "5, a=0.0001/n b=0.75 k=1 torch");
    n->layers[1].ops->describe(&n->layers[1], buf, sizeof buf);
    assert_string_equal(buf, "5, a=0.0001 b=0.75 k=1 darknet");
    assert_string_equal(n->layers[1].ops->name, "lrn");
    assert_int_equal(n->layers[1].out.c, 6);
    assert_int_equal(n->layers[1].out.h, 3);
    assert_float_equal(n->layers[0].ops->flops(&n->layers[0]), 72 * 10, 0);
    net_destroy(n);
    n = test_net(NET(3, 4, 6) "[lrn]\nsize=3\nalpha_per_size=0\nwindow=caffe\nkappa=2\n", 0, 0);
    n->layers[0].ops->describe(&n->layers[0], buf, sizeof buf);
    assert_string_equal(buf, "3, a=0.0001 b=0.75 k=2 caffe");
    net_destroy(n);
}

/* One pixel, x = (1, 2, 3), size 3, beta 1, kappa 1, alpha' = 1. torch/caffe window [c-1, c+1]:
 * S = (5, 14, 13), y = x / (1 + S). Darknet's: the same minus channel 1 (x^2 = 4) everywhere:
 * S = (1, 10, 9), y = (1/2, 2/11, 3/10), which libdarknet prints as 0.5 0.181818187 0.300000012. */
static void test_by_hand(void **state)
{
    (void)state;
    const float x[3] = {1, 2, 3};
    const float torch[3] = {1 / 6.f, 2 / 15.f, 3 / 14.f};
    assert_forward(NET1(3) "[lrn]\nsize=3\nalpha=3\nbeta=1\n", x, torch, 3, 1e-6f);
    assert_forward(NET1(3) "[normalization]\nsize=3\nalpha=1\nbeta=1\nwindow=caffe\n", x, torch, 3,
                   1e-6f);
    const float darknet[3] = {0.5f, 2 / 11.f, 0.3f};
    assert_forward(NET1(3) "[normalization]\nsize=3\nalpha=1\nbeta=1\n", x, darknet, 3, 1e-6f);
    assert_forward(NET1(3) "[lrn]\nsize=3\nalpha=1\nbeta=1\nalpha_per_size=0\nwindow=darknet\n", x,
                   darknet, 3, 1e-6f);
    /* Even size 2, alpha' = 1, x = (1, 2, 3, 4): torch [c-1, c], caffe [c, c+1]. */
    const float x4[4] = {1, 2, 3, 4};
    const float t4[4] = {1 / 2.f, 2 / 6.f, 3 / 14.f, 4 / 26.f};
    const float c4[4] = {1 / 6.f, 2 / 14.f, 3 / 26.f, 4 / 17.f};
    assert_forward(NET1(4) "[lrn]\nsize=2\nalpha=2\nbeta=1\n", x4, t4, 4, 1e-6f);
    assert_forward(NET1(4) "[lrn]\nsize=2\nalpha=2\nbeta=1\nwindow=caffe\n", x4, c4, 4, 1e-6f);
}

/* Darknet's numbers, from libdarknet's network_predict. 8 channels x = 1..8, size 3, alpha .01,
 * beta 1: channel 7's window {6, 7} loses channel 1 though it is outside: N = 1 + .01*(49+64-4).
 * 7 channels x_i = (i%7) - 2.5 + 0.1 i, size 5, alpha .1, Darknet's beta .75 and kappa 1. */
static void test_matches_darknet(void **state)
{
    (void)state;
    const float x8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float d8[8] = {0.990099013f, 1.81818175f, 2.4000001f,  2.73972607f,
                         2.89017344f,  2.9126215f,  2.85714316f, 3.8277514f};
    assert_forward(NET1(8) "[normalization]\nsize=3\nalpha=0.01\nbeta=1\nkappa=1\n", x8, d8, 8,
                   2e-6f);
    float x7[7];
    for (int i = 0; i < 7; i++)
        x7[i] = (float)(i % 7) - 2.5f + 0.1f * (float)i;
    const float d7[7] = {-1.59480476f, -0.87025094f, -0.163517386f, 0.3998622f,
                         0.670996666f, 1.06125724f,  1.46805012f};
    assert_forward(NET1(7) "[normalization]\nsize=5\nalpha=0.1\n", x7, d7, 7, 2e-6f);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        NET(2, 3, 7) "[lrn]\nsize=5\nalpha=0.5\n",
        NET(3, 2, 6) "[lrn]\nsize=4\nalpha=2\nbeta=0.6\n",
        NET(2, 2, 5) "[lrn]\nsize=2\nalpha=1\nwindow=caffe\nkappa=2\n",
        NET(2, 3, 8) "[normalization]\nsize=3\nalpha=0.3\n", /* ghost channel subtracted */
        NET(1, 2, 3) "[normalization]\nsize=9\nalpha=0.2\nbeta=1.5\n", /* window > channels */
        NET(2, 2, 4) "[normalization]\nsize=1\nalpha=0.1\nkappa=3\n",
    };
    gradcheck_cfgs(cfgs, sizeof cfgs / sizeof *cfgs, &(struct gradcheck_opts){.seed = 41}, NULL);
}

static void test_matches_torch(void **state)
{
    (void)state;
    static const struct torchref_pair cases[] = {
        {NET(3, 4, 7) "[lrn]\nsize=5\nalpha=0.3\n", "lrn 2 7 3 4 5 0.3 0.75 1"},
        {NET(2, 3, 6) "[lrn]\nsize=4\nalpha=0.5\nbeta=0.9\nkappa=2\n", "lrn 2 6 2 3 4 0.5 0.9 2"},
        {NET(2, 2, 3) "[lrn]\nsize=1\nalpha=0.2\n", "lrn 2 3 2 2 1 0.2 0.75 1"},
        {NET(1, 3, 4) "[lrn]\nsize=7\nalpha=1\nbeta=0.5\n", "lrn 2 4 1 3 7 1 0.5 1"},
    };
    torchref_check(cases, (int)(sizeof cases / sizeof *cases), 5, 1e-5f,
                   "lrn against F.local_response_norm");
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(NET(4, 4, 3) "[lrn]\nsize=0\n", "test.cfg:7: [lrn] size=0: out of range");
    test_net_fails(NET(4, 4, 3) "[normalization]\nkappa=0\n",
                   "[normalization] kappa=0: must be > 0");
    test_net_fails(NET(4, 4, 3) "[lrn]\nalpha=-1\n", "alpha=-1: out of range");
    test_net_fails(NET(4, 4, 3) "[lrn]\nwindow=pytorch\n", "window=pytorch");
    test_net_fails(NET(4, 4, 3) "[lrn]\nalpha_per_size=2\n", "alpha_per_size=2");
    test_net_fails(NET(4, 4, 3) "[lrn]\nlocal_size=5\n", "unknown key 'local_size'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe_and_defaults), cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_matches_darknet),       cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_matches_torch),         cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("lrn", tests, NULL, NULL);
}
