//! The Lua scripts: one atomic script per decision, reading the server's clock, and
//! [`Call`], one decision's invocation (`EVALSHA`, then `EVAL` if the server lost the
//! script).

use std::sync::LazyLock;

use redis::{Cmd, ToRedisArgs};

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
  -- Only this script writes the bucket, always both fields, finite and >= 0. Anything
  -- else (a missing field, a non-number, NaN, an infinity, a negative value) was written
  -- by someone else: refuse it rather than compute with it (NaN would refill the bucket,
  -- -inf would answer a wait of -2^63 us).
  if left == nil or since == nil or left ~= left or since ~= since
      or left < 0 or since < 0 or left == math.huge or since == math.huge then
    return redis.error_reply('ERR keel: corrupt token bucket at ' .. KEYS[1]
      .. ' (tokens and ts must be finite numbers >= 0)')
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

/// The marker of the token script's refusal to read a bucket it did not write; the
/// classifier looks for it in the error's text.
pub(crate) const CORRUPT_MARKER: &str = "keel: corrupt";

/// A script's text and its SHA1 (the name `EVALSHA` knows it by).
pub(crate) struct Lua {
    body: &'static str,
    sha: String,
}

impl Lua {
    fn new(body: &'static str) -> Lua {
        Lua {
            body,
            sha: redis::Script::new(body).get_hash().to_owned(),
        }
    }

    /// A call of this script on `key` (arguments follow with [`Call::arg`]).
    pub(crate) fn call(&'static self, key: String) -> Call {
        Call {
            lua: self,
            key,
            args: Vec::with_capacity(6),
        }
    }
}

pub(crate) static TOKEN_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::new(TOKEN));
pub(crate) static PERIOD_SCRIPT: LazyLock<Lua> = LazyLock::new(|| Lua::new(PERIOD));

/// One decision: a script, its one key and its arguments.
///
/// It is sent as `EVALSHA`; a server that does not know the script (`NOSCRIPT`: after a
/// `SCRIPT FLUSH`, a restart or a failover) gets the same call once more as `EVAL` with
/// the script's text, which runs it and caches it again. redis-rs's `Script::invoke`
/// instead sends `SCRIPT LOAD` and then `EVALSHA` again, so a flush between the two
/// (another client flushing in a loop) still ends in `NOSCRIPT`; `EVAL` cannot.
pub(crate) struct Call {
    lua: &'static Lua,
    key: String,
    args: Vec<Vec<u8>>,
}

impl Call {
    /// Appends an argument (`ARGV[i]`).
    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Call {
        arg.write_redis_args(&mut self.args);
        self
    }

    /// The Redis key the call touches (its only `KEYS[1]`).
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// `EVALSHA sha 1 key args...`.
    pub(crate) fn evalsha(&self) -> Cmd {
        self.command("EVALSHA", &self.lua.sha)
    }

    /// `EVAL body 1 key args...`: the answer to `NOSCRIPT`.
    pub(crate) fn eval(&self) -> Cmd {
        self.command("EVAL", self.lua.body)
    }

    fn command(&self, verb: &str, script: &str) -> Cmd {
        let mut cmd = redis::cmd(verb);
        cmd.arg(script).arg(1).arg(&self.key);
        for a in &self.args {
            cmd.arg(a.as_slice());
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_names_the_script_by_its_sha_or_sends_its_text() {
        let mut call = PERIOD_SCRIPT.call("{p:k}".to_owned());
        call.arg(1000u64).arg("");
        let sha = redis::Script::new(PERIOD).get_hash().to_owned();
        let packed = |cmd: Cmd| String::from_utf8_lossy(&cmd.get_packed_command()).into_owned();
        let evalsha = packed(call.evalsha());
        assert!(
            evalsha.contains("EVALSHA") && evalsha.contains(&sha),
            "{evalsha}"
        );
        assert!(evalsha.ends_with("$1\r\n1\r\n$5\r\n{p:k}\r\n$4\r\n1000\r\n$0\r\n\r\n"));
        let eval = packed(call.eval());
        assert!(eval.starts_with("*6\r\n$4\r\nEVAL\r\n"), "{eval}");
        assert!(eval.contains("INCRBY") && !eval.contains(&sha), "{eval}");
        assert!(TOKEN.contains(CORRUPT_MARKER));
    }
}
