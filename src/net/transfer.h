/* transfer.h - weights across cfgs: Darknet's `partial` (the first N layers of a .weights file)
 * and loading a file into a cfg whose layers differ in part (a new head: 1000 -> 5 classes),
 * re-initialising the layers that do not fit.
 *
 * A .weights file has no framing (weights.h): which floats belong to which layer follows from the
 * cfg that wrote it. So a file whose size differs from what a cfg needs can be matched two ways:
 *   - with the cfg it was written for (SRC): layer i of the file is layer i of SRC; it loads into
 *     layer i of the net when both have the same type, input and output channels and parameter
 *     tensors of the same sizes, and is re-initialised otherwise;
 *   - without it: the file is taken as a prefix of the net's layers (what `partial` writes, and
 *     Darknet's load_weights reads up to the end of file): layers wholly in the file load, the
 *     ones after its end keep their initial values. A file that ends inside a layer, or holds
 *     more than the net needs, cannot be matched and is an error asking for SRC.
 * Either way each re-initialised layer is reported through the notice callback, the values that
 * load are checked (finite, variances >= 0) before anything in the net changes, and seen is 0:
 * the count belonged to the other network.
 */
#ifndef CN_TRANSFER_H
#define CN_TRANSFER_H

#include "core/common.h"
#include "net/net.h"

/* Writes the parameters of n's layers 0..layers-1 to path as a .weights file with seen = 0
 * (Darknet's `partial`), atomically. Fails when layers is not in [0, n->n]. */
int transfer_save_partial(const struct net *n, int layers, const char *path, cn_error *e);

/* Receives one line per re-initialised layer, e.g. "layer 7 [connected] (line 40): weights has
 * 640 values in x.weights, 320 here: re-initialised". */
typedef void (*transfer_notice_fn)(void *ctx, const char *line);

/* Loads what fits of path into n as described above; src_cfg is the cfg path was written for,
 * or NULL. *reinit (may be NULL) gets the number of layers with parameters that did not load.
 * Returns 0, or -1 with a message and n unchanged. */
int transfer_load(struct net *n, const char *path, const char *src_cfg, transfer_notice_fn notice,
                  void *ctx, int *reinit, cn_error *e);

#endif
