//! A stream's events in order, held in pages of neighbouring events.
//!
//! A search reads millions of events in order. Held one to a slot of a `BTreeMap`, they sit in
//! nodes of a few each, scattered over memory as the tree grew, and walking them waited on
//! memory node after node (a fifth of a 10M-event search's CPU, under the lock that hands out
//! chunks). Here a tree indexes pages of up to [`PAGE_MAX`] events, each page one allocation
//! with its events side by side: a walk is a run through arrays. An event arriving in the
//! middle of a page shifts the ones after it in that page (a few KiB at most), which costs
//! less than the tree descent it saves.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::store::{Event, Position};

/// A page grows to this many events, then splits in two.
const PAGE_MAX: usize = 128;

#[derive(Debug, Default)]
pub(crate) struct Pages {
    /// By the place of each page's first event; every page holds at least one event, in order,
    /// all before the next page's first.
    pages: BTreeMap<Position, Vec<Event>>,
    len: usize,
}

/// Where in `page` an event at `at` (excluded: just after it) would go.
fn index_in(page: &[Event], at: Bound<Position>) -> usize {
    match at {
        Bound::Included(k) => page.partition_point(|e| e.key() < k),
        Bound::Excluded(k) => page.partition_point(|e| e.key() <= k),
        Bound::Unbounded => 0,
    }
}

/// A page of `events`, allocated once for as many as it may hold before it splits.
fn new_page(events: impl IntoIterator<Item = Event>) -> Vec<Event> {
    let mut page = Vec::with_capacity(PAGE_MAX + 1);
    page.extend(events);
    page
}

impl Pages {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The place of the newest event.
    pub fn newest(&self) -> Option<Position> {
        self.pages
            .last_key_value()
            .and_then(|(_, p)| p.last())
            .map(Event::key)
    }

    /// Adds an event (replacing one at the same place).
    pub fn insert(&mut self, ev: Event) {
        let key = ev.key();
        // The page of the last first-place at or before it; before every page, the first.
        let found = match self.pages.range_mut(..=key).next_back() {
            Some((_, page)) => Some(page),
            None => self.pages.values_mut().next(),
        };
        let Some(page) = found else {
            self.pages.insert(key, new_page([ev]));
            self.len += 1;
            return;
        };
        let i = page.partition_point(|e| e.key() < key);
        if page.get(i).is_some_and(|e| e.key() == key) {
            page[i] = ev;
            return;
        }
        self.len += 1;
        let first = page[0].key();
        let at_end = i == page.len();
        page.insert(i, ev);
        if i == 0 {
            // A new first event: the page moves to its new place.
            let page = self.pages.remove(&first).expect("the page just found");
            self.pages.insert(key, page);
            return self.split(key, false);
        }
        if page.len() > PAGE_MAX {
            self.split(first, at_end);
        }
    }

    /// Splits the page at `first` in two when it is over [`PAGE_MAX`]: in halves, or, when
    /// the event that overfilled it was its newest, leaving it full (a stream written in
    /// order fills page after page rather than leaving each half empty).
    fn split(&mut self, first: Position, at_end: bool) {
        let Some(page) = self.pages.get_mut(&first) else {
            return;
        };
        if page.len() <= PAGE_MAX {
            return;
        }
        let at = if at_end { PAGE_MAX } else { page.len() / 2 };
        let tail = new_page(page.drain(at..));
        self.pages.insert(tail[0].key(), tail);
    }

    /// The page the first event from `lo` on is in (or would be), and its index there.
    fn start(&self, lo: Bound<Position>) -> Option<(Position, usize)> {
        let page = match lo {
            Bound::Included(k) | Bound::Excluded(k) => self.pages.range(..=k).next_back(),
            Bound::Unbounded => None,
        };
        let (first, page) = page.or_else(|| self.pages.first_key_value())?;
        Some((*first, index_in(page, lo)))
    }

    /// The page the last event up to `hi` is in, and the index after it there.
    fn end(&self, hi: Bound<Position>) -> Option<(Position, usize)> {
        let (first, page) = match hi {
            Bound::Included(k) => self.pages.range(..=k).next_back(),
            Bound::Excluded(k) => self.pages.range(..k).next_back(),
            Bound::Unbounded => self.pages.last_key_value(),
        }?;
        // The index after the last event up to `hi` is where one just past it would go.
        let end = match hi {
            Bound::Included(k) => index_in(page, Bound::Excluded(k)),
            Bound::Excluded(k) => index_in(page, Bound::Included(k)),
            Bound::Unbounded => page.len(),
        };
        Some((*first, end))
    }

    /// The events from `lo` to `hi`, in order.
    pub fn range(&self, lo: Bound<Position>, hi: Bound<Position>) -> impl DoubleEndedIterator<Item = &Event> {
        let bounds = match (self.start(lo), self.end(hi)) {
            (Some(s), Some(e)) if s.0 <= e.0 => Some((s, e)),
            _ => None,
        };
        bounds
            .into_iter()
            .flat_map(move |((first, from), (last, to))| {
                self.pages.range(first..=last).map(move |(k, page)| {
                    let to = if *k == last { to } else { page.len() };
                    let from = if *k == first { from.min(to) } else { 0 };
                    &page[from..to]
                })
            })
            .flatten()
    }

    /// The events from `lo` on, in order, to change in place (not their places).
    pub fn range_mut_from(&mut self, lo: Bound<Position>) -> impl Iterator<Item = &mut Event> {
        // No start only when there are no pages: any place then gives none.
        let (first, from) = self.start(lo).unwrap_or(((i64::MAX, u64::MAX), 0));
        self.pages
            .range_mut(first..)
            .flat_map(move |(k, page)| page[if *k == first { from } else { 0 }..].iter_mut())
    }

    /// Removes the events before `at`; what they count towards storedBytes.
    pub fn drop_before(&mut self, at: Position) -> i64 {
        let mut kept = self.pages.split_off(&at);
        // The last page before `at` may hold events from it on.
        if let Some(mut last) = self.pages.last_entry() {
            let i = index_in(last.get(), Bound::Included(at));
            if i < last.get().len() {
                let tail = new_page(last.get_mut().drain(i..));
                kept.insert(tail[0].key(), tail);
            }
            if last.get().is_empty() {
                last.remove();
            }
        }
        let dropped: i64 = self.pages.values().flatten().map(Event::size).sum();
        self.len -= self.pages.values().map(Vec::len).sum::<usize>();
        self.pages = kept;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn event(ts: i64, id: u64) -> Event {
        Event::for_test(ts, id, Arc::from(format!("{ts}:{id}")))
    }

    /// Every operation against a `BTreeMap` doing the same, over events arriving out of order
    /// (pages split, first events replaced, bounds inside, between and beyond pages).
    #[test]
    fn pages_behave_as_an_ordered_map() {
        let mut pages = Pages::default();
        let mut map = BTreeMap::new();
        // A small deterministic generator: batches of rising timestamps, interleaved.
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut id = 0;
        for _ in 0..60 {
            let base = next(400) as i64;
            for j in 0..next(90) as i64 {
                id += 1;
                let e = event(base + j * (1 + next(3) as i64), id);
                map.insert(e.key(), e.key());
                pages.insert(e);
            }
        }
        // The same place again replaces.
        let again = *map.keys().nth(10).unwrap();
        pages.insert(event(again.0, again.1));
        assert_eq!(pages.len(), map.len());
        assert!(pages.pages.values().all(|p| !p.is_empty() && p.len() <= PAGE_MAX));
        assert_eq!(pages.newest(), map.keys().next_back().copied());
        let keys: Vec<Position> = map.keys().copied().collect();
        let mut probes: Vec<Position> = keys.iter().step_by(53).copied().collect();
        probes.extend([(-1, 0), (200, 0), (10_000, 0), keys[0], *keys.last().unwrap()]);
        let bounds = |k: Position| [Bound::Included(k), Bound::Excluded(k), Bound::Unbounded];
        for &a in &probes {
            for &b in probes.iter().step_by(4) {
                for lo in bounds(a) {
                    for hi in bounds(b) {
                        let empty = match (lo, hi) {
                            (
                                Bound::Included(x) | Bound::Excluded(x),
                                Bound::Included(y) | Bound::Excluded(y),
                            ) => {
                                x > y
                                    || (x == y
                                        && !(matches!(lo, Bound::Included(_))
                                            && matches!(hi, Bound::Included(_))))
                            }
                            _ => false,
                        };
                        let want: Vec<Position> = if empty {
                            Vec::new()
                        } else {
                            map.range((lo, hi)).map(|(k, _)| *k).collect()
                        };
                        let got: Vec<Position> = pages.range(lo, hi).map(Event::key).collect();
                        assert_eq!(got, want, "{lo:?}..{hi:?}");
                        let back: Vec<Position> = pages.range(lo, hi).rev().map(Event::key).collect();
                        assert_eq!(back, want.iter().rev().copied().collect::<Vec<_>>());
                    }
                }
            }
            let from: Vec<Position> = pages
                .range_mut_from(Bound::Excluded(a))
                .map(|e| e.key())
                .collect();
            let want: Vec<Position> = map
                .range((Bound::Excluded(a), Bound::Unbounded))
                .map(|(k, _)| *k)
                .collect();
            assert_eq!(from, want);
        }
        // Dropping the events before a place, inside a page and between pages.
        for at in [keys[keys.len() / 3], (keys[keys.len() / 2].0, 0), (-5, 0)] {
            let size: i64 = map.range(..at).map(|(k, _)| event(k.0, k.1).size()).sum();
            assert_eq!(pages.drop_before(at), size);
            map = map.split_off(&at);
            assert_eq!(pages.len(), map.len());
            let got: Vec<Position> = pages
                .range(Bound::Unbounded, Bound::Unbounded)
                .map(Event::key)
                .collect();
            assert_eq!(got, map.keys().copied().collect::<Vec<_>>());
            assert!(pages.pages.iter().all(|(k, p)| !p.is_empty() && p[0].key() == *k));
        }
    }
}
