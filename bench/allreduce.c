/* allreduce.c - time of MPI_Allreduce (in place, sum, floats) of N floats across the ranks of
 * the job: bench/mpi.sh runs it for ResNet-50's gradient size (25,557,032 floats, ~102 MB) over
 * loopback and a veth pair. Prints the median of REPS timed runs after one warm-up, from rank 0.
 * usage: mpirun -np 2 allreduce [FLOATS [REPS]] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    long n = argc > 1 ? atol(argv[1]) : 25557032L;
    int reps = argc > 2 ? atoi(argv[2]) : 5, rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    float *x = malloc(sizeof *x * (size_t)n);
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!x || !t || reps < 1 || n < 1 || n > 1L << 30)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < n; i++)
        x[i] = 1e-3f * (float)(i % 1000);
    for (int k = -1; k < reps; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (k >= 0)
            t[k] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    if (!rank)
        printf("allreduce %ld floats (%.1f MB) on %d ranks: median %.3f s of %d (%.2f Gb/s "
               "algorithm bandwidth 2(N-1)/N bytes/time)\n",
               n, 4e-6 * (double)n, size, t[reps / 2], reps,
               2.0 * (size - 1) / size * 4.0 * (double)n * 8 / t[reps / 2] / 1e9);
    free(x);
    free(t);
    MPI_Finalize();
    return 0;
}
