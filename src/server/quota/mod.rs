//! The guest quota: `GUEST_QUOTA` runs per `IP_EXPIRY_SECONDS`, counted in Redis on the
//! guest's cookie AND on the client IP. One Lua script checks both counters and counts
//! both, atomically: two requests at the same instant can never both take the last run,
//! and a refused run is not counted.

use crate::error::AppError;
use crate::model::QuotaInfo;
use crate::server::redis::Redis;
use std::net::IpAddr;
use std::sync::Arc;

/// KEYS: the guest key, the IP key. ARGV: limit, window seconds, 1 to count or 0 to peek.
/// Returns {allowed (0/1), remaining, seconds until reset}.
const SCRIPT: &str = r#"
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local take = ARGV[3] == '1'
local used = {}
for i, key in ipairs(KEYS) do
  used[i] = tonumber(redis.call('GET', key) or '0')
end
local function reset_of(keys)
  local reset = 0
  for _, key in ipairs(keys) do
    local ttl = redis.call('TTL', key)
    if ttl > reset then reset = ttl end
  end
  return reset
end
local full = {}
for i, key in ipairs(KEYS) do
  if used[i] >= limit then table.insert(full, key) end
end
if #full > 0 then
  local reset = reset_of(full)
  if reset <= 0 then reset = window end
  return {0, 0, reset}
end
local most = 0
for i, key in ipairs(KEYS) do
  if take then
    used[i] = redis.call('INCR', key)
    if used[i] == 1 or redis.call('TTL', key) < 0 then
      redis.call('EXPIRE', key, window)
    end
  end
  if used[i] > most then most = used[i] end
end
local reset = reset_of(KEYS)
if reset <= 0 then reset = window end
return {1, limit - most, reset}
"#;

/// KEYS: counters to give one use back to (each that is above 0).
const GIVE_BACK: &str = r#"
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 1
"#;

/// The quota service.
pub struct Quota {
    redis: Arc<Redis>,
    script: redis::Script,
    give_back: redis::Script,
    limit: u32,
    window: u64,
}

/// What a check decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub info: QuotaInfo,
}

/// The counter key of an address: IPv6 clients are counted per /64 (see
/// [`ip_block`](crate::server::net::ip_block)).
pub fn ip_key(ip: IpAddr) -> String {
    format!("own-ide:quota:ip:{}", crate::server::net::ip_block(ip))
}

impl Quota {
    pub fn new(redis: Arc<Redis>, limit: u32, window: u64) -> Quota {
        Quota {
            redis,
            script: redis::Script::new(SCRIPT),
            give_back: redis::Script::new(GIVE_BACK),
            limit,
            window,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    async fn eval(&self, guest_id: &str, ip: IpAddr, take: bool) -> Result<Decision, AppError> {
        self.count(&Quota::keys(guest_id, ip), take).await
    }

    /// Gives back one use counted on every key (a counted request that then failed on
    /// our side, so that it costs the caller nothing). Best effort.
    pub async fn give_back_keys(&self, keys: &[String]) {
        let Ok(mut conn) = self.redis.conn().await else {
            return;
        };
        let mut invocation = self.give_back.prepare_invoke();
        for k in keys {
            invocation.key(k);
        }
        let done: Result<i64, _> = invocation.invoke_async(&mut conn).await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not give a counted use back");
        }
    }

    /// Gives back one run taken by [`take`](Self::take).
    pub async fn give_back(&self, guest_id: &str, ip: IpAddr) {
        self.give_back_keys(&Quota::keys(guest_id, ip)).await
    }

    /// Checks (and with `take`, counts) one use on every key, atomically: allowed only
    /// when every key is under the limit. Any set of keys: a guest's cookie and IP, or a
    /// user's per-minute rate.
    pub async fn count(&self, keys: &[String], take: bool) -> Result<Decision, AppError> {
        let mut conn = self.redis.conn().await?;
        let mut invocation = self.script.prepare_invoke();
        for k in keys {
            invocation.key(k);
        }
        let (allowed, remaining, reset): (i64, i64, i64) = invocation
            .arg(self.limit)
            .arg(self.window)
            .arg(if take { 1 } else { 0 })
            .invoke_async(&mut conn)
            .await
            .map_err(Redis::failed)?;
        Ok(Decision {
            allowed: allowed == 1,
            info: QuotaInfo {
                limit: self.limit,
                remaining: remaining.max(0) as u32,
                reset_seconds: reset.max(0) as u64,
            },
        })
    }

    /// Takes one run for the guest if both counters allow it (and counts it on both).
    pub async fn take(&self, guest_id: &str, ip: IpAddr) -> Result<Decision, AppError> {
        self.eval(guest_id, ip, true).await
    }

    /// The counter keys a guest's run is counted on (for [`Quota::refund`]).
    pub fn keys(guest_id: &str, ip: IpAddr) -> Vec<String> {
        vec![format!("own-ide:quota:guest:{guest_id}"), ip_key(ip)]
    }

    /// Gives one run back on each key (a run lost with its executor was not the
    /// guest's doing). Best effort; a counter never goes below zero.
    pub async fn refund(&self, keys: &[String]) -> bool {
        const REFUND: &str = r#"
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 1
"#;
        let Ok(mut conn) = self.redis.conn().await else {
            return false;
        };
        let script = redis::Script::new(REFUND);
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        inv.invoke_async::<i64>(&mut conn).await.is_ok()
    }

    /// What the guest has left, without counting anything.
    pub async fn peek(&self, guest_id: &str, ip: IpAddr) -> Result<QuotaInfo, AppError> {
        self.eval(guest_id, ip, false).await.map(|d| d.info)
    }
}

/// The 429 a guest gets when the quota is used up.
pub fn exhausted(info: &QuotaInfo) -> AppError {
    AppError::TooMany {
        code: "quota_exhausted".into(),
        message: format!(
            "You have used all {} guest runs for today. They reset in {}. Log in or register to run without a daily limit.",
            info.limit,
            crate::model::wait_words(info.reset_seconds)
        ),
        retry_after: info.reset_seconds.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(ip_key(mapped), "own-ide:quota:ip:10.1.2.3");
    }
}
