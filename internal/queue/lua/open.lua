-- open.lua: open the registration window at the end of an opening, unless
-- the registrar closed it while the opening drew the pre-queue.
--
-- KEYS[1] open  string  "1" while the registration window is open
-- KEYS[2] draw  hash    the pre-queue's draw; field "want" is the
--                       registrar's last word: "1" open, "0" closed
--
-- Returns 1 when the window is open, 0 when the registrar's last word was
-- "closed" (the window is left closed).
if redis.call('HGET', KEYS[2], 'want') == '0' then
  return 0
end
redis.call('SET', KEYS[1], '1')
return 1
