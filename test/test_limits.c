/* test_limits.c - every size a user or a file controls is bounded before allocation, and the
 * message names the limit: width=10^9, filters=10^9, output=10^9, a 100 KB line, 10,000 layers,
 * 100,000 sections, 10,000 keys in a section, an image header claiming 65,500x65,500, an input
 * whose product overflows; and the inputs the fuzzers found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/strbuf.h"
#include "data/image.h"
#include "net/net.h"

static void expect_build_error(const char *cfg, const char *want)
{
    struct net *n = NULL;
    cn_error e;
    if (net_create_from_string(&n, cfg, "lim.cfg", 0, 1, &e) == 0) {
        net_destroy(n);
        fail_msg("built, but expected an error containing '%s'", want);
    }
    assert_null(n);
    if (!strstr(e.msg, want))
        fail_msg("'%s' lacks '%s'", e.msg, want);
}

static void test_net_keys(void **state)
{
    (void)state;
    expect_build_error("[net]\nheight=28\nwidth=1000000000\nchannels=1\n[softmax]\n",
                       "width=1000000000: out of range [1, 65536]");
    expect_build_error("[net]\nheight=28\nwidth=28\nchannels=1\nbatch=1000000000\n[softmax]\n",
                       "out of range [1, 1048576]");
    expect_build_error("[net]\nheight=28\nwidth=28\nchannels=1\n[convolutional]\n"
                       "filters=1000000000\n",
                       "filters=1000000000: out of range [1, 1048576]");
    expect_build_error("[net]\nheight=28\nwidth=28\nchannels=1\n[connected]\n"
                       "output=1000000000\n",
                       "output=1000000000: out of range [1, 16777216]");
}

/* Each dimension within its bound, the product not: caught before any slab is allocated. */
static void test_products(void **state)
{
    (void)state;
    struct net *n = NULL;
    cn_error e;
    const char *cfg = "[net]\nheight=65536\nwidth=65536\nchannels=65536\n[softmax]\n";
    assert_int_equal(net_create_from_string(&n, cfg, "lim.cfg", 0, 1, &e), -1);
    printf("65536^3 input: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "not usable"));
    cfg = "[net]\nheight=4096\nwidth=4096\nchannels=3\n[convolutional]\nfilters=1048576\nsize=3\n";
    assert_int_equal(net_create_from_string(&n, cfg, "lim.cfg", 0, 1, &e), -1);
    printf("4096x4096x3 -> 1048576 filters: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "too large"));
    cfg = "[net]\nheight=4096\nwidth=4096\nchannels=3\n[connected]\noutput=16777216\n";
    assert_int_equal(net_create_from_string(&n, cfg, "lim.cfg", 0, 1, &e), -1);
    printf("50M inputs x 16M outputs: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "lim.cfg:6: [connected] output=16777216: "));
    assert_non_null(strstr(e.msg, "weights, more than 1073741824"));
    /* 2^30 weights pass the layer's bound; with their gradients and the input (2 images) the net
     * is over (4 + 4 + 8 GiB and more) */
    cfg = "[net]\nbatch=2\nheight=16384\nwidth=16384\nchannels=4\n[connected]\noutput=1\n";
    assert_int_equal(net_create_from_string(&n, cfg, "lim.cfg", 0, 1, &e), -1);
    printf("1G inputs x 1 output, training: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "limit of 16384 MiB"));
}

static void test_long_line(void **state)
{
    (void)state;
    struct strbuf b = {0};
    strbuf_printf(&b, "[net]\nheight=28\nwidth=28\nchannels=1\n# ");
    for (int i = 0; i < 100 * 1024; i++)
        strbuf_printf(&b, "x");
    strbuf_printf(&b, "\n[softmax]\n");
    char *cfg = strbuf_take(&b);
    expect_build_error(cfg, "lim.cfg:5: line longer than 4096 characters");
    free(cfg);
}

/* head, then count copies of item with %d replaced by the copy's number. */
static char *many(const char *head, const char *item, int count)
{
    struct strbuf b = {0};
    strbuf_printf(&b, "%s", head);
    for (int i = 0; i < count; i++)
        for (const char *p = item; *p; p++)
            if (p[0] == '%' && p[1] == 'd')
                strbuf_printf(&b, "%d", i), p++;
            else
                strbuf_printf(&b, "%c", *p);
    return strbuf_take(&b);
}

static void test_many_layers_sections_keys(void **state)
{
    (void)state;
    char *cfg = many("[net]\nheight=2\nwidth=2\nchannels=1\n", "[maxpool]\nsize=1\n", 10000);
    expect_build_error(cfg, "10000 layers, more than the limit of 4096");
    free(cfg);
    cfg = many("[net]\nheight=2\nwidth=2\nchannels=1\n", "[x]\n", 100000);
    expect_build_error(cfg, "more than the limit of 65536 sections");
    free(cfg);
    cfg = many("[net]\nheight=2\nwidth=2\nchannels=1\n", "k%d=1\n", 10000);
    expect_build_error(cfg, "more than the limit of 4096 keys");
    free(cfg);
}

static void test_image_header(void **state)
{
    (void)state;
    char path[] = "/tmp/cfgnet_lim_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char pgm[] = "P5\n65500 65500\n255\n\1\2\3";
    assert_int_equal(write(fd, pgm, sizeof pgm - 1), (ssize_t)(sizeof pgm - 1));
    close(fd);
    cn_error e;
    int w, h;
    assert_int_equal(image_info(path, &w, &h, &e), -1);
    if (!strstr(e.msg, "65500x65500") || !strstr(e.msg, "16384 per side"))
        fail_msg("'%s' does not name the claim and the limit", e.msg);
    float out[4];
    assert_int_equal(image_load(out, path, 2, 2, 1, &e), -1);
    assert_non_null(strstr(e.msg, "16384"));
    unlink(path);
}

/* Fuzzer findings, kept as regression inputs under test/fuzz/regress-NAME (the first byte
 * picks the output shape; the file proper follows it). */
/* Loads file minus its first byte (the fuzz target's shape byte); returns image_load_u8's
 * status with its message in e. */
static int load_fuzz_input(const char *file, cn_error *e)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        fail_msg("cannot open %s (run from the source tree)", file);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char path[] = "/tmp/cfgnet_lim_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0 && n > 1);
    assert_int_equal(write(fd, buf + 1, n - 1), (ssize_t)(n - 1));
    close(fd);
    uint8_t out[16 * 16 * 3];
    int rc = image_load_u8(out, path, 16, 16, 3, e);
    unlink(path);
    return rc;
}

static void expect_image_rejected(const char *file, const char *want)
{
    cn_error e;
    assert_int_equal(load_fuzz_input(file, &e), -1);
    if (!strstr(e.msg, want))
        fail_msg("%s: unexpected message: %s", file, e.msg);
}

static void expect_image_loads(const char *file)
{
    cn_error e;
    if (load_fuzz_input(file, &e))
        fail_msg("%s: %s", file, e.msg);
}

static void test_fuzz_regressions(void **state)
{
    (void)state;
    /* stb 2.27 writes past a 257-byte table on these; stbcheck.c rejects them first. The
     * second declares its big table in a DHT segment shorter than one table. */
    expect_image_rejected("test/fuzz/regress-image/jpeg_dht_overflow",
                          "corrupt JPEG: a Huffman table declares");
    expect_image_rejected("test/fuzz/regress-image/jpeg_dht_short_segment",
                          "corrupt JPEG: a Huffman table declares");
    /* FF fill bytes before SOI, which stb accepts, then an oversized table. */
    expect_image_rejected("test/fuzz/regress-image/jpeg_fill_before_soi",
                          "corrupt JPEG: a Huffman table declares");
    /* stbi_info's imperfect rewind lets its PNM test read a "P6" inside this JPEG. */
    expect_image_rejected("test/fuzz/regress-image/pnm_header_inside_jpeg",
                          "corrupt PNM header: a number of more than 9 digits");
    /* A progressive JPEG on which stb's (debug-only) assertion in stbi__jpeg_huff_decode fired:
     * its AC scan names a table no DHT defined, so stb decoded with uninitialised tables. */
    expect_image_rejected("test/fuzz/regress-image/jpeg_huff_assert",
                          "corrupt JPEG: a scan uses AC Huffman table 0, which no DHT");
    /* A progressive scan decoding with an AC table that only a later DHT defines: stb 2.27 reads
     * its uninitialised tables, out of bounds when the heap held the wrong bytes (fuzzer). */
    expect_image_rejected("test/fuzz/regress-image/jpeg_scan_undefined_table",
                          "corrupt JPEG: a scan uses AC Huffman table 1, which no DHT");
    /* A PNG chunk claiming about 4 GB: stb would allocate it before reading (libFuzzer OOM). */
    expect_image_rejected("test/fuzz/regress-image/png_chunk_past_end", "corrupt PNG: a ");
    /* The checks pass valid files: the baseline and progressive JPEGs of the seed corpus. */
    expect_image_loads("test/fuzz/corpus-image/x.jpg");
    expect_image_loads("test/fuzz/corpus-image/p.jpg");
    expect_image_loads("test/fuzz/corpus-image/x.ppm");
    /* A PNM width of 10+ digits: signed overflow in stbi__pnm_getinteger. */
    expect_image_rejected("test/fuzz/regress-image/pnm_huge_number",
                          "corrupt PNM header: a number of more than 9 digits");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_keys),     cmocka_unit_test(test_products),
        cmocka_unit_test(test_long_line),    cmocka_unit_test(test_many_layers_sections_keys),
        cmocka_unit_test(test_image_header), cmocka_unit_test(test_fuzz_regressions),
    };
    return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
