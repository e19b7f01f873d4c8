-- _release.lua (prelude, prepended to the scripts that settle a request's
-- promise): a request's claim on its section's seat hint is settled once.
--
-- Admission takes one unit of the hint and counts the request in pcount. The
-- claim is settled by the first of: the pre-ack just before the decision
-- commits (preack.lua), the cancellation (cancel.lua), the ack (ack.lua).
-- Settling takes the request out of pcount and, unless it is enrolled, gives
-- the unit back. preack records what it settled as ('E' enrolled, 'R'
-- released) so a replay changes nothing, and a request first settled as
-- enrolled and later decided otherwise (its commit failed and it was decided
-- again) still gets its unit back; the other way round (released, then
-- enrolled) leaves the hint one too high, which costs speed, never a seat.
--
-- settle(preack_key, pcount_key, seats_key, id, status, course)
local function settle(pk, pck, sk, id, status, course)
  local prev = redis.call('HGET', pk, id)
  if not prev then
    redis.call('HINCRBY', pck, course, -1)
  end
  local now = 'R'
  if status == 'enrolled' then
    now = 'E'
  end
  if now == 'R' and prev ~= 'R' and redis.call('HEXISTS', sk, course) == 1 then
    redis.call('HINCRBY', sk, course, 1)
  end
  if prev ~= 'R' then
    redis.call('HSET', pk, id, now)
  end
end

-- fenced(fence_key, token): a token of "0" is an unfenced caller (a
-- student's own cancellation, tools); any other token must be the current
-- drain fence, or the script refuses before it changes anything.
local function fenced(fk, token)
  if token == '0' then
    return false
  end
  return redis.call('GET', fk) ~= token
end
