/* batchnorm.c - batch normalisation kernels over N x C x S (see batchnorm.h for the contract).
 *
 * Layout: x[(n * C + c) * S + s], NCHW with S = H*W (S = 1 for [connected]). Per-channel sums are
 * accumulated in double (two passes: mean, then squared deviations), so the statistics do not
 * drift with large N*S. OpenMP over channels: each thread owns whole channels, no shared writes.
 * Left out: affine-free BN, group/layer norm, fused activation. Derivation: docs/batchnorm.md.
 */
#include "kernels/batchnorm.h"

#include <math.h>

/* Mean and biased variance of channel c over N*S values. */
static void channel_stats(double *mean, double *var, const float *x, int N, int C, int S, int c)
{
    double sum = 0, sq = 0;
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
        for (int s = 0; s < S; s++)
            sum += p[s];
    }
    double m = sum / ((double)N * (double)S);
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
        for (int s = 0; s < S; s++)
            sq += ((double)p[s] - m) * ((double)p[s] - m);
    }
    *mean = m;
    *var = sq / ((double)N * (double)S);
}

/* Training: batch statistics (mean, var written), x_hat and y written, rolling statistics updated
 * with momentum BN_MOMENTUM (rolling_var with the unbiased variance M/(M-1) * var, M = N*S; with
 * M = 1 the biased value 0 is used). x may equal y. */
void bn_forward_train(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                      float *rolling_var, const float *x, const float *scale, const float *bias,
                      int N, int C, int S)
{
    double M = (double)N * (double)S;
    double unbias = M > 1 ? M / (M - 1) : 1;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double m, v;
        channel_stats(&m, &v, x, N, C, S, c);
        mean[c] = (float)m;
        var[c] = (float)v;
        rolling_mean[c] = (1 - BN_MOMENTUM) * rolling_mean[c] + BN_MOMENTUM * (float)m;
        rolling_var[c] = (1 - BN_MOMENTUM) * rolling_var[c] + BN_MOMENTUM * (float)(v * unbias);
        float mf = (float)m, inv = 1.f / sqrtf(var[c] + BN_EPS);
        float g = scale[c], b = bias[c];
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
            for (int s = 0; s < S; s++) {
                float xh = (x[off + s] - mf) * inv;
                x_hat[off + s] = xh;
                y[off + s] = g * xh + b;
            }
        }
    }
}

/* Inference: y = scale * (x - rolling_mean) / sqrt(rolling_var + BN_EPS) + bias. x may equal y. */
void bn_forward_infer(float *y, const float *x, const float *scale, const float *bias,
                      const float *rolling_mean, const float *rolling_var, int N, int C, int S)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float m = rolling_mean[c], inv = 1.f / sqrtf(rolling_var[c] + BN_EPS);
        float g = scale[c], b = bias[c];
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
            for (int s = 0; s < S; s++)
                y[off + s] = g * ((x[off + s] - m) * inv) + b;
        }
    }
}

/* Backward of bn_forward_train, M = N*S per channel (docs/batchnorm.md):
 *   dbias += sum dy, dscale += sum dy * x_hat,
 *   dx = scale / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat)).
 * dx is written (may alias dy: each element is read before it is written); dscale and dbias are
 * accumulated and may be NULL when not wanted. */
void bn_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                 const float *var, const float *scale, int N, int C, int S)
{
    double M = (double)N * (double)S;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
            for (int s = 0; s < S; s++) {
                sdy += dy[off + s];
                sdyx += (double)dy[off + s] * (double)x_hat[off + s];
            }
        }
        if (dbias)
            dbias[c] += (float)sdy;
        if (dscale)
            dscale[c] += (float)sdyx;
        float k = scale[c] / sqrtf(var[c] + BN_EPS);
        float mdy = (float)(sdy / M), mdyx = (float)(sdyx / M);
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
            for (int s = 0; s < S; s++)
                dx[off + s] = k * (dy[off + s] - mdy - x_hat[off + s] * mdyx);
        }
    }
}
