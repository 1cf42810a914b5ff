/* test_cli_speed.c - `net speed` end to end on a small cfg: one row per layer with its type,
 * output shape, algorithm and a time; shares summing to 100 %; the totals agreeing with the
 * FLOPs worked by hand and with each other; -train's forward/backward columns and update row;
 * bad input as one stderr line and exit status 1. Timings themselves are not checked (the
 * machine is shared), only their consistency. Runs $CFGNET_NET (test/run.sh sets it) with
 * posix_spawn: no shell. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"

static char dir[] = "/tmp/cfgnet_speed_XXXXXX";

static const char *path_in(const char *name)
{
    return fx_path(dir, name);
}

/* 32x32x3 -> conv 16 3x3 pad 1 -> maxpool 2x2/2 -> connected 10 -> softmax. FLOPs per image
 * (a multiply-add counts as two): conv 2 * 1024 * 16 * 27 = 884,736; maxpool 4096 outputs x 4
 * = 16,384; connected 2 * 4096 * 10 = 81,920; softmax 5 * 10 = 50; total 983,090. */
static const char cfg_text[] = "[net]\nbatch=8\nheight=32\nwidth=32\nchannels=3\n"
                               "learning_rate=0.01\nmomentum=0.9\n"
                               "[convolutional]\nfilters=16\nsize=3\nstride=1\npad=1\n"
                               "activation=relu\n"
                               "[maxpool]\nsize=2\nstride=2\n"
                               "[connected]\noutput=10\nactivation=linear\n[softmax]\n";
#define CONV_FLOPS 884736.0
#define TOTAL_MFLOP 0.983

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    fx_write_text(path_in("s.cfg"), cfg_text);
    fx_write_text(path_in("bad.cfg"),
                  "[net]\nheight=4\nwidth=4\nchannels=1\n[maxpool]\nsize=2\nstrid=2\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fx_remove_tree(dir);
}

/* One layer row as printed: index, type, output, times, GFLOP/s ("-" = 0), share, algorithm. */
struct row {
    int index;
    char type[32], out[32], alg[64];
    double fwd, bwd, ms, gflops, share;
};

/* Finds the row of layer `index` in out; the description between type and output is skipped
 * by locating the output shape, which is the token before the numbers. */
static void find_row(const char *out, int index, const char *type, const char *shape, int train,
                     struct row *r)
{
    char head[64];
    snprintf(head, sizeof head, "\n%5d  %-14s ", index, type);
    const char *p = strstr(out, head);
    if (!p)
        fail_msg("no row '%d %s' in:\n%s", index, type, out);
    const char *s = strstr(p + strlen(head), shape);
    const char *eol = strchr(p + 1, '\n');
    if (!s || (eol && s > eol))
        fail_msg("row %d lacks the output shape %s:\n%s", index, shape, out);
    s += strlen(shape);
    char g[32];
    int got = train ? sscanf(s, "%lf %lf %lf %31s %lf%% %63s", &r->fwd, &r->bwd, &r->ms, g,
                             &r->share, r->alg)
                    : sscanf(s, "%lf %31s %lf%% %63s", &r->ms, g, &r->share, r->alg);
    if (got != (train ? 6 : 4))
        fail_msg("row %d unreadable (%d fields): %.120s", index, got, s);
    r->gflops = strcmp(g, "-") ? atof(g) : 0;
    r->index = index;
}

/* The total line: ms per pass, images/s, GFLOP/s, MFLOP per image. */
static void read_total(const char *out, double t[4])
{
    const char *p = strstr(out, "\ntotal: ");
    if (!p || sscanf(p, "\ntotal: %lf ms per pass, %lf images/s, %lf GFLOP/s (%lf MFLOP", &t[0],
                     &t[1], &t[2], &t[3]) != 4)
        fail_msg("no total line in:\n%s", out);
}

/* GFLOP/s printed with one decimal from a time printed with three: the bounds that rounding
 * allows around flops / ms. */
static void check_rate(double flops, double ms, double printed)
{
    if (ms <= 0.002)
        return;
    double hi = flops / (ms - 0.0005) / 1e6 + 0.05, lo = flops / (ms + 0.0005) / 1e6 - 0.05;
    if (printed < lo || printed > hi)
        fail_msg("GFLOP/s %.1f outside [%.2f, %.2f] for %.0f FLOPs in %.3f ms", printed, lo, hi,
                 flops, ms);
}

/* images/s printed with two decimals from the same time. */
static void check_images(double batch, double ms, double printed)
{
    double hi = 1e3 * batch / (ms - 0.0005) + 0.006, lo = 1e3 * batch / (ms + 0.0005) - 0.006;
    if (printed < lo || printed > hi)
        fail_msg("images/s %.2f outside [%.2f, %.2f] for batch %.0f in %.3f ms", printed, lo, hi,
                 batch, ms);
}

static void test_inference(void **state)
{
    (void)state;
    struct fx_run r;
    fx_run_net(&r, (const char *const[]){"speed", path_in("s.cfg"), "-batch", "2", "-iters", "3",
                                         "-threads", "1", NULL});
    if (r.status != 0)
        fail_msg("status %d: %s", r.status, r.err);
    assert_non_null(strstr(r.out, "batch 2, inference, 1 thread;"));
    assert_non_null(strstr(r.out, "1 warm-up + 3 timed passes"));
    static const char *const types[] = {"convolutional", "maxpool", "connected", "softmax"};
    static const char *const shapes[] = {"32x32x16", "16x16x16", "1x1x10", "1x1x10"};
    struct row rows[4];
    double share = 0;
    for (int i = 0; i < 4; i++) {
        find_row(r.out, i, types[i], shapes[i], 0, &rows[i]);
        assert_true(rows[i].ms >= 0 && rows[i].share >= 0);
        share += rows[i].share;
    }
    assert_string_equal(rows[1].alg, "-"); /* maxpool declares no algorithm */
    assert_true(fabs(share - 100) < 0.3);
    check_rate(CONV_FLOPS * 2, rows[0].ms, rows[0].gflops);
    double t[4];
    read_total(r.out, t);
    assert_true(fabs(t[3] - TOTAL_MFLOP) < 1e-9);
    assert_true(t[0] > 0);
    /* The total is the median of the passes' sums, not the sum of the rows' medians: only its
     * consistency with the other totals is exact. */
    check_images(2, t[0], t[1]);
    check_rate(983090.0 * 2, t[0], t[2]);
}

static void test_train(void **state)
{
    (void)state;
    struct fx_run r;
    fx_run_net(&r, (const char *const[]){"speed", path_in("s.cfg"), "-batch", "4", "-train",
                                         "-iters", "1", "-warmup", "0", "-threads", "1", NULL});
    if (r.status != 0)
        fail_msg("status %d: %s", r.status, r.err);
    assert_non_null(strstr(r.out, "batch 4, training"));
    assert_non_null(strstr(r.out, "x 3 (forward + backward"));
    assert_non_null(strstr(r.out, "(update)"));
    struct row conv;
    find_row(r.out, 0, "convolutional", "32x32x16", 1, &conv);
    /* One timed pass: the layer's time is its forward plus its backward, to rounding. */
    assert_true(fabs(conv.ms - (conv.fwd + conv.bwd)) <= 0.0015);
    check_rate(CONV_FLOPS * 4 * 3, conv.ms, conv.gflops);
    double t[4];
    read_total(r.out, t);
    assert_true(fabs(t[3] - TOTAL_MFLOP) < 1e-9);
    check_images(4, t[0], t[1]);
    check_rate(983090.0 * 4 * 3, t[0], t[2]);
}

static void test_bad_input(void **state)
{
    (void)state;
    fx_expect_fail((const char *const[]){"speed", path_in("none.cfg"), NULL}, "none.cfg");
    fx_expect_fail((const char *const[]){"speed", path_in("bad.cfg"), NULL}, "bad.cfg:7");
    fx_expect_fail((const char *const[]){"speed", path_in("s.cfg"), "-batch", "0", NULL}, "-batch");
    fx_expect_fail((const char *const[]){"speed", path_in("s.cfg"), "-iters", "x", NULL}, "-iters");
    fx_expect_fail((const char *const[]){"speed", path_in("s.cfg"), "-threads", NULL}, "-threads");
    fx_expect_fail((const char *const[]){"speed", path_in("s.cfg"), "-fast", NULL}, "-fast");
    struct fx_run r;
    fx_run_net(&r, (const char *const[]){"speed", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "usage: net speed CFG"));
    fx_run_net(&r, (const char *const[]){"speed", "-h", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "-warmup N"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inference),
        cmocka_unit_test(test_train),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests_name("cli_speed", tests, setup, teardown);
}
