/* winograd.h - 3x3, stride-1, undilated, ungrouped convolution by Winograd's minimal filtering
 * (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks"), forward and data
 * gradient, and the direct references it is tested against.
 *
 * Dimensions: the input is batch x C x H x W (NCHW), the weights F x C x 3 x 3 (Darknet's and
 * PyTorch's layout), the output batch x F x OH x OW with OH = H + 2*ph - 2, OW = W + 2*pw - 2: a
 * cross-correlation over the input padded by ph rows and pw columns of zeros on each side (a
 * negative padding crops). Output (b, f, y, x) = sum over c, i, j of w[f][c][i][j] *
 * in[b][c][y + i - ph][x + j - pw], zero outside the image.
 *
 * Scheme F(m x m, 3 x 3), tile side a = m + 2: the output is cut into m x m tiles (edge tiles
 * clipped), each read from an a x a input tile. U[xi](f, c) = (G g G^T)[xi] for the filter g =
 * w[f][c] (a*a matrices of F x C, made once per weight change, stored already packed as the
 * GEMMs' A operand in gemm_pack_a_all's layout, so that no GEMM repacks them); V[xi][c][t] = (B^T d B)[xi] for the input tile d of tile t;
 * then a*a GEMMs M[xi] = U[xi] * V[xi] (F x T) and each tile's output A^T M A. Tiles t run over the batch, in chunks bounded by WINOGRAD_CHUNK_FLOATS of V + M.
 * The matrices and their error are in winograd.c.
 *
 * Data gradient: for this convolution dX = the same kind of convolution of dZ (batch x F x OH x
 * OW) with the filters rotated by 180 degrees and transposed (C outputs, F inputs) and padding
 * 2 - p: winograd_geom_data_grad makes that geometry, winograd_filters_data_grad its U.
 * Threads: OpenMP over channels in the transforms and over the a*a GEMMs (gemm then runs on
 * one thread each); inside an enclosing parallel region everything runs on the calling thread.
 * Results do not depend on the thread count (each sum has a fixed order).
 */
#ifndef CN_WINOGRAD_H
#define CN_WINOGRAD_H

#include <stddef.h>

#include "kernels/activations.h"

/* Output tile and interpolation points: F(4x4,3x3) on 0, +-1, +-2, infinity (Lavin's), the same
 * on 0, +-1, +-1/2, infinity, and F(2x2,3x3) on 0, +-1, infinity. */
enum winograd_variant { WINOGRAD_F4, WINOGRAD_F4_HALF, WINOGRAD_F2, WINOGRAD_VARIANT_COUNT };

/* Names for messages and `net speed`: "F(4x4,3x3)", "F(4x4,3x3) +-1/2", "F(2x2,3x3)". */
extern const char *const winograd_variant_names[WINOGRAD_VARIANT_COUNT];

struct winograd_geom {
    int variant;     /* enum winograd_variant */
    int m, a;        /* output tile side, input tile side (m + 2) */
    int batch, c, h, w; /* input */
    int f;           /* output channels */
    int ph, pw;      /* padding per side, may be negative */
    int oh, ow;      /* output */
    int th, tw;      /* tiles down and across one image */
    size_t tiles;    /* batch * th * tw */
    int chunk;       /* tiles per chunk of V and M */
    int portable;    /* 0 (init): AVX2 transforms where the CPU has them; 1: the build's default
                        target's (for tests; the same results) */
};

/* Fills g. Returns 0, or -1 when a size is < 1, the output would be empty, or a size passes the
 * int range of the GEMMs. */
int winograd_geom_init(struct winograd_geom *g, enum winograd_variant v, int batch, int c, int h,
                       int w, int f, int ph, int pw);

/* The geometry of the data gradient of forward geometry fw: input batch x F x OH x OW, F := C
 * outputs, padding 2 - p, so its output is fw's input shape. Returns 0 or -1 as above. */
int winograd_geom_data_grad(struct winograd_geom *g, const struct winograd_geom *fw);

/* Floats of U (a*a*F*C, F rounded up to GEMM_PACK_ROWS) and of the workspace winograd_conv
 * needs. */
size_t winograd_filter_floats(const struct winograd_geom *g);
size_t winograd_workspace_floats(const struct winograd_geom *g);

/* U = the transformed filters w [F][C][3][3] of g. Redo whenever w changes. */
void winograd_filters(float *U, const float *w, const struct winograd_geom *g);

/* U for a data-gradient geometry g (winograd_geom_data_grad): w is the FORWARD weights, stored
 * [g->c][g->f][3][3]; the filter for (output o, input i) is w[i][o] rotated by 180 degrees. */
void winograd_filters_data_grad(float *U, const float *w, const struct winograd_geom *g);

/* out (batch x F x OH x OW) = the convolution of in with the filters U was made from, or, with
 * accumulate, out += it. work: winograd_workspace_floats(g) floats. */
void winograd_conv(float *out, int accumulate, const float *in, const float *U, float *work,
                   const struct winograd_geom *g);

/* What winograd_conv_act does to each output z of filter f at its transform, while in cache:
 * y = act(scale[f] * z + bias[f] + res) (NULL members: none), the product rounded before the
 * bias is added and the sum before res is: bit for bit act_forward_affine(scale, bias) (a
 * convolution's folded batch norm and activation), then, with res (a tensor of out's layout,
 * a [shortcut]'s skip), the addition and act of a [shortcut] (with act linear before it). */
struct winograd_epilogue {
    const float *scale, *bias, *res;
    enum activation act;
};
/* out = the epilogue of the convolution of in (winograd_conv's other arguments). */
void winograd_conv_act(float *out, const float *in, const float *U, float *work,
                       const struct winograd_geom *g, const struct winograd_epilogue *ep);
/* The references, summed in double: out = the convolution of in with w [F][C][3][3] (g's
 * padding); din += its adjoint applied to dout (din batch x C x H x W, dout batch x F x OH x OW).
 * g is the forward geometry; its variant is ignored. */
void winograd_conv_naive(float *out, const float *in, const float *w,
                         const struct winograd_geom *g);
void winograd_data_grad_naive(float *din, const float *dout, const float *w,
                              const struct winograd_geom *g);

#endif
