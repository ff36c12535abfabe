-- Remembers the recording of a caller saying their name, on an entry that still exists: a
-- plain HSET would bring an entry that expired back as a hash of one field.
-- KEYS: entry. ARGV: the recording.
-- Replies: 1 (set) | 0 (no such entry).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'name_recording', ARGV[1])
return 1
