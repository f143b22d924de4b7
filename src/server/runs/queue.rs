//! The cluster queue (`ROLE=web` and `ROLE=executor`, see docs/CLUSTER.md): web nodes
//! put accepted runs in their owner's list in Redis; an executor with a free slot takes
//! the next one in owner round-robin, through the stream `own-ide:queue:runs` read with
//! a consumer group, so that every claimed run sits in the claiming executor's pending
//! list until its final state is written (`XACK`), and a dead executor's entries can be
//! claimed by another.
//!
//! Each run has a claim hash (`epoch`, `started`, `done`): every claim and every
//! takeover bumps the epoch, and starting or committing an outcome is a Lua check of
//! the epoch, so an executor that stalled past its lease and came back writes nothing.

use crate::server::auth::Owner;
use crate::server::redis::Redis;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

const RING: &str = "own-ide:queue:ring";
const WAKE: &str = "own-ide:queue:wake";
/// The stream of claimed runs.
pub const STREAM: &str = "own-ide:queue:runs";
/// The consumer group of the executors.
pub const GROUP: &str = "executors";
const OWNER_PREFIX: &str = "own-ide:queue:owner:";
const RUN_PREFIX: &str = "own-ide:run:";

fn owner_list(owner_key: &str) -> String {
    format!("{OWNER_PREFIX}{owner_key}")
}

/// The claim hash of a run.
pub fn claim_key(id: &str) -> String {
    format!("{RUN_PREFIX}{id}:claim")
}

fn stop_key(id: &str) -> String {
    format!("{RUN_PREFIX}{id}:stop")
}

/// A run as it travels from a web node to an executor. `id` comes first in the JSON:
/// the scripts find a run in an owner's list by that prefix.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub owner: Owner,
    pub language: String,
    pub code: String,
    pub stdin: String,
    pub created_at: String,
    /// The in-flight lease: its keys and member, released with the final state.
    pub lease_keys: Vec<String>,
    /// A guest's quota counters, given back if the run is lost with its executor.
    pub quota_keys: Vec<String>,
}

impl Job {
    /// The fair-share key of the run's owner.
    pub fn owner_key(&self) -> String {
        owner_key(&self.owner)
    }
}

/// The fair-share key of an owner: `user:<id>` or `guest:<id>`.
pub fn owner_key(owner: &Owner) -> String {
    match owner {
        Owner::User(id) => format!("user:{id}"),
        Owner::Guest(id) => format!("guest:{id}"),
    }
}

/// A run an executor has claimed.
pub struct Claimed {
    pub entry: String,
    pub job: Job,
    pub epoch: i64,
}

/// KEYS: owner list, ring, wake, claim. ARGV: owner key, job, claim ttl.
const ENQUEUE: &str = r#"
redis.call('RPUSH', KEYS[1], ARGV[2])
if redis.call('LPOS', KEYS[2], ARGV[1]) == false then redis.call('RPUSH', KEYS[2], ARGV[1]) end
redis.call('HSET', KEYS[4], 'epoch', 0)
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[3]))
redis.call('LPUSH', KEYS[3], 1)
redis.call('LTRIM', KEYS[3], 0, 1023)
return 1
"#;

/// KEYS: ring, stream. ARGV: group, consumer, owner-list prefix, run-key prefix.
/// Moves the next owner's oldest run into the stream (round-robin over the ring), then
/// reads one entry for this consumer and claims its run (epoch + 1).
const CLAIM: &str = r#"
local n = redis.call('LLEN', KEYS[1])
for i = 1, n do
  local okey = redis.call('LPOP', KEYS[1])
  if not okey then break end
  local q = ARGV[3] .. okey
  local job = redis.call('LPOP', q)
  if redis.call('LLEN', q) > 0 then redis.call('RPUSH', KEYS[1], okey) end
  if job then
    redis.call('XADD', KEYS[2], '*', 'job', job)
    break
  end
end
local got = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[2], '>')
if not got then return false end
local entry = got[1][2][1]
local job = entry[2][2]
local id = cjson.decode(job)['id']
local ck = ARGV[4] .. id .. ':claim'
local epoch = redis.call('HINCRBY', ck, 'epoch', 1)
redis.call('HSET', ck, 'executor', ARGV[2], 'entry', entry[1])
return {entry[1], job, epoch}
"#;

/// KEYS: claim. ARGV: epoch. Marks the run started if this claim still holds it.
const START: &str = r#"
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'done') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'started', 1)
return 1
"#;

/// KEYS: claim. ARGV: epoch, outcome. Takes the right to write the run's outcome if
/// this claim (or takeover) still holds it and nobody wrote one; bumps the epoch.
const COMMIT: &str = r#"
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'done') == '1' then return 0 end
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'done', 1, 'result', ARGV[2])
return 1
"#;

/// KEYS: claim, stream, owner list, ring, wake. ARGV: epoch, group, entry, job, owner key.
/// Gives a claimed run that never started back to the head of its owner's list.
const REQUEUE: &str = r#"
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'started') == '1' or redis.call('HGET', KEYS[1], 'done') == '1' then return 0 end
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'executor', '')
redis.call('XACK', KEYS[2], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[2], ARGV[3])
redis.call('LPUSH', KEYS[3], ARGV[4])
if redis.call('LPOS', KEYS[4], ARGV[5]) == false then redis.call('LPUSH', KEYS[4], ARGV[5]) end
redis.call('LPUSH', KEYS[5], 1)
return 1
"#;

/// KEYS: owner list, ring, claim. ARGV: run id, owner key, outcome. Takes a run that
/// still waits out of its owner's list and takes the right to write its outcome.
const UNQUEUE: &str = r#"
local prefix = '{"id":"' .. ARGV[1] .. '"'
for _, job in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.sub(job, 1, #prefix) == prefix then
    redis.call('LREM', KEYS[1], 1, job)
    if redis.call('LLEN', KEYS[1]) == 0 then redis.call('LREM', KEYS[2], 0, ARGV[2]) end
    redis.call('HINCRBY', KEYS[3], 'epoch', 1)
    redis.call('HSET', KEYS[3], 'done', 1, 'result', ARGV[3])
    return job
  end
end
return false
"#;

/// The queue's Redis side.
pub struct Queue {
    redis: Arc<Redis>,
    ttl: u64,
    enqueue: redis::Script,
    claim: redis::Script,
    start: redis::Script,
    commit: redis::Script,
    requeue: redis::Script,
    unqueue: redis::Script,
}

/// What the claim hash of a run says.
#[derive(Debug, Default)]
pub struct ClaimState {
    pub epoch: i64,
    pub executor: String,
    pub started: bool,
    pub done: bool,
    /// The committed outcome (a run as JSON), once `done`.
    pub result: Option<String>,
    /// Whether the web node's first history write got through (`None`: not known yet).
    pub first_saved: Option<bool>,
}

impl Queue {
    pub fn new(redis: Arc<Redis>, ttl: u64) -> Queue {
        Queue {
            redis,
            ttl,
            enqueue: redis::Script::new(ENQUEUE),
            claim: redis::Script::new(CLAIM),
            start: redis::Script::new(START),
            commit: redis::Script::new(COMMIT),
            requeue: redis::Script::new(REQUEUE),
            unqueue: redis::Script::new(UNQUEUE),
        }
    }

    async fn conn(&self) -> Result<redis::aio::ConnectionManager, crate::error::AppError> {
        self.redis.conn().await
    }

    /// Creates the consumer group (and the stream) if they do not exist.
    pub async fn ensure_group(&self) -> bool {
        let Ok(mut conn) = self.conn().await else {
            return false;
        };
        let made: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(STREAM)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match made {
            Ok(()) => true,
            Err(e) => e.to_string().contains("BUSYGROUP"),
        }
    }

    /// Puts an accepted run in its owner's list and wakes an idle executor.
    pub async fn enqueue(&self, job: &Job) -> Result<(), crate::error::AppError> {
        let json = serde_json::to_string(job).map_err(|e| {
            tracing::error!(error = %e, "could not encode a run for the queue");
            crate::error::AppError::Internal
        })?;
        let mut conn = self.conn().await?;
        let okey = job.owner_key();
        self.enqueue
            .key(owner_list(&okey))
            .key(RING)
            .key(WAKE)
            .key(claim_key(&job.id))
            .arg(&okey)
            .arg(json)
            .arg(self.ttl)
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(Redis::failed)?;
        Ok(())
    }

    /// Claims the next run for `consumer` (round-robin across owners), if any waits.
    pub async fn claim(&self, consumer: &str) -> Option<Claimed> {
        let mut conn = self.conn().await.ok()?;
        let got: Option<(String, String, i64)> = match self
            .claim
            .key(RING)
            .key(STREAM)
            .arg(GROUP)
            .arg(consumer)
            .arg(OWNER_PREFIX)
            .arg(RUN_PREFIX)
            .invoke_async(&mut conn)
            .await
        {
            Ok(g) => g,
            Err(e) => {
                if e.to_string().contains("NOGROUP") {
                    self.ensure_group().await;
                } else {
                    tracing::warn!(error = %e, "could not claim a run from the queue");
                }
                return None;
            }
        };
        let (entry, json, epoch) = got?;
        match serde_json::from_str::<Job>(&json) {
            Ok(job) => Some(Claimed { entry, job, epoch }),
            Err(e) => {
                tracing::error!(error = %e, entry = %entry, "an unreadable run in the queue; dropped");
                self.ack(&entry).await;
                None
            }
        }
    }

    /// Waits (up to `wait`) for a wake token on a connection of its own.
    pub async fn wait_for_work(
        &self,
        conn: &mut Option<redis::aio::MultiplexedConnection>,
        wait: Duration,
    ) {
        if conn.is_none() {
            *conn = self.redis.dedicated().await;
        }
        let Some(c) = conn.as_mut() else {
            tokio::time::sleep(wait).await;
            return;
        };
        let secs = wait.as_secs_f64().max(0.01);
        let got: Result<Option<(String, String)>, _> =
            redis::cmd("BLPOP").arg(WAKE).arg(secs).query_async(c).await;
        if got.is_err() {
            *conn = None;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Marks a claimed run started; false when the claim no longer holds it (taken
    /// over, or stopped while queued) and the run must not start.
    pub async fn start(&self, id: &str, epoch: i64) -> bool {
        let Ok(mut conn) = self.conn().await else {
            return false;
        };
        matches!(
            self.start
                .key(claim_key(id))
                .arg(epoch)
                .invoke_async::<i64>(&mut conn)
                .await,
            Ok(1)
        )
    }

    /// Takes the right to write run `id`'s outcome (stored with the claim, so that a
    /// node finishing the writes for a dead one has it); false when another holder
    /// took the run over or wrote one.
    pub async fn commit(&self, id: &str, epoch: i64, run_json: &str) -> bool {
        let Ok(mut conn) = self.conn().await else {
            return false;
        };
        matches!(
            self.commit
                .key(claim_key(id))
                .arg(epoch)
                .arg(run_json)
                .invoke_async::<i64>(&mut conn)
                .await,
            Ok(1)
        )
    }

    /// Takes a still-waiting run out of the queue with `run_json` as its outcome: its
    /// job, or `None` when it is not waiting any more (an executor has it).
    pub async fn unqueue(&self, id: &str, owner: &Owner, run_json: &str) -> Option<Job> {
        let mut conn = self.conn().await.ok()?;
        let okey = owner_key(owner);
        let job: Option<String> = self
            .unqueue
            .key(owner_list(&okey))
            .key(RING)
            .key(claim_key(id))
            .arg(id)
            .arg(&okey)
            .arg(run_json)
            .invoke_async(&mut conn)
            .await
            .ok()?;
        serde_json::from_str(&job?).ok()
    }

    /// Gives a claimed run that never started back to its owner's list.
    pub async fn requeue(&self, c: &Claimed) -> bool {
        let Ok(mut conn) = self.conn().await else {
            return false;
        };
        let Ok(json) = serde_json::to_string(&c.job) else {
            return false;
        };
        let okey = c.job.owner_key();
        matches!(
            self.requeue
                .key(claim_key(&c.job.id))
                .key(STREAM)
                .key(owner_list(&okey))
                .key(RING)
                .key(WAKE)
                .arg(c.epoch)
                .arg(GROUP)
                .arg(&c.entry)
                .arg(json)
                .arg(&okey)
                .invoke_async::<i64>(&mut conn)
                .await,
            Ok(1)
        )
    }

    /// Acknowledges (and deletes) a stream entry whose run's final state is written.
    pub async fn ack(&self, entry: &str) {
        if let Ok(mut conn) = self.conn().await {
            let mut pipe = redis::pipe();
            pipe.cmd("XACK").arg(STREAM).arg(GROUP).arg(entry).ignore();
            pipe.cmd("XDEL").arg(STREAM).arg(entry).ignore();
            let _: Result<(), _> = pipe.query_async(&mut conn).await;
        }
    }

    /// The claim hash of run `id`.
    pub async fn claim_state(&self, id: &str) -> Option<ClaimState> {
        let mut conn = self.conn().await.ok()?;
        let h: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(claim_key(id))
            .query_async(&mut conn)
            .await
            .ok()?;
        if h.is_empty() {
            return None;
        }
        Some(ClaimState {
            epoch: h.get("epoch").and_then(|e| e.parse().ok()).unwrap_or(0),
            executor: h.get("executor").cloned().unwrap_or_default(),
            started: h.get("started").is_some_and(|v| v == "1"),
            done: h.get("done").is_some_and(|v| v == "1"),
            result: h.get("result").cloned(),
            first_saved: h.get("first").map(|v| v == "1"),
        })
    }

    /// Records whether the first history write of run `id` got through.
    pub async fn set_first_saved(&self, id: &str, saved: bool) {
        if let Ok(mut conn) = self.conn().await {
            let _: Result<(), _> = redis::cmd("HSET")
                .arg(claim_key(id))
                .arg("first")
                .arg(if saved { 1 } else { 0 })
                .query_async(&mut conn)
                .await;
        }
    }

    /// Notes that a stop was asked for run `id` (an executor that claims it later sees it).
    pub async fn flag_stop(&self, id: &str) {
        if let Ok(mut conn) = self.conn().await {
            let _: Result<(), _> = redis::cmd("SET")
                .arg(stop_key(id))
                .arg(1)
                .arg("EX")
                .arg(self.ttl)
                .query_async(&mut conn)
                .await;
        }
    }

    /// Whether a stop was asked for run `id`.
    pub async fn stop_flagged(&self, id: &str) -> bool {
        let Ok(mut conn) = self.conn().await else {
            return false;
        };
        redis::cmd("EXISTS")
            .arg(stop_key(id))
            .query_async::<bool>(&mut conn)
            .await
            .unwrap_or(false)
    }

    /// Claimed entries (of any executor) idle for at least `idle`: (entry, consumer).
    pub async fn pending(&self, idle: Duration) -> Vec<(String, String)> {
        let Ok(mut conn) = self.conn().await else {
            return Vec::new();
        };
        let rows: Result<Vec<(String, String, u64, u64)>, _> = redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .arg("IDLE")
            .arg(idle.as_millis() as u64)
            .arg("-")
            .arg("+")
            .arg(100)
            .query_async(&mut conn)
            .await;
        rows.unwrap_or_default()
            .into_iter()
            .map(|(entry, consumer, _, _)| (entry, consumer))
            .collect()
    }

    /// Claims a dead executor's entry for `consumer` (only if still idle for `idle`:
    /// of two nodes trying, one wins). Its run and claim epoch, if claimed.
    pub async fn take_over(&self, entry: &str, consumer: &str, idle: Duration) -> Option<Claimed> {
        let mut conn = self.conn().await.ok()?;
        let got: Vec<(String, Vec<String>)> = redis::cmd("XCLAIM")
            .arg(STREAM)
            .arg(GROUP)
            .arg(consumer)
            .arg(idle.as_millis() as u64)
            .arg(entry)
            .query_async(&mut conn)
            .await
            .ok()?;
        let (entry, fields) = got.into_iter().next()?;
        let json = fields.get(1)?;
        let job: Job = serde_json::from_str(json).ok()?;
        let epoch = self
            .claim_state(&job.id)
            .await
            .map(|c| c.epoch)
            .unwrap_or(0);
        Some(Claimed { entry, job, epoch })
    }
}
