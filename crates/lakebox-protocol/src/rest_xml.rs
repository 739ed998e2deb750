//! restXml (S3): the error document. Success bodies are written by the service with
//! [`XmlWriter`](crate::xml::XmlWriter).

use lakebox_core::ServiceError;

use crate::xml::XmlWriter;

/// `<Error><Code/><Message/>…extra…<RequestId/><HostId/></Error>` as S3 sends it.
pub fn error_xml(err: &ServiceError, request_id: &str, host_id: &str) -> String {
    let mut w = XmlWriter::with_declaration();
    w.start("Error")
        .element("Code", &err.code)
        .element("Message", &err.message);
    for (name, value) in &err.extra {
        w.element(name, value);
    }
    w.element("RequestId", request_id)
        .element("HostId", host_id)
        .end("Error");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_document() {
        let e = ServiceError::new("NoSuchBucket", 404, "The specified bucket does not exist")
            .with_extra("BucketName", "b&b");
        let xml = error_xml(&e, "REQ", "HOST");
        let root = crate::xml::parse(xml.as_bytes()).unwrap();
        assert_eq!(root.name, "Error");
        assert_eq!(root.child_text("Code"), Some("NoSuchBucket"));
        assert_eq!(root.child_text("BucketName"), Some("b&b"));
        assert_eq!(root.child_text("RequestId"), Some("REQ"));
    }
}
