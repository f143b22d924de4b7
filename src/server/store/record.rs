//! The MongoDB side of the history: the `runs` collection as typed documents (the run,
//! plus its owner and a real date for sorting and expiry), and the queries on it.

use super::MAX_PER_PAGE;
use crate::model::Run;
use crate::server::mongo::{DbError, Mongo};
use futures::TryStreamExt;
use mongodb::bson::{doc, DateTime};
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

/// The collection of saved runs.
pub const RUNS: &str = "runs";
/// Index for a user's history, newest first.
pub const BY_USER_INDEX: &str = "runs_by_user_newest";
/// TTL index that expires runs after `SUBMISSION_TTL_SECONDS` (absent when 0).
pub const TTL_INDEX: &str = "runs_expiry_ttl";

/// One saved run as stored: the run's own fields beside its id, owner and date.
#[derive(Debug, Serialize, Deserialize)]
struct RunDoc {
    #[serde(rename = "_id")]
    id: String,
    user_id: String,
    /// Creation time as a date: sorts the history and drives the TTL index.
    created: DateTime,
    #[serde(flatten)]
    run: Run,
}

impl RunDoc {
    fn new(user_id: &str, run: &Run) -> RunDoc {
        let mut run = run.clone();
        // Whether it is saved is a fact of the moment, not of the record.
        run.saved = None;
        RunDoc {
            id: run.id.clone(),
            user_id: user_id.to_string(),
            created: DateTime::from_millis(created_millis(&run)),
            run,
        }
    }

    fn into_run(self) -> Run {
        let mut run = self.run;
        run.id = self.id;
        run.saved = Some(true);
        run
    }
}

/// Only what the paging index needs of each run.
#[derive(Debug, Deserialize)]
pub struct IndexEntry {
    #[serde(rename = "_id")]
    pub id: String,
    pub language: String,
    pub created: DateTime,
}

/// A run's creation time in milliseconds since the epoch (0 when unreadable).
pub fn created_millis(run: &Run) -> i64 {
    time::OffsetDateTime::parse(
        &run.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    .unwrap_or(0)
}

fn runs(db: &mongodb::Database) -> Collection<RunDoc> {
    db.collection(RUNS)
}

/// The `runs` collection.
pub struct Records {
    mongo: Arc<Mongo>,
}

impl Records {
    pub fn new(mongo: Arc<Mongo>) -> Records {
        Records { mongo }
    }

    /// Creates the named indexes; makes the TTL index match `ttl_seconds` (replaced
    /// when the value changed, removed when it is 0).
    pub async fn ensure_indexes(&self, ttl_seconds: u64) -> Result<(), DbError> {
        self.mongo
            .call("create runs indexes", move |db| async move {
                let runs = runs(&db);
                let by_user = mongodb::IndexModel::builder()
                    .keys(doc! { "user_id": 1, "created": -1, "_id": -1 })
                    .options(
                        mongodb::options::IndexOptions::builder()
                            .name(BY_USER_INDEX.to_string())
                            .build(),
                    )
                    .build();
                runs.create_index(by_user).await?;
                let existing: Vec<mongodb::IndexModel> =
                    runs.list_indexes().await?.try_collect().await?;
                let current = existing.iter().find_map(|i| {
                    let o = i.options.as_ref()?;
                    (o.name.as_deref() == Some(TTL_INDEX)).then_some(o.expire_after)
                });
                let wanted = (ttl_seconds > 0).then(|| Duration::from_secs(ttl_seconds));
                if let Some(current) = current {
                    if current == wanted {
                        return Ok(());
                    }
                    runs.drop_index(TTL_INDEX).await?;
                }
                if let Some(after) = wanted {
                    let ttl = mongodb::IndexModel::builder()
                        .keys(doc! { "created": 1 })
                        .options(
                            mongodb::options::IndexOptions::builder()
                                .name(TTL_INDEX.to_string())
                                .expire_after(after)
                                .build(),
                        )
                        .build();
                    runs.create_index(ttl).await?;
                }
                Ok(())
            })
            .await
    }

    /// Writes a user's run: creates or replaces it (`upsert`), or only replaces it.
    /// True when a run was written.
    pub async fn write(&self, user_id: &str, run: &Run, upsert: bool) -> Result<bool, DbError> {
        let d = RunDoc::new(user_id, run);
        self.mongo
            .call("save run", |db| async move {
                let filter = doc! { "_id": &d.id, "user_id": &d.user_id };
                runs(&db)
                    .replace_one(filter, &d)
                    .upsert(upsert)
                    .await
                    .map(|r| r.matched_count > 0 || r.upserted_id.is_some())
            })
            .await
    }

    /// One of the user's runs; `None` for a missing run and for anyone else's.
    pub async fn get(&self, user_id: &str, id: &str) -> Result<Option<Run>, DbError> {
        let filter = doc! { "_id": id, "user_id": user_id };
        let found = self
            .mongo
            .call(
                "get run",
                |db| async move { runs(&db).find_one(filter).await },
            )
            .await?;
        Ok(found.map(RunDoc::into_run))
    }

    /// Runs by id, in the order given; ids without a run of this user are left out.
    pub async fn fetch(&self, user_id: &str, ids: &[String]) -> Result<Vec<Run>, DbError> {
        let filter = doc! { "_id": { "$in": ids }, "user_id": user_id };
        let docs: Vec<RunDoc> = self
            .mongo
            .call("fetch runs", |db| async move {
                runs(&db).find(filter).await?.try_collect().await
            })
            .await?;
        let mut found: std::collections::HashMap<String, Run> = docs
            .into_iter()
            .map(|d| (d.id.clone(), d.into_run()))
            .collect();
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Id, language and date of every run of the user (for building the paging index).
    pub async fn entries(&self, user_id: &str) -> Result<Vec<IndexEntry>, DbError> {
        let filter = doc! { "user_id": user_id };
        self.mongo
            .call("index runs", |db| async move {
                db.collection::<IndexEntry>(RUNS)
                    .find(filter)
                    .projection(doc! { "_id": 1, "language": 1, "created": 1 })
                    .await?
                    .try_collect()
                    .await
            })
            .await
    }

    /// A page straight from MongoDB (sort, skip, limit, count): the way without Redis.
    pub async fn page(
        &self,
        user_id: &str,
        page: u64,
        per_page: u64,
        language: Option<&str>,
    ) -> Result<(Vec<Run>, u64), DbError> {
        let mut filter = doc! { "user_id": user_id };
        if let Some(l) = language {
            filter.insert("language", l);
        }
        let per_page = per_page.min(MAX_PER_PAGE);
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        let (docs, total) = self
            .mongo
            .call("list runs", move |db| async move {
                let runs = runs(&db);
                let count = runs.count_documents(filter.clone()).into_future();
                let find = async {
                    runs.find(filter.clone())
                        .sort(doc! { "created": -1, "_id": -1 })
                        .skip(skip)
                        .limit(per_page as i64)
                        .await?
                        .try_collect::<Vec<RunDoc>>()
                        .await
                };
                let (total, docs) = futures::try_join!(count, find)?;
                Ok((docs, total))
            })
            .await?;
        Ok((docs.into_iter().map(RunDoc::into_run).collect(), total))
    }

    /// Deletes one of the user's runs. False when there was no such run of theirs.
    pub async fn delete(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let filter = doc! { "_id": id, "user_id": user_id };
        self.mongo
            .call("delete run", |db| async move {
                runs(&db)
                    .delete_one(filter)
                    .await
                    .map(|r| r.deleted_count == 1)
            })
            .await
    }
}
