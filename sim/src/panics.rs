//! Panics inside a simulated run become verdicts. A broken internal assertion
//! (in the simulator or in a design's task) fails that one seed, with its message
//! and location, instead of ending the whole sweep. A quiet panic hook captures
//! the message and location of panics raised under `catch`, so a sweep prints
//! each once, without the default hook's backtrace noise; panics elsewhere (a
//! failing test, a CLI bug) still go to the previous hook as before.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// A run that panicked: the panic's message and where it was raised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InternalFailure {
    pub message: String,
    /// `file:line:column` of the panic, when the hook saw it.
    pub location: Option<String>,
}

impl fmt::Display for InternalFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line: `assert_eq!` spreads left and right over several.
        let lines: Vec<&str> = self.message.lines().map(str::trim).collect();
        write!(f, "internal assertion: {}", lines.join("; "))?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        Ok(())
    }
}

thread_local! {
    /// How many `catch` calls are active on this thread (they may nest).
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// The first panic seen by the hook under the innermost active `catch`.
    static CAUGHT: RefCell<Option<InternalFailure>> = const { RefCell::new(None) };
}

static QUIET_HOOK: Once = Once::new();

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Installs, once per process, a hook that records panics raised under `catch`
/// on this thread and hands every other panic to the hook it replaced.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) == 0 {
                return previous(info);
            }
            let failure = InternalFailure {
                message: payload_message(info.payload()),
                location: info.location().map(|location| location.to_string()),
            };
            CAUGHT.with(|caught| {
                caught.borrow_mut().get_or_insert(failure);
            });
        }));
    });
}

/// Runs `work`; a panic inside it becomes an `InternalFailure`. A simulated run
/// owns all of its state, so nothing half-updated by the panic outlives it.
pub fn catch<T>(work: impl FnOnce() -> T) -> Result<T, InternalFailure> {
    install_quiet_hook();
    let outer = CAUGHT.with(|caught| caught.borrow_mut().take());
    CATCHING.with(|depth| depth.set(depth.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(work));
    CATCHING.with(|depth| {
        assert!(depth.get() > 0, "catch depth underflow");
        depth.set(depth.get() - 1);
    });
    let seen = CAUGHT.with(|caught| std::mem::replace(&mut *caught.borrow_mut(), outer));
    result.map_err(|payload| {
        seen.unwrap_or_else(|| InternalFailure {
            message: payload_message(payload.as_ref()),
            location: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_failure_with_its_message_and_location() {
        let failure = catch(|| -> u32 {
            let left = 14;
            assert_eq!(left, 15, "event version must advance by one");
            0
        })
        .expect_err("the work panicked");
        assert!(
            failure
                .message
                .contains("event version must advance by one"),
            "{failure}"
        );
        let location = failure.location.clone().expect("the hook saw the location");
        assert!(location.contains("panics.rs"), "{location}");
        assert!(failure.to_string().starts_with("internal assertion: "));
        assert!(!failure.to_string().contains('\n'), "one line: {failure}");
    }

    #[test]
    fn work_that_does_not_panic_returns_its_value_and_the_thread_recovers() {
        assert_eq!(catch(|| 7), Ok(7));
        let formatted = catch(|| panic!("seed {} broke", 3)).expect_err("panicked");
        assert_eq!(formatted.message, "seed 3 broke");
        // The next catch starts clean: no failure left over from the last one.
        assert_eq!(catch(|| "fine"), Ok("fine"));
        assert_eq!(CATCHING.with(Cell::get), 0);
    }

    #[test]
    fn nested_catches_each_report_their_own_panic() {
        let outer = catch(|| {
            let inner = catch(|| panic!("inner")).expect_err("inner panicked");
            assert_eq!(inner.message, "inner");
            panic!("outer");
        })
        .expect_err("outer panicked");
        assert_eq!(outer.message, "outer");
    }
}
