/* loader.h - batches of network input and truth from an image set, made by background threads.
 *
 * The stream (loader_next): sample g = 0, 1, 2... of the training stream is a pure function of
 * (seed, g, the image set, the options): its image comes from the sampling rule, and every random
 * choice of its augmentation from its own cn_rng stream, cn_rng_seed_stream(seed, g). So the
 * batches are the same, bit for bit, whatever the number of workers, the cache or the timing,
 * and any point of the stream can be reached without replaying it (loader_seek). Sampling
 * (augment.h, sampling=):
 *   epoch    - epoch k = samples k*n .. k*n+n-1 is a permutation of the n images, shuffled from
 *              stream (seed, 2^63 + k); a batch that runs past an epoch continues in the next.
 *   random   - each sample an image uniform over the set, with replacement (Darknet's way).
 *   balanced - each sample a class uniform over the classes that have images, then an image of
 *              that class uniform (for imbalanced sets).
 * Batches: ring of workers+1 preallocated batches; each of `workers` persistent threads claims
 * the next batch number, fills it (decode, augment, truth) and marks it ready, while loader_next
 * hands them out in order (it copies one into the caller's buffers). Mutex and two condition
 * variables; no thread is created per batch. When the batch loader_next is to hand out is not
 * ready, the caller does not sleep while samples of it are left to make: it makes them with the
 * worker filling it (or alone, when no worker has started it), so a training thread that would
 * wait decodes instead, at its own priority. With workers = 0, loader_next makes each batch in
 * the caller's thread. Input rows are CHW floats (in [0, 1] before mean/std normalisation),
 * batch major; truth rows are `classes` floats (augment.h steps 5-6; class weights scale them).
 *
 * Worker policy (the training threads compete with the workers for the cores):
 *   - plain batches inline (plain_inline, default 1): when no augmentation step is random and
 *     every image's bytes are at hand (an IDX set, always; a list, once the fixed-size cache
 *     holds every image that decodes), a sample is a copy and a u8-to-float conversion, about
 *     1 us per 28x28 image. loader_next then makes the batch itself, straight into the caller's
 *     buffers, and the workers sleep on their condition variable (no spinning, no wake-ups):
 *     no second copy through the ring and no thread to schedule against the training threads.
 *     Batches already claimed by the workers are handed out first, so the stream is unchanged.
 *   - workers deprioritised (worker_nice, default LOADER_WORKER_NICE): each worker adds it to
 *     its own nice value (Linux: per thread), so that when a worker and a training thread both
 *     want a core, the training thread wins, and a woken worker does not stall an OpenMP team
 *     at its barrier; the workers get the cycles the training leaves idle.
 *   - idle workers (worker_idle 1; Linux): each worker also switches itself to
 *     SCHED_IDLE, so that it runs only on a core nothing else wants and a waking training thread
 *     preempts it at once (with nice alone it may finish its time slice first, while the rest
 *     of the OpenMP team waits at a barrier). The cost: on a machine other programs keep busy,
 *     idle workers get almost no time and the training waits for its batches.
 *   - adaptive (worker_idle 2, LOADER_WORKER_IDLE: the default; 0 is nice only; Linux):
 *     SCHED_IDLE only while the training is not short of batches. When the consumer takes a
 *     batch and the next is not ready, or has to wait for one, it returns every worker to the
 *     normal policy (at its nice value), and helps fill that batch; the workers go back to
 *     SCHED_IDLE once the ring is full again. Leaving SCHED_IDLE needs the right to
 *     lower a nice value (RLIMIT_NICE or CAP_SYS_NICE); a worker without it, probed at its
 *     start, keeps the nice-only policy, so no worker is ever stuck idle.
 *   None changes a batch: samples depend only on (seed, sample number, set, options).
 *
 * Images that fail to decode in the stream (the header passed loader_check_all but the data is
 * truncated, or a file vanished) are skipped: the sample takes the next image of the set, in set
 * order, that decodes. Each such image is reported once (loader_warning) and counted
 * (loader_skipped). Since a file fails every time, the substitute does not depend on timing.
 *
 * Validation (loader_fill): images first..first+count-1 in set order, no random augmentation
 * (mean/std normalisation still applies), decode errors are errors. It runs in the caller (OpenMP
 * over images, serial under ThreadSanitizer, whose runtime does not see libgomp's barriers).
 *
 * Cache: when the decoded set fits in cache_bytes, each image is decoded once. Unless the
 * augmentation warps (crop, angle, translate: aug_has_warp) the cache holds each image's default
 * view, w x h x c bytes, and is all or nothing (decided at creation, where its memory is also
 * touched, so that the first epoch takes no page faults); pad_crop then shifts that
 * cached view. With a warp, images are kept until cache_bytes is used up: at their own size under
 * min_crop/max_crop (the scale is drawn per sample), otherwise as the source the warp reads
 * (aug_warp_source: shrunk once to cover w x h), so no sample resizes again. A cached and a
 * decoded image give the same bytes, so batches are identical either way. Resizing is
 * anti-aliased bilinear (image.h). Without geometric augmentation (and in loader_fill) an image
 * is resized keeping its aspect ratio to cover w x h and its centre w x h cut: the default view
 * of `classifier valid` and `predict` (views_default_u8), never a stretch.
 */
#ifndef CN_DATA_LOADER_H
#define CN_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "data/augment.h"
#include "data/list.h"

struct loader;

struct loader_opts {
    int w, h, c, classes;
    uint64_t seed;
    size_t cache_bytes;   /* 0 turns the cache off */
    int workers;          /* background threads, 0..64; 0 = in the caller's thread */
    int plain_inline;     /* 1 (default): plain batches are made in the caller (worker policy) */
    int worker_nice;      /* 0..19 added to the workers' nice value (LOADER_WORKER_NICE) */
    int worker_idle;      /* 1: workers under SCHED_IDLE (Linux), 2: adaptive (SCHED_IDLE
                             while the ring keeps up), 0 (default): nice only */
    int batch;            /* images per loader_next, to start prefetching at once; 0 = learn it
                             from the first loader_next */
    enum sampling sampling;
    const float *class_weights; /* classes positive weights (copied), or NULL */
    struct aug_config aug;      /* training augmentation; loader_fill only normalises */
    /* Sharding (data-parallel training, shards > 1): this loader's stream is shard `shard` of
     * `shards`: of every run of shards x shard_batch stream samples (one global batch), it hands
     * out the shard_batch starting at shard x shard_batch, as global sample numbers (so image
     * and augmentation are those of the unsharded stream). Its positions (loader_seen,
     * loader_seek) count its own samples. shards 0 or 1: the whole stream. */
    int shards, shard, shard_batch;
};

#define LOADER_WORKER_NICE 10 /* the default worker_nice (worker policy above) */
#define LOADER_WORKER_IDLE 2 /* the default worker_idle: adaptive (worker policy above) */

/* Options with w x h x c, classes and seed set, no cache, no workers, epoch sampling, no
 * augmentation, plain_inline 1, worker_nice LOADER_WORKER_NICE, worker_idle
 * LOADER_WORKER_IDLE. */
void loader_opts_default(struct loader_opts *o, int w, int h, int c, int classes, uint64_t seed);

/* Creates a loader over list (borrowed: it must outlive the loader). Every label of list must be
 * < classes; balanced sampling needs an image in at least one class. Starts the workers. Returns
 * 0, or -1 with a message. */
int loader_open(struct loader **out, const struct image_list *list, const struct loader_opts *o,
                cn_error *e);

/* loader_open with loader_opts_default and cache_bytes: no threads, no augmentation. */
int loader_create(struct loader **out, const struct image_list *list, int w, int h, int c,
                  int classes, uint64_t seed, size_t cache_bytes, cn_error *e);

/* Stops the workers and frees ld; NULL is a no-op. */
void loader_destroy(struct loader *ld);

/* Writes the next batch images of the stream: x gets batch*w*h*c floats, truth (unless NULL)
 * batch*classes floats. A batch size other than the previous one repositions the ring at the
 * current point (work prepared ahead is dropped, the stream is unchanged). Returns 0, or -1
 * with a message when a batch cannot be made (out of memory, every image of the set failing);
 * the stream has then still advanced past the batch. */
int loader_next(struct loader *ld, float *x, float *truth, int batch, cn_error *e);

/* Positions the stream as if `seen` images had been handed out by loader_next since creation,
 * so that the following batches equal, bit for bit, those an uninterrupted run would give after
 * `seen` images (whatever the batch sizes that run used, since samples are numbered globally).
 * For exact resume from a checkpoint's image count. Drops work prepared ahead; cheap (no image
 * is decoded to get there). Afterwards loader_seen() == seen. Returns 0. */
int loader_seek(struct loader *ld, uint64_t seen, cn_error *e);

/* Writes images first..first+count-1 of the set, in set order, like loader_next but without
 * random augmentation; a decode failure is an error "listfile:line: path: problem" for the first
 * failing image. Does not touch the stream. */
int loader_fill(struct loader *ld, float *x, float *truth, int first, int count, cn_error *e);

/* Whole epochs handed out by loader_next so far: loader_seen / set size. */
uint64_t loader_epoch(const struct loader *ld);

/* Images handed out by loader_next so far (or set by loader_seek). */
uint64_t loader_seen(const struct loader *ld);

/* 1 when decoded images are kept in memory. */
int loader_cached(const struct loader *ld);

/* 1 when loader_next makes the batches in the caller's thread: workers = 0, or plain batches
 * under plain_inline (worker policy above); the workers then sleep. Thread safe. */
int loader_inline(struct loader *ld);

/* Image files decoded so far (loader_next and loader_fill). With the whole set in the cache it
 * stops growing once every image is in: each image is decoded once, plus once more by each
 * sample that met its entry while another thread was filling it. Thread safe. */
uint64_t loader_decoded(const struct loader *ld);

/* Images of the set found undecodable by the stream so far (each counted once). Thread safe. */
uint64_t loader_skipped(const struct loader *ld);

/* Takes the next not yet taken report of a skipped image: returns 1 with "where: problem
 * (skipped)" in e, or 0 when there is none. Reports beyond the first 64 are only counted. */
int loader_warning(struct loader *ld, cn_error *e);

/* Checks that every image of the set exists and has a header stb_image reads, within image.h's
 * size limits (headers only: fast, but a truncated body passes). All images are checked; the
 * message lists the first few failures and the total, e.g. "data/x.list: 2 of 100 images cannot
 * be used: data/x.list:3: a.png: cannot open: No such file or directory; ...". IDX sets are in
 * memory and always pass. Returns 0 or -1. */
int loader_check_all(const struct image_list *list, cn_error *e);

#endif
