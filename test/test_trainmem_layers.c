/* test_trainmem_layers.c - what the memory-light layers of a training net leave unkept, checked to
 * change no result: [maxpool] (backward reads its argmax offsets), [avgpool] (the shapes),
 * [dropout] (its mask) and [connected] (its input, and its output only when the activation's
 * slope is taken from y) declare build_backward_skips_* (layer.h), so outputs that only they
 * read, and their own where nothing else needs it, live through forward only (net.h fwd_only).
 * [lrn] / [normalization] (backward recomputes y from N) leave their output unread, checked the
 * same way, with a [softmax] head and its loss (which keeps its input: softmax.c says why).
 * Also: a training net has no input_grad unless built with NET_INPUT_GRAD (net.h).
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
#include "net/optimizer.h"

/* Every layer of the cfg, and whether its output lives through forward only (want[]). */
#define LAYERS(act)                                                                                \
    "[net]\nbatch=2\nheight=6\nwidth=6\nchannels=2\nmomentum=0.9\ndecay=0.0005\n"                  \
    "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=" act "\n" /* 0: its slope reads y */   \
    "[maxpool]\nsize=2\nstride=2\n" /* 1: read by [dropout] alone */                               \
    "[dropout]\nprobability=0.25\n" /* 2: read by [avgpool] alone */                               \
    "[avgpool]\nsize=1\n"           /* 3: read by [connected] for dW */                            \
    "[connected]\noutput=6\nbatch_normalize=1\nactivation=linear\n" /* 4: by [maxpool] alone */    \
    "[maxpool]\nsize=1\nstride=1\n"                                 /* 5: read by [connected] */   \
    "[connected]\noutput=5\nactivation=swish\n"   /* 6: slope from z; read by [dropout] alone */   \
    "[dropout]\nprobability=0.2\n"                /* 7: read by global [avgpool] alone */          \
    "[avgpool]\n"                                 /* 8: read by [connected] */                     \
    "[connected]\noutput=4\nactivation=" act "\n" /* 9: its slope reads y */                       \
    "[connected]\noutput=3\nactivation=linear\n"  /* 10: the last layer */
static const char *const layers_cfg = LAYERS("relu");
/* For finite differences: no ReLU kinks. */
static const char *const smooth_cfg = LAYERS("tanh");
static const unsigned char want_fwd_only[11] = {0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 0};

static void test_forward_only_outputs(void **state)
{
    (void)state;
    struct net *a = test_net(layers_cfg, 0, NET_TRAIN);
    struct net *k = test_net(layers_cfg, 0, NET_TRAIN | NET_KEEP_OUTPUTS);
    assert_int_equal(a->n, 11);
    for (int i = 0; i < a->n; i++) {
        assert_int_equal(a->fwd_only[i], want_fwd_only[i]);
        assert_int_equal(k->fwd_only[i], 0);
    }
    /* 4, 6 and 7 (6, 5 and 5 floats per image: 16 each at batch 2, aligned) never live with 1
     * or 2 (36 each), so they fit in their memory */
    assert_true(k->nout_floats >= a->nout_floats + 3 * 16);
    net_destroy(a);
    net_destroy(k);
}

/* Three optimiser steps on fixed inputs and labels; dropout draws from the net's own stream. */
static void train_steps(struct net *n)
{
    struct optimizer *o;
    cn_error e;
    if (optimizer_create(&o, n, &e))
        fail_msg("%s", e.msg);
    for (int step = 0; step < 3; step++) {
        size_t nin = net_inputs(n) * (size_t)n->batch, nout = net_outputs(n) * (size_t)n->batch;
        for (size_t i = 0; i < nin; i++)
            n->input[i] = (float)((i * 37 + (size_t)step * 11) % 23) / 11.f - 1.f;
        struct pass p;
        net_pass_init(n, &p, 1, 0);
        net_forward(n, &p);
        for (size_t i = 0; i < nout; i++)
            net_last(n)->doutput[i] = net_output(n)[i] - (float)(i % 3 == (size_t)step);
        net_backward(n, &p);
        optimizer_step(o, n, 0.05f);
    }
    optimizer_destroy(o);
}

/* Outputs planned by liveness give the same weights after training, bit for bit, as every
 * output kept and as nothing shared at all. */
static void test_same_weights(void **state)
{
    (void)state;
    const int flags[3] = {NET_TRAIN, NET_TRAIN | NET_KEEP_OUTPUTS,
                          NET_TRAIN | NET_SEPARATE_OUTPUTS};
    struct net *n[3];
    for (int j = 0; j < 3; j++) {
        n[j] = test_net(layers_cfg, 0, flags[j]);
        train_steps(n[j]);
    }
    size_t out = net_outputs(n[0]) * (size_t)n[0]->batch;
    for (int j = 1; j < 3; j++) {
        assert_memory_equal(net_output(n[0]), net_output(n[j]), sizeof(float) * out);
        assert_int_equal(n[0]->nparam_floats, n[j]->nparam_floats);
        assert_memory_equal(n[0]->param_slab, n[j]->param_slab,
                            sizeof(float) * n[0]->nparam_floats);
    }
    struct net *fresh = test_net(layers_cfg, 0, NET_TRAIN); /* training moved the weights */
    assert_memory_not_equal(fresh->param_slab, n[0]->param_slab,
                            sizeof(float) * n[0]->nparam_floats);
    net_destroy(fresh);
    for (int j = 0; j < 3; j++)
        net_destroy(n[j]);
}

/* The normalisations and the softmax head, as want_norm_fwd_only[] says. */
#define NORM_LAYERS(act)                                                                           \
    "[net]\nbatch=2\nheight=6\nwidth=6\nchannels=2\nmomentum=0.9\n"                                \
    "[convolutional]\nfilters=5\nsize=3\npad=1\nactivation=" act "\n" /* 0: its slope reads y */   \
    "[lrn]\nsize=3\nalpha=0.5\n"                 /* 1: read by [maxpool] alone */                  \
    "[maxpool]\nsize=1\nstride=1\n"              /* 2: read by [normalization] */                  \
    "[normalization]\nsize=3\nalpha=0.3\n"       /* 3: read by [maxpool] alone */                  \
    "[maxpool]\nsize=2\nstride=2\n"              /* 4: read by [connected] for dW */               \
    "[connected]\noutput=4\nactivation=linear\n" /* 5: read by [softmax] */                        \
    "[softmax]\n"                                /* 6: the last layer */
static const char *const norm_cfg = NORM_LAYERS("relu");
static const char *const norm_smooth_cfg = NORM_LAYERS("tanh");
static const unsigned char want_norm_fwd_only[7] = {0, 1, 0, 1, 0, 0, 0};

static void test_norm_softmax_forward_only(void **state)
{
    (void)state;
    struct net *a = test_net(norm_cfg, 0, NET_TRAIN);
    struct net *k = test_net(norm_cfg, 0, NET_TRAIN | NET_KEEP_OUTPUTS);
    assert_int_equal(a->n, 7);
    for (int i = 0; i < a->n; i++)
        assert_int_equal(a->fwd_only[i], want_norm_fwd_only[i]);
    /* 1 and 3 (368 floats each at batch 2, aligned) never live at once: they share memory */
    assert_true(k->nout_floats >= a->nout_floats + 368);
    net_destroy(a);
    net_destroy(k);
}

/* Three steps with the softmax's loss on one-hot labels: the plan by liveness trains as nothing
 * shared does, bit for bit. */
static void test_norm_softmax_same_weights(void **state)
{
    (void)state;
    struct net *n[2] = {test_net(norm_cfg, 0, NET_TRAIN),
                        test_net(norm_cfg, 0, NET_TRAIN | NET_SEPARATE_OUTPUTS)};
    for (int j = 0; j < 2; j++) {
        struct optimizer *o;
        cn_error e;
        if (optimizer_create(&o, n[j], &e))
            fail_msg("%s", e.msg);
        for (int step = 0; step < 3; step++) {
            size_t nin = net_inputs(n[j]) * 2, nout = net_outputs(n[j]) * 2;
            for (size_t i = 0; i < nin; i++)
                n[j]->input[i] = (float)((i * 29 + (size_t)step * 7) % 19) / 9.f - 1.f;
            for (size_t i = 0; i < nout; i++)
                n[j]->truth[i] = (float)(i % 4 == (size_t)step);
            struct pass p;
            net_pass_init(n[j], &p, 1, 1);
            net_forward(n[j], &p);
            net_backward(n[j], &p);
            optimizer_step(o, n[j], 0.1f);
        }
        optimizer_destroy(o);
    }
    assert_true(n[0]->nout_floats < n[1]->nout_floats);
    assert_memory_equal(n[0]->param_slab, n[1]->param_slab, sizeof(float) * n[0]->nparam_floats);
    struct net *fresh = test_net(norm_cfg, 0, NET_TRAIN);
    assert_memory_not_equal(fresh->param_slab, n[0]->param_slab,
                            sizeof(float) * n[0]->nparam_floats);
    net_destroy(fresh);
    net_destroy(n[0]);
    net_destroy(n[1]);
}

/* Finite differences through the softmax's loss (labels filled: a zero truth has no loss). */
static void test_gradcheck_norm_softmax(void **state)
{
    (void)state;
    struct net *n = test_net(norm_smooth_cfg, 0, NET_TRAIN);
    for (size_t i = 0; i < net_outputs(n) * (size_t)n->batch; i++)
        n->truth[i] = (float)(i % 4 == 1);
    assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 12}), 0);
    net_destroy(n);
}

/* Finite differences through every layer, outputs shared by liveness. */
static void test_gradcheck_layers(void **state)
{
    (void)state;
    const char *cfgs[] = {smooth_cfg};
    struct gradcheck_opts train = {.seed = 9}, eval = {.seed = 10, .eval = 1};
    gradcheck_cfgs(cfgs, 1, &train, &eval);
}

/* dL/dinput costs batch x inputs floats that ordinary training never reads: only
 * NET_INPUT_GRAD nets have it, wired to layer 0, and their backward fills it. */
static void test_input_grad_on_request(void **state)
{
    (void)state;
    struct net *a = test_net(smooth_cfg, 0, NET_TRAIN);
    struct net *g = test_net(smooth_cfg, 0, NET_TRAIN | NET_INPUT_GRAD);
    size_t nin = net_inputs(a) * (size_t)a->batch;
    assert_null(a->input_grad);
    assert_null(a->layers[0].dinput);
    assert_non_null(g->input_grad);
    assert_ptr_equal(g->layers[0].dinput, g->input_grad);
    assert_true(a->ntrain_floats + nin <= g->ntrain_floats);
    struct net *both[2] = {a, g};
    for (int j = 0; j < 2; j++) {
        for (size_t i = 0; i < nin; i++)
            both[j]->input[i] = (float)(i % 7) / 3.f - 1.f;
        struct pass p;
        net_pass_init(both[j], &p, 0, 0);
        net_forward(both[j], &p);
        for (size_t i = 0; i < net_outputs(both[j]) * (size_t)both[j]->batch; i++)
            net_last(both[j])->doutput[i] = 1.f;
        net_zero_grads(both[j]);
        net_backward(both[j], &p);
    }
    assert_true(test_max_abs(g->input_grad, nin) > 0);
    for (int i = 0; i < a->nparams; i++) /* the parameter gradients do not depend on it */
        if (a->params[i].grad)
            assert_memory_equal(a->params[i].grad, g->params[i].grad,
                                sizeof(float) * a->params[i].n);
    assert_int_equal(gradcheck_net(g, &(struct gradcheck_opts){.seed = 3, .eval = 1}), 0);
    net_destroy(a);
    net_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_only_outputs),
        cmocka_unit_test(test_same_weights),
        cmocka_unit_test(test_gradcheck_layers),
        cmocka_unit_test(test_input_grad_on_request),
        cmocka_unit_test(test_norm_softmax_forward_only),
        cmocka_unit_test(test_norm_softmax_same_weights),
        cmocka_unit_test(test_gradcheck_norm_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
