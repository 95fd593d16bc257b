"""The Lua scripts of the Redis event store: each change of one event is one script on its
one hash (one Cluster slot), so two replicas changing the same event are serialised by Redis.

The event hash (``keys.event``): ``p`` policy, ``fp`` the request's fingerprint, ``e`` the
event as decided (as closed, once closed; its rewards kept apart), ``r`` the rewards as
comma-separated JSON objects, ``rid:<reward_id>`` (``tok:<token>`` without an id) which
call kept a reward, ``n`` how many rewards, ``acc`` how many of them accepted, ``a``
activated ("1"/"0"), ``s`` the state (``pending`` → ``closed`` → ``streamed``), ``d`` the
deadline.

Scripts answer with a code first; they never raise, so that a script inside MULTI/EXEC
never leaves half of a batch applied for an error the caller could have foreseen.
"""

from __future__ import annotations

# KEYS[1] event hash. ARGV: policy, fingerprint, event, deadline, activated, TTL (ms).
# An identical request (same policy and fingerprint) that raced on another replica finds
# its event kept: "same"; anything else holding the id: "taken" with its policy.
ADD = """
local k = KEYS[1]
local h = redis.call('HMGET', k, 'p', 'fp')
if h[1] then
  if h[1] == ARGV[1] and h[2] == ARGV[2] then return {'same'} end
  return {'taken', h[1]}
end
redis.call('HSET', k, 'p', ARGV[1], 'fp', ARGV[2], 'e', ARGV[3], 'r', '', 'a', ARGV[5],
  's', 'pending', 'd', ARGV[4], 'n', '0', 'acc', '0')
redis.call('PEXPIRE', k, ARGV[6])
return {'new'}
"""

# KEYS[1] event hash. ARGV: event (as add wrote it). Undo an add whose due entry could not
# be written (a Cluster node failed): only while nobody has touched the event since.
DISCARD = """
local h = redis.call('HMGET', KEYS[1], 'e', 's', 'n', 'a')
if h[1] == ARGV[1] and h[2] == 'pending' and h[3] == '0' and h[4] == '0' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS[1] event hash. ARGV: reward_id, the reward as accepted (JSON), as late (JSON),
# whether it came within the window ("1"/"0"), the most rewards kept, this call's token
# (16 characters). Answers {code, state, activated, rewards, event-if-not-pending}; code is
# accepted, late, duplicate (another call kept a reward with this id), missing, or full
# ({'full', n}). `rid:<reward_id>` (`tok:<token>` for a reward without an id) holds the
# token and the code of the call that kept it: the same call sent again (redis-py resends
# after a dropped connection; a spool replays what a crash interrupted) is answered as it
# was kept, not kept twice nor as a duplicate of itself.
ADD_REWARD = """
local k = KEYS[1]
local h = redis.call('HMGET', k, 's', 'n', 'a', 'r')
local s = h[1]
if not s then return {'missing'} end
local function answer(code, r)
  local e = false
  if s ~= 'pending' then e = redis.call('HGET', k, 'e') end
  return {code, s, h[3], r, e}
end
local field = 'tok:' .. ARGV[6]
if ARGV[1] ~= '' then field = 'rid:' .. ARGV[1] end
local held = redis.call('HGET', k, field)
if held then
  if string.sub(held, 1, 16) == ARGV[6] then return answer(string.sub(held, 17), h[4]) end
  return answer('duplicate', h[4])
end
local n = tonumber(h[2])
if n >= tonumber(ARGV[5]) then return {'full', tostring(n)} end
local code, json = 'late', ARGV[3]
if s == 'pending' and ARGV[4] == '1' then
  code, json = 'accepted', ARGV[2]
  redis.call('HINCRBY', k, 'acc', 1)
end
local r = json
if h[4] and h[4] ~= '' then r = h[4] .. ',' .. json end
redis.call('HSET', k, 'r', r, 'n', tostring(n + 1), field, ARGV[6] .. code)
return answer(code, r)
"""

# KEYS[1] event hash. Answers {code, state, activated, rewards, event-if-not-pending}.
ACTIVATE = """
local k = KEYS[1]
local s = redis.call('HGET', k, 's')
if not s then return {'missing'} end
local e = false
if s == 'pending' then
  redis.call('HSET', k, 'a', '1')
else
  e = redis.call('HGET', k, 'e')
end
local h = redis.call('HMGET', k, 'a', 'r')
return {'ok', s, h[1], h[2], e}
"""

# KEYS[1] event hash. ARGV: the closed event (rewards apart), how many accepted rewards it
# was joined from, whether it was activated ("1"/"0"), retention (ms).
# closed: this call closed it ({code, activated, rewards}); unstreamed: closed before but
# not yet on the stream ({code, activated, rewards, closed event}); done: on the stream;
# stale: a reward or an activation arrived after the caller read it (the join would miss
# it: nothing is changed, the due entry stays and the next pass closes it as stored);
# missing: no such event (expired).
CLOSE = """
local k = KEYS[1]
local h = redis.call('HMGET', k, 's', 'acc', 'a', 'r')
local s = h[1]
if not s then return {'missing'} end
if s == 'streamed' then return {'done'} end
if s == 'closed' then return {'unstreamed', h[3], h[4], redis.call('HGET', k, 'e')} end
if h[2] ~= ARGV[2] or h[3] ~= ARGV[3] then return {'stale'} end
redis.call('HSET', k, 'e', ARGV[1], 's', 'closed')
redis.call('PEXPIRE', k, ARGV[4])
return {'closed', h[3], h[4]}
"""

# KEYS[1] the policy's due set, KEYS[2] its joined stream. ARGV: event id, joined event,
# its DSJSON line, its labelled VW example text ('' when it is not learned): the entry
# carries what the learner writes and learns, made by the replica that settled it.
# The stream is not capped: the learner deletes what it acknowledged, and a cap would drop
# joins it has not learned yet. The due entry is the token "not yet on the stream": whoever removes
# it appends the event, so two closers (or a closer after a crash) append it once.
_GATE = """
local streamed = 0
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[2], 'id', ARGV[1], 'd', ARGV[3], 'x', ARGV[4])
  streamed = 1
end
"""

# KEYS[1] event hash (KEYS[3] in STREAM): closed → streamed.
_MARK = """
if redis.call('HGET', KEYS[{key}], 's') == 'closed' then
  redis.call('HSET', KEYS[{key}], 's', 'streamed')
end
"""

GATE = _GATE + "return streamed\n"
MARK = _MARK.format(key=1) + "return 1\n"
# A single Redis: the gate and the mark in one script (KEYS: due, joined, event hash).
STREAM = _GATE + _MARK.format(key=3) + "return streamed\n"
