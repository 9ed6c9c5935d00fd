-- GETs rotating over BENCH_PATHS (one per line, verified on every server first): film
-- details, searches, the mixed load; with BENCH_WRITES ("path<TAB>json body" lines),
-- one authenticated PATCH every BENCH_WRITE_EVERY requests (BENCH_TOKEN: the bearer).
local common = require("common")
common.install()

local reads, writes, every, count, read_index, write_index = {}, {}, 0, 0, 1, 1

function init(args)
  for _, path in ipairs(common.lines(common.env("BENCH_PATHS"))) do
    reads[#reads + 1] = wrk.format("GET", path)
  end
  if os.getenv("BENCH_WRITES") then
    every = tonumber(common.env("BENCH_WRITE_EVERY"))
    local headers = {
      ["Authorization"] = "Bearer " .. common.env("BENCH_TOKEN"),
      ["Content-Type"] = "application/json",
    }
    for _, line in ipairs(common.lines(common.env("BENCH_WRITES"))) do
      local path, body = line:match("^([^\t]+)\t(.+)$")
      writes[#writes + 1] = wrk.format("PATCH", path, headers, body)
    end
  end
  -- Threads start at different places so they do not ask for the same row at once.
  local start = (bench_thread_index or 1) * 7919
  read_index, write_index = start % #reads + 1, start % math.max(#writes, 1) + 1
end

function request()
  count = count + 1
  if every > 0 and count % every == 0 then
    write_index = write_index % #writes + 1
    return writes[write_index]
  end
  read_index = read_index % #reads + 1
  return reads[read_index]
end
