// The fast path's time loops: one LSTM layer over a whole sequence, forward and BPTT backward;
// and, below, the same for the LSTM variants of Greff et al. (one kernel for all nine).
//
// Both cells reach this code as the same packed weights (see fast.py): w_ih (4H, E), w_hh
// (4H, H) and one bias (4H), gate blocks in the order i, f, g, o. Per sequence, the input
// projection is one GEMM over all T·B rows; per step there is one recurrent GEMM and one
// fused, vectorised pass over the gates. The backward pass is the hand-derived BPTT of
// tests/numpy_lstm.py; its weight gradients are single GEMMs over all T·B rows.
//
// fast.py holds a pure-PyTorch twin of these two functions (the fallback when no compiler
// is available); tests check both against the step-wise cells.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <vector>

namespace {

using at::Tensor;

template <typename scalar_t>
using Vec = at::vec::Vectorized<scalar_t>;

// exp_u20 is ATen's polynomial exp (≤ 20 ulp in float32, exact exp in float64): twice as
// fast as Sleef's, and tanh through it costs one exp and one division instead of Sleef's
// tanh, the most expensive op of the step.
template <typename scalar_t>
inline Vec<scalar_t> fast_sigmoid(Vec<scalar_t> x) {
  const Vec<scalar_t> one(scalar_t(1));
  return one / (one + x.neg().exp_u20());
}

template <typename scalar_t>
inline Vec<scalar_t> fast_tanh(Vec<scalar_t> x) {
  const Vec<scalar_t> one(scalar_t(1)), two(scalar_t(2));
  return one - two / (one + (x + x).exp_u20());  // exp overflow gives 1, underflow -1
}

// Rows of work per thread: below this many elements a step runs on one thread.
inline int64_t grain_rows(int64_t H) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(H, 1)); }

// One step forward. gates (B, 4H) holds pre-activations and receives the activations
// (i, f, g, o) for the backward pass; writes c (B, H) and h (B, H).
template <typename scalar_t>
void pointwise_forward(scalar_t* gates, const scalar_t* c_prev, scalar_t* c, scalar_t* h,
                       int64_t B, int64_t H) {
  using V = Vec<scalar_t>;
  at::parallel_for(0, B, grain_rows(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      scalar_t* g = gates + b * 4 * H;
      const scalar_t* cp = c_prev + b * H;
      scalar_t* cb = c + b * H;
      scalar_t* hb = h + b * H;
      for (int64_t j = 0; j < H; j += V::size()) {
        const int64_t n = std::min<int64_t>(V::size(), H - j);
        V i = fast_sigmoid(V::loadu(g + j, n));
        V f = fast_sigmoid(V::loadu(g + H + j, n));
        V gg = fast_tanh(V::loadu(g + 2 * H + j, n));
        V o = fast_sigmoid(V::loadu(g + 3 * H + j, n));
        V cn = f * V::loadu(cp + j, n) + i * gg;
        V hn = o * fast_tanh(cn);
        i.store(g + j, n);
        f.store(g + H + j, n);
        gg.store(g + 2 * H + j, n);
        o.store(g + 3 * H + j, n);
        cn.store(cb + j, n);
        hn.store(hb + j, n);
      }
    }
  });
}

// One step backward. act (B, 4H): the step's activations; d_out (B, H): dL/dh_t from the
// layer above, dh (B, H): from step t+1; dc (B, H): in dL/dc_t from step t+1, out
// dL/dc_{t-1}. Writes the pre-activation gradients into dgates (B, 4H).
template <typename scalar_t>
void pointwise_backward(const scalar_t* act, const scalar_t* c, const scalar_t* c_prev,
                        const scalar_t* d_out, const scalar_t* dh, scalar_t* dc, scalar_t* dgates,
                        int64_t B, int64_t H) {
  using V = Vec<scalar_t>;
  const V one(scalar_t(1));
  at::parallel_for(0, B, grain_rows(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const scalar_t* a = act + b * 4 * H;
      scalar_t* d = dgates + b * 4 * H;
      for (int64_t j = 0; j < H; j += V::size()) {
        const int64_t n = std::min<int64_t>(V::size(), H - j);
        const int64_t k = b * H + j;
        V i = V::loadu(a + j, n), f = V::loadu(a + H + j, n);
        V g = V::loadu(a + 2 * H + j, n), o = V::loadu(a + 3 * H + j, n);
        V tc = fast_tanh(V::loadu(c + k, n));
        V dhv = V::loadu(dh + k, n) + V::loadu(d_out + k, n);
        V dcv = V::loadu(dc + k, n) + dhv * o * (one - tc * tc);
        (dcv * V::loadu(c_prev + k, n) * f * (one - f)).store(d + H + j, n);  // forget
        (dcv * g * i * (one - i)).store(d + j, n);                          // input
        (dcv * i * (one - g * g)).store(d + 2 * H + j, n);                  // candidate
        (dhv * tc * o * (one - o)).store(d + 3 * H + j, n);                 // output
        (dcv * f).store(dc + k, n);
      }
    }
  });
}

// Weights may be column slices of a wider matrix (model one's [W_h | W_x]): BLAS reads them
// in place through their row stride. Everything else must be contiguous.
void check_inputs(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
                  const Tensor& w_hh, const Tensor& bias) {
  TORCH_CHECK(x.dim() == 3, "x must be (T, B, E)");
  TORCH_CHECK(x.device().is_cpu(), "the compiled LSTM kernels run on CPU tensors only");
  for (const Tensor* t : {&x, &h0, &c0, &w_ih, &w_hh, &bias}) {
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), "LSTM kernel inputs must share one dtype");
  }
  for (const Tensor* t : {&x, &h0, &c0, &bias}) {
    TORCH_CHECK(t->is_contiguous(), "LSTM kernel inputs must be contiguous");
  }
  for (const Tensor* w : {&w_ih, &w_hh}) {
    TORCH_CHECK(w->dim() == 2 && w->stride(1) == 1, "LSTM kernel weights must have unit column stride");
  }
}

// Returns {out (T, B, H), h_T, c_T, activations (T, B, 4H), cells (T, B, H)}. Without
// `store`, the activations and cells are not kept (evaluation) and come back empty.
std::vector<Tensor> lstm_forward(const Tensor& x, const Tensor& h0, const Tensor& c0,
                                 const Tensor& w_ih, const Tensor& w_hh, const Tensor& bias,
                                 bool store) {
  check_inputs(x, h0, c0, w_ih, w_hh, bias);
  const int64_t T = x.size(0), B = x.size(1), E = x.size(2), H = h0.size(1);
  Tensor gates = at::addmm(bias, x.reshape({T * B, E}), w_ih.t()).view({T, B, 4 * H});
  Tensor out = at::empty({T, B, H}, x.options());
  Tensor cells = store ? at::empty({T, B, H}, x.options()) : at::empty({2, B, H}, x.options());
  // BLAS runs the small-M recurrent GEMM faster with the weight as a contiguous (H, 4H)
  // matrix than through a transpose: one copy per sequence buys it for every step.
  const Tensor w_hh_t = w_hh.t().contiguous();
  Tensor h = h0, c = c0;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_forward", [&] {
    for (int64_t t = 0; t < T; ++t) {
      Tensor g_t = gates[t];
      g_t.addmm_(h, w_hh_t);
      Tensor c_next = store ? cells[t] : cells[t % 2];
      Tensor h_next = out[t];
      pointwise_forward<scalar_t>(g_t.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(),
                                  c_next.data_ptr<scalar_t>(), h_next.data_ptr<scalar_t>(), B, H);
      h = h_next;
      c = c_next;
    }
  });
  if (!store) return {out, h.clone(), c.clone(), Tensor(), Tensor()};
  return {out, h.clone(), c.clone(), gates, cells};
}

// Writes the weight gradients into dw_ih and dw_hh (shaped like w_ih, w_hh; possibly
// column slices of one matrix) and returns {dx, dh0, dc0, dbias}.
std::vector<Tensor> lstm_backward(const Tensor& d_out, const Tensor& d_hT, const Tensor& d_cT,
                                  const Tensor& x, const Tensor& h0, const Tensor& c0,
                                  const Tensor& w_ih, const Tensor& w_hh, const Tensor& out,
                                  const Tensor& gates, const Tensor& cells, Tensor dw_ih,
                                  Tensor dw_hh) {
  const int64_t T = x.size(0), B = x.size(1), E = x.size(2), H = h0.size(1);
  Tensor dgates = at::empty_like(gates);
  Tensor dh = d_hT.clone().contiguous();
  Tensor dc = d_cT.clone().contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_backward", [&] {
    for (int64_t t = T - 1; t >= 0; --t) {
      const Tensor c_prev = t > 0 ? cells[t - 1] : c0;
      Tensor dg_t = dgates[t];
      pointwise_backward<scalar_t>(gates[t].data_ptr<scalar_t>(), cells[t].data_ptr<scalar_t>(),
                                   c_prev.data_ptr<scalar_t>(), d_out[t].data_ptr<scalar_t>(),
                                   dh.data_ptr<scalar_t>(), dc.data_ptr<scalar_t>(),
                                   dg_t.data_ptr<scalar_t>(), B, H);
      at::mm_out(dh, dg_t, w_hh);
    }
  });
  const Tensor dg = dgates.view({T * B, 4 * H});
  Tensor dx = at::mm(dg, w_ih).view({T, B, E});
  at::mm_out(dw_ih, dg.t(), x.reshape({T * B, E}));
  // dW_hh = Σ_t dgates_tᵀ h_{t-1}: h_0 for the first step, the outputs for the others.
  at::mm_out(dw_hh, dgates[0].t(), h0);
  if (T > 1) {
    dw_hh.addmm_(dgates.narrow(0, 1, T - 1).reshape({(T - 1) * B, 4 * H}).t(),
                 out.narrow(0, 0, T - 1).reshape({(T - 1) * B, H}));
  }
  return {dx, dh, dc, dg.sum(0)};
}

// ----------------------------------------------------------------------------- the LSTM variants
//
// One kernel for the nine cells of Greff et al. (zoo.py, fast_variants.py), the same design
// as the LSTM's: gate blocks i, f, o, z (those present) in one packed w_ih (G·H, E), w_hh
// (G·H, H) and bias; peepholes p_i, p_f, p_o; for FGR a w_gg (3H, 3H) from the previous
// step's i, f, o. The structure arrives as flags; branches on them are uniform across a
// pass, so they cost next to nothing beside the GEMMs.

struct Variant {
  int64_t i, f, o, z;  // block index of each gate, -1 where absent
  int64_t forget;      // 0: own gate, 1: none (f = 1), 2: coupled (f = 1 - i)
  bool z_linear, h_linear, peep_i, peep_f, peep_o, fgr;

  explicit Variant(const std::vector<int64_t>& flags) {
    TORCH_CHECK(flags.size() == 11, "a variant is 11 flags");
    i = flags[0], f = flags[1], o = flags[2], z = flags[3], forget = flags[4];
    z_linear = flags[5], h_linear = flags[6];
    peep_i = flags[7], peep_f = flags[8], peep_o = flags[9], fgr = flags[10];
  }
};

template <typename scalar_t>
void variant_pointwise_forward(const Variant& v, scalar_t* gates, const scalar_t* c_prev, scalar_t* c,
                               scalar_t* y, const scalar_t* p_i, const scalar_t* p_f, const scalar_t* p_o,
                               int64_t B, int64_t G, int64_t H) {
  using V = Vec<scalar_t>;
  const V one(scalar_t(1));
  at::parallel_for(0, B, grain_rows(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      scalar_t* g = gates + b * G * H;
      for (int64_t j = 0; j < H; j += V::size()) {
        const int64_t n = std::min<int64_t>(V::size(), H - j);
        const V cp = V::loadu(c_prev + b * H + j, n);
        V z = V::loadu(g + v.z * H + j, n);
        if (!v.z_linear) z = fast_tanh(z);
        V i = one;
        if (v.i >= 0) {
          V a = V::loadu(g + v.i * H + j, n);
          if (v.peep_i) a = a + V::loadu(p_i + j, n) * cp;
          i = fast_sigmoid(a);
        }
        V f = one;
        if (v.forget == 0) {
          V a = V::loadu(g + v.f * H + j, n);
          if (v.peep_f) a = a + V::loadu(p_f + j, n) * cp;
          f = fast_sigmoid(a);
        } else if (v.forget == 2) {
          f = one - i;
        }
        const V cn = z * i + cp * f;
        V o = one;
        if (v.o >= 0) {
          V a = V::loadu(g + v.o * H + j, n);
          if (v.peep_o) a = a + V::loadu(p_o + j, n) * cn;
          o = fast_sigmoid(a);
        }
        const V hc = v.h_linear ? cn : fast_tanh(cn);
        z.store(g + v.z * H + j, n);
        if (v.i >= 0) i.store(g + v.i * H + j, n);
        if (v.forget == 0) f.store(g + v.f * H + j, n);
        if (v.o >= 0) o.store(g + v.o * H + j, n);
        cn.store(c + b * H + j, n);
        (hc * o).store(y + b * H + j, n);
      }
    }
  });
}

// dact (B, 3H): for FGR, dL/d[i, f, o] of this step from step t+1's pre-activations, else null.
template <typename scalar_t>
void variant_pointwise_backward(const Variant& v, const scalar_t* act, const scalar_t* c,
                                const scalar_t* c_prev, const scalar_t* d_out, const scalar_t* dy,
                                scalar_t* dc, const scalar_t* dact, scalar_t* dgates, const scalar_t* p_i,
                                const scalar_t* p_f, const scalar_t* p_o, int64_t B, int64_t G, int64_t H) {
  using V = Vec<scalar_t>;
  const V one(scalar_t(1));
  at::parallel_for(0, B, grain_rows(H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const scalar_t* a = act + b * G * H;
      scalar_t* d = dgates + b * G * H;
      const scalar_t* da = dact ? dact + b * 3 * H : nullptr;
      for (int64_t j = 0; j < H; j += V::size()) {
        const int64_t n = std::min<int64_t>(V::size(), H - j);
        const int64_t k = b * H + j;
        const V cv = V::loadu(c + k, n), cp = V::loadu(c_prev + k, n);
        const V z = V::loadu(a + v.z * H + j, n);
        const V i = v.i >= 0 ? V::loadu(a + v.i * H + j, n) : one;
        const V f = v.forget == 0 ? V::loadu(a + v.f * H + j, n) : (v.forget == 2 ? one - i : one);
        const V o = v.o >= 0 ? V::loadu(a + v.o * H + j, n) : one;
        const V hc = v.h_linear ? cv : fast_tanh(cv);
        const V dyv = V::loadu(dy + k, n) + V::loadu(d_out + k, n);
        V dcv = V::loadu(dc + k, n) + dyv * o * (v.h_linear ? one : one - hc * hc);
        if (v.o >= 0) {
          V dov = dyv * hc;
          if (da) dov = dov + V::loadu(da + 2 * H + j, n);
          const V dao = dov * o * (one - o);
          dao.store(d + v.o * H + j, n);
          if (v.peep_o) dcv = dcv + dao * V::loadu(p_o + j, n);
        }
        (dcv * i * (v.z_linear ? one : one - z * z)).store(d + v.z * H + j, n);
        V dprev = dcv * f;
        if (v.i >= 0) {
          V di = dcv * z;
          if (v.forget == 2) di = di - dcv * cp;
          if (da) di = di + V::loadu(da + j, n);
          const V dai = di * i * (one - i);
          dai.store(d + v.i * H + j, n);
          if (v.peep_i) dprev = dprev + dai * V::loadu(p_i + j, n);
        }
        if (v.forget == 0) {
          V df = dcv * cp;
          if (da) df = df + V::loadu(da + H + j, n);
          const V daf = df * f * (one - f);
          daf.store(d + v.f * H + j, n);
          if (v.peep_f) dprev = dprev + daf * V::loadu(p_f + j, n);
        }
        dprev.store(dc + k, n);
      }
    }
  });
}

template <typename scalar_t>
const scalar_t* data_or_null(const Tensor& t) {
  return t.numel() ? t.data_ptr<scalar_t>() : nullptr;
}

// Returns {out (T, B, H), y_T, c_T, a_T (FGR: the last i, f, o; else empty), activations
// (T, B, G·H), cells (T, B, H)}. Without `store` the activations and cells are not kept.
std::vector<Tensor> variant_forward(const Tensor& x, const Tensor& y0, const Tensor& c0, const Tensor& a0,
                                    const Tensor& w_ih, const Tensor& w_hh, const Tensor& w_gg,
                                    const Tensor& bias, const Tensor& p_i, const Tensor& p_f, const Tensor& p_o,
                                    std::vector<int64_t> flags, bool store) {
  const Variant v(flags);
  check_inputs(x, y0, c0, w_ih, w_hh, bias);
  const int64_t T = x.size(0), B = x.size(1), E = x.size(2), H = y0.size(1), G = w_ih.size(0) / H;
  Tensor gates = at::addmm(bias, x.reshape({T * B, E}), w_ih.t()).view({T, B, G * H});
  Tensor out = at::empty({T, B, H}, x.options());
  Tensor cells = store ? at::empty({T, B, H}, x.options()) : at::empty({2, B, H}, x.options());
  const Tensor w_hh_t = w_hh.t().contiguous();
  const Tensor w_gg_t = v.fgr ? w_gg.t().contiguous() : Tensor();
  const Tensor p_i_c = p_i.contiguous(), p_f_c = p_f.contiguous(), p_o_c = p_o.contiguous();
  Tensor y = y0, c = c0, a_prev = a0;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "variant_forward", [&] {
    for (int64_t t = 0; t < T; ++t) {
      Tensor g_t = gates[t];
      g_t.addmm_(y, w_hh_t);
      if (v.fgr) g_t.narrow(1, 0, 3 * H).addmm_(a_prev, w_gg_t);
      Tensor c_next = store ? cells[t] : cells[t % 2];
      Tensor y_next = out[t];
      variant_pointwise_forward<scalar_t>(v, g_t.data_ptr<scalar_t>(), c.data_ptr<scalar_t>(),
                                          c_next.data_ptr<scalar_t>(), y_next.data_ptr<scalar_t>(),
                                          data_or_null<scalar_t>(p_i_c), data_or_null<scalar_t>(p_f_c),
                                          data_or_null<scalar_t>(p_o_c), B, G, H);
      y = y_next;
      c = c_next;
      if (v.fgr) a_prev = g_t.narrow(1, 0, 3 * H);
    }
  });
  Tensor a_T = v.fgr ? a_prev.clone() : at::empty({0}, x.options());
  if (!store) return {out, y.clone(), c.clone(), a_T, Tensor(), Tensor()};
  return {out, y.clone(), c.clone(), a_T, gates, cells};
}

// Writes the weight gradients into dw_ih, dw_hh (and, for FGR, dw_gg) and returns
// {dx, dy0, dc0, da0, dbias, dp_i, dp_f, dp_o}, empty where a part is absent.
std::vector<Tensor> variant_backward(const Tensor& d_out, const Tensor& d_yT, const Tensor& d_cT,
                                     const Tensor& d_aT, const Tensor& x, const Tensor& y0, const Tensor& c0,
                                     const Tensor& a0, const Tensor& w_ih, const Tensor& w_hh,
                                     const Tensor& w_gg, const Tensor& p_i, const Tensor& p_f, const Tensor& p_o,
                                     const Tensor& out, const Tensor& gates, const Tensor& cells,
                                     std::vector<int64_t> flags, Tensor dw_ih, Tensor dw_hh, Tensor dw_gg) {
  const Variant v(flags);
  const int64_t T = x.size(0), B = x.size(1), E = x.size(2), H = y0.size(1), G = w_ih.size(0) / H;
  Tensor dgates = at::empty_like(gates);
  Tensor dy = d_yT.clone().contiguous();
  Tensor dc = d_cT.clone().contiguous();
  Tensor dact = v.fgr ? d_aT.clone().contiguous() : Tensor();
  const Tensor p_i_c = p_i.contiguous(), p_f_c = p_f.contiguous(), p_o_c = p_o.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "variant_backward", [&] {
    for (int64_t t = T - 1; t >= 0; --t) {
      const Tensor c_prev = t > 0 ? cells[t - 1] : c0;
      Tensor dg_t = dgates[t];
      variant_pointwise_backward<scalar_t>(
          v, gates[t].data_ptr<scalar_t>(), cells[t].data_ptr<scalar_t>(), c_prev.data_ptr<scalar_t>(),
          d_out[t].data_ptr<scalar_t>(), dy.data_ptr<scalar_t>(), dc.data_ptr<scalar_t>(),
          v.fgr ? dact.data_ptr<scalar_t>() : nullptr, dg_t.data_ptr<scalar_t>(), data_or_null<scalar_t>(p_i_c),
          data_or_null<scalar_t>(p_f_c), data_or_null<scalar_t>(p_o_c), B, G, H);
      at::mm_out(dy, dg_t, w_hh);
      if (v.fgr) at::mm_out(dact, dg_t.narrow(1, 0, 3 * H), w_gg);
    }
  });
  const Tensor dg = dgates.view({T * B, G * H});
  Tensor dx = at::mm(dg, w_ih).view({T, B, E});
  at::mm_out(dw_ih, dg.t(), x.reshape({T * B, E}));
  at::mm_out(dw_hh, dgates[0].t(), y0);
  if (T > 1) {
    dw_hh.addmm_(dgates.narrow(0, 1, T - 1).reshape({(T - 1) * B, G * H}).t(),
                 out.narrow(0, 0, T - 1).reshape({(T - 1) * B, H}));
  }
  if (v.fgr) {  // dW_gg = Σ_t da_{ifo,t}ᵀ [i, f, o]_{t-1}: a0 for the first step, the stored activations after
    at::mm_out(dw_gg, dgates[0].narrow(1, 0, 3 * H).t(), a0);
    if (T > 1) {
      dw_gg.addmm_(dgates.narrow(0, 1, T - 1).narrow(2, 0, 3 * H).reshape({(T - 1) * B, 3 * H}).t(),
                   gates.narrow(0, 0, T - 1).narrow(2, 0, 3 * H).reshape({(T - 1) * B, 3 * H}));
    }
  }
  const Tensor c_prevs = at::cat({c0.unsqueeze(0), cells.narrow(0, 0, T - 1)});
  auto peephole = [&](bool on, int64_t block, const Tensor& with) {
    if (!on) return at::empty({0}, x.options());
    return (dgates.narrow(2, block * H, H) * with).sum({0, 1});
  };
  return {dx, dy, dc, v.fgr ? dact : at::empty({0}, x.options()), dg.sum(0),
          peephole(v.peep_i, v.i, c_prevs), peephole(v.peep_f, v.f, c_prevs), peephole(v.peep_o, v.o, cells)};
}

}  // namespace

TORCH_LIBRARY(lstm_sweep, m) {
  m.def("lstm_forward(Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor bias, bool store) -> Tensor[]");
  m.def("lstm_backward(Tensor d_out, Tensor d_hT, Tensor d_cT, Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor out, Tensor gates, Tensor cells, Tensor(a!) dw_ih, Tensor(b!) dw_hh) -> Tensor[]");
  m.def("variant_forward(Tensor x, Tensor y0, Tensor c0, Tensor a0, Tensor w_ih, Tensor w_hh, Tensor w_gg, Tensor bias, Tensor p_i, Tensor p_f, Tensor p_o, int[] flags, bool store) -> Tensor[]");
  m.def("variant_backward(Tensor d_out, Tensor d_yT, Tensor d_cT, Tensor d_aT, Tensor x, Tensor y0, Tensor c0, Tensor a0, Tensor w_ih, Tensor w_hh, Tensor w_gg, Tensor p_i, Tensor p_f, Tensor p_o, Tensor out, Tensor gates, Tensor cells, int[] flags, Tensor(a!) dw_ih, Tensor(b!) dw_hh, Tensor(c!) dw_gg) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(lstm_sweep, CPU, m) {
  m.impl("lstm_forward", &lstm_forward);
  m.impl("lstm_backward", &lstm_backward);
  m.impl("variant_forward", &variant_forward);
  m.impl("variant_backward", &variant_backward);
}
