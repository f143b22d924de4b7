//! Browser sessions kept in MongoDB (`sessions` collection), so that they survive a
//! restart and are shared by every app instance. Expired sessions are removed by a TTL
//! index and are never loaded even before that happens.

use crate::server::mongo::{DbError, Mongo};
use async_trait::async_trait;
use futures::FutureExt;
use mongodb::bson::{doc, DateTime};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use tower_sessions::SessionStore;

/// The collection of sessions.
pub const SESSIONS: &str = "sessions";
/// Name of the TTL index on `expires_at`.
pub const SESSION_TTL_INDEX: &str = "sessions_expiry_ttl";

/// A session as stored in [`SESSIONS`].
#[derive(Debug, Serialize, Deserialize)]
struct SessionDoc {
    #[serde(rename = "_id")]
    id: String,
    /// The session's data as JSON.
    data: String,
    /// What the TTL index deletes by.
    expires_at: DateTime,
}

fn sessions(db: &mongodb::Database) -> mongodb::Collection<SessionDoc> {
    db.collection(SESSIONS)
}

/// A tower-sessions store on the app's MongoDB.
#[derive(Clone)]
pub struct MongoSessionStore {
    mongo: Arc<Mongo>,
    /// What this process last wrote per session (data hash, expiry in seconds): a save
    /// of the same data with about the same expiry is skipped. A new visitor's session
    /// is saved by the identity middleware and then again by the session layer; this
    /// makes the second one free.
    written: Arc<std::sync::Mutex<std::collections::HashMap<i128, (u64, i64)>>>,
}

/// Expiries closer than this count as the same (sliding expiry moves on every save).
const SAME_EXPIRY_SECONDS: i64 = 60;
/// Bound on the memory of recent writes.
const MAX_REMEMBERED: usize = 50_000;

fn fingerprint(record: &Record) -> Result<(u64, i64)> {
    use std::hash::{Hash, Hasher};
    let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    Ok((h.finish(), record.expiry_date.unix_timestamp()))
}

impl std::fmt::Debug for MongoSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MongoSessionStore")
    }
}

fn backend(e: DbError) -> Error {
    Error::Backend(format!("session store: {e:?}"))
}

fn to_doc(record: &Record) -> Result<SessionDoc> {
    let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
    let expires_at =
        DateTime::from_millis((record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64);
    Ok(SessionDoc {
        id: record.id.to_string(),
        data,
        expires_at,
    })
}

impl MongoSessionStore {
    pub fn new(mongo: Arc<Mongo>) -> Self {
        MongoSessionStore {
            mongo,
            written: Default::default(),
        }
    }

    fn remember(&self, id: &Id, record: &Record) {
        if let Ok(f) = fingerprint(record) {
            let mut w = self.written.lock().unwrap_or_else(|p| p.into_inner());
            if w.len() >= MAX_REMEMBERED {
                w.clear();
            }
            w.insert(id.0, f);
        }
    }

    fn unchanged(&self, record: &Record) -> bool {
        let Ok((data, expiry)) = fingerprint(record) else {
            return false;
        };
        let w = self.written.lock().unwrap_or_else(|p| p.into_inner());
        w.get(&record.id.0)
            .is_some_and(|(d, e)| *d == data && (expiry - e).abs() < SAME_EXPIRY_SECONDS)
    }

    fn forget(&self, id: &Id) {
        let mut w = self.written.lock().unwrap_or_else(|p| p.into_inner());
        w.remove(&id.0);
    }

    /// The TTL index that lets MongoDB delete expired sessions.
    pub async fn ensure_indexes(&self) -> std::result::Result<(), DbError> {
        self.mongo
            .call("create sessions index", |db| {
                async move {
                    let index = mongodb::IndexModel::builder()
                        .keys(doc! { "expires_at": 1 })
                        .options(
                            mongodb::options::IndexOptions::builder()
                                .name(SESSION_TTL_INDEX.to_string())
                                .expire_after(std::time::Duration::from_secs(0))
                                .build(),
                        )
                        .build();
                    sessions(&db).create_index(index).await.map(|_| ())
                }
                .boxed()
            })
            .await
    }
}

#[async_trait]
impl SessionStore for MongoSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A fresh random id; on the (astronomically unlikely) collision, draw again.
        for _ in 0..5 {
            let d = to_doc(record)?;
            let inserted = self
                .mongo
                .call("create session", |db| {
                    async move { sessions(&db).insert_one(d).await.map(|_| ()) }.boxed()
                })
                .await;
            match inserted {
                Ok(()) => {
                    self.remember(&record.id, record);
                    return Ok(());
                }
                Err(DbError::Duplicate) => record.id = Id::default(),
                Err(e) => return Err(backend(e)),
            }
        }
        Err(Error::Backend("could not find a free session id".into()))
    }

    async fn save(&self, record: &Record) -> Result<()> {
        if self.unchanged(record) {
            return Ok(());
        }
        let d = to_doc(record)?;
        let id = record.id.to_string();
        let saved = self
            .mongo
            .call("save session", |db| {
                async move {
                    sessions(&db)
                        .replace_one(doc! { "_id": id }, d)
                        .upsert(true)
                        .await
                        .map(|_| ())
                }
                .boxed()
            })
            .await
            .map_err(backend);
        if saved.is_ok() {
            self.remember(&record.id, record);
        }
        saved
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let key = id.to_string();
        let found = self
            .mongo
            .call("load session", |db| {
                async move {
                    sessions(&db)
                        .find_one(doc! { "_id": key, "expires_at": { "$gt": DateTime::now() } })
                        .await
                }
                .boxed()
            })
            .await
            .map_err(backend)?;
        let Some(d) = found else { return Ok(None) };
        let data = serde_json::from_str(&d.data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp_nanos(
            d.expires_at.timestamp_millis() as i128 * 1_000_000,
        )
        .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.forget(id);
        let key = id.to_string();
        self.mongo
            .call("delete session", |db| {
                async move {
                    sessions(&db)
                        .delete_one(doc! { "_id": key })
                        .await
                        .map(|_| ())
                }
                .boxed()
            })
            .await
            .map_err(backend)
    }
}
