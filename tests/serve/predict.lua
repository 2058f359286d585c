-- predict.lua - wrk script for the serve load test: every request POSTs one image to /predict.
--   STYLENET_WRK_IMAGE=photo.png wrk -t2 -c4 -d3s --latency -s tests/serve/predict.lua http://127.0.0.1:8080/predict
local path = os.getenv("STYLENET_WRK_IMAGE")
if not path then error("set STYLENET_WRK_IMAGE to the image to send") end
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = path:match("%.jpe?g$") and "image/jpeg" or "image/png"
