/* train_loader.c - is training fed by the loader as fast as training on a batch already in
 * memory? Builds the net of CFG (training mode) and its loader exactly as `net classifier train`
 * does ([net] workers, sampling, augmentation; 2 GiB cache), then times STEPS optimiser steps
 * (after WARM untimed warm-up steps, default 2; one epoch of them fills the decoded-image
 * cache, which is what every later epoch of a real run reads) in one of two modes:
 *   loader  - every step takes the next batch from the loader (loader_next), as train.c does;
 *   memory  - one batch is taken from the loader before timing, and every step trains on it
 *             again (no loader call inside the timed loop; the loader is destroyed first, so its
 *             workers neither run nor hold memory).
 * Everything else (forward, backward, optimiser) is the same code, so the ratio isolates what
 * feeding costs. Prints "img/s MODE N". Built and run by bench/train_loader.sh.
 *   train_loader DATA CFG MODE STEPS [WORKERS] [BATCH] [WARM]
 * (WORKERS/BATCH: -1 or absent = the cfg's) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/datafile.h"
#include "data/list.h"
#include "data/loader.h"
#include "net/lr.h"
#include "net/net.h"
#include "net/optimizer.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void step(struct net *n, struct optimizer *opt, uint64_t iter)
{
    struct pass p;
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    net_backward(n, &p);
    optimizer_step(opt, n, lr_at(&n->cfg, iter));
}

static int run(const char *data, const char *cfg, int memory, int steps, int workers, int batch,
               int warm, cn_error *e)
{
    struct data_cfg *d = NULL;
    struct image_list *l = NULL;
    struct net *n = NULL;
    struct optimizer *opt = NULL;
    struct loader *ld = NULL;
    int rc = -1;
    if (data_cfg_load(&d, data, e) || net_create(&n, cfg, batch > 0 ? batch : 0, NET_TRAIN, e) ||
        optimizer_create(&opt, n, e) ||
        image_list_load(&l, d->train, d->labels, d->classes, e))
        goto done;
    struct loader_opts o;
    loader_opts_default(&o, n->in.w, n->in.h, n->in.c, d->classes, n->cfg.seed);
    o.aug = n->cfg.input.aug;
    o.workers = workers >= 0 ? workers : n->cfg.input.workers;
    o.sampling = n->cfg.input.sampling;
    o.cache_bytes = (size_t)2 << 30;
    o.batch = n->batch;
    if (loader_open(&ld, l, &o, e))
        goto done;
    for (int i = 0; i < warm; i++) { /* warm-up: first batches, caches, allocations */
        if (loader_next(ld, n->input, n->truth, n->batch, e))
            goto done;
        step(n, opt, (uint64_t)i);
    }
    if (memory) {
        loader_destroy(ld);
        ld = NULL;
    }
    double t0 = now();
    for (int i = 0; i < steps; i++) {
        if (!memory && loader_next(ld, n->input, n->truth, n->batch, e))
            goto done;
        step(n, opt, (uint64_t)(i + warm));
    }
    double dt = now() - t0;
    printf("img/s %s %.2f  (%d steps of %d, %d workers, %.2f s)\n", memory ? "memory" : "loader",
           steps * (double)n->batch / dt, steps, n->batch, memory ? 0 : o.workers, dt);
    rc = 0;
done:
    loader_destroy(ld);
    optimizer_destroy(opt);
    net_destroy(n);
    image_list_destroy(l);
    data_cfg_destroy(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[3], "loader") && strcmp(argv[3], "memory"))) {
        fprintf(stderr,
                "usage: train_loader DATA CFG loader|memory STEPS [WORKERS] [BATCH] [WARM]\n");
        return 1;
    }
    cn_error e;
    if (run(argv[1], argv[2], !strcmp(argv[3], "memory"), atoi(argv[4]),
            argc > 5 ? atoi(argv[5]) : -1, argc > 6 ? atoi(argv[6]) : -1,
            argc > 7 && atoi(argv[7]) > 0 ? atoi(argv[7]) : 2, &e)) {
        fprintf(stderr, "train_loader: %s\n", e.msg);
        return 1;
    }
    return 0;
}
