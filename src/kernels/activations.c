/* activations.c - see activations.h. Formulas follow Darknet's activations.h; slopes are exact
 * derivatives with respect to z (Darknet evaluates them from the output, which is the same thing
 * for the monotonic ones). */
#include "kernels/activations.h"

#include <math.h>

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

void act_forward(float *y, const float *z, size_t n, enum activation a)
{
    long nn = (long)n;
    switch (a) {
    case ACT_LINEAR:
        if (y != z) {
#pragma omp parallel for if (nn > 65536) schedule(static)
            for (long i = 0; i < nn; i++)
                y[i] = z[i];
        }
        return;
    case ACT_RELU:
#pragma omp parallel for if (nn > 65536) schedule(static)
        for (long i = 0; i < nn; i++)
            y[i] = z[i] > 0 ? z[i] : 0;
        return;
    case ACT_LEAKY:
#pragma omp parallel for if (nn > 65536) schedule(static)
        for (long i = 0; i < nn; i++)
            y[i] = z[i] > 0 ? z[i] : .1f * z[i];
        return;
    default:
#pragma omp parallel for if (nn > 16384) schedule(static)
        for (long i = 0; i < nn; i++)
            y[i] = act_apply(a, z[i]);
        return;
    }
}

void act_backward(float *dz, const float *dy, const float *z, const float *y, size_t n,
                  enum activation a)
{
    long nn = (long)n;
    switch (a) {
    case ACT_LINEAR:
        if (dz != dy) {
#pragma omp parallel for if (nn > 65536) schedule(static)
            for (long i = 0; i < nn; i++)
                dz[i] = dy[i];
        }
        return;
    case ACT_RELU:
#pragma omp parallel for if (nn > 65536) schedule(static)
        for (long i = 0; i < nn; i++)
            dz[i] = y[i] > 0 ? dy[i] : 0;
        return;
    case ACT_LEAKY:
#pragma omp parallel for if (nn > 65536) schedule(static)
        for (long i = 0; i < nn; i++)
            dz[i] = y[i] > 0 ? dy[i] : .1f * dy[i];
        return;
    default:
#pragma omp parallel for if (nn > 16384) schedule(static)
        for (long i = 0; i < nn; i++)
            dz[i] = dy[i] * act_slope(a, z ? z[i] : 0.f, y[i]);
        return;
    }
}

/* One row of act_forward_affine: the common activations inline, the rest through act_apply. */
static void affine_row(float *y, const float *z, size_t n, float s, float b,
                       enum activation a)
{
    switch (a) {
    case ACT_LINEAR:
        for (size_t i = 0; i < n; i++)
            y[i] = s * z[i] + b;
        return;
    case ACT_RELU:
        for (size_t i = 0; i < n; i++) {
            float v = s * z[i] + b;
            y[i] = v > 0 ? v : 0;
        }
        return;
    case ACT_LEAKY:
        for (size_t i = 0; i < n; i++) {
            float v = s * z[i] + b;
            y[i] = v > 0 ? v : .1f * v;
        }
        return;
    default:
        for (size_t i = 0; i < n; i++)
            y[i] = act_apply(a, s * z[i] + b);
        return;
    }
}

void act_forward_affine(float *y, const float *z, int rows, size_t n, const float *scale,
                        const float *shift, enum activation a)
{
    for (int r = 0; r < rows; r++)
        affine_row(y + (size_t)r * n, z + (size_t)r * n, n, scale ? scale[r] : 1.f, shift[r], a);
}
