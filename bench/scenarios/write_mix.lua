-- Reads with a low rate of authenticated writes: one PATCH every
-- BENCH_WRITE_EVERY requests, GETs over BENCH_PATHS in between.
-- BENCH_WRITES holds "path<TAB>json body" lines; BENCH_TOKEN the bearer token.
local common = require("common")
common.install()

local reads, writes = {}, {}
local every = 20
local count, read_index, write_index = 0, 1, 1

function init(args)
  every = tonumber(common.env("BENCH_WRITE_EVERY"))
  for _, path in ipairs(common.lines(common.env("BENCH_PATHS"))) do
    reads[#reads + 1] = wrk.format("GET", path)
  end
  local headers = {
    ["Authorization"] = "Bearer " .. common.env("BENCH_TOKEN"),
    ["Content-Type"] = "application/json",
  }
  for _, line in ipairs(common.lines(common.env("BENCH_WRITES"))) do
    local path, body = line:match("^([^\t]+)\t(.+)$")
    writes[#writes + 1] = wrk.format("PATCH", path, headers, body)
  end
  local start = (bench_thread_index or 1) * 7919
  read_index = start % #reads + 1
  write_index = start % #writes + 1
end

function request()
  count = count + 1
  if count % every == 0 then
    local req = writes[write_index]
    write_index = write_index % #writes + 1
    return req
  end
  local req = reads[read_index]
  read_index = read_index % #reads + 1
  return req
end
