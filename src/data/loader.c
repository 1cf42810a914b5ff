/* loader.c - shuffled and sequential batches over an image list, with an optional cache of
 * decoded bytes. See loader.h for the contract.
 *
 * A batch is loaded in two steps. With the cache: (1) the batch's images not yet cached are
 * listed once each (a batch may hold an image twice), serially, then decoded into their cache
 * slots in parallel; (2) every slot converts its cached bytes to floats, in parallel. Without it:
 * each slot decodes into its own scratch bytes and converts, in parallel. Every parallel
 * iteration writes only its own slot; a failure is recorded under a critical section, keeping the
 * one earliest in the batch, so the error reported does not depend on thread timing.
 */
#include "data/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/image.h"

enum { SLOT_EMPTY = 0, SLOT_READY = 1, SLOT_PENDING = 2 };

struct loader {
    const struct image_list *list;
    int w, h, c, classes;
    size_t isize; /* bytes (and floats) per image: w*h*c */
    cn_rng rng;
    int *perm, pos; /* the current epoch's order; next position in it */
    uint64_t seen;
    uint8_t *cache;   /* list->n * isize bytes, or NULL */
    uint8_t *state;   /* list->n SLOT_* flags for the cache */
    int cap;          /* capacity of the per-batch arrays below */
    int *idx, *todo;  /* list index of each batch slot; images to decode */
    uint8_t *scratch; /* cap * isize bytes, without the cache */
};

/* The first failure of a batch, by slot. */
struct first_fail {
    int at;
    cn_error e;
};

static void fail_note(struct first_fail *f, int at, const cn_error *e)
{
#pragma omp critical(loader_fail)
    {
        if (f->at < 0 || at < f->at) {
            f->at = at;
            f->e = *e;
        }
    }
}

static int fail_report(const struct loader *ld, const struct first_fail *f, int i, cn_error *e)
{
    if (e)
        *e = f->e;
    return cn_wrap(e, "%s:%d", ld->list->path, ld->list->lines[i]);
}

static void new_epoch(struct loader *ld)
{
    for (int i = 0; i < ld->list->n; i++)
        ld->perm[i] = i;
    cn_rng_shuffle(&ld->rng, ld->perm, ld->list->n);
    ld->pos = 0;
}

/* Allocates the cache when the decoded list fits in cache_bytes; without memory, goes on
 * without it (the cache only saves time). */
static void cache_setup(struct loader *ld, size_t cache_bytes)
{
    size_t total;
    if (!cache_bytes || cn_mul(&total, ld->isize, (size_t)ld->list->n) || total > cache_bytes)
        return;
    ld->cache = malloc(total);
    ld->state = calloc((size_t)ld->list->n, 1);
    if (!ld->cache || !ld->state) {
        free(ld->cache);
        free(ld->state);
        ld->cache = ld->state = NULL;
    }
}

static int check_args(const struct image_list *list, int w, int h, int c, int classes, cn_error *e)
{
    if (w < 1 || h < 1 || c < 1 || c > 4 || classes < 1 || list->n < 1)
        return cn_fail(e, "%s: cannot load %dx%dx%d images for %d classes from %d images",
                       list->path, w, h, c, classes, list->n);
    size_t isize;
    if (cn_mul(&isize, (size_t)w * (size_t)h, (size_t)c) || isize > IMAGE_MAX_PIXELS * 4)
        return cn_fail(e, "%s: %dx%dx%d input is too large", list->path, w, h, c);
    for (int i = 0; i < list->n; i++)
        if (list->labels[i] < 0 || list->labels[i] >= classes)
            return cn_fail(e, "%s:%d: label %d is outside 0..%d", list->path, list->lines[i],
                           list->labels[i], classes - 1);
    return 0;
}

int loader_create(struct loader **out, const struct image_list *list, int w, int h, int c,
                  int classes, uint64_t seed, size_t cache_bytes, cn_error *e)
{
    *out = NULL;
    if (check_args(list, w, h, c, classes, e))
        return -1;
    struct loader *ld = xcalloc(1, sizeof *ld);
    ld->list = list;
    ld->w = w;
    ld->h = h;
    ld->c = c;
    ld->classes = classes;
    ld->isize = (size_t)w * (size_t)h * (size_t)c;
    cn_rng_seed(&ld->rng, seed);
    ld->perm = xmalloc(sizeof *ld->perm * (size_t)list->n);
    new_epoch(ld);
    cache_setup(ld, cache_bytes);
    *out = ld;
    return 0;
}

void loader_destroy(struct loader *ld)
{
    if (!ld)
        return;
    free(ld->perm);
    free(ld->cache);
    free(ld->state);
    free(ld->idx);
    free(ld->todo);
    free(ld->scratch);
    free(ld);
}

/* Grows the per-batch arrays to hold n slots. */
static int reserve(struct loader *ld, int n, cn_error *e)
{
    if (n <= ld->cap)
        return 0;
    ld->idx = xrealloc(ld->idx, sizeof *ld->idx * (size_t)n);
    ld->todo = xrealloc(ld->todo, sizeof *ld->todo * (size_t)n);
    if (!ld->cache) {
        size_t bytes;
        uint8_t *p = NULL;
        if (!cn_mul(&bytes, ld->isize, (size_t)n))
            p = realloc(ld->scratch, bytes);
        if (!p)
            return cn_fail(e, "%s: out of memory for a batch of %d images", ld->list->path, n);
        ld->scratch = p;
    }
    ld->cap = n;
    return 0;
}

static void fill_truth(const struct loader *ld, float *truth, int count)
{
    if (!truth)
        return;
    memset(truth, 0, sizeof *truth * (size_t)count * (size_t)ld->classes);
    for (int b = 0; b < count; b++)
        truth[(size_t)b * (size_t)ld->classes + (size_t)ld->list->labels[ld->idx[b]]] = 1.0f;
}

/* Decodes the batch's uncached images into the cache, then converts every slot. */
static int load_cached(struct loader *ld, float *x, int count, cn_error *e)
{
    int ntodo = 0;
    for (int b = 0; b < count; b++) {
        int i = ld->idx[b];
        if (ld->state[i] == SLOT_EMPTY) {
            ld->state[i] = SLOT_PENDING;
            ld->todo[ntodo++] = i;
        }
    }
    const struct image_list *l = ld->list;
    struct first_fail f = {.at = -1};
#pragma omp parallel for schedule(dynamic, 4)
    for (int t = 0; t < ntodo; t++) {
        int i = ld->todo[t];
        cn_error err;
        int bad = image_load_u8(ld->cache + (size_t)i * ld->isize, l->paths[i], ld->w, ld->h, ld->c,
                                &err);
        ld->state[i] = bad ? SLOT_EMPTY : SLOT_READY;
        if (bad)
            fail_note(&f, t, &err);
    }
    if (f.at >= 0)
        return fail_report(ld, &f, ld->todo[f.at], e);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < count; b++)
        image_u8_to_float(x + (size_t)b * ld->isize, ld->cache + (size_t)ld->idx[b] * ld->isize,
                          ld->isize);
    return 0;
}

static int load_uncached(struct loader *ld, float *x, int count, cn_error *e)
{
    const struct image_list *l = ld->list;
    struct first_fail f = {.at = -1};
#pragma omp parallel for schedule(dynamic, 4)
    for (int b = 0; b < count; b++) {
        uint8_t *bytes = ld->scratch + (size_t)b * ld->isize;
        cn_error err;
        if (image_load_u8(bytes, l->paths[ld->idx[b]], ld->w, ld->h, ld->c, &err))
            fail_note(&f, b, &err);
        else
            image_u8_to_float(x + (size_t)b * ld->isize, bytes, ld->isize);
    }
    if (f.at >= 0)
        return fail_report(ld, &f, ld->idx[f.at], e);
    return 0;
}

/* Loads the images ld->idx[0..count) into x and truth. */
static int load_slots(struct loader *ld, float *x, float *truth, int count, cn_error *e)
{
    fill_truth(ld, truth, count);
    return ld->cache ? load_cached(ld, x, count, e) : load_uncached(ld, x, count, e);
}

int loader_next(struct loader *ld, float *x, float *truth, int batch, cn_error *e)
{
    if (batch < 1)
        return cn_fail(e, "%s: batch of %d images", ld->list->path, batch);
    if (reserve(ld, batch, e))
        return -1;
    for (int b = 0; b < batch; b++) {
        if (ld->pos == ld->list->n)
            new_epoch(ld);
        ld->idx[b] = ld->perm[ld->pos++];
    }
    ld->seen += (uint64_t)batch;
    return load_slots(ld, x, truth, batch, e);
}

int loader_fill(struct loader *ld, float *x, float *truth, int first, int count, cn_error *e)
{
    if (first < 0 || count < 1 || count > ld->list->n - first)
        return cn_fail(e, "%s: images %d..%d requested, but the list has %d", ld->list->path, first,
                       first + count - 1, ld->list->n);
    if (reserve(ld, count, e))
        return -1;
    for (int b = 0; b < count; b++)
        ld->idx[b] = first + b;
    return load_slots(ld, x, truth, count, e);
}

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

/* Appends "; <message of image i>" for the first few bad images, then the count left. */
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
        int w = snprintf(e->msg + len, sizeof e->msg - len, "%s%s:%d: %s", shown ? "; " : "",
                         l->path, l->lines[i], one.msg);
        len = w < 0 ? len : CN_MIN(len + (size_t)w, sizeof e->msg - 1);
        shown++;
    }
    if (nbad > shown && len < sizeof e->msg - 1)
        snprintf(e->msg + len, sizeof e->msg - len, "; and %d more", nbad - shown);
}

int loader_check_all(const struct image_list *list, cn_error *e)
{
    uint8_t *bad = xcalloc((size_t)list->n, 1);
#pragma omp parallel for schedule(dynamic, 64)
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
