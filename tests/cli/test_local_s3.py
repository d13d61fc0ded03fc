"""The local S3 behind the durable broker: its indexed prefix listings return what S3 would,
page by page, and conditional writes (which the broker's offsets rely on) still refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from parley_cli.local.object_store import ACCESS_KEY, REGION, SECRET_KEY, LocalObjectStore

S3_XML = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = LocalObjectStore(workdir=Path(tmp_path_factory.mktemp("s3")))
    store.start()
    try:
        yield boto3.client(
            "s3",
            endpoint_url=store.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )
    finally:
        store.stop()


def _listed(s3: Any, bucket: str, prefix: str, page_size: int) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
    )
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_prefix_listing_is_exact_ordered_and_paged(s3: Any) -> None:
    s3.create_bucket(Bucket="listing", CreateBucketConfiguration={"LocationConstraint": REGION})
    wanted = [f"topics/a/partitions/0/records/{n:020}.batch" for n in (7, 3, 120, 45, 9, 64)]
    # Neighbours a prefix scan must skip: a sibling partition, a longer name, a parent.
    others = ["topics/a/partitions/1/records/00000000000000000001.batch", "topics/ab/x", "topics/a"]
    for key in wanted + others:
        s3.put_object(Bucket="listing", Key=key, Body=b"batch")

    prefix = "topics/a/partitions/0/records/"
    assert _listed(s3, "listing", prefix, page_size=4) == sorted(wanted)
    assert _listed(s3, "listing", prefix, page_size=1000) == sorted(wanted)

    s3.delete_object(Bucket="listing", Key=wanted[0])
    assert _listed(s3, "listing", prefix, page_size=2) == sorted(wanted[1:])
    assert _listed(s3, "listing", "topics/a/", page_size=3) == sorted([*wanted[1:], others[0]])


def test_listed_objects_carry_what_a_head_request_reports(s3: Any) -> None:
    s3.create_bucket(Bucket="details", CreateBucketConfiguration={"LocationConstraint": REGION})
    # Names XML must escape, and bodies of different sizes.
    bodies = {"p/a&b.batch": b"x" * 5, "p/c<d>.batch": b"y" * 700, "p/e\"f'.batch": b""}
    for key, body in bodies.items():
        s3.put_object(Bucket="details", Key=key, Body=body)

    page = s3.list_objects_v2(Bucket="details", Prefix="p/", MaxKeys=2)
    assert (page["KeyCount"], page["IsTruncated"], page["MaxKeys"]) == (2, True, 2)
    rest = s3.list_objects_v2(
        Bucket="details", Prefix="p/", ContinuationToken=page["NextContinuationToken"]
    )
    assert (rest["KeyCount"], rest["IsTruncated"]) == (1, False)
    items = page["Contents"] + rest["Contents"]
    assert [item["Key"] for item in items] == sorted(bodies)
    for item in items:
        head = s3.head_object(Bucket="details", Key=item["Key"])
        assert item["Size"] == len(bodies[item["Key"]])
        assert item["ETag"] == head["ETag"]
        assert item["LastModified"] == head["LastModified"]
        assert item["StorageClass"] == "STANDARD"

    after = s3.list_objects_v2(Bucket="details", Prefix="p/", StartAfter="p/a&b.batch")
    assert [item["Key"] for item in after["Contents"]] == sorted(bodies)[1:]
    assert after["StartAfter"] == "p/a&b.batch"

    # The broker's own client asks without URL encoding: names come back XML-escaped only.
    raw = httpx.get(f"{s3.meta.endpoint_url}/details", params={"list-type": "2", "prefix": "p/"})
    names = ElementTree.fromstring(raw.content).iter(f"{S3_XML}Key")
    assert [name.text for name in names] == sorted(bodies)


def test_conditional_writes_still_refuse(s3: Any) -> None:
    s3.create_bucket(Bucket="conditions", CreateBucketConfiguration={"LocationConstraint": REGION})
    first = s3.put_object(Bucket="conditions", Key="watermark.json", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket="conditions", Key="watermark.json", Body=b"2", IfNoneMatch="*")
    s3.put_object(Bucket="conditions", Key="watermark.json", Body=b"2", IfMatch=first["ETag"])
    with pytest.raises(ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket="conditions", Key="watermark.json", Body=b"3", IfMatch=first["ETag"])
    body = s3.get_object(Bucket="conditions", Key="watermark.json")["Body"].read()
    assert body == b"2"
