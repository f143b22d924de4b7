//! The Redis side of the history: each user's run ids in sorted sets scored by creation
//! time (one for all runs, one per language), so that a page is one `ZREVRANGE` plus a
//! look-up of its ids, whatever the size of the history.

use crate::server::redis::Redis;
use std::sync::Arc;

/// How long a built index is trusted before it is rebuilt from MongoDB anyway (covers a
/// write that another instance could not add to the index).
const INDEX_TRUST_SECONDS: u64 = 3600;

/// The Redis key of a user's index: all runs, or one language's.
fn key(user_id: &str, language: Option<&str>) -> String {
    match language {
        Some(l) => format!("own-ide:history:{user_id}:lang:{l}"),
        None => format!("own-ide:history:{user_id}"),
    }
}

/// Every index key of a user: all runs, then one per language.
fn keys(user_id: &str) -> Vec<String> {
    std::iter::once(key(user_id, None))
        .chain(
            crate::server::sandbox::LANGUAGES
                .iter()
                .map(|l| key(user_id, Some(l.id))),
        )
        .collect()
}

/// Set once a user's index holds every run that was in MongoDB when it was built.
fn built_key(user_id: &str) -> String {
    format!("own-ide:history:{user_id}:built")
}

/// One run as the index knows it.
pub struct Entry<'a> {
    pub id: &'a str,
    pub language: &'a str,
    /// Creation time in milliseconds: the score.
    pub millis: i64,
}

/// The paging index. Every call is best effort: `None`/`false` when Redis cannot answer,
/// and the store then pages through MongoDB alone.
pub struct Index {
    redis: Arc<Redis>,
}

/// One page of ids and the number of runs in the whole list.
pub struct IdPage {
    pub ids: Vec<String>,
    pub total: u64,
}

impl Index {
    pub fn new(redis: Arc<Redis>) -> Index {
        Index { redis }
    }

    async fn conn(&self) -> Option<redis::aio::ConnectionManager> {
        self.redis.conn().await.ok()
    }

    /// Adds one run; false when Redis did not take it.
    pub async fn add(&self, user_id: &str, e: &Entry<'_>) -> bool {
        let Some(mut conn) = self.conn().await else {
            return false;
        };
        redis::pipe()
            .zadd(key(user_id, None), e.id, e.millis)
            .ignore()
            .zadd(key(user_id, Some(e.language)), e.id, e.millis)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .is_ok()
    }

    /// Drops run ids from all of a user's keys. A missed id is dropped on a later read,
    /// when its run is found gone.
    pub async fn remove<T: redis::ToRedisArgs>(&self, user_id: &str, ids: T) {
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let mut pipe = redis::pipe();
        for key in keys(user_id) {
            pipe.zrem(key, &ids).ignore();
        }
        let _: Result<(), _> = pipe.query_async(&mut conn).await;
    }

    /// Whether the user's index has been built (and is still trusted); `None` without Redis.
    pub async fn is_built(&self, user_id: &str) -> Option<bool> {
        let mut conn = self.conn().await?;
        redis::cmd("EXISTS")
            .arg(built_key(user_id))
            .query_async(&mut conn)
            .await
            .ok()
    }

    /// Replaces the user's index with `entries`, atomically; false when Redis failed.
    pub async fn rebuild(&self, user_id: &str, entries: &[Entry<'_>]) -> bool {
        let Some(mut conn) = self.conn().await else {
            return false;
        };
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.del(keys(user_id)).ignore();
        for chunk in entries.chunks(1000) {
            let all: Vec<(i64, &str)> = chunk.iter().map(|e| (e.millis, e.id)).collect();
            let mut by_lang: std::collections::HashMap<&str, Vec<(i64, &str)>> = Default::default();
            for e in chunk {
                by_lang
                    .entry(e.language)
                    .or_default()
                    .push((e.millis, e.id));
            }
            if !all.is_empty() {
                pipe.zadd_multiple(key(user_id, None), &all).ignore();
            }
            for (lang, members) in by_lang {
                pipe.zadd_multiple(key(user_id, Some(lang)), &members)
                    .ignore();
            }
        }
        pipe.set_ex(built_key(user_id), 1, INDEX_TRUST_SECONDS)
            .ignore();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not build a history index in Redis");
                false
            }
        }
    }

    /// Drops entries older than `ttl_seconds` (their runs have expired in MongoDB).
    pub async fn expire(&self, user_id: &str, ttl_seconds: u64) {
        let Some(mut conn) = self.conn().await else {
            return;
        };
        let cutoff = (time::OffsetDateTime::now_utc().unix_timestamp() as u64)
            .saturating_sub(ttl_seconds) as i64
            * 1000;
        let mut pipe = redis::pipe();
        for key in keys(user_id) {
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(format!("({cutoff}"))
                .ignore();
        }
        let _: Result<(), _> = pipe.query_async(&mut conn).await;
    }

    /// One page of ids, newest first, and the list's size.
    pub async fn page(
        &self,
        user_id: &str,
        language: Option<&str>,
        page: u64,
        per_page: u64,
    ) -> Option<IdPage> {
        let mut conn = self.conn().await?;
        let key = key(user_id, language);
        let start = ((page - 1) * per_page) as isize;
        let stop = start + per_page as isize - 1;
        let (total, ids): (u64, Vec<String>) = redis::pipe()
            .zcard(&key)
            .zrevrange(&key, start, stop)
            .query_async(&mut conn)
            .await
            .ok()?;
        Some(IdPage { ids, total })
    }
}
