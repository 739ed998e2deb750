//! Running recursive work (a jq query compiled or run, a parser over untrusted input) on a
//! thread whose stack is large enough for the nesting the input limits allow. Request threads
//! have 2 MiB; a stack overflow aborts the whole process, so recursion over input never runs
//! there.

/// The stack of such a thread: reserved address space, touched only as deep as the work goes.
pub const BIG_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Runs `work` on a thread of its own with a [`BIG_STACK_BYTES`] stack and returns its result
/// (the calling thread waits; use it for bounded CPU work, not I/O). A panic in `work` is
/// resumed on the caller.
pub fn on_big_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("lakebox-deep".into())
            .stack_size(BIG_STACK_BYTES)
            .spawn_scoped(scope, work);
        match handle {
            Ok(h) => h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had (the process is out of them): fail loudly rather than
            // recurse on a small stack.
            Err(e) => panic!("cannot start a thread for deep work: {e}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One frame of about half a KiB per level.
    fn depth(n: u64) -> u64 {
        let pad = std::hint::black_box([0u8; 512]);
        if n == 0 {
            u64::from(pad[0])
        } else {
            1 + depth(n - 1) + u64::from(pad[1])
        }
    }

    #[test]
    fn deep_recursion_fits() {
        // 100,000 frames: far past a 2 MiB stack.
        assert_eq!(on_big_stack(|| depth(100_000)), 100_000);
    }
}
