/* The kernels compiled for the 'avx512' target (flags: setup.py's target table). */
#define PRM_TARGET avx512
#include "../kernels/all.inc.c"
