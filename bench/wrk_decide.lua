-- wrk script: POST one access request per call to /v1/decisions (keep-alive).
--   TOEGANG_TOKEN=$(awk '!/^#/{print $2; exit}' var/tokens) wrk -t2 -c64 -d10s -s bench/wrk_decide.lua http://127.0.0.1:PORT
-- The sidecar needs a bearer token with the decide scope: TOEGANG_TOKEN=... wrk ...
--
-- Without TOEGANG_WRK_PATIENTS: a treating clinician reads one of 1,000 patients (the
-- sidecar benchmark's store). With TOEGANG_WRK_PATIENTS=N: the mix of bench/engine_bench
-- over its store of N patients (serve --db on a copy of /tmp/toegang-engine-bench-N):
-- random patients; clinicians reading (45%), parents (45%), insurers (10%).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOEGANG_TOKEN") or "")
local patients = tonumber(os.getenv("TOEGANG_WRK_PATIENTS") or "0")
local n = 0

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
end

local function engine_bench_mix()
  local i = math.random(0, patients - 1)
  local kind = n % 20
  local actor, category, purpose
  if kind < 9 then
    actor = string.format('{"id":"clin-%d","role":"clinician"}', i % 5000)
    category, purpose = "medical", "treatment"
  elseif kind < 18 then
    actor = string.format('{"id":"par-%d","role":"parent"}', i)
    category, purpose = "medical", "patient_request"
  else
    actor = '{"id":"ins-1","role":"insurer","organization":"zorgverzekeraar-a"}'
    category, purpose = "financial", "billing"
  end
  return string.format('{"at":"2026-06-15T08:30:00Z","actor":%s,"patient":"pat-%d","action":"read","category":"%s","purpose":"%s"}',
                       actor, i, category, purpose)
end

request = function()
  n = n + 1
  local body
  if patients > 0 then
    body = engine_bench_mix()
  else
    body = string.format('{"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-%d","action":"read","category":"medical","purpose":"treatment"}', n % 1000)
  end
  return wrk.format(nil, "/v1/decisions", nil, body)
end
