-- PUT /v1/classes/{id}: renames the user's classes in turn (no If-Match: last write wins).
-- Arguments: user=<X-User-ID> ids=<id,id,...> run=<unique run tag>

local ids = {}
local counter = 0
local run = "r"

function init(args)
   local options = parse_args(args)
   wrk.headers["X-User-ID"] = options.user or "bench-updater"
   wrk.headers["Content-Type"] = "application/json"
   ids = split_ids(options.ids)
   run = options.run or run
end

function request()
   counter = counter + 1
   -- Threads start at different offsets so they rarely wait on the same row lock.
   local index = ((counter * 7 + thread_number * 13) % #ids) + 1
   local body = string.format('{"name":"Renamed %s-%d-%d"}', run, thread_number, counter)
   return wrk.format("PUT", "/v1/classes/" .. ids[index], nil, body)
end
