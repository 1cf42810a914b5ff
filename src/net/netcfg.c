/* netcfg.c - the [net] section: input shape and training settings, with Darknet's key names and
 * defaults (parser.c parse_net_options). Every key is bounds-checked; unknown keys are errors. */
#include <string.h>

#include "net/netcfg.h"

static const char *const policy_names[LR_POLICY_COUNT] = {
    [LR_CONSTANT] = "constant", [LR_STEP] = "step", [LR_STEPS] = "steps", [LR_EXP] = "exp",
    [LR_POLY] = "poly",         [LR_SIGMOID] = "sigmoid", [LR_COSINE] = "cosine",
};

const char *net_policy_name(enum lr_policy p)
{
    return policy_names[p];
}

#define BIG 1000000000

static int parse_shape(struct net_config *c, struct cfg_section *s, cn_error *e)
{
    if (cfg_get_int(s, "batch", 1, 1, 1 << 20, &c->batch, e) ||
        cfg_get_int(s, "subdivisions", 1, 1, 1 << 20, &c->subdivisions, e) ||
        cfg_get_int(s, "height", 0, 1, 1 << 16, &c->height, e) ||
        cfg_get_int(s, "width", 0, 1, 1 << 16, &c->width, e) ||
        cfg_get_int(s, "channels", 0, 1, 1 << 16, &c->channels, e))
        return -1;
    const char *need[] = {"height", "width", "channels"};
    const int have[] = {c->height, c->width, c->channels};
    for (int i = 0; i < 3; i++)
        if (!have[i])
            return cfg_fail_section(s, e, "missing %s= (the input shape is required)", need[i]);
    if (c->batch % c->subdivisions) {
        struct cfg_kv *kv = cfg_find(s, "subdivisions");
        return cfg_fail_kv(s, kv, e, "batch=%d is not a multiple of subdivisions=%d", c->batch,
                           c->subdivisions);
    }
    return 0;
}

static int parse_policy(struct net_config *c, struct cfg_section *s, cn_error *e)
{
    int policy;
    if (cfg_get_choice(s, "policy", policy_names, LR_POLICY_COUNT, LR_CONSTANT, &policy, e) ||
        cfg_get_int(s, "step", 1, 1, BIG, &c->step, e) ||
        cfg_get_float(s, "scale", 1.f, 0.f, 1e6f, &c->scale, e) ||
        cfg_get_float(s, "gamma", 1.f, -1e6f, 1e6f, &c->gamma, e) ||
        cfg_get_float(s, "power", 4.f, 0.f, 1e3f, &c->power, e) ||
        cfg_get_float(s, "learning_rate_min", 0.f, 0.f, 1e3f, &c->learning_rate_min, e))
        return -1;
    c->policy = (enum lr_policy)policy;
    int nscales = 0;
    if (cfg_get_int_list(s, "steps", 0, BIG, &c->steps, &c->nsteps, e) ||
        cfg_get_float_list(s, "scales", 0.f, 1e6f, &c->scales, &nscales, e))
        return -1;
    if (c->policy == LR_STEPS) {
        struct cfg_kv *kv = cfg_find(s, "policy");
        if (!c->nsteps)
            return cfg_fail_kv(s, kv, e, "needs steps= (and scales=)");
        if (nscales != c->nsteps)
            return cfg_fail_kv(s, cfg_find(s, nscales ? "scales" : "policy"), e,
                               "steps has %d values but scales has %d", c->nsteps, nscales);
        for (int i = 1; i < c->nsteps; i++)
            if (c->steps[i] < c->steps[i - 1])
                return cfg_fail_kv(s, cfg_find(s, "steps"), e, "steps must not decrease");
    }
    return 0;
}

static int parse_optimiser(struct net_config *c, struct cfg_section *s, cn_error *e)
{
    int seed;
    if (cfg_get_float(s, "learning_rate", .001f, 0.f, 1e3f, &c->learning_rate, e) ||
        cfg_get_float(s, "momentum", .9f, 0.f, .9999f, &c->momentum, e) ||
        cfg_get_float(s, "decay", .0001f, 0.f, 1.f, &c->decay, e) ||
        cfg_get_int(s, "max_batches", 0, 0, BIG, &c->max_batches, e) ||
        cfg_get_int(s, "burn_in", 0, 0, BIG, &c->burn_in, e) ||
        cfg_get_bool(s, "adam", 0, &c->adam, e) || cfg_get_bool(s, "adamw", 0, &c->adamw, e) ||
        cfg_get_float(s, "B1", .9f, 0.f, .99999f, &c->b1, e) ||
        cfg_get_float(s, "B2", .999f, 0.f, .99999999f, &c->b2, e) ||
        cfg_get_float(s, "eps", .0000001f, 1e-30f, 1.f, &c->eps, e) ||
        cfg_get_int(s, "seed", 1, 0, 2147483647, &seed, e))
        return -1;
    c->seed = (uint64_t)seed;
    if (c->adam && c->adamw)
        return cfg_fail_kv(s, cfg_find(s, "adamw"), e, "adam=1 and adamw=1 exclude each other");
    return 0;
}

/* bn_style (darknet: eps on the standard deviation; torch: on the variance) and the style's
 * eps and momentum, which bn_eps and bn_momentum override (kernels/batchnorm.h); sync_bn
 * (statistics across the ranks of a data-parallel run, net/ddp.h). */
static int parse_batchnorm(struct net_config *c, struct cfg_section *s, cn_error *e)
{
    static const char *const styles[BN_STYLE_COUNT] = {"darknet", "torch"};
    int style;
    if (cfg_get_choice(s, "bn_style", styles, BN_STYLE_COUNT, BN_STYLE_DARKNET, &style, e))
        return -1;
    c->bn = bn_conf_default((enum bn_style)style);
    return cfg_get_float(s, "bn_eps", c->bn.eps, 1e-20f, 1.f, &c->bn.eps, e) ||
                   cfg_get_float(s, "bn_momentum", c->bn.momentum, 0.f, 1.f, &c->bn.momentum, e) ||
                   cfg_get_bool(s, "sync_bn", 0, &c->sync_bn, e)
               ? -1
               : 0;
}

/* valid_every: iterations between validations during training (0: never), or "epoch". */
static int parse_valid_every(struct net_config *c, struct cfg_section *s, cn_error *e)
{
    struct cfg_kv *kv = cfg_find(s, "valid_every");
    if (kv && !strcmp(kv->val, "epoch")) {
        cfg_ask(s, "valid_every");
        c->valid_every = NET_VALID_EPOCH;
        return 0;
    }
    return cfg_get_int(s, "valid_every", 0, 0, BIG, &c->valid_every, e);
}

int net_config_parse(struct net_config *c, struct cfg_section *s, cn_error *e)
{
    memset(c, 0, sizeof *c);
    if (strcmp(s->name, "net") && strcmp(s->name, "network"))
        return cfg_fail_section(s, e, "the first section must be [net] (or [network])");
    if (parse_shape(c, s, e) || parse_policy(c, s, e) || parse_optimiser(c, s, e) ||
        parse_batchnorm(c, s, e) || parse_valid_every(c, s, e) ||
        input_config_parse(&c->input, s, c->width, c->height, c->channels, e) ||
        cfg_check_unused(s, e)) {
        net_config_free(c);
        return -1;
    }
    return 0;
}

void net_config_free(struct net_config *c)
{
    free(c->steps);
    free(c->scales);
    c->steps = NULL;
    c->scales = NULL;
}
