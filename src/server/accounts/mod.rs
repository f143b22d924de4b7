//! Accounts: users in MongoDB, argon2id passwords, JWT API tokens, and the brakes on
//! guessing and mass registration (counted in Redis). Pages and the REST API both come
//! here.
//!
//! - [`passwords`]: hashing and verification through a bound;
//! - [`brake`]: the log-in brake and the registration throttle, over [`window`] counters;
//! - [`tokens`]: access tokens;
//! - [`sessions`]: browser sessions in MongoDB.

pub mod brake;
pub mod passwords;
pub mod sessions;
pub mod tokens;
pub mod window;

use crate::error::AppError;
use crate::model::{password_problem, username_problem, UserInfo};
use crate::server::config::Config;
use crate::server::mongo::{DbError, Mongo};
use crate::server::redis::Redis;
use brake::{LoginBrake, RegistrationThrottle};
use futures::FutureExt;
use mongodb::bson::doc;
use passwords::{hash_password, Hasher};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use tokens::Tokens;

pub use brake::{FAIL_WINDOW, MAX_FAILS_PER_IP, MAX_FAILS_PER_USER};

/// The collection of users; its unique index is on `username_norm`.
pub const USERS: &str = "users";
/// Name of the unique index on the normalised username.
pub const USERNAME_INDEX: &str = "username_norm_unique";

/// A user as stored in [`USERS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserDoc {
    #[serde(rename = "_id")]
    pub id: String,
    /// As the user typed it at registration.
    pub username: String,
    /// [`normalise`]d: what uniqueness and look-ups use.
    pub username_norm: String,
    /// argon2id, PHC string.
    pub password_hash: String,
    pub created_at: mongodb::bson::DateTime,
}

fn users(db: &mongodb::Database) -> mongodb::Collection<UserDoc> {
    db.collection(USERS)
}

/// The account service.
pub struct Accounts {
    mongo: Arc<Mongo>,
    tokens: Tokens,
    hasher: Hasher,
    brake: LoginBrake,
    registrations: RegistrationThrottle,
    /// A hash of a random password, verified against when a username does not exist, so
    /// that a wrong username and a wrong password take the same time.
    dummy_hash: String,
}

/// Normalised form of a username, used for uniqueness and look-ups.
pub fn normalise(username: &str) -> String {
    username.to_ascii_lowercase()
}

fn invalid_credentials() -> AppError {
    AppError::Unauthorized("The username or password is not correct.".into())
}

impl Accounts {
    pub fn new(config: &Config, mongo: Arc<Mongo>, redis: Arc<Redis>) -> Accounts {
        let random = uuid::Uuid::new_v4().simple().to_string();
        Accounts {
            mongo,
            tokens: Tokens::new(config),
            hasher: Hasher::new(config.hash_concurrency, config.hash_wait),
            brake: LoginBrake::new(redis.clone()),
            registrations: RegistrationThrottle::new(redis, config.registrations_per_ip_per_hour),
            dummy_hash: hash_password(&random).unwrap_or_default(),
        }
    }

    /// The bounded hasher (its counters show how much password work was done).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Creates the unique index on the normalised username (idempotent).
    pub async fn ensure_indexes(&self) -> Result<(), DbError> {
        self.mongo
            .call("create users index", |db| {
                async move {
                    let index = mongodb::IndexModel::builder()
                        .keys(doc! { "username_norm": 1 })
                        .options(
                            mongodb::options::IndexOptions::builder()
                                .name(USERNAME_INDEX.to_string())
                                .unique(true)
                                .build(),
                        )
                        .build();
                    users(&db).create_index(index).await.map(|_| ())
                }
                .boxed()
            })
            .await
    }

    /// Registers a user from client address `ip`. Validation problems are 422 (and do
    /// not count against the IP), more than `REGISTRATIONS_PER_IP_PER_HOUR` from one IP
    /// (IPv6: one /64) 429, a taken name 409, no hashing slot 503 `busy`.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<UserInfo, AppError> {
        // Both faces (form and API) give the same result for the same name: spaces a
        // person typed around it are not part of it.
        let username = username.trim();
        if let Some(p) = username_problem(username) {
            return Err(AppError::invalid("invalid_username", p));
        }
        if let Some(p) = password_problem(password) {
            return Err(AppError::invalid("invalid_password", p));
        }
        let place = self.registrations.take(ip).await?;
        let hash = match self.hasher.hash(password).await {
            Ok(h) => h,
            Err(e) => {
                self.registrations.give_back(place).await;
                return Err(e);
            }
        };
        let user = UserDoc {
            id: uuid::Uuid::new_v4().simple().to_string(),
            username: username.to_string(),
            username_norm: normalise(username),
            password_hash: hash,
            created_at: mongodb::bson::DateTime::now(),
        };
        let info = UserInfo {
            id: user.id.clone(),
            username: user.username.clone(),
        };
        let inserted = self
            .mongo
            .call("insert user", |db| {
                async move { users(&db).insert_one(user).await.map(|_| ()) }.boxed()
            })
            .await;
        match inserted {
            Ok(()) => Ok(info),
            Err(DbError::Duplicate) => Err(AppError::Conflict(
                "That username is taken. Please choose another.".into(),
            )),
            Err(e) => {
                self.registrations.give_back(place).await;
                Err(e.into())
            }
        }
    }

    /// Checks a username and password. Wrong credentials give the same 401 whether or not
    /// the user exists, after the same amount of work; a name that cannot exist (see
    /// [`username_problem`]) gets that 401 at once, without touching Redis, so junk
    /// names make no counters. Too many failures for the username or the IP give 429
    /// until the window passes; the attempt is counted before the password is checked
    /// (see [`LoginBrake`]).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<UserInfo, AppError> {
        let username = username.trim();
        if username_problem(username).is_some() {
            return Err(invalid_credentials());
        }
        let norm = normalise(username);
        let attempt = self.brake.attempt(&norm, ip).await?;
        let found = self
            .mongo
            .call("find user", |db| {
                async move { users(&db).find_one(doc! { "username_norm": norm }).await }.boxed()
            })
            .await;
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                self.brake.not_judged(attempt).await;
                return Err(e.into());
            }
        };
        let hash = match &found {
            Some(u) => u.password_hash.clone(),
            None => self.dummy_hash.clone(),
        };
        let matches = match self.hasher.verify(password, hash).await {
            Ok(m) => m,
            Err(e) => {
                self.brake.not_judged(attempt).await;
                return Err(e);
            }
        };
        match found {
            Some(u) if matches => {
                self.brake.succeeded(attempt).await;
                Ok(UserInfo {
                    id: u.id,
                    username: u.username,
                })
            }
            _ => Err(invalid_credentials()),
        }
    }

    /// A signed access token for `user` and how many seconds it lives.
    pub fn issue_token(&self, user: &UserInfo) -> Result<(String, u64), AppError> {
        self.tokens.issue(user)
    }

    /// The user a bearer token names, or a 401 that says what is wrong with it.
    pub fn verify_token(&self, token: &str) -> Result<UserInfo, AppError> {
        self.tokens.verify(token)
    }
}
