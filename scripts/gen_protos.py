"""Generate the Python gRPC stubs of proto/ into the nextbest-proto distribution.

They land in ``proto/python/src/nextbest_proto/v1``, which the server and the SDK both import
(the SDK re-exports them as ``nextbest_client.v1``). protoc names modules after the proto path
(``nextbest.v1``), which would collide with the server package ``nextbest``; the generated
imports are rewritten to ``nextbest_proto.v1``. A test runs :func:`generate` into a temporary
folder and fails when the committed stubs differ.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
MYPY_GRPC_PLUGIN = Path(sys.executable).parent / "protoc-gen-mypy_grpc"  # from mypy-protobuf
STUBS = ROOT / "proto" / "python" / "src" / "nextbest_proto" / "v1"


def _rewrite_imports(text: str) -> str:
    """Point generated imports at nextbest_proto.v1; RPC paths (/nextbest.v1.X) stay."""
    return re.sub(
        r"^(\s*)(from|import) nextbest\.v1\b", r"\1\2 nextbest_proto.v1", text, flags=re.M
    )


def generate(out_dir: Path) -> list[Path]:
    """Write the stubs of every proto/nextbest/v1/*.proto into out_dir; return the files."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    protos = sorted((PROTO_ROOT / "nextbest" / "v1").glob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        include = Path(protoc.__file__).parent / "_proto"
        code = protoc.main(
            [
                "protoc",
                f"-I{PROTO_ROOT}",
                f"-I{include}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                f"--plugin=protoc-gen-mypy_grpc={MYPY_GRPC_PLUGIN}",
                f"--mypy_grpc_out={tmp}",
                *[str(p) for p in protos],
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed with exit code {code}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for src in sorted((Path(tmp) / "nextbest" / "v1").iterdir()):
            text = _rewrite_imports(src.read_text())
            dest = out_dir / src.name
            dest.write_text(text)
            written.append(dest)
        init = out_dir / "__init__.py"
        init.write_text(
            '"""Generated from proto/nextbest/v1 by scripts/gen_protos.py: do not edit."""\n'
        )
        written.append(init)
        return written


if __name__ == "__main__":
    for path in generate(STUBS):
        print(path.relative_to(ROOT), file=sys.stderr)
