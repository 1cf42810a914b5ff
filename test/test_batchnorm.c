/* test_batchnorm.c - the batchnorm kernels, in both styles (darknet: unbiased variance,
 * eps on the standard deviation; torch: biased variance, eps on the variance), against a naive
 * double-precision implementation and hand-worked cases, bn_backward against central
 * differences of that double forward, the [net] keys bn_style, bn_eps and bn_momentum, and the
 * [batchnorm] layer: parameter order, initial values, gradient checks in training and inference
 * mode and in both styles, and a hand-worked forward through a net. The synchronised kernels
 * (sync_bn=1) with a sum that stands for two ranks holding the same batch: they must give what
 * the plain kernels give on that batch twice over. */
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
#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "net/net.h"

static const struct bn_conf darknet = {BN_STYLE_DARKNET, 1e-6f, 0.01f};
static const struct bn_conf torch = {BN_STYLE_TORCH, 1e-5f, 0.1f};
static const struct bn_conf *const styles[2] = {&darknet, &torch};

/* Naive training forward in double: y, mean, var (the style's normalising variance) and the
 * unbiased variance (the rolling one); darknet divides by sqrt(var) + eps, torch by
 * sqrt(var + eps). */
static void naive_forward(double *y, double *mean, double *var, double *uvar, const double *x,
                          const double *scale, const double *bias, int N, int C, int S,
                          const struct bn_conf *bc)
{
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0, M = (double)N * S;
        for (int n = 0; n < N; n++)
            for (int k = 0; k < S; k++)
                s += x[(n * C + c) * S + k];
        mean[c] = s / M;
        for (int n = 0; n < N; n++)
            for (int k = 0; k < S; k++)
                q += pow(x[(n * C + c) * S + k] - mean[c], 2);
        uvar[c] = M > 1 ? q / (M - 1) : 0;
        var[c] = bc->style == BN_STYLE_TORCH ? q / M : uvar[c];
        double d = bc->style == BN_STYLE_TORCH ? sqrt(var[c] + (double)bc->eps)
                                               : sqrt(var[c]) + (double)bc->eps;
        for (int n = 0; n < N; n++)
            for (int k = 0; k < S; k++) {
                int i = (n * C + c) * S + k;
                y[i] = scale[c] * (x[i] - mean[c]) / d + bias[c];
            }
    }
}

struct bn_case {
    int N, C, S;
};

static const struct bn_case cases[] = {{1, 1, 2}, {3, 5, 7}, {2, 3, 1}, {7, 1, 13},
                                       {1, 4, 9}, {5, 2, 3}, {16, 3, 1}};

static double *to_double(const float *x, size_t n)
{
    double *d = xmalloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static void fill(cn_rng *r, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (float)cn_rng_uniform(r);
}

/* One case of test_forward_matches_naive: x has an offset so the mean matters. */
static void check_forward_case(cn_rng *r, const struct bn_case *k, const struct bn_conf *bc)
{
    int N = k->N, C = k->C, S = k->S;
    size_t n = (size_t)N * C * S;
    float *x = xmalloc(sizeof(float) * n), *y = xmalloc(sizeof(float) * n);
    float *xh = xmalloc(sizeof(float) * n), *y2 = xmalloc(sizeof(float) * n);
    float sc[8], bi[8], mean[8], var[8], rm[8], rv[8];
    fill(r, x, n, 2.f, 5.f);
    fill(r, sc, 8, 0.5f, 2.f);
    fill(r, bi, 8, -1.f, 1.f);
    fill(r, rm, 8, -1.f, 1.f);
    fill(r, rv, 8, 0.5f, 2.f);
    double *X = to_double(x, n), *Y = xmalloc(sizeof(double) * n), *SC = to_double(sc, 8),
           *BI = to_double(bi, 8), *RM = to_double(rm, 8), *RV = to_double(rv, 8);
    double m[8], v[8], uv[8];
    naive_forward(Y, m, v, uv, X, SC, BI, N, C, S, bc);
    bn_forward_train(y, xh, mean, var, rm, rv, x, sc, bi, N, C, S, bc);
    for (size_t i = 0; i < n; i++) {
        size_t c = (i / (size_t)S) % (size_t)C;
        assert_float_equal(y[i], Y[i], 1e-4);
        assert_float_equal(xh[i], (Y[i] - BI[c]) / SC[c], 1e-4);
    }
    double mo = bc->momentum;
    for (int c = 0; c < C; c++) {
        assert_float_equal(mean[c], m[c], 1e-5);
        assert_float_equal(var[c], v[c], 1e-5);
        assert_float_equal(rm[c], (1 - mo) * RM[c] + mo * m[c], 1e-5);
        assert_float_equal(rv[c], (1 - mo) * RV[c] + mo * uv[c], 1e-5);
    }
    /* In place (x == y) gives the same output, bit for bit. */
    memcpy(y2, x, sizeof(float) * n);
    bn_forward_train(y2, xh, mean, var, rm, rv, y2, sc, bi, N, C, S, bc);
    assert_memory_equal(y2, y, sizeof(float) * n);
    /* With the ReLU fused: act_forward's ReLU of that output, bit for bit, in place too. */
    memcpy(y2, x, sizeof(float) * n);
    bn_forward_train_act(y2, xh, mean, var, rm, rv, y2, sc, bi, N, C, S, bc, NULL, ACT_RELU);
    act_forward(y, y, n, ACT_RELU);
    assert_memory_equal(y2, y, sizeof(float) * n);
    free(x), free(y), free(xh), free(y2), free(X), free(Y), free(SC), free(BI), free(RM), free(RV);
}

static void test_forward_matches_naive(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 3);
    for (int st = 0; st < 2; st++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
            check_forward_case(&r, &cases[k], styles[st]);
}

/* N=2, C=2, S=2. Channel 0 holds 1,2 | 3,4: mean 2.5, biased variance 1.25, unbiased 5/3.
 * Channel 1 holds 10,10 | 10,14: mean 11, biased 3, unbiased 4. scale (2, 1), bias (1, 0).
 * Darknet: x_hat = (x - mean) / (sqrt(unbiased) + 1e-6); momentum 0.01. */
static void test_forward_by_hand_darknet(void **state)
{
    (void)state;
    const float x[8] = {1, 2, 10, 10, 3, 4, 10, 14};
    const float scale[2] = {2, 1}, bias[2] = {1, 0};
    float y[8], xh[8], mean[2], var[2], rm[2] = {0, 0}, rv[2] = {1, 1};
    bn_forward_train(y, xh, mean, var, rm, rv, x, scale, bias, 2, 2, 2, &darknet);
    assert_float_equal(mean[0], 2.5f, 1e-6);
    assert_float_equal(var[0], 5.f / 3.f, 1e-6);
    assert_float_equal(mean[1], 11.f, 1e-6);
    assert_float_equal(var[1], 4.f, 1e-6);
    /* x_hat(1) = -1.5 / (sqrt(5/3) + 1e-6) = -1.1618941; y = 2 * x_hat + 1. */
    assert_float_equal(xh[0], -1.1618941f, 1e-6);
    assert_float_equal(y[0], -1.3237882f, 1e-6);
    assert_float_equal(y[5], 3.3237882f, 1e-6);   /* x = 4 */
    assert_float_equal(y[2], -0.49999975f, 1e-6); /* x = 10: -1/(2 + 1e-6) */
    assert_float_equal(y[7], 1.49999925f, 1e-6);  /* x = 14: 3/(2 + 1e-6) */
    /* Darknet's rolling update: .99 rolling + .01 batch, the variance unbiased. */
    assert_float_equal(rm[0], 0.025f, 1e-7);
    assert_float_equal(rm[1], 0.11f, 1e-7);
    assert_float_equal(rv[0], 0.99f + 0.01f * 5.f / 3.f, 1e-6);
    assert_float_equal(rv[1], 0.99f + 0.04f, 1e-6);
    /* Inference with rolling mean 1, variance 4: y = scale * (x - 1)/(2 + 1e-6) + bias. */
    const float m1[2] = {1, 1}, v4[2] = {4, 4};
    bn_forward_infer(y, x, scale, bias, m1, v4, 2, 2, 2, &darknet);
    assert_float_equal(y[0], 1.f, 1e-6);
    assert_float_equal(y[1], 1.9999995f, 1e-6);
    assert_float_equal(y[2], 4.4999978f, 1e-6);
    assert_float_equal(y[7], 6.4999968f, 1e-6);
    /* A large eps shows where it goes: channel 1, x = 14: 3/(2 + 0.5) in training, 13/2.5 at
     * inference. */
    const struct bn_conf big = {BN_STYLE_DARKNET, 0.5f, 0.01f};
    bn_forward_train(y, xh, mean, var, rm, rv, x, scale, bias, 2, 2, 2, &big);
    assert_float_equal(y[7], 1.2f, 1e-6);
    bn_forward_infer(y, x, scale, bias, m1, v4, 2, 2, 2, &big);
    assert_float_equal(y[7], 5.2f, 1e-6);
}

/* The same data in PyTorch's convention: x_hat = (x - mean) / sqrt(biased + 1e-5); momentum 0.1
 * with the unbiased variance (torch.nn.BatchNorm2d). */
static void test_forward_by_hand_torch(void **state)
{
    (void)state;
    const float x[8] = {1, 2, 10, 10, 3, 4, 10, 14};
    const float scale[2] = {2, 1}, bias[2] = {1, 0};
    float y[8], xh[8], mean[2], var[2], rm[2] = {0, 0}, rv[2] = {1, 1};
    bn_forward_train(y, xh, mean, var, rm, rv, x, scale, bias, 2, 2, 2, &torch);
    assert_float_equal(var[0], 1.25f, 1e-6);
    assert_float_equal(var[1], 3.f, 1e-6);
    assert_float_equal(xh[0], -1.3416354f, 1e-6); /* -1.5 / sqrt(1.25 + 1e-5) */
    assert_float_equal(y[0], -1.6832708f, 1e-6);
    assert_float_equal(y[5], 3.6832708f, 1e-6);
    assert_float_equal(y[2], -0.5773493f, 1e-6); /* -1/sqrt(3 + 1e-5) */
    assert_float_equal(y[7], 1.7320479f, 1e-6);
    assert_float_equal(rm[0], 0.25f, 1e-6);
    assert_float_equal(rm[1], 1.1f, 1e-6);
    assert_float_equal(rv[0], 0.9f + 0.1f * 5.f / 3.f, 1e-6);
    assert_float_equal(rv[1], 0.9f + 0.4f, 1e-6);
    const float m1[2] = {1, 1}, v4[2] = {4, 4};
    bn_forward_infer(y, x, scale, bias, m1, v4, 2, 2, 2, &torch);
    assert_float_equal(y[1], 1.9999988f, 1e-6); /* 2 * 1/sqrt(4 + 1e-5) + 1 */
    assert_float_equal(y[2], 4.4999944f, 1e-6);
    assert_float_equal(y[7], 6.4999919f, 1e-6);
    const struct bn_conf big = {BN_STYLE_TORCH, 0.5f, 0.1f};
    bn_forward_train(y, xh, mean, var, rm, rv, x, scale, bias, 2, 2, 2, &big);
    assert_float_equal(y[7], 1.6035675f, 1e-6); /* 3/sqrt(3.5) */
    bn_forward_infer(y, x, scale, bias, m1, v4, 2, 2, 2, &big);
    assert_float_equal(y[7], 6.1282588f, 1e-5); /* 13/sqrt(4.5) */
}

/* L = sum r * y(x) evaluated by the double reference. */
static double naive_objective(const double *x, const double *r, const double *sc, const double *bi,
                              int N, int C, int S, const struct bn_conf *bc)
{
    size_t n = (size_t)N * C * S;
    double *y = xmalloc(sizeof(double) * n), m[8], v[8], uv[8], L = 0;
    naive_forward(y, m, v, uv, x, sc, bi, N, C, S, bc);
    for (size_t i = 0; i < n; i++)
        L += r[i] * y[i];
    free(y);
    return L;
}

/* Central difference of naive_objective in *t (one entry of x, scale or bias). */
static double central(double *t, const double *x, const double *r, const double *sc,
                      const double *bi, int N, int C, int S, const struct bn_conf *bc)
{
    const double h = 1e-5;
    double v = *t;
    *t = v + h;
    double Lp = naive_objective(x, r, sc, bi, N, C, S, bc);
    *t = v - h;
    double Lm = naive_objective(x, r, sc, bi, N, C, S, bc);
    *t = v;
    return (Lp - Lm) / (2 * h);
}

static void check_backward_case(cn_rng *rg, const struct bn_case *k, const struct bn_conf *bc)
{
    int N = k->N, C = k->C, S = k->S;
    size_t n = (size_t)N * C * S;
    if (n == (size_t)C)
        return; /* one value per channel: x_hat is identically 0 */
    float *x = xmalloc(sizeof(float) * n), *y = xmalloc(sizeof(float) * n);
    float *xh = xmalloc(sizeof(float) * n), *g = xmalloc(sizeof(float) * n);
    float sc[8], bi[8], m[8], v[8], rm[8] = {0}, rv[8] = {0}, dsc[8], dbi[8];
    fill(rg, x, n, -2.f, 3.f);
    fill(rg, g, n, -1.f, 1.f);
    fill(rg, sc, 8, 0.5f, 2.f);
    fill(rg, bi, 8, -1.f, 1.f);
    for (int c = 0; c < 8; c++)
        dsc[c] = 0.25f, dbi[c] = -0.5f; /* the kernel accumulates onto these */
    double *X = to_double(x, n), *R = to_double(g, n), *SC = to_double(sc, 8),
           *BI = to_double(bi, 8);
    bn_forward_train(y, xh, m, v, rm, rv, x, sc, bi, N, C, S, bc);
    bn_backward(g, dsc, dbi, g, xh, v, sc, N, C, S, bc); /* dx aliases dy */
    for (size_t i = 0; i < n; i++)
        assert_float_equal(g[i], central(&X[i], X, R, SC, BI, N, C, S, bc), 2e-3);
    for (int c = 0; c < C; c++) {
        assert_float_equal(dsc[c] - 0.25f, central(&SC[c], X, R, SC, BI, N, C, S, bc), 2e-3);
        assert_float_equal(dbi[c] + 0.5f, central(&BI[c], X, R, SC, BI, N, C, S, bc), 2e-3);
    }
    free(x), free(y), free(xh), free(g), free(X), free(R), free(SC), free(BI);
}

static void test_backward_matches_differences(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 4);
    /* The default eps, and a large one so that its place (the darknet term eps/sqrt(var) of
     * docs/batchnorm.md) is visible to the differences. */
    const struct bn_conf big_darknet = {BN_STYLE_DARKNET, 0.3f, 0.01f};
    const struct bn_conf big_torch = {BN_STYLE_TORCH, 0.3f, 0.1f};
    const struct bn_conf *const confs[4] = {&darknet, &torch, &big_darknet, &big_torch};
    for (int st = 0; st < 4; st++)
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
            check_backward_case(&r, &cases[k], confs[st]);
    /* NULL dscale/dbias: only dx. */
    const float x[4] = {1, 2, 3, 5}, s[1] = {1}, b[1] = {0};
    float y[4], xh[4], m, v, rm = 0, rv = 1, dx[4] = {1, 0, 0, 0};
    bn_forward_train(y, xh, &m, &v, &rm, &rv, x, s, b, 4, 1, 1, &darknet);
    bn_backward(dx, NULL, NULL, dx, xh, &v, s, 4, 1, 1, &darknet);
    assert_float_equal(dx[0] + dx[1] + dx[2] + dx[3], 0.f, 1e-6); /* shift invariance */
}

/* A bn_sync sum standing for two ranks with the same values: every sum doubles. */
static void sum_twice(void *ctx, double *v, int n)
{
    ++*(int *)ctx;
    for (int i = 0; i < n; i++)
        v[i] *= 2;
}

/* One case of test_sync_kernels: x (N images) through the synchronised kernels with sum_twice
 * against x2 = [x; x] (2N images) through the plain ones. */
static void check_sync_case(cn_rng *r, int N, int C, int S, const struct bn_conf *bc)
{
    size_t n = (size_t)N * C * S, fc = (size_t)C;
    float *x2 = xmalloc(sizeof(float) * 2 * n), *g2 = xmalloc(sizeof(float) * 2 * n);
    float *y2 = xmalloc(sizeof(float) * 2 * n), *xh2 = xmalloc(sizeof(float) * 2 * n);
    float *y = xmalloc(sizeof(float) * n), *xh = xmalloc(sizeof(float) * n);
    float *g = xmalloc(sizeof(float) * n), *p = xmalloc(sizeof(float) * 16 * fc);
    float *sc = p, *bi = p + fc, *m = p + 2 * fc, *v = p + 3 * fc, *rm = p + 4 * fc,
          *rv = p + 5 * fc, *ds = p + 6 * fc, *db = p + 7 * fc, *m2 = p + 8 * fc, *v2 = p + 9 * fc,
          *rm2 = p + 10 * fc, *rv2 = p + 11 * fc, *ds2 = p + 12 * fc, *db2 = p + 13 * fc;
    memset(p, 0, sizeof(float) * 16 * fc);
    fill(r, x2, n, 1.f, 4.f);
    fill(r, g2, n, -1.f, 1.f);
    memcpy(x2 + n, x2, sizeof(float) * n);
    memcpy(g2 + n, g2, sizeof(float) * n);
    memcpy(g, g2, sizeof(float) * n);
    fill(r, sc, 2 * fc, 0.5f, 2.f);
    for (size_t c = 0; c < fc; c++)
        rv[c] = rv2[c] = 1.f;
    bn_forward_train(y2, xh2, m2, v2, rm2, rv2, x2, sc, bi, 2 * N, C, S, bc);
    bn_backward(g2, ds2, db2, g2, xh2, v2, sc, 2 * N, C, S, bc);
    int calls = 0, chunks = (C + BN_SYNC_CHUNK - 1) / BN_SYNC_CHUNK;
    const struct bn_sync two = {sum_twice, &calls};
    bn_forward_train_sync(y, xh, m, v, rm, rv, x2, sc, bi, N, C, S, bc, &two);
    assert_int_equal(calls, 2 * chunks);
    bn_backward_sync(g, ds, db, g, xh, v, sc, N, C, S, bc, &two);
    assert_int_equal(calls, 3 * chunks);
    for (size_t i = 0; i < n; i++) {
        assert_float_equal(y[i], y2[i], 1e-5);
        assert_float_equal(g[i], g2[i], 1e-6);
    }
    for (size_t c = 0; c < fc; c++) {
        assert_float_equal(m[c], m2[c], 1e-6);
        assert_float_equal(v[c], v2[c], 1e-6); /* the unbiased one divides by 2N S - 1 */
        assert_float_equal(rm[c], rm2[c], 1e-6);
        assert_float_equal(rv[c], rv2[c], 1e-6);
        assert_float_equal(2 * ds[c], ds2[c], 1e-5); /* this rank's share: half */
        assert_float_equal(2 * db[c], db2[c], 1e-5);
    }
    free(x2), free(g2), free(y2), free(xh2), free(y), free(xh), free(g), free(p);
}

/* bn_forward_train_sync / bn_backward_sync: the global batch's statistics and gradient, over
 * more than one chunk of channels too; without a sum, the plain kernels bit for bit. */
static void test_sync_kernels(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 9);
    for (int st = 0; st < 2; st++) {
        check_sync_case(&r, 3, 5, 7, styles[st]);
        check_sync_case(&r, 1, 3, 1, styles[st]); /* one value per rank: M = 2 globally */
        check_sync_case(&r, 4, BN_SYNC_CHUNK + 37, 1, styles[st]);
    }
    const float x[6] = {1, 2, 4, 3, 7, 5}, s[2] = {1.5f, 1}, b[2] = {0, 1};
    float y[2][6], xh[2][6], m[2][2], v[2][2], rm[2][2] = {{0}}, rv[2][2] = {{1, 1}, {1, 1}};
    float g[2][6] = {{1, -2, 0.5f, 3, 0, 1}, {1, -2, 0.5f, 3, 0, 1}}, d[2][4] = {{0}};
    const struct bn_sync none = {NULL, NULL};
    bn_forward_train(y[0], xh[0], m[0], v[0], rm[0], rv[0], x, s, b, 3, 2, 1, &darknet);
    bn_forward_train_sync(y[1], xh[1], m[1], v[1], rm[1], rv[1], x, s, b, 3, 2, 1, &darknet, &none);
    bn_backward(g[0], d[0], d[0] + 2, g[0], xh[0], v[0], s, 3, 2, 1, &darknet);
    bn_backward_sync(g[1], d[1], d[1] + 2, g[1], xh[1], v[1], s, 3, 2, 1, &darknet, NULL);
    assert_memory_equal(y[0], y[1], sizeof y[0]);
    assert_memory_equal(rv[0], rv[1], sizeof rv[0]);
    assert_memory_equal(g[0], g[1], sizeof g[0]);
    assert_memory_equal(d[0], d[1], sizeof d[0]);
}

static const char bn_net[] = "[net]\nbatch=4\nheight=3\nwidth=5\nchannels=3\n[batchnorm]\n";

static void test_layer_params(void **state)
{
    (void)state;
    struct net *n = test_net(bn_net, 0, 1);
    static const char *const names[4] = {"scales", "rolling_mean", "rolling_variance", "biases"};
    static const float init[4] = {1, 0, 1, 0};
    assert_int_equal(n->nparams, 4);
    for (int i = 0; i < 4; i++) {
        struct param *p = &n->params[i];
        assert_string_equal(p->name, names[i]);
        assert_int_equal(p->n, 3);
        assert_int_equal(!!(p->flags & PARAM_TRAIN), i == 0 || i == 3);
        assert_int_equal(p->grad != NULL, i == 0 || i == 3);
        for (int c = 0; c < 3; c++)
            assert_float_equal(p->data[c], init[i], 0);
    }
    struct layer *l = net_last(n);
    assert_int_equal(l->out.c, 3);
    assert_int_equal(l->out.h, 3);
    assert_int_equal(l->out.w, 5);
    char desc[64];
    l->ops->describe(l, desc, sizeof desc);
    assert_string_equal(desc, "3 channels");
    assert_float_equal(l->ops->flops(l), 2.0 * 45, 0);
    net_destroy(n);
    test_net_fails("[net]\nbatch=2\nheight=2\nwidth=2\nchannels=1\n[batchnorm]\nsize=3\n",
                   "unknown key 'size'");
}

static void test_layer_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        bn_net,
        "[net]\nbatch=5\nheight=1\nwidth=1\nchannels=7\n[batchnorm]\n",
        "[net]\nbatch=1\nheight=7\nwidth=3\nchannels=2\n[batchnorm]\n[batchnorm]\n",
    };
    /* Each in both styles, and with a large eps whose place the differences then see. */
    static const char *const net_keys[] = {"", "bn_style=torch\n", "bn_eps=0.2\n",
                                           "bn_style=torch\nbn_eps=0.2\n"};
    for (size_t st = 0; st < 4; st++)
        for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
            char cfg[256];
            snprintf(cfg, sizeof cfg, "[net]\n%s%s", net_keys[st], cfgs[k] + strlen("[net]\n"));
            struct net *n = test_net(cfg, 0, 1);
            /* Non-trivial affine parameters so the scale path is exercised. */
            for (int i = 0; i < n->nparams; i++)
                if (n->params[i].flags & PARAM_TRAIN)
                    for (size_t c = 0; c < n->params[i].n; c++)
                        n->params[i].data[c] += 0.3f * (float)c - 0.2f;
            assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 5 + k}), 0);
            assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 9, .eval = 1}), 0);
            net_destroy(n);
        }
}

/* [net] bn_style, bn_eps, bn_momentum: defaults per style, overrides, errors. */
static void test_net_keys(void **state)
{
    (void)state;
    static const char head[] = "[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\n";
    static const struct {
        const char *keys;
        int style;
        float eps, momentum;
    } want[] = {
        {"", BN_STYLE_DARKNET, 1e-6f, 0.01f},
        {"bn_style=darknet\n", BN_STYLE_DARKNET, 1e-6f, 0.01f},
        {"bn_style=torch\n", BN_STYLE_TORCH, 1e-5f, 0.1f},
        {"bn_style=torch\nbn_eps=1e-3\nbn_momentum=0.5\n", BN_STYLE_TORCH, 1e-3f, 0.5f},
        {"bn_eps=0.25\n", BN_STYLE_DARKNET, 0.25f, 0.01f},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        char cfg[256];
        snprintf(cfg, sizeof cfg, "%s%s[batchnorm]\n", head, want[k].keys);
        struct net *n = test_net(cfg, 0, 1);
        assert_int_equal(n->cfg.bn.style, want[k].style);
        assert_float_equal(n->cfg.bn.eps, want[k].eps, 0);
        assert_float_equal(n->cfg.bn.momentum, want[k].momentum, 0);
        net_destroy(n);
    }
    /* The layer uses them: momentum 0.5 and eps 0.25 on channel 1 (10, 14: mean 12, unbiased
     * variance 8): rolling mean 0.5*0 + 0.5*12 = 6, rolling variance 0.5*1 + 0.5*8 = 4.5. */
    struct net *n = test_net("[net]\nbatch=1\nheight=1\nwidth=2\nchannels=2\nbn_eps=0.25\n"
                             "bn_momentum=0.5\n[batchnorm]\n",
                             0, 1);
    const float x[4] = {1, 2, 10, 14};
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    assert_float_equal(n->params[1].data[1], 6.f, 1e-6);
    assert_float_equal(n->params[2].data[1], 4.5f, 1e-6);
    /* (14 - 12) / (sqrt(8) + 0.25) */
    assert_float_equal(net_output(n)[3], 2.f / (sqrtf(8.f) + 0.25f), 1e-6);
    net_destroy(n);
    test_net_fails("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\nbn_style=caffe\n[batchnorm]\n",
                   "test.cfg:6: [net] bn_style=caffe: unknown value");
    test_net_fails("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\nbn_eps=0\n[batchnorm]\n",
                   "[net] bn_eps=0: out of range");
    test_net_fails("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\nbn_momentum=2\n[batchnorm]\n",
                   "[net] bn_momentum=2: out of range");
    /* sync_bn: a boolean, 0 by default; in one process it changes nothing (test_mpi.sh runs
     * it on two ranks). */
    n = test_net("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\nsync_bn=1\n[batchnorm]\n", 0, 1);
    assert_int_equal(n->cfg.sync_bn, 1);
    net_destroy(n);
    n = test_net("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\n[batchnorm]\n", 0, 1);
    assert_int_equal(n->cfg.sync_bn, 0);
    net_destroy(n);
    test_net_fails("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\nsync_bn=2\n[batchnorm]\n",
                   "[net] sync_bn=2:");
}

/* The hand cases of test_forward_by_hand_* through a net: two images of 2 channels x 1 x 2. */
static void test_layer_forward_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\n[batchnorm]\n", 0, 1);
    const float x[8] = {1, 2, 10, 10, 3, 4, 10, 14};
    memcpy(n->input, x, sizeof x);
    n->params[0].data[0] = 2; /* scales */
    n->params[3].data[0] = 1; /* biases */
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    const float *y = net_output(n);
    assert_float_equal(y[0], -1.3237882f, 1e-6);
    assert_float_equal(y[5], 3.3237882f, 1e-6);
    assert_float_equal(y[7], 1.49999925f, 1e-6);
    assert_float_equal(n->params[1].data[1], 0.11f, 1e-7); /* rolling mean of channel 1 */
    assert_float_equal(n->params[2].data[1], 1.03f, 1e-6); /* rolling variance of channel 1 */
    /* Inference: rolling mean 0.11, variance 1.03 for channel 1: (14 - 0.11)/(sqrt(1.03) + 1e-6).
     */
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    assert_float_equal(y[7], 13.686210f, 2e-5);
    net_destroy(n);
    n = test_net("[net]\nbatch=2\nheight=1\nwidth=2\nchannels=2\nbn_style=torch\n[batchnorm]\n", 0,
                 1);
    memcpy(n->input, x, sizeof x);
    n->params[0].data[0] = 2;
    n->params[3].data[0] = 1;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    y = net_output(n);
    assert_float_equal(y[0], -1.6832708f, 1e-6);
    assert_float_equal(y[7], 1.7320479f, 1e-6);
    assert_float_equal(n->params[1].data[1], 1.1f, 1e-6); /* momentum 0.1 */
    assert_float_equal(n->params[2].data[1], 1.3f, 1e-6); /* 0.9 + 0.1 * 4 */
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    assert_float_equal(y[7], 11.314005f, 2e-5); /* (14 - 1.1)/sqrt(1.3 + 1e-5) */
    net_destroy(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_matches_naive),
        cmocka_unit_test(test_forward_by_hand_darknet),
        cmocka_unit_test(test_forward_by_hand_torch),
        cmocka_unit_test(test_backward_matches_differences),
        cmocka_unit_test(test_sync_kernels),
        cmocka_unit_test(test_layer_params),
        cmocka_unit_test(test_layer_gradcheck),
        cmocka_unit_test(test_net_keys),
        cmocka_unit_test(test_layer_forward_by_hand),
    };
    return cmocka_run_group_tests_name("batchnorm", tests, NULL, NULL);
}
