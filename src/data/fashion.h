/* fashion.h - turns Fashion-MNIST's gzipped IDX files into PNG images and list files.
 *
 * Input (src_dir): train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
 * t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (Debian's dataset-fashion-mnist installs
 * them in /usr/share/datasets/fashion-mnist). Images are N x 28 x 28 bytes, labels N bytes < 10.
 * Output (dst_dir, created with its parents):
 *   train/NNNNN_<label>.png, test/NNNNN_<label>.png   8-bit gray 28x28, NNNNN the index in the set
 *   train.list, test.list                             one path per line, dst_dir/train/... (so
 *                                                     relative when dst_dir is relative)
 * Labels are data/fashion.labels' short names in class order: tee trouser pullover dress coat
 * sandal shirt sneaker bag boot (none is part of another, nor of the path words around them).
 *
 * All four files are read and checked before anything is written. Old lists are removed first,
 * and each new list is written to a temporary name and renamed into place at the end, test.list
 * first and train.list last, so an interrupted run never leaves a complete-looking train.list.
 */
#ifndef CN_DATA_FASHION_H
#define CN_DATA_FASHION_H

#include "core/common.h"

#define FASHION_CLASSES 10
#define FASHION_SIDE 28

/* Short label of class k (0..9), as used in file names and data/fashion.labels. */
const char *fashion_label(int k);

/* Prepares the dataset as described above. Returns 0, or -1 with "path: problem". PNGs are
 * written in parallel (OpenMP). */
int fashion_prepare(const char *src_dir, const char *dst_dir, cn_error *e);

#endif
