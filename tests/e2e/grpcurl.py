"""The pinned grpcurl binary, run without blocking an in-process server's event loop."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRPCURL = shutil.which("grpcurl", path=str(ROOT / ".tools" / "bin")) or "grpcurl"


async def grpcurl(*args: str) -> str:
    """Runs ``grpcurl -plaintext ARGS``; returns its output, failing on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        GRPCURL,
        "-plaintext",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()
