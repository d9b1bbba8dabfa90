// The checks of a norm constraint's arguments, shared by ops (constrain.cpp) and the
// native step's constraints (step.cpp).
#pragma once

#include <cstddef>
#include <string>

#include "fastnn/constrain/constrain.h"

namespace fastnn_py {

// rule: "max_norm", "unit_norm" or "min_max_norm"; a variable of `size` values viewed as
// (outer, r, inner); max_value finite > 0 (max_norm, min_max_norm), min_value finite in
// [0, max_value] and rate finite in [0, 1] (min_max_norm). Throws ValueError naming the argument.
fastnn::NormConstraint norm_constraint_args(const std::string& rule, std::size_t outer, std::size_t r,
                                            std::size_t inner, double min_value, double max_value, double rate,
                                            std::size_t size);

}  // namespace fastnn_py
