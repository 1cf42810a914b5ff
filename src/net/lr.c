/* lr.c - learning-rate policies, after Darknet's get_current_rate (network.c), with b = batch_num
 * and lr = learning_rate:
 *
 *   burn-in   b < burn_in:  lr * (b / burn_in)^power          (before any policy; power default 4)
 *   constant  lr
 *   step      lr * scale^floor(b / step)
 *   steps     lr * product of scales[i] over the steps[i] <= b (steps ascending)
 *   exp       lr * gamma^b
 *   poly      lr * (1 - b / max_batches)^power
 *   sigmoid   lr / (1 + exp(gamma * (b - step)))
 *   cosine    learning_rate_min + (lr - learning_rate_min) * (1 + cos(pi * b / max_batches)) / 2
 *
 * Computed in double, returned as float. Differences from Darknet, each where its arithmetic is
 * accidental: sigmoid takes b - step as a signed number (Darknet subtracts in size_t, which wraps
 * before the step); poly and cosine clamp b / max_batches to [0, 1] (past max_batches Darknet's
 * poly takes a power of a negative number) and treat max_batches = 0 as "not started". Darknet's
 * `random` policy is left out (it draws from the C library's global generator).
 */
#include "net/lr.h"

#include <math.h>

#define LR_PI 3.14159265358979323846

/* b / max_batches clamped to [0, 1]; 0 when max_batches is unset. */
static double progress(const struct net_config *c, uint64_t b)
{
    if (c->max_batches < 1)
        return 0;
    double t = (double)b / (double)c->max_batches;
    return t > 1 ? 1 : t;
}

static double steps_rate(const struct net_config *c, uint64_t b)
{
    double rate = c->learning_rate;
    for (int i = 0; i < c->nsteps; i++) {
        if ((uint64_t)c->steps[i] > b)
            break;
        rate *= c->scales[i];
    }
    return rate;
}

static double policy_rate(const struct net_config *c, uint64_t b)
{
    double lr = c->learning_rate;
    switch (c->policy) {
    case LR_CONSTANT: return lr;
    case LR_STEP: return lr * pow(c->scale, (double)(b / (uint64_t)CN_MAX(c->step, 1)));
    case LR_STEPS: return steps_rate(c, b);
    case LR_EXP: return lr * pow(c->gamma, (double)b);
    case LR_POLY: return lr * pow(1 - progress(c, b), c->power);
    case LR_SIGMOID: return lr / (1 + exp(c->gamma * ((double)b - (double)c->step)));
    case LR_COSINE: {
        double lo = c->learning_rate_min;
        return lo + 0.5 * (lr - lo) * (1 + cos(LR_PI * progress(c, b)));
    }
    case LR_POLICY_COUNT: break;
    }
    CN_ASSERT(!"unknown learning-rate policy");
    return lr;
}

float lr_at(const struct net_config *c, uint64_t batch_num)
{
    if (batch_num < (uint64_t)CN_MAX(c->burn_in, 0))
        return (float)(c->learning_rate * pow((double)batch_num / c->burn_in, c->power));
    return (float)policy_rate(c, batch_num);
}
