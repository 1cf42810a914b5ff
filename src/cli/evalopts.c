/* evalopts.c - parsing of the evaluation flags (see evalopts.h and the usage text).
 *
 *   -crops N              1, 2, 5 or 10 views per scale (views.h)
 *   -scale R              resize to R times the net input before cropping: 1 <= R <= 8;
 *                         default 1 for 1 or 2 crops, 256/224 for 5 or 10 (the ImageNet
 *                         protocol: 224 crops from the image resized to 256)
 *   -scales N1,N2,...     several resizes, given as the shorter side in pixels (multi-scale)
 *   -ensemble CFG,WEIGHTS[,W]   another model (repeatable), weight W (default 1)
 *   -weight W             weight of the model given as CFG WEIGHTS (default 1)
 *   -pad P                crops of the image at the net input's size, zero-padded by P pixels
 *                         on each side (views.h; scale 1): the corners are P-pixel shifts. P >= 1;
 *                         at most half the input's shorter side (checked per net, views_check)
 *   -letterbox            Darknet's classifier-predict preprocessing (views.h): the whole image
 *                         letterboxed by Darknet's resize onto 0.5 grey; one view
 * Paths given to -ensemble cannot contain commas.
 */
#include "cli/evalopts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* A number in [lo, hi] filling all of s. */
static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int bad(const char *flag, const char *val, const char *why)
{
    fprintf(stderr, "net: %s %s: %s\n", flag, val, why);
    return 1;
}

/* "224,256,288" -> pixel sizes. */
static int parse_scales(struct view_spec *v, const char *s)
{
    char buf[512];
    if (strlen(s) >= sizeof buf)
        return bad("-scales", "...", "too long");
    strcpy(buf, s);
    v->nscales = 0;
    v->pixels = 1;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        double px;
        if (v->nscales == VIEWS_MAX_SCALES)
            return bad("-scales", s, "at most 16 sizes");
        if (parse_num(tok, 1, 131072, &px) || px != floor(px))
            return bad("-scales", s, "expected sizes in pixels, e.g. 224,256,288");
        v->scale[v->nscales++] = (float)px;
    }
    return v->nscales ? 0 : bad("-scales", s, "expected sizes in pixels, e.g. 224,256,288");
}

/* -pad P: no resize, so no -scale, -scales or -letterbox with it. */
static int check_pad(const struct view_spec *v, const char *scale, const char *scales)
{
    if (!v->pad)
        return 0;
    char num[32];
    snprintf(num, sizeof num, "%d", v->pad);
    if (scale || scales)
        return bad("-pad", num, "crops of the image at the net input's size: give no -scale or "
                                "-scales with it");
    if (v->letterbox)
        return bad("-pad", num, "not with -letterbox (one letterboxed view)");
    return 0;
}

static int take_views(struct view_spec *v, int *argc, char **argv)
{
    long crops, pad;
    if (cli_take_int(argc, argv, "-crops", 1, 10, 1, &crops) ||
        cli_take_int(argc, argv, "-pad", 1, 4096, 0, &pad))
        return 1;
    char num[32];
    snprintf(num, sizeof num, "%ld", crops);
    if (crops != 1 && crops != 2 && crops != 5 && crops != 10)
        return bad("-crops", num,
                   "must be 1 (centre), 2 (and mirror), 5 (centre and corners) "
                   "or 10 (those and their mirrors)");
    *v = (struct view_spec){.crops = (int)crops, .nscales = 1, .pad = (int)pad};
    v->scale[0] = crops >= 5 && !pad ? 256.0f / 224.0f : 1.0f;
    const char *scale = NULL, *scales = NULL;
    if (cli_take_value(argc, argv, "-scale", &scale) < 0 ||
        cli_take_value(argc, argv, "-scales", &scales) < 0)
        return 1;
    if (scale && scales)
        return bad("-scale", scale, "give -scale or -scales, not both");
    double r;
    if (scale && parse_num(scale, 1, VIEWS_MAX_RATIO, &r))
        return bad("-scale", scale, "expected a ratio from 1 to 8 (times the net input)");
    if (scale)
        v->scale[0] = (float)r;
    v->letterbox = cli_take_flag(argc, argv, "-letterbox");
    if (check_pad(v, scale, scales))
        return 1;
    if (v->letterbox && (crops != 1 || scale || scales))
        return fprintf(stderr, "net: -letterbox is one view: give no -crops, -scale or -scales "
                               "with it\n"), 1;
    return scales ? parse_scales(v, scales) : 0;
}

/* "cfg,weights[,w]" */
static int parse_member(struct eval_model *m, char *s)
{
    const char *orig = s;
    char *c1 = strchr(s, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c1 || c1 == s || c1[1] == '\0' || c1 + 1 == c2 || (c2 && strchr(c2 + 1, ',')))
        return bad("-ensemble", orig, "expected CFG,WEIGHTS or CFG,WEIGHTS,WEIGHT");
    m->weight = 1;
    if (c2 && parse_num(c2 + 1, 1e-30, 1e30, &m->weight))
        return bad("-ensemble", orig, "the weight after the second comma must be a number > 0");
    *c1 = '\0';
    if (c2)
        *c2 = '\0';
    m->cfg = s;
    m->weights = c1 + 1;
    return 0;
}

static int take_models(struct eval_opts *o, int *argc, char **argv)
{
    const char *w = NULL;
    o->nmodels = 1;
    o->model[0].weight = 1;
    if (cli_take_value(argc, argv, "-weight", &w) < 0)
        return 1;
    if (w && parse_num(w, 1e-30, 1e30, &o->model[0].weight))
        return bad("-weight", w, "expected a number > 0");
    for (;;) {
        const char *m = NULL;
        int r = cli_take_value(argc, argv, "-ensemble", &m);
        if (r <= 0)
            return r < 0;
        if (o->nmodels == EVAL_MAX_MODELS)
            return bad("-ensemble", m, "at most 64 models");
        /* argv strings are writable: the commas become the ends of the two paths */
        if (parse_member(&o->model[o->nmodels], (char *)m))
            return 1;
        o->nmodels++;
    }
}

int evalopts_take(struct eval_opts *o, int *argc, char **argv)
{
    memset(o, 0, sizeof *o);
    if (take_views(&o->views, argc, argv) || take_models(o, argc, argv) ||
        cli_take_int(argc, argv, "-batch", 1, 100000, 100, &o->batch) ||
        cli_take_int(argc, argv, "-top", 1, 100000, 0, &o->top))
        return 1;
    int r = cli_take_value(argc, argv, "-o", &o->out);
    if (r < 0)
        return 1;
    if (r > 0 && !*o->out)
        return bad("-o", "''", "expected a file name");
    return 0;
}
