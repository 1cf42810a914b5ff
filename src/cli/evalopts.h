/* evalopts.h - the flags `classifier valid` and `classifier predict` share: views (-crops,
 * -scale, -scales, -pad), ensemble members (-ensemble, -weight), -batch, -top and -o. */
#ifndef CN_CLI_EVALOPTS_H
#define CN_CLI_EVALOPTS_H

#include "data/views.h"

#define EVAL_MAX_MODELS 64

struct eval_model {
    const char *cfg, *weights; /* point into argv */
    double weight;             /* > 0; normalised over the models when averaging */
};

struct eval_opts {
    struct view_spec views;
    struct eval_model model[EVAL_MAX_MODELS]; /* model[0] is CFG WEIGHTS of the command line */
    int nmodels;
    long batch;      /* views per forward pass */
    long top;        /* 0: top= of the .data file */
    const char *out; /* -o FILE, or NULL */
};

/* Takes the flags above out of argv (leaving positional arguments and unknown flags) and fills
 * o, except model[0]'s paths. Returns 0, or 1 after printing one line naming the flag. */
int evalopts_take(struct eval_opts *o, int *argc, char **argv);

#endif
