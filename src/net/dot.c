/* dot.c - Graphviz DOT text of a built net (dot.h). References are re-read from the cfg because
 * the layers keep them private; they are resolved as build_resolve_ref does (v < 0: index + v,
 * else absolute), and the net has already checked them. Left out: layout hints beyond rankdir,
 * clusters per block. */
#include "net/dot.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg/cfg.h"

/* Appends s with DOT's double-quoted-string escapes. */
static void dot_quoted(struct strbuf *b, const char *s)
{
    strbuf_printf(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            strbuf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            strbuf_printf(b, "\\n");
        else
            strbuf_printf(b, "%c", *s);
    }
    strbuf_printf(b, "\"");
}

static const char *node_style(const struct layer *l)
{
    if (l->ops->is_loss)
        return "shape=octagon, fillcolor=\"#f4cccc\"";
    switch (l->ops->type) {
    case LAYER_ROUTE: return "shape=trapezium, fillcolor=\"#fff2cc\"";
    case LAYER_SHORTCUT:
    case LAYER_SCALE_CHANNELS: return "shape=circle, fillcolor=\"#d9ead3\"";
    case LAYER_CONV:
    case LAYER_CONNECTED: return "shape=box, fillcolor=\"#cfe2f3\"";
    default: return "shape=box, fillcolor=\"#eeeeee\"";
    }
}

static void dot_node(struct strbuf *b, const struct layer *l)
{
    char desc[256], label[400];
    l->ops->describe(l, desc, sizeof desc);
    snprintf(label, sizeof label, "%d %s\n%s", l->index, l->ops->name, desc);
    strbuf_printf(b, "  L%d [%s, label=", l->index, node_style(l));
    dot_quoted(b, label);
    strbuf_printf(b, "];\n");
}

/* An edge from layer `from` (-1: the input) to layer `to`, labelled with the tensor's shape. */
static void dot_edge(struct strbuf *b, const struct net *n, int from, int to, int dashed)
{
    struct shape s = from < 0 ? n->in : n->layers[from].out;
    if (from < 0)
        strbuf_printf(b, "  input -> L%d", to);
    else
        strbuf_printf(b, "  L%d -> L%d", from, to);
    strbuf_printf(b, " [label=\"%dx%dx%d\"%s];\n", s.c, s.h, s.w,
                  dashed ? ", style=dashed, color=\"#38761d\"" : "");
}

/* Edges into layer i: from the layers its section names (key), or from the layer below. */
static int dot_inputs(struct strbuf *b, const struct net *n, struct cfg_section *s, int i,
                      cn_error *e)
{
    const struct layer *l = &n->layers[i];
    enum layer_type t = l->ops->type;
    const char *key = t == LAYER_ROUTE                                   ? "layers"
                      : t == LAYER_SHORTCUT || t == LAYER_SCALE_CHANNELS ? "from"
                                                                         : NULL;
    if (t != LAYER_ROUTE)
        dot_edge(b, n, i - 1, i, 0);
    if (!key)
        return 0;
    int *refs = NULL, count = 0;
    if (cfg_get_int_list(s, key, INT_MIN / 2, INT_MAX / 2, &refs, &count, e))
        return -1;
    for (int k = 0; k < count; k++) {
        int j = refs[k] < 0 ? i + refs[k] : refs[k];
        if (j < 0 || j >= i) {
            free(refs);
            return cn_fail(e, "%s:%d: [%s] %s: layer %d is not an earlier layer", s->path, s->line,
                           s->name, key, j);
        }
        dot_edge(b, n, j, i, t != LAYER_ROUTE);
    }
    free(refs);
    return 0;
}

int dot_write(const struct net *n, const char *cfg_path, struct strbuf *out, cn_error *e)
{
    struct cfg_file *f;
    if (cfg_read_file(&f, cfg_path, CFG_SECTIONS, e))
        return -1;
    if (f->nsec != n->n + 1) {
        cfg_destroy(f);
        return cn_fail(e, "%s: changed while being drawn", cfg_path);
    }
    strbuf_printf(out, "digraph ");
    dot_quoted(out, cfg_path);
    strbuf_printf(out, " {\n  rankdir=TB;\n  node [style=\"rounded,filled\", fontname=Helvetica, "
                       "fontsize=10];\n  edge [fontname=Helvetica, fontsize=9];\n");
    strbuf_printf(out,
                  "  input [shape=parallelogram, fillcolor=\"#ffffff\", label=\"input\\n"
                  "%dx%dx%d\"];\n",
                  n->in.c, n->in.h, n->in.w);
    int rc = 0;
    for (int i = 0; i < n->n && !rc; i++) {
        dot_node(out, &n->layers[i]);
        rc = dot_inputs(out, n, &f->sec[i + 1], i, e);
    }
    strbuf_printf(out, "}\n");
    cfg_destroy(f);
    return rc;
}
