-- An agent's booking: the entry whose offer rings them (`booked`), its queue and until when
-- the booking holds (`booked_until`, ms). Scripts change these fields through these
-- helpers only, so they change together.

-- Whether the agent at `key` may be offered an entry: available and not booked. A booking
-- whose lease ran out (its daemon died between booking and ringing) counts as none.
local function is_free(key, now)
  local a = redis.call('HMGET', key, 'state', 'booked', 'booked_until')
  local booked = a[2] and a[2] ~= '' and tonumber(a[3] or '0') >= now
  return a[1] == 'available' and not booked
end
-- Books the agent at `key` for `entry` of `queue` until `until_ms`.
local function book(key, entry, queue, until_ms)
  redis.call('HSET', key, 'booked', entry, 'booked_queue', queue, 'booked_until', until_ms)
end
-- Ends the booking of the agent at `key`, whichever entry it names.
local function clear_booking(key)
  redis.call('HSET', key, 'booked', '', 'booked_queue', '', 'booked_until', '0')
end
-- Ends the booking of the agent at `key` if it still names `entry` (a lapsed booking may
-- belong to another offer by now).
local function release_booking(key, entry)
  if redis.call('HGET', key, 'booked') == entry then clear_booking(key) end
end
-- Moves the end of the booking of the agent at `key` to `until_ms` while it still names
-- `entry`; whether it did.
local function extend_booking(key, entry, until_ms)
  if redis.call('HGET', key, 'booked') ~= entry then return false end
  redis.call('HSET', key, 'booked_until', until_ms)
  return true
end
-- Whether the agent at `key` is on the call of `entry`, so that call's end frees them. An
-- agent put on another call since (whose previous call's end a daemon learned late) stays
-- on it. Agents put on a call before the call was recorded count as on it.
local function on_call_of(key, entry)
  local a = redis.call('HMGET', key, 'state', 'call_entry')
  return a[1] == 'on_call' and (not a[2] or a[2] == entry)
end
