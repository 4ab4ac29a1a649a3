-- wrk script: POST a 256-byte JSON body, as webhook_bench's deliveries carry.
wrk.method = "POST"
wrk.body = '{"p":"' .. string.rep("x", 256) .. '"}'
wrk.headers["Content-Type"] = "application/json"
