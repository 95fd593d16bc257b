"""The committed gRPC stubs are exactly what proto/ generates today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
assert spec is not None
assert spec.loader is not None
gen_protos = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_protos)


def test_stubs_match_proto(tmp_path: Path) -> None:
    fresh = {p.name: p.read_text() for p in gen_protos.generate(tmp_path)}
    committed = {p.name: p.read_text() for p in gen_protos.STUBS.iterdir() if p.is_file()}
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, f"stale stubs {stale}: run `.venv/bin/python scripts/gen_protos.py`"
