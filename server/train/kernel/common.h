/* What the family kernels share: the layout of a dense family and of its members as the
 * Python side (server/train/family_kernel.py) fills them in, and the activations with their
 * derivatives, written as torch computes them (torch.nn.functional, the aten *_backward
 * kernels) so that a job in a family repeats its solo history within float rounding. */
#ifndef PLAYGROUND_FAMILY_COMMON_H
#define PLAYGROUND_FAMILY_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_OPS 32

enum { ACT_TANH, ACT_RELU, ACT_SIGMOID, ACT_LEAKY, ACT_ELU, ACT_GELU, ACT_SILU, ACT_SOFTPLUS,
       ACT_LINEAR };
enum { LOSS_MSE, LOSS_L1, LOSS_HUBER, LOSS_BCE, LOSS_CE };
enum { OPT_SGD, OPT_ADAGRAD, OPT_RMSPROP, OPT_ADAM };

typedef struct {
    int32_t dense;       /* 1: a dense layer, 0: dropout */
    int32_t out, inp;    /* padded sizes (the flat buffer's strides) */
    int32_t w_at, b_at;  /* offsets in a member's row of the flat buffer; b_at -1: no bias */
    int32_t act;
    float slope;         /* leaky_relu's negative slope */
    int32_t drop;        /* dropout: its index among the dropout ops */
} Op;

typedef struct {
    int32_t n_ops, k, size, features, units, batch, loss, mask_width, n_drop;
    Op ops[MAX_OPS];
} Layout;

typedef struct {
    float *flat, *grad;           /* this member's rows of the family's buffers */
    int32_t features;             /* its own input width */
    int32_t out[MAX_OPS];         /* its own width after each op */
    int32_t kind;                 /* OPT_* */
    int32_t plain;                /* sgd kind with no momentum buffer in the whole group */
    float *s1, *s2;               /* optimizer state rows (NULL where the kind keeps none) */
    double *steps;
    float *lr, *neg_lr, *momentum, *a, *c, *eps, *alpha, *rest_alpha;
    float *beta1, *beta2, *rest_beta1, *rest_beta2, *l2_decay, *decay;
    double *lr64;
    float *l1_rate, *l2_rate;     /* the L1 / L2 penalty's rate (weights only) */
} Member;

/* e^y for y <= 0 in double, about 1e-16 relative, in straight-line code that vectorizes:
 * y = k ln2 + r with |r| <= ln2 / 2, e^r by its Taylor series, 2^k put into the exponent. */
static inline double exp_neg(double y) {
    y = y < -700.0 ? -700.0 : y;
    const double shift = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    double t = y * 1.4426950408889634 + shift;
    double k = t - shift;
    double r = (y - k * 0.6931471803691238) - k * 1.9082149292705877e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    int64_t tb, sb;
    __builtin_memcpy(&tb, &t, sizeof tb);
    __builtin_memcpy(&sb, &shift, sizeof sb);
    int64_t bits = (tb - sb + 1023) << 52; /* 2^k: k sits in t's low bits */
    double scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh, computed in double and rounded once: the float nearest the true value (torch's own
 * tanh is within an ulp of it), so a saturated unit's 1 - a^2 matches torch's. NaN stays NaN. */
static inline float tanh_f(float zf) {
    double x = zf, ax = x < 0 ? -x : x;
    double x2 = x * x;
    /* |x| < 1/8: the odd series to x^17 */
    double s = 6404582./10854718875. * -1.0;
    s = s * x2 + 21844. / 6081075.;
    s = s * x2 - 1382. / 155925.;
    s = s * x2 + 62. / 2835.;
    s = s * x2 - 17. / 315.;
    s = s * x2 + 2. / 15.;
    s = s * x2 - 1. / 3.;
    double small = x + x * x2 * s;
    double e = exp_neg(-2.0 * (ax > 20.0 ? 20.0 : ax));
    double big = (1.0 - e) / (1.0 + e);
    big = x < 0 ? -big : big;
    double t = ax < 0.125 ? small : big;
    return zf != zf ? zf : (float)t;
}

static inline float sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }

static inline float act_forward(int act, float z, float slope) {
    switch (act) {
    case ACT_TANH: return tanh_f(z);
    case ACT_RELU: return z > 0.0f ? z : (z != z ? z : 0.0f);
    case ACT_SIGMOID: return sigmoidf(z);
    case ACT_LEAKY: return z > 0.0f ? z : z * slope;
    case ACT_ELU: return z > 0.0f ? z : expm1f(z);
    case ACT_GELU: return 0.5f * z * (1.0f + erff(z * 0.70710678118654752f));
    case ACT_SILU: return z * sigmoidf(z);
    case ACT_SOFTPLUS: return z > 20.0f ? z : log1pf(expf(z));
    default: return z;
    }
}

/* dL/dz from dL/da = g, the pre-activation z and the activation a (aten's *_backward). */
static inline float act_backward(int act, float g, float z, float a, float slope) {
    switch (act) {
    case ACT_TANH: return g * (1.0f - a * a);
    case ACT_RELU: return a <= 0.0f ? 0.0f : g;
    case ACT_SIGMOID: return g * (1.0f - a) * a;
    case ACT_LEAKY: return z > 0.0f ? g : g * slope;
    case ACT_ELU: return z > 0.0f ? g : g * expf(z);
    case ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(z * 0.70710678118654752f));
        float pdf = expf(-0.5f * z * z) * 0.39894228040143268f;
        return g * (cdf + z * pdf);
    }
    case ACT_SILU: {
        float s = sigmoidf(z);
        return g * s * (1.0f + z * (1.0f - s));
    }
    case ACT_SOFTPLUS: {
        if (z > 20.0f) return g;
        float e = expf(z);
        return g * e / (e + 1.0f);
    }
    default: return g;
    }
}

/* a = act(z) over n values; the switch outside the loops, so that each loop vectorizes. */
static inline void activate(int act, const float *restrict z, float *restrict a, size_t n,
                            float slope) {
    switch (act) {
    case ACT_TANH: for (size_t e = 0; e < n; e++) a[e] = tanh_f(z[e]); break;
    case ACT_RELU: for (size_t e = 0; e < n; e++) a[e] = act_forward(ACT_RELU, z[e], 0.0f); break;
    case ACT_LINEAR: for (size_t e = 0; e < n; e++) a[e] = z[e]; break;
    default: for (size_t e = 0; e < n; e++) a[e] = act_forward(act, z[e], slope);
    }
}

/* g = dL/dz in place from g = dL/da, over n values. */
static inline void activate_backward(int act, float *restrict g, const float *restrict z,
                                     const float *restrict a, size_t n, float slope) {
    switch (act) {
    case ACT_TANH: for (size_t e = 0; e < n; e++) g[e] = g[e] * (1.0f - a[e] * a[e]); break;
    case ACT_RELU: for (size_t e = 0; e < n; e++) g[e] = a[e] <= 0.0f ? 0.0f : g[e]; break;
    case ACT_LINEAR: break;
    default: for (size_t e = 0; e < n; e++) g[e] = act_backward(act, g[e], z[e], a[e], slope);
    }
}

/* One dense layer over n rows: z = h W^T + b (the sum first, then the bias, as torch's addmm),
 * a = act(z). h: n rows of `inp` values; W: `out` rows of stride `stride` (the padded input
 * width); bias: `out` values or NULL; z and a: n rows of `out` values. */
static inline void dense_forward(int act, float slope, const float *restrict W, int stride,
                                 const float *restrict bias, const float *restrict h, int n,
                                 int inp, int out, float *restrict z, float *restrict a) {
    for (int i = 0; i < n; i++) {
        const float *hi = h + (size_t)i * inp;
        float *zi = z + (size_t)i * out;
        for (int j = 0; j < out; j++) {
            const float *wj = W + (size_t)j * stride;
            float sum = 0.0f;
            for (int f = 0; f < inp; f++) sum += hi[f] * wj[f];
            zi[j] = bias ? bias[j] + sum : sum;
        }
    }
    activate(act, z, a, (size_t)n * out, slope);
}

/* One row's loss (its outputs o and targets t over u units; cls: its class for cross
 * entropy), as torch's mean-reduced losses count a row before the mean over rows. */
static inline float row_loss(int loss, const float *o, const float *t, int64_t cls, int u) {
    if (loss == LOSS_CE) {
        float top = o[0];
        for (int j = 1; j < u; j++) top = o[j] > top ? o[j] : top;
        float sum = 0.0f;
        for (int j = 0; j < u; j++) sum += expf(o[j] - top);
        return -(o[cls] - top - logf(sum));
    }
    float total = 0.0f;
    for (int j = 0; j < u; j++) {
        float d = o[j] - t[j], e;
        switch (loss) {
        case LOSS_MSE: e = d * d; break;
        case LOSS_L1: e = fabsf(d); break;
        case LOSS_HUBER: {
            float ad = fabsf(d);
            e = ad < 1.0f ? 0.5f * d * d : ad - 0.5f;
            break;
        }
        default: { /* bce with logits: (1 - t) o - logsigmoid(o) */
            float x = o[j];
            float logsig = (x < 0.0f ? x : 0.0f) - log1pf(expf(-fabsf(x)));
            e = (1.0f - t[j]) * x - logsig;
        }
        }
        total += e;
    }
    return total / (float)u;
}

#endif
