-- An operator's tool (a CRM, an API) asks for a callback with no call in the queue: a new
-- callback entry joins the queue at its place (event `requested`, `source` `api`), unless
-- the number has one open there already. The check and the creation are one step, so two
-- daemons asked at once create it once.
-- One not to be offered before a later time waits for it as a failed attempt waits for its
-- retry (status `retry_wait`, the retry timer): that timer puts it in the waiting set then,
-- or closes it should its window have passed.
-- KEYS, ARGV: the callback layout (prelude/callback.lua), then: expires_at, not before
-- ('' for at once), then the new entry's hash fields and values…
-- Replies: {'ok'} | {'duplicate', the open callback's id} | {'exists'}.
if e.status ~= '' then return {'exists'} end
local existing = open_callback()
if existing then return {'duplicate', existing} end
local expires_at, not_before = ARGV[4], ARGV[5]
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'expires_at', expires_at, unpack(fields))
read_entry()
redis.call('ZADD', KEYS[3], e.position, id)
if not_before == '' then
  redis.call('ZADD', KEYS[2], e.position, id)
  redis.call('ZADD', KEYS[4], expires_at, TIMER.callback_expiry .. id)
  requested('api', expires_at)
else
  redis.call('HSET', KEYS[1], 'status', 'retry_wait', 'retry_at', not_before)
  redis.call('ZADD', KEYS[4], not_before, TIMER.callback_retry .. id)
  requested('api', expires_at, 'not_before', not_before)
end
return {'ok'}
