/* test_loader.c - the batch loader over a list of small PNGs written at test time: every image
 * exactly once per epoch, the same order for the same seed, identical batches with and without
 * the cache, sequential validation slices, decode errors naming the list line and path, and
 * loader_check_all listing every bad image. */
#include <dirent.h>
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

#include "data/list.h"
#include "data/loader.h"

#define N 13 /* images in the list: prime, so batches straddle epochs */
#define IW 4
#define IH 3
#define IPX (IW * IH)
#define CLASSES 3

static char *const animals[CLASSES] = {"cat", "dog", "emu"};

struct fixture {
    char dir[64];
    char list[128];
    struct image_list *l;
};

/* Pixel j of image i: distinct per image, so a batch row tells which image it is. */
static uint8_t pixel(int i, int j)
{
    return (uint8_t)(10 + 17 * i + j);
}

/* Writes image i as dir/img<i>_<label>.png (gray IW x IH); returns its path in out[256]. */
static void write_image(const char *dir, int i, char *out)
{
    uint8_t px[IPX];
    for (int j = 0; j < IPX; j++)
        px[j] = pixel(i, j);
    snprintf(out, 256, "%s/img%02d_%s.png", dir, i, animals[i % CLASSES]);
    assert_true(stbi_write_png(out, IW, IH, 1, px, IW));
}

/* Writes the list file from the given lines and loads it into fx->l. */
static void write_list(struct fixture *fx, char lines[][256], int n)
{
    snprintf(fx->list, sizeof fx->list, "%s/images.list", fx->dir);
    FILE *f = fopen(fx->list, "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", lines[i]);
    fclose(f);
    cn_error e;
    image_list_destroy(fx->l);
    if (image_list_load(&fx->l, fx->list, animals, CLASSES, &e))
        fail_msg("%s", e.msg);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cfgnet_loader_XXXXXX");
    *state = fx;
    if (!mkdtemp(fx->dir))
        return -1;
    char lines[N][256];
    for (int i = 0; i < N; i++)
        write_image(fx->dir, i, lines[i]);
    write_list(fx, lines, N);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    image_list_destroy(fx->l);
    DIR *d = opendir(fx->dir);
    struct dirent *ent;
    char path[512];
    while (d && (ent = readdir(d))) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, ent->d_name);
        if (strcmp(ent->d_name, ".") && strcmp(ent->d_name, ".."))
            unlink(path);
    }
    if (d)
        closedir(d);
    int rc = rmdir(fx->dir);
    free(fx);
    return rc;
}

/* Which image row b of x holds, checking all its pixels and its truth row. */
static int identify(const float *x, const float *truth, int b)
{
    const float *row = x + b * IPX;
    int i = ((int)(row[0] * 255.0f + 0.5f) - 10) / 17;
    assert_true(i >= 0 && i < N);
    for (int j = 0; j < IPX; j++)
        assert_true(row[j] == pixel(i, j) / 255.0f);
    for (int k = 0; k < CLASSES; k++)
        assert_true(truth[b * CLASSES + k] == (k == i % CLASSES ? 1.0f : 0.0f));
    return i;
}

static struct loader *make(const struct image_list *l, uint64_t seed, size_t cache)
{
    struct loader *ld;
    cn_error e;
    if (loader_create(&ld, l, IW, IH, 1, CLASSES, seed, cache, &e))
        fail_msg("%s", e.msg);
    return ld;
}

/* Takes count images from ld in batches of batch; their ids go to ids. */
static void take(struct loader *ld, int *ids, int count, int batch)
{
    float x[64 * IPX], truth[64 * CLASSES];
    cn_error e;
    for (int got = 0; got < count; got += batch) {
        if (loader_next(ld, x, truth, batch, &e))
            fail_msg("%s", e.msg);
        for (int b = 0; b < batch && got + b < count; b++)
            ids[got + b] = identify(x, truth, b);
    }
}

static void assert_permutation(const int *ids)
{
    int seen[N] = {0};
    for (int i = 0; i < N; i++)
        seen[ids[i]]++;
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
}

static void test_epochs(void **state)
{
    struct fixture *fx = *state;
    for (int cached = 0; cached < 2; cached++) {
        struct loader *ld = make(fx->l, 42, cached ? 1 << 20 : 0);
        assert_int_equal(loader_cached(ld), cached);
        int ids[3 * N];
        take(ld, ids, 3 * N, 3);
        for (int ep = 0; ep < 3; ep++)
            assert_permutation(ids + ep * N);
        assert_true(memcmp(ids, ids + N, sizeof *ids * N) ||
                    memcmp(ids + N, ids + 2 * N, sizeof *ids * N));
        assert_int_equal(loader_seen(ld), 3 * N);
        assert_int_equal(loader_epoch(ld), 3);
        loader_destroy(ld);
    }
    loader_destroy(NULL);
}

static void test_seed(void **state)
{
    struct fixture *fx = *state;
    int a[4 * N], b[4 * N], c[4 * N];
    struct loader *la = make(fx->l, 7, 0), *lb = make(fx->l, 7, 1 << 20), *lc = make(fx->l, 8, 0);
    take(la, a, 4 * N, 4);
    take(lb, b, 4 * N, 4);
    take(lc, c, 4 * N, 4);
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a));
    loader_destroy(la);
    loader_destroy(lb);
    loader_destroy(lc);
}

/* Cached and uncached loaders give the same bytes, also when resizing to RGB. */
static void test_cache_identical(void **state)
{
    struct fixture *fx = *state;
    struct loader *ld[2];
    cn_error e;
    for (int k = 0; k < 2; k++)
        assert_int_equal(loader_create(&ld[k], fx->l, 3, 5, 3, CLASSES, 99, k ? 1 << 20 : 0, &e),
                         0);
    assert_int_equal(loader_cached(ld[1]), 1);
    float x[2][5 * 45], t[2][5 * CLASSES];
    for (int step = 0; step < 12; step++) {
        for (int k = 0; k < 2; k++)
            assert_int_equal(loader_next(ld[k], x[k], t[k], 5, &e), 0);
        assert_memory_equal(x[0], x[1], sizeof x[0]);
        assert_memory_equal(t[0], t[1], sizeof t[0]);
    }
    for (int k = 0; k < 2; k++)
        loader_destroy(ld[k]);
    /* One byte short of the decoded list: no cache. */
    assert_int_equal(loader_create(&ld[0], fx->l, 3, 5, 3, CLASSES, 99, N * 45 - 1, &e), 0);
    assert_int_equal(loader_cached(ld[0]), 0);
    loader_destroy(ld[0]);
    assert_int_equal(loader_create(&ld[0], fx->l, 3, 5, 3, CLASSES, 99, N * 45, &e), 0);
    assert_int_equal(loader_cached(ld[0]), 1);
    loader_destroy(ld[0]);
}

/* A batch larger than the list holds every image two or three times. */
static void test_big_batch(void **state)
{
    struct fixture *fx = *state;
    for (int cached = 0; cached < 2; cached++) {
        struct loader *ld = make(fx->l, 3, cached ? 1 << 20 : 0);
        int ids[30];
        take(ld, ids, 30, 30);
        assert_permutation(ids);
        assert_permutation(ids + N);
        assert_int_equal(loader_epoch(ld), 2);
        loader_destroy(ld);
    }
}

static void test_fill(void **state)
{
    struct fixture *fx = *state;
    struct loader *ld = make(fx->l, 1, 1 << 20);
    float x[N * IPX], truth[N * CLASSES];
    cn_error e;
    assert_int_equal(loader_fill(ld, x, truth, 5, 4, &e), 0);
    for (int b = 0; b < 4; b++)
        assert_int_equal(identify(x, truth, b), 5 + b);
    assert_int_equal(loader_fill(ld, x, truth, 0, N, &e), 0);
    for (int b = 0; b < N; b++)
        assert_int_equal(identify(x, truth, b), b);
    assert_int_equal(loader_seen(ld), 0); /* the shuffled stream is untouched */
    assert_int_equal(loader_fill(ld, x, truth, 10, 4, &e), -1);
    assert_non_null(strstr(e.msg, "images 10..13 requested, but the list has 13"));
    assert_int_equal(loader_fill(ld, x, truth, -1, 2, &e), -1);
    assert_int_equal(loader_fill(ld, x, truth, 0, 0, &e), -1);
    assert_int_equal(loader_fill(ld, x, NULL, 12, 1, &e), 0); /* truth is optional */
    loader_destroy(ld);
}

static void test_create_errors(void **state)
{
    struct fixture *fx = *state;
    struct loader *ld = (struct loader *)1;
    cn_error e;
    assert_int_equal(loader_create(&ld, fx->l, IW, IH, 5, CLASSES, 0, 0, &e), -1);
    assert_null(ld);
    assert_int_equal(loader_create(&ld, fx->l, IW, IH, 1, 2, 0, 0, &e), -1);
    assert_non_null(strstr(e.msg, "images.list:3: label 2 is outside 0..1"));
    assert_int_equal(loader_create(&ld, fx->l, 0, IH, 1, CLASSES, 0, 0, &e), -1);
}

static void put_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Image 7 replaced by text: the batch holding it fails, naming list line 8 and the path. */
static void test_decode_error(void **state)
{
    struct fixture *fx = *state;
    put_text(fx->l->paths[7], "not a png\n");
    char want[512];
    snprintf(want, sizeof want, "%s:8: %s: not an image stb_image can read", fx->list,
             fx->l->paths[7]);
    for (int cached = 0; cached < 2; cached++) {
        struct loader *ld = make(fx->l, 5, cached ? 1 << 20 : 0);
        float x[N * IPX], truth[N * CLASSES];
        cn_error e;
        assert_int_equal(loader_next(ld, x, truth, N, &e), -1);
        if (!strstr(e.msg, want))
            fail_msg("expected '%s' in '%s'", want, e.msg);
        assert_int_equal(loader_fill(ld, x, truth, 0, 7, &e), 0);
        assert_int_equal(loader_fill(ld, x, truth, 6, 2, &e), -1);
        assert_non_null(strstr(e.msg, want));
        loader_destroy(ld);
    }
}

static void test_check_all(void **state)
{
    struct fixture *fx = *state;
    cn_error e;
    assert_int_equal(loader_check_all(fx->l, &e), 0);
    char lines[N + 4][256];
    for (int i = 0; i < N; i++)
        snprintf(lines[i], 256, "%s", fx->l->paths[i]);
    snprintf(lines[N], 256, "%s/gone_cat.png", fx->dir);
    snprintf(lines[N + 1], 256, "%s/text_dog.png", fx->dir);
    put_text(lines[N + 1], "hello\n");
    snprintf(lines[N + 2], 256, "%s/huge_emu.tga", fx->dir);
    const uint8_t tga[18] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 24, 0};
    FILE *f = fopen(lines[N + 2], "wb");
    fwrite(tga, 1, sizeof tga, f);
    fclose(f);
    snprintf(lines[N + 3], 256, "%s/also_gone_cat.png", fx->dir);
    /* Bad ones at lines 3, 14, 15, 16 and 17 of the list. */
    unlink(lines[2]);
    write_list(fx, lines, N + 4);
    assert_int_equal(loader_check_all(fx->l, &e), -1);
    char want[2048];
    snprintf(want, sizeof want,
             "%s: 5 of 17 images cannot be used: %s:3: %s: cannot open: No such file or "
             "directory; %s:14: %s/gone_cat.png: cannot open: No such file or directory; %s:15: "
             "%s/text_dog.png: not an image stb_image can read (unknown image type); and 2 more",
             fx->list, fx->list, lines[2], fx->list, fx->dir, fx->list, fx->dir);
    assert_string_equal(e.msg, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_all, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
