-- Today's figures of a queue, in its callback stats hash: `day` names the UTC day they
-- count (days since the epoch), `today_*` the counts. The first count of a new day starts
-- them again from zero, so the hash never grows with the days.
local TODAY_FIELDS = {'today_requested', 'today_connected', 'today_wait_ms', 'today_ended',
  'today_abandoned'}
local function count_today(key, at, field, by)
  local day = tostring(math.floor(tonumber(at) / 86400000))
  if redis.call('HGET', key, 'day') ~= day then
    redis.call('HDEL', key, unpack(TODAY_FIELDS))
    redis.call('HSET', key, 'day', day)
  end
  redis.call('HINCRBY', key, 'today_' .. field, by)
end
