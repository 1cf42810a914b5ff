/* batchnorm.c - batch normalisation kernels over N x C x S (see batchnorm.h for the contract and
 * the two styles).
 *
 * Layout: x[(n * C + c) * S + s], NCHW with S = H*W (S = 1 for [connected]). Per-channel sums are
 * accumulated in double (two passes: mean, then squared deviations), so the statistics do not
 * drift with large N*S. OpenMP over channels: each thread owns whole channels, no shared writes.
 * The synchronised variants (sync_bn=1) take the same sums, in chunks of channels, and add them
 * over the ranks between the passes; with one rank they compute exactly what the others do.
 * Left out: affine-free BN, group/layer norm, fused activations other than ReLU. Derivation:
 * docs/batchnorm.md.
 */
#include "kernels/batchnorm.h"

#include <math.h>

#include "core/common.h"

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

/* Partial sums per channel: BN_LANES interleaved double accumulators, which the compiler
 * keeps in vector registers. One chain of dependent double additions ran at one element per
 * add latency (4 cycles), the whole cost of training batch norm (ResNet-18's 112x112x64 stem:
 * 20 ms of a 37 ms forward); the order is fixed, so results do not depend on the threads. */
#define BN_LANES 16

/* Sum of p[0 .. n), in double. */
static double run_sum(const float *p, int n)
{
    double acc[BN_LANES] = {0}, t = 0;
    int s = 0;
    for (; s + BN_LANES <= n; s += BN_LANES)
        for (int j = 0; j < BN_LANES; j++)
            acc[j] += (double)p[s + j];
    for (; s < n; s++)
        t += p[s];
    for (int j = 0; j < BN_LANES; j++)
        t += acc[j];
    return t;
}

/* Sum of (p[s] - m)^2 over s < n, in double. */
static double run_sqdev(const float *p, double m, int n)
{
    double acc[BN_LANES] = {0}, t = 0;
    int s = 0;
    for (; s + BN_LANES <= n; s += BN_LANES)
        for (int j = 0; j < BN_LANES; j++) {
            double d = (double)p[s + j] - m;
            acc[j] += d * d;
        }
    for (; s < n; s++)
        t += ((double)p[s] - m) * ((double)p[s] - m);
    for (int j = 0; j < BN_LANES; j++)
        t += acc[j];
    return t;
}

/* Sum of channel c's N*S values, in double. */
static double channel_sum(const float *x, int N, int C, int S, int c)
{
    double sum = 0;
    for (int n = 0; n < N; n++)
        sum += run_sum(x + ((size_t)n * (size_t)C + (size_t)c) * (size_t)S, S);
    return sum;
}

/* Sum of (x - m)^2 over channel c, in double. */
static double channel_sqdev(const float *x, double m, int N, int C, int S, int c)
{
    double q = 0;
    for (int n = 0; n < N; n++)
        q += run_sqdev(x + ((size_t)n * (size_t)C + (size_t)c) * (size_t)S, m, S);
    return q;
}

/* y = scale * (x - m) / d + bias over channel c, x_hat kept when wanted; relu: then y = y > 0 ?
 * y : 0 (act_apply's ReLU) in the same pass. */
static void channel_normalise(float *y, float *x_hat, const float *x, float m, float d, float g,
                              float b, int N, int C, int S, int c, int relu)
{
    float inv = 1.f / d;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * (size_t)C + (size_t)c) * (size_t)S;
        for (int s = 0; s < S; s++) {
            float xh = (x[off + s] - m) * inv;
            if (x_hat)
                x_hat[off + s] = xh;
            float v = g * xh + b;
            y[off + s] = relu ? (v > 0 ? v : 0.f) : v;
        }
    }
}

/* The arguments of a training forward, shared by the single-process and synchronised paths. */
struct bn_train {
    float *y, *x_hat, *mean, *var, *rolling_mean, *rolling_var;
    const float *x, *scale, *bias;
    int N, C, S;
    const struct bn_conf *c;
    int relu; /* y then through ReLU */
};

/* Channel ch from its mean m and sum of squared deviations sq over M values: the batch and
 * rolling statistics, then y. The rolling variance always takes the unbiased estimate
 * sq/(M-1) (sq/M = 0 when M = 1); the normalising variance is that one (darknet) or the biased
 * sq/M (torch). */
static void channel_finish(const struct bn_train *a, int ch, double m, double sq, double M)
{
    double unbiased = M > 1 ? sq / (M - 1) : 0, biased = sq / M;
    float mo = a->c->momentum;
    a->mean[ch] = (float)m;
    a->var[ch] = (float)(a->c->style == BN_STYLE_TORCH ? biased : unbiased);
    a->rolling_mean[ch] = (1 - mo) * a->rolling_mean[ch] + mo * (float)m;
    a->rolling_var[ch] = (1 - mo) * a->rolling_var[ch] + mo * (float)unbiased;
    if (a->relu)
        channel_normalise(a->y, a->x_hat, a->x, (float)m, bn_denom(a->var[ch], a->c),
                          a->scale[ch], a->bias[ch], a->N, a->C, a->S, ch, 1);
    else
        channel_normalise(a->y, a->x_hat, a->x, (float)m, bn_denom(a->var[ch], a->c),
                          a->scale[ch], a->bias[ch], a->N, a->C, a->S, ch, 0);
}

static void forward_all(const struct bn_train *ap)
{
    const struct bn_train a = *ap;
    const float *x = a.x;
    int N = a.N, C = a.C, S = a.S;
    double M = (double)N * (double)S;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++) {
        double m = channel_sum(x, N, C, S, ch) / M;
        channel_finish(&a, ch, m, channel_sqdev(x, m, N, C, S, ch), M);
    }
}

/* Channels [c0, c0 + k) of bn_forward_train_sync: two sums over the ranks, in the caller's
 * thread; the per-channel work between them in parallel. */
static void forward_chunk(const struct bn_train *a, int c0, int k, const struct bn_sync *sync)
{
    double acc[BN_SYNC_CHUNK + 1], m[BN_SYNC_CHUNK];
#pragma omp parallel for schedule(static)
    for (int j = 0; j < k; j++)
        acc[j] = channel_sum(a->x, a->N, a->C, a->S, c0 + j);
    acc[k] = (double)a->N * (double)a->S;
    sync->sum(sync->ctx, acc, k + 1);
    double M = acc[k];
#pragma omp parallel for schedule(static)
    for (int j = 0; j < k; j++) {
        m[j] = acc[j] / M;
        acc[j] = channel_sqdev(a->x, m[j], a->N, a->C, a->S, c0 + j);
    }
    sync->sum(sync->ctx, acc, k);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < k; j++)
        channel_finish(a, c0 + j, m[j], acc[j], M);
}

void bn_forward_train(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                      float *rolling_var, const float *x, const float *scale, const float *bias,
                      int N, int C, int S, const struct bn_conf *c)
{
    const struct bn_train a = {y, x_hat, mean, var, rolling_mean, rolling_var, x, scale, bias,
                               N, C, S, c, 0};
    forward_all(&a);
}

void bn_forward_train_act(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                          float *rolling_var, const float *x, const float *scale,
                          const float *bias, int N, int C, int S, const struct bn_conf *c,
                          const struct bn_sync *sync, enum activation act)
{
    CN_ASSERT(act == ACT_LINEAR || act == ACT_RELU);
    const struct bn_train a = {y, x_hat, mean, var, rolling_mean, rolling_var, x, scale, bias,
                               N, C, S, c, act == ACT_RELU};
    if (!sync || !sync->sum) {
        forward_all(&a);
        return;
    }
    for (int c0 = 0; c0 < C; c0 += BN_SYNC_CHUNK)
        forward_chunk(&a, c0, CN_MIN(BN_SYNC_CHUNK, C - c0), sync);
}

void bn_forward_train_sync(float *y, float *x_hat, float *mean, float *var, float *rolling_mean,
                           float *rolling_var, const float *x, const float *scale,
                           const float *bias, int N, int C, int S, const struct bn_conf *c,
                           const struct bn_sync *sync)
{
    bn_forward_train_act(y, x_hat, mean, var, rolling_mean, rolling_var, x, scale, bias, N, C, S,
                         c, sync, ACT_LINEAR);
}

void bn_forward_infer(float *y, const float *x, const float *scale, const float *bias,
                      const float *rolling_mean, const float *rolling_var, int N, int C, int S,
                      const struct bn_conf *c)
{
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++)
        channel_normalise(y, NULL, x, rolling_mean[ch], bn_denom(rolling_var[ch], c), scale[ch],
                          bias[ch], N, C, S, ch, 0);
}

void bn_x_hat_infer(float *x_hat, const float *x, const float *rolling_mean,
                    const float *rolling_var, int N, int C, int S, const struct bn_conf *c)
{
    for (int ch = 0; ch < C; ch++)
        channel_normalise(x_hat, NULL, x, rolling_mean[ch], bn_denom(rolling_var[ch], c), 1.f, 0.f,
                          N, C, S, ch, 0);
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

/* sum dy and sum dy * x_hat over channel ch, in double (BN_LANES accumulators each). */
static void channel_dsums(double *sdy, double *sdyx, const float *dy, const float *x_hat, int N,
                          int C, int S, int ch)
{
    double a[BN_LANES] = {0}, b[BN_LANES] = {0}, ta = 0, tb = 0;
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * (size_t)C + (size_t)ch) * (size_t)S;
        const float *d = dy + off, *h = x_hat + off;
        int s = 0;
        for (; s + BN_LANES <= S; s += BN_LANES)
            for (int j = 0; j < BN_LANES; j++) {
                a[j] += (double)d[s + j];
                b[j] += (double)d[s + j] * (double)h[s + j];
            }
        for (; s < S; s++) {
            ta += d[s];
            tb += (double)d[s] * (double)h[s];
        }
    }
    for (int j = 0; j < BN_LANES; j++) {
        ta += a[j];
        tb += b[j];
    }
    *sdy = ta;
    *sdyx = tb;
}

/* dx over channel ch as in bn_rho, from the two sums over M values. dx may alias dy: each
 * element is read before it is written. */
static void channel_dx(float *dx, const float *dy, const float *x_hat, const float *var,
                       const float *scale, double sdy, double sdyx, double M, int N, int C, int S,
                       int ch, const struct bn_conf *c)
{
    float k = scale[ch] / bn_denom(var[ch], c);
    float mdy = (float)(sdy / M), mdyx = (float)(sdyx * bn_rho(var[ch], M, c));
    for (int n = 0; n < N; n++) {
        size_t off = ((size_t)n * (size_t)C + (size_t)ch) * (size_t)S;
        for (int s = 0; s < S; s++)
            dx[off + s] = k * (dy[off + s] - mdy - x_hat[off + s] * mdyx);
    }
}

/* dbias += sum dy, dscale += sum dy * x_hat, and dx as in bn_rho. */
void bn_backward(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                 const float *var, const float *scale, int N, int C, int S, const struct bn_conf *c)
{
    double M = (double)N * (double)S;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < C; ch++) {
        double sdy, sdyx;
        channel_dsums(&sdy, &sdyx, dy, x_hat, N, C, S, ch);
        if (dbias)
            dbias[ch] += (float)sdy;
        if (dscale)
            dscale[ch] += (float)sdyx;
        channel_dx(dx, dy, x_hat, var, scale, sdy, sdyx, M, N, C, S, ch, c);
    }
}

void bn_backward_sync(float *dx, float *dscale, float *dbias, const float *dy, const float *x_hat,
                      const float *var, const float *scale, int N, int C, int S,
                      const struct bn_conf *c, const struct bn_sync *sync)
{
    if (!sync || !sync->sum) {
        bn_backward(dx, dscale, dbias, dy, x_hat, var, scale, N, C, S, c);
        return;
    }
    for (int c0 = 0; c0 < C; c0 += BN_SYNC_CHUNK) {
        int k = CN_MIN(BN_SYNC_CHUNK, C - c0);
        double acc[2 * BN_SYNC_CHUNK + 1]; /* sum dy, sum dy * x_hat per channel; the count */
#pragma omp parallel for schedule(static)
        for (int j = 0; j < k; j++) {
            channel_dsums(&acc[2 * j], &acc[2 * j + 1], dy, x_hat, N, C, S, c0 + j);
            if (dbias)
                dbias[c0 + j] += (float)acc[2 * j];
            if (dscale)
                dscale[c0 + j] += (float)acc[2 * j + 1];
        }
        acc[2 * k] = (double)N * (double)S;
        sync->sum(sync->ctx, acc, 2 * k + 1);
#pragma omp parallel for schedule(static)
        for (int j = 0; j < k; j++)
            channel_dx(dx, dy, x_hat, var, scale, acc[2 * j], acc[2 * j + 1], acc[2 * k], N, C, S,
                       c0 + j, c);
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
