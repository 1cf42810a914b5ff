/* batchnorm.h - batch normalisation over N x C x S (S = spatial size, 1 for [connected]).
 *
 * Training: per channel, mean and variance over N*S values (variance biased, 1/(N*S), as used for
 * normalising; the rolling variance gets the unbiased estimate), x_hat = (x - mean)/sqrt(var+eps),
 * y = scale * x_hat + bias; rolling = (1 - momentum) * rolling + momentum * batch statistic.
 * Inference: the rolling statistics. Darknet's eps (1e-6 in pjreddie/darknet normalize_cpu) and
 * momentum (0.01) are the defaults so Darknet weights give Darknet's outputs. The backward
 * derivation is in docs/batchnorm.md.
 */
#ifndef CN_BATCHNORM_H
#define CN_BATCHNORM_H

#include <stddef.h>

#define BN_EPS 1e-6f
#define BN_MOMENTUM 0.01f

/* y, x_hat: N*C*S; mean, var: C (batch statistics, written). x may equal y. */
void bn_forward_train(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                      float *rolling_var, const float *x, const float *scale, const float *bias,
                      int N, int C, int S);
void bn_forward_infer(float *y, const float *x, const float *scale, const float *bias,
                      const float *rolling_mean, const float *rolling_var, int N, int C, int S);
/* Given dy: dx (written, may alias dy), dscale and dbias (accumulated, +=). */
void bn_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                 const float *var, const float *scale, int N, int C, int S);

#endif
