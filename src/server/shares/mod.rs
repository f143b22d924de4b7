//! Shared runs: immutable public snapshots in their own MongoDB collection, apart from
//! the history (deleting the run keeps its share), each under a short unguessable slug.
//! The creator is kept only as a keyed hash, to let them revoke it; nothing that is sent
//! out names them.

mod slug;

pub use slug::new_slug;

use crate::error::AppError;
use crate::model::share::is_slug;
use crate::model::{QuotaInfo, SharedRun};
use crate::server::auth::{Caller, Owner};
use crate::server::mongo::{DbError, Mongo};
use crate::server::runs::{now_rfc3339, Refused, Runs};
use mongodb::bson::{doc, DateTime};
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The collection of shares.
pub const SHARES: &str = "shares";
/// TTL index: each share with an expiry date goes at that date (absent: kept).
pub const TTL_INDEX: &str = "shares_expiry_ttl";

/// One share as stored.
#[derive(Debug, Serialize, Deserialize)]
struct ShareDoc {
    #[serde(rename = "_id")]
    slug: String,
    /// SHA-256 of the creator's owner key: enough to recognise them, not to name them.
    creator: String,
    created: DateTime,
    /// When MongoDB's TTL monitor removes it; reads check it too (the monitor runs about
    /// once a minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<DateTime>,
    snapshot: SharedRun,
}

/// A new share, with the guest's quota (a user's rate) after counting it.
pub struct Created {
    pub share: SharedRun,
    pub quota: Option<QuotaInfo>,
}

/// The share service.
pub struct Shares {
    mongo: Arc<Mongo>,
    runs: Arc<Runs>,
    /// Seconds a share lives; 0 keeps it until revoked.
    ttl: u64,
}

fn shares(db: &mongodb::Database) -> Collection<ShareDoc> {
    db.collection(SHARES)
}

/// The creator's key as stored: a hash, so that a copy of the collection names no one.
fn creator_key(owner: &Owner) -> String {
    let key = match owner {
        Owner::User(id) => format!("user:{id}"),
        Owner::Guest(id) => format!("guest:{id}"),
    };
    let digest = Sha256::digest(format!("own-ide share creator\0{key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn rfc3339(t: DateTime) -> String {
    t.try_to_rfc3339_string().unwrap_or_default()
}

/// How many fresh slugs to try when one is taken (about 65 bits each: a clash is
/// already a wonder).
const SLUG_TRIES: usize = 3;

impl Shares {
    pub fn new(mongo: Arc<Mongo>, runs: Arc<Runs>, ttl: u64) -> Shares {
        Shares { mongo, runs, ttl }
    }

    /// Creates the TTL index on the expiry date (documents without one never expire).
    pub async fn ensure_indexes(&self) -> Result<(), DbError> {
        self.mongo
            .call("create shares indexes", |db| async move {
                let ttl = mongodb::IndexModel::builder()
                    .keys(doc! { "expires": 1 })
                    .options(
                        mongodb::options::IndexOptions::builder()
                            .name(TTL_INDEX.to_string())
                            .expire_after(std::time::Duration::from_secs(0))
                            .build(),
                    )
                    .build();
                shares(&db).create_index(ttl).await.map(|_| ())
            })
            .await
    }

    /// Shares run `run_id`, which the caller must be able to see and which must have
    /// finished: counted like a run (a guest's quota, a user's rate), then stored.
    /// 404 for a run the caller cannot see, 409 while it runs, 429 over the quota, 503
    /// when MongoDB or Redis cannot take it (then nothing is stored or counted).
    pub async fn create(&self, caller: &Caller, run_id: &str) -> Result<Created, Refused> {
        let owner = caller.owner();
        let run = self
            .runs
            .with_source(run_id, &owner)
            .await
            .ok_or(AppError::NotFound)?;
        let now = DateTime::now();
        let expires = (self.ttl > 0).then(|| {
            DateTime::from_millis(
                now.timestamp_millis()
                    .saturating_add(self.ttl as i64 * 1000),
            )
        });
        let Some(snapshot) =
            SharedRun::of(&run, String::new(), now_rfc3339(), expires.map(rfc3339))
        else {
            return Err(AppError::Conflict(
                "This run has not finished yet: share it once it has.".into(),
            )
            .into());
        };
        let quota = self.runs.count(caller).await?;
        match self.insert(&owner, snapshot, now, expires).await {
            Ok(share) => Ok(Created { share, quota }),
            Err(e) => {
                self.runs.give_back(caller).await;
                Err(Refused {
                    error: e.into(),
                    quota,
                })
            }
        }
    }

    async fn insert(
        &self,
        owner: &Owner,
        mut snapshot: SharedRun,
        now: DateTime,
        expires: Option<DateTime>,
    ) -> Result<SharedRun, DbError> {
        let creator = creator_key(owner);
        for _ in 0..SLUG_TRIES {
            snapshot.slug = new_slug();
            let doc = ShareDoc {
                slug: snapshot.slug.clone(),
                creator: creator.clone(),
                created: now,
                expires,
                snapshot: snapshot.clone(),
            };
            match self
                .mongo
                .call("insert share", |db| async move {
                    shares(&db).insert_one(doc).await
                })
                .await
            {
                Ok(_) => return Ok(snapshot),
                Err(DbError::Duplicate) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(DbError::Unavailable)
    }

    /// The share behind `slug`, for anyone; `None` when there is none (or it expired).
    pub async fn get(&self, slug: &str) -> Result<Option<SharedRun>, AppError> {
        if !is_slug(slug) {
            return Ok(None);
        }
        let slug = slug.to_string();
        let found = self
            .mongo
            .call("find share", |db| async move {
                shares(&db).find_one(doc! { "_id": slug }).await
            })
            .await?;
        let now = DateTime::now();
        Ok(found
            .filter(|d| d.expires.is_none_or(|t| t > now))
            .map(|d| d.snapshot))
    }

    /// Revokes a share; only its creator can (404 for anyone else, as for no share).
    pub async fn revoke(&self, caller: &Caller, slug: &str) -> Result<(), AppError> {
        if !is_slug(slug) {
            return Err(AppError::NotFound);
        }
        let filter = doc! { "_id": slug, "creator": creator_key(&caller.owner()) };
        let deleted = self
            .mongo
            .call("delete share", |db| async move {
                shares(&db).delete_one(filter).await
            })
            .await?;
        if deleted.deleted_count == 1 {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creators_are_hashed_and_told_apart() {
        let a = creator_key(&Owner::User("u1".into()));
        assert_eq!(a.len(), 64);
        assert!(!a.contains("u1"));
        assert_eq!(a, creator_key(&Owner::User("u1".into())));
        assert_ne!(a, creator_key(&Owner::Guest("u1".into())));
        assert_ne!(a, creator_key(&Owner::User("u2".into())));
    }
}
