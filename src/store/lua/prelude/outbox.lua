-- An outbox item's place among its callback's items: `<entry>|<stream id>`, the id's two
-- numbers padded so that the order set's lexical order is the stream's.
local function order_member(entry, id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return entry .. '|' .. string.format('%015d-%010d', tonumber(ms), tonumber(seq))
end
