/* test_layer_parity.c - every layer type against PyTorch, one small net per case: output, input
 * gradient, every trainable parameter's gradient, the loss of loss layers and the rolling
 * statistics a batch norm leaves, within 1e-4 of max |torch| (harness/torchref.h; PyTorch's side
 * is test/ref/torch_layer.py, float64, all cases in one process).
 *
 * PyTorch's counterpart of each case: [convolutional] F.conv2d (+ F.batch_norm) + activation;
 * [connected] F.linear (+ batch norm); [batchnorm] F.batch_norm for bn_style=torch, and for
 * Darknet's style (eps on the standard deviation, unbiased variance) the formula written in torch
 * ops, train and eval; pooling F.max_pool2d / F.avg_pool2d (ceil_mode, count_include_pad,
 * overlapping, stride 1 padded) and the mean over H x W for the global [avgpool]; [dropout] the
 * identity at eval and, in training, x * mask / (1 - p) on our mask (the drop rate itself is
 * test_dropout's); [softmax] F.softmax, and with targets F.cross_entropy (label_smoothing,
 * temperature, groups, loss_weight); [cost] the sum of squares / L1 it implements; [crop] the
 * centre window at inference (training crops are random); [route] torch.cat and chunk (groups /
 * group_id); [shortcut] alpha * prev + beta * from, with Darknet's rule for a larger or smaller
 * from= written as strided slices; [scale_channels] x * sigmoid(gate); [activation] every
 * activation of kernels/activations.h (F.selu's constants are more precise than Darknet's 1.0507
 * and 1.6732 that we keep: 4e-5). Conv variants are also test_conv's (without batch norm); pooling
 * and LRN have test_maxpool / test_avgpool / test_lrn's cases. Skipped with a message when
 * /usr/bin/python3 cannot import torch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "torchref.h"

#define TOL 1e-4

#define NET(b, h, w, c) "[net]\nbatch=" #b "\nheight=" #h "\nwidth=" #w "\nchannels=" #c "\n"
#define TNET(b, h, w, c) NET(b, h, w, c) "bn_style=torch\n"
#define CASE(nm, c, s, tr, ...)                                                                    \
    {                                                                                              \
        .name = nm, .cfg = c, .spec = s, .train = tr, __VA_ARGS__                                  \
    }

/* [convolutional] with and without batch norm, both styles, both modes; groups, depthwise,
 * dilation, non-square kernels, strides and padding. */
static const struct torchref_case conv_cases[] = {
    CASE("conv groups=2 bn torch train",
         TNET(3, 6, 5, 4) "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=2\nbatch_normalize="
                          "1\nactivation=leaky\n",
         "conv 3 4 6 5 F=6 groups=2 kh=3 kw=3 sh=1 sw=1 ph=1 pw=1 bn=1 act=leaky train=1 "
         "style=torch",
         1),
    CASE("conv groups=2 bn torch eval",
         TNET(3, 6, 5, 4) "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=2\nbatch_normalize="
                          "1\nactivation=leaky\n",
         "conv 3 4 6 5 F=6 groups=2 kh=3 kw=3 sh=1 sw=1 ph=1 pw=1 bn=1 act=leaky train=0 "
         "style=torch",
         0),
    CASE("conv depthwise/2 bn darknet train",
         NET(2, 7, 6,
             3) "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\ngroups=3\nbatch_normalize=1\n"
                "activation=swish\n",
         "conv 2 3 7 6 F=3 groups=3 kh=3 kw=3 sh=2 sw=2 ph=1 pw=1 bn=1 act=swish train=1", 1),
    CASE("conv depthwise/2 bn darknet eval",
         NET(2, 7, 6,
             3) "[convolutional]\nfilters=3\nsize=3\nstride=2\npad=1\ngroups=3\nbatch_normalize=1\n"
                "activation=swish\n",
         "conv 2 3 7 6 F=3 groups=3 kh=3 kw=3 sh=2 sw=2 ph=1 pw=1 bn=1 act=swish train=0", 0),
    CASE("conv 2x3 dil 2 strides 1x2 bn",
         TNET(2, 8, 9, 2) "[convolutional]\nfilters=4\nsize_x=3\nsize_y=2\nstride_x=2\nstride_y="
                          "1\npadding_x=1\n"
                          "padding_y=2\ndilation=2\nbatch_normalize=1\nactivation=mish\n",
         "conv 2 2 8 9 F=4 kh=2 kw=3 sh=1 sw=2 ph=2 pw=1 dil=2 bn=1 act=mish train=1 style=torch",
         1),
    CASE("conv 1x7 pad 0x3 relu",
         NET(2, 5, 9, 3) "[convolutional]\nfilters=4\nsize_x=7\nsize_y=1\npad=1\nactivation=relu\n",
         "conv 2 3 5 9 F=4 kh=1 kw=7 sh=1 sw=1 ph=0 pw=3 act=relu", 1),
    CASE("conv 3x3/2 logistic",
         NET(2, 7, 7, 2) "[convolutional]\nfilters=3\nsize=3\nstride=2\nactivation=logistic\n",
         "conv 2 2 7 7 F=3 kh=3 kw=3 sh=2 sw=2 ph=0 pw=0 act=logistic", 1),
};

/* [connected], [batchnorm]. */
static const struct torchref_case dense_cases[] = {
    CASE("connected tanh", NET(4, 2, 2, 3) "[connected]\noutput=5\nactivation=tanh\n",
         "connected 4 3 2 2 O=5 act=tanh", 1),
    CASE("connected bn torch train",
         TNET(4, 2, 2, 3) "[connected]\noutput=5\nbatch_normalize=1\nactivation=leaky\n",
         "connected 4 3 2 2 O=5 bn=1 act=leaky train=1 style=torch", 1),
    CASE("connected bn torch eval",
         TNET(4, 2, 2, 3) "[connected]\noutput=5\nbatch_normalize=1\nactivation=leaky\n",
         "connected 4 3 2 2 O=5 bn=1 act=leaky train=0 style=torch", 0),
    CASE("connected bn darknet train",
         NET(4, 1, 3, 2) "[connected]\noutput=3\nbatch_normalize=1\nactivation=logistic\n",
         "connected 4 2 1 3 O=3 bn=1 act=logistic train=1", 1),
    CASE("batchnorm torch train", TNET(3, 3, 5, 4) "[batchnorm]\n",
         "batchnorm 3 4 3 5 train=1 style=torch", 1),
    CASE("batchnorm torch eval", TNET(3, 3, 5, 4) "[batchnorm]\n",
         "batchnorm 3 4 3 5 train=0 style=torch", 0),
    CASE("batchnorm darknet train", NET(3, 3, 5, 4) "[batchnorm]\n", "batchnorm 3 4 3 5 train=1",
         1),
    CASE("batchnorm darknet eval", NET(3, 3, 5, 4) "[batchnorm]\n", "batchnorm 3 4 3 5 train=0", 0),
};

/* Pooling, dropout, crop. */
static const struct torchref_case pool_cases[] = {
    CASE("maxpool 3/2 ceil_mode",
         NET(2, 8, 7, 2) "[maxpool]\nsize=3\nstride=2\npadding=0\nceil_mode=1\n",
         "maxpool 2 2 8 7 3 2 2 0 1", 1),
    CASE("maxpool 3/1 padded", NET(2, 6, 7, 2) "[maxpool]\nsize=3\nstride=1\n",
         "maxpool 2 2 6 7 3 1 1 2 0", 1),
    CASE("maxpool 3/2 overlapping", NET(2, 9, 8, 3) "[maxpool]\nsize=3\nstride=2\npadding=0\n",
         "maxpool 2 3 9 8 3 2 2 0 0", 1),
    CASE("avgpool 3/1 pad 1", NET(2, 7, 6, 3) "[avgpool]\nsize=3\nstride=1\npadding=1\n",
         "avgpool 2 3 7 6 3 1 1 1 0 1", 1),
    CASE("avgpool 3/2 ceil count_pad=0",
         NET(2, 8, 9, 2) "[avgpool]\nsize=3\nstride=2\npadding=1\nceil_mode=1\ncount_pad=0\n",
         "avgpool 2 2 8 9 3 2 2 1 1 0", 1),
    CASE("avgpool 5/3 (GoogLeNet aux)", NET(2, 14, 14, 2) "[avgpool]\nsize=5\nstride=3\n",
         "avgpool 2 2 14 14 5 3 3 0 0 1", 1),
    CASE("avgpool global", NET(2, 4, 5, 3) "[avgpool]\n", "gavgpool 2 3 4 5", 1),
    CASE("dropout p=0.3 eval", NET(2, 4, 5, 3) "[dropout]\nprobability=0.3\n",
         "dropout 2 3 4 5 p=0.3 train=0", 0),
    CASE("dropout p=0.3 train", NET(2, 4, 5, 3) "[dropout]\nprobability=0.3\n",
         "dropout 2 3 4 5 p=0.3 train=1", 1, .send_mask = 1),
    CASE("crop 5x6 centre eval", NET(2, 8, 9, 3) "[crop]\ncrop_height=5\ncrop_width=6\n",
         "crop 2 3 8 9 ch=5 cw=6", 0),
    CASE("crop 4x3 noadjust eval",
         NET(2, 7, 6, 2) "[crop]\ncrop_height=4\ncrop_width=3\nnoadjust=1\n",
         "crop 2 2 7 6 ch=4 cw=3 noadjust=1", 0),
};

/* Loss layers: the softmax's cross-entropy and the cost layer. */
static const struct torchref_case loss_cases[] = {
    CASE("softmax, no targets", NET(3, 1, 1, 10) "[softmax]\n", "softmax 3 10 1 1", 1),
    CASE("softmax + cross-entropy", NET(4, 1, 1, 10) "[softmax]\n", "softmax 4 10 1 1 truth=1", 1,
         .truth = TORCHREF_ONE_HOT, .classes = 10),
    CASE("softmax + CE label smoothing 0.1", NET(4, 1, 1, 10) "[softmax]\n",
         "softmax 4 10 1 1 truth=1 eps=0.1", 1, .truth = TORCHREF_ONE_HOT, .classes = 10,
         .smooth = 0.1f),
    CASE("softmax groups=2 T=2 w=0.3",
         NET(3, 2, 3, 2) "[softmax]\ngroups=2\ntemperature=2\nloss_weight=0.3\n",
         "softmax 3 2 2 3 truth=1 groups=2 T=2 w=0.3", 1, .truth = TORCHREF_ONE_HOT, .classes = 6),
    CASE("cost sse", NET(2, 2, 2, 3) "[cost]\n", "cost 2 3 2 2", 1, .truth = TORCHREF_VALUES),
    CASE("cost masked scale=0.5", NET(2, 2, 2, 3) "[cost]\ntype=masked\nscale=0.5\n",
         "cost 2 3 2 2 type=masked scale=0.5", 1, .truth = TORCHREF_MASKED),
    CASE("cost L1 scale=2", NET(2, 2, 2, 3) "[cost]\ntype=L1\nscale=2\n",
         "cost 2 3 2 2 type=L1 scale=2", 1, .truth = TORCHREF_VALUES),
};

#define ROUTE_NET                                                                                  \
    NET(2, 3, 4, 4)                                                                                \
    "[activation]\nactivation=linear\n[activation]\nactivation=tanh\n"                             \
    "[route]\nlayers=0,1\n[activation]\nactivation=logistic\n"
#define DOWN_NET                                                                                   \
    NET(2, 6, 8, 4)                                                                                \
    "[activation]\nactivation=linear\n[route]\nlayers=0\ngroups=2\ngroup_id=0\n"                   \
    "[maxpool]\nsize=2\nstride=2\npadding=0\n"
#define UP_NET                                                                                     \
    NET(2, 6, 8, 4)                                                                                \
    "[activation]\nactivation=linear\n[route]\nlayers=0\ngroups=2\ngroup_id=1\n"                   \
    "[maxpool]\nsize=2\nstride=2\npadding=0\n[route]\nlayers=0\n"                                  \
    "[activation]\nactivation=tanh\n"
#define SE_NET                                                                                     \
    NET(2, 3, 5, 4)                                                                                \
    "[activation]\nactivation=linear\n[avgpool]\n"                                                 \
    "[connected]\noutput=4\nactivation=logistic\n"

/* The graph layers, each in a small net that torch_layer.py's op reproduces as a whole. */
static const struct torchref_case graph_cases[] = {
    CASE("route cat (3 inputs)", ROUTE_NET "[route]\nlayers=0,-1,1\n", "route 2 4 3 4", 1),
    CASE("route groups=2 group_id=1", ROUTE_NET "[route]\nlayers=0,-1,1\ngroups=2\ngroup_id=1\n",
         "route 2 4 3 4 groups=2 group_id=1", 1),
    CASE("shortcut same shape",
         NET(2, 3, 4, 3) "[activation]\nactivation=linear\n"
                         "[activation]\nactivation=tanh\n[shortcut]\nfrom=0\n",
         "shortcut 2 3 3 4", 1),
    CASE("shortcut alpha .5 beta 2 leaky",
         NET(2, 3, 4, 3) "[activation]\nactivation=linear\n[activation]\nactivation=tanh\n"
                         "[shortcut]\nfrom=0\nalpha=0.5\nbeta=2\nactivation=leaky\n",
         "shortcut 2 3 3 4 alpha=0.5 beta=2 act=leaky", 1),
    CASE("shortcut from larger (stride 2)", DOWN_NET "[shortcut]\nfrom=0\nalpha=0.3\n",
         "shortcut 2 4 6 8 alpha=0.3 shape=down", 1),
    CASE("shortcut from smaller (sample 2)",
         UP_NET "[shortcut]\nfrom=2\nalpha=0.7\nbeta=1.5\n"
                "activation=tanh\n",
         "shortcut 2 4 6 8 alpha=0.7 beta=1.5 act=tanh shape=up", 1),
    CASE("scale_channels (SE gate)", SE_NET "[scale_channels]\nfrom=0\n", "scale_channels 2 4 3 5",
         1),
    CASE("scale_channels, swish", SE_NET "[scale_channels]\nfrom=0\nactivation=swish\n",
         "scale_channels 2 4 3 5 act=swish", 1),
};

/* [activation] with every activation; a wider input where the kinks lie beyond +-2. */
#define ACT(name, wide)                                                                            \
    CASE("activation " name, NET(2, 4, 5, 3) "[activation]\nactivation=" name "\n",                \
         "activation 2 3 4 5 act=" name, 1, .range = wide)
static const struct torchref_case act_cases[] = {
    ACT("linear", 0), ACT("relu", 0),    ACT("leaky", 0), ACT("logistic", 0), ACT("tanh", 0),
    ACT("elu", 0),    ACT("selu", 0),    ACT("relie", 0), ACT("ramp", 0),     ACT("plse", 7),
    ACT("stair", 7),  ACT("hardtan", 0), ACT("lhtan", 0), ACT("loggy", 0),    ACT("relu6", 8),
    ACT("swish", 0),  ACT("mish", 0),
};

/* The families, run by one Python process in the group setup. */
static const struct family {
    const struct torchref_case *cases;
    int count;
} families[] = {
#define FAMILY(a)                                                                                  \
    {                                                                                              \
        a, (int)(sizeof a / sizeof *a)                                                             \
    }
    FAMILY(conv_cases), FAMILY(dense_cases), FAMILY(pool_cases),
    FAMILY(loss_cases), FAMILY(graph_cases), FAMILY(act_cases),
#undef FAMILY
};
#define NFAMILIES ((int)(sizeof families / sizeof *families))
#define MAX_CASES 64

struct outcome {
    int rc;             /* torchref_parity's result */
    int bad[MAX_CASES]; /* per case, in family order */
};

static int suite_setup(void **state)
{
    static struct torchref_case all[MAX_CASES];
    static struct outcome out;
    int n = 0;
    for (int f = 0; f < NFAMILIES; f++)
        for (int k = 0; k < families[f].count && n < MAX_CASES; k++)
            all[n++] = families[f].cases[k];
    for (int k = 0; k < MAX_CASES; k++)
        out.bad[k] = 1;
    out.rc = torchref_parity(all, n, 7, TOL, out.bad);
    *state = &out;
    return 0;
}

/* Family f's verdict. */
static void check_family(void **state, int f)
{
    const struct outcome *o = *state;
    if (o->rc == TORCHREF_SKIPPED)
        skip();
    assert_true(o->rc >= 0); /* the script ran and printed every case */
    int first = 0, bad = 0;
    for (int g = 0; g < f; g++)
        first += families[g].count;
    assert_true(first + families[f].count <= MAX_CASES);
    for (int k = 0; k < families[f].count; k++)
        if (o->bad[first + k] && bad++ < 8)
            printf("differs from torch: %s (%s)\n", families[f].cases[k].name,
                   families[f].cases[k].spec);
    assert_int_equal(bad, 0);
}

static void test_conv(void **state)
{
    check_family(state, 0);
}

static void test_connected_batchnorm(void **state)
{
    check_family(state, 1);
}

static void test_pool_dropout_crop(void **state)
{
    check_family(state, 2);
}

static void test_losses(void **state)
{
    check_family(state, 3);
}

static void test_graph_layers(void **state)
{
    check_family(state, 4);
}

static void test_activations(void **state)
{
    check_family(state, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_connected_batchnorm),
        cmocka_unit_test(test_pool_dropout_crop),
        cmocka_unit_test(test_losses),
        cmocka_unit_test(test_graph_layers),
        cmocka_unit_test(test_activations),
    };
    return cmocka_run_group_tests_name("layer_parity", tests, suite_setup, NULL);
}
