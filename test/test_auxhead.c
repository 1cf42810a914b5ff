/* test_auxhead.c - auxiliary classifiers: a mid-net [softmax] with loss_weight, followed by a
 * [route] back to the trunk. Its weighted loss and gradient worked by hand, a gradient check of
 * a net with an auxiliary head (loss = main + w * aux), inference ignoring the head, a softmax
 * whose output feeds a [cost], and the errors (no route back, a route that reads it, a size that
 * differs from the labels). */
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

/* One image, 3 logits (0, ln 2, ln 3) -> probabilities (1/6, 1/3, 1/2), label 2. Layer 0 is the
 * identity trunk; layer 1 an auxiliary softmax (weight 0.5) on it; layer 2 routes back to
 * layer 0; layer 3 is the main softmax. Loss = ln 2 + 0.5 ln 2; the trunk's gradient is
 * (1 + 0.5) * (y - t) (loss_scale 1: one image per step). */
static void test_weighted_loss_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=1\nheight=1\nwidth=1\nchannels=3\n"
                             "[maxpool]\nsize=1\nstride=1\n"
                             "[softmax]\nloss_weight=0.5\n"
                             "[route]\nlayers=-2\n"
                             "[softmax]\n",
                             0, 1);
    char buf[64];
    n->layers[1].ops->describe(&n->layers[1], buf, sizeof buf);
    assert_string_equal(buf, "3 classes, auxiliary, loss x0.5");
    net_last(n)->ops->describe(net_last(n), buf, sizeof buf);
    assert_string_equal(buf, "3 classes");
    const float x[3] = {0, logf(2), logf(3)}, t[3] = {0, 0, 1};
    memcpy(n->input, x, sizeof x);
    memcpy(n->truth, t, sizeof t);
    struct pass p;
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    assert_float_equal(p.loss, 1.5 * 0.693147, 1e-5);
    net_backward(n, &p);
    const float y[3] = {1 / 6.f, 1 / 3.f, 1 / 2.f};
    for (int i = 0; i < 3; i++)
        assert_float_equal(n->layers[0].doutput[i], 1.5f * (y[i] - t[i]), 1e-6);
    /* Inference: the output is the main head's, no loss, and backward without truth leaves the
     * auxiliary head silent (only the main head's Jacobian of its doutput, here 0). */
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    assert_float_equal(p.loss, 0, 0);
    assert_ptr_equal(net_output(n), net_last(n)->output);
    memset(net_last(n)->doutput, 0, sizeof(float) * 3);
    net_backward(n, &p);
    for (int i = 0; i < 3; i++)
        assert_float_equal(n->layers[0].doutput[i], 0, 0);
    net_destroy(n);
}

/* loss_weight=0 removes the head's loss and gradient exactly. */
static void test_weight_zero(void **state)
{
    (void)state;
    static const char *const fmt =
        "[net]\nbatch=2\nheight=2\nwidth=2\nchannels=1\n"
        "[connected]\noutput=3\nactivation=linear\n"
        "[connected]\noutput=2\nactivation=linear\n[softmax]\nloss_weight=%s\n"
        "[route]\nlayers=0\n"
        "[connected]\noutput=2\nactivation=linear\n[softmax]\n";
    char with[512], without[512];
    snprintf(with, sizeof with, fmt, "1");
    snprintf(without, sizeof without, fmt, "0");
    struct net *a = test_net(with, 0, 1), *b = test_net(without, 0, 1);
    const float x[8] = {1, -1, 0.5f, 2, 0, 1, -2, 0.25f}, t[4] = {1, 0, 0, 1};
    struct pass pa, pb;
    memcpy(a->input, x, sizeof x);
    memcpy(b->input, x, sizeof x);
    memcpy(a->truth, t, sizeof t);
    memcpy(b->truth, t, sizeof t);
    net_pass_init(a, &pa, 1, 1);
    net_pass_init(b, &pb, 1, 1);
    net_forward(a, &pa);
    net_forward(b, &pb);
    /* The same seed gives the same weights; the aux loss is the difference. */
    double aux = 0;
    for (int i = 0; i < 4; i++)
        aux -= t[i] * log(a->layers[2].output[i]);
    assert_float_equal(pa.loss - pb.loss, aux, 1e-5);
    net_backward(b, &pb);
    for (int i = 0; i < b->nparams; i++)
        if (b->params[i].layer == 1)
            for (size_t k = 0; k < b->params[i].n; k++)
                assert_float_equal(b->params[i].grad[k], 0, 0);
    net_destroy(a);
    net_destroy(b);
}

static void one_hot(struct net *n, uint64_t seed)
{
    size_t k = net_outputs(n);
    for (int b = 0; b < n->batch; b++)
        for (size_t i = 0; i < k; i++)
            n->truth[(size_t)b * k + i] = i == (size_t)((seed + (uint64_t)b * 7) % k);
}

/* GoogLeNet's shape in miniature: a trunk, an aux head (weight 0.3) off it, a route back, more
 * trunk and the main head. The loss the harness differentiates is main + 0.3 * aux. */
static void test_gradcheck(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=4\nwidth=4\nchannels=2\n"
                             "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=tanh\n"
                             "[avgpool]\n"
                             "[connected]\noutput=4\nactivation=linear\n"
                             "[softmax]\nloss_weight=0.3\n"
                             "[route]\nlayers=-4\n"
                             "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\n"
                             "activation=linear\n"
                             "[avgpool]\n"
                             "[softmax]\n",
                             0, 1);
    one_hot(n, 3);
    assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 41}), 0);
    /* Training mode and inference mode agree on the main output (no dropout, no batch norm). */
    net_destroy(n);
}

/* A [softmax] followed by another loss layer (Darknet's resnet101.cfg: [softmax] then [cost]) is
 * the main head whose output feeds that loss: its backward adds the Jacobian of what the loss
 * sends back to its own cross-entropy gradient. The gradient check covers both losses. */
static void test_softmax_feeding_a_loss(void **state)
{
    (void)state;
    if (!layer_lookup("cost")) {
        printf("SKIP softmax feeding a loss: no [cost] layer registered\n");
        return;
    }
    static const char *const cfgs[] = {
        "[net]\nbatch=2\nheight=2\nwidth=2\nchannels=2\n"
        "[connected]\noutput=4\nactivation=linear\n[softmax]\n[cost]\n",
        "[net]\nbatch=2\nheight=2\nwidth=2\nchannels=2\n"
        "[connected]\noutput=4\nactivation=linear\n[softmax]\nloss_weight=0.5\n"
        "[cost]\nstraight_through=1\nscale=2\n",
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        char buf[64];
        n->layers[1].ops->describe(&n->layers[1], buf, sizeof buf);
        assert_null(strstr(buf, "auxiliary"));
        one_hot(n, 1);
        assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 51 + k}), 0);
        net_destroy(n);
    }
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails("[net]\nbatch=1\nheight=2\nwidth=2\nchannels=1\n"
                   "[connected]\noutput=3\n[softmax]\n[connected]\noutput=3\n[softmax]\n",
                   "test.cfg:8: [softmax]: auxiliary head without a route back: layer 1 is not "
                   "the last layer, so a [route] back to the trunk must follow it, not "
                   "[connected]");
    test_net_fails("[net]\nbatch=1\nheight=2\nwidth=2\nchannels=1\n"
                   "[connected]\noutput=3\n[softmax]\n[route]\nlayers=-1\n[softmax]\n",
                   "test.cfg:10: [route] layers=-1: -1 is layer 1, the loss layer [softmax] of "
                   "line 8, which no layer may read (an auxiliary head without a route back to "
                   "the trunk)");
    test_net_fails("[net]\nbatch=1\nheight=2\nwidth=2\nchannels=1\n"
                   "[connected]\noutput=3\n[softmax]\n[route]\nlayers=-2\n[shortcut]\nfrom=1\n"
                   "[softmax]\n",
                   "[shortcut] from=1: 1 is layer 1, the loss layer [softmax]");
    test_net_fails("[net]\nbatch=1\nheight=2\nwidth=2\nchannels=1\n"
                   "[connected]\noutput=4\n[softmax]\n[route]\nlayers=-2\n"
                   "[connected]\noutput=3\n[softmax]\n",
                   "test.cfg:8: [softmax]: this loss layer has 4 outputs, but the labels it "
                   "reads have 3, the size of the last layer (layer 4 [softmax], line 13)");
    test_net_fails("[net]\nbatch=1\nheight=2\nwidth=2\nchannels=1\n"
                   "[connected]\noutput=3\n[softmax]\nloss_weight=-1\n[route]\nlayers=-2\n"
                   "[softmax]\n",
                   "[softmax] loss_weight=-1: out of range");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_loss_by_hand),
        cmocka_unit_test(test_weight_zero),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_softmax_feeding_a_loss),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("auxhead", tests, NULL, NULL);
}
