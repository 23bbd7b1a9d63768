-- wrk script: replay pre-built SCEP requests, each exactly once, count the
-- CertReps whose pkiStatus is SUCCESS and time each of them.
--   wrk -t C -c C -d LIMIT -s bench/replay.lua URL -- LIST C DONEDIR
-- One connection per thread, so that a thread's request() and response()
-- alternate and each enrollment is timed on its own (wrk's own latency
-- figures would mix in the filler requests below). LIST holds one request
-- file per line; thread i sends lines i, i+C, ... Once its share is
-- answered, a thread asks GetCACaps (untimed) and leaves a marker file in
-- DONEDIR, so the caller can end wrk, which otherwise runs for its full -d.
--   ... -- LIST C DONEDIR CONTENT-TYPE 200 FILLER-PATH
-- (OTA profiles, bench/ota.py): bodies of that Content-Type, an answer
-- counts when its status is 200, and the untimed filler is a GET of
-- FILLER-PATH.

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
    donedir = args[3]
    sent, answered, ok, first, last, started = 0, 0, 0, 0, 0, 0
    lat = {}
    marked = false
    pending = nil
    headers = { ["Content-Type"] = args[4] or "application/x-pki-message" }
    ok_by_status = args[5] == "200"
    filler = args[6]
end

-- wrk calls request() once more, untimed and never sent, to inspect it:
-- a body goes only once its answer came, so that call costs none.
function request()
    if not pending then
        if sent >= #bodies then
            started = 0
            return wrk.format("GET", filler or (wrk.path:gsub("%?.*", "") ..
                                                "?operation=GetCACaps"))
        end
        sent = sent + 1
        pending = bodies[sent]
    end
    started = now()
    if answered == 0 then first = started end
    return wrk.format("POST", nil, headers, pending)
end

function response(status, hdrs, body)
    if started > 0 then
        local t = now()
        answered = answered + 1
        lat[answered] = t - started
        if status == 200 and (ok_by_status or body:find(SUCCESS, 1, true)) then
            ok = ok + 1
        end
        last = t
        started = 0
        pending = nil
    end
    if answered >= #bodies and not marked then
        marked = true
        local f = io.open(donedir .. "/" .. id, "w")
        if f then f:close() end
        wrk.thread:stop()
    end
end

local function percentile(sorted, p)
    if #sorted == 0 then return 0 end
    local k = math.max(1, math.ceil(#sorted * p / 100))
    return sorted[k]
end

function done(summary, latency, requests)
    local total, okall, t0, t1, all = 0, 0, math.huge, 0, {}
    for _, t in ipairs(threads) do
        total = total + t:get("answered")
        okall = okall + t:get("ok")
        local f, l = t:get("first"), t:get("last")
        if f > 0 and f < t0 then t0 = f end
        if l > t1 then t1 = l end
        for _, v in ipairs(t:get("lat") or {}) do all[#all + 1] = v end
    end
    table.sort(all)
    local secs = t1 - t0
    io.write(string.format("RESULT answered=%d success=%d seconds=%.3f " ..
                           "rate=%.1f p50_ms=%.2f p99_ms=%.2f\n",
                           total, okall, secs,
                           secs > 0 and okall / secs or 0,
                           percentile(all, 50) * 1000,
                           percentile(all, 99) * 1000))
end
