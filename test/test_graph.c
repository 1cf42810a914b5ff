/* test_graph.c - nets that are graphs, not chains: a small ResNet-style net (residual blocks,
 * a route, global average, softmax) whose loss falls, and with an auxiliary head; weights I/O of
 * nets with parameterless [route]/[shortcut]/[scale_channels] layers; and Darknet's own
 * resnet18.cfg and densenet201.cfg, which must build with exactly the parameter count Debian's
 * darknet gives them and, on the same weights and input, compute Darknet's logits (through
 * libdarknet.so; skipped with a message when Debian's darknet is absent). */
#include <dlfcn.h>
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
#include "net/net.h"
#include "net/optimizer.h"
#include "net/weights.h"

#define RESNET_HEAD                                                                                \
    "[net]\nbatch=12\nheight=8\nwidth=8\nchannels=1\nlearning_rate=0.05\n"                         \
    "momentum=0.9\ndecay=0.0005\nseed=3\n"
/* Two residual blocks (identity skip, then a downsampling one whose skip Darknet's rule samples
 * with stride 2), a route joining two branches, global average, classifier. */
#define RESNET_BODY                                                                                \
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=relu\n"              \
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=relu\n"              \
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=linear\n"            \
    "[shortcut]\nfrom=-3\nactivation=relu\n"                                                       \
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=relu\n"    \
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\npad=1\nactivation=linear\n"            \
    "[shortcut]\nfrom=-3\nactivation=relu\n"                                                       \
    "[convolutional]\nfilters=4\nsize=1\nactivation=relu\n"                                        \
    "[route]\nlayers=-1,-2\n"                                                                      \
    "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n"                                      \
    "[avgpool]\n"
static const char resnet[] = RESNET_HEAD RESNET_BODY "[softmax]\n";

/* The same with an auxiliary head off the first block (weight 0.3) and a route back. */
static const char resnet_aux[] = RESNET_HEAD
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
    "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=linear\n"
    "[shortcut]\nfrom=-3\nactivation=relu\n"
    "[avgpool]\n[connected]\noutput=3\nactivation=linear\n[softmax]\nloss_weight=0.3\n"
    "[route]\nlayers=-4\n"
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=relu\n"
    "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n"
    "[avgpool]\n[softmax]\n";

/* A fixed, learnable dataset: class = which third of the 8x8 image carries a bright bar. */
static void make_batch(struct net *n, int step)
{
    for (int b = 0; b < n->batch; b++) {
        int cls = (b + step) % 3;
        float *x = n->input + b * 64;
        for (int i = 0; i < 64; i++)
            x[i] = 0.2f * (float)((i * 7 + b + step) % 5) / 5.f;
        for (int r = 0; r < 8; r++)
            for (int c = 3 * cls; c < 3 * cls + 2; c++)
                x[r * 8 + c] += 1.f;
        for (int k = 0; k < 3; k++)
            n->truth[b * 3 + k] = k == cls;
    }
}

/* Mean loss per image of each step. */
static void train(struct net *n, int steps, double *first, double *last)
{
    struct optimizer *o;
    cn_error e;
    if (optimizer_create(&o, n, &e))
        fail_msg("%s", e.msg);
    for (int s = 0; s < steps; s++) {
        struct pass p;
        make_batch(n, s);
        net_pass_init(n, &p, 1, 1);
        net_forward(n, &p);
        net_backward(n, &p);
        optimizer_step(o, n, n->cfg.learning_rate);
        double loss = p.loss / n->batch;
        if (!isfinite(loss))
            fail_msg("loss %g at step %d", loss, s);
        if (s == 0)
            *first = loss;
        *last = loss;
    }
    optimizer_destroy(o);
}

static void test_resnet_trains(void **state)
{
    (void)state;
    struct net *n = test_net(resnet, 0, 1);
    assert_int_equal(n->n, 12);
    assert_int_equal(n->layers[6].out.c, 8);
    assert_int_equal(n->layers[8].out.c, 12); /* route: 4 + 8 channels at 4x4 */
    assert_int_equal(n->layers[8].out.w, 4);
    double first, last;
    train(n, 40, &first, &last);
    net_destroy(n);
    if (!(last < 0.25 * first))
        fail_msg("loss went from %g to %g in 40 steps", first, last);
}

static void test_resnet_with_aux_head_trains(void **state)
{
    (void)state;
    struct net *n = test_net(resnet_aux, 0, 1);
    double first, last;
    train(n, 40, &first, &last);
    /* The reported loss is main + 0.3 * aux, each the cross-entropy of its head's output. */
    struct pass p;
    make_batch(n, 0);
    net_pass_init(n, &p, 0, 1);
    net_forward(n, &p);
    double main_ce = 0, aux_ce = 0;
    for (int i = 0; i < 3 * n->batch; i++)
        if (n->truth[i] != 0) {
            main_ce -= log(net_output(n)[i]);
            aux_ce -= log(n->layers[6].output[i]);
        }
    assert_float_equal(p.loss, main_ce + 0.3 * aux_ce, 1e-4 * p.loss);
    /* Valid-style inference: the main head's probabilities, untouched by the aux head. */
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    assert_float_equal(p.loss, 0, 0);
    int right = 0;
    for (int b = 0; b < n->batch; b++) {
        const float *y = net_output(n) + b * 3;
        int best = y[1] > y[0] ? 1 : 0;
        best = y[2] > y[best] ? 2 : best;
        right += n->truth[b * 3 + best] == 1.f;
    }
    net_destroy(n);
    if (!(last < 0.25 * first) || right < 11)
        fail_msg("loss went from %g to %g in 40 steps; %d of 12 right", first, last, right);
}

/* Parameterless graph layers add nothing to the .weights file; a round trip reproduces the
 * outputs of a net with routes, shortcuts and scale_channels exactly. */
static void test_weights_round_trip(void **state)
{
    (void)state;
    static const char se[] =
        RESNET_HEAD "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                    "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n"
                    "[avgpool]\n[connected]\noutput=4\nactivation=logistic\n"
                    "[scale_channels]\nfrom=-3\n"
                    "[shortcut]\nfrom=-5\nalpha=0.5\n"
                    "[route]\nlayers=-1,0\n"
                    "[convolutional]\nfilters=3\nsize=1\nactivation=linear\n[avgpool]\n[softmax]\n";
    struct net *a = test_net(se, 0, 1);
    size_t want = (4 + 4 * 9) + (4 + 4 * 4 * 9) + (4 + 4 * 4) + (3 + 3 * 8);
    assert_int_equal(net_param_count(a), want);
    double first, last;
    train(a, 3, &first, &last);
    char path[] = "/tmp/cfgnet_graph_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    cn_error e;
    if (weights_save(a, path, &e))
        fail_msg("%s", e.msg);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    assert_int_equal(ftell(f), 20 + 4 * (long)want);
    fclose(f);
    struct net *b = test_net(se, 12, 0);
    if (weights_load(b, path, &e))
        fail_msg("%s", e.msg);
    remove(path);
    make_batch(a, 5);
    memcpy(b->input, a->input, sizeof(float) * net_inputs(a) * 12);
    struct pass pa, pb;
    net_pass_init(a, &pa, 0, 0);
    net_pass_init(b, &pb, 0, 0);
    net_forward(a, &pa);
    net_forward(b, &pb);
    assert_memory_equal(net_output(a), net_output(b), sizeof(float) * 3 * 12);
    net_destroy(a);
    net_destroy(b);
}

#define CFG_MAX (1 << 20)

/* Darknet's cfg with its [net] section cut to batch=1 and the input shape (side x side when side
 * > 0; the augmentation keys there are not this test's business), and, with logits, without its
 * final [softmax]; every other layer section unchanged. NULL when the file is absent. */
static char *darknet_cfg(const char *path, int side, int logits)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *out = xcalloc(CFG_MAX, 1), line[512];
    size_t k = 0;
    int in_net = 0;
    while (fgets(line, sizeof line, f) && k + 2 * sizeof line < CFG_MAX) {
        if (line[0] == '[')
            in_net = !strncmp(line, "[net]", 5);
        if (logits && !strncmp(line, "[softmax]", 9))
            break;
        int shape = !strncmp(line, "height", 6) || !strncmp(line, "width", 5);
        if (in_net && shape && side > 0)
            k += (size_t)snprintf(out + k, CFG_MAX - k, "%.*s=%d\n", line[0] == 'h' ? 6 : 5, line,
                                  side);
        else if (!in_net || line[0] == '[' || shape || !strncmp(line, "channels", 8))
            k += (size_t)snprintf(out + k, CFG_MAX - k, "%s%s", line,
                                  line[0] == '[' && in_net ? "batch=1\n" : "");
    }
    fclose(f);
    return out;
}

static size_t stored_floats(const struct net *n)
{
    size_t total = 0;
    for (int i = 0; i < n->nparams; i++)
        total += n->params[i].n;
    return total;
}

/* The counts are what Debian's darknet writes for a fresh net (libdarknet parse_network_cfg +
 * save_weights: (file size - 20) / 4), rolling statistics included. */
static void check_darknet_cfg(const char *name, size_t floats, int layers)
{
    char path[256];
    snprintf(path, sizeof path, "/usr/share/darknet/cfg/%s.cfg", name);
    char *text = darknet_cfg(path, 0, 0);
    if (!text) {
        printf("SKIP %s: %s is absent (Debian package darknet)\n", name, path);
        return;
    }
    struct net *n = NULL;
    cn_error e;
    int rc = net_create_from_string(&n, text, path, 1, 0, &e);
    free(text);
    if (rc)
        fail_msg("%s", e.msg);
    assert_int_equal(n->n, layers);
    assert_int_equal(net_outputs(n), 1000);
    assert_int_equal(stored_floats(n), floats);
    net_destroy(n);
}

static void test_darknet_cfgs(void **state)
{
    (void)state;
    check_darknet_cfg("resnet18", 11523496, 29);
    check_darknet_cfg("densenet201", 17206440, 305);
}

/* The few libdarknet.so (pjreddie's API, Debian's darknet) entry points the parity check uses. */
struct darknet {
    void *so;
    void *(*parse)(char *cfg);
    void (*set_batch)(void *net, int b);
    void (*load)(void *net, char *weights);
    float *(*predict)(void *net, float *input);
    void (*destroy)(void *net);
};

static int darknet_open(struct darknet *d)
{
    d->so = dlopen("/usr/lib/darknet/libdarknet.so", RTLD_NOW | RTLD_LOCAL);
    if (!d->so)
        return -1;
    *(void **)&d->parse = dlsym(d->so, "parse_network_cfg");
    *(void **)&d->set_batch = dlsym(d->so, "set_batch_network");
    *(void **)&d->load = dlsym(d->so, "load_weights");
    *(void **)&d->predict = dlsym(d->so, "network_predict");
    *(void **)&d->destroy = dlsym(d->so, "free_network");
    if (!d->parse || !d->set_batch || !d->load || !d->predict || !d->destroy) {
        dlclose(d->so);
        return -1;
    }
    return 0;
}

/* Writes text to a new temporary file; path receives its name. */
static void temp_file(char *path, const char *text)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The logits (the net without its [softmax]) at side x side, cfgnet's and Darknet's, on the
 * same weights (cfgnet's initialisation) and input: max |difference| <= 1e-4 * max |logit|. This
 * is what checks Darknet's [shortcut] rule for different shapes (resnet18's downsampling blocks
 * add a 2x larger input) and [route] concatenation order (densenet201). */
static void check_darknet_parity(struct darknet *d, const char *name, int side)
{
    char path[256], cfg[] = "/tmp/cfgnet_dkcfg_XXXXXX", wts[] = "/tmp/cfgnet_dkwts_XXXXXX";
    snprintf(path, sizeof path, "/usr/share/darknet/cfg/%s.cfg", name);
    char *text = darknet_cfg(path, side, 1);
    assert_non_null(text);
    temp_file(cfg, text);
    free(text);
    temp_file(wts, "");
    struct net *n = NULL;
    cn_error e;
    if (net_create(&n, cfg, 1, 0, &e) || weights_save(n, wts, &e))
        fail_msg("%s", e.msg);
    for (size_t i = 0; i < net_inputs(n); i++)
        n->input[i] = (float)(0.5 + 0.5 * sin(0.0073 * (double)i));
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    void *dn = d->parse(cfg);
    d->set_batch(dn, 1);
    d->load(dn, wts);
    const float *y = d->predict(dn, n->input);
    double top = 0, diff = 0;
    for (size_t i = 0; i < net_outputs(n); i++) {
        top = fmax(top, fabs(y[i]));
        diff = fmax(diff, fabs((double)y[i] - net_output(n)[i]));
    }
    d->destroy(dn);
    net_destroy(n);
    remove(cfg);
    remove(wts);
    printf("%s at %dx%d: max |logit| %g, max |cfgnet - darknet| %g\n", name, side, side, top, diff);
    if (!(top > 0 && diff <= 1e-4 * top))
        fail_msg("%s: logits differ from Darknet's by %g (max %g)", name, diff, top);
}

static void test_darknet_parity(void **state)
{
    (void)state;
    struct darknet d;
    if (access("/usr/share/darknet/cfg/resnet18.cfg", R_OK) || darknet_open(&d)) {
        printf("SKIP darknet parity: /usr/lib/darknet/libdarknet.so or its cfgs are absent "
               "(Debian package darknet)\n");
        return;
    }
    check_darknet_parity(&d, "resnet18", 32);
    check_darknet_parity(&d, "densenet201", 32);
    /* Not dlclose'd: libdarknet's free_network leaves buffers behind, and LeakSanitizer can only
     * attribute them (and apply the suppression below) while the library stays mapped. */
}

/* Under SANITIZE=address: the leaks are libdarknet's, not cfgnet's. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libdarknet.so\n";
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_trains),
        cmocka_unit_test(test_resnet_with_aux_head_trains),
        cmocka_unit_test(test_weights_round_trip),
        cmocka_unit_test(test_darknet_cfgs),
        cmocka_unit_test(test_darknet_parity),
    };
    return cmocka_run_group_tests_name("graph", tests, NULL, NULL);
}
