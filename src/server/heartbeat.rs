//! Engine instances' heartbeats in Redis: a key per instance that expires unless renewed,
//! so that any instance can tell whether another one is alive (on any machine, in a
//! container or not), and sweep the sandbox containers of the dead.

use super::redis::Redis;
use super::sandbox::Liveness;
use std::sync::Arc;
use std::time::Duration;

/// [`Liveness`] backed by the app's Redis.
pub struct RedisLiveness {
    redis: Arc<Redis>,
}

impl RedisLiveness {
    pub fn new(redis: Arc<Redis>) -> Self {
        RedisLiveness { redis }
    }
}

/// The heartbeat key of an engine instance.
fn key(instance: &str) -> String {
    format!("own-ide:engine:{instance}:alive")
}

#[async_trait::async_trait]
impl Liveness for RedisLiveness {
    async fn beat(&self, instance: &str, ttl: Duration) -> Result<(), String> {
        let mut conn = self.redis.conn().await.map_err(|e| e.to_string())?;
        redis::cmd("SET")
            .arg(key(instance))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    async fn alive(&self, instance: &str) -> Result<bool, String> {
        let mut conn = self.redis.conn().await.map_err(|e| e.to_string())?;
        redis::cmd("EXISTS")
            .arg(key(instance))
            .query_async::<bool>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The key that says an instance was declared dead by a takeover (see
/// [`RedisLiveness::declare_lost`]): `removing` while its containers are being removed,
/// then `removed`.
fn lost_key(instance: &str) -> String {
    format!("own-ide:engine:{instance}:lost")
}

/// How long a declaration of loss holds at most: a takeover node that dies while it
/// removes the containers cannot keep the instance waiting for longer.
const LOST_HOLD: Duration = Duration::from_secs(30);

/// What an instance learns from [`RedisLiveness::beat_unless_lost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It beat: no one declared it dead.
    Alive,
    /// A takeover declared it dead and is still removing its containers.
    BeingRemoved,
    /// A takeover declared it dead and removed its containers.
    Removed,
}

impl RedisLiveness {
    /// Beats for `instance` only if no takeover declared it dead meanwhile, in one atomic
    /// step: either this beat comes first (then no takeover removes its containers), or
    /// the declaration does (then the instance learns it here, before it takes work).
    pub async fn beat_unless_lost(
        &self,
        instance: &str,
        ttl: Duration,
    ) -> Result<Standing, String> {
        let mut conn = self.redis.conn().await.map_err(|e| e.to_string())?;
        let state: Option<String> = redis::Script::new(
            r"local s = redis.call('GET', KEYS[2])
              if s then return s end
              redis.call('SET', KEYS[1], 1, 'PX', ARGV[1])
              return false",
        )
        .key(key(instance))
        .key(lost_key(instance))
        .arg(ttl.as_millis().max(1) as u64)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
        Ok(match state.as_deref() {
            None => Standing::Alive,
            Some("removing") => Standing::BeingRemoved,
            Some(_) => Standing::Removed,
        })
    }

    /// Declares `instance` dead so that its containers may be removed, only if it has
    /// not beaten meanwhile (atomic with [`RedisLiveness::beat_unless_lost`]). `false`
    /// (also when Redis cannot tell) means: remove nothing of it.
    pub async fn declare_lost(&self, instance: &str) -> bool {
        let Ok(mut conn) = self.redis.conn().await else {
            return false;
        };
        redis::Script::new(
            r"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
              redis.call('SET', KEYS[2], 'removing', 'PX', ARGV[1])
              return 1",
        )
        .key(key(instance))
        .key(lost_key(instance))
        .arg(LOST_HOLD.as_millis() as u64)
        .invoke_async::<bool>(&mut conn)
        .await
        .unwrap_or(false)
    }

    /// Says that the containers of `instance`, declared dead, have been removed.
    pub async fn removed(&self, instance: &str) {
        if let Ok(mut conn) = self.redis.conn().await {
            let _ = redis::cmd("SET")
                .arg(lost_key(instance))
                .arg("removed")
                .arg("XX")
                .arg("KEEPTTL")
                .query_async::<()>(&mut conn)
                .await;
        }
    }

    /// Ends a declaration of loss: the instance, back, has dropped what it held.
    pub async fn clear_lost(&self, instance: &str) {
        if let Ok(mut conn) = self.redis.conn().await {
            let _ = redis::cmd("DEL")
                .arg(lost_key(instance))
                .query_async::<()>(&mut conn)
                .await;
        }
    }
}
