-- Shared by every scenario (run_bench.py puts it in front of the scenario's script).
-- Each thread gets a number; done() prints one JSON line that run_bench.py parses.

local thread_count = 0

function setup(thread)
   thread:set("thread_number", thread_count)
   thread_count = thread_count + 1
end

-- "k=v" arguments after `--` on the wrk command line, in every thread.
function parse_args(args)
   local parsed = {}
   for _, arg in ipairs(args) do
      local key, value = arg:match("^([^=]+)=(.*)$")
      if key then
         parsed[key] = value
      end
   end
   return parsed
end

function split_ids(text)
   local ids = {}
   for id in string.gmatch(text or "", "[^,]+") do
      ids[#ids + 1] = id
   end
   return ids
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,' ..
      '"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
