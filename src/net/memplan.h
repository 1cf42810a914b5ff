/* memplan.h - offsets in one slab for buffers with live ranges, so that buffers never live at the
 * same time share memory (a net's activations by liveness).
 *
 * Buffer k needs size floats and is live over the steps [first, last] (inclusive: layer indices,
 * from the layer that writes it to the last layer that reads it). Two buffers may overlap in
 * memory only when their ranges are disjoint. memplan_assign is greedy by size (TensorFlow Lite's
 * "greedy by size" arena planner): largest first, each placed in the smallest gap that fits among
 * the buffers already placed whose ranges meet its own, or above them all. memplan_naive gives
 * every buffer its own memory, one after the other: the plan without sharing, for comparison.
 */
#ifndef CN_MEMPLAN_H
#define CN_MEMPLAN_H

#include <stddef.h>

struct memplan_item {
    size_t size;      /* floats (callers round up for alignment first) */
    int first, last;  /* live range, first <= last */
    size_t offset;    /* set by the planner */
};

/* Sets every item's offset; returns the floats the slab needs (0 when n == 0). */
size_t memplan_assign(struct memplan_item *items, int n);
size_t memplan_naive(struct memplan_item *items, int n);

/* Layer outputs (or output gradients) of a net of n layers. Output i is written by layer i and
 * read up to layer last; it may live inside another layer's storage: parent >= 0 is that layer,
 * at (floats) where it starts there (set by memplan_offer). */
struct memplan_out {
    size_t size;   /* floats per pass (batch x shape), rounded up for alignment */
    int last;      /* the last layer that reads it, >= its own index */
    int parent;    /* -1, or the layer whose storage holds this one */
    size_t at;     /* its start within the parent's storage */
    size_t offset; /* set by memplan_outputs: its start in the slab */
};

/* Offers of in-place outputs, made by a layer whose forward copies the output of src:
 *   view: layer's output IS src's output from float `at` on (a single-input [route]): the layer's
 *         output may live in src's storage, when the batch is 1 or the whole of src is viewed;
 *   slot: layer's output holds src's whole output at `at` (a [route] concatenating): src may
 *         write there directly, when the batch is 1 and src is not already in some storage.
 * Per image the two layouts agree only at batch 1 (NCHW: image b starts at b x shape), except
 * for a view of the whole source. */
enum memplan_kind { MEMPLAN_VIEW, MEMPLAN_SLOT };
struct memplan_offer {
    enum memplan_kind kind;
    int layer, src;
    size_t at;
};

/* Applies the offers, in order (the order layers are built in), setting parent and at where one
 * is taken; per_image[i] is layer i's output shape size. Returns how many were taken. */
int memplan_offer(struct memplan_out *o, const size_t *per_image, int batch,
                  const struct memplan_offer *offers, int noffers);
/* Places the outputs: each storage (a layer without parent, with every output inside it) is
 * live from its first member's index to the last reader of any member (to the end of the net
 * without share); greedy by size when share, else one after the other. Returns the floats the
 * slab needs. */
size_t memplan_outputs(struct memplan_out *o, int n, int share);

/* The reader graph of a net: layer `reader` reads the output of layer `src` (src < reader),
 * through its implicit input (the layer below, unless build_input_unused) or a reference
 * ([route] layers=, [shortcut] / [scale_channels] from=, a [cost] reading its softmax).
 * Dead layers: a layer is live when some chain of reads leads from it to the net's final output,
 * which is the last layer's (what net_output returns, and all that predict, valid and the
 * features of any live layer need), else dead: nothing that reaches the output uses it. An
 * auxiliary head of GoogLeNet or Inception-v3 is dead, its [softmax] read by nothing (a loss
 * layer may not be read) and the [route] after it reading the trunk only. Inference nets skip
 * dead layers (PyTorch's eval() skips the aux heads likewise) and give them no output memory;
 * training nets run them all (the heads' weighted losses train the trunk), and so do nets
 * built with NET_KEEP_OUTPUTS (every output is asked for). */
struct memplan_read {
    int reader, src;
};

/* Sets dead[0..n) to 1 for dead layers, 0 for live ones, from the reads (in any order; they are
 * sorted in place). Returns how many are dead. n >= 1. */
int memplan_dead(unsigned char *dead, int n, struct memplan_read *reads, int nreads);

#endif
