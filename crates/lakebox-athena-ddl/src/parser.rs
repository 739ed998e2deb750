//! Recursive-descent parser for the Hive DDL statements Athena runs itself (as opposed to the
//! Trino statements its engine runs): databases, external tables, partitions, MSCK, SHOW and
//! DESCRIBE. Keywords are case-insensitive; names are folded to lowercase as Athena does.

use crate::lexer::{Spanned, Token, tokenize};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Name {
    pub database: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    /// The Hive type as Glue stores it: lowercase, `array<struct<a:int>>`, `decimal(10,2)`.
    pub type_: String,
    pub comment: Option<String>,
}

pub type Properties = Vec<(String, String)>;

/// `(key = 'value', …)` of a partition.
pub type PartitionSpec = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
pub enum RowFormat {
    Delimited {
        fields: Option<String>,
        escaped: Option<String>,
        collection: Option<String>,
        map_keys: Option<String>,
        lines: Option<String>,
        null: Option<String>,
    },
    Serde {
        class: String,
        properties: Properties,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoredAs {
    /// `STORED AS PARQUET`, `TEXTFILE`, …, uppercased.
    Named(String),
    Formats {
        input: String,
        output: String,
    },
}

/// `CLUSTERED BY (columns) [SORTED BY (column ASC|DESC, …)] INTO count BUCKETS`.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub columns: Vec<String>,
    /// Each sort column and whether it is ascending.
    pub sorted: Vec<(String, bool)>,
    pub count: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateTable {
    pub external: bool,
    pub if_not_exists: bool,
    pub name: Name,
    pub columns: Vec<ColumnDef>,
    pub comment: Option<String>,
    pub partitioned_by: Vec<ColumnDef>,
    pub buckets: Option<Buckets>,
    pub row_format: Option<RowFormat>,
    /// `WITH SERDEPROPERTIES` written apart from `ROW FORMAT SERDE`.
    pub serde_properties: Properties,
    pub stored_as: Option<StoredAs>,
    pub location: Option<String>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        comment: Option<String>,
        location: Option<String>,
        properties: Properties,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
        cascade: bool,
    },
    AlterDatabaseProperties {
        name: String,
        properties: Properties,
    },
    CreateTable(Box<CreateTable>),
    DropTable {
        name: Name,
        if_exists: bool,
    },
    DropView {
        name: Name,
        if_exists: bool,
    },
    AddPartitions {
        table: Name,
        if_not_exists: bool,
        partitions: Vec<(PartitionSpec, Option<String>)>,
    },
    DropPartitions {
        table: Name,
        if_exists: bool,
        specs: Vec<PartitionSpec>,
    },
    RenamePartition {
        table: Name,
        from: PartitionSpec,
        to: PartitionSpec,
    },
    AddColumns {
        table: Name,
        columns: Vec<ColumnDef>,
    },
    ReplaceColumns {
        table: Name,
        columns: Vec<ColumnDef>,
    },
    ChangeColumn {
        table: Name,
        old: String,
        new: ColumnDef,
    },
    SetLocation {
        table: Name,
        partition: Option<PartitionSpec>,
        location: String,
    },
    SetTableProperties {
        table: Name,
        properties: Properties,
    },
    RepairTable {
        table: Name,
    },
    ShowDatabases {
        like: Option<String>,
    },
    ShowTables {
        database: Option<String>,
        like: Option<String>,
    },
    ShowViews {
        database: Option<String>,
        like: Option<String>,
    },
    ShowPartitions {
        table: Name,
    },
    ShowColumns {
        table: Name,
    },
    ShowCreateTable {
        table: Name,
    },
    ShowCreateView {
        view: Name,
    },
    ShowTableProperties {
        table: Name,
        key: Option<String>,
    },
    Describe {
        table: Name,
        column: Option<String>,
        formatted: bool,
    },
}

impl Statement {
    /// Athena's StatementType: DDL changes the catalog, UTILITY only shows it.
    pub fn is_utility(&self) -> bool {
        matches!(
            self,
            Statement::ShowDatabases { .. }
                | Statement::ShowTables { .. }
                | Statement::ShowViews { .. }
                | Statement::ShowPartitions { .. }
                | Statement::ShowColumns { .. }
                | Statement::ShowCreateTable { .. }
                | Statement::ShowCreateView { .. }
                | Statement::ShowTableProperties { .. }
                | Statement::Describe { .. }
        )
    }
}

const PRIMITIVES: &[&str] = &[
    "boolean",
    "tinyint",
    "smallint",
    "int",
    "integer",
    "bigint",
    "float",
    "double",
    "decimal",
    "char",
    "varchar",
    "string",
    "binary",
    "date",
    "timestamp",
];

/// Parses `sql` if it is one of the Hive DDL statements; `None` means it is for the SQL engine
/// (SELECT, CREATE TABLE AS, CREATE VIEW, INSERT, …).
/// What a statement is, read from one tokenization of its text: Hive DDL that this crate runs
/// (parsed, or why it does not parse), or SQL for the engine and what that writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Ddl(Result<Statement, String>),
    Engine {
        /// `CREATE TABLE AS SELECT`, `INSERT` or `UNLOAD`: the statement writes data.
        write: Option<&'static str>,
        /// `CREATE [OR REPLACE] VIEW`: DDL the engine runs (it plans the view's query).
        create_view: bool,
    },
}

/// Classifies `sql` once; see [`Kind`].
pub fn classify(sql: &str) -> Kind {
    let tokens = match tokenize(sql) {
        Ok(t) => t,
        // Not ours to judge unless it starts like one of ours.
        Err(e) if is_ddl_start(sql) => return Kind::Ddl(Err(e)),
        Err(_) => {
            return Kind::Engine {
                write: None,
                create_view: false,
            };
        }
    };
    let mut p = Parser {
        sql,
        tokens,
        pos: 0,
        type_depth: 0,
    };
    if p.is_ours() {
        return Kind::Ddl(p.statement().and_then(|s| {
            p.eat_symbol(';');
            match p.peek() {
                None => Ok(s),
                Some(t) => Err(p.error_at(t.offset, "extraneous input after the end of the statement")),
            }
        }));
    }
    let words: Vec<String> = (0..4).map(|i| p.word_at(i).unwrap_or_default()).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let (write, create_view) = match words.as_slice() {
        ["CREATE", "VIEW", ..] | ["CREATE", "OR", "REPLACE", "VIEW"] => (None, true),
        ["CREATE", "TABLE", ..] => (Some("CREATE TABLE AS SELECT"), false),
        ["INSERT", "INTO", ..] => (Some("INSERT"), false),
        ["UNLOAD", ..] => (Some("UNLOAD"), false),
        _ => (None, false),
    };
    Kind::Engine { write, create_view }
}

/// The DDL statement `sql` is, if it is one this crate runs.
pub fn parse(sql: &str) -> Option<Result<Statement, String>> {
    match classify(sql) {
        Kind::Ddl(s) => Some(s),
        Kind::Engine { .. } => None,
    }
}

/// Whether `sql` is `CREATE [OR REPLACE] VIEW`.
pub fn is_create_view(sql: &str) -> bool {
    matches!(
        classify(sql),
        Kind::Engine {
            create_view: true,
            ..
        }
    )
}

/// What an engine statement writes: `CREATE TABLE AS SELECT`, `INSERT` or `UNLOAD`.
pub fn write_kind(sql: &str) -> Option<&'static str> {
    match classify(sql) {
        Kind::Engine { write, .. } => write,
        Kind::Ddl(_) => None,
    }
}

fn is_ddl_start(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    matches!(
        first.as_str(),
        "MSCK" | "SHOW" | "DESCRIBE" | "DESC" | "ALTER" | "DROP"
    )
}

struct Parser<'a> {
    sql: &'a str,
    tokens: Vec<Spanned>,
    pos: usize,
    /// How deep the type being parsed nests, bounded as Glue bounds stored types.
    type_depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Spanned> {
        self.tokens.get(self.pos)
    }

    fn word_at(&self, i: usize) -> Option<String> {
        match self.tokens.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// Whether the statement is Hive DDL rather than something for the engine.
    fn is_ours(&self) -> bool {
        let w = |i| self.word_at(i).unwrap_or_default();
        match w(0).as_str() {
            "MSCK" | "SHOW" => true,
            "DESCRIBE" | "DESC" => !matches!(w(1).as_str(), "INPUT" | "OUTPUT"),
            "DROP" => matches!(w(1).as_str(), "DATABASE" | "SCHEMA" | "TABLE" | "VIEW"),
            "ALTER" => matches!(w(1).as_str(), "DATABASE" | "SCHEMA" | "TABLE"),
            "CREATE" => match w(1).as_str() {
                "DATABASE" | "SCHEMA" | "EXTERNAL" => true,
                // CREATE TABLE … AS SELECT and CREATE TABLE … WITH (…) AS are the engine's.
                "TABLE" => {
                    let mut i = 2;
                    if w(i) == "IF" {
                        i += 3;
                    }
                    i += 1;
                    if matches!(self.tokens.get(i).map(|t| &t.token), Some(Token::Symbol('.'))) {
                        i += 2;
                    }
                    !matches!(w(i).as_str(), "AS" | "WITH")
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn error_at(&self, offset: usize, message: &str) -> String {
        crate::lexer::parse_exception(self.sql, offset, message)
    }

    fn error(&self, message: &str) -> String {
        let offset = self.peek().map_or(self.sql.len(), |t| t.offset);
        let near = match self.peek().map(|t| &t.token) {
            None => "<EOF>".to_owned(),
            Some(Token::Word(w) | Token::Number(w)) => format!("'{w}'"),
            Some(Token::Quoted(w)) => format!("'`{w}`'"),
            Some(Token::Str(s)) => format!("''{s}''"),
            Some(Token::Symbol(c)) => format!("'{c}'"),
        };
        self.error_at(offset, &format!("mismatched input {near} expecting {message}"))
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek().map(|t| &t.token), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), String> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error(&format!("'{kw}'")))
        }
    }

    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        let save = self.pos;
        for kw in kws {
            if !self.eat_kw(kw) {
                self.pos = save;
                return false;
            }
        }
        true
    }

    fn is_symbol(&self, c: char) -> bool {
        matches!(self.peek().map(|t| &t.token), Some(Token::Symbol(s)) if *s == c)
    }

    fn eat_symbol(&mut self, c: char) -> bool {
        if self.is_symbol(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, c: char) -> Result<(), String> {
        if self.eat_symbol(c) {
            Ok(())
        } else {
            Err(self.error(&format!("'{c}'")))
        }
    }

    /// An identifier, lowercased (Athena's catalog is case-insensitive).
    fn ident(&mut self) -> Result<String, String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::Word(w) | Token::Quoted(w)) => {
                self.pos += 1;
                Ok(w.to_lowercase())
            }
            _ => Err(self.error("an identifier")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::Str(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.error("a string literal")),
        }
    }

    fn name(&mut self) -> Result<Name, String> {
        let first = self.ident()?;
        if self.eat_symbol('.') {
            Ok(Name {
                database: Some(first),
                name: self.ident()?,
            })
        } else {
            Ok(Name {
                database: None,
                name: first,
            })
        }
    }

    fn if_exists(&mut self) -> bool {
        self.eat_kws(&["IF", "EXISTS"])
    }

    fn if_not_exists(&mut self) -> bool {
        self.eat_kws(&["IF", "NOT", "EXISTS"])
    }

    fn statement(&mut self) -> Result<Statement, String> {
        if self.eat_kw("CREATE") {
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                return self.create_database();
            }
            let external = self.eat_kw("EXTERNAL");
            self.expect_kw("TABLE")?;
            return self
                .create_table(external)
                .map(|t| Statement::CreateTable(Box::new(t)));
        }
        if self.eat_kw("DROP") {
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                let if_exists = self.if_exists();
                let name = self.ident()?;
                let cascade = self.eat_kw("CASCADE");
                if !cascade {
                    self.eat_kw("RESTRICT");
                }
                return Ok(Statement::DropDatabase {
                    name,
                    if_exists,
                    cascade,
                });
            }
            let view = self.eat_kw("VIEW");
            if !view {
                self.expect_kw("TABLE")?;
            }
            let if_exists = self.if_exists();
            let name = self.name()?;
            return Ok(if view {
                Statement::DropView { name, if_exists }
            } else {
                Statement::DropTable { name, if_exists }
            });
        }
        if self.eat_kw("ALTER") {
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                let name = self.ident()?;
                self.expect_kw("SET")?;
                if !self.eat_kw("DBPROPERTIES") {
                    self.expect_kw("PROPERTIES")?;
                }
                let properties = self.properties()?;
                return Ok(Statement::AlterDatabaseProperties { name, properties });
            }
            self.expect_kw("TABLE")?;
            return self.alter_table();
        }
        if self.eat_kw("MSCK") {
            self.expect_kw("REPAIR")?;
            self.expect_kw("TABLE")?;
            return Ok(Statement::RepairTable { table: self.name()? });
        }
        if self.eat_kw("SHOW") {
            return self.show();
        }
        if self.eat_kw("DESCRIBE") || self.eat_kw("DESC") {
            let formatted = self.eat_kw("FORMATTED") || self.eat_kw("EXTENDED");
            self.eat_kw("VIEW");
            let table = self.name()?;
            let column = if self.peek().is_some() && !self.is_symbol(';') {
                Some(self.ident()?)
            } else {
                None
            };
            return Ok(Statement::Describe {
                table,
                column,
                formatted,
            });
        }
        Err(self.error("a DDL statement"))
    }

    fn create_database(&mut self) -> Result<Statement, String> {
        let if_not_exists = self.if_not_exists();
        let name = self.ident()?;
        let (mut comment, mut location, mut properties) = (None, None, Vec::new());
        loop {
            if self.eat_kw("COMMENT") {
                comment = Some(self.string()?);
            } else if self.eat_kw("LOCATION") {
                location = Some(self.string()?);
            } else if self.eat_kws(&["WITH", "DBPROPERTIES"]) {
                properties = self.properties()?;
            } else {
                break;
            }
        }
        Ok(Statement::CreateDatabase {
            name,
            if_not_exists,
            comment,
            location,
            properties,
        })
    }

    fn create_table(&mut self, external: bool) -> Result<CreateTable, String> {
        let mut t = CreateTable {
            external,
            if_not_exists: self.if_not_exists(),
            name: self.name()?,
            ..Default::default()
        };
        if self.is_symbol('(') {
            t.columns = self.columns()?;
        }
        loop {
            if self.eat_kw("COMMENT") {
                t.comment = Some(self.string()?);
            } else if self.eat_kws(&["PARTITIONED", "BY"]) {
                t.partitioned_by = self.columns()?;
            } else if self.eat_kws(&["CLUSTERED", "BY"]) {
                let cols = self.ident_list()?;
                let mut sorted = Vec::new();
                if self.eat_kws(&["SORTED", "BY"]) {
                    self.expect_symbol('(')?;
                    loop {
                        let c = self.ident()?;
                        let asc = !self.eat_kw("DESC");
                        if asc {
                            self.eat_kw("ASC");
                        }
                        sorted.push((c, asc));
                        if !self.eat_symbol(',') {
                            break;
                        }
                    }
                    self.expect_symbol(')')?;
                }
                self.expect_kw("INTO")?;
                let n = self.number()?;
                self.expect_kw("BUCKETS")?;
                t.buckets = Some(Buckets {
                    columns: cols,
                    sorted,
                    count: n,
                });
            } else if self.eat_kws(&["ROW", "FORMAT"]) {
                t.row_format = Some(self.row_format()?);
            } else if self.eat_kws(&["WITH", "SERDEPROPERTIES"]) {
                t.serde_properties = self.properties()?;
            } else if self.eat_kws(&["STORED", "AS"]) {
                t.stored_as = Some(if self.eat_kw("INPUTFORMAT") {
                    let input = self.string()?;
                    self.expect_kw("OUTPUTFORMAT")?;
                    StoredAs::Formats {
                        input,
                        output: self.string()?,
                    }
                } else {
                    StoredAs::Named(self.ident()?.to_uppercase())
                });
            } else if self.eat_kw("LOCATION") {
                t.location = Some(self.string()?);
            } else if self.eat_kw("TBLPROPERTIES") {
                t.properties = self.properties()?;
            } else {
                break;
            }
        }
        Ok(t)
    }

    fn row_format(&mut self) -> Result<RowFormat, String> {
        if self.eat_kw("SERDE") {
            let class = self.string()?;
            let properties = if self.eat_kws(&["WITH", "SERDEPROPERTIES"]) {
                self.properties()?
            } else {
                Vec::new()
            };
            return Ok(RowFormat::Serde { class, properties });
        }
        self.expect_kw("DELIMITED")?;
        let (mut fields, mut escaped, mut collection, mut map_keys, mut lines, mut null) =
            (None, None, None, None, None, None);
        loop {
            if self.eat_kws(&["FIELDS", "TERMINATED", "BY"]) {
                fields = Some(self.string()?);
                if self.eat_kws(&["ESCAPED", "BY"]) {
                    escaped = Some(self.string()?);
                }
            } else if self.eat_kws(&["COLLECTION", "ITEMS", "TERMINATED", "BY"]) {
                collection = Some(self.string()?);
            } else if self.eat_kws(&["MAP", "KEYS", "TERMINATED", "BY"]) {
                map_keys = Some(self.string()?);
            } else if self.eat_kws(&["LINES", "TERMINATED", "BY"]) {
                lines = Some(self.string()?);
            } else if self.eat_kws(&["NULL", "DEFINED", "AS"]) {
                null = Some(self.string()?);
            } else {
                break;
            }
        }
        Ok(RowFormat::Delimited {
            fields,
            escaped,
            collection,
            map_keys,
            lines,
            null,
        })
    }

    fn alter_table(&mut self) -> Result<Statement, String> {
        let table = self.name()?;
        if self.eat_kw("ADD") {
            if self.eat_kw("COLUMNS") {
                let columns = self.columns()?;
                return Ok(Statement::AddColumns { table, columns });
            }
            let if_not_exists = self.if_not_exists();
            let mut partitions = Vec::new();
            while self.eat_kw("PARTITION") {
                let spec = self.partition_spec()?;
                let location = if self.eat_kw("LOCATION") {
                    Some(self.string()?)
                } else {
                    None
                };
                partitions.push((spec, location));
            }
            if partitions.is_empty() {
                return Err(self.error("'PARTITION' or 'COLUMNS'"));
            }
            return Ok(Statement::AddPartitions {
                table,
                if_not_exists,
                partitions,
            });
        }
        if self.eat_kw("DROP") {
            let if_exists = self.if_exists();
            let mut specs = Vec::new();
            loop {
                self.expect_kw("PARTITION")?;
                specs.push(self.partition_spec()?);
                if !self.eat_symbol(',') {
                    break;
                }
            }
            return Ok(Statement::DropPartitions {
                table,
                if_exists,
                specs,
            });
        }
        if self.eat_kw("PARTITION") {
            let spec = self.partition_spec()?;
            if self.eat_kws(&["RENAME", "TO", "PARTITION"]) {
                let to = self.partition_spec()?;
                return Ok(Statement::RenamePartition {
                    table,
                    from: spec,
                    to,
                });
            }
            self.expect_kw("SET")?;
            self.expect_kw("LOCATION")?;
            return Ok(Statement::SetLocation {
                table,
                partition: Some(spec),
                location: self.string()?,
            });
        }
        if self.eat_kws(&["REPLACE", "COLUMNS"]) {
            let columns = self.columns()?;
            return Ok(Statement::ReplaceColumns { table, columns });
        }
        if self.eat_kw("CHANGE") {
            self.eat_kw("COLUMN");
            let old = self.ident()?;
            let new = self.column()?;
            return Ok(Statement::ChangeColumn { table, old, new });
        }
        if self.eat_kws(&["SET", "LOCATION"]) {
            return Ok(Statement::SetLocation {
                table,
                partition: None,
                location: self.string()?,
            });
        }
        if self.eat_kws(&["SET", "TBLPROPERTIES"]) {
            let properties = self.properties()?;
            return Ok(Statement::SetTableProperties { table, properties });
        }
        Err(self.error("'ADD', 'DROP', 'PARTITION', 'REPLACE', 'CHANGE' or 'SET'"))
    }

    fn show(&mut self) -> Result<Statement, String> {
        if self.eat_kw("DATABASES") || self.eat_kw("SCHEMAS") {
            self.eat_kw("LIKE");
            let like = self.optional_string();
            return Ok(Statement::ShowDatabases { like });
        }
        if self.eat_kw("TABLES") || self.eat_kw("VIEWS") {
            let views = self.word_at(self.pos - 1).as_deref() == Some("VIEWS");
            let database = if self.eat_kw("IN") || self.eat_kw("FROM") {
                Some(self.ident()?)
            } else {
                None
            };
            self.eat_kw("LIKE");
            let like = self.optional_string();
            return Ok(if views {
                Statement::ShowViews { database, like }
            } else {
                Statement::ShowTables { database, like }
            });
        }
        if self.eat_kw("PARTITIONS") {
            return Ok(Statement::ShowPartitions { table: self.name()? });
        }
        if self.eat_kw("COLUMNS") {
            if !self.eat_kw("IN") {
                self.expect_kw("FROM")?;
            }
            let mut table = self.name()?;
            if self.eat_kw("IN") || self.eat_kw("FROM") {
                table.database = Some(self.ident()?);
            }
            return Ok(Statement::ShowColumns { table });
        }
        if self.eat_kws(&["CREATE", "TABLE"]) {
            return Ok(Statement::ShowCreateTable { table: self.name()? });
        }
        if self.eat_kws(&["CREATE", "VIEW"]) {
            return Ok(Statement::ShowCreateView { view: self.name()? });
        }
        if self.eat_kw("TBLPROPERTIES") {
            let table = self.name()?;
            let key = if self.eat_symbol('(') {
                let k = self.string()?;
                self.expect_symbol(')')?;
                Some(k)
            } else {
                None
            };
            return Ok(Statement::ShowTableProperties { table, key });
        }
        Err(self
            .error("'DATABASES', 'TABLES', 'VIEWS', 'PARTITIONS', 'COLUMNS', 'CREATE' or 'TBLPROPERTIES'"))
    }

    fn optional_string(&mut self) -> Option<String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::Str(s)) => {
                self.pos += 1;
                Some(s)
            }
            _ => None,
        }
    }

    fn number(&mut self) -> Result<i32, String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::Number(n)) => {
                let v = n.parse().map_err(|_| self.error("an integer"))?;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.error("an integer")),
        }
    }

    fn ident_list(&mut self) -> Result<Vec<String>, String> {
        self.expect_symbol('(')?;
        let mut out = vec![self.ident()?];
        while self.eat_symbol(',') {
            out.push(self.ident()?);
        }
        self.expect_symbol(')')?;
        Ok(out)
    }

    /// `('key' = 'value', …)`.
    fn properties(&mut self) -> Result<Properties, String> {
        self.expect_symbol('(')?;
        let mut out = Vec::new();
        if self.eat_symbol(')') {
            return Ok(out);
        }
        loop {
            let k = self.string()?;
            self.expect_symbol('=')?;
            let v = self.string()?;
            out.push((k, v));
            if !self.eat_symbol(',') {
                break;
            }
        }
        self.expect_symbol(')')?;
        Ok(out)
    }

    /// `(key = 'value', key2 = 5)`.
    fn partition_spec(&mut self) -> Result<PartitionSpec, String> {
        self.expect_symbol('(')?;
        let mut out = Vec::new();
        loop {
            let k = self.ident()?;
            self.expect_symbol('=')?;
            let v = match self.peek().map(|t| t.token.clone()) {
                Some(Token::Str(s) | Token::Number(s)) => s,
                Some(Token::Word(w)) => w,
                _ => return Err(self.error("a partition value")),
            };
            self.pos += 1;
            out.push((k, v));
            if !self.eat_symbol(',') {
                break;
            }
        }
        self.expect_symbol(')')?;
        Ok(out)
    }

    fn columns(&mut self) -> Result<Vec<ColumnDef>, String> {
        self.expect_symbol('(')?;
        let mut out = vec![self.column()?];
        while self.eat_symbol(',') {
            out.push(self.column()?);
        }
        self.expect_symbol(')')?;
        Ok(out)
    }

    fn column(&mut self) -> Result<ColumnDef, String> {
        let name = self.ident()?;
        let type_ = self.data_type()?;
        let comment = if self.eat_kw("COMMENT") {
            Some(self.string()?)
        } else {
            None
        };
        Ok(ColumnDef { name, type_, comment })
    }

    /// A Hive type, written back in Glue's canonical spelling. Nested types recurse once per
    /// level, so nesting is bounded (`array<array<…>>` 10,000 deep would overflow the stack).
    fn data_type(&mut self) -> Result<String, String> {
        let max = lakebox_glue::infer::types::MAX_TYPE_NESTING;
        self.type_depth += 1;
        let out = if self.type_depth > max {
            let offset = self.peek().map_or(self.sql.len(), |t| t.offset);
            Err(self.error_at(offset, &format!("type nested more than {max} levels deep")))
        } else {
            self.nested_data_type()
        };
        self.type_depth -= 1;
        out
    }

    fn nested_data_type(&mut self) -> Result<String, String> {
        let offset = self.peek().map_or(self.sql.len(), |t| t.offset);
        let name = match self.peek().map(|t| t.token.clone()) {
            Some(Token::Word(w)) => w.to_lowercase(),
            _ => return Err(self.error("a data type")),
        };
        self.pos += 1;
        match name.as_str() {
            "array" => {
                self.expect_symbol('<')?;
                let inner = self.data_type()?;
                self.expect_symbol('>')?;
                Ok(format!("array<{inner}>"))
            }
            "map" => {
                self.expect_symbol('<')?;
                let k = self.data_type()?;
                self.expect_symbol(',')?;
                let v = self.data_type()?;
                self.expect_symbol('>')?;
                Ok(format!("map<{k},{v}>"))
            }
            "struct" => {
                self.expect_symbol('<')?;
                let mut fields = Vec::new();
                loop {
                    let f = self.ident()?;
                    self.expect_symbol(':')?;
                    let t = self.data_type()?;
                    if self.eat_kw("COMMENT") {
                        self.string()?;
                    }
                    fields.push(format!("{f}:{t}"));
                    if !self.eat_symbol(',') {
                        break;
                    }
                }
                self.expect_symbol('>')?;
                Ok(format!("struct<{}>", fields.join(",")))
            }
            p if PRIMITIVES.contains(&p) => {
                // Athena's DDL spells the 32-bit integer `int`.
                let p = if p == "integer" { "int" } else { p };
                if self.eat_symbol('(') {
                    let mut args = vec![self.number()?.to_string()];
                    while self.eat_symbol(',') {
                        args.push(self.number()?.to_string());
                    }
                    self.expect_symbol(')')?;
                    Ok(format!("{p}({})", args.join(",")))
                } else {
                    Ok(p.to_owned())
                }
            }
            other => Err(self.error_at(offset, &format!("Unknown type '{other}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> Statement {
        parse(sql).expect("a DDL statement").unwrap()
    }

    #[test]
    fn types_nested_past_the_limit_are_parse_errors() {
        let deep = format!(
            "CREATE EXTERNAL TABLE t (c {}int{})",
            "array<".repeat(10_000),
            ">".repeat(10_000)
        );
        let err = parse(&deep).expect("a DDL statement").unwrap_err();
        assert!(err.contains("nested more than 100 levels"), "{err}");
        let fine = format!(
            "CREATE EXTERNAL TABLE t (c {}int{})",
            "array<".repeat(50),
            ">".repeat(50)
        );
        assert!(parse(&fine).expect("a DDL statement").is_ok());
    }

    #[test]
    fn engine_statements_are_not_ours() {
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "CREATE TABLE t AS SELECT 1",
            "CREATE TABLE db.t WITH (format = 'PARQUET') AS SELECT 1",
            "CREATE OR REPLACE VIEW v AS SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "INSERT INTO t SELECT 1",
            "DESCRIBE INPUT stmt",
            "EXPLAIN SELECT 1",
        ] {
            assert!(parse(sql).is_none(), "{sql}");
        }
    }

    #[test]
    fn writes_are_recognized() {
        assert_eq!(
            write_kind("CREATE TABLE t WITH (format = 'JSON') AS SELECT 1"),
            Some("CREATE TABLE AS SELECT")
        );
        assert_eq!(write_kind("insert into t select 1"), Some("INSERT"));
        assert_eq!(write_kind("UNLOAD (SELECT 1) TO 's3://b/x/'"), Some("UNLOAD"));
        assert_eq!(write_kind("CREATE EXTERNAL TABLE t (a int)"), None);
        assert_eq!(write_kind("SELECT 1"), None);
    }

    #[test]
    fn create_view_is_recognized() {
        assert!(is_create_view("create or replace view v AS SELECT 1"));
        assert!(is_create_view("CREATE VIEW db.v AS SELECT 1"));
        assert!(!is_create_view("CREATE TABLE v AS SELECT 1"));
    }

    #[test]
    fn create_external_table_with_every_clause() {
        let sql = r"CREATE EXTERNAL TABLE IF NOT EXISTS logs.`Events` (
              id BIGINT COMMENT 'the id',
              tags ARRAY<STRING>,
              attrs MAP<STRING, INT>,
              who STRUCT<name: STRING, age: INT>,
              price DECIMAL(10, 2)
            )
            COMMENT 'events'
            PARTITIONED BY (dt STRING, hour INT)
            CLUSTERED BY (id) SORTED BY (id DESC) INTO 4 BUCKETS
            ROW FORMAT DELIMITED FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
            STORED AS TEXTFILE
            LOCATION 's3://bucket/events/'
            TBLPROPERTIES ('skip.header.line.count' = '1', 'compressionType' = 'gzip');";
        let Statement::CreateTable(t) = ok(sql) else {
            panic!()
        };
        assert!(t.external && t.if_not_exists);
        assert_eq!(
            t.name,
            Name {
                database: Some("logs".into()),
                name: "events".into()
            }
        );
        let types: Vec<&str> = t.columns.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                "bigint",
                "array<string>",
                "map<string,int>",
                "struct<name:string,age:int>",
                "decimal(10,2)"
            ]
        );
        assert_eq!(t.columns[0].comment.as_deref(), Some("the id"));
        assert_eq!(t.partitioned_by.len(), 2);
        assert_eq!(
            t.buckets,
            Some(Buckets {
                columns: vec!["id".into()],
                sorted: vec![("id".into(), false)],
                count: 4
            })
        );
        assert_eq!(
            t.row_format,
            Some(RowFormat::Delimited {
                fields: Some("\t".into()),
                escaped: Some("\\".into()),
                collection: None,
                map_keys: None,
                lines: Some("\n".into()),
                null: None
            })
        );
        assert_eq!(t.stored_as, Some(StoredAs::Named("TEXTFILE".into())));
        assert_eq!(t.location.as_deref(), Some("s3://bucket/events/"));
        assert_eq!(t.properties[1], ("compressionType".into(), "gzip".into()));
    }

    #[test]
    fn serde_and_input_formats() {
        let Statement::CreateTable(t) = ok(
            "CREATE EXTERNAL TABLE t (a string) ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe' \
             WITH SERDEPROPERTIES ('input.regex' = '([^ ]*) (.*)') STORED AS INPUTFORMAT 'in.Fmt' OUTPUTFORMAT 'out.Fmt' \
             LOCATION 's3://b/t'",
        ) else {
            panic!()
        };
        assert_eq!(
            t.row_format,
            Some(RowFormat::Serde {
                class: "org.apache.hadoop.hive.serde2.RegexSerDe".into(),
                properties: vec![("input.regex".into(), "([^ ]*) (.*)".into())]
            })
        );
        assert_eq!(
            t.stored_as,
            Some(StoredAs::Formats {
                input: "in.Fmt".into(),
                output: "out.Fmt".into()
            })
        );
    }

    #[test]
    fn partitions_show_and_describe() {
        assert_eq!(
            ok(
                "ALTER TABLE t ADD IF NOT EXISTS PARTITION (dt = '2024-01-01', h = 3) LOCATION 's3://b/x/' PARTITION (dt='2024-01-02', h=4)"
            ),
            Statement::AddPartitions {
                table: Name {
                    database: None,
                    name: "t".into()
                },
                if_not_exists: true,
                partitions: vec![
                    (
                        vec![("dt".into(), "2024-01-01".into()), ("h".into(), "3".into())],
                        Some("s3://b/x/".into())
                    ),
                    (
                        vec![("dt".into(), "2024-01-02".into()), ("h".into(), "4".into())],
                        None
                    ),
                ]
            }
        );
        assert!(
            matches!(ok("ALTER TABLE t DROP IF EXISTS PARTITION (a='1'), PARTITION (a='2')"),
            Statement::DropPartitions { if_exists: true, ref specs, .. } if specs.len() == 2)
        );
        assert!(matches!(
            ok("MSCK REPAIR TABLE db.t"),
            Statement::RepairTable { .. }
        ));
        assert_eq!(
            ok("SHOW TABLES IN sales 'ord*|cust*'"),
            Statement::ShowTables {
                database: Some("sales".into()),
                like: Some("ord*|cust*".into())
            }
        );
        assert!(matches!(
            ok("show columns in t from db"),
            Statement::ShowColumns {
                table: Name {
                    database: Some(_),
                    ..
                }
            }
        ));
        assert!(matches!(
            ok("DESCRIBE FORMATTED db.t"),
            Statement::Describe { formatted: true, .. }
        ));
        assert!(matches!(
            ok("SHOW TBLPROPERTIES t('EXTERNAL')"),
            Statement::ShowTableProperties { key: Some(_), .. }
        ));
        assert!(matches!(
            ok("DROP DATABASE IF EXISTS d CASCADE"),
            Statement::DropDatabase {
                cascade: true,
                if_exists: true,
                ..
            }
        ));
    }

    #[test]
    fn errors_say_where() {
        let e = parse("CREATE EXTERNAL TABLE t (a strng)").unwrap().unwrap_err();
        assert_eq!(e, "FAILED: ParseException line 1:28 Unknown type 'strng'");
        let e = parse("SHOW TABLEZ").unwrap().unwrap_err();
        assert!(
            e.starts_with("FAILED: ParseException line 1:6 mismatched input 'TABLEZ' expecting"),
            "{e}"
        );
        let e = parse("DROP TABLE t extra").unwrap().unwrap_err();
        assert!(e.contains("extraneous input"), "{e}");
    }
}
