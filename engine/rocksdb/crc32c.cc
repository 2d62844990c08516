// Copyright toegang authors.
#include "engine/rocksdb/crc32c.h"

#include <dlfcn.h>
#include <link.h>

#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace toegang::rocksdb_checksum {
namespace {

// rocksdb::crc32c::Extend(unsigned int, char const*, unsigned long).
constexpr char kExtendSymbol[] = "_ZN7rocksdb6crc32c6ExtendEjPKcm";

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendWithInstruction(uint32_t crc, const char* data, size_t n) {
  uint64_t l = crc ^ 0xffffffffu;
  const char* p = data;
  const char* const end = data + n;
  for (; end - p >= 8; p += 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof word);
    l = _mm_crc32_u64(l, word);
  }
  uint32_t c = static_cast<uint32_t>(l);
  for (; p < end; ++p) c = _mm_crc32_u8(c, static_cast<uint8_t>(*p));
  return c ^ 0xffffffffu;
}

bool CpuHasCrc32Instruction() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}
#endif

// Only when neither the instruction nor the library's own function can be had: a bit
// at a time, the definition itself.
uint32_t ExtendBitwise(uint32_t crc, const char* data, size_t n) {
  uint32_t c = crc ^ 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<uint8_t>(data[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

Crc32cFunction FindLibraryCrc32c() {
  std::string path;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "/librocksdb.so") != nullptr) {
          *static_cast<std::string*>(out) = info->dlpi_name;
          return 1;
        }
        return 0;
      },
      &path);
  if (path.empty()) return nullptr;
  // Already loaded: RTLD_NOLOAD only hands out a reference, which is kept for the
  // program's life like the library itself.
  void* library = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (library == nullptr) return nullptr;
  return reinterpret_cast<Crc32cFunction>(dlsym(library, kExtendSymbol));
}

Crc32cFunction Chosen() {
#if defined(__x86_64__)
  if (Crc32cUsesCpuInstruction()) return ExtendWithInstruction;
#endif
  if (Crc32cFunction library = LibraryCrc32c()) return library;
  return ExtendBitwise;
}

}  // namespace

Crc32cFunction LibraryCrc32c() {
  static const Crc32cFunction library = FindLibraryCrc32c();
  return library;
}

uint32_t Crc32cExtend(uint32_t crc, const char* data, size_t n) {
  static const Crc32cFunction chosen = Chosen();
  return chosen(crc, data, n);
}

bool Crc32cUsesCpuInstruction() {
#if defined(__x86_64__)
  static const bool cpu = CpuHasCrc32Instruction();
  return cpu;
#else
  return false;
#endif
}

bool LibraryUsesCrc32cExtend() {
  void* bound = dlsym(RTLD_DEFAULT, kExtendSymbol);
  Dl_info bound_in, ours_in;
  if (bound == nullptr || bound == reinterpret_cast<void*>(LibraryCrc32c())) return false;
  if (dladdr(bound, &bound_in) == 0 || dladdr(reinterpret_cast<void*>(&Crc32cExtend), &ours_in) == 0) return false;
  return bound_in.dli_fbase == ours_in.dli_fbase;
}

}  // namespace toegang::rocksdb_checksum

// The library's own declaration (util/crc32c.h, not among its installed headers). Its
// calls bind here; see crc32c.h.
namespace rocksdb::crc32c {
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);
uint32_t Extend(uint32_t init_crc, const char* data, size_t n) {
  return toegang::rocksdb_checksum::Crc32cExtend(init_crc, data, n);
}
}  // namespace rocksdb::crc32c
