-- Appended to a scenario's script for a paced run (run_bench.py): each thread sends at a
-- fixed rate, its requests due at fixed intervals whatever the earlier ones took (a slot
-- missed is sent at once), so a slow response does not lower the rate it is measured at.
-- wrk measures each request from its send, after the delay.
-- Arguments: the scenario's, and rate=<requests per second of this thread>

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_ms()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
   return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local interval_ms = 0
local next_ms = nil
local scenario_init = init

function init(args)
   scenario_init(args)
   interval_ms = 1000 / tonumber(parse_args(args).rate)
end

function delay()
   local now = now_ms()
   if next_ms == nil then
      next_ms = now
   end
   next_ms = next_ms + interval_ms
   return math.max(0, next_ms - now)
end
