//! Concurrency: how many invocations of a function run at once. A function with reserved
//! concurrency (PutFunctionConcurrency) runs at most that many; the others share what the
//! account's limit (1,000) leaves unreserved. Past either, an invocation is throttled with
//! AWS's `TooManyRequestsException` — synchronous callers see it, asynchronous invocations and
//! event source mappings wait and try again, as AWS's do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lakebox_core::{RequestContext, ServiceError};

use crate::Lambda;
use crate::api::*;
use crate::functions::{Stored, invalid, user_error};

/// The account's concurrent executions (AWS's default quota).
pub(crate) const ACCOUNT_LIMIT: i32 = 1000;
/// What reservations must leave to the account's other functions.
const MIN_UNRESERVED: i32 = 100;

/// Invocations running now, per function and per account pool.
#[derive(Default)]
pub(crate) struct Limiter {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Running invocations per function (`account\0region\0name`).
    running: HashMap<String, u32>,
    /// Running invocations of functions without a reservation, per `account\0region`.
    unreserved_running: HashMap<String, u32>,
    /// The sum of reservations per `account\0region`, read from the records when first
    /// needed and forgotten when one changes.
    reserved_total: HashMap<String, i32>,
}

/// One running invocation; dropping it frees its place.
pub(crate) struct Slot {
    limiter: Arc<Limiter>,
    function: String,
    pool: Option<String>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.limiter.state.lock().unwrap();
        if let Some(n) = s.running.get_mut(&self.function) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.running.remove(&self.function);
            }
        }
        if let Some(pool) = &self.pool
            && let Some(n) = s.unreserved_running.get_mut(pool)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// Why an invocation could not start.
pub(crate) fn throttled(reason: &'static str) -> ServiceError {
    user_error("TooManyRequestsException", 429, "Rate Exceeded.").with_extra("Reason", reason)
}

pub(crate) fn is_throttle(e: &ServiceError) -> bool {
    e.code == "TooManyRequestsException"
}

fn scope(ctx: &RequestContext) -> String {
    format!("{}\0{}", ctx.account_id, ctx.region)
}

impl Lambda {
    /// A place for one invocation of `function`, or AWS's throttling error; also records
    /// AWS/Lambda's ConcurrentExecutions and Throttles.
    pub(crate) fn acquire_slot(&self, ctx: &RequestContext, function: &Stored) -> Result<Slot, ServiceError> {
        let pool = scope(ctx);
        let reserved_total = self.reserved_total(ctx)?;
        let id = format!("{pool}\0{}", function.name());
        let limiter = self.limiter.clone();
        let running;
        {
            let mut s = limiter.state.lock().unwrap();
            let mine = s.running.get(&id).copied().unwrap_or(0);
            let refused = match function.reserved_concurrency {
                Some(r) if mine >= r.max(0) as u32 => {
                    Some("ReservedFunctionConcurrentInvocationLimitExceeded")
                }
                Some(_) => None,
                None => {
                    let shared = s.unreserved_running.get(&pool).copied().unwrap_or(0);
                    (shared as i32 >= ACCOUNT_LIMIT - reserved_total)
                        .then_some("ConcurrentInvocationLimitExceeded")
                }
            };
            if let Some(reason) = refused {
                drop(s);
                self.record_metric(ctx, function.name(), "Throttles", "Count", 1.0);
                return Err(throttled(reason));
            }
            *s.running.entry(id.clone()).or_default() += 1;
            if function.reserved_concurrency.is_none() {
                *s.unreserved_running.entry(pool.clone()).or_default() += 1;
            }
            running = s.running.values().sum::<u32>();
        }
        self.record_metric(
            ctx,
            function.name(),
            "ConcurrentExecutions",
            "Count",
            running as f64,
        );
        Ok(Slot {
            limiter,
            function: id,
            pool: function.reserved_concurrency.is_none().then_some(pool),
        })
    }

    fn reserved_total(&self, ctx: &RequestContext) -> Result<i32, ServiceError> {
        let pool = scope(ctx);
        if let Some(n) = self.limiter.state.lock().unwrap().reserved_total.get(&pool) {
            return Ok(*n);
        }
        let total = self
            .all_functions(ctx)?
            .iter()
            .filter_map(|f| f.reserved_concurrency)
            .sum::<i32>();
        self.limiter
            .state
            .lock()
            .unwrap()
            .reserved_total
            .insert(pool, total);
        Ok(total)
    }

    /// Forgets the cached sum of reservations (one changed, or a function went).
    pub(crate) fn reservations_changed(&self, ctx: &RequestContext) {
        self.limiter
            .state
            .lock()
            .unwrap()
            .reserved_total
            .remove(&scope(ctx));
    }

    /// What the account's functions without a reservation share.
    pub(crate) fn unreserved_concurrency(&self, ctx: &RequestContext) -> Result<i32, ServiceError> {
        Ok(ACCOUNT_LIMIT - self.reserved_total(ctx)?)
    }

    pub(crate) fn put_function_concurrency_impl(
        &self,
        ctx: &RequestContext,
        input: PutFunctionConcurrencyRequest,
    ) -> Result<Concurrency, ServiceError> {
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        let wanted = input.reserved_concurrent_executions;
        let others = self.reserved_total(ctx)? - stored.reserved_concurrency.unwrap_or(0);
        if ACCOUNT_LIMIT - others - wanted < MIN_UNRESERVED {
            return Err(invalid(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
            )));
        }
        stored.reserved_concurrency = Some(wanted);
        self.store(ctx, &stored)?;
        self.reservations_changed(ctx);
        Ok(Concurrency {
            reserved_concurrent_executions: Some(wanted),
        })
    }

    pub(crate) fn get_function_concurrency_impl(
        &self,
        ctx: &RequestContext,
        input: GetFunctionConcurrencyRequest,
    ) -> Result<GetFunctionConcurrencyResponse, ServiceError> {
        let stored = self.existing(ctx, &input.function_name, None)?;
        Ok(GetFunctionConcurrencyResponse {
            reserved_concurrent_executions: stored.reserved_concurrency,
        })
    }

    pub(crate) fn delete_function_concurrency_impl(
        &self,
        ctx: &RequestContext,
        input: DeleteFunctionConcurrencyRequest,
    ) -> Result<(), ServiceError> {
        let mut stored = self.existing(ctx, &input.function_name, None)?;
        stored.reserved_concurrency = None;
        self.store(ctx, &stored)?;
        self.reservations_changed(ctx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_frees_its_place_when_dropped() {
        let limiter = Arc::new(Limiter::default());
        {
            let mut s = limiter.state.lock().unwrap();
            s.running.insert("f".into(), 2);
            s.unreserved_running.insert("p".into(), 2);
        }
        drop(Slot {
            limiter: limiter.clone(),
            function: "f".into(),
            pool: Some("p".into()),
        });
        let s = limiter.state.lock().unwrap();
        assert_eq!(s.running["f"], 1);
        assert_eq!(s.unreserved_running["p"], 1);
    }
}
