-- wrk script for benchmarks/server.py: hawkBit DDI polls spread over many devices, each with its own token.
--
-- Environment:
--   DDI_DEVICES  a file of "controllerId token" lines (one device a line; benchmarks/server.py writes it)
--   DDI_TENANT   the tenant path segment (default "DEFAULT")
--
-- Every request is `GET /{tenant}/controller/v1/{controllerId}` with `Authorization: TargetToken {token}`,
-- the poll a real client sends.  Each wrk thread walks the device list round robin from its own offset, so
-- all devices are polled about equally and no two threads send the same device at once.  done() prints one
-- JSON line (prefixed "DDI_RESULT ") that the Python side parses: counts, errors and latency percentiles.

local devices = {}
local next_index = 1
local thread_count = 0
local threads = {}

local function load_devices()
  local path = os.getenv("DDI_DEVICES")
  if path == nil then
    error("DDI_DEVICES is not set (a file of 'controllerId token' lines)")
  end
  local file = assert(io.open(path, "r"))
  local list = {}
  for line in file:lines() do
    local id, token = line:match("^(%S+)%s+(%S+)$")
    if id ~= nil then
      list[#list + 1] = { id = id, token = token }
    end
  end
  file:close()
  if #list == 0 then
    error("no devices in " .. path)
  end
  return list
end

function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

function init(args)
  local tenant = os.getenv("DDI_TENANT") or "DEFAULT"
  local loaded = load_devices()
  -- Pre-format every request once: the load generator must cost as little per request as possible.
  for i, device in ipairs(loaded) do
    devices[i] = wrk.format("GET", "/" .. tenant .. "/controller/v1/" .. device.id,
      { ["Authorization"] = "TargetToken " .. device.token, ["Accept"] = "application/hal+json" })
  end
  local count = #devices
  local threads_total = tonumber(os.getenv("DDI_THREADS") or "1")
  next_index = (math.floor(count * (thread_number or 0) / threads_total) % count) + 1
end

function request()
  local req = devices[next_index]
  next_index = next_index + 1
  if next_index > #devices then
    next_index = 1
  end
  return req
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    'DDI_RESULT {"requests": %d, "seconds": %.6f, "bytes": %d, "status_errors": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "mean_us": %.1f, "threads": %d}\n',
    summary.requests, seconds, summary.bytes, errors.status, errors.connect, errors.read, errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, thread_count))
end
