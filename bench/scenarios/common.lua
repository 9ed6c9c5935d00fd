-- Shared by the scenario scripts: reads the driver's inputs, counts response
-- statuses per thread, and prints one JSON line of results from done().
local common, threads = {}, {} -- threads: the main state's, filled by setup(), read by done()
-- Per-thread status counts: a global, since thread:get() reads only globals.
bench_statuses = {}

-- Every non-empty line of a file the driver wrote (paths, bodies).
function common.lines(path)
  local lines = {}
  for line in io.lines(path) do
    if line ~= "" then lines[#lines + 1] = line end
  end
  assert(#lines > 0, "no lines in " .. path)
  return lines
end

-- The value of a required environment variable.
function common.env(name)
  local value = os.getenv(name)
  assert(value and value ~= "", name .. " is not set (run this script through python -m bench)")
  return value
end

function common.setup(thread)
  threads[#threads + 1] = thread
  thread:set("bench_thread_index", #threads)
end

function common.response(status)
  bench_statuses[status] = (bench_statuses[status] or 0) + 1
end

function common.done(summary, latency, requests)
  -- Statuses that count as success, from BENCH_EXPECT ("200" or "200,304").
  local expected, totals, statuses, unexpected = {}, {}, {}, 0
  for code in string.gmatch(os.getenv("BENCH_EXPECT") or "200", "%d+") do
    expected[tonumber(code)] = true
  end
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("bench_statuses")) do
      totals[status] = (totals[status] or 0) + count
      if not expected[status] then unexpected = unexpected + count end
    end
  end
  for status, count in pairs(totals) do
    statuses[#statuses + 1] = string.format('"%d":%d', status, count)
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},'
      .. '"statuses":{%s},"unexpected_status":%d,'
      .. '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"p50":%d,"p75":%d,"p90":%d,'
      .. '"p95":%d,"p99":%d,"p99_9":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.timeout, errors.status,
    table.concat(statuses, ","), unexpected,
    latency.min, latency.mean, latency.stdev, latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(95), latency:percentile(99), latency:percentile(99.9), latency.max
  ))
end

function common.install() -- the hooks every scenario shares
  setup, response, done = common.setup, common.response, common.done
end

return common
