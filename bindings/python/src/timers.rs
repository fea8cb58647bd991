//! `Runtime.call_later` / `Runtime.call_every` and `rtpy.Timer`: a Python
//! call as a timer of the callback layer (one-shot or repeating).

use crate::call::{CallSlot, PyCall, Reporter};
use crate::errors::to_py;
use crate::runtime::{duration, Runtime, RuntimeInner};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rt_core::callback::{Error, Status, TimerCallback, TimerId};
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::Arc;
use std::time::Instant;

/// A timer's callback (`Clone`: an `Arc`, as the layer hands a copy to
/// each call).
#[derive(Clone)]
pub(crate) struct PyTimer(Arc<TimerShared>);

pub(crate) struct TimerShared {
    call: CallSlot,
    reporter: Arc<Reporter>,
    repeating: bool,
    /// True until the timer is done: fired (one-shot), stopped, or given
    /// its final call by shutdown.
    active: AtomicBool,
}

impl TimerCallback for PyTimer {
    fn call(&self, status: Status) {
        let shared = &*self.0;
        if status == Status::Cancelled || !shared.repeating {
            shared.active.store(false, Release);
        }
        // None: the final call, or the shutdown began (no call).
        let running = shared.reporter.enter_if_ok(status);
        let _ = crate::gil::attach(|py| {
            // A one-shot timer's call is its last: taken out of the slot.
            let call = match running {
                // No further call: it can go.
                None => return shared.call.clear(py),
                Some(_) if shared.repeating => shared.call.get(py),
                Some(_) => shared.call.take(),
            };
            if let Some(call) = call {
                if let Err(e) = call.call(py) {
                    shared
                        .reporter
                        .report(py, e, "Exception in a timer callback", call.func(py));
                }
            }
        });
    }
}

/// Seconds on Python's `time.monotonic()` clock for an `Instant` (both are
/// CLOCK_MONOTONIC on Linux; the offset is measured now).
fn monotonic_seconds(at: impl Into<Instant>) -> f64 {
    let at: Instant = at.into();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer and a clock every Linux has.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now = Instant::now();
    let now_secs = ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
    if at >= now {
        now_secs + (at - now).as_secs_f64()
    } else {
        now_secs - (now - at).as_secs_f64()
    }
}

pub(crate) fn start(
    rt: &Runtime,
    delay: f64,
    period: Option<f64>,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
) -> PyResult<Timer> {
    let call = PyCall::new(func, args)?;
    rt.check_live()?;
    let delay = duration(
        delay,
        if period.is_some() {
            "interval"
        } else {
            "delay"
        },
    )?;
    let period = match period {
        Some(p) => {
            let p = duration(p, "interval")?;
            if p.is_zero() {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "interval must be > 0",
                ));
            }
            Some(p)
        }
        None => None,
    };
    let shared = Arc::new(TimerShared {
        call: CallSlot::new(call),
        reporter: rt.reporter().clone(),
        repeating: period.is_some(),
        active: AtomicBool::new(true),
    });
    let id = rt
        .core()
        .timer_start(delay, period, PyTimer(shared.clone()))
        .map_err(|e| to_py(e, "timer"))?;
    let when = rt
        .core()
        .timer_deadline(id)
        .map(monotonic_seconds)
        .unwrap_or_else(|| monotonic_seconds(Instant::now() + delay));
    Ok(Timer {
        rt: rt.inner.clone(),
        id,
        shared,
        when: AtomicU64::new(when.to_bits()),
    })
}

/// A timer (`Runtime.call_later` / `call_every`). Never fires early.
#[pyclass(module = "rtpy", name = "Timer", frozen)]
pub struct Timer {
    rt: Arc<RuntimeInner>,
    id: TimerId,
    shared: Arc<TimerShared>,
    /// The last deadline seen (f64 bits, `time.monotonic()` seconds).
    when: AtomicU64,
}

#[pymethods]
impl Timer {
    /// Stops the timer: True if it was active (it will not be called
    /// again), False if it had already fired (one-shot), been cancelled, or
    /// the runtime shut down. When it returns True the callback is not
    /// running on any other thread (it waits for a running call, with the
    /// GIL released), except when called from inside another runtime
    /// callback while this timer's call runs on another thread (it does not
    /// wait there: two callbacks could wait for each other). From inside
    /// its own callback it returns at once.
    fn cancel(&self, py: Python<'_>) -> PyResult<bool> {
        if self.rt.forked() {
            // The timer is the parent's (see `RuntimeInner::check_live`).
            return Ok(false);
        }
        let outcome = py.detach(|| self.rt.core().timer_stop(self.id));
        match outcome {
            Ok(_) => {
                // Not called again: its call can go (a call still finishing
                // on another thread holds its own reference).
                self.shared.active.store(false, Release);
                self.shared.call.clear(py);
                Ok(true)
            }
            Err(Error::NotFound) | Err(Error::Shutdown) => Ok(false),
            Err(e) => Err(to_py(e, "Timer.cancel")),
        }
    }

    /// The deadline of its next call (for a timer that is done: of its
    /// last one), in seconds of `time.monotonic()`.
    #[getter]
    fn when(&self) -> f64 {
        if self.rt.forked() {
            // The timer table's lock may have been held by a thread of the
            // parent when it forked.
            return f64::from_bits(self.when.load(Relaxed));
        }
        if let Some(at) = self.rt.core().timer_deadline(self.id) {
            let secs = monotonic_seconds(at);
            self.when.store(secs.to_bits(), Relaxed);
            return secs;
        }
        f64::from_bits(self.when.load(Relaxed))
    }

    /// True until it fired (one-shot), was cancelled or the runtime shut
    /// down.
    #[getter]
    fn active(&self) -> bool {
        self.shared.active.load(Acquire)
    }

    /// True for `call_every` timers.
    #[getter]
    fn repeating(&self) -> bool {
        self.shared.repeating
    }

    fn __repr__(&self) -> String {
        format!(
            "<rtpy.Timer when={:.6} active={} repeating={}>",
            self.when(),
            if self.active() { "True" } else { "False" },
            if self.shared.repeating {
                "True"
            } else {
                "False"
            }
        )
    }
}
