//! Mutation fuzzing of the Hive DDL parser (docs/fuzzing.md): every mutant is classified (DDL
//! parsed or refused, or SQL for the engine) without a panic or a stack overflow.

use lakebox_core::fuzz;

#[test]
fn ddl_statements() {
    let corpus: &[&[u8]] = &[
        b"CREATE EXTERNAL TABLE IF NOT EXISTS db.t (a int COMMENT 'x', b array<struct<c:map<string,decimal(10,2)>>>) \
          PARTITIONED BY (dt string) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' WITH SERDEPROPERTIES ('k'='v') \
          STORED AS INPUTFORMAT 'x' OUTPUTFORMAT 'y' LOCATION 's3://b/t/' TBLPROPERTIES ('has_encrypted_data'='false')",
        b"ALTER TABLE t ADD IF NOT EXISTS PARTITION (dt='2024-01-01') LOCATION 's3://b/t/dt=2024-01-01/'",
        b"MSCK REPAIR TABLE t",
        b"SHOW PARTITIONS t",
        b"DESCRIBE FORMATTED db.t",
        b"CREATE TABLE t WITH (format='PARQUET') AS SELECT 1",
    ];
    let tokens: &[&[u8]] = &[
        b"array<", b"struct<", b"map<", b">", b"(", b")", b"'", b"`", b",", b";", b"--", b"/*", b"\"",
    ];
    fuzz::run("athena ddl", 7, 20_000, corpus, tokens, |input| {
        let _ = lakebox_athena_ddl::classify(&String::from_utf8_lossy(input));
    });
}
