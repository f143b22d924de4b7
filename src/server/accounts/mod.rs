//! Accounts: users in MongoDB, argon2id passwords, JWT API tokens, and the brake on
//! repeated failed log-ins (counted in Redis). Pages and the REST API both come here.

pub mod sessions;

use crate::error::AppError;
use crate::model::{password_problem, username_problem, UserInfo};
use crate::server::config::Config;
use crate::server::mongo::{DbError, Mongo};
use crate::server::redis::Redis;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use futures::FutureExt;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mongodb::bson::{doc, Document};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The collection of users; its unique index is on `username_norm`.
pub const USERS: &str = "users";
/// Name of the unique index on the normalised username.
pub const USERNAME_INDEX: &str = "username_norm_unique";

/// Failed log-ins allowed per username, and per client IP, within [`FAIL_WINDOW`].
pub const MAX_FAILS_PER_USER: u64 = 5;
pub const MAX_FAILS_PER_IP: u64 = 20;
/// The window in which failed log-ins are counted, in seconds.
pub const FAIL_WINDOW: u64 = 15 * 60;

/// What a JWT carries.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The username at the time the token was made.
    pub name: String,
    pub iat: u64,
    pub exp: u64,
}

/// The account service.
pub struct Accounts {
    mongo: Arc<Mongo>,
    redis: Arc<Redis>,
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    token_minutes: u64,
    /// A hash of a random password, verified against when a username does not exist, so
    /// that a wrong username and a wrong password take the same time.
    dummy_hash: String,
    /// Failed log-ins counted in this process while Redis cannot count them: key ->
    /// (failures, start of the window). The brake then holds per instance.
    local_fails: std::sync::Mutex<HashMap<String, (u64, std::time::Instant)>>,
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
        let algorithm = match config.algorithm.as_str() {
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            _ => Algorithm::HS256,
        };
        let secret = config.secret_key.as_bytes();
        let random = uuid::Uuid::new_v4().simple().to_string();
        let dummy_hash = hash_password(&random).unwrap_or_default();
        Accounts {
            mongo,
            redis,
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            token_minutes: config.access_token_expire_minutes,
            dummy_hash,
            local_fails: Default::default(),
        }
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
                    db.collection::<Document>(USERS)
                        .create_index(index)
                        .await
                        .map(|_| ())
                }
                .boxed()
            })
            .await
    }

    /// Registers a user. Validation problems are 422, a taken name 409.
    pub async fn register(&self, username: &str, password: &str) -> Result<UserInfo, AppError> {
        if let Some(p) = username_problem(username) {
            return Err(AppError::invalid("invalid_username", p));
        }
        if let Some(p) = password_problem(password) {
            return Err(AppError::invalid("invalid_password", p));
        }
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|_| AppError::Internal)?
            .ok_or(AppError::Internal)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let user = doc! {
            "_id": &id,
            "username": username,
            "username_norm": normalise(username),
            "password_hash": hash,
            "created_at": mongodb::bson::DateTime::now(),
        };
        let inserted = self
            .mongo
            .call("insert user", |db| {
                async move {
                    db.collection::<Document>(USERS)
                        .insert_one(user)
                        .await
                        .map(|_| ())
                }
                .boxed()
            })
            .await;
        match inserted {
            Ok(()) => Ok(UserInfo {
                id,
                username: username.to_string(),
            }),
            Err(DbError::Duplicate) => Err(AppError::Conflict(
                "That username is taken. Please choose another.".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a username and password. Wrong credentials give the same 401 whether or not
    /// the user exists, after the same amount of work. Too many failures for the username
    /// or the IP give 429 until the window passes.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: std::net::IpAddr,
    ) -> Result<UserInfo, AppError> {
        let norm = normalise(username);
        let keys = [
            format!("own-ide:login-fail:user:{norm}"),
            format!("own-ide:login-fail:ip:{ip}"),
        ];
        self.check_brake(&keys).await?;
        let found = self
            .mongo
            .call("find user", {
                let norm = norm.clone();
                |db| {
                    async move {
                        db.collection::<Document>(USERS)
                            .find_one(doc! { "username_norm": norm })
                            .await
                    }
                    .boxed()
                }
            })
            .await?;
        let (user, hash) = match found {
            Some(d) => {
                let user = UserInfo {
                    id: d.get_str("_id").unwrap_or_default().to_string(),
                    username: d.get_str("username").unwrap_or_default().to_string(),
                };
                let hash = d.get_str("password_hash").unwrap_or_default().to_string();
                (Some(user), hash)
            }
            None => (None, self.dummy_hash.clone()),
        };
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        match user {
            Some(u) if matches => {
                self.clear_failures(&keys[..1]).await;
                Ok(u)
            }
            _ => {
                self.count_failure(&keys).await;
                Err(invalid_credentials())
            }
        }
    }

    async fn check_brake(&self, keys: &[String; 2]) -> Result<(), AppError> {
        let got: Option<(Option<u64>, Option<u64>, i64, i64)> = match self.redis.conn().await {
            Ok(mut conn) => redis::pipe()
                .get(&keys[0])
                .get(&keys[1])
                .ttl(&keys[0])
                .ttl(&keys[1])
                .query_async(&mut conn)
                .await
                .ok(),
            Err(_) => None,
        };
        // Without Redis, this process's own count decides (it holds per instance).
        let (user_fails, ip_fails, user_ttl, ip_ttl) = match got {
            Some(g) => g,
            None => {
                let [(u, ut), (i, it)] = keys.each_ref().map(|k| self.local_count(k));
                (Some(u), Some(i), ut, it)
            }
        };
        let refuse = |ttl: i64| {
            let secs = ttl.max(1) as u64;
            AppError::TooMany {
                code: "too_many_attempts".into(),
                message: format!(
                    "Too many failed log-ins. Please wait {} before trying again.",
                    wait_words(secs)
                ),
                retry_after: secs,
            }
        };
        if user_fails.unwrap_or(0) >= MAX_FAILS_PER_USER {
            return Err(refuse(user_ttl));
        }
        if ip_fails.unwrap_or(0) >= MAX_FAILS_PER_IP {
            return Err(refuse(ip_ttl));
        }
        Ok(())
    }

    /// This process's count of failures for `key` and the seconds left in its window.
    fn local_count(&self, key: &str) -> (u64, i64) {
        let map = self.local_fails.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((n, start)) if start.elapsed().as_secs() < FAIL_WINDOW => {
                (*n, (FAIL_WINDOW - start.elapsed().as_secs()) as i64)
            }
            _ => (0, 0),
        }
    }

    fn count_locally(&self, keys: &[String; 2]) {
        let mut map = self.local_fails.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| start.elapsed().as_secs() < FAIL_WINDOW);
        }
        for k in keys {
            let e = map
                .entry(k.clone())
                .or_insert((0, std::time::Instant::now()));
            if e.1.elapsed().as_secs() >= FAIL_WINDOW {
                *e = (0, std::time::Instant::now());
            }
            e.0 += 1;
        }
    }

    async fn count_failure(&self, keys: &[String; 2]) {
        let Ok(mut conn) = self.redis.conn().await else {
            tracing::warn!("Redis is down: failed log-ins are counted in this process only");
            self.count_locally(keys);
            return;
        };
        let mut pipe = redis::pipe();
        for k in keys {
            // The window starts at the first failure and is not extended by later ones.
            pipe.incr(k, 1u64)
                .ignore()
                .cmd("EXPIRE")
                .arg(k)
                .arg(FAIL_WINDOW)
                .arg("NX")
                .ignore();
        }
        let res: Result<(), _> = pipe.query_async(&mut conn).await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not count a failed log-in in Redis; counted in this process");
            self.count_locally(keys);
        }
    }

    async fn clear_failures(&self, keys: &[String]) {
        {
            let mut map = self.local_fails.lock().unwrap_or_else(|p| p.into_inner());
            for k in keys {
                map.remove(k);
            }
        }
        if let Ok(mut conn) = self.redis.conn().await {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
        }
    }

    /// A signed access token for `user` and how many seconds it lives.
    pub fn issue_token(&self, user: &UserInfo) -> Result<(String, u64), AppError> {
        let now = unix_now();
        let ttl = self.token_minutes * 60;
        let claims = Claims {
            sub: user.id.clone(),
            name: user.username.clone(),
            iat: now,
            exp: now + ttl,
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map(|t| (t, ttl))
            .map_err(|e| {
                tracing::error!(error = %e, "could not sign a token");
                AppError::Internal
            })
    }

    /// The user a bearer token names, or a 401 that says what is wrong with it.
    pub fn verify_token(&self, token: &str) -> Result<UserInfo, AppError> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Ok(UserInfo {
                id: data.claims.sub,
                username: data.claims.name,
            }),
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                let msg = match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        "The access token has expired. Request a new one at /api/v1/token."
                    }
                    ErrorKind::InvalidAlgorithm => {
                        "The access token is signed with the wrong algorithm."
                    }
                    ErrorKind::InvalidSignature => "The access token's signature is not valid.",
                    _ => "The access token is not valid.",
                };
                Err(AppError::Unauthorized(msg.into()))
            }
        }
    }
}

/// Hashes with argon2id and the crate's recommended parameters, as a PHC string.
pub fn hash_password(password: &str) -> Option<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| tracing::error!(error = %e, "argon2 hashing failed"))
        .ok()
}

/// Checks a password against a PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

pub use crate::model::wait_words;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_to_argon2id_phc_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
