/* test_checkpoint.c - checkpoints (net/checkpoint.h) and the training log (net/trainlog.h):
 * state round trip, every mismatch a state file can have, refusing non-finite parameters, pruning
 * numbered copies, SIGKILL during a checkpoint write leaving the previous file whole, and the
 * CSV round trip and its errors. */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/checkpoint.h"
#include "net/net.h"
#include "net/optimizer.h"
#include "net/trainlog.h"
#include "net/weights.h"

#include "fixture.h"

static char dir[] = "/tmp/cfgnet_ckpt_XXXXXX";

static const char *path_in(const char *name)
{
    return fx_path(dir, name);
}

static const char cfg_sgd[] = "[net]\nbatch=2\nheight=4\nwidth=4\nchannels=1\nseed=3\n"
                              "[connected]\noutput=3\nbatch_normalize=1\n[dropout]\n"
                              "[connected]\noutput=2\nactivation=linear\n[softmax]\n";

static struct net *make_net(const char *extra)
{
    char text[1024];
    /* extra lines belong to [net]: splice them in after seed=3. */
    const char *cut = strstr(cfg_sgd, "[connected]");
    snprintf(text, sizeof text, "%.*s%s%s", (int)(cut - cfg_sgd), cfg_sgd, extra, cut);
    struct net *n;
    cn_error e;
    if (net_create_from_string(&n, text, "t.cfg", 0, 1, &e))
        fail_msg("%s", e.msg);
    return n;
}

/* A few optimiser steps on made-up gradients, so the state is not all zero. */
static void fake_steps(struct net *n, struct optimizer *o, int steps)
{
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < n->nparams; i++)
            for (size_t j = 0; n->params[i].grad && j < n->params[i].n; j++)
                n->params[i].grad[j] = (float)sin((double)(i * 31 + (int)j + s));
        optimizer_step(o, n, 0.01f);
        n->seen += 2;
    }
    cn_rng_next(&n->rng);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));)
        if (de->d_name[0] != '.')
            unlink(path_in(de->d_name));
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

static void test_state_round_trip(void **state)
{
    (void)state;
    const char *extras[] = {"", "adam=1\n", "adamw=1\n"};
    for (int k = 0; k < 3; k++) {
        struct net *a = make_net(extras[k]), *b = make_net(extras[k]);
        struct optimizer *oa, *ob;
        cn_error e;
        assert_int_equal(optimizer_create(&oa, a, &e), 0);
        assert_int_equal(optimizer_create(&ob, b, &e), 0);
        fake_steps(a, oa, 3);
        if (checkpoint_save(a, oa, 99, path_in("rt.weights"), &e))
            fail_msg("%s", e.msg);
        int restored = -1;
        assert_int_equal(weights_load(b, path_in("rt.weights"), &e), 0);
        if (checkpoint_load_state(b, ob, 99, path_in("rt.weights"), &restored, &e))
            fail_msg("%s", e.msg);
        assert_int_equal(restored, 1);
        size_t la, lb;
        float *sa = optimizer_state(oa, &la), *sb = optimizer_state(ob, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(sa, sb, sizeof(float) * la);
        assert_int_equal(optimizer_steps(ob), 3);
        assert_memory_equal(&a->rng, &b->rng, sizeof a->rng);
        assert_int_equal(b->seen, 6);
        /* Another seed is refused, naming the one to pass. */
        assert_int_equal(checkpoint_load_state(b, ob, 5, path_in("rt.weights"), &restored, &e), -1);
        assert_non_null(strstr(e.msg, "-seed 99"));
        optimizer_destroy(oa);
        optimizer_destroy(ob);
        net_destroy(a);
        net_destroy(b);
    }
}

static void test_state_mismatches(void **state)
{
    (void)state;
    struct net *a = make_net(""), *adam = make_net("adam=1\n");
    struct optimizer *o, *oadam;
    cn_error e;
    int restored;
    assert_int_equal(optimizer_create(&o, a, &e), 0);
    assert_int_equal(optimizer_create(&oadam, adam, &e), 0);
    /* No state file: nothing restored, no error (a Darknet .weights). */
    assert_int_equal(weights_save(a, path_in("plain.weights"), &e), 0);
    assert_int_equal(checkpoint_load_state(a, o, 1, path_in("plain.weights"), &restored, &e), 0);
    assert_int_equal(restored, 0);
    /* SGD state, Adam cfg. */
    fake_steps(a, o, 1);
    assert_int_equal(checkpoint_save(a, o, 1, path_in("m.weights"), &e), 0);
    assert_int_equal(weights_load(adam, path_in("m.weights"), &e), 0);
    assert_int_equal(checkpoint_load_state(adam, oadam, 1, path_in("m.weights"), &restored, &e),
                     -1);
    assert_non_null(strstr(e.msg, "SGD"));
    assert_non_null(strstr(e.msg, "Adam"));
    assert_int_equal(optimizer_steps(oadam), 0);
    /* The .weights replaced without its state (a crash between the two renames). */
    fake_steps(a, o, 1);
    assert_int_equal(weights_save(a, path_in("m.weights"), &e), 0);
    assert_int_equal(checkpoint_load_state(a, o, 1, path_in("m.weights"), &restored, &e), -1);
    assert_non_null(strstr(e.msg, "written with other weights"));
    /* A truncated state file: the size is named. */
    assert_int_equal(checkpoint_save(a, o, 1, path_in("m.weights"), &e), 0);
    assert_int_equal(truncate(path_in("m.weights.state"), 100), 0);
    assert_int_equal(checkpoint_load_state(a, o, 1, path_in("m.weights"), &restored, &e), -1);
    assert_non_null(strstr(e.msg, "100 bytes"));
    /* Garbage of the right size: no magic. */
    size_t len;
    optimizer_state(o, &len);
    FILE *f = fopen(path_in("m.weights.state"), "wb");
    for (size_t i = 0; i < 96 + 4 * len; i++)
        fputc('x', f);
    fclose(f);
    assert_int_equal(checkpoint_load_state(a, o, 1, path_in("m.weights"), &restored, &e), -1);
    assert_non_null(strstr(e.msg, "not a cfgnet state file"));
    optimizer_destroy(o);
    optimizer_destroy(oadam);
    net_destroy(a);
    net_destroy(adam);
}

static void test_nonfinite_params_not_saved(void **state)
{
    (void)state;
    struct net *a = make_net("");
    struct optimizer *o;
    cn_error e;
    assert_int_equal(optimizer_create(&o, a, &e), 0);
    assert_int_equal(checkpoint_save(a, o, 1, path_in("good.weights"), &e), 0);
    a->params[2].data[1] = NAN;
    assert_int_equal(checkpoint_first_nonfinite_param(a), 2);
    assert_int_equal(checkpoint_save(a, o, 1, path_in("good.weights"), &e), -1);
    assert_non_null(strstr(e.msg, "NaN or an infinity"));
    a->params[2].data[1] = 0;
    /* The good file is still the one written first, and loads. */
    assert_int_equal(weights_load(a, path_in("good.weights"), &e), 0);
    optimizer_destroy(o);
    net_destroy(a);
}

static void touch(const char *name)
{
    FILE *f = fopen(path_in(name), "wb");
    assert_non_null(f);
    fclose(f);
}

static int exists(const char *name)
{
    return access(path_in(name), F_OK) == 0;
}

static void test_prune(void **state)
{
    (void)state;
    const char *names[] = {"x_100.weights",   "x_200.weights",       "x_1000.weights",
                           "x_300.weights",   "x_100.weights.state", "x_200.weights.state",
                           "x_final.weights", "x_last.weights",      "y_5.weights",
                           "x_12a.weights",   "x_7.weightsX"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        touch(names[i]);
    int removed;
    cn_error e;
    assert_int_equal(checkpoint_prune(dir, "x", 2, &removed, &e), 0);
    assert_int_equal(removed, 2);
    assert_true(exists("x_1000.weights") && exists("x_300.weights"));
    assert_false(exists("x_100.weights") || exists("x_200.weights"));
    assert_false(exists("x_100.weights.state") || exists("x_200.weights.state"));
    assert_true(exists("x_final.weights") && exists("x_last.weights") && exists("y_5.weights"));
    assert_true(exists("x_12a.weights") && exists("x_7.weightsX"));
    assert_int_equal(checkpoint_prune(dir, "x", 0, &removed, &e), 0);
    assert_int_equal(removed, 0);
    char *p = checkpoint_name("a/b/", "x", "_last.weights");
    assert_string_equal(p, "a/b/x_last.weights");
    free(p);
    p = checkpoint_name("a/b", "x", ".csv");
    assert_string_equal(p, "a/b/x.csv");
    free(p);
}

/* A child rewrites a 4 MB checkpoint in a loop, every float equal to the round number, and
 * reports each completed write through a pipe; it is SIGKILLed after 1, 2, ... writes at a
 * moment that varies (so usually in the middle of the next one). The file must then load and
 * hold the values of one completed write. */
static void test_sigkill_during_write(void **state)
{
    (void)state;
    const char *cfg = "[net]\nbatch=1\nheight=32\nwidth=32\nchannels=1\n"
                      "[connected]\noutput=1000\nactivation=linear\n[softmax]\n";
    struct net *n;
    cn_error e;
    assert_int_equal(net_create_from_string(&n, cfg, "k.cfg", 0, 1, &e), 0);
    struct optimizer *o;
    assert_int_equal(optimizer_create(&o, n, &e), 0);
    for (int round = 0; round < 6; round++) {
        int fd[2];
        assert_int_equal(pipe(fd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fd[0]);
            for (float v = 1;; v++) {
                for (int i = 0; i < n->nparams; i++)
                    for (size_t j = 0; j < n->params[i].n; j++)
                        n->params[i].data[j] = v;
                cn_error ce;
                if (checkpoint_save(n, o, 1, path_in("k.weights"), &ce) ||
                    write(fd[1], "w", 1) != 1)
                    _exit(3);
            }
        }
        close(fd[1]);
        char c;
        for (int k = 0; k <= round; k++)
            assert_int_equal(read(fd[0], &c, 1), 1);
        nanosleep(&(struct timespec){0, 1000000L + 3000000L * round}, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        close(fd[0]);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        if (weights_load(n, path_in("k.weights"), &e))
            fail_msg("round %d: the checkpoint does not load after SIGKILL: %s", round, e.msg);
        float v0 = n->params[0].data[0];
        assert_true(v0 >= (float)(round + 1));
        for (int i = 0; i < n->nparams; i++)
            for (size_t j = 0; j < n->params[i].n; j++)
                if (n->params[i].data[j] != v0)
                    fail_msg("round %d: torn checkpoint (%g and %g)", round, (double)v0,
                             (double)n->params[i].data[j]);
        printf("SIGKILL after %d writes: checkpoint intact (write %g)\n", round + 1, (double)v0);
    }
    /* Temporary files of killed writers may remain (k.weights.tmp.<pid>); they are not the
     * checkpoint and go with the directory. */
    optimizer_destroy(o);
    net_destroy(n);
}

static void test_log_round_trip(void **state)
{
    (void)state;
    struct trainlog t, r;
    trainlog_init(&t, 5);
    for (uint64_t i = 1; i <= 30; i++) {
        struct trainlog_row row = {i * 10,
                                   i * 0.1,
                                   2.0 / (double)i,
                                   1.9 / (double)i,
                                   0.01,
                                   1234.5,
                                   i % 3 ? NAN : 0.5 + 0.01 * (double)i,
                                   i % 3 ? NAN : 0.9};
        trainlog_add(&t, &row);
    }
    cn_error e;
    assert_int_equal(trainlog_write_csv(&t, path_in("log.csv"), &e), 0);
    trainlog_init(&r, 1);
    if (trainlog_read(&r, path_in("log.csv"), &e))
        fail_msg("%s", e.msg);
    assert_int_equal(r.n, 30);
    assert_int_equal(r.k, 5);
    for (int i = 0; i < 30; i++) {
        assert_true(r.rows[i].iter == t.rows[i].iter);
        assert_true(fabs(r.rows[i].loss - t.rows[i].loss) <= 1e-8 * t.rows[i].loss);
        assert_true(isnan(r.rows[i].top1) == isnan(t.rows[i].top1));
        if (!isnan(t.rows[i].top1))
            assert_true(fabs(r.rows[i].top1 - t.rows[i].top1) <= 1e-8);
    }
    trainlog_truncate(&r, 155);
    assert_int_equal(r.n, 15);
    char *svg = trainlog_svg(&r, "a <title> & \"quotes\"");
    assert_non_null(strstr(svg, "a &lt;title&gt; &amp; &quot;quotes&quot;"));
    assert_non_null(strstr(svg, "top-5"));
    free(svg);
    trainlog_free(&t);
    trainlog_free(&r);
}

static void expect_read_error(const char *text, const char *want)
{
    FILE *f = fopen(path_in("bad.csv"), "wb");
    fputs(text, f);
    fclose(f);
    struct trainlog t;
    cn_error e;
    trainlog_init(&t, 1);
    assert_int_equal(trainlog_read(&t, path_in("bad.csv"), &e), -1);
    if (!strstr(e.msg, want))
        fail_msg("'%s' lacks '%s'", e.msg, want);
    assert_int_equal(t.n, 0);
    trainlog_free(&t);
}

static void test_log_read_errors(void **state)
{
    (void)state;
    const char *h = "iteration,epoch,loss,avg_loss,learning_rate,images_per_s,top1,top5\n";
    char buf[512];
    expect_read_error("", "empty");
    expect_read_error("a,b,c\n", "bad.csv:1: not a cfgnet training log");
    expect_read_error("iteration,epoch,loss,avg_loss,learning_rate,images_per_s,top1,topx\n",
                      "top<K>");
    snprintf(buf, sizeof buf, "%s1,0,1,1,0.1,5,,\n1,0,1,1,0.1,5,,\n", h);
    expect_read_error(buf, "bad.csv:3: iteration 1 does not follow 1");
    snprintf(buf, sizeof buf, "%s1,0,1,1,0.1,5,,,\n", h);
    expect_read_error(buf, "bad.csv:2: expected 8 comma-separated fields");
    snprintf(buf, sizeof buf, "%s1,0,nan,1,0.1,5,,\n", h);
    expect_read_error(buf, "bad.csv:2: field 3 is not a number");
    snprintf(buf, sizeof buf, "%s1,0,,1,0.1,5,,\n", h);
    expect_read_error(buf, "field 3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_mismatches),
        cmocka_unit_test(test_nonfinite_params_not_saved),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_sigkill_during_write),
        cmocka_unit_test(test_log_round_trip),
        cmocka_unit_test(test_log_read_errors),
    };
    return cmocka_run_group_tests_name("checkpoint", tests, setup, teardown);
}
