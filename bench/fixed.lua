-- wrk script: the same request every time. Arguments: <method> <body-file or -> [content-type,
-- JSON where left out]. With WRK_EXPECTED=1 in the environment, error statuses are the answer
-- measured, not errors.

function init(args)
  wrk.method = args[1]
  if args[2] and args[2] ~= "-" then
    local f = assert(io.open(args[2], "r"))
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["content-type"] = args[3] or "application/json"
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local status = e.status
  if os.getenv("WRK_EXPECTED") == "1" then status = 0 end
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + status + e.timeout))
end
