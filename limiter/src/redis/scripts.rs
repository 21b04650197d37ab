//! The Lua scripts: one atomic script per decision, reading the server's clock.

use std::sync::LazyLock;

use redis::Script;

/// The token bucket.
///
/// `KEYS[1]`: the bucket, a hash with fields `tokens` (a float) and `ts` (µs of server
/// time). `ARGV`: tokens per period, the period in µs (a float), burst, n, the key's TTL in
/// ms, and optionally `most` (a lease: take up to `most` whole tokens, at least `n`).
/// Answers `{1, 0, taken}` when tokens were taken, `{0, µs until n tokens are there, 0}`
/// otherwise.
const TOKEN: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local per = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local have = burst
if saved[1] or saved[2] then
  local left = tonumber(saved[1])
  local since = tonumber(saved[2])
  if left == nil or since == nil then
    return redis.error_reply('ERR keel: corrupt token bucket at ' .. KEYS[1])
  end
  local elapsed = now - since
  if elapsed < 0 then elapsed = 0 end
  have = math.min(burst, left + elapsed * per / period)
end
if have >= want then
  local take = want
  local most = tonumber(ARGV[6])
  if most and most > want then take = math.max(want, math.min(most, math.floor(have))) end
  redis.call('HSET', KEYS[1], 'tokens', have - take, 'ts', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {1, 0, take}
end
return {0, math.ceil((want - have) * period / per), 0}
";

/// The fixed-window counter.
///
/// `KEYS[1]`: the counter. `ARGV`: the period in ms, and the alignment offset in ms (an
/// empty string for windows starting at the first hit). Answers `{count, ms left}`.
const PERIOD: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local count = redis.call('INCRBY', KEYS[1], 1)
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  left = tonumber(ARGV[1])
  if ARGV[2] ~= '' then
    local clock = redis.call('TIME')
    local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
    left = left - (now + tonumber(ARGV[2])) % left
  end
  redis.call('PEXPIRE', KEYS[1], left)
end
return {count, left}
";

pub(crate) static TOKEN_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(TOKEN));
pub(crate) static PERIOD_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PERIOD));
