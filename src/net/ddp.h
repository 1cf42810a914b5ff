/* ddp.h - data-parallel gradient sums for one net (PyTorch DDP's buckets, on net/dist.h).
 *
 * The gradient slab is cut into buckets of contiguous gradients of at most `bucket_bytes`
 * (parameters in backward order: the last layers' first). ddp_attach hooks a pass so that, as
 * net_backward finishes the lowest layer of a bucket, that bucket's in-place sum across ranks
 * starts (non-blocking) and overlaps with the backward of the layers below; ddp_finish starts
 * any bucket not started (layers below the backward cut) and waits for all. The gradients are
 * then the sums over the ranks: the caller makes each rank's loss_scale 1 / global batch, so the
 * sums are the gradients of the mean loss over the global batch. Every rank then runs the same
 * optimiser step on the same numbers, so the parameters stay identical (ddp_checksum checks it).
 * Buffers that are not trained (batch-norm rolling statistics) follow rank 0's
 * (ddp_sync_buffers: DDP's broadcast_buffers, before validation, checkpoints and checks).
 * With [net] sync_bn=1 the batch norms take their statistics over the global batch
 * (ddp_sync_bn: PyTorch's SyncBatchNorm), so the rolling statistics agree without it.
 */
#ifndef CN_NET_DDP_H
#define CN_NET_DDP_H

#include <stddef.h>
#include <stdint.h>

#include "net/dist.h"
#include "net/net.h"

struct ddp;

#define DDP_BUCKET_BYTES ((size_t)25 << 20) /* PyTorch's default bucket_cap_mb=25 */

/* Plans the buckets of n's gradients (n and d are borrowed). Returns 0 or -1 with a message
 * (more buckets than DIST_MAX_PENDING). */
int ddp_create(struct ddp **out, struct net *n, struct dist *d, size_t bucket_bytes, cn_error *e);
void ddp_destroy(struct ddp *g);
int ddp_buckets(const struct ddp *g);

/* Hooks p (the step's last pass) to start buckets as backward goes; resets the step. */
void ddp_attach(struct ddp *g, struct pass *p);
/* Starts what is left and waits for every sum (bounded by the watchdog). Adds the seconds it
 * waited to *waited when non-NULL. */
int ddp_finish(struct ddp *g, double *waited, cn_error *e);

/* [net] sync_bn=1 on several ranks: the batch norms of pass p (a training pass: call it on
 * each) normalise over the global batch, their statistics summed over the ranks
 * (kernels/batchnorm.h bn_forward_train_sync, bn_backward_sync; blocking sums, bounded by the
 * watchdog). Otherwise p is left as it is: per-rank statistics (PyTorch DDP's default). */
void ddp_sync_bn(struct ddp *g, struct pass *p);
/* After a forward or backward pass set up by ddp_sync_bn: -1 with the message when one of its
 * sums failed (the pass's values are then meaningless), else 0. */
int ddp_bn_check(struct ddp *g, cn_error *e);

/* Rank 0's non-trained parameters on every rank. */
int ddp_sync_buffers(struct ddp *g, cn_error *e);
/* A 64-bit hash of every parameter float's bits (FNV-1a over 32-bit words). */
uint64_t ddp_checksum(const struct net *n);

#endif
