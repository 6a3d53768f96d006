/* rules.inc.c -- every rule's loop and kernel, in the element access the includer
 * defined (combo.inc.c: plain loops over float or double arrays; vec.inc.c:
 * vectors converted in registers; combo.inc.c lists the names), which are
 * undefined after.  A new rule is one file and one line here. */
#include "ema.inc.c"
#include "rmsprop.inc.c"
#include "adam.inc.c"
#include "sgd.inc.c"
#undef VT
#undef VW
#undef BT
#undef LDP
#undef LDS
#undef STS
#undef LDPARAM
#undef STPARAM
#undef SQRT
#undef DIVC
#undef SEL
#undef MAXGT
#undef PRM_LOOP
#undef PRM_KERNEL
