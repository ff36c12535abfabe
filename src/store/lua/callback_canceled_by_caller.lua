-- A caller calling again cancels their pending callback to wait on the line: the callback
-- is closed (`callback_canceled_by_caller`, naming the live entry) and the live entry takes
-- the earlier of the two places, both in one step, so no instant has the caller neither
-- queued nor called back. Refused (`dialing`) once an agent accepted the callback: its
-- customer is being called already. Runs on the callback.
-- KEYS: the callback layout (prelude/callback.lua), then the live entry.
-- ARGV: the callback layout, then: the live entry's id.
-- Replies: {'ok', agents that were ringing for the callback…} | {'dialing'} |
-- {'caller_gone'} (the live entry no longer waits) | {refusal}: 'unknown', 'not_callback',
-- 'not_open'.
if e.status == '' then return {'unknown'} end
if e.kind == 'callback' and e.status == 'dialing' then return {'dialing'} end
local refused = expect_withdrawable()
if refused then return {refused} end
local live = redis.call('HMGET', KEYS[10], 'kind', 'status', 'position')
if live[1] ~= 'live' or (live[2] ~= 'waiting' and live[2] ~= 'offered') then
  return {'caller_gone'}
end
local out = close('callback_canceled_by_caller', 'live_entry', ARGV[4])
local position = ms(math.min(tonumber(live[3]), tonumber(e.position)))
redis.call('HSET', KEYS[10], 'position', position)
redis.call('ZADD', KEYS[3], position, ARGV[4])
-- A ringing entry goes back to the waiting set at its (new) position if its agents miss.
if live[2] == 'waiting' then redis.call('ZADD', KEYS[2], position, ARGV[4]) end
return out
