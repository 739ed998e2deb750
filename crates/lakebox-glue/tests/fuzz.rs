//! Mutation fuzzing of Glue's parsers: GetPartitions expressions and Hive column types
//! (docs/fuzzing.md). Every mutant gets an answer, never a panic or a stack overflow.

use lakebox_core::fuzz;
use lakebox_glue::expr::PartitionFilter;
use lakebox_glue::model::Column;

fn column(name: &str, type_: &str) -> Column {
    Column {
        name: name.into(),
        r#type: Some(type_.into()),
        ..Default::default()
    }
}

#[test]
fn partition_expressions() {
    let keys = [
        column("year", "int"),
        column("region", "string"),
        column("day", "date"),
    ];
    let values = ["2024".to_owned(), "eu".to_owned(), "2024-01-02".to_owned()];
    let corpus: &[&[u8]] = &[
        b"year = 2024 AND region = 'eu'",
        b"(year BETWEEN 2020 AND 2025) OR NOT region IN ('us', 'eu')",
        b"region LIKE 'e%' AND day >= '2024-01-01' AND year <> 1999",
    ];
    let tokens: &[&[u8]] = &[
        b"(",
        b")",
        b"NOT ",
        b" AND ",
        b" OR ",
        b"'",
        b"%",
        b"IN (",
        b",",
        b"BETWEEN ",
        b"LIKE '",
        b"\\",
    ];
    fuzz::run("glue partition expression", 5, 20_000, corpus, tokens, |input| {
        let text = String::from_utf8_lossy(input);
        if let Ok(filter) = PartitionFilter::parse(&text, &keys) {
            let _ = filter.matches(&values);
        }
    });
}

#[test]
fn column_types() {
    let corpus: &[&[u8]] = &[
        b"struct<a:int,b:array<map<string,decimal(10,2)>>,c:varchar(10)>",
        b"map<string,struct<x:timestamp,y:uniontype<int,string>>>",
        b"array<bigint>",
    ];
    let tokens: &[&[u8]] = &[
        b"array<",
        b"map<",
        b"struct<",
        b">",
        b",",
        b":",
        b"(",
        b")",
        b"decimal(",
        b"`",
    ];
    fuzz::run("glue column type", 6, 20_000, corpus, tokens, |input| {
        let _ = lakebox_glue::infer::types::parse(&String::from_utf8_lossy(input));
    });
}
