// Copyright toegang authors.
#include "policy/explain.h"

#include "absl/strings/str_cat.h"
#include "model/json.h"
#include "model/time.h"

namespace toegang {
namespace {

// Written by hand, like DecisionToJson: a tree of nlohmann::json for a few dozen rules
// cost 50 µs, eighty times the decision (bench/RESULTS.md, "Explain").
void AppendInstantOrNull(std::string* out, absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) {
    out->append("null");
  } else {
    AppendJsonString(out, FormatInstant(t));
  }
}

// A string known to need no escaping: the pack's names (rule ids, predicates, reasons,
// parameters and their values are all checked words) and this file's own.
void AppendWord(std::string* out, absl::string_view word) {
  out->push_back('"');
  out->append(word.data(), word.size());
  out->push_back('"');
}

void AppendMember(std::string* out, absl::string_view key, absl::string_view word) {
  out->append(",\"", 2);
  out->append(key.data(), key.size());
  out->append("\":", 2);
  AppendWord(out, word);
}

void AppendCited(std::string* out, const CitedFact& f) {
  out->append("{\"type\":");
  AppendWord(out, f.type);
  // Ids are the caller's: escaped.
  if (!f.id.empty()) {
    out->append(",\"id\":");
    AppendJsonString(out, f.id);
  }
  if (f.relation) {
    out->append(",\"subject\":");
    AppendJsonString(out, f.subject);
    AppendMember(out, "relation", Name(*f.relation));
    out->append(",\"object\":");
    AppendJsonString(out, f.object);
  }
  if (f.death_date) AppendMember(out, "death_date", FormatCivilDate(*f.death_date));
  if (f.type != "person") {
    out->append(",\"from\":");
    AppendInstantOrNull(out, f.window.from);
    out->append(",\"until\":");
    AppendInstantOrNull(out, f.window.until);
  }
  out->push_back('}');
}

}  // namespace

const char* OutcomeName(RuleTrace::Outcome outcome) {
  switch (outcome) {
    case RuleTrace::Outcome::kOff:
      return "off";
    case RuleTrace::Outcome::kNoMatch:
      return "no_match";
    case RuleTrace::Outcome::kNotApplicable:
      return "not_applicable";
    case RuleTrace::Outcome::kFailed:
      return "failed";
    case RuleTrace::Outcome::kNotFired:
      return "not_fired";
    case RuleTrace::Outcome::kFired:
      return "fired";
    case RuleTrace::Outcome::kPermitted:
      return "permitted";
    case RuleTrace::Outcome::kNotReached:
      return "not_reached";
  }
  return "not_reached";
}

std::string ExplanationJson(const Policy& policy, const Decision& decision, const Explanation& explanation) {
  std::string out;
  out.reserve(96 * explanation.rules.size() + 512);
  out.append("{\"policy\":");
  AppendWord(&out, policy.id());
  out.append(",\"parameters\":{");
  bool first = true;
  for (const auto& [name, value] : policy.parameters()) {
    if (!first) out.push_back(',');
    first = false;
    AppendWord(&out, name);
    out.push_back(':');
    AppendWord(&out, value);
  }
  out.append("},\"age_band\":");
  if (decision.age_band) {
    AppendWord(&out, Name(*decision.age_band));
  } else {
    out.append("null");
  }
  out.append(",\"rules\":[");
  for (size_t i = 0; i < explanation.rules.size(); ++i) {
    const RuleTrace& r = explanation.rules[i];
    if (i > 0) out.push_back(',');
    out.append("{\"rule\":");
    AppendWord(&out, r.rule);
    AppendMember(&out, "effect", r.effect == Effect::kPermit ? "permit" : "forbid");
    AppendMember(&out, "outcome", OutcomeName(r.outcome));
    if (!r.because.empty()) AppendMember(&out, "because", r.because);
    if (!r.permitted_by.empty()) AppendMember(&out, "permitted_by", r.permitted_by);
    out.push_back('}');
  }
  out.append("],\"predicates\":[");
  for (size_t i = 0; i < explanation.predicates.size(); ++i) {
    const PredicateTrace& p = explanation.predicates[i];
    if (i > 0) out.push_back(',');
    out.append("{\"predicate\":");
    AppendWord(&out, p.predicate);
    out.append(p.holds ? ",\"holds\":true,\"facts\":[" : ",\"holds\":false,\"facts\":[");
    for (size_t k = 0; k < p.facts.size(); ++k) {
      if (k > 0) out.push_back(',');
      AppendCited(&out, p.facts[k]);
    }
    out.append("]}");
  }
  out.append("]}");
  return out;
}

std::string WithExplanation(absl::string_view decision_json, absl::string_view explanation_json) {
  std::string out(decision_json);
  if (out.empty() || out.back() != '}') return out;  // not an object: nothing to add to
  out.pop_back();
  absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"explanation\":", explanation_json, "}");
  return out;
}

}  // namespace toegang
