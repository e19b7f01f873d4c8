-- drawlist.lua: write the pre-queue's drawn order under one owner at a time.
--
-- KEYS[1] draw      hash  state, lister, listing_ms, total, cursor, ...
-- KEYS[2] drawlist  list  "student:course" in drawn order
-- ARGV[1] mode: claim | push | finish
-- ARGV[2] the lister's token
-- ARGV[3] stale ms: a listing whose owner has not written for this long may be taken over (claim)
-- ARGV[3..] (push) entries to append; (finish) the total
--
-- claim:  if no order is being or has been drawn, or the one being listed is
--         stale, make the caller its owner and empty the list; returns 1, else 0.
-- push:   if the caller owns the listing, append the entries; returns 1, else 0.
-- finish: if the caller owns the listing, set total, cursor 0 and state
--         drawing; returns 1, else 0.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode, token = ARGV[1], ARGV[2]
if mode == 'claim' then
  local state = redis.call('HGET', KEYS[1], 'state')
  if state == 'listing' then
    local last = tonumber(redis.call('HGET', KEYS[1], 'listing_ms') or '0')
    if now_ms - last < tonumber(ARGV[3]) then
      return 0
    end
  elseif state then
    return 0
  end
  redis.call('HSET', KEYS[1], 'state', 'listing', 'lister', token, 'listing_ms', now_ms, 'started_ms', now_ms)
  redis.call('DEL', KEYS[2])
  return 1
end
if redis.call('HGET', KEYS[1], 'lister') ~= token or redis.call('HGET', KEYS[1], 'state') ~= 'listing' then
  return 0
end
redis.call('HSET', KEYS[1], 'listing_ms', now_ms)
if mode == 'push' then
  -- unpack is bounded by Lua's C stack (8,000 values): push in slices
  for i = 3, #ARGV, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  return 1
end
redis.call('HSET', KEYS[1], 'total', ARGV[3], 'cursor', 0, 'state', 'drawing')
return 1
