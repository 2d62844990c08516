// Copyright toegang authors.
#include "model/json.h"

#include "model/bsn.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "model/status_macros.h"
#include "model/time.h"

namespace toegang {
namespace {

using nlohmann::json;

constexpr size_t kMaxIdBytes = 128;

// A key from the input as an error may show it: field names are short words; anything
// else (digits, a BSN) is not repeated (API.md: no BSN in an error message).
std::string ShownKey(absl::string_view key) {
  bool word = !key.empty() && key.size() <= 32;
  for (char c : key) word = word && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_');
  return word ? std::string(key) : "(a field whose name is not shown)";
}

// "a, b or c": every name of vocabulary E, for errors that say what was expected
// instead of repeating what was given.
template <typename E>
std::string Names() {
  std::string out;
  for (int i = 0; i < EnumCount<E>(); ++i) {
    if (i > 0) out += i + 1 == EnumCount<E>() ? " or " : ", ";
    out += std::string(Name(static_cast<E>(i)));
  }
  return out;
}

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// The rules for an id (1..128 bytes, no control characters, UTF-8, no BSN), on text.
absl::Status CheckIdText(absl::string_view s, absl::string_view path, bool check_utf8) {
  if (s.empty() || s.size() > kMaxIdBytes) return FieldError(path, "an id is 1..128 bytes");
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return FieldError(path, "an id has no control characters");
  }
  if (check_utf8 && !IsValidUtf8(s)) return FieldError(path, "an id is UTF-8 text");
  if (ContainsBsn(s)) {
    return FieldError(path, "holds a number that may be a BSN (it passes the eleven test); ids must never carry a BSN");
  }
  return absl::OkStatus();
}

// Reads one JSON object field by field and refuses whatever it did not read.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  std::string Path(absl::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
  }

  // The value at `key`, or nullptr when absent or null.
  const json* Get(absl::string_view key) {
    read_.emplace_back(key);
    auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  absl::StatusOr<const json*> Require(absl::string_view key) {
    const json* v = Get(key);
    if (v == nullptr) return FieldError(Path(key), "required field is missing");
    return v;
  }

  absl::StatusOr<std::string> String(absl::string_view key, bool required, size_t max_bytes) {
    const json* v = Get(key);
    if (v == nullptr) {
      if (required) return FieldError(Path(key), "required field is missing");
      return std::string();
    }
    if (!v->is_string()) return FieldError(Path(key), "must be a string");
    const std::string& s = v->get_ref<const std::string&>();
    if (s.size() > max_bytes) {
      return FieldError(Path(key), absl::StrCat("longer than ", max_bytes, " bytes"));
    }
    return s;
  }

  absl::StatusOr<std::string> Id(absl::string_view key, bool required) {
    const json* v = Get(key);
    if (v == nullptr) {
      if (required) return FieldError(Path(key), "required field is missing");
      return std::string();
    }
    return ParseId(*v, Path(key));
  }

  static absl::StatusOr<std::string> ParseId(const json& v, const std::string& path) {
    if (!v.is_string()) return FieldError(path, "must be a string id");
    const std::string& s = v.get_ref<const std::string&>();
    // The JSON parser has already refused text that is not UTF-8.
    if (absl::Status bad = CheckIdText(s, path, /*check_utf8=*/false); !bad.ok()) return bad;
    return s;
  }

  absl::StatusOr<std::optional<absl::Time>> Instant(absl::string_view key, bool required) {
    const json* v = Get(key);
    if (v == nullptr) {
      if (required) return FieldError(Path(key), "required field is missing");
      return std::optional<absl::Time>();
    }
    if (!v->is_string()) return FieldError(Path(key), "must be an RFC 3339 instant string");
    absl::StatusOr<absl::Time> t = ParseInstant(v->get_ref<const std::string&>());
    if (!t.ok()) return FieldError(Path(key), t.status().message());
    return std::optional<absl::Time>(*t);
  }

  absl::StatusOr<std::optional<absl::CivilDay>> Date(absl::string_view key) {
    const json* v = Get(key);
    if (v == nullptr) return std::optional<absl::CivilDay>();
    if (!v->is_string()) return FieldError(Path(key), "must be a YYYY-MM-DD string");
    absl::StatusOr<absl::CivilDay> d = ParseCivilDate(v->get_ref<const std::string&>());
    if (!d.ok()) return FieldError(Path(key), d.status().message());
    return std::optional<absl::CivilDay>(*d);
  }

  template <typename E>
  absl::StatusOr<E> Enum(absl::string_view key, absl::string_view kind) {
    TOEGANG_ASSIGN_OR_RETURN(const json* v, Require(key));
    return ParseEnumValue<E>(*v, Path(key), kind);
  }

  // The same, `fallback` when the field is absent (or null).
  template <typename E>
  absl::StatusOr<E> Enum(absl::string_view key, absl::string_view kind, E fallback) {
    const json* v = Get(key);
    if (v == nullptr) return fallback;
    return ParseEnumValue<E>(*v, Path(key), kind);
  }

  template <typename E>
  static absl::StatusOr<E> ParseEnumValue(const json& v, const std::string& path,
                                          absl::string_view kind) {
    if (!v.is_string()) return FieldError(path, absl::StrCat("must be a ", kind, " name"));
    const std::string& s = v.get_ref<const std::string&>();
    E out;
    if (!ParseName(s, &out)) {
      // The value is not repeated (it may hold a BSN): what was expected is.
      return FieldError(path, absl::StrCat("unknown ", kind, " (expected ", Names<E>(), ")"));
    }
    return out;
  }

  // A non-empty array of enum names. Absent: `if_absent` (nullopt: required).
  template <typename E>
  absl::StatusOr<EnumSet<E>> Set(absl::string_view key, absl::string_view kind,
                                 std::optional<EnumSet<E>> if_absent) {
    const json* v = Get(key);
    if (v == nullptr) {
      if (!if_absent) return FieldError(Path(key), "required field is missing");
      return *if_absent;
    }
    if (!v->is_array()) return FieldError(Path(key), absl::StrCat("must be an array of ", kind, " names"));
    if (v->empty()) return FieldError(Path(key), "must not be empty (leave it out to mean all)");
    if (v->size() > 64) return FieldError(Path(key), "too many values");
    EnumSet<E> set;
    for (size_t i = 0; i < v->size(); ++i) {
      TOEGANG_ASSIGN_OR_RETURN(E e, ParseEnumValue<E>((*v)[i], absl::StrCat(Path(key), "[", i, "]"), kind));
      set.Insert(e);
    }
    return set;
  }

  absl::StatusOr<std::optional<Party>> PartyField(absl::string_view key, bool required) {
    const json* v = Get(key);
    if (v == nullptr) {
      if (required) return FieldError(Path(key), "required field is missing");
      return std::optional<Party>();
    }
    TOEGANG_ASSIGN_OR_RETURN(Party p, ParseParty(*v, Path(key)));
    return std::optional<Party>(std::move(p));
  }

  static absl::StatusOr<Party> ParseParty(const json& v, const std::string& path) {
    if (!v.is_object()) {
      return FieldError(path, "must be an object with one of actor, role, organization, organization_category");
    }
    if (v.size() != 1) {
      return FieldError(path,
                        "names exactly one party: {\"actor\":id}, {\"role\":role}, {\"organization\":id} or "
                        "{\"organization_category\":code}");
    }
    auto it = v.begin();
    Party p;
    std::string sub = absl::StrCat(path, ".", ShownKey(it.key()));
    if (it.key() == "actor") {
      p.kind = Party::Kind::kActor;
      TOEGANG_ASSIGN_OR_RETURN(p.id, ParseId(it.value(), sub));
    } else if (it.key() == "organization") {
      p.kind = Party::Kind::kOrganization;
      TOEGANG_ASSIGN_OR_RETURN(p.id, ParseId(it.value(), sub));
    } else if (it.key() == "organization_category") {
      p.kind = Party::Kind::kOrganizationCategory;
      TOEGANG_ASSIGN_OR_RETURN(p.id, ParseId(it.value(), sub));
    } else if (it.key() == "role") {
      p.kind = Party::Kind::kRole;
      TOEGANG_ASSIGN_OR_RETURN(p.role, ParseEnumValue<Role>(it.value(), sub, "role"));
    } else {
      return FieldError(sub, "unknown field (expected actor, role, organization or organization_category)");
    }
    return p;
  }

  // Refuses any key that was not read.
  absl::Status Finish() const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
      bool known = false;
      for (const std::string& k : read_) {
        if (k == it.key()) {
          known = true;
          break;
        }
      }
      if (!known) return FieldError(Path(ShownKey(it.key())), "unknown field");
    }
    return absl::OkStatus();
  }

 private:
  const json& object_;
  std::string path_;
  std::vector<std::string> read_;
};

// Builds the tree as nlohmann's own parser does, and notes the first key an object
// repeats (parsing goes on, so malformed text is still reported as such). Faster than
// the parser's callback, which copied every key into a list per object to compare.
class StrictTree {
 public:
  explicit StrictTree(json* root) : root_(root) {}

  bool null() { return Put(nullptr); }
  bool boolean(bool v) { return Put(v); }
  bool number_integer(json::number_integer_t v) { return Put(v); }
  bool number_unsigned(json::number_unsigned_t v) { return Put(v); }
  bool number_float(json::number_float_t v, const std::string&) { return Put(v); }
  bool string(std::string& v) { return Put(std::move(v)); }
  bool binary(json::binary_t&) { return false; }  // not in JSON text
  bool start_object(std::size_t) {
    open_.push_back(Put(json::object()));
    return true;
  }
  bool key(std::string& k) {
    auto [it, fresh] = open_.back()->get_ref<json::object_t&>().try_emplace(std::move(k));
    if (!fresh && duplicate_.empty()) duplicate_ = ShownKey(it->first);
    next_ = &it->second;  // a repeated key's later value replaces the first
    return true;
  }
  bool end_object() {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    open_.push_back(Put(json::array()));
    return true;
  }
  bool end_array() {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

  const std::string& duplicate() const { return duplicate_; }

 private:
  // Places `v` where the text put it: the root, the open array's end, or the value of
  // the key just read. Returns where it went.
  json* Put(json v) {
    if (open_.empty()) {
      *root_ = std::move(v);
      return root_;
    }
    json& top = *open_.back();
    if (top.is_array()) {
      json::array_t& a = top.get_ref<json::array_t&>();
      a.push_back(std::move(v));
      return &a.back();
    }
    *next_ = std::move(v);
    return next_;
  }

  json* const root_;
  std::vector<json*> open_;  // the objects and arrays being filled, innermost last
  json* next_ = nullptr;     // the value slot of the key just read
  std::string duplicate_;
};

absl::StatusOr<json> ParseText(absl::string_view text, size_t max_bytes = kMaxJsonLineBytes) {
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("input of ", text.size(), " bytes exceeds the limit of ", max_bytes));
  }
  // The JSON parser stops at a NUL byte as at the end of the input, so whatever follows
  // one would be dropped without a word: a NUL anywhere is bad input.
  if (size_t nul = text.find('\0'); nul != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a NUL byte at byte ", nul + 1, ": a line holds one JSON value and nothing after it"));
  }
  // Duplicate keys are refused: one reader taking the first and another the last is how
  // a request says "treatment" to one component and "marketing" to the next.
  json value;
  StrictTree tree(&value);
  if (!json::sax_parse(text.begin(), text.end(), &tree)) return absl::InvalidArgumentError("malformed JSON");
  const std::string& duplicate = tree.duplicate();
  if (!duplicate.empty()) return FieldError(duplicate, "appears twice");
  return value;
}

absl::StatusOr<Window> ReadWindow(ObjectReader& r) {
  Window w;
  TOEGANG_ASSIGN_OR_RETURN(std::optional<absl::Time> from, r.Instant("from", false));
  TOEGANG_ASSIGN_OR_RETURN(std::optional<absl::Time> until, r.Instant("until", false));
  if (from) w.from = *from;
  if (until) w.until = *until;
  if (from && until && *until <= *from) {
    return FieldError(r.Path("until"), "must be after from (windows are [from, until))");
  }
  return w;
}

absl::Status ReadLimitation(ObjectReader& r, Limitation& f) {
  TOEGANG_ASSIGN_OR_RETURN(f.id, r.Id("id", true));
  TOEGANG_ASSIGN_OR_RETURN(f.patient, r.Id("patient", true));
  TOEGANG_ASSIGN_OR_RETURN(f.by, r.Id("by", true));
  TOEGANG_ASSIGN_OR_RETURN(f.to, r.PartyField("to", false));
  TOEGANG_ASSIGN_OR_RETURN(f.purposes, r.Set<Purpose>("purposes", "purpose", PurposeSet::All()));
  TOEGANG_ASSIGN_OR_RETURN(f.categories, r.Set<Category>("categories", "category", CategorySet::All()));
  TOEGANG_ASSIGN_OR_RETURN(f.actions, r.Set<Action>("actions", "action", ActionSet::All()));
  TOEGANG_ASSIGN_OR_RETURN(f.window, ReadWindow(r));
  return absl::OkStatus();
}

absl::StatusOr<FactBody> ParseBody(const std::string& type, ObjectReader& r) {
  if (type == "person") {
    Person p;
    TOEGANG_ASSIGN_OR_RETURN(p.id, r.Id("id", true));
    TOEGANG_ASSIGN_OR_RETURN(p.birth_date, r.Date("birth_date"));
    TOEGANG_ASSIGN_OR_RETURN(p.death_date, r.Date("death_date"));
    if (p.birth_date && p.death_date && *p.death_date < *p.birth_date) {
      return FieldError(r.Path("death_date"), "is before birth_date");
    }
    return FactBody(std::move(p));
  }
  if (type == "relationship") {
    Relationship rel;
    TOEGANG_ASSIGN_OR_RETURN(rel.id, r.Id("id", false));
    TOEGANG_ASSIGN_OR_RETURN(rel.subject, r.Id("subject", true));
    TOEGANG_ASSIGN_OR_RETURN(rel.relation, r.Enum<Relation>("relation", "relation"));
    TOEGANG_ASSIGN_OR_RETURN(rel.object, r.Id("object", true));
    TOEGANG_ASSIGN_OR_RETURN(rel.window, ReadWindow(r));
    if (rel.subject == rel.object) return FieldError(r.Path("object"), "equals subject");
    return FactBody(std::move(rel));
  }
  if (type == "consent") {
    Consent c;
    TOEGANG_ASSIGN_OR_RETURN(c.id, r.Id("id", true));
    TOEGANG_ASSIGN_OR_RETURN(c.patient, r.Id("patient", true));
    TOEGANG_ASSIGN_OR_RETURN(const json* by, r.Require("granted_by"));
    if (by->is_array()) {
      if (by->empty() || by->size() > 2) {
        return FieldError(r.Path("granted_by"), "is one grantor id, or an array of one or two");
      }
      for (size_t i = 0; i < by->size(); ++i) {
        TOEGANG_ASSIGN_OR_RETURN(std::string id, ObjectReader::ParseId((*by)[i], absl::StrCat(r.Path("granted_by"), "[", i, "]")));
        c.granted_by.push_back(std::move(id));
      }
    } else {
      TOEGANG_ASSIGN_OR_RETURN(std::string id, ObjectReader::ParseId(*by, r.Path("granted_by")));
      c.granted_by.push_back(std::move(id));
    }
    TOEGANG_ASSIGN_OR_RETURN(std::optional<Party> to, r.PartyField("to", true));
    c.to = std::move(*to);
    TOEGANG_ASSIGN_OR_RETURN(c.purposes, r.Set<Purpose>("purposes", "purpose", std::nullopt));
    TOEGANG_ASSIGN_OR_RETURN(c.categories, r.Set<Category>("categories", "category", std::nullopt));
    TOEGANG_ASSIGN_OR_RETURN(c.actions, r.Set<Action>("actions", "action", std::nullopt));
    TOEGANG_ASSIGN_OR_RETURN(c.window, ReadWindow(r));
    TOEGANG_ASSIGN_OR_RETURN(c.evidence, r.String("evidence", false, kMaxTextBytes));
    c.evidence = RedactBsn(c.evidence);  // free text is stored and served: never a BSN
    return FactBody(std::move(c));
  }
  if (type == "withdrawal") {
    Withdrawal w;
    TOEGANG_ASSIGN_OR_RETURN(w.target, r.Id("consent", true));
    TOEGANG_ASSIGN_OR_RETURN(w.by, r.Id("by", true));
    TOEGANG_ASSIGN_OR_RETURN(std::optional<absl::Time> at, r.Instant("at", true));
    w.at = *at;
    return FactBody(std::move(w));
  }
  if (type == "objection") {
    Objection o;
    TOEGANG_RETURN_IF_ERROR(ReadLimitation(r, o));
    return FactBody(std::move(o));
  }
  if (type == "restriction") {
    Restriction res;
    TOEGANG_RETURN_IF_ERROR(ReadLimitation(r, res));
    TOEGANG_ASSIGN_OR_RETURN(res.reason, r.String("reason", false, kMaxTextBytes));
    res.reason = RedactBsn(res.reason);
    return FactBody(std::move(res));
  }
  if (type == "capacity") {
    Capacity cap;
    TOEGANG_ASSIGN_OR_RETURN(cap.id, r.Id("id", true));
    TOEGANG_ASSIGN_OR_RETURN(cap.patient, r.Id("patient", true));
    TOEGANG_ASSIGN_OR_RETURN(cap.by, r.Id("by", true));
    TOEGANG_ASSIGN_OR_RETURN(const json* capable, r.Require("capable"));
    if (!capable->is_boolean()) return FieldError(r.Path("capable"), "must be true or false");
    cap.capable = capable->get<bool>();
    TOEGANG_ASSIGN_OR_RETURN(cap.window, ReadWindow(r));
    return FactBody(std::move(cap));
  }
  if (type == "org_category") {
    OrgCategory oc;
    TOEGANG_ASSIGN_OR_RETURN(oc.id, r.Id("id", false));
    TOEGANG_ASSIGN_OR_RETURN(oc.organization, r.Id("organization", true));
    TOEGANG_ASSIGN_OR_RETURN(oc.category, r.Id("category", true));
    TOEGANG_ASSIGN_OR_RETURN(oc.window, ReadWindow(r));
    return FactBody(std::move(oc));
  }
  if (type == "erasure_request") {
    ErasureRequest e;
    TOEGANG_ASSIGN_OR_RETURN(e.id, r.Id("id", true));
    TOEGANG_ASSIGN_OR_RETURN(e.patient, r.Id("patient", true));
    TOEGANG_ASSIGN_OR_RETURN(e.by, r.Id("by", true));
    TOEGANG_ASSIGN_OR_RETURN(std::optional<absl::Time> at, r.Instant("at", true));
    e.at = *at;
    return FactBody(std::move(e));
  }
  if (type == "retention_hold") {
    RetentionHold h;
    TOEGANG_ASSIGN_OR_RETURN(h.id, r.Id("id", true));
    TOEGANG_ASSIGN_OR_RETURN(h.patient, r.Id("patient", true));
    TOEGANG_ASSIGN_OR_RETURN(h.by, r.Id("by", true));
    TOEGANG_ASSIGN_OR_RETURN(h.reason, r.Enum<HoldReason>("reason", "hold reason"));
    TOEGANG_ASSIGN_OR_RETURN(h.window, ReadWindow(r));
    return FactBody(std::move(h));
  }
  if (type == "removed") {
    return FieldError("type", "'removed' is what retention leaves of a removed fact (toegang retention apply); it "
                              "cannot be recorded");
  }
  return FieldError("type", "unknown fact type (expected person, relationship, consent, withdrawal, objection, "
                            "restriction, capacity, org_category, erasure_request or retention_hold)");
}

// --- printing ---------------------------------------------------------------------

template <typename E>
json SetToJson(EnumSet<E> set) {
  json a = json::array();
  set.ForEach([&](E e) { a.push_back(std::string(Name(e))); });
  return a;
}

json PartyToJson(const Party& p) {
  switch (p.kind) {
    case Party::Kind::kActor:
      return json{{"actor", p.id}};
    case Party::Kind::kRole:
      return json{{"role", std::string(Name(p.role))}};
    case Party::Kind::kOrganization:
      return json{{"organization", p.id}};
    case Party::Kind::kOrganizationCategory:
      return json{{"organization_category", p.id}};
  }
  return json();
}

json InstantOrNull(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return nullptr;
  return FormatInstant(t);
}

void PutWindow(json& j, const Window& w) {
  j["from"] = InstantOrNull(w.from);
  j["until"] = InstantOrNull(w.until);
}

void PutLimitation(json& j, const Limitation& f) {
  j["id"] = f.id;
  j["patient"] = f.patient;
  j["by"] = f.by;
  if (f.to) j["to"] = PartyToJson(*f.to);
  if (f.purposes != PurposeSet::All()) j["purposes"] = SetToJson(f.purposes);
  if (f.categories != CategorySet::All()) j["categories"] = SetToJson(f.categories);
  if (f.actions != ActionSet::All()) j["actions"] = SetToJson(f.actions);
  PutWindow(j, f.window);
}

json BodyToJson(const FactBody& body) {
  json j = json::object();
  j["type"] = FactTypeName(body);
  std::visit(
      [&](const auto& f) {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, Person>) {
          j["id"] = f.id;
          j["birth_date"] = f.birth_date ? json(FormatCivilDate(*f.birth_date)) : json(nullptr);
          j["death_date"] = f.death_date ? json(FormatCivilDate(*f.death_date)) : json(nullptr);
        } else if constexpr (std::is_same_v<T, Relationship>) {
          if (!f.id.empty()) j["id"] = f.id;
          j["subject"] = f.subject;
          j["relation"] = std::string(Name(f.relation));
          j["object"] = f.object;
          PutWindow(j, f.window);
        } else if constexpr (std::is_same_v<T, Consent>) {
          j["id"] = f.id;
          j["patient"] = f.patient;
          j["granted_by"] = f.granted_by.size() == 1 ? json(f.granted_by[0]) : json(f.granted_by);
          j["to"] = PartyToJson(f.to);
          j["purposes"] = SetToJson(f.purposes);
          j["categories"] = SetToJson(f.categories);
          j["actions"] = SetToJson(f.actions);
          PutWindow(j, f.window);
          if (!f.evidence.empty()) j["evidence"] = f.evidence;
        } else if constexpr (std::is_same_v<T, Withdrawal>) {
          j["consent"] = f.target;
          j["by"] = f.by;
          j["at"] = FormatInstant(f.at);
        } else if constexpr (std::is_same_v<T, Objection>) {
          PutLimitation(j, f);
        } else if constexpr (std::is_same_v<T, Restriction>) {
          PutLimitation(j, f);
          if (!f.reason.empty()) j["reason"] = f.reason;
        } else if constexpr (std::is_same_v<T, Capacity>) {
          j["id"] = f.id;
          j["patient"] = f.patient;
          j["by"] = f.by;
          j["capable"] = f.capable;
          PutWindow(j, f.window);
        } else if constexpr (std::is_same_v<T, OrgCategory>) {
          if (!f.id.empty()) j["id"] = f.id;
          j["organization"] = f.organization;
          j["category"] = f.category;
          PutWindow(j, f.window);
        } else if constexpr (std::is_same_v<T, ErasureRequest>) {
          j["id"] = f.id;
          j["patient"] = f.patient;
          j["by"] = f.by;
          j["at"] = FormatInstant(f.at);
        } else if constexpr (std::is_same_v<T, RetentionHold>) {
          j["id"] = f.id;
          j["patient"] = f.patient;
          j["by"] = f.by;
          j["reason"] = std::string(Name(f.reason));
          PutWindow(j, f.window);
        } else if constexpr (std::is_same_v<T, Removed>) {
          if (!f.id.empty()) j["id"] = f.id;
          j["patient"] = f.patient;
          j["removed_type"] = f.type;
          j["removed_at"] = FormatInstant(f.removed_at);
          j["term"] = f.term;
        }
      },
      body);
  return j;
}

}  // namespace

absl::StatusOr<json> ParseJsonStrict(absl::string_view text, size_t max_bytes) { return ParseText(text, max_bytes); }

absl::Status CheckId(absl::string_view id, absl::string_view field) {
  return CheckIdText(id, field, /*check_utf8=*/true);
}

absl::Status CheckText(absl::string_view text, absl::string_view field, size_t max_bytes) {
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than ", max_bytes, " bytes"));
  }
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError(absl::StrCat(field, ": not UTF-8 text"));
  return absl::OkStatus();
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;  // a continuation byte, an overlong lead (C0, C1) or past F4
    }
    if (s.size() - i <= static_cast<size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;  // overlong, past U+10FFFF, or a surrogate
    }
    i += extra + 1;
  }
  return true;
}

std::string JsonText(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }


absl::StatusOr<FactLines> ParseFactLines(absl::string_view text, size_t max_facts) {
  FactLines out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == absl::string_view::npos) continue;
    if (out.facts.size() >= max_facts) {
      return absl::ResourceExhaustedError(absl::StrCat("at most ", max_facts, " facts at once"));
    }
    absl::StatusOr<Fact> fact = ParseFactJson(line);
    if (!fact.ok()) return AtLine(line_no, fact.status());
    out.facts.push_back(*std::move(fact));
    out.lines.push_back(line_no);
  }
  return out;
}

absl::StatusOr<Fact> ParseFactJson(absl::string_view text) {
  TOEGANG_ASSIGN_OR_RETURN(json value, ParseText(text));
  return ParseFact(value);
}

absl::StatusOr<Fact> ParseFact(const json& value) {
  if (!value.is_object()) return absl::InvalidArgumentError("a fact must be a JSON object");
  ObjectReader r(value, "");
  TOEGANG_ASSIGN_OR_RETURN(std::string type, r.String("type", true, 32));
  ObjectReader body_reader(value, ShownKey(type) == type ? type : "fact");
  // The body reader names fields as "consent.purposes"; both readers share the object,
  // so every key must be read by the body reader (plus type and recorded_at).
  body_reader.Get("type");
  TOEGANG_ASSIGN_OR_RETURN(std::optional<absl::Time> recorded_at,
                           body_reader.Instant("recorded_at", false));
  TOEGANG_ASSIGN_OR_RETURN(FactBody body, ParseBody(type, body_reader));
  TOEGANG_RETURN_IF_ERROR(body_reader.Finish());
  Fact fact{std::move(body), Provenance{}, std::nullopt};
  fact.provenance.recorded_at = recorded_at;
  return fact;
}

std::string FactToJson(const Fact& fact, bool with_provenance) {
  json j = BodyToJson(fact.body);
  if (fact.provenance.recorded_at) j["recorded_at"] = FormatInstant(*fact.provenance.recorded_at);
  if (with_provenance) {
    j["seq"] = fact.provenance.seq;
    j["arrival"] = InstantOrNull(fact.provenance.arrival);
    if (fact.source) {
      json src = {{"system", fact.source->system}, {"id", fact.source->id}};
      if (!fact.source->version.empty()) src["version"] = fact.source->version;
      if (!fact.source->choice.empty()) src["choice"] = fact.source->choice;
      j["source"] = std::move(src);
    }
  }
  return JsonText(j);
}

namespace {

// Reads the request of the usual shape straight from its text: one object of string
// members, `actor` an object of string members, printable ASCII without escapes, only
// the fields at, actor (id, role, organization), patient, action, category, purpose,
// each present once and valid. Anything else — another field, a null, an escape, a
// repeated key, a value the full reading would refuse — returns nullopt, and the request
// is read the full way (a tree), which for the usual shape gives the same request and
// for the rest the errors. The fuzzer holds the two to the same answer.
class UsualRequest {
 public:
  explicit UsualRequest(absl::string_view text) : text_(text) {}

  std::optional<AccessRequest> Read() {
    if (text_.size() > kMaxJsonLineBytes) return std::nullopt;
    Fields top;
    Fields actor;
    if (!Object(&top, &actor) || !AtEnd()) return std::nullopt;
    if (!actor.seen || top.count != 6) return std::nullopt;  // at, actor + 4
    AccessRequest req;
    absl::StatusOr<absl::Time> at = ParseInstant(top.Of("at"));
    if (!at.ok()) return std::nullopt;
    req.at = *at;
    if (!IdOk(top.Of("patient"), "patient") || !IdOk(actor.Of("id"), "actor.id")) return std::nullopt;
    req.patient = std::string(top.Of("patient"));
    req.actor.id = std::string(actor.Of("id"));
    if (actor.Has("organization")) {
      if (!IdOk(actor.Of("organization"), "actor.organization")) return std::nullopt;
      req.actor.organization = std::string(actor.Of("organization"));
    }
    if (actor.count != 2 + actor.Has("organization")) return std::nullopt;
    if (!ParseName(actor.Of("role"), &req.actor.role) || !ParseName(top.Of("action"), &req.action) ||
        !ParseName(top.Of("category"), &req.category) || !ParseName(top.Of("purpose"), &req.purpose)) {
      return std::nullopt;
    }
    return req;
  }

 private:
  // The members of one object, by the names the usual shape allows.
  struct Fields {
    static constexpr absl::string_view kNames[] = {"at",     "patient", "action",      "category",
                                                   "purpose", "id",     "role",        "organization"};
    std::optional<absl::string_view> values[8];
    int count = 0;
    bool seen = false;  // for actor: the object was there

    // Where `name` goes in values (-1: not a field of the usual shape).
    static int Slot(absl::string_view name) {
      for (int i = 0; i < 8; ++i) {
        if (kNames[i] == name) return i;
      }
      return -1;
    }
    // False for another field or a repeated one.
    bool Set(absl::string_view name, absl::string_view value) {
      const int i = Slot(name);
      if (i < 0 || values[i]) return false;
      values[i] = value;
      ++count;
      return true;
    }
    // REQUIRES: `name` is one of kNames.
    bool Has(absl::string_view name) const { return values[Slot(name)].has_value(); }
    absl::string_view Of(absl::string_view name) const { return values[Slot(name)].value_or(absl::string_view()); }
  };

  static bool IdOk(absl::string_view id, absl::string_view path) {
    return !id.empty() && CheckIdText(id, path, /*check_utf8=*/false).ok();
  }

  void Space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    Space();
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool AtEnd() {
    Space();
    return pos_ == text_.size();
  }
  // A string of printable ASCII without escapes.
  bool String(absl::string_view* out) {
    if (!Eat('"')) return false;
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      const char c = text_[pos_];
      if (c < 0x20 || c > 0x7e || c == '\\') return false;
      ++pos_;
    }
    if (pos_ >= text_.size()) return false;
    *out = text_.substr(start, pos_ - start);
    ++pos_;
    return true;
  }
  // The top-level object (`nested` non-null) or the actor object.
  bool Object(Fields* fields, Fields* nested) {
    if (!Eat('{')) return false;
    if (Eat('}')) return true;
    do {
      absl::string_view name;
      if (!String(&name) || !Eat(':')) return false;
      if (nested != nullptr && name == "actor") {
        if (nested->seen) return false;
        nested->seen = true;
        if (!Object(nested, nullptr)) return false;
        ++fields->count;
        continue;
      }
      absl::string_view value;
      if (!String(&value) || !fields->Set(name, value)) return false;
      if (nested != nullptr && (name == "id" || name == "role" || name == "organization")) return false;
      if (nested == nullptr && name != "id" && name != "role" && name != "organization") return false;
    } while (Eat(','));
    return Eat('}');
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

std::optional<AccessRequest> UsualRequestJson(absl::string_view text) { return UsualRequest(text).Read(); }

absl::StatusOr<AccessRequest> ParseRequestJson(absl::string_view text) {
  // Most requests have the usual shape: read without building a tree (2.3 µs).
  if (std::optional<AccessRequest> usual = UsualRequestJson(text)) return *std::move(usual);
  TOEGANG_ASSIGN_OR_RETURN(json value, ParseText(text));
  return ParseRequest(value);
}

namespace {

// What a request asks, after who and about whom: action, category, purpose, emergency,
// legal order, recipient. With `defaults`, an absent action, category or purpose is the
// question a clinician asks most: read, medical, treatment.
absl::Status ReadWhatIsAsked(ObjectReader& r, AccessRequest* req, bool defaults) {
  if (defaults) {
    TOEGANG_ASSIGN_OR_RETURN(req->action, r.Enum<Action>("action", "action", Action::kRead));
    TOEGANG_ASSIGN_OR_RETURN(req->category, r.Enum<Category>("category", "category", Category::kMedical));
    TOEGANG_ASSIGN_OR_RETURN(req->purpose, r.Enum<Purpose>("purpose", "purpose", Purpose::kTreatment));
  } else {
    TOEGANG_ASSIGN_OR_RETURN(req->action, r.Enum<Action>("action", "action"));
    TOEGANG_ASSIGN_OR_RETURN(req->category, r.Enum<Category>("category", "category"));
    TOEGANG_ASSIGN_OR_RETURN(req->purpose, r.Enum<Purpose>("purpose", "purpose"));
  }
  if (const json* e = r.Get("emergency")) {
    if (!e->is_object()) return FieldError("emergency", "must be an object with a justification");
    ObjectReader er(*e, "emergency");
    req->emergency = true;
    TOEGANG_ASSIGN_OR_RETURN(req->emergency_justification, er.String("justification", false, kMaxTextBytes));
    // Logged (NEN 7513) and answered: never a BSN.
    req->emergency_justification = RedactBsn(req->emergency_justification);
    TOEGANG_RETURN_IF_ERROR(er.Finish());
  }
  if (const json* lo = r.Get("legal_order")) {
    if (lo->is_string()) {
      const std::string& s = lo->get_ref<const std::string&>();
      if (s.empty() || s.size() > kMaxTextBytes) return FieldError("legal_order", "must be a non-empty reference");
      req->legal_order = RedactBsn(s);
    } else if (lo->is_object() && !lo->empty()) {
      std::string s = JsonText(*lo);
      if (s.size() > kMaxTextBytes) return FieldError("legal_order", "is too large");
      req->legal_order = RedactBsn(s);
    } else {
      return FieldError("legal_order", "must be a reference string or an object describing the order");
    }
  }
  TOEGANG_ASSIGN_OR_RETURN(req->recipient, r.PartyField("recipient", false));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AccessRequest> ParseRequest(const json& value) {
  if (!value.is_object()) return absl::InvalidArgumentError("a request must be a JSON object");
  ObjectReader r(value, "");
  AccessRequest req;
  TOEGANG_ASSIGN_OR_RETURN(std::optional<absl::Time> at, r.Instant("at", true));
  req.at = *at;
  TOEGANG_ASSIGN_OR_RETURN(const json* actor, r.Require("actor"));
  if (!actor->is_object()) return FieldError("actor", "must be an object with id, role, organization");
  ObjectReader ar(*actor, "actor");
  TOEGANG_ASSIGN_OR_RETURN(req.actor.id, ar.Id("id", true));
  TOEGANG_ASSIGN_OR_RETURN(req.actor.role, ar.Enum<Role>("role", "role"));
  TOEGANG_ASSIGN_OR_RETURN(req.actor.organization, ar.Id("organization", false));
  TOEGANG_RETURN_IF_ERROR(ar.Finish());
  TOEGANG_ASSIGN_OR_RETURN(req.patient, r.Id("patient", true));
  TOEGANG_RETURN_IF_ERROR(ReadWhatIsAsked(r, &req, /*defaults=*/false));
  if (const json* c = r.Get("consistency")) {
    if (!c->is_object()) return FieldError("consistency", "must be an object with at_least (a consistency token)");
    ObjectReader cr(*c, "consistency");
    TOEGANG_ASSIGN_OR_RETURN(req.at_least, cr.String("at_least", true, kMaxTokenBytes));
    if (req.at_least.empty()) return FieldError("consistency.at_least", "must be a consistency token");
    TOEGANG_RETURN_IF_ERROR(cr.Finish());
  }
  if (const json* e = r.Get("explain")) {
    if (!e->is_boolean()) return FieldError("explain", "must be true or false");
    req.explain = e->get<bool>();
  }
  TOEGANG_RETURN_IF_ERROR(r.Finish());
  return req;
}

absl::StatusOr<AccessRequest> ParseActorRequest(const json& value, absl::string_view actor,
                                                absl::Span<const absl::string_view> passed_over) {
  if (!value.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  TOEGANG_RETURN_IF_ERROR(CheckId(actor, "actor"));
  ObjectReader r(value, "");
  for (absl::string_view key : passed_over) r.Get(key);
  AccessRequest req;
  TOEGANG_ASSIGN_OR_RETURN(std::optional<absl::Time> at, r.Instant("at", true));
  req.at = *at;
  req.actor.id = std::string(actor);
  TOEGANG_ASSIGN_OR_RETURN(req.actor.role, r.Enum<Role>("role", "role"));
  TOEGANG_ASSIGN_OR_RETURN(req.actor.organization, r.Id("organization", false));
  TOEGANG_RETURN_IF_ERROR(ReadWhatIsAsked(r, &req, /*defaults=*/true));
  TOEGANG_RETURN_IF_ERROR(r.Finish());
  return req;
}

json RequestToJsonValue(const AccessRequest& req) {
  json j = json::object();
  j["at"] = FormatInstant(req.at);
  json actor = {{"id", req.actor.id}, {"role", std::string(Name(req.actor.role))}};
  if (!req.actor.organization.empty()) actor["organization"] = req.actor.organization;
  j["actor"] = std::move(actor);
  j["patient"] = req.patient;
  j["action"] = std::string(Name(req.action));
  j["category"] = std::string(Name(req.category));
  j["purpose"] = std::string(Name(req.purpose));
  if (req.emergency) j["emergency"] = json{{"justification", req.emergency_justification}};
  if (req.legal_order) j["legal_order"] = *req.legal_order;
  if (req.recipient) j["recipient"] = PartyToJson(*req.recipient);
  if (!req.at_least.empty()) j["consistency"] = json{{"at_least", req.at_least}};
  if (req.explain) j["explain"] = true;
  return j;
}

namespace {

// The parts of a decision that say on what grounds it stands.
void PutGrounds(const Decision& d, json& j) {
  json reasons = json::array();
  for (Reason r : d.reasons) reasons.push_back(std::string(Name(r)));
  j["reasons"] = std::move(reasons);
  j["legal_basis"] = d.legal_basis ? json(std::string(Name(*d.legal_basis))) : json(nullptr);
  json obligations = json::array();
  for (Obligation o : d.obligations) obligations.push_back(std::string(Name(o)));
  j["obligations"] = std::move(obligations);
  json consents = json::array();
  for (absl::string_view c : d.consents) consents.push_back(std::string(c));
  j["consents"] = std::move(consents);
}

}  // namespace

json DecisionGroundsJson(const Decision& d) {
  json j = json::object();
  j["rule"] = std::string(d.rule);
  PutGrounds(d, j);
  return j;
}

json DecisionToJsonValue(const Decision& d, absl::string_view decision_id) {
  json j = json::object();
  j["decision"] = d.permitted() ? "permit" : "deny";
  PutGrounds(d, j);
  j["age_band"] = d.age_band ? json(std::string(Name(*d.age_band))) : json(nullptr);
  j["policy"] = std::string(d.policy);
  if (!d.rule.empty()) j["rule"] = std::string(d.rule);
  if (!decision_id.empty()) j["decision_id"] = std::string(decision_id);
  if (!d.error.empty()) j["error"] = d.error;
  return j;
}

namespace {

// Appends `s` as a JSON string exactly as JsonText writes it: printable ASCII but `"`
// and `\` as is; anything else (escapes, UTF-8, invalid bytes replaced) by the library.
}  // namespace

void AppendJsonString(std::string* out, absl::string_view s) {
  bool plain = true;
  for (char c : s) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  if (plain) {
    // Three appends, not StrAppend: this libstdc++ has no uninitialised resize, so
    // StrAppend zero-fills what it then overwrites (bench/RESULTS.md, "Explain").
    out->push_back('"');
    out->append(s.data(), s.size());
    out->push_back('"');
  } else {
    out->append(JsonText(json(std::string(s))));
  }
}

namespace {

template <typename E>
void AppendNameOrNull(std::string* out, const std::optional<E>& value) {
  if (value) {
    AppendJsonString(out, Name(*value));
  } else {
    out->append("null");
  }
}

template <typename Values>
void AppendNames(std::string* out, const Values& values) {
  out->push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(out, Name(values[i]));
  }
  out->push_back(']');
}

}  // namespace

// The same text as JsonText(DecisionToJsonValue(d, decision_id)) (keys in the library's
// sorted order; json_test checks it), written straight into the string: every decision
// the CLI and the HTTP front answer goes through here, and the tree cost a microsecond.
std::string DecisionToJson(const Decision& d, absl::string_view decision_id) {
  std::string out;
  out.reserve(256);
  out.append("{\"age_band\":");
  AppendNameOrNull(&out, d.age_band);
  out.append(",\"consents\":[");
  for (size_t i = 0; i < d.consents.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(&out, d.consents[i]);
  }
  out.append("],\"decision\":");
  out.append(d.permitted() ? "\"permit\"" : "\"deny\"");
  if (!decision_id.empty()) {
    out.append(",\"decision_id\":");
    AppendJsonString(&out, decision_id);
  }
  if (!d.error.empty()) {
    out.append(",\"error\":");
    AppendJsonString(&out, d.error);
  }
  out.append(",\"legal_basis\":");
  AppendNameOrNull(&out, d.legal_basis);
  out.append(",\"obligations\":");
  AppendNames(&out, d.obligations);
  out.append(",\"policy\":");
  AppendJsonString(&out, d.policy);
  out.append(",\"reasons\":");
  AppendNames(&out, d.reasons);
  if (!d.rule.empty()) {
    out.append(",\"rule\":");
    AppendJsonString(&out, d.rule);
  }
  out.push_back('}');
  return out;
}

std::string InvalidRequestJson(absl::string_view error) {
  json j = {{"decision", "deny"},
            {"reasons", json::array({"invalid_request"})},
            {"legal_basis", nullptr},
            {"obligations", json::array()},
            {"consents", json::array()},
            {"age_band", nullptr},
            {"error", std::string(error)}};
  return JsonText(j);
}

}  // namespace toegang
