// Copyright toegang authors.
//
// aligned.h: FlatBuffers read scalars in place and need them 8-byte aligned; bytes
// from a store or a socket come at any address. AlignedBytes views them where they
// are when aligned, and copies them otherwise (into `scratch` when given, so that a hot
// path reuses one buffer):
//
//   AlignedBytes in(bytes);
//   flatbuffers::Verifier v(in.data(), in.size());
//
// REQUIRES: `bytes` (and `scratch`) outlive the AlignedBytes. Thread-compatible.
#ifndef TOEGANG_SCHEMAS_ALIGNED_H_
#define TOEGANG_SCHEMAS_ALIGNED_H_

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/string_view.h"

namespace toegang {

class AlignedBytes {
 public:
  explicit AlignedBytes(absl::string_view bytes, std::vector<uint64_t>* scratch = nullptr) : size_(bytes.size()) {
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(uint64_t) == 0) {
      data_ = reinterpret_cast<const uint8_t*>(bytes.data());
      return;
    }
    std::vector<uint64_t>& copy = scratch != nullptr ? *scratch : own_;
    copy.resize(bytes.size() / sizeof(uint64_t) + 1);
    std::memcpy(copy.data(), bytes.data(), bytes.size());
    data_ = reinterpret_cast<const uint8_t*>(copy.data());
  }
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::vector<uint64_t> own_;
  const uint8_t* data_ = nullptr;
  size_t size_;
};

}  // namespace toegang

#endif  // TOEGANG_SCHEMAS_ALIGNED_H_
