//! What app instances share about runs through Redis: each run's state (so any instance
//! answers for it) and three channels, one asking the instance that executes a run to
//! stop it, one telling the instance that executes a run that input typed into it waits
//! in Redis (held there in order, so input typed while the run is queued is not lost),
//! one telling every instance that a run has finished.

use crate::model::Run;
use crate::server::auth::Owner;
use crate::server::redis::Redis;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// The channel on which instances ask each other to stop a run (payload: its id).
const STOP_CHANNEL: &str = "own-ide:stop";
/// The channel on which an instance tells the others that a run finished (payload: its id).
const FINISHED_CHANNEL: &str = "own-ide:finished";
/// The channel telling the instance that executes a run that typed input for it waits
/// in Redis (payload: its id).
const INPUT_CHANNEL: &str = "own-ide:stdin";
/// At most this many typed inputs are held for one run (each may be just an end of input,
/// which the byte limit does not count).
const MAX_TYPED_ENTRIES: usize = 4096;

/// Input typed into a run through an instance that does not execute it.
#[derive(Serialize, Deserialize)]
pub struct TypedInput {
    pub id: String,
    pub data: String,
    pub eof: bool,
}

/// A run's state as kept in Redis.
#[derive(Serialize, Deserialize)]
pub struct Stored {
    pub owner: Owner,
    pub run: Run,
    /// What a guest ran (see [`LiveRun::source`](super::LiveRun)); never sent to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<super::Source>,
}

/// Run state and messages between instances.
pub struct Shared {
    redis: Arc<Redis>,
    ttl: u64,
    /// Ids of runs other instances (or this one) reported finished, as they arrive.
    finished: broadcast::Sender<String>,
}

impl Shared {
    pub fn new(redis: Arc<Redis>, ttl: u64) -> Shared {
        let (finished, _) = broadcast::channel(256);
        Shared {
            redis,
            ttl,
            finished,
        }
    }

    /// Writes the run's state. Best effort: a down Redis must not stop runs (users keep
    /// working); the copy in the executing process still answers.
    pub async fn save(&self, owner: &Owner, run: &Run, source: Option<&super::Source>) {
        let Ok(mut conn) = self.redis.conn().await else {
            return;
        };
        let Ok(json) = serde_json::to_string(&Stored {
            owner: owner.clone(),
            run: run.clone(),
            source: source.cloned(),
        }) else {
            return;
        };
        let res: Result<(), _> = conn.set_ex(state_key(&run.id), json, self.ttl).await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not store run state in Redis");
        }
    }

    /// The run's state, if Redis has it.
    pub async fn load(&self, id: &str) -> Option<Stored> {
        let mut conn = self.redis.conn().await.ok()?;
        let json: Option<String> = conn.get(state_key(id)).await.ok()?;
        serde_json::from_str(&json?).ok()
    }

    /// Forgets the run's state.
    pub async fn remove(&self, id: &str) {
        if let Ok(mut conn) = self.redis.conn().await {
            let _: Result<(), _> = conn.del(state_key(id)).await;
        }
    }

    /// Asks every instance to stop the run (the one executing it will).
    pub async fn request_stop(&self, id: &str) {
        self.publish(STOP_CHANNEL, id).await;
    }

    /// Tells every instance (this one included) that the run has finished.
    pub async fn announce_finished(&self, id: &str) {
        let _ = self.finished.send(id.to_string());
        self.publish(FINISHED_CHANNEL, id).await;
    }

    /// A receiver of finished-run ids; take it before reading the state it is about,
    /// so that an announcement in between is not missed.
    pub fn finished_runs(&self) -> broadcast::Receiver<String> {
        self.finished.subscribe()
    }

    /// Holds typed input for its run in Redis (a list per run, in the order received,
    /// expiring with the run's state) and tells every instance (the one executing the
    /// run reads the list on). A run still queued finds its input there when it starts.
    /// Its bytes count against the run's `limit` and the list's length against
    /// [`MAX_TYPED_ENTRIES`]: `Ok(false)` when it would pass either (nothing is kept).
    /// `Err` when Redis is unavailable.
    pub async fn send_input(&self, input: &TypedInput, limit: usize) -> Result<bool, String> {
        let mut conn = self.redis.conn().await.map_err(|e| e.to_string())?;
        let json = serde_json::to_string(input).map_err(|e| e.to_string())?;
        let kept: bool = redis::Script::new(
            r"local total = redis.call('INCRBY', KEYS[1], ARGV[1])
              redis.call('EXPIRE', KEYS[1], ARGV[2])
              if total > tonumber(ARGV[3]) or redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[4]) then
                redis.call('DECRBY', KEYS[1], ARGV[1])
                return 0
              end
              redis.call('RPUSH', KEYS[2], ARGV[5])
              redis.call('EXPIRE', KEYS[2], ARGV[2])
              return 1",
        )
        .key(format!("own-ide:run:{}:typed", input.id))
        .key(typed_key(&input.id))
        .arg(input.data.len())
        .arg(self.ttl)
        .arg(limit)
        .arg(MAX_TYPED_ENTRIES)
        .arg(json)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
        if !kept {
            return Ok(false);
        }
        let _: u64 = conn
            .publish(INPUT_CHANNEL, &input.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Run `id`'s typed input held in Redis from entry `from` on, in order.
    pub async fn typed_since(&self, id: &str, from: usize) -> Result<Vec<TypedInput>, String> {
        let mut conn = self.redis.conn().await.map_err(|e| e.to_string())?;
        let held: Vec<String> = conn
            .lrange(typed_key(id), from as isize, -1)
            .await
            .map_err(|e| e.to_string())?;
        Ok(held
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect())
    }

    async fn publish(&self, channel: &str, id: &str) {
        if let Ok(mut conn) = self.redis.conn().await {
            let sent: Result<u64, _> = conn.publish(channel, id).await;
            if let Err(e) = sent {
                tracing::warn!(run = id, channel, error = %e, "could not publish to the other instances");
            }
        }
    }

    /// Listens to the three channels while `alive()` holds, reconnecting a second after
    /// Redis goes away. Finished-run ids go to the `finished_runs` receivers; stop
    /// requests to `stop_here`; typed input to `input_here`.
    pub async fn listen(
        &self,
        alive: impl Fn() -> bool,
        stop_here: impl Fn(&str),
        input_here: impl Fn(&str),
    ) {
        while alive() {
            if let Some(mut pubsub) = self.redis.pubsub().await {
                if pubsub
                    .subscribe(&[STOP_CHANNEL, FINISHED_CHANNEL, INPUT_CHANNEL])
                    .await
                    .is_ok()
                {
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = futures::StreamExt::next(&mut messages).await {
                        if !alive() {
                            return;
                        }
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        match msg.get_channel_name() {
                            FINISHED_CHANNEL => {
                                let _ = self.finished.send(payload);
                            }
                            INPUT_CHANNEL => input_here(&payload),
                            _ => stop_here(&payload),
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The list holding a run's typed input, in order.
fn typed_key(id: &str) -> String {
    format!("own-ide:run:{id}:typed-input")
}

fn state_key(id: &str) -> String {
    format!("own-ide:run:{id}")
}
