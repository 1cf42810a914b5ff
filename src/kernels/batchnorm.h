/* batchnorm.h - batch normalisation over N x C x S (S = spatial size, 1 for [connected]), in one
 * of two conventions chosen by [net] bn_style= (struct bn_conf; docs/batchnorm.md):
 *
 *   darknet (default; pjreddie/darknet blas.c variance_cpu, normalize_cpu, batchnorm_layer.c):
 *     var = unbiased variance, 1/(M-1) over the M = N*S values of a channel, for normalising and
 *     for the rolling variance alike; x_hat = (x - mean) / (sqrt(var) + eps), eps = 1e-6;
 *     momentum 0.01 (rolling = .99 rolling + .01 batch).
 *   torch (torch.nn.BatchNorm2d): biased variance 1/M for normalising, unbiased for the running
 *     variance; x_hat = (x - mean) / sqrt(var + eps), eps = 1e-5; momentum 0.1.
 *
 * Either way y = scale * x_hat + bias, and inference uses the rolling statistics in the same
 * formula. With M = 1 the variance is 0 (not 0/0). The backward pass is the exact derivative of
 * the chosen forward (Darknet's own backward mixes in sqrt(var + 1e-5); cfgnet does not copy it).
 */
#ifndef CN_BATCHNORM_H
#define CN_BATCHNORM_H

#include <stddef.h>

#include "kernels/activations.h"

enum bn_style { BN_STYLE_DARKNET, BN_STYLE_TORCH, BN_STYLE_COUNT };

#define BN_DARKNET_EPS 1e-6f
#define BN_DARKNET_MOMENTUM 0.01f
#define BN_TORCH_EPS 1e-5f
#define BN_TORCH_MOMENTUM 0.1f

struct bn_conf {
    enum bn_style style;
    float eps;      /* darknet: added to sqrt(var); torch: added to var */
    float momentum; /* rolling = (1 - momentum) * rolling + momentum * batch statistic */
};

/* The style's defaults (eps, momentum). */
struct bn_conf bn_conf_default(enum bn_style style);

/* The divisor of x - mean for variance var: sqrt(var) + eps or sqrt(var + eps). */
float bn_denom(float var, const struct bn_conf *c);

/* Training. y, x_hat: N*C*S; mean, var: C (the batch statistics used, written: var is the
 * style's normalising variance); rolling statistics updated. x may equal y. */
void bn_forward_train(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                      float *rolling_var, const float *x, const float *scale, const float *bias,
                      int N, int C, int S, const struct bn_conf *c);
/* Inference: y = scale * (x - rolling_mean) / bn_denom(rolling_var) + bias. x may equal y. */
void bn_forward_infer(float *y, const float *x, const float *scale, const float *bias,
                      const float *rolling_mean, const float *rolling_var, int N, int C, int S,
                      const struct bn_conf *c);
/* Batch norm in inference folded into a per-channel affine map y = fscale * x + fshift:
 * fscale = scale / bn_denom(rolling_var), fshift = bias - rolling_mean * fscale (C each). */
void bn_fold(float *fscale, float *fshift, const float *scale, const float *bias,
             const float *rolling_mean, const float *rolling_var, int C, const struct bn_conf *c);
/* x_hat of an inference pass, kept by training nets so backward can follow such a pass. */
void bn_x_hat_infer(float *x_hat, const float *x, const float *rolling_mean,
                    const float *rolling_var, int N, int C, int S, const struct bn_conf *c);
/* Backward of bn_forward_train given dy: dx (written, may alias dy), dscale and dbias
 * (accumulated, +=; either may be NULL). var is what bn_forward_train wrote. */
void bn_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                 const float *var, const float *scale, int N, int C, int S,
                 const struct bn_conf *c);
/* Synchronised batch norm ([net] sync_bn=1): the batch statistics are those of the union of
 * every rank's batch in a data-parallel run. sum(ctx, v, n) replaces v[0..n) (n >= 1) by the sum
 * over the ranks of each rank's v[0..n), in place; every rank must call it the same number of
 * times in the same order (MPI's rule for collectives), from the thread that called the kernel.
 * A NULL struct or sum: this process's batch alone. net/ddp.c provides it over net/dist.h. */
struct bn_sync {
    void (*sum)(void *ctx, double *v, int n);
    void *ctx;
};

/* Channels per cross-rank sum: the partial sums of a chunk live on the stack (3 sums per
 * chunk in forward and backward together, whatever the batch). */
#define BN_SYNC_CHUNK 512

/* bn_forward_train over the global batch: per chunk of channels, the per-channel sums of x and
 * the value count are summed over the ranks (the mean), then the sums of (x - mean)^2 (the
 * variance: two passes, as the single-process kernel, in double). M is the global count, so
 * the darknet style's unbiased variance divides by M - 1 of the global batch; the rolling
 * statistics take the global mean and variance and so agree on every rank. sync NULL (or one
 * rank): exactly bn_forward_train. */
void bn_forward_train_sync(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                           float *rolling_var, const float *x, const float *scale,
                           const float *bias, int N, int C, int S, const struct bn_conf *c,
                           const struct bn_sync *sync);
/* bn_forward_train_sync, then y = act(y) in the same pass (act_forward's ReLU, bit for bit):
 * act ACT_LINEAR or ACT_RELU. Saves a convolution's separate pass over its output. */
void bn_forward_train_act(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                          float *rolling_var, const float *x, const float *scale,
                          const float *bias, int N, int C, int S, const struct bn_conf *c,
                          const struct bn_sync *sync, enum activation act);
/* bn_backward of bn_forward_train_sync: sum(dy) and sum(dy * x_hat) per channel (and the count)
 * are summed over the ranks, so dx is the exact gradient of the global-batch forward. dscale
 * and dbias get this rank's sums only: the gradient allreduce adds the ranks' afterwards. */
void bn_backward_sync(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                      const float *var, const float *scale, int N, int C, int S,
                      const struct bn_conf *c, const struct bn_sync *sync);
/* Backward of an inference pass (frozen statistics: y is affine in x): dx = dy * scale / denom
 * (written, may alias dy), dscale += sum dy * x_hat, dbias += sum dy. */
void bn_backward_infer(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                       const float *rolling_var, const float *scale, int N, int C, int S,
                       const struct bn_conf *c);

#endif
