"""Fail when the committed generated protobuf code differs from a fresh generation."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_proto import PROTO_DIR, ROOT, generate


def main() -> int:
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = sorted((Path(tmp) / PROTO_DIR).glob("*_pb2*.py*"))
        stale = []
        for path in fresh:
            committed = ROOT / PROTO_DIR / path.name
            if not committed.exists() or committed.read_bytes() != path.read_bytes():
                stale.append(path.name)
    if stale:
        print("stale generated code: " + ", ".join(stale) + "; run: python scripts/gen_proto.py")
        return 1
    print(f"generated code is current ({len(fresh)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
