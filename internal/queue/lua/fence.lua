-- fence.lua: a new drain leader takes the next fence. Only the holder of the
-- redsync lock may (its value is checked here), and the fence never goes
-- back: it is above both Redis' last fence and MariaDB's (ARGV[2], read by
-- the leader first), so a Redis that lost data cannot hand out a fence a
-- former leader still holds.
--
-- KEYS[1] fence string, KEYS[2] the redsync lock key
-- ARGV[1] the caller's lock value, ARGV[2] MariaDB's fence
--
-- Returns the new fence, or the error NOTLOCKED.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('NOTLOCKED the drain lock is not held by the caller')
end
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[2])
if floor > cur then
  cur = floor
end
cur = cur + 1
redis.call('SET', KEYS[1], cur)
return cur
