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
 * feeding costs. Warm-up steps after the first two only take batches (they fill the cache; no
 * training), so a cached-epoch run does not spend an epoch of training first. Prints
 * "img/s MODE N", the process CPU time per image (all threads: the loader's work shows here even
 * when the machine is shared), and the wall and CPU time of the training thread in loader_next
 * per step (with inline batches the CPU time is all the loader costs). Built and run by
 * bench/train_loader.sh.
 *   train_loader DATA CFG MODE STEPS [WORKERS] [BATCH] [WARM] [INLINE] [NICE] [IDLE]
 * (WORKERS/BATCH: -1 or absent = the cfg's; INLINE: loader_opts.plain_inline, NICE: worker_nice,
 * IDLE: worker_idle (0 nice only, 1 SCHED_IDLE, 2 adaptive), -1 or absent = the loader's
 * defaults). Also printed: the images the loader
 * decoded in the timed steps and the warm-up (loader_decoded), so a run says whether it decoded
 * (first epoch) or copied from the cache, and a second line splitting the CPU time per image by
 * thread (the training thread, which makes a batch itself rather than wait for it; the rest of
 * its OpenMP team; the loader's workers) with the core time the run left unused, cores x wall -
 * CPU (on a machine nobody else uses: the training's idle gaps, which the workers can fill
 * without slowing it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "data/datafile.h"
#include "data/list.h"
#include "data/loader.h"
#include "net/lr.h"
#include "net/net.h"
#include "net/optimizer.h"

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* Adds each OpenMP team thread's CPU time (seconds) to t[thread number], the calling thread
 * being 0; returns the team size (at most max). The same team runs the net's parallel loops. */
static int team_cpu(double *t, int max)
{
    int n = 1;
#pragma omp parallel
    {
        int k = omp_get_thread_num();
        if (k < max)
            t[k] += clock_s(CLOCK_THREAD_CPUTIME_ID);
#pragma omp single
        n = omp_get_num_threads();
    }
    return CN_MIN(n, max);
}

struct run_args {
    int memory, steps, workers, batch, warm, plain_inline, nice, idle;
};

static void step(struct net *n, struct optimizer *opt, uint64_t iter)
{
    struct pass p;
    net_pass_init(n, &p, 1, 1);
    net_forward(n, &p);
    net_backward(n, &p);
    optimizer_step(opt, n, lr_at(&n->cfg, iter));
}

static int run(const char *data, const char *cfg, const struct run_args *a, cn_error *e)
{
    int memory = a->memory, steps = a->steps, workers = a->workers, batch = a->batch;
    int warm = a->warm;
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
    if (a->plain_inline >= 0)
        o.plain_inline = a->plain_inline;
    if (a->nice >= 0)
        o.worker_nice = a->nice;
    if (a->idle >= 0)
        o.worker_idle = a->idle;
    if (loader_open(&ld, l, &o, e))
        goto done;
    for (int i = 0; i < warm; i++) { /* warm-up: first batches, caches, allocations */
        if (loader_next(ld, n->input, n->truth, n->batch, e))
            goto done;
        if (i < 2 || i == warm - 1)
            step(n, opt, (uint64_t)i);
    }
    if (memory) {
        loader_destroy(ld);
        ld = NULL;
    }
    int in = ld && loader_inline(ld);
    uint64_t dec0 = ld ? loader_decoded(ld) : 0;
    enum { MAXT = 64 };
    double team0[MAXT] = {0}, team1[MAXT] = {0};
    team_cpu(team0, MAXT);
    double t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), waited = 0, own = 0;
    for (int i = 0; i < steps; i++) {
        double w0 = now(), o0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        if (!memory && loader_next(ld, n->input, n->truth, n->batch, e))
            goto done;
        waited += now() - w0;
        own += clock_s(CLOCK_THREAD_CPUTIME_ID) - o0;
        step(n, opt, (uint64_t)(i + warm));
    }
    double dt = now() - t0, imgs = steps * (double)n->batch;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    int nt = team_cpu(team1, MAXT);
    double main_cpu = team1[0] - team0[0], rest_cpu = 0;
    for (int k = 1; k < nt; k++)
        rest_cpu += team1[k] - team0[k];
    double workers_cpu = CN_MAX(cpu - main_cpu - rest_cpu, 0.0); /* clock granularity: >= 0 */
    uint64_t dec = ld ? loader_decoded(ld) - dec0 : 0;
    printf("img/s %s %.2f  cpu_us/img %.1f  loader_next_ms/step %.3f (cpu %.3f)  (%d steps of %d, "
           "%d workers%s, nice %d%s, %.2f s, %llu decoded, %llu before)\n",
           memory ? "memory" : "loader", imgs / dt, 1e6 * cpu / imgs, 1e3 * waited / steps,
           1e3 * own / steps, steps,
           n->batch, memory ? 0 : o.workers, memory ? "" : in ? " sleeping, batches inline" : "",
           memory ? 0 : o.worker_nice, memory || !o.worker_idle ? "" : o.worker_idle == 2 ? " adaptive" : " idle", dt,
           (unsigned long long)dec, (unsigned long long)dec0);
    /* Where the CPU time went, per image: the training thread (loader_next included), the other
     * threads of its OpenMP team, the rest (the loader's workers); and the cores' time the
     * process left unused, 2 x wall - all of it on an otherwise idle 2-core machine (the gaps
     * the workers can fill without slowing the training). */
    printf("  cpu_us/img: main %.1f  team %.1f  workers %.1f  (%d-thread team; unused of "
           "%d cores x wall %.1f)\n",
           1e6 * main_cpu / imgs, 1e6 * rest_cpu / imgs, 1e6 * workers_cpu / imgs,
           nt, nt, 1e6 * ((double)nt * dt - cpu) / imgs);
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
                "usage: train_loader DATA CFG loader|memory STEPS [WORKERS] [BATCH] [WARM] "
                "[INLINE] [NICE] [IDLE]\n");
        return 1;
    }
    cn_error e;
    struct run_args a = {
        .memory = !strcmp(argv[3], "memory"),
        .steps = atoi(argv[4]),
        .workers = argc > 5 ? atoi(argv[5]) : -1,
        .batch = argc > 6 ? atoi(argv[6]) : -1,
        .warm = argc > 7 && atoi(argv[7]) > 0 ? atoi(argv[7]) : 2,
        .plain_inline = argc > 8 ? atoi(argv[8]) : -1,
        .nice = argc > 9 ? atoi(argv[9]) : -1,
        .idle = argc > 10 ? atoi(argv[10]) : -1,
    };
    if (run(argv[1], argv[2], &a, &e)) {
        fprintf(stderr, "train_loader: %s\n", e.msg);
        return 1;
    }
    return 0;
}
