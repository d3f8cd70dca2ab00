# Copyright (c) densecl_plugin contributors. All rights reserved.
"""File digests: the pinned wheels of :mod:`densecl_lab.data_prep.fetch`
and the demo's record of which backbone each run started from."""
import hashlib


def file_sha256(path: str, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file (hex), read in chunks.

    Args:
        path (str): The file.
        chunk_size (int): Bytes read at a time. Defaults to 1 MiB.

    Returns:
        str: The 64-character hex digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()
