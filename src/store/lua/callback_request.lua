-- A waiting (or ringing) caller asks to be called back: the entry becomes a callback with
-- the same id and position, unless the number already has one open in this queue.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: number, expires_at, '1'
-- when agents take it from their consoles (`console`).
-- Replies: {'ok'} | {'duplicate', existing id} | {refusal}: 'unknown', 'not_live',
-- 'not_open'. Agents still ringing for a duplicate are stopped through its withdrawal.
if e.status == '' then return {'unknown'} end
local existing = redis.call('GET', KEYS[7])
if existing == id then return {'ok'} end
local refused = expect_live_waiting()
if refused then return {refused} end
e.number = ARGV[4]
existing = open_callback()
if existing then
  close('duplicate_ignored', 'existing', existing)
  return {'duplicate', existing}
end
redis.call('HSET', KEYS[1], 'kind', 'callback', 'number', ARGV[4], 'requested_at', now,
  'attempts', '0', 'expires_at', ARGV[5], 'console', ARGV[6])
redis.call('ZREM', KEYS[4], TIMER.max_wait .. id)
redis.call('ZADD', KEYS[4], ARGV[5], TIMER.callback_expiry .. id)
requested('phone', ARGV[5])
return {'ok'}
