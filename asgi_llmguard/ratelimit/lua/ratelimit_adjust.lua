-- Add units to (or, with a negative cost, give them back from) several limits, without a check:
-- the reconciliation of a reservation with what the request really used.
-- The twin of MemoryRateLimitStore.adjust (asgi_llmguard/storage/ratelimit_memory.py).
--
-- KEYS[i]  the TAT of limit i (integer microseconds on Redis's clock)
-- ARGV     for each key: interval_us, cost
-- A bucket never holds more than full: a refund stops at "now".
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local cost = tonumber(ARGV[2 * i])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then
    tat = math.max(tonumber(stored), now)
  end
  local new = tat + cost * interval
  if new > now then
    redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
  else
    redis.call('DEL', KEYS[i])
  end
end
return #KEYS
