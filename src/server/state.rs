//! `AppState`: the real clients and services, built once and handed to every handler.

use super::accounts::sessions::MongoSessionStore;
use super::accounts::Accounts;
use super::config::Config;
use super::quota::Quota;
use super::redis::Redis;
use super::runs::Runs;
use super::sandbox::Engine;
use super::store::RunStore;
use crate::error::AppError;
use axum::extract::FromRef;
use futures::future::BoxFuture;
use leptos::config::LeptosOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a request may need. Cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub engine: Arc<Engine>,
    pub redis: Arc<Redis>,
    pub mongo: Arc<Mongo>,
    pub runs: Arc<Runs>,
    pub accounts: Arc<Accounts>,
    pub sessions: MongoSessionStore,
}

/// The MongoDB client. Made without connecting; every call fails fast when the server
/// is away, so a down MongoDB never hangs a request.
pub struct Mongo {
    pub client: Option<mongodb::Client>,
    pub db_name: String,
    /// After a connection failure, calls fail at once until this instant instead of
    /// each waiting for server selection to time out.
    down_until: std::sync::Mutex<Option<Instant>>,
}

/// How a MongoDB call failed, as the services need to know it.
#[derive(Debug, PartialEq, Eq)]
pub enum DbError {
    /// Unreachable, timed out, or failed in a way the caller cannot fix.
    Unavailable,
    /// A unique index refused the write (code 11000).
    Duplicate,
}

impl From<DbError> for AppError {
    fn from(_: DbError) -> AppError {
        AppError::unavailable(
            "mongodb_unavailable",
            "Accounts and run history (MongoDB) are not available right now. Please try again shortly.",
            5,
        )
    }
}

/// How long a single MongoDB call may take.
const MONGO_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to fail fast after MongoDB was found unreachable.
const MONGO_BACKOFF: Duration = Duration::from_secs(2);

impl Mongo {
    async fn connect(cfg: &Config) -> Mongo {
        let client = async {
            let mut opts = mongodb::options::ClientOptions::parse(&cfg.database_uri).await?;
            opts.server_selection_timeout = Some(Duration::from_secs(2));
            opts.connect_timeout = Some(Duration::from_secs(2));
            opts.app_name = Some("own-ide".into());
            if let (Some(user), Some(password)) = (&cfg.database_user, &cfg.database_password) {
                opts.credential = Some(
                    mongodb::options::Credential::builder()
                        .username(user.clone())
                        .password(password.clone())
                        .build(),
                );
            }
            mongodb::Client::with_options(opts)
        }
        .await;
        match client {
            Ok(c) => Mongo {
                client: Some(c),
                db_name: cfg.database_name.clone(),
                down_until: std::sync::Mutex::new(None),
            },
            Err(e) => {
                tracing::error!(error = %e, "DATABASE_URI is not usable; history and accounts are unavailable");
                Mongo {
                    client: None,
                    db_name: cfg.database_name.clone(),
                    down_until: std::sync::Mutex::new(None),
                }
            }
        }
    }

    /// The app's database, if the URI was usable.
    pub fn db(&self) -> Option<mongodb::Database> {
        self.client.as_ref().map(|c| c.database(&self.db_name))
    }

    /// True when MongoDB answers a ping. Also ends the fail-fast period early.
    pub async fn ping(&self) -> bool {
        let Some(db) = self.db() else { return false };
        let ping = db.run_command(mongodb::bson::doc! { "ping": 1 });
        let up = matches!(
            tokio::time::timeout(Duration::from_secs(3), ping).await,
            Ok(Ok(_))
        );
        if up {
            self.set_down(false);
        }
        up
    }

    fn set_down(&self, down: bool) {
        let mut until = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        *until = down.then(|| Instant::now() + MONGO_BACKOFF);
    }

    fn is_backing_off(&self) -> bool {
        let until = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    /// Runs one MongoDB operation with a time limit, logging the driver's error on the
    /// server and telling the caller only what it can act on. While MongoDB is known to
    /// be down, fails at once (a down database never stalls a page).
    pub async fn call<T>(
        &self,
        what: &str,
        op: impl FnOnce(mongodb::Database) -> BoxFuture<'static, mongodb::error::Result<T>>,
    ) -> Result<T, DbError> {
        let Some(db) = self.db() else {
            return Err(DbError::Unavailable);
        };
        if self.is_backing_off() {
            return Err(DbError::Unavailable);
        }
        match tokio::time::timeout(MONGO_CALL_TIMEOUT, op(db)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if is_duplicate(&e) => Err(DbError::Duplicate),
            Ok(Err(e)) => {
                tracing::error!(operation = what, error = %e, "MongoDB call failed");
                if is_connectivity(&e) {
                    self.set_down(true);
                }
                Err(DbError::Unavailable)
            }
            Err(_) => {
                tracing::error!(operation = what, "MongoDB did not answer in time");
                self.set_down(true);
                Err(DbError::Unavailable)
            }
        }
    }
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

fn is_connectivity(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        &*e.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}

impl AppState {
    /// Builds the state from the configuration. Dependencies that are down do not stop
    /// this; they are reported by `/readyz` and retried on later requests.
    pub async fn build(config: Config, leptos_options: LeptosOptions) -> Result<AppState, String> {
        let config = Arc::new(config);
        let engine = Engine::start(config.sandbox.clone(), config.docker_host.as_deref()).await?;
        let redis = Arc::new(Redis::new(&config.redis_url)?);
        let mongo = Arc::new(Mongo::connect(&config).await);
        let quota = Arc::new(Quota::new(
            redis.clone(),
            config.guest_quota,
            config.ip_expiry_seconds,
        ));
        let store = Arc::new(RunStore::new(
            mongo.clone(),
            redis.clone(),
            config.submission_ttl_seconds,
        ));
        let runs = Runs::new(
            engine.clone(),
            redis.clone(),
            quota,
            store,
            config.run_state_ttl_seconds,
        );
        let accounts = Arc::new(Accounts::new(&config, mongo.clone(), redis.clone()));
        let sessions = MongoSessionStore::new(mongo.clone());
        let state = AppState {
            leptos_options,
            config,
            engine,
            redis,
            mongo,
            runs,
            accounts,
            sessions,
        };
        state.ensure_indexes().await;
        Ok(state)
    }

    /// Creates the MongoDB indexes. When MongoDB is down at start-up this is retried in
    /// the background until it works, so that a late database still gets its indexes.
    pub async fn ensure_indexes(&self) {
        if self.try_indexes().await {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if this.try_indexes().await {
                    tracing::info!("MongoDB indexes created");
                    return;
                }
            }
        });
    }

    async fn try_indexes(&self) -> bool {
        let (a, b, c) = tokio::join!(
            self.accounts.ensure_indexes(),
            self.sessions.ensure_indexes(),
            self.runs.store().ensure_indexes(),
        );
        a.is_ok() && b.is_ok() && c.is_ok()
    }

    /// Which dependencies answer right now, checked at the same time.
    pub async fn readiness(&self) -> Vec<(&'static str, bool)> {
        let (docker, redis, mongo) =
            tokio::join!(self.engine.ping(), self.redis.ping(), self.mongo.ping());
        vec![("docker", docker), ("redis", redis), ("mongodb", mongo)]
    }
}
