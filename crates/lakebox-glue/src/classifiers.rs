//! Custom classifiers (CSV, JSON path, Grok; XML is stored but not applied): the
//! Create/Get/Update/Delete operations and their conversion into what crawls run.

use std::sync::Arc;

use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_store::MetaStore;
use serde_json::{Map, Value, json};

use crate::api::{Classifier, CreateClassifierRequest, UpdateClassifierRequest};
use crate::catalog::Scope;
use crate::errors::page;
use crate::errors::{self, check_name, internal};
use crate::infer::Custom;
use crate::infer::csv::CsvOptions;
use crate::infer::grok::Grok;

const CLASSIFIERS: &str = "classifiers";
const KINDS: [&str; 4] = [
    "GrokClassifier",
    "XMLClassifier",
    "JsonClassifier",
    "CsvClassifier",
];

pub struct Classifiers {
    store: Arc<MetaStore>,
    clock: Arc<dyn Clock>,
}

fn key(scope: &Scope, name: &str) -> Vec<u8> {
    format!("{}\0{}\0{}", scope.account, scope.region, name).into_bytes()
}

/// The one classifier kind a Create/Update request holds, as the JSON object it stores.
fn single_kind(req: &impl serde::Serialize) -> Result<(&'static str, Map<String, Value>), ServiceError> {
    let req = match serde_json::to_value(req).map_err(internal)? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let present: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| req.get(*k).is_some_and(Value::is_object))
        .collect();
    match present.as_slice() {
        [k] => Ok((k, req[*k].as_object().cloned().unwrap_or_default())),
        _ => Err(errors::invalid_input(
            "Exactly one of GrokClassifier, XMLClassifier, JsonClassifier or CsvClassifier must be given.",
        )),
    }
}

fn str_field<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// Checks a classifier definition as Glue does before storing it.
fn validate(kind: &str, def: &Map<String, Value>) -> Result<(), ServiceError> {
    match kind {
        "GrokClassifier" => {
            let pattern = str_field(def, "GrokPattern")
                .ok_or_else(|| errors::invalid_input("GrokPattern is required."))?;
            str_field(def, "Classification")
                .ok_or_else(|| errors::invalid_input("Classification is required."))?;
            Grok::compile(pattern, str_field(def, "CustomPatterns"))
                .map_err(|e| errors::invalid_input(format!("Invalid grok pattern: {e}")))?;
        }
        "JsonClassifier" => {
            let path =
                str_field(def, "JsonPath").ok_or_else(|| errors::invalid_input("JsonPath is required."))?;
            if !path.starts_with('$') {
                return Err(errors::invalid_input(format!(
                    "Invalid JsonPath {path}: a JSON path starts with $."
                )));
            }
        }
        "CsvClassifier" => {
            let d = str_field(def, "Delimiter");
            let q = str_field(def, "QuoteSymbol");
            if d.is_some_and(|d| d.chars().count() != 1) || q.is_some_and(|q| q.chars().count() != 1) {
                return Err(errors::invalid_input(
                    "Delimiter and QuoteSymbol are single characters.",
                ));
            }
            if d.is_some() && d == q {
                return Err(errors::invalid_input(
                    "QuoteSymbol must be different from the column delimiter.",
                ));
            }
            if let Some(h) = str_field(def, "ContainsHeader")
                && !["UNKNOWN", "PRESENT", "ABSENT"].contains(&h)
            {
                return Err(errors::invalid_input(format!("Invalid ContainsHeader {h}.")));
            }
        }
        "XMLClassifier" => {
            str_field(def, "Classification")
                .ok_or_else(|| errors::invalid_input("Classification is required."))?;
        }
        _ => {}
    }
    Ok(())
}

/// What a crawl runs for a stored classifier.
pub fn to_custom(stored: &Value) -> Option<Custom> {
    let (kind, def) = stored.as_object()?.iter().next()?;
    let def = def.as_object()?;
    Some(match kind.as_str() {
        "CsvClassifier" => Custom::Csv(CsvOptions {
            delimiter: str_field(def, "Delimiter").and_then(|d| d.chars().next()),
            quote: str_field(def, "QuoteSymbol").and_then(|d| d.chars().next()),
            contains_header: str_field(def, "ContainsHeader").map(str::to_owned),
            header: def
                .get("Header")
                .and_then(Value::as_array)
                .map(|h| h.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            allow_single_column: def
                .get("AllowSingleColumn")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            disable_value_trimming: def
                .get("DisableValueTrimming")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            serde: str_field(def, "Serde").map(str::to_owned),
        }),
        "JsonClassifier" => Custom::Json {
            json_path: str_field(def, "JsonPath")?.to_owned(),
        },
        "GrokClassifier" => {
            let pattern = str_field(def, "GrokPattern")?.to_owned();
            let custom_patterns = str_field(def, "CustomPatterns").map(str::to_owned);
            Custom::Grok {
                classification: str_field(def, "Classification")?.to_owned(),
                grok: Grok::compile(&pattern, custom_patterns.as_deref()).ok()?,
                pattern,
                custom_patterns,
            }
        }
        _ => Custom::Xml,
    })
}

impl Classifiers {
    pub fn new(store: Arc<MetaStore>, clock: Arc<dyn Clock>) -> Self {
        Classifiers { store, clock }
    }

    fn get_stored(&self, scope: &Scope, name: &str) -> Result<Option<Value>, ServiceError> {
        match self.store.get(CLASSIFIERS, &key(scope, name)).map_err(internal)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(internal)?)),
            None => Ok(None),
        }
    }

    /// The crawl-time form of the named classifiers, in the given order; unknown names are
    /// skipped.
    pub fn customs(&self, scope: &Scope, names: &[String]) -> Result<Vec<Custom>, ServiceError> {
        let mut out = Vec::new();
        for n in names {
            if let Some(v) = self.get_stored(scope, n)?
                && let Some(c) = to_custom(&v)
            {
                out.push(c);
            }
        }
        Ok(out)
    }

    pub async fn create(
        &self,
        ctx: &RequestContext,
        req: CreateClassifierRequest,
    ) -> Result<(), ServiceError> {
        let (kind, mut def) = single_kind(&req)?;
        let name = str_field(&def, "Name").unwrap_or_default().to_owned();
        check_name("name", &name)?;
        validate(kind, &def)?;
        let now = Timestamp::from_millis(self.clock.now_millis());
        def.insert("CreationTime".into(), json!(now));
        def.insert("LastUpdated".into(), json!(now));
        def.insert("Version".into(), json!(1));
        let value = serde_json::to_vec(&json!({ kind: def })).map_err(internal)?;
        let k = key(&Scope::from(ctx), &name);
        let created = self
            .store
            .write_async(move |b| {
                if b.get(CLASSIFIERS, &k)?.is_some() {
                    return Ok(false);
                }
                b.put(CLASSIFIERS, &k, &value)?;
                Ok(true)
            })
            .await
            .map_err(internal)?;
        if !created {
            return Err(errors::already_exists(format!(
                "Classifier {name} already exists."
            )));
        }
        Ok(())
    }

    pub fn get(&self, ctx: &RequestContext, name: &str) -> Result<Classifier, ServiceError> {
        let c = self
            .get_stored(&Scope::from(ctx), name)?
            .ok_or_else(|| errors::not_found(format!("Classifier {name} not found.")))?;
        serde_json::from_value(c).map_err(internal)
    }

    pub fn list(
        &self,
        ctx: &RequestContext,
        token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<Classifier>, Option<String>), ServiceError> {
        let scope = Scope::from(ctx);
        let prefix = format!("{}\0{}\0", scope.account, scope.region).into_bytes();
        let rows = self
            .store
            .read(|r| r.scan_prefix(CLASSIFIERS, &prefix))
            .map_err(internal)?;
        let all: Vec<(String, Classifier)> = rows
            .into_iter()
            .filter_map(|(k, v)| {
                let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Some((name, serde_json::from_slice(&v).ok()?))
            })
            .collect();
        let (list, next) = page(all, |(n, _)| n.clone(), token, max)?;
        Ok((list.into_iter().map(|(_, v)| v).collect(), next))
    }

    pub async fn update(
        &self,
        ctx: &RequestContext,
        req: UpdateClassifierRequest,
    ) -> Result<(), ServiceError> {
        let (kind, changes) = single_kind(&req)?;
        let name = str_field(&changes, "Name").unwrap_or_default().to_owned();
        let scope = Scope::from(ctx);
        let stored = self
            .get_stored(&scope, &name)?
            .ok_or_else(|| errors::not_found(format!("Classifier {name} not found.")))?;
        let mut def = stored
            .get(kind)
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| errors::invalid_input(format!("Classifier {name} is not a {kind}.")))?;
        for (k, v) in changes {
            def.insert(k, v);
        }
        validate(kind, &def)?;
        let version = def.get("Version").and_then(Value::as_i64).unwrap_or(1) + 1;
        def.insert("Version".into(), json!(version));
        def.insert(
            "LastUpdated".into(),
            json!(Timestamp::from_millis(self.clock.now_millis())),
        );
        let value = serde_json::to_vec(&json!({ kind: def })).map_err(internal)?;
        let k = key(&scope, &name);
        self.store
            .write_async(move |b| b.put(CLASSIFIERS, &k, &value))
            .await
            .map_err(internal)?;
        Ok(())
    }

    pub async fn delete(&self, ctx: &RequestContext, name: &str) -> Result<(), ServiceError> {
        let k = key(&Scope::from(ctx), name);
        let existed = self
            .store
            .write_async(move |b| b.delete(CLASSIFIERS, &k))
            .await
            .map_err(internal)?;
        if !existed {
            return Err(errors::not_found(format!("Classifier {name} not found.")));
        }
        Ok(())
    }
}
