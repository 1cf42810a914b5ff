/* train.c - `net classifier train`: builds the net, loader and optimiser, runs the optimiser steps,
 * shows progress, validates, logs, and writes checkpoints; resumes exactly from one.
 *
 * Files in the .data file's backup= directory, for cfg/<base>.cfg (net/checkpoint.h):
 *   <base>_last.weights    every -backup_every iterations, on -stop_after, and on SIGINT/SIGTERM
 *   <base>_<iter>.weights  every -snapshot_every iterations; -keep K keeps the newest K
 *   <base>_final.weights and <base>.weights at the end
 *   each with a .state side file (optimiser state, dropout RNG, data seed), and
 *   <base>.csv and <base>.svg, the training log and its chart (net/trainlog.h), rewritten at
 *   every checkpoint, validation and at most every LOG_SECONDS otherwise.
 *
 * Validation (valid_every= in [net] or -valid_every) runs the training net itself in inference
 * mode on valid= (loader_fill, in list order): it reads no random numbers and changes nothing a
 * later step reads (activations are rewritten by the next forward; parameter gradients are zero
 * between steps), so validating leaves the training trajectory bit for bit as it was
 * (test/test_train.c checks this).
 *
 * Signals: the one mutable global of cfgnet is stop_signal below. A signal handler can only
 * communicate through a volatile sig_atomic_t with static storage (C11 7.14.1.1), so there is
 * no way to pass it state. The first SIGINT or SIGTERM asks the loop to finish its batch, write
 * <base>_last.weights and exit with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM);
 * a second one _exit()s at once, before any further file is replaced.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/fileio.h"
#include "core/strbuf.h"
#include "data/datafile.h"
#include "data/image.h"
#include "data/list.h"
#include "data/loader.h"
#include "cfg/cfg.h"
#include "net/checkpoint.h"
#include "net/ddp.h"
#include "net/dist.h"
#include "net/lr.h"
#include "net/metrics.h"
#include "net/net.h"
#include "net/netcfg.h"
#include "net/optimizer.h"
#include "net/trainlog.h"
#include "net/weights.h"

#define LOG_SECONDS 10.0    /* CSV and SVG rewritten at least this often while rows arrive */
#define LIVE_SECONDS 0.1    /* the terminal's progress line is redrawn at most this often */
#define VALID_FROM_CFG (-2) /* -valid_every not given */

static volatile sig_atomic_t stop_signal;

/* Only async-signal-safe calls here: write(2) and _exit(2). */
static void on_signal(int sig)
{
    static const char first[] = "\nnet: signal received: finishing the batch, then writing a "
                                "checkpoint (a second signal exits at once)\n";
    static const char second[] = "\nnet: second signal: exiting now, the last checkpoint is kept\n";
    ssize_t w;
    if (stop_signal) {
        w = write(STDERR_FILENO, second, sizeof second - 1);
        (void)w;
        _exit(128 + sig);
    }
    stop_signal = sig;
    w = write(STDERR_FILENO, first, sizeof first - 1);
    (void)w;
}

struct train_opts {
    const char *data, *cfg, *weights;
    const char *weights_cfg; /* -weights_cfg: the cfg WEIGHTS was written for (transfer) */
    long freeze;             /* -freeze N: the first N layers */
    int clear, print_every, backup_every, snapshot_every, keep, valid_every;
    long stop_after; /* 0: run to max_batches */
    long seed;       /* -1: from the cfg */
    long workers;    /* loader threads; -1: [net] workers= */
    long check_every; /* ranks compare a parameter checksum every N iterations; 0 never */
    long mpi_timeout; /* seconds any rank may wait for the others (the watchdog) */
};

struct progress {
    double start, last_t, last_log;
    uint64_t start_iter, last_iter;
    double avg; /* moving average of the loss, < 0 before the first step */
    int tty;
};

struct trainer {
    struct train_opts o;
    struct data_cfg *d;
    struct image_list *list, *vlist;
    struct net *n;
    struct loader *ld, *vld;
    struct optimizer *opt;
    struct trainlog log;
    struct progress pr;
    uint64_t seed;
    char *base, *last, *final, *plain, *csv, *svg;
    struct dist *dist; /* the ranks (net/dist.h): one without mpirun */
    struct ddp *g;  /* gradient buckets */
    cn_rng drop;    /* several ranks: this rank's dropout stream for the step (rank_rng) */
    int ranks, root; /* dist_size; 1 on rank 0, which alone writes files and prints */
    int stop_sig;    /* the signal any rank received, agreed at the end of each step */
    double comm_wait; /* seconds waited for gradient sums after backward */
    /* The command line's flags that a resumed run takes again (resume_flags): pointers into
     * argv, nflags of them, in the order given. */
    char **flags;
    int nflags;
};

static void trainer_free(struct trainer *t)
{
    loader_destroy(t->ld);
    loader_destroy(t->vld);
    optimizer_destroy(t->opt);
    ddp_destroy(t->g);
    net_destroy(t->n);
    image_list_destroy(t->list);
    image_list_destroy(t->vlist);
    data_cfg_destroy(t->d);
    trainlog_free(&t->log);
    free(t->base);
    free(t->last);
    free(t->final);
    free(t->plain);
    free(t->csv);
    free(t->svg);
    free(t->flags);
}

/* "cfg/lenet5.cfg" -> "lenet5", malloc'd. */
static char *cfg_base(const char *cfg)
{
    const char *slash = strrchr(cfg, '/');
    char *b = xstrdup(slash ? slash + 1 : cfg);
    char *dot = strrchr(b, '.');
    if (dot && dot != b)
        *dot = '\0';
    return b;
}

static int trainer_paths(struct trainer *t, cn_error *e)
{
    const char *dir = t->d->backup;
    t->base = cfg_base(t->o.cfg);
    t->last = checkpoint_name(dir, t->base, "_last.weights");
    t->final = checkpoint_name(dir, t->base, "_final.weights");
    t->plain = checkpoint_name(dir, t->base, ".weights");
    t->csv = checkpoint_name(dir, t->base, ".csv");
    t->svg = checkpoint_name(dir, t->base, ".svg");
    return t->root ? fileio_check_dir_writable(dir, e) : 0;
}

/* Loads the weights to resume from and, unless -clear, the optimiser state beside them. */
static int trainer_resume(struct trainer *t, cn_error *e)
{
    struct net *n = t->n;
    if (!t->o.weights)
        return 0;
    int transferred;
    if (cli_train_weights(n, t->o.weights, t->o.weights_cfg, &transferred, e))
        return -1;
    if (t->o.clear || transferred) {
        n->seen = 0;
        return 0;
    }
    int restored;
    if (checkpoint_load_state(n, t->opt, t->seed, t->o.weights, &restored, e))
        return -1;
    if (!restored && n->seen)
        printf("%s: no %s%s beside it: the optimiser state starts from zero\n", t->o.weights,
               t->o.weights, CHECKPOINT_STATE_SUFFIX);
    return 0;
}

/* Positions the data stream where the run being resumed left it. A rank's stream counts its
 * own samples, 1/ranks of the global ones (whatever the number of ranks of the earlier run). */
static int trainer_seek(struct trainer *t, cn_error *e)
{
    uint64_t seen = t->n->seen, B = (uint64_t)t->n->cfg.batch;
    if (t->ranks > 1 && seen % B)
        return cn_fail(e,
                       "%s: resuming at %llu images, not a whole number of batch=%d steps: "
                       "cannot be split over %d ranks (resume on one, or -clear)",
                       t->o.cfg, (unsigned long long)seen, (int)B, t->ranks);
    return seen ? loader_seek(t->ld, seen / (uint64_t)t->ranks, e) : 0;
}

static int valid_every(const struct trainer *t)
{
    return t->o.valid_every == VALID_FROM_CFG ? t->n->cfg.valid_every : t->o.valid_every;
}

/* The training stream (train: [net] workers, sampling, augmentation, class_weights, batch) or
 * the validation loader (the same mean/std and class weights, no threads, no cache). */
static int trainer_loader(struct trainer *t, const struct image_list *l, int train,
                          struct loader **out, cn_error *e)
{
    const struct net *n = t->n;
    struct loader_opts o;
    loader_opts_default(&o, n->in.w, n->in.h, n->in.c, t->d->classes, train ? t->seed : 0);
    o.aug = n->cfg.input.aug;
    o.class_weights = t->d->class_weights;
    if (train) {
        o.workers = t->o.workers >= 0 ? (int)t->o.workers : n->cfg.input.workers;
        o.sampling = n->cfg.input.sampling;
        o.cache_bytes = (size_t)2 << 30;
        o.batch = n->batch;
        o.shards = t->ranks;
        o.shard = dist_rank(t->dist);
        o.shard_batch = n->cfg.batch / t->ranks;
    }
    return loader_open(out, l, &o, e);
}

static int trainer_valid_setup(struct trainer *t, cn_error *e)
{
    if (!valid_every(t))
        return 0;
    if (!t->d->valid)
        return cn_fail(e, "%s: validation during training (valid_every) needs valid= in %s",
                       t->o.cfg, t->o.data);
    return image_list_load(&t->vlist, t->d->valid, t->d->labels, t->d->classes, e) ||
           loader_check_all(t->vlist, e) || trainer_loader(t, t->vlist, 0, &t->vld, e);
}

/* The images per forward pass of each rank: batch= / ranks / subdivisions= (0 on one rank: the
 * net's own batch/subdivisions). batch= stays the global batch. */
static int rank_batch(const struct trainer *t, int *per_pass, cn_error *e)
{
    *per_pass = 0;
    if (t->ranks == 1)
        return 0;
    struct cfg_file *f;
    struct net_config c;
    if (cfg_read_file(&f, t->o.cfg, CFG_SECTIONS, e))
        return -1;
    int rc = f->nsec ? net_config_parse(&c, &f->sec[0], e) : cn_fail(e, "%s: empty", t->o.cfg);
    cfg_destroy(f);
    if (rc)
        return -1;
    int B = c.batch, S = c.subdivisions, N = t->ranks;
    net_config_free(&c);
    if (B % N)
        return cn_fail(e, "%s: [net] batch=%d is not divisible by the %d ranks (batch= is the "
                          "global batch: each rank takes batch/%d)",
                       t->o.cfg, B, N, N);
    if ((B / N) % S)
        return cn_fail(e, "%s: [net] batch=%d on %d ranks is %d images per rank, not divisible "
                          "by subdivisions=%d",
                       t->o.cfg, B, N, B / N, S);
    *per_pass = B / N / S;
    return 0;
}

/* The dropout stream of a step. One process draws from the net's own (checkpointed) stream.
 * With several ranks each needs masks of its own, but the state a checkpoint holds must be
 * the same on every rank (rank 0 writes it, every rank resumes from it): so the net's stream
 * advances by one draw per step on every rank alike, and rank r's masks come from the
 * stream (that draw, r). A resumed run then draws what the uninterrupted one drew, on any
 * number of ranks for the same number. */
static cn_rng *rank_rng(struct trainer *t)
{
    if (t->ranks == 1)
        return &t->n->rng;
    cn_rng_seed_stream(&t->drop, cn_rng_next(&t->n->rng), (uint64_t)dist_rank(t->dist));
    return &t->drop;
}

static int trainer_setup(struct trainer *t, cn_error *e)
{
    int per_pass;
    if (data_cfg_load(&t->d, t->o.data, e) || trainer_paths(t, e) || rank_batch(t, &per_pass, e) ||
        net_create(&t->n, t->o.cfg, per_pass,
                   NET_TRAIN | NET_FREEZE(CN_MIN(t->o.freeze, NET_FREEZE_MAX)), e) ||
        cli_check_classes(t->d, t->n, t->o.data, e))
        return -1;
    struct net *n = t->n;
    if (n->cfg.max_batches < 1)
        return cn_fail(e, "%s: [net] max_batches= must be set (>= 1) to train", t->o.cfg);
    if (t->o.seed >= 0) {
        n->cfg.seed = (uint64_t)t->o.seed;
        net_init_params(n, n->cfg.seed);
    }
    t->seed = n->cfg.seed;
    if (cli_train_freeze(n, t->o.freeze, e) || optimizer_create(&t->opt, n, e) ||
        trainer_resume(t, e) ||
        image_list_load(&t->list, t->d->train, t->d->labels, t->d->classes, e) ||
        loader_check_all(t->list, e) || trainer_valid_setup(t, e) ||
        ddp_create(&t->g, n, t->dist, DDP_BUCKET_BYTES, e))
        return -1;
    return trainer_loader(t, t->list, 1, &t->ld, e) || trainer_seek(t, e);
}

/* After a non-finite loss: the first layer whose output holds a NaN or an infinity (of those
 * kept after forward: a fwd_only output's memory holds a later layer's by then). */
static void name_nonfinite(const struct trainer *t, double loss, int sub, cn_error *e)
{
    const struct net *n = t->n;
    uint64_t iter = n->seen / (uint64_t)n->cfg.batch + 1;
    for (int i = 0; i < n->n; i++) {
        const struct layer *l = &n->layers[i];
        if (n->fwd_only[i])
            continue;
        size_t count = shape_size(l->out) * (size_t)n->batch;
        for (size_t j = 0; j < count; j++) {
            if (isfinite(l->output[j]))
                continue;
            cn_fail(e,
                    "%s: the loss became %g at iteration %llu (pass %d of %d); the first "
                    "non-finite value is output %zu of layer %d [%s] (line %d); stopped without "
                    "updating: the last checkpoint is kept; try a lower learning_rate=",
                    t->o.cfg, loss, (unsigned long long)iter, sub + 1, n->cfg.subdivisions, j, i,
                    l->ops->name, l->line);
            return;
        }
    }
    cn_fail(e,
            "%s: the loss became %g at iteration %llu (pass %d of %d), with every layer output "
            "finite (in the loss itself); stopped without updating: the last checkpoint is kept",
            t->o.cfg, loss, (unsigned long long)iter, sub + 1, n->cfg.subdivisions);
}

/* The loss layer's output (a NaN there can hide behind a finite loss: fmax(NaN, floor) is the
 * floor). Cheap: classes values per image. */
static int outputs_finite(const struct net *n)
{
    const float *y = net_output(n);
    size_t count = net_outputs(n) * (size_t)n->batch;
    for (size_t j = 0; j < count; j++)
        if (!isfinite(y[j]))
            return 0;
    return 1;
}

/* After the update: the loss summed over the ranks and whether any rank received a signal,
 * in one reduction, so that every rank stops at the same iteration. */
static int agree(struct trainer *t, double *sum, cn_error *e)
{
    double x[2] = {*sum, stop_signal ? 1.0 : 0.0};
    if (dist_sum_doubles(t->dist, x, 2, "loss reduction", e))
        return -1;
    *sum = x[0];
    t->stop_sig = stop_signal ? stop_signal : x[1] > 0 ? SIGTERM : 0;
    return 0;
}

/* Prints, once each, the images the loader found undecodable and skipped (on a terminal, over
 * the live line); their count stays in the progress line. */
static void warn_skipped(const struct trainer *t)
{
    cn_error w;
    while (loader_warning(t->ld, &w))
        fprintf(stderr, "%snet: warning: %s\n", t->pr.tty ? "\r\033[K" : "", w.msg);
}

/* One optimiser step: subdivisions forward/backward passes, the gradient sums across ranks
 * (started during the last backward), then the update. Returns the mean loss per image of the
 * global batch. A non-finite loss stops before the update. Each rank's loss_scale is 1/batch=
 * (the global batch), so the sums over the ranks are the gradients of the global mean loss. */
static int train_step(struct trainer *t, float lr, double *loss, cn_error *e)
{
    struct net *n = t->n;
    double sum = 0;
    cn_rng *drop = rank_rng(t);
    for (int s = 0; s < n->cfg.subdivisions; s++) {
        if (loader_next(t->ld, n->input, n->truth, n->batch, e))
            return -1;
        warn_skipped(t);
        struct pass p;
        net_pass_init(n, &p, 1, 1);
        p.rng = drop;
        if (t->ranks > 1)
            p.loss_scale = 1.f / (float)n->cfg.batch;
        if (s == n->cfg.subdivisions - 1)
            ddp_attach(t->g, &p);
        ddp_sync_bn(t->g, &p);
        net_forward(n, &p);
        if (ddp_bn_check(t->g, e))
            return -1;
        if (!isfinite(p.loss) || !outputs_finite(n)) {
            name_nonfinite(t, p.loss, s, e);
            return -1;
        }
        net_backward(n, &p);
        if (ddp_bn_check(t->g, e))
            return -1;
        sum += p.loss;
    }
    if (ddp_finish(t->g, &t->comm_wait, e))
        return -1;
    optimizer_step(t->opt, n, lr);
    n->seen += (uint64_t)n->cfg.batch;
    if (agree(t, &sum, e))
        return -1;
    *loss = sum / n->cfg.batch;
    return 0;
}

/* Top-1 and top-k on valid= with the training net in inference mode (see the file comment).
 * Rank r takes images [r V / ranks, (r + 1) V / ranks) with rank 0's batch-norm statistics;
 * the counts are summed. */
static int validate(struct trainer *t, double *top1, double *topk, cn_error *e)
{
    struct net *n = t->n;
    int classes = t->d->classes, k = t->d->top, r = dist_rank(t->dist), V = t->vlist->n;
    int lo = (int)((long long)V * r / t->ranks), hi = (int)((long long)V * (r + 1) / t->ranks);
    double hit1 = 0, hitk = 0;
    if (ddp_sync_buffers(t->g, e))
        return -1;
    int *idx = xmalloc(sizeof *idx * (size_t)k);
    for (int first = lo; first < hi; first += n->batch) {
        int count = CN_MIN(n->batch, hi - first);
        if (loader_fill(t->vld, n->input, n->truth, first, count, e)) {
            free(idx);
            return -1;
        }
        struct pass p;
        net_pass_init(n, &p, 0, 0);
        net_forward(n, &p);
        for (int b = 0; b < count; b++) {
            int label = t->vlist->labels[first + b];
            metrics_top_k(idx, net_output(n) + (size_t)b * (size_t)classes, classes, k);
            hit1 += idx[0] == label;
            for (int j = 0; j < k; j++)
                hitk += idx[j] == label;
        }
    }
    free(idx);
    double hits[2] = {hit1, hitk};
    if (dist_sum_doubles(t->dist, hits, 2, "validation counts", e))
        return -1;
    *top1 = hits[0] / V;
    *topk = hits[1] / V;
    return 0;
}

static int valid_due(const struct trainer *t, uint64_t iter)
{
    int every = valid_every(t);
    if (every == NET_VALID_EPOCH) {
        uint64_t b = (uint64_t)t->n->cfg.batch, len = (uint64_t)t->list->n;
        return iter * b / len != (iter - 1) * b / len;
    }
    return every > 0 && (iter % (uint64_t)every == 0 || iter == (uint64_t)t->n->cfg.max_batches);
}

static void format_eta(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

/* The progress line: the live one on a terminal (rewritten in place), else a plain line. */
static void show_progress(struct trainer *t, const struct trainlog_row *r, int final_line)
{
    struct progress *pr = &t->pr;
    uint64_t max = (uint64_t)t->n->cfg.max_batches;
    double now = cli_now_seconds(), done = (double)(r->iter - pr->start_iter);
    char eta[32], val[128] = "";
    format_eta(eta, sizeof eta, (now - pr->start) / done * (double)(max - r->iter));
    if (!isnan(r->top1))
        snprintf(val, sizeof val, ", valid top-1 %.4f top-%d %.4f", r->top1, t->d->top, r->topk);
    unsigned long long skipped = loader_skipped(t->ld);
    if (skipped)
        snprintf(val + strlen(val), sizeof val - strlen(val), ", %llu image%s skipped", skipped,
                 skipped == 1 ? "" : "s");
    if (pr->tty)
        printf("\r%llu/%llu (%.1f%%) epoch %.2f  loss %.4f  avg %.4f  lr %.3g  %.0f img/s  "
               "ETA %s%s\033[K%s",
               (unsigned long long)r->iter, (unsigned long long)max, 100.0 * (double)r->iter / max,
               r->epoch, r->loss, r->avg, r->lr, r->ips, eta, val, final_line ? "\n" : "");
    else
        printf("%llu/%llu: epoch %.2f, loss %.4f, avg %.4f, rate %g, %.0f img/s, %.1f s, ETA "
               "%s%s\n",
               (unsigned long long)r->iter, (unsigned long long)max, r->epoch, r->loss, r->avg,
               r->lr, r->ips, now - pr->start, eta, val);
    fflush(stdout);
}

static int write_log(struct trainer *t, cn_error *e)
{
    t->pr.last_log = cli_now_seconds();
    if (!t->root)
        return 0;
    return trainlog_write_csv(&t->log, t->csv, e) ||
           trainlog_write_svg(&t->log, t->o.cfg, t->svg, e);
}

/* Writes a checkpoint to path and the log beside it (rank 0; the others have the same
 * parameters and optimiser state). */
static int save(struct trainer *t, const char *path, cn_error *e)
{
    if (!t->root)
        return 0;
    return checkpoint_save(t->n, t->opt, t->seed, path, e) || write_log(t, e);
}

/* Numbered copy <base>_<iter>.weights, then pruning to the newest -keep. */
static int snapshot(struct trainer *t, uint64_t iter, cn_error *e)
{
    char suffix[48];
    snprintf(suffix, sizeof suffix, "_%llu.weights", (unsigned long long)iter);
    char *path = checkpoint_name(t->d->backup, t->base, suffix);
    int removed, rc = save(t, path, e) ||
                      (t->root && checkpoint_prune(t->d->backup, t->base, t->o.keep, &removed, e));
    free(path);
    return rc;
}

/* Every -check_every iterations (and at the end) on several ranks: rank 0's batch-norm
 * statistics everywhere, then every rank's parameters must hash alike. */
static int check_ranks(struct trainer *t, uint64_t iter, cn_error *e)
{
    int due = t->o.check_every && (iter % (uint64_t)t->o.check_every == 0 ||
                                   iter == (uint64_t)t->n->cfg.max_batches);
    if (t->ranks == 1 || !due)
        return 0;
    return ddp_sync_buffers(t->g, e) || dist_check_same(t->dist, ddp_checksum(t->n),
                                                       "the parameter checksum", e);
}

/* Everything after a step: the moving average, validation, the log, progress, checkpoints. */
static int after_step(struct trainer *t, uint64_t iter, double loss, float lr, cn_error *e)
{
    struct net *n = t->n;
    if (check_ranks(t, iter, e))
        return -1;
    struct progress *pr = &t->pr;
    uint64_t max = (uint64_t)n->cfg.max_batches;
    pr->avg = pr->avg < 0 ? loss : .9 * pr->avg + .1 * loss;
    double now = cli_now_seconds();
    double dt = now - pr->last_t;
    struct trainlog_row r = {.iter = iter,
                             .epoch = (double)n->seen / t->list->n,
                             .loss = loss,
                             .avg = pr->avg,
                             .lr = lr,
                             .ips = dt > 0 ? (double)(iter - pr->last_iter) * n->cfg.batch / dt : 0,
                             .top1 = NAN,
                             .topk = NAN};
    int validated = valid_due(t, iter), logged = iter % (uint64_t)t->o.print_every == 0;
    if (validated && validate(t, &r.top1, &r.topk, e))
        return -1;
    if (validated || logged || iter == max)
        trainlog_add(&t->log, &r);
    if (validated || logged || iter == max || (pr->tty && now - pr->last_t >= LIVE_SECONDS)) {
        show_progress(t, &r, iter == max || (pr->tty && validated));
        pr->last_t = now;
        pr->last_iter = iter;
    }
    if (iter % (uint64_t)t->o.backup_every == 0 && save(t, t->last, e))
        return -1;
    if (t->o.snapshot_every && iter % (uint64_t)t->o.snapshot_every == 0 && snapshot(t, iter, e))
        return -1;
    if ((validated || logged) && now - pr->last_log >= LOG_SECONDS && write_log(t, e))
        return -1;
    return 0;
}

static int same_file(const char *a, const char *b)
{
    struct stat x, y;
    return !stat(a, &x) && !stat(b, &y) && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* Whether a shell finds the command `name` (no '/') through PATH as the file exe. */
static int path_finds(const char *name, const char *exe)
{
    const char *path = getenv("PATH");
    char full[4096];
    while (path && *path) {
        size_t len = strcspn(path, ":");
        int k = snprintf(full, sizeof full, "%.*s/%s", (int)len, len ? path : ".", name);
        if (k > 0 && (size_t)k < sizeof full && access(full, X_OK) == 0)
            return same_file(full, exe);
        path += len + (path[len] == ':');
    }
    return 0;
}

/* The program as the user can run it again, into buf (n bytes): this process's argv[0] (read
 * from /proc/self/cmdline: the subcommands see only their own argv) when it names this
 * executable, as typed (a path, relative to the directory the run started in, as the other
 * paths of the command) or through PATH; else this executable's absolute path
 * (/proc/self/exe); "net" when neither can be read (not Linux). */
static void program_name(char *buf, size_t n)
{
    static const char exe[] = "/proc/self/exe";
    FILE *f = fopen("/proc/self/cmdline", "rb");
    size_t got = f ? fread(buf, 1, n - 1, f) : 0;
    if (f)
        fclose(f);
    buf[got] = '\0';
    if (got && strlen(buf) < got && (strchr(buf, '/') ? same_file(buf, exe) : path_finds(buf, exe)))
        return; /* the whole of argv[0] (a NUL ends it within what was read) */
    ssize_t len = readlink(exe, buf, n - 1);
    if (len > 0) {
        buf[len] = '\0';
        return;
    }
    snprintf(buf, n, "net");
}

/* Appends w (after a space unless b is empty), quoted for a POSIX shell unless every character
 * is plainly safe. */
static void put_word(struct strbuf *b, const char *w)
{
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                               "_-+=./,:@%";
    if (b->len)
        strbuf_put(b, " ", 1);
    if (*w && strspn(w, safe) == strlen(w)) {
        strbuf_put(b, w, strlen(w));
        return;
    }
    strbuf_put(b, "'", 1);
    for (const char *c = w; *c; c++) /* a quote ends the quoting, is escaped, and reopens it */
        strbuf_put(b, *c == '\'' ? "'\\''" : c, *c == '\'' ? 4 : 1);
    strbuf_put(b, "'", 1);
}

/* The command resuming this run from weights, malloc'd, for a shell: this program (as
 * program_name finds it) with this run's DATA, CFG and flags but for those of its start only
 * (keep_resume_flags), under mpirun with as many ranks when it has several (any number resumes
 * it; the run's own mpirun options, a --hostfile, are not known here). */
static char *resume_command(const struct trainer *t, const char *weights)
{
    struct strbuf b = {0};
    char prog[4096];
    program_name(prog, sizeof prog);
    if (t->ranks > 1)
        strbuf_printf(&b, "mpirun -np %d", t->ranks);
    const char *words[] = {prog, "classifier", "train", t->o.data, t->o.cfg, weights};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        put_word(&b, words[i]);
    for (int i = 0; i < t->nflags; i++)
        put_word(&b, t->flags[i]);
    return strbuf_take(&b);
}

/* Ends a run stopped early (-stop_after or a signal): a checkpoint and how to resume. */
static int stop_early(struct trainer *t, uint64_t iter, cn_error *e)
{
    if (t->pr.tty)
        putchar('\n');
    if (save(t, t->last, e))
        return -1;
    int sig = t->stop_sig;
    char *cmd = resume_command(t, t->last);
    printf("%s at iteration %llu; saved %s\nresume with: %s\n",
           sig == SIGINT ? "interrupted (SIGINT)"
           : sig         ? "stopped by SIGTERM"
                         : "stopped",
           (unsigned long long)iter, t->last, cmd);
    fflush(stdout);
    free(cmd);
    return sig ? 128 + sig : 0;
}

/* Ends every rank after an error on this one (the others would wait for it). When training had
 * begun, rank 0 adds how to resume from the last checkpoint, which stays whole (atomic writes):
 * <cfg>_last.weights, else the weights this run started from. */
static void abort_ranks(const struct trainer *t, const cn_error *e, int training)
{
    const char *from = t->last && access(t->last, F_OK) == 0 ? t->last : t->o.weights;
    char msg[3 * CN_ERR_MAX];
    snprintf(msg, sizeof msg, "%s", e->msg);
    if (t->root && training && from) {
        char *cmd = resume_command(t, from);
        snprintf(msg, sizeof msg, "%s\nnet: the last checkpoint is kept; resume with: %s", e->msg,
                 cmd);
        free(cmd);
    }
    dist_abort(t->dist, 1, msg);
}

static void print_start(const struct trainer *t, uint64_t iter)
{
    const struct net *n = t->n;
    printf("%s: training %s from iteration %llu to %llu, %d images per step, %d classes, %s\n",
           t->o.cfg, t->d->train, (unsigned long long)iter, (unsigned long long)n->cfg.max_batches,
           n->cfg.batch, t->d->classes, optimizer_kind_name(optimizer_kind(t->opt)));
    if (valid_every(t))
        printf("validating on %s (%d images) every %s\n", t->d->valid, t->vlist->n,
               valid_every(t) == NET_VALID_EPOCH ? "epoch" : "few iterations (valid_every)");
    printf("checkpoints and log in %s: %s, %s\n", t->d->backup, t->last, t->csv);
    fflush(stdout);
}

/* The log continues the one beside the checkpoint when resuming; it restarts otherwise. */
static void log_setup(struct trainer *t, uint64_t iter)
{
    cn_error ignored;
    trainlog_init(&t->log, t->d->top);
    t->pr.avg = -1;
    if (!iter || trainlog_read(&t->log, t->csv, &ignored))
        return;
    t->log.k = t->d->top;
    trainlog_truncate(&t->log, iter);
    if (t->log.n && t->log.rows[t->log.n - 1].iter == iter)
        t->pr.avg = t->log.rows[t->log.n - 1].avg;
}

/* Returns 0 when done, -1 on error, 128 + signal when interrupted (after a checkpoint). */
static int train_loop(struct trainer *t, cn_error *e)
{
    struct net *n = t->n;
    uint64_t iter = n->seen / (uint64_t)n->cfg.batch, max = (uint64_t)n->cfg.max_batches;
    log_setup(t, iter);
    double now = cli_now_seconds();
    t->pr = (struct progress){now, now, now, iter, iter, t->pr.avg, isatty(STDOUT_FILENO)};
    print_start(t, iter);
    uint64_t first = iter;
    while (iter < max) {
        if (t->stop_sig || (t->o.stop_after && iter - first >= (uint64_t)t->o.stop_after))
            return stop_early(t, iter, e);
        dist_set_iteration(t->dist, iter + 1);
        float lr = lr_at(&n->cfg, iter);
        double loss;
        if (train_step(t, lr, &loss, e) || after_step(t, iter + 1, loss, lr, e))
            return -1;
        iter++;
    }
    if (save(t, t->final, e) || save(t, t->plain, e))
        return -1;
    printf("saved %s and %s after %.1f s\n", t->final, t->plain, cli_now_seconds() - t->pr.start);
    if (t->ranks > 1)
        printf("%d ranks; %.2f s waiting for gradient sums after backward (%d buckets)\n",
               t->ranks, t->comm_wait, ddp_buckets(t->g));
    return 0;
}

static const char train_usage[] =
    "usage: net classifier train DATA CFG [WEIGHTS] [flags]\n"
    "  trains on train= of DATA; with WEIGHTS (a checkpoint) resumes where it stopped:\n"
    "  iteration, learning-rate schedule, optimiser state, data order and dropout stream\n"
    "  -clear             start from iteration 0 with a fresh optimiser (keep WEIGHTS' values)\n"
    "  -seed N            override [net] seed= (initialisation, data order, dropout)\n"
    "  -print_every N     log a row (and print a line when stdout is not a terminal) every N\n"
    "                     iterations (default 100); a terminal gets a live line\n"
    "  -backup_every N    write <backup>/<cfg>_last.weights every N iterations (default 1000)\n"
    "  -snapshot_every N  keep a numbered <backup>/<cfg>_<iter>.weights every N iterations\n"
    "                     (default 10000; 0: never)\n"
    "  -keep K            keep only the newest K numbered copies (default 0: all)\n"
    "  -valid_every N|epoch  top-1/top-k on valid= every N iterations or every epoch;\n"
    "                     0: never (default: [net] valid_every=, itself 0 by default)\n"
    "  -stop_after N      stop after N iterations of this run, writing <cfg>_last.weights\n"
    "  -workers N         loader threads (default: [net] workers=, itself 2 by default)\n"
    "  -freeze N          freeze the first N layers (as freeze=1 on each): no update, batch\n"
    "                     norm on fixed rolling statistics, no backward below them\n"
    "  -weights_cfg CFG0  the cfg WEIGHTS was written for: its layers load where their shapes\n"
    "                     match CFG's, the others are re-initialised (without it, WEIGHTS of\n"
    "                     another size loads as a prefix of CFG's layers, e.g. from partial)\n"
    "  -check_every N     on several ranks (mpirun), compare a parameter checksum across\n"
    "                     ranks every N iterations (default 100; 0: never)\n"
    "  -mpi_timeout S     on several ranks, end the job when a rank waits S seconds for the\n"
    "                     others (default 120), naming the ranks and the iteration\n"
    "  -h                 this text\n"
    "  Also written: <cfg>_final.weights and <cfg>.weights at the end, a .state file beside\n"
    "  every .weights, the log <backup>/<cfg>.csv and its chart <backup>/<cfg>.svg.\n"
    "  SIGINT/SIGTERM: finish the batch, write <cfg>_last.weights, exit 130/143; a second\n"
    "  signal exits at once. Exit status 1 on any error (a non-finite loss included).\n";

static int take_valid_every(int *argc, char **argv, int *out)
{
    const char *v = cli_take_str(argc, argv, "-valid_every");
    char *end;
    *out = VALID_FROM_CFG;
    if (!v)
        return 0;
    if (!strcmp(v, "epoch")) {
        *out = NET_VALID_EPOCH;
        return 0;
    }
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < 0 || x > 1000000000) {
        fprintf(stderr, "net: -valid_every %s: expected 'epoch' or an integer in [0, 1000000000]\n",
                v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_flags(struct train_opts *o, int *argc, char **argv)
{
    long pe, be, se, keep;
    o->clear = cli_take_flag(argc, argv, "-clear");
    o->weights_cfg = cli_take_str(argc, argv, "-weights_cfg");
    if (cli_take_int(argc, argv, "-seed", 0, 2147483647, -1, &o->seed) ||
        cli_take_int(argc, argv, "-print_every", 1, 1000000000, 100, &pe) ||
        cli_take_int(argc, argv, "-backup_every", 1, 1000000000, 1000, &be) ||
        cli_take_int(argc, argv, "-snapshot_every", 0, 1000000000, 10000, &se) ||
        cli_take_int(argc, argv, "-keep", 0, 1000000000, 0, &keep) ||
        cli_take_int(argc, argv, "-stop_after", 0, 1000000000, 0, &o->stop_after) ||
        cli_take_int(argc, argv, "-workers", 0, 64, -1, &o->workers) ||
        cli_take_int(argc, argv, "-freeze", 0, 1000000, 0, &o->freeze) ||
        cli_take_int(argc, argv, "-check_every", 0, 1000000000, 100, &o->check_every) ||
        cli_take_int(argc, argv, "-mpi_timeout", 1, 86400, 120, &o->mpi_timeout) ||
        take_valid_every(argc, argv, &o->valid_every) || cli_no_flags_left(*argc, argv))
        return -1;
    o->print_every = (int)pe;
    o->backup_every = (int)be;
    o->snapshot_every = (int)se;
    o->keep = (int)keep;
    return 0;
}

/* The flags of the command line (all[1..nall), before parsing) that a resumed run takes again,
 * with their values, into t->flags: every one but those of how this run started, -clear,
 * -weights_cfg (the checkpoint has CFG's own shapes and optimiser state) and -stop_after (the
 * resumed run goes on to max_batches). pos[1..npos): the arguments parsing left, DATA CFG
 * [WEIGHTS]. */
static void keep_resume_flags(struct trainer *t, char **all, int nall, char **pos, int npos)
{
    t->flags = xmalloc(sizeof *t->flags * (size_t)nall);
    for (int i = 1; i < nall; i++) {
        int positional = 0;
        for (int k = 1; k < npos; k++)
            positional |= all[i] == pos[k];
        if (positional || !strcmp(all[i], "-clear"))
            continue;
        if (!strcmp(all[i], "-weights_cfg") || !strcmp(all[i], "-stop_after")) {
            i++; /* and its value */
            continue;
        }
        t->flags[t->nflags++] = all[i];
    }
}

static void catch_signals(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

int cli_classifier_train(int argc, char **argv)
{
    struct trainer t = {0};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(train_usage, stdout);
            return 0;
        }
    int nall = argc;
    char **all = xmalloc(sizeof *all * (size_t)argc);
    memcpy(all, argv, sizeof *all * (size_t)argc);
    int bad = parse_flags(&t.o, &argc, argv) ? 1 : argc < 3 || argc > 4 ? 2 : 0;
    if (!bad)
        keep_resume_flags(&t, all, nall, argv, argc);
    free(all);
    if (bad == 2)
        fputs(train_usage, stderr);
    if (bad)
        return 1;
    t.o.data = argv[1];
    t.o.cfg = argv[2];
    t.o.weights = argc == 4 ? argv[3] : NULL;
    cn_error e;
    struct sigaction old_int, old_term;
    catch_signals(&old_int, &old_term);
    if (dist_open(&t.dist, (double)t.o.mpi_timeout, &stop_signal, &e)) {
        dist_close(t.dist);
        return cli_error(e.msg);
    }
    t.ranks = dist_size(t.dist);
    t.root = dist_rank(t.dist) == 0;
    if (!t.root && !freopen("/dev/null", "w", stdout)) /* rank 0 alone prints progress */
        t.root = 0;
    int set_up = trainer_setup(&t, &e) == 0;
    int rc = set_up ? train_loop(&t, &e) : -1;
    if (rc < 0 && t.ranks > 1)
        abort_ranks(&t, &e, set_up);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    trainer_free(&t);
    dist_close(t.dist);
    if (rc < 0 && t.pr.tty)
        putchar('\n');
    return rc < 0 ? cli_error(e.msg) : rc;
}
