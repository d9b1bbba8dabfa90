// The native step's gradient clipping and weight constraints (step.h, StepClip and
// StepConstraint): Optimizer.apply's clipping before the update and trainer.apply_constraints
// after it, calling the kernels the Python step calls (ops.clip_by_global_norm,
// ops.clip_by_value; ops.norm_constraint, ops.non_neg), in its order: bitwise the same.
#include "fastnn/step/step.h"

namespace fastnn {

template <class T> void clip_gradients(const StepPlan<T>& plan) {
  const StepClip<T>& c = plan.clip;
  if (c.mode == StepClipMode::norm) {
    for (const std::vector<GradView>& group : c.groups) clip_by_global_norm(group, c.value);
  } else if (c.mode == StepClipMode::value) {
    for (const std::vector<GradView>& group : c.groups)
      for (const GradView& g : group) clip_by_value<T>(static_cast<T*>(g.data), g.n, c.value);
  }
}

template <class T> void apply_constraints(const StepPlan<T>& plan) {
  for (const StepConstraint<T>& c : plan.constraints) {
    if (c.non_neg) non_neg<T>(c.w, c.n);
    else norm_constrain<T>(c.w, c.norm);
  }
}

template void clip_gradients<float>(const StepPlan<float>&);
template void clip_gradients<double>(const StepPlan<double>&);
template void apply_constraints<float>(const StepPlan<float>&);
template void apply_constraints<double>(const StepPlan<double>&);

}  // namespace fastnn
