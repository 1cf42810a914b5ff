/* ensemble.c - views through member nets, averaged. See ensemble.h for the formula.
 *
 * Per call, each member in turn: decode the views of all images in parallel (OpenMP over
 * images, one error slot each), push them through the net n->batch rows at a time, then add
 * the member's weighted view mean into the result.
 */
#include "net/ensemble.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "net/weights.h"

void ensemble_init(struct ensemble *en, const struct view_spec *views, int batch)
{
    CN_ASSERT(batch >= 1);
    memset(en, 0, sizeof *en);
    en->views = *views;
    en->nviews = views_count(views);
    en->batch = batch;
    en->group = CN_MAX(1, batch / CN_MAX(1, en->nviews));
}

void ensemble_require_classes(struct ensemble *en, int classes, const char *what)
{
    CN_ASSERT(classes >= 1 && en->n == 0);
    en->classes = classes;
    snprintf(en->classes_src, sizeof en->classes_src, "%s", what);
}

static void member_free(struct ensemble_member *m)
{
    net_destroy(m->n);
    cn_free_floats(m->views);
    cn_free_floats(m->out);
    free(m->errs);
}

void ensemble_free(struct ensemble *en)
{
    for (int i = 0; i < en->n; i++)
        member_free(&en->m[i]);
    free(en->m);
    en->m = NULL;
    en->n = 0;
}

/* Checks n against the views and the first member; allocates m's buffers. */
static int member_setup(struct ensemble *en, struct ensemble_member *m, const char *cfg,
                        cn_error *e)
{
    struct net *n = m->n;
    if (n->in.c < 1 || n->in.c > 4)
        return cn_fail(e, "%s: channels=%d: images give 1 to 4 channels", cfg, n->in.c);
    if (views_check(&en->views, n->in.w, n->in.h, e))
        return cn_wrap(e, "%s", cfg);
    size_t classes = net_outputs(n);
    if (en->classes && classes != (size_t)en->classes)
        return cn_fail(e,
                       "%s: outputs %zu values per image, but %s: every model of an ensemble "
                       "must have the same classes",
                       cfg, classes, en->classes_src);
    size_t rows, nin, nout;
    if (cn_mul(&rows, (size_t)en->group, (size_t)en->nviews) || cn_mul(&nin, rows, net_inputs(n)) ||
        cn_mul(&nout, rows, classes))
        return cn_fail(e, "%s: view buffers too large", cfg);
    if (!(m->views = cn_alloc_floats(nin, "views", e)) ||
        !(m->out = cn_alloc_floats(nout, "view outputs", e)))
        return cn_wrap(e, "%s", cfg);
    m->errs = xcalloc((size_t)en->group, sizeof *m->errs);
    return 0;
}

int ensemble_add(struct ensemble *en, const char *cfg, const char *weights, double w, cn_error *e)
{
    if (!(w > 0) || !isfinite(w))
        return cn_fail(e, "%s: weight %g: must be a finite number > 0", cfg, w);
    struct ensemble_member m = {0};
    m.weight = w;
    if (net_create(&m.n, cfg, en->batch, 0, e) || member_setup(en, &m, cfg, e) ||
        weights_load(m.n, weights, e)) {
        member_free(&m);
        return -1;
    }
    if (!en->classes) {
        en->classes = (int)net_outputs(m.n);
        snprintf(en->classes_src, sizeof en->classes_src, "%s outputs %d", cfg, en->classes);
    }
    en->m = xrealloc(en->m, sizeof *en->m * (size_t)(en->n + 1));
    en->m[en->n++] = m;
    return 0;
}

/* One image's views for member net n into dst. */
static int load_one(float *dst, const struct net *n, const struct view_spec *v,
                    const struct ensemble_images *im, int i, cn_error *e)
{
    if (!im->gray)
        return views_load(dst, im->paths[i], n->in.w, n->in.h, n->in.c, v, e);
    size_t px = (size_t)im->gw * (size_t)im->gh;
    return views_from_gray(dst, im->gray + (size_t)i * px, im->gw, im->gh, n->in.w, n->in.h,
                           n->in.c, v, im->paths[i], e);
}

/* Decodes and normalises the views of images 0..count-1 into m->views. */
static int load_views(const struct ensemble *en, struct ensemble_member *m,
                      const struct ensemble_images *im, int count, cn_error *e)
{
    const struct net *n = m->n;
    size_t per = net_inputs(n) * (size_t)en->nviews;
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < count; i++) {
        m->errs[i].msg[0] = '\0';
        if (load_one(m->views + (size_t)i * per, n, &en->views, im, i, &m->errs[i]) &&
            !m->errs[i].msg[0])
            cn_fail(&m->errs[i], "%s: cannot load", im->paths[i]);
    }
    for (int i = 0; i < count; i++)
        if (m->errs[i].msg[0])
            return cn_fail(e, "%s", m->errs[i].msg);
    aug_normalize(m->views, (size_t)count * (size_t)en->nviews, n->in.w, n->in.h, n->in.c,
                  &n->cfg.input.aug);
    return 0;
}

/* m->out rows [0, rows) = the net's outputs on m->views rows [0, rows). */
static void run_views(struct ensemble_member *m, int rows)
{
    struct net *n = m->n;
    size_t in = net_inputs(n), out = net_outputs(n);
    for (int r = 0; r < rows; r += n->batch) {
        int k = CN_MIN(n->batch, rows - r);
        memcpy(n->input, m->views + (size_t)r * in, sizeof(float) * (size_t)k * in);
        struct pass p;
        net_pass_init(n, &p, 0, 0);
        net_forward(n, &p);
        memcpy(m->out + (size_t)r * out, net_output(n), sizeof(float) * (size_t)k * out);
    }
}

int ensemble_predict(struct ensemble *en, float *probs, char *const *paths, int count, cn_error *e)
{
    struct ensemble_images im = {.paths = paths};
    return ensemble_predict_images(en, probs, &im, count, e);
}

int ensemble_predict_images(struct ensemble *en, float *probs, const struct ensemble_images *im,
                            int count, cn_error *e)
{
    CN_ASSERT(en->n >= 1 && count >= 1 && count <= en->group);
    size_t classes = (size_t)en->classes, nv = (size_t)en->nviews;
    double wsum = 0;
    for (int k = 0; k < en->n; k++)
        wsum += en->m[k].weight;
    memset(probs, 0, sizeof *probs * (size_t)count * classes);
    for (int k = 0; k < en->n; k++) {
        struct ensemble_member *m = &en->m[k];
        if (load_views(en, m, im, count, e))
            return -1;
        run_views(m, count * en->nviews);
        float f = (float)(m->weight / wsum / (double)nv);
        for (size_t i = 0; i < (size_t)count; i++)
            for (size_t v = 0; v < nv; v++)
                for (size_t j = 0; j < classes; j++)
                    probs[i * classes + j] += f * m->out[(i * nv + v) * classes + j];
    }
    return 0;
}
