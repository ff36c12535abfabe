-- Renews one daemon's leases on its callers' media (`lease end` 0 hands them back: due
-- for another daemon at once). A caller whose entry is no longer an open live one needs
-- no lease (their own dialogue, such as a callback's confirmation, ends with their call).
-- KEYS: media leases. ARGV: entry key prefix, owner, lease end, then the entry ids.
-- Replies: the ids whose media another daemon took over.
local lost = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local e = redis.call('HMGET', ARGV[1] .. id, 'media_owner', 'status', 'kind')
  if e[3] ~= 'live' or (e[2] ~= 'waiting' and e[2] ~= 'offered') then
    redis.call('ZREM', KEYS[1], id)
  elseif e[1] ~= ARGV[2] then
    lost[#lost + 1] = id
  else
    redis.call('ZADD', KEYS[1], ARGV[3], id)
  end
end
return lost
