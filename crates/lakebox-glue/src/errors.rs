//! Glue's error codes, with messages worded as Glue words them, and [`GlueError`]: what a
//! caller in another crate (Athena's DDL and engine) asks of a catalog failure, without
//! comparing code strings.

use lakebox_core::ServiceError;
use lakebox_service::validate::single_failure_message;

const ENTITY_NOT_FOUND: &str = "EntityNotFoundException";
const ALREADY_EXISTS: &str = "AlreadyExistsException";
const INVALID_INPUT: &str = "InvalidInputException";
const CRAWLER_RUNNING: &str = "CrawlerRunningException";

/// The kinds of catalog failure other crates act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlueError {
    /// The database, table, partition or crawler does not exist.
    NotFound,
    /// It exists already.
    AlreadyExists,
    /// The request broke one of Glue's rules.
    InvalidInput,
    /// The crawler is running.
    CrawlerRunning,
    /// Anything else (internal failures, limits, concurrent changes).
    Other,
}

impl GlueError {
    /// What kind of failure `e`, an error from this crate, is.
    pub fn of(e: &ServiceError) -> GlueError {
        match e.code.as_ref() {
            ENTITY_NOT_FOUND => GlueError::NotFound,
            ALREADY_EXISTS => GlueError::AlreadyExists,
            INVALID_INPUT => GlueError::InvalidInput,
            CRAWLER_RUNNING => GlueError::CrawlerRunning,
            _ => GlueError::Other,
        }
    }
}

pub fn not_found(message: impl Into<String>) -> ServiceError {
    ServiceError::client(ENTITY_NOT_FOUND, message)
}

pub fn already_exists(message: impl Into<String>) -> ServiceError {
    ServiceError::client(ALREADY_EXISTS, message)
}

pub fn invalid_input(message: impl Into<String>) -> ServiceError {
    ServiceError::client(INVALID_INPUT, message)
}

pub fn crawler_running(message: impl Into<String>) -> ServiceError {
    ServiceError::client(CRAWLER_RUNNING, message)
}

pub fn concurrent_modification(message: impl Into<String>) -> ServiceError {
    ServiceError::client("ConcurrentModificationException", message)
}

pub fn resource_limit(message: impl Into<String>) -> ServiceError {
    ServiceError::client("ResourceNumberLimitExceededException", message)
}

pub fn database_not_found(db: &str) -> ServiceError {
    not_found(format!("Database {db} not found."))
}

pub fn table_not_found(db: &str, table: &str) -> ServiceError {
    not_found(format!("Table {table} not found in database {db}."))
}

pub fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    if lakebox_store::space::is_full_error(&e) {
        return ServiceError::disk_full();
    }
    ServiceError::new("InternalServiceException", 500, e.to_string())
}

/// `1 validation error detected: …` as Glue reports a field outside its constraints.
pub fn constraint(field: &str, value: &str, constraint: &str) -> ServiceError {
    invalid_input(single_failure_message(field, value, constraint))
}

/// Checks a Glue `NameString`: 1 to 255 characters of single-line text.
pub fn check_name(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.is_empty() || value.chars().count() > 255 {
        return Err(constraint(
            field,
            value,
            "Member must have length between 1 and 255",
        ));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(constraint(
            field,
            value,
            "Member must satisfy regular expression pattern: [\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*",
        ));
    }
    Ok(())
}

/// [`lakebox_core::paging::page`] with Glue's error for a bad token.
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    lakebox_core::paging::page(items, key, token, max).map_err(|_| invalid_input("Invalid pagination token."))
}
