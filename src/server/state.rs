//! `AppState`: the real clients and services, built once and handed to every handler.

use super::config::Config;
use super::redis::Redis;
use super::runs::Runs;
use super::sandbox::Engine;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request may need. Cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub engine: Arc<Engine>,
    pub redis: Arc<Redis>,
    pub mongo: Arc<Mongo>,
    pub runs: Arc<Runs>,
}

/// The MongoDB client. Made without connecting; every call fails fast when the server
/// is away, so a down MongoDB never hangs a request.
pub struct Mongo {
    pub client: Option<mongodb::Client>,
    pub db_name: String,
}

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
            },
            Err(e) => {
                tracing::error!(error = %e, "DATABASE_URI is not usable; history and accounts are unavailable");
                Mongo {
                    client: None,
                    db_name: cfg.database_name.clone(),
                }
            }
        }
    }

    /// The app's database, if the URI was usable.
    pub fn db(&self) -> Option<mongodb::Database> {
        self.client.as_ref().map(|c| c.database(&self.db_name))
    }

    /// True when MongoDB answers a ping.
    pub async fn ping(&self) -> bool {
        let Some(db) = self.db() else { return false };
        let ping = db.run_command(mongodb::bson::doc! { "ping": 1 });
        matches!(
            tokio::time::timeout(Duration::from_secs(3), ping).await,
            Ok(Ok(_))
        )
    }
}

impl AppState {
    /// Builds the state from the configuration. Dependencies that are down do not stop
    /// this; they are reported by `/readyz` and retried on later requests.
    pub async fn build(config: Config, leptos_options: LeptosOptions) -> Result<AppState, String> {
        let config = Arc::new(config);
        let engine = Engine::start(config.sandbox.clone(), config.docker_host.as_deref()).await?;
        let redis = Arc::new(Redis::new(&config.redis_url)?);
        let mongo = Arc::new(Mongo::connect(&config).await);
        let runs = Runs::new(engine.clone(), redis.clone(), config.run_state_ttl_seconds);
        Ok(AppState {
            leptos_options,
            config,
            engine,
            redis,
            mongo,
            runs,
        })
    }

    /// Which dependencies answer right now, checked at the same time.
    pub async fn readiness(&self) -> Vec<(&'static str, bool)> {
        let (docker, redis, mongo) =
            tokio::join!(self.engine.ping(), self.redis.ping(), self.mongo.ping());
        vec![("docker", docker), ("redis", redis), ("mongodb", mongo)]
    }
}
