//! Resource tags: the rules every AWS service applies to them, checked in one place. Each
//! service words the failure its own way (Kinesis `InvalidArgumentException`, Athena
//! `InvalidRequestException`, S3 `InvalidTag`…), so this returns what is wrong and the
//! service maps it to its error.

use std::collections::{BTreeMap, HashSet};

/// The longest tag key and value AWS accepts, in characters.
pub const MAX_KEY_CHARS: usize = 128;
pub const MAX_VALUE_CHARS: usize = 256;

/// What is wrong with a set of tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagError {
    /// More than `max` tags would be on the resource.
    TooMany { max: usize },
    /// A key with the `aws:` prefix, which AWS keeps for itself.
    Reserved(String),
    /// The same key twice in one request.
    Duplicate(String),
    /// A key that is empty or longer than [`MAX_KEY_CHARS`].
    KeyLength(String),
    /// A value longer than [`MAX_VALUE_CHARS`].
    ValueLength(String),
}

/// Checks the tags of one request: keys 1–128 characters, values at most 256, no `aws:` key,
/// no key twice.
pub fn check<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), TagError> {
    let mut seen = HashSet::new();
    for (k, v) in tags {
        let chars = k.chars().count();
        if chars == 0 || chars > MAX_KEY_CHARS {
            return Err(TagError::KeyLength(k.to_owned()));
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(TagError::ValueLength(k.to_owned()));
        }
        if k.starts_with("aws:") {
            return Err(TagError::Reserved(k.to_owned()));
        }
        if !seen.insert(k) {
            return Err(TagError::Duplicate(k.to_owned()));
        }
    }
    Ok(())
}

/// Applies a TagResource / UntagResource to a resource's tags: `add` overwrites keys it
/// names, `remove` deletes keys (absent ones are ignored, as AWS does). Refuses, leaving
/// `current` unchanged, when more than `max` tags would remain.
pub fn apply(
    current: &mut BTreeMap<String, String>,
    add: impl IntoIterator<Item = (String, String)>,
    remove: &[String],
    max: usize,
) -> Result<(), TagError> {
    let mut next = current.clone();
    next.extend(add);
    for k in remove {
        next.remove(k);
    }
    if next.len() > max {
        return Err(TagError::TooMany { max });
    }
    *current = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_each_rule() {
        assert_eq!(check([("team", "data"), ("a", "")]), Ok(()));
        assert_eq!(check([("", "x")]), Err(TagError::KeyLength(String::new())));
        let long = "k".repeat(129);
        assert_eq!(
            check([(long.as_str(), "x")]),
            Err(TagError::KeyLength(long.clone()))
        );
        let value = "v".repeat(257);
        assert_eq!(
            check([("k", value.as_str())]),
            Err(TagError::ValueLength("k".into()))
        );
        assert_eq!(check([("aws:x", "1")]), Err(TagError::Reserved("aws:x".into())));
        assert_eq!(
            check([("a", "1"), ("a", "2")]),
            Err(TagError::Duplicate("a".into()))
        );
        // Lengths count characters, not bytes.
        let wide = "é".repeat(128);
        assert_eq!(check([(wide.as_str(), "x")]), Ok(()));
    }

    #[test]
    fn apply_counts_after_the_change_and_keeps_tags_on_refusal() {
        let mut tags: BTreeMap<String, String> = (0..49).map(|i| (format!("k{i}"), "v".into())).collect();
        // Overwriting an existing key does not add one.
        apply(
            &mut tags,
            [("k0".into(), "w".into()), ("new".into(), "v".into())],
            &[],
            50,
        )
        .unwrap();
        assert_eq!(tags.len(), 50);
        assert_eq!(tags["k0"], "w");
        let before = tags.clone();
        assert_eq!(
            apply(&mut tags, [("one-more".into(), "v".into())], &[], 50),
            Err(TagError::TooMany { max: 50 })
        );
        assert_eq!(tags, before);
        apply(&mut tags, [], &["k1".into(), "absent".into()], 50).unwrap();
        assert_eq!(tags.len(), 49);
    }
}
