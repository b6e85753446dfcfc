//! Ctrl-C for long calls: the work runs on a helper thread without the GIL, watched by a
//! [`Cancel`] monitor, while the calling thread waits in slices of [`POLL`] and runs Python's
//! signal handlers between them. When a handler raises (Ctrl-C: `KeyboardInterrupt`), the work
//! is cancelled, joined (it stops at its next poll, well within a second), and the handler's
//! exception is raised.

use crate::convert;
use ccem::monitor::Cancel;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::mpsc;
use std::time::Duration;

/// How often the waiting thread runs Python's signal handlers.
const POLL: Duration = Duration::from_millis(50);

/// Runs `work` (given the run's [`Cancel`]) so that Ctrl-C stops it (module documentation).
/// A library error becomes its Python exception ([`convert::error`]; an interrupted run:
/// `KeyboardInterrupt`).
pub fn interruptible<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&Cancel) -> ccem::Result<T> + Send,
{
    let cancel = Cancel::new();
    let (tx, rx) = mpsc::channel();
    // Shared with the GIL-free wait below (a `Receiver` is `Send` but not `Sync`).
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|scope| {
        let worker_cancel = cancel.clone();
        let handle = scope.spawn(move || {
            // A panic is caught by `join` below; send only a result.
            let _ = tx.send(work(&worker_cancel));
        });
        let mut raised: Option<PyErr> = None;
        let result = loop {
            let got = py.detach(|| match rx.lock() {
                Ok(rx) => rx.recv_timeout(POLL),
                Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
            });
            match got {
                Ok(r) => break Some(r),
                Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if raised.is_none() {
                if let Err(e) = py.check_signals() {
                    cancel.cancel();
                    raised = Some(e);
                }
            }
        };
        let joined = py.detach(|| handle.join());
        if let Some(e) = raised {
            return Err(e);
        }
        match (result, joined) {
            (Some(r), Ok(())) => r.map_err(convert::error),
            _ => Err(PyRuntimeError::new_err(
                "internal error: the computation stopped unexpectedly (please report it)",
            )),
        }
    })
}
