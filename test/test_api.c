/* test_api.c - the public C API (include/cfgnet.h) through that header alone: versions, loading
 * from files and strings, a forward pass worked by hand from a weights file written here, batches,
 * pixels and image files, layer outputs, top-k, training steps (SGD and Adam as [net] chooses,
 * labels and one-hot targets, batch changes mid-training), weights round trips, frozen layers
 * (cfgnet_freeze against the cfg's freeze=1), shared layer outputs (CFGNET_SHARE_OUTPUTS), and
 * every kind of bad input: a status, a message naming the problem, the handle unchanged, never a
 * crash. */
#include <math.h>
#include <pthread.h>
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

static char dir[] = "/tmp/cfgnet_api_XXXXXX";

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* Fails the test with the handle's message when a call did not return CFGNET_OK. */
#define OK(net, call)                                                                              \
    do {                                                                                           \
        if ((call) < 0)                                                                            \
            fail_msg("%s: %s", #call, cfgnet_error(net));                                          \
    } while (0)

/* Asserts that call fails and that the message contains want. */
#define FAILS(net, call, want)                                                                     \
    do {                                                                                           \
        assert_int_equal((call), CFGNET_ERROR);                                                    \
        if (!strstr(cfgnet_error(net), (want)))                                                    \
            fail_msg("%s: message '%s' lacks '%s'", #call, cfgnet_error(net), (want));             \
    } while (0)

/* 2 inputs -> 2 linear outputs: y = W x + b. */
static const char linear_cfg[] = "[net]\nbatch=2\nheight=1\nwidth=2\nchannels=1\n"
                                 "[connected]\noutput=2\nactivation=linear\n";

/* Writes a Darknet 0.2.0 .weights file: header, seen, then the floats. */
static void write_weights(const char *path, uint64_t seen, const float *v, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    int32_t head[3] = {0, 2, 0};
    assert_int_equal(fwrite(head, sizeof head, 1, f), 1);
    assert_int_equal(fwrite(&seen, sizeof seen, 1, f), 1);
    assert_int_equal(fwrite(v, sizeof *v, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Reads the floats of a .weights file written by cfgnet (20-byte header). */
static void read_weights(const char *path, float *v, size_t n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 20, SEEK_SET), 0);
    assert_int_equal(fread(v, sizeof *v, n, f), n);
    fclose(f);
}

static void test_version(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", CFGNET_VERSION_MAJOR, CFGNET_VERSION_MINOR,
             CFGNET_VERSION_PATCH);
    assert_string_equal(cfgnet_version(), want);
    assert_int_equal(cfgnet_version_number(), CFGNET_VERSION_NUMBER);
    assert_int_equal(CFGNET_VERSION_NUMBER / 10000, CFGNET_VERSION_MAJOR);
}

/* Every call given a NULL handle returns CFGNET_ERROR; cfgnet_error(NULL) says why. */
static void test_null_handle(void **state)
{
    (void)state;
    float x[4] = {0}, y[4];
    int idx[2], c;
    const char *type;
    unsigned long long seen;
    const char *paths[1] = {"x.png"};
    unsigned char px[4] = {0};
    int labels[2] = {0, 0};
    assert_non_null(strstr(cfgnet_error(NULL), "NULL"));
    assert_int_equal(cfgnet_load(NULL, "cfg/lenet5.cfg", NULL, 0, 0), CFGNET_ERROR);
    assert_int_equal(cfgnet_load_string(NULL, linear_cfg, NULL, NULL, 0, 0), CFGNET_ERROR);
    assert_int_equal(cfgnet_load_weights(NULL, "x"), CFGNET_ERROR);
    assert_int_equal(cfgnet_save_weights(NULL, "x"), CFGNET_ERROR);
    assert_int_equal(cfgnet_batch(NULL), CFGNET_ERROR);
    assert_int_equal(cfgnet_set_batch(NULL, 1), CFGNET_ERROR);
    assert_int_equal(cfgnet_input_shape(NULL, &c, &c, &c), CFGNET_ERROR);
    assert_int_equal(cfgnet_outputs(NULL), CFGNET_ERROR);
    assert_int_equal(cfgnet_layer_count(NULL), CFGNET_ERROR);
    assert_int_equal(cfgnet_layer_shape(NULL, 0, &c, &c, &c), CFGNET_ERROR);
    assert_int_equal(cfgnet_layer_type(NULL, 0, &type), CFGNET_ERROR);
    assert_int_equal(cfgnet_images_seen(NULL, &seen), CFGNET_ERROR);
    assert_int_equal(cfgnet_forward(NULL, x, 1, 1, 1, 2, y, 4), CFGNET_ERROR);
    assert_int_equal(cfgnet_forward_u8(NULL, px, 1, 1, 1, 2, 0, y, 4), CFGNET_ERROR);
    assert_int_equal(cfgnet_forward_files(NULL, paths, 1, y, 4), CFGNET_ERROR);
    assert_int_equal(cfgnet_layer_output(NULL, 0, y, 4), CFGNET_ERROR);
    assert_int_equal(cfgnet_top_k(NULL, 0, 1, idx, y), CFGNET_ERROR);
    assert_int_equal(cfgnet_train_labels(NULL, x, 2, 1, 1, 2, labels, 0.1f, y), CFGNET_ERROR);
    assert_int_equal(cfgnet_train_truth(NULL, x, 2, 1, 1, 2, x, 4, 0.1f, y), CFGNET_ERROR);
    assert_int_equal(cfgnet_freeze(NULL, 1), CFGNET_ERROR);
    cfgnet_free(NULL);
}

/* A handle with nothing loaded says so. */
static void test_empty_handle(void **state)
{
    (void)state;
    cfgnet_net *net = cfgnet_create();
    float x[2] = {0}, y[2];
    assert_string_equal(cfgnet_error(net), "");
    FAILS(net, cfgnet_outputs(net), "cfgnet_outputs: no network loaded");
    FAILS(net, cfgnet_forward(net, x, 1, 1, 1, 2, y, 2), "cfgnet_forward: no network loaded");
    FAILS(net, cfgnet_layer_shape(net, 0, NULL, NULL, NULL), "no network loaded");
    FAILS(net, cfgnet_save_weights(net, "x"), "no network loaded");
    cfgnet_free(net);
}

static void test_load_string_shapes(void **state)
{
    (void)state;
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load_string(net,
                               "[net]\nbatch=8\nsubdivisions=2\nheight=6\nwidth=5\nchannels=3\n"
                               "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                               "[maxpool]\nsize=2\nstride=2\n[connected]\noutput=7\n"
                               "activation=linear\n[softmax]\n",
                               "mem.cfg", NULL, 0, 0));
    assert_int_equal(cfgnet_batch(net), 4); /* batch / subdivisions */
    int c, h, w;
    OK(net, cfgnet_input_shape(net, &c, &h, &w));
    assert_true(c == 3 && h == 6 && w == 5);
    assert_int_equal(cfgnet_layer_count(net), 4);
    assert_int_equal(cfgnet_outputs(net), 7);
    OK(net, cfgnet_layer_shape(net, 0, &c, &h, &w));
    assert_true(c == 4 && h == 6 && w == 5);
    OK(net, cfgnet_layer_shape(net, 1, &c, &h, &w));
    assert_true(c == 4 && h == 3 && w == 3); /* Darknet's maxpool size rule: (6+1-2)/2+1 = 3 */
    const char *type;
    OK(net, cfgnet_layer_type(net, -1, &type));
    assert_string_equal(type, "softmax");
    OK(net, cfgnet_layer_type(net, 0, &type));
    assert_string_equal(type, "convolutional");
    OK(net, cfgnet_layer_type(net, -4, &type));
    assert_string_equal(type, "convolutional");
    OK(net, cfgnet_set_batch(net, 3));
    assert_int_equal(cfgnet_batch(net), 3);
    cfgnet_free(net);
}

static void test_load_file(void **state)
{
    (void)state;
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load(net, "cfg/lenet5.cfg", NULL, 1, 0));
    int c, h, w;
    OK(net, cfgnet_input_shape(net, &c, &h, &w));
    assert_true(c == 1 && h == 28 && w == 28);
    assert_int_equal(cfgnet_outputs(net), 10);
    assert_int_equal(cfgnet_batch(net), 1);
    FAILS(net, cfgnet_load(net, "cfg/no-such.cfg", NULL, 1, 0), "cfg/no-such.cfg");
    FAILS(net, cfgnet_load(net, "cfg/lenet5.cfg", "no-such.weights", 1, 0), "no-such.weights");
    assert_int_equal(cfgnet_outputs(net), 10); /* the loaded net survived both failures */
    cfgnet_free(net);
}

/* A cfg error: the message names the name, line, section, key and value. */
static void test_bad_cfg_string(void **state)
{
    (void)state;
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load_string(net, linear_cfg, "good.cfg", NULL, 0, 0));
    FAILS(net,
          cfgnet_load_string(net,
                             "[net]\nheight=1\nwidth=2\nchannels=1\n[connected]\noutput=2\n"
                             "activation=lekay\n",
                             "bad.cfg", NULL, 0, 0),
          "bad.cfg:7: [connected] activation=lekay");
    assert_non_null(strstr(cfgnet_error(net), "did you mean 'leaky'"));
    FAILS(net,
          cfgnet_load_string(net, "[net]\nheight=1\nwidth=2\nchannels=1\n[nosuch]\n", NULL, NULL, 0,
                             0),
          "<string>:5: unknown section [nosuch]");
    FAILS(net, cfgnet_load_string(net, linear_cfg, "x", NULL, -2, 0), "batch -2");
    FAILS(net, cfgnet_load_string(net, linear_cfg, "x", NULL, 0, 8u), "unknown flags 0x8");
    FAILS(net, cfgnet_load_string(net, NULL, "x", NULL, 0, 0), "cfg text is NULL");
    assert_int_equal(cfgnet_outputs(net), 2); /* still the good net */
    cfgnet_free(net);
}

/* Forward worked by hand: W = [[1, 2], [3, -1]], b = [0.5, -1]; x = (1, 2) gives (5.5, 0), and
 * x = (-1, 4) gives (7.5, -8). */
static void test_forward_by_hand(void **state)
{
    (void)state;
    char wpath[256];
    tmp_path(wpath, sizeof wpath, "linear.weights");
    const float params[6] = {0.5f, -1.f, 1.f, 2.f, 3.f, -1.f}; /* biases, then W row-major */
    write_weights(wpath, 42, params, 6);
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load_string(net, linear_cfg, "linear.cfg", wpath, 0, 0));
    unsigned long long seen;
    OK(net, cfgnet_images_seen(net, &seen));
    assert_int_equal(seen, 42);
    const float x[4] = {1, 2, -1, 4};
    float y[4], z[4];
    OK(net, cfgnet_forward(net, x, 2, 1, 1, 2, y, 4));
    assert_true(y[0] == 5.5f && y[1] == 0.f && y[2] == 7.5f && y[3] == -8.f);
    assert_int_equal(cfgnet_layer_output(net, 0, z, 4), 2);
    assert_memory_equal(y, z, sizeof y);
    OK(net, cfgnet_forward(net, x + 2, 1, 1, 1, 2, NULL, 0)); /* output optional */
    assert_int_equal(cfgnet_layer_output(net, -1, z, 2), 1);
    assert_true(z[0] == 7.5f && z[1] == -8.f);
    int idx[2];
    float v[2];
    assert_int_equal(cfgnet_top_k(net, 0, 5, idx, v), 2); /* k capped at the outputs */
    assert_true(idx[0] == 0 && idx[1] == 1 && v[0] == 7.5f && v[1] == -8.f);
    cfgnet_free(net);
}

/* Wrong shapes and sizes: a status and a message naming the numbers; nothing runs. */
static void test_bad_shapes(void **state)
{
    (void)state;
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load(net, "cfg/lenet5.cfg", NULL, 2, 0));
    float *x = calloc(3 * 28 * 28, sizeof *x), y[30];
    FAILS(net, cfgnet_layer_output(net, 0, y, 30), "no pass has run");
    FAILS(net, cfgnet_top_k(net, 0, 1, (int[1]){0}, NULL), "no pass has run");
    FAILS(net, cfgnet_forward(net, x, 1, 3, 28, 28, y, 10),
          "the images are 3x28x28 (channels x height x width), but the network takes 1x28x28");
    FAILS(net, cfgnet_forward(net, x, 1, 1, 32, 32, y, 10), "takes 1x28x28");
    FAILS(net, cfgnet_forward(net, x, 3, 1, 28, 28, y, 30), "3 images, but a pass takes 1 to 2");
    FAILS(net, cfgnet_forward(net, x, 0, 1, 28, 28, y, 30), "0 images");
    FAILS(net, cfgnet_forward(net, x, 2, 1, 28, 28, y, 19),
          "the output holds 19 floats, but 2 images need 20");
    FAILS(net, cfgnet_forward(net, NULL, 1, 1, 28, 28, y, 10), "the input is NULL");
    FAILS(net, cfgnet_forward_u8(net, (unsigned char *)x, 1, 1, 28, 28, 7, y, 10), "layout 7");
    FAILS(net, cfgnet_set_batch(net, 0), "batch 0: must be >= 1");
    assert_int_equal(cfgnet_batch(net), 2);
    free(x);
    cfgnet_free(net);
}

static void test_layer_index_range(void **state)
{
    (void)state;
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load(net, "cfg/lenet5.cfg", NULL, 1, 0));
    int n = cfgnet_layer_count(net);
    assert_true(n >= 2);
    float *x = calloc(28 * 28, sizeof *x), big[6 * 28 * 28];
    OK(net, cfgnet_forward(net, x, 1, 1, 28, 28, NULL, 0));
    char want[160];
    snprintf(want, sizeof want,
             "layer %d is out of range: the network has %d layers (0..%d, or %d..-1", n, n, n - 1,
             -n);
    FAILS(net, cfgnet_layer_output(net, n, big, 6 * 28 * 28), want);
    FAILS(net, cfgnet_layer_shape(net, -n - 1, NULL, NULL, NULL), "out of range");
    FAILS(net, cfgnet_layer_type(net, 1000, &(const char *){NULL}), "layer 1000 is out of range");
    FAILS(net, cfgnet_layer_output(net, 0, big, 10), "the output holds 10 floats, but layer 0");
    FAILS(net, cfgnet_layer_output(net, 0, NULL, 0), "the output is NULL");
    FAILS(net, cfgnet_top_k(net, 1, 1, (int[1]){0}, NULL), "image 1 is out of range");
    FAILS(net, cfgnet_top_k(net, 0, 0, (int[1]){0}, NULL), "k must be >= 1");
    int c, h, w;
    OK(net, cfgnet_layer_shape(net, 0, &c, &h, &w));
    assert_int_equal(cfgnet_layer_output(net, 0, big, (size_t)c * h * w), 1);
    free(x);
    cfgnet_free(net);
}

/* A batch gives what its images give one at a time; pixels give what their floats give. */
static void test_batch_and_pixels(void **state)
{
    (void)state;
    enum { N = 3, D = 2 * 5 * 4 };
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load_string(net,
                               "[net]\nbatch=3\nheight=5\nwidth=4\nchannels=2\nseed=3\n"
                               "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=leaky\n"
                               "[connected]\noutput=4\nactivation=linear\n[softmax]\n",
                               NULL, NULL, 0, 0));
    unsigned char chw[N * D], hwc[N * D];
    float x[N * D], all[N * 4], one[4];
    for (int b = 0; b < N; b++)
        for (int k = 0; k < 2; k++)
            for (int p = 0; p < 20; p++) {
                unsigned char v = (unsigned char)((b * 53 + k * 31 + p * 17) % 256);
                chw[b * D + k * 20 + p] = v;
                hwc[b * D + p * 2 + k] = v;
                x[b * D + k * 20 + p] = v / 255.0f;
            }
    OK(net, cfgnet_forward(net, x, N, 2, 5, 4, all, N * 4));
    float sum = all[0] + all[1] + all[2] + all[3];
    assert_float_equal(sum, 1.f, 1e-6);
    float u8[N * 4];
    OK(net, cfgnet_forward_u8(net, chw, N, 2, 5, 4, CFGNET_LAYOUT_CHW, u8, N * 4));
    assert_memory_equal(all, u8, sizeof all);
    OK(net, cfgnet_forward_u8(net, hwc, N, 2, 5, 4, CFGNET_LAYOUT_HWC, u8, N * 4));
    assert_memory_equal(all, u8, sizeof all);
    OK(net, cfgnet_set_batch(net, 1));
    for (int b = 0; b < N; b++) {
        OK(net, cfgnet_forward(net, x + b * D, 1, 2, 5, 4, one, 4));
        for (int j = 0; j < 4; j++)
            assert_float_equal(one[j], all[b * 4 + j], 1e-6);
    }
    cfgnet_free(net);
}

/* An image file gives what its decoded pixels give (same size: no resizing involved). */
static void test_files(void **state)
{
    (void)state;
    char path[256], missing[256];
    tmp_path(path, sizeof path, "img.pgm");
    tmp_path(missing, sizeof missing, "missing.png");
    unsigned char px[28 * 28];
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fprintf(f, "P5\n28 28\n255\n");
    for (int i = 0; i < 28 * 28; i++)
        px[i] = (unsigned char)((i * 7) % 251);
    assert_int_equal(fwrite(px, 1, sizeof px, f), sizeof px);
    fclose(f);
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load(net, "cfg/lenet5.cfg", NULL, 2, 0));
    float a[20], b[20];
    const char *paths[2] = {path, path};
    OK(net, cfgnet_forward_files(net, paths, 2, a, 20));
    OK(net, cfgnet_forward_u8(net, px, 1, 1, 28, 28, CFGNET_LAYOUT_HWC, b, 10));
    assert_memory_equal(a, b, 10 * sizeof *a);
    assert_memory_equal(a + 10, b, 10 * sizeof *a);
    const char *bad[2] = {path, missing};
    FAILS(net, cfgnet_forward_files(net, bad, 2, a, 20), missing);
    const char *null_path[1] = {NULL};
    FAILS(net, cfgnet_forward_files(net, null_path, 1, a, 20), "path 0 of 1 is NULL");
    FAILS(net, cfgnet_forward_files(net, NULL, 1, a, 20), "the input is NULL");
    OK(net, cfgnet_load_string(net, "[net]\nheight=2\nwidth=2\nchannels=5\n[connected]\noutput=1\n",
                               NULL, NULL, 1, 0));
    FAILS(net, cfgnet_forward_files(net, paths, 1, a, 20), "takes 5 channels");
    cfgnet_free(net);
}

/* A learnable problem: which of three columns of a 1x4x4 image holds a bright bar. */
static const char bars_cfg[] = "[net]\nbatch=12\nheight=4\nwidth=4\nchannels=1\nlearning_rate=0.1\n"
                               "momentum=0.9\ndecay=0.0005\nseed=7\n"
                               "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                               "[connected]\noutput=3\nactivation=linear\n[softmax]\n";

static void bars(float *x, int *labels, float *truth, int n, int step)
{
    for (int b = 0; b < n; b++) {
        int cls = (b + step) % 3;
        for (int i = 0; i < 16; i++)
            x[b * 16 + i] = 0.1f * (float)((i * 7 + b + step) % 5) / 5.f;
        for (int r = 0; r < 4; r++)
            x[b * 16 + r * 4 + cls + (cls == 2)] += 1.f;
        labels[b] = cls;
        for (int k = 0; k < 3; k++)
            truth[b * 3 + k] = k == cls;
    }
}

static void test_training_loss_falls(void **state)
{
    (void)state;
    enum { N = 12 };
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load_string(net, bars_cfg, "bars.cfg", NULL, 0, CFGNET_TRAIN));
    float x[N * 16], truth[N * 3], loss, first = 0, last = 0;
    int labels[N];
    for (int s = 0; s < 40; s++) {
        bars(x, labels, truth, N, s);
        OK(net, cfgnet_train_labels(net, x, N, 1, 4, 4, labels, CFGNET_LR_FROM_CFG, &loss));
        if (s == 0)
            first = loss;
        if (s >= 35)
            last += loss / 5;
    }
    assert_true(first > 0.9f); /* near ln 3 = 1.10 at the start */
    assert_true(last < 0.05f * first);
    unsigned long long seen;
    OK(net, cfgnet_images_seen(net, &seen));
    assert_int_equal(seen, 40 * N);
    /* The trained net classifies the bars: the top-1 of each image is its label. */
    float y[N * 3];
    OK(net, cfgnet_forward(net, x, N, 1, 4, 4, y, N * 3));
    for (int b = 0; b < N; b++) {
        int idx;
        assert_int_equal(cfgnet_top_k(net, b, 1, &idx, NULL), 1);
        assert_int_equal(idx, labels[b]);
    }
    cfgnet_free(net);
}

/* The same steps through labels and through one-hot targets, and at batch 12 in one pass or at
 * batch 4 in three passes (batch changed between steps): the same parameters afterwards. */
static void test_training_equivalences(void **state)
{
    (void)state;
    enum { N = 12 };
    cfgnet_net *a = cfgnet_create(), *b = cfgnet_create(), *c = cfgnet_create();
    OK(a, cfgnet_load_string(a, bars_cfg, NULL, NULL, 0, CFGNET_TRAIN));
    OK(b, cfgnet_load_string(b, bars_cfg, NULL, NULL, 0, CFGNET_TRAIN));
    OK(c, cfgnet_load_string(c, bars_cfg, NULL, NULL, 4, CFGNET_TRAIN));
    float x[N * 16], truth[N * 3], la, lb, lc;
    int labels[N];
    for (int s = 0; s < 3; s++) {
        bars(x, labels, truth, N, s);
        OK(a, cfgnet_train_labels(a, x, N, 1, 4, 4, labels, 0.05f, &la));
        OK(b, cfgnet_train_truth(b, x, N, 1, 4, 4, truth, N * 3, 0.05f, &lb));
        OK(c, cfgnet_train_labels(c, x, N, 1, 4, 4, labels, 0.05f, &lc));
        assert_float_equal(la, lb, 0);
        assert_float_equal(la, lc, 1e-5);
        if (s == 1)
            OK(c, cfgnet_set_batch(c, 6)); /* momentum and step count carry over */
    }
    float ya[N * 3], yb[N * 3], yc[N * 3];
    OK(a, cfgnet_forward(a, x, N, 1, 4, 4, ya, N * 3));
    OK(b, cfgnet_forward(b, x, N, 1, 4, 4, yb, N * 3));
    OK(c, cfgnet_set_batch(c, N));
    OK(c, cfgnet_forward(c, x, N, 1, 4, 4, yc, N * 3));
    for (int i = 0; i < N * 3; i++) {
        assert_float_equal(ya[i], yb[i], 0);
        assert_float_equal(ya[i], yc[i], 1e-5);
    }
    cfgnet_free(a);
    cfgnet_free(b);
    cfgnet_free(c);
}

/* [net] chooses the optimiser: one plain SGD step moves a weight by lr * g, one Adam step by
 * about lr whatever g is (m/sqrt(v) = sign(g) at step 1). */
static void test_optimizer_from_cfg(void **state)
{
    (void)state;
    char w0[256], w1[256];
    tmp_path(w0, sizeof w0, "opt0.weights");
    tmp_path(w1, sizeof w1, "opt1.weights");
    const float params[6] = {0.f, 0.f, 0.5f, -0.25f, 0.1f, 0.3f};
    write_weights(w0, 0, params, 6);
    static const char *const cfgs[2] = {
        "[net]\nbatch=2\nheight=1\nwidth=2\nchannels=1\nmomentum=0\ndecay=0\n"
        "[connected]\noutput=2\nactivation=linear\n[softmax]\n",
        "[net]\nbatch=2\nheight=1\nwidth=2\nchannels=1\nadam=1\ndecay=0\n"
        "[connected]\noutput=2\nactivation=linear\n[softmax]\n"};
    const float x[4] = {1.f, 2.f, -0.5f, 0.25f};
    const int labels[2] = {0, 1};
    for (int k = 0; k < 2; k++) {
        cfgnet_net *net = cfgnet_create();
        OK(net, cfgnet_load_string(net, cfgs[k], NULL, w0, 0, CFGNET_TRAIN));
        OK(net, cfgnet_train_labels(net, x, 2, 1, 1, 2, labels, 0.01f, NULL));
        OK(net, cfgnet_save_weights(net, w1));
        float after[6];
        read_weights(w1, after, 6);
        int moved_by_lr = 0;
        for (int i = 0; i < 6; i++)
            moved_by_lr += fabsf(fabsf(after[i] - params[i]) - 0.01f) < 1e-4f;
        /* SGD: gradients here are all well below 1, so no step is lr; Adam: every one is. */
        assert_int_equal(moved_by_lr, k == 0 ? 0 : 6);
        cfgnet_free(net);
    }
}

static void test_training_bad_input(void **state)
{
    (void)state;
    enum { N = 12 };
    float x[N * 16], truth[N * 3];
    int labels[N];
    bars(x, labels, truth, N, 0);
    cfgnet_net *net = cfgnet_create();
    OK(net, cfgnet_load_string(net, bars_cfg, NULL, NULL, 0, 0));
    FAILS(net, cfgnet_train_labels(net, x, N, 1, 4, 4, labels, 0.1f, NULL),
          "loaded for inference; load it with CFGNET_TRAIN");
    OK(net, cfgnet_load_string(net, bars_cfg, NULL, NULL, 4, CFGNET_TRAIN));
    FAILS(net, cfgnet_train_labels(net, x, 6, 1, 4, 4, labels, 0.1f, NULL),
          "6 images is not a positive multiple of the batch size 4");
    FAILS(net, cfgnet_train_labels(net, x, 4, 1, 4, 5, labels, 0.1f, NULL), "takes 1x4x4");
    labels[2] = 3;
    FAILS(net, cfgnet_train_labels(net, x, 4, 1, 4, 4, labels, 0.1f, NULL),
          "label 3 of image 2 is out of range: the network has 3 outputs (0..2)");
    labels[2] = -1;
    FAILS(net, cfgnet_train_labels(net, x, 4, 1, 4, 4, labels, 0.1f, NULL), "label -1 of image 2");
    FAILS(net, cfgnet_train_labels(net, x, 4, 1, 4, 4, NULL, 0.1f, NULL), "labels is NULL");
    FAILS(net, cfgnet_train_truth(net, x, 4, 1, 4, 4, truth, 11, 0.1f, NULL),
          "truth holds 11 floats, but 4 images of 3 outputs need 12");
    FAILS(net, cfgnet_train_truth(net, x, 4, 1, 4, 4, truth, 12, -0.5f, NULL),
          "learning rate -0.5");
    FAILS(net, cfgnet_train_truth(net, x, 4, 1, 4, 4, truth, 12, NAN, NULL), "learning rate nan");
    unsigned long long seen;
    OK(net, cfgnet_images_seen(net, &seen));
    assert_int_equal(seen, 0); /* nothing ran */
    OK(net, cfgnet_load_string(net, linear_cfg, NULL, NULL, 0, CFGNET_TRAIN));
    FAILS(net, cfgnet_train_labels(net, x, 2, 1, 1, 2, (int[2]){0, 1}, 0.1f, NULL),
          "the last layer is [connected] (layer 0, line 6), not a loss layer");
    cfgnet_free(net);
}

/* Saved weights load into another handle and give the same outputs; images seen persist. */
static void test_weights_round_trip(void **state)
{
    (void)state;
    enum { N = 12 };
    char path[256], bad[256];
    tmp_path(path, sizeof path, "bars.weights");
    tmp_path(bad, sizeof bad, "short.weights");
    float x[N * 16], truth[N * 3], ya[N * 3], yb[N * 3];
    int labels[N];
    bars(x, labels, truth, N, 0);
    cfgnet_net *a = cfgnet_create(), *b = cfgnet_create();
    OK(a, cfgnet_load_string(a, bars_cfg, NULL, NULL, 0, CFGNET_TRAIN));
    OK(a, cfgnet_train_labels(a, x, N, 1, 4, 4, labels, 0.1f, NULL));
    OK(a, cfgnet_save_weights(a, path));
    OK(a, cfgnet_forward(a, x, N, 1, 4, 4, ya, N * 3));
    OK(b, cfgnet_load_string(b, bars_cfg, NULL, path, N, 0));
    OK(b, cfgnet_forward(b, x, N, 1, 4, 4, yb, N * 3));
    assert_memory_equal(ya, yb, sizeof ya);
    unsigned long long seen;
    OK(b, cfgnet_images_seen(b, &seen));
    assert_int_equal(seen, N);
    write_weights(bad, 0, ya, 5);
    FAILS(b, cfgnet_load_weights(b, bad), bad);
    OK(b, cfgnet_forward(b, x, N, 1, 4, 4, ya, N * 3)); /* all or nothing: unchanged */
    assert_memory_equal(ya, yb, sizeof ya);
    FAILS(b, cfgnet_save_weights(b, "/nonexistent-dir/x.weights"), "/nonexistent-dir/x.weights");
    cfgnet_free(a);
    cfgnet_free(b);
}

/* bars_cfg's parameters in .weights order: the conv's 4 + 36, then the connected's 3 + 192. */
enum { BARS_CONV = 40, BARS_PARAMS = 235 };

/* Trains `steps` steps of 12 bars and returns the parameters, through a .weights file. */
static void train_and_read(cfgnet_net *net, int steps, float *params)
{
    enum { N = 12 };
    float x[N * 16], truth[N * 3];
    int labels[N];
    for (int s = 0; s < steps; s++) {
        bars(x, labels, truth, N, s);
        OK(net, cfgnet_train_labels(net, x, N, 1, 4, 4, labels, 0.1f, NULL));
    }
    char path[256];
    tmp_path(path, sizeof path, "frozen.weights");
    OK(net, cfgnet_save_weights(net, path));
    read_weights(path, params, BARS_PARAMS);
}

/* cfgnet_freeze as -freeze N: the frozen conv keeps its parameters while the head learns, through
 * a batch change too, exactly as with the cfg's freeze=1 key; the same checks as the CLI. */
static void test_freeze(void **state)
{
    (void)state;
    float init[BARS_PARAMS], api[BARS_PARAMS], key[BARS_PARAMS];
    cfgnet_net *a = cfgnet_create(), *b = cfgnet_create();
    OK(a, cfgnet_load_string(a, bars_cfg, NULL, NULL, 0, CFGNET_TRAIN));
    train_and_read(a, 0, init);
    OK(a, cfgnet_freeze(a, 1));
    train_and_read(a, 2, api);
    OK(a, cfgnet_set_batch(a, 4));
    train_and_read(a, 2, api);
    assert_memory_equal(api, init, sizeof(float) * BARS_CONV);
    int moved = 0;
    for (int i = BARS_CONV; i < BARS_PARAMS; i++)
        moved += api[i] != init[i];
    assert_true(moved > 150);
    /* the same with freeze=1 on the conv in the cfg: the same numbers */
    char cfg[sizeof bars_cfg + 16];
    const char *conv = strstr(bars_cfg, "[convolutional]\n") + strlen("[convolutional]\n");
    snprintf(cfg, sizeof cfg, "%.*sfreeze=1\n%s", (int)(conv - bars_cfg), bars_cfg, conv);
    OK(b, cfgnet_load_string(b, cfg, NULL, NULL, 0, CFGNET_TRAIN));
    train_and_read(b, 2, key);
    OK(b, cfgnet_set_batch(b, 4));
    train_and_read(b, 2, key);
    assert_memory_equal(api, key, sizeof key);
    /* nothing left to train: refused, and nothing changes (the head still learns) */
    FAILS(a, cfgnet_freeze(a, 3), "every layer with parameters is frozen");
    train_and_read(a, 1, key);
    assert_memory_equal(key, api, sizeof(float) * BARS_CONV);
    assert_memory_not_equal(key + BARS_CONV, api + BARS_CONV, sizeof(float) * 8);
    FAILS(a, cfgnet_freeze(a, 4), "cfgnet_freeze: 4 layers: must be 0 to 3");
    FAILS(a, cfgnet_freeze(a, -1), "-1 layers");
    OK(a, cfgnet_freeze(a, 0)); /* adds nothing */
    /* a cfg freezing every layer with parameters trains nothing: refused at load, as by the CLI */
    char all[sizeof cfg + 16];
    const char *fc = strstr(cfg, "[connected]\n") + strlen("[connected]\n");
    snprintf(all, sizeof all, "%.*sfreeze=1\n%s", (int)(fc - cfg), cfg, fc);
    FAILS(b, cfgnet_load_string(b, all, "all.cfg", NULL, 0, CFGNET_TRAIN),
          "all.cfg: every layer with parameters is frozen");
    OK(b, cfgnet_layer_count(b));                             /* the old network stays */
    OK(b, cfgnet_load_string(b, all, "all.cfg", NULL, 0, 0)); /* inference does not care */
    FAILS(b, cfgnet_freeze(b, 1), "cfgnet_freeze: the network was loaded for inference");
    cfgnet_free(a);
    cfgnet_free(b);
}

/* CFGNET_SHARE_OUTPUTS: the same outputs as a handle that keeps every layer's, the last layer's
 * readable, the others refused with a message saying why, through a batch change too. */
static void test_share_outputs(void **state)
{
    (void)state;
    enum { N = 12 };
    float x[N * 16], truth[N * 3], ya[N * 3], yb[N * 3], la[N * 3], lb[N * 3];
    int labels[N];
    bars(x, labels, truth, N, 1);
    cfgnet_net *a = cfgnet_create(), *b = cfgnet_create();
    OK(a, cfgnet_load_string(a, bars_cfg, NULL, NULL, 0, 0));
    OK(b, cfgnet_load_string(b, bars_cfg, NULL, NULL, 0, CFGNET_SHARE_OUTPUTS));
    OK(a, cfgnet_forward(a, x, N, 1, 4, 4, ya, N * 3));
    OK(b, cfgnet_forward(b, x, N, 1, 4, 4, yb, N * 3));
    assert_memory_equal(ya, yb, sizeof ya);
    assert_int_equal(cfgnet_layer_output(a, -1, la, N * 3), N);
    assert_int_equal(cfgnet_layer_output(b, 2, lb, N * 3), N);
    assert_memory_equal(la, lb, sizeof la);
    FAILS(b, cfgnet_layer_output(b, 0, lb, N * 3),
          "layer 0: the handle was loaded with CFGNET_SHARE_OUTPUTS, so only the last layer's");
    OK(b, cfgnet_set_batch(b, 4));
    OK(b, cfgnet_forward(b, x, 4, 1, 4, 4, yb, 4 * 3));
    assert_memory_equal(ya, yb, sizeof(float) * 4 * 3);
    FAILS(b, cfgnet_layer_output(b, -2, lb, N * 3), "CFGNET_SHARE_OUTPUTS");
    FAILS(b, cfgnet_load_string(b, bars_cfg, NULL, NULL, 0, CFGNET_TRAIN | CFGNET_SHARE_OUTPUTS),
          "CFGNET_SHARE_OUTPUTS is for inference");
    OK(b, cfgnet_layer_output(b, -1, lb, N * 3)); /* the handle as it was */
    cfgnet_free(a);
    cfgnet_free(b);
}

/* One thread's work for test_threads: train its own handle, then predict. */
struct job {
    int seed, rc;
    float y[12 * 3];
};

static void *train_job(void *arg)
{
    struct job *j = arg;
    enum { N = 12 };
    float x[N * 16], truth[N * 3];
    int labels[N];
    cfgnet_net *net = cfgnet_create();
    j->rc = cfgnet_load_string(net, bars_cfg, NULL, NULL, 0, CFGNET_TRAIN);
    for (int s = 0; s < 5 && !j->rc; s++) {
        bars(x, labels, truth, N, s + j->seed);
        j->rc = cfgnet_train_labels(net, x, N, 1, 4, 4, labels, 0.05f, NULL);
    }
    if (!j->rc)
        j->rc = cfgnet_forward(net, x, N, 1, 4, 4, j->y, N * 3);
    cfgnet_free(net);
    return NULL;
}

/* Separate handles in separate threads at once give what they give one after the other. */
static void test_threads(void **state)
{
    (void)state;
    struct job seq[2] = {{.seed = 0}, {.seed = 1}}, par[2] = {{.seed = 0}, {.seed = 1}};
    for (int i = 0; i < 2; i++)
        train_job(&seq[i]);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, train_job, &par[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(seq[i].rc, 0);
        assert_int_equal(par[i].rc, 0);
        assert_memory_equal(seq[i].y, par[i].y, sizeof seq[i].y);
    }
    assert_memory_not_equal(seq[0].y, seq[1].y, sizeof seq[0].y);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const files[] = {"linear.weights", "opt0.weights",  "opt1.weights",
                                        "bars.weights",   "short.weights", "img.pgm",
                                        "frozen.weights"};
    char p[256];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        tmp_path(p, sizeof p, files[i]);
        unlink(p);
    }
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_null_handle),
        cmocka_unit_test(test_empty_handle),
        cmocka_unit_test(test_load_string_shapes),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_bad_cfg_string),
        cmocka_unit_test(test_forward_by_hand),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_layer_index_range),
        cmocka_unit_test(test_batch_and_pixels),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_training_loss_falls),
        cmocka_unit_test(test_training_equivalences),
        cmocka_unit_test(test_optimizer_from_cfg),
        cmocka_unit_test(test_training_bad_input),
        cmocka_unit_test(test_weights_round_trip),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_share_outputs),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
