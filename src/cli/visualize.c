/* visualize.c - `net visualize CFG WEIGHTS [-layer K] [IMAGE] -o OUT.png`.
 *
 * Without IMAGE: the filters of the first [convolutional] layer (or of layer K, which must be
 * one) as a grid, each filter normalised on its own (min black, max white); a 3-channel filter
 * is one RGB tile, any other is a row of gray tiles, one per input channel. With IMAGE: layer
 * K's feature maps (default: the first [convolutional] layer's) for that image, one gray tile
 * per channel, each normalised on its own. Taps and map cells are enlarged to blocks so that a
 * tile is at least TILE_MIN pixels across; tiles are PAD pixels apart on a mid-gray ground.
 * The PNG is written atomically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/picture.h"
#include "net/inspect.h"

#define TILE_MIN 48
#define PAD 2
#define GROUND 128

static const char visualize_usage[] =
    "usage: net visualize CFG WEIGHTS [-layer K] [IMAGE] -o OUT.png\n"
    "  without IMAGE: the filters of the first [convolutional] layer (or of layer K) as a grid\n"
    "  with IMAGE: layer K's feature maps for IMAGE (default K: the first [convolutional])\n";

static int zoom_for(int w, int h)
{
    int side = CN_MAX(w, h), z = 1;
    while (side * z < TILE_MIN)
        z++;
    return z;
}

/* count blocks of bw x bh tile cells (tw x th values each), near-square, into pic. */
static int grid_picture(struct picture *pic, int count, int bw, int bh, int tw, int th, int z,
                        int *cols, cn_error *e)
{
    int rows;
    picture_grid(count, cols, &rows);
    int W = *cols * (bw * (tw * z + PAD) + PAD) + PAD, H = rows * (bh * (th * z + PAD) + PAD) + PAD;
    return picture_create(pic, W, H, GROUND, e);
}

static int draw_filters(const struct net *n, int layer, struct picture *pic, cn_error *e)
{
    struct conv_filters f;
    if (inspect_conv_filters(n, layer, &f, e))
        return -1;
    int rgb = f.cg == 3, per_row = rgb ? 1 : f.cg, z = zoom_for(f.kw, f.kh), cols;
    if (grid_picture(pic, f.filters, per_row, 1, f.kw, f.kh, z, &cols, e))
        return -1;
    size_t taps = (size_t)f.cg * (size_t)f.kh * (size_t)f.kw, plane = (size_t)f.kh * f.kw;
    float *v = xmalloc(sizeof *v * taps);
    int bw = per_row * (f.kw * z + PAD) + PAD, bh = f.kh * z + 2 * PAD;
    for (int i = 0; i < f.filters; i++) {
        memcpy(v, f.weights + (size_t)i * taps, sizeof *v * taps);
        picture_normalise(v, taps);
        int x = PAD + (i % cols) * bw + PAD, y = PAD + (i / cols) * bh + PAD;
        for (int c = 0; c < (rgb ? 1 : f.cg); c++)
            picture_put_tile(pic, x + c * (f.kw * z + PAD), y, v + (rgb ? 0 : (size_t)c * plane),
                             f.kw, f.kh, rgb ? 3 : 1, z);
    }
    free(v);
    printf("filters of layer %d: %d of %dx%dx%d\n", layer, f.filters, f.cg, f.kh, f.kw);
    return 0;
}

static int draw_maps(struct net *n, int layer, const char *image, struct picture *pic, cn_error *e)
{
    if (net_check_live(n, layer, e) || cli_load_image(n, 0, image, e))
        return -1;
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward_upto(n, &p, layer);
    const struct layer *l = &n->layers[layer];
    int z = zoom_for(l->out.w, l->out.h), cols;
    if (grid_picture(pic, l->out.c, 1, 1, l->out.w, l->out.h, z, &cols, e))
        return -1;
    size_t plane = (size_t)l->out.h * (size_t)l->out.w;
    float *v = xmalloc(sizeof *v * plane);
    for (int c = 0; c < l->out.c; c++) {
        memcpy(v, l->output + (size_t)c * plane, sizeof *v * plane);
        picture_normalise(v, plane);
        int x = PAD + (c % cols) * (l->out.w * z + 2 * PAD) + PAD;
        int y = PAD + (c / cols) * (l->out.h * z + 2 * PAD) + PAD;
        picture_put_tile(pic, x, y, v, l->out.w, l->out.h, 1, z);
    }
    free(v);
    printf("feature maps of layer %d [%s]: %d of %dx%d\n", layer, l->ops->name, l->out.c, l->out.h,
           l->out.w);
    return 0;
}

int cli_visualize(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return fputs(visualize_usage, stdout), 0;
    const char *out = cli_take_str(&argc, argv, "-o");
    int have_layer = 0;
    for (int i = 1; i < argc; i++)
        have_layer |= !strcmp(argv[i], "-layer");
    long k;
    if (cli_take_int(&argc, argv, "-layer", -1000000, 1000000, 0, &k) ||
        cli_no_flags_left(argc, argv))
        return 1;
    if (argc < 3 || argc > 4 || !out) {
        fputs(visualize_usage, stderr);
        return 1;
    }
    cn_error e;
    struct net *n = NULL;
    struct picture pic = {0};
    int layer = 0;
    int rc = cli_open_net(&n, argv[1], argv[2], 1, &e);
    if (!rc && have_layer)
        rc = cli_layer_index(k, n, &layer, &e);
    else if (!rc && (layer = inspect_first_conv(n, 0)) < 0)
        rc = cn_fail(&e, "%s: no [convolutional] layer; name one with -layer K", argv[1]);
    if (!rc)
        rc = (argc == 4 ? draw_maps(n, layer, argv[3], &pic, &e)
                        : draw_filters(n, layer, &pic, &e)) ||
             picture_write_png(&pic, out, &e);
    picture_free(&pic);
    net_destroy(n);
    return rc ? cli_error(e.msg) : 0;
}
