-- Helpers for the callback scripts, which share one key layout.
-- KEYS: entry, waiting, open, timers, events, callback stats, the number's dedup key,
-- withdrawals, requests, then each script's own. ARGV: id, now, retention (s), then each script's own.
-- Comes after the names prelude Rust writes (`TIMER`, `OPENS_TICKET`, see `scripts.rs`).
local id, now, retention = ARGV[1], ARGV[2], ARGV[3]
local f = {'status', 'kind', 'queue', 'line', 'position', 'number', 'offered_to', 'held_off',
  'declined', 'requested_at', 'expires_at', 'dialing_agent', 'dialing_since', 'attempts',
  'connected_at', 'connected_agent', 'console'}
local e = {}
-- Reads the entry into `e`; a script that writes a new entry whole reads it again after.
local function read_entry()
  local raw = redis.call('HMGET', KEYS[1], unpack(f))
  for i, name in ipairs(f) do e[name] = raw[i] or '' end
end
read_entry()
-- Never below 0: a callback not offered before a later time takes that time as its place,
-- and its `requested` (or a cancel before then) comes earlier.
local function waited() return ms(math.max(0, tonumber(now) - tonumber(e.position))) end
local function event(kind, ...)
  local args = {'XADD', KEYS[5], '*', 'event', kind, 'entry', id, 'queue', e.queue,
    'line', e.line, 'number', e.number, 'at', now, 'waited_ms', waited(), ...}
  if OPENS_TICKET[kind] then
    args[#args + 1] = 'ticket'
    args[#args + 1] = '1'
  end
  redis.call(unpack(args))
end
local function drop_timers()
  redis.call('ZREM', KEYS[4], TIMER.offer_timeout .. id, TIMER.max_wait .. id,
    TIMER.callback_expiry .. id, TIMER.callback_retry .. id)
end
-- The entry leaves the queue for good: it no longer holds its number, counts as in queue,
-- or has timers. Returns the agents still ringing for it.
local function close(reason, ...)
  local ringing = split(e.offered_to)
  withdrawn(KEYS[8], id, e.offered_to, reason)
  redis.call('HSET', KEYS[1], 'status', 'closed', 'offered_to', '', 'closed_reason', reason,
    'closed_at', now)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  drop_timers()
  redis.call('EXPIRE', KEYS[1], retention)
  if redis.call('GET', KEYS[7]) == id then redis.call('DEL', KEYS[7]) end
  if e.kind == 'callback' then
    redis.call('HINCRBY', KEYS[6], 'in_queue', -1)
    count_today(KEYS[6], now, 'ended', 1)
  end
  event(reason, ...)
  local out = {'ok'}
  for _, a in ipairs(ringing) do out[#out + 1] = a end
  return out
end
-- The entry now holds its number's place as an open callback and counts in the queue's
-- figures (event `requested`, saying whose request it was: `phone` or `api`).
local function requested(source, expires_at, ...)
  redis.call('SET', KEYS[7], id)
  redis.call('HINCRBY', KEYS[6], 'total', 1)
  redis.call('HINCRBY', KEYS[6], 'in_queue', 1)
  count_today(KEYS[6], now, 'requested', 1)
  event('requested', 'source', source, 'expires_at', expires_at, ...)
  -- The queue's requests alone, newest last: what a callback list walks, instead of
  -- every event of the queue.
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', '100000', '*', 'event', 'requested',
    'entry', id, 'at', now)
end
-- The open callback holding this number's place in the queue, if any.
local function open_callback()
  local existing = redis.call('GET', KEYS[7])
  if existing and redis.call('ZSCORE', KEYS[3], existing) then return existing end
  return nil
end
local function expect_live_waiting()
  if e.kind ~= 'live' then return 'not_live' end
  if e.status ~= 'waiting' and e.status ~= 'offered' then return 'not_open' end
  return nil
end
-- Only a callback no agent has accepted may still be withdrawn.
local function expect_withdrawable()
  if e.kind ~= 'callback' then return 'not_callback' end
  if e.status ~= 'waiting' and e.status ~= 'offered' and e.status ~= 'retry_wait' then
    return 'not_open'
  end
  return nil
end
local function expect_dialing(agent)
  if e.kind ~= 'callback' then return 'not_callback' end
  if e.status ~= 'dialing' then return 'not_dialing' end
  if e.dialing_agent ~= agent then return 'not_offered_to' end
  return nil
end
-- `agent` declined the callback (event `declined`, with `...`): they are recorded in
-- `declined`. Whether every eligible agent (ARGV from `first` on) has declined it now.
local function declined_by(agent, first, ...)
  local declined = {}
  for _, a in ipairs(split(e.declined)) do declined[a] = true end
  if not declined[agent] then
    if e.declined == '' then e.declined = agent else e.declined = e.declined .. ',' .. agent end
    declined[agent] = true
  end
  redis.call('HSET', KEYS[1], 'declined', e.declined)
  event('declined', 'agent', agent, ...)
  local all = #ARGV >= first
  for i = first, #ARGV do if not declined[ARGV[i]] then all = false end end
  return all
end
