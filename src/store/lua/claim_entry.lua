-- Takes a waiting entry out of the waiting set for its agents, unless one of them is still
-- held off it. The plan that chose it saw some entries ahead of it (`known`,
-- comma-separated): any other entry ahead of it now (put back meanwhile, by another
-- daemon) goes first, so the claim is refused.
-- KEYS: entry, waiting, timers, events. ARGV: id, now, offer timer, its due, known, agents…
-- Replies: 'ok' | 'not_waiting' | 'not_first' | 'held_off:<agent>'.
local e = redis.call('HMGET', KEYS[1], 'status', 'held_off', 'queue', 'line', 'position',
  'number')
if e[1] ~= 'waiting' then return 'not_waiting' end
local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if not rank then return 'not_waiting' end
if rank > 0 then
  local known, count = {}, 0
  for _, id in ipairs(split(ARGV[5])) do known[id] = true; count = count + 1 end
  if rank > count then return 'not_first' end
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, rank - 1)) do
    if not known[id] then return 'not_first' end
  end
end
local now = tonumber(ARGV[2])
local agents = {}
for i = 6, #ARGV do
  if held_off(e[2], ARGV[i], now) then return 'held_off:' .. ARGV[i] end
  agents[#agents + 1] = ARGV[i]
end
local list = table.concat(agents, ',')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'offered', 'offered_to', list, 'offered_at', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
local event = {'XADD', KEYS[4], '*', 'event', 'offered', 'entry', ARGV[1], 'queue', e[3],
  'line', e[4], 'agents', list, 'at', ARGV[2],
  'waited_ms', ms(tonumber(ARGV[2]) - tonumber(e[5]))}
-- Callbacks name their number in every event.
if e[6] then
  event[#event + 1] = 'number'
  event[#event + 1] = e[6]
end
redis.call(unpack(event))
return 'ok'
