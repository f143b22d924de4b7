//! Each run's events in Redis: a stream per run, capped (`MAXLEN ~`) and expiring with
//! the run's state, whose entry ids are `0-N` for event `N`. The node executing a run
//! writes it; any node reads it, so live output can be served from anywhere and a
//! client can resume after the last event it saw (`Last-Event-ID`).
//!
//! Explicit ids also fence a stalled writer: an event whose number is not above the
//! stream's last id is refused by Redis, so a result written by a node that took a run
//! over (appended with `0-*`, the next number) is never followed by an older event.

use super::live::{Numbered, RunEvent};
use crate::server::redis::Redis;
use futures::stream::{self, BoxStream, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How many events a run's stream keeps at most (approximately: Redis trims whole nodes).
const MAXLEN: usize = 4096;
/// How long one blocking read waits before the reader looks at the run's state.
const BLOCK_MS: usize = 5000;

/// The key of a run's event stream.
pub fn key(id: &str) -> String {
    format!("own-ide:run:{id}:events")
}

/// Writes and reads runs' event streams.
pub struct EventStreams {
    redis: Arc<Redis>,
    ttl: u64,
}

/// An `XREAD` reply: per stream, its entries (id, then field and value pairs).
type XReadReply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;

/// The field that holds an event in a stream entry.
const FIELD: &str = "e";

impl EventStreams {
    pub fn new(redis: Arc<Redis>, ttl: u64) -> EventStreams {
        EventStreams { redis, ttl }
    }

    /// Starts the writer of run `id`'s stream: events sent to the returned sender are
    /// appended in order (batched while Redis is busy); the receiver tells the number of
    /// the last event written. The writer ends after the result. Best effort: while Redis
    /// is down events are dropped (the node executing the run still serves them).
    pub fn writer(
        self: &Arc<Self>,
        id: &str,
    ) -> (mpsc::UnboundedSender<Numbered>, watch::Receiver<u64>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Numbered>();
        let (written_tx, written_rx) = watch::channel(0u64);
        let (this, key) = (self.clone(), key(id));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                let last = batch.last().map(|(n, _)| *n).unwrap_or(0);
                let ended = batch.iter().any(|(_, e)| matches!(e, RunEvent::Result(_)));
                let mut pipe = redis::pipe();
                for (n, ev) in &batch {
                    let Ok(json) = serde_json::to_string(ev) else {
                        continue;
                    };
                    pipe.cmd("XADD")
                        .arg(&key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(MAXLEN)
                        .arg(format!("0-{n}"))
                        .arg(FIELD)
                        .arg(json)
                        .ignore();
                }
                pipe.cmd("EXPIRE").arg(&key).arg(this.ttl).ignore();
                match this.redis.conn().await {
                    Ok(mut conn) => {
                        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                            tracing::warn!(error = %e, "could not append a run's events to Redis");
                        }
                    }
                    Err(_) => tracing::warn!("Redis unavailable: a run's events were not copied"),
                }
                written_tx.send_replace(last);
                if ended {
                    return;
                }
            }
        });
        (tx, written_rx)
    }

    /// Writes event 1 of run `id` before anything else can be written to its stream (a
    /// web node, before the run is queued: an executor continues from 2).
    pub async fn append_first(&self, id: &str, ev: &RunEvent) -> bool {
        self.append(id, ev, "0-1").await
    }

    /// Appends `ev` as the next event of run `id` (`0-*`: Redis numbers it), for a node
    /// that ends a run it is not executing. Returns false when Redis did not take it.
    pub async fn append_next(&self, id: &str, ev: &RunEvent) -> bool {
        self.append(id, ev, "0-*").await
    }

    /// Appends `ev` to run `id`'s stream under entry id `entry` (capped, its expiry
    /// renewed). Returns false when Redis did not take it.
    async fn append(&self, id: &str, ev: &RunEvent, entry: &str) -> bool {
        let (Ok(mut conn), Ok(json)) = (self.redis.conn().await, serde_json::to_string(ev)) else {
            return false;
        };
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(key(id))
            .arg("MAXLEN")
            .arg("~")
            .arg(MAXLEN)
            .arg(entry)
            .arg(FIELD)
            .arg(json)
            .ignore()
            .cmd("EXPIRE")
            .arg(key(id))
            .arg(self.ttl)
            .ignore();
        pipe.query_async::<()>(&mut conn).await.is_ok()
    }

    /// The output run `id` streamed so far (stdout, stderr), as its stream still holds it:
    /// what a node that ends the run for a dead executor puts in the result.
    pub async fn output(&self, id: &str) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        let Ok(mut conn) = self.redis.conn().await else {
            return (out, err);
        };
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(key(id))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let (_, events) = decode(Some(vec![(key(id), entries)]));
        for (_, ev) in events {
            match ev {
                RunEvent::Stdout(t) => out.push_str(&t),
                RunEvent::Stderr(t) => err.push_str(&t),
                RunEvent::Status(_) | RunEvent::Result(_) => {}
            }
        }
        (out, err)
    }

    /// Whether run `id` has an event stream (it had not expired).
    pub async fn exists(&self, id: &str) -> bool {
        let Ok(mut conn) = self.redis.conn().await else {
            return false;
        };
        redis::cmd("EXISTS")
            .arg(key(id))
            .query_async::<bool>(&mut conn)
            .await
            .unwrap_or(false)
    }

    /// Run `id`'s events after event `after`, as they arrive, ending after the result.
    /// Each time the stream stays quiet for a while, `still_running` is asked (it reads
    /// the run's state): when it answers a finished run, that run ends the stream (its
    /// result event may have been trimmed or lost with Redis), and `None` ends it too.
    pub fn read<F, Fut>(
        self: &Arc<Self>,
        id: &str,
        after: u64,
        still_running: F,
    ) -> BoxStream<'static, Numbered>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Option<Result<(), crate::model::Run>>> + Send,
    {
        struct St<F> {
            streams: Arc<EventStreams>,
            key: String,
            last: u64,
            conn: Option<redis::aio::MultiplexedConnection>,
            done: bool,
            still_running: F,
        }
        let st = St {
            streams: self.clone(),
            key: key(id),
            last: after,
            conn: None,
            done: false,
            still_running,
        };
        stream::unfold(st, |mut st| async move {
            if st.done {
                return None;
            }
            loop {
                if st.conn.is_none() {
                    st.conn = st.streams.redis.dedicated().await;
                }
                let read: Option<(u64, Vec<Numbered>)> = match st.conn.as_mut() {
                    Some(conn) => {
                        let reply: Result<XReadReply, _> = redis::cmd("XREAD")
                            .arg("COUNT")
                            .arg(256)
                            .arg("BLOCK")
                            .arg(BLOCK_MS)
                            .arg("STREAMS")
                            .arg(&st.key)
                            .arg(format!("0-{}", st.last))
                            .query_async(conn)
                            .await;
                        match reply {
                            Ok(r) => Some(decode(r)),
                            Err(_) => {
                                st.conn = None;
                                None
                            }
                        }
                    }
                    None => None,
                };
                if let Some((seen, events)) = &read {
                    if events.is_empty() && *seen > st.last {
                        // Only entries that could not be read: past them.
                        st.last = *seen;
                        continue;
                    }
                }
                match read.map(|(_, e)| e) {
                    Some(events) if !events.is_empty() => {
                        let mut out = Vec::new();
                        for (n, ev) in events {
                            st.last = n;
                            let end = matches!(ev, RunEvent::Result(_));
                            out.push((n, ev));
                            if end {
                                st.done = true;
                                break;
                            }
                        }
                        return Some((stream::iter(out), st));
                    }
                    // Quiet (or Redis away): the run's state decides whether to go on.
                    _ => match (st.still_running)().await {
                        Some(Ok(())) => {
                            if st.conn.is_none() {
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                        Some(Err(run)) => {
                            st.done = true;
                            let n = st.last + 1;
                            return Some((
                                stream::iter(vec![(n, RunEvent::Result(Box::new(run)))]),
                                st,
                            ));
                        }
                        None => return None,
                    },
                }
            }
        })
        .flatten()
        .boxed()
    }
}

/// The events of an `XREAD` reply, in order, with the last number seen; entries that
/// cannot be read are skipped.
fn decode(reply: XReadReply) -> (u64, Vec<Numbered>) {
    let mut out = Vec::new();
    let mut seen = 0;
    for (_, entries) in reply.unwrap_or_default() {
        for (id, fields) in entries {
            let Some(n) = id.strip_prefix("0-").and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            seen = seen.max(n);
            let Some(json) = fields
                .chunks(2)
                .find(|kv| kv.first().map(String::as_str) == Some(FIELD))
                .and_then(|kv| kv.get(1))
            else {
                continue;
            };
            if let Ok(ev) = serde_json::from_str::<RunEvent>(json) {
                out.push((n, ev));
            }
        }
    }
    (seen, out)
}
