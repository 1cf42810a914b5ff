/* test_weights.c - .weights save/load and the checked file I/O under it.
 *
 * Round trips bit for bit (a hand-built net with a known layout, and a net built from cfg text
 * with a batch-normalised conv, a connected layer and softmax), the byte layout Darknet expects,
 * older header versions, and every rejection with its message: short, long and tiny files,
 * unknown and transposed versions, NaN/Inf, negative variance, missing files, another cfg's file.
 * A rejected load leaves the net untouched. The atomic writer leaves no temporary file and keeps
 * the old file when creating, writing (file size limit) or renaming fails.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "net/weights.h"

#include "fixture.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cfgnet-test-weights-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", tmpdir, tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/name (fixture.h: 16 rotating buffers, so a call can take several paths). */
static const char *path_in(const char *name)
{
    return fx_path(tmpdir, name);
}

/* Asserts that msg contains want, showing msg when it does not. */
static void expect_msg(const char *msg, const char *want)
{
    if (!strstr(msg, want))
        fail_msg("message \"%s\"\n  lacks \"%s\"", msg, want);
}

/* Number of entries of dir (besides . and ..) whose name contains part. */
static int count_entries(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int k = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strstr(de->d_name, part))
            k++;
    closedir(d);
    return k;
}

/* ---- a hand-built net: conv with batchnorm (3 filters, 2x2x2) then connected (2 x 3) ---- */

static const struct layer_ops conv_like = {.name = "convolutional"};
static const struct layer_ops connected_like = {.name = "connected"};

static const struct {
    const char *name;
    size_t n;
    unsigned flags;
    int layer;
} fake_spec[] = {
    {"biases", 3, PARAM_TRAIN, 0},
    {"scales", 3, PARAM_TRAIN, 0},
    {"rolling_mean", 3, 0, 0},
    {"rolling_variance", 3, 0, 0},
    {"weights", 24, PARAM_TRAIN | PARAM_DECAY, 0},
    {"biases", 2, PARAM_TRAIN, 1},
    {"weights", 6, PARAM_TRAIN | PARAM_DECAY, 1},
};
#define FAKE_PARAMS 7
#define FAKE_FLOATS 44
#define FAKE_BYTES (20 + 4 * FAKE_FLOATS)

/* Values drawn from seed; variances positive. Tensors 16 floats apart in the slab, as net.c. */
static struct net *fake_net(uint64_t seed)
{
    struct net *n = calloc(1, sizeof *n);
    cn_error e;
    n->cfg_path = strdup("fake.cfg");
    n->n = 2;
    n->layers = calloc(2, sizeof *n->layers);
    n->layers[0].ops = &conv_like;
    n->layers[1].ops = &connected_like;
    n->params = calloc(FAKE_PARAMS, sizeof *n->params);
    n->nparams = FAKE_PARAMS;
    n->nparam_floats = FAKE_FLOATS + 16 * FAKE_PARAMS;
    n->param_slab = cn_alloc_floats(n->nparam_floats, "params", &e);
    cn_rng r;
    cn_rng_seed(&r, seed);
    float *p = n->param_slab;
    for (int i = 0; i < FAKE_PARAMS; i++) {
        n->params[i] = (struct param){
            p, NULL, fake_spec[i].n, fake_spec[i].name, fake_spec[i].flags, fake_spec[i].layer};
        for (size_t j = 0; j < fake_spec[i].n; j++)
            p[j] = (float)(i == 3 ? 0.5 + cn_rng_uniform(&r) : cn_rng_normal(&r));
        p += fake_spec[i].n + 16;
    }
    return n;
}

static void fake_free(struct net *n)
{
    cn_free_floats(n->param_slab);
    free(n->params);
    free(n->layers);
    free(n->cfg_path);
    free(n);
}

/* Every parameter of a equals b's, bit for bit, and so does seen. */
static void assert_same_params(const struct net *a, const struct net *b)
{
    assert_int_equal(a->nparams, b->nparams);
    for (int i = 0; i < a->nparams; i++) {
        assert_int_equal(a->params[i].n, b->params[i].n);
        assert_memory_equal(a->params[i].data, b->params[i].data, 4 * a->params[i].n);
    }
    assert_true(a->seen == b->seen);
}

/* The file image of fake_net(seed) under a given header; seen as 64 bits when seen64. */
static size_t fake_file(unsigned char *buf, uint64_t seed, const int32_t v[3], uint64_t seen,
                        int seen64)
{
    struct net *n = fake_net(seed);
    memcpy(buf, v, 12);
    size_t off = 12;
    if (seen64) {
        memcpy(buf + off, &seen, 8);
        off += 8;
    } else {
        int32_t s32 = (int32_t)seen;
        memcpy(buf + off, &s32, 4);
        off += 4;
    }
    for (int i = 0; i < n->nparams; i++) {
        memcpy(buf + off, n->params[i].data, 4 * n->params[i].n);
        off += 4 * n->params[i].n;
    }
    fake_free(n);
    return off;
}

/* Loading path into fake_net(1) fails with want in the message, and changes nothing. */
static void expect_load_fails(const char *path, const char *want)
{
    struct net *n = fake_net(1), *ref = fake_net(1);
    n->seen = ref->seen = 5;
    cn_error e;
    assert_int_equal(weights_load(n, path, &e), -1);
    expect_msg(e.msg, want);
    assert_same_params(n, ref);
    fake_free(n);
    fake_free(ref);
}

static void test_save_layout(void **state)
{
    (void)state;
    struct net *n = fake_net(1);
    n->seen = 0x0102030405060708ull;
    cn_error e;
    const char *path = path_in("layout.weights");
    if (weights_save(n, path, &e))
        fail_msg("%s", e.msg);
    char *buf;
    size_t len;
    if (fileio_read_all(path, 1 << 20, &buf, &len, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(len, FAKE_BYTES);
    int32_t v[3];
    uint64_t seen;
    memcpy(v, buf, 12);
    memcpy(&seen, buf + 12, 8);
    assert_int_equal(v[0], 0);
    assert_int_equal(v[1], 2);
    assert_int_equal(v[2], 0);
    assert_true(seen == 0x0102030405060708ull);
    size_t off = 20; /* the tensors back to back, in declaration order */
    for (int i = 0; i < n->nparams; i++) {
        assert_memory_equal(buf + off, n->params[i].data, 4 * n->params[i].n);
        off += 4 * n->params[i].n;
    }
    free(buf);
    fake_free(n);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct net *a = fake_net(1), *b = fake_net(2);
    a->seen = 123456789012ull;
    cn_error e;
    const char *path = path_in("rt.weights");
    if (weights_save(a, path, &e) || weights_load(b, path, &e))
        fail_msg("%s", e.msg);
    assert_same_params(a, b);
    fake_free(a);
    fake_free(b);
}

/* 0.0 and 0.1 carry a 32-bit seen (16-byte header); AlexeyAB's 0.2.5 a 64-bit one. */
static void test_older_and_newer_versions(void **state)
{
    (void)state;
    unsigned char buf[FAKE_BYTES];
    const int32_t versions[3][3] = {{0, 0, 0}, {0, 1, 0}, {0, 2, 5}};
    for (int k = 0; k < 3; k++) {
        int seen64 = versions[k][1] == 2;
        size_t len = fake_file(buf, 1, versions[k], 777, seen64);
        assert_int_equal(len, seen64 ? FAKE_BYTES : FAKE_BYTES - 4);
        fx_write_file(path_in("v.weights"), buf, len);
        struct net *n = fake_net(2), *ref = fake_net(1);
        ref->seen = 777;
        cn_error e;
        if (weights_load(n, path_in("v.weights"), &e))
            fail_msg("version %d.%d.%d: %s", versions[k][0], versions[k][1], versions[k][2], e.msg);
        assert_same_params(n, ref);
        fake_free(n);
        fake_free(ref);
    }
}

static void test_wrong_size(void **state)
{
    (void)state;
    unsigned char buf[FAKE_BYTES + 8];
    char want[512];
    size_t len = fake_file(buf, 3, (const int32_t[]){0, 2, 0}, 9, 1);
    fx_write_file(path_in("short.weights"), buf, len - 4);
    snprintf(want, sizeof want,
             "%s: 192 bytes, but fake.cfg needs 196 (header 20 + 44 floats); "
             "is this the weights file of another cfg?",
             path_in("short.weights"));
    expect_load_fails(path_in("short.weights"), want);
    fx_write_file(path_in("long.weights"), buf, len + 1);
    expect_load_fails(path_in("long.weights"), "long.weights: 197 bytes, but fake.cfg needs 196");
    fx_write_file(path_in("tiny.weights"), "short", 5);
    expect_load_fails(path_in("tiny.weights"), "tiny.weights: 5 bytes, but fake.cfg needs 196");
    fx_write_file(path_in("empty.weights"), "", 0);
    expect_load_fails(path_in("empty.weights"), "empty.weights: 0 bytes");
    /* A 0.1 file is judged by its own 16-byte header. */
    len = fake_file(buf, 3, (const int32_t[]){0, 1, 0}, 9, 0);
    fx_write_file(path_in("old.weights"), buf, len + 4);
    expect_load_fails(path_in("old.weights"),
                      "old.weights: 196 bytes, but fake.cfg needs 192 (header 16 + 44 floats)");
}

static void test_bad_versions(void **state)
{
    (void)state;
    static const struct {
        int32_t v[3];
        const char *want;
    } cases[] = {
        {{1, 0, 0}, "bad.weights: unknown .weights version 1.0.0; expected Darknet's 0.0, 0.1 or"},
        {{0, 3, 0}, "unknown .weights version 0.3.0"},
        {{-1, 2, 0}, "unknown .weights version -1.2.0"},
        {{0, -2, 0}, "unknown .weights version 0.-2.0"},
        {{0, 1001, 0},
         "bad.weights: version 0.1001.0 marks [connected] weights stored "
         "transposed (Darknet's major or minor > 1000)"},
        {{1001, 2, 0}, "version 1001.2.0 marks [connected] weights stored transposed"},
    };
    unsigned char buf[FAKE_BYTES];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t len = fake_file(buf, 3, cases[k].v, 0, 1);
        fx_write_file(path_in("bad.weights"), buf, len);
        expect_load_fails(path_in("bad.weights"), cases[k].want);
    }
}

/* Overwrites float `index` of the tensor `param` in a file image of fake_net. */
static void poke(unsigned char *buf, int param, size_t index, float value)
{
    size_t off = 20;
    for (int i = 0; i < param; i++)
        off += 4 * fake_spec[i].n;
    memcpy(buf + off + 4 * index, &value, 4);
}

static void test_bad_values(void **state)
{
    (void)state;
    unsigned char buf[FAKE_BYTES];
    const int32_t v[3] = {0, 2, 0};
    /* Seed 3: the earlier tensors differ from the net's, so a partial copy would show. */
    fake_file(buf, 3, v, 0, 1);
    poke(buf, 6, 4, NAN);
    fx_write_file(path_in("nan.weights"), buf, FAKE_BYTES);
    expect_load_fails(path_in("nan.weights"), "nan.weights: layer 1 (connected) weights[4] is nan");
    fake_file(buf, 3, v, 0, 1);
    poke(buf, 1, 1, -INFINITY);
    fx_write_file(path_in("inf.weights"), buf, FAKE_BYTES);
    expect_load_fails(path_in("inf.weights"), "layer 0 (convolutional) scales[1] is -inf");
    fake_file(buf, 3, v, 0, 1);
    poke(buf, 3, 2, -0.5f);
    fx_write_file(path_in("var.weights"), buf, FAKE_BYTES);
    expect_load_fails(path_in("var.weights"), "var.weights: layer 0 (convolutional) "
                                              "rolling_variance[2] = -0.5; a variance cannot be "
                                              "negative");
    /* A negative mean is fine. */
    fake_file(buf, 3, v, 0, 1);
    poke(buf, 2, 0, -0.5f);
    fx_write_file(path_in("mean.weights"), buf, FAKE_BYTES);
    struct net *n = fake_net(1);
    cn_error e;
    if (weights_load(n, path_in("mean.weights"), &e))
        fail_msg("%s", e.msg);
    assert_true(n->params[2].data[0] == -0.5f);
    fake_free(n);
}

static void test_missing_file(void **state)
{
    (void)state;
    expect_load_fails(path_in("nope.weights"), "nope.weights: cannot open: No such file or dir");
    expect_load_fails(tmpdir, "is a directory, not a file");
}

/* ---- the atomic writer ---- */

static void test_atomic_leaves_no_temp(void **state)
{
    (void)state;
    const char *dir = path_in("clean");
    assert_int_equal(mkdir(dir, 0777), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/a.weights", dir);
    struct net *a = fake_net(1), *b = fake_net(2);
    cn_error e;
    if (weights_save(a, path, &e) || weights_save(b, path, &e)) /* the second replaces */
        fail_msg("%s", e.msg);
    assert_int_equal(count_entries(dir, ""), 1);
    assert_int_equal(count_entries(dir, "a.weights"), 1);
    if (weights_load(a, path, &e))
        fail_msg("%s", e.msg);
    assert_same_params(a, b);
    fake_free(a);
    fake_free(b);
}

static void test_atomic_create_fails(void **state)
{
    (void)state;
    struct net *n = fake_net(1);
    cn_error e;
    assert_int_equal(weights_save(n, path_in("nodir/a.weights"), &e), -1);
    expect_msg(e.msg, "nodir/a.weights: cannot create ");
    expect_msg(e.msg, "No such file or directory");
    fake_free(n);
    if (geteuid() == 0) /* root writes through permission bits: nothing more to check */
        return;
    const char *dir = path_in("readonly");
    char path[600];
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/a.weights", dir);
    struct net *old = fake_net(1);
    if (weights_save(old, path, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(chmod(dir, 0555), 0);
    n = fake_net(2);
    assert_int_equal(weights_save(n, path, &e), -1);
    expect_msg(e.msg, "Permission denied");
    assert_int_equal(chmod(dir, 0777), 0);
    struct net *check = fake_net(3);
    if (weights_load(check, path, &e))
        fail_msg("%s", e.msg);
    assert_same_params(check, old);
    fake_free(old);
    fake_free(n);
    fake_free(check);
}

/* The temporary name is taken (by a directory): open fails, the old file stays. */
static void test_atomic_temp_taken(void **state)
{
    (void)state;
    const char *dir = path_in("taken");
    char path[600], tmp[700];
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/a.weights", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    struct net *old = fake_net(1), *n = fake_net(2), *check = fake_net(3);
    cn_error e;
    if (weights_save(old, path, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(mkdir(tmp, 0777), 0);
    assert_int_equal(weights_save(n, path, &e), -1);
    expect_msg(e.msg, "Is a directory");
    assert_int_equal(rmdir(tmp), 0);
    if (weights_load(check, path, &e))
        fail_msg("%s", e.msg);
    assert_same_params(check, old);
    fake_free(old);
    fake_free(n);
    fake_free(check);
}

/* The target is a non-empty directory: the rename fails after a complete write. */
static void test_atomic_rename_fails(void **state)
{
    (void)state;
    const char *dir = path_in("ren");
    char path[600], inner[700];
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/a.weights", dir);
    snprintf(inner, sizeof inner, "%s/keep", path);
    assert_int_equal(mkdir(path, 0777), 0);
    fx_write_file(inner, "x", 1);
    struct net *n = fake_net(1);
    cn_error e;
    assert_int_equal(weights_save(n, path, &e), -1);
    expect_msg(e.msg, "cannot rename");
    assert_int_equal(count_entries(dir, ".tmp."), 0);
    assert_int_equal(count_entries(path, "keep"), 1);
    fake_free(n);
}

/* In a child with a 100-byte file size limit, fwrite fails (EFBIG) half way; exit status says
 * which check failed: 0 all good, 1 save succeeded, 2 wrong message. */
static int save_with_size_limit(const char *path)
{
    struct rlimit rl = {100, 100};
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl))
        return 3;
    struct net *n = fake_net(2);
    cn_error e;
    int rc = weights_save(n, path, &e);
    fake_free(n);
    if (rc == 0)
        return 1;
    return strstr(e.msg, "File too large") && strstr(e.msg, path) ? 0 : 2;
}

static void test_atomic_write_fails(void **state)
{
    (void)state;
    const char *dir = path_in("full");
    char path[600];
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/a.weights", dir);
    struct net *old = fake_net(1), *check = fake_net(3);
    cn_error e;
    if (weights_save(old, path, &e))
        fail_msg("%s", e.msg);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(save_with_size_limit(path));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    if (weights_load(check, path, &e))
        fail_msg("%s", e.msg);
    assert_same_params(check, old);
    assert_int_equal(count_entries(dir, ".tmp."), 0);
    fake_free(old);
    fake_free(check);
}

/* ---- the other fileio helpers ---- */

static void test_check_dir_writable(void **state)
{
    (void)state;
    cn_error e;
    const char *nested = path_in("made/by/check/");
    if (fileio_check_dir_writable(nested, &e))
        fail_msg("%s", e.msg);
    struct stat st;
    assert_int_equal(stat(nested, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(count_entries(nested, ""), 0); /* the probe is gone */
    if (fileio_check_dir_writable(nested, &e))      /* and again, now that it exists */
        fail_msg("%s", e.msg);
    fx_write_file(path_in("plain"), "x", 1);
    assert_int_equal(fileio_check_dir_writable(path_in("plain"), &e), -1);
    expect_msg(e.msg, "plain: exists but is not a directory");
    assert_int_equal(fileio_check_dir_writable(path_in("plain/sub"), &e), -1);
    expect_msg(e.msg, "plain/sub");
    expect_msg(e.msg, "Not a directory");
    assert_int_equal(fileio_check_dir_writable("", &e), -1);
    if (geteuid() == 0)
        return;
    const char *ro = path_in("ro");
    assert_int_equal(mkdir(ro, 0555), 0);
    assert_int_equal(fileio_check_dir_writable(ro, &e), -1);
    expect_msg(e.msg, "cannot create files there: Permission denied");
    assert_int_equal(chmod(ro, 0777), 0);
}

static void test_read_all(void **state)
{
    (void)state;
    cn_error e;
    char *buf = (char *)&e; /* must come back NULL on failure */
    size_t len = 99;
    fx_write_file(path_in("text"), "abc\0def", 7);
    if (fileio_read_all(path_in("text"), 7, &buf, &len, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "abc\0def\0", 8);
    free(buf);
    assert_int_equal(fileio_read_all(path_in("text"), 6, &buf, &len, &e), -1);
    assert_null(buf);
    expect_msg(e.msg, "text: larger than the limit of 6 bytes");
    assert_int_equal(fileio_read_all(path_in("none"), 6, &buf, &len, &e), -1);
    expect_msg(e.msg, "none: cannot open: No such file or directory");
    /* Bigger than one read chunk. */
    size_t big = 200001;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7);
    fx_write_file(path_in("big"), data, big);
    if (fileio_read_all(path_in("big"), big, &buf, &len, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(len, big);
    assert_memory_equal(buf, data, big);
    free(buf);
    free(data);
    assert_int_equal(fileio_read_all(tmpdir, 100, &buf, &len, &e), -1);
    expect_msg(e.msg, "Is a directory");
    fx_write_file(path_in("empty"), "", 0);
    if (fileio_read_all(path_in("empty"), 0, &buf, &len, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], '\0');
    free(buf);
}

/* ---- nets built from cfg text ---- */

static const char bn_cfg[] = "[net]\nbatch=2\nheight=5\nwidth=5\nchannels=2\nseed=3\n"
                             "[convolutional]\nbatch_normalize=1\nfilters=3\nsize=3\nstride=1\n"
                             "pad=1\nactivation=leaky\n"
                             "[connected]\noutput=4\nactivation=linear\n"
                             "[softmax]\n";

/* Darknet's order, which the file follows: conv = biases, scales, rolling_mean,
 * rolling_variance, weights; connected = biases, weights. */
static void test_cfg_round_trip(void **state)
{
    (void)state;
    struct net *a = test_net(bn_cfg, 0, 0), *b = test_net(bn_cfg, 0, 0);
    static const char *const order[] = {"biases",  "scales", "rolling_mean", "rolling_variance",
                                        "weights", "biases", "weights"};
    static const size_t sizes[] = {3, 3, 3, 3, 3 * 2 * 3 * 3, 4, 4 * 75};
    assert_int_equal(a->nparams, 7);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(a->params[i].name, order[i]);
        assert_int_equal(a->params[i].n, sizes[i]);
    }
    /* Rolling statistics off their initial 0 and 1, so the round trip shows them. */
    cn_rng r;
    cn_rng_seed(&r, 11);
    for (int k = 0; k < 3; k++) {
        a->params[2].data[k] = (float)cn_rng_normal(&r);
        a->params[3].data[k] = (float)(0.1 + cn_rng_uniform(&r));
    }
    a->seen = 4242;
    net_init_params(b, 99);
    cn_error e;
    const char *path = path_in("bn.weights");
    if (weights_save(a, path, &e) || weights_load(b, path, &e))
        fail_msg("%s", e.msg);
    assert_same_params(a, b);
    uint64_t size;
    if (fileio_size(path, &size, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(size, 20 + 4 * (12 + 54 + 4 + 300));
    net_destroy(a);
    net_destroy(b);
}

static void test_cfg_of_another_net(void **state)
{
    (void)state;
    struct net *a = test_net(bn_cfg, 0, 0), *b;
    cn_error e;
    if (weights_save(a, path_in("a.weights"), &e))
        fail_msg("%s", e.msg);
    char other[sizeof bn_cfg + 8];
    snprintf(other, sizeof other, "%s", bn_cfg);
    memcpy(strstr(other, "filters=3"), "filters=4", 9);
    if (net_create_from_string(&b, other, "other.cfg", 0, 0, &e))
        fail_msg("%s", e.msg);
    struct net *ref = test_net(other, 0, 0);
    assert_int_equal(weights_load(b, path_in("a.weights"), &e), -1);
    char want[512];
    snprintf(want, sizeof want,
             "%s: 1500 bytes, but other.cfg needs 1988 (header 20 + 492 "
             "floats); is this the weights file of another cfg?",
             path_in("a.weights"));
    assert_string_equal(e.msg, want);
    assert_same_params(b, ref);
    net_destroy(a);
    net_destroy(b);
    net_destroy(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_layout),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_older_and_newer_versions),
        cmocka_unit_test(test_wrong_size),
        cmocka_unit_test(test_bad_versions),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_atomic_leaves_no_temp),
        cmocka_unit_test(test_atomic_create_fails),
        cmocka_unit_test(test_atomic_temp_taken),
        cmocka_unit_test(test_atomic_rename_fails),
        cmocka_unit_test(test_atomic_write_fails),
        cmocka_unit_test(test_check_dir_writable),
        cmocka_unit_test(test_read_all),
        cmocka_unit_test(test_cfg_round_trip),
        cmocka_unit_test(test_cfg_of_another_net),
    };
    return cmocka_run_group_tests_name("weights", tests, setup, teardown);
}
