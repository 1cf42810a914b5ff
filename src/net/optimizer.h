/* optimizer.h - the one optimiser of a net: SGD with momentum, Adam or AdamW over every parameter
 * the layers declared with PARAM_TRAIN (see optimizer.c for the update rules). */
#ifndef CN_OPTIMIZER_H
#define CN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "net/net.h"

struct optimizer;

/* Creates the optimiser chosen by n->cfg (adam=1, adamw=1, else SGD) with zeroed state: one
 * float per parameter float for SGD's momentum, two for Adam's moments, allocated here once.
 * n must be built for training. Returns 0, or -1 with a message. */
int optimizer_create(struct optimizer **o, const struct net *n, cn_error *e);
void optimizer_destroy(struct optimizer *o);

/* One update of every PARAM_TRAIN parameter of n (the net o was created for) at learning rate lr,
 * from the gradients in n's gradient slab, which hold dL/dparam of the mean loss over the step's
 * images. Hyperparameters (momentum, decay, B1, B2, eps) are read from n->cfg. Afterwards every
 * gradient is zero. Parameters without PARAM_TRAIN are untouched. */
void optimizer_step(struct optimizer *o, struct net *n, float lr);

/* The optimiser's state for checkpoints: *len floats at the returned pointer (momentum, or Adam's
 * m then v, each laid out parallel to n->param_slab), and the number of steps taken (Adam's bias
 * correction depends on it). Restoring means writing both back before the next step. */
float *optimizer_state(struct optimizer *o, size_t *len);
uint64_t optimizer_steps(const struct optimizer *o);
void optimizer_set_steps(struct optimizer *o, uint64_t steps);

/* Which update rule o applies, as stored in checkpoint state files (the numbers are part of that
 * format and never change). */
enum optimizer_kind { OPTIMIZER_SGD = 0, OPTIMIZER_ADAM = 1, OPTIMIZER_ADAMW = 2 };
enum optimizer_kind optimizer_kind(const struct optimizer *o);
const char *optimizer_kind_name(enum optimizer_kind k);

#endif
