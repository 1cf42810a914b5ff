/* classifier.c - `net classifier train|valid|predict`: the classification workflow over a .data
 * file (Darknet's classifier.c commands, with its argument order). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static const char classifier_usage[] =
    "usage: net classifier <train|valid|predict> DATA CFG [WEIGHTS] [args]\n"
    "\n"
    "  train   DATA CFG [WEIGHTS]   train on train=, checkpoints to backup=\n"
    "      -clear            start from iteration 0 (keep the loaded weights)\n"
    "      -seed N           override [net] seed= (initialisation, data order, dropout)\n"
    "      -print_every N    one progress line every N iterations (default 100)\n"
    "      -backup_every N   write <backup>/<cfg>.backup every N iterations (default 1000)\n"
    "  valid   DATA CFG WEIGHTS     top-1 and top-k (k = top= in DATA) on valid=\n"
    "      -batch N          images per forward pass (default 100)\n"
    "  predict DATA CFG WEIGHTS IMAGE...   top-k labels with probabilities\n";

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "cfg/lenet5.cfg" -> "lenet5" */
static void cfg_base(char *out, size_t n, const char *cfg)
{
    const char *slash = strrchr(cfg, '/');
    const char *b = slash ? slash + 1 : cfg;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

static int check_classes(const struct data_cfg *d, const struct net *n, const char *data_path,
                         cn_error *e)
{
    if (net_outputs(n) != (size_t)d->classes)
        return cn_fail(e, "%s: classes=%d but %s outputs %zu values per image", data_path,
                       d->classes, n->cfg_path, net_outputs(n));
    return 0;
}

struct train_opts {
    const char *data, *cfg, *weights;
    int clear, print_every, backup_every;
    long seed; /* -1: from the cfg */
};

struct trainer {
    struct train_opts o;
    struct data_cfg *d;
    struct image_list *list;
    struct net *n;
    struct loader *ld;
    struct optimizer *opt;
    char backup_path[4096], final_path[4096];
};

static void trainer_free(struct trainer *t)
{
    loader_destroy(t->ld);
    optimizer_destroy(t->opt);
    net_destroy(t->n);
    image_list_destroy(t->list);
    data_cfg_destroy(t->d);
}

static int trainer_paths(struct trainer *t, cn_error *e)
{
    char base[1024];
    cfg_base(base, sizeof base, t->o.cfg);
    const char *dir = t->d->backup;
    size_t len = strlen(dir);
    const char *sep = len && dir[len - 1] == '/' ? "" : "/";
    if (snprintf(t->backup_path, sizeof t->backup_path, "%s%s%s.backup", dir, sep, base) >=
            (int)sizeof t->backup_path ||
        snprintf(t->final_path, sizeof t->final_path, "%s%s%s.weights", dir, sep, base) >=
            (int)sizeof t->final_path)
        return cn_fail(e, "%s: backup path too long", t->o.data);
    return fileio_check_dir_writable(dir, e);
}

static int trainer_setup(struct trainer *t, cn_error *e)
{
    if (data_cfg_load(&t->d, t->o.data, e) || trainer_paths(t, e) ||
        net_create(&t->n, t->o.cfg, 0, 1, e) || check_classes(t->d, t->n, t->o.data, e))
        return -1;
    struct net *n = t->n;
    if (n->cfg.max_batches < 1)
        return cn_fail(e, "%s: [net] max_batches= must be set (>= 1) to train", t->o.cfg);
    if (t->o.seed >= 0) {
        n->cfg.seed = (uint64_t)t->o.seed;
        net_init_params(n, n->cfg.seed);
    }
    if (t->o.weights && weights_load(n, t->o.weights, e))
        return -1;
    if (t->o.clear)
        n->seen = 0;
    if (image_list_load(&t->list, t->d->train, t->d->labels, t->d->classes, e) ||
        loader_check_all(t->list, e))
        return -1;
    return loader_create(&t->ld, t->list, n->in.w, n->in.h, n->in.c, t->d->classes,
                         n->cfg.seed, (size_t)2 << 30, e) ||
           optimizer_create(&t->opt, n, e);
}

/* One optimiser step: subdivisions forward/backward passes, then the update. Returns the mean
 * loss per image. */
static int train_step(struct trainer *t, float lr, double *loss, cn_error *e)
{
    struct net *n = t->n;
    double sum = 0;
    for (int s = 0; s < n->cfg.subdivisions; s++) {
        if (loader_next(t->ld, n->input, n->truth, n->batch, e))
            return -1;
        struct pass p;
        net_pass_init(n, &p, 1, 1);
        net_forward(n, &p);
        net_backward(n, &p);
        sum += p.loss;
    }
    optimizer_step(t->opt, n, lr);
    n->seen += (uint64_t)n->cfg.batch;
    *loss = sum / n->cfg.batch;
    if (!isfinite(*loss))
        return cn_fail(e, "%s: the loss became %g at iteration %llu; lower learning_rate=",
                       t->o.cfg, *loss, (unsigned long long)(n->seen / (uint64_t)n->cfg.batch));
    return 0;
}

static int train_loop(struct trainer *t, cn_error *e)
{
    struct net *n = t->n;
    uint64_t iter = n->seen / (uint64_t)n->cfg.batch, max = (uint64_t)n->cfg.max_batches;
    double avg = -1, start = now_seconds(), last = start;
    uint64_t last_iter = iter;
    printf("%s: training %s from iteration %llu to %llu, %d images per step, %d classes\n",
           t->o.cfg, t->d->train, (unsigned long long)iter, (unsigned long long)max,
           n->cfg.batch, t->d->classes);
    while (iter < max) {
        float lr = lr_at(&n->cfg, iter);
        double loss;
        if (train_step(t, lr, &loss, e))
            return -1;
        iter++;
        avg = avg < 0 ? loss : .9 * avg + .1 * loss;
        if (iter % (uint64_t)t->o.print_every == 0 || iter == max) {
            double tnow = now_seconds();
            double ips = (double)(iter - last_iter) * n->cfg.batch / (tnow - last);
            printf("%llu/%llu: epoch %.2f, loss %.4f, avg %.4f, rate %g, %.0f img/s, %.1f s\n",
                   (unsigned long long)iter, (unsigned long long)max,
                   (double)n->seen / t->list->n, loss, avg, lr, ips, tnow - start);
            fflush(stdout);
            last = tnow;
            last_iter = iter;
        }
        if (iter % (uint64_t)t->o.backup_every == 0 && weights_save(n, t->backup_path, e))
            return -1;
    }
    if (weights_save(n, t->final_path, e))
        return -1;
    printf("saved %s after %.1f s\n", t->final_path, now_seconds() - start);
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    struct trainer t = {0};
    long pe, be;
    t.o.clear = cli_take_flag(&argc, argv, "-clear");
    if (cli_take_int(&argc, argv, "-seed", 0, 2147483647, -1, &t.o.seed) ||
        cli_take_int(&argc, argv, "-print_every", 1, 1000000000, 100, &pe) ||
        cli_take_int(&argc, argv, "-backup_every", 1, 1000000000, 1000, &be) ||
        cli_no_flags_left(argc, argv))
        return 1;
    if (argc < 3 || argc > 4) {
        fputs(classifier_usage, stderr);
        return 1;
    }
    t.o.print_every = (int)pe;
    t.o.backup_every = (int)be;
    t.o.data = argv[1];
    t.o.cfg = argv[2];
    t.o.weights = argc == 4 ? argv[3] : NULL;
    cn_error e;
    int rc = trainer_setup(&t, &e) || train_loop(&t, &e);
    trainer_free(&t);
    return rc ? cli_error(e.msg) : 0;
}

/* Ranks of the k largest of v[0..n) into idx, best first. */
static void top_k(int *idx, const float *v, int n, int k)
{
    for (int j = 0; j < k; j++)
        idx[j] = -1;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < k; j++) {
            if (idx[j] < 0 || v[i] > v[idx[j]]) {
                memmove(idx + j + 1, idx + j, sizeof *idx * (size_t)(k - j - 1));
                idx[j] = i;
                break;
            }
        }
    }
}

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
           check_classes(v->d, v->n, data, e) || weights_load(v->n, weights, e);
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
            top_k(idx, y, classes, k);
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

static int cmd_valid(int argc, char **argv)
{
    long batch;
    if (cli_take_int(&argc, argv, "-batch", 1, 100000, 100, &batch) ||
        cli_no_flags_left(argc, argv))
        return 1;
    if (argc != 4) {
        fputs(classifier_usage, stderr);
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
    double t0 = now_seconds();
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    double ms = 1e3 * (now_seconds() - t0);
    int k = v->d->top, idx[1024];
    top_k(idx, net_output(n), v->d->classes, CN_MIN(k, 1024));
    printf("%s: predicted in %.2f ms\n", path, ms);
    for (int j = 0; j < k && j < 1024; j++)
        printf("%6.2f%%: %s\n", 100. * net_output(n)[idx[j]], v->d->names[idx[j]]);
    return 0;
}

static int cmd_predict(int argc, char **argv)
{
    if (cli_no_flags_left(argc, argv))
        return 1;
    if (argc < 5) {
        fputs(classifier_usage, stderr);
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

int cli_classifier(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "valid"))
        return cmd_valid(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "predict"))
        return cmd_predict(argc - 1, argv + 1);
    int help = argc >= 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "-h"));
    fputs(classifier_usage, help ? stdout : stderr);
    if (argc >= 2 && !help)
        fprintf(stderr, "net: unknown classifier command '%s'\n", argv[1]);
    return help ? 0 : 1;
}
