-- GET /v1/classes/<id><suffix>, taking the given ids in turn.
-- Arguments: user=<X-User-ID> ids=<id,id,...> [suffix=/roster?limit=50]

local ids = {}
local suffix = ""
local counter = 0

function init(args)
   local options = parse_args(args)
   wrk.headers["X-User-ID"] = options.user or "bench-reader"
   ids = split_ids(options.ids)
   suffix = options.suffix or ""
end

function request()
   counter = counter + 1
   return wrk.format("GET", "/v1/classes/" .. ids[(counter % #ids) + 1] .. suffix)
end
