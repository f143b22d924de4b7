//! The Redis connection: made lazily, re-made after failures, never waited on for long.

use crate::error::AppError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use tokio::sync::Mutex;

/// A handle that yields a live Redis connection or a clear 503.
pub struct Redis {
    client: Option<redis::Client>,
    conn: Mutex<Option<ConnectionManager>>,
}

impl Redis {
    /// Prepares the client; connecting happens on first use, so a down Redis does not
    /// stop the app from starting.
    pub fn new(url: &str) -> Result<Redis, redis::RedisError> {
        let client = redis::Client::open(url)?;
        Ok(Redis {
            client: Some(client),
            conn: Mutex::new(None),
        })
    }

    /// A new connection in subscriber mode (each subscriber needs its own).
    pub async fn pubsub(&self) -> Option<redis::aio::PubSub> {
        let client = self.client.as_ref()?;
        match tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub()).await {
            Ok(Ok(p)) => Some(p),
            _ => None,
        }
    }

    /// A connection of its own for blocking reads (`XREAD BLOCK`, `BLPOP`), which would
    /// hold up every other command on the shared one. No response timeout: the caller
    /// bounds each read with `BLOCK`.
    pub async fn dedicated(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = self.client.as_ref()?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(None);
        match tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(c)) => Some(c),
            _ => None,
        }
    }

    /// The shared connection, connecting first if needed.
    pub async fn conn(&self) -> Result<ConnectionManager, AppError> {
        let unavailable = || {
            AppError::unavailable("redis_unavailable", "The quota and run-state store (Redis) is not available right now. Please try again shortly.", 5)
        };
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let client = self.client.as_ref().ok_or_else(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(1000)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        match tokio::time::timeout(
            Duration::from_secs(2),
            client.get_connection_manager_with_config(config),
        )
        .await
        {
            Ok(Ok(c)) => {
                *slot = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Redis is not reachable");
                Err(unavailable())
            }
            Err(_) => {
                tracing::warn!("Redis did not answer in time");
                Err(unavailable())
            }
        }
    }

    /// Maps a command error to a 503 and logs the driver's words on the server only.
    pub fn failed(e: redis::RedisError) -> AppError {
        tracing::warn!(error = %e, "Redis command failed");
        AppError::unavailable("redis_unavailable", "The quota and run-state store (Redis) is not available right now. Please try again shortly.", 5)
    }

    /// True when Redis answers PING.
    pub async fn ping(&self) -> bool {
        let Ok(mut c) = self.conn().await else {
            return false;
        };
        let pong = tokio::time::timeout(
            Duration::from_secs(1),
            redis::cmd("PING").query_async::<String>(&mut c),
        )
        .await;
        matches!(pong, Ok(Ok(_)))
    }
}
