//! Run history in MongoDB (`runs` collection): every run of a logged-in user, with its
//! code and input, newest first. Guests' runs are never written here.

use crate::model::{HistoryPage, Run};
use crate::server::state::{DbError, Mongo};
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
    ttl_seconds: u64,
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
    pub fn new(mongo: Arc<Mongo>, ttl_seconds: u64) -> RunStore {
        RunStore { mongo, ttl_seconds }
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

    /// Saves (or replaces) a user's run.
    pub async fn save(&self, user_id: &str, run: &Run) -> Result<(), DbError> {
        let d = to_doc(user_id, run)?;
        let id = run.id.clone();
        self.mongo
            .call("save run", |db| {
                async move {
                    db.collection::<Document>(RUNS)
                        .replace_one(doc! { "_id": id }, d)
                        .upsert(true)
                        .await
                        .map(|_| ())
                }
                .boxed()
            })
            .await
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
        self.mongo
            .call("delete run", |db| {
                async move {
                    db.collection::<Document>(RUNS)
                        .delete_one(filter)
                        .await
                        .map(|r| r.deleted_count == 1)
                }
                .boxed()
            })
            .await
    }
}
