/* features.c - `net classifier features DATA CFG WEIGHTS -layer K INPUT... -o FEATS.csv`: layer
 * K's activations for each image (global-average-pooled when the layer is spatial:
 * net/inspect.h), one CSV row per image: path, label (the label= name found in the path, empty
 * when there is none or more than one), then f0, f1, ... Images are preprocessed as `predict`
 * preprocesses them (one centre view, the cfg's mean/std). The CSV is written atomically at the
 * end. Also here: what cam.c and visualize.c share (-layer parsing, one image into the input). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/csv.h"
#include "data/datafile.h"
#include "data/inputs.h"
#include "data/list.h"
#include "data/views.h"
#include "net/inspect.h"
#include "net/weights.h"

#define FEATURES_BATCH 32

static const char features_usage[] =
    "usage: net classifier features DATA CFG WEIGHTS -layer K INPUT... -o FEATS.csv\n"
    "  layer K's activations (0-based; negative counts from the end, -1 the last layer) for\n"
    "  every image, global-average-pooled when spatial: one row path,label,f0,f1,... each.\n"
    "  An INPUT is an image, a .list/.txt of paths or a directory, as for predict\n";

int cli_layer_index(long k, const struct net *n, int *out, cn_error *e)
{
    long i = k < 0 ? n->n + k : k;
    if (i < 0 || i >= n->n)
        return cn_fail(e, "-layer %ld: %s has %d layers (0 to %d, or -1 to -%d from the end)", k,
                       n->cfg_path, n->n, n->n - 1, n->n);
    *out = (int)i;
    return 0;
}

int cli_load_image(struct net *n, int b, const char *path, cn_error *e)
{
    static const struct view_spec one = {.crops = 1, .nscales = 1, .scale = {1.f}};
    float *dst = n->input + (size_t)b * net_inputs(n);
    if (views_load(dst, path, n->in.w, n->in.h, n->in.c, &one, e))
        return -1;
    aug_normalize(dst, 1, n->in.w, n->in.h, n->in.c, &n->cfg.input.aug);
    return 0;
}

int cli_open_net(struct net **n, const char *cfg, const char *weights, int batch, cn_error *e)
{
    if (net_create(n, cfg, batch, 0, e))
        return -1;
    return weights_load(*n, weights, e);
}

static void header_row(struct csv *c, size_t count)
{
    csv_field(c, "path");
    csv_field(c, "label");
    for (size_t j = 0; j < count; j++)
        csv_fieldf(c, "f%zu", j);
    csv_end_row(c);
}

static void image_row(struct csv *c, const struct data_cfg *d, const char *path, const float *f,
                      size_t count)
{
    cn_error ignored;
    int label;
    csv_field(c, path);
    csv_field(c, label_from_path(path, d->labels, d->classes, &label, &ignored) ? ""
                                                                                : d->labels[label]);
    for (size_t j = 0; j < count; j++)
        csv_fieldf(c, "%.9g", (double)f[j]);
    csv_end_row(c);
}

/* Rows for every image, FEATURES_BATCH at a time. */
static int extract(struct net *n, int layer, const struct inputs *in, const struct data_cfg *d,
                   struct csv *c, cn_error *e)
{
    const struct layer *l = &n->layers[layer];
    size_t count = inspect_feature_count(l);
    float *f = xmalloc(sizeof *f * count);
    header_row(c, count);
    int rc = 0;
    for (int first = 0; !rc && first < in->n; first += n->batch) {
        int k = CN_MIN(n->batch, in->n - first);
        for (int b = 0; !rc && b < k; b++)
            rc = cli_load_image(n, b, in->paths[first + b], e);
        if (rc)
            break;
        struct pass p;
        net_pass_init(n, &p, 0, 0);
        net_forward_upto(n, &p, layer);
        for (int b = 0; b < k; b++) {
            inspect_features(l, b, f);
            image_row(c, d, in->paths[first + b], f, count);
        }
    }
    free(f);
    return rc;
}

struct features_args {
    const char *out;
    long layer;
    int have_layer;
};

static int features_flags(struct features_args *a, int *argc, char **argv)
{
    a->out = cli_take_str(argc, argv, "-o");
    for (int i = 1; i < *argc; i++)
        a->have_layer |= !strcmp(argv[i], "-layer");
    if (cli_take_int(argc, argv, "-layer", -1000000, 1000000, 0, &a->layer) ||
        cli_no_flags_left(*argc, argv))
        return -1;
    if (*argc < 5 || !a->out || !a->have_layer) {
        fputs(features_usage, stderr);
        return -1;
    }
    return 0;
}

int cli_classifier_features(int argc, char **argv)
{
    struct features_args a = {0};
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        return fputs(features_usage, stdout), 0;
    if (features_flags(&a, &argc, argv))
        return 1;
    cn_error e;
    struct data_cfg *d = NULL;
    struct net *n = NULL;
    struct inputs in = {0};
    struct csv c = {0};
    int layer = 0, rc = data_cfg_load(&d, argv[1], &e);
    for (int i = 4; !rc && i < argc; i++)
        rc = inputs_add(&in, argv[i], &e);
    if (!rc)
        rc = inputs_check(&in, &e) ||
             cli_open_net(&n, argv[2], argv[3], CN_MIN(FEATURES_BATCH, in.n), &e) ||
             cli_layer_index(a.layer, n, &layer, &e) || net_check_live(n, layer, &e) ||
             extract(n, layer, &in, d, &c, &e) || csv_write(&c, a.out, &e);
    if (!rc)
        printf("%s: %d images, %zu features each from layer %d [%s]\n", a.out, in.n,
               inspect_feature_count(&n->layers[layer]), layer, n->layers[layer].ops->name);
    csv_free(&c);
    inputs_free(&in);
    net_destroy(n);
    data_cfg_destroy(d);
    return rc ? cli_error(e.msg) : 0;
}
