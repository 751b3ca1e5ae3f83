-- wrk script: one fresh value (a wx.login or phone code) per request, read from a file and
-- shared out among wrk's threads. Arguments: <file> <threads> <method> <template>, where the
-- template is the body (POST) or the path (GET), with %s for the value.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- The requests are made up front, so that the load generator spends the measured time sending
-- them rather than formatting them (it shares the CPUs with the server).
function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  local method, template = args[3], args[4]
  wrk.headers["content-type"] = "application/json"
  requests, next_request = {}, 0
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == id then
      local value = string.format(template, line)
      if method == "POST" then
        table.insert(requests, wrk.format("POST", nil, nil, value))
      else
        table.insert(requests, wrk.format("GET", value))
      end
    end
    n = n + 1
  end
  exhausted = wrk.format(method, nil, nil, nil)
end

function request()
  next_request = next_request + 1
  return requests[next_request] or exhausted
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
