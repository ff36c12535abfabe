-- A new entry joins its queue (event `entered`), with its max-wait timer when due, and,
-- for a live caller, the lease of the daemon that runs their media.
-- KEYS: entry, waiting, open, timers, events, media leases.
-- ARGV: id, position, max-wait timer ('' for none), its due time, media owner ('' for
-- none), its lease end, then hash field/value pairs.
-- Replies: 'ok' | 'exists'.
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3]) end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'media_owner', ARGV[5])
  redis.call('ZADD', KEYS[6], ARGV[6], ARGV[1])
end
local e = redis.call('HMGET', KEYS[1], 'queue', 'line', 'kind')
redis.call('XADD', KEYS[5], '*', 'event', 'entered', 'entry', ARGV[1], 'queue', e[1],
  'line', e[2], 'kind', e[3], 'at', ARGV[2])
return 'ok'
