/* data.c - `net data preview` and `net data bench`.
 *
 * `net data preview DATA CFG -o OUT.png [-n N] [-seed S] [-at K]`: a grid of the first N
 * training samples of the stream (from sample K on) exactly as the loader hands them to the
 * network - the cfg's [net] sampling and augmentation, mean/std undone for display - each with its
 * label underneath (the top class of its truth row; mixed samples show the two classes and the
 * weight of the first). So a user sees what the network sees.
 *
 * Tiles are the input size enlarged by an integer factor (nearest neighbour) to at least 96
 * pixels wide; gray input is drawn gray. Text is stb_easy_font's quads filled as rectangles. The
 * PNG is written with stb_image_write.
 *
 * `net data bench DATA CFG [-batches N] [-workers W] [-nocache]`: the loader alone, as training
 * would drive it ([net] batch/subdivisions, sampling, augmentation), timing N batches (default
 * 20) from the first request to the last, so prefetching and any decoding are included.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

#include "cfg/cfg.h"
#include "cli/cli.h"
#include "data/datafile.h"
#include "data/list.h"
#include "data/loader.h"
#include "net/netcfg.h"

#define LABEL_H 14 /* pixels of text strip under each tile */
#define PAD 4

struct preview {
    struct data_cfg *d;
    struct net_config nc;
    int have_nc;
    struct image_list *list;
    struct loader *ld;
    float *x, *t;
    int n, zoom, tw, th, cols, rows, W, H;
    uint8_t *png;
};

static void preview_free(struct preview *p)
{
    loader_destroy(p->ld);
    image_list_destroy(p->list);
    data_cfg_destroy(p->d);
    if (p->have_nc)
        net_config_free(&p->nc);
    free(p->x);
    free(p->t);
    free(p->png);
}

/* Only [net] is read: the layers do not matter for the samples. */
static int read_net_section(struct preview *p, const char *cfg, cn_error *e)
{
    struct cfg_file *f;
    if (cfg_read_file(&f, cfg, CFG_SECTIONS, e))
        return -1;
    int rc = f->nsec < 1 ? cn_fail(e, "%s: no [net] section", cfg)
                         : net_config_parse(&p->nc, &f->sec[0], e);
    cfg_destroy(f);
    p->have_nc = rc == 0;
    return rc;
}

static int preview_load(struct preview *p, const char *data, const char *cfg, long seed,
                        long at, cn_error *e)
{
    if (data_cfg_load(&p->d, data, e) || read_net_section(p, cfg, e) ||
        image_list_load(&p->list, p->d->train, p->d->labels, p->d->classes, e) ||
        loader_check_all(p->list, e))
        return -1;
    const struct net_config *c = &p->nc;
    if (c->channels > 4)
        return cn_fail(e, "%s: channels=%d: images have at most 4", cfg, c->channels);
    struct loader_opts o;
    loader_opts_default(&o, c->width, c->height, c->channels, p->d->classes,
                        seed >= 0 ? (uint64_t)seed : c->seed);
    o.sampling = c->input.sampling;
    o.aug = c->input.aug;
    o.class_weights = p->d->class_weights;
    size_t isize = (size_t)c->width * (size_t)c->height * (size_t)c->channels;
    p->x = xmalloc(sizeof *p->x * isize * (size_t)p->n);
    p->t = xmalloc(sizeof *p->t * (size_t)p->d->classes * (size_t)p->n);
    return loader_open(&p->ld, p->list, &o, e) || loader_seek(p->ld, (uint64_t)at, e) ||
           loader_next(p->ld, p->x, p->t, p->n, e);
}

/* The tile's caption: "name", or "name .62 + other" for a mixed truth row. */
static void caption(const struct preview *p, int b, char *out, size_t cap)
{
    const float *t = p->t + (size_t)b * (size_t)p->d->classes;
    int k1 = 0, k2 = -1;
    for (int k = 1; k < p->d->classes; k++)
        if (t[k] > t[k1])
            k1 = k;
    float floor = p->nc.input.aug.label_smooth / (float)p->d->classes, sum = 0;
    for (int k = 0; k < p->d->classes; k++) {
        sum += t[k];
        if (k != k1 && t[k] > floor + .02f && (k2 < 0 || t[k] > t[k2]))
            k2 = k;
    }
    if (k2 < 0)
        snprintf(out, cap, "%s", p->d->names[k1]);
    else
        snprintf(out, cap, "%s %.2f+%s", p->d->names[k1], (double)(t[k1] / sum),
                 p->d->names[k2]);
}

/* Fills stb_easy_font's quads (x, y, z, colour per vertex; 4 vertices each) in white. */
static void draw_text(struct preview *p, int x0, int y0, char *text)
{
    static char buf[60000];
    unsigned char col[4] = {255, 255, 255, 255};
    int quads = stb_easy_font_print(0, 0, text, col, buf, sizeof buf);
    for (int q = 0; q < quads; q++) {
        const float *v = (const float *)(buf + (size_t)q * 64);
        int xa = x0 + (int)v[0], ya = y0 + (int)v[1], xb = x0 + (int)v[8], yb = y0 + (int)v[9];
        for (int y = ya; y < yb; y++)
            for (int x = xa; x < xb; x++)
                if (x >= 0 && y >= 0 && x < p->W && y < p->H && x < x0 + p->tw)
                    memset(p->png + ((size_t)y * (size_t)p->W + (size_t)x) * 3, 255, 3);
    }
}

/* Sample b's pixel (x, y) of channel k, back in [0, 255]. */
static uint8_t shown(const struct preview *p, int b, int k, int x, int y)
{
    const struct net_config *c = &p->nc;
    const struct aug_config *a = &c->input.aug;
    size_t plane = (size_t)c->width * (size_t)c->height;
    float v = p->x[((size_t)b * (size_t)c->channels + (size_t)k) * plane +
                   (size_t)y * (size_t)c->width + (size_t)x];
    if (a->nmean)
        v = v * a->std[k] + a->mean[k];
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (uint8_t)lrintf(v * 255);
}

static void draw_tile(struct preview *p, int b)
{
    const struct net_config *c = &p->nc;
    int ox = PAD + (b % p->cols) * (p->tw + PAD), oy = PAD + (b / p->cols) * (p->th + LABEL_H + PAD);
    for (int y = 0; y < p->th; y++)
        for (int x = 0; x < p->tw; x++) {
            uint8_t *px = p->png + ((size_t)(oy + y) * (size_t)p->W + (size_t)(ox + x)) * 3;
            int sx = x / p->zoom, sy = y / p->zoom;
            for (int k = 0; k < 3; k++)
                px[k] = shown(p, b, c->channels >= 3 ? k : 0, sx, sy);
        }
    char text[256];
    caption(p, b, text, sizeof text);
    draw_text(p, ox + 1, oy + p->th + 3, text);
}

static int preview_write(struct preview *p, const char *out, cn_error *e)
{
    const struct net_config *c = &p->nc;
    p->zoom = CN_MAX(1, (96 + c->width - 1) / c->width);
    p->tw = c->width * p->zoom;
    p->th = c->height * p->zoom;
    p->cols = (int)ceil(sqrt((double)p->n));
    p->rows = (p->n + p->cols - 1) / p->cols;
    p->W = PAD + p->cols * (p->tw + PAD);
    p->H = PAD + p->rows * (p->th + LABEL_H + PAD);
    if ((double)p->W * p->H > 1e8)
        return cn_fail(e, "%s: a %dx%d grid is too large; lower -n", out, p->W, p->H);
    p->png = xcalloc((size_t)p->W * (size_t)p->H * 3, 1);
    for (int b = 0; b < p->n; b++)
        draw_tile(p, b);
    if (!stbi_write_png(out, p->W, p->H, 3, p->png, p->W * 3))
        return cn_fail(e, "%s: cannot write the PNG", out);
    return 0;
}

static const char data_usage[] =
    "usage: net data preview DATA CFG -o OUT.png [-n N] [-seed S] [-at K]\n"
    "  a grid of N (default 32) augmented training samples, from sample K of the stream (default\n"
    "  0), with their labels, as the cfg's [net] keys make them\n"
    "       net data bench DATA CFG [-batches N] [-workers W] [-nocache]\n"
    "  images/s of the loader alone over N batches (default 20) of the cfg's batch size, its\n"
    "  CPU time per image (all threads) and the cores it kept busy\n";

static int bench_run(struct preview *p, const char *data, const char *cfg, long batches,
                     long workers, int nocache, cn_error *e)
{
    if (data_cfg_load(&p->d, data, e) || read_net_section(p, cfg, e) ||
        image_list_load(&p->list, p->d->train, p->d->labels, p->d->classes, e))
        return -1;
    const struct net_config *c = &p->nc;
    int batch = c->batch / c->subdivisions;
    struct loader_opts o;
    loader_opts_default(&o, c->width, c->height, c->channels, p->d->classes, c->seed);
    o.sampling = c->input.sampling;
    o.aug = c->input.aug;
    o.workers = workers >= 0 ? (int)workers : c->input.workers;
    o.cache_bytes = nocache ? 0 : (size_t)2 << 30;
    o.batch = batch;
    size_t isize = (size_t)c->width * (size_t)c->height * (size_t)c->channels;
    p->x = xmalloc(sizeof *p->x * isize * (size_t)batch);
    p->t = xmalloc(sizeof *p->t * (size_t)p->d->classes * (size_t)batch);
    double t0 = cli_now_seconds(), c0 = cli_cpu_seconds();
    if (loader_open(&p->ld, p->list, &o, e))
        return -1;
    for (long b = 0; b < batches; b++)
        if (loader_next(p->ld, p->x, p->t, batch, e))
            return -1;
    double dt = cli_now_seconds() - t0, imgs = (double)batches * batch;
    double cpu = cli_cpu_seconds() - c0;
    /* the CPU figures count every thread: the caller of loader_next fills batches beside the
     * workers when the ring is behind, so W workers can keep W + 1 cores busy */
    printf("%s: %d workers, %ld batches of %d %dx%dx%d images (%s, %s): %.0f images/s, "
           "%.1f us of CPU per image, %.2f cores busy\n",
           p->d->train, o.workers, batches, batch, c->width, c->height, c->channels,
           aug_is_random(&o.aug) ? "augmented" : "no augmentation",
           loader_cached(p->ld) ? "cache on" : "no cache", imgs / dt, 1e6 * cpu / imgs, cpu / dt);
    return 0;
}

static int cli_data_bench(int argc, char **argv)
{
    long batches, workers;
    int nocache = cli_take_flag(&argc, argv, "-nocache");
    if (cli_take_int(&argc, argv, "-batches", 1, 1000000, 20, &batches) ||
        cli_take_int(&argc, argv, "-workers", 0, 64, -1, &workers) ||
        cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 4) {
        fputs(data_usage, stderr);
        return 1;
    }
    struct preview p = {0};
    cn_error e;
    int rc = bench_run(&p, argv[2], argv[3], batches, workers, nocache, &e);
    preview_free(&p);
    return rc ? cli_error(e.msg) : 0;
}

int cli_data(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "bench"))
        return cli_data_bench(argc, argv);
    long n, seed, at;
    const char *out = cli_take_str(&argc, argv, "-o");
    if (cli_take_int(&argc, argv, "-n", 1, 1024, 32, &n) ||
        cli_take_int(&argc, argv, "-seed", 0, 2147483647, -1, &seed) ||
        cli_take_int(&argc, argv, "-at", 0, 2147483647, 0, &at) || cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 4 || strcmp(argv[1], "preview") || !out) {
        fputs(data_usage, stderr);
        return 1;
    }
    struct preview p = {.n = (int)n};
    cn_error e;
    int rc = preview_load(&p, argv[2], argv[3], seed, at, &e) || preview_write(&p, out, &e);
    if (!rc)
        printf("%s: %d samples of %s, %dx%d tiles\n", out, p.n, p.d->train, p.tw, p.th);
    preview_free(&p);
    return rc ? cli_error(e.msg) : 0;
}
