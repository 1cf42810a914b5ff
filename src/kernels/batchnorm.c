/* batchnorm.c - batch normalisation kernels over N x C x S (see batchnorm.h for the contract and
 * the two styles).
 *
 * Layout: x[(n * C + c) * S + s], NCHW with S = H*W (S = 1 for [connected]). Per-channel sums are
 * accumulated in double (two passes: mean, then squared deviations), so the statistics do not
 * drift with large N*S. OpenMP over channels: each thread owns whole channels, no shared writes.
 * Left out: affine-free BN, group/layer norm, fused activation. Derivation: docs/batchnorm.md.
 */
#include "kernels/batchnorm.h"

#include <math.h>

struct bn_conf bn_conf_default(enum bn_style style)
{
    if (style == BN_STYLE_TORCH)
        return (struct bn_conf){BN_STYLE_TORCH, BN_TORCH_EPS, BN_TORCH_MOMENTUM};
    return (struct bn_conf){BN_STYLE_DARKNET, BN_DARKNET_EPS, BN_DARKNET_MOMENTUM};
}

float bn_denom(float var, const struct bn_conf *c)
{
    return c->style == BN_STYLE_TORCH ? sqrtf(var + c->eps) : sqrtf(var) + c->eps;
}

/* Mean and sum of squared deviations of channel c over its N*S values. */
static void channel_stats(double *mean, double *sq, const float *x, int N, int C, int S, int c)
{
    double sum = 0, q = 0;
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
        for (int s = 0; s < S; s++)
            sum += p[s];
    }
    double m = sum / ((double)N * (double)S);
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
        for (int s = 0; s < S; s++)
            q += ((double)p[s] - m) * ((double)p[s] - m);
    }
    *mean = m;
    *sq = q;
}

/* y = scale * (x - m) / d + bias over channel c, x_hat kept when wanted. */
static void channel_normalise(float *y, float *x_hat, const float *x, float m, float d, float g,
                              float b, int N, int C, int S, int c)
{
    float inv = 1.f / d;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
        for (int s = 0; s < S; s++) {
            float xh = (x[off + s] - m) * inv;
            if (x_hat)
                x_hat[off + s] = xh;
            y[off + s] = g * xh + b;
        }
    }
}

/* The rolling variance always takes the unbiased estimate sq/(M-1) (sq/M = 0 when M = 1); the
 * normalising variance is that one (darknet) or the biased sq/M (torch). */
void bn_forward_train(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                      float *rolling_var, const float *x, const float *scale, const float *bias,
                      int N, int C, int S, const struct bn_conf *c)
{
    double M = (double)N * (double)S;
    float mo = c->momentum;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++) {
        double m, sq;
        channel_stats(&m, &sq, x, N, C, S, ch);
        double unbiased = M > 1 ? sq / (M - 1) : 0, biased = sq / M;
        mean[ch] = (float)m;
        var[ch] = (float)(c->style == BN_STYLE_TORCH ? biased : unbiased);
        rolling_mean[ch] = (1 - mo) * rolling_mean[ch] + mo * (float)m;
        rolling_var[ch] = (1 - mo) * rolling_var[ch] + mo * (float)unbiased;
        channel_normalise(y, x_hat, x, (float)m, bn_denom(var[ch], c), scale[ch], bias[ch], N, C, S,
                          ch);
    }
}

void bn_forward_infer(float *y, const float *x, const float *scale, const float *bias,
                      const float *rolling_mean, const float *rolling_var, int N, int C, int S,
                      const struct bn_conf *c)
{
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++)
        channel_normalise(y, NULL, x, rolling_mean[ch], bn_denom(rolling_var[ch], c), scale[ch],
                          bias[ch], N, C, S, ch);
}

void bn_x_hat_infer(float *x_hat, const float *x, const float *rolling_mean,
                    const float *rolling_var, int N, int C, int S, const struct bn_conf *c)
{
    for (int ch = 0; ch < C; ch++)
        channel_normalise(x_hat, NULL, x, rolling_mean[ch], bn_denom(rolling_var[ch], c), 1.f, 0.f,
                          N, C, S, ch);
}

/* The factor rho of the x_hat term in dx (docs/batchnorm.md): with D the divisor and s =
 * sqrt(var), dx = (scale/D) (dy - mean(dy) - x_hat * rho * sum(dy * x_hat)), rho = 1/M (torch)
 * or (D/s)/(M-1) (darknet; 0 when s = 0, where every x_hat is 0 anyway). */
static double bn_rho(float var, double M, const struct bn_conf *c)
{
    if (c->style == BN_STYLE_TORCH)
        return 1 / M;
    double s = sqrt((double)var);
    return M > 1 && s > 0 ? (s + c->eps) / s / (M - 1) : 0;
}

/* dbias += sum dy, dscale += sum dy * x_hat, and dx as in bn_rho. dx may alias dy: each element
 * is read before it is written. */
void bn_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                 const float *var, const float *scale, int N, int C, int S, const struct bn_conf *c)
{
    double M = (double)N * (double)S;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++) {
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * (size_t)C + (size_t)ch) * (size_t)S;
            for (int s = 0; s < S; s++) {
                sdy += dy[off + s];
                sdyx += (double)dy[off + s] * (double)x_hat[off + s];
            }
        }
        if (dbias)
            dbias[ch] += (float)sdy;
        if (dscale)
            dscale[ch] += (float)sdyx;
        float k = scale[ch] / bn_denom(var[ch], c);
        float mdy = (float)(sdy / M), mdyx = (float)(sdyx * bn_rho(var[ch], M, c));
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * (size_t)C + (size_t)ch) * (size_t)S;
            for (int s = 0; s < S; s++)
                dx[off + s] = k * (dy[off + s] - mdy - x_hat[off + s] * mdyx);
        }
    }
}

void bn_backward_infer(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                       const float *rolling_var, const float *scale, int N, int C, int S,
                       const struct bn_conf *c)
{
    for (int ch = 0; ch < C; ch++) {
        float k = scale[ch] / bn_denom(rolling_var[ch], c), db = 0, ds = 0;
        for (int n = 0; n < N; n++) {
            size_t off = ((size_t)n * (size_t)C + (size_t)ch) * (size_t)S;
            for (int s = 0; s < S; s++) {
                db += dy[off + s];
                ds += dy[off + s] * x_hat[off + s];
                dx[off + s] = dy[off + s] * k;
            }
        }
        dbias[ch] += db;
        dscale[ch] += ds;
    }
}

void bn_fold(float *fscale, float *fshift, const float *scale, const float *bias,
             const float *rolling_mean, const float *rolling_var, int C, const struct bn_conf *c)
{
    for (int ch = 0; ch < C; ch++) {
        float s = scale[ch] / bn_denom(rolling_var[ch], c);
        fscale[ch] = s;
        fshift[ch] = bias[ch] - rolling_mean[ch] * s;
    }
}
