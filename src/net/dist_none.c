/* dist_none.c - net/dist.h without MPI (the default build): one rank, every collective the
 * identity, nothing to wait for. make MPI=1 compiles dist_mpi.c instead (this file is empty
 * there). */
#ifndef CFGNET_MPI
#include "net/dist.h"

#include <stdio.h>
#include <stdlib.h>

struct dist {
    int unused;
};

int dist_open(struct dist **out, double timeout, const volatile sig_atomic_t *stop, cn_error *e)
{
    (void)timeout;
    (void)stop;
    (void)e;
    *out = xcalloc(1, sizeof **out);
    return 0;
}

void dist_close(struct dist *d)
{
    free(d);
}

void dist_abort(struct dist *d, int code, const char *msg)
{
    (void)d;
    (void)code;
    (void)msg;
}

int dist_rank(const struct dist *d)
{
    (void)d;
    return 0;
}

int dist_size(const struct dist *d)
{
    (void)d;
    return 1;
}

int dist_built_with_mpi(void)
{
    return 0;
}

void dist_set_iteration(struct dist *d, uint64_t iter)
{
    (void)d;
    (void)iter;
}

int dist_sum_doubles(struct dist *d, double *x, int n, const char *what, cn_error *e)
{
    (void)d, (void)x, (void)n, (void)what, (void)e;
    return 0;
}

int dist_broadcast_floats(struct dist *d, float *x, size_t n, const char *what, cn_error *e)
{
    (void)d, (void)x, (void)n, (void)what, (void)e;
    return 0;
}

int dist_check_same(struct dist *d, uint64_t value, const char *what, cn_error *e)
{
    (void)d, (void)value, (void)what, (void)e;
    return 0;
}

int dist_isum_floats(struct dist *d, float *x, size_t n, cn_error *e)
{
    (void)d, (void)x, (void)n, (void)e;
    return 0;
}

void dist_poll(struct dist *d)
{
    (void)d;
}

int dist_wait_all(struct dist *d, const char *what, cn_error *e)
{
    (void)d, (void)what, (void)e;
    return 0;
}
#endif
