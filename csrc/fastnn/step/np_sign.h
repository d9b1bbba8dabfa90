// NumPy's np.sign for a float, as the native step's elementwise NumPy arithmetic needs it
// (step/activity.cpp, losses_more.cpp, regularize.cpp, optim_more.cpp: Lion): 1, -1, +0 for either zero, NaN for NaN (the value
// itself). Without branches: signs that change from one value to the next (a relu's zeros and
// positives, differences around 0) would mispredict them.
#pragma once

namespace fastnn {

template <class T> inline T np_sign(T v) {
  const T s = static_cast<T>(v > T(0)) - static_cast<T>(v < T(0));
  return v == v ? s : v;
}

}  // namespace fastnn
