/* test_loader.c - the batch loader over a list of small PNGs written at test time: every image
 * exactly once per epoch, the same order for the same seed, identical batches with and without
 * the cache, sequential validation slices, undecodable images skipped and reported once in the
 * stream but errors in validation, and loader_check_all listing every bad image. The threaded
 * stream: identical batches for 0-3 workers (with augmentation, cached or not), loader_seek equal
 * to an uninterrupted run, batch-size changes, random and balanced sampling, class weights,
 * label smoothing, mixup truth, mean/std in validation; pad_crop, translate and angle samples
 * from the cache equal to aug_geometry on the decoded image, with each image decoded once
 * (loader_decoded) within a budget sized by what a sample reads. `make SANITIZE=thread` runs
 * this suite under ThreadSanitizer. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>
#include <stb_image_write.h>

#include "core/rng.h"
#include "data/augment.h"
#include "data/list.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/views.h"
#include "fixture.h"

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

/* Image 7 replaced by text: the stream skips it (the sample takes image 8), reports it once with
 * list line 8 and the path, and counts it; validation fails naming them. */
static void test_decode_error(void **state)
{
    struct fixture *fx = *state;
    put_text(fx->l->paths[7], "not a png\n");
    char want[512];
    snprintf(want, sizeof want, "%s:8: %s: not an image stb_image can read", fx->list,
             fx->l->paths[7]);
    for (int workers = 0; workers < 3; workers += 2) {
        struct loader_opts o;
        loader_opts_default(&o, IW, IH, 1, CLASSES, 5);
        o.workers = workers;
        o.cache_bytes = workers ? 1 << 20 : 0;
        struct loader *ld;
        cn_error e;
        assert_int_equal(loader_open(&ld, fx->l, &o, &e), 0);
        float x[N * IPX], truth[N * CLASSES];
        int count[N] = {0};
        for (int rep = 0; rep < 3; rep++) {
            assert_int_equal(loader_next(ld, x, truth, N, &e), 0);
            for (int b = 0; b < N; b++)
                count[identify(x, truth, b)]++;
        }
        assert_int_equal(count[7], 0);
        assert_int_equal(count[8], 6); /* itself and image 7's place, in each of 3 epochs */
        assert_int_equal(loader_skipped(ld), 1);
        assert_int_equal(loader_warning(ld, &e), 1);
        if (!strstr(e.msg, want) || !strstr(e.msg, "(skipped)"))
            fail_msg("expected '%s ... (skipped)' in '%s'", want, e.msg);
        assert_int_equal(loader_warning(ld, &e), 0); /* reported once */
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


/* ---- the threaded stream ---- */

#define RW 10
#define RH 8

/* Replaces the fixture's list by n RGB images of RW x RH (rgbNN_<label>.png) with varied
 * content, labels i % CLASSES. */
static void use_rgb_set(struct fixture *fx, int n)
{
    char lines[32][256];
    assert_true(n <= 32);
    for (int i = 0; i < n; i++) {
        uint8_t px[RW * RH * 3];
        for (int j = 0; j < RW * RH * 3; j++)
            px[j] = (uint8_t)((i * 37 + j * 11 + (j % 3) * 60) & 0xff);
        snprintf(lines[i], 256, "%s/rgb%02d_%s.png", fx->dir, i, animals[i % CLASSES]);
        assert_true(stbi_write_png(lines[i], RW, RH, 3, px, RW * 3));
    }
    write_list(fx, lines, n);
}

/* Every augmentation on at once, for 8x8 RGB input. */
static void all_augment(struct loader_opts *o)
{
    struct aug_config *a = &o->aug;
    a->crop = 1;
    a->min_crop = 6;
    a->max_crop = 12;
    a->aspect = 1.5f;
    a->angle = 10;
    a->translate = .1f;
    a->flip = 1;
    a->hue = .1f;
    a->saturation = a->exposure = 1.5f;
    a->shift[0] = a->shift[1] = a->shift[2] = 20;
    a->mixup = a->cutmix = 1;
    a->label_smooth = .1f;
    a->nmean = 3;
    for (int k = 0; k < 3; k++) {
        a->mean[k] = .5f;
        a->std[k] = .25f;
    }
}

static struct loader *open_opts(const struct image_list *l, const struct loader_opts *o)
{
    struct loader *ld;
    cn_error e;
    if (loader_open(&ld, l, o, &e))
        fail_msg("%s", e.msg);
    return ld;
}

#define SW 8
#define SSZ (SW * SW * 3)
#define STEPS 6
#define SB 5

/* STEPS batches of SB from a fresh loader with the given workers and cache. */
static void stream(const struct image_list *l, struct loader_opts *o, int workers, size_t cache,
                   float *x, float *t)
{
    o->workers = workers;
    o->cache_bytes = cache;
    struct loader *ld = open_opts(l, o);
    cn_error e;
    for (int s = 0; s < STEPS; s++)
        assert_int_equal(loader_next(ld, x + s * SB * SSZ, t + s * SB * CLASSES, SB, &e), 0);
    assert_int_equal(loader_seen(ld), STEPS * SB);
    loader_destroy(ld);
}

/* Same seed: the same batches with 0, 1, 2 and 3 workers, with and without the cache, with
 * every augmentation on; another seed differs. */
static void test_workers_identical(void **state)
{
    struct fixture *fx = *state;
    use_rgb_set(fx, 11);
    static float x[5][STEPS * SB * SSZ], t[5][STEPS * SB * CLASSES];
    struct loader_opts o;
    loader_opts_default(&o, SW, SW, 3, CLASSES, 123);
    all_augment(&o);
    for (int w = 0; w < 4; w++)
        stream(fx->l, &o, w, w == 2 ? 1 << 20 : 0, x[w], t[w]);
    for (int w = 1; w < 4; w++) {
        assert_memory_equal(x[0], x[w], sizeof x[0]);
        assert_memory_equal(t[0], t[w], sizeof t[0]);
    }
    o.seed = 124;
    stream(fx->l, &o, 2, 0, x[4], t[4]);
    assert_true(memcmp(x[0], x[4], sizeof x[0]));
    /* The augmentation does something: values leave [0, 1] only through mean/std, and the
     * truth rows are soft (label smoothing 0.1 over 3 classes: no row is one-hot). */
    for (int i = 0; i < STEPS * SB; i++) {
        float sum = 0;
        for (int k = 0; k < CLASSES; k++) {
            float v = t[0][i * CLASSES + k];
            assert_true(v >= .1f / 3 - 1e-6f && v <= .9f + .1f / 3 + 1e-6f);
            sum += v;
        }
        assert_float_equal(sum, 1.0f, 1e-5f);
    }
}

/* loader_seek(k) then batches == the batches of an uninterrupted run after k images, whatever
 * the batch size of either and the workers. */
static void test_seek(void **state)
{
    struct fixture *fx = *state;
    use_rgb_set(fx, 11);
    struct loader_opts o;
    loader_opts_default(&o, SW, SW, 3, CLASSES, 9);
    all_augment(&o);
    static float full[STEPS * SB * SSZ], ft[STEPS * SB * CLASSES];
    stream(fx->l, &o, 1, 0, full, ft);
    static float x[3 * SB * SSZ], t[3 * SB * CLASSES];
    cn_error e;
    for (int w = 0; w < 3; w++) {
        o.workers = w;
        struct loader *ld = open_opts(fx->l, &o);
        assert_int_equal(loader_next(ld, x, t, 2, &e), 0); /* some other point first */
        for (int k = 0; k < 2; k++) {
            uint64_t at = k ? 17 : 10; /* 17: not a multiple of the batch */
            assert_int_equal(loader_seek(ld, at, &e), 0);
            assert_int_equal(loader_seen(ld), at);
            assert_int_equal(loader_next(ld, x, t, 3 * SB - 2, &e), 0);
            assert_memory_equal(x, full + at * SSZ, sizeof(float) * (3 * SB - 2) * SSZ);
            assert_memory_equal(t, ft + at * CLASSES, sizeof(float) * (3 * SB - 2) * CLASSES);
        }
        /* a batch-size change continues the same stream */
        assert_int_equal(loader_seek(ld, 4, &e), 0);
        assert_int_equal(loader_next(ld, x, t, 3, &e), 0);
        assert_int_equal(loader_next(ld, x + 3 * SSZ, t + 3 * CLASSES, 7, &e), 0);
        assert_memory_equal(x, full + 4 * SSZ, sizeof(float) * 10 * SSZ);
        loader_destroy(ld);
    }
}

/* sampling=random repeats images within an epoch's worth of samples; balanced gives each class
 * about the same share from a list with one dog among many cats. */
static void test_sampling(void **state)
{
    struct fixture *fx = *state;
    struct loader_opts o;
    loader_opts_default(&o, IW, IH, 1, CLASSES, 77);
    o.sampling = SAMPLING_RANDOM;
    o.workers = 2;
    struct loader *ld = open_opts(fx->l, &o);
    int ids[N];
    take(ld, ids, N, N);
    int seen[N] = {0}, repeats = 0;
    for (int i = 0; i < N; i++)
        repeats += seen[ids[i]]++ > 0;
    assert_true(repeats > 0);
    loader_destroy(ld);

    char lines[N][256];
    for (int i = 0, k = 0; i < N; i++) /* images 0 (cat) and 1 (dog) and 2 (emu), cats after */
        if (i < 3 || i % CLASSES == 0)
            snprintf(lines[k++], 256, "%s", fx->l->paths[i]);
    int n = 3 + (N - 1) / CLASSES; /* 3 + cats 3, 6, 9, 12 = 7 */
    write_list(fx, lines, n);
    o.sampling = SAMPLING_BALANCED;
    ld = open_opts(fx->l, &o);
    enum { DRAWS = 600 };
    int per[CLASSES] = {0};
    float x[60 * IPX], t[60 * CLASSES];
    cn_error e;
    for (int got = 0; got < DRAWS; got += 60) {
        assert_int_equal(loader_next(ld, x, t, 60, &e), 0);
        for (int b = 0; b < 60; b++)
            for (int k = 0; k < CLASSES; k++)
                per[k] += t[b * CLASSES + k] == 1.0f;
    }
    for (int k = 0; k < CLASSES; k++) /* 200 expected each; 5 sigma is about 58 */
        assert_true(per[k] > 140 && per[k] < 260);
    loader_destroy(ld);
}

/* Class weights scale the truth row, in the stream and in validation; label smoothing. */
static void test_truth(void **state)
{
    struct fixture *fx = *state;
    struct loader_opts o;
    loader_opts_default(&o, IW, IH, 1, CLASSES, 3);
    const float w[CLASSES] = {1, 2.5f, .5f};
    o.class_weights = w;
    struct loader *ld = open_opts(fx->l, &o);
    float x[N * IPX], t[N * CLASSES];
    cn_error e;
    assert_int_equal(loader_fill(ld, x, t, 0, N, &e), 0);
    for (int b = 0; b < N; b++)
        for (int k = 0; k < CLASSES; k++)
            assert_true(t[b * CLASSES + k] == (k == b % CLASSES ? w[k] : 0.0f));
    loader_destroy(ld);
    o.class_weights = NULL;
    o.aug.label_smooth = .3f;
    ld = open_opts(fx->l, &o);
    assert_int_equal(loader_next(ld, x, t, N, &e), 0);
    for (int b = 0; b < N; b++) {
        int hot = -1;
        for (int k = 0; k < CLASSES; k++)
            if (t[b * CLASSES + k] > .5f)
                hot = k;
        assert_true(hot >= 0);
        for (int k = 0; k < CLASSES; k++)
            assert_float_equal(t[b * CLASSES + k], k == hot ? .7f + .1f : .1f, 1e-6f);
    }
    loader_destroy(ld);
}

/* mixup alone: each truth row is l on one class and 1-l on another (or 1 on one class when the
 * partner has the same class), and the image is the same blend of two list images. */
static void test_mixup_truth(void **state)
{
    struct fixture *fx = *state;
    struct loader_opts o;
    loader_opts_default(&o, IW, IH, 1, CLASSES, 5);
    o.aug.mixup = 1;
    o.aug.mix_alpha = .4f;
    struct loader *ld = open_opts(fx->l, &o);
    float x[20 * IPX], t[20 * CLASSES];
    cn_error e;
    assert_int_equal(loader_next(ld, x, t, 20, &e), 0);
    int mixed = 0;
    for (int b = 0; b < 20; b++) {
        float sum = 0;
        int nz = 0;
        for (int k = 0; k < CLASSES; k++) {
            sum += t[b * CLASSES + k];
            nz += t[b * CLASSES + k] > 0;
        }
        assert_float_equal(sum, 1.0f, 1e-6f);
        assert_true(nz == 1 || nz == 2);
        mixed += nz == 2;
    }
    assert_true(mixed > 5);
    loader_destroy(ld);
}

/* mean/std normalisation applies in validation too: (v - mean) / std per channel. */
static void test_fill_normalised(void **state)
{
    struct fixture *fx = *state;
    use_rgb_set(fx, 4);
    struct loader_opts o;
    loader_opts_default(&o, RW, RH, 3, CLASSES, 1);
    struct loader *plain = open_opts(fx->l, &o);
    o.aug.nmean = 3;
    const float mean[3] = {.485f, .456f, .406f}, sd[3] = {.229f, .224f, .225f};
    memcpy(o.aug.mean, mean, sizeof mean);
    memcpy(o.aug.std, sd, sizeof sd);
    struct loader *norm = open_opts(fx->l, &o);
    static float a[4 * RW * RH * 3], b[4 * RW * RH * 3];
    cn_error e;
    assert_int_equal(loader_fill(plain, a, NULL, 0, 4, &e), 0);
    assert_int_equal(loader_fill(norm, b, NULL, 0, 4, &e), 0);
    for (int i = 0; i < 4 * RW * RH * 3; i++) {
        int k = (i / (RW * RH)) % 3;
        assert_float_equal(b[i], (a[i] - mean[k]) / sd[k], 1e-5f);
    }
    loader_destroy(plain);
    loader_destroy(norm);
}

/* A fresh loader's reports are empty; destroy with prefetch in flight is clean (TSan). */
static void test_prefetch_destroy(void **state)
{
    struct fixture *fx = *state;
    struct loader_opts o;
    loader_opts_default(&o, IW, IH, 1, CLASSES, 2);
    o.workers = 3;
    o.batch = 4;
    struct loader *ld = open_opts(fx->l, &o);
    cn_error e;
    assert_int_equal(loader_warning(ld, &e), 0);
    assert_int_equal(loader_skipped(ld), 0);
    loader_destroy(ld);
}

/* 4x3 images into a 3x3 net: the training stream without geometric augmentation, validation
 * (loader_fill) and `classifier valid`'s default view (views_load, one crop at scale 1) give the
 * same pixels, bit for bit: resized keeping the aspect to cover 3x3 (4x3 stays 4x3), centre
 * column window; not a stretch of the whole image to 3x3. Cached or not, 0 or 2 workers. */
static void test_view_matches_valid(void **state)
{
    struct fixture *fx = *state;
    enum { S = 3 };
    struct view_spec one = {.crops = 1, .nscales = 1, .scale = {1.0f}};
    for (int workers = 0; workers < 3; workers += 2) {
        struct loader_opts o;
        loader_opts_default(&o, S, S, 1, CLASSES, 9);
        o.workers = workers;
        o.cache_bytes = workers ? 1 << 20 : 0;
        struct loader *ld;
        cn_error e;
        assert_int_equal(loader_open(&ld, fx->l, &o, &e), 0);
        float fill[N * S * S], stream[N * S * S], view[S * S], stretch[S * S];
        assert_int_equal(loader_fill(ld, fill, NULL, 0, N, &e), 0);
        assert_int_equal(loader_next(ld, stream, NULL, N, &e), 0); /* one epoch, shuffled */
        int stretched_differs = 0;
        for (int i = 0; i < N; i++) {
            assert_int_equal(views_load(view, fx->l->paths[i], S, S, 1, &one, &e), 0);
            assert_memory_equal(fill + i * S * S, view, sizeof view);
            for (int y = 0; y < S; y++) /* the centre window starts at column (4 - 3) / 2 = 0 */
                for (int x = 0; x < S; x++)
                    assert_true(view[y * S + x] == pixel(i, y * IW + x) / 255.0f);
            int found = 0;
            for (int b = 0; b < N; b++)
                found += !memcmp(stream + b * S * S, view, sizeof view);
            assert_int_equal(found, 1);
            assert_int_equal(image_load(stretch, fx->l->paths[i], S, S, 1, &e), 0);
            stretched_differs += memcmp(stretch, view, sizeof view) != 0;
        }
        assert_int_equal(stretched_differs, N);
        loader_destroy(ld);
    }
}

/* ---- the worker policy: plain batches inline, workers deprioritised ---- */

#define PB 5     /* batch of the policy tests */
#define PSTEPS 9 /* 45 samples: three and a half epochs of N = 13 */

/* PSTEPS batches of PB from a fresh loader with o's workers, cache and policy, after one
 * loader_seek round trip in the middle of the third epoch and a batch-size change (the stream
 * must not notice either). *went_inline gets loader_inline at the end. */
static void plain_stream(const struct image_list *l, const struct loader_opts *o, float *x,
                         float *t, int *went_inline)
{
    struct loader *ld = open_opts(l, o);
    cn_error e;
    for (int s = 0; s < PSTEPS; s++) {
        if (s == 6) { /* a detour, then back: seek and batch sizes must not show */
            assert_int_equal(loader_next(ld, x + s * PB * IPX, t + s * PB * CLASSES, 3, &e), 0);
            assert_int_equal(loader_seek(ld, (uint64_t)s * PB, &e), 0);
            assert_int_equal(loader_next(ld, x + s * PB * IPX, t + s * PB * CLASSES, 2, &e), 0);
            assert_int_equal(
                loader_next(ld, x + (s * PB + 2) * IPX, t + (s * PB + 2) * CLASSES, 3, &e), 0);
            continue;
        }
        assert_int_equal(loader_next(ld, x + s * PB * IPX, t + s * PB * CLASSES, PB, &e), 0);
    }
    assert_int_equal(loader_seen(ld), PSTEPS * PB);
    *went_inline = loader_inline(ld);
    loader_destroy(ld);
}

/* Options of a plain stream: no random step, but class weights, label smoothing and mean/std
 * (not random: they stay in plain batches). */
static void plain_opts(struct loader_opts *o, uint64_t seed)
{
    static const float w[CLASSES] = {1, 2, .5f};
    loader_opts_default(o, IW, IH, 1, CLASSES, seed);
    o->class_weights = w;
    o->aug.label_smooth = .2f;
    o->aug.nmean = 1;
    o->aug.mean[0] = .25f;
    o->aug.std[0] = .5f;
}

/* The policy's grid on list l: every (workers 0..3) x (plain_inline 0, 1) x (cache off, on)
 * gives the batches of workers 0 without cache, bit for bit; loader_inline at the end is 1
 * exactly when the policy applies: workers 0, or plain_inline with the images at hand (always
 * for an IDX set, once cached for files). */
static void policy_grid(const struct image_list *l, struct loader_opts *o, int random_aug)
{
    static float ref[PSTEPS * PB * IPX], rt[PSTEPS * PB * CLASSES];
    static float x[PSTEPS * PB * IPX], t[PSTEPS * PB * CLASSES];
    int in;
    o->workers = 0;
    o->cache_bytes = 0;
    plain_stream(l, o, ref, rt, &in);
    assert_int_equal(in, 1);
    for (int w = 0; w < 4; w++)
        for (int pi = 0; pi < 2; pi++)
            for (int cache = 0; cache < 2; cache++) {
                o->workers = w;
                o->plain_inline = pi;
                o->cache_bytes = cache ? 1 << 20 : 0;
                plain_stream(l, o, x, t, &in);
                assert_memory_equal(ref, x, sizeof x);
                assert_memory_equal(rt, t, sizeof t);
                int at_hand = l->pixels || cache;
                assert_int_equal(in, !w || (pi && at_hand && !random_aug));
            }
}

/* PNG files: plain batches made inline once the cache holds the set equal the workers'. */
static void test_policy_files(void **state)
{
    struct fixture *fx = *state;
    struct loader_opts o;
    plain_opts(&o, 31);
    policy_grid(fx->l, &o, 0);
    o.aug.flip = 1; /* random: the workers keep making the batches */
    policy_grid(fx->l, &o, 1);
}

/* The same set as an IDX file (in memory, no decoding): inline from the first batch. */
static void test_policy_idx(void **state)
{
    struct fixture *fx = *state;
    uint8_t px[N * IPX], lab[N];
    for (int i = 0; i < N; i++) {
        lab[i] = (uint8_t)(i % CLASSES);
        for (int j = 0; j < IPX; j++)
            px[i * IPX + j] = pixel(i, j);
    }
    char im[128], lb[128];
    snprintf(im, sizeof im, "%s/set-images-idx3-ubyte", fx->dir);
    snprintf(lb, sizeof lb, "%s/set-labels-idx1-ubyte", fx->dir);
    const uint32_t di[3] = {N, IH, IW}, dl[1] = {N};
    fx_write_idx(im, 0x803, di, 3, px, sizeof px);
    fx_write_idx(lb, 0x801, dl, 1, lab, sizeof lab);
    struct image_list *l;
    cn_error e;
    if (image_list_load(&l, im, animals, CLASSES, &e))
        fail_msg("%s", e.msg);
    struct loader_opts o;
    loader_opts_default(&o, IW, IH, 1, CLASSES, 4);
    o.workers = 2;
    struct loader *ld = open_opts(l, &o);
    int ids[3 * N]; /* the pixels and labels of the file, each image once per epoch */
    take(ld, ids, 3 * N, PB);
    assert_int_equal(loader_inline(ld), 1);
    for (int k = 0; k < 3; k++)
        assert_permutation(ids + k * N);
    loader_destroy(ld);
    plain_opts(&o, 31);
    policy_grid(l, &o, 0);
    o.aug.flip = 1;
    policy_grid(l, &o, 1);
    image_list_destroy(l);
    unlink(im);
    unlink(lb);
}

/* A set with an undecodable image goes inline too once the rest is cached (a bad image is
 * never cached), with the same batches and the report made once. */
static void test_policy_skipped(void **state)
{
    struct fixture *fx = *state;
    put_text(fx->l->paths[4], "not a png\n");
    struct loader_opts o;
    plain_opts(&o, 8);
    policy_grid(fx->l, &o, 0);
    o.workers = 2;
    o.cache_bytes = 1 << 20;
    struct loader *ld = open_opts(fx->l, &o);
    float x[4 * N * IPX], t[4 * N * CLASSES];
    cn_error e;
    for (int k = 0; k < 4; k++)
        assert_int_equal(loader_next(ld, x + k * N * IPX, t + k * N * CLASSES, N, &e), 0);
    assert_int_equal(loader_inline(ld), 1);
    assert_int_equal(loader_skipped(ld), 1);
    assert_int_equal(loader_warning(ld, &e), 1);
    assert_non_null(strstr(e.msg, "(skipped)"));
    assert_int_equal(loader_warning(ld, &e), 0);
    loader_destroy(ld);
}

/* Threads of this process whose /proc/self/task/<tid>/stat field `want` (Linux; 19: nice, 41:
 * scheduling policy) is `value`; -1 without /proc. */
static int threads_where(int want, int value)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *ent;
    int count = 0;
    while ((ent = readdir(d))) {
        char path[300], buf[1024];
        if (ent->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", ent->d_name);
        FILE *f = fopen(path, "r");
        size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[got] = 0;
        const char *p = strrchr(buf, ')'); /* the name may hold blanks: fields after it */
        int field = 2, v = 0;
        for (; p && *p && field < want; p++)
            field += *p == ' ';
        if (p && field == want && sscanf(p, "%d", &v) == 1 && v == value)
            count++;
    }
    closedir(d);
    return count;
}

static int threads_at_nice(int nice)
{
    return threads_where(19, nice);
}

/* Takes batches of 4 from ld into x, t, 5 ms apart, until `want` threads show stat field `field`
 * at `value` (workers change their own policy, on their next claims), at most 1000 times (5 s:
 * busy CI); returns the last count. */
static int next_until_threads(struct loader *ld, float *x, float *t, int field, int value, int want)
{
    cn_error e;
    int now = threads_where(field, value);
    for (int tries = 0; tries < 1000 && now < want; tries++) {
        usleep(5000);
        assert_int_equal(loader_next(ld, x, t, 4, &e), 0);
        now = threads_where(field, value);
    }
    return now;
}

/* Each worker lowers its own priority by worker_nice (the consumer keeps its own); 20 is an
 * error. */
static void test_worker_nice(void **state)
{
    struct fixture *fx = *state;
    struct loader_opts o;
    loader_opts_default(&o, IW, IH, 1, CLASSES, 2);
    assert_int_equal(o.worker_nice, LOADER_WORKER_NICE);
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    if (errno || base + 7 > 19 || threads_at_nice(base) < 0) {
        printf("skipped: no /proc/self/task or nice %d too high to add 7\n", base);
        return;
    }
    int before = threads_at_nice(base + 7);
    o.workers = 3;
    o.worker_nice = 7;
    o.aug.flip = 1;
    struct loader *ld = open_opts(fx->l, &o);
    float x[4 * IPX], t[4 * CLASSES];
    cn_error e;
    assert_int_equal(loader_next(ld, x, t, 4, &e), 0); /* the workers have started */
    assert_int_equal(next_until_threads(ld, x, t, 19, base + 7, before + 3), before + 3);
    assert_int_equal(getpriority(PRIO_PROCESS, 0), base); /* the caller's thread: unchanged */
    loader_destroy(ld);
    o.worker_nice = 20;
    struct loader *bad = (struct loader *)1;
    assert_int_equal(loader_open(&bad, fx->l, &o, &e), -1);
    assert_null(bad);
    assert_non_null(strstr(e.msg, "worker_nice 20 is outside 0..19"));
}

/* worker_idle: each worker, and only the workers, switches itself to SCHED_IDLE (policy 5). */
static void test_worker_idle(void **state)
{
    struct fixture *fx = *state;
    enum { POLICY_IDLE = 5 }; /* Linux's SCHED_IDLE, as /proc shows it */
    int before = threads_where(41, POLICY_IDLE);
    if (before < 0) {
        printf("skipped: no /proc/self/task\n");
        return;
    }
    struct loader_opts o;
    loader_opts_default(&o, IW, IH, 1, CLASSES, 2);
    assert_int_equal(o.worker_idle, LOADER_WORKER_IDLE);
    o.workers = 2;
    o.worker_idle = 1;
    o.aug.flip = 1;
    struct loader *ld = open_opts(fx->l, &o);
    float x[4 * IPX], t[4 * CLASSES];
    cn_error e;
    assert_int_equal(loader_next(ld, x, t, 4, &e), 0);
    assert_int_equal(next_until_threads(ld, x, t, 41, POLICY_IDLE, before + 2), before + 2);
    loader_destroy(ld);
    assert_int_equal(threads_where(41, POLICY_IDLE), before); /* gone with the loader */
}

/* worker_idle 2 (adaptive): the workers run under SCHED_IDLE once the ring is full and the
 * consumer stops waiting (it returns them to the normal policy when it waits); the batches are
 * those of worker_idle 0, bit for bit; 3 is an error. Without the right to leave SCHED_IDLE
 * the workers keep nice only (skipped then). */
static void test_worker_idle_adaptive(void **state)
{
    struct fixture *fx = *state;
    enum { POLICY_IDLE = 5, NB = 6 };
    int before = threads_where(41, POLICY_IDLE);
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    struct rlimit rl;
    if (before < 0 || errno || getrlimit(RLIMIT_NICE, &rl) ||
        (geteuid() != 0 && rl.rlim_cur != RLIM_INFINITY &&
         (rlim_t)(20 - CN_MIN(base + LOADER_WORKER_NICE, 19) + 1) > rl.rlim_cur)) {
        printf("skipped: no /proc/self/task or no right to leave SCHED_IDLE\n");
        return;
    }
    struct loader_opts o;
    loader_opts_default(&o, IW, IH, 1, CLASSES, 2);
    o.workers = 2;
    o.worker_idle = 0;
    o.aug.flip = 1;
    o.aug.exposure = 1.5f;
    float want[NB][4 * IPX], got[4 * IPX], t[4 * CLASSES];
    cn_error e;
    struct loader *ref = open_opts(fx->l, &o);
    for (int k = 0; k < NB; k++)
        assert_int_equal(loader_next(ref, want[k], t, 4, &e), 0);
    loader_destroy(ref);
    o.worker_idle = 2;
    struct loader *ld = open_opts(fx->l, &o);
    for (int k = 0; k < NB; k++) {
        assert_int_equal(loader_next(ld, got, t, 4, &e), 0);
        assert_memory_equal(got, want[k], sizeof got);
    }
    /* the ring fills while it waits: the next claims are made idle */
    assert_int_equal(next_until_threads(ld, got, t, 41, POLICY_IDLE, before + 2), before + 2);
    loader_destroy(ld);
    assert_int_equal(threads_where(41, POLICY_IDLE), before);
    o.worker_idle = 3;
    struct loader *bad = (struct loader *)1;
    assert_int_equal(loader_open(&bad, fx->l, &o, &e), -1);
    assert_null(bad);
    assert_non_null(strstr(e.msg, "worker_idle 3 is outside 0..2"));
}

/* Geometry without crop from the cache: a one-image list, so stream sample g is image 0 with
 * the draws of cn_rng_seed_stream(seed, g). Every sample equals aug_geometry on the decoded
 * image, bit for bit, with the cache (one decode in all without workers: loader_decoded) and
 * without (one decode per sample), with 0 and 2 workers. The 2 x 2 input is smaller than the 4 x 3
 * image, so the default view resizes and the warp shrinks its source first (aug_warp_source). */
#define GW 2
#define GS 8 /* samples */
static void geometry_case(const struct image_list *l, const struct aug_config *a)
{
    cn_error e;
    uint8_t *src;
    int iw, ih;
    if (image_decode(&src, &iw, &ih, l->paths[0], 1, &e))
        fail_msg("%s", e.msg);
    float want[GS][GW * GW], got[GS][GW * GW], t[GS * CLASSES];
    for (int g = 0; g < GS; g++) {
        cn_rng r;
        cn_rng_seed_stream(&r, 5, (uint64_t)g);
        uint8_t *scratch = NULL;
        size_t cap = 0;
        assert_int_equal(aug_geometry(want[g], GW, GW, src, iw, ih, 1, a, &r, &scratch, &cap), 0);
        free(scratch);
    }
    free(src);
    for (int run = 0; run < 4; run++) {
        struct loader_opts o;
        loader_opts_default(&o, GW, GW, 1, CLASSES, 5);
        o.aug = *a;
        o.workers = run & 1 ? 2 : 0;
        o.cache_bytes = run & 2 ? 1 << 20 : 0;
        struct loader *ld = open_opts(l, &o);
        for (int b = 0; b < GS; b += 4)
            assert_int_equal(loader_next(ld, got[b], t + b * CLASSES, 4, &e), 0);
        assert_memory_equal(want, got, sizeof want);
        /* cached, in the caller: one decode; uncached: one per sample at least (workers may
         * have made more ahead). Cached workers are not counted exactly: a thread finding the
         * entry being filled by another decodes for itself. */
        uint64_t decoded = loader_decoded(ld);
        if (o.cache_bytes && !o.workers)
            assert_int_equal(decoded, 1);
        else if (!o.cache_bytes)
            assert_true(decoded >= GS);
        loader_destroy(ld);
    }
}

static void test_geometry_from_cache(void **state)
{
    struct fixture *fx = *state;
    char line[1][256];
    snprintf(line[0], sizeof line[0], "%s", fx->l->paths[0]);
    write_list(fx, line, 1);
    struct aug_config a;
    aug_config_default(&a);
    a.pad_crop = 1;
    geometry_case(fx->l, &a);
    a.pad_crop = 0;
    a.translate = .3f;
    geometry_case(fx->l, &a);
    a.angle = 10;
    geometry_case(fx->l, &a);
    a.angle = 0;
    a.pad_crop = 1;
    geometry_case(fx->l, &a);
}

/* The cache is sized by what a sample reads: pad_crop keeps the 2 x 2 default view of each 4 x 3
 * image (4 bytes), translate its 3 x 2 warp source (6 bytes). With a budget of exactly that for
 * the 13 images (less than their 12 decoded bytes each), three epochs decode each image once;
 * caching decoded images, or bypassing the cache, would decode more. */
static void test_cache_budget(void **state)
{
    struct fixture *fx = *state;
    for (int k = 0; k < 2; k++) {
        struct loader_opts o;
        loader_opts_default(&o, GW, GW, 1, CLASSES, 9);
        o.aug.pad_crop = k == 0;
        o.aug.translate = k == 1 ? .2f : 0.f;
        o.cache_bytes = (size_t)N * (k == 0 ? GW * GW : 3 * 2);
        o.workers = 2;
        struct loader *ld = open_opts(fx->l, &o);
        assert_int_equal(loader_cached(ld), 1);
        float x[N * GW * GW], t[N * CLASSES];
        cn_error e;
        for (int ep = 0; ep < 3; ep++)
            assert_int_equal(loader_next(ld, x, t, N, &e), 0);
        loader_destroy(ld);
        o.workers = 0; /* inline: nothing is made ahead, so the count is exact */
        ld = open_opts(fx->l, &o);
        for (int ep = 0; ep < 3; ep++)
            assert_int_equal(loader_next(ld, x, t, N, &e), 0);
        assert_int_equal(loader_decoded(ld), N);
        o.cache_bytes--; /* one byte short: pad_crop's all-or-nothing slab is off; translate
                            keeps all but one image */
        struct loader *ld2 = open_opts(fx->l, &o);
        for (int ep = 0; ep < 3; ep++)
            assert_int_equal(loader_next(ld2, x, t, N, &e), 0);
        assert_int_equal(loader_decoded(ld2), k == 0 ? 3 * N : N + 2);
        loader_destroy(ld2);
        loader_destroy(ld);
    }
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
        cmocka_unit_test_setup_teardown(test_workers_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sampling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixup_truth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fill_normalised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefetch_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_matches_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_idx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_nice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_idle_adaptive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_geometry_from_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
