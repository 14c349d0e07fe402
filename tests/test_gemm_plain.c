/* The GEMM tests again, with the plain-C micro-kernel that compilers without
   vector extensions get (MR__GEMM_FORCE_PLAIN). */
#define MR__GEMM_FORCE_PLAIN
#include "test_gemm.c"
