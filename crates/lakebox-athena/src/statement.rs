//! A query's text read once into what it is: a prepared-statement command, Hive DDL Lakebox
//! runs itself, or SQL for the engine (and what that writes). StartQueryExecution classifies the
//! text, the execution carries the result, and nothing on the way parses it again.

use lakebox_athena_ddl::Kind;

use crate::session::{self, Session};

#[derive(Debug, Clone)]
pub enum Statement {
    /// `PREPARE`, `EXECUTE`, `DEALLOCATE PREPARE`, or why it is malformed.
    Session(Result<Session, String>),
    Sql(Kind),
}

impl Statement {
    pub fn classify(sql: &str) -> Statement {
        match session::parse(sql) {
            Some(s) => Statement::Session(s),
            None => Statement::Sql(lakebox_athena_ddl::classify(sql)),
        }
    }

    /// Athena's StatementType: DDL and UTILITY run as Hive DDL (results in `<id>.txt`), the
    /// rest is DML (results in `<id>.csv`). `EXECUTE` reports the type of the statement it runs,
    /// which its caller knows.
    pub fn statement_type(&self) -> &'static str {
        match self {
            Statement::Session(_) => "UTILITY",
            Statement::Sql(Kind::Engine {
                create_view: true, ..
            }) => "DDL",
            Statement::Sql(Kind::Engine { .. }) => "DML",
            Statement::Sql(Kind::Ddl(Ok(s))) if s.is_utility() => "UTILITY",
            Statement::Sql(Kind::Ddl(_)) => "DDL",
        }
    }

    /// What the statement writes (`CREATE TABLE AS SELECT`, `INSERT`, `UNLOAD`), if anything.
    pub fn write_kind(&self) -> Option<&'static str> {
        match self {
            Statement::Sql(Kind::Engine { write, .. }) => *write,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_told_apart_once() {
        let t = |sql: &str| {
            let s = Statement::classify(sql);
            (s.statement_type(), s.write_kind())
        };
        assert_eq!(t("SELECT 1"), ("DML", None));
        assert_eq!(
            t("CREATE TABLE t AS SELECT 1"),
            ("DML", Some("CREATE TABLE AS SELECT"))
        );
        assert_eq!(t("INSERT INTO t SELECT 1"), ("DML", Some("INSERT")));
        assert_eq!(
            t("UNLOAD (SELECT 1) TO 's3://b/x/' WITH (format = 'JSON')"),
            ("DML", Some("UNLOAD"))
        );
        assert_eq!(t("CREATE OR REPLACE VIEW v AS SELECT 1"), ("DDL", None));
        assert_eq!(
            t("CREATE EXTERNAL TABLE t (a int) LOCATION 's3://b/t/'"),
            ("DDL", None)
        );
        assert_eq!(t("SHOW TABLES"), ("UTILITY", None));
        assert_eq!(t("PREPARE p FROM SELECT 1"), ("UTILITY", None));
        assert!(matches!(
            Statement::classify("DROP TABLE"),
            Statement::Sql(Kind::Ddl(Err(_)))
        ));
    }
}
