/* evaluate.c - `net classifier valid` (top-1, top-k, per-class figures and a confusion matrix over
 * valid=) and `net classifier predict` (top-k labels of images, lists of images or directories).
 *
 * One preprocessing for both (Darknet's valid and predict resize differently, and users get
 * different answers for the same image): every image goes through views_load (data/views.h).
 * By default that is one view: the image resized, aspect ratio kept, so that it covers the net
 * input, then the centre W x H crop; an image of the input's aspect (all of Fashion-MNIST) is
 * simply resized to W x H, as the training loader does. -crops 2|5|10 adds the mirror, the four
 * corners, or both, cut from the image resized to -scale times the input (default 1 for 2 crops;
 * 256/224 for 5 and 10, the ImageNet protocol's 224 crops of a 256 resize, for Fashion-MNIST
 * 28x28 crops of a 32x32 resize); -scales lists several resize sizes (shorter side, pixels);
 * -pad P cuts them from the input-size image zero-padded by P instead (no resize: the views of
 * pad_crop= training, the CIFAR protocol for small images). Several models (-ensemble) each see the
 * same views at their own input size. Probabilities are averaged over views, then over models
 * with the given weights (net/ensemble.h).
 *
 * valid= may be any image set data/list.h reads (list, directory tree, IDX file: its gray pixels
 * go through the same views). Each model's [net] mean=/std= is applied, as in training.
 *
 * CSV files (-o) are built in memory and written atomically when everything has succeeded, so a
 * failed run leaves no file (or the previous one) behind. Labels in CSV are label= ids; the
 * printed tables use names=.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/evalopts.h"
#include "core/csv.h"
#include "core/fileio.h"
#include "data/datafile.h"
#include "data/inputs.h"
#include "data/list.h"
#include "data/loader.h"
#include "net/ensemble.h"
#include "net/metrics.h"

#define MATRIX_MAX_PRINTED 30 /* classes; larger matrices only go to -o */
#define NAME_WIDTH 16

struct eval {
    struct eval_opts o;
    struct data_cfg *d;
    struct ensemble en;
    int k; /* top-k */
};

static void eval_free(struct eval *v)
{
    ensemble_free(&v->en);
    data_cfg_destroy(v->d);
}

/* -o FILE must be writable: checked before the run, not after it. */
static int out_check(const char *out, cn_error *e)
{
    struct stat st;
    if (!stat(out, &st) && S_ISDIR(st.st_mode))
        return cn_fail(e, "-o %s: is a directory", out);
    char dir[4096];
    if (strlen(out) >= sizeof dir)
        return cn_fail(e, "-o %s: path too long", out);
    const char *slash = strrchr(out, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == out)
        strcpy(dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
    return fileio_check_dir_writable(dir, e) ? cn_wrap(e, "-o %s", out) : 0;
}

/* Reads DATA and checks -top and -o. */
static int eval_data(struct eval *v, const char *data, cn_error *e)
{
    if (data_cfg_load(&v->d, data, e))
        return -1;
    v->k = v->o.top ? (int)v->o.top : v->d->top;
    if (v->k > v->d->classes)
        return cn_fail(e, "-top %d: %s has only %d classes", v->k, data, v->d->classes);
    return v->o.out ? out_check(v->o.out, e) : 0;
}

/* Builds every model, with as many views per pass as nimages need (at most -batch). */
static int eval_models(struct eval *v, const char *data, int nimages, cn_error *e)
{
    long need = (long)views_count(&v->o.views) * nimages;
    ensemble_init(&v->en, &v->o.views, (int)CN_MAX(1, CN_MIN(v->o.batch, need)));
    char what[600];
    snprintf(what, sizeof what, "%s has classes=%d", data, v->d->classes);
    ensemble_require_classes(&v->en, v->d->classes, what);
    for (int i = 0; i < v->o.nmodels; i++) {
        const struct eval_model *m = &v->o.model[i];
        if (ensemble_add(&v->en, m->cfg, m->weights, m->weight, e))
            return -1;
    }
    return cli_check_classes(v->d, v->en.m[0].n, data, e);
}

static void print_views(const struct eval *v)
{
    const struct view_spec *s = &v->o.views;
    printf("views: %d crop%s at %s ", s->crops, s->crops > 1 ? "s" : "",
           s->pixels ? "shorter side" : "scale");
    for (int i = 0; i < s->nscales; i++)
        printf("%s%g", i ? "," : "", (double)s->scale[i]);
    printf("%s", s->pixels ? " px" : "");
    if (s->pad)
        printf(", padded by %d px of 0", s->pad);
    printf("; %d model%s", v->en.n, v->en.n > 1 ? "s" : "");
    for (int i = 0; i < v->en.n && v->en.n > 1; i++)
        printf("%s%g", i ? "," : " weighted ", v->en.m[i].weight);
    printf("\n");
}

/* A ratio for a table: "-" when undefined. */
static void print_ratio(double r, int width)
{
    if (isnan(r))
        printf(" %*s", width, "-");
    else
        printf(" %*.4f", width, r);
}

static void print_classes(const struct eval *v, const struct confusion *cm)
{
    printf("per class (accuracy = top-1 on the class's images = recall):\n");
    printf("%-*s %7s %9s %8s %7s%-2d %9s %7s\n", NAME_WIDTH, "class", "images", "predicted",
           "accuracy", "top-", v->k, "precision", "F1");
    for (int i = 0; i < cm->classes; i++) {
        struct class_stats s;
        confusion_class(cm, i, &s);
        printf("%-*.*s %7ld %9ld", NAME_WIDTH, NAME_WIDTH, v->d->names[i], s.images, s.predicted);
        print_ratio(s.recall, 8);
        print_ratio(s.topk_recall, 9);
        print_ratio(s.precision, 9);
        print_ratio(s.f1, 7);
        printf("\n");
    }
}

static void print_matrix(const struct eval *v, const struct confusion *cm)
{
    int n = cm->classes;
    if (n > MATRIX_MAX_PRINTED) {
        printf("confusion matrix: %dx%d, not printed (more than %d classes); -o FILE.csv writes "
               "it\n",
               n, n, MATRIX_MAX_PRINTED);
        return;
    }
    long most = 1;
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++)
        most = CN_MAX(most, cm->count[i]);
    int w = CN_MAX(snprintf(NULL, 0, "%ld", most), snprintf(NULL, 0, "%d", n - 1)) + 1;
    printf("confusion matrix (rows: true class, columns: predicted class, by index):\n");
    printf("%*s", NAME_WIDTH + 4, "");
    for (int j = 0; j < n; j++)
        printf("%*d", w, j);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%3d %-*.*s", i, NAME_WIDTH, NAME_WIDTH, v->d->names[i]);
        for (int j = 0; j < n; j++)
            printf("%*ld", w, cm->count[(size_t)i * (size_t)n + (size_t)j]);
        printf("\n");
    }
}

static void csv_ratio(struct csv *c, double r)
{
    if (isnan(r))
        csv_field(c, "");
    else
        csv_fieldf(c, "%.6f", r);
}

/* Rows: true class; columns: predicted class, then the per-class figures. */
static void matrix_csv(struct csv *c, const struct eval *v, const struct confusion *cm)
{
    int n = cm->classes;
    csv_field(c, "truth\\predicted");
    for (int j = 0; j < n; j++)
        csv_field(c, v->d->labels[j]);
    csv_field(c, "images");
    csv_field(c, "predicted");
    csv_field(c, "accuracy");
    csv_fieldf(c, "top_%d", v->k);
    csv_field(c, "precision");
    csv_field(c, "f1");
    csv_end_row(c);
    for (int i = 0; i < n; i++) {
        struct class_stats s;
        confusion_class(cm, i, &s);
        csv_field(c, v->d->labels[i]);
        for (int j = 0; j < n; j++)
            csv_fieldf(c, "%ld", cm->count[(size_t)i * (size_t)n + (size_t)j]);
        csv_fieldf(c, "%ld", s.images);
        csv_fieldf(c, "%ld", s.predicted);
        csv_ratio(c, s.recall);
        csv_ratio(c, s.topk_recall);
        csv_ratio(c, s.precision);
        csv_ratio(c, s.f1);
        csv_end_row(c);
    }
}

/* Predicts every image of the list into cm. */
static int valid_run(struct eval *v, const struct image_list *l, struct confusion *cm, cn_error *e)
{
    int g = v->en.group, classes = v->en.classes;
    float *probs = xmalloc(sizeof *probs * (size_t)g * (size_t)classes);
    int rc = 0;
    for (int first = 0; first < l->n && !rc; first += g) {
        int count = CN_MIN(g, l->n - first);
        struct ensemble_images im = {.paths = l->paths + first};
        if (l->pixels) /* an IDX set: gray images in memory */
            im = (struct ensemble_images){l->paths + first,
                                          l->pixels + (size_t)first * (size_t)l->pw * (size_t)l->ph,
                                          l->pw, l->ph};
        rc = ensemble_predict_images(&v->en, probs, &im, count, e);
        for (int b = 0; b < count && !rc; b++)
            confusion_add(cm, probs + (size_t)b * (size_t)classes, l->labels[first + b]);
    }
    free(probs);
    return rc;
}

static int valid_report(struct eval *v, const struct confusion *cm, cn_error *e)
{
    printf("%s: %ld images, top-1 %.4f, top-%d %.4f\n", v->d->valid, cm->total, confusion_top1(cm),
           v->k, confusion_topk(cm));
    print_classes(v, cm);
    print_matrix(v, cm);
    if (!v->o.out)
        return 0;
    struct csv c = {0};
    matrix_csv(&c, v, cm);
    int rc = csv_write(&c, v->o.out, e);
    csv_free(&c);
    if (!rc)
        printf("confusion matrix written to %s\n", v->o.out);
    return rc;
}

static int valid_main(struct eval *v, const char *data, cn_error *e)
{
    struct image_list *l = NULL;
    struct confusion *cm = NULL;
    int rc = eval_data(v, data, e) ||
             image_list_load(&l, v->d->valid, v->d->labels, v->d->classes, e) ||
             loader_check_all(l, e) || eval_models(v, data, l->n, e) ||
             confusion_create(&cm, v->d->classes, v->k, e);
    if (!rc) {
        print_views(v);
        rc = valid_run(v, l, cm, e) || valid_report(v, cm, e);
    }
    confusion_destroy(cm);
    image_list_destroy(l);
    return rc;
}

int cli_classifier_valid(int argc, char **argv)
{
    struct eval v = {0};
    if (evalopts_take(&v.o, &argc, argv) || cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 4) {
        fputs(cli_classifier_usage, stderr);
        return 1;
    }
    v.o.model[0].cfg = argv[2];
    v.o.model[0].weights = argv[3];
    cn_error e;
    int rc = valid_main(&v, argv[1], &e);
    eval_free(&v);
    return rc ? cli_error(e.msg) : 0;
}

/* Prints the top-k of the image at path (probabilities p) and adds its CSV row. */
static void predict_show(const struct eval *v, struct csv *c, const char *path, const float *p)
{
    int k = v->k, *idx = xmalloc(sizeof *idx * (size_t)k);
    metrics_top_k(idx, p, v->en.classes, k);
    printf("%s:\n", path);
    for (int j = 0; j < k; j++)
        printf("%6.2f%%: %s\n", 100. * p[idx[j]], v->d->names[idx[j]]);
    csv_field(c, path);
    for (int j = 0; j < k; j++) {
        csv_field(c, v->d->labels[idx[j]]);
        csv_fieldf(c, "%.6f", (double)p[idx[j]]);
    }
    csv_end_row(c);
    free(idx);
}

static void predict_header(struct csv *c, int k)
{
    csv_field(c, "path");
    for (int j = 1; j <= k; j++) {
        csv_fieldf(c, "label_%d", j);
        csv_fieldf(c, "p_%d", j);
    }
    csv_end_row(c);
}

static int predict_run(struct eval *v, const struct inputs *in, cn_error *e)
{
    int g = v->en.group, classes = v->en.classes, rc = 0;
    float *probs = xmalloc(sizeof *probs * (size_t)g * (size_t)classes);
    struct csv c = {0};
    predict_header(&c, v->k);
    double t0 = cli_now_seconds();
    for (int first = 0; first < in->n && !rc; first += g) {
        int count = CN_MIN(g, in->n - first);
        rc = ensemble_predict(&v->en, probs, in->paths + first, count, e);
        for (int b = 0; b < count && !rc; b++)
            predict_show(v, &c, in->paths[first + b], probs + (size_t)b * (size_t)classes);
    }
    double ms = 1e3 * (cli_now_seconds() - t0);
    if (!rc)
        printf("predicted %d image%s in %.2f ms (%.2f ms per image)\n", in->n, in->n > 1 ? "s" : "",
               ms, ms / in->n);
    if (!rc && v->o.out && !(rc = csv_write(&c, v->o.out, e)))
        printf("predictions written to %s\n", v->o.out);
    csv_free(&c);
    free(probs);
    return rc;
}

int cli_classifier_predict(int argc, char **argv)
{
    struct eval v = {0};
    if (evalopts_take(&v.o, &argc, argv) || cli_no_flags_left(argc, argv))
        return 1;
    if (argc < 5) {
        fputs(cli_classifier_usage, stderr);
        return 1;
    }
    v.o.model[0].cfg = argv[2];
    v.o.model[0].weights = argv[3];
    struct inputs in = {0};
    cn_error e;
    int rc = 0;
    for (int i = 4; i < argc && !rc; i++)
        rc = inputs_add(&in, argv[i], &e);
    rc = rc || inputs_check(&in, &e) || eval_data(&v, argv[1], &e) ||
         eval_models(&v, argv[1], in.n, &e);
    if (!rc) {
        if (views_count(&v.o.views) > 1 || v.en.n > 1)
            print_views(&v);
        rc = predict_run(&v, &in, &e);
    }
    inputs_free(&in);
    eval_free(&v);
    return rc ? cli_error(e.msg) : 0;
}
