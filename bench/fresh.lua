-- wrk script: one fresh value (a wx.login or phone code) per request, read from a file and
-- shared out among wrk's threads. Arguments: <file> <threads> <method> <template>, where the
-- template is the body (POST) or the path (GET), with %s for the value.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  method, template = args[3], args[4]
  values, next_value = {}, 0
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then
      table.insert(values, line)
    end
    n = n + 1
  end
  wrk.headers["content-type"] = "application/json"
end

function request()
  next_value = next_value + 1
  local value = values[next_value] or "exhausted"
  if method == "POST" then
    return wrk.format("POST", nil, nil, string.format(template, value))
  end
  return wrk.format("GET", string.format(template, value))
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
