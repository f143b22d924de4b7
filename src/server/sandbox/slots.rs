//! The run slots and their fair queue.
//!
//! A first-come-first-served semaphore lets one caller with many queued runs push a
//! newcomer behind all of them. Here waiting runs are grouped by a caller key (the run
//! service passes the run's owner, `user:<id>` or `guest:<id>`) and the next free slot
//! goes to the waiting caller that holds the fewest slots, and among equals to the one
//! served least recently (a caller never served yet comes first). With one slot and
//! two callers that keep it busy this is plain round-robin: one run each in turn.
//!
//! Keyed by owner, not by IP block: the issue asks for a fair share per caller, and the
//! in-flight caps (per caller and per IP block) already bound how many keys and queued
//! runs one network can bring, so one IP cannot flood the queue with fresh guest keys.
//!
//! Entering the queue ([`Slots::enter`]) is synchronous, so a run's place is fixed the
//! moment it is admitted, whatever order the tasks that execute runs happen to start in.
//! A place dropped while waiting leaves the queue; a slot granted to a place that is
//! dropped before it saw the grant is passed on at once, never lost.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// A fixed number of run slots shared out fairly across callers.
pub struct Slots {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    free: usize,
    /// Increases at every enqueue and every grant: orders waiters and grants.
    tick: u64,
    callers: HashMap<String, CallerState>,
}

/// One caller's share: slots held now, when it was last served, who of it waits.
/// Removed when it holds nothing and nothing waits, so keys do not accumulate.
#[derive(Default)]
struct CallerState {
    holding: usize,
    last_served: u64,
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
}

impl Slots {
    /// `count` slots, all free.
    pub fn new(count: usize) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(State {
                free: count,
                ..State::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place in the queue for `key` now: a free slot at once when nobody waits,
    /// otherwise a place behind the runs already waiting (see the module doc).
    pub fn enter(self: &Arc<Self>, key: &str) -> Place {
        let mut st = self.lock();
        st.tick += 1;
        let tick = st.tick;
        let nobody_waits = st.callers.values().all(|c| c.waiting.is_empty());
        if st.free > 0 && nobody_waits {
            st.free -= 1;
            let c = st.callers.entry(key.to_string()).or_default();
            c.holding += 1;
            c.last_served = tick;
            return Place {
                slots: self.clone(),
                key: key.to_string(),
                wait: Wait::Granted,
            };
        }
        let (tx, rx) = oneshot::channel();
        st.callers
            .entry(key.to_string())
            .or_default()
            .waiting
            .push_back((tick, tx));
        Place {
            slots: self.clone(),
            key: key.to_string(),
            wait: Wait::Queued { id: tick, rx },
        }
    }

    /// Runs waiting for a slot, all callers together.
    pub fn waiting(&self) -> usize {
        self.lock().callers.values().map(|c| c.waiting.len()).sum()
    }

    /// Gives a slot that `key` held back: to the next waiter, or to the free count.
    fn release(&self, key: &str) {
        let mut st = self.lock();
        if let Some(c) = st.callers.get_mut(key) {
            c.holding = c.holding.saturating_sub(1);
        }
        forget_if_idle(&mut st, key);
        st.free += 1;
        grant(&mut st);
    }

    /// A waiter that went away: out of the queue, or (when it had been granted a slot
    /// meanwhile) its slot is passed on.
    fn leave(&self, key: &str, id: u64) {
        let mut st = self.lock();
        let queued = st.callers.get_mut(key).and_then(|c| {
            let at = c.waiting.iter().position(|(i, _)| *i == id)?;
            c.waiting.remove(at)
        });
        if queued.is_some() {
            forget_if_idle(&mut st, key);
            return;
        }
        drop(st);
        self.release(key);
    }
}

fn forget_if_idle(st: &mut State, key: &str) {
    if st
        .callers
        .get(key)
        .is_some_and(|c| c.holding == 0 && c.waiting.is_empty())
    {
        st.callers.remove(key);
    }
}

/// Hands free slots to waiters, fairest first, while both exist.
fn grant(st: &mut State) {
    while st.free > 0 {
        let next = st
            .callers
            .iter()
            .filter_map(|(k, c)| {
                let (first, _) = c.waiting.front()?;
                Some(((c.holding, c.last_served, *first), k.clone()))
            })
            .min();
        let Some((_, key)) = next else { return };
        st.tick += 1;
        let tick = st.tick;
        let Some(c) = st.callers.get_mut(&key) else {
            return;
        };
        let Some((_, tx)) = c.waiting.pop_front() else {
            return;
        };
        // A waiter is removed from the queue only here (under the lock, sending) or by
        // its own `leave`, so a failed send means it is gone: the slot stays free.
        if tx.send(()).is_ok() {
            st.free -= 1;
            c.holding += 1;
            c.last_served = tick;
        } else {
            forget_if_idle(st, &key);
        }
    }
}

enum Wait {
    Granted,
    Queued { id: u64, rx: oneshot::Receiver<()> },
    Left,
}

/// A run's place in the queue, then its slot. Dropping it at any point gives back what
/// it holds: the place in the queue, or the slot.
pub struct Place {
    slots: Arc<Slots>,
    key: String,
    wait: Wait,
}

impl Place {
    /// Waits for this place's turn. Cancel-safe: dropping the future leaves the queue,
    /// and a slot granted meanwhile is passed on.
    pub async fn ready(&mut self) {
        if let Wait::Queued { rx, .. } = &mut self.wait {
            // The sender is only dropped after sending (see `grant`) or by our own
            // `leave`, which has not run: this cannot fail while we wait.
            let _ = rx.await;
            self.wait = Wait::Granted;
        }
    }

    /// Whether this place's caller also holds or waits for another slot: its run is one
    /// of several at once, not the one a person sits waiting for.
    pub fn caller_has_others(&self) -> bool {
        let st = self.slots.lock();
        let mine = usize::from(!matches!(self.wait, Wait::Left));
        st.callers
            .get(&self.key)
            .is_some_and(|c| c.holding + c.waiting.len() > mine)
    }

    /// Whether the slot is this place's already (without waiting).
    pub fn has_slot(&mut self) -> bool {
        if let Wait::Queued { rx, .. } = &mut self.wait {
            if rx.try_recv().is_ok() {
                self.wait = Wait::Granted;
            }
        }
        matches!(self.wait, Wait::Granted)
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.wait, Wait::Left) {
            Wait::Granted => self.slots.release(&self.key),
            Wait::Queued { id, .. } => self.slots.leave(&self.key, id),
            Wait::Left => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn granted(p: &mut Place) -> bool {
        p.has_slot()
    }

    #[test]
    fn a_free_slot_is_taken_at_once_and_given_back_on_drop() {
        let s = Slots::new(2);
        let mut a = s.enter("a");
        let mut b = s.enter("b");
        assert!(granted(&mut a) && granted(&mut b));
        let mut c = s.enter("c");
        assert!(!granted(&mut c));
        assert_eq!(s.waiting(), 1);
        drop(a);
        assert!(granted(&mut c));
        assert_eq!(s.waiting(), 0);
        drop((b, c));
        assert_eq!(s.lock().free, 2);
        assert!(s.lock().callers.is_empty(), "no key is kept once idle");
    }

    #[test]
    fn a_caller_with_several_runs_is_told_so() {
        let s = Slots::new(2);
        let mut a1 = s.enter("a");
        let b = s.enter("b");
        assert!(granted(&mut a1) && !a1.caller_has_others() && !b.caller_has_others());
        let a2 = s.enter("a");
        assert!(
            a1.caller_has_others() && a2.caller_has_others(),
            "one running, one waiting"
        );
        drop(a2);
        assert!(!a1.caller_has_others());
    }

    #[test]
    fn a_newcomer_is_served_before_a_caller_s_other_queued_runs() {
        let s = Slots::new(1);
        let a1 = s.enter("a");
        let mut a: Vec<Place> = (0..4).map(|_| s.enter("a")).collect();
        let mut b = s.enter("b");
        drop(a1);
        assert!(granted(&mut b), "the newcomer gets the freed slot");
        assert!(a.iter_mut().all(|p| !granted(p)));
        drop(b);
        assert!(
            granted(&mut a[0]),
            "then the caller's next run, in its order"
        );
        assert!(a[1..].iter_mut().all(|p| !granted(p)));
    }

    #[test]
    fn callers_are_served_one_run_each_in_turn() {
        let s = Slots::new(1);
        let first = s.enter("x");
        let mut queued: Vec<(&str, Place)> = Vec::new();
        for key in ["a", "a", "a", "b", "b", "c"] {
            queued.push((key, s.enter(key)));
        }
        let mut order = Vec::new();
        drop(first);
        while !queued.is_empty() {
            let at = queued
                .iter_mut()
                .position(|(_, p)| granted(p))
                .expect("one place holds the slot");
            assert_eq!(
                queued
                    .iter_mut()
                    .map(|(_, p)| granted(p))
                    .filter(|g| *g)
                    .count(),
                1
            );
            let (key, place) = queued.remove(at);
            order.push(key);
            drop(place);
        }
        assert_eq!(order, ["a", "b", "c", "a", "b", "a"]);
    }

    #[test]
    fn a_caller_holding_fewer_slots_goes_first() {
        let s = Slots::new(3);
        let _a1 = s.enter("a");
        let _a2 = s.enter("a");
        let b1 = s.enter("b");
        let mut a3 = s.enter("a");
        let mut c1 = s.enter("c");
        drop(b1);
        assert!(granted(&mut c1), "c holds nothing, a holds two");
        assert!(!granted(&mut a3));
    }

    #[test]
    fn a_waiter_that_leaves_is_out_of_the_queue() {
        let s = Slots::new(1);
        let held = s.enter("a");
        let gone = s.enter("b");
        let mut next = s.enter("c");
        drop(gone);
        assert_eq!(s.waiting(), 1);
        drop(held);
        assert!(granted(&mut next));
        drop(next);
        assert_eq!(s.lock().free, 1);
        assert!(s.lock().callers.is_empty());
    }

    #[test]
    fn a_slot_granted_to_a_waiter_that_went_away_is_passed_on() {
        let s = Slots::new(1);
        let held = s.enter("a");
        let gone = s.enter("b");
        let mut next = s.enter("c");
        // The grant lands in `gone`'s channel before it is dropped, unseen.
        drop(held);
        assert!(!granted(&mut next));
        drop(gone);
        assert!(
            granted(&mut next),
            "the slot moved on instead of being lost"
        );
        drop(next);
        assert_eq!(s.lock().free, 1);
    }

    #[tokio::test]
    async fn a_stopped_wait_leaves_the_queue_and_an_awaited_one_gets_the_slot() {
        let s = Slots::new(1);
        let held = s.enter("a");
        let mut stopped = s.enter("b");
        {
            let wait = stopped.ready();
            futures::pin_mut!(wait);
            assert!(wait.as_mut().now_or_never().is_none(), "no slot yet");
        }
        drop(stopped);
        let mut waiter = s.enter("c");
        let task = tokio::spawn(async move {
            waiter.ready().await;
            waiter
        });
        drop(held);
        let mut waiter = task.await.expect("waiter task");
        assert!(granted(&mut waiter));
        assert_eq!(s.waiting(), 0);
    }

    #[tokio::test]
    async fn a_dropped_future_after_the_grant_passes_the_slot_on() {
        let s = Slots::new(1);
        let held = s.enter("a");
        let mut first = s.enter("b");
        let mut second = s.enter("c");
        let wait = first.ready();
        drop(held);
        // The future is dropped without being polled after the grant.
        drop(wait);
        drop(first);
        assert!(granted(&mut second));
    }
}
