//! The brakes on guessing and on mass registration. Both count first: an attempt takes
//! its place in the counters before any password is hashed or checked, so a burst of
//! parallel requests gets exactly as many real attempts as the limit allows.

use super::window::{Reservation, Window};
use crate::error::AppError;
use crate::model::wait_words;
use crate::server::net::ip_block;
use crate::server::redis::Redis;
use std::net::IpAddr;
use std::sync::Arc;

/// Failed log-ins allowed per username within [`FAIL_WINDOW`].
pub const MAX_FAILS_PER_USER: u64 = 5;
/// Failed log-ins allowed per client IP (IPv6: per /64) within [`FAIL_WINDOW`].
pub const MAX_FAILS_PER_IP: u64 = 20;
/// The window in which failed log-ins are counted, in seconds.
pub const FAIL_WINDOW: u64 = 15 * 60;
/// The window of `REGISTRATIONS_PER_IP_PER_HOUR`, in seconds.
pub const REGISTRATION_WINDOW: u64 = 60 * 60;

/// The log-in brake: at most [`MAX_FAILS_PER_USER`] failures per username and
/// [`MAX_FAILS_PER_IP`] per client IP in [`FAIL_WINDOW`]; beyond, `429 too_many_attempts`.
///
/// Every attempt is counted as a failure before the password is checked; a correct
/// password then clears the username's count (its owner's typos are forgiven) and gives
/// back its place in the IP's count, and an attempt that could not be judged (hashing
/// busy, MongoDB down) gives back both. So 50 parallel guesses for one name get at most
/// [`MAX_FAILS_PER_USER`] password checks.
pub struct LoginBrake {
    window: Window,
}

/// One counted log-in attempt.
pub struct Attempt(Reservation);

impl LoginBrake {
    pub fn new(redis: Arc<Redis>) -> LoginBrake {
        LoginBrake {
            window: Window::new(redis, FAIL_WINDOW),
        }
    }

    /// The counter keys of a normalised username and a client address.
    pub fn keys(norm: &str, ip: IpAddr) -> [String; 2] {
        [
            format!("own-ide:login-fail:user:{norm}"),
            format!("own-ide:login-fail:ip:{}", ip_block(ip)),
        ]
    }

    /// Counts an attempt for `norm` from `ip`, or refuses it when either is braked.
    pub async fn attempt(&self, norm: &str, ip: IpAddr) -> Result<Attempt, AppError> {
        let [user, ip] = Self::keys(norm, ip);
        self.window
            .reserve(&[(user, MAX_FAILS_PER_USER), (ip, MAX_FAILS_PER_IP)])
            .await
            .map(Attempt)
            .map_err(|secs| AppError::TooMany {
                code: "too_many_attempts".into(),
                message: format!(
                    "Too many failed log-ins. Please wait {} before trying again.",
                    wait_words(secs)
                ),
                retry_after: secs,
            })
    }

    /// The password was right: the username's failures are forgotten and the attempt
    /// does not count against the IP.
    pub async fn succeeded(&self, a: Attempt) {
        let keys = a.0.keys();
        self.window.clear(&keys[..1]).await;
        self.window.refund(&a.0, &keys[1..]).await;
    }

    /// The attempt could not be judged: it does not count at all.
    pub async fn not_judged(&self, a: Attempt) {
        self.window.refund(&a.0, a.0.keys()).await;
    }
}

/// The registration throttle: `REGISTRATIONS_PER_IP_PER_HOUR` accounts per client IP
/// (IPv6: per /64); beyond, `429 too_many_registrations`. Only well-formed registrations
/// count (a bad name or password is refused before); a taken name counts (it cost a
/// hash, and counting it slows probing for names). While Redis is away the count is kept
/// per instance, like the log-in brake's, rather than refusing every registration.
pub struct RegistrationThrottle {
    window: Window,
    limit: u32,
}

impl RegistrationThrottle {
    /// `limit` 0 turns the throttle off.
    pub fn new(redis: Arc<Redis>, limit: u32) -> RegistrationThrottle {
        RegistrationThrottle {
            window: Window::new(redis, REGISTRATION_WINDOW),
            limit,
        }
    }

    /// Takes one of `ip`'s registrations for this hour (`None` when the throttle is off).
    pub async fn take(&self, ip: IpAddr) -> Result<Option<Reservation>, AppError> {
        if self.limit == 0 {
            return Ok(None);
        }
        let key = format!("own-ide:registrations:ip:{}", ip_block(ip));
        match self.window.reserve(&[(key, self.limit as u64)]).await {
            Ok(r) => Ok(Some(r)),
            Err(secs) => Err(AppError::TooMany {
                code: "too_many_registrations".into(),
                message: format!(
                    "Too many accounts were created from your network. Please wait {} before registering another.",
                    wait_words(secs)
                ),
                retry_after: secs,
            }),
        }
    }

    /// The registration failed on our side: it does not count.
    pub async fn give_back(&self, r: Option<Reservation>) {
        if let Some(r) = r {
            self.window.refund(&r, r.keys()).await;
        }
    }
}
