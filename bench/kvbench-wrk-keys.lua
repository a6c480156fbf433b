-- wrk script for bench/kvbench-vs-wrk.sh: GET /get/{key} for a key picked uniformly at random from
-- $KEYS_FILE (seed format or one key per line), the same key set and distribution kvbench uses.
local keys = {}

function init(args)
    for line in io.lines(os.getenv("KEYS_FILE")) do
        keys[#keys + 1] = line:match("^[^ ]+")
    end
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
    return wrk.format("GET", "/get/" .. keys[math.random(#keys)])
end
