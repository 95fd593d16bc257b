"""The Lua scripts of the Redis event store: each change of one event is one script on its
hash (one Cluster slot), so two replicas changing the same event are serialised by Redis. On
a single Redis a script also touches the event's tombstone and its policy's due set and
stream where that saves a round trip (ADD; ADD_REWARD when it settles the join).

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

# KEYS[1] event hash[, KEYS[2] its tombstone[, KEYS[3] the policy's due set]]. ARGV:
# policy, fingerprint, event, deadline, activated, TTL (ms)[, event id: the due entry].
# An identical request (same policy and fingerprint) finds its event kept (a retry, or a
# race on another replica): {'same', event, rewards, activated}, as `get` reads it; any
# other holder of the id: {'taken', its policy}; the id used by an event no longer kept
# (its tombstone): {'used'}. Only a new event is written, with its due entry when KEYS[3]
# is given (a single Redis: one script, one round trip; a Cluster writes it apart).
ADD = """
local k = KEYS[1]
local h = redis.call('HMGET', k, 'p', 'fp', 'e', 'r', 'a')
if h[1] then
  if h[1] == ARGV[1] and h[2] == ARGV[2] then return {'same', h[3], h[4], h[5]} end
  return {'taken', h[1]}
end
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return {'used'} end
redis.call('HSET', k, 'p', ARGV[1], 'fp', ARGV[2], 'e', ARGV[3], 'r', '', 'a', ARGV[5],
  's', 'pending', 'd', ARGV[4], 'n', '0', 'acc', '0')
redis.call('PEXPIRE', k, ARGV[6])
if KEYS[3] then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[7]) end
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

# Fragments: Lua functions the scripts below share.
# close: the event hash says closed, holds the closed event `e` (rewards apart), and is
# kept `retain` ms more.
_CLOSE = """
local function close(k, e, retain)
  redis.call('HSET', k, 'e', e, 's', 'closed')
  redis.call('PEXPIRE', k, retain)
end
"""

# gate: the due entry is the token "not yet on the stream": whoever removes it appends the
# event, so two closers (or a closer after a crash) append it once. The entry carries the
# joined event, its DSJSON line and its labelled VW example text ('' when it is not
# learned): what the learner writes and learns, made by the replica that settled it. The
# stream is not capped: the learner deletes what it acknowledged, and a cap would drop
# joins it has not learned yet. 1 when this call appended it.
_GATE = """
local function gate(due, stream, id, e, d, x)
  if redis.call('ZREM', due, id) == 1 then
    redis.call('XADD', stream, '*', 'e', e, 'id', id, 'd', d, 'x', x)
    return 1
  end
  return 0
end
"""

# mark: closed → streamed.
_MARK = """
local function mark(k)
  if redis.call('HGET', k, 's') == 'closed' then redis.call('HSET', k, 's', 'streamed') end
end
"""

# KEYS[1] event hash. ARGV: reward_id, the reward as accepted (JSON), as late (JSON),
# whether it came within the window ("1"/"0"), the most rewards kept, this call's token
# (16 characters). Answers {code, state, activated, rewards, event-if-not-pending}; code is
# accepted, late, duplicate (another call kept a reward with this id), missing, or full
# ({'full', n}). `rid:<reward_id>` (`tok:<token>` for a reward without an id) holds the
# token and the code of the call that kept it: the same call sent again (redis-py resends
# after a dropped connection; a spool replays what a crash interrupted) is answered as it
# was kept, not kept twice nor as a duplicate of itself.
#
# Settling in the same step (an `earliest` join), when ARGV goes on: the settled event
# (rewards apart), the activation flag it was settled with ("1"/"0"), retention (ms); and,
# when KEYS goes on (KEYS[2] tombstone, KEYS[3] due set, KEYS[4] joined stream: a single
# Redis), the tombstone's value and TTL (ms), then GATE's ARGV (event id, joined event,
# DSJSON line, example text). Only a reward accepted as the event's first, with the flag
# as stored, settles it (as CLOSE, then the tombstone and STREAM when their keys are
# given): code `settled`, and the event is not sent back (the caller built it). Else the
# reward is kept as without them and the caller settles the usual way.
ADD_REWARD = (
    _CLOSE
    + _GATE
    + _MARK
    + """
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
local settles = code == 'accepted' and n == 0 and ARGV[7] and h[3] == ARGV[8]
if settles then code = 'settled' end
redis.call('HSET', k, 'r', r, 'n', tostring(n + 1), field, ARGV[6] .. code)
if not settles then return answer(code, r) end
close(k, ARGV[7], ARGV[9])
s = 'closed'
if KEYS[2] then
  redis.call('SET', KEYS[2], ARGV[10], 'PX', ARGV[11])
  gate(KEYS[3], KEYS[4], ARGV[12], ARGV[13], ARGV[14], ARGV[15])
  mark(k)
  s = 'streamed'
end
return {code, s, h[3], r}
"""
)

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
CLOSE = (
    _CLOSE
    + """
local k = KEYS[1]
local h = redis.call('HMGET', k, 's', 'acc', 'a', 'r')
local s = h[1]
if not s then return {'missing'} end
if s == 'streamed' then return {'done'} end
if s == 'closed' then return {'unstreamed', h[3], h[4], redis.call('HGET', k, 'e')} end
if h[2] ~= ARGV[2] or h[3] ~= ARGV[3] then return {'stale'} end
close(k, ARGV[1], ARGV[4])
return {'closed', h[3], h[4]}
"""
)

# KEYS[1] the policy's due set, KEYS[2] its joined stream. ARGV: event id, joined event,
# its DSJSON line, its example text (see `_GATE`). 1 when this call appended it.
GATE = _GATE + "return gate(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])\n"
# KEYS[1] event hash: closed → streamed.
MARK = _MARK + "mark(KEYS[1])\nreturn 1\n"
# A single Redis: the gate and the mark in one script (KEYS: due, joined, event hash).
STREAM = (
    _GATE
    + _MARK
    + """
local streamed = gate(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
mark(KEYS[3])
return streamed
"""
)
