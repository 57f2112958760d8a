// The fast path's time loops: one LSTM layer over a whole sequence, forward and BPTT backward.
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

}  // namespace

TORCH_LIBRARY(lstm_sweep, m) {
  m.def("lstm_forward(Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor bias, bool store) -> Tensor[]");
  m.def("lstm_backward(Tensor d_out, Tensor d_hT, Tensor d_cT, Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor out, Tensor gates, Tensor cells, Tensor(a!) dw_ih, Tensor(b!) dw_hh) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(lstm_sweep, CPU, m) {
  m.impl("lstm_forward", &lstm_forward);
  m.impl("lstm_backward", &lstm_backward);
}
