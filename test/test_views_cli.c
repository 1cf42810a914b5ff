/* test_views_cli.c - `-pad P` of `net classifier valid` and `predict` end to end: a 3x3 gray net
 * whose two logits are 10 times its top-left and bottom-right input pixels predicts one 3x3 image
 * at -crops 10 -pad 1, and the probabilities it writes are the mean over the ten views of
 * test_views.c (worked by hand there) of the softmax, computed here from those views' corner
 * pixels; and bad input: one line on stderr naming -pad, exit status 1. Runs the binary named by
 * $CFGNET_NET (test/run.sh sets it). */
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
#include <stb_image_write.h>

#include "fixture.h"

static char dir[] = "/tmp/cfgnetviewscliXXXXXX";

static const char *path_in(const char *name)
{
    return fx_path(dir, name);
}

/* 10, 20, ..., 90 row by row, as in test_views.c. */
static const uint8_t img3[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};

/* The top-left and bottom-right pixels of the ten views of img3 padded by 1 (test_views.c's
 * want10): centre, the four corners, then their mirrors. */
static const int corner[10][2] = {{10, 90}, {0, 50}, {0, 0},  {0, 0},  {50, 0},
                                  {30, 70}, {0, 0},  {0, 50}, {50, 0}, {0, 0}};

static const char cfg[] = "[net]\nbatch=1\nheight=3\nwidth=3\nchannels=1\n"
                          "[connected]\noutput=2\nactivation=linear\n[softmax]\n";

/* logit 0 = 10 * pixel 0, logit 1 = 10 * pixel 8 (inputs are pixel / 255). */
static const size_t taps[2] = {0, 9 + 8};

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    if (!stbi_write_png(path_in("img_a.png"), 3, 3, 1, img3, 3))
        return -1;
    fx_write_text(path_in("valid.list"), path_in("img_a.png"));
    fx_write_text(path_in("labels"), "_a\n_b\n");
    char data[2048];
    snprintf(data, sizeof data, "classes=2\nvalid=%s\nlabels=%s\ntop=2\n", path_in("valid.list"),
             path_in("labels"));
    fx_write_text(path_in("a.data"), data);
    fx_write_model(path_in("a.cfg"), cfg, path_in("a.weights"), 10.f, taps, 2);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fx_remove_tree(dir);
}

static void test_predict_padded(void **state)
{
    (void)state;
    double p0 = 0;
    for (int v = 0; v < 10; v++) {
        double l0 = 10.0 * corner[v][0] / 255, l1 = 10.0 * corner[v][1] / 255;
        p0 += 1 / (1 + exp(l1 - l0)) / 10;
    }
    char want[128], csv[1024];
    if (p0 >= .5)
        snprintf(want, sizeof want, ",_a,%.6f,_b,%.6f\n", p0, 1 - p0);
    else
        snprintf(want, sizeof want, ",_b,%.6f,_a,%.6f\n", 1 - p0, p0);
    struct fx_run r;
    fx_run_net_ok(&r, (const char *const[]){"classifier", "predict", path_in("a.data"),
                                            path_in("a.cfg"), path_in("a.weights"),
                                            path_in("img_a.png"), "-crops", "10", "-pad", "1",
                                            "-o", path_in("p.csv"), NULL});
    fx_slurp(path_in("p.csv"), csv, sizeof csv);
    if (!strstr(csv, want))
        fail_msg("predictions lack '%s':\n%s", want, csv);
    /* the single view: only the centre */
    double l0 = 10.0 * 10 / 255, l1 = 10.0 * 90 / 255, q0 = 1 / (1 + exp(l1 - l0));
    snprintf(want, sizeof want, ",_b,%.6f,_a,%.6f\n", 1 - q0, q0);
    fx_run_net_ok(&r, (const char *const[]){"classifier", "predict", path_in("a.data"),
                                            path_in("a.cfg"), path_in("a.weights"),
                                            path_in("img_a.png"), "-pad", "1", "-o",
                                            path_in("p.csv"), NULL});
    fx_slurp(path_in("p.csv"), csv, sizeof csv);
    if (!strstr(csv, want))
        fail_msg("predictions lack '%s':\n%s", want, csv);
    fx_run_net_ok(&r, (const char *const[]){"classifier", "valid", path_in("a.data"),
                                            path_in("a.cfg"), path_in("a.weights"), "-crops", "10",
                                            "-pad", "1", NULL});
    if (!strstr(r.out, "views: 10 crops at scale 1, padded by 1 px of 0"))
        fail_msg("valid does not say how it views:\n%s", r.out);
}

static void test_bad_pad(void **state)
{
    (void)state;
    const char *d = path_in("a.data"), *c = path_in("a.cfg"), *w = path_in("a.weights");
    const char *v = "valid", *img = path_in("img_a.png");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-pad", "-1", NULL},
                   "-pad -1: expected an integer in [1, 4096]");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-pad", "0", NULL}, "-pad 0: ");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-pad", "1.5", NULL},
                   "-pad 1.5: ");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-pad", NULL},
                   "-pad needs a value");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-crops", "10", "-pad", "2",
                                         NULL},
                   "-pad 2: must be at least 1 and at most 1 (half the shorter side of the 3x3");
    fx_expect_fail(
        (const char *const[]){"classifier", v, d, c, w, "-pad", "1", "-letterbox", NULL},
        "-pad 1: not with -letterbox");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-crops", "10", "-pad", "1",
                                         "-scale", "1.2", NULL},
                   "-pad 1: crops of the image at the net input's size: give no -scale");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-pad", "1", "-scales", "3,4",
                                         NULL},
                   "-pad 1: crops of the image at the net input's size");
    fx_expect_fail((const char *const[]){"classifier", "predict", d, c, w, img, "-pad", "9", NULL},
                   "-pad 9: must be at least 1 and at most 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_padded),
        cmocka_unit_test(test_bad_pad),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
