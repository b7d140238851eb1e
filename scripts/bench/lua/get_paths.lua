-- GET of the given paths in turn (searches, batches, sorts: each path with its query).
-- Arguments: user=<X-User-ID> paths=<path|path|...>

local paths = {}
local counter = 0

function init(args)
   local options = parse_args(args)
   wrk.headers["X-User-ID"] = options.user or "bench-reader"
   for path in string.gmatch(options.paths or "", "[^|]+") do
      paths[#paths + 1] = path
   end
end

function request()
   counter = counter + 1
   return wrk.format("GET", paths[(counter % #paths) + 1])
end
