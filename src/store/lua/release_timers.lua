-- Hands back the timers leased to one daemon, which claims no more (it is draining): each
-- comes due at once for whichever daemon claims next, not only when its lease runs out.
-- A lease whose timer is gone (its entry left meanwhile) is only dropped.
-- KEYS: timers, leases. ARGV: owner, now.
-- Replies: how many timers were handed back.
local leases = redis.call('HGETALL', KEYS[2])
local handed = 0
for i = 1, #leases, 2 do
  if leases[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[2], leases[i])
    if redis.call('ZSCORE', KEYS[1], leases[i]) then
      redis.call('ZADD', KEYS[1], ARGV[2], leases[i])
      handed = handed + 1
    end
  end
end
return handed
