/* test_cli.c - the `net` command end to end on bad input: every failure is one line on stderr
 * naming the file and the problem, exit status 1, and nothing half-written. Runs the binary named
 * by $CFGNET_NET (test/run.sh sets it) with posix_spawn: no shell is involved. */
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

static char dir[] = "/tmp/cfgnet_cli_XXXXXX";

struct run {
    int status;
    char out[8192], err[8192];
};

static void slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "rb");
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = '\0';
    if (f)
        fclose(f);
}

/* Runs net with the given NULL-terminated arguments, capturing stdout and stderr. */
static void run_net(struct run *r, const char *const *args)
{
    const char *net = getenv("CFGNET_NET");
    if (!net)
        net = "./net";
    char *argv[32];
    int k = 0;
    argv[k++] = (char *)net;
    for (; args[k - 1] && k < 31; k++)
        argv[k] = (char *)args[k - 1];
    argv[k] = NULL;
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/stdout", dir);
    snprintf(err, sizeof err, "%s/stderr", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    if (posix_spawn(&pid, net, &fa, NULL, argv, environ))
        fail_msg("cannot run %s", net);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    waitpid(pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
}

static char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(path_in(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *name, const char *text)
{
    write_file(name, text, strlen(text));
}

/* Expects exit status 1 and exactly one stderr line containing want. */
static void expect_fail(const char *const *args, const char *want)
{
    struct run r;
    run_net(&r, args);
    if (r.status != 1)
        fail_msg("status %d (want 1) for %s; stderr: %s", r.status, args[0], r.err);
    if (!strstr(r.err, want))
        fail_msg("stderr '%s' lacks '%s'", r.err, want);
    char *nl = strchr(r.err, '\n');
    if (!nl || nl[1] != '\0')
        fail_msg("stderr is not exactly one line: '%s'", r.err);
}

static const char cfg_text[] = "[net]\nbatch=4\nheight=6\nwidth=6\nchannels=1\nmax_batches=2\n"
                               "learning_rate=0.01\n"
                               "[connected]\noutput=2\nactivation=linear\n[softmax]\n";

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    write_text("a.cfg", cfg_text);
    /* Labels with "_": mkdtemp's random letters can never spell them. */
    write_text("labels", "_cat\n_dog\n");
    /* Two tiny PGM images (binary P5): stb reads PNM. */
    static const char pgm_head[] = "P5\n6 6\n255\n";
    unsigned char img[sizeof pgm_head - 1 + 36];
    memcpy(img, pgm_head, sizeof pgm_head - 1);
    memset(img + sizeof pgm_head - 1, 200, 36);
    write_file("img_cat1.pgm", img, sizeof img);
    write_file("img_dog1.pgm", img, sizeof img);
    write_text("not_image_cat.png", "this is not an image");
    char list[1024];
    snprintf(list, sizeof list, "%s\n%s\n", path_in("img_cat1.pgm"), path_in("img_dog1.pgm"));
    write_text("train.list", list);
    write_text("empty.list", "");
    char data[2048];
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nvalid=%s\nlabels=%s\nbackup=%s\n",
             path_in("train.list"), path_in("train.list"), path_in("labels"), path_in("backup"));
    write_text("a.data", data);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *const names[] = {"a.cfg", "b.cfg", "labels", "labels3", "img_cat1.pgm", "img_dog1.pgm",
                                 "not_image_cat.png", "train.list", "empty.list", "bad.list",
                                 "a.data", "b.data", "c.data", "d.data", "stdout", "stderr",
                                 "backup/a.weights", "backup/a.backup", "other.weights"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        remove(path_in(names[i]));
    rmdir(path_in("backup"));
    rmdir(dir);
    return 0;
}

static void test_usage(void **state)
{
    (void)state;
    struct run r;
    run_net(&r, (const char *const[]){"help", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: net"));
    run_net(&r, (const char *const[]){"classifier", "help", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "classifier"));
    run_net(&r, (const char *const[]){"frobnicate", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "unknown command 'frobnicate'"));
    run_net(&r, (const char *const[]){"classifier", "train", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "usage"));
    run_net(&r, (const char *const[]){NULL});
    assert_int_equal(r.status, 1);
}

static void test_missing_and_broken_cfg(void **state)
{
    (void)state;
    expect_fail((const char *const[]){"summary", path_in("nope.cfg"), NULL}, "nope.cfg: cannot open");
    write_text("b.cfg", "[net]\nbatch=1\nheight=6\nwidth=6\nchannels=1\n[convolutional]\nfliters=3\n");
    expect_fail((const char *const[]){"summary", path_in("b.cfg"), NULL},
                "b.cfg:7: [convolutional] unknown key 'fliters' (did you mean 'filters'?)");
    expect_fail((const char *const[]){"classifier", "train", path_in("a.data"), path_in("a.cfg"),
                                      "-bogus", NULL},
                "unknown option '-bogus'");
}

static void test_train_then_valid_and_predict(void **state)
{
    (void)state;
    struct run r;
    run_net(&r, (const char *const[]){"classifier", "train", path_in("a.data"), path_in("a.cfg"), NULL});
    if (r.status != 0)
        fail_msg("train failed: %s", r.err);
    run_net(&r, (const char *const[]){"classifier", "valid", path_in("a.data"), path_in("a.cfg"),
                                      path_in("backup/a.weights"), NULL});
    if (r.status != 0)
        fail_msg("valid failed: %s", r.err);
    assert_non_null(strstr(r.out, "top-1"));
    run_net(&r, (const char *const[]){"classifier", "predict", path_in("a.data"), path_in("a.cfg"),
                                      path_in("backup/a.weights"), path_in("img_cat1.pgm"), NULL});
    if (r.status != 0)
        fail_msg("predict failed: %s", r.err);
    assert_non_null(strstr(r.out, "%: _cat"));
}

static void test_bad_data_inputs(void **state)
{
    (void)state;
    char data[2048];
    write_text("labels3", "_cat\n_dog\n_emu\n");
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nlabels=%s\nbackup=%s\n", path_in("train.list"),
             path_in("labels3"), path_in("backup"));
    write_text("b.data", data);
    expect_fail((const char *const[]){"classifier", "train", path_in("b.data"), path_in("a.cfg"), NULL},
                "classes=2");
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nlabels=%s\nbackup=%s\n", path_in("empty.list"),
             path_in("labels"), path_in("backup"));
    write_text("c.data", data);
    expect_fail((const char *const[]){"classifier", "train", path_in("c.data"), path_in("a.cfg"), NULL},
                "empty.list");
    char list[1024];
    snprintf(list, sizeof list, "%s\n", path_in("not_image_cat.png"));
    write_text("bad.list", list);
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nlabels=%s\nbackup=%s\n", path_in("bad.list"),
             path_in("labels"), path_in("backup"));
    write_text("d.data", data);
    expect_fail((const char *const[]){"classifier", "train", path_in("d.data"), path_in("a.cfg"), NULL},
                "not_image_cat.png");
    expect_fail((const char *const[]){"classifier", "predict", path_in("a.data"), path_in("a.cfg"),
                                      path_in("backup/a.weights"), path_in("not_image_cat.png"), NULL},
                "not_image_cat.png");
}

static void test_weights_of_another_cfg(void **state)
{
    (void)state;
    write_text("b.cfg", "[net]\nbatch=1\nheight=6\nwidth=6\nchannels=1\n[connected]\noutput=2\n"
                        "[connected]\noutput=2\nactivation=linear\n[softmax]\n");
    expect_fail((const char *const[]){"classifier", "valid", path_in("a.data"), path_in("b.cfg"),
                                      path_in("backup/a.weights"), NULL},
                "a.weights");
    write_text("other.weights", "short");
    expect_fail((const char *const[]){"classifier", "valid", path_in("a.data"), path_in("a.cfg"),
                                      path_in("other.weights"), NULL},
                "other.weights");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_missing_and_broken_cfg),
        cmocka_unit_test(test_train_then_valid_and_predict),
        cmocka_unit_test(test_bad_data_inputs),
        cmocka_unit_test(test_weights_of_another_cfg),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
