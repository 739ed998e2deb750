//! Composite alarms: a rule over other alarms' states (`ALARM("a") AND NOT OK(b) OR TRUE`),
//! evaluated right after the metric alarms each round, with the same history, tags and
//! actions as metric alarms, and an actions suppressor (an alarm in ALARM silences the
//! composite's actions).

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_service::events::{Event, EventSink};
use lakebox_store::MetaStore;
use std::sync::Arc;

use crate::alarms::{
    AlarmKind, StateFields, Stored, Transition, actions_for, alarm_arn, alarm_key, all_of, described,
    history_item, load, parse_arn, region_name, save, transition,
};
use crate::api::*;
use crate::errors::invalid_combination;

pub const COMPOSITES: &str = "composite_alarms";
/// Alarms one rule may name.
const MAX_CHILDREN: usize = 100;

impl AlarmKind for CompositeAlarm {
    const TABLE: &'static str = COMPOSITES;
    const TYPE: AlarmType = AlarmType::CompositeAlarm;
    crate::alarms::alarm_state_members!();
    fn actions(&self, state: &StateValue) -> Vec<String> {
        if self.actions_suppressed_by.is_some() {
            return Vec::new();
        }
        actions_for(
            state,
            &self.alarm_actions,
            &self.ok_actions,
            &self.insufficient_data_actions,
        )
    }
    fn actions_enabled(&self) -> bool {
        self.actions_enabled != Some(false)
    }
    fn set_actions_enabled(&mut self, on: bool) {
        self.actions_enabled = Some(on);
    }
    fn arn_and_description(&self) -> (Option<&str>, Option<&str>) {
        (self.alarm_arn.as_deref(), self.alarm_description.as_deref())
    }
    fn lambda_configuration(&self) -> serde_json::Value {
        serde_json::json!({ "alarmRule": self.alarm_rule })
    }
    fn notification(&self, old: &StateValue, t: &Transition, now: i64, region: &str) -> Event {
        let name = self.name().to_owned();
        let message = serde_json::json!({
            "AlarmName": name,
            "AlarmDescription": self.alarm_description,
            "AWSAccountId": self.alarm_arn.as_deref().and_then(parse_arn).map(|(a, _, _)| a),
            "NewStateValue": t.state.as_str(),
            "NewStateReason": t.reason,
            "StateChangeTime": Timestamp::from_millis(now).to_iso8601().replace('Z', "+0000"),
            "Region": region_name(region),
            "AlarmArn": self.alarm_arn,
            "OldStateValue": old.as_str(),
            "AlarmRule": self.alarm_rule,
            "TriggeringChildren": t.data.as_deref()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                .and_then(|d| d.get("triggeringAlarms").cloned()),
            "OKActions": self.ok_actions,
            "AlarmActions": self.alarm_actions,
            "InsufficientDataActions": self.insufficient_data_actions,
        });
        Event {
            message: message.to_string(),
            subject: Some(format!(
                "{}: \"{name}\" in {}",
                t.state.as_str(),
                region_name(region)
            )),
            sender: "cloudwatch.amazonaws.com",
            ..Event::default()
        }
    }
}

/// An alarm rule.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Const(bool),
    /// `ALARM(x)`, `OK(x)`, `INSUFFICIENT_DATA(x)`: the alarm's name.
    Is(StateValue, String),
    Not(Box<Rule>),
    And(Box<Rule>, Box<Rule>),
    Or(Box<Rule>, Box<Rule>),
}

fn invalid_rule(why: impl std::fmt::Display) -> ServiceError {
    ServiceError::client("ValidationError", format!("Error in alarm rule: {why}"))
}

struct RuleParser<'a> {
    s: &'a str,
    pos: usize,
}

impl RuleParser<'_> {
    fn skip_ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let ok = rest.len() >= kw.len()
            && rest[..kw.len()].eq_ignore_ascii_case(kw)
            && !rest[kw.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            self.pos += kw.len();
        }
        ok
    }

    fn symbol(&mut self, c: char) -> bool {
        self.skip_ws();
        let ok = self.s[self.pos..].starts_with(c);
        if ok {
            self.pos += 1;
        }
        ok
    }

    fn or(&mut self) -> Result<Rule, ServiceError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            left = Rule::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Rule, ServiceError> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            left = Rule::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Rule, ServiceError> {
        if self.keyword("NOT") {
            return Ok(Rule::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Rule, ServiceError> {
        if self.symbol('(') {
            let r = self.or()?;
            if !self.symbol(')') {
                return Err(invalid_rule("missing ')'"));
            }
            return Ok(r);
        }
        if self.keyword("TRUE") {
            return Ok(Rule::Const(true));
        }
        if self.keyword("FALSE") {
            return Ok(Rule::Const(false));
        }
        let state = if self.keyword("ALARM") {
            StateValue::Alarm
        } else if self.keyword("OK") {
            StateValue::Ok
        } else if self.keyword("INSUFFICIENT_DATA") {
            StateValue::InsufficientData
        } else {
            return Err(invalid_rule(format!(
                "expected ALARM, OK, INSUFFICIENT_DATA, TRUE, FALSE, NOT or '(' at position {}",
                self.pos + 1
            )));
        };
        if !self.symbol('(') {
            return Err(invalid_rule(format!("expected '(' after {}", state.as_str())));
        }
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let (name, used) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| invalid_rule("unterminated alarm name"))?;
            (quoted[..end].to_owned(), end + 2)
        } else {
            let end = rest.find(')').ok_or_else(|| invalid_rule("missing ')'"))?;
            (rest[..end].trim().to_owned(), end)
        };
        self.pos += used;
        if !self.symbol(')') {
            return Err(invalid_rule("missing ')'"));
        }
        if name.is_empty() {
            return Err(invalid_rule("an alarm name is empty"));
        }
        // An alarm may be named by its ARN.
        let name = parse_arn(&name).map_or(name.clone(), |(_, _, n)| n.to_owned());
        Ok(Rule::Is(state, name))
    }
}

fn parse_rule(text: &str) -> Result<Rule, ServiceError> {
    let mut p = RuleParser { s: text, pos: 0 };
    let rule = p.or()?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(invalid_rule(format!("unexpected text at position {}", p.pos + 1)));
    }
    Ok(rule)
}

fn children(rule: &Rule, out: &mut Vec<String>) {
    match rule {
        Rule::Const(_) => {}
        Rule::Is(_, name) => {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        Rule::Not(r) => children(r, out),
        Rule::And(a, b) | Rule::Or(a, b) => {
            children(a, out);
            children(b, out);
        }
    }
}

fn holds(rule: &Rule, state_of: &dyn Fn(&str) -> Option<StateValue>) -> bool {
    match rule {
        Rule::Const(b) => *b,
        Rule::Is(want, name) => state_of(name).as_ref() == Some(want),
        Rule::Not(r) => !holds(r, state_of),
        Rule::And(a, b) => holds(a, state_of) && holds(b, state_of),
        Rule::Or(a, b) => holds(a, state_of) || holds(b, state_of),
    }
}

/// The current state of any alarm of the account and region, by name.
fn state_of(
    meta: &MetaStore,
    account: &str,
    region: &str,
    name: &str,
) -> Option<(StateValue, Option<Timestamp>)> {
    let key = alarm_key(account, region, name);
    if let Ok(Some(m)) = load::<MetricAlarm>(meta, &key) {
        return Some((
            m.alarm.state_value.unwrap_or(StateValue::InsufficientData),
            m.alarm.state_updated_timestamp,
        ));
    }
    load::<CompositeAlarm>(meta, &key).ok().flatten().map(|c| {
        (
            c.alarm.state_value.unwrap_or(StateValue::InsufficientData),
            c.alarm.state_updated_timestamp,
        )
    })
}

fn child_names(a: &CompositeAlarm) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rule) = parse_rule(a.alarm_rule.as_deref().unwrap_or_default()) {
        children(&rule, &mut out);
    }
    out
}

pub async fn put(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: PutCompositeAlarmInput,
    now: i64,
) -> Result<(), ServiceError> {
    let rule = parse_rule(&input.alarm_rule)?;
    let mut names = Vec::new();
    children(&rule, &mut names);
    if names.len() > MAX_CHILDREN {
        return Err(invalid_rule(format!(
            "a rule may name at most {MAX_CHILDREN} alarms"
        )));
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| state_of(meta, &ctx.account_id, &ctx.region, n).is_none())
        .collect();
    if !missing.is_empty() {
        let list = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        return Err(ServiceError::client(
            "ValidationError",
            format!("Could not save the composite alarm as alarms [{list}] in the alarm rule do not exist"),
        ));
    }
    // No alarm may depend on itself, directly or through other composites.
    let mut stack = names.clone();
    let mut seen = Vec::new();
    while let Some(n) = stack.pop() {
        if n == input.alarm_name {
            return Err(ServiceError::client(
                "ValidationError",
                format!(
                    "The alarm rule of {} creates a cycle: an alarm cannot depend on itself.",
                    input.alarm_name
                ),
            ));
        }
        if seen.contains(&n) {
            continue;
        }
        if let Ok(Some(c)) = load::<CompositeAlarm>(meta, &alarm_key(&ctx.account_id, &ctx.region, &n)) {
            stack.extend(child_names(&c.alarm));
        }
        seen.push(n);
    }
    let key = alarm_key(&ctx.account_id, &ctx.region, &input.alarm_name);
    if load::<MetricAlarm>(meta, &key)?.is_some() {
        return Err(invalid_combination(format!(
            "An alarm named {} already exists as a metric alarm.",
            input.alarm_name
        )));
    }
    let old = load::<CompositeAlarm>(meta, &key)?;
    let stamp = Some(Timestamp::from_millis(now));
    let mut alarm = CompositeAlarm {
        actions_enabled: Some(input.actions_enabled.unwrap_or(true)),
        alarm_actions: Some(input.alarm_actions.unwrap_or_default()),
        alarm_arn: Some(alarm_arn(&ctx.account_id, &ctx.region, &input.alarm_name)),
        alarm_configuration_updated_timestamp: stamp,
        alarm_description: input.alarm_description,
        alarm_name: Some(input.alarm_name.clone()),
        alarm_rule: Some(input.alarm_rule),
        insufficient_data_actions: Some(input.insufficient_data_actions.unwrap_or_default()),
        ok_actions: Some(input.ok_actions.unwrap_or_default()),
        state_reason: Some("Unchecked: Initial alarm creation".into()),
        state_reason_data: None,
        state_updated_timestamp: stamp,
        state_value: Some(StateValue::InsufficientData),
        state_transitioned_timestamp: stamp,
        actions_suppressed_by: None,
        actions_suppressed_reason: None,
        actions_suppressor: input.actions_suppressor,
        actions_suppressor_wait_period: input.actions_suppressor_wait_period,
        actions_suppressor_extension_period: input.actions_suppressor_extension_period,
    };
    let mut tags = Vec::new();
    let summary = match &old {
        Some(o) => {
            let f = alarm.state_fields();
            *f.value = o.alarm.state_value.clone();
            *f.reason = o.alarm.state_reason.clone();
            *f.reason_data = o.alarm.state_reason_data.clone();
            *f.updated = o.alarm.state_updated_timestamp;
            *f.transitioned = o.alarm.state_transitioned_timestamp;
            tags = o.tags.clone();
            format!("Alarm \"{}\" updated", input.alarm_name)
        }
        None => format!("Alarm \"{}\" created", input.alarm_name),
    };
    crate::dashboards::merge_tags(&mut tags, input.tags.unwrap_or_default());
    let item = history_item(&alarm, now, HistoryItemType::ConfigurationUpdate, summary, None);
    save(meta, key, Stored { alarm, tags }, Some(item)).await
}

/// The composite alarms DescribeAlarms returns (only when `AlarmTypes` asks for them).
pub fn describe(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: &DescribeAlarmsInput,
) -> Result<Vec<CompositeAlarm>, ServiceError> {
    if !input
        .alarm_types
        .as_ref()
        .is_some_and(|t| t.contains(&AlarmType::CompositeAlarm))
    {
        return Ok(Vec::new());
    }
    let all: Vec<CompositeAlarm> = all_of::<CompositeAlarm>(meta, ctx)?
        .into_iter()
        .map(|s| s.alarm)
        .collect();
    let children_of: Option<Vec<String>> = input.children_of_alarm_name.as_ref().map(|n| {
        all.iter()
            .find(|a| a.name() == n)
            .map(child_names)
            .unwrap_or_default()
    });
    let mut out: Vec<CompositeAlarm> = all
        .into_iter()
        .filter(|a| {
            let name = a.name();
            children_of.as_ref().is_none_or(|c| c.iter().any(|x| x == name))
                && input
                    .parents_of_alarm_name
                    .as_ref()
                    .is_none_or(|p| child_names(a).contains(p))
                && described(
                    input,
                    name,
                    a.state(),
                    [&a.alarm_actions, &a.ok_actions, &a.insufficient_data_actions],
                )
        })
        .collect();
    out.sort_by(|a, b| a.alarm_name.cmp(&b.alarm_name));
    Ok(out)
}

/// The metric alarms among a composite's children (`ChildrenOfAlarmName`); none are a
/// parent (`ParentsOfAlarmName` names only composites).
pub fn related_metric_alarms(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: &DescribeAlarmsInput,
    alarms: Vec<MetricAlarm>,
) -> Result<Vec<MetricAlarm>, ServiceError> {
    let Some(parent) = &input.children_of_alarm_name else {
        return Ok(Vec::new());
    };
    let Some(c) = load::<CompositeAlarm>(meta, &alarm_key(&ctx.account_id, &ctx.region, parent))? else {
        return Ok(Vec::new());
    };
    let names = child_names(&c.alarm);
    Ok(alarms
        .into_iter()
        .filter(|a| names.iter().any(|n| n == a.name()))
        .collect())
}

/// Decides every composite alarm from its children's current states (a few passes, so a
/// composite of composites settles in one round).
pub async fn evaluate_all(meta: &MetaStore, actions: Option<&Arc<dyn EventSink>>, now: i64) {
    for _ in 0..4 {
        let Ok(rows) = meta.scan_prefix(COMPOSITES, b"", None, usize::MAX) else {
            return;
        };
        let mut changed = false;
        for (key, value) in rows {
            let Ok(mut stored) = serde_json::from_slice::<Stored<CompositeAlarm>>(&value) else {
                continue;
            };
            let Some((account, region, _)) = stored.alarm.alarm_arn.as_deref().and_then(parse_arn) else {
                continue;
            };
            let (account, region) = (account.to_owned(), region.to_owned());
            let Ok(rule) = parse_rule(stored.alarm.alarm_rule.as_deref().unwrap_or_default()) else {
                continue;
            };
            let lookup = |n: &str| state_of(meta, &account, &region, n).map(|(s, _)| s);
            let state = if holds(&rule, &lookup) {
                StateValue::Alarm
            } else {
                StateValue::Ok
            };
            if stored.alarm.state_value.as_ref() == Some(&state) {
                continue;
            }
            // The children whose state the outcome rests on.
            let mut names = Vec::new();
            children(&rule, &mut names);
            let triggering: Vec<serde_json::Value> = names
                .iter()
                .filter_map(|n| {
                    let (s, at) = state_of(meta, &account, &region, n)?;
                    (s == state).then(|| {
                        serde_json::json!({
                            "arn": alarm_arn(&account, &region, n),
                            "state": {"value": s.as_str(), "timestamp": at.map(|t| t.to_iso8601().replace('Z', "+0000"))},
                        })
                    })
                })
                .collect();
            let reason = match triggering.first() {
                Some(t) => format!(
                    "{} transitioned to {} at {}",
                    t["arn"].as_str().unwrap_or_default(),
                    state.as_str(),
                    t["state"]["timestamp"].as_str().unwrap_or_default()
                ),
                None => format!("The alarm rule evaluated to {}.", state.as_str()),
            };
            // An actions suppressor in ALARM silences this transition's actions.
            let suppressor = stored.alarm.actions_suppressor.clone();
            let suppressed = suppressor
                .as_deref()
                .map(|s| parse_arn(s).map_or(s, |(_, _, n)| n))
                .and_then(|n| state_of(meta, &account, &region, n))
                .is_some_and(|(s, _)| s == StateValue::Alarm);
            stored.alarm.actions_suppressed_by = suppressed.then_some(ActionsSuppressedBy::Alarm);
            stored.alarm.actions_suppressed_reason =
                suppressed.then(|| format!("Alarm {} is in ALARM state.", suppressor.unwrap_or_default()));
            let t = Transition {
                state,
                reason,
                data: Some(serde_json::json!({"triggeringAlarms": triggering}).to_string()),
            };
            if let Err(e) = transition(meta, actions, key, stored, t, now, &region).await {
                tracing::warn!("composite alarm evaluation failed: {e}");
            }
            changed = true;
        }
        if !changed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_hold() {
        let r = parse_rule(
            "ALARM(\"cpu-high\") AND NOT OK(arn:aws:cloudwatch:us-east-1:000000000000:alarm:disk) OR (FALSE)",
        )
        .unwrap();
        let mut names = Vec::new();
        children(&r, &mut names);
        assert_eq!(names, ["cpu-high", "disk"]);
        let states = |alarm: bool, disk: StateValue| {
            move |n: &str| match n {
                "cpu-high" => Some(if alarm { StateValue::Alarm } else { StateValue::Ok }),
                "disk" => Some(disk.clone()),
                _ => None,
            }
        };
        assert!(holds(&r, &states(true, StateValue::Alarm)));
        assert!(!holds(&r, &states(true, StateValue::Ok)));
        assert!(!holds(&r, &states(false, StateValue::Alarm)));
        assert!(parse_rule("ALARM(a) AND").is_err());
        assert!(parse_rule("BOGUS(a)").is_err());
        assert!(parse_rule("alarm(a) or true").is_ok());
    }
}
