import hashlib
import io
import os
import uuid

import pytest
from minio import Minio

from storage.errors import InvalidObjectKey, ObjectNotFound, ObjectTooLarge
from storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore

MIB = 1 << 20


@pytest.fixture
def local_store(tmp_path):
    return LocalObjectStore(tmp_path / "objects", max_bytes=20 * MIB)


@pytest.fixture
def s3_client(s3_endpoint):
    return Minio(s3_endpoint, access_key="testing", secret_key="testing", secure=False)


@pytest.fixture
def s3_store(s3_client):
    # a bucket per test: tests never see each other's objects
    return S3ObjectStore(
        s3_client, f"t-{uuid.uuid4().hex[:12]}", max_bytes=20 * MIB, part_size=5 * MIB
    )


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request) -> ObjectStore:
    return request.getfixturevalue(f"{request.param}_store")


def test_both_implement_the_protocol(local_store):
    assert isinstance(local_store, ObjectStore)


def test_put_stat_open_round_trip(store):
    data = os.urandom(3 * MIB + 17)
    stored = store.put(
        "org-a", "datasets/ref.parquet", io.BytesIO(data), content_type="application/x-parquet"
    )
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert store.stat("org-a", "datasets/ref.parquet") == stored
    assert b"".join(store.open("org-a", "datasets/ref.parquet")) == data


def test_replace_list_delete(store):
    store.put("org-a", "p/one.json", io.BytesIO(b"1"))
    store.put("org-a", "p/two.json", io.BytesIO(b"2"))
    store.put("org-a", "r/x.html", io.BytesIO(b"x"))
    store.put("org-a", "p/one.json", io.BytesIO(b"uno"))
    assert b"".join(store.open("org-a", "p/one.json")) == b"uno"
    assert store.list("org-a") == ["p/one.json", "p/two.json", "r/x.html"]
    assert store.list("org-a", "p/") == ["p/one.json", "p/two.json"]
    store.delete("org-a", "p/one.json")
    store.delete("org-a", "p/one.json")  # absent: fine
    assert store.list("org-a", "p/") == ["p/two.json"]
    with pytest.raises(ObjectNotFound):
        store.stat("org-a", "p/one.json")


def test_one_organization_never_reads_another(store):
    store.put("org-a", "secret.csv", io.BytesIO(b"a,b\n1,2\n"))
    assert store.list("org-b") == []
    with pytest.raises(ObjectNotFound):
        store.open("org-b", "secret.csv")
    with pytest.raises(ObjectNotFound):
        store.stat("org-b", "secret.csv")
    for key in (
        "../org-a/secret.csv",
        "x/../../org-a/secret.csv",
        "/org-a/secret.csv",
        "a//b",
        "a\\b",
        ".",
    ):
        with pytest.raises(InvalidObjectKey):
            store.open("org-b", key)
    for organization in ("", "..", "org-a/..", "a b", "org/a"):
        with pytest.raises(InvalidObjectKey):
            store.put(organization, "k", io.BytesIO(b""))


def test_oversized_upload_is_refused_and_leaves_nothing(store):
    store.put("org-a", "big.bin", io.BytesIO(b"old"))
    with pytest.raises(ObjectTooLarge):
        store.put("org-a", "big.bin", io.BytesIO(b"\0" * (20 * MIB + 1)))
    with pytest.raises(ObjectTooLarge):
        store.put("org-a", "new.bin", io.BytesIO(b"\0" * (20 * MIB + 1)))
    assert b"".join(store.open("org-a", "big.bin")) == b"old"
    assert store.list("org-a") == ["big.bin"]


def test_local_store_leaves_no_temporary_files(local_store):
    with pytest.raises(ObjectTooLarge):
        local_store.put("org-a", "big.bin", io.BytesIO(b"\0" * (20 * MIB + 1)))
    local_store.put("org-a", "ok.bin", io.BytesIO(b"ok"))
    assert list((local_store.root / ".tmp").iterdir()) == []


def test_missing_object_in_empty_organization(local_store):
    assert local_store.list("org-z") == []
    with pytest.raises(ObjectNotFound):
        local_store.open("org-z", "nothing")


@pytest.mark.s3
def test_large_upload_goes_up_in_parts(s3_store, s3_client):
    data = os.urandom(12 * MIB)
    s3_store.put("org-a", "big.parquet", io.BytesIO(data))
    etag = s3_client.stat_object(s3_store.bucket, "org-a/big.parquet").etag
    assert etag.strip('"').endswith("-3")  # multipart ETag: md5-of-parts "-" part count
    assert b"".join(s3_store.open("org-a", "big.parquet")) == data


@pytest.mark.s3
def test_s3_objects_are_prefixed_by_organization(s3_store, s3_client):
    s3_store.put("org-a", "k.txt", io.BytesIO(b"x"))
    names = [o.object_name for o in s3_client.list_objects(s3_store.bucket, recursive=True)]
    assert names == ["org-a/k.txt"]
