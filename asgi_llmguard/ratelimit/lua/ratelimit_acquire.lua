-- GCRA over several limits at once, all or nothing: one call is one rate-limit decision.
-- The twin of MemoryRateLimitStore.acquire (asgi_llmguard/storage/ratelimit_memory.py).
--
-- KEYS[i]  the TAT (theoretical arrival time, integer microseconds on Redis's clock) of limit i
-- ARGV     for each key: interval_us, capacity_us, cost   (all integers)
-- Returns  one string of space-separated integers, four per key: denies (0/1), remaining,
--          reset_us, retry_us. (A string, because a client parses one bulk string much faster
--          than an array of integers, and this reply is on every guarded request's path.)
--
-- Time comes from Redis itself (TIME), so replicas with skewed clocks still share one timeline.
-- All values stay integers below 2^53, so the arithmetic is exact, as in the Python twin.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local intervals, capacities, tats, news = {}, {}, {}, {}
local allowed = true
for i = 1, n do
  local interval, capacity = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
  if tat < now then
    tat = now
  end
  local new = tat + tonumber(ARGV[3 * i]) * interval
  intervals[i], capacities[i], tats[i], news[i] = interval, capacity, tat, new
  if new - capacity > now then
    allowed = false
  end
end
local out = {}
for i = 1, n do
  local interval, capacity, tat, new = intervals[i], capacities[i], tats[i], news[i]
  local denies, retry = 0, 0
  if new - capacity > now then
    denies, retry = 1, new - capacity - now
  end
  if allowed then
    tat = new
    if new > now then
      redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
    end
  end
  out[i] = string.format('%d %d %d %d', denies, math.floor((capacity - (tat - now)) / interval), tat - now, retry)
end
return table.concat(out, ' ')
