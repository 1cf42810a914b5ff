/* test_trainmem.c - the memory a training net saves, checked to change no result: outputs that no
 * backward reads live through forward only (layer.h, build_backward_skips_*; net.h fwd_only) and
 * share memory, convolutions and shortcuts make dz in place over doutput, and training nets keep
 * the Winograd filters in the workspace. A small bottleneck block (1x1 > 1x1 linear, a projection
 * by [route] and a linear 1x1, [shortcut] relu), then a Winograd 3x3 and a [connected] so that
 * no convolution is the last layer (whose doutput is the caller's, left as it is). A frozen
 * prefix known at build time (NET_FREEZE, freeze=1 keys) moves the plan's backward cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/net.h"

#define CONV(f, k, act, extra)                                                                   \
    "[convolutional]\nbatch_normalize=1\nfilters=" #f "\nsize=" #k "\npad=1\nactivation=" act   \
    "\n" extra
#define BLOCK(act)                                                                               \
    "[net]\nbatch=2\nheight=6\nwidth=6\nchannels=3\n"                                           \
    CONV(4, 3, act, "algorithm=winograd_f2\n") /* 0: kept (the slope reads y) */                \
    CONV(4, 1, act, "")                        /* 1: kept */                                    \
    CONV(8, 1, "linear", "")                   /* 2: read by the shortcut only */               \
    "[route]\nlayers=-3\n"                     /* 3: a view of layer 0 */                       \
    CONV(8, 1, "linear", "")                   /* 4: read by the shortcut only */               \
    "[shortcut]\nfrom=-3\nactivation=" act "\n" /* 5: kept */                                   \
    CONV(8, 3, act, "algorithm=winograd_f2\n") /* 6: may reuse 2's and 4's memory */            \
    "[connected]\noutput=3\nactivation=linear\n" /* 7: the last layer */
static const char *const block_cfg = BLOCK("relu");
/* For finite differences: ReLU's kinks at batch 2 through batch norms break them. */
static const char *const smooth_cfg = BLOCK("tanh");

static void test_forward_only_outputs(void **state)
{
    (void)state;
    struct net *a = test_net(block_cfg, 0, NET_TRAIN);
    struct net *k = test_net(block_cfg, 0, NET_TRAIN | NET_KEEP_OUTPUTS);
    const unsigned char want[8] = {0, 0, 1, 0, 1, 0, 0, 0};
    assert_int_equal(a->n, 8);
    for (int i = 0; i < a->n; i++) {
        assert_int_equal(a->fwd_only[i], want[i]);
        assert_int_equal(k->fwd_only[i], 0);
    }
    /* 2 and 4 (8x6x6 each, live over layers 2-5 and 4-5) fit where 6 (8x6x6) lives later */
    size_t img = 8 * 6 * 6 * 2;
    assert_true(k->nout_floats >= a->nout_floats + img);
    const float *y6 = a->layers[6].output;
    assert_true(a->layers[2].output == y6 || a->layers[4].output == y6);
    net_destroy(a);
    net_destroy(k);
}

/* One training pass on fixed inputs, with a fixed gradient at the last layer's output. */
static void train_pass(struct net *n)
{
    for (size_t i = 0; i < net_inputs(n) * (size_t)n->batch; i++)
        n->input[i] = (float)((i * 37) % 23) / 11.f - 1.f;
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    struct layer *last = net_last(n);
    for (size_t i = 0; i < net_outputs(n) * (size_t)n->batch; i++)
        last->doutput[i] = (float)i - 2.5f;
    net_zero_grads(n);
    net_backward(n, &p);
}

/* Outputs planned by liveness give the same outputs and gradients, bit for bit, as every output
 * kept (and as nothing shared at all). */
static void test_same_gradients(void **state)
{
    (void)state;
    const int flags[3] = {NET_TRAIN, NET_TRAIN | NET_KEEP_OUTPUTS,
                          NET_TRAIN | NET_SEPARATE_OUTPUTS};
    struct net *n[3];
    for (int j = 0; j < 3; j++) {
        n[j] = test_net(block_cfg, 0, flags[j]);
        train_pass(n[j]);
    }
    size_t out = net_outputs(n[0]) * (size_t)n[0]->batch;
    for (int j = 1; j < 3; j++) {
        assert_memory_equal(net_output(n[0]), net_output(n[j]), sizeof(float) * out);
        assert_int_equal(n[0]->nparams, n[j]->nparams);
        for (int i = 0; i < n[0]->nparams; i++) {
            const struct param *p = &n[0]->params[i], *q = &n[j]->params[i];
            if (p->grad)
                assert_memory_equal(p->grad, q->grad, sizeof(float) * p->n);
        }
    }
    int nonzero = 0;
    for (size_t i = 0; i < n[0]->params[0].n; i++)
        nonzero += n[0]->params[0].grad[i] != 0.f;
    assert_true(nonzero > 0);
    for (int j = 0; j < 3; j++)
        net_destroy(n[j]);
}

/* The same trainable nets frozen below `cut`, late after building (the uncut plan) and early at
 * building: the parameter gradients above the cut are the same, bit for bit, and not all zero;
 * below it no backward ran (late's stay zero) and early's plan gave none. */
static void assert_same_gradients_above(const struct net *late, const struct net *early, int cut)
{
    int nonzero = 0;
    assert_int_equal(late->nparams, early->nparams);
    for (int i = 0; i < late->nparams; i++) {
        const struct param *p = &late->params[i], *q = &early->params[i];
        if (!p->grad)
            continue;
        if (p->layer < cut) {
            assert_true(test_max_abs(p->grad, p->n) == 0);
            assert_null(q->grad);
            continue;
        }
        assert_memory_equal(p->grad, q->grad, sizeof(float) * p->n);
        nonzero += test_max_abs(p->grad, p->n) > 0;
    }
    assert_true(nonzero > 0);
}

/* The same cfg built twice, layers below k frozen: *late frozen after building (net_freeze
 * alone: the uncut plan), *early also at build time (NET_FREEZE: the cut plan). */
static void cut_pair(const char *cfg, int k, struct net **late, struct net **early)
{
    cn_error e;
    *late = test_net(cfg, 0, NET_TRAIN);
    *early = test_net(cfg, 0, NET_TRAIN | NET_FREEZE(k));
    assert_int_equal(net_freeze(*late, k, &e), 0);
    assert_int_equal(net_freeze(*early, k, &e), 0);
}

/* Training-slab floats the cut plan saves, output gradients left out. */
static size_t train_saving(const struct net *late, const struct net *early)
{
    return (late->ntrain_floats - late->ndout_floats) -
           (early->ntrain_floats - early->ndout_floats);
}

/* One training pass of each, whose outputs must be the same, bit for bit. */
static void assert_same_pass(struct net *late, struct net *early)
{
    train_pass(late);
    train_pass(early);
    assert_memory_equal(net_output(late), net_output(early),
                        sizeof(float) * net_outputs(late) * (size_t)late->batch);
}

/* Layers 0-2 frozen, so backward stops at layer 4 (the [route] has no parameters). Known at
 * build time, the cut frees layer 1's output (read by layer 2 alone) for forward only, and the
 * gradients of 0, 1 and 3 (nothing above the cut adds into them) get no memory; layer 2's stays,
 * as the [shortcut] adds into it. The parameter gradients of 0-2 get none either, and their
 * training buffers share one region. Frozen after building (net_freeze alone), the plan is the
 * uncut one: the trainable layers' gradients are the same, bit for bit. */
static void test_frozen_cut(void **state)
{
    (void)state;
    struct net *late, *early;
    cut_pair(block_cfg, 3, &late, &early);
    assert_int_equal(late->lowest_trainable, 4);
    assert_int_equal(early->lowest_trainable, 4);
    assert_int_equal(late->plan_cut, 0);
    assert_int_equal(early->plan_cut, 4);
    assert_int_equal(early->fwd_only[1], 1);
    assert_int_equal(late->fwd_only[1], 0);
    const int no_grad[8] = {1, 1, 0, 1, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        assert_non_null(late->layers[i].doutput);
        assert_int_equal(early->layers[i].doutput == NULL, no_grad[i]);
    }
    assert_null(early->layers[4].dinput);
    assert_true(early->nout_floats < late->nout_floats);
    assert_true(early->ndout_floats <= late->ndout_floats); /* its peak: layers 5-7 */
    /* The training buffers of 0-2 are batch norm's x_hat, mean and var: 288 + 16 + 16 floats
     * for 4 filters, 576 + 16 + 16 for 8. Below the cut x_hat, read by backward alone, gets
     * none, and mean and var share one region as large as one layer's (32). */
    assert_int_equal(train_saving(late, early), 2 * (288 + 16 + 16) + (576 + 16 + 16) - 32);
    assert_same_pass(late, early);
    assert_same_gradients_above(late, early, 4);
    net_destroy(late);
    net_destroy(early);
    /* the cfg's freeze=1 keys are known at build time too */
    struct net *keys = test_net("[net]\nbatch=2\nheight=4\nwidth=4\nchannels=1\n"
                                "[convolutional]\nfilters=2\nsize=3\npad=1\nfreeze=1\n"
                                "[maxpool]\nsize=2\nstride=2\n"
                                "[connected]\noutput=3\nactivation=linear\n",
                                0, NET_TRAIN);
    assert_int_equal(keys->plan_cut, 2);
    assert_int_equal(keys->fwd_only[0], 1);
    assert_null(keys->layers[0].doutput);
    assert_null(keys->layers[1].doutput);
    net_destroy(keys);
}

/* Below the cut the batch norms of [batchnorm] and [connected] keep no x_hat (BUF_BACKWARD: only
 * their backward reads it, and it never runs there); the frozen layers still normalise, with
 * their rolling statistics, and the outputs and trainable gradients stay the same, bit for bit,
 * as those of the uncut plan, whose frozen layers do keep x_hat. */
static void test_frozen_cut_no_x_hat(void **state)
{
    (void)state;
    const char *cfg = "[net]\nbatch=2\nheight=4\nwidth=4\nchannels=2\n"
                      "[batchnorm]\n" /* 0: x_hat 2x2x4x4 = 64, mean and var 2 (16 aligned) */
                      "[connected]\noutput=8\nbatch_normalize=1\nactivation=tanh\n" /* 1: 16 */
                      "[connected]\noutput=3\nactivation=linear\n";
    struct net *late, *early;
    cut_pair(cfg, 2, &late, &early);
    assert_int_equal(late->plan_cut, 0);
    assert_int_equal(early->plan_cut, 2);
    /* uncut: 64 + 16 + 16 for layer 0 and 16 * 3 for layer 1; cut: no x_hat, and one region of
     * mean and var (32) for both */
    assert_int_equal(train_saving(late, early), (64 + 16 + 16) + 3 * 16 - 32);
    assert_same_pass(late, early);
    assert_same_pass(late, early); /* reads the rolling statistics the first kept */
    assert_same_gradients_above(late, early, 2);
    net_destroy(late);
    net_destroy(early);
}

/* Finite differences through the whole block: dz in place for every convolution and the
 * shortcut (none is last), Winograd filters in the workspace, outputs shared by liveness. */
static void test_gradcheck_block(void **state)
{
    (void)state;
    const char *cfgs[] = {smooth_cfg};
    struct gradcheck_opts train = {.seed = 5}, eval = {.seed = 6, .eval = 1};
    gradcheck_cfgs(cfgs, 1, &train, &eval);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_only_outputs),
        cmocka_unit_test(test_same_gradients),
        cmocka_unit_test(test_gradcheck_block),
        cmocka_unit_test(test_frozen_cut),
        cmocka_unit_test(test_frozen_cut_no_x_hat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
