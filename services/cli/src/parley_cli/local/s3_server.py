"""moto's S3 server, with prefix listings answered from a sorted index of each bucket's keys.

moto answers every ListObjects page by copying, scanning and sorting all of a bucket's
keys, and the broker lists a partition's batches on each fetch: in the 50,000-reminder
fault run moto held a core at 100 %, and the scan grew with every batch written. Here each
bucket keeps its key names in a sorted set, so a listing reads only the keys under its
prefix; pages, markers and continuation tokens stay moto's own. A plain ListObjectsV2
page is written as XML directly: moto's general response serialiser re-parsed every key's
timestamp and took over half the server's time in that run. Listings with a delimiter or
owners are left to moto as they are: the broker does not ask for them.
The server speaks S3 only, so requests skip moto's search for the service they belong to.

Run as ``python -m parley_cli.local.s3_server -H 127.0.0.1 -p PORT`` (moto_server's
arguments).
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from moto import settings
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3 import models
from moto.s3.models import FakeDeleteMarker, FakeKey, FakeTableStorageBucket, S3Backend
from moto.s3.responses import S3Response
from moto.s3.utils import _VersionedKeyStore
from sortedcontainers import SortedSet  # type: ignore[import-untyped]


class SortedKeyStore(_VersionedKeyStore):
    """moto's per-bucket key store, plus its key names in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sorted_names = SortedSet(dict.keys(self))

    def __setitem__(self, key: str, value: Any) -> Any:
        super().__setitem__(key, value)
        self.sorted_names.add(key)

    def setlist(self, key: Any, list_: Any) -> Any:
        super().setlist(key, list_)
        self.sorted_names.add(key)

    def pop(self, key: str) -> None:  # type: ignore[override]
        super().pop(key)
        self.sorted_names.discard(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.sorted_names.discard(key)

    def names_under(self, prefix: str) -> list[str]:
        names = []
        for name in self.sorted_names.irange(minimum=prefix):
            if not name.startswith(prefix):
                break
            names.append(name)
        return names


_moto_list_objects = S3Backend.list_objects


def list_objects(
    self: S3Backend,
    bucket: Any,
    prefix: str | None,
    delimiter: str | None,
    marker: str | None,
    max_keys: int | None,
) -> tuple[Any, Any, bool, str | None]:
    keys = bucket.keys
    if (
        not prefix
        or delimiter
        or not isinstance(keys, SortedKeyStore)
        or isinstance(bucket, FakeTableStorageBucket)
    ):
        return _moto_list_objects(self, bucket, prefix, delimiter, marker, max_keys)
    found: list[FakeKey] = []
    for name in keys.names_under(prefix):
        key = keys.get(name)
        if key is not None and not isinstance(key, FakeDeleteMarker):
            found.append(key)
    results: Any = found  # already in name order, as moto sorts them
    if marker:
        limit = self._pagination_tokens.get(marker) or marker
        results = self._get_results_from_token(results, limit)
    if max_keys is None:
        return results, [], False, None
    results, is_truncated, next_marker = self._truncate_result(results, max_keys)
    return results, [], is_truncated, next_marker


_moto_list_objects_v2 = S3Response.list_objects_v2


def list_objects_v2(self: S3Response) -> Any:
    """A ListObjectsV2 page without delimiter or owners, as S3 writes it."""
    query = self.querystring
    token = query.get("continuation-token", [None])[0]
    if token == "" or query.get("delimiter") or query.get("fetch-owner"):
        return _moto_list_objects_v2(self)  # also moto's error for an empty token
    prefix = self._get_querystring(self.request, self.uri).get("prefix", [None])[0]
    if isinstance(prefix, bytes):
        prefix = prefix.decode("utf-8")
    max_keys = int(query.get("max-keys", [settings.get_s3_default_max_keys()])[0])
    start_after = query.get("start-after", [None])[0]
    # AWS SDKs ask for URL-encoded names and decode them again.
    encoding = query.get("encoding-type", [None])[0]
    if encoding not in (None, "url"):
        return _moto_list_objects_v2(self)

    def text(value: str) -> str:
        return escape(quote(value) if encoding else value)

    bucket = self.backend.get_bucket(self.bucket_name)
    listed, is_truncated, next_token = self.backend.list_objects_v2(
        bucket=bucket,
        prefix=prefix,
        delimiter=None,
        continuation_token=token,
        start_after=start_after,
        max_keys=max_keys,
    )
    keys = [key for key in listed if isinstance(key, FakeKey)]  # no folders without delimiter
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
        f"<Name>{escape(bucket.name)}</Name><Prefix>{text(prefix or '')}</Prefix>",
        f"<MaxKeys>{max_keys}</MaxKeys><KeyCount>{len(keys)}</KeyCount>",
        f"<IsTruncated>{'true' if is_truncated else 'false'}</IsTruncated>",
    ]
    for key in keys:
        checksum = (
            f"<ChecksumAlgorithm>{key.checksum_algorithm}</ChecksumAlgorithm>"
            if key.checksum_algorithm
            else ""
        )
        parts.append(
            f"<Contents><Key>{text(key.name)}</Key>"
            f"<LastModified>{key.last_modified_ISO8601}</LastModified>"
            f"<ETag>{escape(key.etag)}</ETag><Size>{key.size}</Size>"
            f"<StorageClass>{key.storage_class}</StorageClass>{checksum}</Contents>"
        )
    if encoding:
        parts.append(f"<EncodingType>{encoding}</EncodingType>")
    if token:
        parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
    if next_token:
        parts.append(f"<NextContinuationToken>{escape(next_token)}</NextContinuationToken>")
    if start_after and not token:
        parts.append(f"<StartAfter>{text(start_after)}</StartAfter>")
    parts.append("</ListBucketResult>")
    headers = {**self.response_headers, "Content-Type": "application/xml"}
    return 200, headers, "".join(parts).encode()


_moto_get_application = DomainDispatcherApplication.get_application


def s3_application(self: DomainDispatcherApplication, environ: dict[str, Any]) -> Any:
    """Every request goes to S3. moto otherwise works out the service of each request by
    trying the URL patterns of every service it emulates, which cost half its time."""
    if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
        return _moto_get_application(self, environ)
    with self.lock:
        app = self.app_instances.get("s3")
        if app is None:
            app = self.app_instances["s3"] = self.create_app("s3")
        return app


def install() -> None:
    """Buckets created from now on index their keys; prefix listings use the index; plain
    ListObjectsV2 pages skip moto's serialiser; every request is routed to S3 directly."""
    models._VersionedKeyStore = SortedKeyStore  # type: ignore[attr-defined]
    S3Backend.list_objects = list_objects  # type: ignore[method-assign]
    S3Response.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]
    DomainDispatcherApplication.get_application = s3_application  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    install()
    from moto.server import main as moto_server

    moto_server(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
