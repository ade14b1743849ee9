"""Install cost: a fresh venv in a temp dir, the project installed into it as the README's Set-up
command does (`pip install .`, or `.[test]` with ``--extra test``), timed, and the venv measured.

By default the versions are held to the lock's: requirements.lock is turned into a plain
constraints file (its hashes dropped, since pip's constraints cannot carry them) and passed with
``-c``; ``--latest`` resolves freely, as the README's command does on its own. pip's cache is off
unless ``--warm-cache`` (a first install on a new machine has none). ``--smoke`` also runs
``evalkit --version`` in the new venv.

Last line: JSON with ``mb`` (the venv on disk), ``seconds`` (venv creation + install), ``extra``,
``packages`` (how many distributions were installed) and the pip command.

    python benchmarks/install_size.py                 # core
    python benchmarks/install_size.py --extra test    # what the test-suite needs
    python benchmarks/install_size.py --project /path/to/another/checkout
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def constraints_from_lock(lock: Path, out: Path) -> int:
    """Write ``name==version`` lines of a hash-pinned lock to ``out``; return how many."""
    pins = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?==[^\s;\\]+)(\s*;[^\\]*)?", line)
        if m:
            name = re.sub(r"\[[^\]]*\]", "", m.group(1))  # constraints may not name extras
            pins.append(name + (m.group(2) or "").rstrip())
    out.write_text("\n".join(pins) + "\n", encoding="utf-8")
    return len(pins)


def dir_mb(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                total += os.lstat(p).st_blocks * 512
    return total / 1e6


def main() -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--extra", default="", help="an extra to install too, e.g. test or server")
    ap.add_argument("--project", type=Path, default=ROOT, help="the checkout to install (default: this one)")
    ap.add_argument("--latest", action="store_true", help="do not hold versions to requirements.lock")
    ap.add_argument("--warm-cache", action="store_true", help="let pip use its cache")
    ap.add_argument("--editable", action="store_true", help="pip install -e (as the README's test command)")
    ap.add_argument("--smoke", action="store_true", help="run `evalkit --version` in the new venv")
    ap.add_argument("--keep", type=Path, default=None, help="build the venv here and keep it")
    args = ap.parse_args()

    project = args.project.resolve()
    target = f"{project}[{args.extra}]" if args.extra else str(project)
    with tempfile.TemporaryDirectory(prefix="evalkit-install-") as tmp:
        venv = args.keep.resolve() if args.keep else Path(tmp) / "venv"
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        if not args.warm_cache:
            pip.append("--no-cache-dir")
        lock = project / "requirements.lock"
        if not args.latest and lock.exists():
            cons = Path(tmp) / "constraints.txt"
            constraints_from_lock(lock, cons)
            pip += ["-c", str(cons)]
        pip += ["-e", target] if args.editable else [target]

        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        proc = subprocess.run(pip, cwd=project, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"pip install failed ({proc.returncode})")

        listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                                capture_output=True, text=True, check=True)
        packages = len(json.loads(listed.stdout))
        result: dict[str, object] = {
            "mb": round(dir_mb(venv), 1),
            "seconds": round(seconds, 1),
            "extra": args.extra or None,
            "packages": packages,
            "locked": not args.latest and lock.exists(),
            "pip": " ".join(pip[pip.index("install"):]).replace(tmp, "$TMP"),
        }
        if args.smoke:
            v = subprocess.run([str(venv / "bin" / "evalkit"), "--version"], capture_output=True, text=True)
            result["version"] = (v.stdout or v.stderr).strip()
        print(f"venv: {result['mb']} MB, {packages} distributions; install: {result['seconds']} s", file=sys.stderr)
        print(json.dumps(result))
        return result


if __name__ == "__main__":
    main()
