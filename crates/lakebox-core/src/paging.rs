//! `NextToken` pagination over listings in a stable order: the token names the last item
//! returned, so a page boundary survives inserts and deletes elsewhere in the list. Services
//! turn [`InvalidToken`] into their own error code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A `NextToken` that no page produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidToken;

/// The token that names `key` as the last item returned.
pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The key a token names.
pub fn decode(token: &str) -> Result<String, InvalidToken> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(InvalidToken)
}

/// The page after `token` of `items` (sorted by `key`), at most `max` long, and the token of
/// the next page if there is one.
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), InvalidToken> {
    let after = match token.filter(|t| !t.is_empty()) {
        Some(t) => Some(decode(t)?),
        None => None,
    };
    let max = max.max(1);
    let mut out: Vec<T> = items
        .into_iter()
        .filter(|i| after.as_ref().is_none_or(|a| key(i) > *a))
        .take(max + 1)
        .collect();
    let next = if out.len() > max {
        out.truncate(max);
        out.last().map(|l| encode(&key(l)))
    } else {
        None
    };
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_whole_list_once() {
        let items: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (p, next) = page(items.clone(), |s| s.clone(), token.as_deref(), 3).unwrap();
            seen.extend(p);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(page(items, |s| s.clone(), Some("!!"), 3).is_err());
    }
}
