//! Attempts counted in fixed windows, reserve-first: a caller takes its place in every
//! counter that concerns it before the work it limits is done, in one atomic step, so
//! that parallel callers can never all see room for one more. Counted in Redis so that
//! the limit holds across instances; while Redis cannot be reached, in this process (the
//! limit then holds per instance rather than not at all).

use crate::server::redis::Redis;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// KEYS: the counters. ARGV[1]: the window in seconds; ARGV[1 + i]: the limit of KEYS[i].
/// When any counter is at its limit nothing changes and the answer is {0, seconds until
/// the last of the full counters resets}; otherwise every counter counts one more, a new
/// one starting its window (later counts do not extend it), and the answer is {1, 0}.
const RESERVE: &str = r#"
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, window)
      ttl = window
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return {0, wait} end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, window) end
end
return {1, 0}
"#;

/// KEYS: counters to give one back to (never below zero).
const REFUND: &str = r#"
for _, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used > 1 then
    redis.call('DECR', key)
  elseif used == 1 then
    redis.call('DEL', key)
  end
end
return 0
"#;

/// Counters kept in this process while Redis is away, at most this many at once; beyond
/// it a new counter is refused (fail closed) rather than memory growing without bound.
const MAX_LOCAL_COUNTERS: usize = 100_000;

/// A place taken in some counters, to be kept (the attempt counts), refunded (it does
/// not) or cleared.
#[derive(Debug)]
pub struct Reservation {
    keys: Vec<String>,
    /// Taken in this process's counters because Redis could not be reached.
    local: bool,
}

impl Reservation {
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

/// Counters over one window length.
pub struct Window {
    redis: Arc<Redis>,
    seconds: u64,
    reserve: redis::Script,
    refund: redis::Script,
    /// key -> (count, start of its window), used while Redis is away.
    local: Mutex<HashMap<String, (u64, Instant)>>,
}

impl Window {
    pub fn new(redis: Arc<Redis>, seconds: u64) -> Window {
        Window {
            redis,
            seconds,
            reserve: redis::Script::new(RESERVE),
            refund: redis::Script::new(REFUND),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one on every `(key, limit)` if none is at its limit; otherwise changes
    /// nothing and answers `Err(seconds until a place is free)`.
    pub async fn reserve(&self, counters: &[(String, u64)]) -> Result<Reservation, u64> {
        let keys: Vec<String> = counters.iter().map(|(k, _)| k.clone()).collect();
        if let Ok(mut conn) = self.redis.conn().await {
            let mut call = self.reserve.prepare_invoke();
            for k in &keys {
                call.key(k);
            }
            call.arg(self.seconds);
            for (_, limit) in counters {
                call.arg(*limit);
            }
            match call.invoke_async::<(i64, i64)>(&mut conn).await {
                Ok((1, _)) => return Ok(Reservation { keys, local: false }),
                Ok((_, wait)) => return Err(wait.max(1) as u64),
                Err(e) => {
                    tracing::warn!(error = %e, "Redis could not count an attempt; counted in this process")
                }
            }
        } else {
            tracing::warn!("Redis is down: attempts are counted in this process only");
        }
        self.reserve_locally(counters)
            .map(|()| Reservation { keys, local: true })
    }

    fn reserve_locally(&self, counters: &[(String, u64)]) -> Result<(), u64> {
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.seconds;
        let left = |start: &Instant| window.saturating_sub(start.elapsed().as_secs());
        if map.len() >= MAX_LOCAL_COUNTERS {
            map.retain(|_, (_, start)| left(start) > 0);
        }
        let mut wait = 0;
        for (key, limit) in counters {
            match map.get(key).filter(|(_, start)| left(start) > 0) {
                Some((used, start)) if used >= limit => wait = wait.max(left(start)),
                Some(_) => {}
                None if map.len() >= MAX_LOCAL_COUNTERS => wait = wait.max(window),
                None => {}
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for (key, _) in counters {
            let e = map.entry(key.clone()).or_insert((0, Instant::now()));
            if left(&e.1) == 0 {
                *e = (0, Instant::now());
            }
            e.0 += 1;
        }
        Ok(())
    }

    /// Gives back the place `r` took in `keys` (a subset of its keys, or all of them).
    pub async fn refund(&self, r: &Reservation, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        if r.local {
            let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
            for k in keys {
                if let Some(e) = map.get_mut(k) {
                    e.0 = e.0.saturating_sub(1);
                }
            }
            return;
        }
        let refunded = match self.redis.conn().await {
            Ok(mut conn) => {
                let mut call = self.refund.prepare_invoke();
                for k in keys {
                    call.key(k);
                }
                call.invoke_async::<i64>(&mut conn).await.map(|_| ())
            }
            Err(_) => return,
        };
        if let Err(e) = refunded {
            tracing::warn!(error = %e, "could not give back an attempt in Redis");
        }
    }

    /// Forgets the counts of `keys`, here and in Redis.
    pub async fn clear(&self, keys: &[String]) {
        {
            let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
            for k in keys {
                map.remove(k);
            }
        }
        if let Ok(mut conn) = self.redis.conn().await {
            let cleared: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            if let Err(e) = cleared {
                tracing::warn!(error = %e, "could not clear attempt counters in Redis");
            }
        }
    }
}
