//! awsQuery through serde: form parameters into an operation's input struct ([`from_params`]),
//! and an output struct into the members of `<{Action}Result>` ([`to_xml`]), so the same
//! generated shapes serve awsQuery as serve awsJson and CBOR.
//!
//! Forms are read as a tree of dotted keys. A list is `Name.member.N` (or, flattened,
//! `Name.N`); a map is `Name.entry.N.key` / `.value` (or flattened `Name.N.Name` / `.Value`).
//! In XML, list items are `<member>` elements and map entries `<entry><key/><value/></entry>`,
//! as botocore's query parser reads them.
//!
//! Services whose awsQuery spelling is not the member's own name (SQS: `Entries` travels as
//! `SendMessageBatchRequestEntry.N`, `Messages` as flattened `<Message>` elements, attribute
//! maps as `<Attribute><Name/><Value/></Attribute>`) pass a [`QueryNames`] table, generated
//! from services.toml, to [`from_params_named`] and [`to_xml_named`].

use std::collections::BTreeMap;
use std::fmt;

use lakebox_core::ServiceError;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

use crate::Timestamp;
use crate::xml::escape_into;

/// The name [`Timestamp`] gives its human-readable form, so the XML writer can print it as
/// ISO 8601 where JSON prints epoch seconds.
pub const TIMESTAMP_NEWTYPE: &str = "lakebox::Timestamp";

// ---- names ------------------------------------------------------------------------------

/// How awsQuery spells one member of one structure when that is not the member's name with
/// wrapped lists (`member`) and maps (`entry`/`key`/`value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryMember {
    /// The Rust name of the structure holding the member (what serde reports).
    pub owner: &'static str,
    /// The member's serde name (its model name).
    pub member: &'static str,
    /// Its awsQuery name: the form key's segment and the XML element.
    pub name: &'static str,
    /// A flattened list or map: items repeat under `name` itself, with no wrapper.
    pub flattened: bool,
    /// A map's key and value element names.
    pub key: &'static str,
    pub value: &'static str,
}

/// A service's table of [`QueryMember`]s.
pub type QueryNames = &'static [QueryMember];

fn lookup_by_member(names: QueryNames, owner: &str, member: &str) -> Option<&'static QueryMember> {
    names.iter().find(|m| m.owner == owner && m.member == member)
}

fn lookup_by_name(names: QueryNames, owner: &str, name: &str) -> Option<&'static QueryMember> {
    names.iter().find(|m| m.owner == owner && m.name == name)
}

// ---- forms in ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Node {
    value: Option<String>,
    children: BTreeMap<String, Node>,
}

/// The most dotted segments a parameter name may have. The deepest shape of any model is a
/// few dozen segments deep; a name of thousands (`a.a.a.…`) would build a tree that building,
/// reading and dropping recurse through, one stack frame per segment.
pub const MAX_KEY_SEGMENTS: usize = 100;

impl Node {
    fn build(params: &BTreeMap<String, String>) -> Result<Node, ServiceError> {
        let mut root = Node::default();
        for (k, v) in params {
            if k.split('.').nth(MAX_KEY_SEGMENTS).is_some() {
                return Err(ServiceError::client(
                    "MalformedInput",
                    format!("Parameter names may have at most {MAX_KEY_SEGMENTS} dot-separated parts."),
                ));
            }
            let mut n = &mut root;
            for seg in k.split('.') {
                n = n.children.entry(seg.to_owned()).or_default();
            }
            n.value = Some(v.clone());
        }
        Ok(root)
    }

    /// Children named by number (`1`, `2`, …), in numeric order.
    fn numbered(&self) -> Vec<&Node> {
        let mut items: Vec<(u64, &Node)> = self
            .children
            .iter()
            .filter_map(|(k, n)| k.parse::<u64>().ok().map(|i| (i, n)))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, n)| n).collect()
    }

    fn list_items(&self) -> Vec<&Node> {
        match self.children.get("member") {
            Some(m) => m.numbered(),
            None => self.numbered(),
        }
    }

    fn text(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }
}

/// Why a form did not fit the operation's input.
#[derive(Debug)]
pub struct FormError(String);

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormError {}

impl de::Error for FormError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        FormError(msg.to_string())
    }
}

/// Reads an operation's input from decoded form parameters (without `Action` and `Version`).
/// A value of the wrong type is AWS's `MalformedInput`.
pub fn from_params<T: DeserializeOwned>(params: &BTreeMap<String, String>) -> Result<T, ServiceError> {
    from_params_named(params, &[])
}

/// [`from_params`] for a service whose members travel under other names.
pub fn from_params_named<T: DeserializeOwned>(
    params: &BTreeMap<String, String>,
    names: QueryNames,
) -> Result<T, ServiceError> {
    let root = Node::build(params)?;
    T::deserialize(NodeDe::new(&root, names)).map_err(|e| ServiceError::client("MalformedInput", e.0))
}

/// A node of the form, the service's names, and how the member it holds is spelled (when
/// the table names it).
#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    names: QueryNames,
    spelled: Option<&'static QueryMember>,
}

impl<'a> NodeDe<'a> {
    fn new(node: &'a Node, names: QueryNames) -> Self {
        NodeDe {
            node,
            names,
            spelled: None,
        }
    }

    fn child(&self, node: &'a Node) -> Self {
        NodeDe::new(node, self.names)
    }
}

macro_rules! parse_scalar {
    ($($method:ident => $visit:ident: $t:ty),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
            let text = self.node.text();
            let parsed: $t = text
                .trim()
                .parse()
                .map_err(|_| FormError(format!("'{text}' is not a valid {}", stringify!($t))))?;
            v.$visit(parsed)
        })*
    };
}

impl<'de, 'a> de::Deserializer<'de> for NodeDe<'a> {
    type Error = FormError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        if self.node.children.is_empty() {
            v.visit_str(self.node.text())
        } else {
            self.deserialize_map(v)
        }
    }

    parse_scalar! {
        deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32, deserialize_f64 => visit_f64: f64,
        deserialize_bool => visit_bool: bool, deserialize_char => visit_char: char,
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        v.visit_str(self.node.text())
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        v.visit_string(self.node.text().to_owned())
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        v.visit_str(self.node.text())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        v.visit_str(self.node.text())
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        // Only members present in the form are visited; absent ones default to None.
        v.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        v.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, FormError> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, FormError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        // `Name=` with no items is the empty list.
        let items = self.node.list_items().into_iter().map(|n| self.child(n));
        v.visit_seq(de::value::SeqDeserializer::new(items))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, FormError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, FormError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        let pair = |n: &'a Node| entry_pair(n, self.spelled);
        let raw: Vec<(&str, &Node)> = match self.node.children.get("entry") {
            Some(e) => e.numbered().into_iter().filter_map(pair).collect(),
            None if self.node.children.keys().all(|k| k.parse::<u64>().is_ok()) => {
                self.node.numbered().into_iter().filter_map(pair).collect()
            }
            None => self.node.children.iter().map(|(k, n)| (k.as_str(), n)).collect(),
        };
        let entries: Vec<(&str, NodeDe<'a>)> = raw.into_iter().map(|(k, n)| (k, self.child(n))).collect();
        v.visit_map(de::value::MapDeserializer::new(entries.into_iter()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, FormError> {
        let names = self.names;
        let entries = self.node.children.iter().map(move |(k, n)| {
            // A member the table respells arrives under its awsQuery name.
            let spelled = lookup_by_name(names, name, k);
            let key = spelled.map_or(k.as_str(), |m| m.member);
            (
                key,
                NodeDe {
                    node: n,
                    names,
                    spelled,
                },
            )
        });
        v.visit_map(de::value::MapDeserializer::new(entries))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, FormError> {
        match self.node.children.iter().next() {
            Some((variant, node)) if self.node.children.len() == 1 => {
                v.visit_enum(EnumDe(variant, self.child(node)))
            }
            _ => v.visit_enum(self.node.text().into_deserializer()),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, FormError> {
        v.visit_unit()
    }
}

/// A map entry as `key`/`value` (`entry.N.key`), as the table spells it (`Name`/`Value` for
/// SQS attributes, `Key`/`Value` for its tags), or `Name`/`Value`.
fn entry_pair<'a>(n: &'a Node, spelled: Option<&QueryMember>) -> Option<(&'a str, &'a Node)> {
    let (k, v) = spelled.map_or(("Name", "Value"), |m| (m.key, m.value));
    let key = n.children.get("key").or_else(|| n.children.get(k))?;
    let value = n.children.get("value").or_else(|| n.children.get(v))?;
    Some((key.text(), value))
}

impl<'de, 'a> IntoDeserializer<'de, FormError> for NodeDe<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

struct EnumDe<'a>(&'a str, NodeDe<'a>);

impl<'de, 'a> de::EnumAccess<'de> for EnumDe<'a> {
    type Error = FormError;
    type Variant = NodeDe<'a>;
    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, NodeDe<'a>), FormError> {
        let v = seed.deserialize(de::value::StrDeserializer::<FormError>::new(self.0))?;
        Ok((v, self.1))
    }
}

impl<'de, 'a> de::VariantAccess<'de> for NodeDe<'a> {
    type Error = FormError;
    fn unit_variant(self) -> Result<(), FormError> {
        Ok(())
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, FormError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, FormError> {
        de::Deserializer::deserialize_seq(self, v)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        f: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, FormError> {
        de::Deserializer::deserialize_struct(self, "", f, v)
    }
}

// ---- XML out ----------------------------------------------------------------------------

/// A value on its way to XML.
enum Xml {
    /// Absent (`None`): the member is left out.
    Absent,
    Text(String),
    /// A structure's members, in declaration order, with how the table spells them.
    Members(Vec<(String, Xml, Option<&'static QueryMember>)>),
    List(Vec<Xml>),
    Map(Vec<(Xml, Xml)>),
}

impl Xml {
    fn render(&self, out: &mut String) {
        match self {
            Xml::Absent => {}
            Xml::Text(t) => escape_into(out, t),
            Xml::Members(m) => {
                for (name, v, spelled) in m {
                    match (v, spelled) {
                        (Xml::Absent, _) => {}
                        (Xml::List(items), Some(s)) if s.flattened => {
                            for item in items {
                                element(out, s.name, item);
                            }
                        }
                        (Xml::Map(entries), Some(s)) if s.flattened => {
                            for (k, v) in entries {
                                open(out, s.name);
                                element(out, s.key, k);
                                element(out, s.value, v);
                                close(out, s.name);
                            }
                        }
                        (v, Some(s)) => element(out, s.name, v),
                        (v, None) => element(out, name, v),
                    }
                }
            }
            Xml::List(items) => {
                for v in items {
                    element(out, "member", v);
                }
            }
            Xml::Map(entries) => {
                for (k, v) in entries {
                    out.push_str("<entry>");
                    element(out, "key", k);
                    element(out, "value", v);
                    out.push_str("</entry>");
                }
            }
        }
    }
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn element(out: &mut String, name: &str, v: &Xml) {
    open(out, name);
    v.render(out);
    close(out, name);
}

/// The members of an output structure as XML elements (what goes inside `<{Action}Result>`).
pub fn to_xml<T: Serialize>(value: &T) -> Result<String, ServiceError> {
    to_xml_named(value, &[])
}

/// [`to_xml`] for a service whose members travel under other names.
pub fn to_xml_named<T: Serialize>(value: &T, names: QueryNames) -> Result<String, ServiceError> {
    let tree = value
        .serialize(XmlSer(names))
        .map_err(|e| ServiceError::internal(format!("could not encode response: {e}")))?;
    let mut out = String::new();
    tree.render(&mut out);
    Ok(out)
}

#[derive(Debug)]
pub struct XmlError(String);

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XmlError {}

impl ser::Error for XmlError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        XmlError(msg.to_string())
    }
}

#[derive(Clone, Copy)]
struct XmlSer(QueryNames);

fn text(s: impl ToString) -> Result<Xml, XmlError> {
    Ok(Xml::Text(s.to_string()))
}

struct Seq(Vec<Xml>, QueryNames);
struct Members {
    owner: &'static str,
    names: QueryNames,
    items: Vec<(String, Xml, Option<&'static QueryMember>)>,
}
struct MapEntries(Vec<(Xml, Xml)>, Option<Xml>, QueryNames);

impl ser::Serializer for XmlSer {
    type Ok = Xml;
    type Error = XmlError;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Seq;
    type SerializeMap = MapEntries;
    type SerializeStruct = Members;
    type SerializeStructVariant = Members;

    fn serialize_bool(self, v: bool) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_i8(self, v: i8) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_f64(self, v: f64) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_char(self, v: char) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_str(self, v: &str) -> Result<Xml, XmlError> {
        text(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Xml, XmlError> {
        use base64::Engine;
        text(base64::engine::general_purpose::STANDARD.encode(v))
    }
    fn serialize_none(self) -> Result<Xml, XmlError> {
        Ok(Xml::Absent)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<Xml, XmlError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Xml, XmlError> {
        Ok(Xml::Absent)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Xml, XmlError> {
        Ok(Xml::Members(Vec::new()))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Xml, XmlError> {
        text(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<Xml, XmlError> {
        if name == TIMESTAMP_NEWTYPE {
            // Epoch seconds (integer or fractional) in, ISO 8601 out, as awsQuery writes times.
            if let Xml::Text(secs) = v.serialize(self)?
                && let Some(t) = secs
                    .parse::<f64>()
                    .ok()
                    .and_then(Timestamp::from_epoch_seconds_f64)
            {
                return text(t.to_iso8601());
            }
            return Err(XmlError("a timestamp that is not a number".into()));
        }
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Xml, XmlError> {
        Ok(Xml::Members(vec![(variant.to_owned(), v.serialize(self)?, None)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, XmlError> {
        Ok(Seq(Vec::with_capacity(len.unwrap_or(0)), self.0))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, XmlError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq, XmlError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Seq, XmlError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapEntries, XmlError> {
        Ok(MapEntries(Vec::new(), None, self.0))
    }
    fn serialize_struct(self, owner: &'static str, len: usize) -> Result<Members, XmlError> {
        Ok(Members {
            owner,
            names: self.0,
            items: Vec::with_capacity(len),
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Members, XmlError> {
        self.serialize_struct("", len)
    }
}

impl ser::SerializeSeq for Seq {
    type Ok = Xml;
    type Error = XmlError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), XmlError> {
        self.0.push(v.serialize(XmlSer(self.1))?);
        Ok(())
    }
    fn end(self) -> Result<Xml, XmlError> {
        Ok(Xml::List(self.0))
    }
}

impl ser::SerializeTuple for Seq {
    type Ok = Xml;
    type Error = XmlError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), XmlError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Xml, XmlError> {
        Ok(Xml::List(self.0))
    }
}

impl ser::SerializeTupleStruct for Seq {
    type Ok = Xml;
    type Error = XmlError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), XmlError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Xml, XmlError> {
        Ok(Xml::List(self.0))
    }
}

impl ser::SerializeTupleVariant for Seq {
    type Ok = Xml;
    type Error = XmlError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), XmlError> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Xml, XmlError> {
        Ok(Xml::List(self.0))
    }
}

impl ser::SerializeMap for MapEntries {
    type Ok = Xml;
    type Error = XmlError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> Result<(), XmlError> {
        self.1 = Some(k.serialize(XmlSer(self.2))?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), XmlError> {
        let k = self
            .1
            .take()
            .ok_or_else(|| XmlError("a map value without its key".into()))?;
        self.0.push((k, v.serialize(XmlSer(self.2))?));
        Ok(())
    }
    fn end(self) -> Result<Xml, XmlError> {
        Ok(Xml::Map(self.0))
    }
}

impl ser::SerializeStruct for Members {
    type Ok = Xml;
    type Error = XmlError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, name: &'static str, v: &T) -> Result<(), XmlError> {
        let spelled = lookup_by_member(self.names, self.owner, name);
        self.items
            .push((name.to_owned(), v.serialize(XmlSer(self.names))?, spelled));
        Ok(())
    }
    fn end(self) -> Result<Xml, XmlError> {
        Ok(Xml::Members(self.items))
    }
}

impl ser::SerializeStructVariant for Members {
    type Ok = Xml;
    type Error = XmlError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, name: &'static str, v: &T) -> Result<(), XmlError> {
        ser::SerializeStruct::serialize_field(self, name, v)
    }
    fn end(self) -> Result<Xml, XmlError> {
        Ok(Xml::Members(self.items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Blob;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Deserialize, Serialize, PartialEq, Default)]
    struct Tag {
        #[serde(rename = "Key")]
        key: String,
        #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq, Default)]
    struct Input {
        #[serde(rename = "RoleArn")]
        role_arn: Option<String>,
        #[serde(rename = "DurationSeconds", default, skip_serializing_if = "Option::is_none")]
        duration_seconds: Option<i32>,
        #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
        tags: Option<Vec<Tag>>,
        #[serde(rename = "Attributes", default, skip_serializing_if = "Option::is_none")]
        attributes: Option<BTreeMap<String, String>>,
        #[serde(rename = "Payload", default, skip_serializing_if = "Option::is_none")]
        payload: Option<Blob>,
        #[serde(rename = "At", default, skip_serializing_if = "Option::is_none")]
        at: Option<Timestamp>,
    }

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn forms_decode_lists_maps_and_scalars() {
        let input: Input = from_params(&form(&[
            ("RoleArn", "arn:aws:iam::1:role/r"),
            ("DurationSeconds", "900"),
            ("Tags.member.2.Key", "b"),
            ("Tags.member.1.Key", "a"),
            ("Tags.member.1.Value", "1"),
            ("Tags.member.10.Key", "j"),
            ("Attributes.entry.1.key", "k"),
            ("Attributes.entry.1.value", "v"),
            ("Payload", "AAH/"),
            ("At", "2024-01-31T12:00:00Z"),
        ]))
        .unwrap();
        assert_eq!(input.role_arn.as_deref(), Some("arn:aws:iam::1:role/r"));
        assert_eq!(input.duration_seconds, Some(900));
        let keys: Vec<&str> = input
            .tags
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.key.as_str())
            .collect();
        assert_eq!(keys, ["a", "b", "j"]);
        assert_eq!(input.tags.as_ref().unwrap()[0].value.as_deref(), Some("1"));
        assert_eq!(input.attributes.unwrap()["k"], "v");
        assert_eq!(input.payload.unwrap().0, vec![0, 1, 255]);
        assert_eq!(input.at.unwrap().to_iso8601(), "2024-01-31T12:00:00.000Z");
        // Flattened lists and SQS-style Name/Value maps too.
        let flat: Input = from_params(&form(&[
            ("Tags.1.Key", "x"),
            ("Attributes.1.Name", "n"),
            ("Attributes.1.Value", "w"),
        ]))
        .unwrap();
        assert_eq!(flat.tags.unwrap()[0].key, "x");
        assert_eq!(flat.attributes.unwrap()["n"], "w");
        let e = from_params::<Input>(&form(&[("DurationSeconds", "soon")])).unwrap_err();
        assert_eq!(e.code, "MalformedInput");
    }

    #[test]
    fn outputs_encode_members_lists_maps_and_times() {
        let out = Input {
            role_arn: Some("a&b".into()),
            duration_seconds: None,
            tags: Some(vec![Tag {
                key: "k".into(),
                value: Some("v".into()),
            }]),
            attributes: Some(BTreeMap::from([("x".to_owned(), "y".to_owned())])),
            payload: Some(Blob(vec![0, 1, 255])),
            at: Some(Timestamp::from_millis(1_706_702_400_000)),
        };
        assert_eq!(
            to_xml(&out).unwrap(),
            "<RoleArn>a&amp;b</RoleArn><Tags><member><Key>k</Key><Value>v</Value></member></Tags>\
             <Attributes><entry><key>x</key><value>y</value></entry></Attributes><Payload>AAH/</Payload>\
             <At>2024-01-31T12:00:00.000Z</At>"
        );
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq, Default)]
    struct Batch {
        #[serde(rename = "Entries", default, skip_serializing_if = "Option::is_none")]
        entries: Option<Vec<Tag>>,
        #[serde(rename = "Attributes", default, skip_serializing_if = "Option::is_none")]
        attributes: Option<BTreeMap<String, String>>,
        #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
        tags: Option<BTreeMap<String, String>>,
    }

    static NAMES: QueryNames = &[
        QueryMember {
            owner: "Batch",
            member: "Entries",
            name: "Entry",
            flattened: true,
            key: "",
            value: "",
        },
        QueryMember {
            owner: "Batch",
            member: "Attributes",
            name: "Attribute",
            flattened: true,
            key: "Name",
            value: "Value",
        },
        QueryMember {
            owner: "Batch",
            member: "Tags",
            name: "Tag",
            flattened: true,
            key: "Key",
            value: "Value",
        },
    ];

    #[test]
    fn respelled_members_decode_and_encode_under_their_query_names() {
        let batch: Batch = from_params_named(
            &form(&[
                ("Entry.2.Key", "b"),
                ("Entry.1.Key", "a"),
                ("Attribute.1.Name", "DelaySeconds"),
                ("Attribute.1.Value", "5"),
                ("Tag.1.Key", "team"),
                ("Tag.1.Value", "data"),
            ]),
            NAMES,
        )
        .unwrap();
        let keys: Vec<&str> = batch
            .entries
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.key.as_str())
            .collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(batch.attributes.as_ref().unwrap()["DelaySeconds"], "5");
        assert_eq!(batch.tags.as_ref().unwrap()["team"], "data");
        assert_eq!(
            to_xml_named(&batch, NAMES).unwrap(),
            "<Entry><Key>a</Key></Entry><Entry><Key>b</Key></Entry>\
             <Attribute><Name>DelaySeconds</Name><Value>5</Value></Attribute>\
             <Tag><Key>team</Key><Value>data</Value></Tag>"
        );
    }
}
