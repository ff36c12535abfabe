-- The agents free to be offered an entry now: under load most are busy, so the reply
-- (what the daemon must parse) stays small.
-- KEYS: agent hashes. ARGV: now.
-- Replies: one HGETALL reply per free agent.
local now = tonumber(ARGV[1])
local out = {}
for _, key in ipairs(KEYS) do
  if is_free(key, now) then out[#out + 1] = redis.call('HGETALL', key) end
end
return out
