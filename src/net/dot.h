/* dot.h - a network as a Graphviz DOT graph (`net draw`): one node per layer (index, type, the
 * summary's description), an edge for every tensor a layer reads, labelled with its shape
 * (C x H x W). [route] reads only the layers it names, so an auxiliary head (a loss layer that a
 * route jumps back over) is a branch ending in its loss node; [shortcut] and [scale_channels]
 * get a second, dashed edge from the layer named by from=. Loss layers are octagons, routes
 * trapezoids, shortcuts circles; the input is a parallelogram.
 */
#ifndef CN_DOT_H
#define CN_DOT_H

#include "core/common.h"
#include "core/strbuf.h"
#include "net/net.h"

/* Appends the DOT text of n, built from cfg_path (re-read for layers= and from=), to out.
 * Returns 0, or -1 with a message (the cfg changed since n was built). */
int dot_write(const struct net *n, const char *cfg_path, struct strbuf *out, cn_error *e);

#endif
