//! Runs in flight per caller: at most `per_caller` queued-or-running runs per user and
//! per guest (its cookie, and all guests of one IP block together), and at most `per_ip`
//! per IP block whoever is signed in there. Counted in Redis so that the caps hold
//! across instances: each run holds a lease (a member of a sorted set scored by its
//! expiry) in each of its keys, renewed while the run lives and released when it ends;
//! a lease of an instance that died lapses by itself, so no slot is ever pinned.

use crate::error::AppError;
use crate::model::wait_words;
use crate::server::auth::Caller;
use crate::server::net::ip_block;
use crate::server::redis::Redis;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;

/// How long a lease lives without renewal.
const LEASE: Duration = Duration::from_secs(30);
/// How often a live run renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// KEYS: the caller's keys. ARGV: lease ms, member, then one cap per key.
/// Drops lapsed leases, refuses when any key is at its cap ({0, index of that key}),
/// else adds the member to every key ({1, 0}). Redis' own clock: instances may differ.
const ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZSCORE', key, ARGV[2]) == false and redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    return {0, i}
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[2])
  redis.call('PEXPIRE', key, lease)
end
return {1, 0}
"#;

/// KEYS: the lease's keys. ARGV: lease ms, member. Pushes the member's expiry forward
/// (only where it still holds a lease: a lapsed one is not brought back).
const RENEW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2]) >= 0 then
    redis.call('PEXPIRE', key, tonumber(ARGV[1]))
  end
end
return 1
"#;

/// The in-flight counter.
pub struct InFlight {
    redis: Arc<Redis>,
    acquire: redis::Script,
    renew: redis::Script,
    per_caller: u32,
    per_ip: u32,
    /// Leases counted in this process while Redis cannot count them (key -> members):
    /// the caps then hold per instance.
    local: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

/// One run's place in its caller's counts. Release it when the run ends; if it is
/// dropped without that (a crash), its renewal stops and it lapses within [`LEASE`].
pub struct Lease {
    keys: Vec<String>,
    member: String,
    redis: Arc<Redis>,
    /// Held in Redis (else in this process only).
    shared: bool,
    local: Arc<Mutex<HashMap<String, Vec<String>>>>,
    _renew: Option<AbortOnDropHandle<()>>,
}

impl InFlight {
    pub fn new(redis: Arc<Redis>, per_caller: u32, per_ip: u32) -> InFlight {
        InFlight {
            redis,
            acquire: redis::Script::new(ACQUIRE),
            renew: redis::Script::new(RENEW),
            per_caller,
            per_ip,
            local: Default::default(),
        }
    }

    /// The keys a caller's run counts against, with their caps.
    fn keys(&self, caller: &Caller) -> Vec<(String, u32)> {
        let block = ip_block(caller.ip());
        let mut keys = match caller {
            Caller::User { id, .. } => {
                vec![(format!("own-ide:inflight:user:{id}"), self.per_caller)]
            }
            Caller::Guest { guest_id, .. } => vec![
                (
                    format!("own-ide:inflight:guest:{guest_id}"),
                    self.per_caller,
                ),
                (
                    format!("own-ide:inflight:guests-of:{block}"),
                    self.per_caller,
                ),
            ],
        };
        keys.push((format!("own-ide:inflight:ip:{block}"), self.per_ip));
        keys
    }

    /// Takes a place for run `member` of `caller`, or refuses with `429 too_many_runs`.
    /// A cap of 0 turns the check off.
    pub async fn acquire(&self, caller: &Caller, member: &str) -> Result<Lease, AppError> {
        let keys: Vec<(String, u32)> = self
            .keys(caller)
            .into_iter()
            .filter(|(_, cap)| *cap > 0)
            .collect();
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let shared = match self.redis.conn().await {
            Ok(mut conn) => {
                let mut inv = self.acquire.prepare_invoke();
                for (k, _) in &keys {
                    inv.key(k);
                }
                inv.arg(LEASE.as_millis() as u64).arg(member);
                for (_, cap) in &keys {
                    inv.arg(*cap);
                }
                match inv.invoke_async::<(i64, i64)>(&mut conn).await {
                    Ok((1, _)) => true,
                    Ok((_, i)) => return Err(self.refusal(&keys, i)),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not count runs in flight in Redis; counted in this process");
                        self.acquire_locally(&keys, member)?;
                        false
                    }
                }
            }
            Err(_) => {
                self.acquire_locally(&keys, member)?;
                false
            }
        };
        let renew = shared.then(|| {
            let (redis, script, keys, member) = (
                self.redis.clone(),
                self.renew.clone(),
                names.clone(),
                member.to_string(),
            );
            AbortOnDropHandle::new(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    if let Ok(mut conn) = redis.conn().await {
                        let mut inv = script.prepare_invoke();
                        for k in &keys {
                            inv.key(k);
                        }
                        inv.arg(LEASE.as_millis() as u64).arg(&member);
                        let _: Result<i64, _> = inv.invoke_async(&mut conn).await;
                    }
                }
            }))
        });
        Ok(Lease {
            keys: names,
            member: member.to_string(),
            redis: self.redis.clone(),
            shared,
            local: self.local.clone(),
            _renew: renew,
        })
    }

    fn acquire_locally(&self, keys: &[(String, u32)], member: &str) -> Result<(), AppError> {
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = keys
            .iter()
            .position(|(k, cap)| local.get(k).map_or(0, Vec::len) >= *cap as usize)
        {
            return Err(self.refusal(keys, i as i64 + 1));
        }
        for (k, _) in keys {
            local.entry(k.clone()).or_default().push(member.to_string());
        }
        Ok(())
    }

    /// The 429 for a caller at the cap of its `index`-th key (1-based, as Lua counts).
    fn refusal(&self, keys: &[(String, u32)], index: i64) -> AppError {
        let (key, cap) = keys
            .get((index.max(1) - 1) as usize)
            .cloned()
            .unwrap_or_default();
        let whose = if key.contains(":ip:") {
            "from your network"
        } else {
            "of yours"
        };
        AppError::TooMany {
            code: "too_many_runs".into(),
            message: format!(
                "You already have {cap} runs {whose} queued or running. Wait for one to finish (about {}), then try again.",
                wait_words(2)
            ),
            retry_after: 2,
        }
    }
}

impl Lease {
    /// Gives the place back. Best effort: a lease Redis did not hear about lapses.
    pub async fn release(self) {
        if !self.shared {
            return; // `Drop` gives back a place counted in this process.
        }
        release_keys(&self.redis, &self.keys, &self.member).await;
    }

    /// The Redis keys the lease is held in (none when counted in this process only),
    /// so that another node can release it ([`release_keys`]).
    pub fn shared_keys(&self) -> Vec<String> {
        if self.shared {
            self.keys.clone()
        } else {
            Vec::new()
        }
    }
}

/// Releases run `member`'s lease in `keys` (from any node: the one that writes a run's
/// final state may not be the one that accepted it). Best effort.
pub async fn release_keys(redis: &Redis, keys: &[String], member: &str) {
    if keys.is_empty() {
        return;
    }
    if let Ok(mut conn) = redis.conn().await {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.zrem(k, member).ignore();
        }
        let _: Result<(), _> = pipe.query_async(&mut conn).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.shared {
            return; // Its renewal stops with it; Redis lets it lapse if not released.
        }
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        for k in &self.keys {
            if let Some(members) = local.get_mut(k) {
                members.retain(|m| m != &self.member);
                if members.is_empty() {
                    local.remove(k);
                }
            }
        }
    }
}
