/* test_memplan.c - memory planning (net/memplan.h): the greedy interval placer on worked cases,
 * and whole nets whose outputs share memory by liveness and take [route] inputs in place, which
 * must compute bit for bit what the same net computes with every output in its own memory
 * (NET_SEPARATE_OUTPUTS): zoo cfgs at small resolutions, inference and training. Dead layers
 * (outputs that cannot reach the last layer's): found by hand on a reader graph, skipped in
 * inference with the output unchanged bit for bit against NET_KEEP_OUTPUTS, run in training. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "net/memplan.h"
#include "net/net.h"

/* Two items overlap in memory only when their live ranges are disjoint. */
static void assert_plan_valid(const struct memplan_item *it, int n, size_t total)
{
    for (int a = 0; a < n; a++) {
        assert_true(it[a].offset + it[a].size <= total);
        for (int b = a + 1; b < n; b++) {
            int live = it[a].first <= it[b].last && it[b].first <= it[a].last;
            int mem = it[a].offset < it[b].offset + it[b].size &&
                      it[b].offset < it[a].offset + it[a].size;
            assert_false(live && mem);
        }
    }
}

/* A chain: each buffer read by the next layer only, so two buffers suffice: the two largest
 * neighbours, 64 + 48 (sizes 16 48 64 32 16, ranges [i, i+1]). */
static void test_chain_needs_two(void **state)
{
    (void)state;
    size_t size[5] = {16, 48, 64, 32, 16};
    struct memplan_item it[5];
    for (int i = 0; i < 5; i++)
        it[i] = (struct memplan_item){size[i], i, i + 1, 0};
    size_t total = memplan_assign(it, 5);
    assert_plan_valid(it, 5, total);
    assert_int_equal(total, 64 + 48);
    assert_int_equal(it[2].offset, 0);  /* the largest goes first, at 0 */
    assert_int_equal(it[1].offset, 64); /* then 48 beside it */
    assert_int_equal(it[3].offset, 64); /* 32 in 48's place: [1,2] and [3,4] are disjoint */
    assert_int_equal(memplan_naive(it, 5), 176);
    assert_int_equal(it[4].offset, 160);
}

/* A skip: buffer 0 is read by layer 3 (a shortcut), so it stays while 1 and 2 come and go. */
static void test_skip_stays_live(void **state)
{
    (void)state;
    struct memplan_item it[4] = {{32, 0, 3, 0}, {32, 1, 2, 0}, {32, 2, 3, 0}, {32, 3, 3, 0}};
    size_t total = memplan_assign(it, 4);
    assert_plan_valid(it, 4, total);
    assert_int_equal(total, 96);
    assert_int_equal(it[3].offset, it[1].offset); /* 3 reuses 1, dead after layer 2 */
}

/* Random ranges and sizes: always a valid plan, never above the naive one. */
static void test_random_plans_valid(void **state)
{
    (void)state;
    cn_rng r;
    cn_rng_seed(&r, 7);
    struct memplan_item it[60];
    for (int rep = 0; rep < 50; rep++) {
        int n = 1 + (int)(cn_rng_next(&r) % 60);
        size_t naive = 0;
        for (int i = 0; i < n; i++) {
            int first = (int)(cn_rng_next(&r) % 40), len = (int)(cn_rng_next(&r) % 6);
            it[i] = (struct memplan_item){1 + cn_rng_next(&r) % 100, first, first + len, 0};
            naive += it[i].size;
        }
        size_t total = memplan_assign(it, n);
        assert_plan_valid(it, n, total);
        assert_true(total <= naive);
    }
}

/* Slots: a concatenation of layers 0 and 1 (sizes 10 and 6) at layer 2, and a view of layer 2 at
 * layer 3: one storage of 16 floats holds all four. */
static void test_offers_nest(void **state)
{
    (void)state;
    size_t per[4] = {10, 6, 16, 16};
    struct memplan_out o[4];
    int last[4] = {2, 2, 3, 3};
    for (int i = 0; i < 4; i++)
        o[i] = (struct memplan_out){per[i], last[i], -1, 0, 0};
    struct memplan_offer f[3] = {{MEMPLAN_SLOT, 2, 0, 0}, {MEMPLAN_SLOT, 2, 1, 10},
                                 {MEMPLAN_VIEW, 3, 2, 0}};
    assert_int_equal(memplan_offer(o, per, 1, f, 3), 3);
    assert_int_equal(memplan_outputs(o, 4, 1), 16);
    assert_int_equal(o[2].offset, o[0].offset);
    assert_int_equal(o[1].offset, o[2].offset + 10);
    assert_int_equal(o[3].offset, o[2].offset);
    /* At batch 2 the slots are refused (per-image slices are not contiguous); the whole view
     * is still fine. */
    for (int i = 0; i < 4; i++)
        o[i] = (struct memplan_out){2 * per[i], last[i], -1, 0, 0};
    assert_int_equal(memplan_offer(o, per, 2, f, 3), 1);
    assert_int_equal(o[3].parent, 2);
    assert_int_equal(o[0].parent, -1);
}

/* The cfg at path with height= and width= set to side and [net] batch= to 1 (text to free). */
static char *small_cfg(const char *path, int side)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = calloc((size_t)len + 64, 1), *out = calloc((size_t)len + 64, 1);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    char *o = out;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "height=", 7) || !strncmp(line, "width=", 6))
            o += sprintf(o, "%.*s=%d\n", (int)(strchr(line, '=') - line), line, side);
        else if (!strncmp(line, "batch=", 6) || !strncmp(line, "subdivisions=", 13))
            o += sprintf(o, "%.*s=1\n", (int)(strchr(line, '=') - line), line);
        else
            o += sprintf(o, "%s\n", line);
    }
    free(text);
    return out;
}

static struct net *make(const char *text, const char *name, int batch, int flags)
{
    struct net *n;
    cn_error e;
    if (net_create_from_string(&n, text, name, batch, flags, &e))
        fail_msg("%s", e.msg);
    return n;
}

static void fill_input(struct net *n, uint64_t seed)
{
    cn_rng r;
    cn_rng_seed(&r, seed);
    for (size_t i = 0; i < net_inputs(n) * (size_t)n->batch; i++)
        n->input[i] = (float)cn_rng_uniform(&r) - 0.5f;
}

/* Routes of n whose inputs all write straight into their output. */
static int routes_in_place(const struct net *n)
{
    int count = 0;
    for (int i = 0; i < n->n; i++) {
        const struct layer *l = &n->layers[i];
        if (l->ops->type != LAYER_ROUTE)
            continue;
        /* In place: some earlier layer's output lies inside this one's. */
        int inside = 0;
        for (int j = 0; j < i; j++) {
            const float *y = n->layers[j].output, *end = l->output + shape_size(l->out);
            inside |= y >= l->output && y + shape_size(n->layers[j].out) <= end;
        }
        count += inside;
    }
    return count;
}

/* Inference: shared + in place against separate, bit for bit, at batch 1 and 2; the plan uses
 * less memory. Returns the shared net's activation floats over the separate one's, in %. */
static int check_inference(const char *path, int side, int want_in_place, int max_batch)
{
    char *text = small_cfg(path, side);
    int pct = 0;
    for (int batch = 1; batch <= max_batch; batch++) {
        struct net *a = make(text, path, batch, 0), *b = make(text, path, batch,
                                                               NET_SEPARATE_OUTPUTS);
        fill_input(a, 3);
        fill_input(b, 3);
        struct pass p, q;
        net_pass_init(a, &p, 0, 0);
        net_pass_init(b, &q, 0, 0);
        net_forward(a, &p);
        net_forward(b, &q);
        assert_memory_equal(net_output(a), net_output(b),
                            sizeof(float) * net_outputs(a) * (size_t)batch);
        assert_true(a->nout_floats < b->nout_floats);
        if (batch == 1) {
            pct = (int)(100.0 * (double)a->nout_floats / (double)b->nout_floats);
            if (want_in_place)
                assert_true(routes_in_place(a) >= want_in_place);
        }
        net_destroy(a);
        net_destroy(b);
    }
    free(text);
    return pct;
}

static void test_resnet18_inference(void **state)
{
    (void)state;
    int pct = check_inference("cfg/resnet18.cfg", 32, 0, 2);
    print_message("resnet18 32x32: activations %d%% of the unshared plan\n", pct);
    assert_true(pct < 50);
}

static void test_googlenet_inference(void **state)
{
    (void)state;
    int pct = check_inference("cfg/googlenet.cfg", 96, 9, 2); /* 9 inceptions */
    print_message("googlenet 96x96: activations %d%% of the unshared plan\n", pct);
    assert_true(pct < 25);
}

static void test_squeezenet_inference(void **state)
{
    (void)state;
    int pct = check_inference("cfg/squeezenet1_1.cfg", 64, 8, 2); /* 8 fire modules */
    print_message("squeezenet1_1 64x64: activations %d%% of the unshared plan\n", pct);
}

/* Hand-made routes: a concatenation of three branches (slots), a DenseNet-style chain of
 * concatenations (slots inside slots), a single-input route (a view) and a grouped one (a view
 * of a slice). In place at batch 1, copies at batch 3 but the views; bit for bit either way. */
static void test_routes_in_place_equal_copies(void **state)
{
    (void)state;
    const char *cfg =
        "[net]\nheight=6\nwidth=5\nchannels=3\n"
        "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"        /* 0 */
        "[convolutional]\nfilters=2\nsize=1\nactivation=relu\n"                 /* 1 */
        "[route]\nlayers=-2\n"                                                    /* 2 */
        "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=leaky\n"        /* 3 */
        "[route]\nlayers=0\n"                                                     /* 4 */
        "[maxpool]\nsize=3\nstride=1\npadding=2\n"                              /* 5 */
        "[route]\nlayers=1,3,5\n"                                                 /* 6 */
        "[convolutional]\nfilters=2\nsize=1\nactivation=relu\n"                 /* 7 */
        "[route]\nlayers=-2,-1\n"                                                 /* 8 */
        "[convolutional]\nfilters=1\nsize=1\nactivation=relu\n"                 /* 9 */
        "[route]\nlayers=-2,-1\n"                                                 /* 10 */
        "[route]\nlayers=-1\ngroups=3\ngroup_id=1\n"                            /* 11 */
        "[convolutional]\nfilters=5\nsize=3\npad=1\nactivation=linear\n";      /* 12 */
    for (int batch = 1; batch <= 3; batch += 2) {
        struct net *a = make(cfg, "routes", batch, 0),
                   *b = make(cfg, "routes", batch, NET_SEPARATE_OUTPUTS);
        fill_input(a, 9);
        fill_input(b, 9);
        struct pass p, q;
        net_pass_init(a, &p, 0, 0);
        net_pass_init(b, &q, 0, 0);
        net_forward(a, &p);
        net_forward(b, &q);
        assert_memory_equal(net_output(a), net_output(b),
                            sizeof(float) * net_outputs(a) * (size_t)batch);
        const struct layer *L = a->layers;
        assert_ptr_equal(L[2].output, L[0].output); /* a whole view, at any batch */
        if (batch == 1) {
            assert_ptr_equal(L[1].output, L[10].output); /* 1 -> 6 -> 8 -> 10, all at 0 */
            assert_ptr_equal(L[3].output, L[10].output + 2 * 30);
            assert_ptr_equal(L[5].output, L[10].output + 5 * 30);
            assert_ptr_equal(L[7].output, L[10].output + 9 * 30);
            assert_ptr_equal(L[9].output, L[10].output + 11 * 30);
            assert_ptr_equal(L[11].output, L[10].output + 4 * 30); /* group 1 of 3 */
        } else {
            assert_true(L[1].output < L[6].output || L[1].output >= L[6].output + 9 * 30 * 3);
        }
        net_destroy(a);
        net_destroy(b);
    }
}

/* Training: output gradients shared by liveness give the same parameter gradients, bit for bit,
 * as separate ones; the net keeps every output. */
static void test_training_gradients_equal(void **state)
{
    (void)state;
    const char *paths[3] = {"cfg/resnet18.cfg", "cfg/googlenet.cfg", "cfg/googlenet.cfg"};
    const int sides[3] = {32, 96, 96}, batches[3] = {2, 1, 2}; /* batch 1: slots in training */
    for (int k = 0; k < 3; k++) {
        char *text = small_cfg(paths[k], sides[k]);
        int B = batches[k];
        struct net *a = make(text, paths[k], B, NET_TRAIN | NET_INPUT_GRAD),
                   *b = make(text, paths[k], B, NET_TRAIN | NET_INPUT_GRAD | NET_SEPARATE_OUTPUTS);
        struct net *both[2] = {a, b};
        for (int s = 0; s < 2; s++) {
            struct net *n = both[s];
            fill_input(n, 5);
            memset(n->truth, 0, sizeof(float) * net_outputs(n) * (size_t)B);
            n->truth[3] = n->truth[(size_t)(B - 1) * net_outputs(n) + 7] = 1.f;
            memset(n->input_grad, 0, sizeof(float) * net_inputs(n) * (size_t)B);
            struct pass p;
            net_pass_init(n, &p, 1, 1);
            net_zero_grads(n);
            net_forward(n, &p);
            net_backward(n, &p);
        }
        assert_true(a->ndout_floats < b->ndout_floats);
        assert_memory_equal(a->input_grad, b->input_grad,
                            sizeof(float) * net_inputs(a) * (size_t)B);
        for (int i = 0; i < a->nparams; i++)
            if (a->params[i].grad)
                assert_memory_equal(a->params[i].grad, b->params[i].grad,
                                    sizeof(float) * a->params[i].n);
        net_destroy(a);
        net_destroy(b);
        free(text);
    }
}

/* Dead layers of a reader graph (net/memplan.h): 0 -> 1 -> 2 (a head nothing reads), 0 -> 3
 * (a route back), 3 -> 4 (a side branch read by none), 3 and 5 -> 6 (a shortcut; 5 reads nothing
 * but is read, so it is live). Given out of order: the function sorts them. */
static void test_dead_by_hand(void **state)
{
    (void)state;
    struct memplan_read r[6] = {{6, 3}, {1, 0}, {2, 1}, {3, 0}, {4, 3}, {6, 5}};
    unsigned char dead[7];
    assert_int_equal(memplan_dead(dead, 7, r, 6), 3);
    const unsigned char want[7] = {0, 1, 1, 0, 1, 0, 0};
    assert_memory_equal(dead, want, 7);
    unsigned char one;
    assert_int_equal(memplan_dead(&one, 1, NULL, 0), 0); /* the last layer is always live */
    assert_int_equal(one, 0);
}

/* Counts calls of a wrapped forward: the ops of a layer under test are replaced by a copy whose
 * forward counts, then calls the real one (the test's own state; nothing in src/ uses it). */
static int spy_calls;
static void (*spy_real)(struct layer *l, struct pass *p);
static void spy_forward(struct layer *l, struct pass *p)
{
    spy_calls++;
    spy_real(l, p);
}

/* An auxiliary head (1-3: conv, pool, loss-weighted softmax) and a side branch nothing reads
 * (5), the rest read through a route, a shortcut (from=) and the implicit input. */
static const char dead_cfg[] =
    "[net]\nheight=6\nwidth=5\nchannels=2\n"
    "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n" /* 0 */
    "[convolutional]\nfilters=3\nsize=1\nactivation=relu\n"          /* 1 dead */
    "[avgpool]\n"                                                      /* 2 dead */
    "[softmax]\nloss_weight=0.5\n"                                     /* 3 dead */
    "[route]\nlayers=0\n"                                              /* 4 */
    "[convolutional]\nfilters=2\nsize=1\nactivation=relu\n"          /* 5 dead */
    "[route]\nlayers=4\n"                                              /* 6 */
    "[convolutional]\nfilters=4\nsize=1\nactivation=leaky\n"         /* 7 */
    "[shortcut]\nfrom=4\nactivation=linear\n"                          /* 8 */
    "[maxpool]\nsize=2\nstride=2\n"                                    /* 9 */
    "[connected]\noutput=3\nactivation=linear\n"                       /* 10 */
    "[softmax]\n";                                                     /* 11 */

/* Runs net n's forward with layers 1 and 5 spied on; returns how often they ran. */
static int forward_spied(struct net *n)
{
    struct layer_ops spy1 = *n->layers[1].ops, spy5 = *n->layers[5].ops;
    spy_real = spy1.forward;
    spy1.forward = spy5.forward = spy_forward;
    const struct layer_ops *o1 = n->layers[1].ops, *o5 = n->layers[5].ops;
    n->layers[1].ops = &spy1;
    n->layers[5].ops = &spy5;
    spy_calls = 0;
    fill_input(n, 11);
    struct pass p;
    net_pass_init(n, &p, 0, 0);
    net_forward(n, &p);
    n->layers[1].ops = o1;
    n->layers[5].ops = o5;
    return spy_calls;
}

/* Inference skips the dead layers (not run, no output memory) and computes the same output, bit
 * for bit, as the net built with NET_KEEP_OUTPUTS, which runs them all; so does training. */
static void test_dead_layers_skipped(void **state)
{
    (void)state;
    for (int batch = 1; batch <= 2; batch++) {
        struct net *a = make(dead_cfg, "dead", batch, 0),
                   *b = make(dead_cfg, "dead", batch, NET_KEEP_OUTPUTS),
                   *t = make(dead_cfg, "dead", batch, NET_TRAIN);
        const unsigned char want[12] = {0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0};
        assert_int_equal(a->ndead, 4);
        assert_memory_equal(a->dead, want, 12);
        assert_int_equal(b->ndead, 0);
        assert_int_equal(t->ndead, 0);
        for (int i = 0; i < 12; i++)
            assert_true((a->layers[i].output == NULL) == want[i]);
        assert_int_equal(forward_spied(a), 0);
        assert_int_equal(forward_spied(b), 2);
        assert_int_equal(forward_spied(t), 2);
        assert_memory_equal(net_output(a), net_output(b),
                            sizeof(float) * net_outputs(a) * (size_t)batch);
        assert_true(a->nout_floats < b->nout_floats);
        cn_error e;
        assert_int_equal(net_check_live(a, 8, &e), 0);
        assert_int_equal(net_check_live(a, 5, &e), -1);
        assert_non_null(strstr(e.msg, "layer 5 [convolutional] (line 19) is skipped in inference"));
        net_destroy(a);
        net_destroy(b);
        net_destroy(t);
    }
}

/* GoogLeNet's two auxiliary heads (6 layers each) are dead in inference; the main output is the
 * one the net computes with them. */
static void test_googlenet_heads_dead(void **state)
{
    (void)state;
    char *text = small_cfg("cfg/googlenet.cfg", 96);
    struct net *a = make(text, "googlenet", 1, 0), *b = make(text, "googlenet", 1,
                                                             NET_KEEP_OUTPUTS);
    assert_int_equal(a->ndead, 12);
    for (int i = 39; i <= 44; i++)
        assert_true(a->dead[i] && a->dead[i + 40] && !a->layers[i].output);
    assert_false(a->dead[38] || a->dead[45] || a->dead[78] || a->dead[85]);
    fill_input(a, 4);
    fill_input(b, 4);
    struct pass p, q;
    net_pass_init(a, &p, 0, 0);
    net_pass_init(b, &q, 0, 0);
    net_forward(a, &p);
    net_forward(b, &q);
    assert_memory_equal(net_output(a), net_output(b), sizeof(float) * net_outputs(a));
    net_destroy(a);
    net_destroy(b);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_needs_two),
        cmocka_unit_test(test_skip_stays_live),
        cmocka_unit_test(test_random_plans_valid),
        cmocka_unit_test(test_offers_nest),
        cmocka_unit_test(test_resnet18_inference),
        cmocka_unit_test(test_googlenet_inference),
        cmocka_unit_test(test_squeezenet_inference),
        cmocka_unit_test(test_routes_in_place_equal_copies),
        cmocka_unit_test(test_training_gradients_equal),
        cmocka_unit_test(test_dead_by_hand),
        cmocka_unit_test(test_dead_layers_skipped),
        cmocka_unit_test(test_googlenet_heads_dead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
