//! Every setting the app reads, from the environment and an optional `.env` file.
//! This is the one place that knows the variable names; the README lists them all.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// The whole configuration, read once at start-up.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen_addr: SocketAddr,
    pub database_uri: String,
    pub database_user: Option<String>,
    pub database_password: Option<String>,
    pub database_name: String,
    /// 0 keeps runs forever.
    pub submission_ttl_seconds: u64,
    /// How long a shared run's link works; 0 keeps shares until their creator revokes them.
    pub share_ttl_seconds: u64,
    /// The address people reach the app at (`https://ide.example.org`), for the links
    /// the API hands out; unset: taken from the request's `Host`.
    pub public_url: Option<String>,
    pub secret_key: String,
    /// True when no SECRET_KEY was given and one was generated for this process.
    pub secret_generated: bool,
    pub algorithm: String,
    pub access_token_expire_minutes: u64,
    pub redis_url: String,
    pub guest_quota: u32,
    pub ip_expiry_seconds: u64,
    pub docker_host: Option<String>,
    pub trusted_proxies: Vec<IpAddr>,
    pub cookie_secure: bool,
    pub sandbox: SandboxConfig,
    /// How long the state of a run stays in Redis.
    pub run_state_ttl_seconds: u64,
    /// Accounts one client IP (IPv6: one /64) may create per hour; 0 turns the limit off.
    pub registrations_per_ip_per_hour: u32,
    /// Password hashes and verifications computed at once (each holds about 19 MiB).
    pub hash_concurrency: usize,
    /// How long a log-in or registration waits for a hashing slot before it gets 503.
    pub hash_wait: Duration,
    /// Queued-or-running runs per user, per guest and per guests of one IP; 0: no cap.
    pub max_runs_in_flight: u32,
    /// Queued-or-running runs per client IP (IPv6: one /64), whoever runs them; 0: no cap.
    pub max_runs_in_flight_per_ip: u32,
    /// Runs a user may start per minute; 0 turns the rate off.
    pub user_runs_per_minute: u32,
    /// On SIGTERM or Ctrl-C, how long runs in progress may go on before they are stopped.
    pub shutdown_grace: Duration,
    /// What this process does in a cluster (see docs/CLUSTER.md).
    pub role: Role,
}

/// What one process does (`ROLE`): everything, pages and API only, or running code only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// One machine: pages, API and the engine, runs executed in process.
    All,
    /// Pages and API; accepted runs go to the Redis queue. Needs no Docker engine.
    Web,
    /// Runs code taken from the Redis queue; serves only health and metrics.
    Executor,
}

impl Role {
    /// Whether this role executes code (and so needs Docker).
    pub fn executes(self) -> bool {
        matches!(self, Role::All | Role::Executor)
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Role, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(Role::All),
            "web" => Ok(Role::Web),
            "executor" => Ok(Role::Executor),
            _ => Err(()),
        }
    }
}

/// The shortest `SECRET_KEY` accepted, in bytes: HS256 keys shorter than the hash output
/// are guessable offline from one token.
pub const MIN_SECRET_BYTES: usize = 32;

/// Limits and capacity of the execution engine.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub image_prefix: String,
    pub max_code_bytes: usize,
    pub max_stdin_bytes: usize,
    pub max_output_bytes: usize,
    pub memory_mb: u64,
    pub java_memory_mb: u64,
    pub cpus: f64,
    pub pids: i64,
    pub run_time_limit: Duration,
    /// Wall-clock limit of an interactive run (a person types its input); never below
    /// `run_time_limit`.
    pub interactive_time_limit: Duration,
    pub compile_time_limit: Duration,
    pub tmpfs_mb: u64,
    /// Runs executing at once.
    pub max_concurrent_runs: usize,
    /// Runs allowed to wait for a slot; beyond it requests get 503.
    pub queue_size: usize,
    /// Started containers kept ready per language.
    pub pool_size: usize,
    /// The Docker runtime of sandbox containers (`runc`, or `runsc` for gVisor).
    pub runtime: String,
    /// Value of the sandbox label: deployments sharing one Docker engine with different
    /// values never sweep each other's containers.
    pub label: String,
    /// How often leftover sandbox containers are looked for and removed.
    pub sweep_interval: Duration,
    /// Added to the compile and run limits: a container older than that which no live
    /// run owns is a leftover.
    pub sweep_margin: Duration,
    /// How long an engine instance's heartbeat lives (renewed every third of it): an
    /// executor silent for longer is dead (`EXECUTOR_LEASE_MS`).
    pub heartbeat: Duration,
    /// A pause between an executor claiming a run and starting it, for tests that kill
    /// an executor in that window (`EXECUTOR_START_DELAY_MS`, default 0).
    pub start_delay: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        SandboxConfig {
            image_prefix: "own-ide-".into(),
            max_code_bytes: 64 * 1024,
            max_stdin_bytes: 64 * 1024,
            max_output_bytes: 64 * 1024,
            memory_mb: 256,
            java_memory_mb: 512,
            cpus: 1.0,
            pids: 64,
            run_time_limit: Duration::from_secs(5),
            interactive_time_limit: Duration::from_secs(60),
            compile_time_limit: Duration::from_secs(15),
            tmpfs_mb: 64,
            // Enough that the runs the in-flight caps allow a few attackers never fill
            // the slots (see README, "Limits and abuse"); each run is bounded in memory.
            max_concurrent_runs: (cores * 8).max(16),
            queue_size: 64,
            pool_size: 2,
            runtime: "runc".into(),
            label: "1".into(),
            sweep_interval: Duration::from_secs(30),
            sweep_margin: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            start_delay: Duration::ZERO,
        }
    }
}

/// A variable that is set but cannot be used; start-up stops with this one line.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {name}={value:?} is not valid: expected {expected}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub expected: &'static str,
}

/// `PUBLIC_URL` without a trailing slash, if it is an http(s) origin.
fn public_url(v: &str) -> Option<String> {
    let v = v.trim_end_matches('/');
    let uri: http::Uri = v.parse().ok()?;
    let ok = matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.authority().is_some()
        && uri
            .path_and_query()
            .is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/");
    ok.then(|| v.to_string())
}

/// Reads variables through a lookup function, so tests need not touch the process env.
struct Reader<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    fn raw(&self, names: &[&str]) -> Option<(String, String)> {
        names.iter().find_map(|n| {
            (self.0)(n)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (n.to_string(), v.trim().to_string()))
        })
    }

    fn string(&self, names: &[&str], default: &str) -> String {
        self.raw(names)
            .map(|(_, v)| v)
            .unwrap_or_else(|| default.to_string())
    }

    fn parse<T: FromStr>(
        &self,
        names: &[&str],
        default: T,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        match self.raw(names) {
            None => Ok(default),
            Some((name, value)) => value.parse().map_err(|_| ConfigError {
                name,
                value,
                expected,
            }),
        }
    }

    fn positive<T: FromStr + PartialOrd + Default>(
        &self,
        names: &[&str],
        default: T,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        let v = self.parse(names, default, expected)?;
        if v <= T::default() {
            let (name, value) = self.raw(names).unwrap_or_default();
            return Err(ConfigError {
                name,
                value,
                expected,
            });
        }
        Ok(v)
    }
}

impl Config {
    /// Loads `.env` (if present) and then reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let _ = dotenvy::dotenv();
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the configuration from any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let r = Reader(lookup);
        let d = SandboxConfig::default();
        let secret = r.raw(&["SECRET_KEY"]).map(|(_, v)| v);
        let secret_generated = secret.is_none();
        if let Some(key) = &secret {
            if key.len() < MIN_SECRET_BYTES {
                // The value itself is never printed: only its length.
                return Err(ConfigError {
                    name: "SECRET_KEY".into(),
                    value: format!("<{} bytes>", key.len()),
                    expected: "at least 32 bytes (e.g. the output of `openssl rand -hex 32`)",
                });
            }
        }
        let secret_key = secret.unwrap_or_else(|| {
            use rand::Rng;
            let bytes: [u8; 32] = rand::rng().random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
        let algorithm = r.string(&["ALGORITHM"], "HS256").to_ascii_uppercase();
        if !matches!(algorithm.as_str(), "HS256" | "HS384" | "HS512") {
            return Err(ConfigError {
                name: "ALGORITHM".into(),
                value: algorithm,
                expected: "one of HS256, HS384, HS512",
            });
        }
        let trusted_proxies = match r.raw(&["TRUSTED_PROXIES"]) {
            None => Vec::new(),
            Some((name, value)) => value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<IpAddr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ConfigError {
                    name,
                    value,
                    expected: "a comma-separated list of IP addresses",
                })?,
        };
        let sandbox = SandboxConfig {
            image_prefix: r.string(&["SANDBOX_IMAGE_PREFIX"], &d.image_prefix),
            max_code_bytes: r.positive(
                &["MAX_CODE_BYTES"],
                d.max_code_bytes,
                "a positive number of bytes",
            )?,
            max_stdin_bytes: r.positive(
                &["MAX_STDIN_BYTES"],
                d.max_stdin_bytes,
                "a positive number of bytes",
            )?,
            max_output_bytes: r.positive(
                &["MAX_OUTPUT_BYTES"],
                d.max_output_bytes,
                "a positive number of bytes",
            )?,
            memory_mb: r.positive(
                &["SANDBOX_MEMORY_MB"],
                d.memory_mb,
                "a positive number of MiB",
            )?,
            java_memory_mb: r.positive(
                &["SANDBOX_JAVA_MEMORY_MB"],
                d.java_memory_mb,
                "a positive number of MiB",
            )?,
            cpus: r.positive(
                &["SANDBOX_CPUS"],
                d.cpus,
                "a positive number of CPUs, e.g. 1 or 0.5",
            )?,
            pids: r.positive(&["SANDBOX_PIDS"], d.pids, "a positive number of processes")?,
            run_time_limit: Duration::from_millis(r.positive(
                &["RUN_TIME_LIMIT_MS"],
                d.run_time_limit.as_millis() as u64,
                "a positive number of milliseconds",
            )?),
            interactive_time_limit: Duration::from_millis(r.positive(
                &["INTERACTIVE_TIME_LIMIT_MS"],
                d.interactive_time_limit.as_millis() as u64,
                "a positive number of milliseconds",
            )?),
            compile_time_limit: Duration::from_millis(r.positive(
                &["COMPILE_TIME_LIMIT_MS"],
                d.compile_time_limit.as_millis() as u64,
                "a positive number of milliseconds",
            )?),
            tmpfs_mb: r.positive(
                &["SANDBOX_TMPFS_MB"],
                d.tmpfs_mb,
                "a positive number of MiB",
            )?,
            max_concurrent_runs: r.positive(
                &["MAX_CONCURRENT_RUNS"],
                d.max_concurrent_runs,
                "a positive whole number",
            )?,
            queue_size: r.parse(&["RUN_QUEUE_SIZE"], d.queue_size, "a whole number")?,
            pool_size: r.parse(
                &["POOL_SIZE"],
                d.pool_size,
                "a whole number (0 turns the warm pool off)",
            )?,
            runtime: r.string(&["SANDBOX_RUNTIME"], &d.runtime),
            label: r.string(&["SANDBOX_LABEL"], &d.label),
            sweep_interval: Duration::from_millis(r.positive(
                &["SANDBOX_SWEEP_INTERVAL_MS"],
                d.sweep_interval.as_millis() as u64,
                "a positive number of milliseconds",
            )?),
            sweep_margin: Duration::from_millis(r.parse(
                &["SANDBOX_SWEEP_MARGIN_MS"],
                d.sweep_margin.as_millis() as u64,
                "a whole number of milliseconds",
            )?),
            heartbeat: Duration::from_millis(r.positive(
                &["EXECUTOR_LEASE_MS"],
                d.heartbeat.as_millis() as u64,
                "a positive number of milliseconds",
            )?),
            start_delay: Duration::from_millis(r.parse(
                &["EXECUTOR_START_DELAY_MS"],
                0,
                "a whole number of milliseconds",
            )?),
        };
        let listen: SocketAddr = r.parse(
            &["LISTEN_ADDR", "LEPTOS_SITE_ADDR"],
            SocketAddr::from(([127, 0, 0, 1], 3000)),
            "an address like 127.0.0.1:3000",
        )?;
        Ok(Config {
            listen_addr: listen,
            database_uri: r.string(
                &["DATABASE_URI", "MONGODB_URI"],
                "mongodb://127.0.0.1:27017/?directConnection=true",
            ),
            database_user: r.raw(&["DATABASE_USER"]).map(|(_, v)| v),
            database_password: r.raw(&["DATABASE_PASSWORD"]).map(|(_, v)| v),
            database_name: r.string(&["DATABASE_NAME"], "own_ide"),
            submission_ttl_seconds: r.parse(
                &["SUBMISSION_TTL_SECONDS", "SUMBISSION_TTL_SECONDS"],
                0,
                "a whole number of seconds (0 keeps runs forever)",
            )?,
            share_ttl_seconds: r.parse(
                &["SHARE_TTL_SECONDS"],
                0,
                "a whole number of seconds (0 keeps shares until revoked)",
            )?,
            public_url: match r.raw(&["PUBLIC_URL"]) {
                None => None,
                Some((name, value)) => Some(public_url(&value).ok_or(ConfigError {
                    name,
                    value,
                    expected: "an http or https URL without a path, like https://ide.example.org",
                })?),
            },
            secret_key,
            secret_generated,
            algorithm,
            access_token_expire_minutes: r.positive(
                &["ACCESS_TOKEN_EXPIRE_MINUTES"],
                60,
                "a positive whole number of minutes",
            )?,
            redis_url: r.string(&["REDIS_URL"], "redis://127.0.0.1:6379"),
            guest_quota: r.parse(&["GUEST_QUOTA"], 5, "a whole number of runs")?,
            ip_expiry_seconds: r.positive(
                &["IP_EXPIRY_SECONDS"],
                86_400,
                "a positive whole number of seconds",
            )?,
            docker_host: r.raw(&["DOCKER_HOST"]).map(|(_, v)| v),
            trusted_proxies,
            cookie_secure: r.parse(&["COOKIE_SECURE"], false, "true or false")?,
            sandbox,
            run_state_ttl_seconds: r.positive(
                &["RUN_STATE_TTL_SECONDS"],
                3_600,
                "a positive whole number of seconds",
            )?,
            registrations_per_ip_per_hour: r.parse(
                &["REGISTRATIONS_PER_IP_PER_HOUR"],
                5,
                "a whole number of accounts (0 turns the limit off)",
            )?,
            hash_concurrency: r.positive(
                &["HASH_CONCURRENCY"],
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
                "a positive whole number",
            )?,
            hash_wait: Duration::from_millis(r.parse(
                &["HASH_WAIT_MS"],
                2_000,
                "a whole number of milliseconds (0: do not wait)",
            )?),
            max_runs_in_flight: r.parse(
                &["MAX_RUNS_IN_FLIGHT"],
                2,
                "a whole number of runs (0 turns the cap off)",
            )?,
            max_runs_in_flight_per_ip: r.parse(
                &["MAX_RUNS_IN_FLIGHT_PER_IP"],
                4,
                "a whole number of runs (0 turns the cap off)",
            )?,
            user_runs_per_minute: r.parse(
                &["USER_RUNS_PER_MINUTE"],
                30,
                "a whole number of runs (0 turns the rate off)",
            )?,
            shutdown_grace: Duration::from_secs(r.parse(
                &["SHUTDOWN_GRACE_SECONDS"],
                10,
                "a whole number of seconds",
            )?),
            role: r.parse(&["ROLE"], Role::All, "all, web or executor")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn share_lifetime_and_public_url() {
        let c = cfg(&[]).unwrap();
        assert_eq!((c.share_ttl_seconds, c.public_url), (0, None));
        let c = cfg(&[
            ("SHARE_TTL_SECONDS", "3600"),
            ("PUBLIC_URL", "https://ide.example.org/"),
        ])
        .unwrap();
        assert_eq!(c.share_ttl_seconds, 3600);
        assert_eq!(c.public_url.as_deref(), Some("https://ide.example.org"));
        for bad in [
            "ide.example.org",
            "ftp://x.org",
            "https://x.org/app",
            "https://",
        ] {
            let e = cfg(&[("PUBLIC_URL", bad)]).unwrap_err().to_string();
            assert!(e.contains("PUBLIC_URL"), "{bad}: {e}");
        }
        assert!(cfg(&[("SHARE_TTL_SECONDS", "-1")]).is_err());
    }

    #[test]
    fn defaults_are_local() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.guest_quota, 5);
        assert_eq!(c.ip_expiry_seconds, 86_400);
        assert_eq!(c.redis_url, "redis://127.0.0.1:6379");
        assert!(c.secret_generated);
        assert_eq!(c.secret_key.len(), 64);
        assert_eq!(c.algorithm, "HS256");
    }

    #[test]
    fn bad_value_names_the_variable() {
        let e = cfg(&[("GUEST_QUOTA", "abc")]).unwrap_err().to_string();
        assert_eq!(e, "configuration error: GUEST_QUOTA=\"abc\" is not valid: expected a whole number of runs");
    }

    #[test]
    fn historical_names_are_accepted() {
        let c = cfg(&[
            ("SUMBISSION_TTL_SECONDS", "60"),
            ("MONGODB_URI", "mongodb://db:27017"),
        ])
        .unwrap();
        assert_eq!(c.submission_ttl_seconds, 60);
        assert_eq!(c.database_uri, "mongodb://db:27017");
        let c = cfg(&[
            ("SUBMISSION_TTL_SECONDS", "5"),
            ("SUMBISSION_TTL_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(c.submission_ttl_seconds, 5);
    }

    #[test]
    fn trusted_proxies_parse_and_reject_garbage() {
        let c = cfg(&[("TRUSTED_PROXIES", "127.0.0.1, ::1")]).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(cfg(&[("TRUSTED_PROXIES", "nope")]).is_err());
        assert!(cfg(&[("RUN_TIME_LIMIT_MS", "0")]).is_err());
        assert!(cfg(&[("ALGORITHM", "RS256")]).is_err());
    }

    #[test]
    fn a_short_secret_key_stops_start_up_without_showing_it() {
        let e = cfg(&[("SECRET_KEY", "hunter2hunter2")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "configuration error: SECRET_KEY=\"<14 bytes>\" is not valid: expected at least 32 bytes (e.g. the output of `openssl rand -hex 32`)"
        );
        assert!(!e.contains("hunter2"));
        let key = "k".repeat(MIN_SECRET_BYTES);
        assert_eq!(cfg(&[("SECRET_KEY", &key)]).unwrap().secret_key, key);
    }

    #[test]
    fn abuse_limits_have_defaults_and_can_be_set() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.registrations_per_ip_per_hour, 5);
        assert_eq!(
            (
                c.max_runs_in_flight,
                c.max_runs_in_flight_per_ip,
                c.user_runs_per_minute
            ),
            (2, 4, 30)
        );
        assert!(c.hash_concurrency >= 1);
        assert_eq!(c.hash_wait, Duration::from_secs(2));
        let c = cfg(&[
            ("REGISTRATIONS_PER_IP_PER_HOUR", "0"),
            ("HASH_CONCURRENCY", "1"),
            ("HASH_WAIT_MS", "0"),
        ])
        .unwrap();
        assert_eq!(c.registrations_per_ip_per_hour, 0);
        assert_eq!(c.hash_concurrency, 1);
        assert_eq!(c.hash_wait, Duration::ZERO);
        assert!(cfg(&[("HASH_CONCURRENCY", "0")]).is_err());
    }
}
