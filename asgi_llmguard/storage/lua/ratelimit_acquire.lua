-- GCRA over several limits at once, all or nothing: one call is one rate-limit decision.
-- The twin of MemoryRateLimitStore.acquire (asgi_llmguard/storage/ratelimit_memory.py).
--
-- KEYS[i]  the TAT (theoretical arrival time, integer microseconds on Redis's clock) of limit i
-- ARGV     for each key: interval_us, capacity_us, cost   (all integers)
-- Returns  for each key: denies (0/1), remaining, reset_us, retry_us
--
-- Time comes from Redis itself (TIME), so replicas with skewed clocks still share one timeline.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tats, news = {}, {}
local allowed = true
for i = 1, n do
  local interval = tonumber(ARGV[3 * i - 2])
  local capacity = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then
    tat = math.max(tonumber(stored), now)
  end
  tats[i] = tat
  news[i] = tat + cost * interval
  if news[i] - capacity > now then
    allowed = false
  end
end
local out = {}
for i = 1, n do
  local interval = tonumber(ARGV[3 * i - 2])
  local capacity = tonumber(ARGV[3 * i - 1])
  local tat, new = tats[i], news[i]
  local denies = new - capacity > now
  if allowed then
    tat = new
    if new > now then
      redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
    end
  end
  local retry = 0
  if denies then
    retry = new - capacity - now
  end
  out[4 * i - 3] = denies and 1 or 0
  out[4 * i - 2] = math.floor((capacity - (tat - now)) / interval)
  out[4 * i - 1] = tat - now
  out[4 * i] = retry
end
return out
