-- Leases due timers to one daemon: each is pushed to the lease's end, so it comes due
-- again for anyone if its owner dies before completing it.
-- KEYS: timers, leases. ARGV: now, lease end, owner, limit.
-- Replies: the timer members leased.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[4])
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], m)
  redis.call('HSET', KEYS[2], m, ARGV[3])
end
return due
