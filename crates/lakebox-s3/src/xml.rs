//! Pieces shared by S3's XML responses.

use lakebox_protocol::Timestamp;
use lakebox_protocol::xml::XmlWriter;
use sha2::{Digest, Sha256};

pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// A new document whose root element carries S3's namespace.
pub fn doc(root: &str) -> XmlWriter {
    let mut w = XmlWriter::with_declaration();
    w.start_with_attrs(root, &[("xmlns", NS)]);
    w
}

/// S3's canonical user id for an account: 64 hex characters, stable per account.
pub fn canonical_id(account: &str) -> String {
    hex::encode(Sha256::digest(format!("lakebox-canonical-user:{account}")))
}

pub fn owner(w: &mut XmlWriter, element: &str, account: &str) {
    w.start(element)
        .element("ID", &canonical_id(account))
        .element("DisplayName", &format!("lakebox-{account}"))
        .end(element);
}

pub fn iso(millis: i64) -> String {
    Timestamp::from_millis(millis).to_iso8601()
}

pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}
