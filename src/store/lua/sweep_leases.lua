-- Drops the leases whose timer is gone: a script removed it (its entry left) while a
-- daemon that had claimed it died before completing it. Nothing else removes those.
-- KEYS: timers, leases.
-- Replies: how many leases were dropped.
local members = redis.call('HKEYS', KEYS[2])
local dropped = 0
for _, m in ipairs(members) do
  if not redis.call('ZSCORE', KEYS[1], m) then
    redis.call('HDEL', KEYS[2], m)
    dropped = dropped + 1
  end
end
return dropped
