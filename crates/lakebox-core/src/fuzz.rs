//! Mutation fuzzing for Lakebox's parsers and decoders, small enough to run in `cargo test`.
//!
//! Each fuzz test starts from a corpus of valid inputs and a dictionary of the tokens its parser
//! knows, and feeds it thousands of mutants: bytes flipped, inserted, deleted or duplicated,
//! dictionary tokens spliced in, and a token repeated hundreds of times (the deep nesting that
//! overflows recursive parsers). A parser passes when every mutant gets an answer (an error is
//! fine) without a panic or a stack overflow. `LAKEBOX_FUZZ_ITERS` runs them at length, and
//! `LAKEBOX_FUZZ_SEED` replays a run (docs/fuzzing.md).

/// A deterministic source of mutations (xorshift64*: no dependency, same run for a seed).
pub struct Mutator {
    state: u64,
}

impl Mutator {
    /// Seeded from `LAKEBOX_FUZZ_SEED`, or `default`.
    pub fn new(default: u64) -> Mutator {
        let seed = std::env::var("LAKEBOX_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        Mutator { state: seed.max(1) }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One mutant of a corpus entry: one to eight edits.
    pub fn mutate(&mut self, corpus: &[&[u8]], dictionary: &[&[u8]]) -> Vec<u8> {
        let mut out = corpus[self.below(corpus.len())].to_vec();
        for _ in 0..=self.below(8) {
            let at = self.below(out.len() + 1);
            match self.below(7) {
                0 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] ^= 1 << self.below(8);
                }
                1 => out.insert(at, self.next() as u8),
                2 if !out.is_empty() => {
                    let end = (at + 1 + self.below(16)).min(out.len());
                    out.drain(at.min(end)..end);
                }
                3 if !out.is_empty() => {
                    let start = self.below(out.len());
                    let end = (start + 1 + self.below(32)).min(out.len());
                    let piece = out[start..end].to_vec();
                    out.splice(at..at, piece);
                }
                4 | 5 if !dictionary.is_empty() => {
                    let token = dictionary[self.below(dictionary.len())];
                    out.splice(at..at, token.iter().copied());
                }
                6 if !dictionary.is_empty() => {
                    // Deep nesting: one token hundreds or thousands of times.
                    let token = dictionary[self.below(dictionary.len())];
                    let times = 100 + self.below(5_000);
                    let deep: Vec<u8> = token.iter().copied().cycle().take(token.len() * times).collect();
                    out.splice(at..at, deep);
                }
                _ => out.push(self.next() as u8),
            }
        }
        out
    }
}

/// How many mutants a fuzz test tries: `LAKEBOX_FUZZ_ITERS`, or `default` (a few seconds in
/// a debug build).
pub fn iterations(default: usize) -> usize {
    std::env::var("LAKEBOX_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `check` on `iterations(default)` mutants and reports how many ran per second.
pub fn run(
    name: &str,
    seed: u64,
    default: usize,
    corpus: &[&[u8]],
    dictionary: &[&[u8]],
    mut check: impl FnMut(&[u8]),
) {
    let mut m = Mutator::new(seed);
    let n = iterations(default);
    let started = std::time::Instant::now();
    for _ in 0..n {
        let input = m.mutate(corpus, dictionary);
        check(&input);
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "fuzz {name}: {n} inputs in {secs:.2} s ({:.0}/s)",
        n as f64 / secs
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_are_reproducible_and_varied() {
        let corpus: &[&[u8]] = &[b"year = 2024"];
        let dict: &[&[u8]] = &[b"(", b"NOT "];
        let mut a = Mutator::new(7);
        let mut b = Mutator::new(7);
        let xs: Vec<Vec<u8>> = (0..50).map(|_| a.mutate(corpus, dict)).collect();
        let ys: Vec<Vec<u8>> = (0..50).map(|_| b.mutate(corpus, dict)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|x| x.len() > 500), "some mutants nest deep");
        assert!(xs.iter().collect::<std::collections::HashSet<_>>().len() > 40);
    }
}
