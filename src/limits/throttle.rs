//! A throttle for log lines that a client can cause: the server's `421` for a foreign `Host`,
//! its `/readyz` failures, the gate's refused callers. One line gets through per interval and
//! says how many were held back; the metrics remain the count of every event.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lets one event through per [`Throttle::EVERY`] and counts the ones held back since.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// At most one warning this often.
    pub(crate) const EVERY: Duration = Duration::from_secs(60);

    /// `Some(held back since the last one)` when an event may be logged at `now`, else `None`.
    pub(crate) fn allow(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, held_back) = &mut *state;
        if last.is_none_or(|at| now.saturating_duration_since(at) >= Self::EVERY) {
            *last = Some(now);
            Some(std::mem::take(held_back))
        } else {
            *held_back = held_back.saturating_add(1);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_a_minute() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(throttle.allow(t0), Some(0));
        assert_eq!(throttle.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(59)), None);
        assert_eq!(throttle.allow(t0 + Duration::from_secs(60)), Some(2));
    }
}
