-- Extends an agent's booking for an entry while it still names that entry.
-- KEYS: agent. ARGV: entry, booked-until.
-- Replies: 'ok' | 'not_booked'.
if redis.call('HGET', KEYS[1], 'booked') ~= ARGV[1] then return 'not_booked' end
redis.call('HSET', KEYS[1], 'booked_until', ARGV[2])
return 'ok'
