-- login.lua: counts one login attempt BEFORE its password is checked, in one
-- atomic step, so concurrent guesses can never all pass a budget.
--
-- KEYS[1] attempts of this account from this client address (fixed window)
-- KEYS[2] recent failed-or-pending attempts of this account from anywhere
-- KEYS[3] the account's back-off: Redis time (ms) before which it is refused
-- ARGV[1] pair budget (0 = off)   ARGV[2] pair window ms
-- ARGV[3] back-off after this many account attempts (0 = off)
-- ARGV[4] account window ms       ARGV[5] base delay ms   ARGV[6] cap ms
--
-- Returns {0} when the attempt may be checked, {1, retry_ms} when the
-- (account, address) budget is spent, {2, retry_ms} while the account backs off.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pairN, after = tonumber(ARGV[1]), tonumber(ARGV[3])
if after > 0 then
  local nextAt = tonumber(redis.call('GET', KEYS[3]) or '0')
  if nextAt > now then
    return {2, nextAt - now}
  end
end
if pairN > 0 then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  if n > pairN then
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[1], ARGV[2])
      ttl = tonumber(ARGV[2])
    end
    return {1, ttl}
  end
end
if after > 0 then
  local f = redis.call('INCR', KEYS[2])
  if f == 1 then
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  end
  if f >= after then
    local d = tonumber(ARGV[5]) * (2 ^ math.min(f - after, 30))
    d = math.min(d, tonumber(ARGV[6]))
    redis.call('SET', KEYS[3], tostring(now + d), 'PX', math.floor(d) + 1000)
  end
end
return {0}
