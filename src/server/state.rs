//! `AppState`: the real clients and services, built once and handed to every handler.

use super::accounts::sessions::MongoSessionStore;
use super::accounts::Accounts;
use super::config::Config;
use super::heartbeat::RedisLiveness;
use super::mongo::Mongo;
use super::quota::Quota;
use super::redis::Redis;
use super::runs::{FairShare, Runs};
use super::sandbox::Engine;
use super::shares::Shares;
use super::store::RunStore;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;
use std::time::Duration;

/// Why the state could not be built; start-up stops with this one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Docker(String),
    #[error("configuration error: REDIS_URL is not usable: {0}")]
    Redis(redis::RedisError),
}

/// Everything a request may need. Cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub engine: Arc<Engine>,
    pub redis: Arc<Redis>,
    pub mongo: Arc<Mongo>,
    pub runs: Arc<Runs>,
    pub shares: Arc<Shares>,
    pub accounts: Arc<Accounts>,
    pub sessions: MongoSessionStore,
}

impl AppState {
    /// Builds the state from the configuration. Dependencies that are down do not stop
    /// this; they are reported by `/readyz` and retried on later requests.
    pub async fn build(
        config: Config,
        leptos_options: LeptosOptions,
    ) -> Result<AppState, StartError> {
        let config = Arc::new(config);
        let redis = Arc::new(Redis::new(&config.redis_url).map_err(StartError::Redis)?);
        // A web node never runs code: it needs no Docker engine.
        let engine = if config.role.executes() {
            let engine = Engine::start(config.sandbox.clone(), config.docker_host.as_deref())
                .await
                .map_err(StartError::Docker)?;
            engine.watch(Arc::new(RedisLiveness::new(redis.clone())));
            engine
        } else {
            Engine::idle(config.sandbox.clone())
        };
        let credentials = config
            .database_user
            .as_deref()
            .zip(config.database_password.as_deref());
        let mongo = Arc::new(
            Mongo::connect(&config.database_uri, credentials, &config.database_name).await,
        );
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
            FairShare {
                in_flight: config.max_runs_in_flight,
                in_flight_per_ip: config.max_runs_in_flight_per_ip,
                user_runs_per_minute: config.user_runs_per_minute,
                state_ttl: config.run_state_ttl_seconds,
                role: config.role,
            },
        );
        let shares = Arc::new(Shares::new(
            mongo.clone(),
            runs.clone(),
            config.share_ttl_seconds,
        ));
        let accounts = Arc::new(Accounts::new(&config, mongo.clone(), redis.clone()));
        let sessions = MongoSessionStore::new(mongo.clone());
        let state = AppState {
            leptos_options,
            config,
            engine,
            redis,
            mongo,
            runs,
            shares,
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
        let (a, b, c, d) = tokio::join!(
            self.accounts.ensure_indexes(),
            self.sessions.ensure_indexes(),
            self.runs.store().ensure_indexes(),
            self.shares.ensure_indexes(),
        );
        a.is_ok() && b.is_ok() && c.is_ok() && d.is_ok()
    }

    /// Which dependencies answer right now, checked at the same time (a web node does
    /// not use Docker and does not check it).
    pub async fn readiness(&self) -> Vec<(&'static str, bool)> {
        let executes = self.config.role.executes();
        let docker = async {
            if executes {
                Some(self.engine.ping().await)
            } else {
                None
            }
        };
        let (docker, redis, mongo) = tokio::join!(docker, self.redis.ping(), self.mongo.ping());
        let mut checks = Vec::with_capacity(3);
        if let Some(docker) = docker {
            checks.push(("docker", docker));
        }
        checks.push(("redis", redis));
        checks.push(("mongodb", mongo));
        checks
    }
}
