// Copyright toegang authors.
#include "model/bsn.h"

#include <atomic>

namespace toegang {
namespace {

std::atomic<uint64_t> g_redactions{0};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A number starting at `begin` (a digit): its digits, and where it ends. Digits may be
// separated by single spaces or dots; a separator not followed by a digit is not part
// of the number.
size_t NumberAt(absl::string_view text, size_t begin, std::string* digits) {
  digits->clear();
  size_t i = begin;
  size_t end = begin;
  while (i < text.size()) {
    if (IsDigit(text[i])) {
      digits->push_back(text[i]);
      end = ++i;
    } else if ((text[i] == ' ' || text[i] == '.') && i + 1 < text.size() && IsDigit(text[i + 1])) {
      ++i;
    } else {
      break;
    }
  }
  return end;
}

bool IsBsnNumber(absl::string_view digits) {
  // Leading zeros beyond nine digits hide nothing: "0111222333" is 111222333.
  while (digits.size() > 9 && digits[0] == '0') digits.remove_prefix(1);
  if (digits.size() == 9) return PassesElevenTest(digits);
  if (digits.size() == 8) return PassesElevenTest(std::string("0") + std::string(digits));
  return false;
}

}  // namespace

bool PassesElevenTest(absl::string_view d) {
  if (d.size() != 9) return false;
  int sum = 0;
  bool all_zero = true;
  for (int i = 0; i < 9; ++i) {
    if (!IsDigit(d[i])) return false;
    if (d[i] != '0') all_zero = false;
    const int weight = i < 8 ? 9 - i : -1;
    sum += weight * (d[i] - '0');
  }
  return !all_zero && sum % 11 == 0;
}

bool ContainsBsn(absl::string_view text) {
  std::string digits;
  for (size_t i = 0; i < text.size();) {
    if (!IsDigit(text[i]) || (i > 0 && IsDigit(text[i - 1]))) {
      ++i;
      continue;
    }
    const size_t end = NumberAt(text, i, &digits);
    if (IsBsnNumber(digits)) return true;
    i = end;
  }
  return false;
}

std::string RedactBsn(absl::string_view text) {
  std::string out;
  std::string digits;
  size_t copied = 0;
  for (size_t i = 0; i < text.size();) {
    if (!IsDigit(text[i]) || (i > 0 && IsDigit(text[i - 1]))) {
      ++i;
      continue;
    }
    const size_t end = NumberAt(text, i, &digits);
    if (IsBsnNumber(digits)) {
      out.append(text.data() + copied, i - copied);
      out.append("[bsn]");
      copied = end;
      g_redactions.fetch_add(1, std::memory_order_relaxed);
    }
    i = end;
  }
  if (copied == 0) return std::string(text);
  out.append(text.data() + copied, text.size() - copied);
  return out;
}

uint64_t BsnRedactions() { return g_redactions.load(std::memory_order_relaxed); }

}  // namespace toegang
