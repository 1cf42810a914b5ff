/* test_cfg.c - the cfg reader: every accepted form and every rejection of cfg.h, plus the [net]
 * section's own checks and the "did you mean" hints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfg/cfg.h"
#include "gradcheck.h"
#include "net/net.h"

static struct cfg_file *read_ok(const char *text)
{
    struct cfg_file *f = NULL;
    cn_error e;
    if (cfg_read_string(&f, text, "t.cfg", CFG_SECTIONS, &e))
        fail_msg("unexpected error: %s", e.msg);
    return f;
}

static void read_fails(const char *text, const char *want)
{
    struct cfg_file *f = NULL;
    cn_error e = {{0}};
    assert_int_equal(cfg_read_string(&f, text, "t.cfg", CFG_SECTIONS, &e), -1);
    assert_null(f);
    if (!strstr(e.msg, want))
        fail_msg("expected '%s' in '%s'", want, e.msg);
}

static void test_accepted_forms(void **state)
{
    (void)state;
    const char *text = "\xEF\xBB\xBF# comment\r\n; another\r\n\r\n[net]\r\n"
                       "  batch = 4 \r\nwidth=5 # trailing\nheight=6;not-a-comment\n"
                       "[CONVOLUTIONAL]\nactivation =  leaky ; note\n";
    struct cfg_file *f = read_ok(text);
    assert_int_equal(f->nsec, 2);
    assert_string_equal(f->sec[0].name, "net");
    assert_int_equal(f->sec[0].line, 4);
    assert_int_equal(f->sec[0].nkv, 3);
    assert_string_equal(cfg_find(&f->sec[0], "batch")->val, "4");
    assert_int_equal(cfg_find(&f->sec[0], "batch")->line, 5);
    assert_string_equal(cfg_find(&f->sec[0], "width")->val, "5");
    /* ';' glued to a value is part of it: only a comment after whitespace is cut. */
    assert_string_equal(cfg_find(&f->sec[0], "height")->val, "6;not-a-comment");
    assert_string_equal(f->sec[1].name, "convolutional");
    assert_string_equal(cfg_find(&f->sec[1], "activation")->val, "leaky");
    cfg_destroy(f);
}

static void test_structural_errors(void **state)
{
    (void)state;
    read_fails("batch=1\n[net]\n", "t.cfg:1: 'batch=1' comes before any [section]");
    read_fails("[net]\nbatch=1\nbatch=2\n", "t.cfg:3: [net] duplicate key 'batch' (first set on line 2)");
    read_fails("[net]\njust words\n", "t.cfg:2: expected 'key=value'");
    read_fails("[net\n", "t.cfg:1: section header '[net' has no closing ']'");
    read_fails("[net] x\n", "t.cfg:1: unexpected text");
    read_fails("[]\n", "t.cfg:1: empty section name");
    read_fails("[net]\n=3\n", "t.cfg:2: missing key before '='");
}

static void test_file_errors(void **state)
{
    (void)state;
    struct cfg_file *f = NULL;
    cn_error e;
    assert_int_equal(cfg_read_file(&f, "/nonexistent/x.cfg", 0, &e), -1);
    assert_non_null(strstr(e.msg, "/nonexistent/x.cfg: cannot open"));
    char path[] = "/tmp/cfgnet_cfg_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "wb");
    fwrite("[net]\0x", 1, 7, fp);
    fclose(fp);
    assert_int_equal(cfg_read_file(&f, path, 0, &e), -1);
    assert_non_null(strstr(e.msg, "NUL byte"));
    remove(path);
}

static struct cfg_section *one_section(struct cfg_file **f, const char *text)
{
    *f = read_ok(text);
    return &(*f)->sec[0];
}

static void test_typed_getters(void **state)
{
    (void)state;
    struct cfg_file *f;
    struct cfg_section *s = one_section(
        &f, "[x]\ni=42\nneg=-3\nfl=0.5e-1\nbad=12abc\nstr=hello\nlist=1, 2,3\nflist=.5,1e2\n");
    cn_error e;
    int i;
    float x;
    const char *str;
    assert_int_equal(cfg_get_int(s, "i", 0, 0, 100, &i, &e), 0);
    assert_int_equal(i, 42);
    assert_int_equal(cfg_get_int(s, "absent", 7, 0, 100, &i, &e), 0);
    assert_int_equal(i, 7);
    assert_int_equal(cfg_get_float(s, "fl", 0, 0, 1, &x, &e), 0);
    assert_float_equal(x, 0.05f, 1e-9);
    assert_int_equal(cfg_get_str(s, "str", NULL, &str, &e), 0);
    assert_string_equal(str, "hello");
    assert_int_equal(cfg_get_int(s, "neg", 1, 1, 10, &i, &e), -1);
    assert_string_equal(e.msg, "t.cfg:3: [x] neg=-3: out of range [1, 10]");
    assert_int_equal(cfg_get_int(s, "bad", 1, 1, 10, &i, &e), -1);
    assert_string_equal(e.msg, "t.cfg:5: [x] bad=12abc: not an integer");
    assert_int_equal(cfg_get_float(s, "bad", 1, 0, 10, &x, &e), -1);
    assert_string_equal(e.msg, "t.cfg:5: [x] bad=12abc: not a finite number");
    assert_int_equal(cfg_get_int(s, "fl", 1, 0, 10, &i, &e), -1);
    int *v, nv;
    float *fv;
    assert_int_equal(cfg_get_int_list(s, "list", 0, 10, &v, &nv, &e), 0);
    assert_int_equal(nv, 3);
    assert_int_equal(v[0] + v[1] + v[2], 6);
    free(v);
    assert_int_equal(cfg_get_float_list(s, "flist", 0, 1000, &fv, &nv, &e), 0);
    assert_int_equal(nv, 2);
    assert_float_equal(fv[1], 100.f, 0);
    free(fv);
    assert_int_equal(cfg_get_int_list(s, "list", 0, 2, &v, &nv, &e), -1);
    assert_non_null(strstr(e.msg, "item 3 (3) out of range [0, 2]"));
    cfg_destroy(f);
}

static void test_non_finite_and_lists(void **state)
{
    (void)state;
    struct cfg_file *f;
    struct cfg_section *s = one_section(&f, "[x]\na=nan\nb=inf\nc=1e999\nd=1,,2\ne=\n");
    cn_error e;
    float x;
    int *v, nv;
    const char *str;
    assert_int_equal(cfg_get_float(s, "a", 0, -1e9f, 1e9f, &x, &e), -1);
    assert_int_equal(cfg_get_float(s, "b", 0, -1e9f, 1e9f, &x, &e), -1);
    assert_int_equal(cfg_get_float(s, "c", 0, -1e9f, 1e9f, &x, &e), -1);
    assert_int_equal(cfg_get_int_list(s, "d", 0, 9, &v, &nv, &e), -1);
    assert_int_equal(cfg_get_str(s, "e", "x", &str, &e), -1);
    assert_non_null(strstr(e.msg, "empty value"));
    cfg_destroy(f);
}

static void test_choice_and_unknown_keys(void **state)
{
    (void)state;
    struct cfg_file *f;
    struct cfg_section *s = one_section(&f, "[x]\nmode=lekay\nfilterz=3\nzzz=1\n");
    static const char *const modes[] = {"relu", "leaky", "linear"};
    cn_error e;
    int m, k;
    assert_int_equal(cfg_get_choice(s, "mode", modes, 3, 0, &m, &e), -1);
    assert_string_equal(e.msg, "t.cfg:2: [x] mode=lekay: unknown value (did you mean 'leaky'?)");
    assert_int_equal(cfg_get_int(s, "filters", 1, 1, 10, &k, &e), 0);
    assert_int_equal(cfg_check_unused(s, &e), -1);
    assert_string_equal(e.msg, "t.cfg:3: [x] unknown key 'filterz' (did you mean 'filters'?)");
    cfg_ask(s, "filterz");
    assert_int_equal(cfg_check_unused(s, &e), -1);
    assert_string_equal(e.msg, "t.cfg:4: [x] unknown key 'zzz'");
    cfg_destroy(f);
}

static void test_flat_files(void **state)
{
    (void)state;
    struct cfg_file *f = NULL;
    cn_error e;
    assert_int_equal(cfg_read_string(&f, "classes= 10\ntrain = a.list\n", "x.data", CFG_FLAT, &e), 0);
    assert_int_equal(f->nsec, 1);
    int c;
    assert_int_equal(cfg_get_int(&f->sec[0], "classes", 0, 1, 100, &c, &e), 0);
    assert_int_equal(c, 10);
    assert_int_equal(cfg_check_unused(&f->sec[0], &e), -1);
    assert_string_equal(e.msg, "x.data:2: [file] unknown key 'train'");
    cfg_destroy(f);
}

#define NET "[net]\nbatch=2\nheight=8\nwidth=8\nchannels=1\n"

static void test_net_section(void **state)
{
    (void)state;
    struct net *n = test_net("[network]\nbatch=4\nsubdivisions=2\nheight=8\nwidth=8\nchannels=1\n"
                             "[softmax]\n",
                             0, 1);
    assert_int_equal(n->batch, 2);
    assert_int_equal(n->cfg.batch, 4);
    assert_float_equal(n->cfg.momentum, .9f, 1e-7);
    net_destroy(n);
    test_net_fails("[softmax]\n", "test.cfg:1: [softmax]: the first section must be [net]");
    test_net_fails("[net]\nbatch=2\nwidth=8\nchannels=1\n[softmax]\n", "missing height=");
    test_net_fails(NET "[softmax]\n[net]\n", "test.cfg:7: [net] may only be the first section");
    test_net_fails(NET, "no layers after [net]");
    test_net_fails("[net]\nbatch=3\nsubdivisions=2\nheight=8\nwidth=8\nchannels=1\n[softmax]\n",
                   "batch=3 is not a multiple of subdivisions=2");
    test_net_fails(NET "learning_rat=0.1\n[softmax]\n",
                   "test.cfg:6: [net] unknown key 'learning_rat' (did you mean 'learning_rate'?)");
    test_net_fails(NET "policy=stpes\n[softmax]\n", "policy=stpes: unknown value (did you mean 'steps'?)");
    test_net_fails(NET "policy=steps\nsteps=10,20\nscales=.1\n[softmax]\n",
                   "steps has 2 values but scales has 1");
    test_net_fails(NET "momentum=abc\n[softmax]\n", "test.cfg:6: [net] momentum=abc: not a finite number");
    test_net_fails(NET "batch_normalize=1\n[softmax]\n", "unknown key 'batch_normalize'");
}

static void test_unknown_section_and_activation(void **state)
{
    (void)state;
    test_net_fails(NET "[convolutionl]\n", "test.cfg:6: unknown section [convolutionl] (did you mean [convolutional]?)");
    test_net_fails(NET "[yolo]\n", "test.cfg:6: unknown section [yolo]");
    test_net_fails(NET "[connected]\noutput=4\nactivation=relux\n",
                   "test.cfg:8: [connected] activation=relux: unknown value (did you mean 'relu'?)");
    test_net_fails(NET "[connected]\noutput=4\noutputs=5\n",
                   "test.cfg:8: [connected] unknown key 'outputs' (did you mean 'output'?)");
    test_net_fails(NET "[connected]\noutput=-3\n", "test.cfg:7: [connected] output=-3: out of range");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_forms),
        cmocka_unit_test(test_structural_errors),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_typed_getters),
        cmocka_unit_test(test_non_finite_and_lists),
        cmocka_unit_test(test_choice_and_unknown_keys),
        cmocka_unit_test(test_flat_files),
        cmocka_unit_test(test_net_section),
        cmocka_unit_test(test_unknown_section_and_activation),
    };
    return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
