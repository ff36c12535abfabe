-- Undoes a claim whose agents could not be booked (the claim and the booking are made
-- together, in different slots): the entry waits again at its old score, holding nobody
-- off.
-- KEYS: entry, waiting, timers, events. ARGV: id, now, offer timer, agents (comma-separated).
-- Replies: 'ok' | 'moved_on' (the entry is no longer this offer's: left alone).
local e = redis.call('HMGET', KEYS[1], 'status', 'offered_to', 'queue', 'line', 'position')
if e[1] ~= 'offered' or e[2] ~= ARGV[4] then return 'moved_on' end
redis.call('HSET', KEYS[1], 'status', 'waiting', 'offered_to', '')
redis.call('ZADD', KEYS[2], e[5], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('XADD', KEYS[4], '*', 'event', 'offer_withdrawn', 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'agents', ARGV[4], 'at', ARGV[2])
return 'ok'
