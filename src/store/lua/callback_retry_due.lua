-- A failed callback's retry time came (or a created one's earliest time): it waits at its
-- position until its expiry, or expires now when that has passed.
-- KEYS, ARGV: the callback layout (prelude/callback.lua).
-- Replies: 'waiting' | 'expired' | 'not_retry_wait'.
if e.status ~= 'retry_wait' or e.kind ~= 'callback' then return 'not_retry_wait' end
if tonumber(now) >= tonumber(e.expires_at) then
  close('expired')
  return 'expired'
end
redis.call('HSET', KEYS[1], 'status', 'waiting', 'retry_at', '')
redis.call('ZADD', KEYS[2], e.position, id)
redis.call('ZREM', KEYS[4], TIMER.callback_retry .. id)
redis.call('ZADD', KEYS[4], e.expires_at, TIMER.callback_expiry .. id)
return 'waiting'
