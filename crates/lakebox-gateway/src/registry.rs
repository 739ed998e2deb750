//! The services this server runs: catalogue entries mapped to their implementations.

use std::collections::HashMap;
use std::sync::Arc;

use lakebox_service::{HttpService, QueryService, RpcService};

use crate::catalog::{CATALOG, ServiceEntry};

/// The services this server runs, by catalogue name.
#[derive(Default)]
pub struct Registry {
    extra_entries: Vec<ServiceEntry>,
    rpc: HashMap<&'static str, Arc<dyn RpcService>>,
    query: HashMap<&'static str, Arc<dyn QueryService>>,
    http: HashMap<&'static str, Arc<dyn HttpService>>,
    /// Handler for `/_lakebox/test/…`, present only when test routes are switched on.
    pub(crate) test_routes: Option<Arc<dyn HttpService>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a service that is not in the AWS catalogue (Lakebox's own test service).
    pub fn add_entry(&mut self, entry: ServiceEntry) -> &mut Self {
        self.extra_entries.push(entry);
        self
    }

    pub fn rpc(&mut self, name: &'static str, service: Arc<dyn RpcService>) -> &mut Self {
        self.rpc.insert(name, service);
        self
    }

    pub fn query(&mut self, name: &'static str, service: Arc<dyn QueryService>) -> &mut Self {
        self.query.insert(name, service);
        self
    }

    pub fn http(&mut self, name: &'static str, service: Arc<dyn HttpService>) -> &mut Self {
        self.http.insert(name, service);
        self
    }

    pub fn test_routes(&mut self, handler: Arc<dyn HttpService>) -> &mut Self {
        self.test_routes = Some(handler);
        self
    }

    /// Every recognised service: the AWS catalogue plus added entries.
    pub fn entries(&self) -> impl Iterator<Item = &ServiceEntry> {
        CATALOG.iter().chain(self.extra_entries.iter())
    }

    pub fn rpc_service(&self, name: &str) -> Option<Arc<dyn RpcService>> {
        self.rpc.get(name).cloned()
    }

    pub fn query_service(&self, name: &str) -> Option<Arc<dyn QueryService>> {
        self.query.get(name).cloned()
    }

    pub fn http_service(&self, name: &str) -> Option<Arc<dyn HttpService>> {
        self.http.get(name).cloned()
    }

    /// Whether any implementation is registered under `name`.
    pub fn is_running(&self, name: &str) -> bool {
        self.rpc.contains_key(name) || self.query.contains_key(name) || self.http.contains_key(name)
    }
}
