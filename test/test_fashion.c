/* test_fashion.c - gzip and IDX reading and fashion_prepare, on small synthetic files built here
 * (gzip members with stored deflate blocks, written by hand), plus the committed data/fashion.*
 * files. The real 70,000-image preparation is too slow for a unit test; the real t10k label file
 * (a compressed stream) is read when Debian's dataset-fashion-mnist is installed. */
#include <dirent.h>
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

#include "data/datafile.h"
#include "data/fashion.h"
#include "data/idx.h"
#include "data/image.h"
#include "data/list.h"

#include "fixture.h"

#define SIDE FASHION_SIDE
#define PX (SIDE * SIDE)

static int setup(void **state)
{
    return fx_scratch_create(state, "fashion");
}

/* Bitwise CRC-32, independent of the table version under test. */
static uint32_t crc32_slow(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put_le(uint8_t *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A gzip member of data in stored deflate blocks; flags picks the optional header fields
 * (4 FEXTRA, 8 FNAME, 16 FCOMMENT, 2 FHCRC). Returns a malloc'd buffer, its length in *len. */
static uint8_t *gzip_stored(const uint8_t *data, size_t n, int flags, size_t *len)
{
    uint8_t *g = malloc(64 + n + 5 * (n / 65535 + 1) + 8);
    size_t at = 10;
    memcpy(g, "\x1f\x8b\x08", 3);
    g[3] = (uint8_t)flags;
    memset(g + 4, 0, 6);
    g[9] = 3; /* OS: Unix */
    if (flags & 4) {
        put_le(g + at, 4, 2);
        memcpy(g + at + 2, "ab\0\0", 4);
        at += 6;
    }
    if (flags & 8)
        at += (size_t)sprintf((char *)g + at, "x-idx-ubyte") + 1;
    if (flags & 16)
        at += (size_t)sprintf((char *)g + at, "a comment") + 1;
    if (flags & 2) {
        put_le(g + at, crc32_slow(g, at) & 0xffff, 2);
        at += 2;
    }
    size_t done = 0;
    do {
        size_t part = n - done < 65535 ? n - done : 65535;
        g[at] = done + part == n; /* BFINAL, BTYPE 00 */
        put_le(g + at + 1, (uint32_t)part, 2);
        put_le(g + at + 3, (uint32_t)part ^ 0xffff, 2);
        memcpy(g + at + 5, data + done, part);
        at += 5 + part;
        done += part;
    } while (done < n);
    put_le(g + at, crc32_slow(data, n), 4);
    put_le(g + at + 4, (uint32_t)n, 4);
    *len = at + 8;
    return g;
}

static void put_gz(const char *path, const uint8_t *data, size_t n, int flags)
{
    size_t len;
    uint8_t *g = gzip_stored(data, n, flags, &len);
    fx_write_file(path, g, len);
    free(g);
}

/* Pixel j of image i of a set (offset tells the sets apart). */
static uint8_t pixel(int offset, int i, int j)
{
    return (uint8_t)(offset + 31 * i + 7 * j);
}

/* Writes dir/<prefix>-images-idx3-ubyte.gz and the labels file for the given labels. */
static void write_set(const char *dir, const char *prefix, const uint8_t *labels, int n, int offset)
{
    uint8_t *px = malloc((size_t)n * PX);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < PX; j++)
            px[i * PX + j] = pixel(offset, i, j);
    char path[512];
    size_t len;
    uint32_t dims[3] = {(uint32_t)n, SIDE, SIDE};
    uint8_t *b = fx_idx_bytes(0x803, dims, 3, px, (size_t)n * PX, &len);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    put_gz(path, b, len, 8);
    free(b);
    b = fx_idx_bytes(0x801, dims, 1, labels, (size_t)n, &len);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    put_gz(path, b, len, 0);
    free(b);
    free(px);
}

static const uint8_t train_labels[7] = {3, 0, 9, 1, 2, 5, 8};
static const uint8_t test_labels[3] = {9, 6, 7};

/* Writes the synthetic dataset into dir/src. */
static void write_source(const char *dir, char *src)
{
    snprintf(src, 256, "%s/src", dir);
    assert_int_equal(mkdir(src, 0777), 0);
    write_set(src, "train", train_labels, 7, 0);
    write_set(src, "t10k", test_labels, 3, 100);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_crc32(void **state)
{
    (void)state;
    const uint8_t *s = (const uint8_t *)"123456789";
    assert_int_equal(gz_crc32(0, s, 9), 0xCBF43926u);
    assert_int_equal(gz_crc32(gz_crc32(0, s, 4), s + 4, 5), 0xCBF43926u);
    assert_int_equal(gz_crc32(0, s, 0), 0);
}

static void gz_fails(const char *path, const char *want)
{
    uint8_t *out = (uint8_t *)1;
    size_t len;
    cn_error e = {{0}};
    assert_int_equal(gz_read_file(path, 1 << 20, &out, &len, &e), -1);
    assert_null(out);
    if (!strstr(e.msg, path) || !strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
}

static void test_gzip(void **state)
{
    struct fx_scratch *fx = *state;
    enum { BIG = 150000 }; /* three stored blocks */
    uint8_t *data = malloc(BIG);
    for (int i = 0; i < BIG; i++)
        data[i] = (uint8_t)(i * 13 + i / 1000);
    char path[256];
    snprintf(path, sizeof path, "%s/x.gz", fx->dir);
    const int flag_sets[] = {0, 8, 4 | 8 | 16 | 2, 2};
    for (int k = 0; k < 4; k++) {
        put_gz(path, data, BIG, flag_sets[k]);
        uint8_t *out;
        size_t len;
        cn_error e;
        if (gz_read_file(path, 1 << 20, &out, &len, &e))
            fail_msg("flags %d: %s", flag_sets[k], e.msg);
        assert_int_equal(len, BIG);
        assert_memory_equal(out, data, BIG);
        free(out);
    }
    size_t n;
    uint8_t *g = gzip_stored(data, BIG, 8, &n);
    fx_write_file(path, g, n / 2);
    gz_fails(path, "truncated or corrupt gzip file");
    fx_write_file(path, g, 15);
    gz_fails(path, "truncated gzip");
    g[100] ^= 1;
    fx_write_file(path, g, n);
    gz_fails(path, "CRC-32 mismatch");
    g[100] ^= 1;
    put_le(g + n - 4, BIG - 1, 4);
    fx_write_file(path, g, n);
    gz_fails(path, "cannot inflate");
    put_le(g + n - 4, 1u << 30, 4);
    fx_write_file(path, g, n);
    gz_fails(path, "trailer claims 1073741824 uncompressed bytes");
    g[2] = 7;
    fx_write_file(path, g, n);
    gz_fails(path, "compression method 7");
    g[2] = 8;
    g[3] = 0x28;
    fx_write_file(path, g, n);
    gz_fails(path, "reserved flag bits");
    g[0] = 'P';
    fx_write_file(path, g, n);
    gz_fails(path, "not a gzip file");
    free(g);
    g = gzip_stored(data, 100, 2, &n);
    g[10] ^= 0xff; /* the header CRC */
    fx_write_file(path, g, n);
    gz_fails(path, "gzip header CRC mismatch");
    free(g);
    free(data);
    snprintf(path, sizeof path, "%s/none.gz", fx->dir);
    gz_fails(path, "cannot open");
}

/* The real label file is a compressed (Huffman) stream: the path stored blocks do not take. */
static void test_real_labels(void **state)
{
    (void)state;
    const char *path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (access(path, R_OK))
        skip();
    struct idx_array a;
    cn_error e;
    if (idx_read_gz(&a, path, 1, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(a.dim[0], 10000);
    assert_int_equal(a.count, 10000);
    assert_int_equal(a.data[0], 9); /* test image 0 is an ankle boot */
    int hist[256] = {0};
    for (size_t i = 0; i < a.count; i++)
        hist[a.data[i]]++;
    for (int k = 0; k < 10; k++)
        assert_int_equal(hist[k], 1000);
    idx_free(&a);
}

static void check_output(const char *dst, const char *shown_dst)
{
    const struct {
        const char *name;
        const uint8_t *labels;
        int n, offset;
    } sets[2] = {{"train", train_labels, 7, 0}, {"test", test_labels, 3, 100}};
    char path[512], want[4096];
    for (int s = 0; s < 2; s++) {
        size_t len = 0;
        for (int i = 0; i < sets[s].n; i++) {
            const char *label = fashion_label(sets[s].labels[i]);
            snprintf(path, sizeof path, "%s/%s/%05d_%s.png", dst, sets[s].name, i, label);
            uint8_t got[PX];
            cn_error e;
            if (image_load_u8(got, path, SIDE, SIDE, 1, &e))
                fail_msg("%s", e.msg);
            for (int j = 0; j < PX; j++)
                assert_int_equal(got[j], pixel(sets[s].offset, i, j));
            len += (size_t)snprintf(want + len, sizeof want - len, "%s/%s/%05d_%s.png\n", shown_dst,
                                    sets[s].name, i, label);
        }
        snprintf(path, sizeof path, "%s/%s.list", dst, sets[s].name);
        char *text = read_text(path);
        assert_string_equal(text, want);
        free(text);
    }
}

/* No temporary list files left behind in dst. */
static void check_no_tmp(const char *dst)
{
    DIR *d = opendir(dst);
    assert_non_null(d);
    struct dirent *ent;
    while ((ent = readdir(d)))
        if (strstr(ent->d_name, ".tmp"))
            fail_msg("left behind: %s/%s", dst, ent->d_name);
    closedir(d);
}

static void test_prepare(void **state)
{
    struct fx_scratch *fx = *state;
    char src[256], dst[256];
    write_source(fx->dir, src);
    snprintf(dst, sizeof dst, "%s/a/b/fashion", fx->dir);
    cn_error e;
    for (int run = 0; run < 2; run++) /* the second run replaces the first's output */
        if (fashion_prepare(src, dst, &e))
            fail_msg("%s", e.msg);
    check_output(dst, dst);
    check_no_tmp(dst);
    snprintf(dst, sizeof dst, "%s/a/b/fashion/test/00000_boot.png", fx->dir);
    assert_int_equal(access(dst, R_OK), 0);
    /* A trailing slash is not doubled in the lists. */
    snprintf(dst, sizeof dst, "%s/slash/", fx->dir);
    assert_int_equal(fashion_prepare(src, dst, &e), 0);
    snprintf(dst, sizeof dst, "%s/slash", fx->dir);
    check_output(dst, dst);
}

/* A relative destination gives relative paths in the lists. */
static void test_prepare_relative(void **state)
{
    struct fx_scratch *fx = *state;
    char src[256], cwd[1024];
    write_source(fx->dir, src);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(fx->dir), 0);
    cn_error e;
    int rc = fashion_prepare(src, "rel/out", &e);
    if (!rc)
        check_output("rel/out", "rel/out");
    assert_int_equal(chdir(cwd), 0);
    if (rc)
        fail_msg("%s", e.msg);
}

/* The committed label file names the classes the file names use, and labels every list path
 * exactly once. */
static void test_labels_match(void **state)
{
    struct fx_scratch *fx = *state;
    char src[256], dst[256], list[300];
    write_source(fx->dir, src);
    snprintf(dst, sizeof dst, "%s/out", fx->dir);
    cn_error e;
    assert_int_equal(fashion_prepare(src, dst, &e), 0);
    char **labels;
    int n;
    if (data_labels_read("data/fashion.labels", &labels, &n, &e))
        fail_msg("%s (run from the repository root)", e.msg);
    assert_int_equal(n, FASHION_CLASSES);
    snprintf(list, sizeof list, "%s/train.list", dst);
    struct image_list *l;
    if (image_list_load(&l, list, labels, n, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(l->n, 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(l->labels[i], train_labels[i]);
    image_list_destroy(l);
    data_strings_free(labels, n);
}

static void test_committed_files(void **state)
{
    (void)state;
    struct data_cfg *d;
    cn_error e;
    if (data_cfg_load(&d, "data/fashion.data", &e))
        fail_msg("%s (run from the repository root)", e.msg);
    assert_int_equal(d->classes, 10);
    assert_int_equal(d->top, 2);
    assert_string_equal(d->train, "data/fashion/train.list");
    assert_string_equal(d->valid, "data/fashion/test.list");
    assert_string_equal(d->backup, "backup/");
    const char *words[] = {"train", "test", "fashion", "data", "list", "png"};
    for (int k = 0; k < 10; k++) {
        assert_string_equal(d->labels[k], fashion_label(k));
        for (int j = 0; j < 10; j++)
            assert_true(j == k || !strstr(d->labels[j], d->labels[k]));
        for (int w = 0; w < 6; w++)
            assert_null(strstr(words[w], d->labels[k]));
    }
    assert_string_equal(d->names[0], "T-shirt/top");
    assert_string_equal(d->names[9], "Ankle boot");
    data_cfg_destroy(d);
}

/* Replaces dir/name with an IDX file built from the arguments. */
static void put_idx(const char *dir, const char *name, uint32_t magic, const uint32_t *dims,
                    int ndim, const uint8_t *data, size_t n)
{
    char path[512];
    size_t len;
    uint8_t *b = fx_idx_bytes(magic, dims, ndim, data, n, &len);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    put_gz(path, b, len, 0);
    free(b);
}

static void prepare_fails(const char *src, const char *dst, const char *want)
{
    cn_error e = {{0}};
    assert_int_equal(fashion_prepare(src, dst, &e), -1);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
    assert_int_not_equal(access(dst, F_OK), 0); /* nothing written */
}

static void test_prepare_rejects(void **state)
{
    struct fx_scratch *fx = *state;
    char src[256], dst[256];
    write_source(fx->dir, src);
    snprintf(dst, sizeof dst, "%s/out", fx->dir);
    const char *labels = "t10k-labels-idx1-ubyte.gz", *images = "t10k-images-idx3-ubyte.gz";
    uint32_t three[1] = {3}, two[1] = {2};
    put_idx(src, labels, 0x803, three, 1, test_labels, 3);
    prepare_fails(src, dst,
                  "t10k-labels-idx1-ubyte.gz: IDX magic 0x00000803, expected "
                  "0x00000801 (unsigned bytes, 1 dimension)");
    put_idx(src, labels, 0x801, two, 1, test_labels, 3);
    prepare_fails(src, dst, "IDX sizes give 2 bytes of data, but the file holds 3");
    put_idx(src, labels, 0x801, two, 1, test_labels, 2);
    prepare_fails(src, dst, "t10k-labels-idx1-ubyte.gz: 2 labels, but");
    const uint8_t bad[3] = {9, 6, 10};
    put_idx(src, labels, 0x801, three, 1, bad, 3);
    prepare_fails(src, dst, "label 10 of item 2 is not in 0..9");
    put_idx(src, labels, 0x801, three, 1, test_labels, 3);
    uint8_t px[3 * 27 * 28] = {0};
    uint32_t dims[3] = {3, 27, 28};
    put_idx(src, images, 0x803, dims, 3, px, sizeof px);
    prepare_fails(src, dst, "images are 27x28, expected 28x28");
    /* A truncated images file. */
    write_set(src, "t10k", test_labels, 3, 100);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", src, images);
    char *all = read_text(path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    fx_write_file(path, all, (size_t)st.st_size - 40);
    free(all);
    prepare_fails(src, dst, "truncated or corrupt gzip file");
    unlink(path);
    prepare_fails(src, dst, "t10k-images-idx3-ubyte.gz: cannot open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test_setup_teardown(test_gzip, setup, fx_scratch_destroy),
        cmocka_unit_test(test_real_labels),
        cmocka_unit_test_setup_teardown(test_prepare, setup, fx_scratch_destroy),
        cmocka_unit_test_setup_teardown(test_prepare_relative, setup, fx_scratch_destroy),
        cmocka_unit_test_setup_teardown(test_labels_match, setup, fx_scratch_destroy),
        cmocka_unit_test(test_committed_files),
        cmocka_unit_test_setup_teardown(test_prepare_rejects, setup, fx_scratch_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
