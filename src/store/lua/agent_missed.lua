-- Frees an agent after a missed offer and counts it; past the queue's limit an
-- `available` agent goes `away`.
-- KEYS: agent, agent events. ARGV: entry, away-after (0 = never), now, queue.
-- Replies: 'released' | 'away' (limit reached) | 'not_booked' (the booking lapsed, maybe
-- to another offer: left alone) | 'unknown' (no such agent).
local a = redis.call('HMGET', KEYS[1], 'id', 'state', 'booked', 'missed')
if not a[1] then return 'unknown' end
if a[3] ~= ARGV[1] then return 'not_booked' end
local missed = tonumber(a[4] or '0') + 1
clear_booking(KEYS[1])
redis.call('HSET', KEYS[1], 'missed', missed)
local limit = tonumber(ARGV[2])
if limit > 0 and missed >= limit and a[2] == 'available' then
  redis.call('HSET', KEYS[1], 'state', 'away', 'state_since', ARGV[3])
  redis.call('XADD', KEYS[2], '*', 'event', 'agent_state', 'agent', a[1], 'from', a[2],
    'to', 'away', 'source', 'missed_offers', 'queue', ARGV[4], 'at', ARGV[3])
  return 'away'
end
return 'released'
