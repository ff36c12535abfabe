-- Takes a waiting entry out of the waiting set for its agents, unless one of them is still
-- held off it. The plan that chose it saw some entries ahead of it (`known`,
-- comma-separated): any other entry ahead of it now (put back meanwhile, by another
-- daemon) goes first, so the claim is refused. Callbacks of console lines ahead do not
-- count: agents take those from their consoles, routing passes them by. An agent taking
-- one from their console (known '*') takes it wherever it stands.
-- KEYS: entry, waiting, timers, events. ARGV: id, now, offer timer, its due, known, agents…
-- Replies: 'ok' | 'not_waiting' | 'not_first' | 'held_off:<agent>'.
local e = redis.call('HMGET', KEYS[1], 'status', 'held_off', 'queue', 'line', 'position',
  'number', 'console')
if e[1] ~= 'waiting' then return 'not_waiting' end
local from_console = ARGV[5] == '*'
if from_console ~= (e[7] == '1') then return 'not_waiting' end
local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if not rank then return 'not_waiting' end
if rank > 0 and not from_console then
  local known = {}
  for _, id in ipairs(split(ARGV[5])) do known[id] = true end
  local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[1])
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, rank - 1)) do
    if not known[id] and redis.call('HGET', prefix .. id, 'console') ~= '1' then
      return 'not_first'
    end
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
if from_console then redis.call('HSET', KEYS[1], 'console_taken_by', list) end
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
