-- wrk script: GET /get/{key} for a key picked at random from the file in $KEYS_FILE
-- (one key per line), so every request asks Redis for a different existing key.
local keys = {}

function init(args)
    for line in io.lines(os.getenv("KEYS_FILE")) do
        keys[#keys + 1] = line
    end
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
    return wrk.format("GET", "/get/" .. keys[math.random(#keys)])
end
