/* loader.c - the training stream (ring of batches filled by persistent pthreads), validation
 * slices, the decoded-image cache and skipped-image reports. See loader.h for the contract.
 *
 * Locking: ld->mu guards the ring (slot states, batch numbers, next_claim, next_take, base, B),
 * the epoch permutation and the report queue. A worker claims a batch under the lock (it also
 * picks the batch's images there, since the permutation is shared), fills it without the lock,
 * and marks it ready under the lock (the adaptive policy's `boosted` and each worker's
 * idle_now are under the lock too). A consumer that would wait for a batch fills it too: its
 * samples are handed out one at a time by an atomic counter (slot.next) to every filler
 * registered in slot.fillers (under the lock), and the last filler out, with every sample
 * made, marks it ready; so a slot is never taken, freed or reused while a filler is inside it.
 * When no worker has claimed the batch yet (all starved), the consumer claims it itself.
 * Cache entries and bad-image flags are C11 atomics: an entry goes EMPTY -> BUSY (one writer,
 * by compare-exchange) -> READY (release store; back to EMPTY when a fixed-size entry's image
 * fails to decode), and readers use it only after an acquire load sees READY; anyone else
 * decodes the image itself.
 *
 * Stream numbering: the samples of ring batch k are base + k*B .. base + k*B + B - 1, where base
 * is the stream position at the last reposition (creation, loader_seek, batch-size change).
 * An inline batch (loader.h, worker policy) takes the next number too, claimed and taken at
 * once by the consumer; the workers claim nothing while inline_now is set (it stays set: a
 * cache entry is never dropped), so they sleep on `space`. Freeing a slot signals one worker
 * (one slot, one claim); repositioning and stopping wake them all.
 */
#include "data/loader.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#if defined(__linux__)
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef SCHED_IDLE
#define SCHED_IDLE 5 /* Linux's value; <sched.h> names it only under _GNU_SOURCE */
#endif
#endif

#include "core/rng.h"
#include "data/image.h"
#include "data/views.h"

#if defined(__SANITIZE_THREAD__)
#define FILL_PARALLEL 0 /* TSan does not see libgomp's synchronisation */
#else
#define FILL_PARALLEL 1
#endif

#define STREAM_EPOCH (UINT64_C(1) << 63)  /* stream ids of epoch permutations */
#define STREAM_PICK (UINT64_C(1) << 62)   /* of random and balanced picks */
#define STREAM_MIX (UINT64_C(1) << 61)    /* of mixing partners' augmentation */
#define MAX_REPORTS 64

enum { CACHE_EMPTY, CACHE_BUSY, CACHE_READY, CACHE_NONE };
enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_TAKING };

struct cache_entry {
    atomic_int state;
    int w, h;    /* of px */
    int iw, ih;  /* of the decoded image (px is its warp source when smaller) */
    uint8_t *px; /* w x h x c bytes, CHW */
};

/* One batch of the ring. Its samples are shared out one at a time (next) among its fillers: the
 * worker that claimed it and the consumer when it has to wait for it (take_ready). */
struct slot {
    float *x, *truth;
    int *idx; /* the set index of each sample */
    int state;
    uint64_t number;
    uint64_t g;      /* its first stream position */
    int count;       /* its samples */
    atomic_int next; /* the next sample to make; >= count: all taken */
    int fillers;     /* under mu: threads inside fill_part on it */
    int done;        /* under mu: samples made */
    int fail_at;     /* under mu: its lowest failed sample (count: none), err says why */
    int failed;
    cn_error err;
};

/* Scratch of one thread making samples. */
struct maker {
    uint8_t *bytes, *tmp;
    size_t bytes_cap, tmp_cap;
    float *mix, *mix_truth; /* the mixing partner */
    struct image_scratch file; /* each file is read into it (image.h) */
};

struct worker_arg {
    struct loader *ld;
    struct maker mk;
    int adaptive; /* under mu: worker_idle 2 and its priority can be raised back */
    int idle_now; /* under mu: it runs under SCHED_IDLE */
};

struct loader {
    const struct image_list *list;
    struct loader_opts o;
    float *weights; /* classes values, or NULL */
    size_t isize;   /* floats per image: w*h*c */
    int warp;       /* training samples warp native-size sources (aug_has_warp) */
    int warp_source; /* warp without crop: native entries keep aug_warp_source's bytes */
    struct cache_entry *cache; /* list->n entries, or NULL */
    uint8_t *cache_slab;       /* fixed-size entries: list->n * isize bytes */
    atomic_size_t cache_used;
    atomic_int cache_ready;    /* fixed-size entries READY */
    int plain;                 /* no random step: a sample is a copy when its bytes are at hand */
    int inline_now;            /* under mu: the consumer makes the batches (worker policy) */
    int boosted;               /* under mu: adaptive workers at normal policy (the consumer
                                  waited); cleared when the ring is full again */
    atomic_uchar *bad;         /* list->n flags: failed to decode, reported */
    atomic_uint_least64_t skipped;
    atomic_uint_least64_t decoded; /* image files decoded (loader_decoded) */
    int *by_class, *class_start, *nonempty, nnonempty; /* balanced sampling */
    pthread_mutex_t mu;
    pthread_cond_t ready, space;
    struct slot *slots;
    int nslots, B, stop, filling;
    uint64_t base, next_claim, next_take;
    int *perm;
    uint64_t perm_epoch; /* UINT64_MAX: none yet */
    cn_error *reports;
    int nreports, report_head;
    uint64_t seen;
    struct maker own; /* the caller's scratch (workers = 0, inline batches) */
    int *own_idx;     /* the caller's picks, own_cap entries */
    int own_cap;
    pthread_t *threads;
    struct worker_arg *args;
    int nthreads;
};

static void maker_free(struct maker *m)
{
    free(m->bytes);
    free(m->tmp);
    free(m->mix);
    free(m->mix_truth);
    image_scratch_free(&m->file);
    memset(m, 0, sizeof *m);
}

static int grow(uint8_t **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    uint8_t *q = realloc(*p, n);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* ---- picking the images of the stream ---- */

static void make_perm(struct loader *ld, uint64_t epoch)
{
    int n = ld->list->n;
    for (int i = 0; i < n; i++)
        ld->perm[i] = i;
    cn_rng r;
    cn_rng_seed_stream(&r, ld->o.seed, STREAM_EPOCH | epoch);
    cn_rng_shuffle(&r, ld->perm, n);
    ld->perm_epoch = epoch;
}

/* Position j of this loader's stream -> the global stream sample (loader_opts sharding). */
static uint64_t global_sample(const struct loader *ld, uint64_t j)
{
    uint64_t L = (uint64_t)ld->o.shard_batch, N = (uint64_t)ld->o.shards;
    if (N <= 1)
        return j;
    return j / L * L * N + (uint64_t)ld->o.shard * L + j % L;
}

/* The set index of stream sample g. Called under ld->mu (the permutation is shared). */
static int pick(struct loader *ld, uint64_t g)
{
    uint64_t n = (uint64_t)ld->list->n;
    if (ld->o.sampling == SAMPLING_EPOCH) {
        if (ld->perm_epoch != g / n)
            make_perm(ld, g / n);
        return ld->perm[g % n];
    }
    cn_rng r;
    cn_rng_seed_stream(&r, ld->o.seed, STREAM_PICK | g);
    if (ld->o.sampling == SAMPLING_RANDOM)
        return (int)cn_rng_below(&r, n);
    int k = ld->nonempty[cn_rng_below(&r, (uint64_t)ld->nnonempty)];
    int cnt = ld->class_start[k + 1] - ld->class_start[k];
    return ld->by_class[ld->class_start[k] + (int)cn_rng_below(&r, (uint64_t)cnt)];
}

static void balanced_setup(struct loader *ld)
{
    const struct image_list *l = ld->list;
    int C = ld->o.classes;
    ld->class_start = xcalloc((size_t)C + 1, sizeof *ld->class_start);
    ld->by_class = xmalloc(sizeof *ld->by_class * (size_t)l->n);
    ld->nonempty = xmalloc(sizeof *ld->nonempty * (size_t)C);
    for (int i = 0; i < l->n; i++)
        ld->class_start[l->labels[i] + 1]++;
    for (int k = 0; k < C; k++) {
        if (ld->class_start[k + 1])
            ld->nonempty[ld->nnonempty++] = k;
        ld->class_start[k + 1] += ld->class_start[k];
    }
    int *fill = xmalloc(sizeof *fill * (size_t)C);
    memcpy(fill, ld->class_start, sizeof *fill * (size_t)C);
    for (int i = 0; i < l->n; i++)
        ld->by_class[fill[l->labels[i]]++] = i;
    free(fill);
}

/* ---- sources: decoded bytes of one image ---- */

/* IDX images are gray; c channels as stb_image converts gray (copies, alpha 255). */
static void gray_to_channels(uint8_t *dst, const uint8_t *g, size_t plane, int c)
{
    for (int k = 0; k < c; k++)
        if (k == (c == 2 ? 1 : 3))
            memset(dst + (size_t)k * plane, 255, plane);
        else
            memcpy(dst + (size_t)k * plane, g, plane);
}

/* A native-size source: the image's bytes, CHW, c channels, iw x ih; or (pw > 0) its warp
 * source (aug_warp_source), pw x ph. */
struct source {
    const uint8_t *px;
    int iw, ih, pw, ph;
    uint8_t *owned; /* malloc'd when not from the cache or the IDX set */
};

/* Offers a decoded image to the cache (native mode): it keeps px when it wins the entry and the
 * budget allows; returns 1 when it kept it. */
static int cache_offer(struct loader *ld, int i, const struct source *s)
{
    int iw = s->pw ? s->pw : s->iw, ih = s->pw ? s->ph : s->ih;
    struct cache_entry *ce = &ld->cache[i];
    int expect = CACHE_EMPTY;
    if (!atomic_compare_exchange_strong(&ce->state, &expect, CACHE_BUSY))
        return 0;
    size_t bytes = (size_t)iw * (size_t)ih * (size_t)ld->o.c;
    size_t before = atomic_fetch_add(&ld->cache_used, bytes);
    if (before + bytes > ld->o.cache_bytes) {
        atomic_fetch_sub(&ld->cache_used, bytes);
        atomic_store_explicit(&ce->state, CACHE_NONE, memory_order_release);
        return 0;
    }
    ce->px = s->owned;
    ce->w = iw;
    ce->h = ih;
    ce->iw = s->iw;
    ce->ih = s->ih;
    atomic_store_explicit(&ce->state, CACHE_READY, memory_order_release);
    return 1;
}

/* The source of image i (warp mode): native size, or its warp source from the cache. */
static int native_source(struct loader *ld, struct maker *mk, int i, struct source *s, cn_error *e)
{
    const struct image_list *l = ld->list;
    memset(s, 0, sizeof *s);
    if (l->pixels) {
        size_t plane = (size_t)l->pw * (size_t)l->ph;
        if (grow(&mk->bytes, &mk->bytes_cap, plane * (size_t)ld->o.c))
            return cn_fail(e, "%s: out of memory", l->paths[i]);
        gray_to_channels(mk->bytes, l->pixels + (size_t)i * plane, plane, ld->o.c);
        *s = (struct source){mk->bytes, l->pw, l->ph, 0, 0, NULL};
        return 0;
    }
    struct cache_entry *ce = ld->cache ? &ld->cache[i] : NULL;
    if (ce && atomic_load_explicit(&ce->state, memory_order_acquire) == CACHE_READY) {
        int pre = ld->warp_source;
        *s = (struct source){ce->px, ce->iw, ce->ih, pre ? ce->w : 0, pre ? ce->h : 0, NULL};
        return 0;
    }
    uint8_t *px;
    int iw, ih;
    if (image_decode_with(&px, &iw, &ih, l->paths[i], ld->o.c, &mk->file, e))
        return -1;
    atomic_fetch_add(&ld->decoded, 1);
    *s = (struct source){px, iw, ih, 0, 0, px};
    if (!ce)
        return 0;
    uint8_t *pre = NULL;
    int pw, ph;
    if (ld->warp_source &&
        aug_warp_source(&pre, &pw, &ph, px, iw, ih, ld->o.w, ld->o.h, ld->o.c, &ld->o.aug))
        return 0; /* no memory for it: this sample warps from the image, uncached */
    if (ld->warp_source) { /* the entry keeps what the warp reads: no resize per sample */
        *s = (struct source){pre ? pre : px, iw, ih, pw, ph, pre ? pre : px};
        if (pre)
            free(px);
    }
    if (cache_offer(ld, i, s))
        s->owned = NULL;
    return 0;
}

/* Image i at w x h as bytes (fixed mode): from the cache slab, or decoded (and cached). */
static int fixed_bytes(struct loader *ld, struct maker *mk, int i, const uint8_t **out,
                       cn_error *e)
{
    const struct image_list *l = ld->list;
    const struct loader_opts *o = &ld->o;
    if (l->pixels) {
        size_t plane = (size_t)l->pw * (size_t)l->ph, need = plane * (size_t)o->c;
        if (o->c == 1 && l->pw == o->w && l->ph == o->h) { /* already the input's bytes */
            *out = l->pixels + (size_t)i * plane;
            return 0;
        }
        if (grow(&mk->tmp, &mk->tmp_cap, need) || grow(&mk->bytes, &mk->bytes_cap, ld->isize))
            return cn_fail(e, "%s: out of memory", l->paths[i]);
        gray_to_channels(mk->tmp, l->pixels + (size_t)i * plane, plane, o->c);
        if (views_default_u8(mk->bytes, o->w, o->h, mk->tmp, l->pw, l->ph, o->c))
            return cn_fail(e, "%s: out of memory resizing", l->paths[i]);
        *out = mk->bytes;
        return 0;
    }
    struct cache_entry *ce = ld->cache_slab ? &ld->cache[i] : NULL; /* native entries: not here */
    uint8_t *slot = ce ? ld->cache_slab + (size_t)i * ld->isize : NULL;
    if (ce && atomic_load_explicit(&ce->state, memory_order_acquire) == CACHE_READY) {
        *out = slot;
        return 0;
    }
    int expect = CACHE_EMPTY; /* the entry's one writer resizes straight into it */
    int mine = ce && atomic_compare_exchange_strong(&ce->state, &expect, CACHE_BUSY);
    if (!mine && grow(&mk->bytes, &mk->bytes_cap, ld->isize))
        return cn_fail(e, "%s: out of memory", l->paths[i]);
    uint8_t *dst = mine ? slot : mk->bytes;
    const uint8_t *px; /* in mk->file until the next decode */
    int iw, ih, rc = image_decode_into(&px, &iw, &ih, l->paths[i], o->c, &mk->file, e);
    if (!rc) {
        atomic_fetch_add(&ld->decoded, 1);
        if (views_default_u8(dst, o->w, o->h, px, iw, ih, o->c))
            rc = cn_fail(e, "%s: out of memory resizing %dx%d", l->paths[i], iw, ih);
    }
    if (mine) /* a failed image leaves its entry empty, as it was */
        atomic_store_explicit(&ce->state, rc ? CACHE_EMPTY : CACHE_READY, memory_order_release);
    if (rc)
        return -1;
    if (mine)
        atomic_fetch_add(&ld->cache_ready, 1);
    *out = dst;
    return 0;
}

/* ---- making one sample ---- */

/* Image i into x (w x h x c floats in [0, 1]); train adds the random steps 1-4. Returns 0, -1
 * when the image cannot be decoded (e says why), -2 on out of memory. */
static int load_image(struct loader *ld, struct maker *mk, int i, float *x, int train, cn_rng *r,
                      cn_error *e)
{
    const struct loader_opts *o = &ld->o;
    if (train && ld->warp) {
        struct source s;
        if (native_source(ld, mk, i, &s, e))
            return -1;
        int bad = s.pw ? aug_geometry_from(x, o->w, o->h, s.px, s.pw, s.ph, s.iw, s.ih, o->c,
                                           &o->aug, r, &mk->tmp, &mk->tmp_cap)
                       : aug_geometry(x, o->w, o->h, s.px, s.iw, s.ih, o->c, &o->aug, r,
                                      &mk->tmp, &mk->tmp_cap);
        free(s.owned);
        if (bad) {
            cn_fail(e, "%s: out of memory augmenting", ld->list->paths[i]);
            return -2;
        }
    } else {
        const uint8_t *px = NULL;
        if (fixed_bytes(ld, mk, i, &px, e))
            return -1;
        image_u8_to_float(x, px, ld->isize);
        if (train) /* pad_crop alone shifts the (cached) default view */
            aug_pad_crop_random(x, o->w, o->h, o->c, &o->aug, r);
    }
    if (train)
        aug_photometric(x, o->w, o->h, o->c, &o->aug, r);
    return 0;
}

static void report_bad(struct loader *ld, int i, const cn_error *why)
{
    if (atomic_exchange(&ld->bad[i], 1))
        return;
    atomic_fetch_add(&ld->skipped, 1);
    pthread_mutex_lock(&ld->mu);
    if (ld->nreports < MAX_REPORTS) {
        cn_error *m = &ld->reports[ld->nreports++];
        const struct image_list *l = ld->list;
        if (l->kind == LIST_FILE)
            cn_fail(m, "%s:%d: %s (skipped)", l->path, l->lines[i], why->msg);
        else
            cn_fail(m, "%s (skipped)", why->msg);
    }
    pthread_mutex_unlock(&ld->mu);
}

/* load_image for the stream: an image that fails is reported and replaced by the next one in set
 * order that decodes. *label gets the class of the image used. */
static int load_stream(struct loader *ld, struct maker *mk, int i, float *x, cn_rng *r,
                       int *label, cn_error *e)
{
    int n = ld->list->n;
    for (int tries = 0; tries < n; tries++, i = (i + 1) % n) {
        if (atomic_load_explicit(&ld->bad[i], memory_order_relaxed))
            continue;
        cn_error why;
        int rc = load_image(ld, mk, i, x, 1, r, &why);
        if (rc == 0) {
            *label = ld->list->labels[i];
            return 0;
        }
        if (rc == -2) {
            *e = why;
            return -1;
        }
        report_bad(ld, i, &why);
    }
    return cn_fail(e, "%s: no image of the set can be decoded", ld->list->path);
}

static float weight_of(const struct loader *ld, int label)
{
    return ld->weights ? ld->weights[label] : 1.0f;
}

/* Stream sample g, a draw of image i: steps 1-7 of augment.h. */
static int make_sample(struct loader *ld, struct maker *mk, uint64_t g, int i, float *x, float *t,
                       cn_error *e)
{
    const struct loader_opts *o = &ld->o;
    cn_rng r;
    cn_rng_seed_stream(&r, o->seed, g);
    int label, label2;
    if (load_stream(ld, mk, i, x, &r, &label, e))
        return -1;
    float lambda = 1, weight = weight_of(ld, label);
    int cut;
    memset(t, 0, sizeof *t * (size_t)o->classes);
    if (aug_mix_draw(&o->aug, &r, &lambda, &cut)) {
        int j = (int)cn_rng_below(&r, (uint64_t)ld->list->n);
        cn_rng r2;
        cn_rng_seed_stream(&r2, o->seed, STREAM_MIX | g);
        if (load_stream(ld, mk, j, mk->mix, &r2, &label2, e))
            return -1;
        lambda = aug_mix_apply(x, mk->mix, o->w, o->h, o->c, lambda, cut, &r);
        t[label2] += 1 - lambda;
        weight = lambda * weight + (1 - lambda) * weight_of(ld, label2);
    }
    t[label] += lambda;
    float eps = o->aug.label_smooth;
    for (int k = 0; k < o->classes; k++)
        t[k] = ((1 - eps) * t[k] + eps / (float)o->classes) * weight;
    aug_normalize(x, 1, o->w, o->h, o->c, &o->aug);
    return 0;
}

/* Fills count stream samples from position g of this loader's stream with the images
 * idx[0..count). */
static int fill_batch(struct loader *ld, struct maker *mk, float *x, float *truth, const int *idx,
                      uint64_t g, int count, cn_error *e)
{
    size_t C = (size_t)ld->o.classes;
    float *scratch = truth ? NULL : xmalloc(sizeof *scratch * C);
    int rc = 0;
    for (int b = 0; b < count && !rc; b++)
        rc = make_sample(ld, mk, global_sample(ld, g + (uint64_t)b), idx[b],
                         x + (size_t)b * ld->isize, truth ? truth + (size_t)b * C : scratch, e);
    free(scratch);
    return rc;
}

/* ---- the ring ---- */

/* Under ld->mu: the set indices of the count stream samples from position g into idx. */
static void pick_batch(struct loader *ld, int *idx, uint64_t g, int count)
{
    for (int b = 0; b < count; b++)
        idx[b] = pick(ld, global_sample(ld, g + (uint64_t)b));
}

/* 1 when every sample is a plain copy of bytes already in memory: no random step, and the set
 * is an IDX array or every image is in the fixed-size cache (or known undecodable). Once 1,
 * always 1 (cache entries are never dropped). */
static int batches_plain(struct loader *ld)
{
    if (!ld->plain)
        return 0;
    if (ld->list->pixels)
        return 1;
    return ld->cache_slab && (uint64_t)atomic_load(&ld->cache_ready) + atomic_load(&ld->skipped) >=
                                 (uint64_t)ld->list->n;
}

/* Lowers the calling worker's scheduling priority by o.worker_nice (Linux: nice is per thread),
 * so that when it and the training threads want the same core, the training threads win; with
 * worker_idle 1, also SCHED_IDLE (loader.h, worker policy). Failures leave the priority as is.
 * Returns 1 when the worker is to follow the adaptive policy (worker_idle 2): the kernel lets
 * an unprivileged thread leave SCHED_IDLE only when RLIMIT_NICE would let it lower its nice
 * value (sched(7)), so that is probed first, by lowering the nice value by one and restoring
 * it; without the right, the worker stays at nice only (never stuck idle). */
static int worker_deprioritise(const struct loader *ld)
{
    int adaptive = 0;
#if defined(__linux__)
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int now = getpriority(PRIO_PROCESS, tid);
    if (!errno && ld->o.worker_nice > 0) {
        now = CN_MIN(now + ld->o.worker_nice, 19);
        (void)setpriority(PRIO_PROCESS, tid, now);
    }
    if (ld->o.worker_idle == 1) {
        struct sched_param sp = {0};
        (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    }
    if (ld->o.worker_idle == 2 && !errno && now > -20 && !setpriority(PRIO_PROCESS, tid, now - 1))
        adaptive = !setpriority(PRIO_PROCESS, tid, now);
#else
    (void)ld;
#endif
    return adaptive;
}

/* Switches thread t to SCHED_IDLE (idle) or back to SCHED_OTHER, keeping its nice value. */
static void set_idle(pthread_t t, int idle)
{
#if defined(__linux__)
    struct sched_param sp = {0};
    (void)pthread_setschedparam(t, idle ? SCHED_IDLE : SCHED_OTHER, &sp);
#else
    (void)t;
    (void)idle;
#endif
}

/* Under ld->mu, the consumer about to wait for a batch, or finding the next one not ready
 * (worker_idle 2): the workers return to the normal policy (at their nice value) until the ring
 * is full again, so that a busy machine cannot starve them while the training waits. */
static void workers_boost(struct loader *ld)
{
    if (ld->boosted || ld->o.worker_idle != 2)
        return;
    ld->boosted = 1;
    for (int k = 0; k < ld->nthreads; k++)
        if (ld->args[k].adaptive && ld->args[k].idle_now) {
            set_idle(ld->threads[k], 0);
            ld->args[k].idle_now = 0;
        }
}

/* Under ld->mu, before a worker claims a batch (worker_idle 2): SCHED_IDLE while the consumer
 * is not waiting, so that a worker runs only on a core the training leaves idle and a waking
 * training thread preempts it at once (loader.h, worker policy). */
static void worker_adapt(struct worker_arg *a)
{
    if (a->adaptive && a->idle_now != !a->ld->boosted) {
        a->idle_now = !a->ld->boosted;
        set_idle(pthread_self(), a->idle_now);
    }
}

/* A worker can claim a batch: the ring has a free slot and the consumer is not making the
 * batches itself. */
static int can_claim(const struct loader *ld)
{
    return ld->B > 0 && !ld->inline_now &&
           ld->next_claim < ld->next_take + (uint64_t)ld->nslots;
}

/* Under ld->mu: claims the ring's next batch number for the caller, a worker or the consumer
 * (as its first filler), and picks its images. */
static struct slot *claim_slot(struct loader *ld)
{
    struct slot *s = &ld->slots[ld->next_claim % (uint64_t)ld->nslots];
    CN_ASSERT(s->state == SLOT_FREE);
    s->number = ld->next_claim++;
    s->state = SLOT_FILLING;
    s->count = ld->B;
    s->g = ld->base + s->number * (uint64_t)ld->B;
    s->done = 0;
    s->fail_at = s->count;
    s->fillers = 1;
    atomic_store_explicit(&s->next, 0, memory_order_relaxed);
    ld->filling++;
    pick_batch(ld, s->idx, s->g, s->count);
    return s;
}

/* Without ld->mu, as one of the fillers of slot s (registered in s->fillers): makes its samples
 * one at a time, taking the next untaken number each time, until none is left. Returns how many
 * it made; *fail gets the lowest of them that failed (s->count: none) and err why. */
static int fill_part(struct loader *ld, struct maker *mk, struct slot *s, int *fail,
                     cn_error *err)
{
    size_t C = (size_t)ld->o.classes;
    int made = 0, b;
    *fail = s->count;
    while ((b = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed)) < s->count) {
        cn_error why;
        if (make_sample(ld, mk, global_sample(ld, s->g + (uint64_t)b), s->idx[b],
                        s->x + (size_t)b * ld->isize, s->truth + (size_t)b * C, &why) &&
            b < *fail) {
            *fail = b;
            *err = why;
        }
        made++;
    }
    return made;
}

/* Under ld->mu: a filler of s leaves with made samples (fail, err: fill_part's). The last one
 * out, with every sample made, marks the batch ready; until then the slot cannot be taken, so
 * no filler ever touches a slot reused for another batch. */
static void part_done(struct loader *ld, struct slot *s, int made, int fail, const cn_error *err)
{
    if (fail < s->fail_at) {
        s->fail_at = fail;
        s->err = *err;
    }
    s->done += made;
    if (--s->fillers || s->done < s->count)
        return;
    s->failed = s->fail_at < s->count;
    s->state = SLOT_READY;
    ld->filling--;
    if (ld->boosted && !ld->filling && ld->next_claim == ld->next_take + (uint64_t)ld->nslots)
        ld->boosted = 0; /* the ring is full: back to idle at the next claims */
    pthread_cond_broadcast(&ld->ready);
}

/* Under ld->mu, which it releases while filling: fills the caller's part of s as one filler. */
static void fill_locked(struct loader *ld, struct maker *mk, struct slot *s)
{
    pthread_mutex_unlock(&ld->mu);
    cn_error err;
    int fail, made = fill_part(ld, mk, s, &fail, &err);
    pthread_mutex_lock(&ld->mu);
    part_done(ld, s, made, fail, &err);
}

static void *worker_main(void *p)
{
    struct worker_arg *a = p;
    struct loader *ld = a->ld;
    sigset_t all; /* signals (SIGINT from the train loop's handler) go to the caller's thread */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    int adaptive = worker_deprioritise(ld);
    pthread_mutex_lock(&ld->mu);
    a->adaptive = adaptive;
    for (;;) {
        while (!ld->stop && !can_claim(ld))
            pthread_cond_wait(&ld->space, &ld->mu);
        if (ld->stop)
            break;
        worker_adapt(a);
        fill_locked(ld, &a->mk, claim_slot(ld));
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static void slots_free(struct loader *ld)
{
    for (int k = 0; k < ld->nslots && ld->slots; k++) {
        cn_free_floats(ld->slots[k].x);
        cn_free_floats(ld->slots[k].truth);
        free(ld->slots[k].idx);
    }
    free(ld->slots);
    ld->slots = NULL;
    ld->B = 0;
}

/* Allocates the ring for batches of B images (workers > 0). */
static int slots_alloc(struct loader *ld, int B, cn_error *e)
{
    size_t nx, nt;
    if (cn_mul(&nx, ld->isize, (size_t)B) || cn_mul(&nt, (size_t)ld->o.classes, (size_t)B))
        return cn_fail(e, "%s: batch of %d images is too large", ld->list->path, B);
    ld->slots = xcalloc((size_t)ld->nslots, sizeof *ld->slots);
    for (int k = 0; k < ld->nslots; k++) {
        struct slot *s = &ld->slots[k];
        s->x = cn_alloc_floats(nx, "loader batch", e);
        s->truth = s->x ? cn_alloc_floats(nt, "loader truth", e) : NULL;
        s->idx = xmalloc(sizeof *s->idx * (size_t)B);
        if (!s->truth) {
            slots_free(ld);
            return -1;
        }
    }
    ld->B = B;
    return 0;
}

/* Under ld->mu: waits for the workers to finish what they are filling, drops the ring's
 * contents and restarts it at stream position seen with batches of B (0: idle). */
static int reposition(struct loader *ld, uint64_t seen, int B, cn_error *e)
{
    while (ld->filling > 0)
        pthread_cond_wait(&ld->ready, &ld->mu);
    int rc = 0;
    if (B != ld->B && ld->nthreads) {
        slots_free(ld);
        rc = B ? slots_alloc(ld, B, e) : 0;
    }
    for (int k = 0; k < ld->nslots && ld->slots; k++)
        ld->slots[k].state = SLOT_FREE;
    ld->base = ld->seen = seen;
    ld->next_claim = ld->next_take = 0;
    if (!ld->nthreads)
        ld->B = B;
    pthread_cond_broadcast(&ld->space);
    return rc;
}

int loader_seek(struct loader *ld, uint64_t seen, cn_error *e)
{
    pthread_mutex_lock(&ld->mu);
    int rc = reposition(ld, seen, ld->B, e);
    pthread_mutex_unlock(&ld->mu);
    return rc;
}

/* Under ld->mu, which it releases: the consumer makes the next batch itself, into the caller's
 * buffers (workers = 0, or plain batches with nothing claimed ahead). It takes the ring's next
 * batch number, so a later switch back to the ring (a reposition) numbers on consistently. */
static int next_inline(struct loader *ld, float *x, float *truth, int batch, cn_error *e)
{
    if (batch > ld->own_cap) {
        free(ld->own_idx);
        ld->own_idx = xmalloc(sizeof *ld->own_idx * (size_t)batch);
        ld->own_cap = batch;
    }
    uint64_t g = ld->seen;
    pick_batch(ld, ld->own_idx, g, batch);
    ld->next_claim++;
    ld->next_take++;
    ld->seen += (uint64_t)batch;
    pthread_mutex_unlock(&ld->mu);
    return fill_batch(ld, &ld->own, x, truth, ld->own_idx, g, batch, e);
}

/* Under ld->mu: the next batch from the ring (waits for it), copied into the caller's buffers;
 * its slot is freed for one worker. */
static int take_ready(struct loader *ld, float *x, float *truth, int batch, cn_error *e)
{
    uint64_t number = ld->next_take;
    struct slot *s = &ld->slots[number % (uint64_t)ld->nslots];
    while (!(s->state == SLOT_READY && s->number == number)) {
        workers_boost(ld);
        if (ld->next_claim == number && can_claim(ld)) { /* no worker has started it */
            fill_locked(ld, &ld->own, claim_slot(ld));
        } else if (s->state == SLOT_FILLING && s->number == number &&
                   atomic_load_explicit(&s->next, memory_order_relaxed) < s->count) {
            s->fillers++; /* help the worker filling it */
            fill_locked(ld, &ld->own, s);
        } else {
            pthread_cond_wait(&ld->ready, &ld->mu);
        }
    }
    s->state = SLOT_TAKING;
    pthread_mutex_unlock(&ld->mu);
    int failed = s->failed;
    if (failed && e)
        *e = s->err;
    memcpy(x, s->x, sizeof *x * ld->isize * (size_t)batch);
    if (truth)
        memcpy(truth, s->truth, sizeof *truth * (size_t)ld->o.classes * (size_t)batch);
    pthread_mutex_lock(&ld->mu);
    s->state = SLOT_FREE;
    ld->next_take++;
    ld->seen += (uint64_t)batch;
    struct slot *next = &ld->slots[ld->next_take % (uint64_t)ld->nslots];
    if (!(next->state == SLOT_READY && next->number == ld->next_take))
        workers_boost(ld); /* the ring runs low: the next batch is not ready yet */
    pthread_cond_signal(&ld->space); /* one slot: one claim */
    pthread_mutex_unlock(&ld->mu);
    return failed ? -1 : 0;
}

int loader_next(struct loader *ld, float *x, float *truth, int batch, cn_error *e)
{
    if (batch < 1)
        return cn_fail(e, "%s: batch of %d images", ld->list->path, batch);
    pthread_mutex_lock(&ld->mu);
    if (ld->nthreads && batch != ld->B && reposition(ld, ld->seen, batch, e)) {
        pthread_mutex_unlock(&ld->mu);
        return -1;
    }
    if (ld->nthreads && !ld->inline_now && ld->o.plain_inline && batches_plain(ld))
        ld->inline_now = 1; /* the workers claim no more; what they claimed is taken first */
    if (!ld->nthreads || (ld->inline_now && ld->next_take == ld->next_claim))
        return next_inline(ld, x, truth, batch, e);
    return take_ready(ld, x, truth, batch, e);
}

/* ---- creation ---- */

void loader_opts_default(struct loader_opts *o, int w, int h, int c, int classes, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    o->w = w;
    o->h = h;
    o->c = c;
    o->classes = classes;
    o->seed = seed;
    o->sampling = SAMPLING_EPOCH;
    o->plain_inline = 1;
    o->worker_nice = LOADER_WORKER_NICE;
    o->worker_idle = LOADER_WORKER_IDLE;
    aug_config_default(&o->aug);
}

static int check_args(const struct image_list *list, const struct loader_opts *o, cn_error *e)
{
    if (o->w < 1 || o->h < 1 || o->c < 1 || o->c > 4 || o->classes < 1 || list->n < 1)
        return cn_fail(e, "%s: cannot load %dx%dx%d images for %d classes from %d images",
                       list->path, o->w, o->h, o->c, o->classes, list->n);
    if (o->workers < 0 || o->workers > 64 || o->batch < 0)
        return cn_fail(e, "%s: %d workers, batch %d", list->path, o->workers, o->batch);
    if (o->worker_nice < 0 || o->worker_nice > 19)
        return cn_fail(e, "%s: worker_nice %d is outside 0..19", list->path, o->worker_nice);
    if (o->worker_idle < 0 || o->worker_idle > 2)
        return cn_fail(e, "%s: worker_idle %d is outside 0..2", list->path, o->worker_idle);
    if (o->shards > 1 && (o->shard < 0 || o->shard >= o->shards || o->shard_batch < 1))
        return cn_fail(e, "%s: shard %d of %d, %d images each", list->path, o->shard, o->shards,
                       o->shard_batch);
    size_t isize;
    if (cn_mul(&isize, (size_t)o->w * (size_t)o->h, (size_t)o->c) || isize > IMAGE_MAX_PIXELS * 4)
        return cn_fail(e, "%s: %dx%dx%d input is too large", list->path, o->w, o->h, o->c);
    for (int i = 0; i < list->n; i++) {
        if (list->labels[i] >= 0 && list->labels[i] < o->classes)
            continue;
        if (list->kind == LIST_FILE)
            return cn_fail(e, "%s:%d: label %d is outside 0..%d", list->path, list->lines[i],
                           list->labels[i], o->classes - 1);
        return cn_fail(e, "%s: label %d is outside 0..%d", list->paths[i], list->labels[i],
                       o->classes - 1);
    }
    return 0;
}

/* The fixed-size cache's slab of total bytes, its pages touched here (huge pages asked for, on
 * Linux): every entry is written in the first epoch, and the first write to a page faults it in,
 * 0.2-1.3 us of kernel time per 784-byte entry (measured on a 2-core VM), taken from the
 * training running beside the workers; here it is paid once, before training starts. */
static uint8_t *slab_alloc(size_t total)
{
    uint8_t *p = malloc(total);
    if (!p)
        return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t from = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t to = ((uintptr_t)p + total) & ~(huge - 1);
    if (to > from)
        (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#endif
    memset(p, 0, total);
    return p;
}

/* The cache: fixed-size entries (all or nothing) or native-size ones within the budget. */
static void cache_setup(struct loader *ld)
{
    size_t total, n = (size_t)ld->list->n;
    if (!ld->o.cache_bytes || ld->list->pixels)
        return;
    if (!ld->warp) {
        if (cn_mul(&total, ld->isize, n) || total > ld->o.cache_bytes ||
            !(ld->cache_slab = slab_alloc(total)))
            return;
    }
    ld->cache = calloc(n, sizeof *ld->cache);
    if (!ld->cache) {
        free(ld->cache_slab);
        ld->cache_slab = NULL;
        return;
    }
    for (size_t i = 0; i < n; i++)
        atomic_init(&ld->cache[i].state, CACHE_EMPTY);
}

static int start_workers(struct loader *ld, cn_error *e)
{
    int n = ld->o.workers;
    ld->threads = xcalloc((size_t)n, sizeof *ld->threads);
    ld->args = xcalloc((size_t)n, sizeof *ld->args);
    for (int k = 0; k < n; k++) {
        ld->args[k].ld = ld;
        ld->args[k].mk.mix = xmalloc(sizeof(float) * ld->isize);
        if (pthread_create(&ld->threads[k], NULL, worker_main, &ld->args[k]))
            return cn_fail(e, "%s: cannot start loader thread %d of %d", ld->list->path, k + 1, n);
        ld->nthreads = k + 1;
    }
    return 0;
}

int loader_open(struct loader **out, const struct image_list *list, const struct loader_opts *o,
                cn_error *e)
{
    *out = NULL;
    if (check_args(list, o, e))
        return -1;
    struct loader *ld = xcalloc(1, sizeof *ld);
    ld->list = list;
    ld->o = *o;
    ld->isize = (size_t)o->w * (size_t)o->h * (size_t)o->c;
    ld->warp = aug_has_warp(&o->aug);
    ld->warp_source = ld->warp && !o->aug.crop;
    ld->plain = !aug_has_geometry(&o->aug) && !aug_is_random(&o->aug);
    if (o->class_weights) {
        ld->weights = xmalloc(sizeof *ld->weights * (size_t)o->classes);
        memcpy(ld->weights, o->class_weights, sizeof *ld->weights * (size_t)o->classes);
        ld->o.class_weights = ld->weights;
    }
    ld->perm = xmalloc(sizeof *ld->perm * (size_t)list->n);
    ld->perm_epoch = UINT64_MAX;
    atomic_init(&ld->cache_ready, 0);
    atomic_init(&ld->decoded, 0);
    ld->bad = xcalloc((size_t)list->n, sizeof *ld->bad);
    ld->reports = xcalloc(MAX_REPORTS, sizeof *ld->reports);
    ld->own.mix = xmalloc(sizeof(float) * ld->isize);
    if (o->sampling == SAMPLING_BALANCED)
        balanced_setup(ld);
    cache_setup(ld);
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->ready, NULL);
    pthread_cond_init(&ld->space, NULL);
    ld->nslots = o->workers + 1;
    *out = ld;
    if (o->workers && start_workers(ld, e)) {
        loader_destroy(ld);
        *out = NULL;
        return -1;
    }
    if (o->batch) {
        pthread_mutex_lock(&ld->mu);
        int rc = reposition(ld, 0, o->batch, e);
        pthread_mutex_unlock(&ld->mu);
        if (rc) {
            loader_destroy(ld);
            *out = NULL;
            return -1;
        }
    }
    return 0;
}

int loader_create(struct loader **out, const struct image_list *list, int w, int h, int c,
                  int classes, uint64_t seed, size_t cache_bytes, cn_error *e)
{
    struct loader_opts o;
    loader_opts_default(&o, w, h, c, classes, seed);
    o.cache_bytes = cache_bytes;
    return loader_open(out, list, &o, e);
}

static void cache_free(struct loader *ld)
{
    if (ld->cache && !ld->cache_slab)
        for (int i = 0; i < ld->list->n; i++)
            if (atomic_load(&ld->cache[i].state) == CACHE_READY)
                free(ld->cache[i].px);
    free(ld->cache);
    free(ld->cache_slab);
}

void loader_destroy(struct loader *ld)
{
    if (!ld)
        return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->space);
    pthread_mutex_unlock(&ld->mu);
    for (int k = 0; k < ld->nthreads; k++)
        pthread_join(ld->threads[k], NULL);
    for (int k = 0; ld->args && k < ld->o.workers; k++)
        maker_free(&ld->args[k].mk);
    free(ld->threads);
    free(ld->args);
    slots_free(ld);
    pthread_cond_destroy(&ld->ready);
    pthread_cond_destroy(&ld->space);
    pthread_mutex_destroy(&ld->mu);
    maker_free(&ld->own);
    free(ld->own_idx);
    cache_free(ld);
    free(ld->weights);
    free(ld->perm);
    free((void *)ld->bad);
    free(ld->reports);
    free(ld->by_class);
    free(ld->class_start);
    free(ld->nonempty);
    free(ld);
}

/* ---- validation slices ---- */

/* Image first+b of a slice into x and truth (no random steps, normalised). */
static int fill_one(struct loader *ld, struct maker *mk, int i, float *x, float *t, cn_error *e)
{
    const struct loader_opts *o = &ld->o;
    int rc = load_image(ld, mk, i, x, 0, NULL, e);
    if (rc)
        return rc;
    aug_normalize(x, 1, o->w, o->h, o->c, &o->aug);
    if (t) {
        memset(t, 0, sizeof *t * (size_t)o->classes);
        t[ld->list->labels[i]] = weight_of(ld, ld->list->labels[i]);
    }
    return 0;
}

int loader_fill(struct loader *ld, float *x, float *truth, int first, int count, cn_error *e)
{
    const struct image_list *l = ld->list;
    if (first < 0 || count < 1 || count > l->n - first)
        return cn_fail(e, "%s: images %d..%d requested, but the list has %d", l->path, first,
                       first + count - 1, l->n);
    int fail_at = -1;
    cn_error first_err;
#pragma omp parallel if (FILL_PARALLEL && count > 1)
    {
        struct maker mk = {0};
#pragma omp for schedule(dynamic, 4)
        for (int b = 0; b < count; b++) {
            cn_error err;
            if (fill_one(ld, &mk, first + b, x + (size_t)b * ld->isize,
                         truth ? truth + (size_t)b * (size_t)ld->o.classes : NULL, &err)) {
#pragma omp critical(loader_fill_fail)
                if (fail_at < 0 || b < fail_at) {
                    fail_at = b;
                    first_err = err;
                }
            }
        }
        maker_free(&mk);
    }
    if (fail_at < 0)
        return 0;
    if (e)
        *e = first_err;
    int i = first + fail_at;
    return l->kind == LIST_FILE ? cn_wrap(e, "%s:%d", l->path, l->lines[i]) : -1;
}

/* ---- queries ---- */

uint64_t loader_epoch(const struct loader *ld)
{
    return ld->seen / (uint64_t)ld->list->n;
}

uint64_t loader_seen(const struct loader *ld)
{
    return ld->seen;
}

int loader_cached(const struct loader *ld)
{
    return ld->cache != NULL;
}

int loader_inline(struct loader *ld)
{
    pthread_mutex_lock(&ld->mu);
    int in = !ld->nthreads || ld->inline_now;
    pthread_mutex_unlock(&ld->mu);
    return in;
}

uint64_t loader_decoded(const struct loader *ld)
{
    return atomic_load(&((struct loader *)ld)->decoded);
}

uint64_t loader_skipped(const struct loader *ld)
{
    return atomic_load(&((struct loader *)ld)->skipped);
}

int loader_warning(struct loader *ld, cn_error *e)
{
    pthread_mutex_lock(&ld->mu);
    int have = ld->report_head < ld->nreports;
    if (have && e)
        *e = ld->reports[ld->report_head];
    ld->report_head += have;
    pthread_mutex_unlock(&ld->mu);
    return have;
}

/* ---- checking a set before training ---- */

/* Appends "; <where>: <message of image i>" for the first few bad images, then the count left. */
static void describe_bad(const struct image_list *l, const uint8_t *bad, int nbad, cn_error *e)
{
    enum { SHOWN = 3 };
    size_t len = strlen(e->msg);
    int shown = 0;
    for (int i = 0; i < l->n && shown < SHOWN && len < sizeof e->msg - 1; i++) {
        if (!bad[i])
            continue;
        cn_error one;
        image_check(l->paths[i], &one);
        int w = l->kind == LIST_FILE
                    ? snprintf(e->msg + len, sizeof e->msg - len, "%s%s:%d: %s", shown ? "; " : "",
                               l->path, l->lines[i], one.msg)
                    : snprintf(e->msg + len, sizeof e->msg - len, "%s%s", shown ? "; " : "",
                               one.msg);
        len = w < 0 ? len : CN_MIN(len + (size_t)w, sizeof e->msg - 1);
        shown++;
    }
    if (nbad > shown && len < sizeof e->msg - 1)
        snprintf(e->msg + len, sizeof e->msg - len, "; and %d more", nbad - shown);
}

int loader_check_all(const struct image_list *list, cn_error *e)
{
    if (list->pixels)
        return 0;
    uint8_t *bad = xcalloc((size_t)list->n, 1);
#pragma omp parallel for schedule(dynamic, 64) if (FILL_PARALLEL)
    for (int i = 0; i < list->n; i++)
        bad[i] = image_check(list->paths[i], NULL) != 0;
    int nbad = 0;
    for (int i = 0; i < list->n; i++)
        nbad += bad[i];
    if (nbad && e) {
        cn_fail(e, "%s: %d of %d images cannot be used: ", list->path, nbad, list->n);
        describe_bad(list, bad, nbad, e);
    }
    free(bad);
    return nbad ? -1 : 0;
}
