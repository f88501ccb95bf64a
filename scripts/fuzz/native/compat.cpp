// The Jazzer.js addon is written against a libFuzzer fork that adds a few entry points.
// Built against the system's upstream libFuzzer, these forward to the nearest upstream ones.
#include <cstdint>

extern "C" {
// Upstream libFuzzer (FuzzerTracePC.cpp).
void __sanitizer_cov_trace_const_cmp8(uint64_t arg1, uint64_t arg2);
void __sanitizer_cov_trace_pc_indir(uintptr_t callee);
// Defined by the addon (shared/sanitizer_symbols.cpp).
void __jazzer_set_death_callback(void (*callback)());

// The fork passes the comparison's site explicitly; upstream takes its caller's address,
// which here is always this function, so value-profile features lose the site. The
// comparison's operands still reach the table of recent compares that guides mutation.
void __sanitizer_cov_trace_const_cmp8_with_pc(uintptr_t, uint64_t arg1, uint64_t arg2) {
  __sanitizer_cov_trace_const_cmp8(arg1, arg2);
}

void __sanitizer_cov_trace_pc_indir_with_pc(void *, uintptr_t callee) { __sanitizer_cov_trace_pc_indir(callee); }

// Upstream FuzzerDriver hands its crash-reporting callback (write the crash- file, print
// final stats) to a sanitizer runtime through this hook; the addon calls it when the
// JavaScript target reports a finding.
void __sanitizer_set_death_callback(void (*callback)()) { __jazzer_set_death_callback(callback); }
}
