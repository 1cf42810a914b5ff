/* test_transfer.c - transfer learning and seeing inside, at the library level: freezing (weights,
 * batch-norm statistics and momentum bit-identical; no backward below the cut), lr_mult, partial
 * files, loading into a cfg with another head, features, class activation maps, DOT graphs. */
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

#include "core/rng.h"
#include "core/strbuf.h"
#include "gradcheck.h"
#include "net/dot.h"
#include "net/inspect.h"
#include "net/net.h"
#include "net/optimizer.h"
#include "net/transfer.h"
#include "net/weights.h"

#include "fixture.h"

#define HEAD                                                                                       \
    "[net]\nbatch=4\nheight=6\nwidth=6\nchannels=2\nmomentum=0.9\ndecay=0.01\n"                    \
    "learning_rate=0.1\nbn_style=torch\n"
/* 0 conv bn, 1 conv bn, 2 avgpool (global), 3 connected, 4 softmax */
#define BODY(extra1, head)                                                                         \
    "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"              \
    "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n" extra1      \
    "[avgpool]\n[connected]\noutput=" head "\nactivation=linear\n[softmax]\n"

static void fill(struct net *n, uint64_t seed)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (size_t i = 0; i < net_inputs(n) * (size_t)n->batch; i++)
        n->input[i] = (float)cn_rng_uniform(&r) * 2 - 1;
    size_t k = net_outputs(n);
    memset(n->truth, 0, sizeof(float) * k * (size_t)n->batch);
    for (int b = 0; b < n->batch; b++)
        n->truth[(size_t)b * k + (size_t)b % k] = 1;
}

static void step(struct net *n, struct optimizer *o, uint64_t seed)
{
    struct pass p;
    fill(n, seed);
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    net_backward(n, &p);
    optimizer_step(o, n, 0.1f);
}

/* A copy of the parameter slab. */
static float *snapshot(const struct net *n)
{
    float *s = malloc(sizeof(float) * n->nparam_floats);
    memcpy(s, n->param_slab, sizeof(float) * n->nparam_floats);
    return s;
}

/* Whether every parameter of layer i is bit-identical to the snapshot. */
static int layer_same(const struct net *n, const float *snap, int i)
{
    for (int k = 0; k < n->nparams; k++) {
        const struct param *p = &n->params[k];
        if (p->layer == i && memcmp(p->data, snap + (p->data - n->param_slab), 4 * p->n))
            return 0;
    }
    return 1;
}

static int state_zero(const struct net *n, struct optimizer *o, int i)
{
    size_t len;
    const float *st = optimizer_state(o, &len);
    for (int k = 0; k < n->nparams; k++) {
        const struct param *p = &n->params[k];
        for (size_t j = 0; p->layer == i && j < p->n; j++)
            if (st[p->data - n->param_slab + (ptrdiff_t)j] != 0)
                return 0;
    }
    return 1;
}

static void test_freeze_prefix(void **state)
{
    (void)state;
    struct net *n = test_net(HEAD BODY("", "3"), 0, 1);
    cn_error e;
    struct optimizer *o;
    assert_int_equal(net_freeze(n, 1, &e), 0);
    assert_int_equal(n->lowest_trainable, 1);
    assert_null(n->layers[1].dinput);
    assert_true(n->layers[0].frozen && !n->layers[1].frozen && !n->layers[2].frozen);
    assert_int_equal(optimizer_create(&o, n, &e), 0);
    float *before = snapshot(n);
    for (int s = 0; s < 3; s++)
        step(n, o, 10 + (uint64_t)s);
    /* weights, biases, scales and both rolling statistics: bit for bit; no momentum */
    assert_true(layer_same(n, before, 0));
    assert_true(state_zero(n, o, 0));
    assert_false(layer_same(n, before, 1));
    assert_false(layer_same(n, before, 3));
    assert_false(state_zero(n, o, 3));
    /* below the cut no backward runs: the frozen layer's gradients stay zero before the step */
    struct pass p;
    fill(n, 99);
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    net_backward(n, &p);
    for (int k = 0; k < n->nparams; k++)
        for (size_t j = 0; n->params[k].layer == 0 && n->params[k].grad && j < n->params[k].n; j++)
            assert_true(n->params[k].grad[j] == 0.f);
    /* the frozen layer ran in inference mode: its training-pass output is the inference one */
    size_t out = shape_size(n->layers[0].out) * (size_t)n->batch;
    float *train_out = malloc(sizeof(float) * out);
    memcpy(train_out, n->layers[0].output, sizeof(float) * out);
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    assert_memory_equal(train_out, n->layers[0].output, sizeof(float) * out);
    free(train_out);
    free(before);
    optimizer_destroy(o);
    net_destroy(n);
}

/* freeze=1 in the middle: the layer keeps its values, the gradient flows through it below. */
static void test_freeze_key_middle(void **state)
{
    (void)state;
    struct net *n = test_net(HEAD "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=relu\n"
                                  "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\n"
                                  "activation=leaky\nfreeze=1\n"
                                  "[avgpool]\n[connected]\noutput=3\nactivation=linear\n"
                                  "[softmax]\n",
                             0, 1);
    cn_error e;
    struct optimizer *o;
    assert_int_equal(net_freeze(n, 0, &e), 0);
    assert_int_equal(n->lowest_trainable, 0);
    assert_non_null(n->layers[1].dinput);
    assert_int_equal(optimizer_create(&o, n, &e), 0);
    float *before = snapshot(n);
    for (int s = 0; s < 2; s++)
        step(n, o, 20 + (uint64_t)s);
    assert_true(layer_same(n, before, 1));
    assert_true(state_zero(n, o, 1));
    assert_false(layer_same(n, before, 0));
    free(before);
    optimizer_destroy(o);
    net_destroy(n);
}

static void test_freeze_everything_fails(void **state)
{
    (void)state;
    struct net *n = test_net(HEAD BODY("", "3"), 0, 1);
    cn_error e;
    assert_int_equal(net_freeze(n, 4, &e), -1);
    assert_non_null(strstr(e.msg, "every layer with parameters is frozen"));
    net_destroy(n);
    /* a prefix without the head is fine */
    n = test_net(HEAD BODY("", "3"), 0, 1);
    assert_int_equal(net_freeze(n, 3, &e), 0);
    assert_int_equal(n->lowest_trainable, 3);
    net_destroy(n);
}

/* lr_mult (or learning_rate=) 0.5 on the head halves its SGD step; the trunk's is unchanged. */
static void test_lr_mult(void **state)
{
    (void)state;
    static const char *const keys[] = {"lr_mult=0.5\n", "learning_rate=0.5\n"};
    for (int v = 0; v < 2; v++) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg,
                 "%s[connected]\noutput=5\nactivation=relu\n[connected]\n"
                 "output=3\nactivation=linear\n%s[softmax]\n",
                 "[net]\nbatch=4\nheight=2\nwidth=2\nchannels=2\nmomentum=0\ndecay=0\n", keys[v]);
        struct net *a = test_net("[net]\nbatch=4\nheight=2\nwidth=2\nchannels=2\nmomentum=0\n"
                                 "decay=0\n[connected]\noutput=5\nactivation=relu\n[connected]\n"
                                 "output=3\nactivation=linear\n[softmax]\n",
                                 0, 1);
        struct net *b = test_net(cfg, 0, 1);
        assert_float_equal(b->layers[1].lr_mult, 0.5, 0);
        struct optimizer *oa, *ob;
        cn_error e;
        assert_int_equal(optimizer_create(&oa, a, &e), 0);
        assert_int_equal(optimizer_create(&ob, b, &e), 0);
        float *sa = snapshot(a);
        step(a, oa, 5);
        step(b, ob, 5);
        for (int k = 0; k < a->nparams; k++) {
            const struct param *pa = &a->params[k], *pb = &b->params[k];
            float scale = pa->layer == 1 ? .5f : 1.f;
            for (size_t j = 0; j < pa->n; j++) {
                float w0 = sa[pa->data - a->param_slab + (ptrdiff_t)j];
                float da = pa->data[j] - w0, db = pb->data[j] - w0;
                assert_float_equal(db, scale * da, 1e-7 + 1e-5 * fabs(da));
            }
        }
        assert_true(memcmp(a->param_slab, b->param_slab, 4 * a->nparam_floats) != 0);
        free(sa);
        optimizer_destroy(oa);
        optimizer_destroy(ob);
        net_destroy(a);
        net_destroy(b);
    }
    test_net_fails("[net]\nbatch=1\nheight=1\nwidth=1\nchannels=1\n[connected]\noutput=1\n"
                   "lr_mult=2\nlearning_rate=2\n",
                   "same multiplier");
}

static char tmpdir[] = "/tmp/cfgnet_transfer_XXXXXX";

static const char *tmp(const char *name)
{
    return fx_path(tmpdir, name);
}

/* partial: header with seen 0, then exactly layers 0..N-1's tensors. */
static void test_partial(void **state)
{
    (void)state;
    struct net *n = test_net(HEAD BODY("", "3"), 0, 0);
    cn_error e;
    n->seen = 12345;
    assert_int_equal(transfer_save_partial(n, 2, tmp("p.weights"), &e), 0);
    FILE *f = fopen(tmp("p.weights"), "rb");
    assert_non_null(f);
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t floats = 0;
    for (int k = 0; k < n->nparams; k++)
        if (n->params[k].layer < 2)
            floats += n->params[k].n;
    /* conv 3@3x3x2 + bn: 3*4 + 54; conv 4@3x3x3 + bn: 4*4 + 108 */
    assert_int_equal(floats, 66 + 124);
    assert_int_equal(len, 20 + 4 * floats);
    int32_t v[3];
    uint64_t seen;
    memcpy(v, buf, 12);
    memcpy(&seen, buf + 12, 8);
    assert_true(v[0] == 0 && v[1] == 2 && v[2] == 0 && seen == 0);
    const unsigned char *at = buf + 20;
    for (int k = 0; k < n->nparams && n->params[k].layer < 2; k++) {
        assert_memory_equal(at, n->params[k].data, 4 * n->params[k].n);
        at += 4 * n->params[k].n;
    }
    assert_int_equal(transfer_save_partial(n, 6, tmp("q.weights"), &e), -1);
    assert_non_null(strstr(e.msg, "has 5"));
    net_destroy(n);
}

struct notices {
    char text[2048];
    int n;
};

static void collect(void *ctx, const char *line)
{
    struct notices *s = ctx;
    s->n++;
    strncat(s->text, line, sizeof s->text - strlen(s->text) - 2);
    strcat(s->text, "\n");
}

static void assert_layer_equal(const struct net *a, const struct net *b, int i, int equal)
{
    for (int k = 0; k < a->nparams; k++)
        if (a->params[k].layer == i)
            assert_int_equal(!memcmp(a->params[k].data, b->params[k].data, 4 * a->params[k].n),
                             equal);
}

/* A 10-class file into a 5-class cfg: with the source cfg, the head is re-initialised and named;
 * without it, a partial file loads as a prefix. */
static void test_new_head(void **state)
{
    (void)state;
    fx_write_text(tmp("ten.cfg"), HEAD "seed=7\n" BODY("", "10"));
    fx_write_text(tmp("five.cfg"), HEAD "seed=3\n" BODY("", "5"));
    cn_error e;
    struct net *ten, *five, *fresh;
    assert_int_equal(net_create(&ten, tmp("ten.cfg"), 0, 0, &e), 0);
    assert_int_equal(net_create(&five, tmp("five.cfg"), 0, 0, &e), 0);
    assert_int_equal(net_create(&fresh, tmp("five.cfg"), 0, 0, &e), 0);
    ten->seen = 640;
    assert_int_equal(weights_save(ten, tmp("ten.weights"), &e), 0);
    assert_int_equal(weights_load(five, tmp("ten.weights"), &e), -1); /* sizes differ */
    struct notices s = {{0}, 0};
    int reinit;
    if (transfer_load(five, tmp("ten.weights"), tmp("ten.cfg"), collect, &s, &reinit, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(reinit, 1);
    assert_int_equal(s.n, 1);
    assert_non_null(strstr(s.text, "layer 3 [connected]"));
    assert_non_null(strstr(s.text, "re-initialised"));
    assert_true(five->seen == 0);
    for (int i = 0; i < 2; i++)
        assert_layer_equal(five, ten, i, 1);
    assert_layer_equal(five, fresh, 3, 1);
    /* without the source cfg: a partial file of the trunk loads as a prefix */
    assert_int_equal(transfer_save_partial(ten, 3, tmp("trunk.weights"), &e), 0);
    struct net *five2;
    assert_int_equal(net_create(&five2, tmp("five.cfg"), 0, 0, &e), 0);
    s = (struct notices){{0}, 0};
    assert_int_equal(transfer_load(five2, tmp("trunk.weights"), NULL, collect, &s, &reinit, &e), 0);
    assert_int_equal(reinit, 1);
    assert_non_null(strstr(s.text, "layer 3 [connected] (line"));
    assert_layer_equal(five2, ten, 1, 1);
    /* ... and the whole 10-class file cannot be matched without it */
    assert_int_equal(transfer_load(five2, tmp("ten.weights"), NULL, collect, &s, &reinit, &e), -1);
    assert_non_null(strstr(e.msg, "-weights_cfg"));
    net_destroy(ten);
    net_destroy(five);
    net_destroy(five2);
    net_destroy(fresh);
}

static void test_features_pool(void **state)
{
    (void)state;
    struct net *n = test_net(HEAD BODY("", "3"), 0, 0);
    fill(n, 3);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward_upto(n, &p, 1);
    const struct layer *l = &n->layers[1];
    assert_int_equal(inspect_feature_count(l), 4);
    float f[4];
    inspect_features(l, 2, f);
    for (int c = 0; c < 4; c++) {
        double s = 0;
        for (int j = 0; j < 36; j++)
            s += l->output[2 * 144 + c * 36 + j];
        assert_float_equal(f[c], s / 36, 1e-6);
    }
    /* a 1x1 layer is passed through as it is */
    net_forward(n, &p);
    float g[3];
    inspect_features(&n->layers[3], 1, g);
    assert_memory_equal(g, n->layers[3].output + 3, sizeof g);
    net_destroy(n);
}

/* CAM_k = sum_c W[k][c] A_c, and its mean plus the bias is the class score. */
static void test_cam_connected(void **state)
{
    (void)state;
    struct net *n = test_net(HEAD "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=relu\n"
                                  "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
                                  "[avgpool]\n[dropout]\n[connected]\noutput=3\n"
                                  "activation=linear\n[softmax]\n",
                             0, NET_KEEP_OUTPUTS); /* cam reads inner layers after the pass */
    struct cam_head h;
    cn_error e;
    if (cam_find_head(n, &h, &e))
        fail_msg("%s", e.msg);
    assert_true(h.maps == 1 && h.pool == 2 && h.classifier == 4 && h.classes == 3);
    assert_true(h.channels == 4 && h.h == 6 && h.w == 6);
    fill(n, 4);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    const float *W = NULL, *bias = NULL;
    for (int k = 0; k < n->nparams; k++)
        if (n->params[k].layer == 4)
            *(strcmp(n->params[k].name, "weights") ? &bias : &W) = n->params[k].data;
    float map[36];
    for (int b = 0; b < 4; b++)
        for (int k = 0; k < 3; k++) {
            cam_compute(n, &h, b, k, map);
            double mean = 0;
            for (int j = 0; j < 36; j++) {
                double want = 0;
                for (int c = 0; c < 4; c++)
                    want += W[k * 4 + c] * n->layers[1].output[b * 144 + c * 36 + j];
                assert_float_equal(map[j], want, 1e-5);
                mean += map[j] / 36;
            }
            assert_float_equal(mean + bias[k], n->layers[4].output[b * 3 + k], 1e-5);
        }
    net_destroy(n);
}

static void test_cam_conv_classifier_and_errors(void **state)
{
    (void)state;
    struct net *n = test_net(HEAD "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                                  "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n"
                                  "[avgpool]\n[softmax]\n",
                             0, NET_KEEP_OUTPUTS);
    struct cam_head h;
    cn_error e;
    assert_int_equal(cam_find_head(n, &h, &e), 0);
    assert_true(h.maps == 1 && h.classifier == -1 && h.classes == 3);
    fill(n, 5);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    float map[36];
    cam_compute(n, &h, 1, 2, map);
    assert_memory_equal(map, n->layers[1].output + 108 + 72, sizeof map);
    net_destroy(n);
    n = test_net(HEAD "[convolutional]\nfilters=4\nsize=3\nactivation=relu\n[connected]\n"
                      "output=3\nactivation=linear\n[softmax]\n",
                 0, 0);
    assert_int_equal(cam_find_head(n, &h, &e), -1);
    assert_non_null(strstr(e.msg, "no global average pooling"));
    net_destroy(n);
    n = test_net(HEAD "[convolutional]\nfilters=4\nsize=3\nactivation=relu\n[avgpool]\nsize=2\n"
                      "stride=2\n[connected]\noutput=3\nactivation=linear\n[softmax]\n",
                 0, 0);
    assert_int_equal(cam_find_head(n, &h, &e), -1);
    net_destroy(n);
}

/* Routes, shortcuts and an auxiliary head as DOT edges with shapes. */
static void test_dot(void **state)
{
    (void)state;
    fx_write_text(tmp("g.cfg"),
               "[net]\nbatch=1\nheight=8\nwidth=8\nchannels=3\n"
               "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"     /* 0 */
               "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n"   /* 1 */
               "[shortcut]\nfrom=-2\nactivation=relu\n"                           /* 2 */
               "[avgpool]\n[connected]\noutput=5\nactivation=linear\n[softmax]\n" /* 3-5 aux */
               "[route]\nlayers=2,0\n"                                            /* 6 */
               "[convolutional]\nfilters=5\nsize=1\nactivation=linear\n"          /* 7 */
               "[avgpool]\n[softmax]\n");                                         /* 8, 9 */
    struct net *n;
    cn_error e;
    if (net_create(&n, tmp("g.cfg"), 1, 0, &e))
        fail_msg("%s", e.msg);
    struct strbuf b = {0};
    assert_int_equal(dot_write(n, tmp("g.cfg"), &b, &e), 0);
    char *t = strbuf_take(&b);
    assert_non_null(strstr(t, "input -> L0 [label=\"3x8x8\"]"));
    assert_non_null(strstr(t, "L1 -> L2 [label=\"4x8x8\"]"));
    assert_non_null(strstr(t, "L0 -> L2 [label=\"4x8x8\", style=dashed"));
    assert_non_null(strstr(t, "L2 -> L6 [label=\"4x8x8\"]"));
    assert_non_null(strstr(t, "L0 -> L6 [label=\"4x8x8\"]"));
    assert_non_null(strstr(t, "L4 -> L5 [label=\"5x1x1\"]"));
    assert_null(strstr(t, "L5 -> L6")); /* the aux head ends in its loss */
    assert_non_null(strstr(t, "L5 [shape=octagon"));
    assert_non_null(strstr(t, "L6 [shape=trapezium"));
    free(t);
    net_destroy(n);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const files[] = {"p.weights",   "ten.cfg",       "five.cfg",
                                        "ten.weights", "trunk.weights", "g.cfg"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(tmp(files[i]));
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freeze_prefix),
        cmocka_unit_test(test_freeze_key_middle),
        cmocka_unit_test(test_freeze_everything_fails),
        cmocka_unit_test(test_lr_mult),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_new_head),
        cmocka_unit_test(test_features_pool),
        cmocka_unit_test(test_cam_connected),
        cmocka_unit_test(test_cam_conv_classifier_and_errors),
        cmocka_unit_test(test_dot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
