/* all.inc.c -- every kernel, for T = float (f32) and T = double (f64).
 * Included once by each csrc/targets/<target>.c, which defines PRM_TARGET. */
#include "../pyrmsprop.h"
#include "../prm_common.h"

#include <stdint.h>
#include <string.h>

#define T float
#define PRM_SFX f32
#define SQRT sqrtf
#define UT uint32_t
#define EXP_MASK ((uint32_t)0x7f800000u)
#define EXP_LSB ((uint32_t)0x00800000u)
#include "ema.inc.c"
#include "rmsprop.inc.c"
#include "adam.inc.c"
#include "sgd.inc.c"
#undef T
#undef PRM_SFX
#undef SQRT
#undef UT
#undef EXP_MASK
#undef EXP_LSB

#define T double
#define PRM_SFX f64
#define SQRT sqrt
#define UT uint64_t
#define EXP_MASK ((uint64_t)0x7ff0000000000000ull)
#define EXP_LSB ((uint64_t)0x0010000000000000ull)
#include "ema.inc.c"
#include "rmsprop.inc.c"
#include "adam.inc.c"
#include "sgd.inc.c"
#undef T
#undef PRM_SFX
#undef SQRT
#undef UT
#undef EXP_MASK
#undef EXP_LSB
