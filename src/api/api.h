/* api.h - the record behind the public cfgnet_net handle and the checks the src/api/ files share.
 *
 * The handle owns one built net (inference or training), the cfg text it was built from (so that
 * cfgnet_set_batch can rebuild it at another batch size), the optimiser when built for training,
 * and the message of the last failed call. Nothing here is visible outside the library.
 */
#ifndef CN_API_H
#define CN_API_H

#include <stdint.h>

#include "cfgnet.h"
#include "core/common.h"
#include "net/net.h"
#include "net/optimizer.h"

struct cfgnet_net {
    struct net *n;         /* NULL until a cfgnet_load succeeds */
    char *text, *name;     /* cfg text and the name messages give it */
    unsigned flags;        /* CFGNET_TRAIN, CFGNET_SHARE_OUTPUTS */
    int freeze;            /* cfgnet_freeze: layers 0..freeze-1 are frozen (kept on rebuilds) */
    struct optimizer *opt; /* when built with CFGNET_TRAIN */
    uint8_t *pixels;       /* one image of input bytes: HWC -> CHW scratch for cfgnet_forward_u8 */
    int last_n;            /* images of the last pass; 0 when none has run since the build */
    cn_error err;
};

/* Builds the net of cfg text for a handle with these flags (cfgnet_load's) and frozen prefix,
 * and its optimiser when the flags say CFGNET_TRAIN (else *opt = NULL); all or nothing. */
int api_make_net(struct net **out, struct optimizer **opt, const char *text, const char *name,
                 int batch, unsigned flags, int freeze, cn_error *e);
/* Fails with "fn: no network loaded" when h holds none. */
int api_need_net(cfgnet_net *h, const char *fn);
/* Resolves a layer index (negative counts from the end) to 0..layers-1 in *out, or fails naming
 * the valid range. */
int api_layer_index(cfgnet_net *h, const char *fn, int layer, int *out);
/* Checks a tensor argument: non-NULL, c x h x w equal to the net's input shape, and n within
 * [1, batch] (inference) or a positive multiple of the batch (training). */
int api_check_images(cfgnet_net *h, const char *fn, const void *data, int n, int c, int hh, int w,
                     int training);
/* Checks that an output buffer (or NULL) of len floats holds n images of the last layer. */
int api_check_output(cfgnet_net *h, const char *fn, const float *out, size_t len, int n);

#endif
