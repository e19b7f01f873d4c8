-- ratelimit.lua: fixed-window counters for several limits in one round trip.
--
-- KEYS[i]    string  counter of limit i in its current window
-- ARGV[2i-1] limit i (requests per window; 0 = off), ARGV[2i] window of limit i in ms
--
-- Every counter is incremented (a refused request still counts against the
-- others, so a client hammering a limit keeps being refused).
-- Returns {0} when every limit holds, or {i, retry_ms} for the first limit i
-- that is exceeded, with the time until its window ends.
local hit, retry = 0, 0
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  if limit > 0 then
    local n = redis.call('INCR', KEYS[i])
    if n == 1 then
      redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
    end
    if n > limit and hit == 0 then
      hit = i
      retry = redis.call('PTTL', KEYS[i])
      if retry < 0 then
        redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
        retry = tonumber(ARGV[2 * i])
      end
    end
  end
end
if hit == 0 then
  return {0}
end
return {hit, retry}
