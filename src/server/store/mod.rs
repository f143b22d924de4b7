//! Run history in MongoDB (`runs` collection): every run of a logged-in user, with its
//! code and input, newest first. Guests' runs are never written here.
//!
//! MongoDB is the record. Paging through it is done with an index of each user's run ids
//! in Redis (sorted sets scored by creation time, one for all runs and one per language):
//! a page is one `ZREVRANGE` plus one `_id $in` look-up of 20 documents, so its cost does
//! not grow with the size of the history (the MongoDB-compatible server used here scans
//! every match of a query before it sorts and skips). The index is rebuilt from MongoDB
//! when it is missing, repairs itself when it names runs that are gone (deleted, expired
//! by the TTL index), and without Redis the store pages with a plain MongoDB query.

use crate::model::{HistoryPage, Run};
use crate::server::mongo::{DbError, Mongo};
use crate::server::redis::Redis;
use futures::{FutureExt, TryStreamExt};
use mongodb::bson::{doc, Bson, DateTime, Document};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

/// The collection of saved runs.
pub const RUNS: &str = "runs";
/// Index for a user's history, newest first.
pub const BY_USER_INDEX: &str = "runs_by_user_newest";
/// TTL index that expires runs after `SUBMISSION_TTL_SECONDS` (absent when 0).
pub const TTL_INDEX: &str = "runs_expiry_ttl";
/// The most runs one history page may hold.
pub const MAX_PER_PAGE: u64 = 100;

/// The history store.
pub struct RunStore {
    mongo: Arc<Mongo>,
    redis: Arc<Redis>,
    ttl_seconds: u64,
    /// Users whose index missed a write while Redis was away: rebuilt on their next read.
    stale: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How long a built index is trusted before it is rebuilt from MongoDB anyway (covers a
/// write that another instance could not add to the index).
const INDEX_TRUST_SECONDS: u64 = 3600;

/// The Redis key of a user's index: all runs, or one language's.
fn index_key(user_id: &str, language: Option<&str>) -> String {
    match language {
        Some(l) => format!("own-ide:history:{user_id}:lang:{l}"),
        None => format!("own-ide:history:{user_id}"),
    }
}

/// Every index key of a user: all runs, then one per language.
fn index_keys(user_id: &str) -> Vec<String> {
    std::iter::once(index_key(user_id, None))
        .chain(
            crate::server::sandbox::LANGUAGES
                .iter()
                .map(|l| index_key(user_id, Some(l.id))),
        )
        .collect()
}

/// Drops run ids from all of a user's index keys. Best effort: a missed id is dropped
/// on a later read, when its run is found gone.
async fn unindex<T: redis::ToRedisArgs>(
    conn: &mut redis::aio::ConnectionManager,
    user_id: &str,
    ids: T,
) {
    let mut pipe = redis::pipe();
    for key in index_keys(user_id) {
        pipe.zrem(key, &ids).ignore();
    }
    let _: Result<(), _> = pipe.query_async(conn).await;
}

/// Set once a user's index holds every run that was in MongoDB when it was built.
fn built_key(user_id: &str) -> String {
    format!("own-ide:history:{user_id}:built")
}

fn millis(run: &Run) -> i64 {
    time::OffsetDateTime::parse(
        &run.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    .unwrap_or(0)
}

fn to_doc(user_id: &str, run: &Run) -> Result<Document, DbError> {
    let mut run = run.clone();
    run.saved = None;
    let mut d = mongodb::bson::to_document(&run).map_err(|e| {
        tracing::error!(error = %e, "could not encode a run for MongoDB");
        DbError::Unavailable
    })?;
    let created = time::OffsetDateTime::parse(
        &run.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| DateTime::from_millis((t.unix_timestamp_nanos() / 1_000_000) as i64))
    .unwrap_or_else(|_| DateTime::now());
    d.remove("id");
    d.insert("_id", run.id.clone());
    d.insert("user_id", user_id);
    d.insert("created", created);
    Ok(d)
}

fn from_doc(mut d: Document) -> Option<Run> {
    let id = d.remove("_id")?;
    d.insert("id", id);
    d.remove("user_id");
    d.remove("created");
    // Integers come back as i32 or i64; the Run type wants unsigned numbers.
    for key in ["time_ms", "memory_kb"] {
        if let Some(Bson::Int32(n)) = d.get(key) {
            let n = *n as i64;
            d.insert(key, n);
        }
    }
    match mongodb::bson::from_document::<Run>(d) {
        Ok(mut run) => {
            run.saved = Some(true);
            Some(run)
        }
        Err(e) => {
            tracing::error!(error = %e, "a stored run could not be read");
            None
        }
    }
}

impl RunStore {
    pub fn new(mongo: Arc<Mongo>, redis: Arc<Redis>, ttl_seconds: u64) -> RunStore {
        RunStore {
            mongo,
            redis,
            ttl_seconds,
            stale: Default::default(),
        }
    }

    /// Creates the named indexes; makes the TTL index match `SUBMISSION_TTL_SECONDS`
    /// (replaced when the value changed, removed when it is 0).
    pub async fn ensure_indexes(&self) -> Result<(), DbError> {
        let ttl = self.ttl_seconds;
        self.mongo
            .call("create runs indexes", move |db| {
                async move {
                    let runs = db.collection::<Document>(RUNS);
                    runs.create_index(
                        mongodb::IndexModel::builder()
                            .keys(doc! { "user_id": 1, "created": -1, "_id": -1 })
                            .options(
                                mongodb::options::IndexOptions::builder()
                                    .name(BY_USER_INDEX.to_string())
                                    .build(),
                            )
                            .build(),
                    )
                    .await?;
                    let existing: Vec<mongodb::IndexModel> =
                        runs.list_indexes().await?.try_collect().await?;
                    let current = existing.iter().find_map(|i| {
                        let o = i.options.as_ref()?;
                        (o.name.as_deref() == Some(TTL_INDEX)).then_some(o.expire_after)
                    });
                    let wanted = (ttl > 0).then(|| Duration::from_secs(ttl));
                    if let Some(current) = current {
                        if current == wanted {
                            return Ok(());
                        }
                        runs.drop_index(TTL_INDEX).await?;
                    }
                    if let Some(after) = wanted {
                        runs.create_index(
                            mongodb::IndexModel::builder()
                                .keys(doc! { "created": 1 })
                                .options(
                                    mongodb::options::IndexOptions::builder()
                                        .name(TTL_INDEX.to_string())
                                        .expire_after(after)
                                        .build(),
                                )
                                .build(),
                        )
                        .await?;
                    }
                    Ok(())
                }
                .boxed()
            })
            .await
    }

    /// Saves (or replaces) a user's run, and adds it to the user's index.
    pub async fn save(&self, user_id: &str, run: &Run) -> Result<(), DbError> {
        self.write(user_id, run, true).await.map(|_| ())
    }

    /// Replaces a run that is already stored; `Ok(false)` when it is not (any more),
    /// for example because its owner deleted it while it ran. Nothing is re-created.
    pub async fn save_existing(&self, user_id: &str, run: &Run) -> Result<bool, DbError> {
        self.write(user_id, run, false).await
    }

    async fn write(&self, user_id: &str, run: &Run, upsert: bool) -> Result<bool, DbError> {
        let d = to_doc(user_id, run)?;
        let id = run.id.clone();
        let owner = user_id.to_string();
        let stored = self
            .mongo
            .call("save run", |db| {
                async move {
                    db.collection::<Document>(RUNS)
                        .replace_one(doc! { "_id": id, "user_id": owner }, d)
                        .upsert(upsert)
                        .await
                        .map(|r| r.matched_count > 0 || r.upserted_id.is_some())
                }
                .boxed()
            })
            .await?;
        if !stored {
            return Ok(false);
        }
        // Best effort: an index that missed a run is rebuilt on the user's next read.
        let indexed = match self.redis.conn().await {
            Ok(mut conn) => {
                let score = millis(run);
                redis::pipe()
                    .zadd(index_key(user_id, None), &run.id, score)
                    .ignore()
                    .zadd(index_key(user_id, Some(&run.language)), &run.id, score)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
                    .is_ok()
            }
            Err(_) => false,
        };
        if !indexed {
            self.stale
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(user_id.to_string());
        }
        Ok(true)
    }

    /// Rebuilds a user's index from MongoDB (ids, languages and times only).
    async fn build_index(
        &self,
        user_id: &str,
        conn: &mut redis::aio::ConnectionManager,
    ) -> Result<(), DbError> {
        let filter = doc! { "user_id": user_id };
        let entries: Vec<Document> = self
            .mongo
            .call("index runs", |db| {
                async move {
                    db.collection::<Document>(RUNS)
                        .find(filter)
                        .projection(doc! { "_id": 1, "language": 1, "created": 1 })
                        .await?
                        .try_collect()
                        .await
                }
                .boxed()
            })
            .await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.del(index_keys(user_id)).ignore();
        for chunk in entries.chunks(1000) {
            let mut all = Vec::with_capacity(chunk.len());
            let mut by_lang: std::collections::HashMap<&str, Vec<(i64, &str)>> = Default::default();
            for d in chunk {
                let (Ok(id), Ok(lang)) = (d.get_str("_id"), d.get_str("language")) else {
                    continue;
                };
                let score = d
                    .get_datetime("created")
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(0);
                all.push((score, id));
                by_lang.entry(lang).or_default().push((score, id));
            }
            if !all.is_empty() {
                pipe.zadd_multiple(index_key(user_id, None), &all).ignore();
            }
            for (lang, members) in by_lang {
                pipe.zadd_multiple(index_key(user_id, Some(lang)), &members)
                    .ignore();
            }
        }
        pipe.set_ex(built_key(user_id), 1, INDEX_TRUST_SECONDS)
            .ignore();
        pipe.query_async::<()>(conn).await.map_err(|e| {
            tracing::warn!(error = %e, "could not build a history index in Redis");
            DbError::Unavailable
        })
    }

    /// Fetches runs by id, in the order given; ids without a run of this user are left out.
    async fn fetch(&self, user_id: &str, ids: &[String]) -> Result<Vec<Run>, DbError> {
        let filter = doc! { "_id": { "$in": ids }, "user_id": user_id };
        let docs: Vec<Document> = self
            .mongo
            .call("fetch runs", |db| {
                async move {
                    db.collection::<Document>(RUNS)
                        .find(filter)
                        .await?
                        .try_collect()
                        .await
                }
                .boxed()
            })
            .await?;
        let mut runs: std::collections::HashMap<String, Run> = docs
            .into_iter()
            .filter_map(from_doc)
            .map(|r| (r.id.clone(), r))
            .collect();
        Ok(ids.iter().filter_map(|id| runs.remove(id)).collect())
    }

    /// A page through the Redis index; `None` when Redis cannot serve it.
    async fn list_indexed(
        &self,
        user_id: &str,
        page: u64,
        per_page: u64,
        language: Option<&str>,
    ) -> Option<Result<HistoryPage, DbError>> {
        let mut conn = self.redis.conn().await.ok()?;
        let built: bool = redis::cmd("EXISTS")
            .arg(built_key(user_id))
            .query_async(&mut conn)
            .await
            .ok()?;
        let stale = self
            .stale
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user_id);
        if !built || stale {
            if let Err(e) = self.build_index(user_id, &mut conn).await {
                if stale {
                    self.stale
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(user_id.to_string());
                }
                return Some(Err(e));
            }
        }
        let key = index_key(user_id, language);
        let start = ((page - 1) * per_page) as isize;
        let stop = start + per_page as isize - 1;
        // A few rounds at most: each one drops ids whose runs are gone.
        for _ in 0..3 {
            if self.ttl_seconds > 0 {
                let cutoff = (time::OffsetDateTime::now_utc().unix_timestamp() as u64)
                    .saturating_sub(self.ttl_seconds) as i64
                    * 1000;
                let mut pipe = redis::pipe();
                for key in index_keys(user_id) {
                    pipe.cmd("ZREMRANGEBYSCORE")
                        .arg(key)
                        .arg("-inf")
                        .arg(format!("({cutoff}"))
                        .ignore();
                }
                let _: Result<(), _> = pipe.query_async(&mut conn).await;
            }
            let (total, ids): (u64, Vec<String>) = redis::pipe()
                .zcard(&key)
                .zrevrange(&key, start, stop)
                .query_async(&mut conn)
                .await
                .ok()?;
            let items = match self.fetch(user_id, &ids).await {
                Ok(items) => items,
                Err(e) => return Some(Err(e)),
            };
            if items.len() == ids.len() {
                return Some(Ok(HistoryPage {
                    items,
                    page,
                    per_page,
                    total,
                }));
            }
            let gone: Vec<&String> = ids
                .iter()
                .filter(|id| !items.iter().any(|r| &r.id == *id))
                .collect();
            unindex(&mut conn, user_id, &gone).await;
        }
        None
    }

    /// One of the user's runs; `None` for a missing run and for anyone else's.
    pub async fn get(&self, user_id: &str, id: &str) -> Result<Option<Run>, DbError> {
        let filter = doc! { "_id": id, "user_id": user_id };
        let found = self
            .mongo
            .call("get run", |db| {
                async move { db.collection::<Document>(RUNS).find_one(filter).await }.boxed()
            })
            .await?;
        Ok(found.and_then(from_doc))
    }

    /// A page of the user's runs, newest first, optionally of one language.
    pub async fn list(
        &self,
        user_id: &str,
        page: u64,
        per_page: u64,
        language: Option<&str>,
    ) -> Result<HistoryPage, DbError> {
        let page = page.max(1);
        match self.list_indexed(user_id, page, per_page, language).await {
            Some(result) => result,
            None => self.list_scanning(user_id, page, per_page, language).await,
        }
    }

    /// A page straight from MongoDB (sort, skip, limit, count).
    async fn list_scanning(
        &self,
        user_id: &str,
        page: u64,
        per_page: u64,
        language: Option<&str>,
    ) -> Result<HistoryPage, DbError> {
        let mut filter = doc! { "user_id": user_id };
        if let Some(l) = language {
            filter.insert("language", l);
        }
        let skip = (page.saturating_sub(1)).saturating_mul(per_page);
        let (items, total) = self
            .mongo
            .call("list runs", move |db| {
                async move {
                    let runs = db.collection::<Document>(RUNS);
                    let count = runs.count_documents(filter.clone()).into_future();
                    let find = async {
                        runs.find(filter.clone())
                            .sort(doc! { "created": -1, "_id": -1 })
                            .skip(skip)
                            .limit(per_page as i64)
                            .await?
                            .try_collect::<Vec<Document>>()
                            .await
                    };
                    let (total, docs) = futures::try_join!(count, find)?;
                    Ok((docs, total))
                }
                .boxed()
            })
            .await?;
        Ok(HistoryPage {
            items: items.into_iter().filter_map(from_doc).collect(),
            page,
            per_page,
            total,
        })
    }

    /// Deletes one of the user's runs. False when there was no such run of theirs.
    pub async fn delete(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let filter = doc! { "_id": id, "user_id": user_id };
        let deleted = self
            .mongo
            .call("delete run", |db| {
                async move {
                    db.collection::<Document>(RUNS)
                        .delete_one(filter)
                        .await
                        .map(|r| r.deleted_count == 1)
                }
                .boxed()
            })
            .await?;
        if deleted {
            // If this fails, the next page read drops the id (its run is gone).
            if let Ok(mut conn) = self.redis.conn().await {
                unindex(&mut conn, user_id, id).await;
            }
        }
        Ok(deleted)
    }
}
