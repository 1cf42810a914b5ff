/* torchref.h - running layers in PyTorch (test/ref/torch_layer.py) to compare with ours.
 *
 * The tests run from the repository root (test/run.sh), so the script is found there; PyTorch is
 * Debian's python3-torch under /usr/bin/python3. When it is missing the comparison is skipped
 * with a message on stdout, never passed silently. All cases of a call share one Python process
 * (importing torch takes seconds).
 */
#ifndef CN_TEST_TORCHREF_H
#define CN_TEST_TORCHREF_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

#define TORCHREF_SKIPPED (-2)

/* For each one-layer net built for training (nets[k], with op line specs[k], see torch_layer.py):
 * fills the input and dL/doutput with seeded values in [-2, 2], runs our forward (training mode)
 * and backward, then runs every spec in PyTorch on the same numbers. Returns how many outputs or
 * input gradients differ by more than tol * (1 + |torch's|), printing the first few; -1 when the
 * script fails; TORCHREF_SKIPPED (with a message naming `what`) when PyTorch is not there. */
int torchref_compare(struct net *const *nets, const char *const *specs, int count, uint64_t seed,
                     float tol, const char *what);

/* A cfg and its op line for torchref_check. */
struct torchref_pair {
    const char *cfg, *spec;
};

/* The driver of the layer tests: builds each cfg for training, runs torchref_compare on them all,
 * frees them, and fails the current cmocka test on any difference, or skips it (after the
 * message) when PyTorch is not there. */
void torchref_check(const struct torchref_pair *cases, int count, uint64_t seed, float tol,
                    const char *what);

/* Targets a loss layer's case puts in net->truth (and sends in place of dL/doutput). */
enum torchref_truth {
    TORCHREF_NO_TRUTH, /* not a loss: dL/doutput is random */
    TORCHREF_ONE_HOT,  /* one class per row of `classes` values, label-smoothed by `smooth` */
    TORCHREF_VALUES,   /* regression targets in [-2, 2] */
    TORCHREF_MASKED,   /* the same, every fourth Darknet's "no target" -1234 */
};

/* One case of torchref_parity: a net (any layers torch_layer.py's op reproduces) and how to run
 * it. Every parameter is drawn afresh (rolling variances in [0.5, 2], the rest in [-1, 1]). */
struct torchref_case {
    const char *name; /* printed with the errors */
    const char *cfg;  /* cfg text; built for training at the cfg's batch */
    const char *spec; /* torch_layer.py's op line */
    int train;        /* a training-mode pass (batch statistics, dropout); else inference */
    float range;      /* inputs uniform in [-range, range]; 0 means 2 */
    enum torchref_truth truth;
    int classes;   /* TORCHREF_ONE_HOT: values per row (a softmax group) */
    float smooth;  /* TORCHREF_ONE_HOT: t = (1 - smooth) * one_hot + smooth / classes */
    int send_mask; /* dropout: sends our keep mask (y != 0) as the script's "mask" */
};

/* Runs every case here (forward, then backward from random dL/doutput, or from the loss) and
 * then in one torch_layer.py process, and compares every tensor the script returns: output,
 * input gradient, loss, each trainable parameter's gradient (all must come back) and the
 * rolling statistics after the pass. The norm is max |ours - torch| / max |torch| per tensor;
 * one line per case prints them. Returns how many cases have a tensor over tol (or miss one),
 * and when bad is not NULL sets bad[k] to 1 for each such case k, 0 for the others; -1 when the
 * script fails, TORCHREF_SKIPPED (with a message) when PyTorch is not there. */
int torchref_parity(const struct torchref_case *cases, int count, uint64_t seed, double tol,
                    int *bad);

#endif
