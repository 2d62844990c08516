-- wrk script: POST one access request per call to /v1/decisions (keep-alive).
--   TOEGANG_TOKEN=$(awk '!/^#/{print $2; exit}' var/tokens) wrk -t2 -c64 -d10s -s bench/wrk_decide.lua http://127.0.0.1:PORT
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- The sidecar needs a bearer token with the decide scope: TOEGANG_TOKEN=... wrk ...
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOEGANG_TOKEN") or "")
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"at":"2026-03-10T10:00:00+01:00","actor":{"id":"clin-1","role":"clinician"},"patient":"pat-%d","action":"read","category":"medical","purpose":"treatment"}', n % 1000)
  return wrk.format(nil, "/v1/decisions", nil, body)
end
