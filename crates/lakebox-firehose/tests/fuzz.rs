//! Mutation fuzzing of Firehose's jq (metadata extraction queries) and of the records they run
//! on (docs/fuzzing.md): every mutant gets an answer, never a panic or a stack overflow.

use lakebox_core::fuzz;
use lakebox_firehose::process::Jq;

#[test]
fn jq_queries() {
    let corpus: &[&[u8]] = &[
        b"{customer_id: .customer_id, year: (.ts | strftime(\"%Y\"))}",
        b"{a: .x[0].y, b: (.z // \"none\")}",
        b".items | map(select(.ok)) | length",
    ];
    let tokens: &[&[u8]] = &[
        b"{", b"}", b"[", b"]", b"(", b")", b"|", b".", b"\"", b"def f: ", b"reduce ", b"..", b"$",
    ];
    fuzz::run("firehose jq query", 8, 5_000, corpus, tokens, |input| {
        if let Ok(jq) = Jq::compile(&String::from_utf8_lossy(input)) {
            lakebox_core::stack::on_big_stack(|| {
                let _ = jq.run(br#"{"customer_id":1,"ts":1700000000,"x":[{"y":2}],"items":[{"ok":true}]}"#);
            });
        }
    });
}

#[test]
fn jq_records() {
    let jq = Jq::compile("{customer_id: .customer_id, nested: .a.b}").unwrap();
    let corpus: &[&[u8]] = &[
        br#"{"customer_id": 7, "a": {"b": [1, 2, {"c": null}]}}"#,
        br#"[1, "x", {"y": true}]"#,
    ];
    let tokens: &[&[u8]] = &[b"{", b"}", b"[", b"]", b"\"", b":", b",", b"\\u", b"1e999"];
    // Records are processed on a big-stack thread, as the delivery worker processes them.
    lakebox_core::stack::on_big_stack(|| {
        fuzz::run("firehose jq record", 9, 20_000, corpus, tokens, |input| {
            let _ = jq.run(input);
        })
    });
}
