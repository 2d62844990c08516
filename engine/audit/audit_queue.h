// Copyright toegang authors.
//
// audit_queue.h (internal): the access log's queue. The thread that decided encodes its
// record's stored body — audit_record.h's AuditRecord FlatBuffer — before it takes the
// log's lock, and under the lock copies it into the queue and writes the record's
// number into it. The writer then only stamps the time of writing, chains and stores:
// the encoding runs on the deciding threads, side by side, rather than on the one
// thread that must chain the records in order (bench/RESULTS.md, "The access log's
// records encoded by the deciding threads").
//
// An entry is the body's size (8 bytes, host order), then the body, padded to a
// multiple of 8 so that every body stays aligned for the FlatBuffers accessors.
#ifndef TOEGANG_ENGINE_AUDIT_AUDIT_QUEUE_H_
#define TOEGANG_ENGINE_AUDIT_AUDIT_QUEUE_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/audit/audit_record.h"

namespace toegang::audit_internal {

inline constexpr size_t kQueueAlign = 8;

inline size_t QueuedSize(size_t body) { return sizeof(uint64_t) + (body + kQueueAlign - 1) / kQueueAlign * kQueueAlign; }

// Appends `body` (PrepareBody's) to `out` as an entry, its number still open.
inline void StageBody(std::string* out, absl::string_view body) {
  const uint64_t size = body.size();
  out->append(reinterpret_cast<const char*>(&size), sizeof size);
  out->append(body.data(), body.size());
  out->append(QueuedSize(body.size()) - sizeof size - body.size(), '\0');
}

// Appends `body` to the queue `out` as record `seq`. False when it is no body
// PrepareBody made (a bug in toegang); `out` is then as it was.
inline bool QueueBody(std::string* out, absl::string_view body, uint64_t seq) {
  const size_t at = out->size();
  StageBody(out, body);
  if (SetBodySeq(&(*out)[at + sizeof(uint64_t)], seq)) return true;
  out->resize(at);
  return false;
}

// Reads the bodies of a queue, or of staged entries, in order.
class QueueReader {
 public:
  // REQUIRES: `bytes` holds whole entries and outlives the reader.
  explicit QueueReader(std::string* bytes) : at_(bytes->data()), end_(bytes->data() + bytes->size()) {}
  // The next body, in place: the writer stamps it there. False at the end, or when what
  // follows is no whole entry (a bug, never a read out of bounds).
  bool Next(absl::Span<char>* body) {
    uint64_t size = 0;
    const size_t left = static_cast<size_t>(end_ - at_);
    if (left < sizeof size) return false;
    std::memcpy(&size, at_, sizeof size);
    if (size > left || QueuedSize(size) > left) return false;
    *body = absl::Span<char>(at_ + sizeof size, size);
    at_ += QueuedSize(size);
    return true;
  }

 private:
  char* at_;
  char* const end_;
};

}  // namespace toegang::audit_internal

#endif  // TOEGANG_ENGINE_AUDIT_AUDIT_QUEUE_H_
