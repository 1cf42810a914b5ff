/* evaluate.c - `net classifier valid` (top-1 and top-k over valid=) and `net classifier predict`
 * (top-k labels of single images). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/fileio.h"
#include "data/datafile.h"
#include "data/image.h"
#include "data/list.h"
#include "data/loader.h"
#include "net/lr.h"
#include "net/net.h"
#include "net/optimizer.h"
#include "net/weights.h"

struct eval {
    struct data_cfg *d;
    struct net *n;
    struct image_list *list;
    struct loader *ld;
};

static void eval_free(struct eval *v)
{
    loader_destroy(v->ld);
    image_list_destroy(v->list);
    net_destroy(v->n);
    data_cfg_destroy(v->d);
}

static int eval_setup(struct eval *v, const char *data, const char *cfg, const char *weights,
                      int batch, cn_error *e)
{
    return data_cfg_load(&v->d, data, e) || net_create(&v->n, cfg, batch, 0, e) ||
           cli_check_classes(v->d, v->n, data, e) || weights_load(v->n, weights, e);
}

static int valid_run(struct eval *v, cn_error *e)
{
    struct net *n = v->n;
    int classes = v->d->classes, k = v->d->top;
    if (image_list_load(&v->list, v->d->valid, v->d->labels, classes, e) ||
        loader_check_all(v->list, e) ||
        loader_create(&v->ld, v->list, n->in.w, n->in.h, n->in.c, classes, 0, 0, e))
        return -1;
    long hit1 = 0, hitk = 0;
    int *idx = xmalloc(sizeof *idx * (size_t)k);
    for (int first = 0; first < v->list->n; first += n->batch) {
        int count = CN_MIN(n->batch, v->list->n - first);
        if (loader_fill(v->ld, n->input, n->truth, first, count, e)) {
            free(idx);
            return -1;
        }
        struct pass p;
        net_pass_init(n, &p, 0, 0);
        net_forward(n, &p);
        for (int b = 0; b < count; b++) {
            const float *y = net_output(n) + (size_t)b * (size_t)classes;
            int label = v->list->labels[first + b];
            cli_top_k(idx, y, classes, k);
            hit1 += idx[0] == label;
            for (int j = 0; j < k; j++)
                hitk += idx[j] == label;
        }
    }
    free(idx);
    printf("%s: %d images, top-1 %.4f, top-%d %.4f\n", v->d->valid, v->list->n,
           (double)hit1 / v->list->n, k, (double)hitk / v->list->n);
    return 0;
}

int cli_classifier_valid(int argc, char **argv)
{
    long batch;
    if (cli_take_int(&argc, argv, "-batch", 1, 100000, 100, &batch) ||
        cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 4) {
        fputs(cli_classifier_usage, stderr);
        return 1;
    }
    struct eval v = {0};
    cn_error e;
    int rc = eval_setup(&v, argv[1], argv[2], argv[3], (int)batch, &e) || valid_run(&v, &e);
    eval_free(&v);
    return rc ? cli_error(e.msg) : 0;
}

static int predict_one(struct eval *v, const char *path, cn_error *e)
{
    struct net *n = v->n;
    if (image_load(n->input, path, n->in.w, n->in.h, n->in.c, e))
        return -1;
    struct pass p;
    double t0 = cli_now_seconds();
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    double ms = 1e3 * (cli_now_seconds() - t0);
    int k = v->d->top, idx[1024];
    cli_top_k(idx, net_output(n), v->d->classes, CN_MIN(k, 1024));
    printf("%s: predicted in %.2f ms\n", path, ms);
    for (int j = 0; j < k && j < 1024; j++)
        printf("%6.2f%%: %s\n", 100. * net_output(n)[idx[j]], v->d->names[idx[j]]);
    return 0;
}

int cli_classifier_predict(int argc, char **argv)
{
    if (cli_no_flags_left(argc, argv))
        return 1;
    if (argc < 5) {
        fputs(cli_classifier_usage, stderr);
        return 1;
    }
    struct eval v = {0};
    cn_error e;
    int rc = eval_setup(&v, argv[1], argv[2], argv[3], 1, &e);
    for (int i = 4; i < argc && !rc; i++)
        rc = predict_one(&v, argv[i], &e);
    eval_free(&v);
    return rc ? cli_error(e.msg) : 0;
}

