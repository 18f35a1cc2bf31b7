"""Refresh the vendored LiteRT.js runtime of the web export from npm (needs ``npm``; the package
never does: it ships these files).

    python tools/refresh_litertjs.py            # the version pinned below
    python tools/refresh_litertjs.py --version 2.6.0

``npm pack`` fetches ``@litertjs/core`` and ``@litertjs/wasm-utils`` (npm checks each tarball
against the registry's SHA-512), and the files the page loads are copied into
``colorize_tf/export/web_static/litertjs/`` with a ``MANIFEST.json`` of their SHA-256, which the
export checks before it writes a folder. Kept: the two single-threaded WebAssembly builds, with
relaxed SIMD (``litert_wasm_internal``: Chrome, Edge, Firefox) and without
(``litert_wasm_compat_internal``: Safari); left out: the threaded build (it needs a
cross-origin-isolated page, which GitHub Pages cannot serve) and the JSPI build (for WebNN and
for mixed WebGPU / CPU graphs). ``LICENSE`` (Apache-2.0) and ``NOTICE`` stay as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

VERSION = "2.5.3"
TARGET = Path(__file__).resolve().parents[1] / "colorize_tf/export/web_static/litertjs"
# (package, file inside its tarball, name in TARGET)
FILES = [
    ("@litertjs/core", "package/dist/index.js", "core.js"),
    ("@litertjs/wasm-utils", "package/dist/index.js", "wasm-utils.js"),
    ("@litertjs/core", "package/wasm/litert_wasm_internal.js", "litert_wasm_internal.js"),
    ("@litertjs/core", "package/wasm/litert_wasm_internal.wasm", "litert_wasm_internal.wasm"),
    (
        "@litertjs/core",
        "package/wasm/litert_wasm_compat_internal.js",
        "litert_wasm_compat_internal.js",
    ),
    (
        "@litertjs/core",
        "package/wasm/litert_wasm_compat_internal.wasm",
        "litert_wasm_compat_internal.wasm",
    ),
]


def npm_pack(package: str, version: str, folder: Path) -> tuple[Path, str]:
    """``npm pack PACKAGE@VERSION`` into ``folder``: (the tarball, its registry integrity)."""
    out = subprocess.run(
        ["npm", "pack", "--json", f"{package}@{version}"],
        cwd=folder, check=True, capture_output=True, text=True,
    )  # fmt: skip
    (info,) = json.loads(out.stdout)
    return folder / info["filename"], info["integrity"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", default=VERSION, help=f"LiteRT.js version ({VERSION})")
    args = parser.parse_args(argv)
    packages: dict[str, dict] = {}
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tarballs = {}
        for package in sorted({p for p, _, _ in FILES}):
            tarball, integrity = npm_pack(package, args.version, Path(tmp))
            tarballs[package] = tarfile.open(tarball)
            packages[package] = {"version": args.version, "integrity": integrity}
        for package, member, name in FILES:
            data = tarballs[package].extractfile(member).read()
            (TARGET / name).write_bytes(data)
            files[name] = hashlib.sha256(data).hexdigest()
            print(f"{name}: {len(data) / 1e6:.2f} MB from {package}@{args.version}/{member}")
    for stale in TARGET.iterdir():
        if stale.name not in files and stale.name not in ("LICENSE", "NOTICE", "MANIFEST.json"):
            stale.unlink() if stale.is_file() else shutil.rmtree(stale)
    manifest = {"packages": packages, "license": "Apache-2.0", "files": files}
    (TARGET / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{TARGET / 'MANIFEST.json'}: update NOTICE if the version changed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
