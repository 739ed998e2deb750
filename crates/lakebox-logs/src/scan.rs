//! Reading streams' events in chunks on every core, the chunks' results put together in
//! order: how Logs Insights and FilterLogEvents get through millions of events.
//!
//! A scan of one message at a time on one core waits on memory more than it works (messages
//! live in their batches' allocations, and events in time order hop between batches), so each
//! worker walks its chunk in place, under the stream's read lock, asking for messages a few
//! events ahead; writers to the stream wait for one chunk at most.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lakebox_core::ServiceError;

use crate::store::{Event, Position, Stream};

/// Events are read out of a stream this many at a time, a chunk per core at once.
const READ_CHUNK: usize = 16 * 1024;

/// How many events ahead a message's text is asked for: enough to cover a memory load's
/// latency behind the matching of the events before it.
const PREFETCH_AHEAD: usize = 8;

/// The events of one stream a scan reads: after `from`, stamped up to `until` (inclusive).
pub struct Source {
    pub stream: Arc<Stream>,
    pub from: Bound<Position>,
    pub until: i64,
}

/// One chunk of a source's events, read in place (under the stream's read lock).
pub struct Chunk<'a> {
    /// Which of the scan's sources the events are of.
    pub source: usize,
    /// Its events, oldest first: found in the stream once, then read from this list, so asking
    /// ahead is a look a few places on rather than a second walk of the stream.
    events: Vec<&'a Event>,
}

impl Chunk<'_> {
    /// The chunk's events, oldest first or newest first; with `prefetch`, each message's text
    /// is asked for a few events before it is reached (only worth it when messages are read),
    /// and each event itself (which holds where its text is) a few before
    /// that: otherwise asking for the text waits on the event.
    pub fn events(&self, newest_first: bool, prefetch: bool) -> impl Iterator<Item = &Event> + '_ {
        let n = self.events.len();
        let at = move |i: usize| -> Option<&Event> {
            (i < n).then(|| self.events[if newest_first { n - 1 - i } else { i }])
        };
        if prefetch {
            (0..2 * PREFETCH_AHEAD)
                .filter_map(at)
                .for_each(|e| e.prefetch_entry());
            (0..PREFETCH_AHEAD).filter_map(at).for_each(|e| e.prefetch());
        }
        (0..n).filter_map(move |i| {
            if prefetch {
                at(i + 2 * PREFETCH_AHEAD).inspect(|e| e.prefetch_entry());
                at(i + PREFETCH_AHEAD).inspect(|e| e.prefetch());
            }
            at(i)
        })
    }
}

/// What the scan does after a chunk's result is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Go,
    /// Nothing more is wanted of the merged chunk's source: its chunks not yet read are
    /// skipped.
    EndSource,
}

/// Runs `work` over every chunk of `sources` on every core and hands each chunk's result to
/// `merge` with the chunk's source, in order (source by source, each oldest first). An error
/// from either stops the scan and is returned. Chunks of an ended source read before it ended
/// are still merged, after the one that ended it.
pub fn chunks<P: Send>(
    sources: &[Source],
    work: impl Fn(&Chunk<'_>) -> Result<P, ServiceError> + Sync,
    mut merge: impl FnMut(usize, P) -> Result<Flow, ServiceError> + Send,
) -> Result<(), ServiceError> {
    // Where the next chunk starts: (source, the last place handed out in it, chunks so far).
    let cursor = Mutex::new((0usize, None::<Position>, 0usize));
    struct Merging<P, M> {
        next: usize,
        pending: BTreeMap<usize, (usize, P)>,
        merge: M,
        error: Option<ServiceError>,
    }
    let merging = Mutex::new(Merging {
        next: 0,
        pending: BTreeMap::new(),
        merge: &mut merge,
        error: None,
    });
    let stopped = AtomicBool::new(false);
    let worker = || -> Result<(), ServiceError> {
        while !stopped.load(Ordering::Relaxed) {
            // The next chunk's events are listed under the cursor's lock (every worker waits on
            // this walk of the stream: the next chunk starts where it ends), then read outside it.
            let mut c = cursor.lock().unwrap();
            let Some(src) = sources.get(c.0) else {
                return Ok(());
            };
            let first = match c.1 {
                Some(k) => Bound::Excluded(k),
                None => src.from,
            };
            let data = src.stream.data.read().unwrap();
            let events: Vec<&Event> = data
                .range(first, Bound::Included((src.until, u64::MAX)))
                .take(READ_CHUNK)
                .collect();
            let Some(last) = events.last() else {
                *c = (c.0 + 1, None, c.2);
                continue;
            };
            let (source, no) = (c.0, c.2);
            *c = (source, Some(last.key()), no + 1);
            drop(c);
            let part = work(&Chunk { source, events })?;
            drop(data);
            let mut m = merging.lock().unwrap();
            m.pending.insert(no, (source, part));
            loop {
                let next = m.next;
                let Some((source, p)) = m.pending.remove(&next) else {
                    break;
                };
                m.next += 1;
                match (m.merge)(source, p)? {
                    Flow::Go => {}
                    Flow::EndSource => {
                        let mut c = cursor.lock().unwrap();
                        if c.0 == source {
                            *c = (source + 1, None, c.2);
                        }
                    }
                }
            }
        }
        Ok(())
    };
    // The first error stops every worker at its next chunk.
    let fail = |e: ServiceError| {
        stopped.store(true, Ordering::Relaxed);
        merging.lock().unwrap().error.get_or_insert(e);
    };
    // A scan of no more than one chunk's events in all runs on the caller's thread: starting
    // threads would cost more than reading them.
    let events: usize = sources.iter().map(|s| s.stream.data.read().unwrap().len()).sum();
    if events <= READ_CHUNK {
        let _ = worker().map_err(fail);
    } else {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..cores)
                .map(|_| scope.spawn(|| worker().map_err(fail)))
                .collect();
            for h in handles {
                if h.join().is_err() {
                    fail(ServiceError::internal("a scan worker failed"));
                }
            }
        });
    }
    match merging.into_inner().unwrap().error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::insert;

    /// A stream of `n` events, two to a timestamp, in batches of 1,000.
    fn stream(uid: u64, n: usize) -> Arc<Stream> {
        let s = Arc::new(Stream {
            uid,
            name: format!("s{uid}"),
            created: 0,
            data: Default::default(),
        });
        let texts: Vec<String> = (0..n).map(|i| format!("{uid}:{i}")).collect();
        for (b, batch) in texts.chunks(1000).enumerate() {
            let events: Vec<(i64, &str)> = batch
                .iter()
                .enumerate()
                .map(|(i, t)| (((b * 1000 + i) / 2) as i64, t.as_str()))
                .collect();
            insert(&s, b as u64, 0, &events);
        }
        s
    }

    fn sources(sizes: &[usize], until: i64) -> Vec<Source> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Source {
                stream: stream(i as u64, n),
                from: Bound::Included((5, 0)),
                until,
            })
            .collect()
    }

    fn messages(chunk: &Chunk<'_>, newest_first: bool) -> Vec<String> {
        chunk
            .events(newest_first, true)
            .map(|e| e.message().to_owned())
            .collect()
    }

    #[test]
    fn chunks_are_merged_in_order_of_source_and_time() {
        let srcs = sources(&[40_000, 0, 3, 20_000], 15_000);
        let mut got = Vec::new();
        chunks(
            &srcs,
            |c| Ok((c.source, messages(c, false))),
            |source, (s, m)| {
                assert_eq!(source, s);
                got.extend(m);
                Ok(Flow::Go)
            },
        )
        .unwrap();
        // From timestamp 5 (event 10) to 15,000 (event 30,001) inclusive; the third stream's
        // events are all older.
        let mut want: Vec<String> = (10..=30_001).map(|i| format!("0:{i}")).collect();
        want.extend((10..20_000).map(|i| format!("3:{i}")));
        assert_eq!(got, want);

        // Newest first within each chunk.
        let mut firsts = Vec::new();
        chunks(
            &srcs,
            |c| Ok(messages(c, true)),
            |_, m| {
                firsts.push(m[0].clone());
                Ok(Flow::Go)
            },
        )
        .unwrap();
        assert_eq!(firsts[0], format!("0:{}", 10 + READ_CHUNK - 1));
    }

    #[test]
    fn a_scan_of_one_chunk_runs_on_the_callers_thread() {
        let caller = std::thread::current().id();
        let srcs = sources(&[READ_CHUNK / 2, READ_CHUNK / 2], i64::MAX);
        let mut got = Vec::new();
        chunks(
            &srcs,
            |c| Ok((std::thread::current().id(), messages(c, false))),
            |_, (thread, m)| {
                assert_eq!(thread, caller);
                got.extend(m);
                Ok(Flow::Go)
            },
        )
        .unwrap();
        assert_eq!(got.len(), 2 * (READ_CHUNK / 2 - 10));
        assert_eq!(got[0], "0:10");

        // One event more than a chunk: the workers' threads read it.
        let srcs = sources(&[READ_CHUNK / 2, READ_CHUNK / 2 + 1], i64::MAX);
        let mut threads = Vec::new();
        chunks(
            &srcs,
            |_| Ok(std::thread::current().id()),
            |_, t| {
                threads.push(t);
                Ok(Flow::Go)
            },
        )
        .unwrap();
        assert!(!threads.contains(&caller));
    }

    #[test]
    fn an_ended_source_skips_its_unread_chunks_and_errors_stop_the_scan() {
        let srcs = sources(&[200_000, 50_000], i64::MAX);
        let mut per_source = [0usize; 2];
        let mut read = 0;
        chunks(
            &srcs,
            |c| Ok(messages(c, false).len()),
            |source, n| {
                read += 1;
                per_source[source] += n;
                Ok(if source == 0 { Flow::EndSource } else { Flow::Go })
            },
        )
        .unwrap();
        // Source 0 ended at its first chunk: at most one chunk per other core read beyond it.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        assert!(per_source[0] <= READ_CHUNK * cores, "{per_source:?}");
        assert_eq!(per_source[1], 50_000 - 10);
        assert!(read < 200_000 / READ_CHUNK);

        let err = chunks(
            &srcs,
            |c| {
                if c.source == 1 {
                    Err(ServiceError::internal("boom"))
                } else {
                    Ok(())
                }
            },
            |_, ()| Ok(Flow::Go),
        )
        .unwrap_err();
        assert!(format!("{err:?}").contains("boom"));
    }
}
