//! Run history: every run of a logged-in user, with its code and input, newest first.
//! Guests' runs are never written here.
//!
//! MongoDB is the record (`record`). Paging through it is done with an index of each
//! user's run ids in Redis (`index`): a page is one `ZREVRANGE` plus one `_id $in`
//! look-up of 20 documents, so its cost does not grow with the size of the history (the
//! MongoDB-compatible server used here scans every match of a query before it sorts and
//! skips). The index is rebuilt from MongoDB when it is missing, repairs itself when it
//! names runs that are gone (deleted, expired by the TTL index), and without Redis the
//! store pages with a plain MongoDB query.

mod index;
mod pending;
mod record;

pub use record::{BY_USER_INDEX, RUNS, TTL_INDEX};

use crate::model::{HistoryPage, Run};
use crate::server::mongo::{DbError, Mongo};
use crate::server::redis::Redis;
use index::{Entry, Index};
use pending::{Pending, PendingList};
use record::{created_millis, Records};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The most runs one history page may hold.
pub const MAX_PER_PAGE: u64 = 100;

/// The history store.
pub struct RunStore {
    records: Records,
    index: Index,
    pending: PendingList,
    ttl_seconds: u64,
    /// Users whose index missed a write while Redis was away: rebuilt on their next read.
    stale: Mutex<HashSet<String>>,
}

impl RunStore {
    pub fn new(mongo: Arc<Mongo>, redis: Arc<Redis>, ttl_seconds: u64) -> RunStore {
        RunStore {
            records: Records::new(mongo),
            index: Index::new(redis.clone()),
            pending: PendingList::new(redis),
            ttl_seconds,
            stale: Default::default(),
        }
    }

    /// Creates the named indexes; makes the TTL index match `SUBMISSION_TTL_SECONDS`
    /// (replaced when the value changed, removed when it is 0).
    pub async fn ensure_indexes(&self) -> Result<(), DbError> {
        self.records.ensure_indexes(self.ttl_seconds).await
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
        if !self.records.write(user_id, run, upsert).await? {
            return Ok(false);
        }
        let entry = Entry {
            id: &run.id,
            language: &run.language,
            millis: created_millis(run),
        };
        // Best effort: an index that missed a run is rebuilt on the user's next read.
        if !self.index.add(user_id, &entry).await {
            self.mark_stale(user_id, true);
        }
        Ok(true)
    }

    fn mark_stale(&self, user_id: &str, stale: bool) -> bool {
        let mut set = self.stale.lock().unwrap_or_else(|p| p.into_inner());
        if stale {
            set.insert(user_id.to_string())
        } else {
            set.remove(user_id)
        }
    }

    /// Rebuilds a user's index from MongoDB (ids, languages and times only).
    async fn build_index(&self, user_id: &str) -> Result<bool, DbError> {
        let entries = self.records.entries(user_id).await?;
        let entries: Vec<Entry> = entries
            .iter()
            .map(|e| Entry {
                id: &e.id,
                language: &e.language,
                millis: e.created.timestamp_millis(),
            })
            .collect();
        Ok(self.index.rebuild(user_id, &entries).await)
    }

    /// A page through the Redis index; `None` when Redis cannot serve it.
    async fn list_indexed(
        &self,
        user_id: &str,
        page: u64,
        per_page: u64,
        language: Option<&str>,
    ) -> Option<Result<HistoryPage, DbError>> {
        let built = self.index.is_built(user_id).await?;
        let stale = self.mark_stale(user_id, false);
        if !built || stale {
            match self.build_index(user_id).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    if stale {
                        self.mark_stale(user_id, true);
                    }
                    return Some(Err(e));
                }
            }
        }
        // A few rounds at most: each one drops ids whose runs are gone.
        for _ in 0..3 {
            if self.ttl_seconds > 0 {
                self.index.expire(user_id, self.ttl_seconds).await;
            }
            let ids = self.index.page(user_id, language, page, per_page).await?;
            let items = match self.records.fetch(user_id, &ids.ids).await {
                Ok(items) => items,
                Err(e) => return Some(Err(e)),
            };
            if items.len() == ids.ids.len() {
                return Some(Ok(HistoryPage {
                    items,
                    page,
                    per_page,
                    total: ids.total,
                }));
            }
            let gone: Vec<&String> = ids
                .ids
                .iter()
                .filter(|id| !items.iter().any(|r| &r.id == *id))
                .collect();
            self.index.remove(user_id, &gone).await;
        }
        None
    }

    /// One of the user's runs; `None` for a missing run and for anyone else's.
    pub async fn get(&self, user_id: &str, id: &str) -> Result<Option<Run>, DbError> {
        self.records.get(user_id, id).await
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
        if let Some(result) = self.list_indexed(user_id, page, per_page, language).await {
            return result;
        }
        let (items, total) = self.records.page(user_id, page, per_page, language).await?;
        Ok(HistoryPage {
            items,
            page,
            per_page,
            total,
        })
    }

    /// Keeps a finished run whose write failed until MongoDB answers again (see
    /// [`write_pending`](Self::write_pending)); false when Redis cannot keep it either.
    pub async fn save_later(&self, user_id: &str, run: &Run, replace_only: bool) -> bool {
        let p = Pending {
            user_id: user_id.to_string(),
            run: run.clone(),
            replace_only,
        };
        self.pending.push(&p).await
    }

    /// Writes the runs that were kept for later, oldest first, until MongoDB fails or
    /// none is left; returns those now in the history (a run deleted meanwhile is not
    /// brought back, and not returned).
    pub async fn write_pending(&self) -> Vec<(String, Run)> {
        let mut written = Vec::new();
        while let Some((raw, parsed)) = self.pending.first().await {
            let Some(p) = parsed else {
                tracing::error!("dropping an unreadable pending history entry");
                self.pending.remove(&raw).await;
                continue;
            };
            let mut run = p.run;
            match self.write(&p.user_id, &run, !p.replace_only).await {
                Ok(stored) => {
                    self.pending.remove(&raw).await;
                    if stored {
                        run.saved = Some(true);
                        written.push((p.user_id, run));
                    }
                }
                Err(_) => break,
            }
        }
        written
    }

    /// Deletes one of the user's runs. False when there was no such run of theirs.
    pub async fn delete(&self, user_id: &str, id: &str) -> Result<bool, DbError> {
        let deleted = self.records.delete(user_id, id).await?;
        if deleted {
            // If this fails, the next page read drops the id (its run is gone).
            self.index.remove(user_id, id).await;
        }
        Ok(deleted)
    }
}
