"""S3 access control enforced on every request (Lakebox with --credentials): bucket policies
decided by the IAM policy engine — explicit denies, grants to another account, public grants to
anonymous callers — and the public access block's RestrictPublicBuckets, judged with boto3 for
two accounts and raw unsigned requests for the anonymous caller."""

import json
import uuid

import botocore.exceptions
import pytest

from lakebox_harness import Lakebox
from signing import send
from test_s3_post import form

OWNER_KEY, OWNER_SECRET = "AKIDACCESSOWNER", "owner-secret"  # the default account, 000000000000
OTHER_KEY, OTHER_SECRET = "111122223333", "other-secret"  # a 12-digit key is its own account
OWNER, OTHER = "000000000000", "111122223333"


@pytest.fixture(scope="module")
def lakebox(tmp_path_factory):
    server = Lakebox(tmp_path_factory.mktemp("access"), "--credentials",
                     f"{OWNER_KEY}:{OWNER_SECRET},{OTHER_KEY}:{OTHER_SECRET}").start()
    yield server
    server.stop()


@pytest.fixture
def owner(lakebox):
    return lakebox.client("s3", access_key=OWNER_KEY, secret=OWNER_SECRET, s3={"addressing_style": "path"})


@pytest.fixture
def other(lakebox):
    return lakebox.client("s3", access_key=OTHER_KEY, secret=OTHER_SECRET, s3={"addressing_style": "path"})


@pytest.fixture
def bucket(owner):
    name = "acl-" + uuid.uuid4().hex[:12]
    owner.create_bucket(Bucket=name)
    owner.put_object(Bucket=name, Key="public/a.txt", Body=b"public data")
    owner.put_object(Bucket=name, Key="private/b.txt", Body=b"private data")
    return name


def code(e):
    return e.value.response["Error"]["Code"]


def put_policy(s3, bucket, *statements):
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def open_public_access(s3, bucket, restrict=False):
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": restrict})


def test_another_account_is_denied_without_a_grant(other, bucket):
    for call in (lambda: other.get_object(Bucket=bucket, Key="public/a.txt"),
                 lambda: other.list_objects_v2(Bucket=bucket),
                 lambda: other.put_object(Bucket=bucket, Key="x", Body=b"x"),
                 lambda: other.get_bucket_policy(Bucket=bucket)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e) == "AccessDenied"
        assert e.value.response["Error"]["Message"] == "Access Denied"
    # A bucket that does not exist is NoSuchBucket, whoever asks.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.get_object(Bucket="no-such-bucket-" + bucket, Key="k")
    assert code(e) == "NoSuchBucket"


def test_a_policy_grants_another_account_what_it_names(owner, other, bucket):
    put_policy(owner, bucket,
               {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
                "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{bucket}/public/*"},
               {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}", "Condition": {"StringLike": {"s3:prefix": "public/*"}}})
    assert other.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"public data"
    other.put_object(Bucket=bucket, Key="public/from-other.txt", Body=b"written by the other account")
    assert owner.get_object(Bucket=bucket, Key="public/from-other.txt")["Body"].read() == b"written by the other account"
    listed = other.list_objects_v2(Bucket=bucket, Prefix="public/")
    assert [o["Key"] for o in listed["Contents"]] == ["public/a.txt", "public/from-other.txt"]
    # What the policy does not name stays denied: other keys, other actions, other prefixes.
    for call in (lambda: other.get_object(Bucket=bucket, Key="private/b.txt"),
                 lambda: other.delete_object(Bucket=bucket, Key="public/a.txt"),
                 lambda: other.list_objects_v2(Bucket=bucket, Prefix="private/"),
                 lambda: other.list_objects_v2(Bucket=bucket)):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e) == "AccessDenied"
    assert owner.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"public data"
    # Copying needs the source's GetObject too: the private object cannot be copied out.
    other_bucket = "other-" + bucket
    other.create_bucket(Bucket=other_bucket)
    other.copy_object(Bucket=other_bucket, Key="copy.txt", CopySource={"Bucket": bucket, "Key": "public/a.txt"})
    assert other.get_object(Bucket=other_bucket, Key="copy.txt")["Body"].read() == b"public data"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.copy_object(Bucket=other_bucket, Key="stolen.txt", CopySource={"Bucket": bucket, "Key": "private/b.txt"})
    assert code(e) == "AccessDenied"
    # The owner's own buckets are not the other account's to configure.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.put_object(Bucket=other_bucket, Key="x", Body=b"x")
    assert code(e) == "AccessDenied"


def test_an_explicit_deny_binds_the_owner_too(owner, bucket):
    put_policy(owner, bucket, {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*",
                               "Action": ["s3:DeleteObject", "s3:PutBucketTagging"],
                               "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.delete_object(Bucket=bucket, Key="private/b.txt")
    assert code(e) == "AccessDenied"
    assert e.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{OWNER}:root is not authorized to perform: s3:DeleteObject on resource: "
        f"\"arn:aws:s3:::{bucket}/private/b.txt\" with an explicit deny in a resource-based policy")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
    assert code(e) == "AccessDenied"
    # DeleteObjects decides each key on its own.
    out = owner.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "public/a.txt"}]})
    assert [(x["Key"], x["Code"]) for x in out["Errors"]] == [("public/a.txt", "AccessDenied")]
    assert owner.get_object(Bucket=bucket, Key="private/b.txt")["Body"].read() == b"private data"
    assert owner.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"public data"
    # A deny never locks the owner out of the policy itself.
    put_policy(owner, bucket, {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                               "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.get_object(Bucket=bucket, Key="public/a.txt")
    assert code(e) == "AccessDenied"
    assert "Deny" in owner.get_bucket_policy(Bucket=bucket)["Policy"]
    owner.delete_bucket_policy(Bucket=bucket)
    owner.delete_object(Bucket=bucket, Key="private/b.txt")
    assert [o["Key"] for o in owner.list_objects_v2(Bucket=bucket)["Contents"]] == ["public/a.txt"]


def test_conditions_see_the_callers_address_and_headers(owner, bucket):
    # Only writes that ask for encryption, and only from 10.0.0.0/8 for reads of private/.
    put_policy(owner, bucket,
               {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}},
               {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/private/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.put_object(Bucket=bucket, Key="plain.txt", Body=b"x")
    assert code(e) == "AccessDenied"
    owner.put_object(Bucket=bucket, Key="sealed.txt", Body=b"sealed", ServerSideEncryption="AES256")
    assert owner.get_object(Bucket=bucket, Key="sealed.txt")["Body"].read() == b"sealed"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.get_object(Bucket=bucket, Key="private/b.txt")
    assert code(e) == "AccessDenied"
    assert owner.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"public data"


def test_a_public_policy_opens_the_bucket_to_anonymous_callers(lakebox, owner, other, bucket):
    public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
              "Resource": f"arn:aws:s3:::{bucket}/public/*"}
    # New buckets block public policies.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        put_policy(owner, bucket, public)
    assert code(e) == "AccessDenied"
    status, _, body = send(lakebox.endpoint, "GET", f"/{bucket}/public/a.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    open_public_access(owner, bucket)
    put_policy(owner, bucket, public)
    assert owner.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    status, _, body = send(lakebox.endpoint, "GET", f"/{bucket}/public/a.txt")
    assert (status, body) == (200, b"public data")
    assert other.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"public data"
    # Only what the policy names.
    for method, path in (("GET", f"/{bucket}/private/b.txt"), ("GET", f"/{bucket}"),
                         ("PUT", f"/{bucket}/public/new.txt"), ("DELETE", f"/{bucket}/public/a.txt")):
        status, _, body = send(lakebox.endpoint, method, path, b"x" if method == "PUT" else b"")
        assert status == 403 and b"<Code>AccessDenied</Code>" in body, (method, path)
    # RestrictPublicBuckets leaves a public policy to the owner's account alone.
    open_public_access(owner, bucket, restrict=True)
    status, _, body = send(lakebox.endpoint, "GET", f"/{bucket}/public/a.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.get_object(Bucket=bucket, Key="public/a.txt")
    assert code(e) == "AccessDenied"
    assert owner.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"public data"
    # A grant naming an account is not public: RestrictPublicBuckets leaves it alone.
    put_policy(owner, bucket, {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "s3:GetObject",
                               "Resource": f"arn:aws:s3:::{bucket}/*"})
    assert other.get_object(Bucket=bucket, Key="private/b.txt")["Body"].read() == b"private data"


def test_anonymous_form_uploads_need_a_policy_that_allows_them(lakebox, owner, bucket):
    body, headers = form({"key": "uploads/${filename}"}, filename="note.txt", data=b"from a browser")
    status, _, answer = send(lakebox.endpoint, "POST", f"/{bucket}", body, headers)
    assert status == 403 and b"<Code>AccessDenied</Code>" in answer
    open_public_access(owner, bucket)
    put_policy(owner, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
                               "Resource": f"arn:aws:s3:::{bucket}/uploads/*"})
    body, headers = form({"key": "uploads/${filename}"}, filename="note.txt", data=b"from a browser")
    status, _, answer = send(lakebox.endpoint, "POST", f"/{bucket}", body, headers)
    assert status == 204, answer
    assert owner.get_object(Bucket=bucket, Key="uploads/note.txt")["Body"].read() == b"from a browser"
    body, headers = form({"key": "elsewhere/${filename}"}, filename="note.txt", data=b"x")
    status, _, answer = send(lakebox.endpoint, "POST", f"/{bucket}", body, headers)
    assert status == 403 and b"<Code>AccessDenied</Code>" in answer


# ---- ACLs and object ownership ----

def canonical_id(s3):
    return s3.list_buckets()["Owner"]["ID"]


def acl_bucket(owner, ownership):
    name = "acls-" + uuid.uuid4().hex[:12]
    owner.create_bucket(Bucket=name, ObjectOwnership=ownership)
    owner.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    return name


def test_bucket_owner_enforced_refuses_acls(owner, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert code(e) == "AccessControlListNotSupported"
    owner.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.put_object_acl(Bucket=bucket, Key="k", ACL="public-read")
    assert code(e) == "AccessControlListNotSupported"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.create_bucket(Bucket="pub-" + bucket, ACL="public-read")
    assert code(e) == "InvalidBucketAclWithObjectOwnership"
    acl = owner.get_object_acl(Bucket=bucket, Key="k")
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]] == [(acl["Owner"]["ID"], "FULL_CONTROL")]


def test_acls_grant_other_accounts_and_everyone(lakebox, owner, other):
    name = acl_bucket(owner, "ObjectWriter")
    assert owner.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "ObjectWriter"}]
    owner.put_object(Bucket=name, Key="shared.txt", Body=b"shared")
    owner.put_object(Bucket=name, Key="open.txt", Body=b"open to all", ACL="public-read")
    other_id = canonical_id(other)
    # Before any grant the other account gets nothing.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.list_objects_v2(Bucket=name)
    assert code(e) == "AccessDenied"
    # READ on the bucket lists it; WRITE lets the other account upload.
    owner.put_bucket_acl(Bucket=name, GrantRead=f'id="{other_id}"', GrantWrite=f'id="{other_id}"',
                         GrantFullControl=f'id="{canonical_id(owner)}"')
    grants = owner.get_bucket_acl(Bucket=name)["Grants"]
    assert {(g["Grantee"].get("ID"), g["Permission"]) for g in grants} == {
        (other_id, "READ"), (other_id, "WRITE"), (canonical_id(owner), "FULL_CONTROL")}
    assert sorted(o["Key"] for o in other.list_objects_v2(Bucket=name)["Contents"]) == ["open.txt", "shared.txt"]
    # Reading an object needs its own ACL's READ.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.get_object(Bucket=name, Key="shared.txt")
    assert code(e) == "AccessDenied"
    owner.put_object_acl(Bucket=name, Key="shared.txt", GrantRead=f'id="{other_id}"')
    assert other.get_object(Bucket=name, Key="shared.txt")["Body"].read() == b"shared"
    # public-read: anyone, signed or not.
    status, _, body = send(lakebox.endpoint, "GET", f"/{name}/open.txt")
    assert (status, body) == (200, b"open to all")
    acl = owner.get_object_acl(Bucket=name, Key="open.txt")
    assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
            "Permission": "READ"} in acl["Grants"]
    # Under ObjectWriter the other account owns what it writes: the bucket owner cannot read it
    # unless the writer grants it.
    other.put_object(Bucket=name, Key="theirs.txt", Body=b"the writer's")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.get_object(Bucket=name, Key="theirs.txt")
    assert code(e) == "AccessDenied"
    assert other.get_object_acl(Bucket=name, Key="theirs.txt")["Owner"]["ID"] == other_id
    other.put_object(Bucket=name, Key="granted.txt", Body=b"for the owner", ACL="bucket-owner-full-control")
    assert owner.get_object(Bucket=name, Key="granted.txt")["Body"].read() == b"for the owner"
    owner.delete_object(Bucket=name, Key="theirs.txt")
    # IgnorePublicAcls turns public grants off without changing them; BlockPublicAcls refuses new ones.
    owner.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    status, _, body = send(lakebox.endpoint, "GET", f"/{name}/open.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.put_object_acl(Bucket=name, Key="shared.txt", ACL="public-read")
    assert code(e) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.put_object(Bucket=name, Key="new.txt", Body=b"x", ACL="public-read")
    assert code(e) == "AccessDenied"
    assert other.get_object(Bucket=name, Key="shared.txt")["Body"].read() == b"shared"


def test_bucket_owner_preferred_takes_objects_written_with_full_control(owner, other):
    name = acl_bucket(owner, "BucketOwnerPreferred")
    owner.put_bucket_acl(Bucket=name, GrantWrite=f'id="{canonical_id(other)}"',
                         GrantFullControl=f'id="{canonical_id(owner)}"')
    other.put_object(Bucket=name, Key="handed-over.txt", Body=b"now the owner's", ACL="bucket-owner-full-control")
    assert owner.get_object_acl(Bucket=name, Key="handed-over.txt")["Owner"]["ID"] == canonical_id(owner)
    assert owner.get_object(Bucket=name, Key="handed-over.txt")["Body"].read() == b"now the owner's"
    other.put_object(Bucket=name, Key="kept.txt", Body=b"still the writer's")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        owner.get_object(Bucket=name, Key="kept.txt")
    assert code(e) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.put_object(Bucket=name, Key="x", Body=b"x", GrantRead='emailAddress="someone@example.com"')
    assert code(e) == "UnresolvableGrantByEmailAddress"


# ---- the account's public access block (S3 Control) ----

@pytest.fixture
def localhost_subdomains(monkeypatch):
    """S3 Control puts the account id in the host (`000000000000.localhost`); resolve
    `*.localhost` to this machine as systemd-resolved and macOS do."""
    import socket
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def control_client(lakebox, key, secret):
    import boto3
    from botocore.config import Config
    return boto3.client("s3control", endpoint_url=lakebox.endpoint.replace("127.0.0.1", "localhost"),
                        region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": 1}))


def test_the_accounts_public_access_block_adds_to_each_buckets(lakebox, owner, bucket, localhost_subdomains):
    control = control_client(lakebox, OWNER_KEY, OWNER_SECRET)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        control.get_public_access_block(AccountId=OWNER)
    assert code(e) == "NoSuchPublicAccessBlockConfiguration"
    open_public_access(owner, bucket)
    put_policy(owner, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                               "Resource": f"arn:aws:s3:::{bucket}/public/*"})
    assert send(lakebox.endpoint, "GET", f"/{bucket}/public/a.txt")[0] == 200
    settings = {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True}
    control.put_public_access_block(AccountId=OWNER, PublicAccessBlockConfiguration=settings)
    try:
        assert control.get_public_access_block(AccountId=OWNER)["PublicAccessBlockConfiguration"] == settings
        # The bucket's own block is off, the account's is on: the account's wins.
        status, _, body = send(lakebox.endpoint, "GET", f"/{bucket}/public/a.txt")
        assert status == 403 and b"<Code>AccessDenied</Code>" in body
        with pytest.raises(botocore.exceptions.ClientError) as e:
            put_policy(owner, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                       "Resource": f"arn:aws:s3:::{bucket}/*"})
        assert code(e) == "AccessDenied"
        assert owner.get_object(Bucket=bucket, Key="public/a.txt")["Body"].read() == b"public data"
        # Another account cannot read or change this account's settings.
        stranger = control_client(lakebox, OTHER_KEY, OTHER_SECRET)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            stranger.get_public_access_block(AccountId=OWNER)
        assert code(e) == "AccessDenied"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            stranger.delete_public_access_block(AccountId=OWNER)
        assert code(e) == "AccessDenied"
    finally:
        control.delete_public_access_block(AccountId=OWNER)
    assert send(lakebox.endpoint, "GET", f"/{bucket}/public/a.txt")[0] == 200


def test_a_policy_grant_reaches_athena_reading_for_the_other_account(lakebox, owner, other, bucket):
    from lakebox_harness import run_query
    owner.put_object(Bucket=bucket, Key="fruit/part-0.csv", Body=b"1,apple\n2,pear\n")
    results = "results-" + bucket
    other.create_bucket(Bucket=results)
    athena = lakebox.client("athena", access_key=OTHER_KEY, secret=OTHER_SECRET)
    glue = lakebox.client("glue", access_key=OTHER_KEY, secret=OTHER_SECRET)
    db = "shared_" + bucket.replace("-", "_")
    glue.create_database(DatabaseInput={"Name": db})
    _, e = run_query(athena, f"CREATE EXTERNAL TABLE fruit (id int, name string) ROW FORMAT DELIMITED "
                             f"FIELDS TERMINATED BY ',' LOCATION 's3://{bucket}/fruit/'",
                     f"s3://{results}/ddl/", database=db)
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    # Athena reads as the caller: without a grant, the owner's bucket is closed to it.
    _, e = run_query(athena, "SELECT name FROM fruit ORDER BY id", f"s3://{results}/q1/", database=db)
    assert e["Status"]["State"] == "FAILED"
    assert "Access Denied" in e["Status"]["StateChangeReason"]
    put_policy(owner, bucket, {"Effect": "Allow", "Principal": {"AWS": OTHER},
                               "Action": ["s3:GetObject", "s3:ListBucket"],
                               "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/fruit/*"]})
    qid, e = run_query(athena, "SELECT name FROM fruit ORDER BY id", f"s3://{results}/q2/", database=db)
    assert e["Status"]["State"] == "SUCCEEDED", e["Status"]
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    assert [r["Data"][0]["VarCharValue"] for r in rows] == ["name", "apple", "pear"]
