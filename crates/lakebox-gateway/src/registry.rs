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
    /// Services' own routes under `/_lakebox/<name>/`.
    internal: Vec<InternalRoutes>,
}

/// A service's own routes (`/_lakebox/<name>/…`): they need a signed request when the server
/// checks signatures, except the paths starting with one of `public` (relative to the prefix).
#[derive(Clone)]
pub(crate) struct InternalRoutes {
    pub prefix: String,
    pub public: &'static [&'static str],
    pub service: Arc<dyn HttpService>,
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

    /// Routes `/_lakebox/<name>/…` to `service`; paths under it starting with one of `public`
    /// are served to anyone (SNS's signing certificate), the rest only to signed requests when
    /// the server checks signatures.
    pub fn internal(
        &mut self,
        name: &str,
        public: &'static [&'static str],
        service: Arc<dyn HttpService>,
    ) -> &mut Self {
        self.internal.push(InternalRoutes {
            prefix: format!("/_lakebox/{name}/"),
            public,
            service,
        });
        self
    }

    pub(crate) fn internal_routes(&self, path: &str) -> Option<&InternalRoutes> {
        self.internal.iter().find(|r| path.starts_with(&r.prefix))
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
