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
