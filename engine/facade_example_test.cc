// Copyright toegang authors.
//
// The example at the top of engine/toegang.h, as written there, so that it compiles
// and does what it says.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/toegang.h"
#include "gtest/gtest.h"
#include "model/json.h"

namespace toegang {
namespace {

TEST(FacadeExample, DoesWhatTheHeaderSays) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/facade_example";
  std::filesystem::remove_all(dir);
  std::vector<Fact> facts = {
      *ParseFactJson(R"({"type":"person","id":"pat-1","birth_date":"1980-04-02"})"),
      *ParseFactJson(R"({"type":"relationship","id":"rel-1","subject":"clin-1","relation":"treating","object":"pat-1","from":"2026-01-05T00:00:00+01:00"})"),
  };
  AccessRequest request = *ParseRequestJson(
      R"({"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-1","action":"read","category":"medical","purpose":"treatment"})");

  // --- as in engine/toegang.h ---
  toegang::Options options;                 // in memory, wgbo-default
  options.db_path = dir;                    // durable (RocksDB)
  absl::StatusOr<std::unique_ptr<toegang::Engine>> engine = toegang::Engine::Open(std::move(options));
  ASSERT_TRUE(engine.ok()) << engine.status();
  absl::StatusOr<uint64_t> last = (*engine)->Record(facts);   // all or nothing
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, 2u);
  toegang::EngineDecision d = (*engine)->Decide(request);
  EXPECT_TRUE(d.decision.permitted());
}

}  // namespace
}  // namespace toegang
