/* test_torch_parity.c - whole networks against torchvision: resnet18, googlenet, inception_v3,
 * squeezenet1_1, resnext50_32x4d and mobilenet_v2, each from its cfg in cfg/, with random weights
 * that test/ref/torch_convert.py draws in PyTorch and writes into our .weights file.
 *
 * For each: the logits (the cfg without its final [softmax]) in inference mode, and the input
 * gradient of L = sum(logits * v) for a fixed random v, run through our backward from the same
 * dL/dlogits = v on a net built for training but run with pass.train = 0 (batch norms on their
 * running statistics, dropout the identity). PyTorch computes both in float64 on the same float32
 * weights. The norm: max |ours - torch| / max |torch| over the whole tensor, at most 1e-4.
 *
 * Resolutions are reduced so that the suite stays fast (the global average pools make every
 * torchvision classifier resolution-independent); GoogLeNet and Inception v3 then run without
 * their auxiliary heads (--strip-aux: they need the full input and take no part in inference).
 * CFGNET_PARITY_FULL=1 adds both at full resolution with the heads left in (bench/parity.sh):
 * their logits check the .weights order with the heads in the middle of the file; their input
 * gradients are printed only (kinks, see check_model). Skipped with a message when /usr/bin/python3
 * cannot import torch or torchvision (Debian python3-torchvision).
 */
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

#include "net/net.h"
#include "net/weights.h"

#define PYTHON "/usr/bin/python3"
#define SCRIPT "test/ref/torch_convert.py"
#define NO_TORCH 77 /* the script's exit status when torch or torchvision is missing */
#define TOL 1e-4

struct model_case {
    const char *model;
    int side, batch, strip_aux;
    int logits_only; /* the input gradient is printed, not checked (see check_model) */
};

/* The converter's name for a case and its output directory under root. */
static void case_name(char *buf, size_t n, const struct model_case *c, int seed)
{
    snprintf(buf, n, "%s:%d:%d:%d%s", c->model, c->side, c->batch, seed,
             c->strip_aux ? ":strip" : "");
}

static void case_dir(char *buf, size_t n, const char *root, const struct model_case *c, int seed)
{
    char name[128];
    case_name(name, sizeof name, c, seed);
    for (char *q = name; *q; q++)
        *q = *q == ':' ? '_' : *q;
    snprintf(buf, n, "%s/%s", root, name);
}

/* Runs the converter on count cases at seed into root (one python process); returns its exit
 * status, or -1 when it could not run. */
static int run_convert(const char *root, const struct model_case *c, int count, int seed)
{
    enum { MAX_CASES = 8 };
    char names[MAX_CASES][128];
    char *argv[MAX_CASES + 4] = {PYTHON, SCRIPT, (char *)root};
    CN_ASSERT(count <= MAX_CASES);
    for (int i = 0; i < count; i++) {
        case_name(names[i], sizeof names[i], &c[i], seed);
        argv[3 + i] = names[i];
    }
    argv[3 + count] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(PYTHON, argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* n floats from dir/name, which must hold exactly that many. */
static float *read_f32(const char *dir, const char *name, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    float *v = xmalloc(sizeof(float) * (n + 1));
    size_t got = fread(v, sizeof(float), n + 1, f);
    fclose(f);
    if (got != n)
        fail_msg("%s: %zu floats, expected %zu", path, got, n);
    return v;
}

/* max |a - b| / max |b|; *top receives max |b|. */
static double rel_diff(const float *a, const float *b, size_t n, double *top)
{
    double m = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        m = fmax(m, fabs((double)b[i]));
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
    }
    *top = m;
    return m > 0 ? d / m : INFINITY;
}

static void remove_outputs(const char *dir)
{
    static const char *const names[] = {"net.cfg", "net.weights", "input.f32",
                                        "vec.f32", "output.f32",  "dinput.f32"};
    char path[600];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

enum verdict { SAME, LOGITS_DIFFER, GRADIENT_DIFFERS };

/* Our logits and input gradient on the converted net in dir, against torch's. */
static enum verdict compare_net(const struct model_case *c, const char *dir, int seed)
{
    char cfg[600], wts[600];
    snprintf(cfg, sizeof cfg, "%s/net.cfg", dir);
    snprintf(wts, sizeof wts, "%s/net.weights", dir);
    struct net *n = NULL;
    cn_error e;
    if (net_create(&n, cfg, 0, NET_TRAIN | NET_INPUT_GRAD, &e) || weights_load(n, wts, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(n->batch, c->batch);
    size_t nx = net_inputs(n) * (size_t)n->batch, ny = net_outputs(n) * (size_t)n->batch;
    float *x = read_f32(dir, "input.f32", nx), *v = read_f32(dir, "vec.f32", ny);
    float *y = read_f32(dir, "output.f32", ny), *dx = read_f32(dir, "dinput.f32", nx);
    memcpy(n->input, x, sizeof(float) * nx);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    double ytop, dxtop, yd = rel_diff(net_output(n), y, ny, &ytop);
    memcpy(net_last(n)->doutput, v, sizeof(float) * ny);
    memset(n->input_grad, 0, sizeof(float) * nx);
    net_backward(n, &p);
    double dxd = rel_diff(n->input_grad, dx, nx, &dxtop);
    printf("%s %dx%d batch %d%s seed %d: logits max|diff|/max|y| = %.2e (max|y| %.3g), input "
           "gradient %.2e (max %.3g)\n",
           c->model, c->side, c->side, c->batch, c->strip_aux ? " (no aux heads)" : "", seed, yd,
           ytop, dxd, dxtop);
    free(x), free(v), free(y), free(dx);
    net_destroy(n);
    return !(yd <= TOL) ? LOGITS_DIFFER : !(dxd <= TOL) ? GRADIENT_DIFFERS : SAME;
}

/* The cases of the suite, converted by one python process in the group setup. */
static const struct model_case cases[] = {
    {"resnet18", 64, 2, 0, 0},     {"resnext50_32x4d", 64, 1, 0, 0},
    {"mobilenet_v2", 64, 2, 0, 0}, {"squeezenet1_1", 64, 2, 0, 0},
    {"googlenet", 80, 2, 1, 0},    {"inception_v3", 107, 1, 1, 0},
};
#define NCASES ((int)(sizeof cases / sizeof *cases))

struct suite {
    char root[64];
    int status; /* the converter's exit status for the cases at seed 1 */
};

static int suite_setup(void **state)
{
    static struct suite s;
    strcpy(s.root, "/tmp/cfgnet_parity_XXXXXX");
    if (!mkdtemp(s.root))
        return -1;
    s.status = access(PYTHON, X_OK) ? NO_TORCH : run_convert(s.root, cases, NCASES, 1);
    if (s.status == NO_TORCH)
        printf("SKIP torch parity: " PYTHON " is absent or cannot import torch and torchvision "
               "(Debian python3-torch, python3-torchvision)\n");
    *state = &s;
    return 0;
}

static int suite_teardown(void **state)
{
    struct suite *s = *state;
    rmdir(s->root);
    return 0;
}

/* Converts c at seed (unless done) and compares; removes the case's files. */
static enum verdict check_seed(const struct suite *s, const struct model_case *c, int seed,
                               int converted)
{
    int rc = converted || access(PYTHON, X_OK) ? s->status : run_convert(s->root, c, 1, seed);
    char dir[512];
    case_dir(dir, sizeof dir, s->root, c, seed);
    if (rc == NO_TORCH) {
        printf("SKIP %s parity: " PYTHON " cannot import torch and torchvision "
               "(apt-get install python3-torch python3-torchvision)\n",
               c->model);
        skip();
    }
    if (rc != 0) {
        remove_outputs(dir);
        fail_msg(SCRIPT " failed (exit status %d)", rc);
    }
    enum verdict v = compare_net(c, dir, seed);
    remove_outputs(dir);
    return v;
}

/* Logits must agree at the first seed. The input gradient of a ReLU net is discontinuous at
 * its kinks: a pre-activation within float32 rounding of 0 (a residual sum that cancels to
 * 2e-5 from terms of 1.3 did, in resnext50) takes the other branch in one of the two runs and
 * changes the gradient everywhere below it. So a gradient mismatch alone is retried on fresh
 * weights and input, up to SEEDS draws; a real backward error is there at every draw. */
#define SEEDS 3
/* At full resolution the nets have millions of ReLU inputs and every draw has a few within
 * rounding of 0 (GoogLeNet at 224: 4 sign flips per draw, at pre-activations of 1e-6), so there
 * only the logits are checked; the gradient is checked at the reduced sizes above. */
static void check_model(const struct suite *s, const struct model_case *c, int converted)
{
    for (int seed = 1; seed <= SEEDS; seed++) {
        enum verdict v = check_seed(s, c, seed, converted && seed == 1);
        if (v == SAME || (v == GRADIENT_DIFFERS && c->logits_only))
            return;
        if (v == LOGITS_DIFFER)
            fail_msg("%s: logits differ from torch's by more than %g (relative)", c->model, TOL);
        printf("%s: input gradient differs at seed %d (a ReLU input at a kink?); next seed\n",
               c->model, seed);
    }
    fail_msg("%s: input gradients differ from torch's by more than %g (relative) at %d seeds",
             c->model, TOL, SEEDS);
}

static void test_resnet18(void **state)
{
    check_model(*state, &cases[0], 1);
}

static void test_resnext50(void **state)
{
    check_model(*state, &cases[1], 1);
}

static void test_mobilenet_v2(void **state)
{
    check_model(*state, &cases[2], 1);
}

static void test_squeezenet1_1(void **state)
{
    check_model(*state, &cases[3], 1);
}

static void test_googlenet(void **state)
{
    check_model(*state, &cases[4], 1);
}

static void test_inception_v3(void **state)
{
    check_model(*state, &cases[5], 1);
}

/* Full resolution, auxiliary heads in the cfg and the .weights (CFGNET_PARITY_FULL=1). */
static void test_full_resolution(void **state)
{
    const char *full = getenv("CFGNET_PARITY_FULL");
    if (!full || strcmp(full, "1")) {
        printf("SKIP full-resolution parity (googlenet 224, inception_v3 299 with aux heads): "
               "set CFGNET_PARITY_FULL=1 (bench/parity.sh)\n");
        skip();
    }
    check_model(*state, &(struct model_case){"googlenet", 224, 1, 0, 1}, 0);
    check_model(*state, &(struct model_case){"inception_v3", 299, 1, 0, 1}, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet18),        cmocka_unit_test(test_resnext50),
        cmocka_unit_test(test_mobilenet_v2),    cmocka_unit_test(test_squeezenet1_1),
        cmocka_unit_test(test_googlenet),       cmocka_unit_test(test_inception_v3),
        cmocka_unit_test(test_full_resolution),
    };
    return cmocka_run_group_tests_name("torch_parity", tests, suite_setup, suite_teardown);
}
