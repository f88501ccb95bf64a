// The two declarations the Jazzer.js addon takes from libFuzzer's internal header, which
// the system's compiler-rt package does not ship. They match libFuzzer's FuzzerDefs.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fuzzer {
typedef int (*UserCallback)(const uint8_t *Data, size_t Size);
int FuzzerDriver(int *argc, char ***argv, UserCallback Callback);
} // namespace fuzzer
