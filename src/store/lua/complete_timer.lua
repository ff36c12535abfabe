-- Removes a timer only while the caller still holds its lease.
-- KEYS: timers, leases. ARGV: timer, owner.
-- Replies: 1 (removed) | 0 (the lease is another's).
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
