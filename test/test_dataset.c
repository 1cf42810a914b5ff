/* test_dataset.c - the kinds of image sets (data/list.h) written into a temp dir: directory trees
 * (ImageFolder: class = folder, sorted, checked against labels=; nested folders; other files
 * ignored; empty class folder, unknown folder, missing folder are errors naming them), the
 * shipped data/imagenet.data against a synthetic tree of all 1000 ILSVRC-2012 class folders,
 * "path label" lists, IDX files raw and gzipped (and one whose header disagrees with its size),
 * .data files without labels= and with class_weights=; and the loader reading each kind. */
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

#include "data/datafile.h"
#include "data/list.h"
#include "data/loader.h"

#include "fixture.h"

static int setup(void **state)
{
    return fx_scratch_create(state, "dataset");
}

/* A 2x2 gray image of value v at path (PNG, or JPEG when the name says so). */
static void put_image(const char *path, int v)
{
    uint8_t px[4] = {(uint8_t)v, (uint8_t)v, (uint8_t)v, (uint8_t)v};
    const char *dot = strrchr(path, '.');
    int ok = dot && (!strcmp(dot, ".JPEG") || !strcmp(dot, ".jpg"))
                 ? stbi_write_jpg(path, 2, 2, 1, px, 95)
                 : stbi_write_png(path, 2, 2, 1, px, 2);
    assert_true(ok);
}

/* mkdir a/b */
static void mkdirf(const char *a, const char *b)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", a, b);
    assert_int_equal(mkdir(p, 0755), 0);
}

static char *const fruit[3] = {"apple", "fig", "pear"};

/* dir/tree/{apple,fig,pear} with images (pear has a nested folder), plus files to ignore. */
static void make_tree(const char *dir, char *tree)
{
    char p[1024];
    snprintf(tree, 512, "%s/tree", dir);
    assert_int_equal(mkdir(tree, 0755), 0);
    for (int k = 0; k < 3; k++)
        mkdirf(tree, fruit[k]);
    const char *files[] = {"apple/b.png", "apple/a.PNG", "fig/x.jpg", "pear/z.png",
                           "pear/deep/y.png"};
    mkdirf(tree, "pear/deep");
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", tree, files[i]);
        put_image(p, 40 * (int)i);
    }
    snprintf(p, sizeof p, "%s/apple/notes.txt", tree);
    fx_write_text(p, "ignored\n");
    snprintf(p, sizeof p, "%s/fig/.hidden.png", tree);
    fx_write_text(p, "ignored\n");
    snprintf(p, sizeof p, "%s/README", tree);
    fx_write_text(p, "ignored\n");
}

static void test_tree(void **state)
{
    struct fx_scratch *fx = *state;
    char tree[512], want[1024];
    make_tree(fx->dir, tree);
    struct image_list *l;
    cn_error e;
    if (image_list_load(&l, tree, fruit, 3, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(l->kind, LIST_DIR);
    assert_int_equal(l->n, 5);
    const char *order[] = {"apple/a.PNG", "apple/b.png", "fig/x.jpg", "pear/deep/y.png",
                           "pear/z.png"};
    const int labels[] = {0, 0, 1, 2, 2};
    for (int i = 0; i < 5; i++) {
        snprintf(want, sizeof want, "%s/%s", tree, order[i]);
        assert_string_equal(l->paths[i], want);
        assert_int_equal(l->labels[i], labels[i]);
    }
    /* The loader reads it: image 2 (fig/x.jpg, value 80) in validation order. */
    struct loader *ld;
    assert_int_equal(loader_create(&ld, l, 2, 2, 1, 3, 1, 0, &e), 0);
    float x[4], t[3];
    assert_int_equal(loader_fill(ld, x, t, 2, 1, &e), 0);
    assert_float_equal(x[0], 80 / 255.0f, 2 / 255.0f); /* JPEG */
    assert_true(t[1] == 1 && t[0] == 0);
    loader_destroy(ld);
    image_list_destroy(l);
    /* labels= in another order: the class is the label's position. */
    char *swapped[3] = {"pear", "apple", "fig"};
    assert_int_equal(image_list_load(&l, tree, swapped, 3, &e), 0);
    assert_int_equal(l->labels[0], 1);
    assert_int_equal(l->labels[4], 0);
    image_list_destroy(l);
    char **cls;
    int n;
    assert_int_equal(image_dir_classes(tree, &cls, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(cls[1], "fig");
    data_strings_free(cls, n);
}

static void expect_load_error(const char *path, char *const *labels, int n, const char *want)
{
    struct image_list *l = (struct image_list *)1;
    cn_error e;
    assert_int_equal(image_list_load(&l, path, labels, n, &e), -1);
    assert_null(l);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
}

static void test_tree_errors(void **state)
{
    struct fx_scratch *fx = *state;
    char tree[512], want[1024];
    make_tree(fx->dir, tree);
    char *four[4] = {"apple", "fig", "kiwi", "pear"};
    snprintf(want, sizeof want, "%s: no folder for label 'kiwi' (class 2)", tree);
    expect_load_error(tree, four, 4, want);
    char *two[2] = {"apple", "pear"};
    snprintf(want, sizeof want, "%s: folder 'fig' is not one of the 2 labels", tree);
    expect_load_error(tree, two, 2, want);
    mkdirf(tree, "kiwi");
    snprintf(want, sizeof want, "%s/kiwi/: empty class folder", tree);
    expect_load_error(tree, four, 4, want);
    char empty[600];
    snprintf(empty, sizeof empty, "%s/none", fx->dir);
    assert_int_equal(mkdir(empty, 0755), 0);
    snprintf(want, sizeof want, "%s: no class folders", empty);
    expect_load_error(empty, four, 4, want);
}

/* data/imagenet.data: 1000 sorted wnids with names; a synthetic ILSVRC-2012 train/ tree with all
 * 1000 class folders (one JPEG each) loads with class k = folder k. */
static void test_imagenet(void **state)
{
    struct fx_scratch *fx = *state;
    struct data_cfg *d;
    cn_error e;
    if (data_cfg_load(&d, "data/imagenet.data", &e))
        fail_msg("%s", e.msg);
    assert_int_equal(d->classes, 1000);
    assert_int_equal(d->top, 5);
    assert_string_equal(d->labels[0], "n01440764");
    assert_string_equal(d->names[0], "tench");
    assert_string_equal(d->labels[281], "n02123045");
    assert_string_equal(d->names[281], "tabby");
    assert_string_equal(d->labels[999], "n15075141");
    assert_string_equal(d->names[999], "toilet tissue");
    for (int k = 1; k < 1000; k++)
        assert_true(strcmp(d->labels[k - 1], d->labels[k]) < 0);
    char train[600], p[1024];
    snprintf(train, sizeof train, "%s/train", fx->dir);
    assert_int_equal(mkdir(train, 0755), 0);
    for (int k = 999; k >= 0; k--) { /* creation order must not matter */
        mkdirf(train, d->labels[k]);
        snprintf(p, sizeof p, "%s/%s/%s_%d.JPEG", train, d->labels[k], d->labels[k], 10026 + k);
        put_image(p, k % 250);
    }
    struct image_list *l;
    if (image_list_load(&l, train, d->labels, d->classes, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(l->n, 1000);
    for (int k = 0; k < 1000; k++) {
        assert_int_equal(l->labels[k], k);
        assert_non_null(strstr(l->paths[k], d->labels[k]));
    }
    assert_int_equal(loader_check_all(l, &e), 0);
    image_list_destroy(l);
    data_cfg_destroy(d);
}

static void test_labelled_list(void **state)
{
    struct fx_scratch *fx = *state;
    char a[600], b[600], list[600], text[2048], want[2048];
    snprintf(a, sizeof a, "%s/one image.png", fx->dir); /* a blank in the path */
    snprintf(b, sizeof b, "%s/two.png", fx->dir);
    put_image(a, 10);
    put_image(b, 20);
    snprintf(list, sizeof list, "%s/set.txt", fx->dir);
    snprintf(text, sizeof text, "%s pear\n\n%s\t1\r\n%s apple\n", a, b, b);
    fx_write_text(list, text);
    struct image_list *l;
    cn_error e;
    if (image_list_load(&l, list, fruit, 3, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(l->kind, LIST_FILE);
    assert_int_equal(l->n, 3);
    assert_string_equal(l->paths[0], a);
    assert_int_equal(l->labels[0], 2);
    assert_int_equal(l->labels[1], 1);
    assert_int_equal(l->lines[1], 3);
    assert_int_equal(l->labels[2], 0);
    image_list_destroy(l);
    snprintf(text, sizeof text, "%s fig\n%s\n", a, b);
    fx_write_text(list, text);
    snprintf(want, sizeof want, "%s:2: '%s': expected 'path label'", list, b);
    expect_load_error(list, fruit, 3, want);
    snprintf(text, sizeof text, "%s 3\n", a); /* class 3 of 3: not a label, so a Darknet path */
    fx_write_text(list, text);
    expect_load_error(list, fruit, 3, "matches no label");
}

static void test_idx(void **state)
{
    struct fx_scratch *fx = *state;
    enum { N = 5, R = 3, C = 4 };
    uint8_t px[N * R * C], lab[N] = {2, 0, 1, 2, 1};
    for (int i = 0; i < N * R * C; i++)
        px[i] = (uint8_t)(i * 3);
    char im[600], lb[600], want[2048];
    snprintf(im, sizeof im, "%s/set-images-idx3-ubyte", fx->dir);
    snprintf(lb, sizeof lb, "%s/set-labels-idx1-ubyte", fx->dir);
    const uint32_t di[3] = {N, R, C}, dl[1] = {N};
    fx_write_idx(im, 0x803, di, 3, px, sizeof px);
    fx_write_idx(lb, 0x801, dl, 1, lab, sizeof lab);
    struct image_list *l;
    cn_error e;
    if (image_list_load(&l, im, fruit, 3, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(l->kind, LIST_IDX);
    assert_int_equal(l->n, N);
    assert_int_equal(l->labels[3], 2);
    snprintf(want, sizeof want, "%s#3", im);
    assert_string_equal(l->paths[3], want);
    assert_int_equal(loader_check_all(l, &e), 0);
    struct loader *ld;
    assert_int_equal(loader_create(&ld, l, C, R, 3, 3, 1, 0, &e), 0); /* gray to RGB */
    float x[R * C * 3], t[3];
    assert_int_equal(loader_fill(ld, x, t, 3, 1, &e), 0);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < R * C; i++)
            assert_true(x[k * R * C + i] == px[3 * R * C + i] / 255.0f);
    assert_true(t[2] == 1);
    loader_destroy(ld);
    image_list_destroy(l);
    /* The header says 5 x 3 x 4 = 60 bytes, the file holds 59. */
    fx_write_idx(im, 0x803, di, 3, px, sizeof px - 1);
    snprintf(want, sizeof want, "%s: IDX sizes give 60 bytes of data, but the file holds 59", im);
    expect_load_error(im, fruit, 3, want);
    fx_write_idx(im, 0x803, di, 3, px, sizeof px);
    const uint32_t dl4[1] = {4};
    fx_write_idx(lb, 0x801, dl4, 1, lab, 4);
    snprintf(want, sizeof want, "%s: 4 labels, but %s holds 5 images", lb, im);
    expect_load_error(im, fruit, 3, want);
    /* The gzipped Fashion-MNIST files Debian installs. */
    const char *fm = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    if (access(fm, R_OK)) {
        printf("skipped: %s (Debian package dataset-fashion-mnist) is absent\n", fm);
        return;
    }
    char *ten[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    assert_int_equal(image_list_load(&l, fm, ten, 10, &e), 0);
    assert_int_equal(l->n, 10000);
    assert_int_equal(l->pw, 28);
    image_list_destroy(l);
}

/* A .data file without labels= over a directory tree takes its sorted folders; class_weights. */
static void test_datafile(void **state)
{
    struct fx_scratch *fx = *state;
    char tree[512], path[600], text[2048], want[1024];
    make_tree(fx->dir, tree);
    snprintf(path, sizeof path, "%s/x.data", fx->dir);
    snprintf(text, sizeof text, "classes=3\ntrain=%s/\nclass_weights=1, 2, 0.5\n", tree);
    fx_write_text(path, text);
    struct data_cfg *d;
    cn_error e;
    if (data_cfg_load(&d, path, &e))
        fail_msg("%s", e.msg);
    assert_string_equal(d->labels[2], "pear");
    assert_string_equal(d->names[1], "fig");
    assert_non_null(d->class_weights);
    assert_float_equal(d->class_weights[1], 2, 0);
    data_cfg_destroy(d);
    snprintf(text, sizeof text, "classes=3\ntrain=%s\nclass_weights=1,2\n", tree);
    fx_write_text(path, text);
    assert_int_equal(data_cfg_load(&d, path, &e), -1);
    snprintf(want, sizeof want, "%s:3: class_weights=1,2: has 2 values but classes=3", path);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
    snprintf(text, sizeof text, "classes=3\ntrain=%s/list.txt\n", tree);
    fx_write_text(path, text);
    assert_int_equal(data_cfg_load(&d, path, &e), -1);
    assert_non_null(strstr(e.msg, "labels= is missing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tree, setup, fx_scratch_destroy),
        cmocka_unit_test_setup_teardown(test_tree_errors, setup, fx_scratch_destroy),
        cmocka_unit_test_setup_teardown(test_imagenet, setup, fx_scratch_destroy),
        cmocka_unit_test_setup_teardown(test_labelled_list, setup, fx_scratch_destroy),
        cmocka_unit_test_setup_teardown(test_idx, setup, fx_scratch_destroy),
        cmocka_unit_test_setup_teardown(test_datafile, setup, fx_scratch_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
