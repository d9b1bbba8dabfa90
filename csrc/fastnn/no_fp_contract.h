// Included first by a .cpp whose arithmetic must round as written (each product, then each
// sum, rounded to T, as NumPy computes it): contraction into a fused multiply-add would round
// once and differ, so it is switched off for the rest of the translation unit (besides, the
// baseline x86-64 flags such files are compiled with have no FMA instruction).
// Used by step/regularize.cpp and constrain/constrain.cpp.
#pragma once

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
