//! Wildcards (`*` any run, `?` one character) and policy variables (`${aws:username}`).

use crate::Context;

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// `*`: any run of characters.
    Any,
    /// `?`: one character.
    One,
    Char(char),
}

/// A pattern's wildcards; with `ctx`, its `${key}` variables replaced by the request's values
/// (`${key, 'default'}` when absent) and `${*}`, `${?}`, `${$}` as literal characters. `None`
/// when a variable has no value and no default: the element then matches nothing, as AWS
/// documents.
pub fn compile(pattern: &str, ctx: Option<&Context>) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    loop {
        let next = match ctx {
            Some(_) => rest.find("${"),
            None => None,
        };
        let Some(start) = next else {
            out.extend(rest.chars().map(wild));
            return Some(out);
        };
        out.extend(rest[..start].chars().map(wild));
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.extend(rest[start..].chars().map(wild));
            return Some(out);
        };
        let inner = after[..end].trim();
        match inner {
            "*" | "?" | "$" => out.extend(inner.chars().map(Tok::Char)),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((k, d)) => (k.trim(), Some(d.trim().trim_matches('\'').to_owned())),
                    None => (inner, None),
                };
                let value = ctx.and_then(|c| c.get(key)).and_then(|v| v.first()).cloned();
                // A variable's value is matched literally.
                out.extend(value.or(default)?.chars().map(Tok::Char));
            }
        }
        rest = &after[end + 1..];
    }
}

fn wild(c: char) -> Tok {
    match c {
        '*' => Tok::Any,
        '?' => Tok::One,
        c => Tok::Char(c),
    }
}

/// Whether `text` matches the compiled pattern. Backtracks only to the last `*`: linear in
/// practice, never exponential.
pub fn tokens_match(p: &[Tok], text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(Tok::One) => {
                pi += 1;
                ti += 1;
            }
            Some(Tok::Char(c)) if *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            Some(Tok::Any) => {
                star = Some((pi, ti));
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| *t == Tok::Any)
}

/// `*` and `?` wildcards, no variables.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    compile(pattern, None).is_some_and(|p| tokens_match(&p, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_variables() {
        assert!(wildcard_match(
            "arn:aws:s3:::bucket/*",
            "arn:aws:s3:::bucket/a/b.txt"
        ));
        assert!(wildcard_match("s3:get*", "s3:getobject"));
        assert!(wildcard_match("a?c", "abc") && !wildcard_match("a?c", "ac"));
        assert!(!wildcard_match("arn:aws:s3:::bucket/*", "arn:aws:s3:::other/x"));
        assert!(wildcard_match("*a*a*a*a*b", &format!("{}b", "a".repeat(50))));
        assert!(!wildcard_match("*a*a*a*a*b", &"a".repeat(60)));
        let mut ctx = Context::new();
        ctx.set("aws:username", "ana*");
        let p = compile("arn:aws:s3:::home/${aws:username}/*", Some(&ctx)).unwrap();
        assert!(tokens_match(&p, "arn:aws:s3:::home/ana*/notes"));
        assert!(
            !tokens_match(&p, "arn:aws:s3:::home/anabel/notes"),
            "a variable's * is literal"
        );
        assert!(compile("home/${aws:userid}/*", Some(&ctx)).is_none());
        let p = compile("home/${aws:userid, 'nobody'}/${*}", Some(&ctx)).unwrap();
        assert!(tokens_match(&p, "home/nobody/*") && !tokens_match(&p, "home/nobody/x"));
    }
}
