/* activations.c - see activations.h. Formulas follow Darknet's activations.h; slopes are exact
 * derivatives with respect to z (Darknet evaluates them from the output, which is the same thing
 * for the monotonic ones). Relu, leaky and relu6 over arrays go four floats at a time by masks:
 * GCC leaves the plain selections scalar, with a branch mispredicted on half of the elements (4-5
 * ns per element, 3 GB/s, measured on a ResNet shortcut). */
#include "kernels/activations.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/common.h"

const char *const act_names[ACT_COUNT] = {
    [ACT_LINEAR] = "linear", [ACT_RELU] = "relu",       [ACT_LEAKY] = "leaky",
    [ACT_LOGISTIC] = "logistic", [ACT_TANH] = "tanh",   [ACT_ELU] = "elu",
    [ACT_SELU] = "selu",     [ACT_RELIE] = "relie",     [ACT_RAMP] = "ramp",
    [ACT_PLSE] = "plse",     [ACT_STAIR] = "stair",     [ACT_HARDTAN] = "hardtan",
    [ACT_LHTAN] = "lhtan",   [ACT_LOGGY] = "loggy",     [ACT_RELU6] = "relu6",
    [ACT_SWISH] = "swish",   [ACT_MISH] = "mish",
};

#define SELU_LAMBDA 1.0507f
#define SELU_ALPHA 1.6732f

int act_needs_input(enum activation a)
{
    return a == ACT_SWISH || a == ACT_MISH || a == ACT_STAIR;
}

static float logistic(float z)
{
    return 1.f / (1.f + expf(-z));
}

static float softplus(float z)
{
    if (z > 20.f)
        return z;
    if (z < -20.f)
        return expf(z);
    return log1pf(expf(z));
}

static float stair(float z)
{
    int n = (int)floorf(z);
    if (n % 2 == 0)
        return floorf(z / 2.f);
    return (z - (float)n) + floorf(z / 2.f);
}

float act_apply(enum activation a, float z)
{
    switch (a) {
    case ACT_LINEAR: return z;
    case ACT_RELU: return z > 0 ? z : 0;
    case ACT_LEAKY: return z > 0 ? z : .1f * z;
    case ACT_LOGISTIC: return logistic(z);
    case ACT_TANH: return tanhf(z);
    case ACT_ELU: return z >= 0 ? z : expf(z) - 1.f;
    case ACT_SELU: return z >= 0 ? SELU_LAMBDA * z : SELU_LAMBDA * SELU_ALPHA * (expf(z) - 1.f);
    case ACT_RELIE: return z > 0 ? z : .01f * z;
    case ACT_RAMP: return z * (z > 0) + .1f * z;
    case ACT_PLSE:
        if (z < -4.f)
            return .01f * (z + 4.f);
        if (z > 4.f)
            return .01f * (z - 4.f) + 1.f;
        return .125f * z + .5f;
    case ACT_STAIR: return stair(z);
    case ACT_HARDTAN: return z < -1.f ? -1.f : (z > 1.f ? 1.f : z);
    case ACT_LHTAN:
        if (z < 0)
            return .001f * z;
        if (z > 1.f)
            return .001f * (z - 1.f) + 1.f;
        return z;
    case ACT_LOGGY: return 2.f / (1.f + expf(-z)) - 1.f;
    case ACT_RELU6: return z < 0 ? 0 : (z > 6.f ? 6.f : z);
    case ACT_SWISH: return z * logistic(z);
    case ACT_MISH: return z * tanhf(softplus(z));
    case ACT_COUNT: break;
    }
    return z;
}

float act_slope(enum activation a, float z, float y)
{
    switch (a) {
    case ACT_LINEAR: return 1.f;
    case ACT_RELU: return y > 0;
    case ACT_LEAKY: return y > 0 ? 1.f : .1f;
    case ACT_LOGISTIC: return y * (1.f - y);
    case ACT_TANH: return 1.f - y * y;
    case ACT_ELU: return y >= 0 ? 1.f : y + 1.f;
    case ACT_SELU: return y >= 0 ? SELU_LAMBDA : y + SELU_LAMBDA * SELU_ALPHA;
    case ACT_RELIE: return y > 0 ? 1.f : .01f;
    case ACT_RAMP: return (y > 0) + .1f;
    case ACT_PLSE: return (y < 0 || y > 1.f) ? .01f : .125f;
    case ACT_STAIR: return ((int)floorf(z) % 2 == 0) ? 0.f : 1.f;
    case ACT_HARDTAN: return (y > -1.f && y < 1.f) ? 1.f : 0.f;
    case ACT_LHTAN: return (y > 0 && y < 1.f) ? 1.f : .001f;
    case ACT_LOGGY: {
        float h = (y + 1.f) / 2.f;
        return 2.f * (1.f - h) * h;
    }
    case ACT_RELU6: return (y > 0 && y < 6.f) ? 1.f : 0.f;
    case ACT_SWISH: {
        float s = logistic(z);
        return s * (1.f + z * (1.f - s));
    }
    case ACT_MISH: {
        float t = tanhf(softplus(z));
        return t + z * (1.f - t * t) * logistic(z);
    }
    case ACT_COUNT: break;
    }
    return 1.f;
}

/* Four floats at a time (the baseline vector of x86-64 and AArch64) for the common activations:
 * selections by mask, as z > 0 ? z : 0, z > 0 ? z : .1f * z and z < 0 ? 0 : (z > 6 ? 6 : z)
 * select (NaN and -0 pass, bit for bit). */
typedef float vf4 __attribute__((vector_size(16)));
typedef int vi4 __attribute__((vector_size(16)));

static inline vf4 load4(const float *p)
{
    vf4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store4(float *p, vf4 v)
{
    memcpy(p, &v, sizeof v);
}

static inline vf4 pick4(vi4 m, vf4 a, vf4 b) /* m ? a : b */
{
    return (vf4)(((vi4)a & m) | ((vi4)b & ~m));
}

static inline vf4 act4(enum activation a, vf4 v)
{
    const vf4 zero = {0}, six = zero + 6.f;
    if (a == ACT_RELU)
        return pick4(v > zero, v, zero);
    if (a == ACT_LEAKY)
        return pick4(v > zero, v, .1f * v);
    v = pick4(v < zero, zero, v);
    return pick4(v > six, six, v);
}

static int act_vectorised(enum activation a)
{
    return a == ACT_RELU || a == ACT_LEAKY || a == ACT_RELU6;
}

/* y = act(s * z + b) over [0, n) for a vectorised activation (s == 1, b == 0: act(z)). */
static void act_run(float *y, const float *z, size_t n, float s, float b, int affine,
                    enum activation a)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vf4 v = load4(z + i);
        if (affine)
            v = s * v + b;
        store4(y + i, act4(a, v));
    }
    for (; i < n; i++)
        y[i] = act_apply(a, affine ? s * z[i] + b : z[i]);
}

/* dz = act'(y) * dy over [0, n) for a vectorised activation: dy where the slope is 1, else 0
 * (leaky: .1f * dy). */
static void slope_run(float *dz, const float *dy, const float *y, size_t n, enum activation a)
{
    const vf4 zero = {0}, six = zero + 6.f;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vf4 d = load4(dy + i), v = load4(y + i);
        vf4 off = a == ACT_LEAKY ? .1f * d : zero;
        vi4 on = a == ACT_RELU6 ? (v > zero) & (v < six) : v > zero;
        store4(dz + i, pick4(on, d, off));
    }
    for (; i < n; i++) {
        int on = a == ACT_RELU6 ? y[i] > 0 && y[i] < 6.f : y[i] > 0;
        dz[i] = on ? dy[i] : (a == ACT_LEAKY ? .1f * dy[i] : 0);
    }
}

#define ACT_CHUNK 16384 /* floats per task of the threaded loops */

/* Whether a loop over more than min floats takes a team: not when it is already inside one,
 * where even an inactive nested region costs libgomp a team set-up per call (the layers that
 * apply an activation per block of a parallel loop, [shortcut] among them). */
static int act_team(long n, long min)
{
#ifdef _OPENMP
    return n > min && !omp_in_parallel();
#else
    (void)n, (void)min;
    return 0;
#endif
}

void act_forward(float *y, const float *z, size_t n, enum activation a)
{
    long nn = (long)n, chunks = (nn + ACT_CHUNK - 1) / ACT_CHUNK;
    if (a == ACT_LINEAR) {
        if (y != z)
            memmove(y, z, sizeof(float) * n);
        return;
    }
    if (act_vectorised(a) && !act_team(nn, 4 * ACT_CHUNK)) {
        act_run(y, z, n, 1.f, 0.f, 0, a);
        return;
    }
    if (act_vectorised(a)) {
#pragma omp parallel for schedule(static)
        for (long c = 0; c < chunks; c++) {
            size_t i0 = (size_t)c * ACT_CHUNK;
            act_run(y + i0, z + i0, CN_MIN((size_t)ACT_CHUNK, n - i0), 1.f, 0.f, 0, a);
        }
        return;
    }
#pragma omp parallel for if (act_team(nn, 16384)) schedule(static)
    for (long i = 0; i < nn; i++)
        y[i] = act_apply(a, z[i]);
}

void act_backward(float *dz, const float *dy, const float *z, const float *y, size_t n,
                  enum activation a)
{
    long nn = (long)n, chunks = (nn + ACT_CHUNK - 1) / ACT_CHUNK;
    if (a == ACT_LINEAR) {
        if (dz != dy)
            memmove(dz, dy, sizeof(float) * n);
        return;
    }
    if (act_vectorised(a) && !act_team(nn, 4 * ACT_CHUNK)) {
        slope_run(dz, dy, y, n, a);
        return;
    }
    if (act_vectorised(a)) {
#pragma omp parallel for schedule(static)
        for (long c = 0; c < chunks; c++) {
            size_t i0 = (size_t)c * ACT_CHUNK;
            slope_run(dz + i0, dy + i0, y + i0, CN_MIN((size_t)ACT_CHUNK, n - i0), a);
        }
        return;
    }
#pragma omp parallel for if (act_team(nn, 16384)) schedule(static)
    for (long i = 0; i < nn; i++)
        dz[i] = dy[i] * act_slope(a, z ? z[i] : 0.f, y ? y[i] : 0.f);
}

/* One row of act_forward_affine: the common activations by vectors, the rest by act_apply. The
 * product s * z is rounded before b is added (the build does not contract it into an FMA). */
static void affine_row(float *y, const float *z, size_t n, float s, float b,
                       enum activation a)
{
    if (act_vectorised(a)) {
        act_run(y, z, n, s, b, 1, a);
        return;
    }
    for (size_t i = 0; i < n; i++)
        y[i] = a == ACT_LINEAR ? s * z[i] + b : act_apply(a, s * z[i] + b);
}

void act_forward_affine(float *y, const float *z, int rows, size_t n, const float *scale,
                        const float *shift, enum activation a)
{
    for (int r = 0; r < rows; r++)
        affine_row(y + (size_t)r * n, z + (size_t)r * n, n, scale ? scale[r] : 1.f, shift[r], a);
}
