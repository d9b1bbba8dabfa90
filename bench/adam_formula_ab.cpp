// Adam's update formula A/B (session 9): exact sqrt + div, rcp14 + one Newton step, and no sqrt/div
// at all, on one thread's half of the notes' MLP (316,032 parameters), AVX-512, interleaved, 200
// rounds; with "evict" a 48 MB buffer is read between calls (as a training step evicts the state).
//   g++ -O2 -mavx512f -mavx512dq -mfma -o /tmp/adam_ab bench/adam_formula_ab.cpp
//   /tmp/adam_ab 316032; /tmp/adam_ab 316032 evict
// Prints the median and 10th percentile per variant. Not part of the build.
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cmath>
#include <algorithm>
struct C { float step_size, inv_sqrt_bc2, b1, omb1, b2, omb2, eps; };
// The step the three variants share: load p, update m and v (stored), then p = final(p, m, v).
template <class Final>
inline void adam_loop(float* P, const float* G, float* M, float* Vv, size_t n, C c, Final final) {
  const __m512 b1=_mm512_set1_ps(c.b1), o1=_mm512_set1_ps(c.omb1), b2=_mm512_set1_ps(c.b2), o2=_mm512_set1_ps(c.omb2);
  for (size_t i=0;i<n;i+=16){
    __m512 p=_mm512_loadu_ps(P+i), g=_mm512_loadu_ps(G+i);
    __m512 m=_mm512_fmadd_ps(b1,_mm512_loadu_ps(M+i),_mm512_mul_ps(o1,g));
    __m512 v=_mm512_fmadd_ps(b2,_mm512_loadu_ps(Vv+i),_mm512_mul_ps(_mm512_mul_ps(o2,g),g));
    _mm512_storeu_ps(M+i,m);_mm512_storeu_ps(Vv+i,v);_mm512_storeu_ps(P+i,final(p,m,v));
  }
}
// exact sqrt + div
__attribute__((noinline)) void adam_exact(float* P, const float* G, float* M, float* Vv, size_t n, C c) {
  const __m512 ss=_mm512_set1_ps(c.step_size), ib=_mm512_set1_ps(c.inv_sqrt_bc2), e=_mm512_set1_ps(c.eps);
  adam_loop(P, G, M, Vv, n, c, [&](__m512 p, __m512 m, __m512 v) {
    __m512 d=_mm512_fmadd_ps(_mm512_sqrt_ps(v),ib,e);
    return _mm512_sub_ps(p,_mm512_div_ps(_mm512_mul_ps(ss,m),d));
  });
}
// sqrt exact, division by rcp14 + Newton
__attribute__((noinline)) void adam_rcp(float* P, const float* G, float* M, float* Vv, size_t n, C c) {
  const __m512 ss=_mm512_set1_ps(c.step_size), ib=_mm512_set1_ps(c.inv_sqrt_bc2), e=_mm512_set1_ps(c.eps), two=_mm512_set1_ps(2.f);
  adam_loop(P, G, M, Vv, n, c, [&](__m512 p, __m512 m, __m512 v) {
    __m512 d=_mm512_fmadd_ps(_mm512_sqrt_ps(v),ib,e);
    __m512 r=_mm512_rcp14_ps(d); r=_mm512_mul_ps(r,_mm512_fnmadd_ps(d,r,two));
    return _mm512_fnmadd_ps(_mm512_mul_ps(ss,m),r,p);
  });
}
// no sqrt/div at all (bandwidth floor)
__attribute__((noinline)) void adam_bw(float* P, const float* G, float* M, float* Vv, size_t n, C c) {
  const __m512 ss=_mm512_set1_ps(c.step_size), ib=_mm512_set1_ps(c.inv_sqrt_bc2), e=_mm512_set1_ps(c.eps);
  adam_loop(P, G, M, Vv, n, c, [&](__m512 p, __m512 m, __m512 v) {
    return _mm512_fnmadd_ps(_mm512_mul_ps(ss,m),_mm512_fmadd_ps(v,ib,e),p);
  });
}
int main(int argc,char**argv){
  size_t n = argc>1? atol(argv[1]) : 632064/2; n = n/16*16;
  std::vector<float> P(n,1.f),G(n,1e-3f),M(n,1e-4f),V(n,1e-6f);
  // evict: a 48 MB buffer touched between calls to mimic a training step's traffic
  std::vector<float> junk(12u<<20, 1.f);
  C c{1e-9f,1.f,0.9f,0.1f,0.999f,0.001f,1e-7f};
  typedef void(*F)(float*,const float*,float*,float*,size_t,C);
  F fs[3]={adam_exact,adam_rcp,adam_bw}; const char* nm[3]={"exact","rcp","bw"};
  std::vector<double> t[3];
  for(int r=0;r<200;r++) for(int k=0;k<3;k++){
    if (argc>2) { float s=0; for(size_t j=0;j<junk.size();j+=16) s+=junk[j]; if(s==42)puts(""); }
    auto a=std::chrono::steady_clock::now(); fs[k](P.data(),G.data(),M.data(),V.data(),n,c);
    t[k].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now()-a).count());
  }
  for(int k=0;k<3;k++){ std::sort(t[k].begin(),t[k].end()); printf("%s median %.1f us p10 %.1f us\n",nm[k],t[k][100]*1e6,t[k][20]*1e6);}
}
