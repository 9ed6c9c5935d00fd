-- GETs rotating over paths from BENCH_PATHS (one per line, already shuffled
-- by the driver and verified on both servers): random film details, searches.
local common = require("common")
common.install()

local requests = {}
local next_index = 1

function init(args)
  for _, path in ipairs(common.lines(common.env("BENCH_PATHS"))) do
    requests[#requests + 1] = wrk.format("GET", path)
  end
  -- Threads start at different places so they do not ask for the same row at once.
  next_index = (bench_thread_index or 1) * 7919 % #requests + 1
end

function request()
  local req = requests[next_index]
  next_index = next_index % #requests + 1
  return req
end
