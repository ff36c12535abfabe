-- A daemon takes over the media of waiting live callers: each one that is its own
-- already, that nobody holds, or whose owner let the lease run out (it died, drained, or
-- lost Redis). An id whose entry is no longer an open live one leaves the leases.
-- KEYS: media leases. ARGV: entry key prefix, owner, now, lease end, then the entry ids.
-- Replies: the ids taken.
local taken = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = ARGV[1] .. id
  local e = redis.call('HMGET', key, 'media_owner', 'status', 'kind')
  if e[3] ~= 'live' or (e[2] ~= 'waiting' and e[2] ~= 'offered') then
    redis.call('ZREM', KEYS[1], id)
  else
    local lease = redis.call('ZSCORE', KEYS[1], id)
    if e[1] == ARGV[2] or not e[1] or e[1] == '' or not lease
        or tonumber(lease) < tonumber(ARGV[3]) then
      redis.call('HSET', key, 'media_owner', ARGV[2])
      redis.call('ZADD', KEYS[1], ARGV[4], id)
      taken[#taken + 1] = id
    end
  end
end
return taken
