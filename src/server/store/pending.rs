//! Final states that MongoDB could not take when a run finished wait here, in a Redis
//! list (not process memory: a restart keeps them), until MongoDB answers again. Any
//! instance may write them: writing a run is a replace, so doing it twice is harmless,
//! and an entry leaves the list only after its write succeeded.

use crate::model::Run;
use crate::server::redis::Redis;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const KEY: &str = "own-ide:history:pending";

/// One run waiting to be written.
#[derive(Serialize, Deserialize)]
pub struct Pending {
    pub user_id: String,
    pub run: Run,
    /// The run was stored when it started: replace it only (a run deleted meanwhile
    /// stays deleted).
    pub replace_only: bool,
}

/// The list of runs waiting for MongoDB.
pub struct PendingList {
    redis: Arc<Redis>,
}

impl PendingList {
    pub fn new(redis: Arc<Redis>) -> PendingList {
        PendingList { redis }
    }

    /// Adds a run; false when Redis cannot keep it either.
    pub async fn push(&self, p: &Pending) -> bool {
        let (Ok(mut conn), Ok(json)) = (self.redis.conn().await, serde_json::to_string(p)) else {
            return false;
        };
        redis::cmd("RPUSH")
            .arg(KEY)
            .arg(json)
            .query_async::<()>(&mut conn)
            .await
            .is_ok()
    }

    /// The oldest waiting run (still in the list), with its raw entry for `remove`.
    pub async fn first(&self) -> Option<(String, Option<Pending>)> {
        let mut conn = self.redis.conn().await.ok()?;
        let raw: Option<String> = redis::cmd("LINDEX")
            .arg(KEY)
            .arg(0)
            .query_async(&mut conn)
            .await
            .ok()?;
        let raw = raw?;
        let parsed = serde_json::from_str(&raw).ok();
        Some((raw, parsed))
    }

    /// Takes an entry out of the list (once written, or when it cannot be read).
    pub async fn remove(&self, raw: &str) {
        if let Ok(mut conn) = self.redis.conn().await {
            let _: Result<(), _> = redis::cmd("LREM")
                .arg(KEY)
                .arg(1)
                .arg(raw)
                .query_async(&mut conn)
                .await;
        }
    }
}
