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

#endif
