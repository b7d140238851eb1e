-- POST /v1/classes/students: a student in two classes, with an email unique per request.
-- Arguments: user=<X-User-ID> ids=<class_id,class_id> run=<unique run tag>

local class_ids = ""
local counter = 0
local run = "r"

function init(args)
   local options = parse_args(args)
   wrk.headers["X-User-ID"] = options.user or "bench-writer"
   wrk.headers["Content-Type"] = "application/json"
   local ids = split_ids(options.ids)
   class_ids = '"' .. table.concat(ids, '","') .. '"'
   run = options.run or run
end

function request()
   counter = counter + 1
   local body = string.format(
      '{"person_name":{"first_name":"Ada%d","last_name":"Bench%s"},' ..
      '"email":"s-%s-%d-%d@bench.example.com","class_ids":[%s]}',
      counter, run, run, thread_number, counter, class_ids)
   return wrk.format("POST", "/v1/classes/students", nil, body)
end
