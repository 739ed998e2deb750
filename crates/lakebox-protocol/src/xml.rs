//! A small XML writer and a tree reader: enough for awsQuery responses, restXml errors and
//! restXml configuration bodies, without a serde layer.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Appends escaped XML to a string. Elements are closed explicitly; names are trusted (they
/// come from code), text and attribute values are escaped.
#[derive(Debug, Default)]
pub struct XmlWriter {
    buf: String,
}

pub const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter::default()
    }

    /// Starts the document with the XML declaration.
    pub fn with_declaration() -> Self {
        XmlWriter {
            buf: XML_DECLARATION.to_owned(),
        }
    }

    pub fn start(&mut self, name: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    pub fn start_with_attrs(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        for (k, v) in attrs {
            self.buf.push(' ');
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            escape_into(&mut self.buf, v);
            self.buf.push('"');
        }
        self.buf.push('>');
        self
    }

    pub fn end(&mut self, name: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }

    /// `<name>text</name>`, with `text` escaped.
    pub fn element(&mut self, name: &str, text: &str) -> &mut Self {
        self.start(name);
        escape_into(&mut self.buf, text);
        self.end(name)
    }

    /// Writes the element only when there is a value: absent members are left out, as AWS does.
    pub fn opt_element(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.element(name, t);
        }
        self
    }

    /// Inserts already-formed XML.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.buf.push_str(xml);
        self
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// Escapes the five XML special characters, and carriage returns so they survive parsing.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    escape_into(&mut s, text);
    s
}

/// One element of a parsed document. Namespaces prefixes are dropped from names (AWS bodies
/// put everything in one default namespace).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XmlElement {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<XmlElement>,
    /// The element's own text content, concatenated; whitespace is kept as sent.
    pub text: String,
}

impl XmlElement {
    pub fn child(&self, name: &str) -> Option<&XmlElement> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a XmlElement> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the named child, if present.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// Writes the element back as XML (attributes, then its children, or its text when it has
    /// none: the documents AWS takes do not mix the two).
    pub fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attributes {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_into(out, v);
            out.push('"');
        }
        out.push('>');
        if self.children.is_empty() {
            escape_into(out, &self.text);
        }
        for c in &self.children {
            c.write(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Why an XML body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a whole document into its root element. Depth is limited so a hostile body cannot
/// exhaust the stack or memory through nesting.
pub fn parse(body: &[u8]) -> Result<XmlElement, XmlError> {
    const MAX_DEPTH: usize = 64;
    let mut reader = Reader::from_reader(body);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<XmlElement> = Vec::new();
    let mut buf = Vec::new();
    let local = |raw: &[u8]| -> String {
        let s = String::from_utf8_lossy(raw);
        match s.rsplit_once(':') {
            Some((_, l)) => l.to_owned(),
            None => s.into_owned(),
        }
    };
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError("XML is nested too deeply".into()));
                }
                let mut el = XmlElement {
                    name: local(e.name().as_ref()),
                    ..Default::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
                    let v = a
                        .unescape_value()
                        .map_err(|e| XmlError(format!("bad attribute value: {e}")))?;
                    el.attributes.push((local(a.key.as_ref()), v.into_owned()));
                }
                stack.push(el);
            }
            Ok(Event::End(_)) => {
                let el = stack.pop().ok_or_else(|| XmlError("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map_err(|e| XmlError(format!("bad text: {e}")))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(XmlError("text outside the root element".into())),
                }
            }
            Ok(Event::CData(c)) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Ok(Event::Eof) => return Err(XmlError("unexpected end of document".into())),
            Ok(_) => {}
            Err(e) => return Err(XmlError(format!("malformed XML: {e}"))),
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped() {
        let mut w = XmlWriter::with_declaration();
        w.start_with_attrs("R", &[("xmlns", "urn:\"x\"")])
            .element("Key", "a<b>&'c'\r")
            .opt_element("Missing", None)
            .element("Empty", "")
            .end("R");
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R xmlns=\"urn:&quot;x&quot;\">\
             <Key>a&lt;b&gt;&amp;&apos;c&apos;&#13;</Key><Empty></Empty></R>"
        );
    }

    #[test]
    fn parses_tree_and_round_trips_text() {
        let doc = br#"<?xml version="1.0"?>
            <s3:Tagging xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>
              <Tag><Key>k&amp;1</Key><Value></Value></Tag>
              <Tag><Key>k2</Key><Value><![CDATA[<v>]]></Value></Tag>
            </TagSet></s3:Tagging>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Tagging");
        let tags: Vec<_> = root.child("TagSet").unwrap().children_named("Tag").collect();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].child_text("Key"), Some("k&1"));
        assert_eq!(tags[0].child_text("Value"), Some(""));
        assert_eq!(tags[1].child_text("Value"), Some("<v>"));
        let mut w = XmlWriter::new();
        w.element("K", "k&1 <x> \"q\"");
        assert_eq!(parse(w.finish().as_bytes()).unwrap().text, "k&1 <x> \"q\"");
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<a>").is_err());
        assert!(parse(b"").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
