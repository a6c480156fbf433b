-- wrk script: GET /get/{key} for a key picked at random from the file in $KEYS_FILE
-- (one key per line), so every request asks Redis for a different existing key.
-- The requests are formatted once, in init: per request wrk only draws a number, so the
-- client spends on (a) about what it spends on a fixed path like /healthz.
local requests = {}

function init(args)
    for line in io.lines(os.getenv("KEYS_FILE")) do
        requests[#requests + 1] = wrk.format("GET", "/get/" .. line)
    end
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
    return requests[math.random(#requests)]
end
