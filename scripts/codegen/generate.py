#!/usr/bin/env python3
"""Generates each service's operation layer from the botocore model (see
docs/decisions/0007-generated-operation-layer.md).

    python3 scripts/codegen/generate.py            # every service in services.toml
    python3 scripts/codegen/generate.py kinesis    # one service
    python3 scripts/codegen/generate.py --check    # fail if a checked-in file is stale

For each service in `services.toml` it reads `botocore/data/<model>/service-2.json` (the
botocore version pinned there) and the service's allow-list of operations, and writes one Rust
module with:

- the shapes those operations reach: structs, string enums with an `Unknown` fallback, unions,
  blobs, timestamps, maps and lists; members the model marks required are plain fields, the rest
  `Option`s;
- for every shape an input reaches, a `…Raw` twin whose members are all optional (what arrives
  on the wire) and a conversion that checks the model's required / length / range / pattern /
  enum constraints, collecting every failure into AWS's "N validation errors detected: …";
- the operation trait, one method per operation named after it, each defaulting to the answer
  AWS gives for an operation it does not know;
- `dispatch`, from the wire name to decode → validate → call → encode;
- `OPERATIONS` (the allow-list) and `MODEL_OPERATIONS` (every operation in the model).

It also rewrites the "supported operations" table between the generated markers in the
service's docs page. The output is checked in; nothing runs this at build time.
"""

import argparse
import gzip
import json
import os
import re
import sys
import tomllib

import botocore

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

RUST_KEYWORDS = {
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "typeof", "unsized", "virtual", "yield", "try", "gen",
}
# Type names the generated module uses itself; a shape with one of these names gets a suffix.
RESERVED_TYPES = {
    "String", "Option", "Some", "None", "Result", "Ok", "Err", "Vec", "Box", "BTreeMap", "Blob",
    "Timestamp", "Value", "Validator", "Path", "RequestContext", "ServiceError", "RpcRequest",
    "RpcResponse", "RpcEncoding", "BoxFuture", "Arc", "Future", "Self", "Default", "Serialize",
    "Deserialize", "Document",
}


def snake(name):
    # Binary units are one word: MaxRecordSizeInKiB → max_record_size_in_kib, not …_ki_b.
    name = re.sub(r"([KMGT])iB", lambda m: m.group(1) + "ib", name)
    # … and so are megabytes: SizeInMBs → size_in_mbs, not …_m_bs.
    name = re.sub(r"([KMGT])Bs\b", lambda m: m.group(1) + "bs", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^A-Za-z0-9_]", "_", s).lower()
    if s[0].isdigit():
        s = "n" + s
    return "r#" + s if s in RUST_KEYWORDS else s


def pascal_variant(value):
    words = [w for w in re.split(r"[^A-Za-z0-9]+", value) if w]
    out = "".join(w[:1].upper() + (w[1:].lower() if w.isupper() or w.isdigit() else w[1:]) for w in words)
    if not out:
        out = "Empty"
    if out[0].isdigit():
        out = "V" + out
    return out


def lower_first(name):
    return name[:1].lower() + name[1:]


def rust_str(s):
    return json.dumps(s, ensure_ascii=False)


def load_model(model):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", model, "service-2.json")
    if os.path.exists(base):
        with open(base) as f:
            return json.load(f)
    with gzip.open(base + ".gz") as f:
        return json.load(f)


class Service:
    def __init__(self, key, cfg):
        self.key = key
        self.cfg = cfg
        self.model = load_model(cfg["model"])
        self.shapes = self.model["shapes"]
        self.ops = self.model["operations"]
        self.protocol = self.model["metadata"]["protocol"]
        protocols = self.model["metadata"].get("protocols", [self.protocol])
        # Smithy rpc-v2-cbor carries the same operations and shapes as awsJson, only in CBOR
        # and with the operation in the path: one RPC dispatcher serves both (the request's
        # encoding says which), so such a model is generated as its awsJson self.
        self.rpc_v2_cbor = "smithy-rpc-v2-cbor" in protocols
        if self.protocol == "smithy-rpc-v2-cbor" and "json" in protocols:
            self.protocol = "json"
        if self.protocol not in ("json", "query", "rest-json"):
            sys.exit(f"{key}: the generator writes awsJson, awsQuery and restJson1 services, not {self.protocol}")
        # An awsJson service that was awsQuery once (SQS) answers both: its forms and XML are
        # spelled by `query_shapes`, its errors' query codes by `query_errors`.
        self.query_compatible = self.protocol == "json" and "awsQueryCompatible" in self.model["metadata"]
        # Its query spelling: wrapped `member` lists unless `query_shapes` says otherwise (SQS
        # flattened its lists under singular names; CloudWatch did not).
        self.allowed = list(cfg["operations"])
        # Shapes a service writes by hand (DynamoDB's AttributeValue: one of ten types, checked
        # with DynamoDB's own messages): used as they are, raw and typed, never generated.
        self.external = dict(cfg.get("external_shapes", {}))
        for shape in self.external:
            if shape not in self.shapes:
                sys.exit(f"{key}: external_shapes names {shape}, which the model lacks")
        for op in self.allowed:
            if op not in self.ops:
                sys.exit(f"{key}: operation {op} is not in the model {cfg['model']}")
        self.input_shapes = set()  # shapes reached from inputs: get a Raw twin and a check
        self.all_shapes = set()
        self.eventstream_ops = set()
        for op in self.allowed:
            o = self.ops[op]
            if "input" in o:
                self._walk(o["input"]["shape"], self.input_shapes)
                self._walk(o["input"]["shape"], self.all_shapes)
            if "output" in o:
                out = self.shapes[o["output"]["shape"]]
                for m in out.get("members", {}).values():
                    if self.shapes[m["shape"]].get("eventstream"):
                        self.eventstream_ops.add(op)
                self._walk(o["output"]["shape"], self.all_shapes)
        self.boxed = self._find_boxed()
        self.patterns = {}

    def _walk(self, name, seen):
        if name in seen or name in self.external:
            return
        s = self.shapes[name]
        if s["type"] in ("structure", "list", "map"):
            seen.add(name)
        elif s["type"] == "string" and "enum" in s:
            seen.add(name)
        if s["type"] == "structure":
            for m in s.get("members", {}).values():
                self._walk(m["shape"], seen)
        elif s["type"] == "list":
            self._walk(s["member"]["shape"], seen)
        elif s["type"] == "map":
            self._walk(s["key"]["shape"], seen)
            self._walk(s["value"]["shape"], seen)

    def _find_boxed(self):
        """Members that point straight (not through a list or map) at a structure that reaches
        back to the one holding them need a Box to have a size."""
        boxed = set()

        def direct(name):
            s = self.shapes[name]
            if s["type"] != "structure" or name in self.external:
                return []
            return [(mn, m["shape"]) for mn, m in s.get("members", {}).items()
                    if self.shapes[m["shape"]]["type"] == "structure"]

        def reaches(start, goal, seen):
            if start == goal:
                return True
            if start in seen:
                return False
            seen.add(start)
            return any(reaches(t, goal, seen) for _, t in direct(start))

        for name in self.all_shapes:
            for mn, target in direct(name):
                if reaches(target, name, set()):
                    boxed.add((name, mn))
        return boxed

    # ---- naming and types --------------------------------------------------------------

    def type_name(self, name):
        n = re.sub(r"[^A-Za-z0-9]", "", name)
        n = n[:1].upper() + n[1:]
        if n in RESERVED_TYPES:
            n += "Shape"
        return n

    def is_event_stream(self, name):
        return bool(self.shapes[name].get("eventstream"))

    def rust_type(self, name, raw=False):
        if name in self.external:
            return self.external[name]
        s = self.shapes[name]
        t = s["type"]
        if t == "string":
            return self.type_name(name) if "enum" in s else "String"
        if t == "integer":
            return "i32"
        if t == "long":
            return "i64"
        if t == "boolean":
            return "bool"
        if t == "double":
            return "f64"
        if t == "float":
            return "f32"
        if t == "blob":
            return "Blob"
        if t == "timestamp":
            return "Timestamp"
        if t == "list":
            return f"Vec<{self.rust_type(s['member']['shape'], raw)}>"
        if t == "map":
            return f"BTreeMap<String, {self.rust_type(s['value']['shape'], raw)}>"
        if t == "structure":
            if s.get("document"):
                return "serde_json::Value"
            return self.type_name(name) + ("Raw" if raw else "")
        sys.exit(f"unsupported shape type {t} ({name})")

    def defaultable(self, name, seen=None):
        if name in self.external:
            return False
        seen = seen or set()
        s = self.shapes[name]
        if name in seen:
            return True
        seen.add(name)
        if s["type"] == "string" and "enum" in s:
            return False
        # A time has no natural default.
        if s["type"] == "timestamp":
            return False
        if s["type"] == "structure":
            if s.get("union"):
                return False
            req = set(s.get("required", []))
            return all(self.defaultable(m["shape"], seen) for mn, m in s.get("members", {}).items() if mn in req)
        return True

    # ---- emitters ----------------------------------------------------------------------

    def emit(self):
        out = []
        w = out.append
        w(f"// @generated by scripts/codegen/generate.py from botocore {botocore.__version__}'s")
        w(f"// {self.cfg['model']} model. Do not edit: change services.toml and regenerate.")
        w("#![allow(clippy::all, dead_code, unused_imports, unused_variables, unused_mut, non_camel_case_types)]")
        w("")
        w("use std::collections::BTreeMap;")
        w("use std::future::Future;")
        w("use std::sync::Arc;")
        w("")
        w("use lakebox_core::{RequestContext, ServiceError};")
        w("use lakebox_protocol::rpc::RpcEncoding;")
        w("use lakebox_protocol::{Blob, Timestamp};")
        w("use lakebox_service::validate::{Path, Pattern, Validator, lift};")
        w("use lakebox_service::{BoxFuture, RpcRequest, RpcResponse};")
        if self.protocol == "rest-json":
            w("use lakebox_protocol::rest_json::{Input, Route, Scalar};")
            w("use lakebox_service::rest::{RestRequest, RestResponse, label};")
            w("use lakebox_service::body::Body;")
        if self.speaks_query():
            w("use lakebox_protocol::query::{QueryRequest, response_xml};")
            w("use lakebox_protocol::query_serde::{QueryMember, QueryNames, from_params_named, to_xml_named};")
            w("")
            ns = self.model["metadata"].get("xmlNamespace") or f"http://queue.amazonaws.com/doc/{self.model['metadata']['apiVersion']}/"
            w(f"/// The XML namespace of {self.cfg['label']}'s responses.")
            w(f"pub const XML_NAMESPACE: &str = {rust_str(ns)};")
        w("use serde::{Deserialize, Serialize};")
        w("")
        w(f"/// The operations Lakebox implements, as listed in `scripts/codegen/services.toml`.")
        w("pub const OPERATIONS: &[&str] = &[" + ", ".join(rust_str(o) for o in self.allowed) + "];")
        w(f"/// Every operation of the model, implemented or not.")
        w("pub const MODEL_OPERATIONS: &[&str] = &[" + ", ".join(rust_str(o) for o in sorted(self.ops)) + "];")
        w("")
        for name in sorted(self.all_shapes):
            s = self.shapes[name]
            if s["type"] == "string" and "enum" in s:
                self.emit_enum(w, name, s)
            elif s["type"] == "structure" and not s.get("document"):
                if s.get("union"):
                    self.emit_union(w, name, s, raw=False)
                    if name in self.input_shapes:
                        self.emit_union(w, name, s, raw=True)
                else:
                    self.emit_struct(w, name, s, raw=False)
                    if name in self.input_shapes:
                        self.emit_struct(w, name, s, raw=True)
        for name in sorted(self.input_shapes):
            self.emit_check(w, name)
        self.emit_trait(w)
        self.emit_dispatch(w)
        if self.speaks_query():
            self.emit_query_names(w)
        if self.query_compatible:
            self.emit_query_errors(w)
        self.emit_patterns(w)
        return "\n".join(out) + "\n"

    def speaks_query(self):
        return self.protocol == "query" or self.query_compatible

    def emit_query_names(self, w):
        """The table that spells members in awsQuery as the old query model did."""
        spelled = self.cfg.get("query_shapes", {})
        for shape in spelled:
            if shape not in self.shapes:
                sys.exit(f"{self.key}: query_shapes names {shape}, which the model lacks")
        rows = []
        for name in sorted(self.all_shapes):
            st = self.shapes[name]
            if st["type"] != "structure" or st.get("document") or st.get("union"):
                continue
            owners = [self.type_name(name)] + ([self.type_name(name) + "Raw"] if name in self.input_shapes else [])
            for mn, m, _ in self.members(st):
                q = spelled.get(m["shape"])
                if not q:
                    continue
                for owner in owners:
                    rows.append(
                        f"QueryMember {{ owner: {rust_str(owner)}, member: {rust_str(mn)}, name: {rust_str(q['name'])}, "
                        f"flattened: true, key: {rust_str(q.get('key', ''))}, value: {rust_str(q.get('value', ''))} }}"
                    )
        w("/// How awsQuery spells the members whose query name is not their own (flattened lists and")
        w("/// maps under singular names), from `query_shapes` in services.toml.")
        w("pub static QUERY_NAMES: QueryNames = &[")
        for r in rows:
            w(f"    {r},")
        w("];")
        w("")

    def emit_query_errors(self, w):
        codes = self.cfg.get("query_errors", {})
        errors = sorted(n for n, s in self.shapes.items() if s.get("exception"))
        for shape in codes:
            if shape not in errors:
                sys.exit(f"{self.key}: query_errors names {shape}, which is not an error of the model")
        prefix = self.model["metadata"]["targetPrefix"]
        svc = self.model["metadata"]["endpointPrefix"]
        w("/// The modelled errors: their shape name (awsJson's `__type`) and awsQuery code (what the")
        w("/// SDKs show, from `x-amzn-query-error`).")
        w("pub const ERRORS: &[(&str, &str)] = &[")
        for e in errors:
            # The model's awsQuery code (`error.code`) unless services.toml says otherwise.
            code = codes.get(e, self.shapes[e].get("error", {}).get("code", e))
            w(f"    ({rust_str(e)}, {rust_str(code)}),")
        w("];")
        w("")
        w("/// An error as awsJson carries it for a service that was awsQuery once: the query code in")
        w("/// `x-amzn-query-error` (`Code;Sender`), and `__type` the modelled shape's name (or, for a")
        w("/// common error the model lacks, the name AWS's front end gives it).")
        w("pub fn json_error(mut e: ServiceError) -> ServiceError {")
        w('    let fault = if e.sender_fault { "Sender" } else { "Receiver" };')
        w('    e.headers.push(("x-amzn-query-error", format!("{};{fault}", e.code)));')
        w("    e.code = match ERRORS.iter().find(|(_, code)| *code == e.code) {")
        w(f'        Some((shape, _)) => format!("com.amazonaws.{svc}#{{shape}}").into(),')
        w('        None if e.status < 500 => format!("com.amazon.coral.service#{}Exception", e.code.trim_end_matches("Exception")).into(),')
        w("        None => e.code,")
        w("    };")
        w("    e")
        w("}")
        w("")

    def emit_patterns(self, w):
        w("")
        widened = self.cfg.get("lakebox_patterns", {})
        for src, name in self.patterns.items():
            if src in widened:
                w(f"static {name}: Pattern = Pattern::widened({rust_str(src)}, {rust_str(widened[src])});")
            else:
                w(f"static {name}: Pattern = Pattern::new({rust_str(src)});")
        w("")
        w("/// Every pattern the model constrains these shapes with.")
        w("pub static PATTERNS: &[&Pattern] = &[" + ", ".join(f"&{n}" for n in self.patterns.values()) + "];")
        skipped = self.cfg.get("unenforced_patterns", [])
        w("")
        w("#[cfg(test)]")
        w("mod generated_tests {")
        w("    /// A pattern Rust's regex engine cannot compile is not enforced; those are listed in")
        w("    /// services.toml (`unenforced_patterns`), so none is skipped unnoticed.")
        w("    #[test]")
        w("    fn patterns_compile() {")
        w("        let failing: Vec<&str> = super::PATTERNS.iter().filter(|p| p.regex().is_none()).map(|p| p.source()).collect();")
        w("        let expected: Vec<&str> = vec![" + ", ".join(rust_str(p) for p in skipped) + "];")
        w("        assert_eq!(failing, expected);")
        w("    }")
        w("}")

    def doc(self, w, s, indent=""):
        d = s.get("documentation", "")
        d = re.sub(r"<[^>]+>", "", d)
        d = re.sub(r"\s+", " ", d).strip()
        if d:
            first = re.split(r"(?<=\.)\s", d, maxsplit=1)[0]
            w(f"{indent}/// {first}")

    def emit_enum(self, w, name, s):
        tn = self.type_name(name)
        variants = []
        used = set()
        for v in s["enum"]:
            vn = pascal_variant(v)
            while vn in used or vn == "Unknown":
                vn += "_"
            used.add(vn)
            variants.append((vn, v))
        self.doc(w, s)
        w("#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]")
        w(f"pub enum {tn} {{")
        for vn, v in variants:
            w(f"    /// `{v}`")
            w(f"    {vn},")
        w("    /// A value this model does not list (a newer client's, or a wrong one).")
        w("    Unknown(String),")
        w("}")
        w(f"impl {tn} {{")
        w("    pub const VALUES: &'static [&'static str] = &[" + ", ".join(rust_str(v) for _, v in variants) + "];")
        w("    pub fn as_str(&self) -> &str {")
        w("        match self {")
        for vn, v in variants:
            w(f"            Self::{vn} => {rust_str(v)},")
        w("            Self::Unknown(s) => s,")
        w("        }")
        w("    }")
        w("}")
        w(f"impl From<&str> for {tn} {{")
        w("    fn from(s: &str) -> Self {")
        w("        match s {")
        for vn, v in variants:
            w(f"            {rust_str(v)} => Self::{vn},")
        w("            other => Self::Unknown(other.to_owned()),")
        w("        }")
        w("    }")
        w("}")
        w(f"lakebox_service::string_enum!({tn});")
        w("")

    def members(self, s):
        req = set(s.get("required", []))
        for mn, m in s.get("members", {}).items():
            if self.is_event_stream(m["shape"]):
                continue
            yield mn, m, mn in req

    def field_type(self, owner, mn, m, required, raw):
        t = self.rust_type(m["shape"], raw)
        if (owner, mn) in self.boxed:
            t = f"Box<{t}>"
        if raw or not required:
            t = f"Option<{t}>"
        return t

    def emit_struct(self, w, name, s, raw):
        tn = self.type_name(name) + ("Raw" if raw else "")
        if raw:
            w(f"/// `{name}` as it arrives, before validation.")
            w("#[derive(Debug, Clone, Default, Deserialize)]")
        else:
            self.doc(w, s)
            derives = ["Debug", "Clone", "PartialEq", "Serialize", "Deserialize"]
            if self.defaultable(name):
                derives.insert(2, "Default")
            w(f"#[derive({', '.join(derives)})]")
        w(f"pub struct {tn} {{")
        for mn, m, required in self.members(s):
            ft = self.field_type(name, mn, m, required, raw)
            attrs = [f"rename = {rust_str(mn)}"]
            if raw or not required:
                attrs.append("default")
            if not raw and not required:
                attrs.append('skip_serializing_if = "Option::is_none"')
            w(f"    #[serde({', '.join(attrs)})]")
            w(f"    pub {snake(mn)}: {ft},")
        w("}")
        w("")

    def emit_union(self, w, name, s, raw):
        tn = self.type_name(name) + ("Raw" if raw else "")
        if raw:
            w(f"/// `{name}` as it arrives, before validation.")
            w("#[derive(Debug, Clone, Deserialize)]")
        else:
            self.doc(w, s)
            w("#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]")
        w(f"pub enum {tn} {{")
        for mn, m in s.get("members", {}).items():
            t = self.rust_type(m["shape"], raw)
            if self.shapes[m["shape"]]["type"] == "structure":
                t = f"Box<{t}>"
            w(f"    #[serde(rename = {rust_str(mn)})]")
            w(f"    {pascal_variant(mn) if not mn[:1].isupper() else mn}({t}),")
        w("}")
        w("")

    # ---- validation --------------------------------------------------------------------

    def scalar_checks(self, name, var, path, map_key=False):
        """Checks of a scalar (or the size of a list/map) value `var` (a reference). A map's
        key is a plain String even where the model names an enum."""
        s = self.shapes[name]
        t = s["type"]
        lines = []
        if t == "string" and "enum" in s:
            if self.cfg.get("unchecked_enums"):
                return lines  # the service checks these values itself, in its own words
            tn = self.type_name(name)
            unknown = f"!{tn}::VALUES.contains(&{var}.as_str())" if map_key else f"matches!({var}, {tn}::Unknown(_))"
            lines.append(f"v.enum_value({var}.as_str(), {tn}::VALUES, {unknown}, {path});")
            return lines
        mn, mx = s.get("min"), s.get("max")
        if t == "string":
            if mn is not None or mx is not None:
                lines.append(f"v.length({var}, {self.opt(mn)}, {self.opt(mx)}, {path});")
            if "pattern" in s:
                lines.append(f"v.pattern({var}, &{self.pattern_static(s['pattern'])}, {path});")
        elif t == "blob":
            if mn is not None or mx is not None:
                lines.append(f"v.blob_length({var}.0.len() as u64, {self.opt(mn)}, {self.opt(mx)}, {path});")
        elif t in ("integer", "long"):
            if mn is not None or mx is not None:
                lines.append(f"v.range_i64(*{var} as i64, {self.opt(mn)}, {self.opt(mx)}, {path});")
        elif t in ("double", "float"):
            if mn is not None or mx is not None:
                lines.append(f"v.range_f64(*{var} as f64, {self.optf(mn)}, {self.optf(mx)}, {path});")
        elif t in ("list", "map"):
            if mn is not None or mx is not None:
                lines.append(f"v.size({var}.len() as u64, {self.opt(mn)}, {self.opt(mx)}, {path});")
        return lines

    def pattern_static(self, pattern):
        if pattern not in self.patterns:
            self.patterns[pattern] = f"PATTERN_{len(self.patterns)}"
        return self.patterns[pattern]

    @staticmethod
    def opt(x):
        return "None" if x is None else f"Some({int(x)})"

    @staticmethod
    def optf(x):
        return "None" if x is None else f"Some({float(x)!r})"

    def fn_name(self, name):
        return "validate_" + snake(self.type_name(name)).removeprefix("r#")

    def convert_expr(self, name, var, path):
        """An expression turning the Raw value `var` of shape `name` into `Option<typed>`
        (None when a required member was missing), recording failures on `v`."""
        if name in self.external:
            return f"Some({var})"  # the service checks it, in its own words
        s = self.shapes[name]
        t = s["type"]
        if t == "structure" and not s.get("document"):
            return f"{self.fn_name(name)}({var}, v, {path})"
        if t in ("list", "map"):
            return f"{self.fn_name(name)}({var}, v, {path})"
        checks = self.scalar_checks(name, "r", path)
        if not checks:
            return f"Some({var})"
        body = " ".join(checks)
        return f"{{ let x = {var}; let r = &x; {body} Some(x) }}"

    def emit_check(self, w, name):
        s = self.shapes[name]
        t = s["type"]
        fn = self.fn_name(name)
        raw_t = self.rust_type(name, raw=True)
        typed_t = self.rust_type(name, raw=False)
        if t == "string" and "enum" in s:
            return  # enums are checked where they are used
        if s.get("document"):
            return  # a document is any JSON; the model constrains nothing inside it
        w(f"pub(crate) fn {fn}(raw: {raw_t}, v: &mut Validator, path: &Path<'_>) -> Option<{typed_t}> {{")
        if t == "structure" and s.get("union"):
            w("    match raw {")
            for mn, m in s.get("members", {}).items():
                vn = pascal_variant(mn) if not mn[:1].isupper() else mn
                p = f"&path.member({rust_str(lower_first(mn))})"
                boxed = self.shapes[m["shape"]]["type"] == "structure"
                inner = "*x" if boxed else "x"
                conv = self.convert_expr(m["shape"], inner, p)
                wrap = "Box::new(y)" if boxed else "y"
                w(f"        {self.type_name(name)}Raw::{vn}(x) => {{ let y = {conv}?; Some({self.type_name(name)}::{vn}({wrap})) }}")
            w("    }")
        elif t == "structure":
            fields = []
            for mn, m, required in self.members(s):
                f = snake(mn)
                # Locals get a prefix: a member named `Path` must not shadow `path`.
                local = "m_" + f.removeprefix("r#")
                p = f"&path.member({rust_str(lower_first(mn))})"
                boxed = (name, mn) in self.boxed
                src = f"raw.{f}"
                inner = "*x" if boxed else "x"
                conv = self.convert_expr(m["shape"], inner, "p")
                if boxed:
                    conv = f"({conv}).map(Box::new)"
                if required:
                    w(f"    let {local} = {{ let p = {p}; match {src} {{ Some(x) => {conv}, None => {{ v.missing(p); None }} }} }};")
                    fields.append(f"{f}: {local}?")
                else:
                    w(f"    let {local} = {{ let p = {p}; {src}.map(|x| {conv}) }};")
                    fields.append(f"{f}: lift({local})?")
            w(f"    Some({self.type_name(name)} {{ {', '.join(fields)} }})")
        elif t == "list":
            elem = s["member"]["shape"]
            if self.scalar_checks(name, "r", "path"):
                w("    let r = &raw;")
            for line in self.scalar_checks(name, "r", "path"):
                w(f"    {line}")
            conv = self.convert_expr(elem, "x", "&path.index(i + 1)")
            w(f"    let items: Vec<_> = raw.into_iter().enumerate().map(|(i, x)| {conv}).collect();")
            w("    items.into_iter().collect()")
        elif t == "map":
            if self.scalar_checks(name, "r", "path"):
                w("    let r = &raw;")
            for line in self.scalar_checks(name, "r", "path"):
                w(f"    {line}")
            kchecks = self.scalar_checks(s["key"]["shape"], "r", "path", map_key=True)
            conv = self.convert_expr(s["value"]["shape"], "x", "&path.key(&k)")
            w("    let entries: Vec<_> = raw.into_iter().map(|(k, x)| {")
            if kchecks:
                w("        let r = &k;")
            for line in kchecks:
                w(f"        {line}")
            w(f"        let y = {conv};")
            w("        (k, y)")
            w("    }).collect();")
            w("    entries.into_iter().map(|(k, y)| y.map(|y| (k, y))).collect()")
        w("}")
        w("")

    # ---- operations --------------------------------------------------------------------

    def op_types(self, op):
        o = self.ops[op]
        inp = self.type_name(o["input"]["shape"]) if "input" in o else None
        out = self.type_name(o["output"]["shape"]) if "output" in o else None
        return inp, out

    def emit_trait(self, w):
        trait = self.cfg["trait"]
        label = self.cfg["label"]
        w(f"/// {label}'s operations. Each defaults to the answer AWS gives for an operation it does")
        w("/// not know; a service overrides the ones it implements.")
        w(f"pub trait {trait}: Send + Sync + 'static {{")
        for op in self.allowed:
            inp, out = self.op_types(op)
            args = ["&self", "ctx: &RequestContext"]
            if inp:
                args.append(f"input: {inp}")
            if op in self.eventstream_ops and self.protocol == "rest-json":
                # A restJson1 event stream (Lambda's InvokeWithResponseStream): the service
                # writes the whole HTTP answer, headers and framed events.
                ret = "http::Response<Body>"
            elif op in self.eventstream_ops:
                args.append("encoding: RpcEncoding")
                ret = "RpcResponse"
            else:
                ret = out or "()"
            self.doc(w, self.ops[op], "    ")
            w(f"    fn {snake(op)}({', '.join(args)}) -> impl Future<Output = Result<{ret}, ServiceError>> + Send {{")
            w(f"        async move {{ Err(not_implemented({rust_str(op)})) }}")
            w("    }")
        w("}")
        w("")
        w("/// The answer for an operation this server does not implement: what AWS answers for one")
        w("/// it does not know.")
        w("pub fn not_implemented(operation: &str) -> ServiceError {")
        w("    ServiceError::client(")
        if self.protocol == "query":
            w('        "InvalidAction",')
            w(f'        format!("The action {{operation}} is not valid for this web service: Lakebox\'s {label} does not implement it yet."),')
        else:
            w('        "UnknownOperationException",')
            w(f'        format!("Operation {{operation}} is not supported by Lakebox\'s {label} yet."),')
        w("    )")
        w("}")
        w("")

    def emit_validate(self, w):
        default = "ValidationError" if self.protocol == "query" else "ValidationException"
        code = self.cfg.get("validation_code", default)
        extra = self.cfg.get("validation_extra", {})
        w("/// How this service answers a request that breaks the model's constraints (its code, and")
        w("/// any member it adds), with AWS's \"N validation errors detected: …\" message.")
        w("fn validate<T>(check: impl FnOnce(&mut Validator) -> Option<T>) -> Result<T, ServiceError> {")
        if self.cfg.get("missing_parameter") == "query":
            w("    Validator::run_missing_parameter_query(check)")
        elif self.cfg.get("missing_parameter"):
            w("    Validator::run_missing_parameter(check)")
        elif extra:
            w(f"    Validator::run_with({rust_str(code)}, check)")
            for k, v in extra.items():
                w(f"        .map_err(|e| e.with_extra({rust_str(k)}, {rust_str(v)}))")
        else:
            w(f"    Validator::run_with({rust_str(code)}, check)")
        w("}")
        w("")

    def emit_dispatch(self, w):
        self.emit_validate(w)
        if self.protocol == "rest-json":
            return self.emit_rest_dispatch(w)
        if self.protocol == "query":
            return self.emit_query_dispatch(w, "dispatch")
        if self.query_compatible:
            self.emit_query_dispatch(w, "dispatch_query")
        trait = self.cfg["trait"]
        w(f"/// Decodes the request named by `X-Amz-Target`, validates it against the model, calls the")
        w("/// operation and encodes its answer in the request's encoding.")
        w(f"pub fn dispatch<S: {trait}>(service: Arc<S>, ctx: RequestContext, req: RpcRequest) -> BoxFuture<Result<RpcResponse, ServiceError>> {{")
        w("    Box::pin(async move {")
        if self.query_compatible:
            # An inner block, so the arms' `?` land in `result` rather than leave dispatch.
            w("        let result: Result<RpcResponse, ServiceError> = async { match req.operation.as_str() {")
        else:
            w("        match req.operation.as_str() {")
        for op in self.allowed:
            o = self.ops[op]
            inp, out = self.op_types(op)
            lines = []
            if inp:
                lines.append(f"let raw: {inp}Raw = req.decode()?;")
                lines.append(f"let input = validate(|v| {self.fn_name(o['input']['shape'])}(raw, v, &Path::root()))?;")
                call_args = "&ctx, input"
            else:
                call_args = "&ctx"
            if op in self.eventstream_ops:
                lines.append(f"service.{snake(op)}({call_args}, req.encoding).await")
            elif out:
                lines.append(f"let output = service.{snake(op)}({call_args}).await?;")
                lines.append("req.reply(&output)")
            else:
                lines.append(f"service.{snake(op)}({call_args}).await?;")
                lines.append("Ok(req.reply_empty())")
            w(f"            {rust_str(op)} => {{")
            for line in lines:
                w(f"                {line}")
            w("            }")
        w("            other => Err(not_implemented(other)),")
        if self.query_compatible:
            w("        } }.await;")
            w("        result.map_err(json_error)")
        else:
            w("        }")
        w("    })")
        w("}")

    def emit_query_dispatch(self, w, fn):
        trait = self.cfg["trait"]
        w("/// Decodes the form of the request's `Action`, validates it against the model, calls the")
        w("/// operation and writes its answer as AWS's XML document.")
        w(f"pub fn {fn}<S: {trait}>(service: Arc<S>, ctx: RequestContext, req: QueryRequest) -> BoxFuture<Result<String, ServiceError>> {{")
        w("    Box::pin(async move {")
        w("        match req.action.as_str() {")
        for op in self.allowed:
            o = self.ops[op]
            inp, out = self.op_types(op)
            w(f"            {rust_str(op)} => {{")
            if inp:
                w(f"                let raw: {inp}Raw = from_params_named(req.params(), QUERY_NAMES)?;")
                w(f"                let input = validate(|v| {self.fn_name(o['input']['shape'])}(raw, v, &Path::root()))?;")
                w(f"                let output = service.{snake(op)}(&ctx, input).await?;")
            else:
                w(f"                let output = service.{snake(op)}(&ctx).await?;")
            if out:
                w("                let members = to_xml_named(&output, QUERY_NAMES)?;")
                w(f"                Ok(response_xml({rust_str(op)}, XML_NAMESPACE, &ctx.request_id, Some(&|w: &mut lakebox_protocol::xml::XmlWriter| {{ w.raw(&members); }})))")
            else:
                w("                let () = output;")
                w(f"                Ok(response_xml({rust_str(op)}, XML_NAMESPACE, &ctx.request_id, None))")
            w("            }")
        if self.query_compatible:
            w("            other => Err(ServiceError::client(\"InvalidAction\", format!(\"The action {other} is not valid for this web service.\"))),")
        else:
            w("            other => Err(not_implemented(other)),")
        w("        }")
        w("    })")
        w("}")

    # ---- restJson1 ---------------------------------------------------------------------

    SCALARS = {"string": "String", "integer": "Integer", "long": "Integer", "boolean": "Boolean",
               "double": "Double", "float": "Double", "timestamp": "Timestamp"}

    def scalar_kind(self, shape, where):
        s = self.shapes[shape]
        if s["type"] == "string" and s.get("jsonvalue"):
            return "JsonValue"
        kind = self.SCALARS.get(s["type"])
        if not kind:
            sys.exit(f"{self.key}: {where} binds a {s['type']}, which restJson1 cannot carry there")
        return kind

    def bind_input(self, op, shape_name):
        """The lines that gather an input's members from the request, ending in `raw`."""
        s = self.shapes[shape_name]
        payload = s.get("payload")
        body_members = [mn for mn, m in s.get("members", {}).items() if "location" not in m and mn != payload]
        lines = []
        if body_members and not payload:
            lines.append("let mut input = Input::from_body(&req.body)?;")
        else:
            lines.append("let mut input = Input::empty();")
        after = []
        for mn, m in s.get("members", {}).items():
            loc = m.get("location")
            name = m.get("locationName", mn)
            shape = self.shapes[m["shape"]]
            if loc is None:
                if mn == payload:
                    if shape["type"] == "blob":
                        after.append(f"raw.{snake(mn)} = (!req.body.is_empty()).then(|| Blob(req.body.to_vec()));")
                    elif shape["type"] == "structure":
                        lines.append(f"input.set_payload_json({rust_str(mn)}, &req.body)?;")
                    else:
                        sys.exit(f"{self.key}: {op}'s payload {mn} is a {shape['type']}")
                elif "locationName" in m:
                    sys.exit(f"{self.key}: {op}'s body member {mn} is renamed; the shapes would need it")
                continue
            if loc == "uri":
                kind = self.scalar_kind(m["shape"], f"{op}.{mn}")
                lines.append(f"input.set({rust_str(mn)}, label(&labels, {rust_str(name)}), Scalar::{kind})?;")
            elif loc == "querystring":
                if shape["type"] == "list":
                    kind = self.scalar_kind(shape["member"]["shape"], f"{op}.{mn}")
                    lines.append(f"input.set_list({rust_str(mn)}, req.query_all({rust_str(name)}), Scalar::{kind})?;")
                elif shape["type"] == "map":
                    sys.exit(f"{self.key}: {op}.{mn} binds the whole query string; not generated yet")
                else:
                    kind = self.scalar_kind(m["shape"], f"{op}.{mn}")
                    lines.append(f"input.set({rust_str(mn)}, req.query({rust_str(name)}), Scalar::{kind})?;")
            elif loc == "header":
                if shape["type"] == "list":
                    kind = self.scalar_kind(shape["member"]["shape"], f"{op}.{mn}")
                    lines.append(f"input.set_list({rust_str(mn)}, req.header_items({rust_str(name.lower())}), Scalar::{kind})?;")
                else:
                    kind = self.scalar_kind(m["shape"], f"{op}.{mn}")
                    lines.append(f"input.set({rust_str(mn)}, req.header({rust_str(name.lower())}), Scalar::{kind})?;")
            else:
                sys.exit(f"{self.key}: {op}.{mn} is bound to {loc}; not generated yet")
        inp = self.type_name(shape_name)
        lines.append(f"let {'mut ' if after else ''}raw: {inp}Raw = input.decode()?;")
        lines.extend(after)
        return lines

    def bind_output(self, op, shape_name):
        """The lines that write `output` into `resp`."""
        s = self.shapes[shape_name]
        payload = s.get("payload")
        req = set(s.get("required", []))
        bound = []
        lines = []
        for mn, m in s.get("members", {}).items():
            loc = m.get("location")
            f = snake(mn)
            ref = f"Some(&output.{f})" if mn in req else f"output.{f}.as_ref()"
            if loc == "header":
                if self.shapes[m["shape"]]["type"] in ("list", "map"):
                    sys.exit(f"{self.key}: {op}.{mn} binds a {self.shapes[m['shape']]['type']} to a header")
                lines.append(f"resp.header({rust_str(m['locationName'].lower())}, {ref});")
                bound.append(mn)
            elif loc == "statusCode":
                val = f"Some(output.{f})" if mn in req else f"output.{f}"
                lines.append(f"resp.status_code({val});")
                bound.append(mn)
            elif loc is not None:
                sys.exit(f"{self.key}: {op}.{mn} is bound to {loc} in the output; not generated yet")
        if payload:
            shape = self.shapes[s["members"][payload]["shape"]]
            f = snake(payload)
            if shape["type"] == "blob":
                ct = self.cfg.get("blob_payload_content_type", "application/octet-stream")
                lines.append(f"resp.content_type = {rust_str(ct)};")
                val = f"output.{f}.0" if payload in req else f"output.{f}.map(|b| b.0).unwrap_or_default()"
                lines.append(f"resp.body = {val}.into();")
            elif shape["type"] == "structure":
                val = f"Some(&output.{f})" if payload in req else f"output.{f}.as_ref()"
                lines.append(f"if let Some(p) = {val} {{ resp.body = serde_json::to_vec(p).map_err(|e| ServiceError::internal(e.to_string()))?.into(); }}")
            else:
                sys.exit(f"{self.key}: {op}'s output payload is a {shape['type']}")
        else:
            names = ", ".join(rust_str(b) for b in bound)
            lines.append(f"resp.body = lakebox_protocol::rest_json::body_without(&output, &[{names}])?;")
        return lines

    def emit_rest_dispatch(self, w):
        trait = self.cfg["trait"]
        w("/// Where each operation lives in the URL space (the model's `http` traits).")
        w("pub static ROUTES: &[Route] = &[")
        # Every operation of the model, so one not implemented yet is named in its error.
        for op in sorted(self.ops):
            h = self.ops[op]["http"]
            w(f"    Route {{ method: {rust_str(h['method'])}, path: {rust_str(h['requestUri'])}, operation: {rust_str(op)} }},")
        w("];")
        w("")
        w("/// Finds the operation by method and path, gathers its input from the path, query, headers")
        w("/// and body, validates it against the model, calls it and writes its answer.")
        w(f"pub fn dispatch<S: {trait}>(service: Arc<S>, ctx: RequestContext, req: http::Request<Body>) -> BoxFuture<Result<http::Response<Body>, ServiceError>> {{")
        w("    Box::pin(async move {")
        w("        let req = RestRequest::read(req).await?;")
        w("        let Some((route, labels)) = lakebox_protocol::rest_json::route(ROUTES, req.method.as_str(), &req.path, &req.query) else {")
        w(f'            return Err(ServiceError::new("UnknownOperationException", 404, format!("Lakebox\'s {self.cfg["label"]} has no operation at {{}} {{}}.", req.method, req.path)));')
        w("        };")
        w("        if let Some(slot) = &req.operation_name { slot.set(route.operation); }")
        w("        let resp = match route.operation {")
        for op in self.allowed:
            o = self.ops[op]
            inp, out = self.op_types(op)
            code = o["http"].get("responseCode", 200)
            lines = []
            if inp:
                lines.extend(self.bind_input(op, o["input"]["shape"]))
                lines.append(f"let input = validate(|v| {self.fn_name(o['input']['shape'])}(raw, v, &Path::root()))?;")
                call = f"service.{snake(op)}(&ctx, input).await?"
            else:
                call = f"service.{snake(op)}(&ctx).await?"
            if op in self.eventstream_ops:
                lines.append(f"return {call.removesuffix('?')};")
                w(f"            {rust_str(op)} => {{")
                for line in lines:
                    w(f"                {line}")
                w("            }")
                continue
            lines.append(f"let mut resp = RestResponse::new({code});")
            if out:
                lines.append(f"let output = {call};")
                lines.extend(self.bind_output(op, o["output"]["shape"]))
            else:
                lines.append(f"let () = {call};")
            lines.append("resp")
            w(f"            {rust_str(op)} => {{")
            for line in lines:
                w(f"                {line}")
            w("            }")
        w("            other => return Err(not_implemented(other)),")
        w("        };")
        w("        Ok(resp.into_http())")
        w("    })")
        w("}")

    # ---- docs --------------------------------------------------------------------------

    def docs_table(self):
        rows = ["| operation | Lakebox |", "| --- | --- |"]
        allowed = set(self.allowed)
        for op in sorted(self.ops):
            rows.append(f"| {op} | {'yes' if op in allowed else 'not yet'} |")
        n = len(allowed)
        rows.append("")
        rows.append(f"{n} of the model's {len(self.ops)} operations (botocore {botocore.__version__}).")
        return "\n".join(rows)


def rustfmt(code):
    """Formats as `cargo fmt` would, so the checked-in output passes `cargo fmt --check`."""
    import subprocess
    r = subprocess.run(["rustfmt", "--edition", "2024", "--config-path", os.path.join(ROOT, "rustfmt.toml")],
                       input=code, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("rustfmt failed on the generated code:\n" + r.stderr[:4000])
    return r.stdout


BEGIN = "<!-- BEGIN generated operations table (scripts/codegen/generate.py) -->"
END = "<!-- END generated operations table -->"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("services", nargs="*")
    ap.add_argument("--check", action="store_true", help="fail if any output is out of date")
    args = ap.parse_args()
    with open(os.path.join(HERE, "services.toml"), "rb") as f:
        conf = tomllib.load(f)
    pinned = conf["botocore"]
    if botocore.__version__ != pinned:
        msg = (f"services.toml pins botocore {pinned}; this Python has {botocore.__version__} "
               f"(pip install botocore=={pinned})")
        if args.check:
            # The test command runs on machines with whatever botocore pip chose; the output can
            # only be compared against the pinned models.
            print(f"skipped: {msg}")
            return
        sys.exit(msg)
    stale = []
    for key, cfg in conf["service"].items():
        if args.services and key not in args.services:
            continue
        svc = Service(key, cfg)
        outputs = {os.path.join(ROOT, cfg["output"]): rustfmt(svc.emit())}
        doc = cfg.get("docs")
        if doc:
            path = os.path.join(ROOT, doc)
            with open(path) as f:
                text = f.read()
            if BEGIN in text and END in text:
                head, rest = text.split(BEGIN, 1)
                _, tail = rest.split(END, 1)
                outputs[path] = head + BEGIN + "\n\n" + svc.docs_table() + "\n\n" + END + tail
        for path, text in outputs.items():
            old = open(path).read() if os.path.exists(path) else None
            if old != text:
                if args.check:
                    stale.append(path)
                else:
                    with open(path, "w") as f:
                        f.write(text)
                    print(f"wrote {os.path.relpath(path, ROOT)}")
    if stale:
        sys.exit("out of date (run scripts/codegen/generate.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
