// Binding of the native training step (csrc/fastnn/step): a plan built once from the
// layers' buffers and the arena's views (python/fastnn/native_step.py), then run once
// per batch with the GIL released. The plan keeps every array it points into alive.
#include "fastnn/step/step.h"

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <type_traits>
#include <vector>

#include "common.h"
#include "constrain.h"
#include "fastnn/gather/gather.h"

namespace fastnn_py {

namespace {

// The data of an array the plan writes (checked writeable by the caller).
template <class T> T* wptr(py::array a) { return static_cast<T*>(a.mutable_data()); }

class NativeStep {
 public:
  // layers, in forward order: (W, b|None, dW|None, db|None, y, dx|None, activation name, alpha,
  // mixed) (Dense), ("dropout", ...), ("activation", ...), ("batchnorm", ...), ("layernorm", ...)
  // or ("activity", ...) (the *_node methods
  // below); first: the layer the backward stops at; loss: "xent_ids", "xent_probs", "mse" or "bce_logits";
  // optimizer: "adam" (hyper: beta1, beta2, eps, weight_decay, decoupled), "sgd"
  // (momentum, nesterov, decay, ema: the ema momentum form), "rmsprop" (rho, eps, momentum, centered,
  // decay), "adagrad" (eps, decay), "nadam", "adamax" (beta1, beta2, eps, decay) or "lion" (beta1,
  // beta2, decay) (decay: Optimizer._decay's weight_decay); ranges: [(param, grad, slot0|None,
  // slot1|None, slot2|None)], slot2: Adam's vhat (AMSGrad) or None; RMSprop: (sq_avg, momentum|None,
  // average_gradient|None); Adagrad: (accum, None, None); Nadam (m, v, None), Adamax (m, u, None),
  // Lion (m, None, None). regs: [(w, grad|None)] the regularized variables in
  // trainer._reg_list's order (grad None: a frozen layer), reg_coefs: float64 (len(regs), 2),
  // each one's (l1, l2), read at every step (the caller writes them before each call).
  NativeStep(py::list layers, std::size_t first, const std::string& loss, py::array dlogits,
             const std::string& optimizer, py::dict hyper, py::list ranges, py::object seeds, py::list regs,
             py::object reg_coefs) {
    if (!seeds.is_none()) {  // uint64, one per dropout layer, filled by the caller before each run
      seeds_ = seeds.cast<py::array>();
      require_dtype(seeds_, py::dtype::of<std::uint64_t>(), "seeds");
      n_seeds_ = seeds_.size();
    }
    if (layers.empty()) throw py::value_error("layers: expected at least one layer, got none");
    dt_ = float_dtype(dlogits, "dlogits");
    if (loss == "xent_ids") loss_ = fastnn::StepLoss::xent_ids;
    else if (loss == "xent_probs") loss_ = fastnn::StepLoss::xent_probs;
    else if (loss == "mse") loss_ = fastnn::StepLoss::mse;
    else if (loss == "bce_logits") loss_ = fastnn::StepLoss::bce_logits;
    else if (loss == "mae") loss_ = fastnn::StepLoss::mae;
    else if (loss == "huber") loss_ = fastnn::StepLoss::huber;
    else throw py::value_error("loss: expected 'xent_ids', 'xent_probs', 'mse', 'mae', 'huber' or 'bce_logits', got '" +
                               loss + "'");
    if (optimizer != "adam" && optimizer != "sgd" && optimizer != "rmsprop" && optimizer != "adagrad" &&
        optimizer != "nadam" && optimizer != "adamax" && optimizer != "lion")
      throw py::value_error("optimizer: expected 'adam', 'sgd', 'rmsprop', 'adagrad', 'nadam', 'adamax' or "
                            "'lion', got '" + optimizer + "'");
    keep_ = py::list();
    keep_.append(layers);
    keep_.append(dlogits);
    keep_.append(ranges);
    keep_.append(regs);
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      build<T>(plan<T>(), layers, first, dlogits, optimizer, hyper, ranges);
      build_regs<T>(plan<T>(), regs, reg_coefs, dlogits);
    });
  }

  // weights (or None): m sample weights of the model's dtype, the loss weighted by them.
  double run(py::array x, py::array labels, double lr, std::int64_t step, py::object weights) {
    check_in(x, dlogits_, "x", "the model's buffers");
    require_matrix(x, m_, in0_, "x");
    check_labels(labels, m_, "labels");
    py::array wa = weights_arg(weights, "weights", m_);
    for (const py::array& w : written_) {
      require_no_overlap(x, w, "x", "the model's buffers");
      require_no_overlap(labels, w, "labels", "the model's buffers");
      require_no_overlap(wa, w, "weights", "the model's buffers");
    }
    check_frozen_stats();
    const void* lab = labels.data();
    const void* wp = wa.size() ? wa.data() : nullptr;
    py::gil_scoped_release nogil;
    return visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      plan<T>().weights = static_cast<const T*>(wp);
      return fastnn::run_step<T>(plan<T>(), cptr<T>(x), lab, lr, step, &penalty_);
    });
  }

  // k = len(lrs) steps, step i on the rows index[i*m : (i+1)*m] of (x, labels), gathered
  // into xbuf and ybuf (the batch buffers run() would be given), with the learning rate
  // lrs[i], the optimizer step step0 + i (step0 0: nothing trainable) and the dropout seeds
  // seeds[i] (k x one per dropout layer); losses[i] = its loss; outs (or None): k x m x the
  // output width, outs[i] = step i's output (what run() leaves in the output buffer, for the
  // metrics); penalties (or None): k float64, penalties[i] = step i's penalty (the
  // regularizers'; 0 without); weights (or None): the n sample weights of the rows of x,
  // each step's gathered into wbuf (m, the model's dtype) like its labels. Every argument and every
  // step's optimizer arguments are checked before the first step runs; then the k steps
  // run as one call with the GIL released, exactly as k calls of run() would.
  void run_batches(py::array x, py::array labels, py::array index, py::array lrs, std::int64_t step0,
                   py::array seeds, py::array losses, py::array xbuf, py::array ybuf, py::object outs_obj,
                   py::object penalties_obj, py::object weights_obj, py::object wbuf_obj) {
    check_in(x, dlogits_, "x", "the model's buffers");
    if (x.ndim() != 2 || static_cast<std::size_t>(x.shape(1)) != in0_)
      throw py::value_error("x: expected shape (n, " + std::to_string(in0_) + ")");
    const std::int64_t n = x.shape(0);
    check_out(xbuf, dlogits_, "xbuf", "the model's buffers");
    require_matrix(xbuf, m_, in0_, "xbuf");
    const bool ids = loss_ == fastnn::StepLoss::xent_ids;
    check_labels(labels, static_cast<std::size_t>(n), "labels");
    check_labels(ybuf, m_, "ybuf");
    require_writeable(ybuf, "ybuf");
    require_dtype(lrs, py::dtype::of<double>(), "lrs");
    if (lrs.ndim() != 1) throw py::value_error("lrs: expected 1 dimension");
    const std::size_t k = lrs.shape(0);
    require_dtype(index, py::dtype::of<std::int64_t>(), "index");
    require_vector(index, k * m_, "index");
    const auto* idx = static_cast<const std::int64_t*>(index.data());
    const std::ptrdiff_t bad = fastnn::first_index_out_of_range<std::int64_t>(idx, k * m_, n);
    if (bad >= 0)
      throw py::value_error("index: expected values in [0, " + std::to_string(n) + ") (the rows of x), got " +
                            std::to_string(static_cast<long long>(idx[bad])) + " at position " + std::to_string(bad));
    require_dtype(seeds, py::dtype::of<std::uint64_t>(), "seeds");
    require_size(seeds, k * n_seeds_, "seeds");
    require_dtype(losses, py::dtype::of<double>(), "losses");
    require_writeable(losses, "losses");
    require_vector(losses, k, "losses");
    py::array outs = outs_obj.is_none() ? py::array(dlogits_.dtype(), std::vector<py::ssize_t>{0}) : fastnn_py::array_arg(outs_obj, "outs");
    if (!outs_obj.is_none()) {
      check_out(outs, dlogits_, "outs", "the model's buffers");
      if (outs.ndim() != 3 || static_cast<std::size_t>(outs.shape(0)) != k || static_cast<std::size_t>(outs.shape(1)) != m_ ||
          static_cast<std::size_t>(outs.shape(2)) != out_)
        throw py::value_error("outs: expected shape (" + std::to_string(k) + ", " + std::to_string(m_) + ", " +
                              std::to_string(out_) + ")");
    }
    py::array pens = penalties_obj.is_none() ? py::array(py::dtype::of<double>(), std::vector<py::ssize_t>{0})
                                             : fastnn_py::array_arg(penalties_obj, "penalties");
    if (!penalties_obj.is_none()) {
      require_dtype(pens, py::dtype::of<double>(), "penalties");
      require_writeable(pens, "penalties");
      require_vector(pens, k, "penalties");
    }
    py::array wts = weights_arg(weights_obj, "weights", static_cast<std::size_t>(n));
    if (weights_obj.is_none() != wbuf_obj.is_none())
      throw py::value_error("wbuf: expected a buffer exactly when weights are given, got " +
                            std::string(wbuf_obj.is_none() ? "None" : "a buffer") + " with " +
                            (weights_obj.is_none() ? "no weights" : "weights"));
    py::array wbuf = weights_arg(wbuf_obj, "wbuf", m_);
    if (!wbuf_obj.is_none()) require_writeable(wbuf, "wbuf");
    require_disjoint({{&xbuf, "xbuf"}, {&ybuf, "ybuf"}, {&losses, "losses"}, {&outs, "outs"}, {&pens, "penalties"},
                      {&wbuf, "wbuf"}});
    for (const py::array& w : written_)
      for (const py::array* a : {&xbuf, &ybuf, &losses, &outs, &x, &labels, &pens, &wts, &wbuf})
        if (overlaps(*a, w)) throw py::value_error("the model's buffers: must not share memory with the batches' arrays");
    for (const py::array& w : plan_arrays_)  // the parameters and slots too: the outputs are written
      for (const py::array* a : {&xbuf, &ybuf, &losses, &outs, &pens, &wbuf})
        if (overlaps(*a, w))
          throw py::value_error("the model's buffers: must not share memory with the batch buffers");
    for (const py::array* a : {&x, &labels, &index, &lrs, &seeds, &wts})
      for (auto [o, name] : {std::pair<const py::array*, const char*>{&xbuf, "xbuf"}, {&ybuf, "ybuf"}, {&losses, "losses"},
                             {&outs, "outs"}, {&pens, "penalties"}, {&wbuf, "wbuf"}})
        if (overlaps(*a, *o)) throw py::value_error(std::string(name) + ": must not share memory with the inputs");
    const double* lr = static_cast<const double*>(lrs.data());
    if (step0 < 0 || (step0 > 0 && static_cast<std::uint64_t>(step0) + k > static_cast<std::uint64_t>(INT64_MAX)))
      throw py::value_error("step0: expected 0 or a first step that leaves room for len(lrs) steps");
    // the optimizer step of call i (0 throughout when nothing is trainable)
    auto step_of = [step0](std::size_t i) { return step0 ? step0 + static_cast<std::int64_t>(i) : std::int64_t(0); };
    check_frozen_stats();
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      for (std::size_t i = 0; i < k; ++i) fastnn::check_step<T>(plan<T>(), lr[i], step_of(i));
    });
    const char* xs = static_cast<const char*>(x.data());
    const char* ls = static_cast<const char*>(labels.data());
    char* xb = static_cast<char*>(xbuf.mutable_data());
    char* yb = static_cast<char*>(ybuf.mutable_data());
    const std::size_t x_row = in0_ * elsize(x), y_row = ids ? sizeof(std::int64_t) : out_ * elsize(labels);
    const auto* sd = static_cast<const std::uint64_t*>(seeds.data());
    auto* plan_seeds = n_seeds_ ? static_cast<std::uint64_t*>(seeds_.mutable_data()) : nullptr;
    double* out = static_cast<double*>(losses.mutable_data());
    double* pen = pens.size() ? static_cast<double*>(pens.mutable_data()) : nullptr;
    char* outs_p = outs.size() ? static_cast<char*>(outs.mutable_data()) : nullptr;
    const std::size_t out_bytes = m_ * out_ * elsize(dlogits_);
    const char* ws = wts.size() ? static_cast<const char*>(wts.data()) : nullptr;
    char* wb = ws ? static_cast<char*>(wbuf.mutable_data()) : nullptr;
    py::gil_scoped_release nogil;
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      plan<T>().weights = reinterpret_cast<const T*>(wb);
      for (std::size_t i = 0; i < k; ++i) {
        const std::int64_t* rows = idx + i * m_;
        fastnn::take_rows<std::int64_t>(xs, n, rows, m_, x_row, xb);
        fastnn::take_rows<std::int64_t>(ls, n, rows, m_, y_row, yb);
        if (wb) fastnn::take_rows<std::int64_t>(ws, n, rows, m_, sizeof(T), wb);
        for (std::size_t j = 0; j < n_seeds_; ++j) plan_seeds[j] = sd[i * n_seeds_ + j];
        out[i] = fastnn::run_step<T>(plan<T>(), reinterpret_cast<const T*>(xb), yb, lr[i], step_of(i),
                                     pen ? pen + i : &penalty_);
        if (outs_p) std::memcpy(outs_p + i * out_bytes, plan<T>().layers.back().y, out_bytes);
      }
    });
  }

  // Optimizer.apply's clipping, run before the update of every step: mode "norm" (each group,
  // a list of the plan's dtype arrays, clipped to its global norm `value`: global_clipnorm one
  // group of the trainable ranges' grads, clipnorm one group per trainable variable) or "value"
  // (every array clipped to [-value, value]: clipvalue, the ranges' grads), or "none".
  void set_clip(const std::string& mode, double value, py::list groups) {
    fastnn::StepClipMode md = fastnn::StepClipMode::none;
    if (mode == "norm") md = fastnn::StepClipMode::norm;
    else if (mode == "value") md = fastnn::StepClipMode::value;
    else if (mode != "none") throw py::value_error("mode: expected 'norm', 'value' or 'none', got '" + mode + "'");
    if (md != fastnn::StepClipMode::none && !(value > 0 && std::isfinite(value)))
      throw py::value_error("value: expected a finite value > 0, got " + num(value));
    std::vector<std::vector<fastnn::GradView>> views;
    std::vector<py::array> arrays;
    for (const py::handle h : groups) {
      views.emplace_back();
      for (const py::handle a : h.cast<py::list>()) {
        py::array g = array_arg(a, dlogits_, "grads", true);
        for (const py::array& o : arrays)
          if (overlaps(g, o)) throw py::value_error("grads: the clipped arrays must not share memory");
        views.back().push_back({g.mutable_data(), static_cast<std::size_t>(g.size()), dt_ == DType::f64});
        arrays.push_back(g);
      }
    }
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      fastnn::StepClip<T>& c = plan<T>().clip;
      c.mode = md;
      c.value = value;
      c.groups = std::move(views);
    });
    clip_keep_ = std::move(arrays);
  }

  // trainer.apply_constraints, run after the update of every step: [(w, "non_neg") or
  // (w, rule, outer, r, inner, min_value, max_value, rate)] in the arena's order (the norm
  // constraints' arguments as ops.norm_constraint takes them).
  void set_constraints(py::list items) {
    std::vector<py::array> arrays;
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      std::vector<fastnn::StepConstraint<T>> cs;
      for (const py::handle h : items) {
        py::tuple it = h.cast<py::tuple>();
        if (it.size() != 2 && it.size() != 8)
          throw py::value_error("constraints: expected (w, 'non_neg') or 8-tuples, got " + std::to_string(it.size()) +
                                " items");
        py::array w = array_arg(it[0], dlogits_, "w", true);
        fastnn::StepConstraint<T> c;
        c.w = mptr<T>(w);
        c.n = w.size();
        const std::string rule = it[1].cast<std::string>();
        c.non_neg = rule == "non_neg";
        if (c.non_neg != (it.size() == 2)) throw py::value_error("constraints: 'non_neg' takes no arguments");
        if (!c.non_neg)
          c.norm = norm_constraint_args(rule, it[2].cast<std::size_t>(), it[3].cast<std::size_t>(),
                                        it[4].cast<std::size_t>(), it[5].cast<double>(), it[6].cast<double>(),
                                        it[7].cast<double>(), c.n);
        cs.push_back(c);
        arrays.push_back(w);
      }
      plan<T>().constraints = std::move(cs);
    });
    constraint_keep_ = std::move(arrays);
  }

  std::size_t batch_size() const { return m_; }

  // Huber's delta (a finite value > 0; 1.0 until set), read by every step of a "huber" plan.
  void set_huber_delta(double delta) {
    if (!(delta > 0) || !std::isfinite(delta))
      throw py::value_error("delta: expected a finite value > 0, got " + num(delta));
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      plan<T>().huber_delta = delta;
    });
  }
  // The activity nodes' penalties (ActivityRegularization.activity_loss) of the last step run, in chain order.
  py::list activity_losses() {
    py::list out;
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      for (const double a : plan<T>().activity) out.append(a);
    });
    return out;
  }
  double penalty() const { return penalty_; }

  // SGD(momentum_form="ema")'s state (SgdEma): (the last rate, the last factor, the steps run
  // since set_ema_lr), None when the plan's optimizer is not the ema form.
  py::object ema_state() {
    return visit_float(dt_, [&](auto t) -> py::object {
      using T = decltype(t);
      const fastnn::SgdEma& e = plan<T>().ema;
      if (!e.on) return py::none();
      return py::make_tuple(e.lr, e.factor, e.steps);
    });
  }
  // Nadam's running product of its momentum schedule (Nadam._u_product: (k, u_1 ... u_k)),
  // None when the plan's optimizer is not Nadam; set_nadam_product sets it before the next steps.
  py::object nadam_product() {
    return visit_float(dt_, [&](auto t) -> py::object {
      using T = decltype(t);
      const fastnn::StepPlan<T>& P = plan<T>();
      if (P.optimizer != fastnn::StepOptimizer::nadam) return py::none();
      return py::make_tuple(P.more.u_k, P.more.u_prod);
    });
  }
  void set_nadam_product(std::int64_t k, double prod) {
    if (k < 0) throw py::value_error("k: expected a step >= 0, got " + std::to_string(k));
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      plan<T>().more.u_k = k;
      plan<T>().more.u_prod = prod;
    });
  }
  // The ema form's last rate (SGD._ema_lr; 0: none yet) before the next steps; steps restart at 0.
  void set_ema_lr(double lr) {
    visit_float(dt_, [&](auto t) {
      using T = decltype(t);
      fastnn::SgdEma& e = plan<T>().ema;
      e.lr = lr;
      e.factor = 1.0;
      e.steps = 0;
    });
  }

 private:
  template <class T> fastnn::StepPlan<T>& plan() {
    if constexpr (std::is_same_v<T, float>) return pf_;
    else return pd_;
  }

  // The optimizer and its hyperparameters from hyper (see the constructor).
  template <class T> static void set_optimizer(fastnn::StepPlan<T>& P, const std::string& optimizer, py::dict hyper) {
    if (optimizer == "adam") {
      P.optimizer = fastnn::StepOptimizer::adam;
      P.adam.beta1 = hyper["beta1"].cast<double>();
      P.adam.beta2 = hyper["beta2"].cast<double>();
      P.adam.eps = hyper["eps"].cast<double>();
      P.adam.weight_decay = hyper["weight_decay"].cast<double>();
      P.adam.decoupled = hyper["decoupled"].cast<bool>();
    } else if (optimizer == "rmsprop") {
      P.optimizer = fastnn::StepOptimizer::rmsprop;
      P.rmsprop.rho = hyper["rho"].cast<double>();
      P.rmsprop.eps = hyper["eps"].cast<double>();
      P.rmsprop.momentum = hyper["momentum"].cast<double>();
      P.rmsprop.centered = hyper["centered"].cast<bool>();
      P.decay = hyper["decay"].cast<double>();
    } else if (optimizer == "nadam" || optimizer == "adamax" || optimizer == "lion") {
      P.optimizer = optimizer == "nadam" ? fastnn::StepOptimizer::nadam
                    : optimizer == "adamax" ? fastnn::StepOptimizer::adamax : fastnn::StepOptimizer::lion;
      P.more.beta1 = hyper["beta1"].cast<double>();
      P.more.beta2 = hyper["beta2"].cast<double>();
      P.more.eps = optimizer == "lion" ? 0.0 : hyper["eps"].cast<double>();
      P.decay = hyper["decay"].cast<double>();
    } else if (optimizer == "adagrad") {
      P.optimizer = fastnn::StepOptimizer::adagrad;
      P.adagrad.eps = hyper["eps"].cast<double>();
      P.decay = hyper["decay"].cast<double>();
    } else {
      P.optimizer = fastnn::StepOptimizer::sgd;
      P.sgd.momentum = hyper["momentum"].cast<double>();
      P.sgd.nesterov = hyper["nesterov"].cast<bool>();
      P.decay = hyper.contains("decay") ? hyper["decay"].cast<double>() : 0.0;
      P.ema.on = hyper.contains("ema") && hyper["ema"].cast<bool>();
    }
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
    if (loss_ == fastnn::StepLoss::huber) P.loss_scratch.assign(m_ * out_, T(0));  // made once, here
    P.dlogits = mptr<T>(dlogits);
    P.seeds = n_seeds_ ? static_cast<const std::uint64_t*>(seeds_.data()) : nullptr;
    written_.push_back(dlogits);
    if (first > layers.size()) throw py::value_error("first: expected at most the number of layers");
    P.first = first;
    std::size_t in = 0;  // the width the next layer takes
    const std::uint16_t* in16 = nullptr;  // the layer below's output as bfloat16 bits, if so stored
    for (std::size_t k = 0; k < layers.size(); ++k) {
      py::tuple t = layers[k].cast<py::tuple>();
      const std::string tag = t.size() > 0 && py::isinstance<py::str>(t[0]) ? t[0].cast<std::string>() : "";
      fastnn::DenseStep<T> L;
      if (tag == "dropout") L = dropout_node<T>(t, k, in, dlogits);
      else if (tag == "activation") L = activation_node<T>(t, k, in, dlogits);
      else if (tag == "batchnorm") L = batchnorm_node<T>(t, k, in, dlogits);
      else if (tag == "layernorm") L = layernorm_node<T>(t, k, in, dlogits);
      else if (tag == "activity") L = activity_node<T>(P, t, k, in, dlogits);
      else if (tag.empty()) L = dense_node<T>(t, k, in, first, dlogits);
      else throw py::value_error("layers: unknown layer kind '" + tag + "'");
      if (in16) {  // the layer below stored bfloat16 bits: only a mixed Dense layer reads them
        if (!L.bf16) throw py::value_error("layers: layer " + std::to_string(k) +
                                           " reads a bfloat16 output but is not a mixed_bfloat16 Dense layer");
        L.x16 = in16;
      }
      in16 = L.y16;
      in = L.out;
      P.layers.push_back(L);
    }
    if (in != out_) throw py::value_error("dlogits: expected the last layer's width " + std::to_string(in));
    if (in16) throw py::value_error("layers: the last layer's output (the loss reads it) must be float, not bfloat16");
    set_optimizer<T>(P, optimizer, hyper);
    for (const py::handle h : ranges) {
      py::tuple t = h.cast<py::tuple>();
      if (t.size() != 5) throw py::value_error("ranges: expected 5-tuples, got " + std::to_string(t.size()) + " items");
      fastnn::StepRange<T> r;
      py::array p = array_arg(t[0], dlogits, "param", true);
      r.n = p.size();
      r.p = mptr<T>(p);
      r.g = cptr<T>(vec_arg(t[1], dlogits, r.n, "grad", false));
      const bool need0 = optimizer != "sgd" || P.sgd.momentum != 0.0 || P.ema.on;  // ema: rescaled
      if (need0) r.s0 = wptr<T>(vec_arg(t[2], dlogits, r.n, "slot0", true));
      if (optimizer == "adam" || optimizer == "nadam" || optimizer == "adamax" ||
          (optimizer == "rmsprop" && P.rmsprop.momentum != 0.0))
        r.s1 = wptr<T>(vec_arg(t[3], dlogits, r.n, "slot1", true));
      if ((optimizer == "adam" && !t[4].is_none()) || (optimizer == "rmsprop" && P.rmsprop.centered))
        r.s2 = wptr<T>(vec_arg(t[4], dlogits, r.n, "slot2", true));
      P.ranges.push_back(r);
    }
  }

  // The regularized variables (w, grad|None) and their coefficients (float64, (len(regs), 2)).
  template <class T>
  void build_regs(fastnn::StepPlan<T>& P, py::list regs, py::object coefs, const py::array& dlogits) {
    if (regs.empty()) return;
    if (coefs.is_none()) throw py::value_error("reg_coefs: expected a float64 array of (l1, l2) per reg, got None");
    reg_coefs_ = coefs.cast<py::array>();
    require_dtype(reg_coefs_, py::dtype::of<double>(), "reg_coefs");
    require_size(reg_coefs_, 2 * regs.size(), "reg_coefs");
    P.reg_coefs = static_cast<const double*>(reg_coefs_.data());
    for (const py::handle h : regs) {
      py::tuple t = h.cast<py::tuple>();
      if (t.size() != 2) throw py::value_error("regs: expected (w, grad|None) pairs, got " + std::to_string(t.size()) +
                                               " items");
      fastnn::StepReg<T> r;
      py::array w = array_arg(t[0], dlogits, "w", false);
      r.n = w.size();
      r.w = cptr<T>(w);
      if (!t[1].is_none()) {
        py::array g = vec_arg(t[1], dlogits, r.n, "grad", true);
        if (overlaps(g, w)) throw py::value_error("grad: must not share memory with w");
        written_.push_back(g);
        r.g = mptr<T>(g);
      }
      P.regs.push_back(r);
    }
  }

  // The width of layer k's input: the data's for the first layer, else the layer below's.
  void chain_width(std::size_t k, std::size_t width, std::size_t in) {
    if (k == 0) in0_ = width;
    else if (width != in) throw py::value_error("layers: layer " + std::to_string(k) + " input width differs");
  }

  // A layer that keeps the width (dropout, activation, batchnorm): ("kind", y, ...) of
  // `size` items, y its m x width output buffer.
  template <class T> fastnn::DenseStep<T> tagged_node(py::tuple t, std::size_t size, fastnn::StepNode kind,
                                                       std::size_t k, std::size_t in, const py::array& dlogits) {
    const std::string tag = t[0].cast<std::string>();
    if (t.size() != size)
      throw py::value_error("layers: expected '" + tag + "' " + std::to_string(size) + "-tuples, got " +
                            std::to_string(t.size()) + " items");
    fastnn::DenseStep<T> L;
    L.kind = kind;
    py::array y = array_arg(t[1], dlogits, "y", true);
    if (y.ndim() != 2) throw py::value_error("y: expected 2 dimensions");
    L.in = L.out = y.shape(1);
    chain_width(k, L.out, in);
    require_matrix(y, m_, L.out, "y");
    written_.push_back(y);
    L.y = mptr<T>(y);
    return L;
  }

  // (W, b|None, dW|None, db|None, y, dx|None, activation name, alpha[, mixed]): mixed
  // (mixed_bfloat16, float32 plans only; default false): the bf16 products; y may then be uint16
  // (bfloat16 bits, read only by the mixed Dense layer above).
  template <class T> fastnn::DenseStep<T> dense_node(py::tuple t, std::size_t k, std::size_t in,
                                                      std::size_t first, const py::array& dlogits) {
    if (t.size() != 8 && t.size() != 9) throw py::value_error("layers: expected 8- or 9-tuples for Dense layers");
    fastnn::DenseStep<T> L;
    py::array W = array_arg(t[0], dlogits, "W", false);
    if (W.ndim() != 2) throw py::value_error("W: expected 2 dimensions");
    L.in = W.shape(0);
    L.out = W.shape(1);
    chain_width(k, L.in, in);
    L.W = cptr<T>(W);
    if (!t[1].is_none()) L.b = cptr<T>(vec_arg(t[1], dlogits, L.out, "b", false));
    if (!t[2].is_none()) {
      py::array dW = array_arg(t[2], dlogits, "dW", true);
      require_matrix(dW, L.in, L.out, "dW");
      L.dW = mptr<T>(dW);
      if (!t[3].is_none()) L.db = wptr<T>(vec_arg(t[3], dlogits, L.out, "db", true));
    }
    L.bf16 = t.size() == 9 && t[8].cast<bool>();
    if (L.bf16 && !std::is_same_v<T, float>)
      throw py::value_error("layers: layer " + std::to_string(k) + " is mixed_bfloat16, which needs a float32 plan");
    py::array y = t[4].cast<py::array>();
    if (L.bf16 && same_dtype(y.dtype(), py::dtype::of<std::uint16_t>())) {  // bfloat16 bits
      require_contiguous(y, "y");
      require_writeable(y, "y");
      L.y16 = static_cast<std::uint16_t*>(y.mutable_data());
    } else {
      y = array_arg(t[4], dlogits, "y", true);
      L.y = mptr<T>(y);
    }
    require_matrix(y, m_, L.out, "y");
    written_.push_back(y);
    if (!t[5].is_none()) {
      L.dx = matrix_buffer<T>(t[5], dlogits, L.in, "dx");
    } else if (k > first) {
      throw py::value_error("dx: layer " + std::to_string(k) + " is above first and needs a dx buffer");
    }
    L.act = fastnn::parse_activation(t[6].cast<std::string>());
    if (fastnn::activation_grad_needs(L.act) == fastnn::GradNeeds::x)  // the node keeps y only
      throw py::value_error("layers: a Dense node's activation must have a gradient from y, got '" +
                            t[6].cast<std::string>() + "'");
    fastnn::check_activation_alpha(L.act, t[7].cast<double>(), "alpha");
    L.alpha = static_cast<T>(t[7].cast<double>());
    return L;
  }

  // ("dropout", y, mask, rate, seed index)
  template <class T> fastnn::DenseStep<T> dropout_node(py::tuple t, std::size_t k, std::size_t in,
                                                        const py::array& dlogits) {
    fastnn::DenseStep<T> L = tagged_node<T>(t, 5, fastnn::StepNode::dropout, k, in, dlogits);
    L.mask = matrix_buffer<T>(t[2], dlogits, L.out, "mask");
    L.rate = t[3].cast<double>();
    if (!(L.rate > 0.0 && L.rate < 1.0)) throw py::value_error("rate: expected a value in (0, 1)");
    L.seed_index = t[4].cast<std::size_t>();
    if (L.seed_index >= n_seeds_) throw py::value_error("seeds: expected one per dropout layer");
    return L;
  }

  // ("activation", y, activation name, alpha)
  template <class T> fastnn::DenseStep<T> activation_node(py::tuple t, std::size_t k, std::size_t in,
                                                           const py::array& dlogits) {
    fastnn::DenseStep<T> L = tagged_node<T>(t, 4, fastnn::StepNode::activation, k, in, dlogits);
    L.act = fastnn::parse_activation(t[2].cast<std::string>());
    if (L.act == fastnn::Act::identity) throw py::value_error("layers: an identity activation layer is no node");
    L.act_needs_x = fastnn::activation_grad_needs(L.act) == fastnn::GradNeeds::x;
    fastnn::check_activation_alpha(L.act, t[3].cast<double>(), "alpha");
    L.alpha = static_cast<T>(t[3].cast<double>());
    return L;
  }

  // A normalization's epsilon: finite and > 0 in the plan's dtype (its kernels refuse others).
  template <class T> static double norm_eps(py::handle h) {
    const double eps = h.cast<double>();
    if (!(eps > 0) || !std::isfinite(eps) || !(static_cast<T>(eps) > 0))
      throw py::value_error("eps: expected a finite value > 0 in the plan's dtype");
    return eps;
  }

  // ("batchnorm", y, training, dx|None, gamma, beta, running_mean, running_var, mean, invstd,
  //  dgamma|None, dbeta|None, scale|None, shift|None, momentum, eps): training needs dx,
  // dgamma and dbeta, frozen (not training) scale and shift.
  template <class T> fastnn::DenseStep<T> batchnorm_node(py::tuple t, std::size_t k, std::size_t in,
                                                          const py::array& dlogits) {
    fastnn::DenseStep<T> L = tagged_node<T>(t, 16, fastnn::StepNode::batchnorm, k, in, dlogits);
    L.training = t[2].cast<bool>();
    const std::size_t n = L.out;
    L.momentum = t[14].cast<double>();
    L.eps = norm_eps<T>(t[15]);
    if (!(L.momentum >= 0 && L.momentum <= 1)) throw py::value_error("momentum: expected a value in [0, 1]");
    if (L.training && m_ < 2) throw py::value_error("dlogits: training-mode batch norm needs at least 2 rows");
    L.gamma = cptr<T>(vec_arg(t[4], dlogits, n, "gamma", false));
    L.beta = cptr<T>(vec_arg(t[5], dlogits, n, "beta", false));
    py::array rmean = vec_arg(t[6], dlogits, n, "running_mean", true);  // written only in training
    py::array rvar = vec_arg(t[7], dlogits, n, "running_var", true);
    L.running_mean = mptr<T>(rmean);
    L.running_var = mptr<T>(rvar);
    L.mean = vec_buffer<T>(t[8], dlogits, n, "mean");
    L.invstd = vec_buffer<T>(t[9], dlogits, n, "invstd");
    if (L.training) {
      written_.push_back(rmean);
      written_.push_back(rvar);
      L.dx = matrix_buffer<T>(t[3], dlogits, n, "dx");
      L.dgamma = wptr<T>(vec_arg(t[10], dlogits, n, "dgamma", true));
      L.dbeta = wptr<T>(vec_arg(t[11], dlogits, n, "dbeta", true));
    } else {
      frozen_vars_.push_back(rvar);
      L.scale = vec_buffer<T>(t[12], dlogits, n, "scale");
      L.shift = vec_buffer<T>(t[13], dlogits, n, "shift");
    }
    return L;
  }

  // ("layernorm", y, trainable, dx, gamma|None, beta|None, xhat, inv, dgamma, dbeta, eps):
  // LayerNormalization over the last axis (_native_norm.py); dgamma and dbeta are the arena's
  // gradients or the layer's scratch.
  template <class T> fastnn::DenseStep<T> layernorm_node(py::tuple t, std::size_t k, std::size_t in,
                                                          const py::array& dlogits) {
    fastnn::DenseStep<T> L = tagged_node<T>(t, 11, fastnn::StepNode::layernorm, k, in, dlogits);
    L.training = t[2].cast<bool>();
    const std::size_t n = L.out;
    L.eps = norm_eps<T>(t[10]);
    if (!t[4].is_none()) L.gamma = cptr<T>(vec_arg(t[4], dlogits, n, "gamma", false));
    if (!t[5].is_none()) L.beta = cptr<T>(vec_arg(t[5], dlogits, n, "beta", false));
    L.dx = matrix_buffer<T>(t[3], dlogits, n, "dx");
    L.xhat = matrix_buffer<T>(t[6], dlogits, n, "xhat");
    L.inv = vec_buffer<T>(t[7], dlogits, m_, "inv");
    L.dgamma = wptr<T>(vec_arg(t[8], dlogits, n, "dgamma", true));
    L.dbeta = wptr<T>(vec_arg(t[9], dlogits, n, "dbeta", true));
    return L;
  }

  // ("activity", y, l1, l2): ActivityRegularization, the identity: y is the layer below's
  // output buffer (the node reads it and writes no output); l1, l2 finite and >= 0.
  template <class T> fastnn::DenseStep<T> activity_node(fastnn::StepPlan<T>& P, py::tuple t, std::size_t k,
                                                         std::size_t in, const py::array& dlogits) {
    if (k == 0) throw py::value_error("layers: an ActivityRegularization first layer is not supported");
    fastnn::DenseStep<T> L = tagged_node<T>(t, 4, fastnn::StepNode::activity, k, in, dlogits);
    if (L.y != P.layers.back().y)
      throw py::value_error("y: an activity node's y must be the output buffer of the layer below");
    L.l1 = t[2].cast<double>();
    L.l2 = t[3].cast<double>();
    if (!(L.l1 >= 0 && std::isfinite(L.l1)) || !(L.l2 >= 0 && std::isfinite(L.l2)))
      throw py::value_error("l1, l2: expected finite values >= 0, got " + num(L.l1) + ", " + num(L.l2));
    L.seed_index = P.activity.size();
    P.activity.push_back(0.0);
    return L;
  }

  // A written m x width buffer, kept for the overlap checks of run.
  template <class T> T* matrix_buffer(py::handle h, const py::array& dlogits, std::size_t width, const char* name) {
    py::array a = array_arg(h, dlogits, name, true);
    require_matrix(a, m_, width, name);
    written_.push_back(a);
    return mptr<T>(a);
  }
  template <class T> T* vec_buffer(py::handle h, const py::array& dlogits, std::size_t n, const char* name) {
    py::array a = vec_arg(h, dlogits, n, name, true);
    written_.push_back(a);
    return mptr<T>(a);
  }

  // Sample weights (or None: an empty array): `rows` values of the model's dtype; none with "mae".
  py::array weights_arg(const py::object& o, const char* name, std::size_t rows) const {
    if (o.is_none()) return py::array(dlogits_.dtype(), std::vector<py::ssize_t>{0});
    if (loss_ == fastnn::StepLoss::mae || loss_ == fastnn::StepLoss::huber)
      throw py::value_error(std::string(name) + ": the '" + (loss_ == fastnn::StepLoss::mae ? "mae" : "huber") +
                            "' loss takes no sample weights, got an array");
    py::array a = fastnn_py::array_arg(o, name);
    check_in(a, dlogits_, name, "the model's buffers");
    require_vector(a, rows, name);
    return a;
  }

  // Labels as the loss takes them, `rows` of them: int64 class ids (xent_ids), else rows
  // like the output in the model's dtype.
  void check_labels(const py::array& a, std::size_t rows, const char* name) const {
    if (loss_ == fastnn::StepLoss::xent_ids) {
      require_dtype(a, py::dtype::of<std::int64_t>(), name);
      require_vector(a, rows, name);
    } else {
      check_in(a, dlogits_, name, "the model's buffers");
      require_matrix(a, rows, out_, name);
    }
  }

  // A frozen BatchNormalization divides by sqrt(running_var + eps): refused, as by
  // ops.batchnorm_forward, when a variance is negative (checked before anything is written).
  void check_frozen_stats() const {
    for (const py::array& v : frozen_vars_) {
      const bool negative = visit_float(dt_, [&](auto t) {
        using T = decltype(t);
        const T* p = cptr<T>(v);
        for (std::size_t i = 0, n = v.size(); i < n; ++i)
          if (p[i] < T(0)) return true;
        return false;
      });
      if (negative) throw py::value_error("running_var: expected non-negative variances, got a negative value");
    }
  }

  // Every array of the plan (read or written) is kept in plan_arrays_: run_batches' outputs
  // must not overlap any of them (a batch gathered into a weight would change the model).
  py::array array_arg(py::handle h, const py::array& like, const char* name, bool write) {
    py::array a = h.cast<py::array>();
    check_in(a, like, name, "dlogits");
    if (write) require_writeable(a, name);
    plan_arrays_.push_back(a);
    return a;
  }
  py::array vec_arg(py::handle h, const py::array& like, std::size_t n, const char* name, bool write) {
    py::array a = array_arg(h, like, name, write);
    require_size(a, n, name);
    return a;
  }

  DType dt_ = DType::f32;
  fastnn::StepLoss loss_ = fastnn::StepLoss::mse;
  std::size_t m_ = 0, in0_ = 0, out_ = 0;
  py::list keep_;
  py::array dlogits_, seeds_, reg_coefs_;
  std::vector<py::array> clip_keep_, constraint_keep_;  // the arrays set_clip and set_constraints point into
  double penalty_ = 0.0;  // the last step's penalty (run)
  std::size_t n_seeds_ = 0;
  std::vector<py::array> written_;
  std::vector<py::array> plan_arrays_;  // every array the plan reads or writes (array_arg)
  std::vector<py::array> frozen_vars_;  // the running variances of the frozen BatchNormalization layers
  fastnn::StepPlan<float> pf_;
  fastnn::StepPlan<double> pd_;
};

}  // namespace

void bind_step(py::module_& m) {
  py::class_<NativeStep>(m, "NativeStep",
                         "A training step plan (Dense (float or mixed_bfloat16), Dropout, Activation, "
                         "BatchNormalization; fused loss; optimizer) run as one call.")
      .def(py::init<py::list, std::size_t, const std::string&, py::array, const std::string&, py::dict, py::list,
                    py::object, py::list, py::object>(),
           py::arg("layers"), py::arg("first"), py::arg("loss"), py::arg("dlogits"), py::arg("optimizer"),
           py::arg("hyper"), py::arg("ranges"), py::arg("seeds") = py::none(), py::arg("regs") = py::list(),
           py::arg("reg_coefs") = py::none())
      .def("run", &NativeStep::run, py::arg("x"), py::arg("labels"), py::arg("lr"), py::arg("step"),
           py::arg("weights") = py::none(),
           "One training step on (x, labels), the loss weighted by weights (m sample weights) when given; "
           "returns the loss.")
      .def("run_batches", &NativeStep::run_batches, py::arg("x"), py::arg("labels"), py::arg("index"), py::arg("lrs"),
           py::arg("step0"), py::arg("seeds"), py::arg("losses"), py::arg("xbuf"), py::arg("ybuf"),
           py::arg("outs") = py::none(), py::arg("penalties") = py::none(), py::arg("weights") = py::none(),
           py::arg("wbuf") = py::none(),
           "len(lrs) training steps on the batches index selects, gathered into xbuf and ybuf (and their "
           "sample weights into wbuf); their losses into losses.")
      .def("set_clip", &NativeStep::set_clip, py::arg("mode"), py::arg("value"), py::arg("groups"),
           "The gradient clipping run before every update: 'norm' (each group to its global norm) or 'value'.")
      .def("set_constraints", &NativeStep::set_constraints, py::arg("items"),
           "The weight constraints run after every update: (w, 'non_neg') or (w, rule, outer, r, inner, "
           "min_value, max_value, rate).")
      .def("set_nadam_product", &NativeStep::set_nadam_product, py::arg("k"), py::arg("product"),
           "Nadam: its running product (Nadam._u_product) before the next steps.")
      .def_property_readonly("nadam_product", &NativeStep::nadam_product,
                             "Nadam: (k, u_1 ... u_k), its running product after the last step, else None.")
      .def("set_ema_lr", &NativeStep::set_ema_lr, py::arg("lr"),
           "SGD(momentum_form='ema'): the last step's rate (SGD._ema_lr; 0 for none) before the next steps.")
      .def_property_readonly("ema_state", &NativeStep::ema_state,
                             "SGD(momentum_form='ema'): (last rate, last factor, steps run since set_ema_lr), "
                             "else None.")
      .def_property_readonly("batch_size", &NativeStep::batch_size)
      .def("set_huber_delta", &NativeStep::set_huber_delta, py::arg("delta"),
           "Huber's delta for the 'huber' loss (1.0 until set).")
      .def_property_readonly("activity_losses", &NativeStep::activity_losses,
                             "The ActivityRegularization nodes' penalties of the last step run, in chain order.")
      .def_property_readonly("penalty", &NativeStep::penalty, "The penalty of the last step run() ran (0 without "
                              "regularizers).");
}

}  // namespace fastnn_py
