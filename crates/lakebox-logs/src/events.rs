//! PutLogEvents (AWS's batch rules and rejectedLogEventsInfo), GetLogEvents (forward and
//! backward tokens) and FilterLogEvents (filter patterns across a group's streams).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lakebox_core::{RequestContext, ServiceError};

use crate::api::*;
use crate::errors::*;
use crate::groups::{existing, identified};
use crate::pattern::Pattern;
use crate::scan;
use crate::store::{DAY, Event, Group, Position, Store, Stream};
use std::ops::Bound;

/// A batch's limit: messages in UTF-8 plus 26 bytes per event.
const MAX_BATCH_BYTES: usize = 1_048_576;
const HOUR: i64 = 3_600_000;
/// A page of GetLogEvents / FilterLogEvents: at most this many events or this many bytes.
const MAX_PAGE_EVENTS: usize = 10_000;
const MAX_PAGE_BYTES: usize = 1_048_576;

/// What PutLogEvents did with a batch: the events it took (in the request's order) and
/// what it refused.
#[derive(Debug)]
pub struct Accepted<'a> {
    pub events: Vec<(i64, &'a str)>,
    pub rejected: Option<RejectedLogEventsInfo>,
}

/// Checks a batch as CloudWatch Logs does and sorts out the events it refuses: more than two
/// hours ahead, more than 14 days old, or older than the group's retention.
pub fn admit(events: &[InputLogEvent], now: i64, retained_from: i64) -> Result<Accepted<'_>, ServiceError> {
    let size: usize = events.iter().map(|e| e.message.len() + 26).sum();
    if size > MAX_BATCH_BYTES {
        return Err(invalid_parameter(format!(
            "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
        return Err(invalid_parameter(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    let too_new_from = now + 2 * HOUR;
    let too_old_before = now - 14 * DAY;
    let mut info = RejectedLogEventsInfo::default();
    let mut taken = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let i = i as i32;
        if e.timestamp > too_new_from {
            info.too_new_log_event_start_index.get_or_insert(i);
        } else if e.timestamp < too_old_before {
            info.too_old_log_event_end_index = Some(i);
        } else if e.timestamp < retained_from {
            info.expired_log_event_end_index = Some(i);
        } else {
            taken.push((e.timestamp, e.message.as_str()));
        }
    }
    if let (Some((first, _)), Some((last, _))) = (taken.first(), taken.last())
        && last - first > DAY
    {
        return Err(invalid_parameter(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
        ));
    }
    let rejected = (info != RejectedLogEventsInfo::default()).then_some(info);
    Ok(Accepted {
        events: taken,
        rejected,
    })
}

/// The group and stream a PutLogEvents names.
pub fn target(
    store: &Store,
    ctx: &RequestContext,
    group: &str,
    stream: &str,
) -> Result<(Arc<Group>, Arc<Stream>), ServiceError> {
    let g = existing(store, ctx, group)?;
    let s = g.stream(stream).ok_or_else(stream_not_found)?;
    Ok((g, s))
}

/// Forward tokens read after a position, backward tokens before it.
fn token(direction: char, (ts, id): Position) -> String {
    // 56 digits, as CloudWatch Logs' tokens have: the timestamp then the event id.
    format!("{direction}/{:020}{:036}", ts.max(0), id)
}

fn parse_token(t: &str) -> Option<(char, Position)> {
    let (dir, digits) = t.split_once('/')?;
    let dir = match dir {
        "f" => 'f',
        "b" => 'b',
        _ => return None,
    };
    if digits.len() != 56 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((dir, (digits[..20].parse().ok()?, digits[20..].parse().ok()?)))
}

fn output(e: &Event) -> OutputLogEvent {
    OutputLogEvent {
        timestamp: Some(e.timestamp),
        message: Some(e.message().to_owned()),
        ingestion_time: Some(e.ingestion),
    }
}

/// Takes events from `events` (in order) while the page has room.
fn take_page<'a>(events: impl Iterator<Item = &'a Event>, limit: usize) -> Vec<&'a Event> {
    let mut bytes = 0;
    let mut out = Vec::new();
    for e in events {
        if out.len() >= limit || (!out.is_empty() && bytes + e.size() as usize > MAX_PAGE_BYTES) {
            break;
        }
        bytes += e.size() as usize;
        out.push(e);
    }
    out
}

pub fn get(
    store: &Store,
    ctx: &RequestContext,
    input: GetLogEventsRequest,
) -> Result<GetLogEventsResponse, ServiceError> {
    let group = identified(
        store,
        ctx,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    let stream = group
        .stream(&input.log_stream_name)
        .ok_or_else(stream_not_found)?;
    let limit = input
        .limit
        .map_or(MAX_PAGE_EVENTS, |l| l as usize)
        .min(MAX_PAGE_EVENTS);
    let from = input
        .start_time
        .unwrap_or(i64::MIN)
        .max(group.retained_from(store.now()));
    let until = input.end_time.unwrap_or(i64::MAX);
    let data = stream.data.read().unwrap();
    // The events in the time range: [from, until).
    let (lo, hi) = ((from, 0), (until, 0));
    let given = match input.next_token.as_deref() {
        Some(t) => Some(parse_token(t).ok_or_else(invalid_token)?),
        None => None,
    };
    let forward = match given {
        Some((dir, _)) => dir == 'f',
        None => input.start_from_head.unwrap_or(false),
    };
    let page: Vec<&Event> = if forward {
        let start = match given {
            Some((_, pos)) if pos >= lo => Bound::Excluded(pos),
            _ => Bound::Included(lo),
        };
        take_page(data.range(start, Bound::Excluded(hi)), limit)
    } else {
        let end = match given {
            Some((_, pos)) if pos < hi => Bound::Excluded(pos),
            _ => Bound::Excluded(hi),
        };
        let mut p = take_page(data.range(Bound::Included(lo), end).rev(), limit);
        p.reverse();
        p
    };
    // At either end the token given comes back unchanged: that is how a reader knows it has
    // reached the end.
    let (next_forward, next_backward) = match (page.first(), page.last()) {
        (Some(first), Some(last)) => (token('f', last.key()), token('b', first.key())),
        _ => match (given, input.next_token) {
            (Some((_, (ts, id))), Some(t)) if forward => (t, token('b', (ts, id.saturating_add(1)))),
            (Some((_, (ts, id))), Some(t)) => (token('f', (ts, id.saturating_sub(1))), t),
            _ => (token('f', (0, 0)), token('b', (0, 0))),
        },
    };
    Ok(GetLogEventsResponse {
        events: Some(page.into_iter().map(output).collect()),
        next_forward_token: Some(next_forward),
        next_backward_token: Some(next_backward),
    })
}

/// Where a FilterLogEvents page ends: the last event's `(timestamp, id)`.
fn filter_token(pos: Position) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", pos.0, pos.1))
}

fn parse_filter_token(t: &str) -> Option<Position> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(t).ok()?).ok()?;
    let (ts, id) = text.split_once(':')?;
    Some((ts.parse().ok()?, id.parse().ok()?))
}

pub fn filter(
    store: &Store,
    ctx: &RequestContext,
    input: FilterLogEventsRequest,
) -> Result<FilterLogEventsResponse, ServiceError> {
    let group = identified(
        store,
        ctx,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
        return Err(invalid_parameter(
            "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
        ));
    }
    let pattern = match input.filter_pattern.as_deref() {
        Some(p) => Pattern::parse(p).map_err(|_| invalid_pattern())?,
        None => Pattern::parse("").expect("the empty pattern parses"),
    };
    let after = match input.next_token.as_deref() {
        Some(t) => Some(parse_filter_token(t).ok_or_else(invalid_token)?),
        None => None,
    };
    let limit = input
        .limit
        .map_or(MAX_PAGE_EVENTS, |l| l as usize)
        .min(MAX_PAGE_EVENTS);
    let from = input
        .start_time
        .unwrap_or(i64::MIN)
        .max(group.retained_from(store.now()));
    // FilterLogEvents' endTime is inclusive.
    let until = input.end_time.unwrap_or(i64::MAX);
    let streams: Vec<Arc<Stream>> = match &input.log_stream_names {
        Some(names) => names.iter().filter_map(|n| group.stream(n)).collect(),
        None => group.streams_with_prefix(input.log_stream_name_prefix.as_deref()),
    };
    let from = match after {
        Some(pos) if pos >= (from, 0) => Bound::Excluded(pos),
        _ => Bound::Included((from, 0)),
    };
    let sources: Vec<scan::Source> = streams
        .into_iter()
        .map(|stream| scan::Source { stream, from, until })
        .collect();
    // Each stream is sorted: its first `limit + 1` matches after the token are all that can
    // reach this page; the page is the first `limit` of their merge. A stream's chunks are
    // matched on every core at once, and no more of them read once it has enough.
    let mut per_stream: Vec<Vec<(Position, FilteredLogEvent)>> = sources.iter().map(|_| Vec::new()).collect();
    scan::chunks(
        &sources,
        |chunk| {
            let stream = &sources[chunk.source].stream;
            let mut hits = Vec::new();
            let mut leaves = Vec::new();
            for e in chunk.events(false, true) {
                if hits.len() > limit {
                    break;
                }
                if pattern.matches_with(e.message(), &mut leaves) {
                    hits.push((
                        e.key(),
                        FilteredLogEvent {
                            log_stream_name: Some(stream.name.clone()),
                            timestamp: Some(e.timestamp),
                            message: Some(e.message().to_owned()),
                            ingestion_time: Some(e.ingestion),
                            event_id: Some(e.event_id()),
                        },
                    ));
                }
            }
            Ok(hits)
        },
        |source, hits| {
            let found = &mut per_stream[source];
            let room = (limit + 1).saturating_sub(found.len());
            found.extend(hits.into_iter().take(room));
            Ok(if found.len() > limit {
                scan::Flow::EndSource
            } else {
                scan::Flow::Go
            })
        },
    )?;
    let mut found: Vec<(Position, FilteredLogEvent)> = per_stream.into_iter().flatten().collect();
    found.sort_by_key(|(k, _)| *k);
    let mut bytes = 0;
    let mut page = Vec::new();
    let mut more = false;
    for (pos, e) in found {
        let size = e.message.as_ref().map_or(0, |m| m.len()) + 26;
        if page.len() >= limit || (!page.is_empty() && bytes + size > MAX_PAGE_BYTES) {
            more = true;
            break;
        }
        bytes += size;
        page.push((pos, e));
    }
    let next_token = if more {
        page.last().map(|(pos, _)| filter_token(*pos))
    } else {
        None
    };
    Ok(FilterLogEventsResponse {
        events: Some(page.into_iter().map(|(_, e)| e).collect()),
        searched_log_streams: None,
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: i64) -> InputLogEvent {
        InputLogEvent {
            timestamp: ts,
            message: format!("m{ts}"),
        }
    }

    #[test]
    fn batches_are_sorted_out_as_aws_does() {
        let now = 100 * DAY;
        let batch = [
            ev(now - 20 * DAY),
            ev(now - 5 * DAY),
            ev(now - 1),
            ev(now),
            ev(now + 3 * HOUR),
        ];
        let a = admit(&batch, now, now - 7 * DAY).unwrap_err();
        assert!(a.message.contains("24 hours"), "{a:?}");
        let batch = [
            ev(now - 20 * DAY),
            ev(now - 10 * DAY),
            ev(now - 1),
            ev(now),
            ev(now + 3 * HOUR),
        ];
        let a = admit(&batch, now, now - 7 * DAY).unwrap();
        assert_eq!(a.events.len(), 2);
        let r = a.rejected.unwrap();
        assert_eq!(r.too_old_log_event_end_index, Some(0));
        assert_eq!(r.expired_log_event_end_index, Some(1));
        assert_eq!(r.too_new_log_event_start_index, Some(4));
        assert!(admit(&[ev(5), ev(4)], now, 0).is_err());
    }

    #[test]
    fn tokens_round_trip() {
        let t = token('f', (1_700_000_000_000, 42));
        assert_eq!(t.len(), 58);
        assert_eq!(parse_token(&t), Some(('f', (1_700_000_000_000, 42))));
        assert_eq!(parse_token("x/1"), None);
        assert_eq!(parse_filter_token(&filter_token((5, 6))), Some((5, 6)));
    }
}
