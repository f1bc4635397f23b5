"""Off-site copies in S3 (or an S3-compatible store), with one-line errors for what users meet: no settings, wrong
credentials, a missing bucket. Credentials: the secrets file's AWS_* keys, else boto3's usual chain."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional

from .errors import UserError
from .secrets import BACKUP_KEYS
from .settings import Settings


def configured(s: Settings) -> bool:
    return bool(s.backups.s3.bucket)


def client(s: Settings):
    if not configured(s):
        raise UserError(f"no S3 bucket is set: set qms.backups.s3.bucket in {s.source} (and the AWS keys in "
                        f"{s.secrets_path})")
    import boto3   # only when S3 is used: the rest of the tool does without it

    keys = {name.lower(): s.secrets[name] for name in BACKUP_KEYS if s.secrets.get(name)}
    return boto3.client("s3", endpoint_url=s.backups.s3.endpoint_url, region_name=s.backups.s3.region, **keys)


def prefix(s: Settings) -> str:
    return s.backups.s3.prefix.format(env=s.env)


def explain(error: Exception, s: Settings) -> UserError:
    """botocore's errors as the one line a user can act on."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "") if hasattr(error, "response") else ""
    if not code:   # boto3's upload/download helpers wrap the client error in their own, as text
        found = re.search(r"An error occurred \((\w+)\)", str(error))
        code = found.group(1) if found else ""
    bucket = s.backups.s3.bucket
    where = s.backups.s3.endpoint_url or "AWS"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "AccessDenied", "403"):
        return UserError(f"S3 ({where}) refused the credentials ({code}): check AWS_ACCESS_KEY_ID and "
                         f"AWS_SECRET_ACCESS_KEY in {s.secrets_path}")
    if code in ("NoSuchBucket", "404"):
        return UserError(f"the bucket {bucket} does not exist at {where}: create it, or fix qms.backups.s3.bucket")
    if type(error).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return UserError(f"no AWS credentials: put AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in {s.secrets_path}")
    if type(error).__name__ in ("EndpointConnectionError", "ConnectTimeoutError"):
        return UserError(f"cannot reach S3 at {where}: check qms.backups.s3.endpoint_url and the network")
    return UserError(f"S3 ({where}, bucket {bucket}): {error}")


def upload(s: Settings, path: Path, key_name: str, sha256: str, progress: Callable[[int], None]) -> str:
    """Upload with server-side encryption and the checksum as metadata, then check what S3 stored."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    s3, key = client(s), prefix(s) + key_name
    extra = {"Metadata": {"sha256": sha256}}
    if s.backups.s3.sse != "none":
        extra["ServerSideEncryption"] = s.backups.s3.sse
    try:
        s3.upload_file(str(path), s.backups.s3.bucket, key, ExtraArgs=extra, Callback=progress)
        stored = s3.head_object(Bucket=s.backups.s3.bucket, Key=key)
    except (BotoCoreError, ClientError, S3UploadFailedError) as e:
        raise explain(e, s) from None
    if stored.get("Metadata", {}).get("sha256") != sha256 or stored["ContentLength"] != path.stat().st_size:
        raise UserError(f"S3 holds something else than was sent for {key}: upload again")
    return key


def listing(s: Settings) -> list[dict]:
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = client(s)
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=s.backups.s3.bucket, Prefix=prefix(s))
        objects = [o for page in pages for o in page.get("Contents", [])]
        return [{"key": o["Key"], "size": o["Size"],
                 "sha256": s3.head_object(Bucket=s.backups.s3.bucket, Key=o["Key"]).get("Metadata", {}).get("sha256")}
                for o in objects if o["Key"].endswith(".sqlite3.gz")]
    except (BotoCoreError, ClientError) as e:
        raise explain(e, s) from None


def download(s: Settings, key: str, target: Path) -> Optional[str]:
    """Fetch `key` to `target`; returns the sha256 recorded with it."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = client(s)
    try:
        s3.download_file(s.backups.s3.bucket, key, str(target))
        return s3.head_object(Bucket=s.backups.s3.bucket, Key=key).get("Metadata", {}).get("sha256")
    except (BotoCoreError, ClientError) as e:
        raise explain(e, s) from None
