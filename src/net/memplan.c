/* memplan.c - greedy-by-size placement of buffers with live ranges, and the dead layers of a
 * reader graph (contracts in memplan.h).
 *
 * "Final output" means the last layer's output: the one output every caller of an inference net
 * without NET_KEEP_OUTPUTS reads (net_output; net_forward_upto(k) of a live layer k reads only
 * live layers). Everything from which no read chain reaches it is dead (memplan_dead).
 *
 * Cost: O(n^2 log n) for n buffers (a net has at most a few thousand layers). The order of
 * placement is by size, largest first, ties by first step then by index, so a plan depends on the
 * items alone.
 */
#include "net/memplan.h"

#include <stdlib.h>

#include "core/common.h"

#define MEMPLAN_ALIGN 16 /* floats: every storage starts on a 64-byte line */

struct by_size {
    const struct memplan_item *items;
    int k;
};

static int cmp_size(const void *a, const void *b)
{
    const struct by_size *x = a, *y = b;
    const struct memplan_item *p = &x->items[x->k], *q = &y->items[y->k];
    if (p->size != q->size)
        return p->size > q->size ? -1 : 1;
    if (p->first != q->first)
        return p->first < q->first ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);
}

static int cmp_offset(const void *a, const void *b)
{
    const struct memplan_item *const *p = a, *const *q = b;
    return ((*p)->offset > (*q)->offset) - ((*p)->offset < (*q)->offset);
}

/* The lowest offset of the smallest gap among placed (sorted by offset, np of them) that holds
 * size floats, else the end of the highest. */
static size_t best_gap(const struct memplan_item **placed, int np, size_t size)
{
    size_t at = 0, best = (size_t)-1, best_gap_size = (size_t)-1;
    for (int j = 0; j < np; j++) {
        const struct memplan_item *q = placed[j];
        if (q->offset > at && q->offset - at >= size && q->offset - at < best_gap_size) {
            best = at;
            best_gap_size = q->offset - at;
        }
        at = CN_MAX(at, q->offset + q->size);
    }
    return best != (size_t)-1 ? best : at;
}

size_t memplan_assign(struct memplan_item *items, int n)
{
    if (n <= 0)
        return 0;
    struct by_size *order = xmalloc(sizeof *order * (size_t)n);
    const struct memplan_item **live = xmalloc(sizeof *live * (size_t)n);
    char *done = xcalloc((size_t)n, 1);
    for (int k = 0; k < n; k++)
        order[k] = (struct by_size){items, k};
    qsort(order, (size_t)n, sizeof *order, cmp_size);
    size_t total = 0;
    for (int t = 0; t < n; t++) {
        struct memplan_item *it = &items[order[t].k];
        int np = 0;
        for (int j = 0; j < n; j++)
            if (done[j] && items[j].first <= it->last && it->first <= items[j].last)
                live[np++] = &items[j];
        qsort(live, (size_t)np, sizeof *live, cmp_offset);
        it->offset = best_gap(live, np, it->size);
        done[order[t].k] = 1;
        total = CN_MAX(total, it->offset + it->size);
    }
    free(done);
    free(live);
    free(order);
    return total;
}

size_t memplan_naive(struct memplan_item *items, int n)
{
    size_t total = 0;
    for (int k = 0; k < n; k++) {
        items[k].offset = total;
        total += items[k].size;
    }
    return total;
}

/* Whether offer f can be taken: see memplan.h for the layouts that agree per image. */
static int offer_fits(const struct memplan_out *o, const size_t *per_image, int batch,
                      const struct memplan_offer *f)
{
    if (o[f->layer].parent >= 0 || f->src == f->layer)
        return 0;
    if (f->kind == MEMPLAN_VIEW) {
        int whole = f->at == 0 && per_image[f->layer] == per_image[f->src];
        return whole || (batch == 1 && f->at + per_image[f->layer] <= per_image[f->src]);
    }
    return batch == 1 && o[f->src].parent < 0 && f->at + per_image[f->src] <= per_image[f->layer];
}

int memplan_offer(struct memplan_out *o, const size_t *per_image, int batch,
                  const struct memplan_offer *offers, int noffers)
{
    int taken = 0;
    for (int k = 0; k < noffers; k++) {
        const struct memplan_offer *f = &offers[k];
        if (!offer_fits(o, per_image, batch, f))
            continue;
        int child = f->kind == MEMPLAN_VIEW ? f->layer : f->src;
        o[child].parent = f->kind == MEMPLAN_VIEW ? f->src : f->layer;
        o[child].at = f->at;
        taken++;
    }
    return taken;
}

/* The storage holding output i, and where i starts in it. */
static int storage_of(const struct memplan_out *o, int i, size_t *at)
{
    *at = 0;
    while (o[i].parent >= 0) {
        *at += o[i].at;
        i = o[i].parent;
    }
    return i;
}

size_t memplan_outputs(struct memplan_out *o, int n, int share)
{
    struct memplan_item *it = xcalloc((size_t)(n > 0 ? n : 1), sizeof *it);
    int *root = xmalloc(sizeof *root * (size_t)(n > 0 ? n : 1)), nroot = 0;
    for (int i = 0; i < n; i++)
        if (o[i].parent < 0) {
            size_t size = (o[i].size + MEMPLAN_ALIGN - 1) / MEMPLAN_ALIGN * MEMPLAN_ALIGN;
            it[i] = (struct memplan_item){size, i, share ? o[i].last : n, 0};
        }
    for (int i = 0; i < n; i++) {
        size_t at;
        int r = storage_of(o, i, &at);
        CN_ASSERT(at + o[i].size <= o[r].size);
        it[r].first = CN_MIN(it[r].first, i);
        it[r].last = CN_MAX(it[r].last, share ? o[i].last : n);
    }
    for (int i = 0; i < n; i++)
        if (o[i].parent < 0)
            it[nroot++] = it[i]; /* i >= nroot: compacts the storages in index order */
    for (int i = 0, k = 0; i < n; i++)
        if (o[i].parent < 0)
            root[i] = k++;
    size_t total = share ? memplan_assign(it, nroot) : memplan_naive(it, nroot);
    for (int i = 0; i < n; i++) {
        size_t at;
        int r = storage_of(o, i, &at);
        o[i].offset = it[root[r]].offset + at;
    }
    free(root);
    free(it);
    return total;
}

static int cmp_reader_down(const void *a, const void *b)
{
    const struct memplan_read *x = a, *y = b;
    return (x->reader < y->reader) - (x->reader > y->reader);
}

/* Readers are later than what they read, so one sweep from the last reader down settles each
 * layer before any of its own reads is looked at. */
int memplan_dead(unsigned char *dead, int n, struct memplan_read *reads, int nreads)
{
    CN_ASSERT(n >= 1);
    if (nreads > 0) /* a one-layer net reads nothing, and reads may be NULL then */
        qsort(reads, (size_t)nreads, sizeof *reads, cmp_reader_down);
    for (int i = 0; i < n; i++)
        dead[i] = 1;
    dead[n - 1] = 0;
    for (int k = 0; k < nreads; k++) {
        CN_ASSERT(reads[k].src >= 0 && reads[k].src < reads[k].reader && reads[k].reader < n);
        if (!dead[reads[k].reader])
            dead[reads[k].src] = 0;
    }
    int count = 0;
    for (int i = 0; i < n; i++)
        count += dead[i];
    return count;
}
