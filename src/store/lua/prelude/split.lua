-- Helpers for scripts that parse comma-separated agent lists, among them an entry's
-- hold-offs (`held_off`: `agent:until_ms,…`, see `records`).
local function split(s)
  local out = {}
  for item in string.gmatch(s or '', '[^,]+') do out[#out + 1] = item end
  return out
end
local function ms(n) return string.format('%d', n) end
-- An offer ended while the agents in `ringing` (the entry's `offered_to`) still rang for
-- it: every daemon follows `stream` (the queue's withdrawals) and stops the phones it
-- rings for `entry`. Nothing is written when nobody rang.
local function withdrawn(stream, entry, ringing, reason)
  if ringing == '' then return end
  redis.call('XADD', stream, 'MAXLEN', '~', '1000', '*', 'event', 'offer_withdrawn',
    'entry', entry, 'agents', ringing, 'reason', reason)
end
-- Whether `agent` may not be offered the entry with these hold-offs yet at `now`.
local function held_off(list, agent, now)
  for _, item in ipairs(split(list)) do
    local a, t = string.match(item, '^([^:]+):(%d+)$')
    if a == agent and tonumber(t) > now then return true end
  end
  return false
end
-- Holds `agent` off the entry at `key` until `until_ms` (replacing an earlier hold-off of
-- theirs) and, unless that time has come already, schedules `timer` in `timers` for it,
-- so routing looks again then.
local function hold_off(key, timers, list, agent, now, until_ms, timer)
  local out = {agent .. ':' .. until_ms}
  for _, item in ipairs(split(list)) do
    if string.match(item, '^[^:]+') ~= agent then out[#out + 1] = item end
  end
  redis.call('HSET', key, 'held_off', table.concat(out, ','))
  if tonumber(until_ms) > tonumber(now) then redis.call('ZADD', timers, until_ms, timer) end
end
