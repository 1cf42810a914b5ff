/* test_darknet_predict.c - `net classifier predict -letterbox` against Debian's `darknet
 * classifier predict` on Darknet's own classification cfgs (/usr/share/darknet/cfg, loaded
 * unchanged) with the same .weights file.
 *
 * Weights: cfgnet's initialisation (He), then batch-norm statistics and shifts drawn at random so
 * they matter (rolling mean U(-0.1, 0.1), rolling variance U(0.5, 2), scales U(0.5, 1.5), biases
 * U(-0.1, 0.1)); last, the final parameter layer is rescaled so that the logits have a standard
 * deviation of 3 on the test image: random weights otherwise give a near-uniform softmax over
 * 1000 classes, whose top-5 would be an order of rounding noise. (The activations between the
 * last parameter layer and the [softmax], linear, leaky, ReLU or an average, are positively
 * homogeneous, so scaling its biases and weights, or its BN scales and shifts, scales the logits.)
 * The image: Darknet's data/dog.jpg (768x576, so the letterbox pads), decoded by stb_image and
 * written as PNG, which OpenCV (Debian's darknet) and stb decode to the same pixels.
 *
 * Three checks per cfg:
 *   - the two commands' printed top-5 (fork/exec, stdout parsed): the same labels in the same
 *     order, probabilities within 1e-4 (both print 0.01% steps, so 1e-4 is one printed step);
 *   - through libdarknet.so (dlopen): Darknet's load_image_color + letterbox_image against our
 *     views_load(-letterbox) input, and network_predict's full probability vector against our
 *     forward pass on that input: max |difference|, and the same relative to max p.
 * By default a few small cfgs (darknet, tiny, cifar, resnet18); CFGNET_DARKNET_ALL=1 runs all
 * seventeen (bench/darknet_parity.sh; minutes, Darknet's CPU code is slow). Skipped with a
 * message when Debian's darknet is absent. The `net` binary is $CFGNET_NET (test/run.sh sets it).
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/rng.h"
#include "data/image.h"
#include "data/picture.h"
#include "data/views.h"
#include "net/net.h"
#include "net/weights.h"

#include "fixture.h"

#define DARKNET "/usr/bin/darknet"
#define DARKNET_SO "/usr/lib/darknet/libdarknet.so"
#define DARKNET_CFG "/usr/share/darknet/cfg"
#define PHOTO "/usr/share/darknet/data/dog.jpg"
#define TOP 5
#define PRINT_TOL (1e-4 + 1e-9) /* one printed step of 0.01 % */
#define PROB_TOL 1e-4
#define LOGIT_STD 3.0

/* libdarknet's image (pjreddie image.h), returned by value. */
typedef struct {
    int w, h, c;
    float *data;
} dk_image;

struct darknet {
    void *so;
    void *(*parse)(char *cfg);
    void (*set_batch)(void *net, int b);
    void (*load)(void *net, char *weights);
    float *(*predict)(void *net, float *input);
    void (*destroy)(void *net);
    dk_image (*load_color)(char *path, int w, int h);
    dk_image (*letterbox)(dk_image im, int w, int h);
    void (*free_image)(dk_image im);
};

static int darknet_open(struct darknet *d)
{
    d->so = dlopen(DARKNET_SO, RTLD_NOW | RTLD_LOCAL);
    if (!d->so)
        return -1;
    *(void **)&d->parse = dlsym(d->so, "parse_network_cfg");
    *(void **)&d->set_batch = dlsym(d->so, "set_batch_network");
    *(void **)&d->load = dlsym(d->so, "load_weights");
    *(void **)&d->predict = dlsym(d->so, "network_predict");
    *(void **)&d->destroy = dlsym(d->so, "free_network");
    *(void **)&d->load_color = dlsym(d->so, "load_image_color");
    *(void **)&d->letterbox = dlsym(d->so, "letterbox_image");
    *(void **)&d->free_image = dlsym(d->so, "free_image");
    if (!d->parse || !d->set_batch || !d->load || !d->predict || !d->destroy || !d->load_color ||
        !d->letterbox || !d->free_image) {
        dlclose(d->so);
        return -1;
    }
    return 0;
}

/* Files of one run, in a temporary directory. */
struct files {
    char dir[64], png[128], data[128], names[128], weights[128];
};

/* Runs argv[0] with argv, its stdout into out (n bytes, NUL-terminated), stderr discarded.
 * Returns the exit status, or -1. */
static int run_capture(char *const argv[], char *out, size_t n)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], 1);
        if (!freopen("/dev/null", "w", stderr))
            _exit(126);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t k = 0;
    ssize_t r;
    while ((r = read(fd[0], out + k, n - 1 - k)) > 0 && k + (size_t)r < n - 1)
        k += (size_t)r;
    if (r > 0)
        k += (size_t)r;
    out[k] = '\0';
    close(fd[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* The top-5 lines "  12.34%: name" of either program's output. */
struct top5 {
    double p[TOP];
    int cls[TOP];
};

static int parse_top5(const char *out, struct top5 *t)
{
    int k = 0;
    for (const char *line = out; line && *line && k < TOP; line = strchr(line, '\n')) {
        line += *line == '\n';
        double pct;
        int cls, used = 0;
        if (sscanf(line, " %lf%%: c%d%n", &pct, &cls, &used) == 2 && used > 0) {
            t->p[k] = pct / 100;
            t->cls[k++] = cls;
        }
    }
    return k == TOP ? 0 : -1;
}

/* The photo as an RGB PNG. */
static void make_png(const char *path)
{
    uint8_t *px;
    int w, h;
    cn_error e;
    if (image_decode(&px, &w, &h, PHOTO, 3, &e))
        fail_msg("%s", e.msg);
    struct picture p;
    if (picture_create(&p, w, h, 0, &e))
        fail_msg("%s", e.msg);
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
            p.rgb[3 * i + (size_t)k] = px[(size_t)k * (size_t)w * (size_t)h + i];
    free(px);
    if (picture_write_png(&p, path, &e))
        fail_msg("%s", e.msg);
    picture_free(&p);
}

static void make_files(struct files *f, int classes)
{
    strcpy(f->dir, "/tmp/cfgnet_dkpredict_XXXXXX");
    if (!mkdtemp(f->dir))
        fail_msg("mkdtemp: %s", strerror(errno));
    snprintf(f->png, sizeof f->png, "%s/dog.png", f->dir);
    snprintf(f->data, sizeof f->data, "%s/net.data", f->dir);
    snprintf(f->names, sizeof f->names, "%s/names.list", f->dir);
    snprintf(f->weights, sizeof f->weights, "%s/net.weights", f->dir);
    make_png(f->png);
    char *names = xmalloc((size_t)classes * 16 + 1), *q = names;
    for (int i = 0; i < classes; i++)
        q += sprintf(q, "c%d\n", i);
    fx_write_text(f->names, names);
    free(names);
    char data[512];
    snprintf(data, sizeof data, "classes=%d\nnames=%s\nlabels=%s\ntop=%d\n", classes, f->names,
             f->names, TOP);
    fx_write_text(f->data, data);
}

static void remove_files(const struct files *f)
{
    remove(f->png), remove(f->data), remove(f->names), remove(f->weights);
    rmdir(f->dir);
}

/* Random BN statistics, scales and biases (see the top of the file). */
static void randomise(struct net *n, uint64_t seed)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (int i = 0; i < n->nparams; i++) {
        struct param *p = &n->params[i];
        double lo = 0, hi = 0;
        if (!strcmp(p->name, "rolling_mean"))
            lo = -0.1, hi = 0.1;
        else if (!strcmp(p->name, "rolling_variance"))
            lo = 0.5, hi = 2;
        else if (!strcmp(p->name, "scales"))
            lo = 0.5, hi = 1.5;
        else if (!strcmp(p->name, "biases"))
            lo = -0.1, hi = 0.1;
        else
            continue;
        for (size_t j = 0; j < p->n; j++)
            p->data[j] = (float)(lo + (hi - lo) * cn_rng_uniform(&r));
    }
    net_params_changed(n);
}

/* Index of the net's (main) [softmax]: the last one. */
static int softmax_index(const struct net *n)
{
    for (int i = n->n - 1; i >= 0; i--)
        if (n->layers[i].ops->type == LAYER_SOFTMAX)
            return i;
    fail_msg("%s: no [softmax]", n->cfg_path);
    return -1;
}

/* Scales the last parameter layer below the softmax so that the logits' std is LOGIT_STD. */
static void spread_logits(struct net *n)
{
    int s = softmax_index(n), last = -1;
    for (int i = 0; i < n->nparams; i++)
        if (n->params[i].layer < s)
            last = n->params[i].layer;
    assert_true(last >= 0);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    const float *z = n->layers[s - 1].output;
    size_t k = shape_size(n->layers[s - 1].out);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < k; i++)
        sum += z[i], sq += (double)z[i] * z[i];
    double sd = sqrt(fmax(sq / (double)k - (sum / (double)k) * (sum / (double)k), 1e-30));
    int has_scales = 0;
    for (int i = 0; i < n->nparams; i++)
        has_scales |= n->params[i].layer == last && !strcmp(n->params[i].name, "scales");
    for (int i = 0; i < n->nparams; i++) {
        struct param *q = &n->params[i];
        if (q->layer != last ||
            (strcmp(q->name, "biases") && strcmp(q->name, has_scales ? "scales" : "weights")))
            continue;
        for (size_t j = 0; j < q->n; j++)
            q->data[j] *= (float)(LOGIT_STD / sd);
    }
    net_params_changed(n);
}

/* Our library's letterboxed input and probabilities for the photo: fills n->input, runs it. */
static void our_predict(struct net *n, const char *png)
{
    struct view_spec v = {.crops = 1, .nscales = 1, .scale = {1.f}, .letterbox = 1};
    cn_error e;
    if (views_load(n->input, png, n->in.w, n->in.h, n->in.c, &v, &e))
        fail_msg("%s", e.msg);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
}

/* libdarknet on the same files: the input max |difference| and the probabilities'. */
static void compare_library(struct darknet *d, struct net *n, const char *cfg,
                            const struct files *f, double *dx, double *dp, double *pmax)
{
    dk_image im = d->load_color((char *)f->png, 0, 0);
    dk_image box = d->letterbox(im, n->in.w, n->in.h);
    size_t nx = net_inputs(n);
    *dx = 0;
    for (size_t i = 0; i < nx; i++)
        *dx = fmax(*dx, fabs((double)box.data[i] - (double)n->input[i]));
    void *dn = d->parse((char *)cfg);
    d->set_batch(dn, 1);
    d->load(dn, (char *)f->weights);
    const float *y = d->predict(dn, box.data);
    const float *ours = n->layers[softmax_index(n)].output;
    size_t ny = shape_size(n->layers[softmax_index(n)].out);
    *dp = 0, *pmax = 0;
    for (size_t i = 0; i < ny; i++) {
        *pmax = fmax(*pmax, y[i]);
        *dp = fmax(*dp, fabs((double)y[i] - (double)ours[i]));
    }
    d->destroy(dn);
    d->free_image(box);
    d->free_image(im);
}

/* One cfg: 0 when it agrees, else -1 (with what differs printed). */
static int check_cfg(struct darknet *d, const char *name)
{
    char cfg[256];
    snprintf(cfg, sizeof cfg, DARKNET_CFG "/%s.cfg", name);
    struct net *n = NULL;
    cn_error e;
    if (net_create(&n, cfg, 1, NET_KEEP_OUTPUTS, &e)) /* inner layers are read */
        fail_msg("%s", e.msg);
    struct files f;
    int classes = (int)shape_size(n->layers[softmax_index(n)].out);
    make_files(&f, classes);
    randomise(n, 7);
    our_predict(n, f.png);
    spread_logits(n);
    if (weights_save(n, f.weights, &e))
        fail_msg("%s", e.msg);
    our_predict(n, f.png);
    double dx, dp, pmax;
    compare_library(d, n, cfg, &f, &dx, &dp, &pmax);
    net_destroy(n);

    const char *net_bin = getenv("CFGNET_NET") ? getenv("CFGNET_NET") : "./net";
    static char out_dk[1 << 16], out_us[1 << 16];
    char *dk_argv[] = {DARKNET, "classifier", "predict", f.data, cfg, f.weights, f.png, NULL};
    char *us_argv[] = {(char *)net_bin, "classifier", "predict",    f.data, cfg,
                       f.weights,       f.png,        "-letterbox", NULL};
    int rd = run_capture(dk_argv, out_dk, sizeof out_dk);
    int ru = run_capture(us_argv, out_us, sizeof out_us);
    remove_files(&f);
    struct top5 a, b;
    if (rd || ru || parse_top5(out_dk, &a) || parse_top5(out_us, &b))
        fail_msg("%s: darknet exit %d, net (%s) exit %d; outputs:\n%s\n---\n%s", name, rd, net_bin,
                 ru, out_dk, out_us);
    double dtop = 0;
    int same = 1;
    for (int i = 0; i < TOP; i++) {
        same &= a.cls[i] == b.cls[i];
        dtop = fmax(dtop, fabs(a.p[i] - b.p[i]));
    }
    printf("%-18s top-5 %s (darknet c%d %.4f ... c%d %.4f), printed max|dp| %.1e; library: "
           "input max|dx| %.1e, probabilities max|dp| %.2e (%.2e of max p %.3f)\n",
           name, same ? "same" : "DIFFERENT", a.cls[0], a.p[0], a.cls[TOP - 1], a.p[TOP - 1], dtop,
           dx, dp, dp / pmax, pmax);
    if (same && dtop <= PRINT_TOL && dp <= PROB_TOL && dx <= 1e-6)
        return 0;
    printf("%s: darknet printed:\n%s%s: net printed:\n%s", name, out_dk, name, out_us);
    return -1;
}

/* Without darknet: -letterbox's view of a 4x2 RGB image in a 4x4 input is the image itself in
 * rows 1-2 (the same width: no resize) and 0.5 above and below; of the same image in an 8x8 input
 * (scaled 2x to 8x4 by Darknet's resize on the grid x * 3/7, rows 2-5), column x = 7 * k / 3
 * lands on source pixel k. And it is one view only. */
static void test_letterbox_view(void **state)
{
    (void)state;
    char path[] = "/tmp/cfgnet_letterbox_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct picture p;
    cn_error e;
    if (picture_create(&p, 4, 2, 0, &e))
        fail_msg("%s", e.msg);
    for (int i = 0; i < 8; i++)
        p.rgb[3 * i] = (uint8_t)(30 * i), p.rgb[3 * i + 1] = 255, p.rgb[3 * i + 2] = 0;
    if (picture_write_png(&p, path, &e))
        fail_msg("%s", e.msg);
    picture_free(&p);
    struct view_spec v = {.crops = 1, .nscales = 1, .scale = {1.f}, .letterbox = 1};
    float x[3 * 64];
    if (views_load(x, path, 4, 4, 3, &v, &e))
        fail_msg("%s", e.msg);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            float want = r == 0 || r == 3 ? .5f : (float)(30 * ((r - 1) * 4 + c)) / 255.f;
            assert_float_equal(x[r * 4 + c], want, 1e-7);
            assert_float_equal(x[16 + r * 4 + c], r == 0 || r == 3 ? .5f : 1.f, 1e-7);
            assert_float_equal(x[32 + r * 4 + c], r == 0 || r == 3 ? .5f : 0.f, 1e-7);
        }
    if (views_load(x, path, 8, 8, 3, &v, &e))
        fail_msg("%s", e.msg);
    assert_float_equal(x[0], .5f, 0);
    assert_float_equal(x[2 * 8 + 0], 0.f, 1e-7);           /* source (0, 0) */
    assert_float_equal(x[2 * 8 + 7], 90.f / 255.f, 1e-6);  /* source (3, 0) */
    assert_float_equal(x[5 * 8 + 0], 120.f / 255.f, 1e-6); /* source (0, 1) */
    assert_float_equal(x[6 * 8 + 3], .5f, 0);
    remove(path);
    struct view_spec two = v;
    two.crops = 2;
    assert_int_equal(views_check(&two, 8, 8, &e), -1);
    assert_non_null(strstr(e.msg, "letterbox"));
}

static int setup(void **state)
{
    static struct darknet d;
    *state = access(DARKNET, X_OK) || access(PHOTO, R_OK) || darknet_open(&d) ? NULL : &d;
    return 0;
}

static void check_all(void **state, const char *const *names, int count)
{
    if (!*state) {
        printf("SKIP darknet predict parity: " DARKNET ", " DARKNET_SO " or " PHOTO
               " is absent (Debian package darknet)\n");
        skip();
    }
    int bad = 0;
    for (int i = 0; i < count; i++)
        bad += check_cfg(*state, names[i]) != 0;
    if (bad)
        fail_msg("%d of %d cfgs differ from darknet classifier predict", bad, count);
}

static void test_small_cfgs(void **state)
{
    static const char *const names[] = {"darknet", "tiny", "cifar", "resnet18"};
    check_all(state, names, 4);
}

static void test_all_cfgs(void **state)
{
    static const char *const names[] = {
        "alexnet",     "vgg-16",    "resnet18",  "resnet34",         "resnet50",
        "resnet101",   "resnet152", "resnext50", "resnext101-32x4d", "resnext152-32x4d",
        "densenet201", "darknet",   "darknet19", "darknet53",        "extraction",
        "tiny",        "cifar"};
    const char *all = getenv("CFGNET_DARKNET_ALL");
    if (!all || strcmp(all, "1")) {
        printf("SKIP the 17 Darknet classification cfgs: set CFGNET_DARKNET_ALL=1 "
               "(bench/darknet_parity.sh)\n");
        skip();
    }
    check_all(state, names, (int)(sizeof names / sizeof *names));
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
        cmocka_unit_test(test_letterbox_view),
        cmocka_unit_test(test_small_cfgs),
        cmocka_unit_test(test_all_cfgs),
    };
    return cmocka_run_group_tests_name("darknet_predict", tests, setup, NULL);
}
