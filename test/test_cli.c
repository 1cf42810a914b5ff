/* test_cli.c - the `net` command end to end on bad input: every failure is one line on stderr
 * naming the file and the problem, exit status 1, and nothing half-written. Runs the binary named
 * by $CFGNET_NET (test/run.sh sets it) with posix_spawn: no shell is involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <stb_image.h>

#include "fixture.h"

static char dir[] = "/tmp/cfgnet_cli_XXXXXX";

static const char *path_in(const char *name)
{
    return fx_path(dir, name);
}

static const char cfg_text[] = "[net]\nbatch=4\nheight=6\nwidth=6\nchannels=1\nmax_batches=2\n"
                               "learning_rate=0.01\n"
                               "[connected]\noutput=2\nactivation=linear\n[softmax]\n";

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    fx_write_text(path_in("a.cfg"), cfg_text);
    /* Labels with "_": mkdtemp's random letters can never spell them. */
    fx_write_text(path_in("labels"), "_cat\n_dog\n");
    /* Two tiny PGM images (binary P5): stb reads PNM. */
    static const char pgm_head[] = "P5\n6 6\n255\n";
    unsigned char img[sizeof pgm_head - 1 + 36];
    memcpy(img, pgm_head, sizeof pgm_head - 1);
    memset(img + sizeof pgm_head - 1, 200, 36);
    fx_write_file(path_in("img_cat1.pgm"), img, sizeof img);
    fx_write_file(path_in("img_dog1.pgm"), img, sizeof img);
    fx_write_text(path_in("not_image_cat.png"), "this is not an image");
    char list[1024];
    snprintf(list, sizeof list, "%s\n%s\n", path_in("img_cat1.pgm"), path_in("img_dog1.pgm"));
    fx_write_text(path_in("train.list"), list);
    fx_write_text(path_in("empty.list"), "");
    char data[2048];
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nvalid=%s\nlabels=%s\nbackup=%s\n",
             path_in("train.list"), path_in("train.list"), path_in("labels"), path_in("backup"));
    fx_write_text(path_in("a.data"), data);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fx_remove_tree(dir);
}

static void test_usage(void **state)
{
    (void)state;
    struct fx_run r;
    fx_run_net(&r, (const char *const[]){"help", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: net"));
    fx_run_net(&r, (const char *const[]){"classifier", "help", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "classifier"));
    fx_run_net(&r, (const char *const[]){"frobnicate", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "unknown command 'frobnicate'"));
    fx_run_net(&r, (const char *const[]){"classifier", "train", NULL});
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "usage"));
    fx_run_net(&r, (const char *const[]){NULL});
    assert_int_equal(r.status, 1);
}

static void test_missing_and_broken_cfg(void **state)
{
    (void)state;
    fx_expect_fail((const char *const[]){"summary", path_in("nope.cfg"), NULL},
                   "nope.cfg: cannot open");
    fx_write_text(path_in("b.cfg"),
                  "[net]\nbatch=1\nheight=6\nwidth=6\nchannels=1\n[convolutional]\nfliters=3\n");
    fx_expect_fail((const char *const[]){"summary", path_in("b.cfg"), NULL},
                   "b.cfg:7: [convolutional] unknown key 'fliters' (did you mean 'filters'?)");
    fx_expect_fail((const char *const[]){"classifier", "train", path_in("a.data"), path_in("a.cfg"),
                                         "-bogus", NULL},
                   "unknown option '-bogus'");
}

static void test_train_then_valid_and_predict(void **state)
{
    (void)state;
    struct fx_run r;
    fx_run_net(&r, (const char *const[]){"classifier", "train", path_in("a.data"), path_in("a.cfg"),
                                         NULL});
    if (r.status != 0)
        fail_msg("train failed: %s", r.err);
    fx_run_net(&r, (const char *const[]){"classifier", "valid", path_in("a.data"), path_in("a.cfg"),
                                         path_in("backup/a.weights"), NULL});
    if (r.status != 0)
        fail_msg("valid failed: %s", r.err);
    assert_non_null(strstr(r.out, "top-1"));
    fx_run_net(&r,
               (const char *const[]){"classifier", "predict", path_in("a.data"), path_in("a.cfg"),
                                     path_in("backup/a.weights"), path_in("img_cat1.pgm"), NULL});
    if (r.status != 0)
        fail_msg("predict failed: %s", r.err);
    assert_non_null(strstr(r.out, "%: _cat"));
}

/* `net data bench`: its one line says images/s, CPU time per image and cores busy, all > 0;
 * `net data preview`: a PNG grid that stb_image reads. */
static void test_data_bench_and_preview(void **state)
{
    (void)state;
    struct fx_run r;
    fx_run_net(&r, (const char *const[]){"data", "bench", path_in("a.data"), path_in("a.cfg"),
                                         "-batches", "3", "-workers", "1", "-nocache", NULL});
    if (r.status != 0)
        fail_msg("data bench failed: %s", r.err);
    const char *p = strstr(r.out, "): ");
    double ips = 0, us = 0, busy = 0;
    if (!p || sscanf(p, "): %lf images/s, %lf us of CPU per image, %lf cores busy", &ips, &us,
                     &busy) != 3)
        fail_msg("data bench line not as documented: %s", r.out);
    assert_true(ips > 0 && us > 0 && busy > 0 && busy < 65);
    assert_non_null(strstr(r.out, "1 workers, 3 batches of 4 6x6x1 images"));
    fx_run_net(&r, (const char *const[]){"data", "preview", path_in("a.data"), path_in("a.cfg"),
                                         "-o", path_in("grid.png"), "-n", "4", NULL});
    if (r.status != 0)
        fail_msg("data preview failed: %s", r.err);
    int w = 0, h = 0, c = 0;
    assert_true(stbi_info(path_in("grid.png"), &w, &h, &c));
    assert_true(w >= 2 * 6 && h >= 2 * 6 && c == 3);
    fx_expect_fail(
        (const char *const[]){"data", "bench", path_in("nope.data"), path_in("a.cfg"), NULL},
        "nope.data");
    fx_run_net(&r, (const char *const[]){"data", "preview", path_in("a.data"), path_in("a.cfg"),
                                         NULL}); /* no -o: the usage, as for any missing argument */
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "usage: net data preview"));
}

static void test_bad_data_inputs(void **state)
{
    (void)state;
    char data[2048];
    fx_write_text(path_in("labels3"), "_cat\n_dog\n_emu\n");
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nlabels=%s\nbackup=%s\n",
             path_in("train.list"), path_in("labels3"), path_in("backup"));
    fx_write_text(path_in("b.data"), data);
    fx_expect_fail(
        (const char *const[]){"classifier", "train", path_in("b.data"), path_in("a.cfg"), NULL},
        "classes=2");
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nlabels=%s\nbackup=%s\n",
             path_in("empty.list"), path_in("labels"), path_in("backup"));
    fx_write_text(path_in("c.data"), data);
    fx_expect_fail(
        (const char *const[]){"classifier", "train", path_in("c.data"), path_in("a.cfg"), NULL},
        "empty.list");
    char list[1024];
    snprintf(list, sizeof list, "%s\n", path_in("not_image_cat.png"));
    fx_write_text(path_in("bad.list"), list);
    snprintf(data, sizeof data, "classes=2\ntrain=%s\nlabels=%s\nbackup=%s\n", path_in("bad.list"),
             path_in("labels"), path_in("backup"));
    fx_write_text(path_in("d.data"), data);
    fx_expect_fail(
        (const char *const[]){"classifier", "train", path_in("d.data"), path_in("a.cfg"), NULL},
        "not_image_cat.png");
    fx_expect_fail((const char *const[]){"classifier", "predict", path_in("a.data"),
                                         path_in("a.cfg"), path_in("backup/a.weights"),
                                         path_in("not_image_cat.png"), NULL},
                   "not_image_cat.png");
}

static void test_weights_of_another_cfg(void **state)
{
    (void)state;
    fx_write_text(path_in("b.cfg"),
                  "[net]\nbatch=1\nheight=6\nwidth=6\nchannels=1\n[connected]\noutput=2\n"
                  "[connected]\noutput=2\nactivation=linear\n[softmax]\n");
    fx_expect_fail((const char *const[]){"classifier", "valid", path_in("a.data"), path_in("b.cfg"),
                                         path_in("backup/a.weights"), NULL},
                   "a.weights");
    fx_write_text(path_in("other.weights"), "short");
    fx_expect_fail((const char *const[]){"classifier", "valid", path_in("a.data"), path_in("a.cfg"),
                                         path_in("other.weights"), NULL},
                   "other.weights");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_missing_and_broken_cfg),
        cmocka_unit_test(test_train_then_valid_and_predict),
        cmocka_unit_test(test_data_bench_and_preview),
        cmocka_unit_test(test_bad_data_inputs),
        cmocka_unit_test(test_weights_of_another_cfg),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
