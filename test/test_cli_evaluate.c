/* test_cli_evaluate.c - `net classifier valid` and `predict` end to end, on a net with fixed
 * weights whose predictions are known: the class is the brightest of three pixels. Checks the
 * printed figures and the confusion-matrix CSV cell by cell, predict on a directory and a list
 * with its CSV, ensembles on the command line, and bad input: one line on stderr naming the flag
 * or file, exit status 1, and no CSV written (an existing one left as it was). Runs the binary
 * named by $CFGNET_NET (test/run.sh sets it) with posix_spawn. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <stb_image_write.h>

#include "fixture.h"

/* No '_' before the random part, so the labels below can only match the file names. */
static char dir[] = "/tmp/cfgnetevalcliXXXXXX";

static const char *path_in(const char *name)
{
    return fx_path(dir, name);
}

/* stdout contains want. */
static void expect_out(const struct fx_run *r, const char *want)
{
    if (!strstr(r->out, want))
        fail_msg("stdout lacks '%s':\n%s", want, r->out);
}

/* A 3x1 gray binary PGM with the given pixels. */
static void write_pgm(const char *path, int a, int b, int c)
{
    unsigned char img[] = {'P',
                           '5',
                           '\n',
                           '3',
                           ' ',
                           '1',
                           '\n',
                           '2',
                           '5',
                           '5',
                           '\n',
                           (unsigned char)a,
                           (unsigned char)b,
                           (unsigned char)c};
    fx_write_file(path, img, sizeof img);
}

/* The six images: (name, pixels). Predicted class = brightest pixel. */
static const struct {
    const char *name;
    int px[3];
} images[6] = {
    {"v/img1_ant.pgm", {200, 100, 0}}, /* ant, predicted ant; top-2 ant bee */
    {"v/img2_ant.pgm", {100, 200, 0}}, /* ant, predicted bee; top-2 bee ant */
    {"v/img3_bee.pgm", {0, 200, 100}}, /* bee, predicted bee */
    {"v/img4_bee.pgm", {50, 255, 0}},  /* bee, predicted bee */
    {"v/img5_cow.pgm", {200, 100, 0}}, /* cow, predicted ant; top-2 ant bee: a miss */
    {"v/img6_cow.pgm", {0, 100, 200}}, /* cow, predicted cow */
};

static const char cfg3[] = "[net]\nbatch=1\nheight=1\nwidth=3\nchannels=1\n"
                           "[connected]\noutput=3\nactivation=linear\n[softmax]\n";

/* cfg3 with weights gain * identity and zero biases: logit k = gain * pixel_k / 255. */
static const size_t identity3[3] = {0, 4, 8};

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    mkdir(path_in("v"), 0755);
    mkdir(path_in("bad"), 0755);
    char list[4096] = "";
    for (int i = 0; i < 6; i++) {
        write_pgm(path_in(images[i].name), images[i].px[0], images[i].px[1], images[i].px[2]);
        strcat(list, path_in(images[i].name));
        strcat(list, "\n");
    }
    fx_write_text(path_in("valid.list"), list);
    fx_write_text(path_in("labels"), "_ant\n_bee\n_cow\n");
    fx_write_text(path_in("names"), "Ant, small\nBee\nCow\n");
    char data[2048];
    snprintf(data, sizeof data, "classes=3\nvalid=%s\nlabels=%s\nnames=%s\ntop=2\n",
             path_in("valid.list"), path_in("labels"), path_in("names"));
    fx_write_text(path_in("a.data"), data);
    fx_write_model(path_in("a.cfg"), cfg3, path_in("a.weights"), 10.f, identity3, 3);
    fx_write_model(path_in("b.cfg"), cfg3, path_in("b.weights"), 20.f, identity3, 3);
    fx_write_text(path_in("two.cfg"), "[net]\nbatch=1\nheight=1\nwidth=3\nchannels=1\n"
                                      "[connected]\noutput=2\nactivation=linear\n[softmax]\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return fx_remove_tree(dir);
}

static const char want_csv[] =
    "truth\\predicted,_ant,_bee,_cow,images,predicted,accuracy,top_2,precision,f1\n"
    "_ant,1,1,0,2,2,0.500000,1.000000,0.500000,0.500000\n"
    "_bee,0,2,0,2,3,1.000000,1.000000,0.666667,0.800000\n"
    "_cow,1,0,1,2,1,0.500000,0.500000,1.000000,0.666667\n";

static void test_valid_known_matrix(void **state)
{
    (void)state;
    struct fx_run r;
    fx_run_net_ok(&r,
                  (const char *const[]){"classifier", "valid", path_in("a.data"), path_in("a.cfg"),
                                        path_in("a.weights"), "-o", path_in("cm.csv"), NULL});
    expect_out(&r, "6 images, top-1 0.6667, top-2 0.8333");
    expect_out(&r, "Bee                    2         3   1.0000    1.0000    "
                   "0.6667  0.8000");
    expect_out(&r, "  2 Cow              1 0 1\n");
    char csv[2048];
    fx_slurp(path_in("cm.csv"), csv, sizeof csv);
    assert_string_equal(csv, want_csv);
}

static void test_valid_ensemble_and_crops(void **state)
{
    (void)state;
    char member[1100];
    snprintf(member, sizeof member, "%s,%s,2.5", path_in("b.cfg"), path_in("b.weights"));
    struct fx_run r;
    fx_run_net_ok(&r, (const char *const[]){"classifier", "valid", path_in("a.data"),
                                            path_in("a.cfg"), path_in("a.weights"), "-ensemble",
                                            member, "-crops", "5", "-o", path_in("cm.csv"), NULL});
    expect_out(&r, "views: 5 crops at scale 1.14286; 2 models weighted 1,2.5");
    expect_out(&r, "top-1 0.6667, top-2 0.8333");
    char csv[2048];
    fx_slurp(path_in("cm.csv"), csv, sizeof csv);
    assert_string_equal(csv, want_csv);
}

/* Parses "path,l1,p1,l2,p2" rows and checks them against the fixed model (gain 10). */
static void check_predict_csv(const char *csv, const int *order, int n)
{
    const char *line = strchr(csv, '\n');
    assert_non_null(line);
    assert_memory_equal(csv, "path,label_1,p_1,label_2,p_2\n", 28);
    static const char *labels[3] = {"_ant", "_bee", "_cow"};
    for (int i = 0; i < n; i++) {
        const int *px = images[order[i]].px;
        double z[3], s = 0;
        for (int k = 0; k < 3; k++)
            s += z[k] = exp(10.0 * px[k] / 255.0);
        int best = 0, second = -1;
        for (int k = 1; k < 3; k++)
            if (px[k] > px[best])
                best = k;
        for (int k = 0; k < 3; k++)
            if (k != best && (second < 0 || px[k] > px[second]))
                second = k;
        char path[600], l1[16], l2[16];
        double p1, p2;
        line++;
        assert_int_equal(sscanf(line, "%599[^,],%15[^,],%lf,%15[^,],%lf", path, l1, &p1, l2, &p2),
                         5);
        assert_string_equal(path, path_in(images[order[i]].name));
        assert_string_equal(l1, labels[best]);
        assert_string_equal(l2, labels[second]);
        assert_float_equal(p1, z[best] / s, 2e-6);
        assert_float_equal(p2, z[second] / s, 2e-6);
        line = strchr(line, '\n');
        assert_non_null(line);
    }
    assert_string_equal(line, "\n");
}

static void test_predict_dir_and_list(void **state)
{
    (void)state;
    struct fx_run r;
    fx_run_net_ok(&r, (const char *const[]){"classifier", "predict", path_in("a.data"),
                                            path_in("a.cfg"), path_in("a.weights"), path_in("v"),
                                            "-o", path_in("p.csv"), NULL});
    expect_out(&r, "predicted 6 images");
    expect_out(&r, "%: Ant, small");
    char csv[4096];
    fx_slurp(path_in("p.csv"), csv, sizeof csv);
    check_predict_csv(csv, (const int[]){0, 1, 2, 3, 4, 5}, 6);
    char list[2048];
    snprintf(list, sizeof list, "%s\n\n%s\n", path_in(images[5].name), path_in(images[1].name));
    fx_write_text(path_in("q.list"), list);
    fx_run_net_ok(&r,
                  (const char *const[]){"classifier", "predict", path_in("a.data"),
                                        path_in("a.cfg"), path_in("a.weights"), path_in("q.list"),
                                        path_in(images[3].name), "-o", path_in("p.csv"), NULL});
    fx_slurp(path_in("p.csv"), csv, sizeof csv);
    check_predict_csv(csv, (const int[]){5, 1, 3}, 3);
    /* names with a comma are quoted in CSV; the CSV holds labels, so check the print */
    expect_out(&r, path_in(images[5].name));
}

static void test_bad_flags(void **state)
{
    (void)state;
    const char *d = path_in("a.data"), *c = path_in("a.cfg"), *w = path_in("a.weights");
    const char *v = "valid";
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-crops", "3", NULL},
                   "-crops 3");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-scale", "0.5", NULL},
                   "-scale 0.5");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-scales", "3,x", NULL},
                   "-scales 3,x");
    fx_expect_fail(
        (const char *const[]){"classifier", v, d, c, w, "-scale", "2", "-scales", "4", NULL},
        "not both");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-ensemble", "x.cfg", NULL},
                   "-ensemble x.cfg: expected CFG,WEIGHTS");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-weight", "0", NULL},
                   "-weight 0");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-top", "4", NULL}, "-top 4: ");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-o", NULL}, "-o needs a value");
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-o", path_in("v"), NULL},
                   "is a directory");
    /* -scales in pixels smaller than the net input's shorter side (1 pixel is fine here) */
    fx_expect_fail((const char *const[]){"classifier", v, d, c, w, "-scales", "0", NULL},
                   "-scales 0");
}

static void test_bad_models_and_files(void **state)
{
    (void)state;
    const char *d = path_in("a.data"), *c = path_in("a.cfg"), *w = path_in("a.weights");
    char member[1100];
    snprintf(member, sizeof member, "%s,%s", path_in("two.cfg"), w);
    fx_expect_fail((const char *const[]){"classifier", "valid", d, c, w, "-ensemble", member, NULL},
                   "two.cfg: outputs 2 values per image");
    snprintf(member, sizeof member, "%s,%s", c, path_in("missing.weights"));
    fx_expect_fail((const char *const[]){"classifier", "valid", d, c, w, "-ensemble", member, NULL},
                   "missing.weights");
    fx_expect_fail((const char *const[]){"classifier", "valid", d, path_in("two.cfg"), w, NULL},
                   "classes=3");
    /* predict: a non-image in a directory, a missing file in a list; no CSV either time */
    write_pgm(path_in("bad/x.pgm"), 1, 2, 3);
    fx_write_text(path_in("bad/readme.md"), "not an image");
    remove(path_in("p.csv"));
    fx_expect_fail((const char *const[]){"classifier", "predict", d, c, w, path_in("bad"), "-o",
                                         path_in("p.csv"), NULL},
                   "bad/readme.md: not an image");
    assert_int_equal(access(path_in("p.csv"), F_OK), -1);
    char list[1024];
    snprintf(list, sizeof list, "%s\n%s\n", path_in("bad/x.pgm"), path_in("nope.png"));
    fx_write_text(path_in("t.list"), list);
    fx_expect_fail((const char *const[]){"classifier", "predict", d, c, w, path_in("t.list"), "-o",
                                         path_in("p.csv"), NULL},
                   "t.list:2: ");
    assert_int_equal(access(path_in("p.csv"), F_OK), -1);
}

static void test_failure_keeps_old_csv(void **state)
{
    (void)state;
    /* a PNG cut after its header chunk passes the up-front check, but its pixels are missing,
     * so decoding fails after the other images were evaluated */
    const unsigned char px[3] = {1, 2, 3};
    assert_true(stbi_write_png(path_in("trunc_ant.png"), 3, 1, 1, px, 3));
    assert_int_equal(truncate(path_in("trunc_ant.png"), 33), 0); /* signature 8 + IHDR 25 */
    char list[4096];
    snprintf(list, sizeof list, "%s\n%s\n", path_in(images[0].name), path_in("trunc_ant.png"));
    fx_write_text(path_in("t.list"), list);
    char data[2048];
    snprintf(data, sizeof data, "classes=3\nvalid=%s\nlabels=%s\n", path_in("t.list"),
             path_in("labels"));
    fx_write_text(path_in("t.data"), data);
    fx_write_text(path_in("cm.csv"), "old\n");
    fx_expect_fail((const char *const[]){"classifier", "valid", path_in("t.data"), path_in("a.cfg"),
                                         path_in("a.weights"), "-batch", "1", "-o",
                                         path_in("cm.csv"), NULL},
                   "trunc_ant.png: cannot decode");
    char csv[64];
    fx_slurp(path_in("cm.csv"), csv, sizeof csv);
    assert_string_equal(csv, "old\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_known_matrix),
        cmocka_unit_test(test_valid_ensemble_and_crops),
        cmocka_unit_test(test_predict_dir_and_list),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_bad_models_and_files),
        cmocka_unit_test(test_failure_keeps_old_csv),
    };
    return cmocka_run_group_tests_name("cli_evaluate", tests, setup, teardown);
}
