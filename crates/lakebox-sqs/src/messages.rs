//! The messages of one queue in memory: which are visible, delayed or in flight, and the
//! transitions receive, delete, visibility change and purge make. Every transition is also
//! written to the journal (`journal.rs`) before it is acknowledged; replaying the journal
//! rebuilds exactly this state.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::api::MessageAttributeValue;

/// A message as sent: what never changes after SendMessage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    pub message_id: String,
    pub body: String,
    pub md5_of_body: String,
    pub attributes: Vec<(String, MessageAttributeValue)>,
    pub md5_of_attributes: Option<String>,
    /// `AWSTraceHeader`, the one system attribute a sender sets.
    pub trace_header: Option<String>,
    pub md5_of_system_attributes: Option<String>,
    pub sender_id: String,
    pub sent_millis: i64,
    /// The ARN of the queue a dead-letter move took it from.
    pub dead_letter_source: Option<String>,
    /// MessageGroupId (required on FIFO queues, allowed on standard ones).
    #[serde(default)]
    pub group_id: Option<String>,
    /// MessageDeduplicationId as sent or derived from the body (FIFO).
    #[serde(default)]
    pub dedup_id: Option<String>,
    /// What deduplication compares: the id, or group and id when the queue deduplicates per
    /// message group.
    #[serde(default)]
    pub dedup_key: Option<String>,
}

impl Sent {
    /// What holding it in memory costs, roughly: its strings and a fixed share for the rest.
    pub fn weight(&self) -> usize {
        const FIXED: usize = 256;
        FIXED
            + self.body.len()
            + self.message_id.len()
            + self.sender_id.len()
            + attribute_bytes(self.attributes.iter().map(|(n, v)| (n, v)))
            + self.trace_header.as_ref().map_or(0, String::len)
            + self.dead_letter_source.as_ref().map_or(0, String::len)
            + self.group_id.as_ref().map_or(0, String::len)
            + self.dedup_id.as_ref().map_or(0, String::len)
            + self.dedup_key.as_ref().map_or(0, String::len)
    }
}

/// The size of message attributes as SQS counts it against the message size limit: names,
/// types and values.
pub fn attribute_bytes<'a>(attrs: impl Iterator<Item = (&'a String, &'a MessageAttributeValue)>) -> usize {
    attrs
        .map(|(name, v)| {
            name.len()
                + v.data_type.len()
                + v.string_value.as_ref().map_or(0, String::len)
                + v.binary_value.as_ref().map_or(0, |b| b.0.len())
        })
        .sum()
}

/// How much message content the service holds in memory, across all its queues, and the most
/// it may. A message sent past that limit is held only in the journal (its `Sent` record, at
/// its sequence) and read back when it is received, so a deep backlog costs disk, not memory.
#[derive(Debug)]
pub struct Holding {
    held: AtomicUsize,
    limit: usize,
}

impl Holding {
    pub fn new(limit: usize) -> Arc<Holding> {
        Arc::new(Holding {
            held: AtomicUsize::new(0),
            limit,
        })
    }

    /// Reserves room for `bytes`; `false` when that would pass the limit.
    fn take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held + bytes <= self.limit).then_some(held + bytes)
            })
            .is_ok()
    }

    fn give(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// One queue's share: half the whole.
    fn per_queue(&self) -> usize {
        self.limit / 2
    }

    /// Whether a queue holding `queue_held` bytes could hold `bytes` more, or a quarter of its
    /// share if that is less.
    fn has_room_for(&self, queue_held: usize, bytes: usize) -> bool {
        let bytes = bytes.min(self.per_queue() / 4);
        queue_held + bytes <= self.per_queue() && self.held.load(Ordering::Relaxed) + bytes <= self.limit
    }

    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// How long a FIFO queue remembers a deduplication id.
pub const DEDUP_WINDOW_MILLIS: i64 = 5 * 60 * 1000;

/// A message and where it stands.
#[derive(Debug, Clone)]
pub struct Message {
    /// What was sent, while it is held in memory; `None` when only the journal has it (see
    /// [`Holding`]). A received message's is let go: it is being worked on, and only a
    /// redelivery needs it again.
    pub sent: Option<Arc<Sent>>,
    pub sent_millis: i64,
    /// FIFO: the message's group, which decides what a receive may take.
    pub group_id: Option<Arc<str>>,
    /// When it is (or becomes) visible: the send plus its delay, or the end of its current
    /// visibility timeout.
    pub visible_at: i64,
    pub receive_count: u32,
    pub first_receive_millis: Option<i64>,
    /// Changes with every receive, so only the latest receipt handle acts on the message.
    pub receipt: u64,
}

/// A message sent and not yet received nor delayed: most of a backlog, kept small.
#[derive(Debug)]
struct Fresh {
    seq: u64,
    sent_millis: i64,
    sent: Option<Arc<Sent>>,
    group_id: Option<Arc<str>>,
    /// Taken out of the middle of the queue (a FIFO receive passing a held group, a replayed
    /// receive or delete): skipped, and dropped once it reaches the front.
    taken: bool,
}

/// The queue's messages, keyed by their sequence (the journal offset of their send).
///
/// Most of a queue's messages are usually waiting for their first receive, visible since they
/// were sent: those are `fresh`, in sequence order, a few dozen bytes each. A message that was
/// delayed, received or put back lives in `by_seq` with its state, placed in `ready` or
/// `waiting`. A receive takes the oldest of both.
#[derive(Debug)]
pub struct Messages {
    /// The service's budget for message content in memory.
    holding: Arc<Holding>,
    fresh: VecDeque<Fresh>,
    /// The bytes of content this queue holds, of the service's [`Holding`].
    held: usize,
    by_seq: HashMap<u64, Message>,
    /// Of `by_seq`: visible now, oldest first.
    ready: BTreeSet<u64>,
    /// Of `by_seq`: delayed or in flight, by the time they become visible.
    waiting: BTreeSet<(i64, u64)>,
    /// Messages sent below this sequence were purged: a send whose journal record landed
    /// before the purge's but reaches memory after it is dropped, as replay would drop it.
    purged_below: u64,
    /// A FIFO queue: a message group with a message in flight is held, and messages are
    /// deduplicated.
    fifo: bool,
    /// FIFO: how many messages of each group are in flight.
    groups_in_flight: HashMap<Arc<str>, u32>,
    /// FIFO: deduplication keys seen in the last five minutes → (until, message id, seq).
    dedup: HashMap<String, (i64, String, u64)>,
}

/// Counts GetQueueAttributes reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

/// What a receive took.
#[derive(Debug, Default)]
pub struct Receive {
    /// Delivered, now in flight.
    pub got: Vec<Received>,
    /// Past retention, dropped.
    pub expired: Vec<u64>,
    /// Received as often as the redrive policy allows: out of the queue, for its dead-letter
    /// queue.
    pub exhausted: Vec<(u64, Message)>,
}

/// A message handed out by a receive.
#[derive(Debug, Clone)]
pub struct Received {
    pub seq: u64,
    pub message: Message,
}

/// The next message a receive considers: the oldest of the fresh ones and the ready ones
/// from where it has got to.
enum Next {
    Fresh(usize),
    Ready(u64),
}

/// How far ahead of a queue's front a receive looks for messages whose content is not held,
/// to have it read back before receives reach them.
const LOOK_AHEAD: usize = 1024;

impl Messages {
    pub fn new(fifo: bool, holding: Arc<Holding>) -> Self {
        Messages {
            holding,
            fresh: VecDeque::new(),
            held: 0,
            by_seq: HashMap::new(),
            ready: BTreeSet::new(),
            waiting: BTreeSet::new(),
            purged_below: 0,
            fifo,
            groups_in_flight: HashMap::new(),
            dedup: HashMap::new(),
        }
    }

    /// Reserves room to hold content of `bytes`: within the service's budget, and within
    /// this queue's share of it, so one queue's deep backlog cannot keep every other queue's
    /// messages on disk.
    fn reserve(&mut self, bytes: usize) -> bool {
        if self.held + bytes > self.holding.per_queue() || !self.holding.take(bytes) {
            return false;
        }
        self.held += bytes;
        true
    }

    fn give_back(&mut self, sent: &Option<Arc<Sent>>) {
        if let Some(s) = sent {
            let bytes = s.weight();
            self.held -= bytes;
            self.holding.give(bytes);
        }
    }

    /// Where fresh message `seq` is, if it is fresh and not taken.
    fn fresh_index(&self, seq: u64) -> Option<usize> {
        let i = self.fresh.binary_search_by_key(&seq, |f| f.seq).ok()?;
        (!self.fresh[i].taken).then_some(i)
    }

    /// Takes fresh message `i` out; its content stays held (the caller decides).
    fn take_fresh(&mut self, i: usize) -> Message {
        let f = &mut self.fresh[i];
        f.taken = true;
        Message {
            sent: f.sent.take(),
            sent_millis: f.sent_millis,
            group_id: f.group_id.take(),
            // Visible since it was sent.
            visible_at: f.sent_millis,
            receive_count: 0,
            first_receive_millis: None,
            receipt: 0,
        }
    }

    /// Drops taken messages from the front of `fresh`.
    fn trim_fresh(&mut self) {
        while self.fresh.front().is_some_and(|f| f.taken) {
            self.fresh.pop_front();
        }
        if self.fresh.capacity() > 1024 && self.fresh.len() * 4 < self.fresh.capacity() {
            self.fresh.shrink_to(self.fresh.len() * 2);
        }
    }

    /// Moves message `seq` out of `fresh`, or out of its place in `ready`/`waiting`, to change
    /// its state; the caller places it again. (Taken fresh messages stay in place, so indexes
    /// into `fresh` hold, until [`Self::trim_fresh`].)
    fn unfresh(&mut self, seq: u64) -> Option<Message> {
        if let Some(m) = self.by_seq.remove(&seq) {
            self.unplace(seq, &m);
            return Some(m);
        }
        let i = self.fresh_index(seq)?;
        Some(self.take_fresh(i))
    }

    /// Takes message `seq` out wherever it is, giving back the room its content held.
    fn remove(&mut self, seq: u64) -> Option<Message> {
        let m = self.unfresh(seq)?;
        self.give_back(&m.sent);
        // A drained backlog gives its memory back.
        if self.by_seq.capacity() > 1024 && self.by_seq.len() * 4 < self.by_seq.capacity() {
            self.by_seq.shrink_to(self.by_seq.len() * 2);
        }
        Some(m)
    }

    /// Lets go of a message's content (it stays in the journal).
    fn let_go(&mut self, m: &mut Message) {
        let sent = m.sent.take();
        self.give_back(&sent);
    }

    /// Holds again the content of a message not yet received, read back from the journal;
    /// `false` once there is no room for it.
    pub fn hold(&mut self, seq: u64, sent: Arc<Sent>) -> bool {
        if !self.content_slot(seq).is_some_and(|slot| slot.is_none()) {
            return true;
        }
        if !self.reserve(sent.weight()) {
            return false;
        }
        if let Some(slot) = self.content_slot(seq) {
            *slot = Some(sent);
        }
        true
    }

    /// Where the content of message `seq`, not yet received, is held.
    fn content_slot(&mut self, seq: u64) -> Option<&mut Option<Arc<Sent>>> {
        if let Some(i) = self.fresh_index(seq) {
            return Some(&mut self.fresh[i].sent);
        }
        self.by_seq
            .get_mut(&seq)
            .filter(|m| m.receive_count == 0)
            .map(|m| &mut m.sent)
    }

    /// The first of the next [`LOOK_AHEAD`] fresh messages whose content is not held, when the
    /// furthest of them is not: time to read ahead from there.
    pub fn unheld_ahead(&self) -> Option<u64> {
        if !self.holding.has_room_for(self.held, crate::bodies::RUN_BYTES) {
            return None;
        }
        let last = self.fresh.len().checked_sub(1)?;
        let far = &self.fresh[LOOK_AHEAD.min(last)];
        if far.sent.is_some() || far.taken {
            return None;
        }
        self.fresh
            .iter()
            .find(|f| !f.taken && f.sent.is_none())
            .map(|f| f.seq)
    }

    /// Whether the content of message `seq` is held in memory.
    #[cfg(test)]
    pub fn is_held(&self, seq: u64) -> bool {
        match self.fresh_index(seq) {
            Some(i) => self.fresh[i].sent.is_some(),
            None => self.by_seq.get(&seq).is_some_and(|m| m.sent.is_some()),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_seq.len() + self.fresh.iter().filter(|f| !f.taken).count()
    }

    /// The oldest sequence the journal must keep: the oldest message's, or the `Sent` record
    /// of a FIFO deduplication id still remembered (its message may be gone), so a restart
    /// within the five minutes still refuses the id.
    pub fn min_seq(&self) -> Option<u64> {
        let fresh = self.fresh.iter().find(|f| !f.taken).map(|f| f.seq);
        let live = self.by_seq.keys().min().copied();
        let remembered = self.dedup.values().map(|(_, _, seq)| *seq).min();
        fresh.into_iter().chain(live).chain(remembered).min()
    }

    /// Adds a message sent (or replayed) at `seq`, visible at `visible_at`, at `now` (a
    /// replay's: when its record was written).
    pub fn insert(&mut self, seq: u64, sent: Arc<Sent>, visible_at: i64, now: i64) {
        if let Some(key) = &sent.dedup_key {
            let until = sent.sent_millis + DEDUP_WINDOW_MILLIS;
            self.dedup
                .insert(key.clone(), (until, sent.message_id.clone(), seq));
        }
        if seq < self.purged_below {
            return;
        }
        let held = self.reserve(sent.weight());
        let (sent_millis, group_id) = (sent.sent_millis, sent.group_id.as_deref().map(Arc::from));
        let sent = held.then_some(sent);
        // Concurrent sends may reach here out of their journal order: a later one than the
        // newest fresh message is fresh; an earlier one waits in `by_seq`, which receives merge
        // with `fresh` by sequence.
        if visible_at <= now && self.fresh.back().is_none_or(|f| f.seq < seq) {
            self.fresh.push_back(Fresh {
                seq,
                sent_millis,
                sent,
                group_id,
                taken: false,
            });
            return;
        }
        let m = Message {
            sent,
            sent_millis,
            group_id,
            visible_at,
            receive_count: 0,
            first_receive_millis: None,
            receipt: 0,
        };
        // Waiting until its time; the next receive promotes it when that has come.
        self.waiting.insert((visible_at, seq));
        self.by_seq.insert(seq, m);
    }

    fn unplace(&mut self, seq: u64, m: &Message) {
        if !self.ready.remove(&seq) && self.waiting.remove(&(m.visible_at, seq)) && m.receive_count > 0 {
            self.group_lands(m);
        }
    }

    /// A FIFO message goes in flight: its group is held.
    fn group_flies(&mut self, m: &Message) {
        if let (true, Some(g)) = (self.fifo, &m.group_id) {
            *self.groups_in_flight.entry(g.clone()).or_default() += 1;
        }
    }

    /// A FIFO message is no longer in flight (visible again, or deleted).
    fn group_lands(&mut self, m: &Message) {
        if let (true, Some(g)) = (self.fifo, &m.group_id)
            && let Some(n) = self.groups_in_flight.get_mut(g)
        {
            *n -= 1;
            if *n == 0 {
                self.groups_in_flight.remove(g);
            }
        }
    }

    /// Moves every message whose time has come into the ready set.
    fn promote(&mut self, now: i64) {
        while let Some(&(at, seq)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            self.ready.insert(seq);
            if let Some(m) = self.by_seq.get(&seq).filter(|m| m.receive_count > 0).cloned() {
                self.group_lands(&m);
            }
        }
    }

    /// The oldest visible message from `fresh[fi..]` and `ready[from..]`.
    fn next(&self, fi: &mut usize, from: u64) -> Option<Next> {
        while self.fresh.get(*fi).is_some_and(|f| f.taken) {
            *fi += 1;
        }
        let fresh = self.fresh.get(*fi).map(|f| f.seq);
        let ready = self.ready.range(from..).next().copied();
        match (fresh, ready) {
            (Some(f), Some(r)) if r < f => Some(Next::Ready(r)),
            (Some(_), _) => Some(Next::Fresh(*fi)),
            (None, Some(r)) => Some(Next::Ready(r)),
            (None, None) => None,
        }
    }

    /// A FIFO send's earlier twin: the message id and sequence of a message sent with the
    /// same deduplication key in the last five minutes.
    pub fn duplicate_of(&self, key: &str, now: i64) -> Option<(String, u64)> {
        self.dedup
            .get(key)
            .filter(|(until, _, _)| *until > now)
            .map(|(_, id, seq)| (id.clone(), *seq))
    }

    /// When the next waiting message becomes visible.
    pub fn next_visible_at(&self) -> Option<i64> {
        self.waiting.first().map(|(at, _)| *at)
    }

    /// Takes up to `max` visible messages, oldest first, making each invisible until
    /// `now + visibility_millis` with a new receipt. Messages past `expire_before` (their
    /// retention) are dropped instead, and with a redrive policy a message already received
    /// `redrive_after` times is taken out for the dead-letter queue instead of delivered.
    pub fn receive(
        &mut self,
        now: i64,
        max: usize,
        visibility_millis: i64,
        expire_before: i64,
        redrive_after: Option<u32>,
        mut next_receipt: impl FnMut() -> u64,
    ) -> Receive {
        self.promote(now);
        // FIFO: a group with a message in flight is held; within one receive a group's
        // messages come in order, several at a time.
        let held: HashSet<Arc<str>> = self.groups_in_flight.keys().cloned().collect();
        let mut out = Receive::default();
        let (mut fi, mut cursor) = (0usize, 0u64);
        while out.got.len() < max {
            let Some(next) = self.next(&mut fi, cursor) else {
                break;
            };
            let (seq, sent_millis, group, count) = match next {
                Next::Fresh(i) => {
                    let f = &self.fresh[i];
                    (f.seq, f.sent_millis, f.group_id.as_ref(), 0)
                }
                Next::Ready(seq) => match self.by_seq.get(&seq) {
                    Some(m) => (seq, m.sent_millis, m.group_id.as_ref(), m.receive_count),
                    None => {
                        self.ready.remove(&seq);
                        continue;
                    }
                },
            };
            let skip = self.fifo && group.is_some_and(|g| held.contains(g));
            match next {
                Next::Fresh(_) => fi += 1,
                Next::Ready(_) => cursor = seq + 1,
            }
            if sent_millis < expire_before {
                self.remove(seq);
                out.expired.push(seq);
                continue;
            }
            if skip {
                continue;
            }
            if redrive_after.is_some_and(|limit| count >= limit) {
                let m = self.remove(seq).expect("present");
                out.exhausted.push((seq, m));
                continue;
            }
            let mut m = self.unfresh(seq).expect("present");
            m.visible_at = now + visibility_millis;
            m.receive_count += 1;
            m.first_receive_millis.get_or_insert(now);
            m.receipt = next_receipt();
            let handed = m.clone();
            // Being worked on: only a redelivery needs the content again.
            self.let_go(&mut m);
            self.waiting.insert((m.visible_at, seq));
            self.group_flies(&m);
            self.by_seq.insert(seq, m);
            out.got.push(Received { seq, message: handed });
        }
        self.trim_fresh();
        out
    }

    /// Takes up to `max` visible messages out of the queue, oldest first (a message move
    /// task), dropping those past `expire_before`.
    pub fn take_visible(&mut self, now: i64, max: usize, expire_before: i64) -> Vec<(u64, Message)> {
        self.promote(now);
        let mut out = Vec::new();
        let mut fi = 0usize;
        while out.len() < max {
            let Some(next) = self.next(&mut fi, 0) else {
                break;
            };
            let seq = match next {
                Next::Fresh(i) => self.fresh[i].seq,
                Next::Ready(seq) => seq,
            };
            // Taken out either way: the taken are skipped from here on.
            let Some(m) = self.remove(seq) else {
                self.ready.remove(&seq);
                continue;
            };
            if m.sent_millis >= expire_before {
                out.push((seq, m));
            }
        }
        self.trim_fresh();
        out
    }

    /// Puts back messages a move could not deliver.
    pub fn restore(&mut self, taken: Vec<(u64, Message)>) {
        for (seq, mut m) in taken {
            if m.sent.as_ref().is_some_and(|s| !self.reserve(s.weight())) {
                m.sent = None;
            }
            self.waiting.insert((m.visible_at, seq));
            self.by_seq.insert(seq, m);
        }
    }

    /// Replays (or applies) a receive.
    pub fn apply_receive(&mut self, seq: u64, visible_at: i64, count: u32, first: i64, receipt: u64) {
        let Some(mut m) = self.unfresh(seq) else {
            return;
        };
        self.let_go(&mut m);
        m.visible_at = visible_at;
        m.receive_count = count;
        m.first_receive_millis = Some(first);
        m.receipt = receipt;
        self.waiting.insert((visible_at, seq));
        self.group_flies(&m);
        self.by_seq.insert(seq, m);
        self.trim_fresh();
    }

    pub fn get(&self, seq: u64) -> Option<&Message> {
        self.by_seq.get(&seq)
    }

    /// Whether `receipt` is the latest receipt of message `seq`.
    pub fn holds(&self, seq: u64, receipt: u64) -> bool {
        self.by_seq
            .get(&seq)
            .is_some_and(|m| m.receipt == receipt && m.receive_count > 0)
    }

    /// Sets when message `seq` becomes visible again; `false` when it is not in flight (not
    /// received with `receipt`, or visible already).
    pub fn change_visibility(&mut self, seq: u64, receipt: u64, now: i64, visible_at: i64) -> bool {
        match self.by_seq.get(&seq) {
            Some(m) if m.receipt == receipt && m.receive_count > 0 && m.visible_at > now => {}
            _ => return false,
        }
        self.set_visible_at(seq, visible_at);
        true
    }

    /// Replays (or applies) a visibility change.
    pub fn set_visible_at(&mut self, seq: u64, visible_at: i64) {
        let Some(mut m) = self.unfresh(seq) else {
            return;
        };
        m.visible_at = visible_at;
        self.waiting.insert((visible_at, seq));
        // Still (or again) waiting: a received FIFO message keeps its group held until this
        // time comes.
        if m.receive_count > 0 {
            self.group_flies(&m);
        }
        self.by_seq.insert(seq, m);
        self.trim_fresh();
    }

    /// Deletes message `seq`; `false` if it was not there.
    pub fn delete(&mut self, seq: u64) -> bool {
        let found = self.remove(seq).is_some();
        self.trim_fresh();
        found
    }

    /// Deletes every message sent before `below` (PurgeQueue).
    pub fn purge(&mut self, below: u64) {
        self.purged_below = self.purged_below.max(below);
        let doomed: Vec<u64> = self
            .by_seq
            .keys()
            .copied()
            .chain(self.fresh.iter().filter(|f| !f.taken).map(|f| f.seq))
            .filter(|s| *s < below)
            .collect();
        for seq in doomed {
            self.delete(seq);
        }
    }

    /// Drops messages sent before `expire_before` (retention); returns how many.
    pub fn expire(&mut self, expire_before: i64, now: i64) -> usize {
        self.dedup.retain(|_, (until, _, _)| *until > now);
        let doomed: Vec<u64> = self
            .by_seq
            .iter()
            .map(|(s, m)| (*s, m.sent_millis))
            .chain(
                self.fresh
                    .iter()
                    .filter(|f| !f.taken)
                    .map(|f| (f.seq, f.sent_millis)),
            )
            .filter(|(_, t)| *t < expire_before)
            .map(|(s, _)| s)
            .collect();
        for seq in &doomed {
            self.delete(*seq);
        }
        doomed.len()
    }

    /// When the oldest message still kept was sent (ApproximateAgeOfOldestMessage).
    pub fn oldest_sent_millis(&self, expire_before: i64) -> Option<i64> {
        self.by_seq
            .values()
            .map(|m| m.sent_millis)
            .chain(self.fresh.iter().filter(|f| !f.taken).map(|f| f.sent_millis))
            .filter(|t| *t >= expire_before)
            .min()
    }

    /// The counts at `now`, leaving out messages sent before `expire_before` (past their
    /// retention, gone at the next receive or sweep).
    pub fn counts(&self, now: i64, expire_before: i64) -> Counts {
        let mut c = Counts {
            visible: self
                .fresh
                .iter()
                .filter(|f| !f.taken && f.sent_millis >= expire_before)
                .count() as u64,
            ..Counts::default()
        };
        for m in self.by_seq.values().filter(|m| m.sent_millis >= expire_before) {
            if m.visible_at <= now {
                c.visible += 1;
            } else if m.receive_count == 0 {
                c.delayed += 1;
            } else {
                c.in_flight += 1;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(id: &str, at: i64) -> Arc<Sent> {
        message(id, at, None)
    }

    /// A message sent at `at`, in a FIFO group (its id doubling as the deduplication id) or not.
    pub(super) fn message(id: &str, at: i64, group: Option<&str>) -> Arc<Sent> {
        Arc::new(Sent {
            message_id: id.into(),
            body: "b".into(),
            md5_of_body: String::new(),
            attributes: Vec::new(),
            md5_of_attributes: None,
            trace_header: None,
            md5_of_system_attributes: None,
            sender_id: "a".into(),
            sent_millis: at,
            dead_letter_source: None,
            group_id: group.map(str::to_owned),
            dedup_id: group.map(|_| id.to_owned()),
            dedup_key: group.map(|_| id.to_owned()),
        })
    }

    #[test]
    fn visibility_delay_receive_and_delete() {
        let mut q = Messages::new(false, Holding::new(usize::MAX));
        q.insert(1, sent("a", 0), 0, 0);
        q.insert(2, sent("b", 0), 5_000, 0); // delayed 5 s
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        let got = q.receive(1_000, 10, 30_000, i64::MIN, None, &mut next).got;
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
        assert_eq!(
            q.counts(1_000, i64::MIN),
            Counts {
                visible: 0,
                in_flight: 1,
                delayed: 1
            }
        );
        // In flight: nothing more until the delay ends; then the delayed one.
        assert!(
            q.receive(2_000, 10, 30_000, i64::MIN, None, &mut next)
                .got
                .is_empty()
        );
        let got = q.receive(5_000, 10, 30_000, i64::MIN, None, &mut next).got;
        assert_eq!(got[0].seq, 2);
        // The first reappears at its timeout, with a new receipt; the old one no longer holds.
        let got = q.receive(31_000, 10, 30_000, i64::MIN, None, &mut next).got;
        assert_eq!((got[0].seq, got[0].message.receive_count), (1, 2));
        assert!(!q.holds(1, 1) && q.holds(1, got[0].message.receipt));
        assert!(q.change_visibility(1, got[0].message.receipt, 31_000, 31_000 + 1));
        assert!(q.delete(1) && !q.delete(1));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn content_past_the_holding_limit_stays_in_the_journal() {
        // Room for four messages' content; a queue may hold half of it.
        let holding = Holding::new(4 * sent("a", 0).weight());
        let mut q = Messages::new(false, holding.clone());
        for seq in 1..=3 {
            q.insert(seq, sent("a", 0), 0, 0);
        }
        let held = |q: &Messages| (1..=3).map(|s| q.is_held(s)).collect::<Vec<_>>();
        assert_eq!(held(&q), [true, true, false]);
        assert!(!holding.has_room_for(q.held, 1));
        // Its backlog does not keep another queue's messages out of memory.
        let mut other = Messages::new(false, holding.clone());
        other.insert(4, sent("b", 0), 0, 0);
        assert!(other.is_held(4) && other.delete(4));
        // A receive hands out what it holds and lets go of it: it is being worked on.
        let got = q.receive(0, 2, 30_000, i64::MIN, None, || 5).got;
        assert!(got.iter().all(|r| r.message.sent.is_some()));
        assert_eq!(held(&q), [false, false, false]);
        assert_eq!(holding.held(), 0);
        // Content read back from the journal is held again while there is room, but only for
        // messages not yet received.
        assert!(q.hold(3, sent("a", 0)));
        assert!(q.hold(1, sent("a", 0)));
        assert_eq!(held(&q), [false, false, true]);
        assert!(q.delete(3));
        assert_eq!(holding.held(), 0);
    }

    #[test]
    fn fresh_and_returned_messages_come_oldest_first() {
        let mut q = Messages::new(false, Holding::new(usize::MAX));
        let seqs = |r: &Receive| r.got.iter().map(|r| r.seq).collect::<Vec<_>>();
        for seq in [1, 2, 5] {
            q.insert(seq, sent("a", 0), 0, 0);
        }
        // A send that reached memory after a later one.
        q.insert(4, sent("a", 0), 0, 0);
        let r = q.receive(0, 2, 1_000, i64::MIN, None, || 9);
        assert_eq!(seqs(&r), [1, 2]);
        // 1 and 2 come back at their timeout, before the fresh 5 and the late 4 both.
        let r = q.receive(1_000, 10, 1_000, i64::MIN, None, || 9);
        assert_eq!(seqs(&r), [1, 2, 4, 5]);
        // Replayed records about fresh messages: a receive, a delete, a purge.
        for seq in [6, 7, 8, 9] {
            q.insert(seq, sent("a", 0), 0, 0);
        }
        q.apply_receive(7, 50_000, 1, 0, 3);
        assert!(q.holds(7, 3));
        assert!(q.delete(8) && !q.delete(8));
        assert_eq!(
            q.counts(1_000, i64::MIN),
            Counts {
                visible: 2,
                in_flight: 5,
                delayed: 0
            }
        );
        assert_eq!(q.min_seq(), Some(1));
        q.purge(7);
        assert_eq!(q.len(), 2);
        assert_eq!(seqs(&q.receive(60_000, 10, 1_000, i64::MIN, None, || 9)), [7, 9]);
    }

    #[test]
    fn retention_drops_old_messages_on_receive() {
        let mut q = Messages::new(false, Holding::new(usize::MAX));
        q.insert(1, sent("old", 0), 0, 0);
        q.insert(2, sent("new", 100), 100, 100);
        let r = q.receive(200, 10, 1, 50, None, || 7);
        assert_eq!(r.expired, [1]);
        assert_eq!(r.got[0].seq, 2);
        // Received once already, with a redrive after one receive: out, for the DLQ.
        let r = q.receive(300, 10, 1, 50, Some(1), || 8);
        assert_eq!(r.exhausted.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2]);
        assert!(r.got.is_empty());
    }
}

#[cfg(test)]
mod fifo_tests {
    use super::*;

    fn grouped(group: &str, dedup: &str) -> Arc<Sent> {
        super::tests::message(dedup, 0, Some(group))
    }

    #[test]
    fn a_group_is_held_while_a_message_of_it_is_in_flight() {
        let mut q = Messages::new(true, Holding::new(usize::MAX));
        q.insert(1, grouped("a", "1"), 0, 0);
        q.insert(2, grouped("a", "2"), 0, 0);
        q.insert(3, grouped("b", "3"), 0, 0);
        let ids = |r: &[Received]| r.iter().map(|r| r.seq).collect::<Vec<_>>();
        // One message: the oldest. Group a is then held; b is not.
        let got = q.receive(0, 1, 30_000, i64::MIN, None, || 9).got;
        assert_eq!(ids(&got), [1]);
        let got = q.receive(0, 10, 30_000, i64::MIN, None, || 9).got;
        assert_eq!(ids(&got), [3]);
        // Deleting a's message releases the group, in order.
        assert!(q.delete(1));
        let got = q.receive(0, 10, 30_000, i64::MIN, None, || 9).got;
        assert_eq!(ids(&got), [2]);
        // A timed-out message comes back before anything later in its group.
        q.insert(4, grouped("a", "4"), 0, 0);
        let got = q.receive(31_000, 10, 30_000, i64::MIN, None, || 9).got;
        assert_eq!(ids(&got), [2, 3, 4]);
        assert_eq!(q.duplicate_of("3", 1), Some(("3".into(), 3)));
        // A visibility change keeps the group held until the new time.
        q.set_visible_at(2, 40_000);
        q.set_visible_at(4, 40_000);
        assert_eq!(
            ids(&q.receive(31_000, 10, 30_000, i64::MIN, None, || 9).got),
            Vec::<u64>::new()
        );
        assert_eq!(
            ids(&q.receive(40_000, 10, 30_000, i64::MIN, None, || 9).got),
            [2, 4]
        );
        assert_eq!(q.duplicate_of("3", DEDUP_WINDOW_MILLIS), None);
    }
}
