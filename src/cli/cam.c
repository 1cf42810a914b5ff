/* cam.c - `net classifier cam DATA CFG WEIGHTS IMAGE -o CAM.png [-class NAME]`: the class
 * activation map (net/inspect.h) of the top class, or of the named one, drawn over the image.
 *
 * The map (H x W of the last maps) is normalised to [0, 1] (min to max), resized bilinearly onto
 * the part of the image the network saw (the whole image when its aspect is the input's; else
 * the centre crop `predict` takes, data/views.h), coloured with jet (blue low, red high) and
 * blended half and half over the image at its own size, times -zoom. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/metrics.h"
#include "data/datafile.h"
#include "data/image.h"
#include "data/picture.h"
#include "data/views.h"
#include "net/inspect.h"
#include "net/weights.h"

#define CAM_ALPHA 0.5f

static const char cam_usage[] =
    "usage: net classifier cam DATA CFG WEIGHTS IMAGE -o CAM.png [-class NAME] [-zoom Z]\n"
    "  the class activation map of IMAGE for its top class (or -class NAME, a names= or\n"
    "  labels= entry of DATA), blended in jet colours over the image, enlarged Z times\n"
    "  (default 1); CFG must end in global average pooling and a linear classifier\n";

/* The class named name (names= or labels=), or the top one. */
static int pick_class(const struct data_cfg *d, const float *p, const char *name, int *k,
                      cn_error *e)
{
    if (!name) {
        metrics_top_k(k, p, d->classes, 1);
        return 0;
    }
    for (int i = 0; i < d->classes; i++)
        if (!strcmp(d->names[i], name) || !strcmp(d->labels[i], name)) {
            *k = i;
            return 0;
        }
    return cn_fail(e, "-class %s: not a class of %s (names= or labels=, e.g. '%s')", name, d->path,
                   d->names[0]);
}

/* The image with the map over the part the net saw. map: h x w raw CAM, normalised here. */
static int draw_cam(const struct net *n, const char *path, float *map, int h, int w, long zoom,
                    struct picture *pic, cn_error *e)
{
    uint8_t *px;
    int iw, ih, rw, rh, x0, y0;
    if (image_decode(&px, &iw, &ih, path, 3, e))
        return -1;
    int rc = picture_create(pic, (int)(iw * zoom), (int)(ih * zoom), 0, e);
    if (!rc) {
        size_t plane = (size_t)iw * (size_t)ih;
        float *rgb = xmalloc(sizeof *rgb * plane * 3);
        for (size_t j = 0; j < plane * 3; j++)
            rgb[j] = px[j] / 255.f;
        picture_put_tile(pic, 0, 0, rgb, iw, ih, 3, (int)zoom);
        free(rgb);
        /* the seen window, in picture pixels */
        views_resized_size(&rw, &rh, iw, ih, n->in.w, n->in.h, 1.f);
        views_origin(&x0, &y0, 0, rw, rh, n->in.w, n->in.h);
        int sx = (int)((long)x0 * iw * zoom / rw), sy = (int)((long)y0 * ih * zoom / rh);
        int sw = (int)((long)n->in.w * iw * zoom / rw), sh = (int)((long)n->in.h * ih * zoom / rh);
        picture_normalise(map, (size_t)h * (size_t)w);
        struct picture part;
        rc = picture_create(&part, sw, sh, 0, e);
        if (!rc) {
            float *big = xmalloc(sizeof *big * (size_t)sw * (size_t)sh);
            picture_resize_map(big, sw, sh, map, w, h);
            for (int y = 0; y < sh; y++)
                memcpy(part.rgb + (size_t)y * sw * 3,
                       pic->rgb + ((size_t)(sy + y) * (size_t)pic->w + (size_t)sx) * 3,
                       (size_t)sw * 3);
            picture_blend_jet(&part, big, CAM_ALPHA);
            for (int y = 0; y < sh; y++)
                memcpy(pic->rgb + ((size_t)(sy + y) * (size_t)pic->w + (size_t)sx) * 3,
                       part.rgb + (size_t)y * sw * 3, (size_t)sw * 3);
            free(big);
            picture_free(&part);
        }
    }
    free(px);
    return rc;
}

struct cam_args {
    const char *out, *cls;
    long zoom;
};

static int cam_run(const struct cam_args *a, char **argv, cn_error *e)
{
    struct data_cfg *d = NULL;
    struct net *n = NULL;
    struct cam_head h;
    struct picture pic = {0};
    float *map = NULL;
    int k = 0;
    /* The maps are an inner layer's output, read after the whole pass: keep every output. */
    int rc = data_cfg_load(&d, argv[1], e) || net_create(&n, argv[2], 1, NET_KEEP_OUTPUTS, e) ||
             weights_load(n, argv[3], e) ||
             cli_check_classes(d, n, argv[1], e) || cam_find_head(n, &h, e) ||
             cli_load_image(n, 0, argv[4], e);
    if (!rc) {
        struct pass p;
        net_pass_init(n, &p, 0, 0);
        net_forward(n, &p);
        rc = pick_class(d, net_output(n), a->cls, &k, e);
    }
    if (!rc) {
        map = xmalloc(sizeof *map * (size_t)h.h * (size_t)h.w);
        cam_compute(n, &h, 0, k, map);
        rc = draw_cam(n, argv[4], map, h.h, h.w, a->zoom, &pic, e) ||
             picture_write_png(&pic, a->out, e);
    }
    if (!rc)
        printf("%s: class %s (p = %.4f), from the %dx%dx%d maps of layer %d [%s]\n", a->out,
               d->names[k], (double)net_output(n)[k], h.channels, h.h, h.w, h.maps,
               n->layers[h.maps].ops->name);
    free(map);
    picture_free(&pic);
    net_destroy(n);
    data_cfg_destroy(d);
    return rc;
}

int cli_classifier_cam(int argc, char **argv)
{
    struct cam_args a = {0};
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return fputs(cam_usage, stdout), 0;
    a.out = cli_take_str(&argc, argv, "-o");
    a.cls = cli_take_str(&argc, argv, "-class");
    if (cli_take_int(&argc, argv, "-zoom", 1, 64, 1, &a.zoom) || cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 5 || !a.out) {
        fputs(cam_usage, stderr);
        return 1;
    }
    cn_error e;
    return cam_run(&a, argv, &e) ? cli_error(e.msg) : 0;
}
