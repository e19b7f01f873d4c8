-- admit.lua: admit a batch of enrollment requests, atomically: into the FIFO
-- queue while the window is open, into the pre-queue before it opens (when
-- the registrar has opened one), and, at the opening, the pre-queue's draw.
--
-- One call admits N >= 1 requests in the order given: an API instance groups
-- the admissions that arrive while its previous call is in flight, so Redis
-- runs one script (and one AOF write) for the group instead of one per
-- request. Tickets still come from the counter below, in the order the
-- requests reach Redis; no host clock is involved.
--
-- The pre-queue: while the window is closed and KEYS[10] is "1", a request
-- is recorded in the student's pre hash (course -> "q:<entry seq>") and the
-- student in prestu; it gets no ticket yet. At the opening the drawer
-- (queue.Draw) shuffles the pre-queued students and calls this script with
-- ARGV[4] = the draw's cursor and the entries in drawn order; the script
-- admits them as below (without the window check and rate limits), writes
-- each entry's outcome into its pre hash ("t:<ticket>" or "x:<code>:<a>"),
-- and moves the cursor by N, but only if the cursor still equals ARGV[4]:
-- a batch of the draw is applied exactly once, whoever runs it.
--
-- Shared keys:
-- KEYS[1]  open     string  "1" while the registration window is open
-- KEYS[2]  seq      string  ticket counter (arrival order at Redis)
-- KEYS[3]  waiting  zset    request id -> ticket
-- KEYS[4]  pending  zset    request id -> ticket (waiting + in flight)
-- KEYS[5]  req      hash    request id -> "student:course:admitted_ms:flag"
-- KEYS[6]  dup      hash    "student:course" -> request id (one pending request per pair)
-- KEYS[7]  seats    hash    course -> free seats hint (capacity - enrolled - pending)
-- KEYS[8]  pcount   hash    course -> pending requests
-- KEYS[9]  stats    hash    counters
-- KEYS[10] preopen  string  "1" while the pre-queue takes requests
-- KEYS[11] prestu   zset    pre-queued student -> seq of their first entry
-- KEYS[12] draw     hash    entries (pre-queue entry counter), cursor, total, ...
-- KEYS[13] refusals hash    course -> "<ticket counter>:<Redis time, us>" of the
--                           latest "sold out" answer (law 7; the drain copies
--                           it to MariaDB's refusal_marks)
-- Per request i (i = 1..N), at KEYS[13 + 6(i-1) + 1..6]:
--   enr   set     courses the student is enrolled in (hint)
--   rl    string  per-student attempt counter for the rate window
--   mine  set     the student's admitted request ids (for "my requests"; expires)
--   ip    string  per-client-address request counter (the API's per-IP budget)
--   pre   hash    the student's pre-queue entries: course -> state
--   idem  string  the answer recorded under the request's Idempotency-Key
--
-- ARGV[1] per-student rate limit (attempts per window, 0 = off)
-- ARGV[2] per-student rate window in ms
-- ARGV[3] expiry of the student's request set (and drawn pre hash) in ms
-- ARGV[4] the draw's cursor this batch starts at (-1: not a draw)
-- ARGV[5] most pre-queue entries per student
-- ARGV[6] (draw) the notices channel: the batch's outcomes are published on
--         it as {"type":"drawn","e":[[student, course, ticket or -code], ...]}
-- Per request i, at ARGV[6 + 5(i-1) + 1..5]:
--   student id, course id, per-IP limit (0 = off or exempt), per-IP window in ms,
--   "1" when the request carries an Idempotency-Key (its idem key), else "0"
--
-- Idempotency: a request whose key already holds an answer gets that answer
-- again (code, a, b as first returned) and nothing else happens; the first
-- answer of a key is recorded when it is final for the key: admitted,
-- pre-queued, already queued, sold out, already in the pre-queue, pre-queue
-- full. Transient answers (rate limits, window closed, opening, unknown to
-- the seat cache, already enrolled, which the API confirms in MariaDB) are
-- not recorded: a retry under the same key tries again. A replayed answer
-- returns code + 100 (admitted: 101, ...) or code - 100 (refusals) so the
-- caller can tell; the idem key expires with the student's request set.
--
-- Returns 3 integers per request, {code, a, b}:
--   { 1, ticket, ahead}   admitted; ahead = undecided requests with a lower ticket
--   { 2, entries, students} pre-queued: the student's entries waiting for this
--                         round's draw, students in the pre-queue
--   {-1, 0, 0}            window closed (and no pre-queue)
--   {-2, retry_ms, 0}     rate limited (the student's budget)
--   {-3, request id, 0}   already queued for this course
--   {-4, 0, 0}            already enrolled (hint)
--   {-5, 0, 0}            course unknown to the seat cache
--   {-6, 0, 0}            sold out (hint)
--   {-7, retry_ms, 0}     rate limited (the client address's budget)
--   {-8, 0, 0}            already in the pre-queue for this course
--   {-9, limit, 0}        the student's pre-queue entries are at the limit
--   {-10, cursor, 0}      (draw) the cursor is not ARGV[4]: nothing was done
--   {-11, 0, 0}           window closed, the pre-queue's draw is running
local NK, NA, PK, PA = 13, 6, 6, 5
local n = (#ARGV - NA) / PA
local out = {}
local function all(code, a)
  for i = 1, n do
    out[#out + 1] = code; out[#out + 1] = a; out[#out + 1] = 0
  end
  return out
end

local cursor = tonumber(ARGV[4])
local drawing = cursor >= 0
local prequeue = false
if drawing then
  local at = tonumber(redis.call('HGET', KEYS[12], 'cursor') or '-1')
  if at ~= cursor then
    return all(-10, at)
  end
elseif redis.call('GET', KEYS[1]) ~= '1' then
  if redis.call('GET', KEYS[10]) ~= '1' then
    local state = redis.call('HGET', KEYS[12], 'state')
    if state == 'listing' or state == 'drawing' then
      return all(-11, 0)
    end
    return all(-1, 0)
  end
  prequeue = true
end

-- counts one hit on a fixed-window counter; returns the ms until the window
-- ends when the limit is exceeded, nil otherwise
local function over(key, limit, window)
  local c = redis.call('INCR', key)
  if c == 1 then
    redis.call('PEXPIRE', key, window)
  end
  if c <= limit then
    return nil
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = tonumber(window)
  end
  return ttl
end

local slimit, swindow, mine_ttl, pre_max = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[5])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_us = t[1] .. string.format('%06d', tonumber(t[2]))
local admitted, sold_out = 0, 0
-- sections refused as sold out in this call: their refusal mark is written
-- once, at the end (nothing in one call raises a hint, so no later ticket of
-- the call can be admitted to a section it refused; the mark is exact)
local refused = {}

-- the client address's and the student's budgets
local function limited(k, a)
  local iplimit = tonumber(ARGV[a + 3])
  if iplimit > 0 then
    local retry = over(KEYS[k + 4], iplimit, ARGV[a + 4])
    if retry then
      return -7, retry
    end
  end
  if slimit > 0 then
    local retry = over(KEYS[k + 2], slimit, swindow)
    if retry then
      return -2, retry
    end
  end
  return nil
end

local function enter(k, a)
  local course = ARGV[a + 2]
  local st = redis.call('HGET', KEYS[k + 5], course)
  if st and string.sub(st, 1, 2) == 'q:' then
    return -8, 0, 0
  end
  if redis.call('SISMEMBER', KEYS[k + 1], course) == 1 then
    return -4, 0, 0
  end
  if not redis.call('HGET', KEYS[7], course) then
    return -5, 0, 0
  end
  -- only this round's entries (still waiting for a draw) count: a drawn
  -- entry of an earlier round ("t:"/"x:") is an outcome, not an entry
  local entries = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[k + 5])) do
    if string.sub(v, 1, 2) == 'q:' then
      entries = entries + 1
    end
  end
  if entries >= pre_max then
    return -9, pre_max, 0
  end
  local seq = redis.call('HINCRBY', KEYS[12], 'entries', 1)
  redis.call('HSET', KEYS[k + 5], course, 'q:' .. seq)
  redis.call('ZADD', KEYS[11], 'NX', seq, ARGV[a + 1])
  return 2, entries + 1, redis.call('ZCARD', KEYS[11])
end

local function admit(k, a)
  local student, course = ARGV[a + 1], ARGV[a + 2]
  local pair = student .. ':' .. course
  local existing = redis.call('HGET', KEYS[6], pair)
  if existing then
    return -3, tonumber(existing), 0
  end
  if redis.call('SISMEMBER', KEYS[k + 1], course) == 1 then
    return -4, 0, 0
  end
  local free = redis.call('HGET', KEYS[7], course)
  if not free then
    return -5, 0, 0
  end
  if tonumber(free) <= 0 then
    sold_out = sold_out + 1
    refused[#refused + 1] = course
    return -6, 0, 0
  end
  redis.call('HINCRBY', KEYS[7], course, -1)
  redis.call('HINCRBY', KEYS[8], course, 1)
  local ticket = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[5], ticket, pair .. ':' .. now_ms .. ':')
  redis.call('HSET', KEYS[6], pair, ticket)
  redis.call('ZADD', KEYS[3], ticket, ticket)
  redis.call('ZADD', KEYS[4], ticket, ticket)
  redis.call('SADD', KEYS[k + 3], ticket)
  redis.call('PEXPIRE', KEYS[k + 3], mine_ttl)
  admitted = admitted + 1
  return 1, ticket, 0
end

local base_ahead, first_ticket = nil, nil
local drawn = {}
-- answers final for an Idempotency-Key (see the header)
local keyed = {[1] = true, [2] = true, [-3] = true, [-6] = true, [-8] = true, [-9] = true}

for i = 1, n do
  local k, a = NK + PK * (i - 1), NA + PA * (i - 1)
  local idem = ARGV[a + 5] == '1'
  local code, x, b, replay = nil, nil, nil, nil
  if idem then
    replay = redis.call('GET', KEYS[k + 6])
  end
  if replay then
    local c, ra, rb = string.match(replay, '^(-?%d+):(-?%d+):(-?%d+)$')
    code, x, b = tonumber(c), tonumber(ra), tonumber(rb)
  else
    code, x, b = limited(k, a)
  end
  if replay then
    -- the original answer, as first returned
  elseif not code then
    if prequeue then
      code, x, b = enter(k, a)
    else
      code, x, b = admit(k, a)
    end
  else
    b = 0
  end
  if drawing then
    local state = 'x:' .. code .. ':' .. x
    if code == 1 then
      state = 't:' .. x
    end
    redis.call('HSET', KEYS[k + 5], ARGV[a + 2], state)
    redis.call('PEXPIRE', KEYS[k + 5], mine_ttl)
    local v = x
    if code ~= 1 then
      v = code
    end
    drawn[i] = {tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), v}
  end
  if code == 1 and not replay then
    if not base_ahead then
      -- undecided requests below the batch's first ticket, counted once
      first_ticket = x
      base_ahead = redis.call('ZCOUNT', KEYS[4], '-inf', '(' .. x)
    end
    -- tickets of one call are consecutive, so those admitted before this one
    -- in the batch are exactly x - first_ticket
    b = base_ahead + (x - first_ticket)
  end
  if idem and not replay and keyed[code] then
    redis.call('SET', KEYS[k + 6], code .. ':' .. x .. ':' .. b, 'PX', mine_ttl)
  end
  if replay then
    if code > 0 then
      code = code + 100
    else
      code = code - 100
    end
  end
  out[#out + 1] = code; out[#out + 1] = x; out[#out + 1] = b
end
if drawing then
  redis.call('HINCRBY', KEYS[12], 'cursor', n)
  redis.call('PUBLISH', ARGV[6], cjson.encode({type = 'drawn', e = drawn}))
end
if admitted > 0 then
  redis.call('HINCRBY', KEYS[9], 'admitted', admitted)
end
if sold_out > 0 then
  redis.call('HINCRBY', KEYS[9], 'sold_out', sold_out)
  local mark = (redis.call('GET', KEYS[2]) or '0') .. ':' .. now_us
  local args = {}
  for _, c in ipairs(refused) do
    args[#args + 1] = c
    args[#args + 1] = mark
  end
  redis.call('HSET', KEYS[13], unpack(args))
end
return out
