-- Conditional GETs: the URL on the command line with If-None-Match set to the
-- ETag the driver fetched first; every response must be a 304 (BENCH_EXPECT).
local common = require("common")
common.install()

function init(args)
  wrk.headers["If-None-Match"] = common.env("BENCH_ETAG")
end
