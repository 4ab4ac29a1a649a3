-- wrk load script for the ZLMediaKit ingest (not run by ctest). Each wrk thread is one media
-- server ("bench-<n>") numbering its hooks with one hook_index counter, as ZLMediaKit does, over
-- all of that thread's keep-alive connections (so arrivals are slightly out of order, as in real
-- bursts); every body differs (nothing is a retry). Against a release hookstreamd on a temp dir:
--   hookstreamd --data_dir=$(mktemp -d) --http_listen=127.0.0.1:17180 &
--   wrk -t2 -c32 -d10s --latency -s tests/ingest/wrk_zlm_hooks.lua http://127.0.0.1:17180 \
--       -- on_flow_report        # or on_publish
-- Non-200 answers are printed to stderr.
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  hook = args[1] or "on_flow_report"
  server = "bench-" .. tid
  counter = 0
end
function request()
  local i = counter
  counter = counter + 1
  local body
  if hook == "on_publish" then
    body = string.format('{\n\t"app" : "live",\n\t"hook_index" : %d,\n\t"id" : "%d",\n\t"ip" : "127.0.0.1",\n\t"mediaServerId" : "%s",\n\t"originType" : 1,\n\t"originTypeStr" : "rtmp_push",\n\t"params" : "",\n\t"port" : 41176,\n\t"protocol" : "rtmp",\n\t"schema" : "rtmp",\n\t"stream" : "s%d",\n\t"vhost" : "__defaultVhost__"\n}', i, i, server, i)
  else
    body = string.format('{\n\t"app" : "live",\n\t"duration" : 20,\n\t"hook_index" : %d,\n\t"id" : "2-11",\n\t"ip" : "127.0.0.1",\n\t"mediaServerId" : "%s",\n\t"params" : "",\n\t"player" : false,\n\t"port" : 41176,\n\t"protocol" : "rtmp",\n\t"schema" : "rtmp",\n\t"stream" : "s%d",\n\t"totalBytes" : %d,\n\t"vhost" : "__defaultVhost__"\n}', i, server, i % 100, i)
  end
  return wrk.format("POST", "/index/hook/" .. hook, {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
