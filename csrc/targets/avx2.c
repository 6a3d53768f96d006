/* The kernels compiled for the 'avx2' target (flags: setup.py's target table). */
#define PRM_TARGET avx2
#include "../kernels/all.inc.c"
