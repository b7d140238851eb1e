-- POST /v1/classes: a new class per request (its outbox row is written in the same commit).
-- Arguments: user=<X-User-ID> run=<unique run tag>

local counter = 0
local run = "r"

function init(args)
   local options = parse_args(args)
   wrk.method = "POST"
   wrk.headers["X-User-ID"] = options.user or "bench-writer"
   wrk.headers["Content-Type"] = "application/json"
   run = options.run or run
end

function request()
   counter = counter + 1
   local body = string.format(
      '{"name":"Bench %s-%d-%d","course_codes":["ENG5"]}', run, thread_number, counter)
   return wrk.format("POST", "/v1/classes", nil, body)
end
