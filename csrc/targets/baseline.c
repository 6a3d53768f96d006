/* The kernels compiled for the 'baseline' target (flags: setup.py's target table). */
#define PRM_TARGET baseline
#include "../kernels/all.inc.c"
