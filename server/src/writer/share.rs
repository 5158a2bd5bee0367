//! How much of the database campaign copies may take: a pure controller that
//! sets the bulk lane's rate cap from the delay chat messages see in the
//! interactive lanes.
//!
//! Why: a broadcast runs as fast as its number's pace allows (up to 1,000 copies
//! a second on Meta), and every copy costs the database several statements (its
//! message, its outbox row, the outbox's claim and record). The bulk lane keeps
//! copies out of the chat messages' queue, but not off the database's CPU: on a
//! busy box a broadcast slowed every customer's message (issue 17: inbound p99
//! during a broadcast must stay within 1.2 × before). Campaign copies are
//! background traffic: a promotion that reaches its last recipient a minute
//! later costs nothing, a reply that reaches its agent late costs the
//! conversation.
//!
//! The rule follows LEDBAT (RFC 6817, "Low Extra Delay Background Transport"),
//! which lets background transfers use only the capacity foreground traffic
//! leaves: measure the delay foreground traffic sees, compare it with the
//! lowest delay seen lately (the base: what the system does unloaded), and grow
//! or shrink the background's rate in proportion to how far the extra delay is
//! from a target. Here the delay is a chat message's time from the writer's
//! queue to its commit, averaged over an [`Tuning::interval`]; the current delay
//! is the lowest of the last few such averages ([`Tuning::current_filter`]); the
//! base is the lowest over the last [`Tuning::base_window`]:
//! - extra delay below the target: the cap grows (by up to [`Tuning::gain`] per
//!   interval), and is lifted once above [`Tuning::lift_per_s`];
//! - above it: the cap shrinks in proportion ([`Tuning::back_off`], at most
//!   halved per interval), never below [`Tuning::floor_per_s`], so a broadcast
//!   always moves;
//! - no chat messages in an interval: nothing to protect, the cap grows faster
//!   ([`Tuning::quiet_gain`]).
//!
//! Copies start slowly ([`Tuning::start_per_s`], after a second without any):
//! a broadcast's first pass is hundreds of copies at once, and uncapped they went
//! out as a burst before the first decision could see it. Once lifted (chat
//! traffic quiet, or its delay at its base for long enough) the bulk lane
//! commits as fast as it can. Limits, stated honestly: each node measures only
//! its own chat messages, so a node with no chat traffic does not yield to
//! another node's; and a base first measured while a broadcast already runs is
//! too high until a quieter interval lowers it (the window is a minute).

use std::collections::VecDeque;
use std::time::Duration;

/// The controller's constants. [`Tuning::default`] is what the hub runs with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuning {
    /// How often the cap is reconsidered (LEDBAT adjusts per round trip; a
    /// commit here takes a few ms, so an interval spans many of them).
    pub interval: Duration,
    /// Extra delay allowed on top of the base, fixed part.
    pub target: Duration,
    /// Extra delay allowed on top of the base, as a share of the base.
    pub target_of_base: f64,
    /// Largest relative growth per interval (LEDBAT's GAIN): small, because a
    /// cap that grows fast overshoots and every overshoot is a spike of chat
    /// delay.
    pub gain: f64,
    /// Relative growth per interval without chat messages: faster, since there
    /// is nothing to protect, yet not a jump, since chat may resume at once.
    pub quiet_gain: f64,
    /// Relative shrink per interval per unit of `off_target` beyond the target
    /// (at most halving).
    pub back_off: f64,
    /// The cap never goes below this, copies per second.
    pub floor_per_s: f64,
    /// A cap that grows past this is lifted, copies per second.
    pub lift_per_s: f64,
    /// Where copies start after the bulk lane was idle for [`Tuning::idle`],
    /// copies per second (TCP's and LEDBAT's slow start): uncapped, the first
    /// pass of a broadcast went out as one burst, and the three intervals the
    /// filter needs to see it were enough to make the chat p99.
    pub start_per_s: f64,
    /// How long without copies makes the next one a new start.
    pub idle: Duration,
    /// How far back the base delay looks.
    pub base_window: Duration,
    /// How many recent interval means the current delay is the lowest of
    /// (RFC 6817's CURRENT_FILTER): one slow interval is noise, not a broadcast.
    pub current_filter: usize,
    /// Granularity of the base's history (one minimum per bucket, as RFC 6817's
    /// base history keeps one per minute).
    pub base_bucket: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(100),
            target: Duration::from_millis(3),
            target_of_base: 0.1,
            gain: 0.05,
            quiet_gain: 0.25,
            back_off: 0.25,
            floor_per_s: 20.0,
            lift_per_s: 5_000.0,
            start_per_s: 50.0,
            idle: Duration::from_secs(1),
            current_filter: 3,
            base_window: Duration::from_secs(60),
            base_bucket: Duration::from_secs(5),
        }
    }
}

/// The controller. Times are offsets from any fixed origin the caller keeps
/// (the writer uses the process's start), so it is pure and testable without a
/// clock.
#[derive(Debug)]
pub struct BulkShare {
    tuning: Tuning,
    /// Copies per second the bulk lane may commit; `None`: no cap.
    cap: Option<f64>,
    /// Start of the current interval.
    since: Duration,
    /// Chat messages committed in this interval and their summed delay.
    chat: u64,
    chat_delay: Duration,
    /// Copies committed in this interval.
    bulk: u64,
    /// When copies were last let through.
    last_bulk: Option<Duration>,
    /// (bucket start, lowest interval mean in it), oldest first.
    base: VecDeque<(Duration, Duration)>,
    /// The last [`Tuning::current_filter`] interval means, oldest first.
    recent: VecDeque<Duration>,
}

/// What one decision saw and set, for logs and the cap metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// The cap set, copies per second; `None`: uncapped.
    pub cap: Option<f64>,
    /// The mean chat delay of the interval; `None`: no chat message in it.
    pub mean: Option<Duration>,
    /// The base delay after it.
    pub base: Option<Duration>,
}

impl BulkShare {
    /// A controller with no cap yet, its first interval starting at `now`.
    pub fn new(tuning: Tuning, now: Duration) -> Self {
        Self {
            tuning,
            cap: None,
            last_bulk: None,
            since: now,
            chat: 0,
            chat_delay: Duration::ZERO,
            bulk: 0,
            base: VecDeque::new(),
            recent: VecDeque::new(),
        }
    }

    /// Records `count` chat messages committed whose queue-to-commit delays add up
    /// to `total`.
    pub fn chat_committed(&mut self, count: u64, total: Duration) {
        self.chat += count;
        self.chat_delay += total;
    }

    /// Copies are about to be let through at `now`: after [`Tuning::idle`]
    /// without any, the cap restarts at [`Tuning::start_per_s`] (or stays lower).
    pub fn copies_waiting(&mut self, now: Duration) {
        let idle = self
            .last_bulk
            .is_none_or(|t| now.saturating_sub(t) >= self.tuning.idle);
        if idle {
            let start = self.tuning.start_per_s.max(self.tuning.floor_per_s);
            self.cap = Some(self.cap.map_or(start, |c| c.min(start)));
        }
        self.last_bulk = Some(now);
    }

    /// Records `count` campaign copies committed.
    pub fn bulk_committed(&mut self, count: u64) {
        self.bulk += count;
    }

    /// Decides anew when an interval has passed since the last decision at
    /// `now`; returns that decision, or `None` when it is not time yet.
    pub fn tick(&mut self, now: Duration) -> Option<Decision> {
        let elapsed = now.saturating_sub(self.since);
        if elapsed < self.tuning.interval {
            return None;
        }
        let mean = self.decide(now, elapsed);
        Some(Decision {
            cap: self.cap,
            mean,
            base: self.base(),
        })
    }

    /// The cap, copies per second (`None`: no cap), as last decided or
    /// restarted by [`BulkShare::copies_waiting`].
    pub fn current(&self) -> Option<f64> {
        self.cap
    }

    /// The lowest chat delay of the window (`None` before any chat message).
    pub fn base(&self) -> Option<Duration> {
        self.base.iter().map(|(_, d)| *d).min()
    }

    /// Sets the cap from the interval that ends at `now`; returns its mean chat
    /// delay.
    fn decide(&mut self, now: Duration, elapsed: Duration) -> Option<Duration> {
        let bulk_per_s = self.bulk as f64 / elapsed.as_secs_f64();
        let mean = (self.chat > 0)
            .then(|| Duration::from_secs_f64(self.chat_delay.as_secs_f64() / self.chat as f64));
        self.since = now;
        self.chat = 0;
        self.chat_delay = Duration::ZERO;
        self.bulk = 0;
        let Some(mean) = mean else {
            self.grow(self.tuning.quiet_gain);
            return None;
        };
        self.remember(now, mean);
        self.recent.push_back(mean);
        while self.recent.len() > self.tuning.current_filter.max(1) {
            self.recent.pop_front();
        }
        let current = self.recent.iter().copied().min().unwrap_or(mean);
        let base = self.base().unwrap_or(mean);
        // Never zero (`SWITCHBOARD_BULK_YIELD_MS=0` on an idle base): it divides.
        let target = (self.tuning.target + base.mul_f64(self.tuning.target_of_base))
            .max(Duration::from_micros(1));
        let extra = current.saturating_sub(base);
        // LEDBAT's off_target: 1 with no extra delay, 0 at the target, negative
        // beyond it.
        let off = (target.as_secs_f64() - extra.as_secs_f64()) / target.as_secs_f64();
        if off >= 0.0 {
            self.grow(self.tuning.gain * off);
        } else {
            let from = self
                .cap
                .unwrap_or(bulk_per_s)
                .min(bulk_per_s.max(self.tuning.floor_per_s));
            let factor = (1.0 + self.tuning.back_off * off).max(0.5);
            self.cap = Some((from * factor).max(self.tuning.floor_per_s));
        }
        Some(mean)
    }

    fn grow(&mut self, by: f64) {
        if let Some(cap) = self.cap {
            let grown = cap * (1.0 + by);
            self.cap = (grown < self.tuning.lift_per_s).then_some(grown);
        }
    }

    fn remember(&mut self, now: Duration, mean: Duration) {
        let bucket = self.tuning.base_bucket.max(Duration::from_millis(1));
        let start = Duration::from_nanos(
            u64::try_from(now.as_nanos() / bucket.as_nanos() * bucket.as_nanos())
                .unwrap_or(u64::MAX),
        );
        match self.base.back_mut() {
            Some((at, low)) if *at == start => *low = (*low).min(mean),
            _ => self.base.push_back((start, mean)),
        }
        while self
            .base
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) > self.tuning.base_window)
        {
            self.base.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The default controller with a 1 ms target, so the delays below (4 ms usual,
    /// 8–9 ms under a broadcast) are far on either side of it.
    fn tuning() -> Tuning {
        Tuning {
            target: MS,
            ..Tuning::default()
        }
    }

    /// Runs `intervals` intervals from `t`, each with `chat` messages of `delay`
    /// and `bulk` copies (let through as the gate does: after
    /// [`BulkShare::copies_waiting`]); returns the time after and the last cap.
    fn run(
        s: &mut BulkShare,
        mut t: Duration,
        intervals: u32,
        chat: u64,
        delay: Duration,
        bulk: u64,
    ) -> (Duration, Option<f64>) {
        let mut cap = s.current();
        for _ in 0..intervals {
            if bulk > 0 {
                s.copies_waiting(t);
            }
            s.chat_committed(chat, delay * chat as u32);
            s.bulk_committed(bulk);
            t += 100 * MS;
            s.tick(t);
            cap = s.current();
        }
        (t, cap)
    }

    /// A controller whose copies have run long enough at the usual chat delay
    /// (4 ms) to be uncapped.
    fn lifted() -> (BulkShare, Duration) {
        let mut s = BulkShare::new(tuning(), Duration::ZERO);
        let (t, cap) = run(&mut s, Duration::ZERO, 150, 100, 4 * MS, 30);
        assert_eq!(cap, None, "lifted");
        (s, t)
    }

    #[test]
    fn a_broadcast_starts_slowly_and_speeds_up_while_chat_keeps_its_delay() {
        let tuning = tuning();
        let mut s = BulkShare::new(tuning, Duration::ZERO);
        let (t, cap) = run(&mut s, Duration::ZERO, 20, 100, 4 * MS, 0);
        assert_eq!(cap, None, "no copies, no cap");
        s.copies_waiting(t);
        assert_eq!(s.current(), Some(tuning.start_per_s));
        let (t, cap) = run(&mut s, t, 10, 100, 4 * MS, 5);
        assert!(cap.expect("still starting") > tuning.start_per_s);
        let (_, cap) = run(&mut s, t, 150, 100, 4 * MS, 5);
        assert_eq!(cap, None, "lifted");
        assert_eq!(s.base(), Some(4 * MS));
    }

    #[test]
    fn copies_slow_down_below_their_rate_when_chat_messages_wait_longer() {
        let (mut s, t) = lifted();
        // Copies flow at 300/s; now chat delay doubles. The cap comes once the
        // current-delay filter has seen it throughout.
        let filter = tuning().current_filter as u32;
        let (t, cap) = run(&mut s, t, filter - 1, 100, 8 * MS, 30);
        assert_eq!(cap, None, "one slow interval is noise");
        let (t, cap) = run(&mut s, t, 1, 100, 8 * MS, 30);
        let first = cap.expect("capped");
        assert!(first < 300.0, "cap {first} below the copies' rate");
        let (_, cap) = run(&mut s, t, 5, 100, 8 * MS, 30);
        let later = cap.expect("still capped");
        assert!(
            later < first,
            "keeps shrinking while the delay stays: {later}"
        );
    }

    #[test]
    fn a_lone_slow_interval_does_not_cap_copies() {
        let (mut s, mut t) = lifted();
        for _ in 0..20 {
            (t, _) = run(&mut s, t, 2, 100, 4 * MS, 30);
            let (after, cap) = run(&mut s, t, 1, 100, 20 * MS, 30);
            assert_eq!(cap, None);
            t = after;
        }
    }

    #[test]
    fn the_cap_never_stops_a_broadcast() {
        let (mut s, t) = lifted();
        let (_, cap) = run(&mut s, t, 200, 100, 50 * MS, 2);
        assert_eq!(cap, Some(tuning().floor_per_s));
    }

    #[test]
    fn the_cap_grows_back_and_lifts_when_the_delay_returns_to_its_base() {
        let (mut s, t) = lifted();
        let (t, cap) = run(&mut s, t, 10, 100, 9 * MS, 30);
        assert!(cap.is_some());
        let (t, grown) = run(&mut s, t, 3, 100, 4 * MS, 5);
        assert!(grown.expect("capped a while") > cap.expect("capped"));
        let (_, lifted) = run(&mut s, t, 200, 100, 4 * MS, 5);
        assert_eq!(lifted, None);
    }

    #[test]
    fn quiet_chat_traffic_lifts_the_cap() {
        let (mut s, t) = lifted();
        let (t, cap) = run(&mut s, t, 10, 100, 9 * MS, 30);
        assert!(cap.is_some());
        let (_, lifted) = run(&mut s, t, 40, 0, Duration::ZERO, 30);
        assert_eq!(lifted, None);
    }

    #[test]
    fn copies_after_an_idle_second_start_slowly_again() {
        let tuning = tuning();
        let (mut s, t) = lifted();
        s.copies_waiting(t);
        assert_eq!(s.current(), None, "copies kept flowing: no restart");
        let t = t + tuning.idle;
        s.copies_waiting(t);
        assert_eq!(s.current(), Some(tuning.start_per_s));
    }

    #[test]
    fn an_old_low_delay_leaves_the_base_after_the_window() {
        let tuning = tuning();
        let mut s = BulkShare::new(tuning, Duration::ZERO);
        let (t, _) = run(&mut s, Duration::ZERO, 10, 100, 2 * MS, 0);
        let intervals = (tuning.base_window.as_millis() / 100) as u32 + 60;
        run(&mut s, t, intervals, 100, 6 * MS, 0);
        assert_eq!(s.base(), Some(6 * MS));
    }
}
