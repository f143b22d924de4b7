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
