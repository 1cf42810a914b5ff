/* test_evaluate.c - the evaluation pieces under `classifier valid` and `predict`: view geometry
 * (resize rule, crop corners, mirrors) against values worked by hand; ten-crop and multi-scale
 * probabilities against a manual average of the crops through the same net; ensembles of a model
 * with itself, weighted ensembles, mismatched class counts; the confusion matrix and per-class
 * figures on known predictions; CSV quoting; image/list/directory inputs. Images are small PNGs
 * written at test time; nets are built from strings with seeded random weights. */
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

#include "core/csv.h"
#include "core/rng.h"
#include "data/image.h"
#include "data/inputs.h"
#include "data/views.h"
#include "net/ensemble.h"
#include "net/metrics.h"
#include "net/net.h"
#include "net/weights.h"

#include "fixture.h"

static char dir[] = "/tmp/cfgnet_eval_XXXXXX";

/* A 6x6x3 net: conv 4@3x3, connected to 5 classes, softmax. */
static const char cfg_a[] =
    "[net]\nbatch=1\nheight=6\nwidth=6\nchannels=3\n"
    "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
    "[connected]\noutput=5\nactivation=linear\n[softmax]\n";
/* Same input, 3 classes: may not join an ensemble of cfg_a. */
static const char cfg_c[] = "[net]\nbatch=1\nheight=6\nwidth=6\nchannels=3\n"
                            "[connected]\noutput=3\nactivation=linear\n[softmax]\n";

/* Not fx_path: the evaluation API takes char *paths[]. */
static char *path_in(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Writes cfg text to <name>.cfg and weights drawn from seed to <name>.weights. */
static void write_model(const char *name, const char *text, uint64_t seed)
{
    char cfg[512], w[512];
    snprintf(cfg, sizeof cfg, "%s/%s.cfg", dir, name);
    snprintf(w, sizeof w, "%s/%s.weights", dir, name);
    fx_write_text(cfg, text);
    struct net *n;
    cn_error e;
    if (net_create(&n, cfg, 1, 0, &e))
        fail_msg("%s", e.msg);
    net_init_params(n, seed);
    /* biases are 0 after init: give them values so that they count */
    for (int i = 0; i < n->nparams; i++)
        if (!strcmp(n->params[i].name, "biases"))
            for (size_t j = 0; j < n->params[i].n; j++)
                n->params[i].data[j] = 0.1f * (float)j - 0.2f;
    if (weights_save(n, w, &e))
        fail_msg("%s", e.msg);
    net_destroy(n);
}

/* An iw x ih RGB PNG of seeded random pixels. */
static void write_png(const char *path, int iw, int ih, uint64_t seed)
{
    uint8_t px[64 * 64 * 3];
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (int i = 0; i < iw * ih * 3; i++)
        px[i] = (uint8_t)(cn_rng_uniform(&r) * 255.99);
    assert_true(stbi_write_png(path, iw, ih, 3, px, iw * 3));
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    write_model("a", cfg_a, 11);
    write_model("b", cfg_a, 22);
    write_model("c", cfg_c, 33);
    write_png(path_in("img0.png"), 9, 7, 1);
    write_png(path_in("img1.png"), 7, 9, 2);
    write_png(path_in("img2.png"), 6, 6, 3);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"a.cfg",        "a.weights", "b.cfg",     "b.weights",
                           "c.cfg",        "c.weights", "img0.png",  "img1.png",
                           "img2.png",     "in/b.png",  "in/a.png",  "in/.hidden",
                           "in/sub/x.png", "x.list",    "notes.txt", "t.csv"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        remove(path_in(names[i]));
    rmdir(path_in("in/sub"));
    rmdir(path_in("in"));
    rmdir(path_in("emptydir"));
    rmdir(dir);
    return 0;
}

static void test_resize_rule(void **state)
{
    (void)state;
    int rw, rh;
    /* 9x7 to cover 8x8: f = max(8/9, 8/7) = 8/7, 9 * 8/7 = 10.29 -> 10, 7 * 8/7 = 8 */
    views_resized_size(&rw, &rh, 9, 7, 6, 6, 8.0f / 6.0f);
    assert_int_equal(rw, 10);
    assert_int_equal(rh, 8);
    /* scale 1, same aspect: the net size itself */
    views_resized_size(&rw, &rh, 56, 56, 28, 28, 1.0f);
    assert_int_equal(rw, 28);
    assert_int_equal(rh, 28);
    /* Fashion-MNIST ten-crop: 28 * 256/224 = 32 */
    views_resized_size(&rw, &rh, 28, 28, 28, 28, 256.0f / 224.0f);
    assert_int_equal(rw, 32);
    assert_int_equal(rh, 32);
    /* tall 7x9 image, 6x6 net, s = 1: f = 6/7, 9 * 6/7 = 7.71 -> 8 */
    views_resized_size(&rw, &rh, 7, 9, 6, 6, 1.0f);
    assert_int_equal(rw, 6);
    assert_int_equal(rh, 8);
    struct view_spec px = {.crops = 1, .nscales = 2, .pixels = 1, .scale = {256, 288}};
    assert_float_equal(views_ratio(&px, 1, 224, 224), 288.0 / 224.0, 1e-6);
    cn_error e;
    assert_int_equal(views_check(&px, 224, 224, &e), 0);
    assert_int_equal(views_check(&px, 300, 300, &e), -1);
    assert_non_null(strstr(e.msg, "scale 256 pixels"));
    struct view_spec bad = {.crops = 3, .nscales = 1, .scale = {1}};
    assert_int_equal(views_check(&bad, 6, 6, &e), -1);
    assert_non_null(strstr(e.msg, "crops 3"));
}

static void test_origins_and_mirror(void **state)
{
    (void)state;
    /* 6x6 windows in 10x8: centre (2,1), corners (0,0) (4,0) (0,2) (4,2) */
    const int want[5][2] = {{2, 1}, {0, 0}, {4, 0}, {0, 2}, {4, 2}};
    for (int k = 0; k < 5; k++) {
        int x, y;
        views_origin(&x, &y, k, 10, 8, 6, 6);
        assert_int_equal(x, want[k][0]);
        assert_int_equal(y, want[k][1]);
    }
    /* 2 channels of 4x3; window 2x2 at (1,1), mirrored */
    uint8_t src[24];
    for (int i = 0; i < 24; i++)
        src[i] = (uint8_t)i;
    float out[8];
    views_cut(out, src, 4, 3, 2, 1, 1, 2, 2, 1);
    const float want_px[8] = {6, 5, 10, 9, 18, 17, 22, 21};
    for (int i = 0; i < 8; i++)
        assert_float_equal(out[i], want_px[i] / 255.0f, 1e-7);
}

/* Softmax output of net (batch 1) on x. */
static void forward_one(struct net *n, const float *x, float *y)
{
    memcpy(n->input, x, sizeof *x * net_inputs(n));
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    memcpy(y, net_output(n), sizeof *y * net_outputs(n));
}

/* The test's own crop: window w x h at (x0, y0) of a CHW byte image, mirrored or not. */
static void manual_crop(float *dst, const uint8_t *src, int rw, int rh, int x0, int y0, int m)
{
    for (int k = 0; k < 3; k++)
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
                dst[(k * 6 + y) * 6 + x] =
                    src[(k * rh + y0 + y) * rw + x0 + (m ? 5 - x : x)] / 255.0f;
}

/* Mean softmax of model a over the given windows of img0.png resized to rw x rh. */
static void manual_average(double *acc, int rw, int rh, const int (*xy)[2], int nxy, int mirrors,
                           double weight)
{
    struct net *n;
    cn_error e;
    if (net_create(&n, path_in("a.cfg"), 1, 0, &e) || weights_load(n, path_in("a.weights"), &e))
        fail_msg("%s", e.msg);
    uint8_t *px = malloc((size_t)rw * rh * 3);
    if (image_load_u8(px, path_in("img0.png"), rw, rh, 3, &e))
        fail_msg("%s", e.msg);
    for (int m = 0; m <= mirrors; m++) {
        for (int k = 0; k < nxy; k++) {
            float x[108], y[5];
            manual_crop(x, px, rw, rh, xy[k][0], xy[k][1], m);
            forward_one(n, x, y);
            for (int j = 0; j < 5; j++)
                acc[j] += weight * y[j];
        }
    }
    free(px);
    net_destroy(n);
}

static void predict(const struct view_spec *v, const char *const *models, const double *w,
                    int nmodels, char *const *paths, int count, float *probs)
{
    struct ensemble en;
    ensemble_init(&en, v, 7); /* 7 views per pass: ten crops straddle passes */
    cn_error e;
    for (int i = 0; i < nmodels; i++) {
        char cfg[512], wt[512];
        snprintf(cfg, sizeof cfg, "%s/%s.cfg", dir, models[i]);
        snprintf(wt, sizeof wt, "%s/%s.weights", dir, models[i]);
        if (ensemble_add(&en, cfg, wt, w[i], &e))
            fail_msg("%s", e.msg);
    }
    for (int i = 0; i < count; i += en.group) {
        int k = CN_MIN(en.group, count - i);
        if (ensemble_predict(&en, probs + (size_t)i * 5, paths + i, k, &e))
            fail_msg("%s", e.msg);
    }
    ensemble_free(&en);
}

static void test_ten_crop_equals_manual_average(void **state)
{
    (void)state;
    struct view_spec v = {.crops = 10, .nscales = 1, .scale = {8.0f / 6.0f}};
    char *paths[] = {path_in("img0.png")};
    float p[5];
    predict(&v, (const char *const[]){"a"}, (const double[]){1}, 1, paths, 1, p);
    double want[5] = {0};
    const int xy[5][2] = {{2, 1}, {0, 0}, {4, 0}, {0, 2}, {4, 2}}; /* 10x8, worked above */
    manual_average(want, 10, 8, xy, 5, 1, 0.1);
    double sum = 0;
    for (int j = 0; j < 5; j++) {
        assert_float_equal(p[j], want[j], 1e-6);
        sum += p[j];
    }
    assert_float_equal(sum, 1.0, 1e-5);
    /* the average differs from the centre crop alone (else the test proves little) */
    double centre[5] = {0};
    manual_average(centre, 10, 8, xy, 1, 0, 1.0);
    double diff = 0;
    for (int j = 0; j < 5; j++)
        diff += fabs(centre[j] - want[j]);
    assert_true(diff > 1e-3);
}

static void test_multi_scale_equals_manual_average(void **state)
{
    (void)state;
    /* shorter side 6 -> 8x6 (centre (1,0)); 8 -> 10x8 (centre (2,1)); with mirrors */
    struct view_spec v = {.crops = 2, .nscales = 2, .pixels = 1, .scale = {6, 8}};
    char *paths[] = {path_in("img0.png")};
    float p[5];
    predict(&v, (const char *const[]){"a"}, (const double[]){1}, 1, paths, 1, p);
    double want[5] = {0};
    manual_average(want, 8, 6, (const int[][2]){{1, 0}}, 1, 1, 0.25);
    manual_average(want, 10, 8, (const int[][2]){{2, 1}}, 1, 1, 0.25);
    for (int j = 0; j < 5; j++)
        assert_float_equal(p[j], want[j], 1e-6);
}

static void test_ensembles(void **state)
{
    (void)state;
    struct view_spec v = {.crops = 5, .nscales = 1, .scale = {1.25f}};
    char *paths[] = {path_in("img0.png"), path_in("img1.png"), path_in("img2.png")};
    float pa[15], paa[15], pb[15], pab[15];
    predict(&v, (const char *const[]){"a"}, (const double[]){1}, 1, paths, 3, pa);
    predict(&v, (const char *const[]){"a", "a"}, (const double[]){0.3, 0.7}, 2, paths, 3, paa);
    predict(&v, (const char *const[]){"b"}, (const double[]){2}, 1, paths, 3, pb);
    predict(&v, (const char *const[]){"a", "b"}, (const double[]){1, 3}, 2, paths, 3, pab);
    double diff = 0;
    for (int i = 0; i < 15; i++) {
        assert_float_equal(paa[i], pa[i], 1e-6);
        assert_float_equal(pab[i], 0.25 * pa[i] + 0.75 * pb[i], 1e-6);
        diff += fabs(pa[i] - pb[i]);
    }
    assert_true(diff > 1e-3); /* a and b really differ */
}

static void test_ensemble_errors(void **state)
{
    (void)state;
    struct view_spec v = {.crops = 1, .nscales = 1, .scale = {1}};
    struct ensemble en;
    ensemble_init(&en, &v, 4);
    cn_error e;
    assert_int_equal(ensemble_add(&en, path_in("a.cfg"), path_in("a.weights"), 1, &e), 0);
    assert_int_equal(ensemble_add(&en, path_in("c.cfg"), path_in("c.weights"), 1, &e), -1);
    assert_non_null(strstr(e.msg, "c.cfg: outputs 3 values per image, but "));
    assert_non_null(strstr(e.msg, "a.cfg outputs 5"));
    assert_int_equal(ensemble_add(&en, path_in("a.cfg"), path_in("c.weights"), 1, &e), -1);
    assert_non_null(strstr(e.msg, "c.weights"));
    assert_int_equal(ensemble_add(&en, path_in("b.cfg"), path_in("b.weights"), -1, &e), -1);
    assert_non_null(strstr(e.msg, "weight -1"));
    assert_int_equal(en.n, 1);
    fx_write_text(path_in("notes.txt"), "not an image");
    char *paths[] = {path_in("img0.png"), path_in("notes.txt")};
    float p[10];
    assert_int_equal(ensemble_predict(&en, p, paths, 2, &e), -1);
    assert_non_null(strstr(e.msg, "notes.txt: not an image"));
    ensemble_free(&en);
    struct view_spec big = {.crops = 1, .nscales = 1, .pixels = 1, .scale = {5}};
    ensemble_init(&en, &big, 4);
    assert_int_equal(ensemble_add(&en, path_in("a.cfg"), path_in("a.weights"), 1, &e), -1);
    assert_non_null(strstr(e.msg, "a.cfg: scale 5 pixels"));
    ensemble_free(&en);
}

/* A probability row that ranks classes in the given order (first = most probable). */
static void ranked(float *p, int n, const int *order)
{
    for (int j = 0; j < n; j++)
        p[order[j]] = (float)(n - j) / (float)(n * (n + 1) / 2);
}

static void test_confusion_known_predictions(void **state)
{
    (void)state;
    struct confusion *c;
    cn_error e;
    assert_int_equal(confusion_create(&c, 4, 2, &e), 0);
    /* (truth, ranking): class 3 never predicted; class 2 has no images */
    const int truth[6] = {0, 0, 1, 1, 1, 3};
    const int order[6][4] = {{0, 1, 2, 3}, {1, 0, 2, 3}, {1, 2, 0, 3},
                             {1, 0, 2, 3}, {0, 2, 1, 3}, {0, 1, 3, 2}};
    for (int i = 0; i < 6; i++) {
        float p[4];
        ranked(p, 4, order[i]);
        confusion_add(c, p, truth[i]);
    }
    const long want[16] = {1, 1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    for (int i = 0; i < 16; i++)
        assert_int_equal(c->count[i], want[i]);
    assert_int_equal(c->total, 6);
    assert_float_equal(confusion_top1(c), 3.0 / 6, 1e-12);
    assert_float_equal(confusion_topk(c), 4.0 / 6, 1e-12); /* rows 4 and 5 miss their top 2 */
    struct class_stats s;
    confusion_class(c, 0, &s);
    assert_int_equal(s.images, 2);
    assert_int_equal(s.predicted, 3);
    assert_float_equal(s.recall, 0.5, 1e-12);
    assert_float_equal(s.precision, 1.0 / 3, 1e-12);
    assert_float_equal(s.f1, 2 * 0.5 / 3 / (0.5 + 1.0 / 3), 1e-12);
    assert_float_equal(s.topk_recall, 1.0, 1e-12);
    confusion_class(c, 1, &s);
    assert_float_equal(s.recall, 2.0 / 3, 1e-12);
    assert_float_equal(s.precision, 2.0 / 3, 1e-12);
    assert_float_equal(s.topk_recall, 2.0 / 3, 1e-12);
    confusion_class(c, 2, &s);
    assert_true(isnan(s.recall) && isnan(s.precision));
    confusion_class(c, 3, &s);
    assert_int_equal(s.predicted, 0);
    assert_float_equal(s.recall, 0.0, 0);
    assert_true(isnan(s.precision));
    assert_float_equal(s.topk_recall, 0.0, 0);
    long rows = 0;
    for (int i = 0; i < 4; i++) {
        confusion_class(c, i, &s);
        rows += s.images;
    }
    assert_int_equal(rows, c->total);
    confusion_destroy(c);
    int idx[3];
    metrics_top_k(idx, (const float[]){0.2f, 0.5f, 0.2f, 0.1f}, 4, 3);
    assert_int_equal(idx[0], 1);
    assert_int_equal(idx[1], 0); /* tie: the lower index first */
    assert_int_equal(idx[2], 2);
}

static void test_csv(void **state)
{
    (void)state;
    struct csv c = {0};
    csv_field(&c, "plain");
    csv_field(&c, "a,b");
    csv_field(&c, "say \"hi\"");
    csv_fieldf(&c, "%.2f", 0.5);
    csv_end_row(&c);
    csv_field(&c, " padded");
    csv_field(&c, "");
    csv_end_row(&c);
    assert_string_equal(c.text.s, "plain,\"a,b\",\"say \"\"hi\"\"\",0.50\n\" padded\",\n");
    cn_error e;
    assert_int_equal(csv_write(&c, path_in("t.csv"), &e), 0);
    char buf[128] = {0};
    FILE *f = fopen(path_in("t.csv"), "r");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, sizeof buf - 1, f), c.text.len);
    fclose(f);
    assert_string_equal(buf, c.text.s);
    csv_free(&c);
    /* a formatted field longer than any fixed buffer, with a quote to double */
    csv_fieldf(&c, "%0300d\"", 7);
    assert_int_equal(c.text.len, 1 + 300 + 2 + 1);
    assert_memory_equal(c.text.s + 299, "07\"\"\"", 5);
    csv_free(&c);
    assert_null(c.text.s);
}

static void test_inputs(void **state)
{
    (void)state;
    mkdir(path_in("in"), 0755);
    mkdir(path_in("in/sub"), 0755);
    write_png(path_in("in/b.png"), 4, 4, 5);
    write_png(path_in("in/a.png"), 4, 4, 6);
    write_png(path_in("in/sub/x.png"), 4, 4, 7);
    fx_write_text(path_in("in/.hidden"), "skipped");
    char list[1024];
    snprintf(list, sizeof list, "%s\n\n%s  \r\n", path_in("img2.png"), path_in("img0.png"));
    fx_write_text(path_in("x.list"), list);
    struct inputs in = {0};
    cn_error e;
    assert_int_equal(inputs_add(&in, path_in("in"), &e), 0);
    assert_int_equal(inputs_add(&in, path_in("x.list"), &e), 0);
    assert_int_equal(inputs_add(&in, path_in("img1.png"), &e), 0);
    assert_int_equal(in.n, 5);
    const char *want[5] = {"in/a.png", "in/b.png", "img2.png", "img0.png", "img1.png"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(in.paths[i], path_in(want[i]));
    assert_int_equal(inputs_check(&in, &e), 0);
    inputs_free(&in);
    mkdir(path_in("emptydir"), 0755);
    assert_int_equal(inputs_add(&in, path_in("emptydir"), &e), -1);
    assert_non_null(strstr(e.msg, "emptydir: no files"));
    snprintf(list, sizeof list, "%s\n%s\n", path_in("img0.png"), path_in("missing.png"));
    fx_write_text(path_in("x.list"), list);
    assert_int_equal(inputs_add(&in, path_in("x.list"), &e), 0);
    assert_int_equal(inputs_check(&in, &e), -1);
    assert_non_null(strstr(e.msg, "x.list:2: "));
    assert_non_null(strstr(e.msg, "missing.png: cannot open"));
    inputs_free(&in);
    fx_write_text(path_in("in/notes.txt"), "hello");
    assert_int_equal(inputs_add(&in, path_in("in"), &e), 0);
    assert_int_equal(inputs_check(&in, &e), -1);
    assert_non_null(strstr(e.msg, "in/notes.txt: not an image"));
    inputs_free(&in);
    remove(path_in("in/notes.txt"));
}

/* An IDX set's gray pixels in memory give the same views as the same pixels in a PNG file. */
static void test_gray_pixels_equal_file(void **state)
{
    (void)state;
    uint8_t px[9 * 7];
    for (int i = 0; i < 9 * 7; i++)
        px[i] = (uint8_t)(37 * i + 11);
    assert_true(stbi_write_png(path_in("t.csv"), 9, 7, 1, px, 9)); /* a PNG despite the name */
    struct view_spec v = {.crops = 10, .nscales = 2, .pixels = 1, .scale = {6, 8}};
    float a[20 * 108], b[20 * 108];
    cn_error e;
    assert_int_equal(views_load(a, path_in("t.csv"), 6, 6, 3, &v, &e), 0);
    assert_int_equal(views_from_gray(b, px, 9, 7, 6, 6, 3, &v, "mem", &e), 0);
    for (int i = 0; i < 20 * 108; i++)
        assert_float_equal(a[i], b[i], 0);
    /* gray to RGB: three equal planes */
    for (int i = 0; i < 36; i++)
        assert_float_equal(b[i], b[72 + i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_rule),
        cmocka_unit_test(test_origins_and_mirror),
        cmocka_unit_test(test_ten_crop_equals_manual_average),
        cmocka_unit_test(test_multi_scale_equals_manual_average),
        cmocka_unit_test(test_ensembles),
        cmocka_unit_test(test_ensemble_errors),
        cmocka_unit_test(test_confusion_known_predictions),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_gray_pixels_equal_file),
    };
    return cmocka_run_group_tests_name("evaluate", tests, setup, teardown);
}
