/* test_params_version.c - the parameters' version (layer.h params_version, net.h
 * net_params_changed): nets built for inference keep packed GEMM weights and Winograd filters
 * between passes and remake them only when the version moves, so every path that writes
 * parameters must move it. Each public path writes new parameters between two inference passes
 * (weights_load, net_init_params, transfer_load, optimizer_step, and through the C API
 * cfgnet_load_weights, cfgnet_set_batch, cfgnet_train_labels) and the second pass must equal,
 * bit for bit, the pass of a net freshly built with those parameters (same cfg and batch, so the
 * same algorithms and summation orders), and differ from the first pass. The cfg has a packed
 * GEMM layer with batch norm, a Winograd layer and a packed 1x1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfgnet.h"
#include "gradcheck.h"
#include "net/net.h"
#include "net/optimizer.h"
#include "net/transfer.h"
#include "net/weights.h"

#define CFG                                                                                        \
    "[net]\nbatch=2\nheight=12\nwidth=12\nchannels=8\n"                                            \
    "[convolutional]\nfilters=32\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"            \
    "algorithm=gemm\n"                                                                             \
    "[convolutional]\nfilters=32\nsize=3\npad=1\nactivation=relu\nalgorithm=winograd\n"            \
    "[convolutional]\nfilters=16\nsize=1\nactivation=linear\n"                                     \
    "[avgpool]\n[connected]\noutput=5\nactivation=linear\n[softmax]\n"
#define BATCH 2
#define OUTS 5

static char path[64];

static void fill_input(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((i * 37u) % 23u) / 11.f - 1.f;
}

/* One inference pass of n on the fixed input; its output into out (BATCH x OUTS). */
static void infer(struct net *n, float *out)
{
    fill_input(n->input, net_inputs(n) * (size_t)n->batch);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    memcpy(out, net_output(n), sizeof(float) * OUTS * BATCH);
}

/* The pass of a net freshly built (flags) with the parameters in the file at path. */
static void fresh(int flags, float *out)
{
    struct net *n = test_net(CFG, 0, flags);
    cn_error e;
    if (weights_load(n, path, &e))
        fail_msg("%s", e.msg);
    infer(n, out);
    net_destroy(n);
}

/* A net of the same cfg with other parameters, saved at path. */
static void save_other(uint64_t seed)
{
    struct net *b = test_net(CFG, 0, 0);
    net_init_params(b, seed);
    cn_error e;
    if (weights_save(b, path, &e))
        fail_msg("%s", e.msg);
    net_destroy(b);
}

/* after equals want bit for bit, and differs from before somewhere. */
static void check(const char *what, const float *before, const float *after, const float *want)
{
    int moved = 0;
    for (int i = 0; i < OUTS * BATCH; i++) {
        if (after[i] != want[i])
            fail_msg("%s: output %d = %.9g, a fresh net's %.9g", what, i, (double)after[i],
                     (double)want[i]);
        moved |= after[i] != before[i];
    }
    if (!moved)
        fail_msg("%s: the new parameters did not change the output", what);
}

static void test_weights_load(void **state)
{
    (void)state;
    float before[OUTS * BATCH], after[OUTS * BATCH], want[OUTS * BATCH];
    struct net *a = test_net(CFG, 0, 0);
    infer(a, before);
    save_other(99);
    cn_error e;
    assert_int_equal(weights_load(a, path, &e), 0);
    infer(a, after);
    fresh(0, want);
    check("weights_load", before, after, want);
    net_destroy(a);
}

static void test_init_and_transfer(void **state)
{
    (void)state;
    float before[OUTS * BATCH], after[OUTS * BATCH], want[OUTS * BATCH];
    struct net *a = test_net(CFG, 0, 0);
    cn_error e;
    infer(a, before);
    net_init_params(a, 1234);
    infer(a, after);
    assert_int_equal(weights_save(a, path, &e), 0);
    fresh(0, want);
    check("net_init_params", before, after, want);
    memcpy(before, after, sizeof before);
    save_other(77);
    assert_int_equal(transfer_load(a, path, NULL, NULL, NULL, NULL, &e), 0);
    infer(a, after);
    fresh(0, want);
    check("transfer_load", before, after, want);
    net_destroy(a);
}

/* A training net (nothing cached, but the step must still move the version) after a step on
 * gradients set by hand, against a fresh training net in inference mode. */
static void test_optimizer_step(void **state)
{
    (void)state;
    float before[OUTS * BATCH], after[OUTS * BATCH], want[OUTS * BATCH];
    struct net *a = test_net(CFG, 0, NET_TRAIN);
    struct optimizer *o;
    cn_error e;
    assert_int_equal(optimizer_create(&o, a, &e), 0);
    infer(a, before);
    unsigned long v = a->layers[0].params_version;
    for (int k = 0; k < a->nparams; k++)
        for (size_t j = 0; a->params[k].grad && j < a->params[k].n; j++)
            a->params[k].grad[j] = (float)((j * 7u) % 5u) - 2.f;
    optimizer_step(o, a, 0.05f);
    assert_true(a->layers[0].params_version != v);
    infer(a, after);
    assert_int_equal(weights_save(a, path, &e), 0);
    fresh(NET_TRAIN, want);
    check("optimizer_step", before, after, want);
    optimizer_destroy(o);
    net_destroy(a);
}

/* cfgnet_forward of the fixed input on handle h (n images) into out. */
static void api_infer(cfgnet_net *h, int n, float *out)
{
    float x[BATCH * 8 * 12 * 12];
    fill_input(x, sizeof x / sizeof *x);
    if (cfgnet_forward(h, x, n, 8, 12, 12, out, (size_t)OUTS * (size_t)n) != CFGNET_OK)
        fail_msg("%s", cfgnet_error(h));
}

static cfgnet_net *api_fresh(int batch, unsigned flags)
{
    cfgnet_net *h = cfgnet_create();
    if (cfgnet_load_string(h, CFG, "test.cfg", path, batch, flags) != CFGNET_OK)
        fail_msg("%s", cfgnet_error(h));
    return h;
}

static void test_api(void **state)
{
    (void)state;
    float before[OUTS * BATCH], after[OUTS * BATCH], want[OUTS * BATCH];
    cfgnet_net *h = cfgnet_create();
    assert_int_equal(cfgnet_load_string(h, CFG, "test.cfg", NULL, 0, 0), CFGNET_OK);
    api_infer(h, BATCH, before);
    save_other(55);
    assert_int_equal(cfgnet_load_weights(h, path), CFGNET_OK);
    api_infer(h, BATCH, after);
    cfgnet_net *f = api_fresh(0, 0);
    api_infer(f, BATCH, want);
    check("cfgnet_load_weights", before, after, want);
    cfgnet_free(f);
    /* a training handle: one step, then its weights at another batch */
    cfgnet_net *t = api_fresh(0, CFGNET_TRAIN);
    api_infer(t, BATCH, before);
    float x[BATCH * 8 * 12 * 12];
    fill_input(x, sizeof x / sizeof *x);
    const int labels[BATCH] = {1, 3};
    assert_int_equal(cfgnet_train_labels(t, x, BATCH, 8, 12, 12, labels, 0.5f, NULL), CFGNET_OK);
    api_infer(t, BATCH, after);
    assert_int_equal(cfgnet_save_weights(t, path), CFGNET_OK);
    f = api_fresh(0, CFGNET_TRAIN);
    api_infer(f, BATCH, want);
    check("cfgnet_train_labels", before, after, want);
    cfgnet_free(f);
    cfgnet_free(t);
    assert_int_equal(cfgnet_set_batch(h, 1), CFGNET_OK); /* still the weights of 55 */
    save_other(55);
    api_infer(h, 1, after);
    f = api_fresh(1, 0);
    api_infer(f, 1, want);
    for (int i = 0; i < OUTS; i++)
        assert_true(after[i] == want[i]);
    cfgnet_free(f);
    cfgnet_free(h);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/cfgnet_pver_%ld.weights", (long)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove(path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_load),
        cmocka_unit_test(test_init_and_transfer),
        cmocka_unit_test(test_optimizer_step),
        cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests_name("params_version", tests, setup, teardown);
}
