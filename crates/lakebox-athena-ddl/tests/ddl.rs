//! DDL statements against a real Glue catalog and Lakebox S3 in a temporary directory.

use std::sync::Arc;

use bytes::Bytes;
use lakebox_athena_ddl::{DdlOutput, execute, parse};
use lakebox_core::SystemClock;
use lakebox_glue::{Catalog, Scope};
use lakebox_s3::lake::{Lake, PutOptions};
use lakebox_s3::{ObjectStore, S3Settings};

struct Env {
    _dir: tempfile::TempDir,
    catalog: Catalog,
    lake: Lake,
    scope: Scope,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(&dir.path().join("glue.redb"), Arc::new(SystemClock)).unwrap();
    let store = ObjectStore::open(
        &dir.path().join("s3"),
        Arc::new(SystemClock),
        S3Settings::default(),
    )
    .unwrap();
    let lake = lakebox_s3::lake::lake(Arc::new(store));
    lake.ensure_bucket("lake", "us-east-1", "000000000000")
        .await
        .unwrap();
    Env {
        _dir: dir,
        catalog,
        lake,
        scope: Scope::new("000000000000", "us-east-1"),
    }
}

impl Env {
    async fn run(&self, sql: &str) -> Result<DdlOutput, String> {
        let stmt = parse(sql).expect("DDL").map_err(|e| e.to_string())?;
        execute(&self.catalog, &self.lake, &self.scope, "default", stmt)
            .await
            .map_err(|e| e.message)
    }

    async fn ok(&self, sql: &str) -> Vec<String> {
        self.run(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).lines
    }
}

#[tokio::test]
async fn tables_round_trip_through_show_create_table() {
    let e = env().await;
    e.ok("CREATE DATABASE sales COMMENT 'orders' WITH DBPROPERTIES ('team' = 'data')")
        .await;
    assert!(
        e.run("CREATE DATABASE sales")
            .await
            .unwrap_err()
            .contains("already exists")
    );
    e.ok("CREATE SCHEMA IF NOT EXISTS sales").await;
    e.ok(
        r"CREATE EXTERNAL TABLE sales.orders (id bigint COMMENT 'key', item string, tags array<string>)
          PARTITIONED BY (dt string)
          ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' ESCAPED BY '\\'
          LOCATION 's3://lake/orders/'
          TBLPROPERTIES ('skip.header.line.count'='1')",
    )
    .await;
    let t = e.catalog.get_table(&e.scope, "sales", "orders").unwrap();
    let sd = t.storage_descriptor.clone().unwrap();
    assert_eq!(sd.serde_parameter("field.delim"), Some(","));
    assert_eq!(sd.serde_parameter("escape.delim"), Some("\\"));
    assert_eq!(
        sd.input_format.as_deref(),
        Some("org.apache.hadoop.mapred.TextInputFormat")
    );
    assert_eq!(t.table_type.as_deref(), Some("EXTERNAL_TABLE"));
    assert_eq!(t.parameter("EXTERNAL"), Some("TRUE"));
    assert_eq!(t.parameter("skip.header.line.count"), Some("1"));

    let ddl = e.ok("SHOW CREATE TABLE sales.orders").await.join("\n");
    assert!(
        ddl.starts_with("CREATE EXTERNAL TABLE `sales`.`orders`("),
        "{ddl}"
    );
    // What SHOW CREATE TABLE prints creates the same table again.
    e.ok("DROP TABLE sales.orders").await;
    e.ok(&ddl).await;
    let again = e.catalog.get_table(&e.scope, "sales", "orders").unwrap();
    assert_eq!(again.storage_descriptor, t.storage_descriptor);
    assert_eq!(again.partition_keys, t.partition_keys);

    assert_eq!(e.ok("SHOW TABLES IN sales").await, ["orders"]);
    assert_eq!(e.ok("SHOW TABLES IN sales 'x*|ord*'").await, ["orders"]);
    assert!(e.ok("SHOW TABLES IN sales 'x*'").await.is_empty());
    assert_eq!(
        e.ok("SHOW COLUMNS IN sales.orders").await,
        ["id", "item", "tags", "dt"]
    );
    let desc = e.ok("DESCRIBE sales.orders").await;
    assert!(
        desc[0].starts_with("id                  \tbigint              \tkey"),
        "{desc:?}"
    );
    assert!(desc.iter().any(|l| l.starts_with("# Partition Information")));
    // As Hive prints it: the partition key among the columns, and again under its heading.
    assert_eq!(
        desc.iter().filter(|l| l.starts_with("dt ")).count(),
        2,
        "{desc:?}"
    );
    assert!(e.ok("SHOW DATABASES").await.contains(&"sales".to_string()));
    assert!(
        e.run("DROP DATABASE sales")
            .await
            .unwrap_err()
            .contains("is not empty")
    );
    e.ok("DROP DATABASE sales CASCADE").await;
    assert!(
        e.run("SHOW TABLES IN sales")
            .await
            .unwrap_err()
            .contains("Database does not exist: sales")
    );
}

#[tokio::test]
async fn partitions_by_hand_and_by_msck_repair() {
    let e = env().await;
    e.ok("CREATE DATABASE logs").await;
    e.ok("CREATE EXTERNAL TABLE logs.hits (path string) PARTITIONED BY (dt string, hour int) STORED AS PARQUET LOCATION 's3://lake/hits'")
        .await;
    for key in [
        "hits/dt=2024-01-01/hour=1/a.parquet",
        "hits/dt=2024-01-01/hour=2/b.parquet",
        "hits/dt=2024-01-02/hour=1/c.parquet",
        "hits/not-a-partition/d.parquet",
        "hits/dt=2024-01-03/e.parquet",
    ] {
        e.lake
            .put("lake", key, Bytes::from_static(b"x"), PutOptions::default())
            .await
            .unwrap();
    }
    e.ok("ALTER TABLE logs.hits ADD PARTITION (dt='2024-01-01', hour=1)")
        .await;
    assert!(
        e.run("ALTER TABLE logs.hits ADD PARTITION (hour=1, dt='2024-01-01')")
            .await
            .unwrap_err()
            .contains("already exists")
    );
    e.ok("ALTER TABLE logs.hits ADD IF NOT EXISTS PARTITION (hour=1, dt='2024-01-01')")
        .await;
    let out = e.ok("MSCK REPAIR TABLE logs.hits").await;
    assert_eq!(
        out[0],
        "Partitions not in metastore:\thits:dt=2024-01-01/hour=2\thits:dt=2024-01-02/hour=1"
    );
    assert_eq!(
        e.ok("SHOW PARTITIONS logs.hits").await,
        [
            "dt=2024-01-01/hour=1",
            "dt=2024-01-01/hour=2",
            "dt=2024-01-02/hour=1"
        ]
    );
    let p = e
        .catalog
        .get_partition(&e.scope, "logs", "hits", &["2024-01-01".into(), "2".into()])
        .unwrap();
    assert_eq!(p.location(), Some("s3://lake/hits/dt=2024-01-01/hour=2/"));
    assert!(e.ok("MSCK REPAIR TABLE logs.hits").await.is_empty());

    e.ok("ALTER TABLE logs.hits ADD PARTITION (dt='2030-01-01', hour=0) LOCATION 's3://lake/elsewhere/'")
        .await;
    let p = e
        .catalog
        .get_partition(&e.scope, "logs", "hits", &["2030-01-01".into(), "0".into()])
        .unwrap();
    assert_eq!(p.location(), Some("s3://lake/elsewhere/"));
    e.ok(
        "ALTER TABLE logs.hits DROP PARTITION (dt='2030-01-01', hour=0), PARTITION (dt='2024-01-02', hour=1)",
    )
    .await;
    assert!(
        e.run("ALTER TABLE logs.hits DROP PARTITION (dt='2030-01-01', hour=0)")
            .await
            .unwrap_err()
            .contains("Partition not found")
    );
    e.ok("ALTER TABLE logs.hits DROP IF EXISTS PARTITION (dt='2030-01-01', hour=0)")
        .await;
    assert_eq!(e.ok("SHOW PARTITIONS logs.hits").await.len(), 2);
    assert!(
        e.run("ALTER TABLE logs.hits ADD PARTITION (dt='x')")
            .await
            .unwrap_err()
            .contains("needs values for 2 keys")
    );

    e.ok("ALTER TABLE logs.hits ADD COLUMNS (status int)").await;
    e.ok("ALTER TABLE logs.hits SET TBLPROPERTIES ('owner_team' = 'web')")
        .await;
    assert_eq!(
        e.ok("SHOW COLUMNS IN logs.hits").await,
        ["path", "status", "dt", "hour"]
    );
    assert_eq!(e.ok("SHOW TBLPROPERTIES logs.hits('owner_team')").await, ["web"]);
}

#[tokio::test]
async fn errors_name_what_is_missing() {
    let e = env().await;
    assert!(
        e.run("CREATE EXTERNAL TABLE nodb.t (a int) LOCATION 's3://lake/t'")
            .await
            .unwrap_err()
            .contains("Database does not exist: nodb")
    );
    assert!(
        e.run("DESCRIBE default.nothing")
            .await
            .unwrap_err()
            .contains("Table not found default.nothing")
    );
    e.ok("CREATE DATABASE d").await;
    assert!(
        e.run("CREATE TABLE d.t (a int)")
            .await
            .unwrap_err()
            .contains("EXTERNAL")
    );
    assert!(
        e.run("CREATE EXTERNAL TABLE d.t (a int, a string)")
            .await
            .unwrap_err()
            .contains("Duplicate column name: a")
    );
    assert!(
        e.run("CREATE EXTERNAL TABLE d.t (a int) LOCATION '/tmp/x'")
            .await
            .unwrap_err()
            .contains("s3://")
    );
    assert!(
        e.run("CREATE EXTERNAL TABLE d.t (a int) STORED AS FOO")
            .await
            .unwrap_err()
            .contains("FOO")
    );
}
