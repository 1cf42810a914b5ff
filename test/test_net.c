/* test_net.c - whole-network behaviour: LeNet-5's parameter count, slab wiring, a tiny network
 * whose training loss falls on a fixed dataset, and bit-for-bit reproducibility from a seed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"
#include "net/optimizer.h"

static void test_lenet5_parameter_count(void **state)
{
    (void)state;
    struct net *n;
    cn_error e;
    if (net_create(&n, "cfg/lenet5.cfg", 1, 0, &e))
        fail_msg("%s", e.msg);
    /* The course notes: 156 + 0 + 2416 + 0 + 48120 + 10164 + 850 = 61,706. */
    assert_int_equal(net_param_count(n), 61706);
    assert_int_equal(n->n, 8);
    struct shape s = n->layers[3].out;
    assert_int_equal(s.c * s.h * s.w, 400);
    assert_int_equal(n->layers[0].out.h, 28);
    assert_int_equal(n->layers[2].out.h, 10);
    assert_int_equal(net_outputs(n), 10);
    net_destroy(n);
}

static void test_wiring(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=4\nsubdivisions=2\nheight=5\nwidth=5\nchannels=2\n"
                             "[connected]\noutput=3\nactivation=relu\n[connected]\noutput=2\n"
                             "activation=linear\n[softmax]\n",
                             0, 1);
    assert_int_equal(n->batch, 2);
    assert_ptr_equal(n->layers[0].input, n->input);
    assert_null(n->layers[0].dinput);
    assert_ptr_equal(n->layers[1].input, n->layers[0].output);
    assert_ptr_equal(n->layers[1].dinput, n->layers[0].doutput);
    assert_int_equal(net_param_count(n), 3 + 3 * 50 + 2 + 2 * 3);
    /* Every param's grad exists when training, and slabs are 64-byte aligned. */
    for (int i = 0; i < n->nparams; i++) {
        assert_non_null(n->params[i].grad);
        assert_int_equal((uintptr_t)n->params[i].data % 64, 0);
    }
    net_destroy(n);
    n = test_net("[net]\nbatch=4\nheight=5\nwidth=5\nchannels=2\n[connected]\noutput=3\n", 0, 0);
    assert_null(n->params[0].grad);
    assert_null(n->layers[0].doutput);
    assert_int_equal(n->batch, 4);
    net_destroy(n);
}

static const char tiny[] = "[net]\nbatch=16\nheight=4\nwidth=4\nchannels=1\nlearning_rate=0.1\n"
                           "momentum=0.9\ndecay=0.0005\nseed=7\n"
                           "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                           "[maxpool]\nsize=2\nstride=2\n"
                           "[connected]\noutput=3\nactivation=linear\n[softmax]\n";

/* A fixed, learnable dataset: class = which third of the image carries a bright bar. */
static void make_batch(struct net *n, int step)
{
    for (int b = 0; b < n->batch; b++) {
        int cls = (b + step) % 3;
        float *x = n->input + b * 16;
        for (int i = 0; i < 16; i++)
            x[i] = 0.1f * (float)((i * 7 + b) % 5) / 5.f;
        for (int r = 0; r < 4; r++)
            x[r * 4 + cls + (cls == 2)] += 1.f;
        for (int k = 0; k < 3; k++)
            n->truth[b * 3 + k] = k == cls;
    }
}

static double train(struct net *n, int steps)
{
    struct optimizer *o;
    cn_error e;
    if (optimizer_create(&o, n, &e))
        fail_msg("%s", e.msg);
    double loss = 0;
    for (int s = 0; s < steps; s++) {
        struct pass p;
        make_batch(n, s);
        net_pass_init(n, &p, 1, 1);
        net_forward(n, &p);
        net_backward(n, &p);
        optimizer_step(o, n, n->cfg.learning_rate);
        loss = p.loss / n->batch;
    }
    optimizer_destroy(o);
    return loss;
}

static void test_training_loss_falls(void **state)
{
    (void)state;
    struct net *n = test_net(tiny, 0, 1);
    double first = train(n, 1);
    net_destroy(n);
    n = test_net(tiny, 0, 1);
    double last = train(n, 60);
    net_destroy(n);
    if (!(last < 0.1 * first))
        fail_msg("loss went from %g to %g in 60 steps", first, last);
}

static void test_same_seed_same_weights(void **state)
{
    (void)state;
    struct net *a = test_net(tiny, 0, 1), *b = test_net(tiny, 0, 1);
    assert_memory_equal(a->param_slab, b->param_slab, sizeof(float) * a->nparam_floats);
    train(a, 10);
    train(b, 10);
    assert_memory_equal(a->param_slab, b->param_slab, sizeof(float) * a->nparam_floats);
    net_init_params(b, 8);
    assert_memory_not_equal(a->param_slab, b->param_slab, sizeof(float) * a->nparam_floats);
    net_destroy(a);
    net_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet5_parameter_count),
        cmocka_unit_test(test_wiring),
        cmocka_unit_test(test_training_loss_falls),
        cmocka_unit_test(test_same_seed_same_weights),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
