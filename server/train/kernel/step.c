/* A dense family's training steps, every member in turn: forward, the loss and its gradient,
 * backward into the member's gradient row, the L1 / L2 penalties and its optimizer's update,
 * over the member's own widths only (padded units, rows and features are never touched, so
 * they stay exactly zero, as in the batched torch path). The formulas are those of
 * server/train/family_math.py (torch.optim's algorithms, torch's losses). */
#include "common.h"

#include <pthread.h>
#include <string.h>

#define MAX_THREADS 16

typedef struct {
    int32_t m;              /* steps in the chunk */
    int32_t rows;           /* rows of each member's padded training data (its dummy row last) */
    int32_t threads;        /* at most this many threads (members split between them) */
    const int64_t *order;   /* the members' epoch permutations, one after another */
    int64_t *cursor;        /* (K, 2) each member's current permutation (its offset in
                               order) and position in it; moved on as the steps run */
    const int32_t *batch;   /* (K) each member's batch size */
    const int32_t *samples; /* (K) each member's training samples */
    const float *x;         /* (K, rows, F) the training data, padded */
    const float *target;    /* (K, rows, U) */
    const int64_t *index;   /* (K, rows) class ids (cross entropy) */
    const float *masks;     /* (m, n_drop, K, B, mask_width) dropout masks, or NULL */
    const int32_t *snap;    /* (m, K): after that step, copy the member's weights to snapshot
                               row snap[s, k] (-1: none) */
    float *snaps;           /* (snapshots, size) */
    float *losses;          /* (m, K) out: each member's batch loss where it may not be
                               finite, else 0 (only its finiteness is looked at) */
    float *work;            /* scratch: threads * work_floats(layout) floats */
    size_t work_stride;
} Chunk;

/* Floats of scratch one member-step needs. */
size_t work_floats(const Layout *L) {
    size_t b = (size_t)L->batch, total = b * (size_t)L->features;
    int widest = L->features;
    for (int p = 0; p < L->n_ops; p++) {
        const Op *op = &L->ops[p];
        int w = op->dense ? op->out : L->mask_width;
        total += 2 * b * (size_t)w;
        widest = w > widest ? w : widest;
        if (op->dense && op->inp > widest) widest = op->inp;
    }
    return total + 2 * b * (size_t)widest + 64;
}

typedef struct { float size, c2; } Adam;  /* Adam's step size and bias correction, per step */

static Adam adam_terms(const Member *M) {
    Adam t = {0.0f, 1.0f};
    if (M->kind == OPT_ADAM) {
        double steps = *M->steps;
        double c1 = 1.0 - pow((double)*M->beta1, steps);
        t.c2 = (float)sqrt(1.0 - pow((double)*M->beta2, steps));
        t.size = (float)(*M->lr64 / c1);
    }
    return t;
}

static void optimize(Member *M, Adam adam, size_t at, int n, int penalized) {
    float *p = M->flat + at, *g = M->grad + at;
    float l1 = penalized ? *M->l1_rate : 0.0f, l2 = penalized ? *M->l2_rate : 0.0f;
    if (l2 != 0.0f)
        for (int i = 0; i < n; i++) g[i] += l2 * p[i];
    if (l1 != 0.0f)
        for (int i = 0; i < n; i++) g[i] += l1 * (float)((p[i] > 0.0f) - (p[i] < 0.0f));
    float decay = *M->decay, wd = *M->l2_decay;
    if (decay != 1.0f)
        for (int i = 0; i < n; i++) p[i] *= decay;
    float *s1 = M->s1 ? M->s1 + at : NULL, *s2 = M->s2 ? M->s2 + at : NULL;
    float lr = *M->lr, neg_lr = *M->neg_lr, eps = *M->eps;
    switch (M->kind) {
    case OPT_SGD:
        if (M->plain) {
            for (int i = 0; i < n; i++) p[i] += neg_lr * (g[i] + wd * p[i]);
        } else {
            float mu = *M->momentum, a = *M->a, c = *M->c;
            for (int i = 0; i < n; i++) {
                float gi = g[i] + wd * p[i];
                s1[i] = s1[i] * mu + gi;
                p[i] += neg_lr * (gi * a + s1[i] * c);
            }
        }
        break;
    case OPT_ADAGRAD:
        for (int i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] += gi * gi;
            p[i] -= lr * (gi / (sqrtf(s1[i]) + eps));
        }
        break;
    case OPT_RMSPROP: {
        float alpha = *M->alpha, rest = *M->rest_alpha, mu = *M->momentum;
        for (int i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = s1[i] * alpha + rest * gi * gi;
            float avg = sqrtf(s1[i]) + eps;
            s2[i] = s2[i] * mu + gi / avg;
            p[i] -= lr * s2[i];
        }
        break;
    }
    default: { /* adam, adamw */
        float size = adam.size, c2 = adam.c2, w1 = *M->rest_beta1, b2 = *M->beta2;
        float w2 = *M->rest_beta2;
        for (int i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            s1[i] = w1 < 0.5f ? s1[i] + w1 * (gi - s1[i]) : gi - (gi - s1[i]) * (1.0f - w1);
            s2[i] = s2[i] * b2 + w2 * gi * gi;
            float denom = sqrtf(s2[i]) / c2 + eps;
            p[i] -= size * (s1[i] / denom);
        }
    }
    }
}

/* Sum of a[i] * b[i] over n values in 8 running sums (so that it vectorizes), then added
 * pairwise. */
static inline float dot(const float *restrict a, const float *restrict b, int n) {
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++) acc[l] += a[i] * b[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* One member's step. Values are kept transposed, a unit's values over the batch's n rows
 * side by side (unit j of a layer at [j * n + i]), so that the loops over rows vectorize;
 * each value's sum over the inputs still runs in their order, as a plain matrix product's. */
static void member_step(const Layout *L, Member *M, int k, const Chunk *C, int s,
                        float *work, const int64_t *rows, int n) {
    const int B = L->batch, F = L->features, U = L->units, K = L->k;
    size_t slot = (size_t)s * K + k;
    const float weight = 1.0f / (float)(n > 0 ? n : 1); /* each row's share of the mean */
    const float *xk = C->x + (size_t)k * C->rows * F;
    const int f0 = M->features;
    /* the inputs: feature f of row i at [f * n + i] */
    float *h = work;
    work += (size_t)B * F;
    for (int i = 0; i < n; i++) {
        const float *xi = xk + (size_t)rows[i] * F;
        for (int f = 0; f < f0; f++) h[(size_t)f * n + i] = xi[f];
    }
    float *ins[MAX_OPS], *zs[MAX_OPS], *as[MAX_OPS];
    int width = f0, first_dense = -1;
    for (int p = 0; p < L->n_ops; p++) {
        const Op *op = &L->ops[p];
        int out = M->out[p];
        ins[p] = h;
        float *z = work, *a = work + (size_t)n * out;
        work += 2 * (size_t)n * out;
        if (op->dense) {
            if (first_dense < 0) first_dense = p;
            const float *W = M->flat + op->w_at;
            const float *bias = op->b_at >= 0 ? M->flat + op->b_at : NULL;
            for (int j = 0; j < out; j++) {
                float *zj = z + (size_t)j * n;
                const float *wj = W + (size_t)j * op->inp;
                for (int i = 0; i < n; i++) zj[i] = 0.0f;
                for (int f = 0; f < width; f++) {
                    const float w = wj[f], *hf = h + (size_t)f * n;
                    for (int i = 0; i < n; i++) zj[i] += hf[i] * w;
                }
                if (bias)
                    for (int i = 0; i < n; i++) zj[i] = bias[j] + zj[i];
            }
            activate(op->act, z, a, (size_t)n * out, op->slope);
            zs[p] = z;
        } else {
            const float *mask = C->masks + (((size_t)s * L->n_drop + op->drop) * K + k)
                                           * (size_t)B * L->mask_width;
            for (int j = 0; j < out; j++)
                for (int i = 0; i < n; i++)
                    a[(size_t)j * n + i] = h[(size_t)j * n + i]
                                           * mask[(size_t)i * L->mask_width + j];
            zs[p] = NULL;
        }
        as[p] = a;
        h = a;
        width = out;
    }
    /* the loss and its gradient (output_grad, grad_scale) */
    size_t wide = (size_t)f0;
    for (int p = 0; p < L->n_ops; p++) {
        const Op *op = &L->ops[p];
        size_t v = op->dense ? (size_t)(op->out > op->inp ? op->out : op->inp)
                             : (size_t)L->mask_width;
        wide = v > wide ? v : wide;
    }
    float *g = work, *g2 = work + (size_t)B * wide;
    const float *target = C->target + (size_t)k * C->rows * U;
    const int64_t *index = C->index + (size_t)k * C->rows;
    float unit_scale = L->loss == LOSS_CE ? 1.0f : (L->loss == LOSS_MSE ? 2.0f / U : 1.0f / U);
    float scale = weight * unit_scale, largest = 0.0f;
    float o[U], gi[U];
    for (int i = 0; i < n; i++) {
        const int64_t r = rows[i];
        const float *t = target + (size_t)r * U;
        for (int j = 0; j < U; j++) o[j] = h[(size_t)j * n + i];
        for (int j = 0; j < U; j++) { /* NaN fails every comparison: it counts as huge */
            float d = fabsf(o[j] - t[j]);
            largest = d < largest ? largest : (d == d ? d : INFINITY);
        }
        if (L->loss == LOSS_CE) {
            float top = o[0], sum = 0.0f;
            for (int j = 1; j < U; j++) top = o[j] > top ? o[j] : top;
            for (int j = 0; j < U; j++) sum += expf(o[j] - top);
            for (int j = 0; j < U; j++) gi[j] = (expf(o[j] - top) / sum - t[j]) * scale;
        } else {
            for (int j = 0; j < U; j++) {
                float d = o[j] - t[j];
                switch (L->loss) {
                case LOSS_BCE: gi[j] = (sigmoidf(o[j]) - t[j]) * scale; break;
                case LOSS_MSE: gi[j] = d * scale; break;
                case LOSS_L1: gi[j] = (float)((d > 0.0f) - (d < 0.0f)) * scale; break;
                default: gi[j] = (d > 1.0f ? 1.0f : (d < -1.0f ? -1.0f : d)) * scale;
                }
                if (d != d) gi[j] = d;
            }
        }
        for (int j = 0; j < U; j++) g[(size_t)j * n + i] = gi[j];
    }
    /* The batch loss is only looked at for being finite (a diverging run): it is 0 while
     * every output is finite and within 1e18 of its target (no loss can overflow then), else
     * computed, so that NaN and infinity are told apart as the job alone tells them. */
    if (largest < 1e18f) {
        C->losses[slot] = 0.0f;
    } else {
        float loss = 0.0f;
        for (int i = 0; i < n; i++) {
            const int64_t r = rows[i];
            for (int j = 0; j < U; j++) o[j] = h[(size_t)j * n + i];
            loss += row_loss(L->loss, o, target + (size_t)r * U, index[r], U) * weight;
        }
        C->losses[slot] = loss;
    }
    /* backward */
    for (int p = L->n_ops - 1; p >= 0; p--) {
        const Op *op = &L->ops[p];
        int out = M->out[p], inp = p > 0 ? M->out[p - 1] : f0;
        if (!op->dense) {
            const float *mask = C->masks + (((size_t)s * L->n_drop + op->drop) * K + k)
                                           * (size_t)B * L->mask_width;
            for (int j = 0; j < out; j++)
                for (int i = 0; i < n; i++)
                    g[(size_t)j * n + i] *= mask[(size_t)i * L->mask_width + j];
            continue;
        }
        const float *hin = ins[p];
        activate_backward(op->act, g, zs[p], as[p], (size_t)n * out, op->slope);
        float *gw = M->grad + op->w_at;
        for (int j = 0; j < out; j++) {
            float *row = gw + (size_t)j * op->inp;
            const float *gj = g + (size_t)j * n;
            for (int f = 0; f < inp; f++) row[f] = dot(gj, hin + (size_t)f * n, n);
        }
        if (op->b_at >= 0) {
            float *gb = M->grad + op->b_at;
            for (int j = 0; j < out; j++) {
                const float *gj = g + (size_t)j * n;
                float sum = 0.0f;
                for (int i = 0; i < n; i++) sum += gj[i];
                gb[j] = sum;
            }
        }
        if (p > first_dense) {
            const float *W = M->flat + op->w_at;
            for (int f = 0; f < inp; f++) {
                float *gf = g2 + (size_t)f * n;
                for (int i = 0; i < n; i++) gf[i] = 0.0f;
                for (int j = 0; j < out; j++) {
                    const float w = W[(size_t)j * op->inp + f], *gj = g + (size_t)j * n;
                    for (int i = 0; i < n; i++) gf[i] += gj[i] * w;
                }
            }
            float *swap = g;
            g = g2;
            g2 = swap;
        }
    }
    /* penalties and the update, over the member's own parameters */
    if (M->kind != OPT_SGD) *M->steps += 1.0;
    Adam adam = adam_terms(M);
    for (int p = 0; p < L->n_ops; p++) {
        const Op *op = &L->ops[p];
        if (!op->dense) continue;
        /* the whole padded layer at once (so that it vectorizes): a padded weight, its
         * gradient and its optimizer state are all 0, and every update keeps them 0 */
        optimize(M, adam, (size_t)op->w_at, op->out * op->inp, 1);
        if (op->b_at >= 0) optimize(M, adam, (size_t)op->b_at, op->out, 0);
    }
}

typedef struct {
    const Layout *L;
    Member *members;
    const Chunk *C;
    int s0, s1, k0, k1;
    float *work;
} Part;

/* Steps s0 .. s1 - 1 of members k0 .. k1 - 1, each member's steps in order, its snapshots
 * taken after the steps that end its epochs. */
static void *run_part(void *arg) {
    const Part *P = arg;
    const Layout *L = P->L;
    for (int k = P->k0; k < P->k1; k++)
        for (int s = P->s0; s < P->s1; s++) {
            const Chunk *C = P->C;
            int64_t *cursor = C->cursor + 2 * (size_t)k;
            int64_t n = C->samples[k], at = cursor[1];
            int count = (int)(n - at < C->batch[k] ? n - at : C->batch[k]);
            member_step(L, &P->members[k], k, C, s, P->work, C->order + cursor[0] + at, count);
            cursor[1] = at + C->batch[k];
            if (cursor[1] >= n) { /* the epoch's last batch: the next permutation follows */
                cursor[0] += n;
                cursor[1] = 0;
            }
            int32_t row = P->C->snap[(size_t)s * L->k + k];
            if (row >= 0)
                memcpy(P->C->snaps + (size_t)row * L->size, P->members[k].flat,
                       sizeof(float) * (size_t)L->size);
        }
    return NULL;
}

/* Steps s0 .. s1 - 1 of the chunk, every member; members are split between up to
 * C->threads threads (they are independent: each one's steps only touch its own rows). */
void family_steps(const Layout *L, Member *members, const Chunk *C, int32_t s0, int32_t s1) {
    int threads = C->threads < 1 ? 1 : (C->threads > MAX_THREADS ? MAX_THREADS : C->threads);
    if (threads > L->k) threads = L->k;
    Part parts[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < threads; t++)
        parts[t] = (Part){L, members, C, s0, s1, (int)((long)L->k * t / threads),
                          (int)((long)L->k * (t + 1) / threads), C->work + C->work_stride * t};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&ids[t], NULL, run_part, &parts[t]) == 0;
    run_part(&parts[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(ids[t], NULL);
        else run_part(&parts[t]); /* no thread to be had: this one does it */
    }
}
