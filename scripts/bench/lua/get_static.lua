-- GET of the URL's own path: wrk builds the request once (no per-request Lua).
-- Arguments: user=<X-User-ID>

function init(args)
   local options = parse_args(args)
   wrk.headers["X-User-ID"] = options.user or "bench-reader"
end
