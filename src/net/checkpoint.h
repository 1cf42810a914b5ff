/* checkpoint.h - training checkpoints: a Darknet-compatible .weights file (weights.h) plus a side
 * file "<weights>.state" holding what Darknet's format has no room for: the optimiser's state
 * (momentum, or Adam's moments and step count), the dropout generator of the net, and the seed
 * of the data order. Together with the images-seen count in the .weights header they let a run
 * resume exactly where it stopped. The file names of a run live here too.
 *
 * State file layout (version 1, native little-endian, 96-byte header then floats):
 *   char magic[8] "CFGNETST"; uint32 version; uint32 optimiser kind (optimizer.h numbers)
 *   uint64 seen; uint64 optimiser steps; uint64 data seed
 *   uint64 parameter floats of the net (its slab, padding included); uint64 state floats
 *   uint64 FNV-1a hash of the .weights parameter bytes it belongs with; uint64 rng[4]
 *   float32 state[state floats] (optimizer_state's layout)
 * Every field is checked against the net, the optimiser and the .weights it sits beside before
 * anything changes, and the file size must match exactly.
 *
 * Left out: the loader's position (it is a function of seen and the data seed: loader_seek).
 */
#ifndef CN_CHECKPOINT_H
#define CN_CHECKPOINT_H

#include <stdint.h>

#include "core/common.h"
#include "net/net.h"
#include "net/optimizer.h"

#define CHECKPOINT_STATE_SUFFIX ".state"

/* "<dir>/<base><suffix>" (one '/' between dir and base) in a malloc'd string. */
char *checkpoint_name(const char *dir, const char *base, const char *suffix);

/* "<weights_path>.state", malloc'd. */
char *checkpoint_state_path(const char *weights_path);

/* Writes path (the .weights) and path.state, each atomically (fileio_write_atomic: temporary
 * file, fsync, rename, fsync of the directory); the state goes first. Refuses, writing nothing,
 * when a parameter is not finite, so a diverged run never replaces a good checkpoint. A crash
 * between the two renames leaves a pair whose hashes differ: checkpoint_load_state says so.
 * Returns 0 or -1. */
int checkpoint_save(const struct net *n, const struct optimizer *o, uint64_t data_seed,
                    const char *path, cn_error *e);

/* After weights_load(n, weights_path): restores o's state and steps and n->rng from
 * weights_path.state. *restored is 1 when it did, 0 when there is no state file (a plain Darknet
 * .weights: nothing changes). Any other problem (damaged, another cfg, another optimiser, another
 * seed, a .weights it does not belong with) returns -1 with a message; nothing changes then. */
int checkpoint_load_state(struct net *n, struct optimizer *o, uint64_t data_seed,
                          const char *weights_path, int *restored, cn_error *e);

/* Index of the first parameter tensor of n holding a NaN or an infinity, or -1. */
int checkpoint_first_nonfinite_param(const struct net *n);

/* Removes numbered checkpoints "<dir>/<base>_<digits>.weights" (and their .state files) beyond
 * the keep newest by number; keep < 1 keeps all. *removed counts the .weights removed. Other
 * files are never touched. Returns 0 or -1 (a directory that cannot be read or a failed unlink). */
int checkpoint_prune(const char *dir, const char *base, int keep, int *removed, cn_error *e);

#endif
