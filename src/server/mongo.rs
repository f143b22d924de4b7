//! The MongoDB client: made without connecting, every call bounded in time, and a short
//! fail-fast period after the server was found away, so a down database never hangs a
//! request. The twin of `redis.rs`; services hold an `Arc<Mongo>`.

use crate::error::AppError;
use std::future::Future;
use std::time::{Duration, Instant};

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
    /// Prepares the client for `uri` and database `db_name` (credentials separate, when
    /// given). A URI that cannot be parsed leaves the client away: every call is a 503.
    pub async fn connect(uri: &str, credentials: Option<(&str, &str)>, db_name: &str) -> Mongo {
        let client = async {
            let mut opts = mongodb::options::ClientOptions::parse(uri).await?;
            opts.server_selection_timeout = Some(Duration::from_secs(2));
            opts.connect_timeout = Some(Duration::from_secs(2));
            opts.app_name = Some("own-ide".into());
            if let Some((user, password)) = credentials {
                opts.credential = Some(
                    mongodb::options::Credential::builder()
                        .username(user.to_string())
                        .password(password.to_string())
                        .build(),
                );
            }
            mongodb::Client::with_options(opts)
        }
        .await;
        match client {
            Ok(c) => Mongo {
                client: Some(c),
                db_name: db_name.to_string(),
                down_until: std::sync::Mutex::new(None),
            },
            Err(e) => {
                tracing::error!(error = %e, "DATABASE_URI is not usable; history and accounts are unavailable");
                Mongo {
                    client: None,
                    db_name: db_name.to_string(),
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
    pub async fn call<T, F>(
        &self,
        what: &str,
        op: impl FnOnce(mongodb::Database) -> F,
    ) -> Result<T, DbError>
    where
        F: Future<Output = mongodb::error::Result<T>>,
    {
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
