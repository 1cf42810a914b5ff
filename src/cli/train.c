/* train.c - `net classifier train`: builds the net, loader and optimiser, runs the optimiser steps,
 * prints progress and writes checkpoints. */
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
    cli_cfg_base(base, sizeof base, t->o.cfg);
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
        net_create(&t->n, t->o.cfg, 0, 1, e) || cli_check_classes(t->d, t->n, t->o.data, e))
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
    double avg = -1, start = cli_now_seconds(), last = start;
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
            double tnow = cli_now_seconds();
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
    printf("saved %s after %.1f s\n", t->final_path, cli_now_seconds() - start);
    return 0;
}

int cli_classifier_train(int argc, char **argv)
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
        fputs(cli_classifier_usage, stderr);
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

