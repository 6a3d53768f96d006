/* all.inc.c -- every kernel, for T = float (f32) and T = double (f64).
 * Included once by each csrc/targets/<target>.c, which defines PRM_TARGET. */
#include "../pyrmsprop.h"
#include "../prm_common.h"

#define T float
#define PRM_SFX f32
#define SQRT sqrtf
#include "ema.inc.c"
#include "rmsprop.inc.c"
#include "adam.inc.c"
#include "sgd.inc.c"
#undef T
#undef PRM_SFX
#undef SQRT

#define T double
#define PRM_SFX f64
#define SQRT sqrt
#include "ema.inc.c"
#include "rmsprop.inc.c"
#include "adam.inc.c"
#include "sgd.inc.c"
#undef T
#undef PRM_SFX
#undef SQRT
