//! The evaluation rules of AWS's "Policy evaluation logic" and "Condition operators" pages.

use super::*;

fn aws(account: &str) -> Principal {
    Principal::Aws {
        account: account.into(),
        arn: format!("arn:aws:iam::{account}:root"),
    }
}

fn decide(policy: &str, principal: &Principal, action: &str, resource: &str, ctx: &Context) -> Decision {
    let p = Policy::parse(policy).unwrap();
    p.evaluate(&Request {
        principal,
        action,
        resource,
        context: ctx,
    })
}

const BUCKET_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ReadForPartner", "Effect": "Allow", "Principal": {"AWS": ["111122223333", "arn:aws:iam::444455556666:root"]},
     "Action": ["s3:GetObject", "s3:List*"], "Resource": ["arn:aws:s3:::lake", "arn:aws:s3:::lake/*"]},
    {"Sid": "NoSecrets", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::lake/secret/*"},
    {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::lake/*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
  ]
}"#;

#[test]
fn allow_deny_and_implicit_deny() {
    let mut ctx = Context::new();
    ctx.set("aws:SecureTransport", "true");
    let partner = aws("111122223333");
    assert_eq!(
        decide(
            BUCKET_POLICY,
            &partner,
            "s3:GetObject",
            "arn:aws:s3:::lake/a.csv",
            &ctx
        ),
        Decision::Allow
    );
    assert_eq!(
        decide(
            BUCKET_POLICY,
            &aws("444455556666"),
            "S3:ListBucket",
            "arn:aws:s3:::lake",
            &ctx
        ),
        Decision::Allow
    );
    // Not granted: the implicit deny.
    assert_eq!(
        decide(
            BUCKET_POLICY,
            &partner,
            "s3:PutObject",
            "arn:aws:s3:::lake/a.csv",
            &ctx
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        decide(
            BUCKET_POLICY,
            &aws("999999999999"),
            "s3:GetObject",
            "arn:aws:s3:::lake/a.csv",
            &ctx
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        decide(
            BUCKET_POLICY,
            &Principal::Anonymous,
            "s3:GetObject",
            "arn:aws:s3:::lake/a.csv",
            &ctx
        ),
        Decision::NotApplicable
    );
    // An explicit deny wins over the allow.
    assert_eq!(
        decide(
            BUCKET_POLICY,
            &partner,
            "s3:GetObject",
            "arn:aws:s3:::lake/secret/k",
            &ctx
        ),
        Decision::Deny
    );
    ctx.set("aws:SecureTransport", "false");
    assert_eq!(
        decide(
            BUCKET_POLICY,
            &partner,
            "s3:GetObject",
            "arn:aws:s3:::lake/a.csv",
            &ctx
        ),
        Decision::Deny
    );
}

#[test]
fn not_elements_invert_their_match() {
    let policy = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"},
        "NotAction": "s3:Get*", "NotResource": "arn:aws:s3:::lake/public/*"}}"#;
    let ctx = Context::new();
    assert_eq!(
        decide(
            policy,
            &aws("222233334444"),
            "s3:PutObject",
            "arn:aws:s3:::lake/x",
            &ctx
        ),
        Decision::Deny
    );
    assert_eq!(
        decide(
            policy,
            &aws("111122223333"),
            "s3:PutObject",
            "arn:aws:s3:::lake/x",
            &ctx
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        decide(
            policy,
            &aws("222233334444"),
            "s3:GetObject",
            "arn:aws:s3:::lake/x",
            &ctx
        ),
        Decision::NotApplicable
    );
    assert_eq!(
        decide(
            policy,
            &aws("222233334444"),
            "s3:PutObject",
            "arn:aws:s3:::lake/public/x",
            &ctx
        ),
        Decision::NotApplicable
    );
}

fn cond(condition: &str, ctx: &Context) -> bool {
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*", "Condition": {condition}}}}}"#
    );
    decide(
        &policy,
        &Principal::Anonymous,
        "s3:GetObject",
        "arn:aws:s3:::b/k",
        ctx,
    ) == Decision::Allow
}

#[test]
fn condition_operators() {
    let mut ctx = Context::new();
    ctx.set("aws:SourceIp", "10.1.2.3")
        .set("s3:prefix", "home/ana/")
        .set("s3:max-keys", "50")
        .set("aws:CurrentTime", "2026-06-01T12:00:00Z")
        .set("aws:username", "ana")
        .set("aws:SourceArn", "arn:aws:sns:us-east-1:111122223333:orders");
    assert!(cond(
        r#"{"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "10.1.0.0/16"]}}"#,
        &ctx
    ));
    assert!(!cond(r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#, &ctx));
    assert!(cond(
        r#"{"StringLike": {"s3:prefix": "home/${aws:username}/*"}}"#,
        &ctx
    ));
    assert!(
        !cond(r#"{"StringEquals": {"s3:prefix": "home/*"}}"#, &ctx),
        "StringEquals has no wildcards"
    );
    assert!(
        cond(r#"{"StringEqualsIgnoreCase": {"S3:Prefix": "HOME/ANA/"}}"#, &ctx),
        "keys are case-insensitive"
    );
    assert!(cond(r#"{"NumericLessThanEquals": {"s3:max-keys": "50"}}"#, &ctx));
    assert!(!cond(r#"{"NumericGreaterThan": {"s3:max-keys": 50}}"#, &ctx));
    assert!(cond(
        r#"{"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}"#,
        &ctx
    ));
    assert!(cond(
        r#"{"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111122223333:*"}}"#,
        &ctx
    ));
    assert!(!cond(
        r#"{"ArnEquals": {"aws:SourceArn": "arn:aws:sns:*:999999999999:*"}}"#,
        &ctx
    ));
    // Negated operators NOR their values.
    assert!(!cond(
        r#"{"StringNotEquals": {"aws:username": ["bob", "ana"]}}"#,
        &ctx
    ));
    assert!(cond(
        r#"{"StringNotEquals": {"aws:username": ["bob", "eve"]}}"#,
        &ctx
    ));
    // Operators and keys are ANDed.
    assert!(!cond(
        r#"{"StringEquals": {"aws:username": "ana", "s3:prefix": "other/"}}"#,
        &ctx
    ));
}

#[test]
fn missing_keys_ifexists_null_and_sets() {
    let ctx = Context::new();
    assert!(!cond(
        r#"{"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}}"#,
        &ctx
    ));
    assert!(
        cond(
            r#"{"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}"#,
            &ctx
        ),
        "a negated operator holds for a missing key"
    );
    assert!(cond(
        r#"{"StringEqualsIfExists": {"s3:x-amz-server-side-encryption": "AES256"}}"#,
        &ctx
    ));
    assert!(cond(
        r#"{"Null": {"s3:x-amz-server-side-encryption": "true"}}"#,
        &ctx
    ));
    assert!(!cond(
        r#"{"Null": {"s3:x-amz-server-side-encryption": "false"}}"#,
        &ctx
    ));
    let mut tags = Context::new();
    tags.set_all("aws:TagKeys", vec!["team".into(), "env".into()]);
    assert!(cond(
        r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env", "cost"]}}"#,
        &tags
    ));
    assert!(!cond(
        r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}"#,
        &tags
    ));
    assert!(cond(
        r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}"#,
        &tags
    ));
    assert!(
        cond(r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["x"]}}"#, &ctx),
        "ForAllValues holds for no values"
    );
    assert!(!cond(
        r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["x"]}}"#,
        &ctx
    ));
}

#[test]
fn variables_need_the_2012_version() {
    let mut ctx = Context::new();
    ctx.set("aws:username", "ana");
    let with = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::home/${aws:username}/*"}}"#;
    let without = r#"{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::home/${aws:username}/*"}}"#;
    let me = aws("111122223333");
    assert_eq!(
        decide(with, &me, "s3:GetObject", "arn:aws:s3:::home/ana/x", &ctx),
        Decision::Allow
    );
    assert_eq!(
        decide(with, &me, "s3:GetObject", "arn:aws:s3:::home/bob/x", &ctx),
        Decision::NotApplicable
    );
    assert_eq!(
        decide(without, &me, "s3:GetObject", "arn:aws:s3:::home/ana/x", &ctx),
        Decision::NotApplicable
    );
}

#[test]
fn malformed_policies_are_refused() {
    for (doc, why) in [
        ("not json", "Policies must be valid JSON"),
        (r#"{"Version": "2012-10-17"}"#, "Missing required field Statement"),
        (
            r#"{"Statement": [{"Action": "s3:*", "Resource": "*"}]}"#,
            "Missing required field Effect",
        ),
        (
            r#"{"Statement": [{"Effect": "Maybe", "Action": "s3:*"}]}"#,
            "Invalid effect",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Resource": "*"}]}"#,
            "Missing required field Action",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "GetObject"}]}"#,
            "Policy has invalid action",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Principal": {"AWS": "bob"}}]}"#,
            "Invalid principal in policy",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Condition": {"StringSortOf": {"a": "b"}}}]}"#,
            "Invalid Condition type : StringSortOf",
        ),
        (
            r#"{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Condition": {"IpAddress": {"aws:SourceIp": "nope"}}}]}"#,
            "Invalid IP address",
        ),
        (r#"{"Version": "2020-01-01", "Statement": []}"#, "valid version"),
    ] {
        let e = Policy::parse(doc).unwrap_err();
        assert!(e.0.contains(why), "{doc}: {e}");
    }
}

#[test]
fn public_policies() {
    let open = Policy::parse(r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}"#).unwrap();
    assert!(open.is_public());
    let by_ip = Policy::parse(r#"{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}"#).unwrap();
    assert!(!by_ip.is_public());
    let named = Policy::parse(r#"{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "s3:*", "Resource": "*"}]}"#).unwrap();
    assert!(!named.is_public());
    let denied = Policy::parse(
        r#"{"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}"#,
    )
    .unwrap();
    assert!(!denied.is_public());
}
