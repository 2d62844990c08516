// Copyright toegang authors.
//
// big_endian.h: 64-bit numbers as 8 bytes, most significant first, so that byte order is
// number order (RocksDB keys, cursors).
#ifndef TOEGANG_BASE_BIG_ENDIAN_H_
#define TOEGANG_BASE_BIG_ENDIAN_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace toegang {

inline std::string BigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

// The number of the first 8 bytes of `s` (fewer: of those there are).
inline uint64_t ReadBigEndian64(absl::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

}  // namespace toegang

#endif  // TOEGANG_BASE_BIG_ENDIAN_H_
