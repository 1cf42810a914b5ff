/* test_train.c - `net classifier train` end to end: exact resume (2N iterations straight equal N,
 * stop, resume N, bit for bit, SGD and Adam, at one thread), validation during training leaving
 * the trajectory unchanged, the CSV/SVG log, -h naming every flag, a non-finite loss naming its
 * layer and keeping the checkpoint, and SIGINT (checkpoint, status 130, how to resume; a second
 * signal exits at once). Runs $CFGNET_NET with posix_spawn and OMP_NUM_THREADS=1: no shell. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

extern char **environ;

static char dir[] = "/tmp/cfgnet_train_XXXXXX";

static const char *path_in(const char *name)
{
    return fx_path(dir, name);
}

static void write_text(const char *name, const char *text)
{
    fx_write_text(path_in(name), text);
}

/* The whole file, malloc'd (NUL after it), or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = '\0';
    if (len)
        *len = got;
    return b;
}

struct run {
    int status;
    char *out, *err;
};

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static char *env1[] = {"OMP_NUM_THREADS=1", NULL};

static pid_t spawn_net(const char *const *args)
{
    const char *net = getenv("CFGNET_NET");
    char *argv[40];
    int k = 0;
    argv[k++] = (char *)(net ? net : "./net");
    for (; args[k - 1] && k < 39; k++)
        argv[k] = (char *)args[k - 1];
    argv[k] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, path_in("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, path_in("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, env1))
        fail_msg("cannot run %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static void wait_net(struct run *r, pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->out = slurp(path_in("stdout"), NULL);
    r->err = slurp(path_in("stderr"), NULL);
}

/* Runs a command line through /bin/sh, as a user pasting it would (stdout and stderr kept). */
static void run_shell(struct run *r, const char *cmd)
{
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, path_in("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, path_in("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, env1))
        fail_msg("cannot run /bin/sh");
    posix_spawn_file_actions_destroy(&fa);
    wait_net(r, pid);
}

static void run_net(struct run *r, const char *const *args)
{
    wait_net(r, spawn_net(args));
}

static void run_ok(const char *const *args)
{
    struct run r;
    run_net(&r, args);
    if (r.status != 0)
        fail_msg("status %d; stderr: %s", r.status, r.err);
    run_free(&r);
}

/* Conv + batch norm + dropout + connected: every kind of state a resume must restore. */
static const char cfg_fmt[] =
    "[net]\nbatch=4\nsubdivisions=2\nheight=8\nwidth=8\nchannels=1\nmax_batches=%d\n"
    "learning_rate=0.05\nmomentum=0.9\ndecay=0.001\npolicy=cosine\nburn_in=3\nseed=7\n%s"
    "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"
    "[maxpool]\nsize=2\nstride=2\n[dropout]\nprobability=0.3\n"
    "[connected]\noutput=2\nactivation=linear\n[softmax]\n";

static void write_cfg(const char *name, int max, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text, cfg_fmt, max, extra);
    write_text(name, text);
}

/* A .data file whose backup= is its own directory. */
static void write_data(const char *name, const char *backup)
{
    char data[2048];
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nvalid=%s\nlabels=%s\nbackup=%s\ntop=1\n",
             path_in("train.list"), path_in("valid.list"), path_in("labels"), path_in(backup));
    write_text(name, data);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    write_text("labels", "_cat\n_dog\n");
    char list[8192] = "", vlist[8192] = "";
    uint32_t x = 12345;
    /* 11 images, so 4-image batches straddle epochs; 8x8 gray PGM with pseudo-random pixels. */
    for (int i = 0; i < 11; i++) {
        unsigned char img[64 + 16];
        int h = snprintf((char *)img, 16, "P5\n8 8\n255\n");
        for (int j = 0; j < 64; j++) {
            x = x * 1664525u + 1013904223u;
            img[h + j] = (unsigned char)((x >> 24) / (i % 2 ? 2 : 1));
        }
        char name[64];
        snprintf(name, sizeof name, "img%02d_%s.pgm", i, i % 2 ? "_cat" : "_dog");
        fx_write_file(path_in(name), img, (size_t)h + 64);
        strcat(i < 7 ? list : vlist, path_in(name));
        strcat(i < 7 ? list : vlist, "\n");
        if (i >= 7) {
            strcat(list, path_in(name));
            strcat(list, "\n");
        }
    }
    write_text("train.list", list);
    write_text("valid.list", vlist);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pid_t pid;
    char *argv[] = {"rm", "-rf", dir, NULL};
    /* rm -rf through posix_spawnp: an argument vector, no shell. */
    if (posix_spawnp(&pid, "rm", NULL, NULL, argv, environ) == 0)
        waitpid(pid, NULL, 0);
    return 0;
}

static void expect_same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    if (!x || !y)
        fail_msg("missing %s or %s", x ? b : a, x ? b : a);
    if (na != nb || memcmp(x, y, na)) {
        size_t i = 0;
        while (i < na && i < nb && x[i] == y[i])
            i++;
        fail_msg("%s and %s differ (%zu and %zu bytes, first difference at byte %zu)", a, b, na, nb,
                 i);
    }
    free(x);
    free(y);
}

static void resume_case(const char *extra, const char *tag)
{
    char cfg[64], straight[64], split[64], d1[64], d2[64], last[128], fa[128], fb[128];
    snprintf(cfg, sizeof cfg, "r%s.cfg", tag);
    snprintf(straight, sizeof straight, "s%s", tag);
    snprintf(split, sizeof split, "p%s", tag);
    snprintf(d1, sizeof d1, "s%s.data", tag);
    snprintf(d2, sizeof d2, "p%s.data", tag);
    write_cfg(cfg, 10, extra);
    write_data(d1, straight);
    write_data(d2, split);
    run_ok((const char *const[]){"classifier", "train", path_in(d1), path_in(cfg), NULL});
    run_ok((const char *const[]){"classifier", "train", path_in(d2), path_in(cfg), "-stop_after",
                                 "5", NULL});
    snprintf(last, sizeof last, "%s/r%s_last.weights", split, tag);
    run_ok((const char *const[]){"classifier", "train", path_in(d2), path_in(cfg), path_in(last),
                                 NULL});
    snprintf(fa, sizeof fa, "%s/r%s_final.weights", straight, tag);
    snprintf(fb, sizeof fb, "%s/r%s_final.weights", split, tag);
    expect_same_file(path_in(fa), path_in(fb));
    strcat(fa, ".state");
    strcat(fb, ".state");
    expect_same_file(path_in(fa), path_in(fb));
    printf("resume (%s): 10 iterations straight == 5 + resume 5, weights and state bit for bit\n",
           tag);
}

static void test_resume_sgd(void **state)
{
    (void)state;
    resume_case("", "sgd");
}

static void test_resume_adam(void **state)
{
    (void)state;
    resume_case("adam=1\n", "adam");
}

/* Validating every 3 iterations gives the same final weights as never validating. */
static void test_validation_keeps_trajectory(void **state)
{
    (void)state;
    write_cfg("v.cfg", 10, "");
    write_data("v1.data", "v1");
    write_data("v2.data", "v2");
    run_ok(
        (const char *const[]){"classifier", "train", path_in("v1.data"), path_in("v.cfg"), NULL});
    struct run r;
    run_net(&r, (const char *const[]){"classifier", "train", path_in("v2.data"), path_in("v.cfg"),
                                      "-valid_every", "3", "-print_every", "2", NULL});
    if (r.status)
        fail_msg("status %d: %s", r.status, r.err);
    assert_non_null(strstr(r.out, "valid top-1"));
    run_free(&r);
    expect_same_file(path_in("v1/v_final.weights"), path_in("v2/v_final.weights"));
    char *csv = slurp(path_in("v2/v.csv"), NULL);
    assert_non_null(csv);
    assert_non_null(
        strstr(csv, "iteration,epoch,loss,avg_loss,learning_rate,images_per_s,top1,top1"));
    /* Rows at 2, 3 (validated), 4, 6 (validated), 8, 9 (validated), 10 (validated). */
    int rows = 0, measured = 0;
    for (char *p = strchr(csv, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        rows++;
        char *end = strchr(p + 1, '\n');
        measured += end && end[-1] != ',';
    }
    assert_int_equal(rows, 7);
    assert_int_equal(measured, 4);
    free(csv);
    char *svg = slurp(path_in("v2/v.svg"), NULL);
    assert_non_null(svg);
    assert_non_null(strstr(svg, "<svg"));
    assert_non_null(strstr(svg, "validation accuracy"));
    assert_non_null(strstr(svg, "</svg>"));
    free(svg);
    run_ok((const char *const[]){"plot", path_in("v2/v.csv"), "-o", path_in("v2/again.svg"),
                                 "-title", path_in("v.cfg"), NULL});
    expect_same_file(path_in("v2/again.svg"), path_in("v2/v.svg"));
}

static void test_help_lists_every_flag(void **state)
{
    (void)state;
    struct run r;
    run_net(&r, (const char *const[]){"classifier", "train", "-h", NULL});
    assert_int_equal(r.status, 0);
    const char *flags[] = {"-clear",        "-seed",           "-print_every",
                           "-backup_every", "-snapshot_every", "-keep",
                           "-valid_every",  "-stop_after",     "-h"};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        if (!strstr(r.out, flags[i]))
            fail_msg("'classifier train -h' does not mention %s:\n%s", flags[i], r.out);
    run_free(&r);
}

/* Weights of 3e38: the first layer's output overflows, the loss is NaN at iteration 1. */
static void test_nonfinite_loss(void **state)
{
    (void)state;
    write_text("n.cfg", "[net]\nbatch=2\nheight=8\nwidth=8\nchannels=1\nmax_batches=5\n"
                        "[connected]\noutput=2\nactivation=linear\n[softmax]\n");
    write_data("n.data", "nb");
    size_t floats = 2 + 2 * 64;
    unsigned char *w = calloc(1, 20 + 4 * floats);
    int32_t version[3] = {0, 2, 0};
    memcpy(w, version, sizeof version);
    for (size_t i = 0; i < floats; i++) {
        float v = 3e38f;
        memcpy(w + 20 + 4 * i, &v, 4);
    }
    fx_write_file(path_in("n.weights"), w, 20 + 4 * floats);
    free(w);
    struct run r;
    run_net(&r, (const char *const[]){"classifier", "train", path_in("n.data"), path_in("n.cfg"),
                                      path_in("n.weights"), NULL});
    assert_int_equal(r.status, 1);
    if (!strstr(r.err, "iteration 1") || !strstr(r.err, "layer 0 [connected]"))
        fail_msg("message does not name the iteration and layer: %s", r.err);
    run_free(&r);
    struct stat st;
    assert_int_not_equal(stat(path_in("nb/n_final.weights"), &st), 0);
    assert_int_not_equal(stat(path_in("nb/n_last.weights"), &st), 0);
}

/* A PNG whose header passes the check before training (signature, IHDR: 8x8 gray) but whose
 * IDAT is not zlib data: decoding fails only when the loader reaches it. train must say so
 * once, with the path, and count it in the progress lines, and train on the other images. */
static void test_skipped_image_reported(void **state)
{
    (void)state;
    static const unsigned char png[] = {
        0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a,                   /* signature */
        0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 8, 0, 0, 0, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 16, 'I', 'D', 'A', 'T', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,           /* IDAT: not zlib */
        0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    fx_write_file(path_in("broken_cat.png"), png, sizeof png);
    char *list = slurp(path_in("train.list"), NULL), text[8192], data[2048];
    snprintf(text, sizeof text, "%s%s\n", list, path_in("broken_cat.png"));
    free(list);
    write_text("skip.list", text); /* 11 images + the broken one: 3 batches of 4 = one epoch */
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nlabels=%s\nbackup=%s\n",
             path_in("skip.list"), path_in("labels"), dir);
    write_text("skip.data", data);
    write_cfg("skip.cfg", 3, "");
    struct run r;
    run_net(&r, (const char *const[]){"classifier", "train", path_in("skip.data"),
                                      path_in("skip.cfg"), "-print_every", "1", NULL});
    if (r.status != 0)
        fail_msg("status %d; stderr: %s", r.status, r.err);
    char want[600];
    snprintf(want, sizeof want, "net: warning: %s:12: %s: cannot decode", path_in("skip.list"),
             path_in("broken_cat.png"));
    const char *at = strstr(r.err, want);
    if (!at || !strstr(at, "(skipped)"))
        fail_msg("expected '%s ... (skipped)' on stderr, got: %s", want, r.err);
    if (strstr(strchr(at, '\n') ? strchr(at, '\n') : at, "broken_cat.png"))
        fail_msg("reported more than once: %s", r.err);
    const char *last = strstr(r.out, "3/3:");
    if (!last || !strstr(last, ", 1 image skipped"))
        fail_msg("the progress line does not count the skipped image: %s", r.out);
    run_free(&r);
    printf("skipped image: reported once on stderr, counted in the progress line\n");
}

/* Waits (up to 60 s) until the child's stdout (or stderr) contains want. */
static void wait_for(const char *stream, const char *want)
{
    for (int i = 0; i < 60000; i++) {
        char *out = slurp(path_in(stream), NULL);
        int found = out && strstr(out, want);
        free(out);
        if (found)
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    fail_msg("no '%s' in %s after 60 s", want, stream);
}

static void wait_for_output(const char *want)
{
    wait_for("stdout", want);
}

static void test_sigint_checkpoints(void **state)
{
    (void)state;
    write_cfg("i.cfg", 100000000, "");
    write_data("i.data", "ib");
    pid_t pid = spawn_net((const char *const[]){"classifier", "train", path_in("i.data"),
                                                path_in("i.cfg"), "-print_every", "20", NULL});
    wait_for_output("20/100000000");
    kill(pid, SIGINT);
    struct run r;
    wait_net(&r, pid);
    assert_int_equal(r.status, 130);
    /* The hint is a command to paste: this program (as it was run), the run's files and flags. */
    const char *hint = strstr(r.out, "resume with: ");
    assert_non_null(hint);
    char cmd[4096], want[4096];
    snprintf(want, sizeof want, "%s classifier train %s %s %s -print_every 20\n",
             getenv("CFGNET_NET") ? getenv("CFGNET_NET") : "./net", path_in("i.data"),
             path_in("i.cfg"), path_in("ib/i_last.weights"));
    if (strncmp(hint + 13, want, strlen(want)))
        fail_msg("resume hint: %s\nwanted: %s", hint, want);
    snprintf(cmd, sizeof cmd, "%.*s -stop_after 1", (int)(strlen(want) - 1), want);
    run_free(&r);
    /* The checkpoint resumes: the pasted hint with -stop_after 1 starts past iteration 20. */
    run_shell(&r, cmd);
    const char *from = strstr(r.out, "from iteration ");
    if (r.status != 0 || !from || atoi(from + 15) < 20)
        fail_msg("resume after SIGINT: status %d\n%s%s", r.status, r.out, r.err);
    run_free(&r);
}

/* A slower net (a step of some milliseconds, a checkpoint of 34 MB) so that the second SIGINT
 * lands while the first is being served: during the batch or the checkpoint write. Whichever,
 * the previous j_last.weights must come out byte for byte as it was. */
static void test_second_sigint_exits_at_once(void **state)
{
    (void)state;
    write_text("j.cfg", "[net]\nbatch=4\nheight=8\nwidth=8\nchannels=1\nmax_batches=100000000\n"
                        "[connected]\noutput=2048\nactivation=relu\n[connected]\noutput=2048\n"
                        "activation=relu\n[connected]\noutput=2\nactivation=linear\n[softmax]\n");
    write_data("j.data", "jb");
    run_ok((const char *const[]){"classifier", "train", path_in("j.data"), path_in("j.cfg"),
                                 "-stop_after", "1", NULL});
    size_t len0;
    char *before = slurp(path_in("jb/j_last.weights"), &len0);
    assert_non_null(before);
    pid_t pid =
        spawn_net((const char *const[]){"classifier", "train", path_in("j.data"), path_in("j.cfg"),
                                        "-print_every", "1", "-backup_every", "1000000", NULL});
    wait_for_output("2/100000000");
    kill(pid, SIGINT);
    /* Two pending SIGINTs would merge into one: the second goes once the first is handled. */
    wait_for("stderr", "finishing the batch");
    kill(pid, SIGINT);
    struct run r;
    wait_net(&r, pid);
    assert_int_equal(r.status, 130);
    if (!strstr(r.err, "second signal"))
        fail_msg("no 'second signal' message: %s", r.err);
    run_free(&r);
    size_t len1;
    char *after = slurp(path_in("jb/j_last.weights"), &len1);
    assert_non_null(after);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_sgd),
        cmocka_unit_test(test_resume_adam),
        cmocka_unit_test(test_validation_keeps_trajectory),
        cmocka_unit_test(test_help_lists_every_flag),
        cmocka_unit_test(test_nonfinite_loss),
        cmocka_unit_test(test_skipped_image_reported),
        cmocka_unit_test(test_sigint_checkpoints),
        cmocka_unit_test(test_second_sigint_exits_at_once),
    };
    return cmocka_run_group_tests_name("train", tests, setup, teardown);
}
