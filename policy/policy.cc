// Copyright toegang authors.
//
// The pack compiler and checker: text -> rules (with line numbers) -> analyses ->
// an immutable, indexed Policy.
#include "policy/policy.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "policy/internal/rules.h"

namespace toegang {

using policy_internal::CompiledRule;
using policy_internal::Predicate;

namespace policy_internal {
namespace {
#define TOEGANG_PREDICATE_ROW_(Enumerator, name, reason) {Predicate::Enumerator, name, Reason::reason},
struct PredicateRow {
  Predicate predicate;
  absl::string_view name;
  Reason failure;
};
constexpr PredicateRow kPredicates[] = {TOEGANG_PREDICATES(TOEGANG_PREDICATE_ROW_)};
#undef TOEGANG_PREDICATE_ROW_
}  // namespace

absl::string_view PredicateName(Predicate p) { return kPredicates[static_cast<int>(p)].name; }
Reason PredicateFailureReason(Predicate p) { return kPredicates[static_cast<int>(p)].failure; }
bool ParsePredicate(absl::string_view name, Predicate* out) {
  for (const PredicateRow& row : kPredicates) {
    if (row.name == name) {
      *out = row.predicate;
      return true;
    }
  }
  return false;
}
}  // namespace policy_internal

namespace {

constexpr int kMaxExtendsDepth = 4;
constexpr size_t kMaxPackBytes = 1 << 20;
constexpr size_t kMaxRules = 4096;

using Severity = PolicyDiagnostic::Severity;

struct Pack {
  std::string name;
  int version = 0;
  std::string extends;
  std::map<std::string, std::pair<std::string, int>> params;  // name -> (value, line)
  std::map<std::string, std::pair<CategorySet, int>> data_categories;  // code -> (categories, line)
  std::vector<CompiledRule> rules;
  std::vector<std::string> only_if_param;  // per rule: "param=value" or empty
  std::vector<int> only_if_line;
  std::vector<std::vector<std::pair<std::string, int>>> permitted_by_names;
};

class Diagnostics {
 public:
  void Error(int line, std::string message) { Add(Severity::kError, line, std::move(message)); }
  void Warning(int line, std::string message) { Add(Severity::kWarning, line, std::move(message)); }
  void Note(int line, std::string message) { Add(Severity::kNote, line, std::move(message)); }
  bool has_errors() const {
    return std::any_of(items_.begin(), items_.end(),
                       [](const PolicyDiagnostic& d) { return d.severity == Severity::kError; });
  }
  bool has_errors_or_warnings() const {
    return std::any_of(items_.begin(), items_.end(),
                       [](const PolicyDiagnostic& d) { return d.severity != Severity::kNote; });
  }
  std::vector<PolicyDiagnostic> Take() {
    std::stable_sort(items_.begin(), items_.end(),
                     [](const PolicyDiagnostic& a, const PolicyDiagnostic& b) { return a.line < b.line; });
    return std::move(items_);
  }

 private:
  void Add(Severity s, int line, std::string message) {
    if (items_.size() < 1000) items_.push_back({s, line, std::move(message)});
  }
  std::vector<PolicyDiagnostic> items_;
};

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

// Parses "[not] v1 v2 ..." into a set; `aliases` maps extra words to sets.
template <typename E>
bool ParseSetLine(const std::vector<absl::string_view>& words, absl::string_view kind, int line,
                  Diagnostics& diag, EnumSet<E>* out) {
  size_t i = 1;
  bool negate = false;
  if (i < words.size() && words[i] == "not") {
    negate = true;
    ++i;
  }
  if (i >= words.size()) {
    diag.Error(line, absl::StrCat("'", words[0], "' needs at least one ", kind));
    return false;
  }
  EnumSet<E> set;
  bool ok = true;
  for (; i < words.size(); ++i) {
    if constexpr (std::is_same_v<E, Category>) {
      if (words[i] == "clinical") {
        set = set.Union(ClinicalCategories());
        continue;
      }
    }
    E v;
    if (!ParseName(words[i], &v)) {
      diag.Error(line, absl::StrCat("unknown ", kind, " '", words[i], "'"));
      ok = false;
      continue;
    }
    set.Insert(v);
  }
  *out = negate ? EnumSet<E>::All().Minus(set) : set;
  return ok;
}

// One parameter a pack may set: its DOMAIN rule, its values (the first is the default;
// none: a whole number of days 0..365, default 0), and the PolicyParams field it sets
// (null: only the pack's rules read it, through only_if).
// A parameter takes one of `values` (the first is the default), or, with none, a whole
// number from `min` to `max` of `unit` (the default `fallback`).
struct Number {
  int min = 0;
  int max = 365;
  absl::string_view unit = "days";
  absl::string_view fallback = "0";
};

struct ParamSpec {
  absl::string_view name;
  absl::string_view rule;
  std::vector<absl::string_view> values;
  void (*apply)(absl::string_view value, PolicyParams* p);
  Number number = {};
  absl::string_view Default() const { return values.empty() ? number.fallback : values[0]; }
};

// Every parameter, once. README "Policy packs" and the packs' headers list them.
const std::vector<ParamSpec>& ParamSpecs() {
  using P = PolicyParams;
  static const auto* specs = new std::vector<ParamSpec>{
      {"leap_day_rule", "D4", {"march_1", "feb_28"},
       [](absl::string_view v, P* p) { p->leap_day_rule = v == "feb_28" ? LeapDayRule::kFeb28 : LeapDayRule::kMarch1; }},
      {"child_under_12_self_access", "D8", {"none", "with_parent"}, nullptr},
      {"consent_12_to_15", "D20", {"child_and_parent", "child_only"},
       [](absl::string_view v, P* p) {
         p->consent_12_to_15 = v == "child_only" ? P::Consent12To15::kChildOnly : P::Consent12To15::kChildAndParent;
       }},
      {"parent_consent_at_16", "D20", {"require_reconfirmation", "continue"},
       [](absl::string_view v, P* p) {
         p->parent_consent_at_16 =
             v == "continue" ? P::ParentConsentAt16::kContinue : P::ParentConsentAt16::kRequireReconfirmation;
       }},
      {"emergency_overrides_objection", "D15", {"false", "true"}, nullptr},
      {"research_deidentification", "D23", {"pseudonymize", "anonymize"},
       [](absl::string_view v, P* p) {
         p->research_deidentification = v == "anonymize" ? Obligation::kAnonymize : Obligation::kPseudonymize;
       }},
      {"treatment_grace_days", "D12", {},
       [](absl::string_view v, P* p) { (void)absl::SimpleAtoi(v, &p->treatment_grace_days); }},
      {"mitz_grantor", "D20", {"satisfies_d20", "as_patient"},
       [](absl::string_view v, P* p) {
         p->mitz_grantor = v == "as_patient" ? P::MitzGrantor::kAsPatient : P::MitzGrantor::kSatisfiesD20;
       }},
      // The law's terms are minimums: a pack may keep longer, never shorter.
      {"retention_dossier_years", "D60", {},
       [](absl::string_view v, P* p) { (void)absl::SimpleAtoi(v, &p->retention_dossier_years); },
       {20, 115, "years", "20"}},
      {"retention_access_log_years", "D51", {},
       [](absl::string_view v, P* p) { (void)absl::SimpleAtoi(v, &p->retention_access_log_years); },
       {5, 115, "years", "5"}},
      {"retention_financial_years", "D60", {},
       [](absl::string_view v, P* p) { (void)absl::SimpleAtoi(v, &p->retention_financial_years); },
       {7, 115, "years", "7"}},
  };
  return *specs;
}

const ParamSpec* FindParam(absl::string_view name) {
  for (const ParamSpec& p : ParamSpecs()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

// Checks a parameter value; returns an error message or "".
std::string CheckParamValue(const ParamSpec& spec, absl::string_view value) {
  if (spec.values.empty()) {
    int n;
    if (!absl::SimpleAtoi(value, &n) || n < spec.number.min || n > spec.number.max) {
      return absl::StrCat("parameter ", spec.name, " is a whole number of ", spec.number.unit, " ", spec.number.min,
                          "..", spec.number.max, ", not '", value, "' (DOMAIN ", spec.rule, ")");
    }
    return "";
  }
  for (absl::string_view v : spec.values) {
    if (v == value) return "";
  }
  return absl::StrCat("parameter ", spec.name, " is one of ", absl::StrJoin(spec.values, " | "), ", not '", value,
                      "' (DOMAIN ", spec.rule, ")");
}

using Words = std::vector<absl::string_view>;

// A `param NAME VALUE` or `only_if NAME VALUE`: the parameter's spec when the name is
// known and the value one it takes; null after saying what is wrong.
const ParamSpec* CheckedParam(const Words& w, int line, Diagnostics& diag) {
  const ParamSpec* spec = FindParam(w[1]);
  if (spec == nullptr) {
    diag.Error(line, absl::StrCat("unknown parameter '", w[1], "'"));
    return nullptr;
  }
  std::string err = CheckParamValue(*spec, w[2]);
  if (!err.empty()) {
    diag.Error(line, err);
    return nullptr;
  }
  return spec;
}

// `when`, `require` and `unless` name predicates.
void ParsePredicates(const Words& w, int line, Diagnostics& diag, absl::InlinedVector<Predicate, 4>* out) {
  if (w.size() < 2) {
    diag.Error(line, absl::StrCat("'", w[0], "' needs a value"));
    return;
  }
  for (size_t i = 1; i < w.size(); ++i) {
    Predicate p;
    if (!policy_internal::ParsePredicate(w[i], &p)) {
      diag.Error(line, absl::StrCat("unknown predicate '", w[i], "'"));
      continue;
    }
    out->push_back(p);
  }
}

// A rule's target: whom and what it is about. False when `w` is no target line.
bool ParseTargetLine(const Words& w, int line, Diagnostics& diag, CompiledRule& rule) {
  const absl::string_view key = w[0];
  if (key == "role") {
    ParseSetLine(w, "role", line, diag, &rule.roles);
  } else if (key == "purpose") {
    ParseSetLine(w, "purpose", line, diag, &rule.purposes);
  } else if (key == "action") {
    ParseSetLine(w, "action", line, diag, &rule.actions);
  } else if (key == "category") {
    ParseSetLine(w, "category", line, diag, &rule.categories);
  } else if (key == "band") {
    rule.needs_band = true;
    ParseSetLine(w, "age band", line, diag, &rule.bands);
  } else {
    return false;
  }
  return true;
}

// A rule's conditions: predicates, the permit rules that lift a forbid, the parameter
// that switches it on. False when `w` is no condition line.
bool ParseConditionLine(const Words& w, int line, Diagnostics& diag, Pack& pack) {
  const absl::string_view key = w[0];
  const size_t ri = pack.rules.size() - 1;
  CompiledRule& rule = pack.rules.back();
  if (key == "when") {
    ParsePredicates(w, line, diag, &rule.when);
  } else if (key == "require") {
    ParsePredicates(w, line, diag, &rule.require);
  } else if (key == "unless") {
    ParsePredicates(w, line, diag, &rule.unless);
  } else if (key == "unless_permitted_by") {
    if (w.size() < 2) {
      diag.Error(line, "'unless_permitted_by' needs a value");
      return true;
    }
    for (size_t i = 1; i < w.size(); ++i) pack.permitted_by_names[ri].emplace_back(w[i], line);
  } else if (key == "only_if") {
    if (w.size() != 3) {
      diag.Error(line, "only_if takes a parameter and a value: only_if NAME VALUE");
      return true;
    }
    if (CheckedParam(w, line, diag) == nullptr) return true;
    pack.only_if_param[ri] = absl::StrCat(w[1], "=", w[2]);
    pack.only_if_line[ri] = line;
  } else {
    return false;
  }
  return true;
}

// What a rule decides and cites: effect, reason, basis, obligations. False when `w` is
// no outcome line.
bool ParseOutcomeLine(const Words& w, int line, Diagnostics& diag, CompiledRule& rule) {
  const absl::string_view key = w[0];
  if (key == "cites") {
    for (size_t i = 1; i < w.size(); ++i) rule.cites.emplace_back(w[i]);
    return true;
  }
  if (key == "obligations") {
    for (size_t i = 1; i < w.size(); ++i) {
      Obligation o;
      if (w[i] == "$research_deidentification") {
        // Resolved once the parameters are known; a placeholder marks the spot.
        rule.obligations.push_back(static_cast<Obligation>(0xff));
      } else if (!ParseName(w[i], &o)) {
        diag.Error(line, absl::StrCat("unknown obligation '", w[i], "'"));
      } else {
        rule.obligations.push_back(o);
      }
    }
    return true;
  }
  if (key != "effect" && key != "reason" && key != "basis") return false;
  if (w.size() < 2) {
    diag.Error(line, absl::StrCat("'", key, "' needs a value"));
    return true;
  }
  if (key == "effect") {
    if (w[1] == "permit") {
      rule.effect = Effect::kPermit;
    } else if (w[1] == "forbid") {
      rule.effect = Effect::kDeny;
    } else {
      diag.Error(line, absl::StrCat("effect is permit or forbid, not '", w[1], "'"));
    }
  } else if (key == "reason") {
    if (!ParseName(w[1], &rule.reason)) diag.Error(line, absl::StrCat("unknown reason '", w[1], "'"));
  } else {
    LegalBasis b;
    if (!ParseName(w[1], &b)) {
      diag.Error(line, absl::StrCat("unknown legal basis '", w[1], "'"));
    } else {
      rule.basis = b;
    }
  }
  return true;
}

// One line inside a rule.
void ParseRuleLine(const Words& w, int line, Pack& pack, Diagnostics& diag) {
  CompiledRule& rule = pack.rules.back();
  if (ParseTargetLine(w, line, diag, rule) || ParseConditionLine(w, line, diag, pack) ||
      ParseOutcomeLine(w, line, diag, rule)) {
    return;
  }
  diag.Error(line, absl::StrCat("unknown rule keyword '", w[0], "'"));
}

// `rule ID`: starts a rule. False when the pack holds too many to go on.
bool StartRule(const Words& w, int line, Pack& pack, Diagnostics& diag, bool* in_rule) {
  if (w.size() != 2 || !IsIdentifier(w[1])) {
    diag.Error(line, "a rule starts with 'rule ID' (lower case letters, digits, _ and -)");
    *in_rule = false;
    return true;
  }
  if (pack.rules.size() >= kMaxRules) {
    diag.Error(line, "too many rules");
    return false;
  }
  CompiledRule rule;
  rule.id = std::string(w[1]);
  rule.line = line;
  rule.effect = static_cast<Effect>(0xff);  // unset: checked in Analyze
  pack.rules.push_back(std::move(rule));
  pack.only_if_param.emplace_back();
  pack.only_if_line.push_back(0);
  pack.permitted_by_names.emplace_back();
  *in_rule = true;
  return true;
}

// A code of a data-category system: what Mitz and Nictiz use (GGC002), nothing a line
// could misread.
bool IsDataCategoryCode(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

// `data_category CODE CATEGORY...`: the toegang categories a consent's data category
// (Mitz's gegevenscategorie) stands for.
void ParseDataCategory(const Words& w, int line, Pack& pack, Diagnostics& diag) {
  if (w.size() < 3 || !IsDataCategoryCode(w[1])) {
    diag.Error(line, "'data_category CODE CATEGORY...' maps a data-category code (letters, digits, _ - .) to toegang categories");
    return;
  }
  if (w[2] == "not") {
    diag.Error(line, "a data_category lists the categories it reaches; 'not' would reach whatever is added later");
    return;
  }
  Words set_words(w.begin() + 1, w.end());
  CategorySet set;
  if (!ParseSetLine(set_words, "category", line, diag, &set)) return;
  if (pack.data_categories.count(std::string(w[1]))) {
    diag.Error(line, absl::StrCat("data_category ", w[1], " is mapped twice"));
    return;
  }
  pack.data_categories[std::string(w[1])] = {set, line};
}

// The pack's header: `policy`, `version`, `extends`, `param` and `data_category` lines.
void ParseHeaderLine(const Words& w, int line, bool in_rule, Pack& pack, Diagnostics& diag) {
  const absl::string_view key = w[0];
  if (in_rule) {
    diag.Error(line, absl::StrCat("'", key, "' belongs before the first rule"));
    return;
  }
  if (key == "policy") {
    if (w.size() != 2 || !IsIdentifier(w[1])) {
      diag.Error(line, "'policy NAME' names the pack (lower case letters, digits, _ and -)");
    } else {
      pack.name = std::string(w[1]);
    }
  } else if (key == "version") {
    int v;
    if (w.size() != 2 || !absl::SimpleAtoi(w[1], &v) || v < 1) {
      diag.Error(line, "'version N' is a positive whole number");
    } else {
      pack.version = v;
    }
  } else if (key == "extends") {
    if (w.size() != 2) {
      diag.Error(line, "'extends NAME' names a built-in pack");
    } else {
      pack.extends = std::string(w[1]);
    }
  } else if (key == "data_category") {
    ParseDataCategory(w, line, pack, diag);
  } else {  // param
    if (w.size() != 3) {
      diag.Error(line, "'param NAME VALUE'");
      return;
    }
    if (CheckedParam(w, line, diag) == nullptr) return;
    if (pack.params.count(std::string(w[1]))) {
      diag.Error(line, absl::StrCat("parameter ", w[1], " is set twice"));
      return;
    }
    pack.params[std::string(w[1])] = {std::string(w[2]), line};
  }
}

// Parses one pack's text (not following `extends`).
void ParsePack(absl::string_view text, Pack& pack, Diagnostics& diag) {
  if (text.size() > kMaxPackBytes) {
    diag.Error(0, absl::StrCat("pack of ", text.size(), " bytes exceeds ", kMaxPackBytes));
    return;
  }
  int line_no = 0;
  bool in_rule = false;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = raw;
    size_t hash = line.find('#');
    if (hash != absl::string_view::npos) line = line.substr(0, hash);
    const Words w = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (w.empty()) continue;
    const absl::string_view key = w[0];
    if (key == "rule") {
      if (!StartRule(w, line_no, pack, diag, &in_rule)) return;
    } else if (key == "policy" || key == "version" || key == "extends" || key == "param" || key == "data_category") {
      ParseHeaderLine(w, line_no, in_rule, pack, diag);
    } else if (!in_rule) {
      diag.Error(line_no, absl::StrCat("unknown keyword '", key,
                                       "' (expected policy, version, extends, param, data_category or rule)"));
    } else {
      ParseRuleLine(w, line_no, pack, diag);
    }
  }
  if (pack.name.empty()) diag.Error(1, "the pack has no 'policy NAME' line");
  if (pack.version == 0) diag.Error(1, "the pack has no 'version N' line");
}

// The parameters as set (CheckParamValue accepted each), defaults for the rest.
PolicyParams ResolveParams(const std::map<std::string, std::pair<std::string, int>>& params) {
  PolicyParams p;
  for (const ParamSpec& spec : ParamSpecs()) {
    if (spec.apply == nullptr) continue;
    auto it = params.find(std::string(spec.name));
    spec.apply(it == params.end() ? spec.Default() : absl::string_view(it->second.first), &p);
  }
  return p;
}

// What a pack with every `extends` followed and every check done amounts to.
struct Compiled {
  Pack pack;  // rules: base rules first
  PolicyParams params;
};

// "line 12", or "from the base pack" for a rule inherited through `extends`.
std::string LineOf(const CompiledRule& r) {
  return r.line > 0 ? absl::StrCat("line ", r.line) : std::string("from the base pack");
}

bool Subset(const absl::InlinedVector<Predicate, 4>& a, const absl::InlinedVector<Predicate, 4>& b) {
  for (Predicate p : a) {
    if (std::find(b.begin(), b.end(), p) == b.end()) return false;
  }
  return true;
}

bool TargetCovers(const CompiledRule& a, const CompiledRule& b) {
  return b.roles.IsSubsetOf(a.roles) && b.purposes.IsSubsetOf(a.purposes) &&
         b.actions.IsSubsetOf(a.actions) && b.categories.IsSubsetOf(a.categories) &&
         b.bands.IsSubsetOf(a.bands) && (!a.needs_band || b.needs_band);
}

bool TargetsIntersect(const CompiledRule& a, const CompiledRule& b) {
  return !a.roles.Intersect(b.roles).empty() && !a.purposes.Intersect(b.purposes).empty() &&
         !a.actions.Intersect(b.actions).empty() && !a.categories.Intersect(b.categories).empty() &&
         !a.bands.Intersect(b.bands).empty();
}

// What each effect requires of a rule: a permit a basis and requirements, a forbid
// conditions and no basis (D1: a denial has none).
void CheckRuleShape(const CompiledRule& r, bool names_permits, Diagnostics& diag) {
  if (r.reason == Reason::kNoApplicableRule) diag.Error(r.line, absl::StrCat("rule ", r.id, " has no 'reason'"));
  if (!r.is_forbid()) {
    if (!r.basis) diag.Error(r.line, absl::StrCat("permit rule ", r.id, " has no 'basis'"));
    if (!r.when.empty()) diag.Error(r.line, absl::StrCat("permit rule ", r.id, " uses 'when'; permit rules 'require'"));
    if (names_permits) {
      diag.Error(r.line, absl::StrCat("permit rule ", r.id, " uses 'unless_permitted_by'; only forbid rules may"));
    }
  } else {
    if (r.basis) diag.Error(r.line, absl::StrCat("forbid rule ", r.id, " has a 'basis'; a denial has none"));
    if (!r.obligations.empty()) diag.Error(r.line, absl::StrCat("forbid rule ", r.id, " has obligations"));
    if (!r.require.empty()) diag.Error(r.line, absl::StrCat("forbid rule ", r.id, " uses 'require'; forbid rules use 'when'"));
  }
}

// `only_if NAME VALUE` (as "NAME=VALUE"): turns the rule off when the pack's parameter
// has another value.
void ApplyOnlyIf(const std::string& only_if, const Pack& pack, CompiledRule& r, Diagnostics& diag) {
  if (only_if.empty()) return;
  std::pair<std::string, std::string> kv = absl::StrSplit(only_if, absl::MaxSplits('=', 1));
  auto it = pack.params.find(kv.first);
  const ParamSpec* spec = FindParam(kv.first);
  std::string value = it != pack.params.end() ? it->second.first
                      : (spec != nullptr ? std::string(spec->Default()) : std::string("0"));
  if (value == kv.second) return;
  r.enabled = false;
  r.disabled_because = absl::StrCat(kv.first, " is ", value);
  diag.Note(r.line, absl::StrCat("rule ", r.id, " is off: only_if ", kv.first, " ", kv.second, ", but it is ", value));
}

// `unless_permitted_by` names permit rules; their indices go into the rule.
void ResolvePermittedBy(const std::vector<std::pair<std::string, int>>& names, const std::vector<CompiledRule>& rules,
                        CompiledRule& r, Diagnostics& diag) {
  for (const auto& [name, line] : names) {
    auto it = std::find_if(rules.begin(), rules.end(), [&name = name](const CompiledRule& o) { return o.id == name; });
    if (it == rules.end()) {
      diag.Error(line, absl::StrCat("unless_permitted_by names no rule '", name, "'"));
    } else if (it->is_forbid()) {
      diag.Error(line, absl::StrCat("unless_permitted_by names forbid rule '", name, "'; it must name permit rules"));
    } else {
      r.unless_permitted_by.push_back(static_cast<uint16_t>(it - rules.begin()));
    }
  }
}

// A rule that can never match: an empty target, or a predicate required and excluded.
void WarnIfUnmatchable(const CompiledRule& r, Diagnostics& diag) {
  if (r.roles.empty() || r.purposes.empty() || r.actions.empty() || r.categories.empty() || r.bands.empty()) {
    diag.Warning(r.line, absl::StrCat("rule ", r.id, " can never match: its target is empty"));
  }
  for (Predicate p : r.unless) {
    if (std::find(r.require.begin(), r.require.end(), p) != r.require.end() ||
        std::find(r.when.begin(), r.when.end(), p) != r.when.end()) {
      diag.Warning(r.line, absl::StrCat("rule ", r.id, " can never match: it requires and excludes ",
                                        policy_internal::PredicateName(p)));
    }
  }
}

// Whether rule `a` (earlier) decides whenever `b` would: same effect, a target that
// covers b's, and no condition b lacks.
bool Shadows(const CompiledRule& a, const CompiledRule& b) {
  return TargetCovers(a, b) && Subset(a.require, b.require) && Subset(a.when, b.when) && Subset(a.unless, b.unless) &&
         a.unless_permitted_by.size() <= b.unless_permitted_by.size() &&
         std::all_of(a.unless_permitted_by.begin(), a.unless_permitted_by.end(), [&](uint16_t x) {
           return std::find(b.unless_permitted_by.begin(), b.unless_permitted_by.end(), x) != b.unless_permitted_by.end();
         });
}

// Shadowing and overlap, between enabled rules of the same effect.
void WarnShadowedAndOverlapping(const std::vector<CompiledRule>& rules, Diagnostics& diag) {
  for (size_t j = 0; j < rules.size(); ++j) {
    const CompiledRule& b = rules[j];
    if (!b.enabled) continue;
    for (size_t i = 0; i < j; ++i) {
      const CompiledRule& a = rules[i];
      if (!a.enabled || a.effect != b.effect || !TargetsIntersect(a, b)) continue;
      if (Shadows(a, b)) {
        diag.Warning(b.line, absl::StrCat("rule ", b.id, " is shadowed by rule ", a.id, " (", LineOf(a),
                                          "): whenever it would ", b.is_forbid() ? "forbid" : "permit", ", ", a.id,
                                          " already does, so it is unreachable"));
        break;
      }
      if (!b.is_forbid()) {
        diag.Note(b.line, absl::StrCat("rule ", b.id, " overlaps rule ", a.id, " (", LineOf(a), "); where both permit, ",
                                       a.id, " decides"));
      }
    }
  }
}

// Checks every rule of a pack with its `extends` followed, resolves what refers to
// parameters and other rules, and reports what can never match or is shadowed.
void Analyze(Compiled& c, Diagnostics& diag) {
  std::vector<CompiledRule>& rules = c.pack.rules;
  for (size_t i = 0; i < rules.size(); ++i) {
    CompiledRule& r = rules[i];
    if (static_cast<uint8_t>(r.effect) == 0xff) {
      diag.Error(r.line, absl::StrCat("rule ", r.id, " has no 'effect permit|forbid'"));
      continue;
    }
    CheckRuleShape(r, !c.pack.permitted_by_names[i].empty(), diag);
    for (Obligation& o : r.obligations) {
      if (static_cast<uint8_t>(o) == 0xff) o = c.params.research_deidentification;  // the placeholder
    }
    ApplyOnlyIf(c.pack.only_if_param[i], c.pack, r, diag);
    ResolvePermittedBy(c.pack.permitted_by_names[i], rules, r, diag);
    WarnIfUnmatchable(r, diag);
  }
  if (diag.has_errors()) return;
  WarnShadowedAndOverlapping(rules, diag);
}

Compiled CompileText(absl::string_view text, int depth, Diagnostics& diag, bool use_cache = true);

// A built-in pack as a base for `extends`, compiled once per process (the packs are
// part of the binary, so the result never changes).
struct CompiledBase {
  Compiled compiled;
  bool ok = false;
};
const CompiledBase* BuiltinBase(absl::string_view name) {
  static const auto* const bases = [] {
    auto* out = new std::map<std::string, CompiledBase, std::less<>>;
    for (const std::string& n : BuiltinPolicyNames()) {
      Diagnostics d;
      CompiledBase& b = (*out)[n];
      b.compiled = CompileText(BuiltinPolicyText(n), 1, d, /*use_cache=*/false);
      b.ok = !d.has_errors();
    }
    return out;
  }();
  auto it = bases->find(name);
  return it == bases->end() ? nullptr : &it->second;
}

Compiled CompileText(absl::string_view text, int depth, Diagnostics& diag, bool use_cache) {
  Compiled c;
  Pack own;
  ParsePack(text, own, diag);
  if (!own.extends.empty()) {
    const char* base_text = BuiltinPolicyText(own.extends);
    if (base_text == nullptr) {
      diag.Error(1, absl::StrCat("extends names no built-in pack '", own.extends, "'"));
    } else if (depth >= kMaxExtendsDepth) {
      diag.Error(1, "extends nests too deep");
    } else {
      bool base_ok;
      if (use_cache) {
        const CompiledBase* base = BuiltinBase(own.extends);
        c.pack = base->compiled.pack;
        base_ok = base->ok;
      } else {
        Diagnostics base_diag;
        c.pack = CompileText(base_text, depth + 1, base_diag, false).pack;
        base_ok = !base_diag.has_errors();
      }
      if (!base_ok) diag.Error(1, absl::StrCat("built-in pack ", own.extends, " does not compile"));
      // Inherited rules keep their own line numbers in the base pack; analysis of this
      // pack reports against this pack's lines, so mark them as line 0 ("the pack").
      for (CompiledRule& r : c.pack.rules) r.line = 0;
      for (int& l : c.pack.only_if_line) l = 0;
      for (auto& names : c.pack.permitted_by_names) {
        for (auto& n : names) n.second = 0;
      }
    }
  }
  c.pack.name = own.name;
  c.pack.version = own.version;
  c.pack.extends = own.extends;
  for (auto& [k, v] : own.params) c.pack.params[k] = v;
  for (auto& [k, v] : own.data_categories) c.pack.data_categories[k] = v;  // the pack's own mapping wins
  for (size_t i = 0; i < own.rules.size(); ++i) {
    const CompiledRule& r = own.rules[i];
    auto clash = std::find_if(c.pack.rules.begin(), c.pack.rules.end(),
                              [&](const CompiledRule& o) { return o.id == r.id; });
    if (clash != c.pack.rules.end()) {
      diag.Error(r.line, absl::StrCat("rule id ", r.id, " is used twice",
                                      clash->line ? absl::StrCat(" (line ", clash->line, ")") : " (in the base pack)"));
      continue;
    }
    c.pack.rules.push_back(r);
    c.pack.only_if_param.push_back(own.only_if_param[i]);
    c.pack.only_if_line.push_back(own.only_if_line[i]);
    c.pack.permitted_by_names.push_back(own.permitted_by_names[i]);
  }
  c.params = ResolveParams(c.pack.params);
  return c;
}

}  // namespace

class PolicyCompiler {
 public:
  static std::shared_ptr<const Policy> Build(Compiled c, absl::string_view text) {
    std::shared_ptr<Policy> p(new Policy);
    p->name_ = c.pack.name;
    p->version_ = c.pack.version;
    p->id_ = absl::StrCat(c.pack.name, "@", c.pack.version);
    p->params_ = c.params;
    for (const ParamSpec& spec : ParamSpecs()) {
      auto it = c.pack.params.find(std::string(spec.name));
      p->parameters_.emplace_back(std::string(spec.name),
                                  it == c.pack.params.end() ? std::string(spec.Default()) : it->second.first);
    }
    p->source_ = std::string(text);
    for (const auto& [code, mapped] : c.pack.data_categories) p->data_categories_.emplace_back(code, mapped.first);
    p->rules_ = std::move(c.pack.rules);
    constexpr int kPurposes = EnumCount<Purpose>();
    p->index_.assign(EnumCount<Role>() * kPurposes, {});
    for (int role = 0; role < EnumCount<Role>(); ++role) {
      for (int purpose = 0; purpose < kPurposes; ++purpose) {
        std::vector<uint16_t>& list = p->index_[role * kPurposes + purpose];
        for (int pass = 0; pass < 2; ++pass) {  // forbids, then permits
          for (size_t i = 0; i < p->rules_.size(); ++i) {
            const CompiledRule& r = p->rules_[i];
            if (!r.enabled || r.is_forbid() != (pass == 0)) continue;
            if (r.roles.Contains(static_cast<Role>(role)) && r.purposes.Contains(static_cast<Purpose>(purpose))) {
              list.push_back(static_cast<uint16_t>(i));
            }
          }
        }
      }
    }
    return p;
  }
};

Policy::Policy() = default;
Policy::~Policy() = default;

std::optional<CategorySet> Policy::DataCategory(absl::string_view code) const {
  for (const auto& [mapped, set] : data_categories_) {
    if (mapped == code) return set;
  }
  return std::nullopt;
}

absl::Span<const uint16_t> Policy::Candidates(Role role, Purpose purpose) const {
  size_t i = static_cast<size_t>(role) * EnumCount<Purpose>() + static_cast<size_t>(purpose);
  if (i >= index_.size()) return {};
  return index_[i];
}

std::string FormatDiagnostic(absl::string_view source_name, const PolicyDiagnostic& d) {
  const char* sev = d.severity == Severity::kError ? "error" : d.severity == Severity::kWarning ? "warning" : "note";
  if (d.line <= 0) return absl::StrCat(source_name, ": ", sev, ": ", d.message);  // the pack, or its base
  return absl::StrCat(source_name, ":", d.line, ": ", sev, ": ", d.message);
}

std::vector<PolicyDiagnostic> CheckPolicy(absl::string_view text) {
  Diagnostics diag;
  Compiled c = CompileText(text, 0, diag);
  if (!diag.has_errors()) Analyze(c, diag);
  return diag.Take();
}

absl::StatusOr<std::shared_ptr<const Policy>> CompilePolicy(absl::string_view text) {
  Diagnostics diag;
  Compiled c = CompileText(text, 0, diag);
  if (!diag.has_errors()) Analyze(c, diag);
  if (diag.has_errors_or_warnings()) {
    std::vector<std::string> lines;
    for (const PolicyDiagnostic& d : diag.Take()) {
      if (d.severity == Severity::kNote) continue;
      lines.push_back(FormatDiagnostic("policy", d));
    }
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  return PolicyCompiler::Build(std::move(c), text);
}

}  // namespace toegang
