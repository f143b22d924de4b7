//! The fair share of each caller, besides the guests' daily quota (`quota`): runs in
//! flight per caller and per IP block (`in_flight`), and a per-minute rate for users.
//! Every count is in Redis so that it holds across instances.

mod in_flight;

pub use in_flight::{release_keys, InFlight, Lease};

use crate::error::AppError;
use crate::model::{wait_words, QuotaInfo};
use crate::server::quota::Quota;
use crate::server::redis::Redis;
use std::sync::Arc;

/// A user's runs per minute, counted like the guest quota on one key per user.
pub struct UserRate {
    counter: Option<Quota>,
}

impl UserRate {
    /// `per_minute` 0 turns the rate off.
    pub fn new(redis: Arc<Redis>, per_minute: u32) -> UserRate {
        UserRate {
            counter: (per_minute > 0).then(|| Quota::new(redis, per_minute, 60)),
        }
    }

    /// Counts one run of `user_id` if the rate allows it: the rate after counting (for
    /// the `X-RateLimit-*` headers), or `429 rate_limited` with them. `None` when the
    /// rate is off, or Redis cannot count it (users keep running without Redis, held
    /// back by the in-flight cap, which then counts per instance).
    pub async fn take(&self, user_id: &str) -> Result<Option<QuotaInfo>, (AppError, QuotaInfo)> {
        let Some(counter) = &self.counter else {
            return Ok(None);
        };
        match counter.count(&[rate_key(user_id)], true).await {
            Ok(d) if d.allowed => Ok(Some(d.info)),
            Ok(d) => Err((limited(&d.info), d.info)),
            Err(_) => Ok(None),
        }
    }
}

impl UserRate {
    /// Gives back one run counted by [`take`](Self::take).
    pub async fn give_back(&self, user_id: &str) {
        if let Some(counter) = &self.counter {
            counter.give_back_keys(&[rate_key(user_id)]).await;
        }
    }
}

fn rate_key(user_id: &str) -> String {
    format!("own-ide:rate:user:{user_id}")
}

/// The 429 a user gets above the per-minute rate.
fn limited(info: &QuotaInfo) -> AppError {
    AppError::TooMany {
        code: "rate_limited".into(),
        message: format!(
            "You have started {} runs in the last minute, the most allowed. Please wait {}.",
            info.limit,
            wait_words(info.reset_seconds.max(1))
        ),
        retry_after: info.reset_seconds.max(1),
    }
}
