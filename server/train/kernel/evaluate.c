/* A dense family's epoch-end evaluation: for each (snapshotted weights, member) pair and each
 * split, the forward pass over the member's own rows, widths and features, its mean loss, and
 * the metrics of server/train/family_eval.py (confusion counts, accuracy, macro precision /
 * recall / F1, the binary ROC AUC with tied scores given their average rank; regression MAE
 * and R^2), with the same definitions and rules. The Python side is
 * server/train/family_eval_kernel.py.
 *
 * The forward pass keeps activations column-major (a unit's values over all rows together), so
 * that each product vectorizes over rows; each value is summed in dense_forward's order (the
 * inputs in turn, then the bias). Only tanh differs from the steps' (tanh_fast). */
#include "common.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { TASK_CLASSIFICATION, TASK_REGRESSION };
enum { V_COUNT, V_LOSS, V_ACCURACY, V_PRECISION, V_RECALL, V_F1, V_AUC, V_WIDTH = 8 };
/* regression: V_ACCURACY holds the MAE, V_PRECISION R^2 */

typedef struct {
    int32_t p, s, n;            /* evaluations, splits, rows per (split, member) */
    int32_t task, classes;      /* TASK_*; k = max(num_classes, 2) */
    float threshold;            /* one output unit: class 1 where the output >= threshold */
    const float *const *weights;   /* p rows of the layout's `size` floats */
    const int32_t *slots;          /* p member slots */
    const float *xt;               /* (S*K, F, N): the inputs transposed (split s of member i
                                    * at s*K + i), a feature's values over the rows together */
    const float *target;           /* (S*K, N, U) */
    const int64_t *index;          /* (S*K, N) class ids (cross entropy) */
    const int64_t *labels;         /* (S*K, N) class ids (classification), or NULL */
    const float *values;           /* (S*K, N) regression targets, or NULL */
    const uint8_t *mask;           /* (S*K, N) real rows */
    double *out;                   /* (S, P, V_WIDTH) out; NaN: none */
    int64_t *confusion;            /* (S, P, k, k) out: [true class][predicted class] */
    double *penalty;               /* (P, 2) out: sum |w|, sum w^2 over weights (not biases);
                                    * NULL: not wanted */
    int32_t threads;               /* at most this many threads (evaluations split) */
} Eval;

/* tanh in float arithmetic, within 1.4 ulp of the true value (checked over every 7th float
 * below 11; 99.7% correctly rounded), 16 lanes to a vector: three times faster than common.h's
 * correctly rounded tanh_f, which the training steps need for their derivatives and an
 * evaluation does not (torch's own tanh is within an ulp too). |x| < 0.625: the odd series to
 * x^21; else 1 - 2 / (e^2|x| + 1), e^y as Cephes' expf (y = k ln2 + r, a degree-6 polynomial). */
static inline float tanh_fast(float x) {
    float ax = fabsf(x), x2 = x * x;
    float s = 18888466084.0f / 194896477400625.0f;
    s = s * x2 - 443861162.0f / 1856156927625.0f;
    s = s * x2 + 6404582.0f / 10854718875.0f;
    s = s * x2 - 929569.0f / 638512875.0f;
    s = s * x2 + 21844.0f / 6081075.0f;
    s = s * x2 - 1382.0f / 155925.0f;
    s = s * x2 + 62.0f / 2835.0f;
    s = s * x2 - 17.0f / 315.0f;
    s = s * x2 + 2.0f / 15.0f;
    s = s * x2 - 1.0f / 3.0f;
    float small = x + x * (x2 * s);
    float y = 2.0f * (ax < 10.0f ? ax : 10.0f);
    float t = y * 1.44269504f + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float k = t - 12582912.0f;
    float r = (y - k * 0.693359375f) + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t tb, sb;
    const float shift = 12582912.0f;
    memcpy(&tb, &t, sizeof tb);
    memcpy(&sb, &shift, sizeof sb);
    int32_t bits = (tb - sb + 127) << 23; /* 2^k: k sits in t's low bits */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float e = p * scale;
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0.0f ? -big : big;
    float out = ax < 0.625f ? small : big;
    return x != x || x == 0.0f ? x : out; /* NaN stays NaN, -0 stays -0 */
}

/* a = act(z) over n values; tanh by tanh_fast. */
static void activate_eval(int act, const float *restrict z, float *restrict a, size_t n,
                          float slope) {
    if (act == ACT_TANH) {
        for (size_t e = 0; e < n; e++) a[e] = tanh_fast(z[e]);
    } else {
        activate(act, z, a, n, slope);
    }
}

/* One dense layer over n rows, column-major: z[j][i] = sum_f W[j][f] h[f][i], then the bias;
 * a = act(z). The same sums, in the same order, as dense_forward. h's feature f starts at
 * h + f * hstride. */
static void dense_columns(int act, float slope, const float *restrict W, int stride,
                          const float *restrict bias, const float *restrict h, size_t hstride,
                          int n, int inp, int out, float *restrict z, float *restrict a) {
    enum { BLOCK = 64 }; /* rows whose sums stay in registers over the inputs */
    for (int j = 0; j < out; j++) {
        const float *wj = W + (size_t)j * stride;
        float *restrict zj = z + (size_t)j * n;
        int i0 = 0;
        for (; i0 + BLOCK <= n; i0 += BLOCK) {
            float acc[BLOCK];
            for (int i = 0; i < BLOCK; i++) acc[i] = 0.0f;
            for (int f = 0; f < inp; f++) {
                const float w = wj[f], *restrict hf = h + (size_t)f * hstride + i0;
                for (int i = 0; i < BLOCK; i++) acc[i] += hf[i] * w;
            }
            if (bias) {
                const float b = bias[j];
                for (int i = 0; i < BLOCK; i++) zj[i0 + i] = b + acc[i];
            } else {
                for (int i = 0; i < BLOCK; i++) zj[i0 + i] = acc[i];
            }
        }
        for (int i = i0; i < n; i++) zj[i] = 0.0f;
        for (int f = 0; f < inp; f++) {
            const float w = wj[f], *restrict hf = h + (size_t)f * hstride;
            for (int i = i0; i < n; i++) zj[i] += hf[i] * w;
        }
        if (bias) {
            const float b = bias[j];
            for (int i = i0; i < n; i++) zj[i] = b + zj[i];
        }
    }
    if (a != z) activate_eval(act, z, a, (size_t)n * out, slope);
}

/* Sorts n keys (with their payload in the low 32 bits) by their high 32 bits: an LSD radix
 * sort, 8 bits a pass, passes where every key has the same byte skipped. Result in `keys`. */
static void radix_sort(uint64_t *keys, uint64_t *spare, int n) {
    uint32_t counts[4][256];
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(keys[i] >> 32);
        counts[0][k & 255]++;
        counts[1][(k >> 8) & 255]++;
        counts[2][(k >> 16) & 255]++;
        counts[3][k >> 24]++;
    }
    uint64_t *from = keys, *to = spare;
    for (int pass = 0; pass < 4; pass++) {
        uint32_t *c = counts[pass];
        int shift = 32 + 8 * pass;
        if (c[(from[0] >> shift) & 255] == (uint32_t)n) continue;
        uint32_t at = 0;
        for (int b = 0; b < 256; b++) {
            uint32_t here = c[b];
            c[b] = at;
            at += here;
        }
        for (int i = 0; i < n; i++) to[c[(from[i] >> shift) & 255]++] = from[i];
        uint64_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != keys) memcpy(keys, from, sizeof(uint64_t) * (size_t)n);
}

/* Twice the Mann-Whitney U of finite scores, positives `pos` against negatives `neg` (a tie
 * counts a half): each pair compared, which vectorizes; for few rows faster than sorting.
 * Both arrays have room for 16 more: NaNs there (equal to nothing, below and above nothing)
 * round their lengths up to whole vectors. */
static int64_t twice_u_pairs(float *pos, int n_pos, float *neg, int n_neg) {
    const int pos_end = (n_pos + 15) & ~15, neg_end = (n_neg + 15) & ~15;
    for (int a = n_pos; a < pos_end; a++) pos[a] = NAN;
    for (int b = n_neg; b < neg_end; b++) neg[b] = NAN;
    int64_t total = 0;
    for (int a = 0; a < pos_end; a++) {
        const float s = pos[a];
        int32_t c = 0;
        for (int b = 0; b < neg_end; b++) c += (neg[b] < s) * 2 + (neg[b] == s);
        total += c;
    }
    return total;
}

/* The same from the ranks: sorted, a run of tied scores shares the average of its ranks. */
static int64_t twice_u_ranks(const float *pos, int n_pos, const float *neg, int n_neg,
                             uint64_t *keys, uint64_t *spare) {
    const int n = n_pos + n_neg;
    for (int i = 0; i < n; i++) {
        float v = (i < n_pos ? pos[i] : neg[i - n_pos]) + 0.0f; /* -0 -> +0: one key */
        uint32_t bits;
        memcpy(&bits, &v, sizeof bits);
        bits ^= (bits >> 31) ? 0xFFFFFFFFu : 0x80000000u; /* unsigned order = float order */
        keys[i] = ((uint64_t)bits << 32) | (i < n_pos);
    }
    radix_sort(keys, spare, n);
    int64_t ranks = 0; /* the positives' ranks, twice: (first + last) / 2 + 1 each */
    for (int start = 0; start < n;) {
        uint32_t key = (uint32_t)(keys[start] >> 32);
        int end = start, in_run = 0;
        while (end < n && (uint32_t)(keys[end] >> 32) == key) in_run += (int)(keys[end++] & 1);
        ranks += (int64_t)in_run * (start + end - 1 + 2);
        start = end;
    }
    return ranks - (int64_t)n_pos * (n_pos + 1);
}

/* Mann-Whitney AUC (metrics.roc_auc): NaN without positives or negatives. The division is
 * family_eval._auc's, on the same exact U, so the value is the same to the bit. */
static double auc(float *pos, int n_pos, float *neg, int n_neg, uint64_t *keys,
                  uint64_t *spare) {
    if (n_pos == 0 || n_neg == 0) return NAN;
    double both = (double)n_pos * (double)n_neg;
    int64_t twice = both <= 256.0 * (n_pos + n_neg)
                        ? twice_u_pairs(pos, n_pos, neg, n_neg)
                        : twice_u_ranks(pos, n_pos, neg, n_neg, keys, spare);
    return ((double)twice / 2.0) / (both < 1.0 ? 1.0 : both);
}

/* log(1 + e^-a) for a >= 0 (NaN stays NaN), in double, straight-line code that vectorizes:
 * with y = e^-a in (0, 1], log(1 + y) = 2 atanh(t), t = y / (2 + y) <= 1/3, by its series. */
static inline double log1p_exp_neg(double a) {
    double y = exp_neg(-a), t = y / (2.0 + y), t2 = t * t;
    double p = 1.0 / 27.0;
    p = p * t2 + 1.0 / 25.0;
    p = p * t2 + 1.0 / 23.0;
    p = p * t2 + 1.0 / 21.0;
    p = p * t2 + 1.0 / 19.0;
    p = p * t2 + 1.0 / 17.0;
    p = p * t2 + 1.0 / 15.0;
    p = p * t2 + 1.0 / 13.0;
    p = p * t2 + 1.0 / 11.0;
    p = p * t2 + 1.0 / 9.0;
    p = p * t2 + 1.0 / 7.0;
    p = p * t2 + 1.0 / 5.0;
    p = p * t2 + 1.0 / 3.0;
    p = p * t2 + 1.0;
    return 2.0 * t * p;
}

/* The member's mean loss over its n rows (torch's mean-reduced loss; per-unit losses also
 * averaged over the U units): outputs o (n, U) row-major, targets t (n, U), class ids cls. */
static float mean_loss(const Layout *L, const float *restrict o, const float *restrict t,
                       const int64_t *cls, int n, double *restrict scratch) {
    const int U = L->units;
    double sum = 0.0;
    if (L->loss == LOSS_BCE && U == 1) { /* (1 - t) x - logsigmoid(x), vectorized */
        for (int i = 0; i < n; i++) {
            double x = o[i], ax = x < 0 ? -x : x;
            double logsig = (x < 0.0 ? x : 0.0) - log1p_exp_neg(ax);
            scratch[i] = (1.0 - (double)t[i]) * x - logsig;
        }
        double part[8] = {0};
        int i = 0;
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) part[j] += scratch[i + j];
        for (; i < n; i++) part[0] += scratch[i];
        for (int j = 0; j < 8; j++) sum += part[j];
    } else {
        for (int i = 0; i < n; i++)
            sum += (double)row_loss(L->loss, o + (size_t)i * U, t + (size_t)i * U, cls[i], U);
    }
    return n ? (float)(sum / n) : 0.0f;
}

typedef struct {          /* scratch of one evaluation */
    float *pos, *neg;     /* scores of the positive and the negative rows (16 more each) */
    uint64_t *keys, *spare;
} Scratch;

/* One output unit, two classes, every label 0 or 1 (else 0): the confusion counts and the
 * scores split by label, without a branch on the data. */
static int binary_counts(const float *o, float threshold, const int64_t *labels, int n,
                         const Scratch *W, int *n_pos, int *finite, int64_t *cm) {
    int pos = 0, neg = 0, both = 0, predicted = 0, ok = 1, all_finite = 1;
    for (int i = 0; i < n; i++) {
        const float score = o[i];
        const int64_t label = labels[i];
        const int one = label == 1, p = score >= threshold;
        W->pos[pos] = score;
        W->neg[neg] = score;
        pos += one;
        neg += 1 - one;
        both += one & p;
        predicted += p;
        ok &= (label == 0) | one;
        all_finite &= isfinite(score) != 0;
    }
    if (!ok) return 0;
    cm[0] = n - pos - predicted + both;
    cm[1] = predicted - both;
    cm[2] = pos - both;
    cm[3] = both;
    *n_pos = pos;
    *finite = all_finite;
    return 1;
}

static void classification(const Eval *E, const float *o, int U, const int64_t *labels, int n,
                           const Scratch *W, double *v, int64_t *cm) {
    const int k = E->classes;
    const float threshold = E->threshold;
    int n_pos = 0, n_neg = 0, finite = 1;
    if (U == 1 && k == 2 && binary_counts(o, threshold, labels, n, W, &n_pos, &finite, cm)) {
        n_neg = n - n_pos;
    } else {
        memset(cm, 0, sizeof(int64_t) * (size_t)k * k);
        n_pos = n_neg = 0;
        finite = 1;
        for (int i = 0; i < n; i++) {
            const float *oi = o + (size_t)i * U;
            int predicted;
            float score;
            if (U == 1) {
                predicted = oi[0] >= threshold;
                score = oi[0];
            } else {
                int best = 0; /* torch's argmax: the first largest, a NaN above all */
                for (int j = 1; j < U; j++)
                    if (oi[best] == oi[best] && (oi[j] > oi[best] || oi[j] != oi[j])) best = j;
                predicted = best;
                score = U == 2 ? oi[1] - oi[0] : 0.0f;
            }
            finite &= isfinite(score) != 0;
            predicted = predicted < k - 1 ? predicted : k - 1;
            int64_t label = labels[i];
            if (label == 1) W->pos[n_pos++] = score;
            else W->neg[n_neg++] = score;
            if (label >= 0 && label < k) cm[label * k + predicted]++;
        }
    }
    double tp_sum = 0.0, precision = 0.0, recall = 0.0, f1 = 0.0;
    for (int c = 0; c < k; c++) {
        double tp = (double)cm[c * k + c], predicted = 0.0, truth = 0.0;
        for (int r = 0; r < k; r++) {
            predicted += (double)cm[r * k + c];
            truth += (double)cm[c * k + r];
        }
        double p = predicted > 0 ? tp / predicted : 0.0, r = truth > 0 ? tp / truth : 0.0;
        double both = p + r;
        tp_sum += tp;
        precision += p;
        recall += r;
        f1 += both > 0 ? 2.0 * p * r / both : 0.0;
    }
    v[V_ACCURACY] = n ? tp_sum / n : NAN;
    v[V_PRECISION] = precision / k;
    v[V_RECALL] = recall / k;
    v[V_F1] = f1 / k;
    v[V_AUC] = NAN;
    if (k == 2 && U <= 2 && finite) v[V_AUC] = auc(W->pos, n_pos, W->neg, n_neg, W->keys,
                                                   W->spare);
}

static void regression(const float *o, int U, const float *values, int n, double *v) {
    v[V_ACCURACY] = v[V_PRECISION] = NAN;
    if (!n) return;
    double residual = 0.0, absolute = 0.0, mean = 0.0, total = 0.0;
    for (int i = 0; i < n; i++) {
        double t = values[i], d = t - (double)o[(size_t)i * U];
        residual += d * d;
        absolute += fabs(d);
        mean += t;
    }
    mean /= n;
    for (int i = 0; i < n; i++) {
        double c = (double)values[i] - mean;
        total += c * c;
    }
    double r2;
    if (!isfinite(residual)) r2 = NAN;
    else if (total == 0.0) r2 = residual == 0.0 ? 1.0 : 0.0;
    else r2 = 1.0 - residual / total;
    v[V_ACCURACY] = absolute / n;
    v[V_PRECISION] = r2;
}

static void penalties(const Layout *L, const float *w, double *out) {
    double l1 = 0.0, l2 = 0.0;
    for (int q = 0; q < L->n_ops; q++) {
        const Op *op = &L->ops[q];
        if (!op->dense) continue;
        const float *W = w + op->w_at;
        for (int e = 0; e < op->out * op->inp; e++) {
            l1 += fabs((double)W[e]);
            l2 += (double)W[e] * W[e];
        }
    }
    out[0] = (float)l1; /* as the float32 sums of the torch path */
    out[1] = (float)l2;
}

/* Every evaluation of E; 0, or -1 where its scratch memory could not be had (nothing done). */
/* Evaluations p0 .. p1 - 1; -1 when its scratch cannot be had. */
static int32_t evaluate_range(const Layout *L, const Member *members, const Eval *E, int p0,
                              int p1) {
    const int N = E->n, F = L->features, U = L->units, K = L->k, k = E->classes;
    int widest = F > U ? F : U;
    for (int q = 0; q < L->n_ops; q++)
        if (L->ops[q].dense && L->ops[q].out > widest) widest = L->ops[q].out;
    const size_t block = (size_t)widest * N;
    /* 3 activation blocks, doubles and keys (2N each), compacted rows: targets, labels */
    size_t bytes = sizeof(float) * (3 * block + 2 * (size_t)N + 32 + (size_t)N * U + N)
                   + sizeof(double) * (size_t)N + sizeof(uint64_t) * 2 * (size_t)N
                   + sizeof(int64_t) * 2 * (size_t)N + sizeof(int) * (size_t)N + 256;
    char *memory = malloc(bytes);
    if (!memory) return -1;
    Scratch W;
    W.keys = (uint64_t *)memory;
    W.spare = W.keys + N;
    double *scratch = (double *)(W.spare + N);
    int64_t *own_labels = (int64_t *)(scratch + N), *own_index = own_labels + N;
    float *buf[3];
    buf[0] = (float *)(own_index + N);
    buf[1] = buf[0] + block;
    buf[2] = buf[1] + block;
    W.pos = buf[2] + block;
    W.neg = W.pos + N + 16;
    float *own_target = W.neg + N + 16, *own_values = own_target + (size_t)N * U;
    int *rows = (int *)(own_values + N);
    for (int p = p0; p < p1; p++) {
        const int slot = E->slots[p];
        const Member *M = &members[slot];
        const float *w = E->weights[p];
        if (E->penalty) penalties(L, w, E->penalty + 2 * p);
        for (int s = 0; s < E->s; s++) {
            const size_t r = (size_t)s * K + slot;
            double *v = E->out + ((size_t)s * E->p + p) * V_WIDTH;
            int64_t *cm = E->confusion + ((size_t)s * E->p + p) * k * k;
            const uint8_t *mask = E->mask + r * N;
            int n = 0;
            for (int i = 0; i < N; i++)
                if (mask[i]) rows[n++] = i;
            v[V_COUNT] = n;
            /* the member's features and rows: read in place where its rows come first (as
             * family_layout pads them), else gathered */
            const int f0 = M->features, prefix = n == 0 || rows[n - 1] == n - 1;
            const float *xt = E->xt + r * F * N, *h = xt;
            size_t hstride = N;
            const float *target = E->target + r * N * U;
            const int64_t *labels = E->labels ? E->labels + r * N : NULL;
            const int64_t *index = E->index + r * N;
            const float *values = E->values ? E->values + r * N : NULL;
            int at = 0;
            if (!prefix) {
                float *g = buf[0];
                for (int f = 0; f < f0; f++)
                    for (int i = 0; i < n; i++) g[(size_t)f * n + i] = xt[(size_t)f * N + rows[i]];
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < U; j++)
                        own_target[(size_t)i * U + j] = target[(size_t)rows[i] * U + j];
                    own_index[i] = index[rows[i]];
                    if (labels) own_labels[i] = labels[rows[i]];
                    if (values) own_values[i] = values[rows[i]];
                }
                h = g;
                hstride = n;
                target = own_target;
                index = own_index;
                labels = labels ? own_labels : NULL;
                values = values ? own_values : NULL;
                at = 0;
            } else {
                at = 2; /* the first layer may write into buf[0] and buf[1] */
            }
            int width = f0;
            for (int q = 0; q < L->n_ops; q++) {
                const Op *op = &L->ops[q];
                if (!op->dense) continue; /* dropout: the identity when evaluating */
                int out = M->out[q];
                float *z = buf[(at + 1) % 3], *a = op->act == ACT_LINEAR ? z : buf[(at + 2) % 3];
                dense_columns(op->act, op->slope, w + op->w_at, op->inp,
                              op->b_at >= 0 ? w + op->b_at : NULL, h, hstride, n, width, out,
                              z, a);
                h = a;
                hstride = n;
                at = a == buf[0] ? 0 : (a == buf[1] ? 1 : 2);
                width = out;
            }
            /* the outputs, row-major */
            const float *o = h;
            if (U > 1) {
                float *t = buf[(at + 1) % 3];
                for (int j = 0; j < U; j++)
                    for (int i = 0; i < n; i++) t[(size_t)i * U + j] = h[(size_t)j * n + i];
                o = t;
            }
            v[V_LOSS] = mean_loss(L, o, target, index, n, scratch);
            if (E->task == TASK_CLASSIFICATION)
                classification(E, o, U, labels, n, &W, v, cm);
            else
                regression(o, U, values, n, v);
        }
    }
    free(memory);
    return 0;
}

typedef struct {
    const Layout *L;
    const Member *members;
    const Eval *E;
    int p0, p1;
    int32_t result;
} Range;

static void *run_range(void *arg) {
    Range *R = arg;
    R->result = evaluate_range(R->L, R->members, R->E, R->p0, R->p1);
    return NULL;
}

#define MAX_EVAL_THREADS 16

/* Every evaluation of E, split between up to E->threads threads (each its own scratch);
 * 0, or -1 when scratch memory could not be had (the caller takes the torch path). */
int32_t family_evaluate(const Layout *L, const Member *members, const Eval *E) {
    int threads = E->threads < 1 ? 1 : (E->threads > MAX_EVAL_THREADS ? MAX_EVAL_THREADS
                                                                       : E->threads);
    if (threads > E->p) threads = E->p > 0 ? E->p : 1;
    Range ranges[MAX_EVAL_THREADS];
    pthread_t ids[MAX_EVAL_THREADS];
    int started[MAX_EVAL_THREADS] = {0};
    for (int t = 0; t < threads; t++)
        ranges[t] = (Range){L, members, E, (int)((long)E->p * t / threads),
                            (int)((long)E->p * (t + 1) / threads), 0};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&ids[t], NULL, run_range, &ranges[t]) == 0;
    run_range(&ranges[0]);
    int32_t result = ranges[0].result;
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(ids[t], NULL);
        else run_range(&ranges[t]);
        if (ranges[t].result != 0) result = ranges[t].result;
    }
    return result;
}
