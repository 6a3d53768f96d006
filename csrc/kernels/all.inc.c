/* all.inc.c -- every kernel: each rule for each storage combination of
 * prm_dispatch.h's PRM_COMBOS (combo.inc.c), the finite check for each storage
 * type, and this target's table of them.  Included once by each
 * csrc/targets/<target>.c, which defines PRM_TARGET. */
#include "../pyrmsprop.h"
#include "../prm_common.h"
#include "../prm_dispatch.h"
#include "../prm_storage.h"
#include "../prm_q8.h"

#include <stdint.h>
#include <string.h>

/* Each line: PRM_P, PRM_S, PRM_M of one entry of PRM_COMBOS, in any order (a
 * missing one is a link error: the table below names it). */
#define PRM_P f32
#define PRM_S f32
#define PRM_M none
#include "combo.inc.c"
#define PRM_P f64
#define PRM_S f64
#define PRM_M none
#include "combo.inc.c"
#define PRM_P f32
#define PRM_S bf16
#define PRM_M none
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S bf16
#define PRM_M none
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S bf16
#define PRM_M fp32
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S bf16
#define PRM_M split
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S bf16
#define PRM_M kahan
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S bf16
#define PRM_M sr
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S f32
#define PRM_M none
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S f32
#define PRM_M fp32
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S f32
#define PRM_M split
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S f32
#define PRM_M kahan
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S f32
#define PRM_M sr
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S f16
#define PRM_M none
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S f16
#define PRM_M fp32
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S f16
#define PRM_M kahan
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S f16
#define PRM_M sr
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S f32
#define PRM_M none
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S f32
#define PRM_M fp32
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S f32
#define PRM_M kahan
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S f32
#define PRM_M sr
#include "combo.inc.c"

#define PRM_P f32
#define PRM_S q8
#define PRM_M none
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S q8
#define PRM_M none
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S q8
#define PRM_M fp32
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S q8
#define PRM_M split
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S q8
#define PRM_M kahan
#include "combo.inc.c"
#define PRM_P bf16
#define PRM_S q8
#define PRM_M sr
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S q8
#define PRM_M none
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S q8
#define PRM_M fp32
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S q8
#define PRM_M kahan
#include "combo.inc.c"
#define PRM_P f16
#define PRM_S q8
#define PRM_M sr
#include "combo.inc.c"

#define PRM_SFX f32
#define UT uint32_t
#define EXP_MASK 0x7f800000u
#define EXP_LSB 0x00800000u
#include "nonfinite.inc.c"
#undef PRM_SFX
#undef UT
#undef EXP_MASK
#undef EXP_LSB
#define PRM_SFX f64
#define UT uint64_t
#define EXP_MASK 0x7ff0000000000000ull
#define EXP_LSB 0x0010000000000000ull
#include "nonfinite.inc.c"
#undef PRM_SFX
#undef UT
#undef EXP_MASK
#undef EXP_LSB
#define PRM_SFX bf16
#define UT uint16_t
#define EXP_MASK 0x7f80u
#define EXP_LSB 0x0080u
#include "nonfinite.inc.c"
#undef PRM_SFX
#undef UT
#undef EXP_MASK
#undef EXP_LSB
#define PRM_SFX f16
#define UT uint16_t
#define EXP_MASK 0x7c00u
#define EXP_LSB 0x0400u
#include "nonfinite.inc.c"
#undef PRM_SFX
#undef UT
#undef EXP_MASK
#undef EXP_LSB

/* ---- this target's table ------------------------------------------------------- */
#define PRM_ENTRY(rule, P, S, M) PRM_CAT(prm_##rule##_##P##_##S##_##M##_, PRM_TARGET),
#define PRM_ROW(rule) {PRM_COMBOS(PRM_ENTRY, rule)},
#define PRM_NONFINITE(SFX) PRM_CAT(prm_nonfinite_##SFX##_, PRM_TARGET),
const prm_kernel_table PRM_CAT(prm_table_, PRM_TARGET) = {
    {PRM_RULES(PRM_ROW)},
    {PRM_STORAGES(PRM_NONFINITE)},
};
#undef PRM_ENTRY
#undef PRM_ROW
#undef PRM_NONFINITE
