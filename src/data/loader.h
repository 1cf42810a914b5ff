/* loader.h - batches of network input and one-hot truth from an image list.
 *
 * Training (loader_next): epochs of a shuffled order. Each epoch is a fresh permutation drawn from
 * the loader's own cn_rng, seeded once from the seed at creation, so the sequence of batches is a
 * function of the seed and the list alone (not of threads, timing or the cache). A batch that
 * runs past the end of an epoch continues with the next one, so the same image can appear twice
 * in a batch only when the batch is larger than the list or straddles two epochs.
 * Validation (loader_fill): a slice of the list in list order.
 *
 * Images in a batch are decoded in parallel (OpenMP over images). When the whole list, decoded to
 * w*h*c bytes per image, fits in cache_bytes, each image is decoded once and later reads come from
 * memory (Fashion-MNIST at 28x28x1: 60,000 x 784 bytes = 47 MB). Cached or not, an image yields
 * the same bytes, so batches are identical either way. Input rows are CHW floats in [0, 1], batch
 * major; truth rows are `classes` floats, 1 at the image's label and 0 elsewhere.
 *
 * Left out: augmentation (crops, flips, colour jitter) and background threads; the decode runs
 * in the caller's thread team while it waits.
 */
#ifndef CN_DATA_LOADER_H
#define CN_DATA_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "data/list.h"

struct loader;

/* Creates a loader over list (borrowed: it must outlive the loader) producing w x h x c images
 * and truth rows of length classes (every label of list must be < classes). cache_bytes bounds
 * the decoded-image cache; 0 turns it off. Returns 0, or -1 with a message. */
int loader_create(struct loader **out, const struct image_list *list, int w, int h, int c,
                  int classes, uint64_t seed, size_t cache_bytes, cn_error *e);

/* Frees ld; NULL is a no-op. */
void loader_destroy(struct loader *ld);

/* Writes the next batch images of the shuffled stream: x gets batch*w*h*c floats, truth (unless
 * NULL) batch*classes floats. On a decode failure returns -1 with "listfile:line: path: problem"
 * for the first failing image of the batch; the stream has still advanced past the batch. */
int loader_next(struct loader *ld, float *x, float *truth, int batch, cn_error *e);

/* Writes images first..first+count-1 of the list, in list order, like loader_next. Does not
 * touch the shuffled stream. */
int loader_fill(struct loader *ld, float *x, float *truth, int first, int count, cn_error *e);

/* Whole epochs handed out by loader_next so far: loader_seen / list size. */
uint64_t loader_epoch(const struct loader *ld);

/* Images handed out by loader_next so far. */
uint64_t loader_seen(const struct loader *ld);

/* 1 when decoded images are kept in memory. */
int loader_cached(const struct loader *ld);

/* Checks that every listed image exists and has a header stb_image reads, within image.h's size
 * limits (headers only: fast, but a truncated body passes). All images are checked; the message
 * lists the first few failures and the total, e.g. "data/x.list: 2 of 100 images cannot be used:
 * data/x.list:3: a.png: cannot open: No such file or directory; ...". Returns 0 or -1. */
int loader_check_all(const struct image_list *list, cn_error *e);

#endif
