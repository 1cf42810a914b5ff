/* weights.h - Darknet's .weights files: a small header, then every parameter tensor of the net as
 * raw float32, in the order the layers declared them (which is Darknet's order). */
#ifndef CN_WEIGHTS_H
#define CN_WEIGHTS_H

#include "core/common.h"
#include "net/net.h"

/* Writes n's parameters and n->seen to path as a version 0.2.0 file (64-bit seen), atomically:
 * on failure the old file at path is untouched. Returns 0 or -1. */
int weights_save(const struct net *n, const char *path, cn_error *e);

/* Reads path into n's parameters and n->seen. All or nothing: the file's size must match what
 * n's cfg needs exactly, its version must be known, and every value must be finite (and every
 * rolling variance non-negative) before anything in n changes. Returns 0, or -1 with a message
 * stating what was expected and what was found. */
int weights_load(struct net *n, const char *path, cn_error *e);

#endif
