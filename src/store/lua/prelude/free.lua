-- Helper for scripts that ask whether an agent may be offered an entry: available and
-- not booked. A booking whose lease ran out (its daemon died between booking and ringing)
-- counts as none.
local function is_free(key, now)
  local a = redis.call('HMGET', key, 'state', 'booked', 'booked_until')
  local booked = a[2] and a[2] ~= '' and tonumber(a[3] or '0') >= now
  return a[1] == 'available' and not booked
end
