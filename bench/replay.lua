-- wrk script: replay pre-built SCEP requests, each exactly once, and count
-- the CertReps whose pkiStatus is SUCCESS.
--   wrk -t T -c C -d LIMIT -s bench/replay.lua URL -- LIST THREADS
-- LIST holds one request file per line; thread i sends lines i, i+T, ...
-- Once its share is sent, a connection asks GetCACaps instead; when every
-- connection of the thread has done so, all its requests are answered and
-- the thread stops, leaving a marker file in DONEDIR so the caller can end
-- wrk (which otherwise runs for its full -d).
--   wrk ... -- LIST THREADS CONNECTIONS_PER_THREAD DONEDIR

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } scep_timespec;
int clock_gettime(int clk, scep_timespec *ts);
]]

local function now()
    local ts = ffi.new("scep_timespec")
    ffi.C.clock_gettime(1, ts)   -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

-- pkiStatus attribute (OID 2.16.840.1.113733.1.9.3) = PrintableString "0"
local SUCCESS = "\6\10\96\134\72\1\134\248\69\1\9\3\49\3\19\1\48"

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    local nthreads = tonumber(args[2])
    bodies = {}
    local i = 0
    for line in io.lines(args[1]) do
        if i % nthreads == id then
            local f = assert(io.open(line, "rb"))
            bodies[#bodies + 1] = f:read("*a")
            f:close()
        end
        i = i + 1
    end
    conns = tonumber(args[3])
    donedir = args[4]
    sent, answered, ok, first, last, idle = 0, 0, 0, 0, 0, 0
    headers = { ["Content-Type"] = "application/x-pki-message" }
end

function request()
    if sent >= #bodies then
        -- nothing left: a cheap request keeps wrk's loop busy until stop
        return wrk.format("GET", wrk.path:gsub("%?.*", "") ..
                          "?operation=GetCACaps")
    end
    sent = sent + 1
    if first == 0 then first = now() end
    return wrk.format("POST", nil, headers, bodies[sent])
end

function response(status, hdrs, body)
    if body:byte(1) == 0x30 or status ~= 200 then   -- a CertRep or an error
        answered = answered + 1
        if status == 200 and body:find(SUCCESS, 1, true) then
            ok = ok + 1
        end
        last = now()
        return
    end
    idle = idle + 1
    if idle == conns then
        local f = io.open(donedir .. "/" .. id, "w")
        if f then f:close() end
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local total, okall, t0, t1 = 0, 0, math.huge, 0
    for _, t in ipairs(threads) do
        total = total + t:get("answered")
        okall = okall + t:get("ok")
        local f, l = t:get("first"), t:get("last")
        if f > 0 and f < t0 then t0 = f end
        if l > t1 then t1 = l end
    end
    local secs = t1 - t0
    io.write(string.format("RESULT answered=%d success=%d seconds=%.3f " ..
                           "rate=%.1f p50_ms=%.2f p99_ms=%.2f\n",
                           total, okall, secs,
                           secs > 0 and okall / secs or 0,
                           latency:percentile(50) / 1000,
                           latency:percentile(99) / 1000))
end
