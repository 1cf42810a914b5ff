/* dist_mpi.c - net/dist.h over Open MPI (make MPI=1 defines CFGNET_MPI; empty otherwise).
 *
 * Two communicators, duplicates of MPI_COMM_WORLD: `comm` for the collectives, `hb` for the
 * heartbeats (so that their messages never match a collective's). Errors return (MPI_ERRORS_
 * RETURN on both) so that a broken connection to a dead rank becomes a message naming the
 * iteration. Heartbeat: entering the k-th bounded wait, a rank other than 0 sends k (8 bytes,
 * non-blocking, to rank 0); rank 0 keeps one receive posted per rank and the last k seen, so on
 * its deadline the ranks whose last k is below its own are the ones that never arrived.
 * The threads: MPI_THREAD_FUNNELED, since only the caller's thread calls MPI (loader threads and
 * OpenMP do not).
 */
#ifdef CFGNET_MPI
#include "net/dist.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HB_TAG 77
#define EXTRA_WAIT_OTHERS 10.0 /* seconds: ranks other than 0 wait longer, rank 0 reports */
/* Seconds a collective may stay unfinished after a signal: mpirun SIGKILLs the survivors
 * odls_base_sigkill_timeout (1 s) after their SIGTERM, so the message must come before. */
#define SIGNAL_GRACE 0.5
#define MPI_CHUNK (1 << 30)    /* MPI counts are int: larger ranges go in chunks */
#define HB_EVERY 0.25          /* seconds between heartbeats of a waiting rank */
#define HB_STALE 1.0           /* seconds of silence that make rank 0 name a rank */

struct dist {
    int rank, size, mpi; /* mpi: this process called MPI_Init_thread */
    double timeout;
    const volatile sig_atomic_t *stop;
    uint64_t iter, seq; /* seq: bounded waits entered so far */
    MPI_Comm comm, hb;
    uint64_t *hb_val, *hb_seen; /* rank 0: per rank, the receive buffer and the last value */
    double *hb_time;            /* rank 0: when each rank was last heard from */
    MPI_Request *hb_req;
    uint64_t hb_out, hb_owed; /* others: the value in flight, the newest one to send */
    double hb_sent;           /* others: when the last heartbeat left */
    MPI_Request hb_send;
    MPI_Request pending[DIST_MAX_PENDING];
    int npending;
};

static int launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static void hb_start(struct dist *d)
{
    d->hb_send = MPI_REQUEST_NULL;
    if (d->rank)
        return;
    d->hb_val = xcalloc((size_t)d->size, sizeof *d->hb_val);
    d->hb_seen = xcalloc((size_t)d->size, sizeof *d->hb_seen);
    d->hb_time = xmalloc(sizeof *d->hb_time * (size_t)d->size);
    for (int r = 0; r < d->size; r++)
        d->hb_time[r] = MPI_Wtime();
    d->hb_req = xmalloc(sizeof *d->hb_req * (size_t)d->size);
    d->hb_req[0] = MPI_REQUEST_NULL;
    for (int r = 1; r < d->size; r++)
        MPI_Irecv(&d->hb_val[r], 1, MPI_UINT64_T, r, HB_TAG, d->hb, &d->hb_req[r]);
}

/* Rank 0 takes the heartbeats that arrived; the others send the newest one owed, or again
 * after HB_EVERY seconds of waiting (a stopped process falls silent). */
static void hb_poll(struct dist *d, double now)
{
    int flag;
    if (d->rank) {
        if (d->hb_send != MPI_REQUEST_NULL)
            MPI_Test(&d->hb_send, &flag, MPI_STATUS_IGNORE);
        if (d->hb_send == MPI_REQUEST_NULL &&
            (d->hb_out < d->hb_owed || now - d->hb_sent > HB_EVERY)) {
            d->hb_out = d->hb_owed;
            d->hb_sent = now;
            MPI_Isend(&d->hb_out, 1, MPI_UINT64_T, 0, HB_TAG, d->hb, &d->hb_send);
        }
        return;
    }
    for (int r = 1; r < d->size; r++)
        for (;;) {
            if (MPI_Test(&d->hb_req[r], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS || !flag)
                break;
            d->hb_seen[r] = d->hb_val[r];
            d->hb_time[r] = now;
            MPI_Irecv(&d->hb_val[r], 1, MPI_UINT64_T, r, HB_TAG, d->hb, &d->hb_req[r]);
        }
}

int dist_open(struct dist **out, double timeout, const volatile sig_atomic_t *stop, cn_error *e)
{
    struct dist *d = xcalloc(1, sizeof *d);
    d->size = 1;
    d->timeout = timeout;
    d->stop = stop;
    *out = d;
    if (!launched_by_mpirun())
        return 0;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return cn_fail(e, "MPI_Init_thread failed");
    d->mpi = 1;
    MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
    MPI_Comm_dup(MPI_COMM_WORLD, &d->hb);
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(d->hb, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    hb_start(d);
    return 0;
}

/* "rank(s) 1, 3" - the ranks that did not reach this wait or fell silent in it, as rank 0
 * knows; "rank 0 or another rank" elsewhere. */
static void missing_ranks(const struct dist *d, char *buf, size_t n)
{
    double now = MPI_Wtime();
    if (d->rank) {
        snprintf(buf, n, "rank 0 or another rank");
        return;
    }
    size_t len = (size_t)snprintf(buf, n, "rank(s)");
    int any = 0;
    for (int r = 1; r < d->size && len + 16 < n; r++)
        if (d->hb_seen[r] < d->seq || now - d->hb_time[r] > HB_STALE) {
            len += (size_t)snprintf(buf + len, n - len, "%s %d", any ? "," : "", r);
            any = 1;
        }
    if (!any)
        snprintf(buf, n, "any rank (all reached this step: the network?)");
}

static void nap(void)
{
    struct timespec ts = {0, 20000}; /* 20 us: polling, not spinning a shared core */
    nanosleep(&ts, NULL);
}

/* Polls reqs[0..n) to completion, or fails at the deadline, on an MPI error or (when
 * `signals`) when a signal arrived and nothing completed for SIGNAL_GRACE seconds. */
static int wait_reqs(struct dist *d, MPI_Request *reqs, int n, const char *what, int signals,
                     cn_error *e)
{
    double t0 = MPI_Wtime(), limit = d->timeout + (d->rank ? EXTRA_WAIT_OTHERS : 0), sig_at = -1;
    char who[256];
    d->seq++;
    d->hb_owed = d->seq;
    for (;;) {
        int done, rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
            char s[MPI_MAX_ERROR_STRING];
            int len;
            MPI_Error_string(rc, s, &len);
            missing_ranks(d, who, sizeof who);
            return cn_fail(e, "rank %d: %s failed at iteration %llu: %s (lost %s?)", d->rank,
                           what, (unsigned long long)d->iter, s, who);
        }
        if (done)
            return 0;
        double now = MPI_Wtime();
        hb_poll(d, now);
        if (signals && d->stop && *d->stop && sig_at < 0)
            sig_at = now;
        if (now - t0 > limit || (sig_at >= 0 && now - sig_at > SIGNAL_GRACE)) {
            missing_ranks(d, who, sizeof who);
            return cn_fail(e, "rank %d: no progress from %s at iteration %llu after %.1f s (%s)%s",
                           d->rank, who, (unsigned long long)d->iter, now - t0, what,
                           sig_at >= 0 ? "; a signal arrived: a rank was killed or died" : "");
        }
        nap();
    }
}

void dist_close(struct dist *d)
{
    if (!d)
        return;
    if (d->mpi) {
        MPI_Request r;
        cn_error ignored;
        if (d->npending == 0 && MPI_Ibarrier(d->comm, &r) == MPI_SUCCESS)
            wait_reqs(d, &r, 1, "final barrier", 0, &ignored); /* rank 0 may be saving */
        for (int k = 1; d->hb_req && k < d->size; k++) {
            MPI_Cancel(&d->hb_req[k]);
            MPI_Request_free(&d->hb_req[k]);
        }
        if (d->hb_send != MPI_REQUEST_NULL)
            MPI_Request_free(&d->hb_send);
        MPI_Comm_free(&d->hb);
        MPI_Comm_free(&d->comm);
        MPI_Finalize();
    }
    free(d->hb_val);
    free(d->hb_seen);
    free(d->hb_time);
    free(d->hb_req);
    free(d);
}

void dist_abort(struct dist *d, int code, const char *msg)
{
    if (!d || !d->mpi)
        return;
    /* A leading newline ends rank 0's live progress line; the pause lets mpirun forward the
     * message before MPI_Abort has it kill this process. */
    if (strncmp(msg, "rank ", 5))
        fprintf(stderr, "\nnet: rank %d: %s\n", d->rank, msg);
    else
        fprintf(stderr, "\nnet: %s\n", msg);
    fflush(stderr);
    struct timespec ts = {0, 300000000};
    nanosleep(&ts, NULL);
    MPI_Abort(MPI_COMM_WORLD, code);
}

int dist_rank(const struct dist *d)
{
    return d->rank;
}

int dist_size(const struct dist *d)
{
    return d->size;
}

int dist_built_with_mpi(void)
{
    return 1;
}

void dist_set_iteration(struct dist *d, uint64_t iter)
{
    d->iter = iter;
}

int dist_sum_doubles(struct dist *d, double *x, int n, const char *what, cn_error *e)
{
    if (d->size == 1)
        return 0;
    MPI_Request r;
    if (MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, d->comm, &r) != MPI_SUCCESS)
        return cn_fail(e, "rank %d: %s: MPI_Iallreduce failed", d->rank, what);
    return wait_reqs(d, &r, 1, what, 1, e);
}

int dist_broadcast_floats(struct dist *d, float *x, size_t n, const char *what, cn_error *e)
{
    for (size_t off = 0; d->size > 1 && off < n; off += MPI_CHUNK) {
        int count = (int)CN_MIN(n - off, (size_t)MPI_CHUNK);
        MPI_Request r;
        if (MPI_Ibcast(x + off, count, MPI_FLOAT, 0, d->comm, &r) != MPI_SUCCESS)
            return cn_fail(e, "rank %d: %s: MPI_Ibcast failed", d->rank, what);
        if (wait_reqs(d, &r, 1, what, 1, e))
            return -1;
    }
    return 0;
}

int dist_check_same(struct dist *d, uint64_t value, const char *what, cn_error *e)
{
    if (d->size == 1)
        return 0;
    uint64_t *all = xmalloc(sizeof *all * (size_t)d->size);
    MPI_Request r;
    int rc = MPI_Iallgather(&value, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, d->comm, &r) !=
                     MPI_SUCCESS
                 ? cn_fail(e, "rank %d: %s: MPI_Iallgather failed", d->rank, what)
                 : wait_reqs(d, &r, 1, what, 1, e);
    for (int k = 1; !rc && k < d->size; k++)
        if (all[k] != all[0])
            rc = cn_fail(e,
                         "%s differs across ranks at iteration %llu: rank %d has %016llx, "
                         "rank 0 %016llx (the ranks diverged)",
                         what, (unsigned long long)d->iter, k, (unsigned long long)all[k],
                         (unsigned long long)all[0]);
    free(all);
    return rc;
}

int dist_isum_floats(struct dist *d, float *x, size_t n, cn_error *e)
{
    if (d->size == 1)
        return 0;
    if (d->npending == DIST_MAX_PENDING || n > (size_t)MPI_CHUNK)
        return cn_fail(e, "rank %d: more than %d pending sums or %zu floats in one", d->rank,
                       DIST_MAX_PENDING, n);
    if (MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, d->comm,
                       &d->pending[d->npending]) != MPI_SUCCESS)
        return cn_fail(e, "rank %d: MPI_Iallreduce of %zu floats failed", d->rank, n);
    d->npending++;
    return 0;
}

void dist_poll(struct dist *d)
{
    int flag;
    if (d->npending)
        MPI_Testall(d->npending, d->pending, &flag, MPI_STATUSES_IGNORE);
}

int dist_wait_all(struct dist *d, const char *what, cn_error *e)
{
    if (d->size == 1)
        return 0;
    int n = d->npending;
    d->npending = 0;
    return wait_reqs(d, d->pending, n, what, 1, e);
}
#endif
