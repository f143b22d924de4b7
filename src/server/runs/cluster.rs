//! The run service in a cluster (see docs/CLUSTER.md): how a web node queues a run and
//! follows it, how an executor takes runs from the queue and writes their outcome under
//! a fence, how a stop reaches a queued run, and how a dead executor's runs are taken
//! over (run again if they never started, ended `executor_lost` if they had).

use super::live::{LiveRun, RunEvent};
use super::queue::{owner_key, Claimed, Job};
use super::{final_run, now_rfc3339, Accepted, NewRun, Refused, Runs, Source, Submitted};
use crate::model::{Run, RunStatus, Verdict};
use crate::server::auth::{Caller, Owner};
use crate::server::heartbeat::Standing;
use crate::server::limits::release_keys;
use crate::server::quota::Quota;
use crate::server::sandbox::{self, Liveness, Program};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// How long an idle executor waits for a wake token before looking at the queue again
/// (a safety net: a web node pushes a token with every run).
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// How long the final write waits for the web node's word on the first history write.
const FIRST_SAVE_WAIT: Duration = Duration::from_secs(2);
/// How long an executor declared dead waits for the removal of its containers before
/// it rejoins anyway (the declaration expires then too).
const LOST_WAIT: Duration = Duration::from_secs(30);

impl Runs {
    /// `ROLE=web`: accepts a run like the in-process path (in-flight lease, quota), then
    /// puts it in the queue and follows its events from Redis into a local copy, so that
    /// this node answers for it like any run of its own.
    pub(super) async fn submit_to_queue(
        self: &Arc<Self>,
        caller: &Caller,
        req: NewRun,
        lang: &'static sandbox::Language,
        program: &Program,
    ) -> Result<Submitted, Refused> {
        let Accepted { run, lease, quota } = self.accept(caller, &req, program, lang).await?;
        let id = run.id.clone();
        let owner = caller.owner();
        let is_user = matches!(owner, Owner::User(_));
        let quota_keys = match caller {
            Caller::Guest { guest_id, ip } => Quota::keys(guest_id, *ip),
            Caller::User { .. } => Vec::new(),
        };
        let job = Job {
            id: id.clone(),
            owner: owner.clone(),
            request: req,
            created_at: run.created_at.clone(),
            lease_keys: lease.shared_keys(),
            quota_keys: quota_keys.clone(),
        };
        // Event 1 is in Redis before the run can be claimed, so the executor's events (2
        // on) always come after it.
        self.streams
            .append_first(&id, &RunEvent::Status(run.status))
            .await;
        let source = (!is_user).then(|| Source::of(&job.request));
        let live = Arc::new(LiveRun::new(
            owner.clone(),
            run.clone(),
            source,
            None,
            false,
            None,
        ));
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), live.clone());
        self.shared.save(&owner, &run, live.source.as_ref()).await;
        if let Err(e) = self.queue.enqueue(&job).await {
            self.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            self.shared.remove(&id).await;
            lease.release().await;
            if !quota_keys.is_empty() {
                self.quota.refund(&quota_keys).await;
            }
            return Err(e.into());
        }
        if let Owner::User(user_id) = &owner {
            let (this, user_id, run) = (self.clone(), user_id.clone(), run);
            self.tasks.spawn(async move {
                let saved = this.store.save(&user_id, &run).await.is_ok();
                this.queue.set_first_saved(&run.id, saved).await;
            });
        }
        let this = self.clone();
        let follow = live.clone();
        tokio::spawn(async move {
            let id = follow.snapshot().id;
            // Read again after a break (Redis away a moment), from the last event seen,
            // until the result, for as long as a stream client would wait.
            let deadline = tokio::time::Instant::now() + super::EVENTS_WAIT_LIMIT;
            let mut last = 1;
            'follow: while tokio::time::Instant::now() < deadline {
                let mut events = this.remote_events(&id, follow.owner.clone(), last);
                while let Some((n, ev)) = events.next().await {
                    let end = matches!(ev, RunEvent::Result(_));
                    follow.apply(n, ev);
                    last = n;
                    if end {
                        break 'follow;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            follow.mark_finished();
            // The node that wrote the outcome released the lease; this ends its renewal.
            lease.release().await;
            tokio::time::sleep(super::KEEP_FINISHED).await;
            this.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
        Ok(Submitted { live, quota })
    }

    /// Run `id`'s events after event `after`, read from its Redis stream; the run's
    /// state ends the stream should the stream go quiet on a finished run.
    pub(super) fn remote_events(
        &self,
        id: &str,
        viewer: Owner,
        after: u64,
    ) -> futures::stream::BoxStream<'static, super::Numbered> {
        let (shared, rid) = (self.shared.clone(), id.to_string());
        let still_running = move || {
            let (shared, rid, viewer) = (shared.clone(), rid.clone(), viewer.clone());
            async move {
                match shared.load(&rid).await {
                    Some(s) if s.owner == viewer => {
                        if s.run.status == RunStatus::Finished {
                            Some(Err(s.run))
                        } else {
                            Some(Ok(()))
                        }
                    }
                    _ => None,
                }
            }
        };
        self.streams.read(id, after, still_running)
    }

    /// Stops a run of the cluster that this node does not execute: a run still waiting
    /// is taken out of the queue and ends `stopped` here; otherwise the executor that
    /// holds it is told (pub/sub), and a flag catches an executor claiming it meanwhile.
    pub(super) async fn stop_in_cluster(self: &Arc<Self>, id: &str, owner: &Owner) {
        self.queue.flag_stop(id).await;
        let mut run = match self.shared.load(id).await {
            Some(s) => s.run,
            None => return,
        };
        if run.status == RunStatus::Queued {
            run.status = RunStatus::Finished;
            run.verdict = Some(Verdict::Stopped);
            run.time_ms = Some(0);
            run.finished_at = Some(now_rfc3339());
            if let Ok(json) = serde_json::to_string(&run) {
                if let Some(job) = self.queue.unqueue(id, owner, &json).await {
                    self.complete(&job, None, run, None).await;
                    return;
                }
            }
        }
        self.shared.request_stop(id).await;
    }

    /// Writes a run's final state once the right to write it is held (its claim is
    /// committed): history (over the web node's first copy when that got through),
    /// Redis state, the in-flight lease back, the result event (through the live copy's
    /// writer, or appended as the next event), the end announced, the queue entry
    /// acknowledged.
    async fn complete(
        self: &Arc<Self>,
        job: &Job,
        entry: Option<&str>,
        mut run: Run,
        live: Option<(Arc<LiveRun>, watch::Receiver<u64>)>,
    ) {
        let first_saved = self.first_saved(job).await;
        let kept = self.write_history(&job.owner, &mut run, first_saved).await;
        if kept {
            let source = matches!(job.owner, Owner::Guest(_)).then(|| Source::of(&job.request));
            self.shared.save(&job.owner, &run, source.as_ref()).await;
        }
        release_keys(&self.redis, &job.lease_keys, &job.id).await;
        match live {
            Some((live, mut written)) => {
                live.update(|r| {
                    *r = run.clone();
                    None
                });
                self.announce(&live, run).await;
                // The result must be in Redis before the entry is acknowledged.
                let last = live.last_number();
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), written.wait_for(|n| *n >= last))
                        .await;
            }
            None => {
                let id = run.id.clone();
                self.streams
                    .append_next(&id, &RunEvent::Result(Box::new(run)))
                    .await;
                self.shared.announce_finished(&id).await;
            }
        }
        if let Some(entry) = entry {
            self.queue.ack(entry).await;
        }
    }

    /// Whether the web node's first history write of a user's run got through (it
    /// says so in the run's claim; waited for briefly, then taken as not).
    async fn first_saved(&self, job: &Job) -> bool {
        if !matches!(job.owner, Owner::User(_)) {
            return false;
        }
        let deadline = tokio::time::Instant::now() + FIRST_SAVE_WAIT;
        // Usually written by now or within a few ms (a short run can end before the
        // web node's MongoDB write does): look again soon at first, then less often.
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(saved) = self
                .queue
                .claim_state(&job.id)
                .await
                .and_then(|c| c.first_saved)
            {
                return saved;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Executes a run this executor claimed: started only if the claim still holds,
    /// its events copied to Redis, its outcome written only if no one took it over.
    async fn run_claimed(self: &Arc<Self>, c: Claimed) {
        let Claimed { entry, job, epoch } = c;
        // Checked again against this executor's own table and caps.
        let (lang, program) = match self.validate(&job.request) {
            Ok(checked) => checked,
            Err(e) => {
                tracing::error!(run = %job.id, language = %job.request.language, error = ?e, "a queued run this executor cannot run; dropped");
                self.queue.ack(&entry).await;
                return;
            }
        };
        let ticket = match self.engine.admit(&owner_key(&job.owner)).await {
            Ok(t) => t,
            Err(refusal) => {
                // Nothing started: back to the queue for a node that can run it.
                tracing::warn!(run = %job.id, %refusal, "could not take a run; giving it back to the queue");
                self.queue.requeue(&Claimed { entry, job, epoch }).await;
                tokio::time::sleep(IDLE_WAIT).await;
                return;
            }
        };
        let delay = self.engine.config().start_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if !self.queue.start(&job.id, epoch).await {
            tracing::warn!(run = %job.id, "a claimed run was taken over or ended before it started; not running it");
            return;
        }
        let run = match self.shared.load(&job.id).await {
            Some(s) => s.run,
            None => Run::new(job.id.clone(), lang.id, job.created_at.clone()),
        };
        let (mirror, written) = self.streams.writer(&job.id);
        let source = matches!(job.owner, Owner::Guest(_)).then(|| Source::of(&job.request));
        let input_limit = job
            .request
            .interactive
            .then_some(self.engine.config().max_stdin_bytes);
        let live = Arc::new(LiveRun::new(
            job.owner.clone(),
            run,
            source,
            Some(mirror),
            false,
            input_limit,
        ));
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.id.clone(), live.clone());
        if self.queue.stop_flagged(&job.id).await {
            live.stop();
        }
        // Input typed while it was queued (later input comes with its notice).
        if live.takes_input() {
            self.take_held_input(&live, &job.id).await;
        }
        let stdin = job.request.stdin.clone().unwrap_or_default();
        let outcome = self.execute(&live, ticket, lang, &program, &stdin).await;
        let run = final_run(&live, outcome);
        let committed = match serde_json::to_string(&run) {
            Ok(json) => self.queue.commit(&job.id, epoch, &json).await,
            Err(_) => false,
        };
        if !committed {
            // Taken over while this executor was away: its outcome stands, not ours.
            tracing::warn!(run = %job.id, "a run was taken over while it ran here; its outcome here is dropped");
            self.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&job.id);
            return;
        }
        self.complete(&job, Some(&entry), run, Some((live, written)))
            .await;
    }

    /// Takes over the queue entries of executors whose heartbeat lapsed: a run that
    /// never started goes back to the queue, a started one ends `executor_lost`, and
    /// an outcome committed but not fully written is written.
    async fn reclaim(self: &Arc<Self>) {
        let lease = self.engine.config().heartbeat;
        let me = self.engine.instance().to_string();
        for (entry, consumer) in self.queue.pending(lease).await {
            if consumer == me || !matches!(self.liveness.alive(&consumer).await, Ok(false)) {
                continue;
            }
            let Some(c) = self.queue.take_over(&entry, &me, lease).await else {
                continue;
            };
            let Some(st) = self.queue.claim_state(&c.job.id).await else {
                // Its claim expired long ago: nothing is left to finish.
                self.queue.ack(&c.entry).await;
                continue;
            };
            tracing::warn!(run = %c.job.id, executor = %consumer, started = st.started, "taking over a run of an executor that stopped beating");
            if st.done {
                self.finish_committed(&c, st.result.as_deref()).await;
            } else if st.started {
                self.end_lost(&c, &consumer).await;
            } else if !self.queue.requeue(&c).await {
                // Changed meanwhile (started or ended by its holder coming back).
                if let Some(st) = self.queue.claim_state(&c.job.id).await {
                    if st.done {
                        self.finish_committed(&c, st.result.as_deref()).await;
                    } else if st.started {
                        self.end_lost(&c, &consumer).await;
                    }
                }
            }
        }
    }

    /// Writes an outcome that its executor committed and then died before writing.
    async fn finish_committed(self: &Arc<Self>, c: &Claimed, result: Option<&str>) {
        match result.and_then(|r| serde_json::from_str::<Run>(r).ok()) {
            Some(run) => self.complete(&c.job, Some(&c.entry), run, None).await,
            None => self.queue.ack(&c.entry).await,
        }
    }

    /// Ends a started run whose executor `dead` died: `executor_lost`, not run again, a
    /// guest's quota given back, the containers it left removed from this Docker host.
    async fn end_lost(self: &Arc<Self>, c: &Claimed, dead: &str) {
        let mut run = match self.shared.load(&c.job.id).await {
            Some(s) => s.run,
            None => Run::new(
                c.job.id.clone(),
                &c.job.request.language,
                c.job.created_at.clone(),
            ),
        };
        // What it printed before its executor went is kept (as far as its stream has it).
        let (stdout, stderr) = self.streams.output(&c.job.id).await;
        run.stdout = stdout;
        run.stderr = stderr;
        run.status = RunStatus::Finished;
        run.verdict = Some(Verdict::ExecutorLost);
        run.finished_at = Some(now_rfc3339());
        let Ok(json) = serde_json::to_string(&run) else {
            return;
        };
        if !self.queue.commit(&c.job.id, c.epoch, &json).await {
            // Its executor came back and wrote its outcome first.
            if let Some(st) = self.queue.claim_state(&c.job.id).await {
                self.finish_committed(c, st.result.as_deref()).await;
            }
            return;
        }
        if !c.job.quota_keys.is_empty() {
            self.quota.refund(&c.job.quota_keys).await;
        }
        self.complete(&c.job, Some(&c.entry), run, None).await;
        // The containers it left, if the dead executor shared this Docker host (on
        // another host the sweep there removes them once past the run limits). Only if
        // it is still silent, atomically with its own beat before it takes work: an
        // executor that was only stalled either beat first (nothing of it is removed;
        // its stale run ends there and removes its own container), or learns it was
        // declared dead before it takes a run, and drops its warm pool then.
        let (this, dead) = (self.clone(), dead.to_string());
        tokio::spawn(async move {
            if this.liveness.declare_lost(&dead).await {
                this.engine.remove_instance(&dead).await;
                this.liveness.removed(&dead).await;
            }
        });
    }

    /// Beats before this executor takes a run. One that a takeover declared dead while
    /// it stalled waits until its containers are removed (bounded by the declaration's
    /// expiry), drops its warm pool (those containers may be gone) and rejoins. `false`:
    /// take nothing now (Redis cannot tell, or it was declared dead again meanwhile).
    async fn ready_to_claim(&self, me: &str) -> bool {
        let ttl = self.engine.config().heartbeat;
        let deadline = tokio::time::Instant::now() + LOST_WAIT;
        let mut declared = false;
        loop {
            match self.liveness.beat_unless_lost(me, ttl).await {
                Ok(Standing::Alive) => break,
                Ok(Standing::BeingRemoved) if tokio::time::Instant::now() < deadline => {
                    declared = true;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(_) => {
                    declared = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not beat before taking a run; waiting");
                    return false;
                }
            }
        }
        if declared {
            tracing::warn!("this executor was declared dead while it stalled; dropping its warm containers and rejoining");
            self.engine.flush_pools().await;
            self.liveness.clear_lost(me).await;
            return matches!(
                self.liveness.beat_unless_lost(me, ttl).await,
                Ok(Standing::Alive)
            );
        }
        true
    }
}

/// Starts an executor's work: the queue reader (one claim per free slot) and the
/// takeover of dead executors' runs, both until shutdown.
pub(super) fn start_executor(runs: &Arc<Runs>) {
    let weak = Arc::downgrade(runs);
    let stop = runs.stop_reading.clone();
    let slots = Arc::new(Semaphore::new(
        runs.engine.config().max_concurrent_runs.max(1),
    ));
    let me = runs.engine.instance().to_string();
    let queue = runs.queue.clone();
    tokio::spawn({
        let (weak, stop) = (weak.clone(), stop.clone());
        async move {
            queue.ensure_group().await;
            let mut wake = None;
            loop {
                let permit = tokio::select! {
                    _ = stop.cancelled() => return,
                    p = slots.clone().acquire_owned() => p,
                };
                let Ok(permit) = permit else { return };
                if stop.is_cancelled() {
                    return;
                }
                let Some(runs) = weak.upgrade() else { return };
                if !runs.ready_to_claim(&me).await {
                    drop((runs, permit));
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(IDLE_WAIT) => {}
                    }
                    continue;
                }
                match queue.claim(&me).await {
                    Some(c) => {
                        let r = runs.clone();
                        runs.tasks.spawn(async move {
                            r.run_claimed(c).await;
                            drop(permit);
                        });
                    }
                    None => {
                        drop((runs, permit));
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = queue.wait_for_work(&mut wake, IDLE_WAIT) => {}
                        }
                    }
                }
            }
        }
    });
    let every = (runs.engine.config().heartbeat / 2).max(Duration::from_millis(50));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let Some(runs) = weak.upgrade() else { return };
            runs.reclaim().await;
        }
    });
}
