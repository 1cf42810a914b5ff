/* test_conv_winograd.c - [convolutional] with algorithm=winograd / winograd_f2 against the same
 * layer with algorithm=gemm: outputs, input gradients and weight gradients after one training
 * pass (bias or batch norm, several activations, paddings 0-2, batches 1-3, awkward sizes), a
 * gradient check through the Winograd path, an inference net whose weights change between two
 * passes (the cached filter transform must be redone), the choice algorithm=auto makes and the
 * names it reports, and the cfg errors.
 * Tolerance: 2e-5 * C * 9 * max|x| * max|w| (Winograd F(4x4)'s float error is about 1e-6 of the
 * sum of |terms|; see test_winograd.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "gradcheck.h"
#include "net/net.h"

struct wcase {
    int batch, c, h, w, f, pad, bn;
    const char *act;
};

static void cfg_text(char *buf, size_t n, const struct wcase *k, const char *algo)
{
    snprintf(buf, n,
             "[net]\nbatch=%d\nheight=%d\nwidth=%d\nchannels=%d\n[convolutional]\nfilters=%d\n"
             "size=3\nstride=1\npadding=%d\nbatch_normalize=%d\nactivation=%s\nalgorithm=%s\n",
             k->batch, k->h, k->w, k->c, k->f, k->pad, k->bn, k->act, algo);
}

static void assert_close(const char *what, const float *a, const float *b, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= tol))
            fail_msg("%s[%zu]: %.7g vs %.7g (tol %.3g)", what, i, a[i], b[i], tol);
}

/* One pass of training net n (train: in training mode, else inference mode, as gradients of a
 * trained net are taken) on input x with dL/doutput dy; dx (preloaded) gets dL/dinput. */
static void train_pass(struct net *n, const float *x, const float *dy, float *dx, int train)
{
    struct layer *l = net_last(n);
    size_t nin = shape_size(l->in) * (size_t)l->batch, nout = shape_size(l->out) * l->batch;
    memcpy(n->input, x, sizeof(float) * nin);
    struct pass p;
    net_pass_init(n, &p, train, 0);
    net_forward(n, &p);
    l->dinput = dx;
    net_zero_grads(n);
    memcpy(l->doutput, dy, sizeof(float) * nout);
    net_backward(n, &p);
    l->dinput = NULL;
}

static void compare_case(const struct wcase *k, const char *algo, uint64_t seed, int train)
{
    char ca[512], cb[512];
    cfg_text(ca, sizeof ca, k, "gemm");
    cfg_text(cb, sizeof cb, k, algo);
    struct net *a = test_net(ca, 0, 1), *b = test_net(cb, 0, 1);
    struct layer *la = net_last(a), *lb = net_last(b);
    char name[64];
    lb->ops->algorithm(lb, name, sizeof name);
    assert_non_null(strstr(name, "winograd"));
    la->ops->algorithm(la, name, sizeof name);
    assert_null(strstr(name, "winograd"));
    cn_rng r;
    cn_rng_seed(&r, seed);
    assert_int_equal(a->nparams, b->nparams);
    for (int i = 0; i < a->nparams; i++) {
        int var = !strcmp(a->params[i].name, "rolling_variance");
        test_fill_normal(a->params[i].data, a->params[i].n, &r, var ? 0.1 : 0.5, var ? 1.0 : 0.0);
        if (var)
            for (size_t j = 0; j < a->params[i].n; j++)
                a->params[i].data[j] = fabsf(a->params[i].data[j]);
        memcpy(b->params[i].data, a->params[i].data, sizeof(float) * a->params[i].n);
    }
    size_t nin = shape_size(la->in) * (size_t)k->batch, nout = shape_size(la->out) * k->batch;
    float *x = malloc(sizeof(float) * nin), *dy = malloc(sizeof(float) * nout);
    float *dxa = malloc(sizeof(float) * nin), *dxb = malloc(sizeof(float) * nin);
    test_fill_normal(x, nin, &r, 1, 0);
    test_fill_normal(dy, nout, &r, 1, 0);
    test_fill_normal(dxa, nin, &r, 1, 0);
    memcpy(dxb, dxa, sizeof(float) * nin);
    train_pass(a, x, dy, dxa, train);
    train_pass(b, x, dy, dxb, train);
    struct param *wa = &a->params[a->nparams - 1], *wb = &b->params[b->nparams - 1];
    assert_string_equal(wa->name, "weights");
    double tol = 2e-5 * k->c * 9 * test_max_abs(x, nin) * test_max_abs(wa->data, wa->n) + 1e-6;
    double tolx =
        2e-5 * k->f * 9 * test_max_abs(dy, nout) * test_max_abs(wa->data, wa->n) * 4 + 1e-5;
    if (k->bn)
        tol *= 10; /* normalised by a batch std that may be small */
    assert_close("output", net_output(b), net_output(a), nout, tol * 4);
    assert_close("dinput", dxb, dxa, nin, k->bn ? tolx * 50 : tolx);
    double tolw = 1e-4 * (1 + test_max_abs(wa->grad, wa->n));
    assert_close("dweights", wb->grad, wa->grad, wa->n, tolw);
    free(x), free(dy), free(dxa), free(dxb);
    net_destroy(a);
    net_destroy(b);
}

static void test_same_both_ways(void **state)
{
    (void)state;
    static const struct wcase cases[] = {
        {3, 3, 7, 5, 4, 1, 0, "linear"},    {1, 1, 1, 1, 1, 1, 0, "linear"},
        {2, 17, 13, 11, 5, 2, 0, "leaky"},  {1, 5, 6, 9, 3, 0, 0, "relu"},
        {2, 32, 9, 9, 32, 1, 1, "leaky"},   {3, 8, 4, 4, 16, 1, 1, "logistic"},
        {1, 64, 14, 14, 64, 1, 0, "relu"},  {1, 32, 53, 53, 32, 0, 1, "relu"},
        {1, 80, 25, 25, 192, 0, 1, "relu"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        compare_case(&cases[i], "winograd", 10 + i, 1);
        struct wcase lin = cases[i]; /* no kinks: an inference-mode pass's dz is exact */
        lin.act = "linear";
        compare_case(&lin, "winograd", 30 + i, 0);
        compare_case(&cases[i], "winograd_f2", 50 + i, 1);
    }
}

/* Central differences in float need the forward exact to about 1e-7 of its terms: F(2x2) here
 * (F(4x4)'s 1e-6 shows as a few percent in some input derivatives behind the batch norm; its
 * gradients are checked against the GEMM path's in test_same_both_ways instead). */
static void test_gradcheck(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=6\nwidth=5\nchannels=3\n"
                             "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=tanh\n"
                             "algorithm=winograd_f2\n"
                             "[convolutional]\nfilters=2\nsize=3\npadding=0\nbatch_normalize=1\n"
                             "activation=linear\nalgorithm=winograd_f2\n",
                             0, 1);
    struct gradcheck_opts o = {.seed = 3};
    assert_int_equal(gradcheck_net(n, &o), 0);
    net_destroy(n);
}

/* An inference net keeps its filter transform between passes and must notice new weights. */
static void test_inference_weights_change(void **state)
{
    (void)state;
    const char *base = "[net]\nbatch=1\nheight=9\nwidth=10\nchannels=6\n[convolutional]\n"
                       "filters=7\nsize=3\npad=1\nactivation=linear\nalgorithm=";
    char ca[256], cb[256];
    snprintf(ca, sizeof ca, "%sgemm\n", base);
    snprintf(cb, sizeof cb, "%swinograd\n", base);
    struct net *a = test_net(ca, 0, 0), *b = test_net(cb, 0, 0);
    cn_rng r;
    cn_rng_seed(&r, 7);
    size_t nin = 6 * 9 * 10, nout = 7 * 9 * 10;
    test_fill_normal(a->input, nin, &r, 1, 0);
    memcpy(b->input, a->input, sizeof(float) * nin);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < a->nparams; i++) {
            test_fill_normal(a->params[i].data, a->params[i].n, &r, 0.5, 0);
            memcpy(b->params[i].data, a->params[i].data, sizeof(float) * a->params[i].n);
        }
        if (round == 2) /* one weight only: still noticed */
            b->params[1].data[5] = a->params[1].data[5] += 3.f;
        net_params_changed(a);
        net_params_changed(b);
        struct pass p;
        net_pass_init(a, &p, 0, 0);
        net_forward(a, &p);
        net_pass_init(b, &p, 0, 0);
        net_forward(b, &p);
        assert_close("output", net_output(b), net_output(a), nout, 1e-3);
    }
    net_destroy(a);
    net_destroy(b);
}

/* want: the name's start, or NULL for any GEMM path (whose names are not this test's). */
static void assert_algorithm(const char *cfg, int training, const char *want)
{
    struct net *n = test_net(cfg, 0, training);
    struct layer *l = net_last(n);
    char buf[96];
    l->ops->algorithm(l, buf, sizeof buf);
    if (want ? strncmp(buf, want, strlen(want)) != 0 : strstr(buf, "winograd") != NULL)
        fail_msg("algorithm \"%s\", want \"%s...\"", buf, want ? want : "(not winograd)");
    net_destroy(n);
}

#define WNET(b, h, c) "[net]\nbatch=" #b "\nheight=" #h "\nwidth=" #h "\nchannels=" #c "\n"

static void test_auto_choice(void **state)
{
    (void)state;
    const char *conv3 = "[convolutional]\nfilters=64\nsize=3\npad=1\nactivation=relu\n";
    assert_algorithm(WNET(1, 28, 64) "[convolutional]\nfilters=64\nsize=3\npad=1\n", 0,
                     "winograd F(4x4,3x3)");
    char buf[512];
    snprintf(buf, sizeof buf, WNET(1, 14, 3) "%s", conv3); /* 3 input channels */
    assert_algorithm(buf, 0, NULL);
    snprintf(buf, sizeof buf, WNET(1, 7, 64) "%s", conv3); /* 4 tiles: 16 of F(2x2) */
    assert_algorithm(buf, 0, "winograd F(2x2,3x3)");
    snprintf(buf, sizeof buf, WNET(1, 5, 64) "%s", conv3); /* 9 tiles of F(2x2) */
    assert_algorithm(buf, 0, NULL);
    snprintf(buf, sizeof buf, WNET(1, 14, 64) "%s", conv3); /* 16 tiles: inference only */
    assert_algorithm(buf, 0, "winograd");
    assert_algorithm(buf, 1, NULL);
    snprintf(buf, sizeof buf, WNET(1, 14, 64) "%salgorithm=gemm\n", conv3);
    assert_algorithm(buf, 0, NULL);
    snprintf(buf, sizeof buf, WNET(1, 5, 2) "%salgorithm=winograd_f2\n", conv3);
    assert_algorithm(buf, 1, "winograd F(2x2,3x3)");
    snprintf(buf, sizeof buf, WNET(2, 28, 64) "%s", conv3); /* training: F(2x2) */
    assert_algorithm(buf, 1, "winograd F(2x2,3x3)");
    snprintf(buf, sizeof buf, WNET(1, 28, 64) "%sstride=2\n", conv3);
    assert_algorithm(buf, 0, NULL);
}

static void test_errors(void **state)
{
    (void)state;
    test_net_fails(WNET(1, 8, 4) "[convolutional]\nfilters=4\nsize=3\nstride=2\n"
                                 "algorithm=winograd\n",
                   "algorithm=winograd: needs a 3x3 kernel at stride 1, dilation 1, groups 1");
    test_net_fails(WNET(1, 8, 4) "[convolutional]\nfilters=4\nsize=5\nalgorithm=winograd\n",
                   "needs a 3x3 kernel");
    test_net_fails(WNET(1, 8, 4) "[convolutional]\nfilters=4\nsize=3\ngroups=2\n"
                                 "algorithm=winograd_f2\n",
                   "needs a 3x3 kernel");
    test_net_fails(WNET(1, 8, 4) "[convolutional]\nfilters=4\nsize=3\nalgorithm=fast\n",
                   "algorithm=fast");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_both_ways),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_inference_weights_change),
        cmocka_unit_test(test_auto_choice),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("conv_winograd", tests, NULL, NULL);
}
