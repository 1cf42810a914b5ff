/* test_conv.c - the [convolutional] layer: Darknet's keys, defaults, output sizes and parameter
 * order, the non-square (size_x/size_y, stride_x/stride_y, padding_x/padding_y), dilation and
 * groups keys, initialisation, forward cases worked by hand (plain, strided, grouped,
 * depthwise, dilated, non-square), the layer against a naive direct convolution on awkward
 * shapes (groups, depthwise with multipliers, dilations, 1x7/7x1, primes, 1x1, strides past the
 * kernel) forward and backward, the same against torch.nn.functional.conv2d when python3-torch
 * is there (test/ref/conv_torch.py), gradient checks (with and without batch norm in both
 * styles, several activations, strides, paddings, 1x1 kernels, stacked layers), the same
 * results whatever the thread count, the inference fast paths against the reference paths
 * (batch norm folded into the epilogue vs a training net's unfolded batch norm in inference mode,
 * in both styles and after the parameters change; the fused bias and activation vs the unfused
 * one; batch 1 vs 16, lanes vs threaded GEMM), the algorithm names, and the cfg errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "kernels/depthwise.h"
#include "net/net.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define NET(b, h, w, c) "[net]\nbatch=" #b "\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"

static void test_shapes_and_defaults(void **state)
{
    (void)state;
    /* out = (h + 2*padding - size)/stride + 1; pad=1 means padding = size/2. */
    test_assert_out(
        NET(2, 28, 28, 1) "[convolutional]\nfilters=6\nsize=5\npad=1\nactivation=relu\n", 6, 28, 28,
        "6 5x5/1 pad 2, relu", 2.0 * 784 * 6 * 25);
    test_assert_out(NET(2, 14, 14, 6) "[conv]\nfilters=16\nsize=5\nactivation=relu\n", 16, 10, 10,
                    "16 5x5/1, relu", 2.0 * 100 * 16 * 150);
    test_assert_out(NET(1, 5, 4, 3) "[conv]\n", 1, 5, 4, "1 1x1/1, logistic", 2.0 * 20 * 3);
    test_assert_out(NET(1, 7, 6, 2) "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\n"
                                    "batch_normalize=1\nactivation=leaky\n",
                    3, 4, 3, "3 3x3/2 pad 1, leaky, bn", 2.0 * 12 * 3 * 18);
    test_assert_out(NET(1, 7, 6, 2) "[convolutional]\nfilters=2\nsize=3\npadding=2\n", 2, 9, 8,
                    "2 3x3/1 pad 2, logistic", 2.0 * 72 * 2 * 18);
    /* pad=1 wins over padding (Darknet); size 4 gives padding 2. */
    test_assert_out(NET(1, 6, 6, 1) "[convolutional]\nsize=4\npad=1\npadding=1\nstride=3\n", 1, 3,
                    3, "1 4x4/3 pad 2, logistic", 2.0 * 9 * 16);
}

/* size_x/size_y (kernel width/height), stride_x/stride_y, padding_x/padding_y, dilation, groups.
 * Sizes in describe are height x width, as the papers' "1x7" (one row, seven columns). */
static void test_extended_keys(void **state)
{
    (void)state;
    /* Inception v3's 1x7 and 7x1 with pad=1: padding 0x3 and 3x0, 17x17 kept. */
    test_assert_out(NET(1, 17, 17, 8) "[convolutional]\nfilters=192\nsize_x=7\nsize_y=1\npad=1\n"
                                      "activation=relu\n",
                    192, 17, 17, "192 1x7/1 pad 0x3, relu", 2.0 * 289 * 192 * 56);
    test_assert_out(NET(1, 17, 17, 8) "[convolutional]\nfilters=192\nsize=7\nsize_x=1\npad=1\n"
                                      "activation=relu\nbatch_normalize=1\n",
                    192, 17, 17, "192 7x1/1 pad 3x0, relu, bn", 2.0 * 289 * 192 * 56);
    /* stride_x/stride_y override stride (AlexeyAB's keys); OH = (9 + 2 - 3)/1 + 1, OW = 8/2 + 1. */
    test_assert_out(NET(1, 9, 9, 1) "[conv]\nsize=3\nstride=3\nstride_x=2\nstride_y=1\npad=1\n", 1,
                    9, 5, "1 3x3/1x2 pad 1, logistic", 2.0 * 45 * 9);
    /* padding_x/padding_y override padding: OH = (5 + 4 - 3) + 1, OW = (6 + 2 - 3) + 1. */
    test_assert_out(NET(1, 5, 6, 1) "[conv]\nsize=3\npadding=7\npadding_x=1\npadding_y=2\n", 1, 7,
                    6, "1 3x3/1 pad 2x1, logistic", 2.0 * 42 * 9);
    test_assert_out(NET(1, 5, 6, 1) "[conv]\nsize=3\npadding_y=1\n", 1, 5, 4,
                    "1 3x3/1 pad 1x0, logistic", 2.0 * 20 * 9);
    /* Dilation D: extent D*(k-1)+1; pad=1 pads D*(k/2), "same" for odd k (AlexeyAB's pad*D). */
    test_assert_out(NET(1, 9, 8, 2) "[conv]\nfilters=4\nsize=3\ndilation=2\npad=1\n", 4, 9, 8,
                    "4 3x3/1 pad 2, dilation 2, logistic", 2.0 * 72 * 4 * 18);
    test_assert_out(NET(1, 9, 8, 2) "[conv]\nfilters=4\nsize=3\ndilation=3\n", 4, 3, 2,
                    "4 3x3/1, dilation 3, logistic", 2.0 * 6 * 4 * 18);
    /* An even kernel gains D rows and columns, as Darknet's size=4 pad=1 gains one. */
    test_assert_out(NET(1, 9, 8, 2) "[conv]\nsize=4\ndilation=2\npad=1\n", 1, 11, 10,
                    "1 4x4/1 pad 4, dilation 2, logistic", 2.0 * 110 * 32);
    test_assert_out(NET(1, 9, 13, 1) "[conv]\nsize_x=7\nsize_y=1\ndilation=2\npad=1\n", 1, 9, 13,
                    "1 1x7/1 pad 0x6, dilation 2, logistic", 2.0 * 117 * 7);
    /* Groups: each filter sees C/G channels, so R = (C/G)*k*k; depthwise when G = C = F. */
    test_assert_out(NET(1, 7, 7, 8) "[conv]\nfilters=6\nsize=3\npad=1\ngroups=2\nactivation=relu\n",
                    6, 7, 7, "6 3x3/1 pad 1, groups 2, relu", 2.0 * 49 * 6 * 36);
    test_assert_out(NET(1, 7, 7, 8) "[conv]\nfilters=8\nsize=3\nstride=2\npad=1\ngroups=8\n"
                                    "activation=relu6\nbatch_normalize=1\n",
                    8, 4, 4, "8 3x3/2 pad 1, groups 8, relu6, bn", 2.0 * 16 * 8 * 9);
    test_assert_out(NET(1, 7, 7, 8) "[conv]\nfilters=16\nsize=3\npad=1\ngroups=8\ndilation=2\n", 16,
                    7, 7, "16 3x3/1 pad 2, dilation 2, groups 8, logistic", 2.0 * 49 * 16 * 9);
}

static void test_params_and_init(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 9, 9, 16) "[convolutional]\nfilters=64\nsize=3\npad=1\n"
                                              "batch_normalize=1\n",
                             0, 1);
    static const char *const names[] = {"biases", "scales", "rolling_mean", "rolling_variance",
                                        "weights"};
    static const unsigned flags[] = {PARAM_TRAIN, PARAM_TRAIN, 0, 0, PARAM_TRAIN | PARAM_DECAY};
    assert_int_equal(n->nparams, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(n->params[i].name, names[i]);
        assert_int_equal(n->params[i].flags, flags[i]);
        assert_int_equal(n->params[i].n, i < 4 ? 64 : 64 * 16 * 9);
        for (size_t k = 0; i < 4 && k < 64; k++)
            assert_float_equal(n->params[i].data[k], i == 1 || i == 3 ? 1 : 0, 0);
    }
    /* He (Darknet's): N(0, 2/fan_in), fan_in = 16*3*3 = 144: the sample deviation within 4%. */
    const struct param *w = &n->params[4];
    double sq = 0, sum = 0;
    for (size_t k = 0; k < w->n; k++) {
        sum += w->data[k];
        sq += (double)w->data[k] * w->data[k];
    }
    assert_float_equal(sqrt(sq / (double)w->n), sqrt(2.0 / 144), 0.04 * sqrt(2.0 / 144));
    assert_float_equal(sum / (double)w->n, 0, 0.01);
    net_destroy(n);
    /* Xavier: uniform in +-sqrt(6/(fan_in + fan_out)) = sqrt(6/(144 + 576)). */
    n = test_net(NET(2, 9, 9, 16) "[conv]\nfilters=64\nsize=3\ninit=xavier\n", 0, 0);
    assert_int_equal(n->nparams, 2);
    test_assert_uniform(n->params[1].data, n->params[1].n, sqrt(6.0 / 720), 0.98);
    net_destroy(n);
}

/* 1 image, 1 channel 3x3, 2 filters 2x2, stride 1, no padding, linear: out 2 x 2 x 2. */
static void test_forward_backward_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(1, 3, 3, 1) "[convolutional]\nfilters=2\nsize=2\n"
                                             "activation=linear\n",
                             0, 1);
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[8] = {1, 2, 3, 4, 0.5f, 0.5f, 0.5f, 0.5f}, b[2] = {1, -2};
    assert_string_equal(n->params[0].name, "biases");
    memcpy(n->params[0].data, b, sizeof b);
    memcpy(n->params[1].data, w, sizeof w);
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    /* Filter 0: 1*x00 + 2*x01 + 3*x10 + 4*x11 + 1; filter 1: half the window sum - 2. */
    const float want[8] = {38, 48, 68, 78, 4, 6, 10, 12};
    for (int i = 0; i < 8; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-5);
    /* Backward with dy = 1 on filter 0, 0 on filter 1, dinput wired by hand and preloaded. */
    struct layer *l = net_last(n);
    float dx[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0.5f};
    l->dinput = dx;
    const float dy[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    memcpy(l->doutput, dy, sizeof dy);
    net_zero_grads(n);
    net_backward(n, &p);
    /* dW0[ki][kj] = sum of the windows' taps; dW1 = 0; dbias = (4, 0). */
    const float want_dw[8] = {12, 16, 24, 28, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        assert_float_equal(n->params[1].grad[i], want_dw[i], 1e-5);
    assert_float_equal(n->params[0].grad[0], 4, 0);
    assert_float_equal(n->params[0].grad[1], 0, 0);
    /* dx[cell] = sum of filter 0's weights over the windows covering the cell (added to dx). */
    const float want_dx[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4.5f};
    for (int i = 0; i < 9; i++)
        assert_float_equal(dx[i], want_dx[i], 1e-6);
    l->dinput = NULL;
    net_destroy(n);
}

/* Stride 2 with explicit padding 1 and leaky: windows start at (-1, -1). */
static void test_strided_padded_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(1, 3, 3, 1) "[conv]\nsize=2\nstride=2\npadding=1\n"
                                             "activation=leaky\n",
                             0, 0);
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 2, 3, -4};
    memcpy(n->params[1].data, w, sizeof w);
    n->params[0].data[0] = 0;
    memcpy(n->input, x, sizeof x);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    /* (0,0): -4*1 = -4; (0,1): 3*2 - 4*3 = -6; (1,0): 2*4 - 4*7 = -20; (1,1): 5+12+24-36 = 5;
     * leaky keeps a tenth of the negatives. */
    const float want[4] = {-0.4f, -0.6f, -2.f, 5.f};
    for (int i = 0; i < 4; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-6);
    net_destroy(n);
}

/* Sets a net's input and the conv layer's parameters (biases, weights: params 0 and 1). */
static void load(struct net *n, const float *x, size_t nx, const float *w, size_t nw,
                 const float *b, size_t nb)
{
    assert_int_equal(n->params[1].n, nw);
    memcpy(n->input, x, sizeof(float) * nx);
    memcpy(n->params[1].data, w, sizeof(float) * nw);
    memcpy(n->params[0].data, b, sizeof(float) * nb);
}

/* 4 channels of 3x3 in 2 groups, 2 filters of 2x2, linear: filter 0 sees channels 0-1, filter 1
 * channels 2-3 only. x0 = 1..9, x1 = 1, x2 = 9..1, x3 = 2. */
static void test_grouped_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(1, 3, 3, 4) "[convolutional]\nfilters=2\nsize=2\ngroups=2\n"
                                             "activation=linear\n",
                             0, 1);
    float x[36];
    for (int i = 0; i < 9; i++) {
        x[i] = (float)(i + 1);
        x[9 + i] = 1;
        x[18 + i] = (float)(9 - i);
        x[27 + i] = 2;
    }
    /* [F][C/G][kh][kw]: filter 0 takes x0's top-left tap and sums x1's window; filter 1 takes
     * x2's bottom-right tap and half of x3's top-left one. */
    const float w[16] = {1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0.5f, 0, 0, 0}, b[2] = {1, -1};
    load(n, x, 36, w, 16, b, 2);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    /* Filter 0: x0 at (0,0) (0,1) (1,0) (1,1) = 1 2 4 5, + 4 + 1. Filter 1: x2 at (1,1) (1,2)
     * (2,1) (2,2) = 5 4 2 1, + 0.5*2 - 1. */
    const float want[8] = {6, 7, 9, 10, 5, 4, 2, 1};
    for (int i = 0; i < 8; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-6);
    /* dy = 1 on filter 1 only: no gradient reaches filter 0 or channels 0-1. */
    struct layer *l = net_last(n);
    float dx[36] = {0};
    l->dinput = dx;
    for (int i = 0; i < 8; i++)
        l->doutput[i] = i < 4 ? 0.f : 1.f;
    net_zero_grads(n);
    net_backward(n, &p);
    for (int i = 0; i < 18; i++)
        assert_float_equal(dx[i], 0, 0);
    /* x2: its bottom-right tap reads cells (1,1) (1,2) (2,1) (2,2) once each; x3: half at the
     * top-left tap's cells (0,0) (0,1) (1,0) (1,1). */
    for (int i = 0; i < 9; i++) {
        int r = i / 3, c = i % 3;
        assert_float_equal(dx[18 + i], r >= 1 && c >= 1 ? 1.f : 0.f, 1e-6);
        assert_float_equal(dx[27 + i], r <= 1 && c <= 1 ? 0.5f : 0.f, 1e-6);
    }
    /* dW of filter 1 = window sums of x2 and x3 per tap; filter 0's stays 0. */
    const float want_dw[16] = {0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 16, 12, 8, 8, 8, 8};
    for (int i = 0; i < 16; i++)
        assert_float_equal(n->params[1].grad[i], want_dw[i], 1e-5);
    assert_float_equal(n->params[0].grad[0], 0, 0);
    assert_float_equal(n->params[0].grad[1], 4, 0);
    l->dinput = NULL;
    net_destroy(n);
}

/* Depthwise (groups = channels = filters = 2), 3x3, pad=1 on 3x3 planes holding 1..9: filter 0
 * sums the neighbourhood, filter 1 doubles the centre. */
static void test_depthwise_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(1, 3, 3, 2) "[convolutional]\nfilters=2\nsize=3\npad=1\n"
                                             "groups=2\nactivation=linear\n",
                             0, 0);
    float x[18], w[18] = {0};
    for (int i = 0; i < 9; i++) {
        x[i] = x[9 + i] = (float)(i + 1);
        w[i] = 1;
    }
    w[9 + 4] = 2;
    const float b[2] = {0, 0.5f};
    load(n, x, 18, w, 18, b, 2);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    /* Corner (0,0): 1+2+4+5; edge (0,1): 1+2+3+4+5+6; centre: 45. */
    const float *y = net_output(n);
    assert_float_equal(y[0], 12, 1e-6);
    assert_float_equal(y[1], 21, 1e-6);
    assert_float_equal(y[4], 45, 1e-6);
    assert_float_equal(y[8], 28, 1e-6); /* 5+6+8+9 */
    for (int i = 0; i < 9; i++)
        assert_float_equal(y[9 + i], 2 * (i + 1) + 0.5f, 1e-6);
    net_destroy(n);
}

/* 5x5 image x = 5*row + col, 3x3 kernel 1..9 at dilation 2: taps every other cell. */
static void test_dilated_by_hand(void **state)
{
    (void)state;
    float x[25], w[9];
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    for (int i = 0; i < 9; i++)
        w[i] = (float)(i + 1);
    const float b[1] = {0};
    struct net *n =
        test_net(NET(1, 5, 5, 1) "[conv]\nsize=3\ndilation=2\nactivation=linear\n", 0, 0);
    load(n, x, 25, w, 9, b, 1);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    /* One output: 1*0 + 2*2 + 3*4 + 4*10 + 5*12 + 6*14 + 7*20 + 8*22 + 9*24. */
    assert_int_equal(net_last(n)->out.h, 1);
    assert_float_equal(net_output(n)[0], 732, 1e-4);
    net_destroy(n);
    /* pad=1 pads 2 ("same"): the centre is the same sum; corner (0,0) keeps taps (1,1) (1,2)
     * (2,1) (2,2) at cells (0,0) (0,2) (2,0) (2,2): 5*0 + 6*2 + 8*10 + 9*12. */
    n = test_net(NET(1, 5, 5, 1) "[conv]\nsize=3\ndilation=2\npad=1\nactivation=linear\n", 0, 0);
    load(n, x, 25, w, 9, b, 1);
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    assert_int_equal(net_last(n)->out.h, 5);
    assert_float_equal(net_output(n)[12], 732, 1e-4);
    assert_float_equal(net_output(n)[0], 200, 1e-4);
    net_destroy(n);
}

/* A 1x3 kernel (size_x=3, size_y=1) with stride_x=2 and padding_x=1 on a 2x4 image: OH = 2,
 * OW = (4 + 2 - 3)/2 + 1 = 2. */
static void test_non_square_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(1, 2, 4, 1) "[conv]\nsize_x=3\nsize_y=1\nstride_x=2\n"
                                             "padding_x=1\nactivation=linear\n",
                             0, 0);
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[3] = {1, 10, 100}, b[1] = {0};
    load(n, x, 8, w, 3, b, 1);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    /* (0,0) reads columns -1 0 1; (0,1) columns 1 2 3; likewise on row 1. */
    const float want[4] = {210, 432, 650, 876};
    assert_int_equal(net_last(n)->out.w, 2);
    for (int i = 0; i < 4; i++)
        assert_float_equal(net_output(n)[i], want[i], 1e-4);
    net_destroy(n);
}

/* The geometry a case expects after key resolution, for the naive reference and for PyTorch. */
struct ref_geom {
    int N, C, H, W, F, G, kh, kw, sh, sw, ph, pw, d;
};

struct ref_case {
    const char *keys; /* the [convolutional] section's keys (activation=linear is added) */
    struct ref_geom g;
};

/* Groups, depthwise with multipliers, dilations, 1x7/7x1, non-square strides and padding,
 * primes, 1x1 (grouped: the direct path), a stride past the kernel, a kernel wider than the
 * image. */
static const struct ref_case ref_cases[] = {
    {"filters=6\nsize=3\npad=1\ngroups=2\n", {3, 4, 7, 5, 6, 2, 3, 3, 1, 1, 1, 1, 1}},
    {"filters=3\nsize=3\npad=1\nstride=2\ngroups=3\n", {3, 3, 9, 8, 3, 3, 3, 3, 2, 2, 1, 1, 1}},
    {"filters=4\nsize=5\npad=1\ngroups=2\n", {2, 2, 6, 7, 4, 2, 5, 5, 1, 1, 2, 2, 1}},
    {"filters=3\nsize=3\npad=1\ndilation=2\n", {3, 2, 9, 9, 3, 1, 3, 3, 1, 1, 2, 2, 2}},
    {"filters=2\nsize=3\nstride=2\ndilation=3\n", {2, 2, 11, 10, 2, 1, 3, 3, 2, 2, 0, 0, 3}},
    {"filters=4\nsize_x=7\nsize_y=1\npad=1\n", {2, 3, 5, 9, 4, 1, 1, 7, 1, 1, 0, 3, 1}},
    {"filters=3\nsize=7\nsize_x=1\npad=1\nstride_y=2\n", {2, 2, 8, 5, 3, 1, 7, 1, 2, 1, 3, 0, 1}},
    {"filters=3\nsize_x=3\nsize_y=2\nstride_x=2\nstride_y=3\npadding_x=1\npadding_y=2\n",
     {3, 2, 7, 11, 3, 1, 2, 3, 3, 2, 2, 1, 1}},
    {"filters=5\nsize=3\nstride=2\npadding=1\n", {2, 3, 13, 11, 5, 1, 3, 3, 2, 2, 1, 1, 1}},
    {"filters=9\nsize=1\ngroups=3\n", {3, 6, 5, 4, 9, 3, 1, 1, 1, 1, 0, 0, 1}},
    {"filters=2\nsize=1\nstride=2\n", {2, 3, 5, 7, 2, 1, 1, 1, 2, 2, 0, 0, 1}},
    {"filters=2\nsize=2\nstride=3\n", {3, 2, 8, 7, 2, 1, 2, 2, 3, 3, 0, 0, 1}},
    {"filters=4\ngroups=2\nsize_x=3\nsize_y=2\ndilation=2\npadding_x=2\npadding_y=1\n",
     {2, 4, 7, 9, 4, 2, 2, 3, 1, 1, 1, 2, 2}},
    {"filters=2\ngroups=2\nsize_x=7\nsize_y=1\ndilation=2\npad=1\n",
     {2, 2, 4, 13, 2, 2, 1, 7, 1, 1, 0, 6, 2}},
    {"filters=2\nsize=5\npadding=2\n", {2, 1, 3, 3, 2, 1, 5, 5, 1, 1, 2, 2, 1}},
    {"filters=6\nsize=3\nstride_x=2\npad=1\ngroups=3\ndilation=2\n",
     {3, 3, 6, 9, 6, 3, 3, 3, 1, 2, 2, 2, 2}},
};
#define NREF (sizeof ref_cases / sizeof ref_cases[0])

static int ref_oh(const struct ref_geom *g)
{
    return (g->H + 2 * g->ph - (g->d * (g->kh - 1) + 1)) / g->sh + 1;
}

static int ref_ow(const struct ref_geom *g)
{
    return (g->W + 2 * g->pw - (g->d * (g->kw - 1) + 1)) / g->sw + 1;
}

/* The input cell tap (ki, kj) of output (oy, ox) reads in channel c's plane, or -1. */
static long ref_cell(const struct ref_geom *g, int c, int ki, int kj, int oy, int ox)
{
    int iy = oy * g->sh - g->ph + ki * g->d, ix = ox * g->sw - g->pw + kj * g->d;
    if (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W)
        return -1;
    return ((long)c * g->H + iy) * g->W + ix;
}

/* One tap of the naive convolution: y[o] += w[wi] * x[xi] (y given), or its gradients
 * dx[xi] += w[wi] * dy[o] and dw[wi] += x[xi] * dy[o]. */
struct ref_bufs {
    double *y, *dx, *dw;
    const float *dy, *x, *w;
};

static void ref_tap(const struct ref_bufs *r, size_t o, size_t wi, size_t xi)
{
    if (r->y) {
        r->y[o] += (double)r->w[wi] * r->x[xi];
        return;
    }
    r->dx[xi] += (double)r->w[wi] * r->dy[o];
    r->dw[wi] += (double)r->x[xi] * r->dy[o];
}

/* Visits every (image, filter, output, channel of the filter's group, tap) that reads inside
 * the input, with the flat indices of the output, the weight and the input cell. */
static void ref_visit(const struct ref_bufs *r, const struct ref_geom *g)
{
    int OH = ref_oh(g), OW = ref_ow(g), cg = g->C / g->G, fg = g->F / g->G;
    for (int b = 0; b < g->N; b++)
        for (int f = 0; f < g->F; f++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++)
                    for (int c = 0; c < cg; c++)
                        for (int ki = 0; ki < g->kh; ki++)
                            for (int kj = 0; kj < g->kw; kj++) {
                                long cell = ref_cell(g, f / fg * cg + c, ki, kj, oy, ox);
                                if (cell < 0)
                                    continue;
                                size_t o = (((size_t)b * g->F + f) * OH + oy) * OW + ox;
                                size_t wi = (((size_t)f * cg + c) * g->kh + ki) * g->kw + kj;
                                size_t xi = (size_t)b * g->C * g->H * g->W + (size_t)cell;
                                ref_tap(r, o, wi, xi);
                            }
}

/* y = conv(x, w) + bias, in double; dx, dw, db += the gradients for dL/dy = dy, in double. */
static void ref_forward(double *y, const float *x, const float *w, const float *bias,
                        const struct ref_geom *g)
{
    size_t P = (size_t)ref_oh(g) * (size_t)ref_ow(g), ny = (size_t)g->N * g->F * P;
    for (size_t i = 0; i < ny; i++)
        y[i] = bias[(i / P) % (size_t)g->F];
    ref_visit(&(struct ref_bufs){.y = y, .x = x, .w = w}, g);
}

static void ref_backward(double *dx, double *dw, double *db, const float *dy, const float *x,
                         const float *w, const struct ref_geom *g)
{
    size_t P = (size_t)ref_oh(g) * (size_t)ref_ow(g), ny = (size_t)g->N * g->F * P;
    for (size_t i = 0; i < ny; i++)
        db[(i / P) % (size_t)g->F] += dy[i];
    ref_visit(&(struct ref_bufs){.dx = dx, .dw = dw, .dy = dy, .x = x, .w = w}, g);
}

/* The case's net (training, linear), its input, weights, biases and dL/doutput seeded; runs
 * forward and backward with dinput wired to net->input_grad. */
static struct net *ref_net(const struct ref_case *rc, uint64_t seed, float **dy)
{
    const struct ref_geom *g = &rc->g;
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "[net]\nbatch=%d\nheight=%d\nwidth=%d\nchannels=%d\n"
             "[convolutional]\n%sactivation=linear\n",
             g->N, g->H, g->W, g->C, rc->keys);
    struct net *n = test_net(cfg, 0, NET_TRAIN | NET_INPUT_GRAD);
    struct layer *l = net_last(n);
    assert_int_equal(l->out.c, g->F);
    assert_int_equal(l->out.h, ref_oh(g));
    assert_int_equal(l->out.w, ref_ow(g));
    assert_int_equal(n->params[1].n, (size_t)g->F * (g->C / g->G) * g->kh * g->kw);
    cn_rng r;
    cn_rng_seed(&r, seed);
    size_t nx = net_inputs(n) * (size_t)g->N, ny = net_outputs(n) * (size_t)g->N;
    for (size_t i = 0; i < nx; i++)
        n->input[i] = (float)(2 * cn_rng_uniform(&r) - 1);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < n->params[k].n; i++)
            n->params[k].data[i] = (float)(2 * cn_rng_uniform(&r) - 1);
    *dy = xmalloc(sizeof(float) * ny);
    for (size_t i = 0; i < ny; i++)
        (*dy)[i] = (float)(2 * cn_rng_uniform(&r) - 1);
    struct pass p;
    net_pass_init(n, &p, 1, 0);
    net_forward(n, &p);
    memcpy(l->doutput, *dy, sizeof(float) * ny);
    memset(n->input_grad, 0, sizeof(float) * nx);
    l->dinput = n->input_grad;
    net_zero_grads(n);
    net_backward(n, &p);
    l->dinput = NULL;
    return n;
}

static int count_off(const char *what, const float *got, const double *want, size_t n, double tol)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])))) {
            if (bad++ < 5)
                fprintf(stderr, "%s[%zu]: ours %.7g, reference %.7g\n", what, i, (double)got[i],
                        want[i]);
        }
    return bad;
}

static void test_matches_naive(void **state)
{
    (void)state;
    for (size_t k = 0; k < NREF; k++) {
        const struct ref_geom *g = &ref_cases[k].g;
        float *dy;
        struct net *n = ref_net(&ref_cases[k], 100 + k, &dy);
        size_t nx = net_inputs(n) * (size_t)g->N, ny = net_outputs(n) * (size_t)g->N;
        size_t nw = n->params[1].n, F = (size_t)g->F;
        double *y = xmalloc(sizeof(double) * ny), *dx = xcalloc(nx, sizeof(double));
        double *dw = xcalloc(nw, sizeof(double)), *db = xcalloc(F, sizeof(double));
        ref_forward(y, n->input, n->params[1].data, n->params[0].data, g);
        ref_backward(dx, dw, db, dy, n->input, n->params[1].data, g);
        int bad = count_off("y", net_output(n), y, ny, 1e-5) +
                  count_off("dx", n->input_grad, dx, nx, 1e-5) +
                  count_off("dw", n->params[1].grad, dw, nw, 1e-5) +
                  count_off("db", n->params[0].grad, db, F, 1e-5);
        if (bad)
            fail_msg("case %zu (%s): %d values differ from the naive convolution", k,
                     ref_cases[k].keys, bad);
        free(y), free(dx), free(dw), free(db), free(dy);
        net_destroy(n);
    }
}

#define CONV_TORCH_PY "/usr/bin/python3"
#define CONV_TORCH_SCRIPT "test/ref/conv_torch.py"

/* Appends case g's spec for net n and dy (conv_torch.py's format). */
static void torch_spec(FILE *f, const struct ref_geom *g, struct net *n, const float *dy)
{
    size_t nx = net_inputs(n) * (size_t)g->N, ny = net_outputs(n) * (size_t)g->N;
    fprintf(f, "%d %d %d %d %d %d %d %d %d %d %d %d %d\n", g->N, g->C, g->H, g->W, g->F, g->G,
            g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->d);
    const float *parts[4] = {n->input, n->params[1].data, n->params[0].data, dy};
    const size_t sizes[4] = {nx, n->params[1].n, (size_t)g->F, ny};
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < sizes[k]; i++)
            fprintf(f, "%.9g\n", (double)parts[k][i]);
}

/* Reads "tag v1 .. vn" into v. */
static int torch_row(FILE *p, const char *tag, double *v, size_t n)
{
    char got[8];
    if (fscanf(p, "%7s", got) != 1 || strcmp(got, tag))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (fscanf(p, "%lf", &v[i]) != 1)
            return -1;
    return 0;
}

/* Case k's net, its dy, and PyTorch's y, dx, dw for it. */
struct torch_case {
    struct net *n;
    float *dy;
    double *y, *dx, *dw;
};

/* Compares case k with what the script printed for it (the next three rows of p). */
static int torch_check(FILE *p, size_t k, struct torch_case *t)
{
    const struct ref_geom *g = &ref_cases[k].g;
    size_t nx = net_inputs(t->n) * (size_t)g->N, ny = net_outputs(t->n) * (size_t)g->N;
    size_t nw = t->n->params[1].n;
    t->y = xmalloc(sizeof(double) * ny);
    t->dx = xmalloc(sizeof(double) * nx);
    t->dw = xmalloc(sizeof(double) * nw);
    if (torch_row(p, "y", t->y, ny) || torch_row(p, "dx", t->dx, nx) ||
        torch_row(p, "dw", t->dw, nw)) {
        fprintf(stderr, "case %zu: " CONV_TORCH_SCRIPT " printed too little\n", k);
        return 1;
    }
    int bad = count_off("y", net_output(t->n), t->y, ny, 1e-4) +
              count_off("dx", t->n->input_grad, t->dx, nx, 1e-4) +
              count_off("dw", t->n->params[1].grad, t->dw, nw, 1e-4);
    if (bad)
        fprintf(stderr, "case %zu (%s): %d values differ from PyTorch\n", k, ref_cases[k].keys,
                bad);
    return bad;
}

/* Forward, input and weight gradients against torch.nn.functional.conv2d, 1e-4 relative; every
 * case in one run of the script. */
static void test_matches_torch(void **state)
{
    (void)state;
    if (access(CONV_TORCH_PY, X_OK) != 0 ||
        system(CONV_TORCH_PY " -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("SKIPPED: conv against torch.nn.functional.conv2d: " CONV_TORCH_PY
               " cannot import torch (apt-get install python3-torch)\n");
        skip();
    }
    struct torch_case t[NREF] = {{0}};
    char path[] = "/tmp/cfgnet-conv-torch-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    assert_non_null(f);
    for (size_t k = 0; k < NREF; k++) {
        t[k].n = ref_net(&ref_cases[k], 300 + k, &t[k].dy);
        torch_spec(f, &ref_cases[k].g, t[k].n, t[k].dy);
    }
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, CONV_TORCH_PY " " CONV_TORCH_SCRIPT " %s", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int bad = 0;
    for (size_t k = 0; k < NREF; k++)
        bad += torch_check(p, k, &t[k]);
    int rc = pclose(p);
    unlink(path);
    for (size_t k = 0; k < NREF; k++) {
        free(t[k].y), free(t[k].dx), free(t[k].dw), free(t[k].dy);
        net_destroy(t[k].n);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(bad, 0);
}

static void test_gradcheck(void **state)
{
    (void)state;
    static const char *const cfgs[] = {
        NET(3, 7, 6, 2) "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=leaky\n",
        NET(3, 7, 6, 2) "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
                        "batch_normalize=1\n",
        NET(2, 5, 4, 3) "[convolutional]\nfilters=2\nsize=3\nactivation=tanh\n",
        NET(3, 5, 5, 3) "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n",
        NET(2, 6, 5, 2) "[convolutional]\nfilters=3\nsize=2\npadding=1\nactivation=swish\n"
                        "batch_normalize=1\n",
        NET(2, 4, 5, 1) "[convolutional]\nfilters=2\nsize=5\npad=1\nactivation=linear\n",
        NET(3, 5, 7, 2) "[convolutional]\nfilters=3\nsize=1\nstride=2\nactivation=tanh\n"
                        "batch_normalize=1\n",
        NET(3, 7, 7, 1) "[conv]\nfilters=3\nsize=3\npad=1\nactivation=tanh\n"
                        "[conv]\nfilters=2\nsize=3\nstride=2\nactivation=swish\n"
                        "[conv]\nfilters=2\nsize=1\nactivation=linear\n",
        /* groups, depthwise (with a multiplier), batch norm in both styles */
        NET(2, 4, 5, 4) "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=2\nactivation=leaky\n"
                        "batch_normalize=1\n",
        NET(3, 6, 5, 3) "[convolutional]\nfilters=3\nsize=3\npad=1\ngroups=3\nactivation=swish\n"
                        "batch_normalize=1\n",
        NET(2, 5, 7, 2) "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\ngroups=2\n"
                        "activation=tanh\n",
        /* grouped 3x3 at stride 2 (the direct grouped kernel, both gradients) */
        NET(2, 7, 6, 6) "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\ngroups=2\n"
                        "activation=leaky\n",
        "[net]\nbatch=3\nheight=9\nwidth=8\nchannels=2\nbn_style=torch\n"
        "[convolutional]\nfilters=3\nsize=3\ndilation=2\npad=1\nactivation=logistic\n"
        "batch_normalize=1\n",
        /* dilation, 1x7 / 7x1, non-square strides and padding, primes, stride past the kernel */
        NET(2, 11, 10, 2) "[convolutional]\nfilters=2\nsize=3\nstride=2\ndilation=3\n"
                          "activation=tanh\n",
        NET(2, 5, 9, 3) "[convolutional]\nfilters=3\nsize_x=7\nsize_y=1\npad=1\n"
                        "activation=tanh\nbatch_normalize=1\n",
        NET(2, 8, 5, 2) "[convolutional]\nfilters=3\nsize_y=7\npad=1\nstride_y=2\n"
                        "activation=swish\n",
        NET(2, 7, 11, 2) "[convolutional]\nfilters=3\nsize_x=3\nsize_y=2\nstride_x=2\n"
                         "stride_y=3\npadding_x=1\npadding_y=2\nactivation=logistic\n",
        NET(2, 13, 11, 3) "[convolutional]\nfilters=5\nsize=3\nstride=2\npadding=1\n"
                          "activation=tanh\nbatch_normalize=1\n",
        NET(2, 5, 4, 6) "[convolutional]\nfilters=9\nsize=1\ngroups=3\nactivation=tanh\n"
                        "batch_normalize=1\n",
        NET(3, 8, 7, 2) "[convolutional]\nfilters=2\nsize=2\nstride=3\nactivation=swish\n",
        NET(2, 7, 9, 4) "[convolutional]\nfilters=4\ngroups=2\nsize_x=3\nsize_y=2\n"
                        "dilation=2\npadding_x=2\npadding_y=1\nactivation=tanh\n",
    };
    int bad = 0;
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        struct net *n = test_net(cfgs[k], 0, 1);
        int b = gradcheck_net(n, &(struct gradcheck_opts){.seed = 5 + k});
        if (b)
            fprintf(stderr, "gradcheck: %d mismatches in case %zu:\n%s", b, k, cfgs[k]);
        bad += b;
        net_destroy(n);
    }
    assert_int_equal(bad, 0);
}

/* A MobileNet v2 block: expand 1x1, depthwise 3x3/2, project 1x1, each with batch norm. Through
 * three batch norms the float forward's rounding is ~1e-3 of a central difference at step
 * 1e-3 (it passes at 3e-3 to 3e-2), so this one takes step 1e-2. */
static void test_gradcheck_mobilenet_block(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 7, 7, 2) "[conv]\nfilters=6\nsize=1\nactivation=tanh\n"
                                             "batch_normalize=1\n"
                                             "[conv]\nfilters=6\ngroups=6\nsize=3\nstride=2\n"
                                             "pad=1\nactivation=swish\nbatch_normalize=1\n"
                                             "[conv]\nfilters=3\nsize=1\nactivation=linear\n"
                                             "batch_normalize=1\n",
                             0, 1);
    assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 25, .eps = 1e-2f}), 0);
    net_destroy(n);
}

/* A training net run in inference mode: batch norm through its rolling statistics. */
static void test_gradcheck_eval_bn(void **state)
{
    (void)state;
    struct net *n = test_net(NET(2, 5, 6, 2) "[convolutional]\nfilters=3\nsize=3\npad=1\n"
                                             "activation=logistic\nbatch_normalize=1\n",
                             0, 1);
    for (int k = 0; k < 3; k++) { /* rolling statistics away from 0 and 1 */
        n->params[2].data[k] = 0.1f * (float)(k + 1);
        n->params[3].data[k] = 0.5f + 0.25f * (float)k;
        n->params[1].data[k] = 1.f - 0.3f * (float)k;
    }
    assert_int_equal(gradcheck_net(n, &(struct gradcheck_opts){.seed = 3, .eval = 1}), 0);
    net_destroy(n);
}

/* Fills every parameter of n with a deterministic spread (rolling variances positive). */
static void fill_params(struct net *n, unsigned salt)
{
    for (int k = 0; k < n->nparams; k++) {
        struct param *pr = &n->params[k];
        int var = !strcmp(pr->name, "rolling_variance");
        for (size_t i = 0; i < pr->n; i++) {
            float u = (float)(((i + 1) * 2654435761u + salt * 40503u + (unsigned)k * 977u) % 1000u)
                      / 1000.f;
            /* some variances tiny, so that where the eps goes shows */
            pr->data[i] = !var ? u - 0.5f : u < 0.2f ? 1e-4f + 1e-3f * u : 0.2f + 2.f * u;
        }
    }
    net_params_changed(n);
}

static void fill_input(struct net *n, unsigned salt)
{
    for (size_t i = 0; i < net_inputs(n) * (size_t)n->batch; i++)
        n->input[i] = (float)(((i + salt) * 37u) % 23u) / 11.f - 1.f;
}

/* Copies a's parameters into b (same cfg). */
static void copy_params(struct net *b, const struct net *a)
{
    assert_int_equal(a->nparams, b->nparams);
    for (int k = 0; k < a->nparams; k++)
        memcpy(b->params[k].data, a->params[k].data, sizeof(float) * a->params[k].n);
    net_params_changed(b);
}

/* Runs an inference-mode pass of n on its input. */
static void infer(struct net *n)
{
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
}

/* Outputs of a and b agree within tol relative to max(1, |value|); returns the cells that don't. */
static int outputs_off(const struct net *a, const struct net *b, double tol)
{
    size_t ny = net_outputs(a) * (size_t)a->batch;
    int bad = 0;
    for (size_t i = 0; i < ny; i++) {
        double x = net_output(a)[i], y = net_output(b)[i];
        if (!(fabs(x - y) <= tol * fmax(1.0, fabs(x))) && bad++ < 3)
            print_message("  output %zu: %.9g vs %.9g\n", i, x, y);
    }
    return bad;
}

/* cfg built for inference (batch norm folded, epilogue fused) against the same cfg built for
 * training run in inference mode (unfolded batch norm over the batch, the reference path),
 * with the same parameters; then again after every parameter changed (no stale fold). */
static void fused_agrees(const char *cfg)
{
    struct net *ref = test_net(cfg, 0, 1), *fast = test_net(cfg, 0, 0);
    for (int round = 0; round < 2; round++) {
        fill_params(ref, 7u + (unsigned)round);
        copy_params(fast, ref);
        fill_input(ref, (unsigned)round);
        fill_input(fast, (unsigned)round);
        infer(ref);
        infer(fast);
        int bad = outputs_off(ref, fast, 2e-5);
        if (bad)
            fail_msg("%d outputs differ (round %d) for\n%s", bad, round, cfg);
    }
    net_destroy(ref);
    net_destroy(fast);
}

#define BN "batch_normalize=1\n"

/* Folded batch norm in both styles, every kind of kernel (3x3, direct 1x1, strided 1x1,
 * grouped, depthwise, a 7x7/2 stem), several activations, and bias-only layers whose fused
 * epilogue is compared against a training net's unfused one (swish keeps z there). */
static void test_fused_matches_reference(void **state)
{
    (void)state;
    static const char *const layers[] = {
        "[conv]\nfilters=5\nsize=3\npad=1\nactivation=relu\n" BN
        "[conv]\nfilters=7\nsize=1\nactivation=leaky\n" BN
        "[conv]\nfilters=6\nsize=1\nstride=2\nactivation=linear\n" BN,
        "[conv]\nfilters=6\nsize=7\nstride=2\npad=1\nactivation=logistic\n" BN
        "[conv]\nfilters=6\nsize=3\npad=1\ngroups=6\nactivation=relu6\n" BN
        "[conv]\nfilters=4\nsize=3\npad=1\ngroups=2\nactivation=mish\n" BN,
        "[conv]\nfilters=5\nsize=3\npad=1\nactivation=swish\n"
        "[conv]\nfilters=3\nsize=1\nactivation=leaky\n"
        "[conv]\nfilters=4\nsize=3\nstride=2\nactivation=tanh\n",
    };
    static const char *const styles[] = {"", "bn_style=torch\n"};
    static const char *const nets[] = {NET(3, 11, 13, 4), NET(1, 11, 13, 4)};
    char cfg[1024];
    for (size_t st = 0; st < 2; st++)
        for (size_t nt = 0; nt < 2; nt++)
            for (size_t k = 0; k < sizeof layers / sizeof layers[0]; k++) {
                snprintf(cfg, sizeof cfg, "%s%s%s", nets[nt], styles[st], layers[k]);
                fused_agrees(cfg);
            }
}

/* The folded batch norm by hand: one 1x1 filter of weight 2 over a 1x1x2 image, darknet style:
 * y = relu(scale * (2x - mean) / (sqrt(var) + 1e-6) + bias). */
static void test_fold_by_hand(void **state)
{
    (void)state;
    struct net *n = test_net(NET(1, 1, 2, 1) "[conv]\nfilters=1\nsize=1\nactivation=relu\n" BN,
                             0, 0);
    n->params[0].data[0] = 0.5f;  /* bias (shift) */
    n->params[1].data[0] = 3.f;   /* scale */
    n->params[2].data[0] = 1.f;   /* rolling mean */
    n->params[3].data[0] = 4.f;   /* rolling variance: denominator 2 + 1e-6 */
    n->params[4].data[0] = 2.f;   /* weight */
    n->input[0] = 2.f;            /* 3 * (4 - 1) / 2 + 0.5 = 5 */
    n->input[1] = -1.f;           /* 3 * (-2 - 1) / 2 + 0.5 = -4: relu 0 */
    infer(n);
    assert_float_equal(net_output(n)[0], 5.0, 1e-5);
    assert_float_equal(net_output(n)[1], 0.0, 0);
    net_destroy(n);
}

#ifdef _OPENMP
/* cfg at batch 16 (two lanes at two threads), against each image alone at batch 1 (one lane,
 * threaded GEMM, im2col and epilogue): the same bits, since no path's sum order depends on the
 * threads. Inference nets, and a training pass's outputs. */
static void batches_agree(const char *cfg, int training)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
    struct net *big = test_net(cfg, 16, training), *one = test_net(cfg, 1, training);
    omp_set_num_threads(saved);
    fill_params(big, 3);
    copy_params(one, big);
    fill_input(big, 5);
    struct pass p;
    net_pass_init(big, &p, training, 0);
    net_forward(big, &p);
    size_t in = net_inputs(big), out = net_outputs(big);
    for (int b = 0; b < 16; b++) {
        memcpy(one->input, big->input + (size_t)b * in, sizeof(float) * in);
        net_pass_init(one, &p, 0, 0);
        net_forward(one, &p);
        if (!training)
            assert_memory_equal(net_output(one), net_output(big) + (size_t)b * out,
                                sizeof(float) * out);
    }
    net_destroy(big);
    net_destroy(one);
}
#endif

static void test_batch1_vs_16(void **state)
{
    (void)state;
#ifdef _OPENMP
    batches_agree(NET(16, 24, 20, 16) "[conv]\nfilters=24\nsize=3\npad=1\nactivation=relu\n" BN
                  "[conv]\nfilters=32\nsize=1\nstride=2\nactivation=linear\n" BN
                  "[conv]\nfilters=32\nsize=3\npad=1\ngroups=32\nactivation=leaky\n"
                  "[conv]\nfilters=17\nsize=1\nactivation=logistic\n",
                  0);
    batches_agree(NET(16, 12, 10, 8) "[conv]\nfilters=12\nsize=3\npad=1\nactivation=relu\n" BN,
                  1);
#else
    skip();
#endif
}

/* Each layer names its kernel for `net speed`. */
static void test_algorithm_names(void **state)
{
    (void)state;
    struct net *n = test_net(NET(4, 16, 16, 8) "[conv]\nfilters=8\nsize=3\npad=1\n"
                                               "algorithm=gemm\n"
                                               "[conv]\nfilters=8\nsize=1\n"
                                               "[conv]\nfilters=8\nsize=1\nstride=2\n"
                                               "[conv]\nfilters=8\nsize=3\npad=1\ngroups=8\n"
                                               "[conv]\nfilters=8\nsize=3\npad=1\ngroups=2\n"
                                               "algorithm=gemm\n"
                                               "[conv]\nfilters=8\nsize=3\npad=1\ngroups=2\n",
                             1, 0);
    struct im2col_geom g; /* the last layer's group: the direct kernel where it runs */
    assert_int_equal(im2col_geom_init(&g, 4, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1), 0);
    static const char *const want[] = {"implicit gemm", "1x1 gemm", "1x1 strided implicit gemm",
                                       "depthwise direct", "implicit gemm, 2 groups",
                                       "grouped direct, 2 groups"};
    for (int i = 0; i < 6; i++) {
        char buf[96];
        assert_non_null(n->layers[i].ops->algorithm);
        n->layers[i].ops->algorithm(&n->layers[i], buf, sizeof buf);
        assert_string_equal(buf, i == 5 && !depthwise_group_fits(&g) ? want[4] : want[i]);
    }
    net_destroy(n);
}

#ifdef _OPENMP
/* Builds cfg at 1 and 3 threads, runs a training pass in each and compares. */
static void threads_agree(const char *cfg)
{
    int saved = omp_get_max_threads();
    struct net *nets[2];
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t == 0 ? 1 : 3);
        nets[t] = test_net(cfg, 0, 1);
        struct net *n = nets[t];
        for (size_t i = 0; i < net_inputs(n) * (size_t)n->batch; i++)
            n->input[i] = (float)((i * 37) % 11) / 11.f - 0.4f;
        struct pass p;
        net_pass_init(n, &p, 1, 0);
        net_forward(n, &p);
        for (size_t i = 0; i < net_outputs(n) * (size_t)n->batch; i++)
            net_last(n)->doutput[i] = (float)((i * 13) % 7) / 7.f - 0.5f;
        net_zero_grads(n);
        net_backward(n, &p);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(net_output(nets[0]), net_output(nets[1]),
                        sizeof(float) * net_outputs(nets[0]) * (size_t)nets[0]->batch);
    for (int k = 0; k < nets[0]->nparams; k++)
        for (size_t i = 0; nets[0]->params[k].grad && i < nets[0]->params[k].n; i++)
            assert_float_equal(nets[0]->params[k].grad[i], nets[1]->params[k].grad[i], 1e-4);
    net_destroy(nets[0]);
    net_destroy(nets[1]);
}
#endif

/* Output bits do not depend on the thread count; weight gradients only up to summation order.
 * Plain, grouped, depthwise (threads over planes with one lane: batch 1) and dilated. */
static void test_threads_agree(void **state)
{
    (void)state;
#ifdef _OPENMP
    static const char *const cfgs[] = {
        NET(5, 9, 8, 3) "[convolutional]\nfilters=5\nsize=3\npad=1\nactivation=leaky\n",
        NET(5, 9, 8, 4) "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=2\nactivation=leaky\n",
        NET(5, 9, 8, 4) "[convolutional]\nfilters=8\nsize=3\npad=1\ngroups=4\nactivation=leaky\n",
        NET(1, 9, 8, 4) "[convolutional]\nfilters=4\nsize=3\npad=1\ngroups=4\nactivation=leaky\n",
        NET(5, 9, 8, 3) "[convolutional]\nfilters=5\nsize=3\ndilation=2\npad=1\n"
                        "activation=leaky\n",
        /* three lanes (fresh partials written by the first GEMM), then one lane over three
         * threads with im2col, im2row, col2im and the epilogue split (col past 32768 floats) */
        NET(6, 9, 8, 3) "[convolutional]\nfilters=5\nsize=3\npad=1\nactivation=leaky\n"
                        "[convolutional]\nfilters=4\nsize=1\nstride=2\nactivation=relu\n",
        NET(2, 24, 20, 16) "[convolutional]\nfilters=12\nsize=3\npad=1\nactivation=relu\n"
                           "batch_normalize=1\n"
                           "[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=leaky\n",
    };
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++)
        threads_agree(cfgs[c]);
#else
    skip();
#endif
}

static void test_cfg_errors(void **state)
{
    (void)state;
    test_net_fails(NET(2, 8, 8, 1) "[convolutional]\nfilters=0\n",
                   "test.cfg:7: [convolutional] filters=0: out of range");
    test_net_fails(NET(2, 8, 8, 1) "[convolutional]\nsize=0\n", "[convolutional] size=0: out of");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\nstride=-1\n", "[conv] stride=-1: out of range");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\npadding=-2\n", "[conv] padding=-2: out of range");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\npad=2\n", "[conv] pad=2: out of range");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\nbatch_normalize=yes\n", "batch_normalize=yes");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\nactivation=lekay\n",
                   "[conv] activation=lekay: unknown value");
    test_net_fails(NET(2, 8, 8, 1) "[conv]\ninit=glorot\n", "[conv] init=glorot");
    test_net_fails(NET(2, 3, 8, 1) "[convolutional]\nsize=5\n",
                   "test.cfg:6: [convolutional]: a 5x5 kernel does not fit the 3x8 input with "
                   "padding 0x0 (height x width)");
    test_net_fails(NET(2, 3, 3, 1) "[convolutional]\nsize=6\npadding=1\n",
                   "a 6x6 kernel does not fit the 3x3 input with padding 1x1 (height x width)");
    /* The dilated extent, non-square kernels and padding. */
    test_net_fails(NET(2, 6, 6, 1) "[convolutional]\nsize=3\ndilation=3\n",
                   "test.cfg:6: [convolutional]: a 3x3 kernel (dilation 3: extent 7x7) does not "
                   "fit the 6x6 input with padding 0x0 (height x width)");
    test_net_fails(NET(2, 6, 6, 1) "[convolutional]\nsize=3\ndilation=3\npadding_x=1\n",
                   "(dilation 3: extent 7x7) does not fit the 6x6 input with padding 0x1");
    test_net_fails(NET(2, 8, 6, 1) "[convolutional]\nsize_x=9\nsize_y=1\npadding_y=4\n",
                   "a 1x9 kernel does not fit the 8x6 input with padding 4x0 (height x width)");
    test_net_fails(NET(2, 8, 6, 1) "[conv]\nsize_y=11\npadding=1\nstride_y=2\n",
                   "a 11x1 kernel does not fit the 8x6 input with padding 1x1");
    /* Groups must divide both the input channels and the filters. */
    test_net_fails(NET(2, 8, 8, 4) "[convolutional]\nfilters=6\ngroups=3\n",
                   "test.cfg:8: [convolutional] groups=3: the input's 4 channels and filters=6 "
                   "must both be multiples of it");
    test_net_fails(NET(2, 8, 8, 4) "[conv]\nfilters=6\ngroups=4\n",
                   "[conv] groups=4: the input's 4 channels and filters=6 must both be");
    test_net_fails(NET(2, 8, 8, 4) "[conv]\ngroups=0\n", "[conv] groups=0: out of range");
    test_net_fails(NET(2, 8, 8, 4) "[conv]\ndilation=0\n", "[conv] dilation=0: out of range");
    test_net_fails(NET(2, 8, 8, 4) "[conv]\ndilation=5000\n", "[conv] dilation=5000: out of");
    test_net_fails(NET(2, 8, 8, 4) "[conv]\nsize_x=0\n", "[conv] size_x=0: out of range");
    test_net_fails(NET(2, 8, 8, 4) "[conv]\nstride_y=0\n", "[conv] stride_y=0: out of range");
    test_net_fails(NET(2, 8, 8, 4) "[conv]\npadding_x=-1\n", "[conv] padding_x=-1: out of");
    test_net_fails(NET(2, 8, 8, 4) "[conv]\nsize_z=3\n", "unknown key 'size_z'");
    test_net_fails(NET(2, 8, 8, 1) "[convolutional]\nfilters=2\nsizee=3\n",
                   "unknown key 'sizee' (did you mean 'size'?)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_and_defaults),
        cmocka_unit_test(test_extended_keys),
        cmocka_unit_test(test_params_and_init),
        cmocka_unit_test(test_forward_backward_by_hand),
        cmocka_unit_test(test_strided_padded_by_hand),
        cmocka_unit_test(test_grouped_by_hand),
        cmocka_unit_test(test_depthwise_by_hand),
        cmocka_unit_test(test_dilated_by_hand),
        cmocka_unit_test(test_non_square_by_hand),
        cmocka_unit_test(test_matches_naive),
        cmocka_unit_test(test_matches_torch),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_gradcheck_mobilenet_block),
        cmocka_unit_test(test_gradcheck_eval_bn),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_fused_matches_reference),
        cmocka_unit_test(test_fold_by_hand),
        cmocka_unit_test(test_batch1_vs_16),
        cmocka_unit_test(test_algorithm_names),
        cmocka_unit_test(test_cfg_errors),
    };
    return cmocka_run_group_tests_name("conv", tests, NULL, NULL);
}
