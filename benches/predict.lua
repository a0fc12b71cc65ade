-- wrk script: POST one photo (the file named by $IMG) as a raw image/jpeg body, and print
-- the run's summary as one JSON line (latencies in ms).
local file = assert(io.open(os.getenv("IMG"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "image/jpeg"
file:close()

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "requests_per_second": %.3f, "p50_ms": %.1f, ' ..
    '"p90_ms": %.1f, "p99_ms": %.1f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1e3,
    latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, e.status,
    e.connect + e.read + e.write + e.timeout))
end
