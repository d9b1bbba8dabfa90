// Binding of the native training step (csrc/fastnn/step): a plan built once from the
// layers' buffers and the arena's views (python/fastnn/native_step.py), then run once
// per batch with the GIL released. The plan keeps every array it points into alive.
#include "fastnn/step/step.h"

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "common.h"

namespace fastnn_py {

namespace {

// The data of an array the plan writes (checked writeable by the caller).
template <class T> T* wptr(py::array a) { return static_cast<T*>(a.mutable_data()); }

class NativeStep {
 public:
  // layers: [(W, b|None, dW|None, db|None, y, dx|None, activation name, alpha)] (Dense) or
  // ("dropout", y, mask, rate, seed index) in forward order; first: the layer the backward stops at; loss: "xent_ids", "xent_probs" or "mse";
  // optimizer: "adam" (hyper: beta1, beta2, eps, weight_decay, decoupled) or "sgd"
  // (momentum, nesterov); ranges: [(param, grad, slot0|None, slot1|None)].
  NativeStep(py::list layers, std::size_t first, const std::string& loss, py::array dlogits,
             const std::string& optimizer, py::dict hyper, py::list ranges, py::object seeds) {
    if (!seeds.is_none()) {  // uint64, one per dropout layer, filled by the caller before each run
      seeds_ = seeds.cast<py::array>();
      if (!same_dtype(seeds_.dtype(), py::dtype::of<std::uint64_t>()))
        throw py::type_error("seeds: expected dtype uint64, got " + dtype_str(seeds_));
      require_contiguous(seeds_, "seeds");
      n_seeds_ = seeds_.size();
    }
    if (layers.empty()) throw py::value_error("layers: expected at least one Dense layer, got none");
    dt_ = float_dtype(dlogits, "dlogits");
    if (loss == "xent_ids") loss_ = fastnn::StepLoss::xent_ids;
    else if (loss == "xent_probs") loss_ = fastnn::StepLoss::xent_probs;
    else if (loss == "mse") loss_ = fastnn::StepLoss::mse;
    else throw py::value_error("loss: expected 'xent_ids', 'xent_probs' or 'mse', got '" + loss + "'");
    if (optimizer != "adam" && optimizer != "sgd")
      throw py::value_error("optimizer: expected 'adam' or 'sgd', got '" + optimizer + "'");
    keep_ = py::list();
    keep_.append(layers);
    keep_.append(dlogits);
    keep_.append(ranges);
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      build<T>(plan<T>(), layers, first, dlogits, optimizer, hyper, ranges);
    });
  }

  double run(py::array x, py::array labels, double lr, std::int64_t step) {
    check_in(x, dlogits_, "x", "the model's buffers");
    require_matrix(x, m_, in0_, "x");
    if (loss_ == fastnn::StepLoss::xent_ids) {
      if (!same_dtype(labels.dtype(), py::dtype::of<std::int64_t>()))
        throw py::type_error("labels: expected dtype int64, got " + dtype_str(labels));
      require_contiguous(labels, "labels");
      require_vector(labels, m_, "labels");
    } else {
      check_in(labels, dlogits_, "labels", "the model's buffers");
      require_matrix(labels, m_, out_, "labels");
    }
    for (const py::array& w : written_) {
      require_no_overlap(x, w, "x", "the model's buffers");
      require_no_overlap(labels, w, "labels", "the model's buffers");
    }
    const void* lab = labels.data();
    py::gil_scoped_release nogil;
    return visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      return fastnn::run_step<T>(plan<T>(), cptr<T>(x), lab, lr, step);
    });
  }

  std::size_t batch_size() const { return m_; }

 private:
  template <class T> fastnn::StepPlan<T>& plan() {
    if constexpr (std::is_same_v<T, float>) return pf_;
    else return pd_;
  }

  template <class T>
  void build(fastnn::StepPlan<T>& P, py::list layers, std::size_t first, py::array dlogits,
             const std::string& optimizer, py::dict hyper, py::list ranges) {
    dlogits_ = dlogits;
    require_writeable(dlogits, "dlogits");
    require_contiguous(dlogits, "dlogits");
    if (dlogits.ndim() != 2) throw py::value_error("dlogits: expected 2 dimensions");
    m_ = dlogits.shape(0);
    out_ = dlogits.shape(1);
    P.m = m_;
    P.loss = loss_;
    P.dlogits = mptr<T>(dlogits);
    P.seeds = n_seeds_ ? static_cast<const std::uint64_t*>(seeds_.data()) : nullptr;
    written_.push_back(dlogits);
    if (first > layers.size()) throw py::value_error("first: expected at most the number of layers");
    P.first = first;
    std::size_t in = 0;
    for (std::size_t k = 0; k < layers.size(); ++k) {
      py::tuple t = layers[k].cast<py::tuple>();
      fastnn::DenseStep<T> L;
      if (t.size() == 5) {  // ("dropout", y, mask, rate, seed index)
        if (k == 0) throw py::value_error("layers: a Dropout first layer is not supported");
        if (t[0].cast<std::string>() != "dropout") throw py::value_error("layers: expected 'dropout' 5-tuples");
        L.kind = fastnn::StepNode::dropout;
        L.in = L.out = in;
        py::array y = array_arg(t[1], dlogits, "y", true);
        require_matrix(y, m_, L.out, "y");
        py::array mask = array_arg(t[2], dlogits, "mask", true);
        require_matrix(mask, m_, L.out, "mask");
        L.y = mptr<T>(y);
        L.mask = mptr<T>(mask);
        written_.push_back(y);
        written_.push_back(mask);
        L.rate = t[3].cast<double>();
        if (!(L.rate > 0.0 && L.rate < 1.0)) throw py::value_error("rate: expected a value in (0, 1)");
        L.seed_index = t[4].cast<std::size_t>();
        if (L.seed_index >= n_seeds_) throw py::value_error("seeds: expected one per dropout layer");
        P.layers.push_back(L);
        continue;
      }
      if (t.size() != 8) throw py::value_error("layers: expected 8-tuples");
      py::array W = array_arg(t[0], dlogits, "W", false);
      if (W.ndim() != 2) throw py::value_error("W: expected 2 dimensions");
      L.in = W.shape(0);
      L.out = W.shape(1);
      if (k == 0) in0_ = L.in;
      else if (L.in != in) throw py::value_error("layers: layer " + std::to_string(k) + " input width differs");
      in = L.out;
      L.W = cptr<T>(W);
      if (!t[1].is_none()) L.b = cptr<T>(vec_arg(t[1], dlogits, L.out, "b", false));
      if (!t[2].is_none()) {
        py::array dW = array_arg(t[2], dlogits, "dW", true);
        require_matrix(dW, L.in, L.out, "dW");
        L.dW = mptr<T>(dW);
        if (!t[3].is_none()) L.db = wptr<T>(vec_arg(t[3], dlogits, L.out, "db", true));
      }
      py::array y = array_arg(t[4], dlogits, "y", true);
      require_matrix(y, m_, L.out, "y");
      L.y = mptr<T>(y);
      written_.push_back(y);
      if (!t[5].is_none()) {
        py::array dx = array_arg(t[5], dlogits, "dx", true);
        require_matrix(dx, m_, L.in, "dx");
        L.dx = mptr<T>(dx);
        written_.push_back(dx);
      } else if (k > first) {
        throw py::value_error("dx: layer " + std::to_string(k) + " is above first and needs a dx buffer");
      }
      L.act = fastnn::parse_activation(t[6].cast<std::string>());
      L.alpha = static_cast<T>(t[7].cast<double>());
      P.layers.push_back(L);
    }
    if (in != out_) throw py::value_error("dlogits: expected the last layer's width " + std::to_string(in));
    P.optimizer = optimizer == "adam" ? fastnn::StepOptimizer::adam : fastnn::StepOptimizer::sgd;
    if (optimizer == "adam") {
      P.adam.beta1 = hyper["beta1"].cast<double>();
      P.adam.beta2 = hyper["beta2"].cast<double>();
      P.adam.eps = hyper["eps"].cast<double>();
      P.adam.weight_decay = hyper["weight_decay"].cast<double>();
      P.adam.decoupled = hyper["decoupled"].cast<bool>();
    } else {
      P.sgd.momentum = hyper["momentum"].cast<double>();
      P.sgd.nesterov = hyper["nesterov"].cast<bool>();
    }
    for (const py::handle h : ranges) {
      py::tuple t = h.cast<py::tuple>();
      if (t.size() != 4) throw py::value_error("ranges: expected 4-tuples");
      fastnn::StepRange<T> r;
      py::array p = array_arg(t[0], dlogits, "param", true);
      r.n = p.size();
      r.p = mptr<T>(p);
      r.g = cptr<T>(vec_arg(t[1], dlogits, r.n, "grad", false));
      const bool need0 = optimizer == "adam" || P.sgd.momentum != 0.0;
      if (need0) r.s0 = wptr<T>(vec_arg(t[2], dlogits, r.n, "slot0", true));
      if (optimizer == "adam") r.s1 = wptr<T>(vec_arg(t[3], dlogits, r.n, "slot1", true));
      P.ranges.push_back(r);
    }
  }

  static py::array array_arg(py::handle h, const py::array& like, const char* name, bool write) {
    py::array a = h.cast<py::array>();
    check_in(a, like, name, "dlogits");
    if (write) require_writeable(a, name);
    return a;
  }
  static py::array vec_arg(py::handle h, const py::array& like, std::size_t n, const char* name, bool write) {
    py::array a = array_arg(h, like, name, write);
    require_size(a, n, name);
    return a;
  }

  DType dt_ = DType::f32;
  fastnn::StepLoss loss_ = fastnn::StepLoss::mse;
  std::size_t m_ = 0, in0_ = 0, out_ = 0;
  py::list keep_;
  py::array dlogits_, seeds_;
  std::size_t n_seeds_ = 0;
  std::vector<py::array> written_;
  fastnn::StepPlan<float> pf_;
  fastnn::StepPlan<double> pd_;
};

}  // namespace

void bind_step(py::module_& m) {
  py::class_<NativeStep>(m, "NativeStep",
                         "A training step plan (Dense layers, fused loss, optimizer) run as one call.")
      .def(py::init<py::list, std::size_t, const std::string&, py::array, const std::string&, py::dict, py::list,
                    py::object>(),
           py::arg("layers"), py::arg("first"), py::arg("loss"), py::arg("dlogits"), py::arg("optimizer"),
           py::arg("hyper"), py::arg("ranges"), py::arg("seeds") = py::none())
      .def("run", &NativeStep::run, py::arg("x"), py::arg("labels"), py::arg("lr"), py::arg("step"),
           "One training step on (x, labels); returns the loss.")
      .def_property_readonly("batch_size", &NativeStep::batch_size);
}

}  // namespace fastnn_py
