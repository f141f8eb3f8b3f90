/* odeattn recording kernels (loaded by odeattn/_kernels.py with ctypes; see its docstring).
   Per-sample sums of squares for the NSI recorder (StepNet Eq. 4), fused with the residual
   combination the block makes anyway. Compiled with -ffp-contract=off: every add and multiply
   rounds as written, so y matches torch's elementwise result bit for bit. */
#include <stdint.h>
#include <stdlib.h>
#include <math.h>

#define ADD_NORMS(NAME, T)                                                              \
int NAME(const T* restrict x, const T* restrict p, T* restrict y, double* restrict out, \
         int64_t B, int64_t n, int64_t K, int nthreads) {                              \
  double* part = (double*)malloc(sizeof(double) * 2 * B * K);                          \
  if (!part) return 1;                                                                 \
  int64_t chunk = (n + K - 1) / K;                                                     \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)")  \
  for (int64_t t = 0; t < B * K; ++t) {                                                \
    int64_t b = t / K, lo = (t % K) * chunk, hi = lo + chunk < n ? lo + chunk : n;      \
    const T* xb = x + b * n; const T* pb = p + b * n; T* yb = y + b * n;                 \
    double sx = 0.0, sp = 0.0;                                                         \
    for (int64_t j0 = lo; j0 < hi; j0 += 1024) {                                       \
      int64_t j1 = j0 + 1024 < hi ? j0 + 1024 : hi;                                    \
      T ax = 0, ap = 0;                                                                \
      _Pragma("omp simd reduction(+:ax,ap)")                                           \
      for (int64_t j = j0; j < j1; ++j) {                                              \
        T xv = xb[j], pv = pb[j];                                                      \
        yb[j] = xv + pv;                                                               \
        ax += xv * xv; ap += pv * pv;                                                  \
      }                                                                                \
      sx += ax; sp += ap;                                                              \
    }                                                                                  \
    part[2 * t] = sx; part[2 * t + 1] = sp;                                            \
  }                                                                                    \
  for (int64_t b = 0; b < B; ++b) {                                                    \
    double sx = 0.0, sp = 0.0;                                                         \
    for (int64_t k = 0; k < K; ++k) { sx += part[2 * (b * K + k)];                     \
                                      sp += part[2 * (b * K + k) + 1]; }               \
    out[2 * b] = sqrt(sx); out[2 * b + 1] = sqrt(sp);                                  \
  }                                                                                    \
  free(part);                                                                          \
  return 0;                                                                            \
}

ADD_NORMS(odeattn_add_norms_f32, float)
ADD_NORMS(odeattn_add_norms_f64, double)

/* out[0..2] = ‖x‖, ‖Δt ⊙ Φ‖, ‖Φ‖ of one sample from Σ x² and the per-channel Σ Φ² (acc):
   ‖Δt ⊙ Φ‖² = Σ_c Δt_c² Σ Φ_c²; db[c * dsc] is the sample's Δt (dsc = 0: one Δt for all). */
#define FINISH(T)                                                                       \
static void finish_##T(const double* acc, const T* db, int64_t C, int64_t dsc, double sx, \
                       double* out) {                                                  \
  double sp = 0.0, sd = 0.0;                                                           \
  for (int64_t c = 0; c < C; ++c) {                                                    \
    double d = (double)db[c * dsc];                                                    \
    sp += acc[c]; sd += d * d * acc[c];                                                \
  }                                                                                    \
  out[0] = sqrt(sx); out[1] = sqrt(sd); out[2] = sqrt(sp);                             \
}

FINISH(float)
FINISH(double)

/* ‖x_b‖, ‖Δt ⊙ Φ_b‖, ‖Φ_b‖ for a step Δt[b*dsb + c*dsc] per (sample, channel): x and Φ are read
   once; per-channel Σ Φ² is kept in float64, x² and in-row sums in T over <= 1024 elements. */
#define STEP_NORMS(NAME, T)                                                             \
int NAME(const T* restrict x, const T* restrict p, const T* restrict dt, double* restrict out, \
         int64_t B, int64_t C, int64_t S, int channels_last, int64_t dsb, int64_t dsc,  \
         int nthreads) {                                                               \
  int fail = 0;                                                                        \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)")  \
  for (int64_t b = 0; b < B; ++b) {                                                    \
    double* acc = (double*)calloc((size_t)C, sizeof(double));                          \
    if (!acc) { fail = 1; continue; }                                                  \
    const T* xb = x + b * C * S; const T* pb = p + b * C * S;                           \
    double sx = 0.0;                                                                   \
    if (channels_last) {                                                               \
      for (int64_t s = 0; s < S; ++s) {                                                \
        const T* xr = xb + s * C; const T* pr = pb + s * C;                            \
        T ax = 0;                                                                      \
        _Pragma("omp simd reduction(+:ax)")                                            \
        for (int64_t c = 0; c < C; ++c) {                                              \
          ax += xr[c] * xr[c]; acc[c] += (double)(pr[c] * pr[c]);                      \
        }                                                                              \
        sx += ax;                                                                      \
      }                                                                                \
    } else {                                                                           \
      for (int64_t c = 0; c < C; ++c) {                                                \
        const T* xr = xb + c * S; const T* pr = pb + c * S;                            \
        for (int64_t s0 = 0; s0 < S; s0 += 1024) {                                     \
          int64_t s1 = s0 + 1024 < S ? s0 + 1024 : S;                                  \
          T ax = 0, ap = 0;                                                            \
          _Pragma("omp simd reduction(+:ax,ap)")                                       \
          for (int64_t s = s0; s < s1; ++s) { ax += xr[s] * xr[s]; ap += pr[s] * pr[s]; } \
          sx += ax; acc[c] += ap;                                                      \
        }                                                                              \
      }                                                                                \
    }                                                                                  \
    finish_##T(acc, dt + b * dsb, C, dsc, sx, out + 3 * b);                            \
    free(acc);                                                                         \
  }                                                                                    \
  return fail;                                                                         \
}

STEP_NORMS(odeattn_step_norms_f32, float)
STEP_NORMS(odeattn_step_norms_f64, double)

/* y = fma(Δt, Φ, x) (torch.addcmul(x, Δt, Φ) on builds whose kernel fuses; checked at load) and
   the three norms of STEP_NORMS, in one pass over x and Φ. */
#define ADDCMUL_NORMS(NAME, T, FMA)                                                     \
int NAME(const T* restrict x, const T* restrict p, const T* restrict dt, T* restrict y, \
         double* restrict out, int64_t B, int64_t C, int64_t S, int channels_last,       \
         int64_t dsb, int64_t dsc, int nthreads) {                                     \
  int fail = 0;                                                                        \
  _Pragma("omp parallel for num_threads(nthreads) schedule(static) if(nthreads > 1)")  \
  for (int64_t b = 0; b < B; ++b) {                                                    \
    double* acc = (double*)calloc((size_t)C, sizeof(double));                          \
    if (!acc) { fail = 1; continue; }                                                  \
    const T* xb = x + b * C * S; const T* pb = p + b * C * S; T* yb = y + b * C * S;   \
    const T* db = dt + b * dsb;                                                        \
    double sx = 0.0;                                                                   \
    if (channels_last) {                                                               \
      for (int64_t s = 0; s < S; ++s) {                                                \
        const T* xr = xb + s * C; const T* pr = pb + s * C; T* yr = yb + s * C;        \
        T ax = 0;                                                                      \
        _Pragma("omp simd reduction(+:ax)")                                            \
        for (int64_t c = 0; c < C; ++c) {                                              \
          T xv = xr[c], pv = pr[c];                                                    \
          yr[c] = FMA(db[c * dsc], pv, xv);                                            \
          ax += xv * xv; acc[c] += (double)(pv * pv);                                  \
        }                                                                              \
        sx += ax;                                                                      \
      }                                                                                \
    } else {                                                                           \
      for (int64_t c = 0; c < C; ++c) {                                                \
        const T* xr = xb + c * S; const T* pr = pb + c * S; T* yr = yb + c * S;        \
        T d = db[c * dsc];                                                             \
        for (int64_t s0 = 0; s0 < S; s0 += 1024) {                                     \
          int64_t s1 = s0 + 1024 < S ? s0 + 1024 : S;                                  \
          T ax = 0, ap = 0;                                                            \
          _Pragma("omp simd reduction(+:ax,ap)")                                       \
          for (int64_t s = s0; s < s1; ++s) {                                          \
            T xv = xr[s], pv = pr[s];                                                  \
            yr[s] = FMA(d, pv, xv);                                                    \
            ax += xv * xv; ap += pv * pv;                                              \
          }                                                                            \
          sx += ax; acc[c] += ap;                                                      \
        }                                                                              \
      }                                                                                \
    }                                                                                  \
    finish_##T(acc, db, C, dsc, sx, out + 3 * b);                                      \
    free(acc);                                                                         \
  }                                                                                    \
  return fail;                                                                         \
}

ADDCMUL_NORMS(odeattn_addcmul_norms_f32, float, fmaf)
ADDCMUL_NORMS(odeattn_addcmul_norms_f64, double, fma)
