/* test_zoo.c - the model zoo in cfg/ and cfg/fashion/: parameter counts against torchvision and
 * the papers, and one forward pass and one training step of every cfg.
 *
 * Counts: each ImageNet cfg's trainable parameter count at its own resolution (net_count_params:
 * shape inference without allocating or drawing the weights) must equal torchvision's
 * exactly, or, where torchvision lacks the network, lie within 1% of the published figure and
 * equal the exact sum the cfg header derives. The torchvision figures are constants here, so the
 * comparison always runs; test/ref/torchvision_counts.py is how they were obtained, and when
 * Debian's python3-torch and python3-torchvision are installed the script is run and must print
 * the same numbers (otherwise that cross-check is skipped with a message).
 *
 * Every cfg: each file in cfg/ and cfg/fashion/ is built for training with 2 images per pass (1
 * for the 299x299 Inceptions), at the reduced square resolution of the table below where the
 * architecture allows it (the [net] height= and width= lines are rewritten; fully connected
 * layers then have fewer inputs), and runs a training pass (forward with the loss, backward, one
 * optimiser step) and an inference pass; outputs must be probabilities and every value finite.
 * A cfg that is not in the table runs at its own resolution, with a note. The suite runs on one
 * thread; its time is mostly the He initialisation of ~700M parameters (the large nets at reduced
 * resolution), not the passes.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <cmocka.h>

#include "core/fileio.h"
#include "net/net.h"
#include "net/optimizer.h"

/* ------------------------------------------------------------------------------------------- */
/* Parameter counts */

struct count {
    const char *name; /* cfg/<name>.cfg; also the torchvision model name when torchvision != 0 */
    size_t want;      /* exact trainable parameters of the cfg */
    int torchvision;  /* want is torchvision's count (test/ref/torchvision_counts.py) */
    double published; /* otherwise: the published figure that want must lie within 1% of */
    int side;         /* input resolution */
};

static const struct count counts[] = {
    {"alexnet", 61100840, 1, 0, 224},
    {"vgg11", 132863336, 1, 0, 224},
    {"vgg13", 133047848, 1, 0, 224},
    {"vgg16", 138357544, 1, 0, 224},
    {"vgg19", 143667240, 1, 0, 224},
    {"vgg11_bn", 132868840, 1, 0, 224},
    {"vgg13_bn", 133053736, 1, 0, 224},
    {"vgg16_bn", 138365992, 1, 0, 224},
    {"vgg19_bn", 143678248, 1, 0, 224},
    {"googlenet", 13004888, 1, 0, 224},    /* aux_logits=True */
    {"inception_v3", 27161264, 1, 0, 299}, /* aux_logits=True */
    {"resnet18", 11689512, 1, 0, 224},
    {"resnet34", 21797672, 1, 0, 224},
    {"resnet50", 25557032, 1, 0, 224},
    {"resnet101", 44549160, 1, 0, 224},
    {"resnet152", 60192808, 1, 0, 224},
    {"resnext50_32x4d", 25028904, 1, 0, 224},
    {"squeezenet1_0", 1248424, 1, 0, 224},
    {"squeezenet1_1", 1235496, 1, 0, 224},
    {"mobilenet_v2", 3504872, 1, 0, 224},
    /* Not in torchvision: the figure each cfg header cites. */
    {"alexnet_lrn", 60965224, 0, 60965224,
     227},                                 /* Caffe's bvlc_alexnet (the paper: "60 million") */
    {"zfnet", 62357608, 0, 62357608, 224}, /* sum over the paper's Figure 3 */
    {"nin", 7595176, 0, 7.6e6, 224},       /* the authors' ImageNet model: 7.6M */
    {"inception_v4", 42679816, 0, 42.68e6, 299},        /* timm / TF-slim: 42.68M */
    {"inception_resnet_v2", 55843464, 0, 55.84e6, 299}, /* timm / TF-slim: 55.84M */
    {"se_resnet50", 28088024, 0, 28.1e6, 224},          /* the paper: 28.1M at r = 16 */
};
#define NCOUNTS (sizeof counts / sizeof counts[0])

static struct net *build(const char *path, int batch, int training)
{
    struct net *n;
    cn_error e;
    if (net_create(&n, path, batch, training, &e))
        fail_msg("%s", e.msg);
    return n;
}

static void test_parameter_counts(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < NCOUNTS; i++) {
        const struct count *c = &counts[i];
        char path[128];
        size_t got;
        cn_error e;
        snprintf(path, sizeof path, "cfg/%s.cfg", c->name);
        if (net_count_params(path, &got, &e))
            fail_msg("%s", e.msg);
        if (got != c->want) {
            fprintf(stderr, "%s: %zu parameters, want %zu%s\n", path, got, c->want,
                    c->torchvision ? " (torchvision)" : "");
            bad++;
        }
        if (!c->torchvision && fabs((double)got - c->published) > 0.01 * c->published) {
            fprintf(stderr, "%s: %zu parameters, more than 1%% from the published %.0f\n", path,
                    got, c->published);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* net_count_params (shape inference only) agrees with a built net's net_param_count, and the
 * built nets have the table's input shape and 1000 outputs (the cheap ones are built here; the
 * large ones are built at a reduced resolution by test_every_cfg_trains_one_step). */
static void test_count_without_building(void **state)
{
    (void)state;
    static const char *const names[] = {"resnet18", "googlenet", "squeezenet1_1", "mobilenet_v2",
                                        "se_resnet50"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char path[128];
        snprintf(path, sizeof path, "cfg/%s.cfg", names[k]);
        struct net *n = build(path, 1, 0);
        size_t counted;
        cn_error e;
        if (net_count_params(path, &counted, &e))
            fail_msg("%s", e.msg);
        assert_int_equal(counted, net_param_count(n));
        assert_int_equal(n->in.w, 224);
        assert_int_equal(n->in.h, 224);
        assert_int_equal(n->in.c, 3);
        assert_int_equal(net_outputs(n), 1000);
        net_destroy(n);
    }
    size_t c;
    cn_error e;
    assert_int_equal(net_count_params("cfg/lenet5.cfg", &c, &e), 0);
    assert_int_equal(c, 61706);
    assert_int_not_equal(net_count_params("cfg/no-such.cfg", &c, &e), 0);
}

/* Runs test/ref/torchvision_counts.py and compares every line with the table. */
static void test_counts_match_torchvision_script(void **state)
{
    (void)state;
    if (system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") != 0) {
        printf(
            "SKIP: /usr/bin/python3 with torch and torchvision not found (Debian's python3-torch "
            "and python3-torchvision): the torchvision counts were not re-derived; the table in "
            "test_zoo.c was still checked against every cfg\n");
        skip();
    }
    FILE *f = popen("/usr/bin/python3 test/ref/torchvision_counts.py", "r");
    assert_non_null(f);
    char name[64];
    size_t v;
    int seen = 0, bad = 0;
    while (fscanf(f, "%63s %zu", name, &v) == 2) {
        int found = 0;
        for (size_t i = 0; i < NCOUNTS; i++) {
            if (counts[i].torchvision && !strcmp(counts[i].name, name)) {
                found = 1;
                if (counts[i].want != v) {
                    fprintf(stderr, "torchvision %s: %zu, table %zu\n", name, v, counts[i].want);
                    bad++;
                }
            }
        }
        if (!found) {
            fprintf(stderr, "torchvision_counts.py prints %s, which the table lacks\n", name);
            bad++;
        }
        seen++;
    }
    assert_int_equal(pclose(f), 0);
    assert_int_equal(bad, 0);
    int want = 0;
    for (size_t i = 0; i < NCOUNTS; i++)
        want += counts[i].torchvision;
    assert_int_equal(seen, want);
}

/* ------------------------------------------------------------------------------------------- */
/* One forward pass and one training step of every cfg */

struct reduced {
    const char *file; /* relative to cfg/ */
    int side;         /* square input side for the test (0: the cfg's own) */
    int batch;        /* images per pass */
    int deeper;       /* a deeper variant of a cfg above it, with no layer type or key of its own */
};

/* Resolutions: the smallest convenient size every layer accepts. GoogLeNet's auxiliary heads need
 * 96 (their 5x5/3 pool needs a 5x5 grid), Inception v3's its full 299 (its 5x5 convolution needs
 * Mixed_6e at 17x17); Inception v4 and Inception-ResNet-v2 need 75 (the stem, two reductions). */
static const struct reduced reduced[] = {
    {"alexnet.cfg", 64, 2, 0},
    {"alexnet_lrn.cfg", 67, 2, 0},
    {"zfnet.cfg", 64, 2, 0},
    {"nin.cfg", 64, 2, 0},
    {"vgg11.cfg", 32, 2, 0},
    {"vgg13.cfg", 32, 2, 1},
    {"vgg16.cfg", 32, 2, 1},
    {"vgg19.cfg", 32, 2, 1},
    {"vgg11_bn.cfg", 32, 2, 0},
    {"vgg13_bn.cfg", 32, 2, 1},
    {"vgg16_bn.cfg", 32, 2, 0},
    {"vgg19_bn.cfg", 32, 2, 1},
    {"googlenet.cfg", 96, 2, 0},
    {"inception_v3.cfg", 0, 1, 0},
    {"inception_v4.cfg", 75, 2, 0},
    {"inception_resnet_v2.cfg", 75, 2, 0},
    {"resnet18.cfg", 64, 2, 0},
    {"resnet34.cfg", 64, 2, 1},
    {"resnet50.cfg", 64, 2, 0},
    {"resnet101.cfg", 32, 2, 1},
    {"resnet152.cfg", 32, 2, 1},
    {"resnext50_32x4d.cfg", 64, 2, 0},
    {"se_resnet50.cfg", 64, 2, 0},
    {"squeezenet1_0.cfg", 64, 2, 0},
    {"squeezenet1_1.cfg", 64, 2, 0},
    {"mobilenet_v2.cfg", 32, 2, 0},
    {"lenet5.cfg", 0, 2, 0},
    {"lenet5-darknet.cfg", 0, 2, 0},
    {"fashion/resnet.cfg", 0, 2, 0},
    {"fashion/inception.cfg", 0, 2, 0},
    {"fashion/squeezenet.cfg", 0, 2, 0},
};
#define NREDUCED (sizeof reduced / sizeof reduced[0])

static const struct reduced *find_reduced(const char *file)
{
    for (size_t i = 0; i < NREDUCED; i++)
        if (!strcmp(reduced[i].file, file))
            return &reduced[i];
    return NULL;
}

/* Rewrites the values of height= and width= in the [net] section (the text before the second
 * section header) to side, in place when the new value is no longer (all cfgs here: 3 digits
 * become 2 or 3, padded with spaces, which the cfg reader ignores at the end of a value). */
static void set_side(char *text, int side)
{
    char *end = strstr(text, "\n[");
    end = end ? strstr(end + 2, "\n[") : NULL;
    static const char *const keys[] = {"\nheight=", "\nwidth="};
    for (int k = 0; k < 2; k++) {
        char *p = strstr(text, keys[k]);
        assert_true(p && (!end || p < end));
        p += strlen(keys[k]);
        size_t len = strspn(p, "0123456789");
        char v[16];
        int w = snprintf(v, sizeof v, "%d", side);
        assert_true((size_t)w <= len);
        memset(p, ' ', len);
        memcpy(p, v, (size_t)w);
    }
}

/* Fills the input with a fixed pattern in [0, 1) and the truth with one-hot labels. */
static void fill_batch(struct net *n)
{
    size_t in = net_inputs(n), out = net_outputs(n);
    for (size_t i = 0; i < in * (size_t)n->batch; i++)
        n->input[i] = (float)((i * 2654435761u) % 1000) / 1000.f;
    memset(n->truth, 0, sizeof(float) * out * (size_t)n->batch);
    for (int b = 0; b < n->batch; b++)
        n->truth[(size_t)b * out + (size_t)(b * 7) % out] = 1.f;
}

/* Every output finite, and each image's output sums to 1 (the last layer is a softmax). */
static int check_output(const struct net *n, const char *what, const char *path)
{
    size_t out = net_outputs(n);
    const float *y = net_output(n);
    for (int b = 0; b < n->batch; b++) {
        double s = 0;
        for (size_t i = 0; i < out; i++) {
            float v = y[(size_t)b * out + i];
            if (!isfinite(v) || v < 0) {
                fprintf(stderr, "%s: %s output %zu of image %d is %g\n", path, what, i, b, v);
                return 1;
            }
            s += v;
        }
        if (fabs(s - 1) > 1e-3) {
            fprintf(stderr, "%s: %s outputs of image %d sum to %g\n", path, what, b, s);
            return 1;
        }
    }
    return 0;
}

static int params_finite(const struct net *n)
{
    for (size_t i = 0; i < n->nparam_floats; i++)
        if (!isfinite(n->param_slab[i]))
            return 0;
    return 1;
}

/* Builds path (reduced), runs an inference pass and a training step; returns the failures. */
static int run_one(const char *dir, const char *file)
{
    char path[512], rel[256];
    snprintf(rel, sizeof rel, "%s%s", dir, file);
    snprintf(path, sizeof path, "cfg/%s", rel);
    const struct reduced *r = find_reduced(rel);
    /* Under a sanitizer (ten times slower) the deeper variants repeat what their shallower
     * siblings have just checked. */
    const char *san = getenv("CFGNET_SANITIZE");
    if (r && r->deeper && san && *san) {
        printf("%s: skipped under SANITIZE=%s (a deeper variant)\n", path, san);
        return 0;
    }
    char *text;
    size_t len;
    cn_error e;
    if (fileio_read_all(path, (size_t)1 << 24, &text, &len, &e))
        fail_msg("%s", e.msg);
    if (r && r->side)
        set_side(text, r->side);
    if (!r)
        printf("note: %s is not in test_zoo.c's table: run at its own resolution, 1 image\n", path);
    struct net *n;
    int rc = net_create_from_string(&n, text, path, r ? r->batch : 1, 1, &e);
    free(text);
    if (rc) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    struct optimizer *o;
    if (optimizer_create(&o, n, &e))
        fail_msg("%s", e.msg);
    int bad = 0;
    struct pass p;
    fill_batch(n);
    /* Inference first, on the initial weights and rolling statistics (mean 0, variance 1): after
     * one step at the cfg's learning rate on a reduced batch of 2, the rolling statistics no longer
     * match the activations, which then grow through a deep net until they overflow (a property
     * of eval mode after one step, in PyTorch too, not of the kernels). */
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    bad += check_output(n, "inference", path);
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    bad += check_output(n, "training", path);
    if (!isfinite(p.loss) || !(p.loss > 0)) {
        fprintf(stderr, "%s: training loss %g\n", path, p.loss);
        bad++;
    }
    net_backward(n, &p);
    optimizer_step(o, n, n->cfg.learning_rate);
    if (!params_finite(n)) {
        fprintf(stderr, "%s: a parameter is not finite after one step\n", path);
        bad++;
    }
    optimizer_destroy(o);
    net_destroy(n);
    return bad;
}

static int is_cfg(const char *name)
{
    size_t l = strlen(name);
    return l > 4 && !strcmp(name + l - 4, ".cfg");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every cfg of cfg/<dir> in name order; returns the failures and counts the files. */
static int run_dir(const char *dir, int *files)
{
    char path[256];
    snprintf(path, sizeof path, "cfg/%s", dir);
    DIR *d = opendir(path);
    assert_non_null(d);
    char *names[256];
    int nn = 0;
    for (struct dirent *de; (de = readdir(d)) && nn < 256;)
        if (is_cfg(de->d_name))
            names[nn++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], cmp_str);
    int bad = 0;
    for (int i = 0; i < nn; i++) {
        bad += run_one(dir, names[i]);
        free(names[i]);
    }
    *files += nn;
    return bad;
}

static void test_every_cfg_trains_one_step(void **state)
{
    (void)state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int files = 0, bad = run_dir("", &files) + run_dir("fashion/", &files);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%d cfgs: one training step and one inference pass each in %.1f s\n", files,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    /* The 26 ImageNet cfgs, LeNet-5's two and the three Fashion-MNIST ones at least. */
    assert_true(files >= 31);
    for (size_t i = 0; i < NREDUCED; i++) {
        char path[256];
        snprintf(path, sizeof path, "cfg/%s", reduced[i].file);
        FILE *f = fopen(path, "r");
        if (!f)
            fprintf(stderr, "%s: in the table but missing\n", path);
        else
            fclose(f);
        bad += !f;
    }
    assert_int_equal(bad, 0);
}

/* The auxiliary heads: GoogLeNet has two [softmax] layers before the last, Inception v3 one,
 * weighted 0.3 and 0.4, each followed by a [route] (the net builder checks that); predict reads
 * the last layer only, which has the 1000 classes. */
static void test_auxiliary_heads(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int heads;
    } nets[] = {
        {"cfg/googlenet.cfg", 2}, {"cfg/inception_v3.cfg", 1}, {"cfg/fashion/inception.cfg", 1}};
    for (size_t k = 0; k < 3; k++) {
        struct net *n = build(nets[k].path, 1, 0);
        int heads = 0;
        for (int i = 0; i < n->n - 1; i++) {
            if (n->layers[i].ops->is_loss) {
                heads++;
                assert_string_equal(n->layers[i + 1].ops->name, "route");
                assert_int_equal(shape_size(n->layers[i].out), net_outputs(n));
            }
        }
        assert_int_equal(heads, nets[k].heads);
        assert_true(net_last(n)->ops->is_loss);
        net_destroy(n);
    }
}

int main(void)
{
#ifdef _OPENMP
    /* One thread: the passes are small, and most of the time goes to drawing and updating the
     * large nets' parameters; idle OpenMP workers would spin on a shared 2-core machine. */
    omp_set_num_threads(1);
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parameter_counts),
        cmocka_unit_test(test_counts_match_torchvision_script),
        cmocka_unit_test(test_count_without_building),
        cmocka_unit_test(test_auxiliary_heads),
        cmocka_unit_test(test_every_cfg_trains_one_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
